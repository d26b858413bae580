//! Idle contacts: paged by last interaction (first seen, if none), each once in order,
//! and a sent touch ends a contact's idleness where a failed one does not.

use std::{slice::from_ref, sync::Arc};

use chrono::{DateTime, Utc};
use rapport::{domain::ContactId, store::Outcome};

use crate::{
    Backend,
    fixtures::{cid, days, hours, planned},
    policy_fixtures::{add_contacts, claimed, event, idle, later},
};

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
