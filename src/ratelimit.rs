//! Provider rate limits (`rate = "50/s"` on a channel): a GCRA, shared through Redis
//! on that backend (`store/redis/lua/rate.lua`, the same step on Redis' clock), in
//! process memory on SQLite ([`LocalLimiter`]).
//!
//! A limiter keeps one instant per key, its theoretical arrival time (TAT): when the
//! next place would be if every place were used exactly one `interval` after the last.
//! Callers reserve, then sleep: a reservation always succeeds and says how long to wait,
//! so concurrent callers get successive places instead of retrying in a thundering herd,
//! and the sends come out evenly spaced.

use std::{
    collections::HashMap,
    sync::Mutex,
    time::{Duration, Instant},
};

/// An entry is dropped only once its TAT is this far in the past. Dropping one whose TAT
/// has passed changes nothing for a caller at a later `now`, but callers read the clock
/// before they take the lock, so one may arrive with a `now` slightly earlier than the
/// caller that pruned.
const PRUNE_GRACE: Duration = Duration::from_secs(1);

/// One place taken: how long the caller waits before using it, and the limiter's new TAT.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Step {
    pub wait: Duration,
    pub tat: Instant,
}

/// One GCRA reservation at `now` on a limiter whose TAT is `tat` (`None`: no state, as
/// for an idle limiter), allowing one place every `interval` and up to `burst` at once
/// (`0` counts as `1`: strictly spaced).
///
/// The place is `burst - 1` intervals before the TAT, or `now` if that has passed; the
/// wait is what is left until it, and the TAT moves one interval on.
pub fn step(tat: Option<Instant>, now: Instant, interval: Duration, burst: u32) -> Step {
    let tat = tat.map_or(now, |t| t.max(now));
    let allowance = interval.saturating_mul(burst.max(1) - 1);
    Step {
        wait: tat.duration_since(now).saturating_sub(allowance),
        tat: tat + interval,
    }
}

/// The in-process limiter SQLite uses: one TAT per key, behind one lock (held for a few
/// nanoseconds of arithmetic, never across an await).
#[derive(Debug, Default)]
pub struct LocalLimiter {
    tats: Mutex<HashMap<String, Instant>>,
}

impl LocalLimiter {
    /// Takes the next place under `key`; returns how long to wait before using it.
    pub fn reserve(&self, key: &str, interval: Duration, burst: u32, now: Instant) -> Duration {
        let mut tats = self.tats.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(tat) = tats.get_mut(key) {
            let next = step(Some(*tat), now, interval, burst);
            *tat = next.tat;
            return next.wait;
        }
        // About to grow: first drop the limiters that have gone idle, so the map holds
        // only keys used lately, however many keys come and go. Pruning only when full
        // keeps its cost proportional to the inserts that filled it.
        if tats.len() == tats.capacity() {
            if let Some(idle_before) = now.checked_sub(PRUNE_GRACE) {
                tats.retain(|_, tat| *tat > idle_before);
            }
        }
        let next = step(None, now, interval, burst);
        tats.insert(key.to_owned(), next.tat);
        next.wait
    }
}

#[cfg(test)]
mod tests {
    use std::{sync::Arc, thread};

    use proptest::prelude::*;

    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// Waits of reservations made at `t0 + offset` (offsets in ms), one after another.
    fn waits(offsets: &[u64], interval: Duration, burst: u32) -> Vec<Duration> {
        let t0 = Instant::now();
        let mut tat = None;
        offsets
            .iter()
            .map(|&at| {
                let s = step(tat, t0 + ms(at), interval, burst);
                tat = Some(s.tat);
                s.wait
            })
            .collect()
    }

    fn ms_each(v: &[u64]) -> Vec<Duration> {
        v.iter().map(|&m| ms(m)).collect()
    }

