//! Capped exponential backoff with jitter: the one delay rule shared by the connectors' request
//! retries ([`crate::http`]), the daemon's poll scheduler and its alert-delivery retries.
//!
//! Role: given a policy (first step, cap, jitter kind), the retry number and an optional
//! server-requested minimum (`Retry-After`), compute how long to wait. Pure: it reads no clock,
//! never sleeps and does no IO; randomness comes from the caller's [`Rng`] so tests can seed
//! it. It must not grow knowledge of HTTP statuses, schedules or stores: callers decide when to
//! retry and what to do with the delay.

use std::time::Duration;

use rand::Rng;

/// How the capped exponential step is randomised, so that many clients failing together do
/// not retry in lockstep.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Jitter {
    /// Uniform in `[0, step]` ("full jitter"): spreads retries the most, but may retry almost
    /// at once.
    Full,
    /// Uniform in `[step / 2, step]` ("equal jitter"): keeps at least half the step, for
    /// retries whose cost makes an almost immediate retry wasteful.
    Equal,
}

impl Jitter {
    /// Draw a delay for an un-jittered `step` (see the variants for the ranges; both ends
    /// included). A zero step gives zero.
    pub fn apply(self, step: Duration, rng: &mut impl Rng) -> Duration {
        let low = match self {
            Jitter::Full => Duration::ZERO,
            Jitter::Equal => step / 2,
        };
        rng.random_range(low..=step)
    }
}

/// A backoff policy: `initial × 2^(retry − 1)`, capped at `cap`, randomised by `jitter`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// Un-jittered wait before the first retry.
    pub initial: Duration,
    /// Upper bound of the un-jittered wait (the jittered wait never exceeds it either; a
    /// `Retry-After` floor may).
    pub cap: Duration,
    /// How the step is randomised.
    pub jitter: Jitter,
}

impl Backoff {
    /// The un-jittered step before retry number `retry` (1 = the first retry; 0 is treated as
    /// 1): `initial × 2^(retry − 1)`, capped at `cap`. Never overflows: a step too large to
    /// represent is `cap`.
    pub fn step(&self, retry: u32) -> Duration {
        let exp = retry.saturating_sub(1);
        1u32.checked_shl(exp)
            .and_then(|factor| self.initial.checked_mul(factor))
            .map_or(self.cap, |d| d.min(self.cap))
    }

    /// The wait before retry number `retry` (1 = the first retry): [`Backoff::step`]
    /// randomised by the policy's [`Jitter`], then raised to `floor` when that is longer
    /// (typically the source's `Retry-After`, so a retry never comes sooner than asked; the
    /// floor is not capped, callers bound it if they must).
    pub fn delay(&self, retry: u32, floor: Option<Duration>, rng: &mut impl Rng) -> Duration {
        let jittered = self.jitter.apply(self.step(retry), rng);
        match floor {
            Some(f) if f > jittered => f,
            _ => jittered,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    fn policy(jitter: Jitter) -> Backoff {
        Backoff {
            initial: Duration::from_secs(5),
            cap: Duration::from_secs(60),
            jitter,
        }
    }

    #[test]
    fn step_doubles_from_retry_one_and_caps_without_overflow() {
        let b = policy(Jitter::Full);
        let secs: Vec<u64> = (0..=6).map(|r| b.step(r).as_secs()).collect();
        assert_eq!(secs, [5, 5, 10, 20, 40, 60, 60]);
        assert_eq!(b.step(32), Duration::from_secs(60));
        assert_eq!(b.step(u32::MAX), Duration::from_secs(60));
        let huge = Backoff {
            initial: Duration::MAX,
            cap: Duration::from_secs(1),
            jitter: Jitter::Equal,
        };
        assert_eq!(huge.step(3), Duration::from_secs(1));
    }

    #[test]
    fn jitter_ranges() {
        let mut rng = StdRng::seed_from_u64(1);
        let step = Duration::from_secs(10);
        for _ in 0..200 {
            let f = Jitter::Full.apply(step, &mut rng);
            assert!(f <= step, "{f:?}");
            let e = Jitter::Equal.apply(step, &mut rng);
            assert!(e >= step / 2 && e <= step, "{e:?}");
        }
        assert_eq!(Jitter::Full.apply(Duration::ZERO, &mut rng), Duration::ZERO);
        assert_eq!(
            Jitter::Equal.apply(Duration::ZERO, &mut rng),
            Duration::ZERO
        );
    }

    #[test]
    fn floor_raises_but_never_lowers() {
        let mut rng = StdRng::seed_from_u64(2);
        let b = policy(Jitter::Equal);
        let long = Duration::from_secs_f64(123.456);
        assert_eq!(b.delay(1, Some(long), &mut rng), long);
        for _ in 0..50 {
            let d = b.delay(3, Some(Duration::from_millis(1)), &mut rng);
            assert!(d >= Duration::from_secs(10) && d <= Duration::from_secs(20));
        }
    }
}
