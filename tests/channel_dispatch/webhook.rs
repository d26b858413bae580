//! Webhook failures: a 410 disables the endpoint for every later touch (on every replica,
//! until its config changes); a failing webhook is retried on its schedule under one
//! `webhook-id`, ends as a dead letter, and replays exactly once.

use std::sync::{
    Arc,
    atomic::{AtomicBool, Ordering},
};

use chrono::Duration;
use rapport::{channels::Channels, dispatch::BatchReport};

use crate::ledger::Backend;
use crate::rig::{at, rig, secrets, stubbed};
use crate::support::{
    backends::TestStore,
    http_stub::{HttpStub, Reply},
};

pub(crate) async fn a_webhook_410_disables_the_endpoint_for_later_touches<S: TestStore>(
    backend: Backend,
) {
    let (rig, _sms, hook) = stubbed::<S>(
        backend,
        Reply::status(201),
        Reply::status(410),
        &[("OCCASIONS__BIRTHDAY__CHANNELS", r#"["webhook", "email"]"#)],
    )
    .await;
    rig.contact("w1", 1, true, false).await;
    rig.contact("w2", 2, true, false).await;
    rig.plan("birthday", at(1, 0)).await;
    let report = rig.step(at(1, 9)).await;
    assert_eq!(report.fell_back, 1, "{report:?}");
    assert_eq!(hook.count(), 1);
    assert_eq!(rig.step(at(1, 9)).await.sent, 1);
    rig.assert_sent_on("w1", "birthday", "email", "webhook 410")
        .await;

    // The next day's touch never reaches the endpoint: disabled, it moves on at once.
    rig.plan("birthday", at(2, 0)).await;
    assert_eq!(rig.step(at(2, 9)).await.fell_back, 1);
    assert_eq!(rig.step(at(2, 9)).await.sent, 1);
    assert_eq!(hook.count(), 1, "a disabled endpoint is not called");
    let w2 = rig.touch("w2", "birthday").await;
    assert!(
        w2.reason
            .as_deref()
            .is_some_and(|r| r.contains("disabled after a 410")),
        "{:?}",
        w2.reason
    );

    // Another replica (a fresh channel set over the same store) sees it disabled too;
    // a changed endpoint config is a new endpoint, enabled.
    let again = Channels::build(&rig.cfg, rig.store.as_ref(), secrets)
        .await
        .unwrap();
    assert!(again.webhook_disabled(rig.store.as_ref()).await);
    let mut moved = (*rig.cfg).clone();
    if let Some(w) = moved.webhook.as_mut() {
        w.url = format!("{}/other", hook.url());
    }
    let changed = Channels::build(&moved, rig.store.as_ref(), secrets)
        .await
        .unwrap();
    assert!(!changed.webhook_disabled(rig.store.as_ref()).await);
}

pub(crate) async fn a_failing_webhook_retries_on_schedule_then_is_a_dead_letter_replayed_once<
    S: TestStore,
>(
    backend: Backend,
) {
    let sms = HttpStub::always(Reply::status(201)).await;
    let healthy = Arc::new(AtomicBool::new(false));
    let flag = healthy.clone();
    let hook = HttpStub::start(move |_| {
        if flag.load(Ordering::SeqCst) {
            Reply::status(204)
        } else {
            Reply::status(500)
        }
    })
    .await;
    let rig = rig::<S>(
        backend,
        &sms,
        &hook,
        &[
            ("OCCASIONS__BIRTHDAY__CHANNELS", r#"["webhook"]"#),
            ("CHANNELS__WEBHOOK__RETRY_SCHEDULE", r#"["5s", "1m"]"#),
        ],
    )
    .await;
    rig.contact("h1", 1, true, false).await;
    rig.plan("birthday", at(1, 0)).await;
    let t0 = at(1, 9);
    assert_eq!(rig.step(t0).await.retried, 1);
    let first = rig.touch("h1", "birthday").await;
    // The schedule's first step (jitter only shortens it, by up to a fifth).
    let wait = first.next_attempt_at - t0;
    assert!(
        wait >= Duration::seconds(4) && wait <= Duration::seconds(5),
        "{wait}"
    );
    let t1 = first.next_attempt_at;
    assert_eq!(rig.step(t1).await.retried, 1);
    let second = rig.touch("h1", "birthday").await;
    let wait = second.next_attempt_at - t1;
    assert!(
        wait >= Duration::seconds(48) && wait <= Duration::seconds(60),
        "{wait}"
    );
    // The schedule is used up: a dead letter.
    assert_eq!(rig.step(second.next_attempt_at).await.failed, 1);
    let dead = rig.store.dead_letters(None, 10).await.unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(
        dead[0].reason.as_deref(),
        Some("gave up after 3 attempts: webhook 500 (transient)")
    );

    // Replayed once the receiver is healthy: delivered, once, under the same id.
    healthy.store(true, Ordering::SeqCst);
    let now = second.next_attempt_at + Duration::minutes(5);
    let revived = rig.store.revive(&[dead[0].id.clone()], now).await.unwrap();
    assert_eq!(revived.len(), 1);
    assert!(
        rig.store
            .revive(&[dead[0].id.clone()], now)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(rig.step(now).await.sent, 1);
    assert_eq!(
        rig.step(now + Duration::minutes(1)).await,
        BatchReport::default()
    );
    let calls = hook.requests();
    assert_eq!(calls.len(), 4);
    let ids: std::collections::BTreeSet<_> = calls
        .iter()
        .map(|r| r.header("webhook-id").unwrap().to_owned())
        .collect();
    assert_eq!(ids.len(), 1, "one webhook-id for every attempt: {ids:?}");
    let body: serde_json::Value = serde_json::from_slice(&calls[3].body).unwrap();
    assert_eq!(body["type"], "touch.due");
    assert_eq!(body["data"]["touch_id"], dead[0].id.as_str());
    assert_eq!(
        (
            body["data"]["occasion"].as_str(),
            body["data"]["tier"].as_str(),
            body["data"]["contact_id"].as_str()
        ),
        (Some("birthday"), Some("family"), Some("h1"))
    );
    assert!(
        body["data"]["text"]
            .as_str()
            .is_some_and(|t| t.contains("Name-h1"))
    );
    assert!(rig.store.dead_letters(None, 10).await.unwrap().is_empty());
}
