//! Reading the layers: the compiled-in defaults, the file, `PARTNER_*` variables (and their `_FILE`
//! forms), `DATABASE_URL`; unknown keys and the config crate's errors turned into ones naming the key.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use secrecy::{ExposeSecret, SecretString};

use super::*;

impl Sources {
    /// The process's environment, with `--config` taking precedence over `PARTNER_CONFIG`.
    pub fn from_process(cli_file: Option<&Path>) -> Self {
        let env: BTreeMap<String, String> = std::env::vars().collect();
        let file = cli_file.map(Path::to_path_buf).or_else(|| {
            env.get(CONFIG_FILE_VAR)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        });
        Self { file, env }
    }
}

impl Settings {
    /// Loads the process's configuration.
    pub fn load(cli_file: Option<&Path>) -> Result<Self, ConfigError> {
        Self::from_sources(&Sources::from_process(cli_file))
    }

    /// Loads configuration from explicit sources (tests use this).
    pub fn from_sources(sources: &Sources) -> Result<Self, ConfigError> {
        let mut builder = config::Config::builder().add_source(config::File::from_str(
            DEFAULT_TOML,
            config::FileFormat::Toml,
        ));
        if let Some(path) = &sources.file {
            let text = std::fs::read_to_string(path).map_err(|e| ConfigError::File {
                path: path.display().to_string(),
                reason: e.to_string(),
            })?;
            // Parse first so a syntax error names the file and line, not a merged tree.
            text.parse::<toml::Table>().map_err(|e| ConfigError::File {
                path: path.display().to_string(),
                reason: e.message().to_owned(),
            })?;
            builder = builder.add_source(config::File::from_str(&text, config::FileFormat::Toml));
        }
        let known = known_keys()?;
        let mut env_keys = BTreeMap::new();
        let mut file_keys = Vec::new();
        if let Some(url) = sources.env.get("DATABASE_URL").filter(|v| !v.is_empty()) {
            env_keys.insert(
                "database.url".to_owned(),
                ("DATABASE_URL".to_owned(), url.clone()),
            );
        }
        for (name, value) in &sources.env {
            let Some(rest) = name.strip_prefix(ENV_PREFIX) else {
                continue;
            };
            // An empty variable counts as unset, as shells and compose files often leave them.
            if name == CONFIG_FILE_VAR || value.is_empty() {
                continue;
            }
            let Some((section, key)) = rest.split_once("__") else {
                return Err(ConfigError::UnknownKey {
                    key: rest.to_ascii_lowercase(),
                    origin: format!(
                        "environment variable {name}; expected PARTNER_<SECTION>__<KEY>"
                    ),
                });
            };
            let key = format!(
                "{}.{}",
                section.to_ascii_lowercase(),
                key.to_ascii_lowercase()
            );
            match file_variable_target(&key, &known)? {
                Some(target) => {
                    let value = read_value_file(name, &target, value)?;
                    file_keys.push((target, (name.clone(), value)));
                }
                None => {
                    env_keys.insert(key, (name.clone(), value.clone()));
                }
            }
        }
        // `PARTNER_X__Y_FILE` sets `x.y` from the file it names (Docker and Kubernetes secrets). Naming the same
        // key both ways is a mistake that would otherwise be settled silently by precedence.
        for (key, (name, value)) in file_keys {
            if let Some((other, _)) = env_keys.get(&key) {
                return Err(ConfigError::invalid(
                    &key,
                    format!("set by both {other} and {name}; set only one"),
                ));
            }
            env_keys.insert(key, (name, value));
        }
        for (key, (_, value)) in &env_keys {
            builder = builder
                .set_override(key.as_str(), value.as_str())
                .map_err(|e| ConfigError::invalid(key, e.to_string()))?;
        }
        let merged = builder.build().map_err(|e| ConfigError::File {
            path: sources
                .file
                .as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_else(|| "(defaults)".into()),
            reason: e.to_string(),
        })?;
        check_known_keys(&merged, &env_keys)?;
        let mut settings: Settings = merged.try_deserialize().map_err(map_deserialize_error)?;
        settings.drop_empty_secrets();
        settings.validate()?;
        Ok(settings)
    }

