//! Store custody (`rapport::custody`): the identity a daemon creates at first use, a
//! store that comes back different is held (and marked so), an adoption resumes it and
//! settles what was due before it.

use std::{sync::Arc, time::Duration};

use chrono::Utc;
use rapport::{
    custody,
    domain::{Contact, TouchStatus},
    store::{ContactUpsert, Outcome},
};

use crate::{
    Backend,
    fixtures::{cid, hours, mins, planned, t0},
};

pub(crate) async fn a_store_that_changes_is_held_until_adopted<S: Backend>(store: Arc<S>) {
    let first = custody::establish(store.as_ref()).await.unwrap();
    let id = first.id().expect("held");
    // Another replica starting on the same store agrees on it.
    let second = custody::establish(store.as_ref()).await.unwrap();
    assert_eq!(second.id().as_deref(), Some(id.as_str()));
    custody::check(store.as_ref(), &first, t0()).await.unwrap();
    assert_eq!(first.lost(), None);

    // Another store answers (FLUSHALL and a new daemon, a wrong URL...).
    store
        .set_setting(custody::ID, "someone-else")
        .await
        .unwrap();
    custody::check(store.as_ref(), &first, t0()).await.unwrap();
    let why = first.lost().expect("held after the change");
    assert!(why.contains("rapport store adopt"), "{why}");
    // Marked in the store: the other replica and a restart hold too.
    let marker = store.setting(custody::LOST).await.unwrap().unwrap();
    assert!(marker.contains("someone-else"), "{marker}");
    custody::check(store.as_ref(), &second, t0()).await.unwrap();
    assert!(second.lost().is_some());
    let restarted = custody::establish(store.as_ref()).await.unwrap();
    assert!(restarted.lost().is_some(), "a restart holds too");
    // Checking again changes nothing until the adoption.
    custody::check(store.as_ref(), &first, t0() + mins(1))
        .await
        .unwrap();
    assert!(first.lost().is_some());

    let (adoption, _) = custody::adopt(store.as_ref(), t0() + hours(1), false)
        .await
        .unwrap();
    for c in [&first, &second, &restarted] {
        custody::check(store.as_ref(), c, t0() + hours(1))
            .await
            .unwrap();
        assert_eq!(c.lost(), None);
        assert_eq!(c.id().as_deref(), Some(adoption.id.as_str()));
    }
    let found = custody::identity(store.as_ref()).await.unwrap();
    assert_eq!(found.lost, None);
    assert_eq!(found.adopted, Some(adoption));
}

pub(crate) async fn an_adoption_settles_what_was_due_before_it<S: Backend>(store: Arc<S>) {
    let (due, sending, later, retrying) = (
        planned("due", t0()),
        planned("sending", t0()),
        planned("later", t0() + hours(2)),
        planned("retrying", t0()),
    );
    let all = [
        due.clone(),
        sending.clone(),
        later.clone(),
        retrying.clone(),
    ];
    store.plan_touches(&all, 10, t0() - hours(1)).await.unwrap();
    // Due before the adoption, but failed and waiting to retry after it: not sent.
    store
        .claim(
            std::slice::from_ref(&retrying.id),
            "r",
            t0(),
            t0() + mins(5),
        )
        .await
        .unwrap();
    let retry = [Outcome::Retry {
        id: retrying.id.clone(),
        at: t0() + hours(2),
        reason: "smtp 451".into(),
        uncertain: false,
    }];
    assert_eq!(store.record(&retry, "r", t0()).await.unwrap(), 1);
    let claimed = store
        .claim(std::slice::from_ref(&sending.id), "w", t0(), t0() + mins(5))
        .await
        .unwrap();
    assert_eq!(claimed.touches.len(), 1);

    let (_, settled) = custody::adopt(store.as_ref(), t0() + hours(1), false)
        .await
        .unwrap();
    assert_eq!(settled, 2);
    let status = |id| {
        let store = store.clone();
        async move { store.get_touches(&[id]).await.unwrap()[0].clone() }
    };
    for id in [&due.id, &sending.id] {
        let t = status(id.clone()).await;
        assert_eq!(t.status, TouchStatus::Skipped, "{id}");
        assert!(
            t.reason.as_deref().unwrap_or("").contains("adopted"),
            "{:?}",
            t.reason
        );
    }
    assert_eq!(status(later.id.clone()).await.status, TouchStatus::Planned);
    assert_eq!(
        status(retrying.id.clone()).await.status,
        TouchStatus::Planned
    );
    // The old claim's outcome cannot undo it.
    let late = [Outcome::Sent {
        id: sending.id.clone(),
    }];
    assert_eq!(store.record(&late, "w", t0() + hours(1)).await.unwrap(), 0);
    // With --resend-due nothing is settled.
    let (_, settled) = custody::adopt(store.as_ref(), t0() + hours(3), true)
        .await
        .unwrap();
    assert_eq!(settled, 0);
    assert_eq!(status(later.id.clone()).await.status, TouchStatus::Planned);
}

fn contact(id: &str) -> ContactUpsert {
    ContactUpsert {
        contact: Contact {
            id: cid(id),
            first_name: None,
            last_name: None,
            email: None,
            phone: None,
            timezone: None,
            locale: None,
            birthday: None,
            customer_since: None,
            tier: "friend".into(),
            attributes: serde_json::Map::new(),
            email_consent: true,
            sms_consent: true,
        },
        email_consent: None,
        sms_consent: None,
        keep_tier: false,
    }
}

/// The store stamps a contact with its own clock when it first stores it (whole
/// seconds): the case waits across seconds instead of passing time in.
pub(crate) async fn planning_after_an_adoption_skips_what_was_due_for_contacts_present_then<
    S: Backend,
>(
    store: Arc<S>,
) {
    store.upsert_contacts(&[contact("old")]).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let at = Utc::now();
    custody::adopt(store.as_ref(), at, false).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    store.upsert_contacts(&[contact("new")]).await.unwrap();
    // A re-import of an old contact keeps when it was first seen.
    store.upsert_contacts(&[contact("old")]).await.unwrap();
    let seen = store.first_seen(&[cid("old"), cid("new")]).await.unwrap();
    assert!(
        seen[&cid("old")] <= at && seen[&cid("new")] > at,
        "{seen:?}"
    );

    let mut touches = vec![
        planned("old", at - hours(1)),
        planned("old", at + hours(1)),
        planned("new", at - hours(1)),
    ];
    touches[1].occurrence = "later".into();
    touches[1].id = rapport::domain::TouchId::derive("birthday", &cid("old"), "later");
    custody::settle_adopted(store.as_ref(), &mut touches)
        .await
        .unwrap();
    let status: Vec<_> = touches.iter().map(|t| t.status).collect();
    assert_eq!(
        status,
        [
            TouchStatus::Skipped,
            TouchStatus::Planned,
            TouchStatus::Planned
        ]
    );
    // Recorded so: nothing queued for the skipped one.
    store.plan_touches(&touches, 10, Utc::now()).await.unwrap();
    let queued: Vec<_> = store
        .queued()
        .await
        .into_iter()
        .flat_map(|j| j.touches)
        .collect();
    assert!(!queued.contains(&touches[0].id), "{queued:?}");
    assert!(queued.contains(&touches[2].id), "{queued:?}");
    let found = custody::identity(store.as_ref()).await.unwrap();
    assert_eq!(
        found.adopted.map(|a| (a.at, a.resend_due)),
        Some((at, false))
    );
}
