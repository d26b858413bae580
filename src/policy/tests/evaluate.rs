//! The whole policy for one touch: channel, check-in due, send window in the contact's
//! own zone, then the throttle with the occasion's `on_throttle`.

use crate::domain::Channel;
use std::path::Path;

use chrono_tz::Tz;

use super::*;
use crate::{
    config::Config,
    domain::{Contact, Touch, TouchStatus},
    policy::{History, Throttled, Verdict, Why, evaluate},
    render::sample_contact,
};

fn cfg(env: &[(&str, &str)]) -> Config {
    let env = env.iter().map(|(k, v)| (k.to_string(), v.to_string()));
    Config::load_with(Path::new("config/rapport.toml"), None, env).unwrap()
}

fn contact(tier: &str, zone: Tz) -> Contact {
    let mut c = sample_contact(tier);
    c.timezone = Some(zone);
    c
}

/// A planned touch of `occasion` (its channel and priority), due now.
fn touch(cfg: &Config, occasion: &str, now: DateTime<Utc>, expires_at: DateTime<Utc>) -> Touch {
    let o = cfg.rules.occasion(occasion).unwrap();
    Touch {
        id: id(&format!("{occasion}:sample:x")),
        occasion: occasion.to_owned(),
        contact_id: sample_contact("friend").id,
        occurrence: "x".into(),
        channel: o.channels[0],
        tried: Vec::new(),
        priority: o.priority,
        status: TouchStatus::Planned,
        scheduled_at: now,
        next_attempt_at: now,
        expires_at,
        attempts: 0,
        reason: None,
        created_at: now,
        updated_at: now,
        sent_at: None,
        slot_at: None,
        uncertain: 0,
        responded_at: None,
    }
}

fn history(slots: Vec<Slot>, upcoming: Vec<Upcoming>, last: Option<DateTime<Utc>>) -> History {
    History {
        slots,
        upcoming,
        last_interaction: last,
    }
}

fn hold(until: &str, why: Why) -> Verdict {
    Verdict::Hold {
        until: utc(until),
        why,
    }
}

/// A birthday for a contact of `tier` in `zone`, expiring at `expires`, asked at `now`
/// with nothing else in the way.
fn birthday(tier: &str, zone: Tz, expires: &str, now: &str) -> Verdict {
    let cfg = cfg(&[]);
    let t = touch(&cfg, "birthday", utc(now), utc(expires));
    evaluate(
        &cfg.rules,
        &contact(tier, zone),
        &t,
        &History::default(),
        utc(now),
    )
}

#[test]
fn new_york_spring_forward_window_opens_at_nine_daylight_time() {
    use chrono_tz::America::New_York;
    // 2026-03-08: clocks jump 02:00 EST -> 03:00 EDT. 12:30Z is 08:30 EDT.
    let exp = "2026-03-09T04:00:00Z";
    assert_eq!(
        birthday("friend", New_York, exp, "2026-03-08T12:30:00Z"),
        hold("2026-03-08T13:00:00Z", Why::Window)
    );
    assert_eq!(
        birthday("friend", New_York, exp, "2026-03-08T13:00:00Z"),
        Verdict::Send
    );
    // 18:00 EDT is 22:00Z: closed, and the touch expires at local midnight.
    assert!(matches!(
        birthday("friend", New_York, exp, "2026-03-08T22:00:00Z"),
        Verdict::Expire {
            why: Why::TooLate(_)
        }
    ));
}

#[test]
fn paris_fall_back_window_opens_at_nine_standard_time() {
    use chrono_tz::Europe::Paris;
    // 2026-10-25: 03:00 CEST -> 02:00 CET. 07:30Z is 08:30 CET (it was 09:30 CEST).
    let exp = "2026-10-25T23:00:00Z";
    assert_eq!(
        birthday("friend", Paris, exp, "2026-10-25T07:30:00Z"),
        hold("2026-10-25T08:00:00Z", Why::Window)
    );
    // The acquaintance tier's own window, 10:00-17:00, in the same zone.
    assert_eq!(
        birthday("acquaintance", Paris, exp, "2026-10-25T08:30:00Z"),
        hold("2026-10-25T09:00:00Z", Why::Window)
    );
    assert_eq!(
        birthday("friend", Paris, exp, "2026-10-25T16:59:59Z"),
        Verdict::Send
    );
    let v = birthday("friend", Paris, exp, "2026-10-25T17:00:00Z");
    let Verdict::Expire { why } = &v else {
        panic!("{v:?}")
    };
    assert!(
        why.to_string().contains("09:00-18:00, Europe/Paris"),
        "{why}"
    );
}