    /// A secret set to "" in a file is treated as not set, so the "required" message names it.
    fn drop_empty_secrets(&mut self) {
        fn clear(secret: &mut Option<SecretString>) {
            if secret
                .as_ref()
                .is_some_and(|s| s.expose_secret().trim().is_empty())
            {
                *secret = None;
            }
        }
        let application = &mut self.superoffice.application;
        clear(&mut application.client_secret);
        clear(&mut application.private_key);
        clear(&mut self.encryption.key);
        clear(&mut self.encryption.previous_key);
        clear(&mut self.web.session_key);
        if application
            .private_key_file
            .as_ref()
            .is_some_and(|p| p.as_os_str().is_empty())
        {
            application.private_key_file = None;
        }
    }
}

/// For `section.key_file` that is not a key itself but names a known key without the suffix: that key.
fn file_variable_target(
    key: &str,
    known: &BTreeMap<String, ()>,
) -> Result<Option<String>, ConfigError> {
    if known.contains_key(key) {
        return Ok(None);
    }
    Ok(key
        .strip_suffix("_file")
        .filter(|target| known.contains_key(*target))
        .map(str::to_owned))
}

/// Reads the value of `target` from the file that variable `name` points at. One trailing line break (as
/// `echo` and most secret stores leave) is dropped; the value itself never appears in an error.
fn read_value_file(name: &str, target: &str, path: &str) -> Result<String, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        ConfigError::invalid(
            target,
            format!("cannot read the file {path} named by {name}: {e}"),
        )
    })?;
    let value = text
        .strip_suffix("\r\n")
        .or_else(|| text.strip_suffix('\n'))
        .unwrap_or(&text);
    if value.is_empty() {
        return Err(ConfigError::invalid(
            target,
            format!("the file {path} named by {name} is empty"),
        ));
    }
    Ok(value.to_owned())
}

/// Every key the configuration knows, as `section.key`: the fields of the settings types, so an
/// optional key (documented, commented out, in default.toml) is known without being listed.
pub(super) fn known_keys() -> Result<BTreeMap<String, ()>, ConfigError> {
    let sections: [(&str, &[&str]); 5] = [
        ("database", fields_of::<DatabaseSettings>()),
        ("superoffice", fields_of::<SuperOfficeSettings>()),
        ("encryption", fields_of::<EncryptionSettings>()),
        ("web", fields_of::<WebSettings>()),
        ("service", fields_of::<ServiceSettings>()),
    ];
    let named: Vec<&str> = sections.iter().map(|(section, _)| *section).collect();
    if named != fields_of::<Settings>() {
        return Err(ConfigError::invalid(
            "(configuration)",
            format!("the sections {named:?} are not those of the settings"),
        ));
    }
    Ok(sections
        .into_iter()
        .flat_map(|(section, fields)| {
            fields
                .iter()
                .map(move |key| (format!("{section}.{key}"), ()))
        })
        .collect())
}

/// The field names serde gives a struct (after renames), read from its `Deserialize`.
fn fields_of<T: serde::de::DeserializeOwned>() -> &'static [&'static str] {
    let mut fields: &'static [&'static str] = &[];
    let _ = T::deserialize(FieldNames(&mut fields));
    fields
}

/// A deserializer that only records the fields a struct asks for, then stops.
struct FieldNames<'a>(&'a mut &'static [&'static str]);

#[derive(Debug)]
struct Stop;

impl fmt::Display for Stop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("field names read")
    }
}

impl std::error::Error for Stop {}

impl serde::de::Error for Stop {
    fn custom<T: fmt::Display>(_: T) -> Self {
        Stop
    }
}

