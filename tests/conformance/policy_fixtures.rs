//! What the policy cases share: contacts and events to add, a claim to hold, and the
//! reservations, slots, policy records and idle contacts a case checks.

use chrono::{DateTime, Utc};
use rapport::{
    domain::{Contact, ContactId, Event, EventId, NewTouch},
    policy::Slot,
    render::sample_contact,
    store::{ContactUpsert, PolicyRecord, Reservation},
};
use serde_json::json;

use crate::{
    Backend,
    fixtures::{cid, days, hours, ids_of, mins, t0},
};

/// Far past any contact's first-seen stamp (upsert takes the wall clock), so the
/// interactions a case adds from here on are the ones that count.
pub(crate) fn later() -> DateTime<Utc> {
    t0() + days(100 * 365)
}

pub(crate) async fn add_contacts<S: Backend>(store: &S, ids: &[&str]) {
    let rows: Vec<_> = ids
        .iter()
        .map(|id| ContactUpsert {
            contact: Contact {
                id: cid(id),
                ..sample_contact("gold")
            },
            email_consent: None,
            sms_consent: None,
            keep_tier: false,
        })
        .collect();
    store.upsert_contacts(&rows).await.unwrap();
}

pub(crate) fn event(contact: &str, id: &str, at: DateTime<Utc>) -> Event {
    let mut data = serde_json::Map::new();
    data.insert(
        "order".into(),
        json!({ "total": 42.5, "items": ["teapot", null], "gift": true }),
    );
    Event {
        contact_id: cid(contact),
        id: EventId::parse(id).unwrap(),
        kind: "purchase".into(),
        at,
        data,
    }
}

/// The one contact's policy record (which must exist).
pub(crate) async fn policy_of<S: Backend>(
    store: &S,
    contact: &str,
    since: DateTime<Utc>,
) -> PolicyRecord {
    let mut found = store
        .policy_records(&[cid(contact)], since, &[])
        .await
        .unwrap();
    found
        .remove(&cid(contact))
        .expect("a record for a known contact")
}

/// Idle contacts up to `before`, as (id, last interaction).
pub(crate) async fn idle<S: Backend>(
    store: &S,
    before: DateTime<Utc>,
) -> Vec<(ContactId, DateTime<Utc>)> {
    let page = store.idle_contacts(before, None, 100).await.unwrap();
    page.into_iter().map(|(c, at)| (c.id, at)).collect()
}

/// Plans `touches` and claims them all for `owner` at `now`.
pub(crate) async fn claimed<S: Backend>(
    store: &S,
    touches: &[NewTouch],
    owner: &str,
    now: DateTime<Utc>,
) {
    store
        .plan_touches(touches, 10, now - hours(1))
        .await
        .unwrap();
    let got = store
        .claim(&ids_of(touches), owner, now, now + mins(5))
        .await;
    assert_eq!(got.unwrap().touches.len(), touches.len());
}

pub(crate) fn reservation(
    t: &NewTouch,
    channel: &str,
    at: DateTime<Utc>,
    version: u64,
) -> Reservation {
    Reservation {
        touch: t.id.clone(),
        contact: t.contact_id.clone(),
        channel: channel.parse().unwrap(),
        at,
        version,
    }
}

pub(crate) fn slot(t: &NewTouch, channel: &str, at: DateTime<Utc>) -> Slot {
    Slot {
        touch: t.id.clone(),
        at,
        channel: channel.parse().unwrap(),
    }
}
