//! Reservations: a compare-and-set on the contact's version, fenced by the claim, taken
//! again in one slot by a new claim, and holding a cap when many workers race for it.

use std::{slice::from_ref, sync::Arc};

use rapport::store::{Outcome, Reservation};
use tokio::sync::Barrier;

use crate::{
    Backend,
    fixtures::{cid, days, hours, mins, planned, planned_for, secs, t0, touch},
    policy_fixtures::{add_contacts, claimed, policy_of, reservation, slot},
};

pub(crate) async fn reserve_is_a_compare_and_set_on_the_version<S: Backend>(store: Arc<S>) {
    add_contacts(&*store, &["ada", "bob"]).await;
    let ada = [
        planned_for("birthday", "ada", "2026", t0()),
        planned_for("welcome", "ada", "1", t0()),
        planned_for("check_in", "ada", "q3", t0()),
        planned_for("thank_you", "ada", "order-1", t0()),
        planned_for("thank_you", "ada", "order-2", t0()),
        planned_for("thank_you", "ada", "order-3", t0()),
    ];
    claimed(&*store, &ada, "w1", t0()).await;
    let since = t0() - days(1);
    let fresh = policy_of(&*store, "ada", since).await;
    assert_eq!((fresh.version, fresh.slots), (0, vec![]));
    assert_eq!(fresh.touches.len(), 6);

    // A decision made on another version is refused, and changes nothing.
    let stale = [reservation(&ada[0], "email", t0(), 1)];
    assert_eq!(store.reserve(&stale, "w1").await.unwrap(), [false]);
    let r = policy_of(&*store, "ada", since).await;
    assert_eq!((r.version, r.slots), (0, vec![]));
    assert_eq!(touch(&*store, &ada[0].id).await.slot_at, None);

    // Two places for one contact in one call: the second names the version after the first.
    let (at0, at1) = (t0() + secs(10), t0() + secs(20));
    let two = [
        reservation(&ada[0], "sms", at0, 0),
        reservation(&ada[1], "email", at1, 1),
    ];
    assert_eq!(store.reserve(&two, "w1").await.unwrap(), [true, true]);
    let r = policy_of(&*store, "ada", since).await;
    let mut slots = vec![slot(&ada[0], "sms", at0), slot(&ada[1], "email", at1)];
    assert_eq!((r.version, &r.slots), (2, &slots));
    let t = touch(&*store, &ada[0].id).await;
    assert_eq!((t.slot_at, t.channel.as_str()), (Some(at0), "sms"));

    // Two decided on one version: the second is refused, and so is everything after it
    // for that contact, even a version that happens to match: it was decided assuming
    // the refused one's place.
    let (at2, at3) = (t0() + secs(30), t0() + secs(40));
    let three = [
        reservation(&ada[2], "email", at2, 2),
        reservation(&ada[3], "email", at3, 2),
        reservation(&ada[3], "email", at3, 3),
    ];
    assert_eq!(
        store.reserve(&three, "w1").await.unwrap(),
        [true, false, false]
    );
    slots.push(slot(&ada[2], "email", at2));
    let r = policy_of(&*store, "ada", since).await;
    assert_eq!((r.version, &r.slots), (3, &slots));
    // Decided again on the fresh version, it is taken.
    let again = [reservation(&ada[3], "email", at3, 3)];
    assert_eq!(store.reserve(&again, "w1").await.unwrap(), [true]);
    slots.push(slot(&ada[3], "email", at3));
    let r = policy_of(&*store, "ada", since).await;
    assert_eq!((r.version, &r.slots), (4, &slots));

    // The reviewer's race: our first is refused because another worker took version 4;
    // our second names 5, which now matches, but was decided on our first's place.
    let theirs = planned_for("anniversary", "ada", "2026", t0());
    store
        .plan_touches(from_ref(&theirs), 10, t0())
        .await
        .unwrap();
    let got = store
        .claim(from_ref(&theirs.id), "w9", t0(), t0() + mins(5))
        .await;
    assert_eq!(got.unwrap().touches.len(), 1);
    let taken = store
        .reserve(&[reservation(&theirs, "sms", at3, 4)], "w9")
        .await;
    assert_eq!(taken.unwrap(), [true]);
    let ours = [
        reservation(&ada[4], "email", at3, 4),
        reservation(&ada[5], "sms", at3, 5),
    ];
    assert_eq!(store.reserve(&ours, "w1").await.unwrap(), [false, false]);

    // Versions are per contact.
    let bobs = planned("bob", t0());
    claimed(&*store, from_ref(&bobs), "w2", t0()).await;
    let first = [reservation(&bobs, "email", t0(), 0)];
    assert_eq!(store.reserve(&first, "w2").await.unwrap(), [true]);
    assert_eq!(policy_of(&*store, "bob", since).await.version, 1);
    assert_eq!(policy_of(&*store, "ada", since).await.version, 5);
}

