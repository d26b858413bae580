//! `record`: each outcome's transition, fencing, and `sent` being final.

use std::{slice::from_ref, sync::Arc};

use rapport::{
    domain::{Touch, TouchStatus},
    store::{Claimed, Outcome, Reconciled},
};
use tokio::sync::Barrier;

use crate::{
    Backend, QueuedJob,
    fixtures::{batch, counts, days, hours, ids_of, mins, planned, secs, t0, touch},
};

pub(crate) async fn record_applies_each_outcome<S: Backend>(store: Arc<S>) {
    let touches = batch("o", 5, t0());
    let ids = ids_of(&touches);
    store
        .plan_touches(&touches, 10, t0() - hours(1))
        .await
        .unwrap();
    let claimed = store.claim(&ids, "w1", t0(), t0() + mins(5)).await.unwrap();
    assert_eq!(claimed.touches.len(), 5);
    let jobs_before = store.queued().await.len();

    let now = t0() + secs(30);
    let retry_at = t0() + mins(2);
    let outcomes = [
        Outcome::Sent { id: ids[0].clone() },
        Outcome::Failed {
            id: ids[1].clone(),
            reason: "mailbox does not exist".into(),
        },
        Outcome::Suppressed {
            id: ids[2].clone(),
            reason: "no email consent".into(),
        },
        Outcome::Expired {
            id: ids[3].clone(),
            reason: "window closed".into(),
        },
        Outcome::Retry {
            uncertain: false,
            id: ids[4].clone(),
            at: retry_at,
            reason: "421 try again later".into(),
        },
    ];
    assert_eq!(store.record(&outcomes, "w1", now).await.unwrap(), 5);

    let after = |t: &Touch, status, reason: Option<&str>| Touch {
        status,
        reason: reason.map(str::to_owned),
        updated_at: now,
        ..t.clone()
    };
    let mut before = claimed.touches.clone();
    before.sort_by(|a, b| a.id.cmp(&b.id));
    let expected = [
        // A sent touch holds its place against the caps from then on.
        Touch {
            sent_at: Some(now),
            slot_at: Some(now),
            ..after(&before[0], TouchStatus::Sent, None)
        },
        after(
            &before[1],
            TouchStatus::Failed,
            Some("mailbox does not exist"),
        ),
        after(
            &before[2],
            TouchStatus::Suppressed,
            Some("no email consent"),
        ),
        after(&before[3], TouchStatus::Expired, Some("window closed")),
        Touch {
            next_attempt_at: retry_at,
            ..after(
                &before[4],
                TouchStatus::Planned,
                Some("421 try again later"),
            )
        },
    ];
    for (want, id) in expected.iter().zip(&ids) {
        assert_eq!(&touch(&*store, id).await, want);
        assert_eq!(store.lease_owner(id).await, None, "lease of {id} cleared");
    }

    // The retry is queued again, as its own job, at its own time.
    let jobs = store.queued().await;
    assert_eq!(jobs.len(), jobs_before + 1, "{jobs:?}");
    let retry_job = QueuedJob {
        touches: vec![ids[4].clone()],
        run_at: retry_at,
    };
    assert_eq!(jobs.last(), Some(&retry_job));

    // Not claimable before then; then by anyone, though w1's old lease would still hold.
    let retry = [ids[4].clone()];
    let early = store.claim(&retry, "w2", retry_at - mins(1), retry_at);
    assert_eq!(early.await.unwrap(), Claimed::default());
    let again = store
        .claim(&retry, "w2", retry_at, retry_at + mins(5))
        .await;
    let again = again.unwrap().touches;
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].attempts, 2);
    assert_eq!(
        counts(&*store).await,
        [
            ("expired", 1),
            ("failed", 1),
            ("sending", 1),
            ("sent", 1),
            ("suppressed", 1)
        ]
        .into()
    );
}

