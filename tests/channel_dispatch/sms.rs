//! SMS failures: an opt-out (Twilio 21610) withdraws SMS consent and moves the touch,
//! and the next occasion, to email; a permanent failure with no channel left is a dead
//! letter; a send timed out after the request is uncertain, retried once, then dead.

use rapport::{
    channels::unsubscribe,
    domain::{Channel, TouchStatus},
};

use crate::ledger::Backend;
use crate::rig::{at, cid, date, stubbed, years_before};
use crate::support::{backends::TestStore, http_stub::Reply};

fn opted_out() -> Reply {
    Reply::json(
        400,
        r#"{"code":21610,"message":"Attempt to send to unsubscribed recipient","status":400}"#,
    )
}

pub(crate) async fn an_sms_opt_out_withdraws_consent_and_moves_the_touch_to_email<S: TestStore>(
    backend: Backend,
) {
    let (rig, sms, _hook) = stubbed::<S>(
        backend,
        opted_out(),
        Reply::status(200),
        &[
            ("OCCASIONS__BIRTHDAY__CHANNELS", r#"["sms", "email"]"#),
            ("OCCASIONS__ANNIVERSARY__CHANNELS", r#"["sms", "email"]"#),
        ],
    )
    .await;
    rig.contact("c1", 1, true, true).await;
    // Email only: planned on email from the start, no SMS request.
    rig.contact("mail", 1, true, false).await;
    // Neither: nothing can reach them.
    rig.contact("none", 1, false, false).await;
    assert_eq!(rig.plan("birthday", at(1, 0)).await, 3);
    assert_eq!(rig.touch("c1", "birthday").await.channel, Channel::Sms);
    assert_eq!(rig.touch("mail", "birthday").await.channel, Channel::Email);

    let report = rig.step(at(1, 9)).await;
    assert_eq!(
        (report.sent, report.fell_back, report.suppressed),
        (1, 1, 1),
        "{report:?}"
    );
    // The SMS API was asked once, for c1, with its credentials.
    let asked = sms.requests();
    assert_eq!(asked.len(), 1);
    assert_eq!(asked[0].path(), "/2010-04-01/Accounts/ACtest/Messages.json");
    assert_eq!(asked[0].form_value("To").as_deref(), Some("+15551230000"));
    let c1 = rig.store.get_contact(&cid("c1")).await.unwrap().unwrap();
    assert!(!c1.sms_consent && c1.email_consent, "SMS consent withdrawn");
    let moved = rig.touch("c1", "birthday").await;
    assert_eq!(
        (moved.status, moved.channel.as_str()),
        (TouchStatus::Planned, "email")
    );
    assert!(
        moved
            .reason
            .as_deref()
            .is_some_and(|r| r.contains("twilio 21610") && r.ends_with("trying email")),
        "{:?}",
        moved.reason
    );
    let none = rig.touch("none", "birthday").await;
    assert_eq!(
        (none.status, none.reason.as_deref()),
        (TouchStatus::Suppressed, Some("no phone number"))
    );

    // Its job runs: sent by email, and the ledger says how it got there.
    let report = rig.step(at(1, 9)).await;
    assert_eq!(report.sent, 1, "{report:?}");
    rig.assert_sent_on("c1", "birthday", "email", "sms: twilio 21610")
        .await;
    // Marketing email carries the one-click unsubscribe link with c1's token.
    let emails = rig.emails();
    assert_eq!(emails.len(), 2);
    let c1_mail = emails
        .iter()
        .find(|m| m.contains("c1@example.com"))
        .unwrap();
    let header = c1_mail
        .lines()
        .find(|l| l.starts_with("List-Unsubscribe: "))
        .expect("List-Unsubscribe");
    let token = header
        .split("https://rapport.example/u/")
        .nth(1)
        .and_then(|rest| rest.split('>').next())
        .expect("an https link under api.public_url");
    assert_eq!(
        unsubscribe::verify(&rig.channels.unsubscribe_key, token),
        Some(cid("c1"))
    );
    assert!(c1_mail.contains("List-Unsubscribe-Post: List-Unsubscribe=One-Click"));

    // The next occasion goes straight to email: no SMS attempt.
    rig.customer_since("c1", years_before(date(10), 3)).await;
    assert_eq!(rig.plan("anniversary", at(10, 0)).await, 1);
    assert_eq!(rig.touch("c1", "anniversary").await.channel, Channel::Email);
    assert_eq!(rig.step(at(10, 9)).await.sent, 1);
    assert_eq!(sms.count(), 1, "no second SMS request");
    assert!(
        !rig.store
            .get_contact(&cid("c1"))
            .await
            .unwrap()
            .unwrap()
            .sms_consent
    );
}

pub(crate) async fn a_permanent_sms_failure_with_no_channel_left_is_a_dead_letter<S: TestStore>(
    backend: Backend,
) {
    let (rig, sms, _hook) = stubbed::<S>(backend, Reply::json(
        400,
        r#"{"code":21211,"message":"The 'To' number is not a valid phone number.","status":400}"#,
    ), Reply::status(200), &[("OCCASIONS__BIRTHDAY__CHANNELS", r#"["sms"]"#)]).await;
    rig.contact("p1", 1, true, true).await;
    rig.plan("birthday", at(1, 0)).await;
    assert_eq!(rig.step(at(1, 9)).await.failed, 1);
    let dead = rig.store.dead_letters(None, 10).await.unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(
        dead[0].reason.as_deref(),
        Some("failed permanently: sms: twilio 400 code 21211 (permanent)")
    );
    // Not an opt-out: consent stays.
    assert!(
        rig.store
            .get_contact(&cid("p1"))
            .await
            .unwrap()
            .unwrap()
            .sms_consent
    );
    assert_eq!(sms.count(), 1);
}

pub(crate) async fn an_sms_timed_out_after_sending_is_retried_once_then_a_dead_letter<
    S: TestStore,
>(
    backend: Backend,
) {
    // The API takes the request and answers after the client's 2 s timeout.
    let (rig, sms, _hook) = stubbed::<S>(
        backend,
        Reply::status(201).after(std::time::Duration::from_secs(4)),
        Reply::status(200),
        &[("OCCASIONS__BIRTHDAY__CHANNELS", r#"["sms"]"#)],
    )
    .await;
    rig.contact("u1", 1, true, true).await;
    rig.plan("birthday", at(1, 0)).await;
    let now = at(1, 1);
    assert_eq!(rig.step(now).await.retried, 1);
    let retry = rig.touch("u1", "birthday").await;
    assert!(
        retry
            .reason
            .as_deref()
            .is_some_and(|r| r.ends_with("(uncertain)")),
        "{:?}",
        retry.reason
    );
    assert_eq!(rig.step(retry.next_attempt_at).await.failed, 1);
    let dead = rig.store.dead_letters(None, 10).await.unwrap();
    assert!(
        dead[0]
            .reason
            .as_deref()
            .is_some_and(|r| r.starts_with("uncertain twice, not retried again: sms:")),
        "{:?}",
        dead[0].reason
    );
    // Sent (as far as the API knows) at most twice, never more.
    assert_eq!(sms.count(), 2);
}
