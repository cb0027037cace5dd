//! Fault injection and inspection: [`Admin`] for in-process use, and the same operations as a JSON
//! API under `/admin` on the SuperID address (see the crate README for every route).

use std::collections::BTreeMap;
use std::sync::Arc;

use actix_web::Scope;
use actix_web::http::StatusCode;
use actix_web::web::{self, Bytes};
use actix_web::{HttpResponse, ResponseError};
use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::claims::{SUPEROFFICE_ISSUER, claim};
use crate::config::{TenantState, TenantVersion};
use crate::context::SimContext;
use crate::faults::{Fault, Faults, Group};
use crate::keys::{SigningKey, random_alphanumeric, random_base64};
use crate::modes::{Mode, Modes};
use crate::notify::{ChangeType, notify};
use crate::store::{Grant, GrantStatus, NotificationRecord, Records, Tenant};

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("unknown tenant {0}")]
    UnknownTenant(String),
    #[error("unknown application {0}")]
    UnknownApplication(String),
    #[error("unknown api host {0}")]
    UnknownHost(String),
    #[error("unknown fault group {0} (superid, exchange, state or api)")]
    UnknownGroup(String),
    #[error("application {client_id} is not installed on {context_id}")]
    NotInstalled {
        context_id: String,
        client_id: String,
    },
    #[error("bad request: {0}")]
    BadRequest(String),
    #[error("could not create a signing key: {0}")]
    Key(String),
}

impl ResponseError for AdminError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::UnknownTenant(_)
            | Self::UnknownApplication(_)
            | Self::UnknownHost(_)
            | Self::UnknownGroup(_)
            | Self::NotInstalled { .. } => StatusCode::NOT_FOUND,
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::Key(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        HttpResponse::build(self.status_code())
            .json(serde_json::json!({ "error": self.to_string() }))
    }
}

/// An application's standing on a tenant.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ApplicationView {
    pub client_id: String,
    pub installed: bool,
    pub status: Option<GrantStatus>,
    pub system_token: Option<String>,
}

/// A tenant as the admin API shows it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TenantView {
    pub context_id: String,
    pub company_name: String,
    pub serial: String,
    pub state: TenantState,
    pub is_running: bool,
    pub host: String,
    pub endpoint: String,
    #[serde(flatten)]
    pub version: TenantVersion,
    pub tickets_issued: u64,
    /// The current system user token of the first configured application, when installed.
    pub system_token: Option<String>,
    pub applications: Vec<ApplicationView>,
    pub companies: usize,
}

/// `GET /admin/records`.
#[derive(Debug, Clone, Serialize)]
pub struct RecordsView {
    #[serde(flatten)]
    pub records: Records,
    pub tickets_issued: BTreeMap<String, u64>,
}

/// The outcome of a state change, with the notifications it sent.
#[derive(Debug, Clone, Serialize)]
pub struct ChangeView {
    pub tenant: TenantView,
    pub notifications: Vec<NotificationRecord>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IssuedCredentialsView {
    /// Authorization codes, redeemed or not.
    #[serde(default)]
    pub authorization_codes: Vec<String>,
    pub tickets: Vec<String>,
    pub access_tokens: Vec<String>,
    pub refresh_tokens: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct KeysView {
    pub kid: String,
    pub public_key_pem: String,
    /// Every kid in the JWKS, current first.
    pub served_kids: Vec<String>,
}

/// What kind of SuperOffice-signed token `POST /admin/tokens` issues.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenKind {
    /// A state-change notification's token: issuer `SuperOffice AS`, the tenant in `ctx`.
    StateChange,
    /// What PartnerSystemUserService returns: a ticket, audience `spn:{serial}`.
    SystemUser,
    /// An OpenID Connect id_token of the tenant's first administrator, with a system user token.
    IdToken,
}

/// `POST /admin/tokens`: a token signed by SuperID's current key, issued without any flow, for tests that
/// present a genuine token somewhere it was not meant for.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenRequest {
    pub kind: TokenKind,
    pub context_id: String,
    /// The application it is for (any id: it need not be registered); the first configured one by default.
    #[serde(default)]
    pub client_id: Option<String>,
    /// State change: carry the audience `spn:{client_id}` (default true). Ignored for the other kinds.
    #[serde(default = "default_true")]
    pub audience: bool,
    /// Name a key no JWKS holds (a random `kid`, no `x5t`); still signed by SuperID's key.
    #[serde(default)]
    pub unknown_kid: bool,
    /// A `nonce` claim.
    #[serde(default)]
    pub nonce: Option<String>,
}

