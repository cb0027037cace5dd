//! The circuit: when SuperID gives several different tenants the same refusal within a short window,
//! the fault is this instance's (a wrong client secret, the wrong partner key, a wrong clock), not the
//! tenants'. The circuit then opens: exchanges pause for every tenant and no tenant changes state
//! because of it; one tenant is probed at a growing interval, and the first exchange that succeeds
//! closes the circuit. It is kept per instance, in memory.

use std::collections::{BTreeSet, VecDeque};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use chrono::{DateTime, Utc};

/// The circuit's thresholds (`service.circuit_*`).
#[derive(Debug, Clone, Copy)]
pub struct CircuitSettings {
    /// Distinct tenants refused the same way that open the circuit.
    pub tenants: usize,
    pub window: Duration,
    pub probe_base: Duration,
    pub probe_max: Duration,
}

/// Whether an exchange may be made now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Gate {
    /// The circuit is closed.
    Pass,
    /// The circuit is open and this tenant is its probe.
    Probe,
    /// The circuit is open: no exchange; the tenant is due again at this time.
    Paused(DateTime<Utc>),
}

/// What a refusal did to the circuit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Observed {
    /// Counted; the circuit stays closed: the refusal is the tenant's own.
    Counted,
    /// This refusal opened the circuit. `tenants` are the others refused the same way in the window:
    /// their refusals were the instance's too.
    Opened {
        retry_at: DateTime<Utc>,
        tenants: Vec<String>,
    },
    /// The circuit is open (a probe failed, or an exchange in flight came back): the tenant waits.
    Paused(DateTime<Utc>),
}

#[derive(Debug)]
struct Open {
    reason: String,
    opened_at: DateTime<Utc>,
    next_probe: DateTime<Utc>,
    interval: Duration,
    /// Tenants whose exchange was paused: due again as soon as the circuit closes.
    paused: BTreeSet<String>,
    /// When the open circuit was last logged (once per window, not per tenant).
    logged_at: DateTime<Utc>,
}

#[derive(Debug, Default)]
struct Inner {
    /// Recent suspect refusals: when, the kind, the tenant.
    recent: VecDeque<(DateTime<Utc>, String, String)>,
    open: Option<Open>,
}

/// The circuit of one daemon instance. Share it with `Arc`.
#[derive(Debug)]
pub struct Circuit {
    settings: CircuitSettings,
    inner: Mutex<Inner>,
}

fn chrono(duration: Duration) -> chrono::Duration {
    chrono::Duration::from_std(duration).unwrap_or(chrono::Duration::MAX)
}

