//! Responses through the API, and what the relationship learns from them: attribution
//! to a touch (named, or the last one sent on the channel), once per id, promotion once,
//! negative signals acting at once, and bad ones refused naming the field.

use crate::support::backends::TestStore;
use chrono::{Duration, Utc};
use rapport::domain::Channel;
use rapport::domain::{ContactId, NewTouch, TouchId, TouchStatus};
use reqwest::Method;
use serde_json::{Value, json};

use crate::harness::{Backend, assert_error, server};
use crate::history::{contact, effects, respond, sent};

pub(crate) async fn responses_are_attributed_recorded_once_and_promote_once<S: TestStore>(
    b: Backend,
) {
    let s = server::<S>(b).await;
    contact(&s, "ada").await;
    let now = Utc::now();
    let email1 = sent(&s, "ada", "birthday", 1, "email", now - Duration::days(20)).await;
    let email2 = sent(&s, "ada", "check_in", 2, "email", now - Duration::days(10)).await;
    let sms = sent(&s, "ada", "thank_you", 3, "sms", now - Duration::days(5)).await;

    // By touch id.
    let r = respond(
        &s,
        json!({"kind": "reply", "touch_id": email1.as_str(), "id": "m-1"}),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.body["new"], true);
    assert_eq!(r.body["response"]["touch_id"], email1.as_str());
    assert_eq!(r.body["response"]["contact"], "ada");
    assert_eq!(r.body["response"]["channel"], "email");
    let first = r.body.clone();
    // The same id again: the first answer, nothing learned twice.
    let again = respond(
        &s,
        json!({"kind": "reply", "touch_id": email1.as_str(), "id": "m-1"}),
    )
    .await;
    assert_eq!(again.status, 200, "{}", again.body);
    assert_eq!(again.body["new"], false);
    assert_eq!(again.body["response"], first["response"]);

    // By contact and channel: the most recent touch sent on that channel.
    let r = respond(
        &s,
        json!({"kind": "click", "contact": "ada", "channel": "email"}),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.body["response"]["touch_id"], email2.as_str());
    let r = respond(
        &s,
        json!({"kind": "reply", "contact": "ada", "channel": "sms"}),
    )
    .await;
    assert_eq!(r.body["response"]["touch_id"], sms.as_str());
    // The third engaged response in 60 days promotes the acquaintance, with the reason.
    let moved = effects(&r);
    assert_eq!(moved.len(), 1, "{moved:?}");
    assert!(
        moved[0].starts_with("moved from acquaintance to friend"),
        "{moved:?}"
    );
    assert_eq!(s.contact("ada").await.unwrap().tier, "friend");
    // More replies do not move anyone again.
    for i in 0..4 {
        let r = respond(
            &s,
            json!({"kind": "reply", "contact": "ada", "channel": "sms", "id": format!("x{i}")}),
        )
        .await;
        assert_eq!(r.status, 201);
        assert!(effects(&r).is_empty(), "{}", r.body);
    }
    assert_eq!(s.contact("ada").await.unwrap().tier, "friend");

    let touches = s.call(Method::GET, "/v1/touches?contact=ada", None).await;
    assert_eq!(touches.status, 200, "{}", touches.body);
    let responded: Vec<_> = touches.body["touches"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| !t["responded_at"].is_null())
        .map(|t| t["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(responded.len(), 3, "{}", touches.body);

    let view = s.call(Method::GET, "/v1/contacts/ada", None).await;
    assert_eq!(view.status, 200);
    let summary: Vec<String> =
        serde_json::from_value(view.body["relationship"]["summary"].clone()).unwrap();
    let text = summary.join("\n");
    // Two of the three touches answered were emails; the four later SMS replies
    // answered a touch already credited.
    assert!(text.contains("prefers email (2 of 3 responses)"), "{text}");
    assert!(text.contains("friend since"), "{text}");
    let timeline = view.body["timeline"].as_array().unwrap();
    assert!(
        timeline
            .iter()
            .any(|e| e["kind"] == "response" && e["response"] == "click")
    );
    assert!(
        timeline.iter().any(|e| e["kind"] == "note"
            && e["text"]
                .as_str()
                .unwrap()
                .starts_with("moved from acquaintance to friend")),
        "{timeline:?}"
    );

    // Statistics: three touches answered, per tier, channel and occasion.
    let stats = s.call(Method::GET, "/v1/stats", None).await;
    assert_eq!(stats.status, 200, "{}", stats.body);
    let rows = stats.body["rows"].as_array().unwrap();
    let sent_total: u64 = rows.iter().map(|r| r["sent"].as_u64().unwrap()).sum();
    let responded_total: u64 = rows.iter().map(|r| r["responded"].as_u64().unwrap()).sum();
    assert_eq!((sent_total, responded_total), (3, 3), "{rows:?}");
    let sms_row = rows.iter().find(|r| r["channel"] == "sms").unwrap();
    assert_eq!(sms_row["tier"], "acquaintance");
    assert_eq!(sms_row["occasion"], "thank_you");
    assert_eq!(sms_row["response_rate"], 1.0);
}

pub(crate) async fn negative_responses_act_at_once_and_survive_a_reimport<S: TestStore>(
    b: Backend,
) {
    let s = server::<S>(b).await;
    contact(&s, "neg").await;
    let now = Utc::now();
    sent(&s, "neg", "birthday", 1, "sms", now - Duration::days(1)).await;
    let r = respond(
        &s,
        json!({"kind": "unsubscribe", "contact": "neg", "channel": "sms"}),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(effects(&r), ["consent withdrawn on SMS"]);
    let c = s.contact("neg").await.unwrap();
    assert!(c.email_consent && !c.sms_consent);

    let r = respond(
        &s,
        json!({"kind": "complaint", "contact": "neg", "channel": "email"}),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert!(
        effects(&r)[0].starts_with("suppressed: complaint on email"),
        "{}",
        r.body
    );
    let c = s.contact("neg").await.unwrap();
    assert!(!c.email_consent && !c.sms_consent);
    // The import says yes again; the suppression list says no.
    contact(&s, "neg").await;
    let c = s.contact("neg").await.unwrap();
    assert!(!c.email_consent && !c.sms_consent, "{c:?}");
    let stats = s.call(Method::GET, "/v1/stats", None).await;
    let opt_outs: u64 = stats.body["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["opt_outs"].as_u64().unwrap())
        .sum();
    assert_eq!(opt_outs, 2, "{}", stats.body);
}

pub(crate) async fn bad_responses_are_refused_naming_the_field<S: TestStore>(b: Backend) {
    let s = server::<S>(b).await;
    contact(&s, "c1").await;
    contact(&s, "c2").await;
    let now = Utc::now();
    let touch = sent(&s, "c1", "birthday", 1, "email", now - Duration::hours(1)).await;
    let cases: Vec<(Value, u16, &str, &str)> = vec![
        (
            json!({"touch_id": touch.as_str()}),
            422,
            "missing_field",
            "kind",
        ),
        (
            json!({"kind": "love", "touch_id": touch.as_str()}),
            422,
            "invalid_field",
            "kind",
        ),
        (
            json!({"kind": 3, "touch_id": touch.as_str()}),
            422,
            "wrong_type",
            "kind",
        ),
        (json!({"kind": "reply"}), 422, "missing_field", "contact"),
        (
            json!({"kind": "reply", "contact": "c1"}),
            422,
            "missing_field",
            "channel",
        ),
        (
            json!({"kind": "reply", "contact": "c1", "channel": "pigeon"}),
            422,
            "invalid_field",
            "channel",
        ),
        (
            json!({"kind": "reply", "touch_id": "birthday:c1:1999"}),
            422,
            "unknown_touch",
            "touch_id",
        ),
        (
            json!({"kind": "reply", "contact": "nobody", "channel": "email"}),
            422,
            "unknown_contact",
            "contact",
        ),
        (
            json!({"kind": "reply", "touch_id": touch.as_str(), "contact": "c2"}),
            422,
            "invalid_field",
            "contact",
        ),
        (
            json!({"kind": "reply", "touch_id": touch.as_str(), "channel": "sms"}),
            422,
            "invalid_field",
            "channel",
        ),
        (
            json!({"kind": "reply", "touch_id": touch.as_str(), "at": "yesterday"}),
            422,
            "invalid_field",
            "at",
        ),
        (
            json!({"kind": "reply", "touch_id": touch.as_str(), "at": "2999-01-01T00:00:00Z"}),
            422,
            "invalid_field",
            "at",
        ),
        (
            json!({"kind": "reply", "touch_id": touch.as_str(), "mood": "good"}),
            422,
            "unknown_field",
            "mood",
        ),
        (
            json!({"kind": "reply", "touch_id": touch.as_str(), "id": ""}),
            422,
            "invalid_field",
            "id",
        ),
    ];
    for (body, status, code, field) in cases {
        let r = respond(&s, body.clone()).await;
        assert_error(&r, status, code, Some(field));
    }
    // A touch not sent yet has nothing to answer.
    let c1 = ContactId::parse("c1").unwrap();
    let planned = NewTouch {
        id: TouchId::derive("check_in", &c1, "9"),
        occasion: "check_in".into(),
        contact_id: c1,
        occurrence: "9".into(),
        channel: Channel::Email,
        priority: 10,
        scheduled_at: now + Duration::days(3),
        due: now + Duration::days(3),
        expires_at: now + Duration::days(4),
        status: TouchStatus::Planned,
        reason: None,
    };
    s.store
        .plan_touches(std::slice::from_ref(&planned), 10, now)
        .await
        .unwrap();
    let r = respond(
        &s,
        json!({"kind": "reply", "touch_id": planned.id.as_str()}),
    )
    .await;
    assert_error(&r, 409, "touch_not_sent", Some("touch_id"));
    // Nothing was recorded by any of them.
    assert!(
        s.store
            .responses_for_contact(&ContactId::parse("c1").unwrap())
            .await
            .unwrap()
            .is_empty()
    );
}