fn default_true() -> bool {
    true
}

impl TokenRequest {
    pub fn new(kind: TokenKind, context_id: &str) -> Self {
        Self {
            kind,
            context_id: context_id.to_owned(),
            client_id: None,
            audience: true,
            unknown_kid: false,
            nonce: None,
        }
    }
}

/// A token from `POST /admin/tokens` and the `kid` its header names.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IssuedToken {
    pub token: String,
    pub kid: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ClockView {
    pub now: DateTime<Utc>,
    pub offset_secs: i64,
}

/// In-process handle on the simulator's admin operations.
#[derive(Debug, Clone)]
pub struct Admin {
    ctx: Arc<SimContext>,
}

impl Admin {
    pub(crate) fn new(ctx: Arc<SimContext>) -> Self {
        Self { ctx }
    }

    fn view(&self, tenant: &Tenant) -> TenantView {
        let applications: Vec<ApplicationView> = self
            .ctx
            .applications
            .iter()
            .map(|app| {
                let grant = tenant.grants.get(&app.client_id);
                ApplicationView {
                    client_id: app.client_id.clone(),
                    installed: grant.is_some(),
                    status: grant.map(|g| g.status),
                    system_token: grant.map(|g| g.system_token.clone()),
                }
            })
            .collect();
        TenantView {
            context_id: tenant.context_id.clone(),
            company_name: tenant.company_name.clone(),
            serial: tenant.serial.clone(),
            state: tenant.state.clone(),
            is_running: tenant.state.is_running(),
            host: tenant.host.clone(),
            endpoint: self.ctx.tenant_endpoint(tenant),
            version: tenant.version.clone(),
            tickets_issued: tenant.tickets_issued,
            system_token: applications.first().and_then(|a| a.system_token.clone()),
            applications,
            companies: tenant.contacts.len(),
        }
    }

    /// Runs `f` on a tenant under the store lock and returns the tenant's view afterwards.
    fn with_tenant<T>(
        &self,
        context_id: &str,
        f: impl FnOnce(&mut Tenant) -> Result<T, AdminError>,
    ) -> Result<(T, TenantView), AdminError> {
        let mut store = self.ctx.store();
        let tenant = store
            .tenants
            .get_mut(context_id)
            .ok_or_else(|| AdminError::UnknownTenant(context_id.to_owned()))?;
        let result = f(tenant)?;
        Ok((result, self.view(tenant)))
    }

    fn known_app(&self, client_id: &str) -> Result<(), AdminError> {
        self.ctx
            .application(client_id)
            .map(|_| ())
            .ok_or_else(|| AdminError::UnknownApplication(client_id.to_owned()))
    }

    pub fn tenant(&self, context_id: &str) -> Result<TenantView, AdminError> {
        self.with_tenant(context_id, |_| Ok(())).map(|(_, v)| v)
    }

    pub fn tenants(&self) -> Vec<TenantView> {
        let store = self.ctx.store();
        store.tenants.values().map(|t| self.view(t)).collect()
    }

    pub fn records(&self) -> RecordsView {
        let store = self.ctx.store();
        RecordsView {
            records: store.records.clone(),
            tickets_issued: store.tickets_issued(),
        }
    }

    /// Every credential the simulator has handed out and still knows: authorization codes, tickets,
    /// access and refresh tokens.
    /// For leak tests (a partner's logs and database must contain none of them); never in a real SuperID.
    pub fn issued_credentials(&self) -> IssuedCredentialsView {
        let store = self.ctx.store();
        IssuedCredentialsView {
            authorization_codes: store.codes.keys().cloned().collect(),
            tickets: store.tickets.keys().cloned().collect(),
            access_tokens: store.access_tokens.keys().cloned().collect(),
            refresh_tokens: store.refresh_tokens.keys().cloned().collect(),
        }
    }

