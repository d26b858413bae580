//! `touches_for_contact` and `get_touches`: what was stored, in order. Named locks: one
//! holder at a time, until released or lapsed.

use rapport::domain::Channel;
use std::sync::Arc;

use rapport::domain::{TouchId, TouchStatus};

use crate::{
    Backend,
    fixtures::{as_planned, cid, days, hours, planned_for, t0},
};

pub(crate) async fn touches_round_trip_in_order<S: Backend>(store: Arc<S>) {
    let now = t0() - hours(1);
    let anniversary = planned_for("anniversary", "ada", "2026", t0() + days(2));
    let birthday = planned_for("birthday", "ada", "2026", t0());
    // Same instant as the birthday: ties are broken by id.
    let checkin = planned_for("checkin", "ada", "2026-07", t0());
    let mut welcome = planned_for("welcome", "ada", "1", t0() + days(1));
    welcome.channel = Channel::Sms;
    welcome.priority = 3;
    welcome.status = TouchStatus::Expired;
    welcome.reason = Some("planned after its window closed".into());
    // A contact whose id extends ada's must not leak into her list.
    let other = planned_for("birthday", "ada2", "2026", t0());
    let stored = [&anniversary, &welcome, &other, &checkin, &birthday];
    let touches: Vec<_> = stored.iter().map(|t| (*t).clone()).collect();
    store.plan_touches(&touches, 10, now).await.unwrap();

    let for_ada = store.touches_for_contact(&cid("ada")).await.unwrap();
    let expected: Vec<_> = [&birthday, &checkin, &welcome, &anniversary]
        .into_iter()
        .map(|t| as_planned(t, now))
        .collect();
    assert_eq!(for_ada, expected, "by scheduled_at, then id");
    assert!(
        store
            .touches_for_contact(&cid("nobody"))
            .await
            .unwrap()
            .is_empty()
    );

    let unknown = TouchId::from_stored("birthday:nobody:2026".into());
    let asked = [
        other.id.clone(),
        unknown,
        anniversary.id.clone(),
        welcome.id.clone(),
        birthday.id.clone(),
    ];
    let got = store.get_touches(&asked).await.unwrap();
    let expected: Vec<_> = [&anniversary, &other, &birthday, &welcome]
        .into_iter()
        .map(|t| as_planned(t, now))
        .collect();
    assert_eq!(got, expected, "by id, unknown ids left out");
    assert!(store.get_touches(&[]).await.unwrap().is_empty());
}

pub(crate) async fn a_lock_is_held_by_one_until_released_or_lapsed<S: Backend>(store: Arc<S>) {
    use std::time::Duration;
    let ttl = Duration::from_millis(300);
    let first = store.try_lock("planner:birthday", ttl).await.unwrap();
    let token = first.expect("a free lock is granted");
    assert_eq!(store.try_lock("planner:birthday", ttl).await.unwrap(), None);
    // Other names are independent.
    assert!(
        store
            .try_lock("planner:anniversary", ttl)
            .await
            .unwrap()
            .is_some()
    );
    // Only the holder's token releases it.
    store
        .unlock("planner:birthday", "not-the-token")
        .await
        .unwrap();
    assert_eq!(store.try_lock("planner:birthday", ttl).await.unwrap(), None);
    store.unlock("planner:birthday", &token).await.unwrap();
    let second = store.try_lock("planner:birthday", ttl).await.unwrap();
    let second = second.expect("released, so free again");
    assert_ne!(second, token);
    // Never released: it lapses after its ttl, and the lapsed holder cannot release
    // the next one's lock.
    tokio::time::sleep(ttl + Duration::from_millis(200)).await;
    let third = store.try_lock("planner:birthday", ttl).await.unwrap();
    let third = third.expect("lapsed, so free again");
    store.unlock("planner:birthday", &second).await.unwrap();
    assert_eq!(store.try_lock("planner:birthday", ttl).await.unwrap(), None);
    store.unlock("planner:birthday", &third).await.unwrap();
}
