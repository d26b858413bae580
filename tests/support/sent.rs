//! Touches put in the ledger as the dispatcher leaves them: planned, claimed, and
//! recorded sent (or still being sent), for tests about what comes after a send.

use chrono::{DateTime, Duration, Utc};
use rapport::{
    domain::{ContactId, NewTouch, TouchId, TouchStatus},
    store::{Outcome, Store},
};

/// `occasion:contact:occurrence` on `channel`, planned and claimed at `at`.
pub async fn sending<S: Store>(
    store: &S,
    contact: &str,
    occasion: &str,
    occurrence: &str,
    channel: &str,
    at: DateTime<Utc>,
) -> TouchId {
    let contact_id = ContactId::parse(contact).unwrap();
    let t = NewTouch {
        id: TouchId::derive(occasion, &contact_id, occurrence),
        occasion: occasion.into(),
        contact_id,
        occurrence: occurrence.into(),
        channel: channel.parse().unwrap(),
        priority: 10,
        scheduled_at: at,
        due: at,
        expires_at: at + Duration::days(1),
        status: TouchStatus::Planned,
        reason: None,
    };
    store
        .plan_touches(std::slice::from_ref(&t), 10, at)
        .await
        .unwrap();
    let owner = format!("test-{}", t.id);
    let claimed = store
        .claim(
            std::slice::from_ref(&t.id),
            &owner,
            at,
            at + Duration::minutes(5),
        )
        .await
        .unwrap();
    assert_eq!(claimed.touches.len(), 1, "{} could not be claimed", t.id);
    t.id
}

/// The same, recorded sent at `at`.
pub async fn sent<S: Store>(
    store: &S,
    contact: &str,
    occasion: &str,
    occurrence: &str,
    channel: &str,
    at: DateTime<Utc>,
) -> TouchId {
    let id = sending(store, contact, occasion, occurrence, channel, at).await;
    let owner = format!("test-{id}");
    let done = store
        .record(&[Outcome::Sent { id: id.clone() }], &owner, at)
        .await
        .unwrap();
    assert_eq!(done, 1, "{id} was not recorded sent");
    id
}