    /// Sets the application's standing on the tenant (Revoked, Expired, Denied, NeedsReapproval, Active).
    pub fn set_app_status(
        &self,
        context_id: &str,
        client_id: &str,
        status: GrantStatus,
    ) -> Result<TenantView, AdminError> {
        self.known_app(client_id)?;
        self.with_tenant(context_id, |tenant| {
            let grant =
                tenant
                    .grants
                    .get_mut(client_id)
                    .ok_or_else(|| AdminError::NotInstalled {
                        context_id: context_id.to_owned(),
                        client_id: client_id.to_owned(),
                    })?;
            grant.status = status;
            Ok(())
        })
        .map(|(_, v)| v)
    }

    pub fn revoke(&self, context_id: &str, client_id: &str) -> Result<TenantView, AdminError> {
        self.set_app_status(context_id, client_id, GrantStatus::Revoked)
    }

    /// An administrator approves (installs) the application again: a NEW system user token.
    pub fn reapprove(&self, context_id: &str, client_id: &str) -> Result<TenantView, AdminError> {
        let name = self
            .ctx
            .application(client_id)
            .map(|a| a.name.clone())
            .ok_or_else(|| AdminError::UnknownApplication(client_id.to_owned()))?;
        self.with_tenant(context_id, |tenant| {
            tenant
                .grants
                .insert(client_id.to_owned(), Grant::new(&name));
            Ok(())
        })
        .map(|(_, v)| v)
    }

    /// Changes the tenant's state; suspend, resume and delete notify the installed applications.
    pub async fn set_state(
        &self,
        context_id: &str,
        state: TenantState,
    ) -> Result<ChangeView, AdminError> {
        let (old, _) = self.with_tenant(context_id, |tenant| {
            Ok(std::mem::replace(&mut tenant.state, state.clone()))
        })?;
        let change = match state {
            _ if old == state => None,
            TenantState::Suspended => Some(ChangeType::Suspend),
            TenantState::Deleted => Some(ChangeType::Delete),
            TenantState::Running => Some(ChangeType::Resume),
            _ => None,
        };
        self.notify_change(context_id, change, None).await
    }

    /// Moves the tenant to another API host; the old host answers 421 from now on.
    pub async fn move_tenant(
        &self,
        context_id: &str,
        host: &str,
    ) -> Result<ChangeView, AdminError> {
        let public_endpoint = self.public_endpoint(host)?;
        self.with_tenant(context_id, |tenant| {
            tenant.host = host.to_owned();
            Ok(())
        })?;
        self.notify_change(context_id, Some(ChangeType::Move), Some(public_endpoint))
            .await
    }

    /// An API host as a move notification names it: the `host:port` of its URL.
    fn public_endpoint(&self, host: &str) -> Result<String, AdminError> {
        let url = self
            .ctx
            .host_url(host)
            .ok_or_else(|| AdminError::UnknownHost(host.to_owned()))?;
        let endpoint = url::Url::parse(url).ok().and_then(|u| {
            let host = u.host_str()?.to_owned();
            Some(match u.port() {
                Some(port) => format!("{host}:{port}"),
                None => host,
            })
        });
        Ok(endpoint.unwrap_or_else(|| url.to_owned()))
    }

    /// The tenant is upgraded to a new version (notification ChangeType 0).
    pub async fn upgrade(
        &self,
        context_id: &str,
        version_name: Option<String>,
        file_version: Option<String>,
    ) -> Result<ChangeView, AdminError> {
        self.with_tenant(context_id, |tenant| {
            if let Some(v) = version_name {
                tenant.version.version_name = v;
            }
            if let Some(v) = file_version {
                tenant.version.file_version = v;
            }
            Ok(())
        })?;
        self.notify_change(context_id, Some(ChangeType::Upgrade), None)
            .await
    }

