//! SuperID's signing keys as partner-web sees them: the environment's pinned certificate (none for `custom`)
//! plus SuperID's JWKS, fetched lazily on the first token that names an unknown key, and again at most once a
//! minute after that (`shared::jwt::KeySet`). One validator checks every SuperOffice JWT the web receives.

use anyhow::Context;
use shared::config::SuperOfficeSettings;
use shared::jwt::pinned::pinned_certificate;
use shared::jwt::{DEFAULT_REFETCH_COOLDOWN, JwksEndpoint, JwtValidator, KeySet};
use url::Url;

/// The validator of every SuperOffice JWT partner-web receives.
pub fn jwt_validator(
    settings: &SuperOfficeSettings,
    http: &reqwest::Client,
) -> anyhow::Result<JwtValidator> {
    let pinned = pinned_certificate(settings.environment).with_context(|| {
        format!(
            "reading the pinned SuperID certificate of environment {}",
            settings.environment
        )
    })?;
    let jwks = JwksEndpoint {
        uri: jwks_uri(settings)?,
        client: http.clone(),
    };
    let keys = KeySet::new(pinned.as_ref(), Some(jwks), DEFAULT_REFETCH_COOLDOWN);
    Ok(JwtValidator::new(keys, settings.jwt_leeway()))
}

/// Where SuperID publishes its keys: `{superid}/login/.well-known/jwks`, the `jwks_uri` its discovery document
/// (`{superid}/login/.well-known/openid-configuration`) names in every environment and in the simulator.
///
/// This is the one place to switch to the discovery client (read `jwks_uri` from the discovery document)
/// once it is shared; `KeySet` only needs the URL.
fn jwks_uri(settings: &SuperOfficeSettings) -> anyhow::Result<Url> {
    let base = settings.superid_base_url()?;
    let uri = format!(
        "{}/login/.well-known/jwks",
        base.as_str().trim_end_matches('/')
    );
    Url::parse(&uri).with_context(|| format!("building SuperID's JWKS URL from {base}"))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use std::collections::BTreeMap;

    use shared::config::{Settings, Sources};

    use super::*;

    fn settings(pairs: &[(&str, &str)]) -> SuperOfficeSettings {
        let env: BTreeMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Settings::from_sources(&Sources { file: None, env })
            .unwrap()
            .superoffice
    }

    #[test]
    fn the_jwks_hangs_off_superid() {
        let sod = settings(&[]);
        assert_eq!(
            jwks_uri(&sod).unwrap().as_str(),
            "https://sod.superoffice.com/login/.well-known/jwks"
        );
        let custom = settings(&[
            ("PARTNER_SUPEROFFICE__ENVIRONMENT", "custom"),
            ("PARTNER_SUPEROFFICE__SUPERID_URL", "http://127.0.0.1:9100/"),
        ]);
        assert_eq!(
            jwks_uri(&custom).unwrap().as_str(),
            "http://127.0.0.1:9100/login/.well-known/jwks"
        );
    }

    #[test]
    fn named_environments_pin_their_certificate() {
        let http = reqwest::Client::new();
        let sod = jwt_validator(&settings(&[]), &http).unwrap();
        assert!(format!("{sod:?}").contains("16B7FB8C3F9AB06885A800C64E64C97C4AB5E98C"));
        let custom = jwt_validator(
            &settings(&[
                ("PARTNER_SUPEROFFICE__ENVIRONMENT", "custom"),
                ("PARTNER_SUPEROFFICE__SUPERID_URL", "http://127.0.0.1:9100"),
            ]),
            &http,
        )
        .unwrap();
        assert!(format!("{custom:?}").contains("fixed: []"), "{custom:?}");
    }
}
