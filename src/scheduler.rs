//! Scheduler: one task per (tenant, connector), each on its own cron schedule.
//!
//! Start-up jitter spreads the first polls; a global semaphore caps concurrent polls; each
//! poll has a deadline (enforced in [`crate::app::App::poll`]). After a poll that collected
//! nothing the next attempt comes after a capped exponential backoff with jitter, but no later
//! than the next cron fire time. A `Retry-After` the source sent (after any poll outcome) is a
//! floor for the next poll, even past the next fire time: the source asked not to be called
//! before then; it is honoured up to [`MAX_RETRY_AFTER`] (24 h).
//! One tenant's failure or slowness never delays another: tasks share nothing but the
//! semaphore. Shutdown: the cancellation token stops new polls at once; in-flight polls are
//! drained by the caller within the grace deadline. This module does no IO of its own.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use postured_connectors::backoff::{Backoff, Jitter};
use rand::Rng;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::app::{App, TenantRuntime};
use crate::config::SchedulerConfig;
use crate::store::PollOutcome;

/// The longest `Retry-After` the scheduler honours: 24 hours. A source asking for longer (or
/// an HTTP-date far in the future) is polled again after 24 hours, so one bad header cannot
/// silence a connector until the daemon restarts.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(24 * 60 * 60);

/// The backoff after failed polls: `backoff_initial` doubling per consecutive failure, capped
/// at `backoff_max`, with equal jitter (a factor in [0.5, 1.0]). Equal rather than full jitter
/// because a poll is expensive for the source (many requests against one tenant's rate
/// budget): the spread only has to de-synchronise tenants, never to retry almost at once. The
/// source's `Retry-After` is a floor here ([`Backoff::delay`]), not a replacement, and is not
/// capped by `backoff_max` ([`next_poll_at`] caps it at [`MAX_RETRY_AFTER`]).
pub fn poll_backoff(cfg: &SchedulerConfig) -> Backoff {
    Backoff {
        initial: cfg.backoff_initial,
        cap: cfg.backoff_max,
        jitter: Jitter::Equal,
    }
}

/// The instant of the next poll of a connector.
///
/// `failures` counts consecutive polls that collected nothing (0 after a success); after a
/// failure the retry comes at `now + backoff`, unless the next cron fire time is sooner.
/// `retry_after` (the longest `Retry-After` of the poll's errors, whatever its outcome) is a
/// floor: the next poll is never before `now + retry_after` (at most [`MAX_RETRY_AFTER`]),
/// even when that is past the next fire time.
pub fn next_poll_at(
    schedule: &cron::Schedule,
    now: DateTime<Utc>,
    failures: u32,
    retry_after: Option<Duration>,
    backoff: &Backoff,
    rng: &mut impl Rng,
) -> DateTime<Utc> {
    let fire = schedule
        .after(&now)
        .next()
        .unwrap_or(now + chrono::Duration::hours(1));
    let next = if failures == 0 {
        fire
    } else {
        let delay = backoff.delay(failures, retry_after, rng);
        let retry = now + chrono::Duration::from_std(delay).unwrap_or(chrono::Duration::hours(1));
        retry.min(fire).max(now)
    };
    match retry_after {
        Some(ra) => {
            let ra = chrono::Duration::from_std(ra.min(MAX_RETRY_AFTER))
                .unwrap_or(chrono::Duration::hours(24));
            next.max(now + ra)
        }
        None => next,
    }
}

/// The first round of polls of a scheduler start: done once every connector has finished its
/// first poll (with `poll_on_start`), or has armed its schedule (without). The service manager
/// is told the daemon is ready after it ([`crate::cli`]).
#[derive(Debug, Clone)]
pub struct FirstRound {
    remaining: Arc<std::sync::atomic::AtomicUsize>,
    done: Arc<tokio::sync::Notify>,
}

impl FirstRound {
    fn new(connectors: usize) -> Self {
        Self {
            remaining: Arc::new(std::sync::atomic::AtomicUsize::new(connectors)),
            done: Arc::new(tokio::sync::Notify::new()),
        }
    }

    /// One connector's part of the round is done (called once per connector).
    fn finished_one(&self) {
        use std::sync::atomic::Ordering;
        if self.remaining.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.done.notify_waiters();
        }
    }

    /// Resolves when the round is done (at once when it already is, or there is nothing to
    /// poll).
    pub async fn wait(&self) {
        use std::sync::atomic::Ordering;
        loop {
            let notified = self.done.notified();
            if self.remaining.load(Ordering::Acquire) == 0 {
                return;
            }
            notified.await;
        }
    }
}

/// Spawn one polling task per (tenant, connector) on `tracker`. Tasks stop starting polls once
/// `cancel` fires; a poll in flight finishes (the caller bounds that with its grace deadline).
/// Returns the start's [`FirstRound`].
pub fn spawn_all(app: Arc<App>, cancel: CancellationToken, tracker: &TaskTracker) -> FirstRound {
    let permits = Arc::new(Semaphore::new(app.config.scheduler.max_concurrent_polls));
    let connectors = app.tenants().iter().map(|t| t.connectors.len()).sum();
    let round = FirstRound::new(connectors);
    for tenant in app.tenants().iter().cloned() {
        for index in 0..tenant.connectors.len() {
            tracker.spawn(poll_loop(
                app.clone(),
                tenant.clone(),
                index,
                permits.clone(),
                cancel.clone(),
                round.clone(),
            ));
        }
    }
    round
}

