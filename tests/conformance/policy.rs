//! What the relationship policy keeps in the store: events, idle contacts, policy
//! records, reservations (a compare-and-set on the contact's version) and the slots that
//! `record` keeps or gives back.

use std::{slice::from_ref, sync::Arc};

use chrono::{DateTime, Utc};
use rapport::{
    domain::{Contact, ContactId, Event, EventId, NewTouch, TouchStatus},
    policy::Slot,
    render::sample_contact,
    store::{Claimed, ContactUpsert, Outcome, PolicyRecord, Reservation, StoreError},
};
use serde_json::json;
use tokio::sync::Barrier;

use crate::{
    Backend,
    fixtures::{cid, counts, days, hours, ids_of, mins, planned, planned_for, secs, t0, touch},
};

/// Far past any contact's first-seen stamp (upsert takes the wall clock), so the
/// interactions a case adds from here on are the ones that count.
fn later() -> DateTime<Utc> {
    t0() + days(100 * 365)
}

async fn add_contacts<S: Backend>(store: &S, ids: &[&str]) {
    let rows: Vec<_> = ids
        .iter()
        .map(|id| ContactUpsert {
            contact: Contact {
                id: cid(id),
                ..sample_contact("gold")
            },
            email_consent: None,
            sms_consent: None,
            keep_tier: false,
        })
        .collect();
    store.upsert_contacts(&rows).await.unwrap();
}

fn event(contact: &str, id: &str, at: DateTime<Utc>) -> Event {
    let mut data = serde_json::Map::new();
    data.insert(
        "order".into(),
        json!({ "total": 42.5, "items": ["teapot", null], "gift": true }),
    );
    Event {
        contact_id: cid(contact),
        id: EventId::parse(id).unwrap(),
        kind: "purchase".into(),
        at,
        data,
    }
}

/// The one contact's policy record (which must exist).
async fn policy_of<S: Backend>(store: &S, contact: &str, since: DateTime<Utc>) -> PolicyRecord {
    let mut found = store
        .policy_records(&[cid(contact)], since, &[])
        .await
        .unwrap();
    found
        .remove(&cid(contact))
        .expect("a record for a known contact")
}

async fn last_seen<S: Backend>(store: &S, contact: &str) -> Option<DateTime<Utc>> {
    policy_of(store, contact, t0()).await.last_interaction
}

/// Idle contacts up to `before`, as (id, last interaction).
async fn idle<S: Backend>(store: &S, before: DateTime<Utc>) -> Vec<(ContactId, DateTime<Utc>)> {
    let page = store.idle_contacts(before, None, 100).await.unwrap();
    page.into_iter().map(|(c, at)| (c.id, at)).collect()
}

/// Plans `touches` and claims them all for `owner` at `now`.
async fn claimed<S: Backend>(store: &S, touches: &[NewTouch], owner: &str, now: DateTime<Utc>) {
    store
        .plan_touches(touches, 10, now - hours(1))
        .await
        .unwrap();
    let got = store
        .claim(&ids_of(touches), owner, now, now + mins(5))
        .await;
    assert_eq!(got.unwrap().touches.len(), touches.len());
}

fn reservation(t: &NewTouch, channel: &str, at: DateTime<Utc>, version: u64) -> Reservation {
    Reservation {
        touch: t.id.clone(),
        contact: t.contact_id.clone(),
        channel: channel.parse().unwrap(),
        at,
        version,
    }
}

fn slot(t: &NewTouch, channel: &str, at: DateTime<Utc>) -> Slot {
    Slot {
        touch: t.id.clone(),
        at,
        channel: channel.parse().unwrap(),
    }
}

pub(crate) async fn events_are_insert_if_absent_and_count_as_interactions<S: Backend>(
    store: Arc<S>,
) {
    let base = later();
    add_contacts(&*store, &["ada", "bob"]).await;
    let first = event("ada", "order-1", base + hours(1));
    assert!(store.add_event(&first, base + hours(2)).await.unwrap());
    assert_eq!(last_seen(&*store, "ada").await, Some(base + hours(1)));

    // The same id again, with other data and a later time, changes nothing.
    let again = Event {
        kind: "refund".into(),
        at: base + hours(5),
        data: serde_json::Map::new(),
        ..first.clone()
    };
    assert!(!store.add_event(&again, base + hours(6)).await.unwrap());
    let events = store.events_for_contact(&cid("ada")).await.unwrap();
    assert_eq!(events, from_ref(&first));
    assert_eq!(last_seen(&*store, "ada").await, Some(base + hours(1)));

    // An older event is kept, but the clock never goes back.
    let older = Event {
        kind: "signup".into(),
        ..event("ada", "signup", base + mins(30))
    };
    assert!(store.add_event(&older, base + hours(3)).await.unwrap());
    assert_eq!(last_seen(&*store, "ada").await, Some(base + hours(1)));

    // A future-dated one counts as of now, not of its time; sent again later, it is
    // known, and the clock stays.
    let future = event("ada", "preorder-7", base + days(3));
    assert!(store.add_event(&future, base + hours(4)).await.unwrap());
    assert_eq!(last_seen(&*store, "ada").await, Some(base + hours(4)));
    assert!(!store.add_event(&future, base + hours(8)).await.unwrap());
    assert_eq!(last_seen(&*store, "ada").await, Some(base + hours(4)));

    let events = store.events_for_contact(&cid("ada")).await.unwrap();
    assert_eq!(events, [older, first, future], "oldest first, intact");

    // Event ids are per contact.
    let bobs = event("bob", "order-1", base + hours(7));
    assert!(store.add_event(&bobs, base + hours(7)).await.unwrap());
    assert_eq!(store.events_for_contact(&cid("bob")).await.unwrap(), [bobs]);
    assert_eq!(last_seen(&*store, "ada").await, Some(base + hours(4)));
}

