//! Priority: a lower-priority touch gives way when taking its place now would cost a
//! higher-priority one (due within the horizon) its own.

use super::*;
use crate::domain::Channel;
use crate::policy::{Candidate, Throttled, throttle::check};

const CHECK_IN: u32 = 10;
const BIRTHDAY: u32 = 100;

/// `check` for a check-in on email at `now`.
#[allow(clippy::result_large_err)]
fn check_in(
    l: &Limits,
    slots: &[Slot],
    ups: &[Upcoming],
    now: DateTime<Utc>,
) -> Result<(), (Throttled, DateTime<Utc>)> {
    check_with(l, slots, ups, now, CHECK_IN)
}

#[allow(clippy::result_large_err)]
fn check_with(
    l: &Limits,
    slots: &[Slot],
    ups: &[Upcoming],
    now: DateTime<Utc>,
    priority: u32,
) -> Result<(), (Throttled, DateTime<Utc>)> {
    let touch = id("check_in:c:2026-05-07");
    let c = Candidate {
        touch: &touch,
        channel: Channel::Email,
        priority,
        at: now,
    };
    check(l, slots, ups, &c)
}

#[test]
fn check_in_the_day_before_a_birthday_yields_until_after_it() {
    let l = limits(&[(3, 30 * DAY)], 2 * DAY);
    let now = utc("2026-06-09T12:00:00Z");
    let birthday = utc("2026-06-10T09:00:00Z");
    let ups = [upcoming("birthday:c:2026", BIRTHDAY, birthday, "email")];
    let (why, until) = check_in(&l, &[], &ups, now).unwrap_err();
    match why {
        Throttled::Yields {
            to,
            priority,
            at,
            limit,
            ..
        } => {
            assert_eq!(to, id("birthday:c:2026"));
            assert_eq!((priority, at), (BIRTHDAY, birthday));
            assert_eq!(
                limit,
                Limit::MinGap(std::time::Duration::from_secs(2 * 86_400))
            );
        }
        other => panic!("expected a yield, got {other:?}"),
    }
    assert_eq!(until, birthday + chrono::Duration::days(2));
}

#[test]
fn a_birthday_beyond_the_horizon_is_no_reason_to_wait() {
    let l = limits(&[(3, 30 * DAY)], 2 * DAY);
    let now = utc("2026-06-09T12:00:00Z");
    let far = now + chrono::Duration::days(30);
    let ups = [upcoming("birthday:c:2026", BIRTHDAY, far, "email")];
    assert_eq!(check_in(&l, &[], &ups, now), Ok(()));
    // Just inside the horizon the 3-per-30d cap still has room for both.
    let near = far - chrono::Duration::seconds(1);
    let ups = [upcoming("birthday:c:2026", BIRTHDAY, near, "email")];
    assert_eq!(check_in(&l, &[], &ups, now), Ok(()));
}

#[test]
fn a_birthday_that_would_not_fit_anyway_takes_nothing_away() {
    let l = limits(&[], 2 * DAY);
    let now = utc("2026-06-09T00:00:00Z");
    let birthday = utc("2026-06-10T12:00:00Z");
    // Something already holds a place a day after the birthday: it cannot go then.
    let slots = [slot("thank_you:c:o1", utc("2026-06-11T12:00:00Z"), "email")];
    let ups = [upcoming("birthday:c:2026", BIRTHDAY, birthday, "email")];
    assert_eq!(check_in(&l, &slots, &ups, now), Ok(()));
    // Without that slot it would, and the check-in would cost it its place.
    assert!(check_in(&l, &[], &ups, now).is_err());
}

#[test]
fn equal_or_lower_priority_does_not_make_it_yield() {
    let l = limits(&[], 2 * DAY);
    let now = utc("2026-06-09T12:00:00Z");
    let other = utc("2026-06-10T09:00:00Z");
    for theirs in [CHECK_IN, CHECK_IN - 1] {
        let ups = [upcoming("check_in:c:other", theirs, other, "email")];
        assert_eq!(check_in(&l, &[], &ups, now), Ok(()), "priority {theirs}");
    }
}

#[test]
fn a_full_cap_makes_it_yield_until_the_birthday_window_ends() {
    let l = limits(&[(1, 14 * DAY)], 0);
    let now = utc("2026-06-01T12:00:00Z");
    let birthday = utc("2026-06-11T09:00:00Z");
    let ups = [upcoming("birthday:c:2026", BIRTHDAY, birthday, "email")];
    let (why, until) = check_in(&l, &[], &ups, now).unwrap_err();
    assert!(
        matches!(&why, Throttled::Yields { limit: Limit::Cap(_, c), .. } if c.count == 1),
        "{why:?}"
    );
    assert_eq!(until, birthday + chrono::Duration::days(14));
    assert!(
        why.to_string()
            .starts_with("yields to birthday (priority 100)")
    );
}

#[test]
fn a_channel_cap_only_protects_touches_on_its_channel() {
    let l = Limits {
        caps: vec![(Scope::Channel(Channel::Sms), cap(1, 14 * DAY))],
        min_gap: std::time::Duration::ZERO,
    };
    let now = utc("2026-06-01T12:00:00Z");
    let birthday = utc("2026-06-05T09:00:00Z");
    let ups = [upcoming("birthday:c:2026", BIRTHDAY, birthday, "sms")];
    // An email check-in does not count against the sms cap.
    assert_eq!(check_in(&l, &[], &ups, now), Ok(()));
}

#[test]
fn an_overdue_birthday_is_placed_now() {
    // Planned for this morning and still waiting (the queue is behind): it goes now,
    // so a check-in asking now would take its place.
    let l = limits(&[(1, HOUR)], 0);
    let now = utc("2026-06-10T12:00:00Z");
    let birthday = utc("2026-06-10T09:00:00Z");
    let ups = [upcoming("birthday:c:2026", BIRTHDAY, birthday, "email")];
    let (why, until) = check_in(&l, &[], &ups, now).unwrap_err();
    assert!(matches!(why, Throttled::Yields { .. }), "{why:?}");
    assert_eq!(until, now + chrono::Duration::hours(1));
}

#[test]
fn two_higher_priority_touches_that_fit_together_keep_their_places_together() {
    // Family tier: 2 per 7d. A birthday in 2 days and an anniversary in 4 fit together
    // in the window; a check-in now would fit beside either alone, but not both.
    let l = limits(&[(2, 7 * DAY)], 0);
    let now = utc("2026-06-01T12:00:00Z");
    let birthday = utc("2026-06-03T09:00:00Z");
    let anniversary = utc("2026-06-05T09:00:00Z");
    let ups = [
        upcoming("birthday:c:2026", BIRTHDAY, birthday, "email"),
        upcoming("anniversary:c:2026", 60, anniversary, "email"),
    ];
    let (why, until) = check_in(&l, &[], &ups, now).unwrap_err();
    assert!(matches!(why, Throttled::Yields { .. }), "{why:?}");
    // Both placed, the next place is when the birthday's window ends.
    assert_eq!(until, birthday + chrono::Duration::days(7));
    // A thank-you (80) outranks the anniversary: only the birthday's place is its
    // concern, and beside it there is room.
    assert_eq!(check_with(&l, &[], &ups, now, 80), Ok(()));
}
