//! `[dispatch]`, and how the channels' timeouts must fit in its lease and drain.

use std::time::Duration;

use super::Issues;
use crate::config::{
    DispatchConfig, EmailConfig, EmailTransport, SEND_MARGIN, SmsConfig, SmsTransport,
    WebhookConfig, raw::RawDispatch,
};

pub(super) fn dispatch(issues: &mut Issues<'_>, d: &RawDispatch) -> DispatchConfig {
    let secs = Duration::from_secs;
    let out = DispatchConfig {
        workers: issues.positive("dispatch.workers", d.workers, 2),
        batch_size: issues.positive("dispatch.batch_size", d.batch_size, 100),
        concurrency: issues.positive("dispatch.concurrency", d.concurrency, 32),
        max_attempts: issues.positive("dispatch.max_attempts", d.max_attempts, 6),
        max_age: issues.duration("dispatch.max_age", d.max_age.as_deref(), secs(6 * 3600)),
        backoff: issues.duration("dispatch.backoff", d.backoff.as_deref(), secs(30)),
        backoff_max: issues.duration("dispatch.backoff_max", d.backoff_max.as_deref(), secs(3600)),
        // Short, and kept alive by renewal: a process killed with -9 holds its touches
        // for at most this long, and the reconciler takes them over within
        // `reconcile_every` after (35 s with these defaults, then they are sent).
        lease: issues.duration("dispatch.lease", d.lease.as_deref(), secs(30)),
        reconcile_every: issues.duration(
            "dispatch.reconcile_every",
            d.reconcile_every.as_deref(),
            secs(5),
        ),
        drain_timeout: issues.duration(
            "dispatch.drain_timeout",
            d.drain_timeout.as_deref(),
            secs(20),
        ),
        poll_interval: issues.duration(
            "dispatch.poll_interval",
            d.poll_interval.as_deref(),
            Duration::from_millis(500),
        ),
    };
    if out.backoff.is_zero() {
        issues.push("dispatch.backoff", "must be longer than 0s");
    }
    if out.poll_interval.is_zero() {
        issues.push("dispatch.poll_interval", "must be longer than 0s");
    }
    out
}

/// Each channel's timeout (the longest one provider call may take), with its key.
pub(super) fn channel_timeouts(
    email: &Option<EmailConfig>,
    sms: &Option<SmsConfig>,
    webhook: &Option<WebhookConfig>,
) -> Vec<(&'static str, Duration)> {
    let mut out = Vec::new();
    if let Some(EmailConfig {
        transport: EmailTransport::Smtp { timeout, .. },
        ..
    }) = email
    {
        out.push(("channels.email.timeout", *timeout));
    }
    if let Some(SmsConfig {
        transport: SmsTransport::Twilio { timeout, .. },
        ..
    }) = sms
    {
        out.push(("channels.sms.timeout", *timeout));
    }
    if let Some(w) = webhook {
        out.push(("channels.webhook.timeout", w.timeout));
    }
    out
}

/// A send must fit in what is left of a lease between renewals (else it would never
/// start), and in the drain (else every shutdown would cut it off).
pub(super) fn check_timeouts(
    issues: &mut Issues<'_>,
    dispatch: &DispatchConfig,
    timeouts: &[(&'static str, Duration)],
) {
    if let Some((key, timeout)) = timeouts.iter().max_by_key(|(_, t)| *t) {
        let min = DispatchConfig::min_lease(*timeout);
        if dispatch.lease < min {
            issues.push(
                "dispatch.lease",
                format!(
                    "must be at least {}s: a send starts only with {key} ({}s) plus {}s of its lease left, and leases are renewed every quarter lease",
                    min.as_secs(),
                    timeout.as_secs_f64(),
                    SEND_MARGIN.as_secs()
                ),
            );
        }
    }
    for (key, timeout) in timeouts {
        if *timeout >= dispatch.drain_timeout {
            issues.push(
                key,
                format!(
                    "must be shorter than dispatch.drain_timeout ({}s)",
                    dispatch.drain_timeout.as_secs()
                ),
            );
        }
    }
}
