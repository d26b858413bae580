//! Send hour from the response-hour histogram.

use super::*;
use crate::learning::{answer_hour, best_hour};

/// A state with `n` engaged responses at each `(UTC hour, n)`.
fn answered_at(hours: &[(u32, u32)]) -> RelationshipState {
    let mut signals = Vec::new();
    for (i, &(hour, n)) in hours.iter().enumerate() {
        for k in 0..n {
            let at = utc("2026-03-02T00:00:00Z")
                + chrono::Duration::days(i64::from(k) * 30 + i as i64)
                + chrono::Duration::minutes(i64::from(hour) * 60 + 17);
            signals.push(loose(ResponseKind::Reply, "sms", at));
        }
    }
    learn(signals).0
}

/// Answers per hour, window start and end, the hour expected.
type Case = (&'static [(u32, u32)], u32, u32, Option<u32>);

#[test]
fn the_mode_inside_the_window() {
    let cases: &[Case] = &[
        (&[(14, 5), (10, 2)], 9, 18, Some(14)),
        // Ties go to the earliest hour.
        (&[(10, 3), (14, 3)], 9, 18, Some(10)),
        // A stronger hour outside the window does not count inside it.
        (&[(20, 9), (11, 3)], 9, 18, Some(11)),
        // Nothing inside: the hour nearest to when they answer.
        (&[(21, 6)], 9, 18, Some(17)),
        (&[(7, 6)], 9, 18, Some(9)),
        // Around midnight: 23:00 is one hour from 00:00.
        (&[(23, 6)], 0, 6, Some(0)),
        // Raw counts tie at 12 and 13; the neighbour at 14 makes 13 the centre.
        (&[(12, 4), (13, 4), (14, 1)], 9, 18, Some(13)),
        // A whole-day window.
        (&[(3, 5)], 0, 24, Some(3)),
        // Past 24 is the end of the day.
        (&[(23, 5)], 20, 30, Some(23)),
    ];
    for &(hours, start, end, want) in cases {
        let state = answered_at(hours);
        assert_eq!(
            best_hour(&state, start, end, Some(12), 5),
            want,
            "{hours:?} in {start}-{end}"
        );
    }
}

#[test]
fn too_few_answers_fall_back_to_the_pattern() {
    let state = answered_at(&[(16, 4)]);
    assert_eq!(best_hour(&state, 9, 18, Some(11), 5), Some(11));
    // A fallback outside the window is no use.
    assert_eq!(best_hour(&state, 9, 18, Some(19), 5), None);
    assert_eq!(best_hour(&state, 9, 18, None, 5), None);
    // At the threshold the contact's own hour wins.
    assert_eq!(best_hour(&state, 9, 18, Some(11), 4), Some(16));
    // No answers at all is never "enough", whatever the threshold.
    let empty = RelationshipState::default();
    assert_eq!(best_hour(&empty, 9, 18, Some(11), 0), Some(11));
    assert_eq!(best_hour(&empty, 9, 18, None, 0), None);
}

#[test]
fn an_empty_window_has_no_hour() {
    let state = answered_at(&[(12, 9)]);
    assert_eq!(best_hour(&state, 18, 9, Some(12), 1), None);
    assert_eq!(best_hour(&state, 12, 12, Some(12), 1), None);
    assert_eq!(best_hour(&state, 24, 30, Some(12), 1), None);
}

#[test]
fn the_answer_hour_over_the_whole_day() {
    assert_eq!(answer_hour(&answered_at(&[(19, 5), (8, 2)]), 5), Some(19));
    assert_eq!(answer_hour(&answered_at(&[(19, 4)]), 5), None);
    assert_eq!(answer_hour(&RelationshipState::default(), 0), None);
}
