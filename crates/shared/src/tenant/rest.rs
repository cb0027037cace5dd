//! The tenant's REST API (protocol §7.2) on the `Api` base the state API names: the system user with
//! `Authorization: SOTicket {ticket}` and `SO-AppToken`, or a user with `Authorization: Bearer`.
//! Companies are created the recommended way: `GET v1/Contact/default`, set `Name`, `POST v1/Contact`.
//! GETs are retried with backoff; the POST is sent once (a repeat could create two companies).

use reqwest::Method;
use secrecy::ExposeSecret;
use serde::Serialize;
use serde_json::Value;
use url::Url;

use crate::domain::ContextId;
use crate::http;
use crate::tenant::status::TenantStatus;
use crate::tenant::{
    Company, TenantCaller, TenantCredentials, TenantError, endpoint_url, error_message,
};

const WHAT: &str = "tenant REST API";

/// The `ContactEntity` field that carries a creator's marker (an idempotency key) on the companies
/// created with `create_marked_company`, unless `with_marker_field` names another
/// (`service.idempotency_field`).
pub const MARKER_FIELD: &str = "Number2";

/// The signed-in principal as the tenant sees it (`GET v1/User/currentPrincipal`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Principal {
    pub associate_id: Option<i64>,
    /// The user name.
    pub associate: Option<String>,
    pub full_name: Option<String>,
    pub email: Option<String>,
    pub user_type: Option<String>,
}

/// Calls tenants' REST APIs. Share one per process.
#[derive(Debug, Clone)]
pub struct TenantRestClient {
    caller: TenantCaller,
    marker_field: String,
}

impl TenantRestClient {
    pub fn new(caller: TenantCaller) -> Self {
        Self {
            caller,
            marker_field: MARKER_FIELD.to_owned(),
        }
    }

    /// The `ContactEntity` field markers go into (e.g. `Number1`, `Number2`, `Department`, `OrgNr`).
    pub fn with_marker_field(mut self, field: &str) -> Self {
        self.marker_field = field.to_owned();
        self
    }

    /// `GET v1/User/currentPrincipal`.
    #[tracing::instrument(skip_all, fields(tenant = %tenant), err)]
    pub async fn current_principal(
        &self,
        tenant: &ContextId,
        credentials: &TenantCredentials,
    ) -> Result<Principal, TenantError> {
        let value = self
            .get(tenant, credentials, "v1/User/currentPrincipal")
            .await?;
        Ok(Principal {
            associate_id: member(&value, "AssociateId").and_then(as_i64),
            associate: text(&value, "Associate"),
            full_name: text(&value, "FullName"),
            email: text(&value, "EMailAddress"),
            user_type: text(&value, "UserType"),
        })
    }

    /// `GET v1/Contact/default`: a new company filled with the user's preferences, not yet saved.
    #[tracing::instrument(skip_all, fields(tenant = %tenant), err)]
    pub async fn default_contact(
        &self,
        tenant: &ContextId,
        credentials: &TenantCredentials,
    ) -> Result<Value, TenantError> {
        self.get(tenant, credentials, "v1/Contact/default").await
    }

    /// `POST v1/Contact`: saves the entity (a `ContactId` of 0 creates). Sent once.
    #[tracing::instrument(skip_all, fields(tenant = %tenant), err)]
    pub async fn save_contact(
        &self,
        tenant: &ContextId,
        credentials: &TenantCredentials,
        entity: &Value,
    ) -> Result<Company, TenantError> {
        let saved = self
            .call(
                tenant,
                credentials,
                Method::POST,
                "v1/Contact",
                Some(entity),
            )
            .await?;
        company(tenant, &saved)
    }

    /// Creates a company named `name` the recommended way: the default entity, `Name` set, saved.
    #[tracing::instrument(skip_all, fields(tenant = %tenant), err)]
    pub async fn create_company(
        &self,
        tenant: &ContextId,
        credentials: &TenantCredentials,
        name: &str,
    ) -> Result<Company, TenantError> {
        self.create_company_with(tenant, credentials, &[("Name", name)])
            .await
    }

    /// Creates a company named `name` carrying `marker` in its `Number2` (see `MARKER_FIELD`), so
    /// that `find_company_by_marker` can tell afterwards whether a save whose answer was lost took
    /// effect. The default entity, `Name` and `Number2` set, saved once.
    #[tracing::instrument(skip_all, fields(tenant = %tenant), err)]
    pub async fn create_marked_company(
        &self,
        tenant: &ContextId,
        credentials: &TenantCredentials,
        name: &str,
        marker: &str,
    ) -> Result<Company, TenantError> {
        self.create_company_with(
            tenant,
            credentials,
            &[("Name", name), (self.marker_field.as_str(), marker)],
        )
        .await
    }