pub(crate) async fn events_need_a_known_contact<S: Backend>(store: Arc<S>) {
    add_contacts(&*store, &["ada"]).await;
    let nobody = cid("nobody");
    let got = store
        .add_event(&event("nobody", "order-1", t0()), t0())
        .await;
    assert!(
        matches!(&got, Err(StoreError::UnknownContact(id)) if *id == nobody),
        "{got:?}"
    );
    assert_eq!(store.events_for_contact(&nobody).await.unwrap(), []);
    let records = store.policy_records(from_ref(&nobody), t0() - days(1), &[]);
    assert!(records.await.unwrap().is_empty());
    assert_eq!(store.count_contacts().await.unwrap(), 1);
    let everyone = idle(&*store, later() + days(365)).await;
    assert_eq!(
        everyone.iter().map(|(id, _)| id).collect::<Vec<_>>(),
        [&cid("ada")]
    );
}

pub(crate) async fn idle_contacts_page_by_last_interaction<S: Backend>(store: Arc<S>) {
    let base = later();
    let started = Utc::now().timestamp();
    add_contacts(&*store, &["fresh", "late", "e", "d", "c", "b", "a"]).await;
    let ended = Utc::now().timestamp();
    // Ties (b and c, d and e) go by id.
    let interactions = [
        ("a", hours(1)),
        ("b", hours(2)),
        ("c", hours(2)),
        ("d", hours(3)),
        ("e", hours(3)),
        ("late", days(3)),
    ];
    for (id, after) in interactions {
        let e = event(id, "visit", base + after);
        assert!(store.add_event(&e, base + days(10)).await.unwrap());
    }

    // With no interaction yet, the clock started when the contact was first seen.
    let until_2h = idle(&*store, base + hours(2)).await;
    assert_eq!(until_2h.len(), 4, "{until_2h:?}");
    assert_eq!(until_2h[0].0, cid("fresh"));
    let first_seen = until_2h[0].1.timestamp();
    assert!((started..=ended).contains(&first_seen), "{first_seen}");
    let expected = [
        (cid("a"), base + hours(1)),
        (cid("b"), base + hours(2)),
        (cid("c"), base + hours(2)),
    ];
    assert_eq!(until_2h[1..], expected);

    // Pages cover each contact once, in order.
    let mut seen: Vec<(ContactId, DateTime<Utc>)> = Vec::new();
    loop {
        let after = seen.last().map(|(id, at)| (*at, id.clone()));
        let page = store.idle_contacts(base + days(5), after.as_ref(), 2).await;
        let page = page.unwrap();
        assert!(page.len() <= 2, "at most `limit`");
        if page.is_empty() {
            break;
        }
        seen.extend(page.into_iter().map(|(c, at)| (c.id, at)));
    }
    let names: Vec<&str> = seen.iter().map(|(id, _)| id.as_str()).collect();
    assert_eq!(names, ["fresh", "a", "b", "c", "d", "e", "late"]);

    // A re-import restarts nobody's clock.
    add_contacts(&*store, &["fresh", "a"]).await;
    assert_eq!(idle(&*store, base + days(5)).await, seen);

    // The last contact of a page interacts before the next page is read: the next page
    // still starts where it was (a contact may be read twice, none is skipped).
    let first = store.idle_contacts(base + days(5), None, 3).await.unwrap();
    let (cursor_at, cursor) = (first[2].1, first[2].0.id.clone());
    assert_eq!(cursor.as_str(), "b");
    let moved = event("b", "later-visit", base + days(4));
    assert!(store.add_event(&moved, base + days(10)).await.unwrap());
    let after = (cursor_at, cursor);
    let rest = store
        .idle_contacts(base + days(5), Some(&after), 10)
        .await
        .unwrap();
    let names: Vec<&str> = rest.iter().map(|(c, _)| c.id.as_str()).collect();
    for id in ["c", "d", "e", "late"] {
        assert!(names.contains(&id), "{id} skipped: {names:?}");
    }
}

pub(crate) async fn a_sent_touch_ends_idleness<S: Backend>(store: Arc<S>) {
    let base = later();
    add_contacts(&*store, &["ada", "bob"]).await;
    for (id, at) in [("ada", base), ("bob", base + hours(1))] {
        assert!(store.add_event(&event(id, "visit", at), at).await.unwrap());
    }
    let t = planned("ada", base + hours(4));
    claimed(&*store, from_ref(&t), "w1", base + hours(4)).await;
    let both = [(cid("ada"), base), (cid("bob"), base + hours(1))];
    assert_eq!(
        idle(&*store, base + hours(4)).await,
        both,
        "claimed is not sent"
    );

    let sent = [Outcome::Sent { id: t.id.clone() }];
    assert_eq!(store.record(&sent, "w1", base + hours(5)).await.unwrap(), 1);
    let bob = (cid("bob"), base + hours(1));
    assert_eq!(idle(&*store, base + hours(4)).await, from_ref(&bob));
    let ada = (cid("ada"), base + hours(5));
    let both = [bob, ada];
    assert_eq!(idle(&*store, base + hours(5)).await, both);

    // A touch that did not go out is no interaction.
    let f = planned("bob", base + hours(6));
    claimed(&*store, from_ref(&f), "w2", base + hours(6)).await;
    let failed = [Outcome::Failed {
        id: f.id.clone(),
        reason: "mailbox full".into(),
    }];
    assert_eq!(
        store.record(&failed, "w2", base + hours(7)).await.unwrap(),
        1
    );
    assert_eq!(idle(&*store, base + days(1)).await, both);
}

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
