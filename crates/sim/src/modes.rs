//! Unfaithful modes: ways in which real SuperOffice may answer differently from what the simulator
//! does by default, since its error messages, status codes and fault shapes are undocumented. Each
//! mode is set globally or per tenant, in `[modes]` of the configuration or through the admin API.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// How an exchange refusal's `ErrorMessage` is worded.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Wording {
    /// `Code: description`, the simulator's own format.
    #[default]
    Documented,
    /// Other English sentences, naming no code.
    Other,
    /// Norwegian sentences.
    Foreign,
}

/// How an exchange refusal reaches the caller.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RefusalAs {
    /// `IsSuccessful=false` with an `ErrorMessage`.
    #[default]
    Body,
    /// HTTP 401 with the message as plain text.
    Http4xx,
    /// HTTP 500 with the message as plain text.
    Http5xx,
    /// A SOAP `s:Client` fault (both variants) carrying the message.
    SoapFault,
}

/// What the state API answers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StateApi {
    #[default]
    Normal,
    /// 404, as for a tenant SuperOffice does not know.
    NotFound,
    /// A `State` no documentation names, with `IsRunning` false.
    UnknownState,
}

/// One set of modes, grouped by what they change.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Mode {
    #[serde(flatten)]
    pub refusals: Refusals,
    #[serde(flatten)]
    pub signing: Signing,
    /// Refuse, with a SOAP `s:Client` fault, an exchange request whose `AuthenticationRequest` children
    /// are not in the WSDL's sequence, as a reader that enforces the schema's element order would
    /// (the simulator otherwise reads them in any order).
    pub strict_soap_order: bool,
    /// The status a dead or unknown ticket gets from the tenant API: 401 (default) or 403.
    pub dead_ticket_status: Option<u16>,
    pub state_api: StateApi,
}

/// How PartnerSystemUserService refuses an exchange: in which words, in what form, and whether it
/// refuses every one.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Refusals {
    pub wording: Wording,
    pub refusal_as: RefusalAs,
    /// Refuse every exchange with this `ErrorMessage` (before any other check), as SuperID would
    /// for a wrong application token or partner key.
    pub refuse_with: Option<String>,
}

/// Which key signs SuperID's answers and which `kid` they name.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Signing {
    /// Sign exchange answers under a `kid` that names no JWKS key (and without `x5t`), though with the
    /// current key: SuperOffice's `kid` format has varied, so a validator must fall back to trying
    /// every key.
    pub unknown_kid: bool,
    /// Global only (SuperID has one key set): the first exchange answer or id_token signed in this mode
    /// uses a new key and the JWKS serves only that one, as after SuperID rotated its key and withdrew
    /// the old one since the caller last fetched the JWKS.
    pub rotate_keys_withdrawn: bool,
}

/// The global mode and the tenants' own.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Modes {
    pub global: Mode,
    pub tenants: BTreeMap<String, Mode>,
}

impl Modes {
    /// The tenant's mode, or the global one.
    pub fn of(&self, context_id: &str) -> &Mode {
        self.tenants.get(context_id).unwrap_or(&self.global)
    }
}

/// The `ErrorMessage` of a refusal with code `code`, worded as `wording` says; `documented` is the
/// simulator's own message.
pub fn word(wording: Wording, code: &str, documented: String) -> String {
    match wording {
        Wording::Documented => documented,
        Wording::Other => match code {
            "Revoked" => "The tenant has withdrawn this application's access".into(),
            "Expired" => "This application's authorisation is no longer valid".into(),
            "Denied" => "The application is not allowed to act on this customer".into(),
            "NeedsReapproval" => "An administrator has to approve the application again".into(),
            "InvalidTimestamp" => "Token time is outside the allowed range".into(),
            "InvalidSignature" => "Token could not be verified".into(),
            _ => "The request could not be completed".into(),
        },
        Wording::Foreign => match code {
            "Revoked" => "Kunden har trukket tilbake applikasjonens tilgang".into(),
            "Expired" => "Applikasjonens autorisasjon er utløpt".into(),
            "Denied" => "Tilgang nektet for denne applikasjonen".into(),
            "NeedsReapproval" => "Applikasjonen må godkjennes på nytt".into(),
            "InvalidTimestamp" => "Tidsstempelet er ugyldig".into(),
            "InvalidSignature" => "Signaturen er ugyldig".into(),
            _ => "Forespørselen kunne ikke fullføres".into(),
        },
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn a_tenants_mode_overrides_the_global_one() {
        let mut modes = Modes::default();
        modes.global.refusals.wording = Wording::Other;
        modes.tenants.insert(
            "Cust1".into(),
            Mode {
                state_api: StateApi::NotFound,
                ..Mode::default()
            },
        );
        assert_eq!(modes.of("Cust1").refusals.wording, Wording::Documented);
        assert_eq!(modes.of("Cust1").state_api, StateApi::NotFound);
        assert_eq!(modes.of("Cust2").refusals.wording, Wording::Other);
    }

    #[test]
    fn other_wordings_name_no_code() {
        for code in ["Revoked", "Expired", "Denied", "NeedsReapproval"] {
            for wording in [Wording::Other, Wording::Foreign] {
                let text = word(wording, code, String::new());
                assert!(!text.contains(code), "{text}");
            }
        }
        assert_eq!(word(Wording::Documented, "Revoked", "x".into()), "x");
    }

    #[test]
    fn modes_read_from_toml() {
        let modes: Modes = toml::from_str(
            "[global]\nrefusal_as = \"http5xx\"\n[tenants.Cust1]\nwording = \"foreign\"\ndead_ticket_status = 403\n",
        )
        .unwrap();
        assert_eq!(modes.global.refusals.refusal_as, RefusalAs::Http5xx);
        assert_eq!(modes.of("Cust1").refusals.wording, Wording::Foreign);
        assert_eq!(modes.of("Cust1").dead_ticket_status, Some(403));
        assert!(
            !modes.global.signing.rotate_keys_withdrawn && !modes.of("Cust1").signing.unknown_kid
        );
        let modes: Modes = toml::from_str(
            "[global]\nrotate_keys_withdrawn = true\n[tenants.Cust1]\nunknown_kid = true\nstrict_soap_order = true\n",
        )
        .unwrap();
        assert!(modes.global.signing.rotate_keys_withdrawn);
        assert!(modes.of("Cust1").signing.unknown_kid && modes.of("Cust1").strict_soap_order);
    }

    #[test]
    fn a_mode_is_one_flat_table_that_refuses_unknown_keys() {
        let mode: Mode = serde_json::from_str(
            r#"{"wording": "other", "unknown_kid": true, "state_api": "not_found"}"#,
        )
        .unwrap();
        assert_eq!(mode.refusals.wording, Wording::Other);
        assert!(mode.signing.unknown_kid);
        let json = serde_json::to_value(&mode).unwrap();
        assert_eq!(json["wording"], "other");
        assert_eq!(json["unknown_kid"], true);
        assert_eq!(json["state_api"], "not_found");
        let err = serde_json::from_str::<Mode>(r#"{"wording": "other", "colour": "blue"}"#)
            .unwrap_err()
            .to_string();
        assert!(err.contains("colour"), "{err}");
    }
}
