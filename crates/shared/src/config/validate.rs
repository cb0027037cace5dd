//! Checks that need more than types: each names the key it refuses.

use std::net::SocketAddr;

use super::*;

/// Checks that the setting `$root.$section.$field` is at least `$min`, a number or another setting;
/// the error names the key `$section.$field`.
macro_rules! at_least {
    ($root:ident . $section:ident . $field:ident, $min_root:ident . $min_section:ident . $min_field:ident) => {
        at_least_key(
            concat!(stringify!($section), ".", stringify!($field)),
            $root.$section.$field,
            concat!(stringify!($min_section), ".", stringify!($min_field)),
            $min_root.$min_section.$min_field,
        )
    };
    ($root:ident . $section:ident . $field:ident, $min:expr) => {
        at_least(
            concat!(stringify!($section), ".", stringify!($field)),
            $root.$section.$field,
            $min,
        )
    };
    // A setting the code keeps in a group of its section: the key is still `$section.$field`.
    ($root:ident . $section:ident . $group:ident . $field:ident, $min:expr) => {
        at_least(
            concat!(stringify!($section), ".", stringify!($field)),
            $root.$section.$group.$field,
            $min,
        )
    };
}

impl Settings {
    /// Checks that need more than types.
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if self.database.url().trim().is_empty() {
            return Err(ConfigError::Missing {
                key: "database.url".into(),
                hint: "a postgres:// URL, or set DATABASE_URL",
            });
        }
        let db = Url::parse(self.database.url())
            .map_err(|_| ConfigError::invalid("database.url", "is not a valid URL"))?;
        if !matches!(db.scheme(), "postgres" | "postgresql") {
            return Err(ConfigError::invalid(
                "database.url",
                "must start with postgres://",
            ));
        }
        at_least!(self.database.pool_size, 1)?;
        self.superoffice.superid.base_url()?;
        at_least!(self.superoffice.http.tenant_rate_limit_per_sec, 1)?;
        if self.superoffice.trust.jwt_leeway_secs > MAX_JWT_LEEWAY_SECS {
            return Err(ConfigError::invalid(
                "superoffice.jwt_leeway_secs",
                format!(
                    "must be at most {MAX_JWT_LEEWAY_SECS} (5 minutes, SuperOffice's own clock skew); a longer leeway keeps expired tokens usable"
                ),
            ));
        }
        at_least!(self.superoffice.trust.jwks_refresh_secs, 60)?;
        if !self.superoffice.trust.state_change_audience_required
            && self.superoffice.superid.environment != Environment::Custom
        {
            return Err(ConfigError::invalid(
                "superoffice.state_change_audience_required",
                "can be false only for environment `custom`; sod, qaonline and online always require the audience",
            ));
        }
        at_least!(self.web.state_change_limit_per_tenant, 1)?;
        at_least!(self.web.state_change_limit_per_address, 1)?;
        at_least(
            "superoffice.http_timeout_secs",
            self.superoffice.http.timeout_secs,
            1,
        )?;
        parse_bind("web.bind", &self.web.bind)?;
        parse_bind("service.metrics_bind", &self.service.metrics_bind)?;
        parse_bind("web.metrics_bind", &self.web.metrics_bind)?;
        at_least!(self.web.session_minutes, 1)?;
        at_least!(self.web.session_max_hours, 1)?;
        at_least!(self.web.work_per_user_per_minute, 1)?;
        at_least!(self.web.work_per_tenant_per_minute, 1)?;
        at_least!(self.web.open_work_per_tenant, 1)?;
        at_least!(self.service.concurrency, 1)?;
        at_least!(self.service.poll_interval_secs, 1)?;
        at_least!(self.service.lease_secs, 10)?;
        at_least!(self.service.tenant_timeout_secs, 1)?;
        at_least!(self.service.backoff_base_secs, 1)?;
        at_least!(
            self.service.backoff_max_secs,
            self.service.backoff_base_secs
        )?;
        at_least!(self.service.ticket_max_age_secs, 1)?;
        if self.service.circuit_tenants < 2 {
            return Err(ConfigError::invalid(
                "service.circuit_tenants",
                "must be at least 2 (one tenant's refusal is about that tenant)",
            ));
        }
        if self.service.circuit_window_secs == 0 || self.service.circuit_probe_base_secs == 0 {
            return Err(ConfigError::invalid(
                "service.circuit_window_secs",
                "service.circuit_window_secs and service.circuit_probe_base_secs must be at least 1",
            ));
        }
        at_least!(
            self.service.circuit_probe_max_secs,
            self.service.circuit_probe_base_secs
        )?;
        if !matches!(
            self.service.idempotency_field.as_str(),
            "Number1" | "Number2" | "Department" | "OrgNr"
        ) {
            return Err(ConfigError::invalid(
                "service.idempotency_field",
                "must be one of Number1, Number2, Department, OrgNr",
            ));
        }
        for host in &self.superoffice.superid.allowed_tenant_hosts {
            if host.trim().is_empty() || host.contains('/') {
                return Err(ConfigError::invalid(
                    "superoffice.allowed_tenant_hosts",
                    format!("{host:?} is not a host or host:port"),
                ));
            }
        }
        // A configured secret must be well-formed even where this binary does not need it.
        if self.encryption.key.is_some() {
            self.encryption.current_key()?;
        }
        self.encryption.previous_key()?;
        if self.web.session_key.is_some() {
            self.web.session_key()?;
        }
        Ok(())
    }

    /// What partner-web needs beyond the common keys.
    pub fn require_web(&self) -> Result<(), ConfigError> {
        self.require_common()?;
        self.web.session_key()?;
        Ok(())
    }

    /// What partner-service's daemon needs beyond the common keys.
    pub fn require_service(&self) -> Result<(), ConfigError> {
        self.require_common()?;
        self.superoffice.application.private_key_source()?;
        Ok(())
    }

    fn require_common(&self) -> Result<(), ConfigError> {
        if self.superoffice.application.client_id.trim().is_empty() {
            return Err(ConfigError::Missing {
                key: "superoffice.client_id".into(),
                hint: "the application id from the Developer Portal",
            });
        }
        self.superoffice.application.client_secret()?;
        self.encryption.current_key()?;
        Ok(())
    }
}

/// `key`'s `value` must be at least `min`.
fn at_least<T: PartialOrd + fmt::Display>(key: &str, value: T, min: T) -> Result<(), ConfigError> {
    if value < min {
        return Err(ConfigError::invalid(key, format!("must be at least {min}")));
    }
    Ok(())
}

/// `key`'s `value` must be at least `other_key`'s, `other`.
fn at_least_key<T: PartialOrd>(
    key: &str,
    value: T,
    other_key: &str,
    other: T,
) -> Result<(), ConfigError> {
    if value < other {
        return Err(ConfigError::invalid(
            key,
            format!("must be at least {other_key}"),
        ));
    }
    Ok(())
}

/// Parses `host:port` (a name such as `localhost` or `0.0.0.0` is accepted as well as an IP).
fn parse_bind(key: &str, value: &str) -> Result<(), ConfigError> {
    if value.parse::<SocketAddr>().is_ok() {
        return Ok(());
    }
    match value.rsplit_once(':') {
        Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok() => Ok(()),
        _ => Err(ConfigError::invalid(
            key,
            format!("{value:?} is not host:port"),
        )),
    }
}
