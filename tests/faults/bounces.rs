//! SMTP refusals through the real binary, on both backends, from a server announcing
//! ENHANCEDSTATUSCODES: `550 5.1.1` (no such user) at RCPT fails the birthday note and
//! suppresses the address, so the next occasion (a thank-you for a purchase) never
//! reaches the server; `550 5.7.1` (policy) fails the note too but suppresses nothing,
//! so the thank-you is tried again. `rapport contacts show` says why the address is
//! suppressed. (tests/smtp_bounces.rs drives the dispatcher in-process.)

use rapport::store::Ledger;
use std::time::Duration;

use chrono::Utc;
use rapport::domain::{ContactId, Touch, TouchStatus};

use crate::{
    rig::{Backend, On, a_zone_far_from_midnight},
    support::{
        daemon::Guard,
        smtp::{SmtpOptions, SmtpServer},
    },
};

/// Birthdays by email only, and a thank-you as soon as a purchase is recorded.
const CONFIG: &str = r#"
[occasions.birthday]
channels = ["email"]
[occasions.thank_you]
trigger = { event = "purchase", delay = "0s" }
channels = ["email"]
"#;

/// The server: `nouser@` refused at RCPT with 5.1.1, `policy@` with 5.7.1, anyone else
/// accepted.
async fn server() -> SmtpServer {
    let smtp = SmtpServer::start(SmtpOptions {
        enhanced_status_codes: true,
        ..Default::default()
    })
    .await;
    smtp.reject_rcpt("nouser@", "550 5.1.1 <nouser@example.com> no such user");
    smtp.reject_rcpt("policy@", "550 5.7.1 policy");
    smtp
}

/// `contact`'s touch for `occasion` once it has reached a final status (60 s at most).
async fn settled(on: &On, contact: &str, occasion: &str) -> Touch {
    let store = on.ledger().await;
    rapport::with_store!(store, |store| {
        settled_in(&store, on, contact, occasion).await
    })
}

async fn settled_in<S: Ledger>(store: &S, on: &On, contact: &str, occasion: &str) -> Touch {
    let id = ContactId::parse(contact).expect("contact id");
    for _ in 0..600 {
        let touches = store.touches_for_contact(&id).await.expect("touches");
        if let Some(t) = touches
            .into_iter()
            .find(|t| t.occasion == occasion && t.status.is_final())
        {
            return t;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!(
        "{contact}'s {occasion} never settled; log:\n{}",
        on.ws.log(0)
    );
}

async fn a_hard_bounce_is_never_tried_again_and_a_policy_refusal_is(backend: Backend) {
    let smtp = server().await;
    let on = On::new(backend, &smtp.url(), CONFIG);
    let (zone, today) = a_zone_far_from_midnight();
    let mut csv = String::from("id,first_name,email,timezone,birthday,tier\n");
    for id in ["nouser", "policy", "ok"] {
        csv.push_str(&format!(
            "{id},Name-{id},{id}@example.com,{zone},{today},family\n"
        ));
    }
    on.ws.import_csv(&csv);
    let day_before = Utc::now().date_naive();
    let mut daemon = Guard(Some(on.ws.start(0)));

    // The birthdays: ok's goes out, the two refused ones fail for good.
    let hard = settled(&on, "nouser", "birthday").await;
    let policy = settled(&on, "policy", "birthday").await;
    assert_eq!(
        settled(&on, "ok", "birthday").await.status,
        TouchStatus::Sent
    );
    assert_eq!(
        (hard.status, hard.reason.as_deref()),
        (
            TouchStatus::Failed,
            Some("failed permanently: email: smtp 550 5.1.1 (hard bounce)")
        )
    );
    assert_eq!(
        (policy.status, policy.reason.as_deref()),
        (
            TouchStatus::Failed,
            Some("failed permanently: email: smtp 550 5.7.1 (permanent)")
        )
    );

    // A purchase each: the thank-yous.
    for id in ["nouser", "policy"] {
        let out = on.ws.run(&[
            "event",
            "add",
            "--contact",
            id,
            "--type",
            "purchase",
            "--id",
            "order-1",
        ]);
        assert!(out.status.success(), "{out:?}");
    }
    let thanked = settled(&on, "nouser", "thank_you").await;
    assert_eq!(thanked.status, TouchStatus::Suppressed, "{thanked:?}");
    let tried = settled(&on, "policy", "thank_you").await;
    assert_eq!(
        (tried.status, tried.reason.as_deref()),
        (
            TouchStatus::Failed,
            Some("failed permanently: email: smtp 550 5.7.1 (permanent)")
        )
    );
    // A few planner and reconciler runs later, nothing more reaches the server.
    tokio::time::sleep(Duration::from_secs(3)).await;
    daemon.stop_gracefully();
    assert_eq!(
        smtp.rcpts_for("nouser@"),
        1,
        "a hard bounce is never tried again"
    );
    assert_eq!(
        smtp.rcpts_for("policy@"),
        2,
        "a policy refusal is tried again"
    );
    assert_eq!(smtp.count(), 1, "only ok's note is accepted");

    let show = on.ws.run(&["contacts", "show", "nouser"]);
    assert!(show.status.success(), "{show:?}");
    let show = String::from_utf8_lossy(&show.stdout);
    assert!(show.contains("nouser@example.com (suppressed)"), "{show}");
    let day_after = Utc::now().date_naive();
    let said = |day: chrono::NaiveDate| {
        show.contains(&format!(
            "email suppressed: hard bounce (smtp 550 5.1.1) on {}",
            day.format("%Y-%m-%d")
        ))
    };
    assert!(said(day_before) || said(day_after), "{show}");
    let show = on.ws.run(&["contacts", "show", "policy"]);
    let show = String::from_utf8_lossy(&show.stdout);
    assert!(!show.contains("suppressed"), "{show}");
    eprintln!(
        "bounces ({backend:?}): 5.1.1 tried once in all, 5.7.1 twice; the thank-you to the bounced address {}",
        thanked.reason.unwrap_or_default()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn sqlite_a_hard_bounce_is_never_tried_again_and_a_policy_refusal_is() {
    a_hard_bounce_is_never_tried_again_and_a_policy_refusal_is(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn redis_a_hard_bounce_is_never_tried_again_and_a_policy_refusal_is() {
    a_hard_bounce_is_never_tried_again_and_a_policy_refusal_is(Backend::Redis).await;
}
