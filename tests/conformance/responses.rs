//! Responses: recorded once by id, settling their touch once; an `ignored` touch comes
//! back to `sent` with a late response.

use std::sync::Arc;

use rapport::{
    domain::TouchStatus,
    learning::ResponseKind,
    store::{Learn, LearnOutcome, Settle, Suppression},
};

use crate::{
    Backend,
    fixtures::{counts, days, hours, secs, t0, touch},
    learning_fixtures::{add_contact, response, sent_touch},
};

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
        LearnOutcome::Applied
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
        LearnOutcome::Duplicate(known) => assert_eq!(*known, response(&c, "r1", Some(&id))),
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
        LearnOutcome::Conflict
    );
    late.settle = Some((id.clone(), Settle::Responded));
    assert_eq!(
        store.learn(&late, t0() + days(8)).await.unwrap(),
        LearnOutcome::Conflict
    );

    let mut second = Learn::new(c.clone(), 1);
    second.response = Some(response(&c, "r2", Some(&id)));
    assert_eq!(
        store.learn(&second, t0()).await.unwrap(),
        LearnOutcome::Applied
    );
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
        LearnOutcome::Applied
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
        LearnOutcome::Applied
    );
    let t = touch(&*store, &id).await;
    assert_eq!(
        (t.status, t.responded_at),
        (TouchStatus::Sent, Some(t0() + days(9)))
    );
    assert_eq!(counts(&*store).await.get("sent"), Some(&1));
    assert_eq!(counts(&*store).await.get("ignored"), None);
}
