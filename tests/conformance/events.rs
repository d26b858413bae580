//! Events: insert-if-absent per contact, each counting as an interaction (never moving
//! the clock back, a future one counting as of now), and only for a known contact.

use std::{slice::from_ref, sync::Arc};

use chrono::{DateTime, Utc};
use rapport::{domain::Event, store::StoreError};

use crate::{
    Backend,
    fixtures::{cid, days, hours, mins, t0},
    policy_fixtures::{add_contacts, event, idle, later, policy_of},
};

async fn last_seen<S: Backend>(store: &S, contact: &str) -> Option<DateTime<Utc>> {
    policy_of(store, contact, t0()).await.last_interaction
}

pub(crate) async fn events_are_insert_if_absent_and_count_as_interactions<S: Backend>(
    store: Arc<S>,
) {
    let base = later();
    add_contacts(&*store, &["ada", "bob"]).await;
    let first = event("ada", "order-1", base + hours(1));
    assert!(store.add_event(&first, base + hours(2)).await.unwrap());
    assert_eq!(last_seen(&*store, "ada").await, Some(base + hours(1)));

    // The same id again, with other data and a later time, changes nothing.
    let again = Event {
        kind: "refund".into(),
        at: base + hours(5),
        data: serde_json::Map::new(),
        ..first.clone()
    };
    assert!(!store.add_event(&again, base + hours(6)).await.unwrap());
    let events = store.events_for_contact(&cid("ada")).await.unwrap();
    assert_eq!(events, from_ref(&first));
    assert_eq!(last_seen(&*store, "ada").await, Some(base + hours(1)));

    // An older event is kept, but the clock never goes back.
    let older = Event {
        kind: "signup".into(),
        ..event("ada", "signup", base + mins(30))
    };
    assert!(store.add_event(&older, base + hours(3)).await.unwrap());
    assert_eq!(last_seen(&*store, "ada").await, Some(base + hours(1)));

    // A future-dated one counts as of now, not of its time; sent again later, it is
    // known, and the clock stays.
    let future = event("ada", "preorder-7", base + days(3));
    assert!(store.add_event(&future, base + hours(4)).await.unwrap());
    assert_eq!(last_seen(&*store, "ada").await, Some(base + hours(4)));
    assert!(!store.add_event(&future, base + hours(8)).await.unwrap());
    assert_eq!(last_seen(&*store, "ada").await, Some(base + hours(4)));

    let events = store.events_for_contact(&cid("ada")).await.unwrap();
    assert_eq!(events, [older, first, future], "oldest first, intact");

    // Event ids are per contact.
    let bobs = event("bob", "order-1", base + hours(7));
    assert!(store.add_event(&bobs, base + hours(7)).await.unwrap());
    assert_eq!(store.events_for_contact(&cid("bob")).await.unwrap(), [bobs]);
    assert_eq!(last_seen(&*store, "ada").await, Some(base + hours(4)));
}

pub(crate) async fn events_need_a_known_contact<S: Backend>(store: Arc<S>) {
    add_contacts(&*store, &["ada"]).await;
    let nobody = cid("nobody");
    let got = store
        .add_event(&event("nobody", "order-1", t0()), t0())
        .await;
    assert!(
        matches!(&got, Err(StoreError::UnknownContact(id)) if *id == nobody),
        "{got:?}"
    );
    assert_eq!(store.events_for_contact(&nobody).await.unwrap(), []);
    let records = store.policy_records(from_ref(&nobody), t0() - days(1), &[]);
    assert!(records.await.unwrap().is_empty());
    assert_eq!(store.count_contacts().await.unwrap(), 1);
    let everyone = idle(&*store, later() + days(365)).await;
    assert_eq!(
        everyone.iter().map(|(id, _)| id).collect::<Vec<_>>(),
        [&cid("ada")]
    );
}
