//! Planning with what was learned: the send hour, the channel and the check-in cadence
//! follow the contact's relationship state, and nothing changes with learning off.

use crate::domain::Channel;
use std::path::Path;

use chrono::{DateTime, Duration, Utc};

use super::*;
use crate::{
    config::Config,
    domain::{Birthday, ContactId, PhoneNumber},
    learning::{self, ChannelPrior, Response, ResponseKind, Signal, TouchRef},
    render::sample_contact,
};

fn utc(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn cfg(env: &[(&str, &str)]) -> Config {
    let env = env.iter().map(|(k, v)| (k.to_string(), v.to_string()));
    Config::load_with(Path::new("config/rapport.toml"), None, env).unwrap()
}

fn friend() -> Contact {
    let mut c = sample_contact("friend");
    c.id = ContactId::parse("fran").unwrap();
    c.timezone = Some(chrono_tz::UTC);
    c.birthday = Some(Birthday::parse("--07-14").unwrap());
    c.phone = Some(PhoneNumber::parse("+14155550100").unwrap());
    c.email_consent = true;
    c.sms_consent = true;
    c
}

/// A state fed `signals` in order.
fn learned(cfg: &Config, signals: &[Signal]) -> RelationshipState {
    let mut state = RelationshipState::default();
    for s in signals {
        state = learning::apply(
            &state,
            s,
            "friend",
            &cfg.learning.model,
            chrono_tz::UTC,
            s.at(),
        )
        .0;
    }
    state
}

/// Touches on `channel` answered `n` times, each at `hour`:00 UTC.
fn answered(channel: &str, n: i64, hour: u32) -> Vec<Signal> {
    let mut out = Vec::new();
    for i in 0..n {
        let sent = utc("2026-03-01T09:00:00Z") + Duration::days(i * 3);
        out.push(Signal::Sent {
            channel: channel.parse().unwrap(),
            at: sent,
        });
        let day = sent.date_naive().and_hms_opt(hour, 0, 0).unwrap().and_utc();
        out.push(Signal::Response(Response {
            kind: ResponseKind::Reply,
            channel: channel.parse().unwrap(),
            at: day,
            touch: Some(TouchRef {
                channel: channel.parse().unwrap(),
                sent_at: sent,
            }),
        }));
    }
    out
}

fn birthday(cfg: &Config, c: &Contact, state: Option<&RelationshipState>) -> NewTouch {
    birthday_with(cfg, c, state, None)
}

fn birthday_with(
    cfg: &Config,
    c: &Contact,
    state: Option<&RelationshipState>,
    fallback_hour: Option<u32>,
) -> NewTouch {
    let prior = ChannelPrior::new();
    let occasion = cfg.rules.occasion("birthday").unwrap();
    let l = state.map(|state| Learned {
        learning: &cfg.learning,
        state,
        prior: &prior,
        fallback_hour,
    });
    plan_learned(
        &cfg.rules,
        occasion,
        std::slice::from_ref(c),
        |_| l,
        utc("2026-07-14T00:30:00Z"),
    )
    .pop()
    .expect("due")
}

#[test]
fn the_learned_hour_moves_the_touch_inside_the_window() {
    let cfg = cfg(&[]);
    let c = friend();
    assert_eq!(
        birthday(&cfg, &c, None).scheduled_at,
        utc("2026-07-14T09:00:00Z")
    );
    let at_three = learned(&cfg, &answered("email", 6, 15));
    let t = birthday(&cfg, &c, Some(&at_three));
    assert_eq!(t.scheduled_at, utc("2026-07-14T15:00:00Z"));
    // Due at that hour, not at the window's opening: an adoption of the store at noon
    // does not take it for a note already sent.
    assert_eq!(t.due, utc("2026-07-14T15:00:00Z"));
    // Answers after the window closes: its last hour, never outside it.
    let late = learned(&cfg, &answered("email", 6, 22));
    assert_eq!(
        birthday(&cfg, &c, Some(&late)).scheduled_at,
        utc("2026-07-14T17:00:00Z")
    );
    // Too few answers to trust: the window's start.
    let few = learned(&cfg, &answered("email", 2, 15));
    assert_eq!(
        birthday(&cfg, &c, Some(&few)).scheduled_at,
        utc("2026-07-14T09:00:00Z")
    );
    // Too few of its own, but its tier answers at 12:00: then.
    assert_eq!(
        birthday_with(&cfg, &c, Some(&few), Some(12)).scheduled_at,
        utc("2026-07-14T12:00:00Z")
    );
    // Its own, once there are enough, beat the tier's.
    assert_eq!(
        birthday_with(&cfg, &c, Some(&at_three), Some(12)).scheduled_at,
        utc("2026-07-14T15:00:00Z")
    );
    // A tier hour outside the window is not used.
    assert_eq!(
        birthday_with(&cfg, &c, Some(&few), Some(6)).scheduled_at,
        utc("2026-07-14T09:00:00Z")
    );
    // Nothing known of the contact nor its tier: the configured channel, no draw.
    let nothing = RelationshipState::default();
    assert_eq!(birthday(&cfg, &c, Some(&nothing)).channel, Channel::Email);
    // Learning off: as configured, whatever was learned.
    let off = self::cfg(&[("RAPPORT__LEARNING__ENABLED", "false")]);
    assert_eq!(
        birthday(&off, &c, Some(&at_three)).scheduled_at,
        utc("2026-07-14T09:00:00Z")
    );
}

#[test]
fn the_learned_channel_is_drawn_among_the_reachable_ones() {
    let cfg = cfg(&[]);
    let mut c = friend();
    assert_eq!(
        birthday(&cfg, &c, None).channel,
        Channel::Email,
        "the occasion's first"
    );
    // SMS answered every time, email never.
    let mut signals = answered("sms", 12, 10);
    for i in 0..12 {
        signals.push(Signal::Sent {
            channel: Channel::Email,
            at: utc("2026-05-01T09:00:00Z") + Duration::days(i),
        });
    }
    let prefers_sms = learned(&cfg, &signals);
    let t = birthday(&cfg, &c, Some(&prefers_sms));
    assert_eq!(t.channel, Channel::Sms);
    // The same touch planned again draws the same.
    assert_eq!(birthday(&cfg, &c, Some(&prefers_sms)).channel, Channel::Sms);
    // Never a channel the contact cannot be reached on.
    c.sms_consent = false;
    assert_eq!(
        birthday(&cfg, &c, Some(&prefers_sms)).channel,
        Channel::Email
    );
    let off = self::cfg(&[("RAPPORT__LEARNING__ENABLED", "false")]);
    c.sms_consent = true;
    assert_eq!(
        birthday(&off, &c, Some(&prefers_sms)).channel,
        Channel::Email
    );
}

#[test]
fn ignored_check_ins_back_off_then_stop() {
    let cfg = cfg(&[]);
    let c = friend();
    let prior = ChannelPrior::new();
    let occasion = cfg.rules.occasion("check_in").unwrap();
    // Friends: every 60d.
    let last = utc("2026-01-01T12:00:00Z");
    let at = |days: i64, state: &RelationshipState| {
        let l = Learned {
            learning: &cfg.learning,
            state,
            prior: &prior,
            fallback_hour: None,
        };
        check_in_learned(
            &cfg.rules,
            occasion,
            &c,
            last,
            Some(l),
            last + Duration::days(days),
        )
    };
    let ignored = |n: usize| {
        let signals: Vec<Signal> = (0..n)
            .map(|i| Signal::Ignored {
                channel: Channel::Email,
                at: utc("2025-12-01T00:00:00Z") + Duration::days(i as i64),
            })
            .collect();
        learned(&cfg, &signals)
    };
    let fresh = RelationshipState::default();
    assert!(at(61, &fresh).is_some());
    // Two ignored in a row: twice the cadence.
    let tired = ignored(2);
    assert!(at(61, &tired).is_none());
    assert!(at(119, &tired).is_none());
    assert!(at(121, &tired).is_some());
    // Five: sunset, no check-in however long it has been.
    let gone = ignored(5);
    assert!(gone.is_sunset());
    assert!(at(3650, &gone).is_none());
    // Learning off: the tier's cadence.
    let off = self::cfg(&[("RAPPORT__LEARNING__ENABLED", "false")]);
    let l = Learned {
        learning: &off.learning,
        state: &gone,
        prior: &prior,
        fallback_hour: None,
    };
    assert!(
        check_in_learned(
            &off.rules,
            occasion,
            &c,
            last,
            Some(l),
            last + Duration::days(61)
        )
        .is_some()
    );
}

#[test]
fn a_fallback_wraps_around_past_where_the_touch_has_been() {
    let cfg = cfg(&[(
        "RAPPORT__OCCASIONS__BIRTHDAY__CHANNELS",
        "[\"email\", \"sms\"]",
    )]);
    let c = friend();
    let o = cfg.rules.occasion("birthday").unwrap();
    // A touch that started on SMS (learned) falls back to email before it.
    assert_eq!(
        crate::policy::fallback_channel(&cfg.rules, o, &c, Channel::Sms, &[]),
        Some(Channel::Email)
    );
    assert_eq!(
        crate::policy::fallback_channel(&cfg.rules, o, &c, Channel::Email, &[]),
        Some(Channel::Sms)
    );
    // Never back to where it has been.
    assert_eq!(
        crate::policy::fallback_channel(&cfg.rules, o, &c, Channel::Email, &[Channel::Sms]),
        None
    );
    let mut no_phone = c.clone();
    no_phone.phone = None;
    assert_eq!(
        crate::policy::fallback_channel(&cfg.rules, o, &no_phone, Channel::Email, &[]),
        None
    );
}
