//! The simulator's mutable state: tenants, grants, codes, tokens, tickets, keys, faults and records.
//! It lives behind one mutex in the context (`SimContext`); nothing holds the lock across an await.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::config::{SimConfig, TenantState, TenantVersion};
use crate::faults::Faults;
use crate::keys::{SigningKey, random_alphanumeric};
use crate::modes::Modes;

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct AssociateRef {
    pub associate_id: i64,
    pub name: String,
    pub full_name: String,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListItem {
    pub id: i64,
    pub value: String,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Country {
    pub country_id: i64,
    pub name: String,
    #[serde(rename = "TwoLetterISOCountry")]
    pub two_letter_iso_country: String,
}

/// A modest ContactEntity (a company), PascalCase like the real API.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Contact {
    pub contact_id: i64,
    #[serde(flatten)]
    pub fields: ContactFields<String>,
    pub updated_date: String,
    pub created_date: String,
    pub associate: AssociateRef,
    pub business: ListItem,
    pub category: ListItem,
    pub country: Country,
}

/// The text fields of a ContactEntity that a client sets: as stored (`String`), or as a save request
/// gives them (`Option<String>`, where an absent field stays as it is).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ContactFields<T> {
    pub name: T,
    pub department: T,
    pub org_nr: T,
    pub number1: T,
    pub number2: T,
}

impl ContactFields<String> {
    /// Sets the fields that `changes` gives.
    pub fn apply(&mut self, changes: ContactFields<Option<String>>) {
        let ContactFields {
            name,
            department,
            org_nr,
            number1,
            number2,
        } = changes;
        for (field, change) in [
            (&mut self.name, name),
            (&mut self.department, department),
            (&mut self.org_nr, org_nr),
            (&mut self.number1, number1),
            (&mut self.number2, number2),
        ] {
            if let Some(value) = change {
                *field = value;
            }
        }
    }
}

#[derive(Debug, Clone)]
pub struct Store {
    pub tenants: BTreeMap<String, Tenant>,
    pub codes: HashMap<String, AuthCode>,
    pub access_tokens: HashMap<String, AccessToken>,
    pub refresh_tokens: HashMap<String, RefreshToken>,
    pub tickets: HashMap<String, Ticket>,
    /// The key that signs every token SuperID issues now.
    pub signing_key: Arc<SigningKey>,
    /// Earlier keys still published in the JWKS after a rotation.
    pub old_keys: Vec<Arc<SigningKey>>,
    pub faults: Faults,
    pub records: Records,
    pub modes: Modes,
    /// Whether the global `rotate_keys_withdrawn` mode has rotated the key since it was set.
    pub mode_rotated: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct Tenant {
    pub context_id: String,
    pub company_name: String,
    pub serial: String,
    pub host: String,
    pub state: TenantState,
    #[serde(flatten)]
    pub version: TenantVersion,
    /// Applications installed on the tenant, by client id.
    pub grants: BTreeMap<String, Grant>,
    #[serde(skip)]
    pub contacts: BTreeMap<i64, Contact>,
    /// System user tickets issued so far (each one is a credential record at SuperOffice).
    pub tickets_issued: u64,
}

/// An application's approval on a tenant.
#[derive(Debug, Clone, Serialize)]
pub struct Grant {
    pub status: GrantStatus,
    pub system_token: String,
}

/// The application's standing on a tenant; all but Active are documented `AuthorizeErrorCode`s.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum GrantStatus {
    Active,
    Revoked,
    Expired,
    Denied,
    NeedsReapproval,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PkceMethod {
    Plain,
    S256,
}

#[derive(Debug, Clone)]
pub struct AuthCode {
    pub client_id: String,
    pub redirect_uri: String,
    pub username: String,
    pub nonce: Option<String>,
    pub pkce: Option<(String, PkceMethod)>,
    pub issued_at: DateTime<Utc>,
    pub used: bool,
}

#[derive(Debug, Clone)]
pub struct AccessToken {
    pub client_id: String,
    pub username: String,
    pub context_id: String,
    pub expires_at: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub struct RefreshToken {
    pub client_id: String,
    pub username: String,
    pub context_id: String,
}

/// A system user ticket (`7T:…`).
#[derive(Debug, Clone)]
pub struct Ticket {
    pub context_id: String,
    pub client_id: String,
    pub last_used: DateTime<Utc>,
}

/// What the simulator saw, for tests to assert on, by the side that saw it.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Records {
    #[serde(flatten)]
    pub superid: SuperIdRecords,
    /// Companies created through the tenant APIs.
    pub companies: Vec<CompanyRecord>,
    /// State-change notifications sent to the applications.
    pub notifications: Vec<NotificationRecord>,
}

/// What SuperID saw: sign-ins, token and exchange requests, and fetches of its metadata.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SuperIdRecords {
    pub sign_ins: Vec<SignInRecord>,
    pub token_requests: Vec<TokenRecord>,
    pub exchanges: Vec<ExchangeRecord>,
    #[serde(flatten)]
    pub fetches: MetadataFetches,
}

