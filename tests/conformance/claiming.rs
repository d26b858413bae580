//! `claim`: one owner per touch, leases, due times and expiry.

use std::{
    collections::{BTreeMap, HashMap},
    slice::from_ref,
    sync::Arc,
};

use rapport::{
    domain::{TouchId, TouchStatus},
    store::{Claimed, Outcome},
};
use tokio::sync::Barrier;

use crate::{
    Backend,
    fixtures::{
        batch, counts, days, expiring, hours, ids_of, mins, planned, secs, sorted, t0, touch,
    },
};

pub(crate) async fn racing_claims_give_each_touch_one_owner<S: Backend>(store: Arc<S>) {
    const WORKERS: usize = 20;
    let touches = batch("k", 10, t0());
    store
        .plan_touches(&touches, 10, t0() - hours(1))
        .await
        .unwrap();
    let ids = Arc::new(ids_of(&touches));
    let start = Arc::new(Barrier::new(WORKERS));
    let tasks: Vec<_> = (0..WORKERS)
        .map(|i| {
            let (store, ids, start) = (store.clone(), ids.clone(), start.clone());
            tokio::spawn(async move {
                let owner = format!("w{i}");
                start.wait().await;
                let claimed = store.claim(&ids, &owner, t0(), t0() + mins(5)).await;
                (owner, claimed.unwrap())
            })
        })
        .collect();

    let mut owners: HashMap<TouchId, String> = HashMap::new();
    for task in tasks {
        let (owner, claimed) = task.await.unwrap();
        assert!(claimed.expired.is_empty(), "{claimed:?}");
        for t in claimed.touches {
            assert_eq!((t.status, t.attempts), (TouchStatus::Sending, 1), "{t:?}");
            if let Some(other) = owners.insert(t.id.clone(), owner.clone()) {
                panic!("{} claimed by both {other} and {owner}", t.id);
            }
        }
    }
    assert_eq!(owners.len(), 10, "every touch claimed: {owners:?}");
    for (id, owner) in &owners {
        assert_eq!(store.lease_owner(id).await.as_ref(), Some(owner));
        let t = touch(&*store, id).await;
        assert_eq!((t.status, t.attempts), (TouchStatus::Sending, 1));
    }
}

pub(crate) async fn claim_respects_the_lease<S: Backend>(store: Arc<S>) {
    let t = planned("ada", t0());
    let id = [t.id.clone()];
    store
        .plan_touches(from_ref(&t), 10, t0() - hours(1))
        .await
        .unwrap();
    let lease_end = t0() + mins(5);
    let first = store.claim(&id, "w1", t0(), lease_end).await.unwrap();
    assert!(first.expired.is_empty());
    assert_eq!(first.touches, [touch(&*store, &t.id).await]);
    let claimed = &first.touches[0];
    assert_eq!(
        (claimed.status, claimed.attempts),
        (TouchStatus::Sending, 1)
    );
    assert_eq!(claimed.updated_at, t0());

    // While the lease holds, nobody claims it, not even its holder.
    for owner in ["w1", "w2"] {
        let again = store.claim(&id, owner, t0() + mins(4), t0() + mins(9));
        assert_eq!(again.await.unwrap(), Claimed::default(), "{owner}");
    }
    assert_eq!(store.lease_owner(&t.id).await.as_deref(), Some("w1"));

    // Once it has lapsed (its worker died), another worker takes the touch over.
    let later = lease_end + secs(1);
    let taken = store
        .claim(&id, "w2", later, later + mins(5))
        .await
        .unwrap();
    assert_eq!(taken.touches.len(), 1, "{taken:?}");
    assert_eq!(taken.touches[0].attempts, 2);
    assert_eq!(store.lease_owner(&t.id).await.as_deref(), Some("w2"));
    assert_eq!(touch(&*store, &t.id).await.attempts, 2);
}

