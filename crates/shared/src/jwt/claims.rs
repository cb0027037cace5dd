//! The claims SuperOffice puts in its JWTs (protocol §3.3, §6.2), typed.
//!
//! SuperOffice's own claims are namespaced under `http://schemes.superoffice.net/identity/` and every value
//! is a string, booleans (`"True"`) and ids (`"5"`) included. `iat` is a number in real tokens and a string
//! in the documentation's example; both are read.

use std::fmt;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};
use url::Url;

use crate::domain::{ContextId, SystemUserToken, Ticket};
use crate::jwt::JwtError;

/// The namespace of SuperOffice's custom claims.
pub const CLAIM_PREFIX: &str = "http://schemes.superoffice.net/identity/";

/// What the validated token says, grouped by what each claim is about. `Debug` redacts the system user
/// token and the ticket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SuperOfficeClaims {
    pub token: TokenClaims,
    pub tenant: TenantClaims,
    pub user: UserClaims,
    pub associate: AssociateClaims,
    pub credentials: CredentialClaims,
}

impl SuperOfficeClaims {
    /// Reads the claims of a payload whose signature has been checked.
    pub(crate) fn from_payload(payload: &Map<String, Value>) -> Result<Self, JwtError> {
        let claims = Claims(payload);
        let context = claims.custom("ctx")?.ok_or(JwtError::MissingClaim("ctx"))?;
        let context_id = ContextId::parse(context)
            .map_err(|_| JwtError::Malformed("claim ctx is not a context identifier".into()))?;
        Ok(Self {
            token: TokenClaims {
                issuer: claims.string("iss")?.unwrap_or_default().to_owned(),
                audience: claims.audience()?,
                nonce: claims.owned("nonce")?,
                issued_at: claims.time("iat")?,
                not_before: claims.time("nbf")?,
                expires_at: claims.time("exp")?.ok_or(JwtError::MissingClaim("exp"))?,
            },
            tenant: TenantClaims {
                context_id,
                serial: claims.custom_owned("serial")?,
                company_name: claims.custom_owned("company_name")?,
                urls: TenantUrls {
                    webapi_url: claims.url("webapi_url")?,
                    netserver_url: claims.url("netserver_url")?,
                },
            },
            user: UserClaims {
                subject: claims.owned("sub")?,
                upn: claims.custom_owned("upn")?,
                email: claims.custom_owned("email")?,
                identity_provider: claims.custom_owned("identityprovider")?,
            },
            associate: AssociateClaims {
                name: PersonName {
                    first: claims.custom_owned("firstname")?,
                    last: claims.custom_owned("lastname")?,
                    initials: claims.custom_owned("initials")?,
                },
                id: claims
                    .custom("associateid")?
                    .map(|v| v.trim().parse::<i64>())
                    .transpose()
                    .map_err(|_| JwtError::Malformed("claim associateid is not a number".into()))?,
                is_administrator: claims
                    .custom("is_administrator")?
                    .is_some_and(|v| v.trim().eq_ignore_ascii_case("true")),
                primary_email: claims.custom_owned("so_primary_email_address")?,
            },
            credentials: CredentialClaims {
                system_token: claims.custom_parsed("system_token", SystemUserToken::parse)?,
                ticket: claims.custom_parsed("ticket", Ticket::parse)?,
            },
        })
    }

    /// The claims as JSON for operators: the system user token and the ticket show as `"[REDACTED]"` when
    /// present (and `null` when absent), so the output can be pasted into a ticket or a log.
    pub fn redacted_json(&self) -> Value {
        let Self {
            token,
            tenant,
            user,
            associate,
            credentials,
        } = self;
        let redacted = |present: bool| present.then_some("[REDACTED]");
        let url = |url: &Option<Url>| url.as_ref().map(Url::as_str).map(str::to_owned);
        let time = |time: Option<DateTime<Utc>>| time.map(|t| t.to_rfc3339());
        json!({
            "issuer": token.issuer,
            "audience": token.audience,
            "subject": user.subject,
            "context_id": tenant.context_id.as_str(),
            "serial": tenant.serial,
            "company_name": tenant.company_name,
            "email": user.email,
            "upn": user.upn,
            "associate_id": associate.id,
            "is_administrator": associate.is_administrator,
            "identity_provider": user.identity_provider,
            "initials": associate.name.initials,
            "first_name": associate.name.first,
            "last_name": associate.name.last,
            "primary_email": associate.primary_email,
            "webapi_url": url(&tenant.urls.webapi_url),
            "netserver_url": url(&tenant.urls.netserver_url),
            "system_token": redacted(credentials.system_token.is_some()),
            "ticket": redacted(credentials.ticket.is_some()),
            "nonce": token.nonce,
            "issued_at": time(token.issued_at),
            "not_before": time(token.not_before),
            "expires_at": token.expires_at.to_rfc3339(),
        })
    }
}

