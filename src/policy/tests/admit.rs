//! Admission, the one decision the dispatcher, `rapport plan` and the simulator make on
//! a due touch: the precheck (contact gone, channel unable to reach the contact), then
//! the policy; a move is followed to the channel that can carry the touch.

use chrono::{DateTime, NaiveDate, Utc};

use crate::{
    config::Config,
    domain::{Channel, Contact, Outcome, PhoneNumber, Touch, TouchId, TouchStatus, time},
    policy::{Admission, History, Settled, Upcoming, Verdict, admit, admit_through},
    render::sample_contact,
};

fn cfg() -> Config {
    Config::load_with(
        std::path::Path::new("config/rapport.toml"),
        None,
        Vec::new(),
    )
    .unwrap()
}

/// Noon on 2026-07-14 in London, the sample contact's zone: inside every send window.
fn noon() -> DateTime<Utc> {
    let day = NaiveDate::from_ymd_opt(2026, 7, 14).unwrap();
    time::local_instant(day, 12 * 60, chrono_tz::Europe::London)
}

fn friend(phone: bool, email_consent: bool) -> Contact {
    let mut c = sample_contact("friend");
    c.phone = phone.then(|| PhoneNumber::parse("+14155550123").unwrap());
    c.email_consent = email_consent;
    c.sms_consent = true;
    c
}

fn birthday(channel: Channel) -> Touch {
    let now = noon();
    Touch {
        id: TouchId::from_stored("birthday:sample:2026".into()),
        occasion: "birthday".into(),
        contact_id: sample_contact("friend").id,
        occurrence: "2026".into(),
        channel,
        tried: Vec::new(),
        priority: 100,
        status: TouchStatus::Planned,
        scheduled_at: now,
        next_attempt_at: now,
        expires_at: now + chrono::Duration::hours(10),
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

/// `touch` still to go, as the store reports a planned touch.
fn still_to_go(touch: &Touch) -> History {
    History {
        upcoming: vec![Upcoming {
            touch: touch.id.clone(),
            occasion: touch.occasion.clone(),
            priority: touch.priority,
            at: touch.next_attempt_at,
            channel: touch.channel,
        }],
        ..History::default()
    }
}

#[test]
fn a_touch_whose_contact_is_gone_is_suppressed() {
    let (cfg, t) = (cfg(), birthday(Channel::Email));
    let a = admit(&cfg.rules, None, &t, &mut History::default(), noon());
    assert_eq!(
        a.outcome(&t),
        Some(Outcome::Suppressed {
            id: t.id.clone(),
            reason: "contact no longer exists".into()
        })
    );
}

#[test]
fn a_send_takes_its_place_for_the_contacts_next_touches() {
    let (cfg, c, t) = (cfg(), friend(false, true), birthday(Channel::Email));
    let mut h = still_to_go(&t);
    let a = admit(&cfg.rules, Some(&c), &t, &mut h, noon());
    assert_eq!(a, Admission::Decided(Verdict::Send));
    assert_eq!(a.outcome(&t), None, "a send's outcome is the send's");
    assert!(h.upcoming.is_empty(), "no longer still to go");
    assert_eq!(h.slots.len(), 1);
    assert_eq!(
        (h.slots[0].at, h.slots[0].channel),
        (noon(), Channel::Email)
    );
}

#[test]
fn a_channel_that_cannot_reach_the_contact_moves_the_touch_and_the_ledger_says_so() {
    let (cfg, c, t) = (cfg(), friend(true, false), birthday(Channel::Email));
    let a = admit(&cfg.rules, Some(&c), &t, &mut History::default(), noon());
    let why = "email: no email consent; trying sms";
    assert_eq!(
        a.clone().outcome(&t),
        Some(Outcome::Fallback {
            id: t.id.clone(),
            channel: Channel::Sms,
            reason: why.into()
        })
    );
    // Followed as the dispatcher follows it: admitted again, on SMS, right after.
    let mut h = History::default();
    let (moved, moves, verdict) = admit_through(&cfg.rules, Some(&c), &t, &mut h, noon());
    assert_eq!(moves, vec![why.to_owned()]);
    assert_eq!(
        (moved.channel, moved.tried.as_slice()),
        (Channel::Sms, &[Channel::Email][..])
    );
    assert_eq!(moved.reason.as_deref(), Some(why));
    assert_eq!(verdict, Settled::Decided(Verdict::Send));
    assert_eq!(
        h.slots[0].channel,
        Channel::Sms,
        "the place is taken on SMS"
    );
}

#[test]
fn a_touch_nothing_can_carry_is_suppressed_and_no_longer_still_to_go() {
    // No email consent and no phone: no channel left.
    let (cfg, c, t) = (cfg(), friend(false, false), birthday(Channel::Email));
    let mut h = still_to_go(&t);
    let (_, moves, verdict) = admit_through(&cfg.rules, Some(&c), &t, &mut h, noon());
    assert!(moves.is_empty());
    assert_eq!(
        verdict,
        Settled::Suppressed {
            reason: "no email consent".into()
        }
    );
    assert!(h.upcoming.is_empty());
    assert!(h.slots.is_empty());
}

#[test]
fn a_hold_is_deferred_to_when_the_window_opens_with_its_reason() {
    let (cfg, c) = (cfg(), friend(false, true));
    let mut t = birthday(Channel::Email);
    let night = noon() - chrono::Duration::hours(10);
    t.next_attempt_at = night;
    let a = admit(&cfg.rules, Some(&c), &t, &mut History::default(), night);
    let Admission::Decided(Verdict::Hold { until, .. }) = a.clone() else {
        panic!("held at 02:00 local: {a:?}");
    };
    assert!(until > night);
    match a.outcome(&t) {
        Some(Outcome::Defer { at, reason, .. }) => {
            assert_eq!(at, until);
            assert!(reason.is_some_and(|r| r.contains("outside the send window")));
        }
        o => panic!("a hold is a deferral: {o:?}"),
    }
}
