//! The throttle against the brute force, on random limits, histories and candidates.
//! Instants are whole seconds around [`t0`], mostly on the hour (give or take a second)
//! so that windows and gaps often end exactly on another slot.

use crate::domain::Channel;
use proptest::prelude::*;

use super::*;
use crate::policy::{
    Candidate, Throttled,
    throttle::{check, earliest, violation},
};

const PRIORITIES: [u32; 4] = [10, 60, 80, 100];

fn instant() -> impl Strategy<Value = i64> {
    prop_oneof![
        3 => (-1440i64..=1440, -1i64..=1).prop_map(|(h, j)| h * HOUR + j),
        1 => -60 * DAY..=60 * DAY,
    ]
}

/// 1h to `max_hours`, usually whole hours.
fn length(max_hours: i64) -> impl Strategy<Value = i64> {
    prop_oneof![
        3 => (1..=max_hours).prop_map(|h| h * HOUR),
        1 => HOUR..=max_hours * HOUR,
    ]
}

fn channel() -> impl Strategy<Value = Channel> {
    prop_oneof![Just(Channel::Email), Just(Channel::Sms)]
}

fn arb_limits() -> impl Strategy<Value = Limits> {
    let scope = prop_oneof![
        Just(Scope::Tier("t".into())),
        Just(Scope::Contact),
        Just(Scope::Tier("t".into()))
    ];
    let caps = prop::collection::vec((scope, 1u32..=4, length(720)), 1..=3);
    let channel_caps = prop::collection::vec(
        (channel().prop_map(Scope::Channel), 1u32..=4, length(720)),
        0..=2,
    );
    let gap = prop_oneof![1 => Just(0i64), 2 => length(120)];
    (caps, channel_caps, gap).prop_map(|(caps, channel_caps, gap)| Limits {
        caps: caps
            .into_iter()
            .chain(channel_caps)
            .map(|(s, n, per)| (s, cap(n, per)))
            .collect(),
        min_gap: std::time::Duration::from_secs(gap as u64),
    })
}

fn arb_slots(max: usize) -> impl Strategy<Value = Vec<Slot>> {
    prop::collection::vec((instant(), channel()), 0..=max).prop_map(|v| {
        v.into_iter()
            .enumerate()
            .map(|(i, (x, ch))| slot(&format!("s{i}"), at(x), ch.as_str()))
            .collect()
    })
}

fn arb_upcoming() -> impl Strategy<Value = Vec<Upcoming>> {
    let one = (instant(), channel(), prop::sample::select(&PRIORITIES[..]));
    prop::collection::vec(one, 0..=4).prop_map(|v| {
        v.into_iter()
            .enumerate()
            .map(|(i, (x, ch, p))| upcoming(&format!("u{i}"), p, at(x), ch.as_str()))
            .collect()
    })
}

/// Drops the slots that break a rule among those kept before them: a valid history.
fn keep_valid(b: &Brute, slots: Vec<Slot>) -> Vec<Slot> {
    let mut kept: Vec<Slot> = Vec::new();
    for s in slots {
        if !b.breaks(&points(&kept), secs(s.at), s.channel) {
            kept.push(s);
        }
    }
    kept
}

/// The higher-priority touches the candidate must leave room for, each where it would go
/// (overdue ones at once), in the order they would take their places, and whether each
/// gets one without the candidate: it fits among the slots and those placed before it.
fn ahead_of(
    b: &Brute,
    horizon: i64,
    slots: &[Slot],
    upcoming: &[Upcoming],
    c: (i64, u32),
) -> Vec<(i64, Channel, bool)> {
    // Soonest first; at one instant, higher priority, then lower id, first.
    let mut ahead: Vec<(i64, std::cmp::Reverse<u32>, String, Channel)> = upcoming
        .iter()
        .filter(|u| u.priority > c.1)
        .map(|u| {
            let x = secs(u.at).max(c.0);
            (
                x,
                std::cmp::Reverse(u.priority),
                u.touch.to_string(),
                u.channel,
            )
        })
        .filter(|(x, ..)| *x < c.0 + horizon)
        .collect();
    ahead.sort();
    let mut placed = points(slots);
    ahead
        .into_iter()
        .map(|(x, _, _, ch)| {
            let fits = !b.breaks(&placed, x, ch);
            if fits {
                placed.push((x, ch));
            }
            (x, ch, fits)
        })
        .collect()
}

/// Whether the higher-priority touches that get their places without a slot at `t` on
/// `ch` all still get them with it.
fn leaves_their_places(
    b: &Brute,
    slots: &[Slot],
    ahead: &[(i64, Channel, bool)],
    t: Point,
) -> bool {
    let mut placed = points(slots);
    placed.push(t);
    for (x, ch, _) in ahead.iter().filter(|a| a.2) {
        if b.breaks(&placed, *x, *ch) {
            return false;
        }
        placed.push((*x, *ch));
    }
    true
}