/// The token's own claims (RFC 7519, OpenID Connect): who issued it, for whom, for which sign-in
/// request, and when it is valid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenClaims {
    pub issuer: String,
    pub audience: Vec<String>,
    pub nonce: Option<String>,
    pub issued_at: Option<DateTime<Utc>>,
    pub not_before: Option<DateTime<Utc>>,
    pub expires_at: DateTime<Utc>,
}

/// Where a tenant's APIs are, as SuperID says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantUrls {
    /// The REST API's base.
    pub webapi_url: Option<Url>,
    /// The SOAP (NetServer) services' base.
    pub netserver_url: Option<Url>,
}

/// The tenant the token is about, and where its APIs are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantClaims {
    /// `ctx`.
    pub context_id: ContextId,
    /// `serial`: the tenant database's serial; the system-user JWT's audience is `spn:{serial}`.
    pub serial: Option<String>,
    pub company_name: Option<String>,
    pub urls: TenantUrls,
}

/// The user's SuperID account: the names SuperID knows them by, and where they signed in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserClaims {
    /// `sub`: the SuperID user name (an e-mail address) for sign-ins.
    pub subject: Option<String>,
    pub upn: Option<String>,
    pub email: Option<String>,
    pub identity_provider: Option<String>,
}

impl UserClaims {
    /// The name the user is best recognised by: the UPN, else the e-mail address, else `sub`.
    pub fn login_name(&self) -> Option<&str> {
        self.upn
            .as_deref()
            .or(self.email.as_deref())
            .or(self.subject.as_deref())
    }
}

/// A person's name as the tenant holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PersonName {
    pub first: Option<String>,
    pub last: Option<String>,
    pub initials: Option<String>,
}

impl PersonName {
    /// `"{first} {last}"`, when both are known.
    pub fn full(&self) -> Option<String> {
        let (first, last) = self.first.as_ref().zip(self.last.as_ref())?;
        Some(format!("{first} {last}"))
    }
}

/// The user as the tenant knows them: their associate, by its person's name and its id, its rights, and
/// the person's e-mail address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssociateClaims {
    pub name: PersonName,
    /// `associateid`.
    pub id: Option<i64>,
    pub is_administrator: bool,
    /// `so_primary_email_address`.
    pub primary_email: Option<String>,
}

/// The credentials the token carries. `Debug` redacts them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredentialClaims {
    /// Present when an administrator approved an app registered for system user access.
    pub system_token: Option<SystemUserToken>,
    /// The system user ticket (system-user JWT) or the user's ticket (legacy federated post).
    pub ticket: Option<Ticket>,
}

/// Typed reads of a JWT payload; a claim of the wrong JSON type is an error naming it.
pub(crate) struct Claims<'a>(pub(crate) &'a Map<String, Value>);

impl<'a> Claims<'a> {
    pub(crate) fn string(&self, name: &str) -> Result<Option<&'a str>, JwtError> {
        match self.0.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.as_str())),
            Some(_) => Err(JwtError::Malformed(format!(
                "claim {} is not a string",
                short_name(name)
            ))),
        }
    }

    fn owned(&self, name: &str) -> Result<Option<String>, JwtError> {
        Ok(self.string(name)?.map(str::to_owned))
    }

    fn custom(&self, suffix: &str) -> Result<Option<&'a str>, JwtError> {
        self.string(&format!("{CLAIM_PREFIX}{suffix}"))
    }

    fn custom_owned(&self, suffix: &str) -> Result<Option<String>, JwtError> {
        Ok(self.custom(suffix)?.map(str::to_owned))
    }

    /// A custom claim read by `parse`, whose refusal is given with the claim's name.
    fn custom_parsed<T, E: fmt::Display>(
        &self,
        suffix: &str,
        parse: impl FnOnce(&'a str) -> Result<T, E>,
    ) -> Result<Option<T>, JwtError> {
        self.custom(suffix)?
            .map(parse)
            .transpose()
            .map_err(|e| JwtError::Malformed(format!("claim {suffix}: {e}")))
    }

    fn url(&self, suffix: &str) -> Result<Option<Url>, JwtError> {
        self.custom(suffix)?
            .map(|v| Url::parse(v.trim()))
            .transpose()
            .map_err(|_| JwtError::Malformed(format!("claim {suffix} is not a URL")))
    }

    /// `aud`: a string or an array of strings.
    pub(crate) fn audience(&self) -> Result<Vec<String>, JwtError> {
        let malformed =
            || JwtError::Malformed("claim aud is not a string or a list of strings".into());
        match self.0.get("aud") {
            None | Some(Value::Null) => Ok(Vec::new()),
            Some(Value::String(s)) => Ok(vec![s.clone()]),
            Some(Value::Array(items)) => items
                .iter()
                .map(|item| item.as_str().map(str::to_owned).ok_or_else(malformed))
                .collect(),
            Some(_) => Err(malformed()),
        }
    }

    /// A NumericDate (seconds since the epoch) as a JSON number or a string of digits.
    pub(crate) fn time(&self, name: &'static str) -> Result<Option<DateTime<Utc>>, JwtError> {
        let malformed = || JwtError::Malformed(format!("claim {name} is not a time in seconds"));
        let seconds = match self.0.get(name) {
            None | Some(Value::Null) => return Ok(None),
            Some(Value::Number(n)) => match n.as_i64() {
                Some(s) => s,
                None => n
                    .as_f64()
                    .filter(|f| f.is_finite())
                    .ok_or_else(malformed)?
                    .floor() as i64,
            },
            Some(Value::String(s)) => s.trim().parse::<i64>().map_err(|_| malformed())?,
            Some(_) => return Err(malformed()),
        };
        DateTime::from_timestamp(seconds, 0)
            .map(Some)
            .ok_or_else(malformed)
    }
}

