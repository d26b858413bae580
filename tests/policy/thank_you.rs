//! A purchase gives one thank-you, after its delay, however often its event arrives; and
//! a job sends it beside another contact's birthday.

use chrono::Duration;
use rapport::{dispatch::BatchReport, domain::TouchStatus};

use crate::{
    backends::TestStore,
    ledger::Backend,
    rig::{assert_sent, at, cid, date, rig, tid, year},
};

pub(crate) async fn purchase_gives_one_thank_you_after_the_delay<S: TestStore>(b: Backend) {
    let rig = rig::<S>(b, &[]).await;
    rig.contact("bo", "friend", "UTC", None).await;
    let bought = at(0, "10:00");
    let first = rig.purchase("bo", "order-1", bought, bought).await;
    let thank_you = tid("thank_you", "bo", "order-1");
    assert!(first.new);
    assert_eq!(first.planned, vec![thank_you.clone()]);
    let t = rig.touch(&thank_you).await;
    assert_eq!(
        (t.status, t.scheduled_at, t.expires_at),
        (
            TouchStatus::Planned,
            at(0, "12:00"),
            at(0, "12:00") + Duration::days(3)
        )
    );

    // The same event again, and again with another time: nothing changes.
    let again = rig.purchase("bo", "order-1", bought, at(0, "10:30")).await;
    assert!(!again.new && again.planned.is_empty(), "{again:?}");
    let moved = rig
        .purchase("bo", "order-1", at(0, "11:00"), at(0, "11:00"))
        .await;
    assert!(!moved.new && moved.planned.is_empty(), "{moved:?}");
    assert_eq!(rig.ledger("bo").await, vec![t.clone()]);
    let events = rig.store.events_for_contact(&cid("bo")).await.unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].at, bought, "the first time stands");
    assert_eq!(
        rig.last_interaction("bo").await,
        Some(bought),
        "a repeated event is not a new interaction"
    );

    // Nothing before the delay, even when a job names it early.
    rig.clock.set(at(0, "11:00"));
    let r = rig.dispatch(std::slice::from_ref(&thank_you)).await;
    assert_eq!(r, BatchReport::default());
    assert_eq!(rig.step(at(0, "11:59")).await, BatchReport::default());
    assert_eq!(rig.touch(&thank_you).await, t);
    assert!(rig.sent().is_empty());

    assert_eq!(rig.step(at(0, "12:00")).await.sent, 1);
    assert_sent(&rig.touch(&thank_you).await, at(0, "12:00"));
    // Its job again, later: still once.
    rig.clock.set(at(0, "13:00"));
    assert_eq!(
        rig.dispatch(std::slice::from_ref(&thank_you)).await,
        BatchReport::default()
    );
    let again = rig.purchase("bo", "order-1", bought, at(0, "13:00")).await;
    assert!(!again.new && again.planned.is_empty());
    assert_eq!(rig.step(at(1, "12:00")).await, BatchReport::default());
    assert_eq!(rig.sent(), vec![(thank_you, at(0, "12:00"))]);
}

/// One job sends a thank-you (whose template reads the purchase from the store) and
/// another contact's birthday: both go out, whatever order their sends finish in.
pub(crate) async fn thank_you_and_another_birthday_in_one_job<S: TestStore>(b: Backend) {
    let rig = rig::<S>(b, &[]).await;
    rig.contact("ab", "friend", "UTC", None).await;
    rig.contact("zy", "friend", "UTC", Some(date(0))).await;
    assert_eq!(rig.plan("birthday", at(0, "00:00")).await, 1);
    rig.purchase("ab", "order-8", at(0, "06:30"), at(0, "06:30"))
        .await;
    let thank_you = tid("thank_you", "ab", "order-8");
    let birthday = tid("birthday", "zy", &year(0));

    let r = rig.step(at(0, "09:00")).await;
    assert_eq!((r.claimed, r.sent), (2, 2), "{r:?}");
    assert_sent(&rig.touch(&thank_you).await, at(0, "09:00"));
    assert_sent(&rig.touch(&birthday).await, at(0, "09:00"));
}
