//! A learning write: a compare-and-set on the relationship's version (one of racing
//! writers wins), carrying the contact's changes with it: tier, consent, the last
//! interaction, statistics and suppression.

use rapport::domain::Channel;
use std::{slice::from_ref, sync::Arc};

use rapport::{
    learning::{RelationshipState, Signal, apply},
    store::{ContactUpsert, Learn, LearnOutcome, Note, StatDelta, StatField, StatKey, Suppression},
};

use crate::{
    Backend,
    fixtures::{cid, days, secs, t0},
    learning_fixtures::add_contact,
};

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
    assert_eq!(
        store.learn(&learn, t0()).await.unwrap(),
        LearnOutcome::Applied
    );
    // The same version again: someone got there first.
    assert_eq!(
        store.learn(&learn, t0()).await.unwrap(),
        LearnOutcome::Conflict
    );
    let rel = store.relationship(&c).await.unwrap().unwrap();
    assert_eq!((rel.version, &rel.state), (1, &state));
    assert_eq!(rel.notes.len(), 1);
    // A write without a state keeps the stored one and appends its notes.
    let mut next = Learn::new(c.clone(), 1);
    next.notes.push(Note {
        at: t0() + secs(1),
        text: "second".into(),
    });
    assert_eq!(
        store.learn(&next, t0()).await.unwrap(),
        LearnOutcome::Applied
    );
    let rel = store.relationship(&c).await.unwrap().unwrap();
    assert_eq!(rel.version, 2);
    assert_eq!(rel.state, state);
    let texts: Vec<_> = rel.notes.iter().map(|n| n.text.as_str()).collect();
    assert_eq!(texts, ["first", "second"]);
    let nobody = Learn::new(cid("nobody"), 0);
    assert_eq!(
        store.learn(&nobody, t0()).await.unwrap(),
        LearnOutcome::NoContact
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
        if r.await.unwrap() == LearnOutcome::Applied {
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
    assert_eq!(
        store.learn(&learn, later).await.unwrap(),
        LearnOutcome::Applied
    );
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
        LearnOutcome::Applied
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
    assert_eq!(
        store.learn(&bounce, t0()).await.unwrap(),
        LearnOutcome::Applied
    );
    let got = store.get_contact(&hb).await.unwrap().unwrap();
    assert!(got.email_consent && !got.sms_consent, "{got:?}");
    add_contact(&*store, "hb").await;
    let got = store.get_contact(&hb).await.unwrap().unwrap();
    assert!(got.email_consent && !got.sms_consent, "{got:?}");
}
