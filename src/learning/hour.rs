//! Send hour: when in its window a touch should go, from the hours the contact has
//! answered at (in their own local time).

use std::ops::Range;

use super::RelationshipState;

/// The hour in `[window_start_hour, window_end_hour)` (the end up to 24) closest to
/// when the contact answers: the mode of their response-hour histogram, smoothed so
/// that answers at 18:55 and 19:05 support each other and a contact who answers only
/// after the window closes gets its last hour rather than its first. Ties go to the
/// earliest hour.
///
/// With fewer than `min_observations` responses (or none) the contact's own pattern is
/// noise, so `fallback` (the tier's or the global pattern) is used if it lies inside the
/// window. `None` means "the window start, as before learning".
pub fn best_hour(
    state: &RelationshipState,
    window_start_hour: u32,
    window_end_hour: u32,
    fallback: Option<u32>,
    min_observations: u32,
) -> Option<u32> {
    let window = window_start_hour..window_end_hour.min(24);
    if window.is_empty() {
        return None;
    }
    let seen: u32 = state.hours().iter().sum();
    if seen == 0 || seen < min_observations {
        return fallback.filter(|h| window.contains(h));
    }
    smoothed_mode(state.hours(), window)
}

/// The contact's own answering hour over the whole day, once there are
/// `min_observations` responses.
pub fn answer_hour(state: &RelationshipState, min_observations: u32) -> Option<u32> {
    let seen: u32 = state.hours().iter().sum();
    if seen == 0 || seen < min_observations {
        return None;
    }
    smoothed_mode(state.hours(), 0..24)
}

/// Each observation lends every hour `4^-distance` (distance in hours around the clock):
/// enough for neighbours to support each other and for the nearest hour to win when
/// nothing falls inside the window, little enough that the raw mode almost always
/// stays the mode. Sums of powers of two are exact, so equal scores really tie.
fn smoothed_mode(hours: &[u32; 24], window: Range<u32>) -> Option<u32> {
    let score = |h: u32| -> f64 {
        (0..24u32)
            .map(|o| {
                let d = h.abs_diff(o).min(24 - h.abs_diff(o));
                f64::from(hours[o as usize]) * 0.25f64.powi(d as i32)
            })
            .sum()
    };
    let mut best: Option<(u32, f64)> = None;
    for h in window {
        let s = score(h);
        if best.is_none_or(|(_, top)| s > top) {
            best = Some((h, s));
        }
    }
    best.map(|(h, _)| h)
}