/// How often SuperID's published metadata was fetched: requests served, counted.
#[derive(Debug, Clone, Default, Serialize)]
pub struct MetadataFetches {
    /// `GET /login/.well-known/openid-configuration`.
    #[serde(rename = "discovery_fetches")]
    pub discovery: u64,
    /// `GET /login/.well-known/jwks`.
    #[serde(rename = "jwks_fetches")]
    pub jwks: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct SignInRecord {
    pub at: DateTime<Utc>,
    pub username: String,
    pub context_id: String,
    pub client_id: String,
    pub is_administrator: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct TokenRecord {
    pub at: DateTime<Utc>,
    pub client_id: Option<String>,
    pub grant_type: Option<String>,
    /// `ok` or the OAuth error code.
    pub outcome: String,
    pub system_token_issued: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct ExchangeRecord {
    pub at: DateTime<Utc>,
    /// `rest` or `soap`.
    pub via: &'static str,
    pub context_identifier: String,
    pub client_id: Option<String>,
    /// `Success` or the error code (`Revoked`, `InvalidSignature`, …).
    pub outcome: String,
    pub error_message: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct CompanyRecord {
    pub at: DateTime<Utc>,
    pub context_id: String,
    pub contact_id: i64,
    pub name: String,
    /// `system_user_ticket` or `user_bearer`.
    pub credential: &'static str,
    /// `rest` or `soap`.
    pub via: &'static str,
    pub associate_id: i64,
}

#[derive(Debug, Clone, Serialize)]
pub struct NotificationRecord {
    pub at: DateTime<Utc>,
    pub context_id: String,
    pub client_id: String,
    pub url: String,
    pub change_type: u8,
    pub delivered: bool,
    pub status: Option<u16>,
    pub error: Option<String>,
}

impl Store {
    pub fn new(config: &SimConfig, app_names: &HashMap<String, String>, key: SigningKey) -> Self {
        let tenants = config
            .tenants
            .iter()
            .map(|t| {
                let grants = t
                    .installed_apps
                    .iter()
                    .map(|client_id| {
                        let name = app_names.get(client_id).map_or("App", String::as_str);
                        (client_id.clone(), Grant::new(name))
                    })
                    .collect();
                let tenant = Tenant {
                    context_id: t.context_id.clone(),
                    company_name: t.company_name.clone(),
                    serial: t.serial.clone(),
                    host: t.host.clone(),
                    state: t.state.clone(),
                    version: t.version.clone(),
                    grants,
                    contacts: BTreeMap::new(),
                    tickets_issued: 0,
                };
                (t.context_id.clone(), tenant)
            })
            .collect();
        Self {
            tenants,
            codes: HashMap::new(),
            access_tokens: HashMap::new(),
            refresh_tokens: HashMap::new(),
            tickets: HashMap::new(),
            signing_key: Arc::new(key),
            old_keys: Vec::new(),
            faults: Faults::default(),
            records: Records::default(),
            modes: config.modes.clone(),
            mode_rotated: false,
        }
    }

    /// Tickets issued per tenant.
    pub fn tickets_issued(&self) -> BTreeMap<String, u64> {
        self.tenants
            .values()
            .map(|t| (t.context_id.clone(), t.tickets_issued))
            .collect()
    }
}

impl Grant {
    /// An active grant with a fresh system user token, `{app name}-{10 random characters}`.
    pub fn new(app_name: &str) -> Self {
        Self {
            status: GrantStatus::Active,
            system_token: format!("{app_name}-{}", random_alphanumeric(10)),
        }
    }
}