impl<'de> serde::Deserializer<'de> for FieldNames<'_> {
    type Error = Stop;

    fn deserialize_any<V: serde::de::Visitor<'de>>(self, _: V) -> Result<V::Value, Stop> {
        Err(Stop)
    }

    fn deserialize_struct<V: serde::de::Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        _visitor: V,
    ) -> Result<V::Value, Stop> {
        *self.0 = fields;
        Err(Stop)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf option
        unit unit_struct newtype_struct seq tuple tuple_struct map enum identifier ignored_any
    }
}

fn check_known_keys(
    merged: &config::Config,
    env_keys: &BTreeMap<String, (String, String)>,
) -> Result<(), ConfigError> {
    let known = known_keys()?;
    let table = merged
        .clone()
        .try_deserialize::<config::Map<String, config::Value>>()
        .map_err(|e| ConfigError::invalid("(configuration)", e.to_string()))?;
    for (section, value) in table {
        let origin = |key: &str| {
            env_keys
                .get(key)
                .map(|(var, _)| format!("environment variable {var}"))
                .or_else(|| value.origin().map(|o| o.to_owned()))
                .unwrap_or_else(|| "configuration file".to_owned())
        };
        match value.clone().into_table() {
            Ok(inner) => {
                for key in inner.keys() {
                    let full = format!("{section}.{key}");
                    if !known.contains_key(&full) {
                        return Err(ConfigError::UnknownKey {
                            origin: origin(&full),
                            key: full,
                        });
                    }
                }
            }
            Err(_) => {
                return Err(ConfigError::UnknownKey {
                    origin: origin(&section),
                    key: section,
                });
            }
        }
    }
    Ok(())
}

/// Turns the config crate's error into one naming the key, without echoing secret values.
fn map_deserialize_error(error: config::ConfigError) -> ConfigError {
    let (key, reason) = match &error {
        config::ConfigError::Type {
            unexpected,
            expected,
            key: Some(key),
            ..
        } => (
            key.clone(),
            format!("invalid type: {unexpected}, expected {expected}"),
        ),
        config::ConfigError::At {
            error: inner,
            key: Some(key),
            ..
        } => (key.clone(), inner.to_string()),
        _ => return ConfigError::invalid("(configuration)", error.to_string()),
    };
    let reason = if is_secret_key(&key) {
        "has an invalid value".to_owned()
    } else {
        reason
    };
    ConfigError::Invalid { key, reason }
}

fn is_secret_key(key: &str) -> bool {
    matches!(
        key,
        "database.url"
            | "superoffice.client_secret"
            | "superoffice.private_key"
            | "encryption.key"
            | "encryption.previous_key"
            | "web.session_key"
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn known_keys_are_the_fields_of_the_settings_and_all_documented() {
        let known = known_keys().unwrap();
        let table: toml::Table = DEFAULT_TOML.parse().unwrap();
        for (section, value) in &table {
            for key in value.as_table().unwrap().keys() {
                assert!(
                    known.contains_key(&format!("{section}.{key}")),
                    "{section}.{key}"
                );
            }
        }
        for optional in [
            "superoffice.superid_url",
            "superoffice.issuer",
            "superoffice.client_secret",
            "superoffice.private_key_file",
            "superoffice.private_key",
            "encryption.key",
            "encryption.previous_key",
            "encryption.previous_key_version",
            "web.session_key",
        ] {
            assert!(known.contains_key(optional), "{optional}");
        }
        assert!(!known.contains_key("web.colour"));
        // Every key is in default.toml, set or commented out, under its section.
        let mut section = "";
        let mut documented = std::collections::BTreeSet::new();
        for line in DEFAULT_TOML.lines() {
            let line = line.trim();
            if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
                section = name;
            } else if let Some((key, _)) = line.trim_start_matches("# ").split_once(" = ") {
                documented.insert(format!("{section}.{key}"));
            }
        }
        for key in known.keys() {
            assert!(documented.contains(key), "{key} is not in default.toml");
        }
    }
}
