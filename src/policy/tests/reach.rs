//! Whether a touch's channel can still reach its contact: go ahead, move on to the
//! occasion's next channel, or be suppressed (the shipped config: birthdays try email
//! then SMS; acquaintances are email only).

use crate::domain::Channel;
use std::path::Path;

use chrono::{DateTime, Utc};

use crate::{
    config::Config,
    domain::{Contact, PhoneNumber, Touch, TouchId, TouchStatus},
    policy::{Reach, move_reason, reach},
    render::sample_contact,
};

fn cfg() -> Config {
    Config::load_with(Path::new("config/rapport.toml"), None, Vec::new()).unwrap()
}

/// `tier`'s sample contact (an email address, no phone), with `phone`, and consent as given.
fn contact(tier: &str, phone: bool, email_consent: bool, sms_consent: bool) -> Contact {
    let mut c = sample_contact(tier);
    c.phone = phone.then(|| PhoneNumber::parse("+14155550123").unwrap());
    c.email_consent = email_consent;
    c.sms_consent = sms_consent;
    c
}

fn birthday(channel: &str, reason: Option<&str>) -> Touch {
    let now = DateTime::<Utc>::from_timestamp(1_780_000_000, 0).unwrap();
    Touch {
        id: TouchId::from_stored("birthday:sample:2026".into()),
        occasion: "birthday".into(),
        contact_id: sample_contact("friend").id,
        occurrence: "2026".into(),
        channel: channel.parse().unwrap(),
        tried: Vec::new(),
        priority: 100,
        status: TouchStatus::Planned,
        scheduled_at: now,
        next_attempt_at: now,
        expires_at: now,
        attempts: 0,
        reason: reason.map(str::to_owned),
        created_at: now,
        updated_at: now,
        sent_at: None,
        slot_at: None,
        uncertain: 0,
        responded_at: None,
    }
}

fn moves(to: Channel, why: &str) -> Reach {
    Reach::Move {
        to,
        why: why.into(),
    }
}

fn suppressed(why: &str) -> Reach {
    Reach::Suppressed { why: why.into() }
}

#[test]
fn consent_addresses_and_the_tier_decide_the_channel() {
    let cfg = cfg();
    let hopped = "email: no email consent; trying sms";
    for (what, c, t, want) in [
        (
            "reachable",
            contact("friend", false, true, true),
            birthday("email", None),
            Reach::Go,
        ),
        (
            "unsubscribed, no phone",
            contact("friend", false, false, true),
            birthday("email", None),
            suppressed("no email consent"),
        ),
        (
            "unsubscribed, with a phone",
            contact("friend", true, false, true),
            birthday("email", None),
            moves(Channel::Sms, "no email consent"),
        ),
        (
            "opted out of both",
            contact("friend", true, false, false),
            birthday("email", None),
            suppressed("no email consent"),
        ),
        (
            "an acquaintance's tier allows no SMS to move to",
            contact("acquaintance", true, false, true),
            birthday("email", None),
            suppressed("no email consent"),
        ),
        (
            "moved to a tier without SMS: back to email",
            contact("acquaintance", true, true, true),
            birthday("sms", None),
            moves(Channel::Email, "tier acquaintance does not allow sms"),
        ),
        (
            "only the tier stands in the way: the policy skips it, saying so",
            contact("acquaintance", true, false, true),
            birthday("sms", None),
            Reach::Go,
        ),
        (
            "never back to a channel it left",
            contact("friend", true, true, false),
            Touch {
                tried: vec![Channel::Email],
                ..birthday("sms", Some(hopped))
            },
            suppressed("no SMS consent"),
        ),
    ] {
        assert_eq!(reach(&cfg.rules, &c, &t), want, "{what}");
    }
}

#[test]
fn a_move_keeps_why_each_channel_was_left() {
    let first = birthday("email", None);
    assert_eq!(
        move_reason(&first, Channel::Sms, "no email consent"),
        "email: no email consent; trying sms"
    );
    let hopped = birthday("sms", Some("email: smtp 550; trying sms"));
    assert_eq!(
        move_reason(&hopped, Channel::Webhook, "no SMS consent"),
        "email: smtp 550; trying sms; sms: no SMS consent; trying webhook"
    );
}