    /// A backup of the tenant was restored (notification ChangeType 1).
    pub async fn backup_restored(&self, context_id: &str) -> Result<ChangeView, AdminError> {
        self.tenant(context_id)?;
        self.notify_change(context_id, Some(ChangeType::BackupRestored), None)
            .await
    }

    async fn notify_change(
        &self,
        context_id: &str,
        change: Option<ChangeType>,
        public_endpoint: Option<String>,
    ) -> Result<ChangeView, AdminError> {
        let notifications = match change {
            Some(change) => notify(&self.ctx, context_id, change, public_endpoint).await,
            None => Vec::new(),
        };
        Ok(ChangeView {
            tenant: self.tenant(context_id)?,
            notifications,
        })
    }

    /// Signs a token of the requested kind with SuperID's current key.
    pub fn issue_token(&self, request: &TokenRequest) -> Result<IssuedToken, AdminError> {
        let client_id = match &request.client_id {
            Some(id) => id.clone(),
            None => self
                .ctx
                .applications
                .first()
                .map(|a| a.client_id.clone())
                .ok_or_else(|| AdminError::BadRequest("no application is configured".into()))?,
        };
        let now = self.ctx.clock.now().timestamp();
        let store = self.ctx.store();
        let tenant = store
            .tenants
            .get(&request.context_id)
            .ok_or_else(|| AdminError::UnknownTenant(request.context_id.clone()))?;
        let ctx_id = tenant.context_id.as_str();
        let endpoint = self.ctx.tenant_endpoint(tenant);
        let mut claims = serde_json::Map::new();
        let mut put = |name: String, value: serde_json::Value| {
            claims.insert(name, value);
        };
        put(claim("ctx"), json!(ctx_id));
        put("iat".into(), json!(now));
        put("nbf".into(), json!(now - 60));
        put("exp".into(), json!(now + 300));
        match request.kind {
            TokenKind::StateChange => {
                put("sub".into(), json!(ctx_id));
                put("iss".into(), json!(SUPEROFFICE_ISSUER));
                if request.audience {
                    put("aud".into(), json!(format!("spn:{client_id}")));
                }
            }
            TokenKind::SystemUser => {
                put("iss".into(), json!(SUPEROFFICE_ISSUER));
                put("aud".into(), json!(format!("spn:{}", tenant.serial)));
                put(claim("serial"), json!(tenant.serial));
                put(claim("ticket"), json!(format!("7T:{}", random_base64(48))));
                put(claim("company_name"), json!(tenant.company_name));
                put(claim("webapi_url"), json!(format!("{endpoint}/api/")));
                put(
                    claim("netserver_url"),
                    json!(format!("{endpoint}/Remote/Services88/")),
                );
            }
            TokenKind::IdToken => {
                let user = self
                    .ctx
                    .users
                    .iter()
                    .find(|u| u.tenant == ctx_id && u.is_administrator)
                    .ok_or_else(|| {
                        AdminError::BadRequest(format!("{ctx_id} has no administrator"))
                    })?;
                put("sub".into(), json!(user.username));
                put("iss".into(), json!(self.ctx.superid.url));
                put("aud".into(), json!(client_id));
                put(claim("upn"), json!(user.username));
                put(claim("email"), json!(user.email()));
                put(claim("is_administrator"), json!("True"));
                put(claim("associateid"), json!(user.associate_id.to_string()));
                put(claim("serial"), json!(tenant.serial));
                put(claim("company_name"), json!(tenant.company_name));
                put(claim("webapi_url"), json!(format!("{endpoint}/api/")));
                let system_token = tenant.grants.get(&client_id).map_or_else(
                    || format!("Another App-{}", random_alphanumeric(10)),
                    |g| g.system_token.clone(),
                );
                put(claim("system_token"), json!(system_token));
            }
        }
        if let Some(nonce) = &request.nonce {
            put("nonce".into(), json!(nonce));
        }
        let key = Arc::clone(&store.signing_key);
        drop(store);
        let kid = if request.unknown_kid {
            format!("UNKNOWN{}", random_alphanumeric(20).to_uppercase())
        } else {
            key.kid().to_owned()
        };
        let signed = if request.unknown_kid {
            key.sign_as(&kid, &claims)
        } else {
            key.sign(&claims)
        };
        let token = signed.map_err(|e| AdminError::Key(e.to_string()))?;
        Ok(IssuedToken { token, kid })
    }