pub(crate) async fn record_is_fenced_by_the_lease<S: Backend>(store: Arc<S>) {
    let (t, idle) = (planned("ada", t0()), planned("bob", t0()));
    let id = [t.id.clone()];
    store
        .plan_touches(&[t.clone(), idle.clone()], 10, t0() - hours(1))
        .await
        .unwrap();
    store.claim(&id, "w1", t0(), t0() + mins(5)).await.unwrap();
    // w1 stalls, its lease lapses, w2 takes the touch over.
    let taken = store
        .claim(&id, "w2", t0() + mins(6), t0() + mins(11))
        .await;
    assert_eq!(taken.unwrap().touches.len(), 1);

    let late = t0() + mins(7);
    let sent = [Outcome::Sent { id: t.id.clone() }];
    assert_eq!(store.record(&sent, "w1", late).await.unwrap(), 0);
    let failed = [Outcome::Failed {
        id: t.id.clone(),
        reason: "timeout".into(),
    }];
    assert_eq!(store.record(&failed, "w1", late).await.unwrap(), 0);
    // Nor does a stranger's outcome, or one for a touch nobody claimed, apply.
    assert_eq!(store.record(&sent, "w3", late).await.unwrap(), 0);
    let idle_sent = [Outcome::Sent {
        id: idle.id.clone(),
    }];
    assert_eq!(store.record(&idle_sent, "w2", late).await.unwrap(), 0);

    let stored = touch(&*store, &t.id).await;
    assert_eq!(
        (
            stored.status,
            stored.attempts,
            stored.sent_at,
            stored.reason
        ),
        (TouchStatus::Sending, 2, None, None)
    );
    assert_eq!(store.lease_owner(&t.id).await.as_deref(), Some("w2"));
    assert_eq!(touch(&*store, &idle.id).await.status, TouchStatus::Planned);

    let done = t0() + mins(8);
    assert_eq!(store.record(&sent, "w2", done).await.unwrap(), 1);
    let stored = touch(&*store, &t.id).await;
    assert_eq!(
        (stored.status, stored.sent_at),
        (TouchStatus::Sent, Some(done))
    );
}

pub(crate) async fn sent_is_final<S: Backend>(store: Arc<S>) {
    let t = planned("ada", t0());
    let id = [t.id.clone()];
    store
        .plan_touches(from_ref(&t), 10, t0() - hours(1))
        .await
        .unwrap();
    store.claim(&id, "w1", t0(), t0() + mins(5)).await.unwrap();
    let sent = [Outcome::Sent { id: t.id.clone() }];
    assert_eq!(store.record(&sent, "w1", t0() + secs(10)).await.unwrap(), 1);
    let final_state = touch(&*store, &t.id).await;
    let jobs = store.queued().await;

    // Neither a second outcome, a later claim, a re-plan nor the reconciler moves it.
    let now = t0() + secs(20);
    assert_eq!(store.record(&sent, "w1", now).await.unwrap(), 0);
    let retry = [Outcome::Retry {
        uncertain: false,
        id: t.id.clone(),
        at: now,
        reason: "again".into(),
    }];
    assert_eq!(store.record(&retry, "w1", now).await.unwrap(), 0);
    for (owner, at) in [("w1", now), ("w2", t0() + days(1)), ("w3", t0() + days(5))] {
        let again = store.claim(&id, owner, at, at + mins(5)).await;
        assert_eq!(again.unwrap(), Claimed::default(), "{owner} at {at}");
    }
    let replanned = store.plan_touches(from_ref(&t), 10, t0() + days(1)).await;
    assert_eq!(replanned.unwrap(), []);
    let later = t0() + days(5);
    let reconciled = store.reconcile(later, later - mins(30), 10).await;
    assert_eq!(reconciled.unwrap(), Reconciled::default());

    assert_eq!(touch(&*store, &t.id).await, final_state);
    assert_eq!(store.queued().await, jobs);
}