impl Circuit {
    pub fn new(settings: CircuitSettings) -> Self {
        metrics::gauge!("partner_service_circuit_open").set(0.0);
        Self {
            settings,
            inner: Mutex::new(Inner::default()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // The state stays consistent whatever a panicking holder did: every change is one assignment.
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Asks before an exchange for `tenant` at `now`.
    pub fn gate(&self, tenant: &str, now: DateTime<Utc>) -> Gate {
        let mut inner = self.lock();
        let Some(open) = inner.open.as_mut() else {
            return Gate::Pass;
        };
        if now >= open.next_probe {
            // The probe holds the next slot; a probe that never reports back is replaced then.
            open.next_probe = now + chrono(open.interval);
            open.interval = (open.interval * 2).min(self.settings.probe_max);
            tracing::info!(tenant, next_probe = %open.next_probe, "circuit open: probing with this tenant");
            return Gate::Probe;
        }
        open.paused.insert(tenant.to_owned());
        metrics::counter!("partner_service_circuit_paused_total").increment(1);
        if now - open.logged_at >= chrono(self.settings.window) {
            open.logged_at = now;
            tracing::error!(
                reason = %open.reason,
                since = %open.opened_at,
                paused_tenants = open.paused.len(),
                next_probe = %open.next_probe,
                "circuit still open: exchanges are paused for every tenant"
            );
        }
        Gate::Paused(open.next_probe)
    }

    /// Records a refusal that is not unambiguous about the tenant (`Verdict::Suspect`) of `kind`.
    pub fn refused(&self, tenant: &str, kind: &str, reason: &str, now: DateTime<Utc>) -> Observed {
        let mut inner = self.lock();
        if let Some(open) = inner.open.as_mut() {
            open.paused.insert(tenant.to_owned());
            return Observed::Paused(open.next_probe);
        }
        let window = chrono(self.settings.window);
        while inner
            .recent
            .front()
            .is_some_and(|(at, _, _)| now - *at > window)
        {
            inner.recent.pop_front();
        }
        inner
            .recent
            .push_back((now, kind.to_owned(), tenant.to_owned()));
        let tenants: BTreeSet<String> = inner
            .recent
            .iter()
            .filter(|(_, k, _)| k == kind)
            .map(|(_, _, t)| t.clone())
            .collect();
        if tenants.len() < self.settings.tenants {
            return Observed::Counted;
        }
        let reason = format!(
            "{} tenants got the same refusal ({kind}) within {} s: the fault is this instance's \
             (check superoffice.client_secret, the partner key and the clock); last: {reason}",
            tenants.len(),
            self.settings.window.as_secs()
        );
        let next_probe = now + chrono(self.settings.probe_base);
        tracing::error!(%reason, next_probe = %next_probe, "circuit opened: exchanges paused for every tenant");
        metrics::gauge!("partner_service_circuit_open").set(1.0);
        metrics::counter!("partner_service_circuit_opened_total").increment(1);
        let others: Vec<String> = tenants.iter().filter(|t| *t != tenant).cloned().collect();
        inner.recent.clear();
        inner.open = Some(Open {
            reason,
            opened_at: now,
            next_probe,
            interval: (self.settings.probe_base * 2).min(self.settings.probe_max),
            paused: tenants,
            logged_at: now,
        });
        Observed::Opened {
            retry_at: next_probe,
            tenants: others,
        }
    }

    /// Records a successful exchange: an open circuit closes. Returns the tenants paused meanwhile
    /// (due again now), or `None` when the circuit was closed already.
    pub fn succeeded(&self) -> Option<Vec<String>> {
        let mut inner = self.lock();
        let open = inner.open.take()?;
        inner.recent.clear();
        metrics::gauge!("partner_service_circuit_open").set(0.0);
        tracing::warn!(reason = %open.reason, since = %open.opened_at, paused_tenants = open.paused.len(), "circuit closed: an exchange succeeded");
        Some(open.paused.into_iter().collect())
    }

    /// Why the circuit is open, when it is (for `/healthz`).
    pub fn open_reason(&self) -> Option<String> {
        self.lock().open.as_ref().map(|open| open.reason.clone())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    fn circuit() -> Circuit {
        Circuit::new(CircuitSettings {
            tenants: 3,
            window: Duration::from_secs(60),
            probe_base: Duration::from_secs(10),
            probe_max: Duration::from_secs(25),
        })
    }

    fn at(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + secs, 0).unwrap()
    }

    #[test]
    fn the_same_refusal_for_enough_distinct_tenants_opens_it() {
        let c = circuit();
        assert_eq!(c.refused("Cust1", "denied", "x", at(0)), Observed::Counted);
        assert_eq!(
            c.refused("Cust1", "denied", "x", at(1)),
            Observed::Counted,
            "one tenant twice is still one tenant"
        );
        assert_eq!(
            c.refused("Cust2", "invalid_signature", "x", at(2)),
            Observed::Counted,
            "another kind"
        );
        assert_eq!(c.refused("Cust2", "denied", "x", at(3)), Observed::Counted);
        assert_eq!(c.gate("Cust9", at(3)), Gate::Pass);
        let opened = c.refused("Cust3", "denied", "x", at(4));
        assert_eq!(
            opened,
            Observed::Opened {
                retry_at: at(14),
                tenants: vec!["Cust1".into(), "Cust2".into()]
            }
        );
        assert!(c.open_reason().unwrap().contains("(denied)"));
    }

    #[test]
    fn refusals_outside_the_window_do_not_count() {
        let c = circuit();
        c.refused("Cust1", "denied", "x", at(0));
        c.refused("Cust2", "denied", "x", at(30));
        assert_eq!(c.refused("Cust3", "denied", "x", at(61)), Observed::Counted);
        assert!(c.open_reason().is_none());
    }

    #[test]
    fn an_open_circuit_pauses_everyone_but_one_probe_at_a_growing_interval() {
        let c = circuit();
        for t in ["Cust1", "Cust2", "Cust3"] {
            c.refused(t, "denied", "x", at(0));
        }
        assert_eq!(c.gate("Cust4", at(5)), Gate::Paused(at(10)));
        assert_eq!(c.gate("Cust4", at(10)), Gate::Probe);
        assert_eq!(
            c.gate("Cust5", at(11)),
            Gate::Paused(at(30)),
            "next probe 20 s on"
        );
        assert_eq!(
            c.refused("Cust4", "denied", "x", at(12)),
            Observed::Paused(at(30))
        );
        assert_eq!(c.gate("Cust5", at(30)), Gate::Probe);
        assert_eq!(
            c.gate("Cust6", at(31)),
            Gate::Paused(at(55)),
            "capped at 25 s"
        );
        let paused = c.succeeded().unwrap();
        assert_eq!(
            paused,
            vec!["Cust1", "Cust2", "Cust3", "Cust4", "Cust5", "Cust6"]
        );
        assert_eq!(c.gate("Cust6", at(32)), Gate::Pass);
        assert!(c.succeeded().is_none());
        assert!(c.open_reason().is_none());
    }
}
