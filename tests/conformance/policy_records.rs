//! Policy records: a contact's version, slots, touches and last interaction, read from
//! `since` on (inclusive), leaving out the touches the caller holds.

use std::{slice::from_ref, sync::Arc};

use chrono::{DateTime, Utc};
use rapport::{domain::ContactId, policy::Slot, store::Outcome};

use crate::{
    Backend,
    fixtures::{cid, days, hours, mins, planned_for, secs, t0, touch},
    policy_fixtures::{add_contacts, policy_of, reservation, slot},
};

pub(crate) async fn policy_records_filter_by_since<S: Backend>(store: Arc<S>) {
    add_contacts(&*store, &["ada", "bob"]).await;
    let old = planned_for("birthday", "ada", "2025", t0() - days(2));
    let recent = planned_for("thank_you", "ada", "order-1", t0() - hours(1));
    let next = planned_for("check_in", "ada", "q3", t0() + days(1));
    let all = [old.clone(), recent.clone(), next.clone()];
    store.plan_touches(&all, 10, t0() - days(3)).await.unwrap();
    // The first two each sent on time, on a place reserved for its time.
    for (version, (t, owner)) in [(&old, "w1"), (&recent, "w2")].into_iter().enumerate() {
        let at = t.scheduled_at;
        let got = store.claim(from_ref(&t.id), owner, at, at + mins(5)).await;
        assert_eq!(got.unwrap().touches.len(), 1);
        let r = [reservation(t, "email", at, version as u64)];
        assert_eq!(store.reserve(&r, owner).await.unwrap(), [true]);
        let sent = [Outcome::Sent { id: t.id.clone() }];
        assert_eq!(store.record(&sent, owner, at + secs(5)).await.unwrap(), 1);
    }
    let stored = [
        touch(&*store, &old.id).await,
        touch(&*store, &recent.id).await,
        touch(&*store, &next.id).await,
    ];

    let ids = [cid("ada"), cid("nobody"), cid("bob")];
    let found = store
        .policy_records(&ids, t0() - days(3), &[])
        .await
        .unwrap();
    let mut known: Vec<_> = found.keys().map(ContactId::as_str).collect();
    known.sort();
    assert_eq!(known, ["ada", "bob"], "missing contacts are left out");
    let ada = &found[&cid("ada")];
    let slots = vec![
        slot(&old, "email", old.scheduled_at),
        slot(&recent, "email", recent.scheduled_at),
    ];
    assert_eq!(
        (ada.version, &ada.slots, &ada.touches[..]),
        (2, &slots, &stored[..])
    );
    let seen = ada.last_interaction.expect("a last interaction");
    assert!(seen >= recent.scheduled_at + secs(5), "{seen}");
    let bob = &found[&cid("bob")];
    assert_eq!((bob.version, bob.slots.len(), bob.touches.len()), (0, 0, 0));
    assert!(bob.last_interaction.is_some(), "first seen");

    // `since` is inclusive, and drops what came before it.
    let cases: [(DateTime<Utc>, &[Slot], &[_]); 3] = [
        (recent.scheduled_at, &slots[1..], &stored[1..]),
        (t0(), &[], &stored[2..]),
        (t0() + days(2), &[], &[]),
    ];
    for (since, want_slots, want_touches) in cases {
        let r = policy_of(&*store, "ada", since).await;
        assert_eq!(r.slots, want_slots, "since {since}");
        assert_eq!(r.touches, want_touches, "since {since}");
        assert_eq!((r.version, r.last_interaction), (2, Some(seen)));
    }
    // Touches the caller holds are left out of `touches` (their slots stay).
    let skip = [recent.id.clone(), next.id.clone()];
    let r = store
        .policy_records(&[cid("ada")], t0() - days(3), &skip)
        .await
        .unwrap()
        .remove(&cid("ada"))
        .unwrap();
    assert_eq!((&r.slots, &r.touches[..]), (&slots, &stored[..1]));

    // The planned one is due at its time, and only then.
    let due = |at| store.due_touches(at, 10);
    assert!(due(next.scheduled_at - secs(1)).await.unwrap().is_empty());
    assert_eq!(due(next.scheduled_at).await.unwrap(), &stored[2..]);
}