async fn poll_loop(
    app: Arc<App>,
    tenant: Arc<TenantRuntime>,
    index: usize,
    permits: Arc<Semaphore>,
    cancel: CancellationToken,
    round: FirstRound,
) {
    let cfg = &app.config.scheduler;
    // Without `poll_on_start`, arming the schedule is this connector's part of the first round.
    let mut round = Some(round);
    if !cfg.poll_on_start
        && let Some(r) = round.take()
    {
        r.finished_one();
    }
    let slot = &tenant.connectors[index];
    let backoff = poll_backoff(cfg);
    let jitter = if cfg.startup_jitter.is_zero() {
        Duration::ZERO
    } else {
        cfg.startup_jitter
            .mul_f64(rand::rng().random_range(0.0..1.0))
    };
    let first = if cfg.poll_on_start {
        Utc::now()
    } else {
        slot.config
            .schedule
            .after(&Utc::now())
            .next()
            .unwrap_or_else(Utc::now)
    };
    let mut next = first + chrono::Duration::from_std(jitter).unwrap_or_default();
    let mut failures: u32 = 0;
    loop {
        let wait = (next - Utc::now()).to_std().unwrap_or(Duration::ZERO);
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(wait) => {}
        }
        let permit = tokio::select! {
            _ = cancel.cancelled() => return,
            p = permits.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => return,
            },
        };
        let span = tracing::info_span!("poll", tenant = %tenant.id, connector = %slot.config.id);
        let report = tracing::Instrument::instrument(app.poll(&tenant, index), span).await;
        drop(permit);
        if let Some(r) = round.take() {
            r.finished_one();
        }
        failures = match report.outcome {
            PollOutcome::Success | PollOutcome::Partial => 0,
            PollOutcome::Failure | PollOutcome::Timeout => failures.saturating_add(1),
        };
        next = next_poll_at(
            &slot.config.schedule,
            Utc::now(),
            failures,
            report.retry_after,
            &backoff,
            &mut rand::rng(),
        );
        tracing::debug!(tenant = %tenant.id, connector = %slot.config.id, outcome = report.outcome.as_str(), %next, "next poll");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use std::str::FromStr;

    fn rng() -> rand::rngs::StdRng {
        rand::rngs::StdRng::seed_from_u64(7)
    }

    /// The scheduler's policy for these two settings.
    fn policy(initial: Duration, max: Duration) -> Backoff {
        poll_backoff(&SchedulerConfig {
            backoff_initial: initial,
            backoff_max: max,
            ..SchedulerConfig::default()
        })
    }

    #[test]
    fn backoff_grows_is_capped_and_jittered() {
        let b = policy(Duration::from_secs(10), Duration::from_secs(60));
        let mut r = rng();
        for (failures, lo, hi) in [
            (1, 5.0, 10.0),
            (2, 10.0, 20.0),
            (3, 20.0, 40.0),
            (9, 30.0, 60.0),
        ] {
            for _ in 0..50 {
                let d = b.delay(failures, None, &mut r).as_secs_f64();
                assert!((lo..=hi).contains(&d), "failures={failures} delay={d}");
            }
        }
    }

    #[test]
    fn retry_after_is_honoured_even_when_fractional() {
        let b = policy(Duration::from_millis(100), Duration::from_secs(1));
        let d = b.delay(1, Some(Duration::from_secs_f64(2.128)), &mut rng());
        assert_eq!(d, Duration::from_secs_f64(2.128));
    }

    #[test]
    fn next_poll_is_cron_after_success_and_backoff_after_failure() {
        let schedule = cron::Schedule::from_str("0 0 * * * *").unwrap(); // hourly
        let now = DateTime::parse_from_rfc3339("2026-11-21T10:15:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let b = policy(Duration::from_secs(10), Duration::from_secs(15 * 60));
        let next = next_poll_at(&schedule, now, 0, None, &b, &mut rng());
        assert_eq!(next.to_rfc3339(), "2026-11-21T11:00:00+00:00");
        let retry = next_poll_at(&schedule, now, 1, None, &b, &mut rng());
        assert!(retry > now && retry <= now + chrono::Duration::seconds(10));
        // A long backoff loses to the schedule.
        let b = policy(Duration::from_secs(7200), Duration::from_secs(7200));
        let capped = next_poll_at(&schedule, now, 1, None, &b, &mut rng());
        assert_eq!(capped.to_rfc3339(), "2026-11-21T11:00:00+00:00");
    }

    /// Issue 8 row 18: a `Retry-After` longer than the cron interval is honoured past the next
    /// fire time (it used to be cut to the fire time, ignoring the source's back-off request),
    /// after a failed and after a partial poll, and is capped at [`MAX_RETRY_AFTER`].
    #[test]
    fn retry_after_past_the_next_fire_time_is_honoured() {
        let schedule = cron::Schedule::from_str("0 */15 * * * *").unwrap(); // every 15 minutes
        let now = DateTime::parse_from_rfc3339("2026-11-21T10:15:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let b = policy(Duration::from_secs(10), Duration::from_secs(15 * 60));
        let two_hours = Some(Duration::from_secs(7200));
        for failures in [1, 3, 0] {
            let next = next_poll_at(&schedule, now, failures, two_hours, &b, &mut rng());
            assert_eq!(
                next.to_rfc3339(),
                "2026-11-21T12:15:00+00:00",
                "failures={failures}"
            );
        }
        // A short Retry-After after a success does not move the schedule earlier.
        let next = next_poll_at(
            &schedule,
            now,
            0,
            Some(Duration::from_secs(60)),
            &b,
            &mut rng(),
        );
        assert_eq!(next.to_rfc3339(), "2026-11-21T10:30:00+00:00");
        // Absurd requests are capped at a day.
        let next = next_poll_at(
            &schedule,
            now,
            1,
            Some(Duration::from_secs(400 * 24 * 3600)),
            &b,
            &mut rng(),
        );
        assert_eq!(next.to_rfc3339(), "2026-11-22T10:15:00+00:00");
    }
}
