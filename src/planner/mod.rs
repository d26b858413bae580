//! The planner: which touches are due at an instant. Pure: contacts, config and `now` in,
//! touches out. Recording them (insert-if-absent) is the store's job, so running the
//! planner twice, or on five replicas, never creates a second touch.

mod adoption;
pub mod runner;

pub use adoption::{due_before_adoption, settle_adopted};

use crate::domain::Channel;
use chrono::{DateTime, Datelike, NaiveDate, Utc};
use chrono_tz::Tz;

use crate::{
    config::LearningSettings,
    config::{DateField, Occasion, Rules, Trigger},
    domain::{
        Contact, Event, MonthDay, NewTouch, SendWindow, TouchId, TouchStatus,
        time::{expiry, local_midnight},
    },
    learning::{ChannelPrior, LearningConfig, RelationshipState},
    policy::Upcoming,
};

/// What was learned about one contact, for planning its touches: the send hour, the
/// channel and the check-in cadence adapt to it (when `learning.enabled`).
#[derive(Debug, Clone, Copy)]
pub struct Learned<'a> {
    /// `[learning]`: whether it is on, and how the learner weighs what it saw.
    pub learning: &'a LearningSettings,
    pub state: &'a RelationshipState,
    /// The contact's tier's response rates per channel, the prior for its own.
    pub prior: &'a ChannelPrior,
    /// The hour the contact's tier (or everyone) answers at: the send hour until the
    /// contact has answered often enough itself.
    pub fallback_hour: Option<u32>,
}

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
    rules: &Rules,
    occasion: &Occasion,
    contacts: &[Contact],
    now: DateTime<Utc>,
) -> Vec<NewTouch> {
    plan_learned(rules, occasion, contacts, |_| None, now)
}

/// As [`plan`], each contact's touch shaped by what `learned` knows of it.
pub fn plan_learned<'a>(
    rules: &Rules,
    occasion: &Occasion,
    contacts: &[Contact],
    learned: impl Fn(&Contact) -> Option<Learned<'a>>,
    now: DateTime<Utc>,
) -> Vec<NewTouch> {
    contacts
        .iter()
        .filter_map(|c| due_learned(rules, occasion, c, learned(c), now))
        .collect()
}

/// Whether yearly `field` of `contact` falls on local date `day` (a Feb 29 birthday on
/// Feb 28 of a common year; never before the year it names, and not on the first day
/// as a customer).
fn falls_on(field: DateField, contact: &Contact, day: NaiveDate) -> bool {
    let year = day.year();
    let (md, since_year) = match field {
        DateField::Birthday => match contact.birthday {
            Some(b) => (b.day, b.year),
            None => return false,
        },
        DateField::CustomerSince => match contact.customer_since {
            Some(d) => (MonthDay::of(d), Some(d.year())),
            None => return false,
        },
    };
    if md.in_year(year) != day {
        return false;
    }
    match (field, since_year) {
        (DateField::CustomerSince, Some(y)) => y < year,
        (DateField::Birthday, Some(y)) => y <= year,
        _ => true,
    }
}

/// The touch for `contact` if its occasion date is its local today.
pub fn due(
    rules: &Rules,
    occasion: &Occasion,
    contact: &Contact,
    now: DateTime<Utc>,
) -> Option<NewTouch> {
    due_learned(rules, occasion, contact, None, now)
}

fn due_learned(
    rules: &Rules,
    occasion: &Occasion,
    contact: &Contact,
    learned: Option<Learned<'_>>,
    now: DateTime<Utc>,
) -> Option<NewTouch> {
    let field = occasion.date_field()?;
    let zone = contact.zone(rules.defaults.timezone);
    let today = now.with_timezone(&zone).date_naive();
    if !falls_on(field, contact, today) {
        return None;
    }
    let year = today.year().to_string();
    let expires_at = expiry(today, zone, occasion.expires);
    // Due when a planner that ran at the day's start would have sent it (the window's
    // opening, or the learned hour), whenever this one runs.
    let became_due = send_at(
        rules,
        occasion,
        contact,
        local_midnight(today, zone),
        expires_at,
        learned,
    )
    .unwrap_or(now);
    let mut t = touch_in_window(rules, occasion, contact, &year, now, expires_at, learned);
    t.due = became_due.min(t.scheduled_at);
    Some(t)
}

/// When a touch due from `from` goes out: the first instant inside the send window
/// (at the learned hour, with learning) before `expires_at`; `None` when there is none.
fn send_at(
    rules: &Rules,
    occasion: &Occasion,
    contact: &Contact,
    from: DateTime<Utc>,
    expires_at: DateTime<Utc>,
    learned: Option<Learned<'_>>,
) -> Option<DateTime<Utc>> {
    let zone = contact.zone(rules.defaults.timezone);
    let window = rules.send_window(occasion, &contact.tier);
    let at = window.fit(from, zone, expires_at)?;
    Some(
        learned
            .filter(|l| l.learning.enabled)
            .map_or(at, |l| at_learned_hour(l, at, window, zone, expires_at)),
    )
}

