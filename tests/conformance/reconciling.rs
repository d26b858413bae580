//! `reconcile`: re-queue stranded touches once per staleness window; expire overdue ones.

use std::{slice::from_ref, sync::Arc};

use rapport::{
    domain::TouchStatus,
    store::{Outcome, Reconciled},
};

use crate::{
    Backend, QueuedJob,
    fixtures::{counts, days, expiring, hours, mins, planned, sorted, t0, touch},
};

pub(crate) async fn reconcile_requeues_stranded_planned_once<S: Backend>(store: Arc<S>) {
    // Due at t0, its job lost; and one due after the staleness cut-off.
    let lost = planned("lost", t0());
    let fresh = planned("fresh", t0() + mins(50));
    // A retry due later: planned, but not stranded.
    let retried = planned("retried", t0());
    let all = [lost.clone(), fresh.clone(), retried.clone()];
    store.plan_touches(&all, 10, t0() - hours(1)).await.unwrap();
    let retry_id = [retried.id.clone()];
    store
        .claim(&retry_id, "w1", t0(), t0() + mins(5))
        .await
        .unwrap();
    let retry = [Outcome::Retry {
        uncertain: false,
        id: retried.id.clone(),
        at: t0() + hours(3),
        reason: "421".into(),
    }];
    assert_eq!(store.record(&retry, "w1", t0()).await.unwrap(), 1);
    let queued = store.queued().await.len();

    let (now, stale) = (t0() + hours(1), t0() + mins(30));
    let r = store.reconcile(now, stale, 10).await.unwrap();
    assert_eq!(
        r,
        Reconciled {
            expired: 0,
            requeued: 1,
            dead_jobs: 0
        }
    );
    let jobs = store.queued().await;
    assert_eq!(jobs.len(), queued + 1, "{jobs:?}");
    let requeued = QueuedJob {
        touches: vec![lost.id.clone()],
        run_at: now,
    };
    assert_eq!(jobs.last(), Some(&requeued));

    // Just re-queued: the same run again, or one a minute later, leaves it alone.
    for later in [mins(0), mins(1)] {
        let r = store.reconcile(now + later, stale + later, 10).await;
        assert_eq!(r.unwrap(), Reconciled::default());
    }
    assert_eq!(store.queued().await.len(), queued + 1);

    // When that job is stale too, it is re-queued again (with the one now overdue).
    let (now, stale) = (t0() + hours(2), t0() + mins(90));
    let r = store.reconcile(now, stale, 10).await.unwrap();
    assert_eq!(
        r,
        Reconciled {
            expired: 0,
            requeued: 2,
            dead_jobs: 0
        }
    );
    let jobs = store.queued().await;
    assert_eq!(jobs.len(), queued + 2, "{jobs:?}");
    let last = jobs.last().unwrap();
    assert_eq!(last.run_at, now);
    assert_eq!(
        sorted(last.touches.clone()),
        sorted(vec![lost.id.clone(), fresh.id.clone()])
    );

    for t in &all {
        let stored = touch(&*store, &t.id).await;
        assert_eq!(stored.status, TouchStatus::Planned, "{stored:?}");
    }
    assert_eq!(counts(&*store).await, [("planned", 3)].into());
}