    /// The company whose marker field (`Number2` by default) is `marker`, if one exists:
    /// `GET v1/Contact?$select=ContactId,Name,Number2&$filter=number2 eq '{marker}'&$orderby=ContactId`
    /// (the lowest ContactId when several match).
    #[tracing::instrument(skip_all, fields(tenant = %tenant), err)]
    pub async fn find_company_by_marker(
        &self,
        tenant: &ContextId,
        credentials: &TenantCredentials,
        marker: &str,
    ) -> Result<Option<Company>, TenantError> {
        let field = self.marker_field.as_str();
        let query = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("$select", &format!("ContactId,Name,{field}"))
            .append_pair(
                "$filter",
                &format!(
                    "{} eq '{}'",
                    field.to_ascii_lowercase(),
                    marker.replace('\'', "''")
                ),
            )
            .append_pair("$orderby", "ContactId")
            .finish();
        let value = self
            .get(tenant, credentials, &format!("v1/Contact?{query}"))
            .await?;
        let rows = member(&value, "value")
            .and_then(Value::as_array)
            .ok_or_else(|| TenantError::Malformed {
                tenant: tenant.clone(),
                reason: "the Contact query answer has no value array".into(),
            })?;
        let mut found = rows
            .iter()
            .filter(|row| member(row, field).and_then(Value::as_str) == Some(marker))
            .map(|row| company(tenant, row))
            .collect::<Result<Vec<_>, _>>()?;
        found.sort_by_key(|c| c.contact_id);
        Ok(found.into_iter().next())
    }

    /// The default entity with `fields` set (matching member names in any case), saved once.
    async fn create_company_with(
        &self,
        tenant: &ContextId,
        credentials: &TenantCredentials,
        fields: &[(&str, &str)],
    ) -> Result<Company, TenantError> {
        let mut entity = self.default_contact(tenant, credentials).await?;
        let Value::Object(members) = &mut entity else {
            return Err(TenantError::Malformed {
                tenant: tenant.clone(),
                reason: "the default ContactEntity is not a JSON object".into(),
            });
        };
        for (field, value) in fields {
            let key = members
                .keys()
                .find(|k| k.eq_ignore_ascii_case(field))
                .cloned()
                .unwrap_or_else(|| (*field).to_owned());
            members.insert(key, Value::String((*value).to_owned()));
        }
        self.save_contact(tenant, credentials, &entity).await
    }

    /// `GET v1/Contact/{id}`.
    #[tracing::instrument(skip_all, fields(tenant = %tenant, contact_id), err)]
    pub async fn company(
        &self,
        tenant: &ContextId,
        credentials: &TenantCredentials,
        contact_id: i64,
    ) -> Result<Company, TenantError> {
        let value = self
            .get(tenant, credentials, &format!("v1/Contact/{contact_id}"))
            .await?;
        company(tenant, &value)
    }

    /// `GET {path}`.
    async fn get(
        &self,
        tenant: &ContextId,
        credentials: &TenantCredentials,
        path: &str,
    ) -> Result<Value, TenantError> {
        self.call(tenant, credentials, Method::GET, path, None)
            .await
    }

