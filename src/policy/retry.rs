//! Retries after a transient failure: exponential backoff with jitter, bounded by the
//! attempt count, the maximum age, the touch's expiry and its send window.

use std::time::Duration;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

use crate::{config::DispatchConfig, domain::SendWindow};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RetryDecision {
    RetryAt(DateTime<Utc>),
    GiveUp(String),
}

/// `base * 2^(attempt-1)`, capped, then scaled by `jitter` in `[0.5, 1.0]` so a burst of
/// failures does not come back as a burst.
pub fn backoff(attempt: u32, base: Duration, max: Duration, jitter: f64) -> Duration {
    let exp = base.saturating_mul(1u32 << attempt.saturating_sub(1).min(20));
    let capped = exp.min(max).max(base.min(max));
    capped.mul_f64(0.5 + 0.5 * jitter.clamp(0.0, 1.0))
}

/// How a channel retries: the dispatcher's exponential backoff, or a fixed schedule
/// (webhooks, per Standard Webhooks) with its own maximum age.
#[derive(Debug, Clone, Copy)]
pub enum Plan<'a> {
    Backoff,
    /// The wait before each retry; the schedule's end is the last attempt.
    Schedule {
        waits: &'a [Duration],
        max_age: Duration,
    },
}

pub struct RetryInput<'a> {
    pub cfg: &'a DispatchConfig,
    pub plan: Plan<'a>,
    /// The provider's `Retry-After`: no retry before it.
    pub retry_after: Option<Duration>,
    /// Attempts made so far, including the one that just failed.
    pub attempts: u32,
    pub scheduled_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub window: SendWindow,
    pub zone: Tz,
    pub now: DateTime<Utc>,
    pub jitter: f64,
    pub reason: &'a str,
}

pub fn decide(i: &RetryInput<'_>) -> RetryDecision {
    let (max_attempts, max_age) = match i.plan {
        Plan::Backoff => (i.cfg.max_attempts, i.cfg.max_age),
        Plan::Schedule { waits, max_age } => (waits.len() as u32 + 1, max_age),
    };
    if i.attempts >= max_attempts {
        return RetryDecision::GiveUp(format!(
            "gave up after {} attempts: {}",
            i.attempts, i.reason
        ));
    }
    let wait = match i.plan {
        Plan::Backoff => backoff(i.attempts, i.cfg.backoff, i.cfg.backoff_max, i.jitter),
        // Jitter only shortens a step by up to a fifth: the schedule stays recognisable.
        Plan::Schedule { waits, .. } => {
            waits[(i.attempts.max(1) - 1) as usize].mul_f64(0.8 + 0.2 * i.jitter.clamp(0.0, 1.0))
        }
    };
    let wait = wait.max(i.retry_after.unwrap_or_default());
    let at = i.now + chrono::Duration::from_std(wait).unwrap_or(chrono::Duration::zero());
    let too_old =
        i.scheduled_at + chrono::Duration::from_std(max_age).unwrap_or(chrono::Duration::MAX);
    let deadline = i.expires_at.min(too_old);
    // Never before the wait asked for: from the next whole second (a 6 s Retry-After
    // read at 10:00:00.3 is 10:00:07), not the one `at` falls in.
    match i.window.fit_not_before(at, i.zone, deadline) {
        Some(at) => RetryDecision::RetryAt(at),
        None => RetryDecision::GiveUp(format!(
            "gave up after {} attempts, no retry possible before expiry or max age: {}",
            i.attempts, i.reason
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> DispatchConfig {
        let s = Duration::from_secs;
        DispatchConfig {
            workers: 1,
            batch_size: 10,
            concurrency: 1,
            max_attempts: 4,
            max_age: s(3600),
            backoff: s(30),
            backoff_max: s(600),
            lease: s(60),
            reconcile_every: s(30),
            drain_timeout: s(10),
            poll_interval: s(1),
        }
    }

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn backoff_grows_caps_and_jitters() {
        let (b, m) = (Duration::from_secs(30), Duration::from_secs(600));
        assert_eq!(backoff(1, b, m, 1.0), Duration::from_secs(30));
        assert_eq!(backoff(2, b, m, 1.0), Duration::from_secs(60));
        assert_eq!(backoff(3, b, m, 1.0), Duration::from_secs(120));
        assert_eq!(backoff(10, b, m, 1.0), m);
        assert_eq!(backoff(2, b, m, 0.0), Duration::from_secs(30));
        assert_eq!(backoff(60, b, m, 0.5), Duration::from_secs(450));
    }

    #[test]
    fn retries_until_attempts_age_or_expiry_run_out() {
        let cfg = cfg();
        let input = |attempts, now: &str| RetryInput {
            cfg: &cfg,
            plan: Plan::Backoff,
            retry_after: None,
            attempts,
            scheduled_at: utc("2026-06-01T09:00:00Z"),
            expires_at: utc("2026-06-02T00:00:00Z"),
            window: "09:00-18:00".parse().unwrap(),
            zone: chrono_tz::UTC,
            now: utc(now),
            jitter: 1.0,
            reason: "smtp 451",
        };
        assert_eq!(
            decide(&input(1, "2026-06-01T09:00:00Z")),
            RetryDecision::RetryAt(utc("2026-06-01T09:00:30Z"))
        );
        assert!(
            matches!(decide(&input(4, "2026-06-01T09:00:00Z")), RetryDecision::GiveUp(r) if r.contains("4 attempts") && r.contains("smtp 451"))
        );
        // Past max age (1 h after the planned time).
        assert!(matches!(
            decide(&input(2, "2026-06-01T09:59:50Z")),
            RetryDecision::GiveUp(_)
        ));
        // The window closes at 18:00 and the touch expires at midnight: no retry tonight.
        assert!(matches!(
            decide(&input(2, "2026-06-01T17:59:30Z")),
            RetryDecision::GiveUp(_)
        ));
    }

    #[test]
    fn schedules_and_retry_after() {
        let cfg = cfg();
        let waits = [Duration::from_secs(5), Duration::from_secs(300)];
        let input = |attempts, retry_after| RetryInput {
            cfg: &cfg,
            plan: Plan::Schedule {
                waits: &waits,
                max_age: Duration::from_secs(86_400),
            },
            retry_after,
            attempts,
            scheduled_at: utc("2026-06-01T09:00:00Z"),
            expires_at: utc("2026-06-03T00:00:00Z"),
            window: "00:00-24:00".parse().unwrap(),
            zone: chrono_tz::UTC,
            now: utc("2026-06-01T10:00:00Z"),
            jitter: 1.0,
            reason: "webhook 500",
        };
        assert_eq!(
            decide(&input(1, None)),
            RetryDecision::RetryAt(utc("2026-06-01T10:00:05Z"))
        );
        assert_eq!(
            decide(&input(2, None)),
            RetryDecision::RetryAt(utc("2026-06-01T10:05:00Z"))
        );
        // The schedule is used up after its last step: three attempts in all.
        assert!(
            matches!(decide(&input(3, None)), RetryDecision::GiveUp(r) if r.contains("3 attempts"))
        );
        // Retry-After wins when it asks for longer.
        assert_eq!(
            decide(&input(1, Some(Duration::from_secs(60)))),
            RetryDecision::RetryAt(utc("2026-06-01T10:01:00Z"))
        );
        // Never before what was asked, however far into its second the answer came.
        let late = RetryInput {
            now: utc("2026-06-01T10:00:00.3Z"),
            ..input(1, Some(Duration::from_secs(6)))
        };
        assert_eq!(
            decide(&late),
            RetryDecision::RetryAt(utc("2026-06-01T10:00:07Z"))
        );
    }
}
