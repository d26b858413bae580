//! The channels' store side: consent per channel, the daemon's own settings, a touch
//! moving to its next channel, and dead letters with their replay.

use rapport::domain::Channel;
use std::sync::Arc;

use rapport::{
    domain::{TouchId, TouchStatus},
    render::sample_contact,
    store::{ContactUpsert, Outcome},
};

use crate::{
    Backend,
    fixtures::{cid, expiring, hours, ids_of, mins, planned, queued_ids, secs, t0, touch},
};

pub(crate) async fn consent_is_kept_per_channel<S: Backend>(store: Arc<S>) {
    let mut c = sample_contact("gold");
    c.id = cid("c1");
    let row = |sms: Option<bool>| ContactUpsert {
        contact: c.clone(),
        email_consent: None,
        sms_consent: sms,
        keep_tier: false,
    };
    store.upsert_contacts(&[row(None)]).await.unwrap();
    let got = store.get_contact(&c.id).await.unwrap().unwrap();
    assert!(
        got.email_consent && got.sms_consent,
        "both default to given"
    );

    assert!(store.set_consent(&c.id, Channel::Sms, false).await.unwrap());
    let got = store.get_contact(&c.id).await.unwrap().unwrap();
    assert!(got.email_consent && !got.sms_consent, "{got:?}");
    // A re-import that says nothing about consent never re-subscribes.
    store.upsert_contacts(&[row(None)]).await.unwrap();
    assert!(!store.get_contact(&c.id).await.unwrap().unwrap().sms_consent);
    // One that states it does.
    store.upsert_contacts(&[row(Some(true))]).await.unwrap();
    assert!(store.get_contact(&c.id).await.unwrap().unwrap().sms_consent);

    assert!(
        store
            .set_consent(&c.id, Channel::Email, false)
            .await
            .unwrap()
    );
    let got = store.get_contact(&c.id).await.unwrap().unwrap();
    assert!(!got.email_consent && got.sms_consent, "{got:?}");
    assert!(
        !store
            .set_consent(&cid("nobody"), Channel::Sms, false)
            .await
            .unwrap()
    );
    assert!(
        store
            .set_consent(&c.id, Channel::Webhook, false)
            .await
            .is_err()
    );
}

pub(crate) async fn settings_are_set_once_or_replaced<S: Backend>(store: Arc<S>) {
    assert_eq!(store.setting("k").await.unwrap(), None);
    assert_eq!(store.init_setting("k", "first").await.unwrap(), "first");
    assert_eq!(store.init_setting("k", "second").await.unwrap(), "first");
    store.set_setting("k", "third").await.unwrap();
    assert_eq!(store.setting("k").await.unwrap().as_deref(), Some("third"));
    // Replicas racing to generate a key all end up with one.
    let racers: Vec<_> = (0..16)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move { store.init_setting("key", &format!("v{i}")).await.unwrap() })
        })
        .collect();
    let mut seen = Vec::new();
    for r in racers {
        seen.push(r.await.unwrap());
    }
    seen.dedup();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(store.setting("key").await.unwrap(), Some(seen[0].clone()));
}

pub(crate) async fn fallback_moves_a_touch_to_its_next_channel<S: Backend>(store: Arc<S>) {
    let t = planned("c1", t0());
    store
        .plan_touches(std::slice::from_ref(&t), 10, t0())
        .await
        .unwrap();
    // An attempt without an answer first: counted, apart from the attempts.
    store
        .claim(std::slice::from_ref(&t.id), "w0", t0(), t0() + mins(5))
        .await
        .unwrap();
    let unsure = Outcome::Retry {
        id: t.id.clone(),
        at: t0() + secs(1),
        reason: "smtp timeout during the transaction (uncertain)".into(),
        uncertain: true,
    };
    store.record(&[unsure], "w0", t0()).await.unwrap();
    let retried = touch(store.as_ref(), &t.id).await;
    assert_eq!((retried.attempts, retried.uncertain), (1, 1));
    store
        .claim(
            std::slice::from_ref(&t.id),
            "w1",
            t0() + secs(1),
            t0() + mins(5),
        )
        .await
        .unwrap();
    let now = t0() + secs(3);
    let moved = Outcome::Fallback {
        id: t.id.clone(),
        channel: Channel::Sms,
        reason: "email: no email address; trying sms".into(),
    };
    assert_eq!(store.record(&[moved], "w1", now).await.unwrap(), 1);
    let after = touch(store.as_ref(), &t.id).await;
    // The new channel has its own retries: attempts (and uncertain ones) from zero.
    assert_eq!(
        (
            after.status,
            after.channel.as_str(),
            after.next_attempt_at,
            after.attempts,
            after.uncertain
        ),
        (TouchStatus::Planned, "sms", now, 0, 0)
    );
    assert_eq!(
        after.reason.as_deref(),
        Some("email: no email address; trying sms")
    );
    assert_eq!(
        after.tried,
        [Channel::Email],
        "the channel it left is stored"
    );
    // Its job is queued, for now.
    let jobs = store.queued().await;
    let last = jobs.last().expect("a job for the fallback");
    assert_eq!(
        (last.touches.clone(), last.run_at),
        (vec![t.id.clone()], now)
    );
    // Sent on the new channel, it stays recorded there with the reason for the move.
    store
        .claim(std::slice::from_ref(&t.id), "w2", now, now + mins(5))
        .await
        .unwrap();
    store
        .record(&[Outcome::Sent { id: t.id.clone() }], "w2", now + secs(1))
        .await
        .unwrap();
    let sent = touch(store.as_ref(), &t.id).await;
    assert_eq!(
        (sent.status, sent.channel.as_str()),
        (TouchStatus::Sent, "sms")
    );
    assert!(
        sent.reason
            .as_deref()
            .is_some_and(|r| r.contains("trying sms"))
    );
}