    pub fn keys(&self) -> KeysView {
        let store = self.ctx.store();
        KeysView {
            kid: store.signing_key.kid().to_owned(),
            public_key_pem: store.signing_key.public_pem().to_owned(),
            served_kids: std::iter::once(&store.signing_key)
                .chain(store.old_keys.iter())
                .map(|k| k.kid().to_owned())
                .collect(),
        }
    }

    /// A new SuperID signing key (new kid). With `keep_old` the previous key stays in the JWKS.
    pub async fn rotate_key(&self, keep_old: bool) -> Result<KeysView, AdminError> {
        let key = tokio::task::spawn_blocking(SigningKey::generate)
            .await
            .map_err(|e| AdminError::Key(e.to_string()))?
            .map_err(|e| AdminError::Key(e.to_string()))?;
        {
            let mut store = self.ctx.store();
            let old = std::mem::replace(&mut store.signing_key, Arc::new(key));
            if keep_old {
                store.old_keys.insert(0, old);
            } else {
                store.old_keys.clear();
            }
        }
        Ok(self.keys())
    }

    pub fn clock(&self) -> ClockView {
        ClockView {
            now: self.ctx.clock.now(),
            offset_secs: self.ctx.clock.offset_secs(),
        }
    }

    /// Moves the sim clock forward (negative: back).
    pub fn advance_clock(&self, secs: i64) -> ClockView {
        self.ctx.clock.advance(secs);
        self.clock()
    }

    /// Sets the sim clock's distance from real time.
    pub fn set_clock_offset(&self, secs: i64) -> ClockView {
        self.ctx.clock.set_offset(secs);
        self.clock()
    }

    pub fn faults(&self) -> Faults {
        self.ctx.store().faults.clone()
    }

    pub fn set_fault(&self, group: Group, fault: Fault) {
        self.ctx.store().faults.set(group, fault);
    }

    /// Clears one group's fault, or all of them.
    pub fn clear_faults(&self, group: Option<Group>) {
        self.ctx.store().faults.clear(group);
    }

