//! A touch moving to the next channel: it gets that channel's full retries, a tier that
//! no longer allows its channel moves it on, and every channel left behind is named on
//! the touch.

use chrono::Duration;
use rapport::{
    domain::{Channel, Contact, TouchStatus},
    store::ContactUpsert,
};

use crate::ledger::Backend;
use crate::rig::{at, cid, stubbed};
use crate::support::{backends::TestStore, http_stub::Reply};

pub(crate) async fn a_moved_touch_gets_the_new_channels_full_retries<S: TestStore>(
    backend: Backend,
) {
    let (rig, _sms, hook) = stubbed::<S>(
        backend,
        Reply::json(400, r#"{"code":21211,"status":400}"#),
        Reply::status(500),
        &[
            ("OCCASIONS__BIRTHDAY__CHANNELS", r#"["sms", "webhook"]"#),
            ("CHANNELS__WEBHOOK__RETRY_SCHEDULE", r#"["5s", "1m"]"#),
        ],
    )
    .await;
    rig.contact("m1", 1, true, true).await;
    rig.plan("birthday", at(1, 0)).await;
    let now = at(1, 1);
    assert_eq!(rig.step(now).await.fell_back, 1);
    assert_eq!(rig.touch("m1", "birthday").await.attempts, 0);
    // On the webhook: the schedule from its first step, all three attempts.
    assert_eq!(rig.step(now).await.retried, 1);
    let first = rig.touch("m1", "birthday").await;
    let wait = first.next_attempt_at - now;
    assert!(wait <= Duration::seconds(5), "{wait}");
    assert_eq!(rig.step(first.next_attempt_at).await.retried, 1);
    let second = rig.touch("m1", "birthday").await;
    assert_eq!(rig.step(second.next_attempt_at).await.failed, 1);
    assert_eq!(hook.count(), 3);
    let dead = rig.touch("m1", "birthday").await;
    assert_eq!(
        dead.reason.as_deref(),
        Some("gave up after 3 attempts: webhook 500 (transient)")
    );
}

pub(crate) async fn a_contact_moved_to_a_tier_without_the_channel_gets_the_next_one<
    S: TestStore,
>(
    backend: Backend,
) {
    let (rig, sms, _hook) = stubbed::<S>(
        backend,
        Reply::status(201),
        Reply::status(200),
        &[("OCCASIONS__BIRTHDAY__CHANNELS", r#"["sms", "email"]"#)],
    )
    .await;
    rig.contact("t1", 1, true, true).await;
    rig.plan("birthday", at(1, 0)).await;
    assert_eq!(rig.touch("t1", "birthday").await.channel, Channel::Sms);
    // Demoted before the send: acquaintances are reached by email only.
    let stored = rig.store.get_contact(&cid("t1")).await.unwrap().unwrap();
    rig.store
        .upsert_contacts(&[ContactUpsert {
            contact: Contact {
                tier: "acquaintance".into(),
                ..stored
            },
            email_consent: None,
            sms_consent: None,
            keep_tier: false,
        }])
        .await
        .unwrap();
    // Inside the acquaintance window (10:00-17:00).
    let now = at(1, 11);
    assert_eq!(rig.step(now).await.fell_back, 1);
    assert_eq!(rig.step(now).await.sent, 1);
    rig.assert_sent_on(
        "t1",
        "birthday",
        "email",
        "tier acquaintance does not allow sms",
    )
    .await;
    assert_eq!(sms.count(), 0);
}

pub(crate) async fn every_channel_left_behind_is_named_on_the_touch<S: TestStore>(
    backend: Backend,
) {
    let (rig, _sms, _hook) = stubbed::<S>(
        backend,
        Reply::json(400, r#"{"code":21211,"status":400}"#),
        Reply::status(410),
        &[(
            "OCCASIONS__BIRTHDAY__CHANNELS",
            r#"["sms", "webhook", "email"]"#,
        )],
    )
    .await;
    rig.contact("j1", 1, true, true).await;
    rig.plan("birthday", at(1, 0)).await;
    let now = at(1, 1);
    assert_eq!(rig.step(now).await.fell_back, 1);
    assert_eq!(rig.step(now).await.fell_back, 1);
    assert_eq!(rig.step(now).await.sent, 1);
    let sent = rig.touch("j1", "birthday").await;
    assert_eq!(
        (sent.status, sent.channel.as_str()),
        (TouchStatus::Sent, "email")
    );
    assert_eq!(
        sent.reason.as_deref(),
        Some(
            "sms: twilio 400 code 21211 (permanent); trying webhook; \
             webhook: webhook 410 (gone); trying email"
        )
    );
}