fn short_name(name: &str) -> &str {
    name.strip_prefix(CLAIM_PREFIX).unwrap_or(name)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
pub(crate) mod tests {
    use super::*;

    /// Protocol §3.3: the documentation's example id_token payload, verbatim (`iat` is a string there).
    pub(crate) const DOCS_EXAMPLE: &str = r#"{
      "sub": "tony@superoffice.com",
      "http://schemes.superoffice.net/identity/associateid": "5",
      "http://schemes.superoffice.net/identity/identityprovider": "central-superid",
      "http://schemes.superoffice.net/identity/email": "tony@superoffice.com",
      "http://schemes.superoffice.net/identity/upn": "tony@superoffice.com",
      "http://schemes.superoffice.net/identity/is_administrator": "False",
      "http://schemes.superoffice.net/identity/ctx": "Cust26759",
      "http://schemes.superoffice.net/identity/company_name": "Tonys Developer Network",
      "http://schemes.superoffice.net/identity/serial": "1801550193",
      "http://schemes.superoffice.net/identity/netserver_url": "https://sod.superoffice.com/Cust26759/Remote/Services86/",
      "http://schemes.superoffice.net/identity/webapi_url": "https://sod.superoffice.com/Cust26759/api/",
      "http://schemes.superoffice.net/identity/system_token": "SuperOffice DevNet Node OIDC-8k8Q7DmBgo",
      "iat": "1581665207",
      "http://schemes.superoffice.net/identity/initials": "TY",
      "http://schemes.superoffice.net/identity/so_primary_email_address": "tony@superoffice.com",
      "nonce": "637172620046685267.NmU2ZmRjNTctYjU0ZS00ZDRlLThkNjgtOTBlZmY2N2QyYjc3MzYzZWE1YjctYTUxYS00NDM1LWE1YTEtNDEzYTMxNTgxMzA0",
      "nbf": 1581665147,
      "exp": 1581665507,
      "iss": "https://sod.superoffice.com",
      "aud": "6cf25376616343b38d14ddcd804f2891"
    }"#;

    fn parse(text: &str) -> Result<SuperOfficeClaims, JwtError> {
        let value: Value = serde_json::from_str(text).unwrap();
        SuperOfficeClaims::from_payload(value.as_object().unwrap())
    }

    #[test]
    fn the_docs_example_payload_is_read() {
        let claims = parse(DOCS_EXAMPLE).unwrap();
        assert_eq!(claims.user.subject.as_deref(), Some("tony@superoffice.com"));
        assert_eq!(claims.tenant.context_id.as_str(), "Cust26759");
        assert_eq!(claims.tenant.serial.as_deref(), Some("1801550193"));
        assert_eq!(claims.associate.id, Some(5));
        assert!(!claims.associate.is_administrator);
        assert_eq!(
            claims.tenant.company_name.as_deref(),
            Some("Tonys Developer Network")
        );
        assert_eq!(
            claims.user.identity_provider.as_deref(),
            Some("central-superid")
        );
        assert_eq!(claims.associate.name.initials.as_deref(), Some("TY"));
        assert_eq!(
            claims.tenant.urls.webapi_url.as_ref().map(Url::as_str),
            Some("https://sod.superoffice.com/Cust26759/api/")
        );
        assert_eq!(
            claims
                .credentials
                .system_token
                .as_ref()
                .map(SystemUserToken::expose),
            Some("SuperOffice DevNet Node OIDC-8k8Q7DmBgo")
        );
        assert!(claims.credentials.ticket.is_none());
        assert_eq!(claims.token.issued_at.unwrap().timestamp(), 1_581_665_207);
        assert_eq!(claims.token.not_before.unwrap().timestamp(), 1_581_665_147);
        assert_eq!(claims.token.expires_at.timestamp(), 1_581_665_507);
        assert_eq!(
            claims.token.audience,
            vec!["6cf25376616343b38d14ddcd804f2891".to_owned()]
        );
        assert!(!format!("{claims:?}").contains("8k8Q7DmBgo"));
    }

    #[test]
    fn redacted_json_hides_the_secrets() {
        let claims = parse(DOCS_EXAMPLE).unwrap();
        let json = claims.redacted_json();
        assert_eq!(json["system_token"], "[REDACTED]");
        assert_eq!(json["ticket"], Value::Null);
        assert_eq!(json["context_id"], "Cust26759");
        assert!(!json.to_string().contains("8k8Q7DmBgo"));
    }

    /// `partner-service verify-jwt` prints this for the documentation's example; operators read it by
    /// these keys, so every key and value form stays.
    #[test]
    fn redacted_json_of_the_docs_example_is_unchanged() {
        let expected: Value = serde_json::from_str(include_str!(
            "../../testdata/docs-example-claims.redacted.json"
        ))
        .unwrap();
        assert_eq!(parse(DOCS_EXAMPLE).unwrap().redacted_json(), expected);
    }

    #[test]
    fn the_user_is_named_by_full_name_then_login_name() {
        let mut payload: Value = serde_json::from_str(DOCS_EXAMPLE).unwrap();
        let members = payload.as_object_mut().unwrap();
        let claims = SuperOfficeClaims::from_payload(members).unwrap();
        assert_eq!(claims.associate.name.full(), None);
        assert_eq!(claims.user.login_name(), Some("tony@superoffice.com"));

        members.remove(&format!("{CLAIM_PREFIX}upn"));
        members.insert(format!("{CLAIM_PREFIX}email"), json!("t@example.com"));
        members.insert(format!("{CLAIM_PREFIX}firstname"), json!("Tony"));
        members.insert(format!("{CLAIM_PREFIX}lastname"), json!("Y"));
        let claims = SuperOfficeClaims::from_payload(members).unwrap();
        assert_eq!(claims.associate.name.full().as_deref(), Some("Tony Y"));
        assert_eq!(
            claims.user.login_name(),
            Some("t@example.com"),
            "no upn: the e-mail"
        );

        members.remove(&format!("{CLAIM_PREFIX}email"));
        let claims = SuperOfficeClaims::from_payload(members).unwrap();
        assert_eq!(
            claims.user.login_name(),
            Some("tony@superoffice.com"),
            "then sub"
        );
    }

    #[test]
    fn iat_as_number_and_administrator_true() {
        let text = DOCS_EXAMPLE
            .replace("\"iat\": \"1581665207\"", "\"iat\": 1581665207")
            .replace("\"False\"", "\"True\"");
        let claims = parse(&text).unwrap();
        assert_eq!(claims.token.issued_at.unwrap().timestamp(), 1_581_665_207);
        assert!(claims.associate.is_administrator);
    }

    #[test]
    fn wrong_types_and_missing_claims_are_named() {
        let no_ctx = DOCS_EXAMPLE.replace("identity/ctx", "identity/context");
        assert_eq!(parse(&no_ctx).unwrap_err(), JwtError::MissingClaim("ctx"));
        let no_exp = DOCS_EXAMPLE.replace("\"exp\"", "\"expiry\"");
        assert_eq!(parse(&no_exp).unwrap_err(), JwtError::MissingClaim("exp"));
        let bad_iat = DOCS_EXAMPLE.replace("\"1581665207\"", "\"yesterday\"");
        assert!(parse(&bad_iat).unwrap_err().to_string().contains("iat"));
        let bad_ctx = DOCS_EXAMPLE.replace("\"Cust26759\"", "\"../etc\"");
        assert!(parse(&bad_ctx).unwrap_err().to_string().contains("ctx"));
        let numeric_serial = DOCS_EXAMPLE.replace("\"1801550193\"", "1801550193");
        assert!(
            parse(&numeric_serial)
                .unwrap_err()
                .to_string()
                .contains("serial")
        );
    }
}