/// A touch for `occurrence`, due from `due`: at the first instant inside the send window
/// before `expires_at`, or already `expired` when there is none.
fn touch_in_window(
    rules: &Rules,
    occasion: &Occasion,
    contact: &Contact,
    occurrence: &str,
    due: DateTime<Utc>,
    expires_at: DateTime<Utc>,
    learned: Option<Learned<'_>>,
) -> NewTouch {
    let zone = contact.zone(rules.defaults.timezone);
    let window = rules.send_window(occasion, &contact.tier);
    let learned = learned.filter(|l| l.learning.enabled);
    let id = TouchId::derive(&occasion.name, &contact.id, occurrence);
    let (scheduled_at, status, reason) =
        match send_at(rules, occasion, contact, due, expires_at, learned) {
            Some(at) => (at, TouchStatus::Planned, None),
            None => (
                due,
                TouchStatus::Expired,
                Some(format!(
                    "planned after its send window ({window}, {}) closed",
                    zone.name()
                )),
            ),
        };
    let channel = match learned {
        Some(l) => learned_channel(rules, occasion, contact, l, &id),
        None => crate::policy::planned_channel(rules, occasion, contact),
    };
    NewTouch {
        id,
        occasion: occasion.name.clone(),
        contact_id: contact.id.clone(),
        occurrence: occurrence.to_owned(),
        channel,
        priority: occasion.priority,
        scheduled_at,
        due,
        expires_at,
        status,
        reason,
    }
}

/// The touch an event triggers: `delay` after it, sendable for `expires` from then, once
/// per event id (the occurrence). A late event (an import of old purchases) gives an
/// `expired` touch, never a late thank-you.
pub fn for_event(
    rules: &Rules,
    occasion: &Occasion,
    contact: &Contact,
    event: &Event,
    now: DateTime<Utc>,
) -> Option<NewTouch> {
    let Trigger::Event { kind, delay } = &occasion.trigger else {
        return None;
    };
    if *kind != event.kind || !occasion.enabled {
        return None;
    }
    let due = event.at + chrono::Duration::from_std(*delay).unwrap_or_default();
    let expires_at = due + chrono::Duration::from_std(occasion.expires).unwrap_or_default();
    let mut t = touch_in_window(
        rules,
        occasion,
        contact,
        event.id.as_str(),
        due.max(now),
        expires_at,
        None,
    );
    // When it would have gone out had it been planned as the event came in: inside the
    // send window (a purchase at 22:00 is not "due" at 23:00 with a 09:00 window).
    t.due = send_at(rules, occasion, contact, due, expires_at, None)
        .unwrap_or(due)
        .min(t.scheduled_at);
    if t.status == TouchStatus::Expired && expires_at <= now {
        t.reason = Some(format!(
            "the event came in after the {} occasion's expiry",
            occasion.name
        ));
    }
    Some(t)
}

/// The check-in period `at` falls in, as an occurrence key: periods of `every` counted
/// from the Unix epoch, named by their start (UTC). At most one check-in per period.
pub fn check_in_period(every: std::time::Duration, at: DateTime<Utc>) -> String {
    let len = every.as_secs().max(1) as i64;
    let start = at.timestamp().div_euclid(len) * len;
    let start = DateTime::from_timestamp(start, 0).unwrap_or(at);
    if len % 86_400 == 0 {
        start.format("%Y-%m-%d").to_string()
    } else {
        start.format("%Y-%m-%dT%H%M").to_string()
    }
}

