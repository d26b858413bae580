//! Policy tests: the throttle against an independent brute force (`props`), the
//! priority yield (`yields`) and the whole [`evaluate`](super::evaluate) (`evaluate`).

mod admit;
mod evaluate;
mod props;
mod reach;
mod yields;

use crate::domain::Channel;
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::{Limit, Limits, Scope, Slot, Upcoming};
use crate::{config::Cap, domain::TouchId};

const HOUR: i64 = 3600;
const DAY: i64 = 86_400;

fn utc(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

/// 2026-06-01T00:00:00Z: the origin the generated instants count seconds from.
fn t0() -> DateTime<Utc> {
    utc("2026-06-01T00:00:00Z")
}

fn at(secs: i64) -> DateTime<Utc> {
    t0() + chrono::Duration::seconds(secs)
}

fn secs(t: DateTime<Utc>) -> i64 {
    (t - t0()).num_seconds()
}

fn id(s: &str) -> TouchId {
    TouchId::from_stored(s.to_owned())
}

fn cap(count: u32, per: i64) -> Cap {
    Cap {
        count,
        per: Duration::from_secs(per as u64),
    }
}

fn limits(caps: &[(u32, i64)], min_gap: i64) -> Limits {
    Limits {
        caps: caps
            .iter()
            .map(|&(n, per)| (Scope::Tier("t".into()), cap(n, per)))
            .collect(),
        min_gap: Duration::from_secs(min_gap as u64),
    }
}

fn slot(touch: &str, t: DateTime<Utc>, channel: &str) -> Slot {
    Slot {
        touch: id(touch),
        at: t,
        channel: channel.parse().unwrap(),
    }
}

fn upcoming(touch: &str, priority: u32, t: DateTime<Utc>, channel: &str) -> Upcoming {
    Upcoming {
        touch: id(touch),
        occasion: touch.split(':').next().unwrap_or(touch).to_owned(),
        priority,
        at: t,
        channel: channel.parse().unwrap(),
    }
}

/// The rules restated on whole seconds, written from the definitions rather than from
/// the implementation: a cap `{count, per}` is broken by a set of slots iff `count + 1`
/// of the slots it counts lie within a span shorter than `per` (a half-open window of
/// length `per` holds a set iff the set's span is shorter than `per`); the gap is broken
/// by any two slots closer than `min_gap`.
#[derive(Debug, Clone)]
struct Brute {
    /// (the channel it counts, or all; count; per in seconds), each with its `Limit`.
    caps: Vec<(Option<Channel>, usize, i64, Limit)>,
    gap: i64,
}

/// A slot as the brute force sees it: whole seconds and a channel.
type Point = (i64, Channel);

impl Brute {
    fn of(l: &Limits) -> Self {
        let caps = l
            .caps
            .iter()
            .map(|(scope, c)| {
                let channel = match scope {
                    Scope::Channel(ch) => Some(*ch),
                    _ => None,
                };
                let limit = Limit::Cap(scope.clone(), *c);
                (channel, c.count as usize, c.per.as_secs() as i64, limit)
            })
            .collect();
        Self {
            caps,
            gap: l.min_gap.as_secs() as i64,
        }
    }

    /// The sorted instants a cap counts.
    fn counted(channel: &Option<Channel>, slots: &[Point]) -> Vec<i64> {
        let mut xs: Vec<i64> = slots
            .iter()
            .filter(|(_, ch)| channel.as_ref().is_none_or(|c| c == ch))
            .map(|(x, _)| *x)
            .collect();
        xs.sort_unstable();
        xs
    }

    /// The caps that apply to a slot on `ch`.
    fn applying<'a>(
        &'a self,
        ch: Channel,
    ) -> impl Iterator<Item = &'a (Option<Channel>, usize, i64, Limit)> + 'a {
        self.caps
            .iter()
            .filter(move |(c, ..)| c.is_none_or(|c| c == ch))
    }

    /// Every rule a slot at `t` on `ch` breaks among `slots` (only windows and pairs that
    /// contain it: what its presence could break).
    fn broken(&self, slots: &[Point], t: i64, ch: Channel) -> Vec<Limit> {
        let mut out = Vec::new();
        if self.gap > 0 && slots.iter().any(|(x, _)| (x - t).abs() < self.gap) {
            out.push(Limit::MinGap(Duration::from_secs(self.gap as u64)));
        }
        for (channel, count, per, limit) in self.applying(ch) {
            let xs = Self::counted(channel, slots);
            // `count` other slots plus `t` in a span shorter than `per`; the tightest
            // groups of `count` are consecutive in time.
            let hit = *count == 0
                || xs.windows(*count).any(|g| {
                    let (lo, hi) = (g[0].min(t), g[count - 1].max(t));
                    hi - lo < *per
                });
            if hit {
                out.push(limit.clone());
            }
        }
        out
    }

    fn breaks(&self, slots: &[Point], t: i64, ch: Channel) -> bool {
        !self.broken(slots, t, ch).is_empty()
    }

    /// Every instant where a slot on `ch` would break a rule, as open intervals.
    fn blocked(&self, slots: &[Point], ch: Channel) -> Vec<(i64, i64)> {
        let mut out = Vec::new();
        if self.gap > 0 {
            out.extend(slots.iter().map(|(x, _)| (x - self.gap, x + self.gap)));
        }
        for (channel, count, per, _) in self.applying(ch) {
            let xs = Self::counted(channel, slots);
            for g in xs.windows(*count) {
                let (first, last) = (g[0], g[count - 1]);
                if last - first < *per {
                    out.push((last - per, first + per));
                }
            }
        }
        out
    }

    /// The first instant at or after `from` that no blocked interval covers.
    fn earliest(&self, slots: &[Point], ch: Channel, from: i64) -> i64 {
        let blocked = self.blocked(slots, ch);
        let mut t = from;
        while let Some(&(_, hi)) = blocked.iter().find(|(lo, hi)| *lo < t && t < *hi) {
            t = hi;
        }
        t
    }

    /// Whether a whole history keeps every cap and the gap.
    fn valid(&self, slots: &[Point]) -> bool {
        let mut all: Vec<i64> = slots.iter().map(|(x, _)| *x).collect();
        all.sort_unstable();
        if self.gap > 0 && all.windows(2).any(|p| p[1] - p[0] < self.gap) {
            return false;
        }
        self.caps.iter().all(|(channel, count, per, _)| {
            Self::counted(channel, slots)
                .windows(count + 1)
                .all(|g| g[*count] - g[0] >= *per)
        })
    }
}

fn points(slots: &[Slot]) -> Vec<Point> {
    slots.iter().map(|s| (secs(s.at), s.channel)).collect()
}

#[test]
fn brute_force_sanity() {
    let b = Brute::of(&limits(&[(2, 7 * DAY)], DAY));
    let e = |x: i64| (x, Channel::Email);
    let slots = [e(0), e(3 * DAY)];
    // Any slot in [0, 7d) fills the window starting at 0; at 7d the first slot is out.
    assert!(b.breaks(&slots, 5 * DAY, Channel::Email));
    assert!(b.breaks(&slots, -4 * DAY + 1, Channel::Email));
    assert!(!b.breaks(&slots, -4 * DAY, Channel::Email));
    assert!(!b.breaks(&slots, 7 * DAY, Channel::Email));
    assert_eq!(b.earliest(&slots, Channel::Email, DAY), 7 * DAY);
    assert!(b.valid(&slots) && !b.valid(&[e(0), e(DAY - 1)]));
    assert!(!b.valid(&[e(0), e(2 * DAY), e(6 * DAY)]));
}
