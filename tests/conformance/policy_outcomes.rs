//! The policy's outcomes in `record`: a sent touch keeps its slot and every other outcome
//! gives it back; skipped is final, and a deferral keeps its reason.

use std::{slice::from_ref, sync::Arc};

use rapport::{
    domain::TouchStatus,
    store::{Claimed, Outcome},
};

use crate::{
    Backend,
    fixtures::{counts, days, hours, mins, planned_for, secs, t0, touch},
    policy_fixtures::{add_contacts, claimed, policy_of, reservation, slot},
};

pub(crate) async fn sent_keeps_its_slot_and_other_outcomes_release_it<S: Backend>(store: Arc<S>) {
    add_contacts(&*store, &["ada"]).await;
    let names = [
        "sent",
        "unreserved",
        "retry",
        "failed",
        "defer",
        "expired",
        "suppressed",
        "skipped",
    ];
    let touches: Vec<_> = names
        .iter()
        .map(|n| planned_for("birthday", "ada", n, t0()))
        .collect();
    claimed(&*store, &touches, "w1", t0()).await;
    let reserved_at = |i: usize| t0() + secs(10 * i as i64);
    let reservations: Vec<_> = (0..touches.len())
        .filter(|i| *i != 1)
        .enumerate()
        .map(|(v, i)| reservation(&touches[i], "email", reserved_at(i), v as u64))
        .collect();
    assert_eq!(store.reserve(&reservations, "w1").await.unwrap(), [true; 7]);
    let since = t0() - days(1);
    assert_eq!(policy_of(&*store, "ada", since).await.slots.len(), 7);

    let id = |i: usize| touches[i].id.clone();
    let outcomes = [
        Outcome::Sent { id: id(0) },
        Outcome::Sent { id: id(1) },
        Outcome::Retry {
            uncertain: false,
            id: id(2),
            at: t0() + hours(1),
            reason: "421".into(),
        },
        Outcome::Failed {
            id: id(3),
            reason: "550".into(),
        },
        Outcome::Defer {
            id: id(4),
            at: t0() + hours(2),
            reason: None,
        },
        Outcome::Expired {
            id: id(5),
            reason: "window closed".into(),
        },
        Outcome::Suppressed {
            id: id(6),
            reason: "no consent".into(),
        },
        Outcome::Skipped {
            id: id(7),
            reason: "weekly cap".into(),
        },
    ];
    let now = t0() + mins(2);
    assert_eq!(store.record(&outcomes, "w1", now).await.unwrap(), 8);

    // A reserved send keeps its reserved time; an unreserved one takes `now`.
    let r = policy_of(&*store, "ada", since).await;
    let kept = [
        slot(&touches[0], "email", reserved_at(0)),
        slot(&touches[1], "email", now),
    ];
    assert_eq!((r.version, &r.slots[..]), (7, &kept[..]));
    for (i, t) in touches.iter().enumerate() {
        let want = [Some(reserved_at(0)), Some(now)].get(i).copied().flatten();
        assert_eq!(touch(&*store, &t.id).await.slot_at, want, "{}", names[i]);
    }
}

pub(crate) async fn skipped_is_final_and_defer_keeps_its_reason<S: Backend>(store: Arc<S>) {
    add_contacts(&*store, &["ada"]).await;
    let skip = planned_for("birthday", "ada", "2026", t0());
    let defer = planned_for("check_in", "ada", "q3", t0());
    claimed(&*store, &[skip.clone(), defer.clone()], "w1", t0()).await;
    let outcomes = [
        Outcome::Skipped {
            id: skip.id.clone(),
            reason: "a higher-priority touch is due".into(),
        },
        Outcome::Defer {
            id: defer.id.clone(),
            at: t0() + hours(3),
            reason: Some("quiet hours".into()),
        },
    ];
    assert_eq!(
        store.record(&outcomes, "w1", t0() + secs(5)).await.unwrap(),
        2
    );
    let s = touch(&*store, &skip.id).await;
    assert_eq!(
        (s.status, s.reason.as_deref(), s.attempts, s.sent_at),
        (
            TouchStatus::Skipped,
            Some("a higher-priority touch is due"),
            1,
            None
        )
    );
    let d = touch(&*store, &defer.id).await;
    assert_eq!(
        (d.status, d.reason.as_deref(), d.attempts, d.next_attempt_at),
        (
            TouchStatus::Planned,
            Some("quiet hours"),
            0,
            t0() + hours(3)
        )
    );
    assert_eq!(
        counts(&*store).await,
        [("planned", 1), ("skipped", 1)].into()
    );

    // Final: no claim, outcome or reconcile moves it.
    for (owner, at) in [("w2", t0() + mins(10)), ("w3", t0() + days(2))] {
        let again = store
            .claim(from_ref(&skip.id), owner, at, at + mins(5))
            .await;
        assert_eq!(again.unwrap(), Claimed::default(), "{owner}");
    }
    let sent = [Outcome::Sent {
        id: skip.id.clone(),
    }];
    assert_eq!(store.record(&sent, "w1", t0() + mins(1)).await.unwrap(), 0);
    let later = t0() + days(5);
    store.reconcile(later, later - mins(30), 10).await.unwrap();
    assert_eq!(touch(&*store, &skip.id).await, s);
}
