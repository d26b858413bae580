//! Erasure: nothing of the contact is left in the store but the suppression of its hashed
//! addresses, and lookups by phone number follow the contacts' numbers.

use std::{slice::from_ref, sync::Arc};

use rapport::{
    domain::{Event, EventId},
    learning::RelationshipState,
    render::sample_contact,
    store::{ContactUpsert, Learn, LearnOutcome, Note, Settle},
};

use crate::{
    Backend,
    fixtures::{cid, counts, days, t0},
    learning_fixtures::{add_contact, response, sent_touch},
};

pub(crate) async fn erasure_leaves_nothing_but_the_suppression<S: Backend>(store: Arc<S>) {
    let c = add_contact(&*store, "eve").await;
    let keep = add_contact(&*store, "fay").await;
    let id = sent_touch(&*store, "eve").await;
    let event = Event {
        contact_id: c.clone(),
        id: EventId::parse("order-1").unwrap(),
        kind: "purchase".into(),
        at: t0(),
        data: serde_json::json!({"note": "Eve's order"})
            .as_object()
            .cloned()
            .unwrap(),
    };
    assert!(store.add_event(&event, t0()).await.unwrap());
    let mut learn = Learn::new(c.clone(), 0);
    learn.response = Some(response(&c, "r1", Some(&id)));
    learn.settle = Some((id.clone(), Settle::Responded));
    learn.notes.push(Note {
        at: t0(),
        text: "a note".into(),
    });
    learn.state = Some(RelationshipState::default());
    assert_eq!(
        store.learn(&learn, t0()).await.unwrap(),
        LearnOutcome::Applied
    );
    let before = store.dump().await;
    assert!(
        before.contains("eve.unique@example.org"),
        "the dump sees the data"
    );
    let phone = store.get_contact(&c).await.unwrap().unwrap().phone.unwrap();
    assert!(before.contains(phone.as_str()));

    assert_eq!(
        store.contacts_by_phone(phone.as_str()).await.unwrap(),
        std::slice::from_ref(&c)
    );
    assert!(store.erase_contact(&c, t0() + days(1)).await.unwrap());
    assert!(
        store
            .contacts_by_phone(phone.as_str())
            .await
            .unwrap()
            .is_empty()
    );
    let after = store.dump().await;
    for needle in ["eve.unique@example.org", "Eve's order", phone.as_str()] {
        assert!(
            !after.contains(needle),
            "{needle} is still stored:\n{after}"
        );
    }
    assert!(after.contains("fay.unique@example.org"), "others are kept");
    assert_eq!(store.get_contact(&c).await.unwrap(), None);
    assert!(store.touches_for_contact(&c).await.unwrap().is_empty());
    assert!(store.events_for_contact(&c).await.unwrap().is_empty());
    assert!(store.responses_for_contact(&c).await.unwrap().is_empty());
    assert_eq!(store.relationship(&c).await.unwrap(), None);
    assert!(store.get_touches(from_ref(&id)).await.unwrap().is_empty());
    assert_eq!(
        counts(&*store).await.get("sent"),
        None,
        "the status counts forget it"
    );
    assert!(
        store
            .awaiting(t0() + days(30), 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(!store.erase_contact(&c, t0()).await.unwrap());
    assert!(store.get_contact(&keep).await.unwrap().is_some());

    // Imported again, with consent: the hashed addresses still say no.
    let mut again = sample_contact("friend");
    again.id = cid("eve-again");
    again.email = Some(rapport::domain::EmailAddress::parse("eve.unique@example.org").unwrap());
    store
        .upsert_contacts(&[ContactUpsert {
            contact: again.clone(),
            email_consent: Some(true),
            sms_consent: Some(true),
            keep_tier: false,
        }])
        .await
        .unwrap();
    let again = store.get_contact(&again.id).await.unwrap().unwrap();
    assert!(!again.email_consent, "{again:?}");

    // A contact's number changes: the old one no longer finds it.
    let mut moved = store.get_contact(&keep).await.unwrap().unwrap();
    let old = moved.phone.clone().unwrap();
    assert_eq!(
        store.contacts_by_phone(old.as_str()).await.unwrap(),
        std::slice::from_ref(&keep)
    );
    moved.phone = Some(rapport::domain::PhoneNumber::parse("+14155559876").unwrap());
    store
        .upsert_contacts(&[ContactUpsert {
            contact: moved,
            email_consent: None,
            sms_consent: None,
            keep_tier: false,
        }])
        .await
        .unwrap();
    assert!(
        store
            .contacts_by_phone(old.as_str())
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        store.contacts_by_phone("+14155559876").await.unwrap(),
        std::slice::from_ref(&keep)
    );
    // A shared number lists everyone with it.
    let mut kin = store.get_contact(&keep).await.unwrap().unwrap();
    kin.id = cid("fay-kin");
    store
        .upsert_contacts(&[ContactUpsert {
            contact: kin,
            email_consent: None,
            sms_consent: None,
            keep_tier: false,
        }])
        .await
        .unwrap();
    assert_eq!(
        store.contacts_by_phone("+14155559876").await.unwrap(),
        [keep, cid("fay-kin")]
    );
}