pub(crate) async fn reserve_is_fenced_by_the_claim<S: Backend>(store: Arc<S>) {
    add_contacts(&*store, &["ada", "bob"]).await;
    let mine = planned_for("birthday", "ada", "2026", t0());
    let theirs = planned_for("welcome", "ada", "1", t0());
    let waiting = planned_for("check_in", "ada", "q3", t0() + hours(1));
    let bobs = planned("bob", t0());
    let all = [mine.clone(), theirs.clone(), waiting.clone(), bobs.clone()];
    store.plan_touches(&all, 10, t0() - hours(1)).await.unwrap();
    let lease = t0() + mins(5);
    let w1 = [mine.id.clone(), bobs.id.clone()];
    assert_eq!(
        store
            .claim(&w1, "w1", t0(), lease)
            .await
            .unwrap()
            .touches
            .len(),
        2
    );
    let w2 = store.claim(from_ref(&theirs.id), "w2", t0(), lease).await;
    assert_eq!(w2.unwrap().touches.len(), 1);

    let refused = [
        reservation(&waiting, "email", t0(), 0), // planned, not sending
        reservation(&theirs, "email", t0(), 0),  // another claim's
        Reservation {
            contact: cid("bob"), // not its contact
            ..reservation(&mine, "email", t0(), 0)
        },
        reservation(
            &planned_for("birthday", "ada", "1999", t0()),
            "email",
            t0(),
            0,
        ),
    ];
    for r in refused {
        assert_eq!(
            store.reserve(from_ref(&r), "w1").await.unwrap(),
            [false],
            "{r:?}"
        );
    }
    let since = t0() - days(1);
    for contact in ["ada", "bob"] {
        let r = policy_of(&*store, contact, since).await;
        assert_eq!((r.version, r.slots), (0, vec![]), "{contact}");
    }

    // Once sent, a touch is no longer its claim's to reserve for.
    let sent = [Outcome::Sent {
        id: mine.id.clone(),
    }];
    assert_eq!(store.record(&sent, "w1", t0() + secs(10)).await.unwrap(), 1);
    let late = [reservation(&mine, "email", t0() + secs(20), 0)];
    assert_eq!(store.reserve(&late, "w1").await.unwrap(), [false]);
    let r = policy_of(&*store, "ada", since).await;
    let held = slot(&mine, "email", t0() + secs(10));
    assert_eq!((r.version, &r.slots), (0, &vec![held.clone()]));

    // The claim that holds a touch can.
    let right = [reservation(&theirs, "email", t0() + secs(30), 0)];
    assert_eq!(store.reserve(&right, "w2").await.unwrap(), [true]);
    let r = policy_of(&*store, "ada", since).await;
    let both = vec![held, slot(&theirs, "email", t0() + secs(30))];
    assert_eq!((r.version, r.slots), (1, both));
}

pub(crate) async fn a_new_claim_reserves_again_in_one_slot<S: Backend>(store: Arc<S>) {
    add_contacts(&*store, &["ada"]).await;
    let t = planned("ada", t0());
    claimed(&*store, from_ref(&t), "w1", t0()).await;
    let first = [reservation(&t, "email", t0() + secs(1), 0)];
    assert_eq!(store.reserve(&first, "w1").await.unwrap(), [true]);

    // w1 dies before sending; its lease lapses and w2 takes the touch over.
    let taken = store.claim(from_ref(&t.id), "w2", t0() + mins(6), t0() + mins(11));
    assert_eq!(taken.await.unwrap().touches.len(), 1);
    let stale = [reservation(&t, "email", t0() + mins(6), 1)];
    assert_eq!(store.reserve(&stale, "w1").await.unwrap(), [false]);
    let at = t0() + mins(7);
    let again = [reservation(&t, "sms", at, 1)];
    assert_eq!(store.reserve(&again, "w2").await.unwrap(), [true]);

    let since = t0() - days(1);
    let r = policy_of(&*store, "ada", since).await;
    assert_eq!((r.version, &r.slots), (2, &vec![slot(&t, "sms", at)]));
    assert_eq!(touch(&*store, &t.id).await.slot_at, Some(at));

    // Sent, it keeps that one place.
    let sent = [Outcome::Sent { id: t.id.clone() }];
    assert_eq!(store.record(&sent, "w2", t0() + mins(8)).await.unwrap(), 1);
    let r = policy_of(&*store, "ada", since).await;
    assert_eq!(r.slots, [slot(&t, "sms", at)]);
    assert_eq!(touch(&*store, &t.id).await.slot_at, Some(at));
}

pub(crate) async fn racing_reservations_hold_a_cap<S: Backend>(store: Arc<S>) {
    // Many workers, each sending a different touch to one contact who may get 3: each
    // decides on what it read, and the version check makes the cap hold.
    const WORKERS: usize = 16;
    const CAP: usize = 3;
    add_contacts(&*store, &["ada"]).await;
    let touches: Vec<_> = (0..WORKERS)
        .map(|i| planned_for("birthday", "ada", &format!("{i:02}"), t0()))
        .collect();
    store
        .plan_touches(&touches, 100, t0() - hours(1))
        .await
        .unwrap();
    let decided = Arc::new(Barrier::new(WORKERS));
    let tasks: Vec<_> = touches
        .into_iter()
        .enumerate()
        .map(|(i, t)| {
            let (store, decided) = (store.clone(), decided.clone());
            tokio::spawn(async move {
                let owner = format!("w{i}");
                let got = store.claim(from_ref(&t.id), &owner, t0(), t0() + mins(5));
                assert_eq!(got.await.unwrap().touches.len(), 1, "{owner}");
                // As the dispatcher does: a refused place means deciding again on a
                // fresh read. Each refusal means someone else took one, so this ends.
                for attempt in 0..=CAP {
                    let seen = policy_of(&*store, "ada", t0() - days(1)).await;
                    if attempt == 0 {
                        // All decide first on the same read (no slots yet), so the
                        // version check is what keeps all but one from taking a place.
                        decided.wait().await;
                    }
                    if seen.slots.len() >= CAP {
                        return false;
                    }
                    let r = [reservation(&t, "email", t0(), seen.version)];
                    if store.reserve(&r, &owner).await.unwrap() == [true] {
                        return true;
                    }
                }
                panic!("{owner} was refused more often than places were taken");
            })
        })
        .collect();
    let mut taken = 0;
    for task in tasks {
        taken += usize::from(task.await.unwrap());
    }
    assert_eq!(taken, CAP);
    let end = policy_of(&*store, "ada", t0() - days(1)).await;
    assert_eq!((end.version, end.slots.len()), (CAP as u64, CAP));
}