pub(crate) async fn defer_returns_the_touch_without_counting_the_attempt<S: Backend>(
    store: Arc<S>,
) {
    let t = planned("defer", t0());
    store.plan_touches(from_ref(&t), 10, t0()).await.unwrap();
    store
        .claim(from_ref(&t.id), "w1", t0(), t0() + mins(5))
        .await
        .unwrap();
    let jobs_before = store.queued().await.len();
    let at = t0() + hours(3);
    let applied = store
        .record(
            &[Outcome::Defer {
                id: t.id.clone(),
                at,
                reason: None,
            }],
            "w1",
            t0(),
        )
        .await
        .unwrap();
    assert_eq!(applied, 1);
    let after = touch(store.as_ref(), &t.id).await;
    assert_eq!((after.status, after.attempts), (TouchStatus::Planned, 0));
    assert_eq!(after.next_attempt_at, at);
    let jobs = store.queued().await;
    assert_eq!(
        jobs.len(),
        jobs_before + 1,
        "a deferred touch gets its own job"
    );
    assert_eq!(jobs.last().map(|j| j.run_at), Some(at));
    // Not claimable before its new time, claimable after.
    let early = store
        .claim(from_ref(&t.id), "w2", at - mins(1), at + mins(5))
        .await
        .unwrap();
    assert!(early.touches.is_empty());
    let on_time = store
        .claim(from_ref(&t.id), "w2", at, at + mins(5))
        .await
        .unwrap();
    assert_eq!(on_time.touches.len(), 1);
    assert_eq!(on_time.touches[0].attempts, 1);
}

pub(crate) async fn extend_lease_keeps_a_slow_batch_its_own<S: Backend>(store: Arc<S>) {
    let touches = batch("slow", 3, t0());
    let ids = ids_of(&touches);
    store.plan_touches(&touches, 10, t0()).await.unwrap();
    store.claim(&ids, "w1", t0(), t0() + mins(2)).await.unwrap();
    // One of them finishes; the other two are still being sent when the lease would end.
    store
        .record(
            &[Outcome::Sent { id: ids[0].clone() }],
            "w1",
            t0() + mins(1),
        )
        .await
        .unwrap();
    let covered = store
        .extend_lease(&ids, "w1", t0() + mins(10))
        .await
        .unwrap();
    assert_eq!(
        covered,
        ids[1..].to_vec(),
        "only touches still being sent are extended"
    );
    assert!(
        store
            .extend_lease(&ids, "stranger", t0() + mins(10))
            .await
            .unwrap()
            .is_empty()
    );
    let stolen = store
        .claim(&ids, "w2", t0() + mins(5), t0() + mins(7))
        .await
        .unwrap();
    assert!(
        stolen.touches.is_empty(),
        "an extended lease cannot be taken over"
    );
    let later = store
        .claim(&ids, "w2", t0() + mins(10), t0() + mins(12))
        .await
        .unwrap();
    assert_eq!(later.touches.len(), 2, "once it lapses, it can");
}

pub(crate) async fn racing_outcomes_of_one_owner_apply_once<S: Backend>(store: Arc<S>) {
    // One owner reporting the same send from many tasks at once (a report retried while
    // the first is still in flight): the transition happens once, and is counted once.
    const REPORTS: usize = 20;
    let t = planned("ada", t0());
    store
        .plan_touches(from_ref(&t), 10, t0() - hours(1))
        .await
        .unwrap();
    let claimed = store.claim(from_ref(&t.id), "w1", t0(), t0() + mins(5));
    assert_eq!(claimed.await.unwrap().touches.len(), 1);
    let jobs = store.queued().await;

    let now = t0() + secs(10);
    let start = Arc::new(Barrier::new(REPORTS));
    let reports: Vec<_> = (0..REPORTS)
        .map(|_| {
            let (store, id, start) = (store.clone(), t.id.clone(), start.clone());
            tokio::spawn(async move {
                let sent = [Outcome::Sent { id }];
                start.wait().await;
                store.record(&sent, "w1", now).await.unwrap()
            })
        })
        .collect();
    let mut applied = 0;
    for report in reports {
        applied += report.await.unwrap();
    }
    assert_eq!(applied, 1, "one send, applied once");

    let stored = touch(&*store, &t.id).await;
    assert_eq!(
        (stored.status, stored.attempts, stored.sent_at),
        (TouchStatus::Sent, 1, Some(now))
    );
    assert_eq!(store.lease_owner(&t.id).await, None);
    assert_eq!(counts(&*store).await, [("sent", 1)].into());
    assert_eq!(store.queued().await, jobs, "a send queues nothing");
}