#[test]
fn kiritimati_is_a_day_ahead_and_pago_pago_a_day_behind() {
    use chrono_tz::Pacific::{Kiritimati, Pago_Pago};
    // UTC+14: 18:30Z on the 14th is 08:30 on the 15th there.
    let exp = "2026-07-15T10:00:00Z";
    assert_eq!(
        birthday("friend", Kiritimati, exp, "2026-07-14T18:30:00Z"),
        hold("2026-07-14T19:00:00Z", Why::Window)
    );
    assert!(matches!(
        birthday("friend", Kiritimati, exp, "2026-07-15T04:30:00Z"),
        Verdict::Expire { .. }
    ));
    // UTC-11: 19:30Z on the 14th is 08:30 on the 14th there.
    let exp = "2026-07-15T11:00:00Z";
    assert_eq!(
        birthday("friend", Pago_Pago, exp, "2026-07-14T19:30:00Z"),
        hold("2026-07-14T20:00:00Z", Why::Window)
    );
    // 05:30Z on the 15th is 18:30 on the 14th there: closed before the expiry...
    assert!(matches!(
        birthday("friend", Pago_Pago, exp, "2026-07-15T05:30:00Z"),
        Verdict::Expire { .. }
    ));
    // ...unless the touch lives on into tomorrow's window there.
    assert_eq!(
        birthday(
            "friend",
            Pago_Pago,
            "2026-07-16T11:00:00Z",
            "2026-07-15T05:30:00Z"
        ),
        hold("2026-07-15T20:00:00Z", Why::Window)
    );
}

#[test]
fn a_channel_the_tier_leaves_out_is_skipped() {
    let cfg = cfg(&[]);
    let now = utc("2026-06-01T12:00:00Z");
    let mut t = touch(&cfg, "birthday", now, now + chrono::Duration::hours(6));
    t.channel = Channel::Sms;
    let c = contact("acquaintance", chrono_tz::UTC);
    assert_eq!(
        evaluate(&cfg.rules, &c, &t, &History::default(), now),
        Verdict::Skip {
            why: Why::ChannelNotAllowed {
                tier: "acquaintance".into(),
                channel: Channel::Sms
            }
        }
    );
    // Friends may be reached on any channel.
    let c = contact("friend", chrono_tz::UTC);
    assert_eq!(
        evaluate(&cfg.rules, &c, &t, &History::default(), now),
        Verdict::Send
    );
}

#[test]
fn a_check_in_after_a_recent_interaction_is_not_due() {
    let cfg = cfg(&[]);
    let now = utc("2026-06-01T12:00:00Z");
    let t = touch(&cfg, "check_in", now, now + chrono::Duration::hours(6));
    // Friends: every 60d.
    let c = contact("friend", chrono_tz::UTC);
    let last = |days| history(vec![], vec![], Some(now - chrono::Duration::days(days)));
    let v = evaluate(&cfg.rules, &c, &t, &last(10), now);
    assert!(
        matches!(&v, Verdict::Skip { why: Why::NotDue(s) } if s.contains("60d")),
        "{v:?}"
    );
    assert_eq!(evaluate(&cfg.rules, &c, &t, &last(60), now), Verdict::Send);
    // Family: every 30d, so 31 days is long enough.
    let c = contact("family", chrono_tz::UTC);
    assert_eq!(evaluate(&cfg.rules, &c, &t, &last(31), now), Verdict::Send);
    assert!(matches!(
        evaluate(&cfg.rules, &c, &t, &last(29), now),
        Verdict::Skip {
            why: Why::NotDue(_)
        }
    ));
}

#[test]
fn on_throttle_defer_holds_and_skip_gives_up() {
    let cfg = cfg(&[]);
    let now = utc("2026-06-10T12:00:00Z");
    let c = contact("family", chrono_tz::UTC);
    // Family: min_gap 2d. A send an hour ago.
    let h = history(
        vec![slot(
            "thank_you:sample:o0",
            now - chrono::Duration::hours(1),
            "email",
        )],
        vec![],
        Some(now - chrono::Duration::days(90)),
    );
    let gap = Why::Throttled(Throttled::Limited(Limit::MinGap(
        std::time::Duration::from_secs(2 * 86_400),
    )));
    let thanks = touch(&cfg, "thank_you", now, now + chrono::Duration::days(3));
    assert_eq!(
        evaluate(&cfg.rules, &c, &thanks, &h, now),
        hold("2026-06-12T11:00:00Z", gap.clone())
    );
    let check_in = touch(&cfg, "check_in", now, now + chrono::Duration::hours(12));
    assert_eq!(
        evaluate(&cfg.rules, &c, &check_in, &h, now),
        Verdict::Skip { why: gap }
    );
}

#[test]
fn a_deferral_lands_in_the_next_window_in_the_contact_zone() {
    let cfg = cfg(&[]);
    let c = contact("family", chrono_tz::Asia::Tokyo);
    // 12:00 JST. The gap ends at 20:00 JST on the 11th: after the window, so 09:00 JST
    // on the 12th.
    let now = utc("2026-06-10T03:00:00Z");
    let h = history(
        vec![slot(
            "thank_you:sample:o0",
            utc("2026-06-09T11:00:00Z"),
            "email",
        )],
        vec![],
        None,
    );
    let thanks = touch(&cfg, "thank_you", now, now + chrono::Duration::days(3));
    let v = evaluate(&cfg.rules, &c, &thanks, &h, now);
    assert!(
        matches!(&v, Verdict::Hold { until, why: Why::Throttled(_) } if *until == utc("2026-06-12T00:00:00Z")),
        "{v:?}"
    );
}