pub(crate) async fn claim_skips_touches_not_yet_due<S: Backend>(store: Arc<S>) {
    let due_at = t0() + hours(1);
    let t = planned("ada", due_at);
    let id = [t.id.clone()];
    store
        .plan_touches(from_ref(&t), 10, t0() - hours(1))
        .await
        .unwrap();

    let early = store.claim(&id, "w1", t0(), t0() + mins(5)).await.unwrap();
    assert_eq!(early, Claimed::default());
    let stored = touch(&*store, &t.id).await;
    assert_eq!((stored.status, stored.attempts), (TouchStatus::Planned, 0));
    assert_eq!(store.lease_owner(&t.id).await, None);

    // Unknown ids are no error and claim nothing.
    let unknown = [TouchId::from_stored("birthday:nobody:2026".into())];
    let none = store.claim(&unknown, "w1", due_at, due_at + mins(5)).await;
    assert_eq!(none.unwrap(), Claimed::default());

    let on_time = store.claim(&id, "w1", due_at, due_at + mins(5)).await;
    assert_eq!(on_time.unwrap().touches.len(), 1);
}

pub(crate) async fn claim_expires_overdue_touches<S: Backend>(store: Arc<S>) {
    // Planned, never picked up, past its expiry.
    let stale = expiring("ada", t0() - days(2), t0() - days(1));
    // Claimed, its worker died, then its expiry passed.
    let stuck = expiring("bob", t0() - hours(2), t0() - mins(30));
    // Claimed, still under lease, past its expiry: mid-send, left to its worker.
    let busy = expiring("cat", t0() - mins(20), t0() - mins(10));
    let all = [stale.clone(), stuck.clone(), busy.clone()];
    store.plan_touches(&all, 10, t0() - days(3)).await.unwrap();
    let at = stuck.scheduled_at;
    let c = store
        .claim(from_ref(&stuck.id), "w1", at, at + mins(5))
        .await;
    assert_eq!(c.unwrap().touches.len(), 1);
    let at = busy.scheduled_at;
    let c = store
        .claim(from_ref(&busy.id), "w1b", at, t0() + mins(10))
        .await;
    assert_eq!(c.unwrap().touches.len(), 1);

    let ids = ids_of(&all);
    let claimed = store.claim(&ids, "w2", t0(), t0() + mins(5)).await.unwrap();
    assert!(claimed.touches.is_empty(), "{claimed:?}");
    assert_eq!(
        sorted(claimed.expired),
        sorted(vec![stale.id.clone(), stuck.id.clone()])
    );
    for (t, attempts) in [(&stale, 0), (&stuck, 1)] {
        let stored = touch(&*store, &t.id).await;
        assert_eq!(
            (stored.status, stored.attempts),
            (TouchStatus::Expired, attempts)
        );
        assert!(stored.reason.is_some(), "{stored:?}");
        assert_eq!(store.lease_owner(&t.id).await, None);
    }
    assert_eq!(touch(&*store, &busy.id).await.status, TouchStatus::Sending);
    assert_eq!(store.lease_owner(&busy.id).await.as_deref(), Some("w1b"));

    // Expired is final: never claimable, and not reported as newly expired again.
    let stale_ids = [stale.id.clone(), stuck.id.clone()];
    let later = t0() + days(1);
    let again = store.claim(&stale_ids, "w3", later, later + mins(5)).await;
    assert_eq!(again.unwrap(), Claimed::default());
    assert_eq!(
        counts(&*store).await,
        [("expired", 2), ("sending", 1)].into()
    );
}

async fn yields(n: usize) {
    for _ in 0..n {
        tokio::task::yield_now().await;
    }
}

/// What one racer of [`racing_takeovers_and_outcomes_apply_once`] got.
enum Move {
    /// A claim by this owner, and what it claimed.
    Claim(String, Claimed),
    /// The original owner's `Sent`, and how many outcomes it applied.
    Record(u64),
}

