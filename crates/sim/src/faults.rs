//! Injected faults per endpoint group: latency, failures (the next N, or a share) and hangs.

use std::collections::BTreeMap;
use std::time::Duration;

use actix_web::http::StatusCode;
use rand::RngExt;
use serde::{Deserialize, Serialize};

/// Endpoint groups faults are injected into.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Group {
    /// Discovery, authorize, tokens, JWKS.
    Superid,
    /// PartnerSystemUserService, REST and SOAP.
    Exchange,
    /// The state API.
    State,
    /// Every tenant API host.
    Api,
}

impl Group {
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "superid" => Some(Self::Superid),
            "exchange" => Some(Self::Exchange),
            "state" => Some(Self::State),
            "api" => Some(Self::Api),
            _ => None,
        }
    }
}

/// The fault set on one group.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fault {
    /// Delay added before every request of the group is handled.
    #[serde(default)]
    pub latency_ms: u64,
    /// Fail exactly the next N requests.
    #[serde(default)]
    pub fail_next: u32,
    /// Fail this share (0.0–1.0) of requests, at random.
    #[serde(default)]
    pub fail_share: f64,
    /// Status of failed requests (default 503).
    #[serde(default)]
    pub fail_status: Option<u16>,
    /// Never answer (until the simulator stops).
    #[serde(default)]
    pub hang: bool,
    /// Only requests with this HTTP method (e.g. `POST`) are affected and counted; others proceed.
    #[serde(default)]
    pub method: Option<String>,
    /// Fail after the handler ran: the request takes effect, its answer is lost (a timeout after the
    /// server acted, as a client sees it).
    #[serde(default)]
    pub after_handler: bool,
}

#[derive(Debug, Clone, Default, Serialize)]
#[serde(transparent)]
pub struct Faults(BTreeMap<Group, Fault>);

/// What to do with one request.
#[derive(Debug, PartialEq)]
pub enum Action {
    Proceed,
    Fail(StatusCode),
    /// Handle the request, then answer with this status instead.
    LoseAnswer(StatusCode),
    Hang,
}

impl Faults {
    pub fn set(&mut self, group: Group, fault: Fault) {
        self.0.insert(group, fault);
    }

    pub fn clear(&mut self, group: Option<Group>) {
        match group {
            Some(group) => {
                self.0.remove(&group);
            }
            None => self.0.clear(),
        }
    }

    /// Decides the fate of one request and counts down `fail_next`.
    pub fn decide(&mut self, group: Group, method: &str) -> (Duration, Action) {
        let Some(fault) = self.0.get_mut(&group) else {
            return (Duration::ZERO, Action::Proceed);
        };
        if fault
            .method
            .as_deref()
            .is_some_and(|only| !only.eq_ignore_ascii_case(method))
        {
            return (Duration::ZERO, Action::Proceed);
        }
        let delay = Duration::from_millis(fault.latency_ms);
        let status = fault
            .fail_status
            .and_then(|s| StatusCode::from_u16(s).ok())
            .unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
        let action = if fault.hang {
            Action::Hang
        } else if fault.fail_next > 0
            || (fault.fail_share > 0.0 && rand::rng().random::<f64>() < fault.fail_share)
        {
            fault.fail_next = fault.fail_next.saturating_sub(1);
            if fault.after_handler {
                Action::LoseAnswer(status)
            } else {
                Action::Fail(status)
            }
        } else {
            Action::Proceed
        };
        (delay, action)
    }
}

/// Which listener a request arrived on.
#[derive(Debug, Clone, Copy)]
pub enum Listener {
    SuperId,
    ApiHost,
}

/// The group of a request, or None for the admin API.
pub fn group_of(listener: Listener, path: &str) -> Option<Group> {
    let path = path.to_ascii_lowercase();
    match listener {
        Listener::ApiHost => Some(Group::Api),
        Listener::SuperId if path.starts_with("/admin") => None,
        Listener::SuperId
            if path.starts_with("/login/api/partnersystemuser")
                || path.starts_with("/login/services/") =>
        {
            Some(Group::Exchange)
        }
        Listener::SuperId if path.starts_with("/api/state") => Some(Group::State),
        Listener::SuperId => Some(Group::Superid),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn fail_next_counts_down() {
        let mut faults = Faults::default();
        faults.set(
            Group::Exchange,
            Fault {
                fail_next: 2,
                fail_status: Some(502),
                ..Fault::default()
            },
        );
        let bad = Action::Fail(StatusCode::BAD_GATEWAY);
        assert_eq!(faults.decide(Group::Exchange, "POST").1, bad);
        assert_eq!(faults.decide(Group::Exchange, "POST").1, bad);
        assert_eq!(faults.decide(Group::Exchange, "POST").1, Action::Proceed);
        assert_eq!(faults.decide(Group::Api, "GET").1, Action::Proceed);
    }

    #[test]
    fn share_one_always_fails_and_clear_removes() {
        let mut faults = Faults::default();
        let fault = Fault {
            fail_share: 1.0,
            ..Fault::default()
        };
        faults.set(Group::Api, fault);
        let fail = Action::Fail(StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(faults.decide(Group::Api, "GET").1, fail);
        faults.clear(None);
        assert_eq!(faults.decide(Group::Api, "GET").1, Action::Proceed);
    }

    #[test]
    fn a_method_filter_leaves_other_requests_alone_and_uncounted() {
        let mut faults = Faults::default();
        faults.set(
            Group::Api,
            Fault {
                fail_next: 1,
                method: Some("POST".into()),
                after_handler: true,
                ..Fault::default()
            },
        );
        assert_eq!(faults.decide(Group::Api, "GET").1, Action::Proceed);
        assert_eq!(
            faults.decide(Group::Api, "post").1,
            Action::LoseAnswer(StatusCode::SERVICE_UNAVAILABLE)
        );
        assert_eq!(faults.decide(Group::Api, "POST").1, Action::Proceed);
    }

    #[test]
    fn groups_by_path() {
        let g = |p| group_of(Listener::SuperId, p);
        assert_eq!(
            g("/Login/api/PartnerSystemUser/Authenticate"),
            Some(Group::Exchange)
        );
        assert_eq!(
            g("/login/Services/PartnerSystemUserService.svc"),
            Some(Group::Exchange)
        );
        assert_eq!(g("/api/state/Cust1"), Some(Group::State));
        assert_eq!(g("/login/common/oauth/tokens"), Some(Group::Superid));
        assert_eq!(g("/admin/records"), None);
        assert_eq!(group_of(Listener::ApiHost, "/Cust1/api"), Some(Group::Api));
    }
}
