//! `[dispatch]`: workers, retries, leases and the drain.

use std::time::Duration;

/// A send starts only if its claim's lease outlasts the provider call (the channel's
/// timeout) by at least this much: room for two hosts' clocks to disagree and for the
/// outcome to be recorded.
pub const SEND_MARGIN: Duration = Duration::from_secs(2);

#[derive(Debug, Clone)]
pub struct DispatchConfig {
    pub workers: u32,
    pub batch_size: u32,
    pub concurrency: u32,
    pub max_attempts: u32,
    pub max_age: Duration,
    pub backoff: Duration,
    pub backoff_max: Duration,
    /// How long a claim holds its touches without renewal. Renewed every quarter lease
    /// while the batch works; what a dead process held is taken over once it lapses.
    pub lease: Duration,
    pub reconcile_every: Duration,
    pub drain_timeout: Duration,
    pub poll_interval: Duration,
}

impl DispatchConfig {
    /// The shortest lease under which a send taking up to `timeout` still starts between
    /// two renewals (every quarter lease): three quarters of it must hold the call and
    /// [`SEND_MARGIN`]. Whole seconds, rounded up.
    pub fn min_lease(timeout: Duration) -> Duration {
        let need = (timeout + SEND_MARGIN).as_millis() * 4;
        Duration::from_secs(need.div_ceil(3 * 1000) as u64)
    }
}