pub(crate) async fn racing_takeovers_and_outcomes_apply_once<S: Backend>(store: Arc<S>) {
    // Per touch: 16 workers try to take it over while its original owner, whose lease has
    // just lapsed, reports it sent (4 times, as a retried report would). Several touches,
    // one race each, so both kinds of winner get their chance.
    const CLAIMERS: usize = 16;
    const REPORTS: usize = 4;
    const TOUCHES: usize = 16;
    let touches = batch("race", TOUCHES, t0());
    let ids = ids_of(&touches);
    store
        .plan_touches(&touches, 10, t0() - hours(1))
        .await
        .unwrap();
    let lease_end = t0() + mins(5);
    let first = store.claim(&ids, "w0", t0(), lease_end).await.unwrap();
    assert_eq!(first.touches.len(), TOUCHES, "{first:?}");
    let late = lease_end + secs(1);

    let (mut sent, mut taken) = (0u64, 0u64);
    for (round, id) in ids.iter().enumerate() {
        let start = Arc::new(Barrier::new(CLAIMERS + REPORTS));
        // Reports spread among the claims, at other places each round; and a round in
        // three each gives the reports, then the claims, a head start of a few yields,
        // so both kinds of winner (and claims racing only each other) come up.
        let (report_wait, claim_wait) = match round % 3 {
            0 => (0, 20),
            1 => (20, 0),
            _ => (0, 0),
        };
        let racers: Vec<_> = (0..CLAIMERS + REPORTS)
            .map(|i| {
                let (store, id, start) = (store.clone(), id.clone(), start.clone());
                tokio::spawn(async move {
                    if (i + round) % 5 == 0 {
                        let outcome = [Outcome::Sent { id }];
                        start.wait().await;
                        yields(report_wait).await;
                        Move::Record(store.record(&outcome, "w0", late).await.unwrap())
                    } else {
                        let owner = format!("c{i}");
                        start.wait().await;
                        yields(claim_wait).await;
                        let claimed = store.claim(from_ref(&id), &owner, late, late + mins(5));
                        let claimed = claimed.await.unwrap();
                        Move::Claim(owner, claimed)
                    }
                })
            })
            .collect();
        let (mut applied, mut winners) = (0, Vec::new());
        for racer in racers {
            match racer.await.unwrap() {
                Move::Record(n) => applied += n,
                Move::Claim(owner, claimed) => {
                    assert!(claimed.expired.is_empty(), "{claimed:?}");
                    winners.extend(claimed.touches.into_iter().map(|t| (owner.clone(), t)));
                }
            }
        }

        let stored = touch(&*store, id).await;
        let owner = store.lease_owner(id).await;
        match (applied, winners.as_slice()) {
            // The report landed first: the touch is sent, and nobody may take it over.
            (1, []) => {
                sent += 1;
                assert_eq!(
                    (stored.status, stored.attempts, stored.sent_at, owner),
                    (TouchStatus::Sent, 1, Some(late), None),
                    "{stored:?}"
                );
            }
            // A takeover landed first: the old owner's report is fenced off.
            (0, [(winner, claimed)]) => {
                taken += 1;
                assert_eq!(&stored, claimed, "the claim returns the stored touch");
                assert_eq!(
                    (stored.status, stored.attempts, stored.sent_at),
                    (TouchStatus::Sending, 2, None),
                    "{stored:?}"
                );
                assert_eq!(owner.as_ref(), Some(winner));
            }
            _ => panic!(
                "{id}: exactly one may win, but the report applied {applied} times and \
                 {} claimed it: {winners:?}; stored {stored:?}",
                winners.len()
            ),
        }
    }
    let expected: BTreeMap<_, _> = [("sending", taken), ("sent", sent)]
        .into_iter()
        .filter(|(_, n)| *n > 0)
        .collect();
    assert_eq!(counts(&*store).await, expected);
}
