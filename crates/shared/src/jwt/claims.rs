//! The claims SuperOffice puts in its JWTs (protocol §3.3, §6.2), typed.
//!
//! SuperOffice's own claims are namespaced under `http://schemes.superoffice.net/identity/` and every value
//! is a string, booleans (`"True"`) and ids (`"5"`) included. `iat` is a number in real tokens and a string
//! in the documentation's example; both are read.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};
use url::Url;

use crate::domain::{ContextId, SystemUserToken, Ticket};
use crate::jwt::JwtError;

/// The namespace of SuperOffice's custom claims.
pub const CLAIM_PREFIX: &str = "http://schemes.superoffice.net/identity/";

/// What the validated token says. `Debug` redacts the system user token and the ticket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SuperOfficeClaims {
    pub issuer: String,
    pub audience: Vec<String>,
    /// `sub`: the SuperID user name (an e-mail address) for sign-ins.
    pub subject: Option<String>,
    /// `ctx`: the tenant.
    pub context_id: ContextId,
    /// `serial`: the tenant database's serial; the system-user JWT's audience is `spn:{serial}`.
    pub serial: Option<String>,
    pub company_name: Option<String>,
    pub email: Option<String>,
    pub upn: Option<String>,
    pub associate_id: Option<i64>,
    pub is_administrator: bool,
    pub identity_provider: Option<String>,
    pub initials: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub primary_email: Option<String>,
    pub webapi_url: Option<Url>,
    pub netserver_url: Option<Url>,
    /// Present when an administrator approved an app registered for system user access.
    pub system_token: Option<SystemUserToken>,
    /// The system user ticket (system-user JWT) or the user's ticket (legacy federated post).
    pub ticket: Option<Ticket>,
    pub nonce: Option<String>,
    pub issued_at: Option<DateTime<Utc>>,
    pub not_before: Option<DateTime<Utc>>,
    pub expires_at: DateTime<Utc>,
}

impl SuperOfficeClaims {
    /// Reads the claims of a payload whose signature has been checked.
    pub(crate) fn from_payload(payload: &Map<String, Value>) -> Result<Self, JwtError> {
        let claims = Claims(payload);
        let context = claims.custom("ctx")?.ok_or(JwtError::MissingClaim("ctx"))?;
        let context_id = ContextId::parse(context)
            .map_err(|_| JwtError::Malformed("claim ctx is not a context identifier".into()))?;
        Ok(Self {
            issuer: claims.string("iss")?.unwrap_or_default().to_owned(),
            audience: claims.audience()?,
            subject: claims.owned("sub")?,
            context_id,
            serial: claims.custom_owned("serial")?,
            company_name: claims.custom_owned("company_name")?,
            email: claims.custom_owned("email")?,
            upn: claims.custom_owned("upn")?,
            associate_id: claims
                .custom("associateid")?
                .map(|v| v.trim().parse::<i64>())
                .transpose()
                .map_err(|_| JwtError::Malformed("claim associateid is not a number".into()))?,
            is_administrator: claims
                .custom("is_administrator")?
                .is_some_and(|v| v.trim().eq_ignore_ascii_case("true")),
            identity_provider: claims.custom_owned("identityprovider")?,
            initials: claims.custom_owned("initials")?,
            first_name: claims.custom_owned("firstname")?,
            last_name: claims.custom_owned("lastname")?,
            primary_email: claims.custom_owned("so_primary_email_address")?,
            webapi_url: claims.url("webapi_url")?,
            netserver_url: claims.url("netserver_url")?,
            system_token: claims
                .custom("system_token")?
                .map(SystemUserToken::parse)
                .transpose()
                .map_err(|e| JwtError::Malformed(format!("claim system_token: {e}")))?,
            ticket: claims
                .custom("ticket")?
                .map(Ticket::parse)
                .transpose()
                .map_err(|e| JwtError::Malformed(format!("claim ticket: {e}")))?,
            nonce: claims.owned("nonce")?,
            issued_at: claims.time("iat")?,
            not_before: claims.time("nbf")?,
            expires_at: claims.time("exp")?.ok_or(JwtError::MissingClaim("exp"))?,
        })
    }

    /// The claims as JSON for operators: the system user token and the ticket show as `"[REDACTED]"` when
    /// present (and `null` when absent), so the output can be pasted into a ticket or a log.
    pub fn redacted_json(&self) -> Value {
        let redacted = |present: bool| present.then_some("[REDACTED]");
        json!({
            "issuer": self.issuer,
            "audience": self.audience,
            "subject": self.subject,
            "context_id": self.context_id.as_str(),
            "serial": self.serial,
            "company_name": self.company_name,
            "email": self.email,
            "upn": self.upn,
            "associate_id": self.associate_id,
            "is_administrator": self.is_administrator,
            "identity_provider": self.identity_provider,
            "initials": self.initials,
            "first_name": self.first_name,
            "last_name": self.last_name,
            "primary_email": self.primary_email,
            "webapi_url": self.webapi_url.as_ref().map(Url::as_str),
            "netserver_url": self.netserver_url.as_ref().map(Url::as_str),
            "system_token": redacted(self.system_token.is_some()),
            "ticket": redacted(self.ticket.is_some()),
            "nonce": self.nonce,
            "issued_at": self.issued_at.map(|t| t.to_rfc3339()),
            "not_before": self.not_before.map(|t| t.to_rfc3339()),
            "expires_at": self.expires_at.to_rfc3339(),
        })
    }
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
        assert_eq!(claims.subject.as_deref(), Some("tony@superoffice.com"));
        assert_eq!(claims.context_id.as_str(), "Cust26759");
        assert_eq!(claims.serial.as_deref(), Some("1801550193"));
        assert_eq!(claims.associate_id, Some(5));
        assert!(!claims.is_administrator);
        assert_eq!(
            claims.company_name.as_deref(),
            Some("Tonys Developer Network")
        );
        assert_eq!(claims.identity_provider.as_deref(), Some("central-superid"));
        assert_eq!(claims.initials.as_deref(), Some("TY"));
        assert_eq!(
            claims.webapi_url.as_ref().map(Url::as_str),
            Some("https://sod.superoffice.com/Cust26759/api/")
        );
        assert_eq!(
            claims.system_token.as_ref().map(SystemUserToken::expose),
            Some("SuperOffice DevNet Node OIDC-8k8Q7DmBgo")
        );
        assert!(claims.ticket.is_none());
        assert_eq!(claims.issued_at.unwrap().timestamp(), 1_581_665_207);
        assert_eq!(claims.not_before.unwrap().timestamp(), 1_581_665_147);
        assert_eq!(claims.expires_at.timestamp(), 1_581_665_507);
        assert_eq!(
            claims.audience,
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

    #[test]
    fn iat_as_number_and_administrator_true() {
        let text = DOCS_EXAMPLE
            .replace("\"iat\": \"1581665207\"", "\"iat\": 1581665207")
            .replace("\"False\"", "\"True\"");
        let claims = parse(&text).unwrap();
        assert_eq!(claims.issued_at.unwrap().timestamp(), 1_581_665_207);
        assert!(claims.is_administrator);
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
