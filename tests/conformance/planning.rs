//! `plan_touches`: insert-if-absent, and queued exactly once, when due.

use rapport::domain::Channel;
use std::{slice::from_ref, sync::Arc};

use rapport::domain::TouchStatus;
use tokio::sync::Barrier;

use crate::{
    Backend, QueuedJob,
    fixtures::{
        as_planned, batch, counts, days, hours, ids_of, mins, planned, queued_ids, sorted, t0,
        touch,
    },
};

pub(crate) async fn plan_is_insert_if_absent<S: Backend>(store: Arc<S>) {
    assert!(
        counts(&*store).await.is_empty(),
        "a fresh store has no touches"
    );
    let now = t0() - hours(1);
    let t = planned("ada", t0());
    assert_eq!(
        store.plan_touches(from_ref(&t), 10, now).await.unwrap(),
        vec![t.id.clone()]
    );

    // A later planner run with the same id changes nothing, whatever else differs.
    let mut again = t.clone();
    again.priority = 99;
    again.scheduled_at = t0() + hours(2);
    again.channel = Channel::Sms;
    let new = store.plan_touches(&[again], 10, now + mins(5)).await;
    assert_eq!(new.unwrap(), []);
    assert_eq!(touch(&*store, &t.id).await, as_planned(&t, now));

    // A touch listed twice in one call is new once.
    let u = planned("bob", t0());
    let new = store.plan_touches(&[u.clone(), u.clone()], 10, now).await;
    assert_eq!(new.unwrap(), vec![u.id.clone()]);

    assert_eq!(queued_ids(&store.queued().await), sorted(vec![t.id, u.id]));
    assert_eq!(counts(&*store).await, [("planned", 2)].into());
}

pub(crate) async fn plan_queues_batches_when_due<S: Backend>(store: Arc<S>) {
    let now = t0() - hours(1);
    let touches = batch("c", 7, t0());
    let new = store.plan_touches(&touches, 3, now).await.unwrap();
    assert_eq!(sorted(new), sorted(ids_of(&touches)));

    let jobs = store.queued().await;
    assert_eq!(jobs.len(), 3, "ceil(7 / 3) jobs: {jobs:?}");
    assert!(
        jobs.iter()
            .all(|j| j.touches.len() <= 3 && j.run_at == t0())
    );
    assert_eq!(queued_ids(&jobs), sorted(ids_of(&touches)));

    // A job runs when its touches are due, so touches due at different instants never
    // share one (a job run early would find its touch not yet claimable).
    let (soon, later) = (planned("x", t0() + hours(1)), planned("y", t0() + hours(2)));
    store
        .plan_touches(&[later.clone(), soon.clone()], 10, now)
        .await
        .unwrap();
    let jobs = store.queued().await;
    assert_eq!(jobs.len(), 5, "{jobs:?}");
    for t in [&soon, &later] {
        let job = QueuedJob {
            touches: vec![t.id.clone()],
            run_at: t.scheduled_at,
        };
        assert!(jobs[3..].contains(&job), "{job:?} not in {jobs:?}");
    }
}

pub(crate) async fn expired_touches_are_recorded_not_queued<S: Backend>(store: Arc<S>) {
    let now = t0();
    let mut gone = planned("ada", t0() - days(30));
    gone.expires_at = t0() - days(29);
    gone.status = TouchStatus::Expired;
    gone.reason = Some("planned after its window closed".into());
    let live = planned("bob", t0() + hours(1));

    let new = store
        .plan_touches(&[gone.clone(), live.clone()], 10, now)
        .await
        .unwrap();
    assert_eq!(sorted(new), sorted(vec![gone.id.clone(), live.id.clone()]));
    assert_eq!(touch(&*store, &gone.id).await, as_planned(&gone, now));
    assert_eq!(
        store.queued().await,
        [QueuedJob {
            touches: vec![live.id.clone()],
            run_at: live.scheduled_at,
        }]
    );
    assert_eq!(
        counts(&*store).await,
        [("expired", 1), ("planned", 1)].into()
    );
}

pub(crate) async fn racing_planners_insert_each_touch_once<S: Backend>(store: Arc<S>) {
    const PLANNERS: usize = 20;
    let touches = Arc::new(batch("r", 50, t0() + hours(1)));
    let start = Arc::new(Barrier::new(PLANNERS));
    let tasks: Vec<_> = (0..PLANNERS)
        .map(|_| {
            let (store, touches, start) = (store.clone(), touches.clone(), start.clone());
            tokio::spawn(async move {
                start.wait().await;
                store.plan_touches(&touches, 10, t0()).await.unwrap()
            })
        })
        .collect();
    let mut new = Vec::new();
    for task in tasks {
        new.extend(task.await.unwrap());
    }

    let all = sorted(ids_of(&touches));
    assert_eq!(sorted(new), all, "each touch is new to exactly one planner");
    assert_eq!(store.get_touches(&all).await.unwrap().len(), 50);
    assert_eq!(counts(&*store).await, [("planned", 50)].into());
    // Only the planner that inserted a touch queues it.
    let jobs = store.queued().await;
    assert_eq!(queued_ids(&jobs), all, "each touch queued exactly once");
    assert!(jobs.iter().all(|j| j.touches.len() <= 10), "{jobs:?}");
}
