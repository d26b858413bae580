use std::path::Path;

use chrono::{DateTime, NaiveDate, Utc};

use super::*;
use crate::{
    config::Config,
    domain::{Birthday, ContactId},
    render::sample_contact,
};

fn utc(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn cfg(env: &[(&str, &str)]) -> Config {
    let env = env.iter().map(|(k, v)| (k.to_string(), v.to_string()));
    Config::load_with(Path::new("config/rapport.toml"), None, env).unwrap()
}

fn person(id: &str, zone: Tz, birthday: &str, tier: &str) -> Contact {
    let mut c = sample_contact(tier);
    c.id = ContactId::parse(id).unwrap();
    c.timezone = Some(zone);
    c.birthday = Some(Birthday::parse(birthday).unwrap());
    c
}

fn birthday_at(cfg: &Config, c: &Contact, now: &str) -> Option<NewTouch> {
    due(
        &cfg.rules,
        cfg.rules.occasion("birthday").unwrap(),
        c,
        utc(now),
    )
}

#[test]
fn zone_ahead_of_utc_is_due_before_utc_midnight() {
    let cfg = cfg(&[]);
    let c = person(
        "kiri",
        chrono_tz::Pacific::Kiritimati,
        "1990-07-15",
        "friend",
    );
    // 10:30 UTC on the 14th is 00:30 on the 15th in UTC+14.
    let t = birthday_at(&cfg, &c, "2026-07-14T10:30:00Z").expect("due");
    assert_eq!(t.status, TouchStatus::Planned);
    assert_eq!(t.scheduled_at, utc("2026-07-14T19:00:00Z"));
    assert_eq!(t.expires_at, utc("2026-07-15T10:00:00Z"));
    assert_eq!(t.id.as_str(), "birthday:kiri:2026");
    // An hour earlier it is still the 14th there.
    assert!(birthday_at(&cfg, &c, "2026-07-14T09:30:00Z").is_none());
}

#[test]
fn zone_behind_utc_is_due_after_utc_midnight() {
    let cfg = cfg(&[]);
    let c = person("pago", chrono_tz::Pacific::Pago_Pago, "--07-14", "friend");
    // 21:00 UTC on the 14th is 10:00 there: inside the window, send now.
    let t = birthday_at(&cfg, &c, "2026-07-14T21:00:00Z").expect("due");
    assert_eq!(
        (t.status, t.scheduled_at),
        (TouchStatus::Planned, utc("2026-07-14T21:00:00Z"))
    );
    // 04:00 UTC on the 15th is still the 14th there (17:00): still due, still in window.
    assert!(birthday_at(&cfg, &c, "2026-07-15T04:00:00Z").is_some());
    // 11:30 UTC on the 15th is 00:30 on the 15th there: over.
    assert!(birthday_at(&cfg, &c, "2026-07-15T11:30:00Z").is_none());
    // Before UTC has reached the 14th's local morning there, nothing yet.
    assert!(birthday_at(&cfg, &c, "2026-07-14T10:00:00Z").is_none());
}

#[test]
fn planned_after_the_window_closed_is_recorded_expired_not_sent_late() {
    let cfg = cfg(&[]);
    let c = person("pago", chrono_tz::Pacific::Pago_Pago, "--07-14", "friend");
    // 18:30 local on the day: window 09:00-18:00 has closed; expiry is local midnight.
    let t = birthday_at(&cfg, &c, "2026-07-15T05:30:00Z").expect("due today");
    assert_eq!(t.status, TouchStatus::Expired);
    assert!(t.reason.unwrap().contains("09:00-18:00"));
}

#[test]
fn local_year_names_the_occurrence_at_new_year() {
    let cfg = cfg(&[]);
    let c = person("tokyo", chrono_tz::Asia::Tokyo, "--01-01", "friend");
    let t = birthday_at(&cfg, &c, "2026-12-31T16:00:00Z").expect("already Jan 1 in Tokyo");
    assert_eq!(t.id.as_str(), "birthday:tokyo:2027");
    assert_eq!(t.scheduled_at, utc("2027-01-01T00:00:00Z"));
}

#[test]
fn dst_day_windows_and_expiry_follow_the_wall_clock() {
    let cfg = cfg(&[]);
    // Paris springs forward on 2026-03-29: 09:00 is CEST (UTC+2), the day has 23 hours.
    let c = person("paris", chrono_tz::Europe::Paris, "1980-03-29", "friend");
    let t = birthday_at(&cfg, &c, "2026-03-28T23:30:00Z").expect("due");
    assert_eq!(t.scheduled_at, utc("2026-03-29T07:00:00Z"));
    assert_eq!(t.expires_at, utc("2026-03-29T22:00:00Z"));
    // New York falls back on 2026-11-01: the day has 25 hours, 09:00 is EST.
    let c = person("nyc", chrono_tz::America::New_York, "1980-11-01", "friend");
    let t = birthday_at(&cfg, &c, "2026-11-01T04:30:00Z").expect("due");
    assert_eq!(t.scheduled_at, utc("2026-11-01T14:00:00Z"));
    assert_eq!(t.expires_at, utc("2026-11-02T05:00:00Z"));
    // A window opening inside the skipped hour opens when the clock lands.
    let cfg = self::cfg(&[("RAPPORT__DEFAULTS__SEND_WINDOW", "02:30-18:00")]);
    let c = person("paris", chrono_tz::Europe::Paris, "1980-03-29", "friend");
    let t = birthday_at(&cfg, &c, "2026-03-28T23:30:00Z").expect("due");
    assert_eq!(t.scheduled_at, utc("2026-03-29T01:00:00Z"));
}

#[test]
fn feb_29_birthdays_in_leap_and_common_years() {
    let cfg = cfg(&[("RAPPORT__DEFAULTS__SEND_WINDOW", "00:00-24:00")]);
    let c = person("leap", chrono_tz::UTC, "2000-02-29", "friend");
    assert!(birthday_at(&cfg, &c, "2028-02-29T12:00:00Z").is_some());
    assert!(birthday_at(&cfg, &c, "2028-02-28T12:00:00Z").is_none());
    assert!(birthday_at(&cfg, &c, "2026-02-28T12:00:00Z").is_some());
    assert!(birthday_at(&cfg, &c, "2026-03-01T12:00:00Z").is_none());
    let days = candidate_days(utc("2026-02-28T12:00:00Z"));
    assert!(days.contains(&MonthDay::new(2, 29).unwrap()));
    // In a leap year Feb 29 is a day of its own, found as "tomorrow" on Feb 28.
    assert!(candidate_days(utc("2028-02-28T12:00:00Z")).contains(&MonthDay::new(2, 29).unwrap()));
    assert!(!candidate_days(utc("2027-06-10T12:00:00Z")).contains(&MonthDay::new(2, 29).unwrap()));
}

#[test]
fn whole_day_window_and_tier_window() {
    let cfg = cfg(&[("RAPPORT__DEFAULTS__SEND_WINDOW", "00:00-24:00")]);
    let c = person("late", chrono_tz::UTC, "--06-01", "friend");
    let t = birthday_at(&cfg, &c, "2026-06-01T23:59:30Z").expect("due");
    assert_eq!(
        (t.status, t.scheduled_at),
        (TouchStatus::Planned, utc("2026-06-01T23:59:30Z"))
    );
    // The default config narrows acquaintances to 10:00-17:00.
    let cfg = self::cfg(&[]);
    let c = person("acq", chrono_tz::UTC, "--06-01", "acquaintance");
    let t = birthday_at(&cfg, &c, "2026-06-01T09:30:00Z").expect("due");
    assert_eq!(t.scheduled_at, utc("2026-06-01T10:00:00Z"));
    let t = birthday_at(&cfg, &c, "2026-06-01T17:30:00Z").expect("due");
    assert_eq!(t.status, TouchStatus::Expired);
}

#[test]
fn anniversaries_skip_the_first_day() {
    let cfg = cfg(&[]);
    let occ = cfg.rules.occasion("anniversary").unwrap();
    let mut c = sample_contact("family");
    c.timezone = Some(chrono_tz::UTC);
    c.customer_since = NaiveDate::from_ymd_opt(2020, 5, 1);
    let t = due(&cfg.rules, occ, &c, utc("2026-05-01T12:00:00Z")).expect("due");
    assert_eq!(t.id.as_str(), "anniversary:sample:2026");
    assert!(due(&cfg.rules, occ, &c, utc("2020-05-01T12:00:00Z")).is_none());
    assert!(due(&cfg.rules, occ, &c, utc("2026-05-02T12:00:00Z")).is_none());
}

#[test]
fn keys_are_stable_across_runs_in_the_same_day() {
    let cfg = cfg(&[]);
    let c = person("k", chrono_tz::Europe::Berlin, "--09-09", "family");
    let a = birthday_at(&cfg, &c, "2026-09-09T05:00:00Z").unwrap();
    let b = birthday_at(&cfg, &c, "2026-09-09T14:00:00Z").unwrap();
    assert_eq!(a.id, b.id);
    assert_eq!(a.expires_at, b.expires_at);
}

fn purchase(id: &str, at: &str) -> Event {
    Event {
        contact_id: ContactId::parse("pat").unwrap(),
        id: crate::domain::EventId::parse(id).unwrap(),
        kind: "purchase".into(),
        at: utc(at),
        data: serde_json::Map::new(),
    }
}

fn thank_you(cfg: &Config, event: &Event, now: &str) -> Option<NewTouch> {
    let c = person("pat", chrono_tz::UTC, "--01-01", "friend");
    for_event(
        &cfg.rules,
        cfg.rules.occasion("thank_you").unwrap(),
        &c,
        event,
        utc(now),
    )
}

#[test]
fn an_event_is_thanked_after_its_delay_inside_the_window() {
    let cfg = cfg(&[]);
    // thank_you: 2h after a purchase, sendable for 3d from then.
    let e = purchase("order-1", "2026-06-01T10:00:00Z");
    let t = thank_you(&cfg, &e, "2026-06-01T10:00:05Z").expect("a touch");
    assert_eq!(t.id.as_str(), "thank_you:pat:order-1");
    assert_eq!((t.occurrence.as_str(), t.priority), ("order-1", 80));
    assert_eq!(t.status, TouchStatus::Planned);
    assert_eq!(t.scheduled_at, utc("2026-06-01T12:00:00Z"));
    assert_eq!(t.expires_at, utc("2026-06-04T12:00:00Z"));
    // Due at 19:00, after the window: the next morning.
    let e = purchase("order-2", "2026-06-01T17:00:00Z");
    let t = thank_you(&cfg, &e, "2026-06-01T17:00:00Z").unwrap();
    assert_eq!(t.scheduled_at, utc("2026-06-02T09:00:00Z"));
    // Heard of a day late, but before its expiry: from now, in the window.
    let e = purchase("order-3", "2026-06-01T10:00:00Z");
    let t = thank_you(&cfg, &e, "2026-06-02T20:00:00Z").unwrap();
    assert_eq!(
        (t.status, t.scheduled_at),
        (TouchStatus::Planned, utc("2026-06-03T09:00:00Z"))
    );
}

#[test]
fn a_late_event_is_recorded_expired_with_its_reason() {
    let cfg = cfg(&[]);
    let e = purchase("order-old", "2026-05-01T10:00:00Z");
    let t = thank_you(&cfg, &e, "2026-06-01T12:00:00Z").expect("recorded");
    assert_eq!(t.status, TouchStatus::Expired);
    assert_eq!(t.expires_at, utc("2026-05-04T12:00:00Z"));
    let reason = t.reason.unwrap();
    assert!(
        reason.contains("came in after the thank_you occasion's expiry"),
        "{reason}"
    );
    // Not late, but no window before the expiry: the window is the reason.
    let cfg = self::cfg(&[("RAPPORT__OCCASIONS__THANK_YOU__EXPIRES", "5h")]);
    let e = purchase("order-4", "2026-06-01T16:30:00Z");
    let t = thank_you(&cfg, &e, "2026-06-01T16:30:00Z").unwrap();
    assert_eq!(t.status, TouchStatus::Expired);
    assert!(t.reason.unwrap().contains("09:00-18:00"));
}

#[test]
fn only_the_right_kind_of_event_on_an_enabled_occasion_gives_a_touch() {
    let cfg = cfg(&[]);
    let mut e = purchase("r-1", "2026-06-01T10:00:00Z");
    e.kind = "refund".into();
    assert!(thank_you(&cfg, &e, "2026-06-01T10:00:00Z").is_none());
    // A yearly occasion is not event-triggered.
    let c = person("pat", chrono_tz::UTC, "--01-01", "friend");
    let e = purchase("o-1", "2026-06-01T10:00:00Z");
    let birthday = cfg.rules.occasion("birthday").unwrap();
    assert!(for_event(&cfg.rules, birthday, &c, &e, utc("2026-06-01T10:00:00Z")).is_none());
    let cfg = self::cfg(&[("RAPPORT__OCCASIONS__THANK_YOU__ENABLED", "false")]);
    assert!(thank_you(&cfg, &e, "2026-06-01T10:00:00Z").is_none());
}

fn check_in_at(cfg: &Config, c: &Contact, last: &str, now: &str) -> Option<NewTouch> {
    check_in(
        &cfg.rules,
        cfg.rules.occasion("check_in").unwrap(),
        c,
        utc(last),
        utc(now),
    )
}

#[test]
fn a_check_in_is_due_once_the_cadence_has_passed() {
    let cfg = cfg(&[]);
    // Friends: every 60d.
    let c = person("pat", chrono_tz::UTC, "--01-01", "friend");
    let now = "2026-06-01T12:00:00Z";
    assert!(check_in_at(&cfg, &c, "2026-04-03T12:00:01Z", now).is_none());
    let t = check_in_at(&cfg, &c, "2026-04-02T12:00:00Z", now).expect("due");
    assert_eq!((t.status, t.priority), (TouchStatus::Planned, 10));
    assert_eq!(t.scheduled_at, utc(now));
    assert_eq!(t.expires_at, utc("2026-06-02T00:00:00Z"));
    // The occurrence is the 60-day period (counted from the epoch) now falls in.
    let every = std::time::Duration::from_secs(60 * 86_400);
    assert_eq!(t.occurrence, check_in_period(every, utc(now)));
    assert_eq!(t.occurrence, "2026-05-07");
    assert_eq!(t.id.as_str(), "check_in:pat:2026-05-07");
    // Later in the same period: the same touch; in the next one, a new one.
    let same = check_in_at(&cfg, &c, "2026-04-02T12:00:00Z", "2026-07-05T23:59:59Z").unwrap();
    assert_eq!(same.id, t.id);
    let next = check_in_at(&cfg, &c, "2026-04-02T12:00:00Z", "2026-07-06T00:00:00Z").unwrap();
    assert_eq!(next.id.as_str(), "check_in:pat:2026-07-06");
}

#[test]
fn check_in_periods_are_named_by_their_start() {
    let day = std::time::Duration::from_secs(86_400);
    assert_eq!(
        check_in_period(day, utc("2026-06-01T23:59:59Z")),
        "2026-06-01"
    );
    assert_eq!(
        check_in_period(day, utc("2026-06-02T00:00:00Z")),
        "2026-06-02"
    );
    let odd = std::time::Duration::from_secs(5400);
    assert_eq!(
        check_in_period(odd, utc("2026-06-01T13:29:59Z")),
        "2026-06-01T1200"
    );
    assert_eq!(
        check_in_period(odd, utc("2026-06-01T13:30:00Z")),
        "2026-06-01T1330"
    );
}

#[test]
fn a_check_in_after_todays_window_goes_in_tomorrows() {
    let cfg = cfg(&[]);
    let c = person("pat", chrono_tz::America::New_York, "--01-01", "friend");
    // 19:00 EDT: today's window has closed; tomorrow 09:00 EDT, expiring at its end.
    let t = check_in_at(&cfg, &c, "2026-01-01T00:00:00Z", "2026-06-01T23:00:00Z").unwrap();
    assert_eq!(t.status, TouchStatus::Planned);
    assert_eq!(t.scheduled_at, utc("2026-06-02T13:00:00Z"));
    assert_eq!(t.expires_at, utc("2026-06-03T04:00:00Z"));
    // An occasion with a cadence of its own (45d) does not use the tier's.
    let cfg = self::cfg(&[("RAPPORT__OCCASIONS__CHECK_IN__TRIGGER__INACTIVITY", "45d")]);
    assert!(check_in_at(&cfg, &c, "2026-04-17T23:00:01Z", "2026-06-01T23:00:00Z").is_none());
    assert!(check_in_at(&cfg, &c, "2026-04-17T23:00:00Z", "2026-06-01T23:00:00Z").is_some());
}

#[test]
fn upcoming_birthdays_within_the_horizon_as_the_planner_will_plan_them() {
    let cfg = cfg(&[]);
    let c = person("pat", chrono_tz::Europe::Paris, "1990-06-10", "friend");
    let from = utc("2026-06-01T12:00:00Z");
    let month = std::time::Duration::from_secs(30 * 86_400);
    let ups = upcoming(&cfg.rules, &c, from, month);
    assert_eq!(ups.len(), 1, "{ups:?}");
    let u = &ups[0];
    // The window start on the day, 09:00 CEST, with the id the planner will use.
    assert_eq!(u.at, utc("2026-06-10T07:00:00Z"));
    assert_eq!((u.occasion.as_str(), u.priority), ("birthday", 100));
    let planned = birthday_at(&cfg, &c, "2026-06-09T22:30:00Z").unwrap();
    assert_eq!((&u.touch, u.at), (&planned.id, planned.scheduled_at));
    // Beyond the horizon, or before `from`: nothing.
    let week = std::time::Duration::from_secs(7 * 86_400);
    assert!(upcoming(&cfg.rules, &c, from, week).is_empty());
    assert!(upcoming(&cfg.rules, &c, utc("2026-06-11T12:00:00Z"), week).is_empty());
}

#[test]
fn upcoming_feb_29_birthdays_fall_on_feb_28_in_common_years() {
    let cfg = cfg(&[]);
    let mut c = person("leap", chrono_tz::UTC, "2000-02-29", "friend");
    c.customer_since = None;
    let two_weeks = std::time::Duration::from_secs(14 * 86_400);
    let ups = upcoming(&cfg.rules, &c, utc("2027-02-20T00:00:00Z"), two_weeks);
    let at: Vec<_> = ups.iter().map(|u| (u.touch.as_str(), u.at)).collect();
    assert_eq!(at, [("birthday:leap:2027", utc("2027-02-28T09:00:00Z"))]);
    let ups = upcoming(&cfg.rules, &c, utc("2028-02-20T00:00:00Z"), two_weeks);
    let at: Vec<_> = ups.iter().map(|u| (u.touch.as_str(), u.at)).collect();
    assert_eq!(at, [("birthday:leap:2028", utc("2028-02-29T09:00:00Z"))]);
}

#[test]
fn a_touch_is_due_from_the_windows_opening_whenever_it_is_planned() {
    let cfg = cfg(&[]);
    let c = person("ada", chrono_tz::UTC, "--07-14", "friend");
    // Planned at 12:00, sent at once; due since the window opened at 09:00 (what an
    // adoption of the store compares with).
    let t = birthday_at(&cfg, &c, "2026-07-14T12:00:00Z").expect("due");
    assert_eq!(t.scheduled_at, utc("2026-07-14T12:00:00Z"));
    assert_eq!(t.due, utc("2026-07-14T09:00:00Z"));
    // Planned before the window opens: due when it opens.
    let t = birthday_at(&cfg, &c, "2026-07-14T03:00:00Z").expect("due");
    assert_eq!(
        (t.scheduled_at, t.due),
        (utc("2026-07-14T09:00:00Z"), utc("2026-07-14T09:00:00Z"))
    );
}

#[test]
fn a_thank_you_is_due_when_its_window_first_allows_it() {
    let cfg = cfg(&[]);
    // A purchase at 22:00 with a 2 h delay lands at midnight, outside the send window:
    // due when the window next opens, not at midnight, so an adoption of the store
    // before then does not take it for a note already sent.
    let e = purchase("o1", "2026-06-01T22:00:00Z");
    let t = thank_you(&cfg, &e, "2026-06-01T22:05:00Z").expect("planned");
    assert!(t.due > utc("2026-06-02T00:00:00Z"), "{:?}", t.due);
    assert_eq!(t.due, t.scheduled_at);
}