    /// Everything back to the state at start.
    pub fn reset(&self) {
        self.ctx.reset();
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct StatusBody {
    status: GrantStatus,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct StateBody {
    state: TenantState,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MoveBody {
    host: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct UpgradeBody {
    version_name: Option<String>,
    file_version: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RotateBody {
    #[serde(default)]
    keep_old: bool,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ClockBody {
    advance_secs: Option<i64>,
    offset_secs: Option<i64>,
}

/// A JSON body; an empty or `null` body is `default` when there is one.
fn json_body<T: DeserializeOwned>(bytes: &Bytes, default: Option<T>) -> Result<T, AdminError> {
    let text = String::from_utf8_lossy(bytes);
    let empty = matches!(text.trim(), "" | "null");
    match default {
        Some(default) if empty => Ok(default),
        _ => serde_json::from_slice(bytes).map_err(|e| AdminError::BadRequest(e.to_string())),
    }
}

fn group(name: &str) -> Result<Group, AdminError> {
    Group::parse(name).ok_or_else(|| AdminError::UnknownGroup(name.to_owned()))
}

type Reply = Result<HttpResponse, AdminError>;

fn ok<T: Serialize>(value: T) -> Reply {
    Ok(HttpResponse::Ok().json(value))
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/admin")
            .route("/records", web::get().to(get_records))
            .route("/credentials", web::get().to(get_credentials))
            .route("/tenants", web::get().to(get_tenants))
            .service(tenant_scope())
            .route("/tokens", web::post().to(post_token))
            .route("/keys", web::get().to(get_keys))
            .route("/keys/rotate", web::post().to(post_rotate))
            .route("/clock", web::get().to(get_clock))
            .route("/clock", web::post().to(post_clock))
            .route("/faults", web::get().to(get_faults))
            .route("/faults", web::delete().to(delete_faults))
            .route("/faults/{group}", web::put().to(put_fault))
            .route("/faults/{group}", web::delete().to(delete_fault))
            .route("/reset", web::post().to(post_reset))
            .service(modes_scope()),
    );
}

/// `/admin/tenants/{ctx}`: one tenant, its lifecycle and its applications.
fn tenant_scope() -> Scope {
    web::scope("/tenants/{ctx}")
        .route("", web::get().to(get_tenant))
        .route("/apps/{client_id}/revoke", web::post().to(post_revoke))
        .route(
            "/apps/{client_id}/reapprove",
            web::post().to(post_reapprove),
        )
        .route("/apps/{client_id}/status", web::post().to(post_status))
        .route("/state", web::post().to(post_state))
        .route("/move", web::post().to(post_move))
        .route("/upgrade", web::post().to(post_upgrade))
        .route("/backup-restored", web::post().to(post_backup_restored))
}

/// `/admin/modes`: `GET` shows them, `PUT` sets the global mode, `DELETE` clears all;
/// `PUT /admin/modes/{ctx}` sets one tenant's.
fn modes_scope() -> Scope {
    web::scope("/modes")
        .route("", web::get().to(get_modes))
        .route("", web::put().to(put_global_mode))
        .route("", web::delete().to(delete_modes))
        .route("/{ctx}", web::put().to(put_tenant_mode))
}

fn admin(ctx: &web::Data<SimContext>) -> Admin {
    Admin::new(ctx.clone().into_inner())
}

async fn get_records(ctx: web::Data<SimContext>) -> Reply {
    ok(admin(&ctx).records())
}

async fn get_credentials(ctx: web::Data<SimContext>) -> Reply {
    ok(admin(&ctx).issued_credentials())
}

async fn get_tenants(ctx: web::Data<SimContext>) -> Reply {
    ok(admin(&ctx).tenants())
}

async fn get_tenant(ctx: web::Data<SimContext>, path: web::Path<String>) -> Reply {
    ok(admin(&ctx).tenant(&path)?)
}

async fn post_revoke(ctx: web::Data<SimContext>, path: web::Path<(String, String)>) -> Reply {
    ok(admin(&ctx).revoke(&path.0, &path.1)?)
}

async fn post_reapprove(ctx: web::Data<SimContext>, path: web::Path<(String, String)>) -> Reply {
    ok(admin(&ctx).reapprove(&path.0, &path.1)?)
}

async fn post_status(
    ctx: web::Data<SimContext>,
    path: web::Path<(String, String)>,
    body: Bytes,
) -> Reply {
    let body: StatusBody = json_body(&body, None)?;
    ok(admin(&ctx).set_app_status(&path.0, &path.1, body.status)?)
}

async fn post_state(ctx: web::Data<SimContext>, path: web::Path<String>, body: Bytes) -> Reply {
    let body: StateBody = json_body(&body, None)?;
    ok(admin(&ctx).set_state(&path, body.state).await?)
}

async fn post_move(ctx: web::Data<SimContext>, path: web::Path<String>, body: Bytes) -> Reply {
    let body: MoveBody = json_body(&body, None)?;
    ok(admin(&ctx).move_tenant(&path, &body.host).await?)
}

async fn post_upgrade(ctx: web::Data<SimContext>, path: web::Path<String>, body: Bytes) -> Reply {
    let body: UpgradeBody = json_body(&body, Some(UpgradeBody::default()))?;
    ok(admin(&ctx)
        .upgrade(&path, body.version_name, body.file_version)
        .await?)
}

async fn post_backup_restored(ctx: web::Data<SimContext>, path: web::Path<String>) -> Reply {
    ok(admin(&ctx).backup_restored(&path).await?)
}

async fn post_token(ctx: web::Data<SimContext>, body: Bytes) -> Reply {
    let request: TokenRequest = json_body(&body, None)?;
    ok(admin(&ctx).issue_token(&request)?)
}

async fn get_keys(ctx: web::Data<SimContext>) -> Reply {
    ok(admin(&ctx).keys())
}

async fn post_rotate(ctx: web::Data<SimContext>, body: Bytes) -> Reply {
    let body: RotateBody = json_body(&body, Some(RotateBody::default()))?;
    ok(admin(&ctx).rotate_key(body.keep_old).await?)
}

async fn get_clock(ctx: web::Data<SimContext>) -> Reply {
    ok(admin(&ctx).clock())
}

async fn post_clock(ctx: web::Data<SimContext>, body: Bytes) -> Reply {
    let body: ClockBody = json_body(&body, None)?;
    let admin = admin(&ctx);
    match (body.advance_secs, body.offset_secs) {
        (Some(secs), None) => ok(admin.advance_clock(secs)),
        (None, Some(secs)) => ok(admin.set_clock_offset(secs)),
        _ => Err(AdminError::BadRequest(
            "give exactly one of advance_secs and offset_secs".into(),
        )),
    }
}

async fn get_faults(ctx: web::Data<SimContext>) -> Reply {
    ok(admin(&ctx).faults())
}

async fn put_fault(ctx: web::Data<SimContext>, path: web::Path<String>, body: Bytes) -> Reply {
    let group = group(&path)?;
    let fault: Fault = json_body(&body, None)?;
    if !(0.0..=1.0).contains(&fault.fail_share) {
        return Err(AdminError::BadRequest(
            "fail_share must be within 0.0..=1.0".into(),
        ));
    }
    let admin = admin(&ctx);
    admin.set_fault(group, fault);
    ok(admin.faults())
}

async fn delete_fault(ctx: web::Data<SimContext>, path: web::Path<String>) -> Reply {
    let group = group(&path)?;
    let admin = admin(&ctx);
    admin.clear_faults(Some(group));
    ok(admin.faults())
}

async fn delete_faults(ctx: web::Data<SimContext>) -> Reply {
    let admin = admin(&ctx);
    admin.clear_faults(None);
    ok(admin.faults())
}

async fn post_reset(ctx: web::Data<SimContext>) -> Reply {
    let admin = admin(&ctx);
    admin.reset();
    ok(admin.tenants())
}

// Unfaithful modes (see `modes`): how the simulator departs on purpose from its own habits.

impl Admin {
    pub fn modes(&self) -> Modes {
        self.ctx.store().modes.clone()
    }

    /// Sets the global mode, or the mode of one tenant (which must exist).
    pub fn set_mode(&self, tenant: Option<&str>, mode: Mode) -> Result<Modes, AdminError> {
        let mut store = self.ctx.store();
        match tenant {
            None => {
                store.modes.global = mode;
                // A global `rotate_keys_withdrawn` set again rotates again.
                store.mode_rotated = false;
            }
            Some(ctx) => {
                if !store.tenants.contains_key(ctx) {
                    return Err(AdminError::UnknownTenant(ctx.to_owned()));
                }
                store.modes.tenants.insert(ctx.to_owned(), mode);
            }
        }
        Ok(store.modes.clone())
    }

    /// Back to a faithful simulator: no mode, globally or for any tenant.
    pub fn clear_modes(&self) -> Modes {
        let mut store = self.ctx.store();
        store.modes = Modes::default();
        store.mode_rotated = false;
        store.modes.clone()
    }
}

async fn get_modes(ctx: web::Data<SimContext>) -> Reply {
    ok(admin(&ctx).modes())
}

async fn put_global_mode(ctx: web::Data<SimContext>, body: Bytes) -> Reply {
    let mode: Mode = json_body(&body, None)?;
    ok(admin(&ctx).set_mode(None, mode)?)
}

async fn put_tenant_mode(
    ctx: web::Data<SimContext>,
    path: web::Path<String>,
    body: Bytes,
) -> Reply {
    let mode: Mode = json_body(&body, None)?;
    ok(admin(&ctx).set_mode(Some(&path), mode)?)
}

async fn delete_modes(ctx: web::Data<SimContext>) -> Reply {
    ok(admin(&ctx).clear_modes())
}