/// 1024 cases a run, or `PROPTEST_CASES` for a longer hunt.
fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1024)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    /// (a) `violation` is `None` exactly when the brute force finds no rule broken by a
    /// window or pair containing the new slot, and names a rule it does find broken.
    #[test]
    fn violation_matches_the_brute_force(
        l in arb_limits(),
        slots in arb_slots(12),
        t in instant(),
        ch in channel(),
    ) {
        let b = Brute::of(&l);
        let broken = b.broken(&points(&slots), t, ch);
        match violation(&l, &slots, ch, at(t)) {
            None => prop_assert!(broken.is_empty(), "missed {broken:?}"),
            Some(limit) => prop_assert!(broken.contains(&limit), "{limit} not broken: {broken:?}"),
        }
        // The brute force agrees with itself: blocked intervals are the breaking instants.
        let inside = b.blocked(&points(&slots), ch).iter().any(|(lo, hi)| *lo < t && t < *hi);
        prop_assert_eq!(inside, !broken.is_empty());
    }

    /// (c) `earliest` is the first valid instant at or after `from`.
    #[test]
    fn earliest_is_the_first_valid_instant(
        l in arb_limits(),
        slots in arb_slots(12),
        from in instant(),
        ch in channel(),
    ) {
        let b = Brute::of(&l);
        let p = points(&slots);
        let e = secs(earliest(&l, &slots, ch, at(from)));
        prop_assert!(e >= from);
        prop_assert!(!b.breaks(&p, e, ch), "earliest {e} breaks a rule");
        prop_assert_eq!(e, b.earliest(&p, ch, from));
    }

    /// (b) An `Ok` from `check` leaves no rule broken around the candidate, nor costs a
    /// higher-priority touch its place; a refusal names a real reason and a place that
    /// is valid and leaves theirs to the higher-priority touches.
    #[test]
    fn check_ok_breaks_nothing_and_until_is_a_valid_place(
        l in arb_limits(),
        slots in arb_slots(10),
        valid_only in any::<bool>(),
        ups in arb_upcoming(),
        t in instant(),
        ch in channel(),
        priority in prop::sample::select(&PRIORITIES[..]),
    ) {
        let b = Brute::of(&l);
        let slots = if valid_only { keep_valid(&b, slots) } else { slots };
        let touch = id("cand");
        let c = Candidate { touch: &touch, channel: ch, priority, at: at(t) };
        let p = points(&slots);
        let horizon = l.horizon().as_secs() as i64;
        let ahead = ahead_of(&b, horizon, &slots, &ups, (t, priority));
        match check(&l, &slots, &ups, &c) {
            Ok(()) => {
                prop_assert!(!b.breaks(&p, t, ch));
                prop_assert!(leaves_their_places(&b, &slots, &ahead, (t, ch)));
            }
            Err((why, until)) => {
                let u = secs(until);
                prop_assert!(u >= t);
                prop_assert!(!b.breaks(&p, u, ch), "until {u} breaks a rule");
                match why {
                    Throttled::Limited(limit) => {
                        prop_assert!(b.broken(&p, t, ch).contains(&limit));
                        prop_assert_eq!(u, b.earliest(&p, ch, t));
                    }
                    Throttled::Yields { priority: theirs, .. } => {
                        prop_assert!(!b.breaks(&p, t, ch));
                        prop_assert!(theirs > priority);
                        prop_assert!(!leaves_their_places(&b, &slots, &ahead, (t, ch)));
                        prop_assert!(leaves_their_places(&b, &slots, &ahead, (u, ch)));
                    }
                }
            }
        }
    }

    /// (d) The central safety property: whatever order touches ask in, taking a place
    /// only on `Ok` (or at the `until` given) never exceeds a cap or the gap.
    #[test]
    fn caps_and_gap_are_never_exceeded(
        l in arb_limits(),
        asks in prop::collection::vec(
            (instant(), channel(), prop::sample::select(&PRIORITIES[..]), any::<bool>()),
            1..=16,
        ),
        ups in arb_upcoming(),
    ) {
        let b = Brute::of(&l);
        let mut slots: Vec<Slot> = Vec::new();
        for (i, (t, ch, priority, wait)) in asks.into_iter().enumerate() {
            let touch = id(&format!("a{i}"));
            let c = Candidate { touch: &touch, channel: ch, priority, at: at(t) };
            let place = match check(&l, &slots, &ups, &c) {
                Ok(()) => Some(c.at),
                Err((_, until)) if wait => Some(until),
                Err(_) => None,
            };
            if let Some(place) = place {
                prop_assert!(violation(&l, &slots, ch, place).is_none());
                slots.push(slot(touch.as_str(), place, ch.as_str()));
            }
        }
        prop_assert!(b.valid(&points(&slots)), "history broke a rule: {slots:?}");
    }
}