/// The check-in for `contact` if its last interaction is longer ago than its cadence:
/// due today in its own zone (tomorrow when today's window has closed).
pub fn check_in(
    rules: &Rules,
    occasion: &Occasion,
    contact: &Contact,
    last_interaction: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Option<NewTouch> {
    check_in_learned(rules, occasion, contact, last_interaction, None, now)
}

/// The longest a backed-off check-in cadence gets, whatever the tier's.
const MAX_CHECK_IN: std::time::Duration = std::time::Duration::from_secs(365 * 86_400);

/// The check-in cadence for a contact whose tier's is `every`, by what was learned:
/// backed off after ignored touches (at most `learning.max_backoff` times, and a year);
/// `None` once sunset.
pub fn learned_cadence(
    model: &LearningConfig,
    state: &RelationshipState,
    every: std::time::Duration,
) -> Option<std::time::Duration> {
    let max = every
        .saturating_mul(model.max_backoff)
        .min(MAX_CHECK_IN.max(every));
    crate::learning::check_in_cadence(state, model, every, max)
}

/// As [`check_in`], with what was learned: after ignored check-ins the cadence backs off
/// (doubling, at most `learning.max_backoff` times the tier's, and a year); once the
/// contact is sunset there are none until they interact again.
pub fn check_in_learned(
    rules: &Rules,
    occasion: &Occasion,
    contact: &Contact,
    last_interaction: DateTime<Utc>,
    learned: Option<Learned<'_>>,
    now: DateTime<Utc>,
) -> Option<NewTouch> {
    let every = rules.check_in_every(occasion, &contact.tier)?;
    let learned = learned.filter(|l| l.learning.enabled);
    let wait = match learned {
        Some(l) => learned_cadence(&l.learning.model, l.state, every)?,
        None => every,
    };
    let became_due = last_interaction + chrono::Duration::from_std(wait).ok()?;
    if became_due > now {
        return None;
    }
    let zone = contact.zone(rules.defaults.timezone);
    let window = rules.send_window(occasion, &contact.tier);
    let occurrence = check_in_period(every, now);
    let mut day = now.with_timezone(&zone).date_naive();
    for _ in 0..2 {
        let expires_at = expiry(day, zone, occasion.expires);
        if window.fit(now, zone, expires_at).is_some() {
            let mut t = touch_in_window(
                rules,
                occasion,
                contact,
                &occurrence,
                now,
                expires_at,
                learned,
            );
            // When a planner run as the cadence ended would have sent it.
            t.due = send_at(rules, occasion, contact, became_due, expires_at, learned)
                .unwrap_or(became_due)
                .min(t.scheduled_at);
            return Some(t);
        }
        day = day.succ_opt()?;
    }
    None
}

/// The yearly touches `contact` will get from `from` to `from + horizon` (as the planner
/// will plan them: at the start of the send window), for the throttle to keep their
/// places free.
pub fn upcoming(
    rules: &Rules,
    contact: &Contact,
    from: DateTime<Utc>,
    horizon: std::time::Duration,
) -> Vec<Upcoming> {
    let zone = contact.zone(rules.defaults.timezone);
    let first = from.with_timezone(&zone).date_naive();
    let last = (from + chrono::Duration::from_std(horizon).unwrap_or_default())
        .with_timezone(&zone)
        .date_naive();
    let mut out = Vec::new();
    for o in rules.occasions.iter().filter(|o| o.enabled) {
        let Some(field) = o.date_field() else {
            continue;
        };
        let md = match field {
            DateField::Birthday => contact.birthday.map(|b| b.day),
            DateField::CustomerSince => contact.customer_since.map(MonthDay::of),
        };
        let Some(md) = md else { continue };
        for year in first.year()..=last.year() {
            let day = md.in_year(year);
            if day < first || day > last || !falls_on(field, contact, day) {
                continue;
            }
            let expires_at = expiry(day, zone, o.expires);
            let window = rules.send_window(o, &contact.tier);
            if let Some(at) = window.fit(local_midnight(day, zone), zone, expires_at) {
                out.push(Upcoming {
                    touch: TouchId::derive(&o.name, &contact.id, &year.to_string()),
                    occasion: o.name.clone(),
                    priority: o.priority,
                    at,
                    channel: crate::policy::planned_channel(rules, o, contact),
                });
            }
        }
    }
    out
}

/// `at` (the first instant the window allows) moved to the hour the contact answers at,
/// when that hour comes later the same local day inside the window and before expiry.
fn at_learned_hour(
    l: Learned<'_>,
    at: DateTime<Utc>,
    window: SendWindow,
    zone: Tz,
    expires_at: DateTime<Utc>,
) -> DateTime<Utc> {
    let (start, end) = (window.start.minutes(), window.end.minutes());
    let hour = crate::learning::best_hour(
        l.state,
        start.div_ceil(60),
        end.div_ceil(60),
        l.fallback_hour,
        l.learning.model.min_hour_observations,
    );
    let Some(hour) = hour else { return at };
    let day = at.with_timezone(&zone).date_naive();
    let target = crate::domain::time::local_instant(day, hour * 60, zone);
    let (_, closes) = window.on(day, zone);
    if target > at && target < closes && target < expires_at {
        target
    } else {
        at
    }
}

/// The channel of a touch for a contact with a learned state: Thompson sampling among
/// the occasion's channels the contact can be reached on (tier, consent, address),
/// seeded by the touch id so planning it again draws the same. One or none: as
/// configured.
fn learned_channel(
    rules: &Rules,
    occasion: &Occasion,
    contact: &Contact,
    l: Learned<'_>,
    id: &TouchId,
) -> Channel {
    use rand::SeedableRng;
    use sha2::{Digest, Sha256};
    let allowed: Vec<Channel> = occasion
        .channels
        .iter()
        .copied()
        .filter(|c| crate::policy::blocked(rules, contact, *c).is_none())
        .collect();
    // Nothing known of the contact nor its tier: as configured, not a coin toss.
    let known = l.state.channels().next().is_some() || !l.prior.is_empty();
    if allowed.len() < 2 || !known {
        return crate::policy::planned_channel(rules, occasion, contact);
    }
    let digest = Sha256::digest(id.as_str().as_bytes());
    let mut seed = [0u8; 32];
    seed.copy_from_slice(&digest);
    let mut rng = rand::rngs::StdRng::from_seed(seed);
    crate::learning::choose_channel(l.state, &allowed, l.prior, &mut rng)
        .unwrap_or_else(|| crate::policy::planned_channel(rules, occasion, contact))
}

#[cfg(test)]
mod learned_tests;
#[cfg(test)]
mod tests;