pub(crate) async fn a_retry_is_its_own_job_at_its_own_time<S: Backend>(store: Arc<S>) {
    let touches = batch("r", 3, t0());
    let ids = ids_of(&touches);
    store
        .plan_touches(&touches, 10, t0() - hours(1))
        .await
        .unwrap();
    let planned_jobs = store.queued().await;
    assert_eq!(
        planned_jobs,
        [QueuedJob {
            touches: ids.clone(),
            run_at: t0(),
        }],
        "the three are one job"
    );
    let claimed = store.claim(&ids, "w1", t0(), t0() + mins(5)).await.unwrap();
    assert_eq!(claimed.touches.len(), 3);

    // The middle one fails for now; its batch-mates go out.
    let retried = &ids[1];
    let at = t0() + mins(10);
    let outcomes = [
        Outcome::Sent { id: ids[0].clone() },
        Outcome::Retry {
            uncertain: false,
            id: retried.clone(),
            at,
            reason: "421 too busy".into(),
        },
        Outcome::Sent { id: ids[2].clone() },
    ];
    let now = t0() + secs(30);
    assert_eq!(store.record(&outcomes, "w1", now).await.unwrap(), 3);

    // One new job, for that touch alone, at the retry's time; the old job is untouched.
    let jobs = store.queued().await;
    let retry_job = QueuedJob {
        touches: vec![retried.clone()],
        run_at: at,
    };
    assert_eq!(jobs.len(), planned_jobs.len() + 1, "{jobs:?}");
    assert_eq!(jobs[..planned_jobs.len()], planned_jobs[..]);
    assert_eq!(jobs.last(), Some(&retry_job));
    let stored = touch(&*store, retried).await;
    assert_eq!(
        (
            stored.status,
            stored.attempts,
            stored.next_attempt_at,
            stored.reason.as_deref()
        ),
        (TouchStatus::Planned, 1, at, Some("421 too busy"))
    );
    assert_eq!(store.lease_owner(retried).await, None);
    assert_eq!(counts(&*store).await, [("planned", 1), ("sent", 2)].into());

    // The job runs it at its time, not before (the queue may start a second early).
    let early = store.claim(&ids, "w2", at - secs(2), at + mins(5)).await;
    assert_eq!(early.unwrap(), Claimed::default());
    let second = store.claim(&ids, "w2", at, at + mins(5)).await.unwrap();
    assert_eq!(second.touches.len(), 1, "{second:?}");
    assert_eq!(
        (&second.touches[0].id, second.touches[0].attempts),
        (retried, 2)
    );

    // Again: its own job at its own time, and the third attempt is counted as such.
    let again = at + mins(20);
    let retry = [Outcome::Retry {
        uncertain: false,
        id: retried.clone(),
        at: again,
        reason: "451 try later".into(),
    }];
    assert_eq!(store.record(&retry, "w2", at + secs(5)).await.unwrap(), 1);
    let jobs = store.queued().await;
    assert_eq!(jobs.len(), planned_jobs.len() + 2, "{jobs:?}");
    assert_eq!(
        jobs.last(),
        Some(&QueuedJob {
            touches: vec![retried.clone()],
            run_at: again,
        })
    );
    let stored = touch(&*store, retried).await;
    assert_eq!(
        (stored.status, stored.attempts, stored.reason.as_deref()),
        (TouchStatus::Planned, 2, Some("451 try later"))
    );
    let early = store.claim(from_ref(retried), "w3", again - secs(2), again);
    assert_eq!(early.await.unwrap(), Claimed::default());
    let third = store
        .claim(from_ref(retried), "w3", again, again + mins(5))
        .await
        .unwrap();
    assert_eq!(third.touches.len(), 1, "{third:?}");
    assert_eq!(third.touches[0].attempts, 3);
    assert_eq!(touch(&*store, retried).await.attempts, 3);
    assert_eq!(counts(&*store).await, [("sending", 1), ("sent", 2)].into());
}
