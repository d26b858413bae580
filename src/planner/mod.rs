//! The planner: which touches are due at an instant. Pure: contacts, config and `now` in,
//! touches out. Recording them (insert-if-absent) is the store's job, so running the
//! planner twice, or on five replicas, never creates a second touch.

pub mod runner;

use chrono::{DateTime, Datelike, Duration, NaiveDate, Utc};
use chrono_tz::Tz;

use crate::{
    config::{Config, DateField, Occasion},
    domain::{Contact, MonthDay, NewTouch, SendWindow, TouchId, TouchStatus, time::local_midnight},
};

/// The month-days that are "today" somewhere on Earth at `now`: local dates range from
/// UTC-12 to UTC+14, so yesterday, today and tomorrow in UTC cover them all. Feb 29 joins
/// whenever Feb 28 of a common year is among them.
pub fn candidate_days(now: DateTime<Utc>) -> Vec<MonthDay> {
    let today = now.date_naive();
    let mut days = Vec::new();
    for d in [today.pred_opt(), Some(today), today.succ_opt()]
        .into_iter()
        .flatten()
    {
        days.push(MonthDay::of(d));
        if d.month() == 2 && d.day() == 28 && NaiveDate::from_ymd_opt(d.year(), 2, 29).is_none() {
            days.push(MonthDay::new(2, 29).expect("valid literal"));
        }
    }
    days.sort();
    days.dedup();
    days
}

/// The touches `occasion` wants for `contacts` at `now`.
pub fn plan(
    cfg: &Config,
    occasion: &Occasion,
    contacts: &[Contact],
    now: DateTime<Utc>,
) -> Vec<NewTouch> {
    contacts
        .iter()
        .filter_map(|c| due(cfg, occasion, c, now))
        .collect()
}

/// The touch for `contact` if its occasion date is its local today.
pub fn due(
    cfg: &Config,
    occasion: &Occasion,
    contact: &Contact,
    now: DateTime<Utc>,
) -> Option<NewTouch> {
    let zone = contact.zone(cfg.defaults.timezone);
    let today = now.with_timezone(&zone).date_naive();
    let year = today.year();
    let (day, since_year) = match occasion.trigger {
        DateField::Birthday => {
            let b = contact.birthday?;
            (b.day, b.year)
        }
        DateField::CustomerSince => {
            let d = contact.customer_since?;
            (MonthDay::of(d), Some(d.year()))
        }
    };
    if day.in_year(year) != today {
        return None;
    }
    match (occasion.trigger, since_year) {
        // The first day as a customer is not an anniversary.
        (DateField::CustomerSince, Some(y)) if y >= year => return None,
        (DateField::Birthday, Some(y)) if y > year => return None,
        _ => {}
    }
    let window = cfg.send_window(occasion, &contact.tier);
    let expires_at = expiry(today, zone, occasion.expires);
    let (scheduled_at, status, reason) = match fit_in_window(now, window, zone, expires_at) {
        Some(at) => (at, TouchStatus::Planned, None),
        None => (
            now,
            TouchStatus::Expired,
            Some(format!(
                "planned after its send window ({window}, {}) closed",
                zone.name()
            )),
        ),
    };
    Some(NewTouch {
        id: TouchId::derive(&occasion.name, &contact.id, &year.to_string()),
        occasion: occasion.name.clone(),
        contact_id: contact.id.clone(),
        occurrence: year.to_string(),
        channel: occasion.channel.clone(),
        priority: occasion.priority,
        scheduled_at,
        expires_at,
        status,
        reason,
    })
}

/// When the touch stops being sendable: `expires` after the start of the local day.
/// Whole days are counted on the wall clock, so "1d" is the next local midnight even on
/// a 23- or 25-hour DST day.
pub fn expiry(day: NaiveDate, zone: Tz, expires: std::time::Duration) -> DateTime<Utc> {
    let secs = expires.as_secs();
    let (days, rest) = (secs / 86_400, secs % 86_400);
    let end_day = day
        .checked_add_days(chrono::Days::new(days))
        .unwrap_or(NaiveDate::MAX);
    local_midnight(end_day, zone) + Duration::seconds(rest as i64)
}

/// The first whole second, from the one `at` falls in, that is inside the send window (in
/// the contact's zone) and before `expires_at`; `None` if there is none. Whole seconds,
/// as the queue schedules: a touch due now gets the current second, so its job is due
/// at once rather than up to a second later.
pub fn fit_in_window(
    at: DateTime<Utc>,
    window: SendWindow,
    zone: Tz,
    expires_at: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    let at = DateTime::from_timestamp(at.timestamp(), 0)?;
    let mut day = at.with_timezone(&zone).date_naive();
    // A window is at least a minute long every day, so a few days always settle it.
    for _ in 0..3 {
        let (start, end) = window.on(day, zone);
        let candidate = at.max(start);
        if candidate >= expires_at {
            return None;
        }
        if candidate < end {
            return Some(candidate);
        }
        day = day.succ_opt()?;
    }
    None
}

#[cfg(test)]
mod tests;