pub(crate) async fn reconcile_requeues_lapsed_leases<S: Backend>(store: Arc<S>) {
    let (dead, busy) = (planned("dead", t0()), planned("busy", t0()));
    store
        .plan_touches(&[dead.clone(), busy.clone()], 10, t0() - hours(1))
        .await
        .unwrap();
    // dead's worker died after claiming; busy's worker holds a long lease.
    let dead_id = [dead.id.clone()];
    store
        .claim(&dead_id, "w1", t0(), t0() + mins(5))
        .await
        .unwrap();
    let busy_id = [busy.id.clone()];
    store
        .claim(&busy_id, "w2", t0(), t0() + hours(2))
        .await
        .unwrap();
    let queued = store.queued().await.len();

    let (now, stale) = (t0() + hours(1), t0() + mins(30));
    let r = store.reconcile(now, stale, 10).await.unwrap();
    assert_eq!(
        r,
        Reconciled {
            expired: 0,
            requeued: 1,
            dead_jobs: 0
        }
    );
    let jobs = store.queued().await;
    assert_eq!(jobs.len(), queued + 1);
    let requeued = QueuedJob {
        touches: vec![dead.id.clone()],
        run_at: now,
    };
    assert_eq!(jobs.last(), Some(&requeued));
    let r = store.reconcile(now, stale, 10).await.unwrap();
    assert_eq!(r, Reconciled::default());
    assert_eq!(store.queued().await.len(), queued + 1);
    assert_eq!(counts(&*store).await, [("sending", 2)].into());

    // The re-queued job lets another worker take the touch over.
    let taken = store
        .claim(&dead_id, "w3", now, now + mins(5))
        .await
        .unwrap();
    assert_eq!(taken.touches.len(), 1);
    assert_eq!(taken.touches[0].attempts, 2);
    assert_eq!(store.lease_owner(&busy.id).await.as_deref(), Some("w2"));
}

pub(crate) async fn reconcile_expires_overdue_touches<S: Backend>(store: Arc<S>) {
    let over = expiring("over", t0() - days(2), t0() - hours(1));
    let lapsed = expiring("lapsed", t0() - hours(3), t0() - hours(1));
    let busy = expiring("busy", t0() - mins(20), t0() - mins(10));
    let future = planned("future", t0() + hours(1));
    let done = planned("done", t0() - hours(4));
    let all = [
        over.clone(),
        lapsed.clone(),
        busy.clone(),
        future.clone(),
        done.clone(),
    ];
    store.plan_touches(&all, 10, t0() - days(3)).await.unwrap();
    // One claim (owner) each: a caller never reuses an owner across claims.
    let claims = [
        (&lapsed, "w1", mins(5)),
        (&busy, "w2", mins(30)),
        (&done, "w3", mins(5)),
    ];
    for (t, owner, lease) in claims {
        let at = t.scheduled_at;
        let c = store.claim(from_ref(&t.id), owner, at, at + lease).await;
        assert_eq!(c.unwrap().touches.len(), 1, "{}", t.id);
    }
    let sent = [Outcome::Sent {
        id: done.id.clone(),
    }];
    let recorded = store.record(&sent, "w3", done.scheduled_at).await;
    assert_eq!(recorded.unwrap(), 1);
    let queued = store.queued().await;

    let r = store.reconcile(t0(), t0() - mins(30), 10).await.unwrap();
    assert_eq!(
        r,
        Reconciled {
            expired: 2,
            requeued: 0,
            dead_jobs: 0
        }
    );
    for t in [&over, &lapsed] {
        let stored = touch(&*store, &t.id).await;
        assert_eq!(stored.status, TouchStatus::Expired, "{stored:?}");
        assert!(stored.reason.is_some(), "{stored:?}");
        assert_eq!(store.lease_owner(&t.id).await, None);
    }
    // Mid-send under a live lease: left to its worker, whose outcome still applies.
    assert_eq!(touch(&*store, &busy.id).await.status, TouchStatus::Sending);
    assert_eq!(
        touch(&*store, &future.id).await.status,
        TouchStatus::Planned
    );
    assert_eq!(store.queued().await, queued);
    assert_eq!(
        counts(&*store).await,
        [("expired", 2), ("planned", 1), ("sending", 1), ("sent", 1)].into()
    );

    let r = store.reconcile(t0(), t0() - mins(30), 10).await.unwrap();
    assert_eq!(r, Reconciled::default());
    let busy_sent = [Outcome::Sent {
        id: busy.id.clone(),
    }];
    assert_eq!(store.record(&busy_sent, "w2", t0()).await.unwrap(), 1);
}
