//! The core of the SuperOffice system-user integration, shared by `partner-web` and `partner-service`.

#[macro_use]
mod text_enum;

pub mod clients;
pub mod clock;
pub mod config;
pub mod crypto;
pub mod db;
pub mod domain;
pub mod environment;
pub mod http;
pub mod jwt;
pub mod lifecycle;
pub mod metrics;
pub mod shutdown;
pub mod soap;
pub mod superid;
pub mod telemetry;
pub mod tenant;

/// The SuperOffice protocol modules (`crypto`, `jwt`, `superid`, `tenant`, `soap`, `http`, `environment`) are a layer of
/// their own: they import nothing from storage (`db`), configuration loading (`config`) or the tenant
/// lifecycle built on top of them. The configuration builds their settings (see the `impl` blocks at the
/// end of `config.rs`).
#[cfg(test)]
mod layering {
    use std::path::{Path, PathBuf};

    const PROTOCOL: [&str; 7] = [
        "crypto",
        "jwt",
        "superid",
        "tenant",
        "soap.rs",
        "http.rs",
        "environment.rs",
    ];
    const ABOVE: [&str; 3] = ["db", "config", "lifecycle"];

    fn sources(path: &Path, found: &mut Vec<PathBuf>) {
        if path.is_dir() {
            let mut entries: Vec<_> = std::fs::read_dir(path)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
                .map(|entry| entry.map(|e| e.path()))
                .collect::<Result<_, _>>()
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            entries.sort();
            for entry in entries {
                sources(&entry, found);
            }
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            found.push(path.to_owned());
        }
    }

    /// The modules of `crate::…` paths in `text`, including grouped ones (`crate::{db, …}`).
    fn crate_paths(text: &str) -> Vec<String> {
        let mut names = Vec::new();
        for (at, _) in text.match_indices("crate::") {
            let rest = &text[at + "crate::".len()..];
            if let Some(group) = rest.strip_prefix('{') {
                let inner = group.split('}').next().unwrap_or_default();
                names.extend(inner.split(',').map(|part| {
                    part.trim()
                        .split("::")
                        .next()
                        .unwrap_or_default()
                        .to_owned()
                }));
            } else {
                let name: String = rest
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                names.push(name);
            }
        }
        names
    }

    #[test]
    fn protocol_modules_import_neither_storage_nor_configuration() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut files = Vec::new();
        for module in PROTOCOL {
            sources(&root.join(module), &mut files);
        }
        assert!(files.len() > 20, "the protocol modules were not found");
        let mut offences = Vec::new();
        for file in files {
            let text = std::fs::read_to_string(&file).unwrap_or_default();
            for name in crate_paths(&text) {
                if ABOVE.contains(&name.as_str()) {
                    offences.push(format!("{} uses crate::{name}", file.display()));
                }
            }
        }
        assert!(offences.is_empty(), "{offences:#?}");
    }

    #[test]
    fn grouped_and_plain_paths_are_both_read() {
        let names = crate_paths("use crate::{db::models, jwt};\nlet x = crate::config::Settings;");
        assert_eq!(names, ["db", "jwt", "config"]);
    }
}