/// The channels a touch left are a field of the touch, kept in order across moves,
/// whatever its reason says in words.
pub(crate) async fn a_move_stores_the_channels_left_whatever_the_reason_says<S: Backend>(
    store: Arc<S>,
) {
    let t = planned("c1", t0());
    store
        .plan_touches(std::slice::from_ref(&t), 10, t0())
        .await
        .unwrap();
    assert!(touch(store.as_ref(), &t.id).await.tried.is_empty());
    for (n, (to, left)) in [
        (Channel::Sms, vec![Channel::Email]),
        (Channel::Webhook, vec![Channel::Email, Channel::Sms]),
    ]
    .into_iter()
    .enumerate()
    {
        let owner = format!("w{n}");
        let now = t0() + secs(n as i64);
        store
            .claim(std::slice::from_ref(&t.id), &owner, now, now + mins(5))
            .await
            .unwrap();
        let moved = Outcome::Fallback {
            id: t.id.clone(),
            channel: to,
            reason: "moved on".into(),
        };
        assert_eq!(store.record(&[moved], &owner, now).await.unwrap(), 1);
        let after = touch(store.as_ref(), &t.id).await;
        assert_eq!((after.channel, after.tried), (to, left));
    }
    // Any other outcome keeps the list.
    let now = t0() + secs(5);
    store
        .claim(std::slice::from_ref(&t.id), "w9", now, now + mins(5))
        .await
        .unwrap();
    store
        .record(&[Outcome::Sent { id: t.id.clone() }], "w9", now)
        .await
        .unwrap();
    let sent = touch(store.as_ref(), &t.id).await;
    assert_eq!(sent.tried, [Channel::Email, Channel::Sms]);
}

pub(crate) async fn dead_letters_list_in_order_and_revive_once<S: Backend>(store: Arc<S>) {
    let touches: Vec<_> = (0..4)
        .map(|i| planned(&format!("d{i}"), t0()))
        .chain([expiring("old", t0(), t0() + mins(30))])
        .collect();
    let ids = ids_of(&touches);
    store.plan_touches(&touches, 10, t0()).await.unwrap();
    store.claim(&ids, "w1", t0(), t0() + mins(5)).await.unwrap();
    // Failed one by one, d2 first; d3 is sent.
    for (i, k) in [2usize, 0, 1, 4].into_iter().enumerate() {
        let failed = Outcome::Failed {
            id: ids[k].clone(),
            reason: format!("gave up after 6 attempts: smtp 421 ({k})"),
        };
        store
            .record(&[failed], "w1", t0() + secs(i as i64 + 1))
            .await
            .unwrap();
    }
    store
        .record(
            &[Outcome::Sent { id: ids[3].clone() }],
            "w1",
            t0() + secs(9),
        )
        .await
        .unwrap();
    let order = |list: Vec<rapport::domain::Touch>| -> Vec<TouchId> {
        list.into_iter().map(|t| t.id).collect()
    };
    let all = store.dead_letters(None, 10).await.unwrap();
    assert!(all.iter().all(|t| t.status == TouchStatus::Failed));
    assert_eq!(
        order(all.clone()),
        vec![
            ids[2].clone(),
            ids[0].clone(),
            ids[1].clone(),
            ids[4].clone()
        ]
    );
    // Pages continue after the last one seen.
    let first = store.dead_letters(None, 2).await.unwrap();
    let last = first.last().unwrap();
    let rest = store
        .dead_letters(Some(&(last.updated_at, last.id.clone())), 10)
        .await
        .unwrap();
    assert_eq!(order(rest), vec![ids[1].clone(), ids[4].clone()]);

    // Revived: failed and not past expiry only (d3 was sent, "old" has expired by now).
    let now = t0() + hours(1);
    let jobs_before = store.queued().await.len();
    let revived = store.revive(&ids, now).await.unwrap();
    let mut revived_sorted = revived.clone();
    revived_sorted.sort();
    let mut expected = vec![ids[0].clone(), ids[1].clone(), ids[2].clone()];
    expected.sort();
    assert_eq!(revived_sorted, expected);
    let t = touch(store.as_ref(), &ids[0]).await;
    assert_eq!(
        (t.status, t.attempts, t.next_attempt_at),
        (TouchStatus::Planned, 0, now)
    );
    assert!(
        t.reason
            .as_deref()
            .is_some_and(|r| r.starts_with("retried from dead letters after: gave up")),
        "{:?}",
        t.reason
    );
    let jobs = store.queued().await;
    let mut queued = queued_ids(&jobs[jobs_before..]);
    queued.sort();
    assert_eq!(queued, expected);
    assert_eq!(
        order(store.dead_letters(None, 10).await.unwrap()),
        vec![ids[4].clone()]
    );
    assert_eq!(
        touch(store.as_ref(), &ids[3]).await.status,
        TouchStatus::Sent
    );

    // Fail one again, then revive it from many tasks at once: revived once.
    store
        .claim(&[ids[0].clone()], "w2", now, now + mins(5))
        .await
        .unwrap();
    let failed = Outcome::Failed {
        id: ids[0].clone(),
        reason: "failed permanently: email: smtp 550 (permanent)".into(),
    };
    store.record(&[failed], "w2", now + secs(1)).await.unwrap();
    let racers: Vec<_> = (0..8)
        .map(|_| {
            let (store, id) = (store.clone(), ids[0].clone());
            tokio::spawn(async move { store.revive(&[id], now + secs(2)).await.unwrap().len() })
        })
        .collect();
    let mut total = 0;
    for r in racers {
        total += r.await.unwrap();
    }
    assert_eq!(total, 1);
}