    /// One call on the tenant's current host: GETs retried with backoff, a 421 resolved again once.
    async fn call(
        &self,
        tenant: &ContextId,
        credentials: &TenantCredentials,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value, TenantError> {
        let repeatable = method == Method::GET;
        let request = |status: &TenantStatus| {
            let url = api_url(tenant, status, path)?;
            let request = self
                .caller
                .http
                .client()
                .request(method.clone(), url)
                .header(reqwest::header::ACCEPT, "application/json");
            let request = self.authorize(request, credentials);
            Ok(match body {
                Some(body) => request.json(body),
                None => request,
            })
        };
        let read = |answer: http::Answer| self.read(tenant, credentials, answer);
        self.caller
            .call(tenant, WHAT, repeatable, request, read)
            .await
    }

    /// `request` with the headers `credentials` call for.
    fn authorize(
        &self,
        request: reqwest::RequestBuilder,
        credentials: &TenantCredentials,
    ) -> reqwest::RequestBuilder {
        match credentials {
            TenantCredentials::SystemUser(ticket) => request
                .header(
                    reqwest::header::AUTHORIZATION,
                    format!("SOTicket {}", ticket.expose()),
                )
                .header("SO-AppToken", self.caller.application_token.expose_secret()),
            TenantCredentials::User(access_token) => request.header(
                reqwest::header::AUTHORIZATION,
                format!("Bearer {}", access_token.expose_secret()),
            ),
        }
    }

    /// The JSON of a successful answer, or the error the answer's status means.
    fn read(
        &self,
        tenant: &ContextId,
        credentials: &TenantCredentials,
        answer: http::Answer,
    ) -> Result<Value, TenantError> {
        let bytes = answer.body;
        if answer.status.is_success() {
            return serde_json::from_slice(&bytes).map_err(|e| TenantError::Malformed {
                tenant: tenant.clone(),
                reason: format!("the body is not JSON: {e}"),
            });
        }
        let credential = match credentials {
            TenantCredentials::SystemUser(ticket) => ticket.expose(),
            TenantCredentials::User(access_token) => access_token.expose_secret(),
        };
        let secrets = [credential, self.caller.application_token.expose_secret()];
        let tenant = tenant.clone();
        Err(match answer.status.as_u16() {
            401 => match credentials {
                TenantCredentials::SystemUser(_) => TenantError::TicketRejected { tenant },
                TenantCredentials::User(_) => TenantError::AccessTokenRejected { tenant },
            },
            403 => match credentials {
                TenantCredentials::SystemUser(_) => TenantError::TicketForbidden {
                    tenant,
                    message: error_message(&bytes, &secrets),
                },
                TenantCredentials::User(_) => TenantError::Forbidden {
                    tenant,
                    message: error_message(&bytes, &secrets),
                },
            },
            421 => TenantError::Misdirected { tenant },
            status => TenantError::Http {
                tenant,
                status,
                message: error_message(&bytes, &secrets),
            },
        })
    }
}

/// `{Api}/{path}`, with exactly one slash between.
fn api_url(tenant: &ContextId, status: &TenantStatus, path: &str) -> Result<Url, TenantError> {
    endpoint_url(tenant, status.api.as_ref(), "Api", path)
}

/// A member by name, in any letter case.
fn member<'a>(value: &'a Value, name: &str) -> Option<&'a Value> {
    value
        .as_object()?
        .iter()
        .find(|(key, _)| key.eq_ignore_ascii_case(name))
        .map(|(_, v)| v)
}

fn text(value: &Value, name: &str) -> Option<String> {
    member(value, name)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

fn as_i64(value: &Value) -> Option<i64> {
    value
        .as_i64()
        .or_else(|| value.as_str().and_then(|s| s.trim().parse().ok()))
}

fn company(tenant: &ContextId, value: &Value) -> Result<Company, TenantError> {
    let contact_id = member(value, "ContactId").and_then(as_i64);
    Company::from_entity(tenant, contact_id, |path| {
        let (name, parents) = path.split_last()?;
        let parent = parents
            .iter()
            .try_fold(value, |parent, name| member(parent, name))?;
        text(parent, name)
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use serde_json::json;

    use super::*;
    use crate::tenant::status::TenantRunState;

    #[test]
    fn api_urls_join_with_one_slash() {
        let tenant = ContextId::parse("Cust1").unwrap();
        for api in ["https://h/Cust1/api", "https://h/Cust1/api/"] {
            let status = TenantStatus {
                context_id: tenant.clone(),
                endpoint: None,
                state: TenantRunState::Running,
                is_running: true,
                valid_until: None,
                api: Some(Url::parse(api).unwrap()),
                version: None,
            };
            assert_eq!(
                api_url(&tenant, &status, "v1/Contact/7").unwrap().as_str(),
                "https://h/Cust1/api/v1/Contact/7"
            );
        }
    }

    #[test]
    fn companies_are_read_from_contact_entities() {
        let tenant = ContextId::parse("Cust1").unwrap();
        let company = company(
            &tenant,
            &json!({"ContactId": 7, "Name": "Acme", "Department": "", "CreatedDate": "2026-03-01T10:00:00",
                    "Associate": {"AssociateId": 5, "FullName": "Tony Y"}}),
        )
        .unwrap();
        assert_eq!(company.contact_id, 7);
        assert_eq!(company.name, "Acme");
        assert_eq!(company.department, None);
        assert_eq!(company.owner.as_deref(), Some("Tony Y"));
        assert!(company_missing_id(&tenant));
    }

    fn company_missing_id(tenant: &ContextId) -> bool {
        matches!(
            company(tenant, &json!({"Name": "x"})),
            Err(TenantError::Malformed { .. })
        )
    }
}
