//! How long a tenant waits after a passing failure: exponential in its consecutive failures, with
//! jitter so that tenants failing together (SuperOffice down) do not all come back at the same instant.

use std::time::Duration;

/// Exponential backoff with jitter between `base` and `max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub base: Duration,
    pub max: Duration,
}

impl Backoff {
    /// The ceiling after `failures` consecutive failures (1 = the first): `base · 2^(failures-1)`,
    /// at most `max`.
    pub fn ceiling(&self, failures: u32) -> Duration {
        let exponent = failures.saturating_sub(1).min(30);
        self.base.saturating_mul(1u32 << exponent).min(self.max)
    }

    /// A random delay in the upper half of the ceiling: never much sooner than planned, never all at once.
    pub fn delay(&self, failures: u32) -> Duration {
        let ceiling = u64::try_from(self.ceiling(failures).as_millis()).unwrap_or(u64::MAX);
        if ceiling == 0 {
            return Duration::ZERO;
        }
        let jitter = uuid::Uuid::new_v4().as_u128() as u64 % (ceiling / 2 + 1);
        Duration::from_millis(ceiling - jitter)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BACKOFF: Backoff = Backoff {
        base: Duration::from_secs(5),
        max: Duration::from_secs(900),
    };

    #[test]
    fn the_ceiling_doubles_per_failure_up_to_the_cap() {
        let ceilings: Vec<u64> = (1..=10).map(|n| BACKOFF.ceiling(n).as_secs()).collect();
        assert_eq!(ceilings, [5, 10, 20, 40, 80, 160, 320, 640, 900, 900]);
        assert_eq!(BACKOFF.ceiling(0).as_secs(), 5);
        assert_eq!(BACKOFF.ceiling(u32::MAX).as_secs(), 900);
    }

    #[test]
    fn delays_stay_in_the_upper_half_of_the_ceiling() {
        for failures in 1..=12 {
            let ceiling = BACKOFF.ceiling(failures);
            for _ in 0..50 {
                let delay = BACKOFF.delay(failures);
                assert!(
                    delay <= ceiling && delay >= ceiling / 2,
                    "{delay:?} of {ceiling:?}"
                );
            }
        }
        let spread: std::collections::HashSet<_> = (0..50).map(|_| BACKOFF.delay(6)).collect();
        assert!(spread.len() > 1, "jitter varies the delay");
    }
}
