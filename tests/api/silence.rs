//! What silence teaches: touches unanswered past their window become `ignored`, check-ins
//! back off, then the contact is sunset until a late reply revives it; touches sent
//! before learning started teach nothing.

use crate::support::backends::TestStore;
use chrono::{Duration, Utc};
use rapport::domain::ContactId;
use reqwest::Method;
use serde_json::json;

use crate::harness::{Backend, server};
use crate::history::{contact, effects, respond, sent};

pub(crate) async fn silence_becomes_ignored_then_backs_off_then_sunsets<S: TestStore>(b: Backend) {
    let s = server::<S>(b).await;
    contact(&s, "quiet").await;
    let now = Utc::now();
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(
            sent(
                &s,
                "quiet",
                "check_in",
                i,
                "email",
                now - Duration::days(40 - i64::from(i) * 2),
            )
            .await,
        );
    }
    let fresh = sent(&s, "quiet", "birthday", 9, "email", now - Duration::days(1)).await;
    let cfg = s.cfg();
    let marked = rapport::feedback::sweep(s.store.as_ref(), &cfg, now)
        .await
        .unwrap();
    assert_eq!(marked, 5, "the one inside its window waits");
    let ignored = s
        .call(
            Method::GET,
            "/v1/touches?contact=quiet&status=ignored",
            None,
        )
        .await;
    assert_eq!(
        ignored.body["touches"].as_array().unwrap().len(),
        5,
        "{}",
        ignored.body
    );
    let still = s
        .call(Method::GET, "/v1/touches?contact=quiet&status=sent", None)
        .await;
    assert_eq!(still.body["touches"][0]["id"], fresh.as_str());
    assert_eq!(
        rapport::feedback::sweep(s.store.as_ref(), &cfg, now)
            .await
            .unwrap(),
        0
    );

    let view = s.call(Method::GET, "/v1/contacts/quiet", None).await;
    assert_eq!(view.body["relationship"]["sunset"], true, "{}", view.body);
    assert_eq!(view.body["relationship"]["ignored_in_a_row"], 5);
    let notes: Vec<&str> = view.body["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "note")
        .map(|e| e["text"].as_str().unwrap())
        .collect();
    assert!(
        notes
            .iter()
            .any(|n| n.starts_with("check-ins backed off to 2x")),
        "{notes:?}"
    );
    assert!(
        notes
            .iter()
            .any(|n| n.starts_with("sunset: 5 ignored in a row")),
        "{notes:?}"
    );
    // The check-in planner leaves the sunset contact alone, and not one it knows less of.
    contact(&s, "other").await;
    let later = now + Duration::days(400);
    let check_in = cfg.rules.occasion("check_in").unwrap();
    let planned = rapport::planner::runner::run_once(s.store.as_ref(), &cfg, check_in, later)
        .await
        .unwrap();
    assert_eq!(planned.new, 1, "{planned:?}");
    let quiet = ContactId::parse("quiet").unwrap();
    let touches = s.store.touches_for_contact(&quiet).await.unwrap();
    assert!(
        touches
            .iter()
            .all(|t| t.occasion != "check_in" || t.occurrence.len() == 1),
        "{touches:?}"
    );
    // A late reply to an ignored touch revives the contact and takes the touch back.
    let r = respond(&s, json!({"kind": "reply", "touch_id": ids[4].as_str()})).await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert!(
        effects(&r).iter().any(|e| e.starts_with("revived")),
        "{}",
        r.body
    );
    let view = s.call(Method::GET, "/v1/contacts/quiet", None).await;
    assert_eq!(view.body["relationship"]["sunset"], false);
    let stats = s.call(Method::GET, "/v1/stats", None).await;
    let row = &stats.body["rows"][0];
    assert_eq!(
        (row["sent"].as_u64(), row["responded"].as_u64()),
        (Some(5), Some(1)),
        "{}",
        stats.body
    );
}

pub(crate) async fn touches_sent_before_learning_teach_nothing<S: TestStore>(b: Backend) {
    let s = server::<S>(b).await;
    contact(&s, "old").await;
    let now = Utc::now();
    for i in 0..5 {
        sent(
            &s,
            "old",
            "check_in",
            i,
            "email",
            now - Duration::days(60 - i64::from(i)),
        )
        .await;
    }
    sent(&s, "old", "birthday", 9, "email", now - Duration::days(20)).await;
    // As an upgrade leaves it: learning started 30 days ago.
    rapport::feedback::start_learning(s.store.as_ref(), now - Duration::days(30))
        .await
        .unwrap();
    rapport::feedback::start_learning(s.store.as_ref(), now)
        .await
        .unwrap();
    let cfg = s.cfg();
    assert_eq!(
        rapport::feedback::sweep(s.store.as_ref(), &cfg, now)
            .await
            .unwrap(),
        6
    );
    let ignored = s
        .call(Method::GET, "/v1/touches?contact=old&status=ignored", None)
        .await;
    assert_eq!(ignored.body["touches"].as_array().unwrap().len(), 6);
    // Only the one sent since counts: no back-off, no sunset, one touch in the stats.
    let view = s.call(Method::GET, "/v1/contacts/old", None).await;
    assert_eq!(
        view.body["relationship"]["ignored_in_a_row"], 1,
        "{}",
        view.body
    );
    assert_eq!(view.body["relationship"]["sunset"], false);
    let stats = s.call(Method::GET, "/v1/stats", None).await;
    assert_eq!(stats.body["rows"][0]["sent"], 1, "{}", stats.body);
    assert_eq!(stats.body["rows"][0]["occasion"], "birthday");
}