    #[test]
    fn steps_follow_the_gcra() {
        // (what, arrivals in ms, burst, waits in ms), one place every 10 ms.
        #[rustfmt::skip]
        let cases: &[(&str, &[u64], u32, &[u64])] = &[
            ("spaced an interval apart", &[0, 0, 0, 0], 1, &[0, 10, 20, 30]),
            ("spaced arrivals go at once", &[0, 10, 25, 40], 1, &[0, 0, 0, 0]),
            ("late arrivals queue behind", &[0, 0, 5, 5], 1, &[0, 10, 15, 25]),
            ("a burst, then spaced", &[0; 7], 3, &[0, 0, 0, 10, 20, 30, 40]),
            ("idle: starts afresh", &[0, 0, 0, 100, 100], 1, &[0, 10, 20, 0, 10]),
            ("idle: burst refilled", &[0, 0, 0, 100, 100, 100], 2, &[0, 0, 10, 0, 0, 10]),
            ("burst 0 counts as 1", &[0, 0], 0, &[0, 10]),
        ];
        for (what, arrivals, burst, want) in cases {
            assert_eq!(waits(arrivals, ms(10), *burst), ms_each(want), "{what}");
        }
    }

    #[test]
    fn keys_are_independent() {
        let l = LocalLimiter::default();
        let t0 = Instant::now();
        for _ in 0..5 {
            l.reserve("sms", ms(10), 1, t0);
        }
        assert_eq!(l.reserve("email", ms(10), 1, t0), Duration::ZERO);
        assert_eq!(l.reserve("email", ms(10), 1, t0), ms(10));
        assert_eq!(l.reserve("sms", ms(10), 1, t0), ms(50));
    }

    #[test]
    fn concurrent_callers_get_distinct_places() {
        let l = Arc::new(LocalLimiter::default());
        let interval = ms(1);
        let mut places: Vec<Instant> = thread::scope(|s| {
            let handles: Vec<_> = (0..8)
                .map(|_| {
                    s.spawn(|| {
                        (0..50)
                            .map(|_| {
                                let now = Instant::now();
                                now + l.reserve("k", interval, 1, now)
                            })
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            handles
                .into_iter()
                .flat_map(|h| h.join().expect("thread"))
                .collect()
        });
        places.sort();
        assert_eq!(places.len(), 400);
        for w in places.windows(2) {
            assert!(w[1] - w[0] >= interval, "{:?} apart", w[1] - w[0]);
        }
    }

    #[test]
    fn idle_keys_are_dropped_as_the_map_grows() {
        let l = LocalLimiter::default();
        let t0 = Instant::now();
        for i in 0..100_000u64 {
            l.reserve(&format!("k{i}"), ms(1), 1, t0 + ms(10 * i));
        }
        // Only the keys used in the last PRUNE_GRACE (100 of them) need keeping.
        let len = l.tats.lock().expect("lock").len();
        assert!(len < 1000, "{len} entries kept");
    }

    proptest! {
        /// For any arrival times, in any order: no `burst + 1` places within one
        /// interval, and more generally places i < j are at least (j - i - burst + 1)
        /// intervals apart; no one waits past its place.
        #[test]
        fn places_never_exceed_the_rate(
            offsets in prop::collection::vec(0u64..2_000, 1..60),
            interval in 1u64..50,
            burst in 1u32..5,
        ) {
            let interval = ms(interval);
            let t0 = Instant::now();
            let mut tat = None;
            let places: Vec<Instant> = offsets.iter().map(|&o| {
                let now = t0 + ms(o);
                let s = step(tat, now, interval, burst);
                tat = Some(s.tat);
                now + s.wait
            }).collect();
            for i in 0..places.len() {
                for j in i + 1..places.len() {
                    let k = (j - i) as u32;
                    if k >= burst {
                        let min = interval * (k + 1 - burst);
                        prop_assert!(places[j] >= places[i] + min, "places {i} and {j}");
                    }
                }
            }
        }

        /// Dropping idle keys never changes an answer.
        #[test]
        fn pruning_is_invisible(
            calls in prop::collection::vec((0usize..40, 0u64..300), 1..400),
            interval in 1u64..100,
            burst in 1u32..4,
        ) {
            let interval = ms(interval);
            let l = LocalLimiter::default();
            let mut model: HashMap<usize, Instant> = HashMap::new();
            let mut now = Instant::now();
            for (key, advance) in calls {
                now += ms(advance);
                let want = step(model.get(&key).copied(), now, interval, burst);
                model.insert(key, want.tat);
                prop_assert_eq!(l.reserve(&key.to_string(), interval, burst, now), want.wait);
            }
        }
    }
}
