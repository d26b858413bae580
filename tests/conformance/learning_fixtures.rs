//! What the learner's cases share: a contact with an address and number of its own, a
//! touch sent to it, and a response to record.

use rapport::domain::Channel;
use std::slice::from_ref;

use rapport::{
    domain::{ContactId, TouchId},
    learning::ResponseKind,
    render::sample_contact,
    store::{ContactUpsert, Outcome, ResponseRecord},
};

use crate::{
    Backend,
    fixtures::{cid, hours, mins, planned, t0},
};

pub(crate) async fn add_contact<S: Backend>(store: &S, id: &str) -> ContactId {
    let mut c = sample_contact("friend");
    c.id = cid(id);
    c.email =
        Some(rapport::domain::EmailAddress::parse(&format!("{id}.unique@example.org")).unwrap());
    // Each contact its own number (suppression is by address).
    let n = id
        .bytes()
        .fold(7u32, |h, b| h.wrapping_mul(31) ^ u32::from(b))
        % 10_000;
    c.phone = Some(rapport::domain::PhoneNumber::parse(&format!("+1415555{n:04}")).unwrap());
    store
        .upsert_contacts(&[ContactUpsert {
            contact: c.clone(),
            email_consent: Some(true),
            sms_consent: Some(true),
            keep_tier: false,
        }])
        .await
        .unwrap();
    c.id
}

/// A birthday touch for `contact`, sent at `t0`.
pub(crate) async fn sent_touch<S: Backend>(store: &S, contact: &str) -> TouchId {
    let t = planned(contact, t0());
    store
        .plan_touches(from_ref(&t), 10, t0() - hours(1))
        .await
        .unwrap();
    let owner = format!("w-{contact}");
    store
        .claim(from_ref(&t.id), &owner, t0(), t0() + mins(5))
        .await
        .unwrap();
    let sent = [Outcome::Sent { id: t.id.clone() }];
    assert_eq!(store.record(&sent, &owner, t0()).await.unwrap(), 1);
    t.id
}

pub(crate) fn response(contact: &ContactId, id: &str, touch: Option<&TouchId>) -> ResponseRecord {
    ResponseRecord {
        id: id.into(),
        contact: contact.clone(),
        kind: ResponseKind::Reply,
        channel: Channel::Email,
        touch: touch.cloned(),
        at: t0() + hours(2),
        recorded_at: t0() + hours(2),
        source: "api".into(),
        detail: None,
        effects: vec!["none".into()],
    }
}