#[test]
fn a_deferral_past_the_expiry_expires() {
    let cfg = cfg(&[]);
    let now = utc("2026-06-10T12:00:00Z");
    let c = contact("friend", chrono_tz::UTC);
    // Friends: 1 per 7d. A send yesterday holds the birthday for six days.
    let h = history(
        vec![slot(
            "thank_you:sample:o0",
            now - chrono::Duration::days(1),
            "email",
        )],
        vec![],
        None,
    );
    let t = touch(&cfg, "birthday", now, utc("2026-06-11T00:00:00Z"));
    let v = evaluate(&cfg.rules, &c, &t, &h, now);
    let Verdict::Expire {
        why: Why::TooLate(s),
    } = &v
    else {
        panic!("{v:?}")
    };
    assert!(s.contains("after its expiry"), "{s}");
    assert!(v.reason().unwrap().starts_with("expired: "));
}

#[test]
fn a_lower_priority_touch_defers_past_a_birthday_or_skips() {
    let cfg = cfg(&[("RAPPORT__DEFAULTS__SEND_WINDOW", "00:00-24:00")]);
    let now = utc("2026-06-10T12:00:00Z");
    let c = contact("family", chrono_tz::UTC);
    let birthday = now + chrono::Duration::hours(12);
    let h = history(
        vec![],
        vec![upcoming("birthday:sample:2026", 100, birthday, "email")],
        Some(now - chrono::Duration::days(90)),
    );
    // A thank-you (defer) waits until the gap after the birthday has passed.
    let thanks = touch(&cfg, "thank_you", now, now + chrono::Duration::days(3));
    let v = evaluate(&cfg.rules, &c, &thanks, &h, now);
    assert!(
        matches!(&v, Verdict::Hold { until, why: Why::Throttled(Throttled::Yields { .. }) }
            if *until == birthday + chrono::Duration::days(2)),
        "{v:?}"
    );
    assert!(v.reason().unwrap().contains("yields to birthday"));
    // A check-in (skip) gives up.
    let check_in = touch(&cfg, "check_in", now, now + chrono::Duration::hours(12));
    assert!(matches!(
        evaluate(&cfg.rules, &c, &check_in, &h, now),
        Verdict::Skip {
            why: Why::Throttled(Throttled::Yields { .. })
        }
    ));
}

#[test]
fn history_keeps_planned_touches_and_projections_not_in_the_ledger() {
    let cfg = cfg(&[]);
    let now = utc("2026-06-10T12:00:00Z");
    let mut planned = touch(&cfg, "thank_you", now, now + chrono::Duration::days(3));
    planned.id = id("thank_you:sample:o1");
    let mut sent = touch(&cfg, "birthday", now, now + chrono::Duration::days(1));
    sent.id = id("birthday:sample:2026");
    sent.status = TouchStatus::Sent;
    let projected = vec![
        upcoming("birthday:sample:2026", 100, now, "email"),
        upcoming("anniversary:sample:2026", 60, now, "email"),
    ];
    let h = History::new(vec![], &[planned, sent], projected, None);
    let ids: Vec<&str> = h.upcoming.iter().map(|u| u.touch.as_str()).collect();
    assert_eq!(ids, ["thank_you:sample:o1", "anniversary:sample:2026"]);
}

#[test]
fn a_tier_limits_gather_its_caps_channel_caps_gap_and_the_contact_caps() {
    let cfg = cfg(&[(
        "RAPPORT__TIERS__FAMILY__CHANNEL_CAPS__SMS",
        r#"[{ count = 1, per = "30d" }]"#,
    )]);
    let l = Limits::for_tier(&cfg.rules, "family");
    let scopes: Vec<(Scope, u32, i64)> = l
        .caps
        .iter()
        .map(|(s, c)| (s.clone(), c.count, c.per.as_secs() as i64))
        .collect();
    let family = || Scope::Tier("family".into());
    assert_eq!(
        scopes,
        [
            (Scope::Contact, 8, 30 * DAY),
            (family(), 2, 7 * DAY),
            (family(), 6, 30 * DAY),
            (Scope::Channel(Channel::Sms), 1, 30 * DAY),
        ]
    );
    assert_eq!(l.min_gap.as_secs() as i64, 2 * DAY);
    assert_eq!(l.horizon().as_secs() as i64, 30 * DAY);
    // An sms five days ago fills the sms cap, not the email one.
    let slots = [slot("a", utc("2026-06-05T12:00:00Z"), "sms")];
    let now = utc("2026-06-10T12:00:00Z");
    let sms = crate::policy::throttle::violation(&l, &slots, Channel::Sms, now);
    assert_eq!(sms.unwrap().to_string(), "sms cap 1 per 30d");
    assert_eq!(
        crate::policy::throttle::violation(&l, &slots, Channel::Email, now),
        None
    );
    // A tier the config no longer has keeps the per-contact caps only.
    let gone = Limits::for_tier(&cfg.rules, "gone");
    assert_eq!((gone.caps.len(), gone.min_gap.as_secs()), (1, 0));
}
