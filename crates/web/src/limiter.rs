//! Per-key limits on state-change notifications: at most `limit` in each minute per tenant and per source
//! address. Counted in this process only: with several partner-web instances behind a balancer each counts
//! its own share.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Keys kept before windows that are over are forgotten, so a flood of made-up keys cannot grow the map
/// without bound.
const PRUNE_ABOVE: usize = 10_000;

/// A fixed one-minute window per key.
#[derive(Debug)]
pub struct Window {
    limit: u32,
    period: Duration,
    counts: Mutex<HashMap<String, (Instant, u32)>>,
}

impl Window {
    pub fn per_minute(limit: u32) -> Self {
        Self::new(limit, Duration::from_secs(60))
    }

    fn new(limit: u32, period: Duration) -> Self {
        Self {
            limit,
            period,
            counts: Mutex::new(HashMap::new()),
        }
    }

    /// Counts one more for `key`; false when that is over the limit of the current window.
    pub fn allow(&self, key: &str) -> bool {
        let now = Instant::now();
        let mut counts = self
            .counts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if counts.len() > PRUNE_ABOVE {
            counts.retain(|_, (start, _)| now.duration_since(*start) < self.period);
        }
        let (start, count) = counts.entry(key.to_owned()).or_insert((now, 0));
        if now.duration_since(*start) >= self.period {
            *start = now;
            *count = 0;
        }
        if *count >= self.limit {
            return false;
        }
        *count += 1;
        true
    }
}

/// `web.state_change_limit_per_tenant` and `web.state_change_limit_per_address`.
#[derive(Debug)]
pub struct NotificationLimits {
    pub per_tenant: Window,
    pub per_address: Window,
}

impl NotificationLimits {
    pub fn new(per_tenant: u32, per_address: u32) -> Self {
        Self {
            per_tenant: Window::per_minute(per_tenant),
            per_address: Window::per_minute(per_address),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn each_key_has_its_own_allowance() {
        let window = Window::per_minute(2);
        assert!(window.allow("a"));
        assert!(window.allow("a"));
        assert!(!window.allow("a"));
        assert!(!window.allow("a"));
        assert!(window.allow("b"));
    }

    #[test]
    fn a_new_window_starts_afresh() {
        let window = Window::new(1, Duration::ZERO);
        assert!(window.allow("a"));
        assert!(window.allow("a"));
    }

    #[test]
    fn made_up_keys_do_not_grow_the_map_for_ever() {
        let window = Window::new(1, Duration::ZERO);
        for i in 0..(PRUNE_ABOVE + 10) {
            window.allow(&i.to_string());
        }
        assert!(window.counts.lock().unwrap().len() <= PRUNE_ABOVE + 1);
    }
}
