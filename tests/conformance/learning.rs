//! The learner's store side: the relationship as a compare-and-set, responses recorded
//! once and settling their touch, `ignored` touches, the contact changes a learning
//! write carries, statistics, erasure with its suppression records, and idempotency
//! keys.

use rapport::domain::Channel;
use std::{slice::from_ref, sync::Arc, time::Duration};

use rapport::{
    domain::{ContactId, Event, EventId, TouchId, TouchStatus},
    learning::{RelationshipState, ResponseKind, Signal, apply},
    render::sample_contact,
    store::{
        ContactUpsert, Idempotency, KeptAnswer, Learn, Learned, Note, Outcome, ResponseRecord,
        Settle, StatDelta, StatField, StatKey, Suppression,
    },
};

use crate::{
    Backend,
    fixtures::{cid, counts, days, hours, mins, planned, secs, t0, touch},
};

async fn add_contact<S: Backend>(store: &S, id: &str) -> ContactId {
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
async fn sent_touch<S: Backend>(store: &S, contact: &str) -> TouchId {
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

fn response(contact: &ContactId, id: &str, touch: Option<&TouchId>) -> ResponseRecord {
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

pub(crate) async fn learning_is_a_compare_and_set_on_the_version<S: Backend>(store: Arc<S>) {
    let c = add_contact(&*store, "ada").await;
    assert_eq!(store.relationship(&c).await.unwrap(), None);
    let cfg = rapport::learning::LearningConfig::default();
    let signal = Signal::Interaction { at: t0() };
    let (state, _) = apply(
        &RelationshipState::default(),
        &signal,
        "friend",
        &cfg,
        chrono_tz::UTC,
        t0(),
    );
    let mut learn = Learn::new(c.clone(), 0);
    learn.state = Some(state.clone());
    learn.notes.push(Note {
        at: t0(),
        text: "first".into(),
    });
    assert_eq!(store.learn(&learn, t0()).await.unwrap(), Learned::Applied);
    // The same version again: someone got there first.
    assert_eq!(store.learn(&learn, t0()).await.unwrap(), Learned::Conflict);
    let rel = store.relationship(&c).await.unwrap().unwrap();
    assert_eq!((rel.version, &rel.state), (1, &state));
    assert_eq!(rel.notes.len(), 1);
    // A write without a state keeps the stored one and appends its notes.
    let mut next = Learn::new(c.clone(), 1);
    next.notes.push(Note {
        at: t0() + secs(1),
        text: "second".into(),
    });
    assert_eq!(store.learn(&next, t0()).await.unwrap(), Learned::Applied);
    let rel = store.relationship(&c).await.unwrap().unwrap();
    assert_eq!(rel.version, 2);
    assert_eq!(rel.state, state);
    let texts: Vec<_> = rel.notes.iter().map(|n| n.text.as_str()).collect();
    assert_eq!(texts, ["first", "second"]);
    let nobody = Learn::new(cid("nobody"), 0);
    assert_eq!(
        store.learn(&nobody, t0()).await.unwrap(),
        Learned::NoContact
    );

    // Racing writers on one version: exactly one wins.
    let racers: Vec<_> = (0..8)
        .map(|i| {
            let store = store.clone();
            let mut l = Learn::new(c.clone(), 2);
            l.notes.push(Note {
                at: t0(),
                text: format!("racer {i}"),
            });
            tokio::spawn(async move { store.learn(&l, t0()).await.unwrap() })
        })
        .collect();
    let mut applied = 0;
    for r in racers {
        if r.await.unwrap() == Learned::Applied {
            applied += 1;
        }
    }
    assert_eq!(applied, 1);
    let many = store
        .relationships(&[c.clone(), cid("nobody")])
        .await
        .unwrap();
    assert_eq!(many.len(), 1);
    assert_eq!(many[&c].version, 3);
    assert_eq!(
        Some(&many[&c]),
        store.relationship(&c).await.unwrap().as_ref()
    );
    assert_eq!(
        store.relationship(&c).await.unwrap().unwrap().notes.len(),
        3
    );
}

pub(crate) async fn responses_are_recorded_once_and_settle_their_touch<S: Backend>(store: Arc<S>) {
    let c = add_contact(&*store, "bea").await;
    let id = sent_touch(&*store, "bea").await;
    let awaiting = store.awaiting(t0(), 10).await.unwrap();
    assert_eq!(awaiting.iter().map(|t| &t.id).collect::<Vec<_>>(), [&id]);
    assert!(store.awaiting(t0() - secs(1), 10).await.unwrap().is_empty());

    let mut learn = Learn::new(c.clone(), 0);
    learn.response = Some(response(&c, "r1", Some(&id)));
    learn.settle = Some((id.clone(), Settle::Responded));
    assert_eq!(
        store.learn(&learn, t0() + hours(2)).await.unwrap(),
        Learned::Applied
    );
    let t = touch(&*store, &id).await;
    assert_eq!(
        (t.status, t.responded_at),
        (TouchStatus::Sent, Some(t0() + hours(2)))
    );
    assert!(
        store
            .awaiting(t0() + days(30), 10)
            .await
            .unwrap()
            .is_empty()
    );
    // The same response id: nothing changes, the first record comes back.
    let mut again = Learn::new(c.clone(), 1);
    let mut other = response(&c, "r1", None);
    other.kind = ResponseKind::Complaint;
    again.response = Some(other);
    again.suppress = Some(Suppression::all("complaint"));
    match store.learn(&again, t0() + hours(3)).await.unwrap() {
        Learned::Duplicate(known) => assert_eq!(*known, response(&c, "r1", Some(&id))),
        other => panic!("{other:?}"),
    }
    assert!(
        store.get_contact(&c).await.unwrap().unwrap().email_consent,
        "nothing applied"
    );
    assert_eq!(store.relationship(&c).await.unwrap().unwrap().version, 1);
    // A settled touch cannot be settled again.
    let mut late = Learn::new(c.clone(), 1);
    late.settle = Some((id.clone(), Settle::Ignored));
    assert_eq!(
        store.learn(&late, t0() + days(8)).await.unwrap(),
        Learned::Conflict
    );
    late.settle = Some((id.clone(), Settle::Responded));
    assert_eq!(
        store.learn(&late, t0() + days(8)).await.unwrap(),
        Learned::Conflict
    );

    let mut second = Learn::new(c.clone(), 1);
    second.response = Some(response(&c, "r2", Some(&id)));
    assert_eq!(store.learn(&second, t0()).await.unwrap(), Learned::Applied);
    let ids: Vec<_> = store
        .responses_for_contact(&c)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(ids, ["r1", "r2"]);
}

pub(crate) async fn ignored_touches_come_back_with_a_late_response<S: Backend>(store: Arc<S>) {
    let c = add_contact(&*store, "cy").await;
    let id = sent_touch(&*store, "cy").await;
    let mut ignore = Learn::new(c.clone(), 0);
    ignore.settle = Some((id.clone(), Settle::Ignored));
    assert_eq!(
        store.learn(&ignore, t0() + days(7)).await.unwrap(),
        Learned::Applied
    );
    assert_eq!(touch(&*store, &id).await.status, TouchStatus::Ignored);
    assert!(
        store
            .awaiting(t0() + days(30), 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(counts(&*store).await.get("ignored"), Some(&1));
    assert_eq!(counts(&*store).await.get("sent"), None);

    let mut late = Learn::new(c.clone(), 1);
    late.response = Some(response(&c, "late", Some(&id)));
    late.settle = Some((id.clone(), Settle::Responded));
    assert_eq!(
        store.learn(&late, t0() + days(9)).await.unwrap(),
        Learned::Applied
    );
    let t = touch(&*store, &id).await;
    assert_eq!(
        (t.status, t.responded_at),
        (TouchStatus::Sent, Some(t0() + days(9)))
    );
    assert_eq!(counts(&*store).await.get("sent"), Some(&1));
    assert_eq!(counts(&*store).await.get("ignored"), None);
}

pub(crate) async fn learning_changes_the_contact_with_it<S: Backend>(store: Arc<S>) {
    let c = add_contact(&*store, "dee").await;
    let mut learn = Learn::new(c.clone(), 0);
    learn.tier = Some("family".into());
    learn.consent.push((Channel::Sms, false));
    // After the clock the store started the contact's check-in clock on (its own).
    let later = chrono::Utc::now() + days(3);
    learn.interaction = Some(later);
    let key = StatKey {
        tier: "friend".into(),
        channel: "email".into(),
        occasion: "birthday".into(),
    };
    for field in [StatField::Settled, StatField::Settled, StatField::Responded] {
        learn.stats.push(StatDelta {
            key: key.clone(),
            field,
        });
    }
    assert_eq!(store.learn(&learn, later).await.unwrap(), Learned::Applied);
    let got = store.get_contact(&c).await.unwrap().unwrap();
    assert_eq!(got.tier, "family");
    assert!(got.email_consent && !got.sms_consent);
    // A sync that names no tier keeps the learned one; one that names a tier sets it.
    let resync = |tier: &str, keep_tier: bool| {
        let mut contact = got.clone();
        contact.tier = tier.into();
        ContactUpsert {
            contact,
            email_consent: None,
            sms_consent: None,
            keep_tier,
        }
    };
    store
        .upsert_contacts(&[resync("acquaintance", true)])
        .await
        .unwrap();
    assert_eq!(store.get_contact(&c).await.unwrap().unwrap().tier, "family");
    store
        .upsert_contacts(&[resync("acquaintance", false)])
        .await
        .unwrap();
    assert_eq!(
        store.get_contact(&c).await.unwrap().unwrap().tier,
        "acquaintance"
    );
    store
        .upsert_contacts(&[resync("family", false)])
        .await
        .unwrap();
    let mut fresh = resync("acquaintance", true);
    fresh.contact.id = cid("newcomer");
    store.upsert_contacts(&[fresh]).await.unwrap();
    assert_eq!(
        store
            .get_contact(&cid("newcomer"))
            .await
            .unwrap()
            .unwrap()
            .tier,
        "acquaintance"
    );
    let rec = store
        .policy_records(from_ref(&c), t0(), &[])
        .await
        .unwrap()
        .remove(&c)
        .unwrap();
    assert_eq!(
        rec.last_interaction.map(|t| t.timestamp()),
        Some(later.timestamp())
    );
    let stats = store.stats().await.unwrap();
    assert_eq!(
        stats,
        [
            (key.clone(), StatField::Settled, 2),
            (key.clone(), StatField::Responded, 1)
        ]
    );

    // A complaint: both consents go, and a re-import that gives them back cannot.
    let mut complaint = Learn::new(c.clone(), 1);
    complaint.suppress = Some(Suppression::all("complaint on email"));
    assert_eq!(
        store.learn(&complaint, t0() + days(4)).await.unwrap(),
        Learned::Applied
    );
    let got = store.get_contact(&c).await.unwrap().unwrap();
    assert!(!got.email_consent && !got.sms_consent);
    store
        .upsert_contacts(&[ContactUpsert {
            contact: got.clone(),
            email_consent: Some(true),
            sms_consent: Some(true),
            keep_tier: false,
        }])
        .await
        .unwrap();
    let again = store.get_contact(&c).await.unwrap().unwrap();
    assert!(!again.email_consent && !again.sms_consent, "{again:?}");
    // Another contact with the same address, in another case, is suppressed too.
    let mut twin = got.clone();
    twin.id = cid("dee2");
    twin.email = Some(rapport::domain::EmailAddress::parse("DEE.unique@example.org").unwrap());
    twin.phone = None;
    store
        .upsert_contacts(&[ContactUpsert {
            contact: twin.clone(),
            email_consent: Some(true),
            sms_consent: Some(true),
            keep_tier: false,
        }])
        .await
        .unwrap();
    let twin = store.get_contact(&twin.id).await.unwrap().unwrap();
    assert!(!twin.email_consent && twin.sms_consent, "{twin:?}");

    // A hard bounce suppresses the address that bounced, nothing else.
    let hb = add_contact(&*store, "hb").await;
    let mut bounce = Learn::new(hb.clone(), 0);
    bounce.suppress = Some(Suppression {
        reason: "hard bounce on SMS".into(),
        channels: vec![Channel::Sms],
    });
    assert_eq!(store.learn(&bounce, t0()).await.unwrap(), Learned::Applied);
    let got = store.get_contact(&hb).await.unwrap().unwrap();
    assert!(got.email_consent && !got.sms_consent, "{got:?}");
    add_contact(&*store, "hb").await;
    let got = store.get_contact(&hb).await.unwrap().unwrap();
    assert!(got.email_consent && !got.sms_consent, "{got:?}");
}

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
    assert_eq!(store.learn(&learn, t0()).await.unwrap(), Learned::Applied);
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

pub(crate) async fn idempotency_keys_hold_one_answer<S: Backend>(store: Arc<S>) {
    let ttl = Duration::from_secs(3600);
    assert_eq!(
        store.begin_key("k1", "fp", ttl, t0()).await.unwrap(),
        Idempotency::Began
    );
    assert_eq!(
        store.begin_key("k1", "fp", ttl, t0()).await.unwrap(),
        Idempotency::InProgress {
            fingerprint: "fp".into()
        }
    );
    let answer = KeptAnswer {
        fingerprint: "fp".into(),
        status: 201,
        body: "{\"ok\":true}".into(),
    };
    store.keep_answer("k1", &answer, ttl, t0()).await.unwrap();
    store.forget_key("k1").await.unwrap();
    assert_eq!(
        store.begin_key("k1", "other", ttl, t0()).await.unwrap(),
        Idempotency::Done(answer)
    );
    // A key let go of can be taken again.
    assert_eq!(
        store.begin_key("k2", "fp", ttl, t0()).await.unwrap(),
        Idempotency::Began
    );
    store.forget_key("k2").await.unwrap();
    assert_eq!(
        store.begin_key("k2", "fp", ttl, t0()).await.unwrap(),
        Idempotency::Began
    );
    // Racing requests with one key: one takes it.
    let racers: Vec<_> = (0..8)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move { store.begin_key("k3", "fp", ttl, t0()).await.unwrap() })
        })
        .collect();
    let mut began = 0;
    for r in racers {
        if r.await.unwrap() == Idempotency::Began {
            began += 1;
        }
    }
    assert_eq!(began, 1);
}
