//! Responses through the API, and what the relationship learns from them: attribution
//! to a touch (named, or the last one sent on the channel), once per id, negative
//! signals acting at once, promotion once, the silent ones becoming `ignored` until the
//! contact is sunset, touches and statistics, erasure, batches, idempotency keys.

use crate::support::backends::TestStore;
use chrono::{DateTime, Duration, Utc};
use rapport::domain::Channel;
use rapport::domain::{ContactId, NewTouch, TouchId, TouchStatus};
use reqwest::Method;
use serde_json::{Value, json};

use crate::harness::{Backend, Server, TOKEN, assert_error, server};

/// A contact: acquaintance, reachable by email and SMS.
async fn contact<S: TestStore>(s: &Server<S>, id: &str) {
    let body = json!({"first_name": "Ada", "email": format!("{id}@example.com"),
        "phone": "+14155550199", "tier": "acquaintance", "timezone": "UTC",
        "email_consent": true, "sms_consent": true});
    let put = s
        .call(Method::PUT, &format!("/v1/contacts/{id}"), Some(body))
        .await;
    assert!(put.status.is_success(), "{}", put.body);
}

/// A touch of `occasion` for `contact`, sent on `channel` at `at`.
async fn sent<S: TestStore>(
    s: &Server<S>,
    contact: &str,
    occasion: &str,
    n: u32,
    channel: &str,
    at: DateTime<Utc>,
) -> TouchId {
    let occurrence = n.to_string();
    crate::support::sent::sent(
        s.store.as_ref(),
        contact,
        occasion,
        &occurrence,
        channel,
        at,
    )
    .await
}

async fn respond<S: TestStore>(s: &Server<S>, body: Value) -> crate::harness::Reply {
    s.call(Method::POST, "/v1/responses", Some(body)).await
}

fn effects(reply: &crate::harness::Reply) -> Vec<String> {
    reply.body["response"]["effects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e.as_str().unwrap().to_owned())
        .collect()
}

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

pub(crate) async fn delete_erases_and_a_reimport_is_not_marketed<S: TestStore>(b: Backend) {
    let s = server::<S>(b).await;
    contact(&s, "gone").await;
    let now = Utc::now();
    sent(&s, "gone", "birthday", 1, "email", now - Duration::days(1)).await;
    respond(
        &s,
        json!({"kind": "reply", "contact": "gone", "channel": "email"}),
    )
    .await;
    let event = json!({"contact": "gone", "type": "purchase", "id": "o-1"});
    assert_eq!(
        s.call(Method::POST, "/v1/events", Some(event)).await.status,
        201
    );

    assert_eq!(s.status_of(Method::DELETE, "/v1/contacts/gone").await, 204);
    assert_error(
        &s.call(Method::GET, "/v1/contacts/gone", None).await,
        404,
        "not_found",
        None,
    );
    assert_error(
        &s.call(Method::DELETE, "/v1/contacts/gone", None).await,
        404,
        "not_found",
        None,
    );
    let touches = s.call(Method::GET, "/v1/touches?contact=gone", None).await;
    assert_error(&touches, 404, "not_found", None);

    // The same address under a new id, consent given: no consent, so no marketing.
    let body = json!({"email": "GONE@example.com", "tier": "family", "email_consent": true});
    let put = s.call(Method::PUT, "/v1/contacts/back", Some(body)).await;
    assert_eq!(put.status, 201, "{}", put.body);
    assert_eq!(put.body["email_consent"], false, "{}", put.body);
    let cfg = s.cfg();
    let back = s.contact("back").await.unwrap();
    assert_eq!(
        rapport::policy::unreachable(&cfg.rules, &back, Channel::Email),
        Some("no email consent")
    );
}

pub(crate) async fn touches_list_filters_and_refuses_bad_queries<S: TestStore>(b: Backend) {
    let s = server::<S>(b).await;
    contact(&s, "t1").await;
    let now = Utc::now();
    sent(&s, "t1", "birthday", 1, "email", now - Duration::days(1)).await;
    let all = s.call(Method::GET, "/v1/touches?contact=t1", None).await;
    assert_eq!(all.status, 200, "{}", all.body);
    assert_eq!(all.body["touches"][0]["status"], "sent");
    let none = s
        .call(Method::GET, "/v1/touches?contact=t1&status=failed", None)
        .await;
    assert_eq!(none.body["touches"], json!([]));
    assert_error(
        &s.call(Method::GET, "/v1/touches", None).await,
        422,
        "missing_field",
        Some("contact"),
    );
    assert_error(
        &s.call(Method::GET, "/v1/touches?contact=t1&status=lost", None)
            .await,
        422,
        "invalid_field",
        Some("status"),
    );
    assert_error(
        &s.call(Method::GET, "/v1/touches?contact=zz", None).await,
        404,
        "not_found",
        None,
    );
    assert_error(
        &s.call(Method::GET, "/v1/touches?contact=t1&page=2", None)
            .await,
        400,
        "bad_query",
        None,
    );
    let r = s
        .raw(Method::GET, "/v1/stats", None, None, Vec::new())
        .await;
    assert_error(&r, 401, "unauthorized", None);
}

pub(crate) async fn a_batch_answers_each_line<S: TestStore>(b: Backend) {
    let s = server::<S>(b).await;
    contact(&s, "old").await;
    let lines = [
        json!({"id": "n1", "email": "n1@example.com", "tier": "friend"}).to_string(),
        String::new(),
        json!({"id": "n2", "birthday": "1990-02-30"}).to_string(),
        "{not json".to_owned(),
        json!({"id": "old", "first_name": "Changed"}).to_string(),
        json!({"email": "noid@example.com"}).to_string(),
        json!({"id": "n1", "first_name": "Twice"}).to_string(),
    ];
    let body = lines.join("\n").into_bytes();
    let auth = format!("Bearer {TOKEN}");
    let r = s
        .raw(
            Method::POST,
            "/v1/contacts:batch",
            Some(&auth),
            Some("application/x-ndjson"),
            body.clone(),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        (
            r.body["created"].as_u64(),
            r.body["updated"].as_u64(),
            r.body["failed"].as_u64()
        ),
        (Some(1), Some(2), Some(3)),
        "{}",
        r.body
    );
    let results = r.body["results"].as_array().unwrap();
    let by_line: Vec<(u64, String)> = results
        .iter()
        .map(|v| {
            let outcome = v["result"].as_str().map(str::to_owned).unwrap_or_else(|| {
                format!(
                    "{}:{}",
                    v["error"]["code"].as_str().unwrap(),
                    v["error"]["field"].as_str().unwrap_or("")
                )
            });
            (v["line"].as_u64().unwrap(), outcome)
        })
        .collect();
    assert_eq!(
        by_line,
        [
            (1, "created".to_owned()),
            (3, "invalid_field:birthday".to_owned()),
            (4, "malformed_json:".to_owned()),
            (5, "updated".to_owned()),
            (6, "missing_field:id".to_owned()),
            (7, "updated".to_owned()),
        ]
    );
    assert_eq!(
        s.contact("old").await.unwrap().first_name.as_deref(),
        Some("Changed")
    );
    assert_eq!(
        s.contact("n1").await.unwrap().first_name.as_deref(),
        Some("Twice")
    );
    assert!(s.contact("n2").await.is_none());
    let wrong = s
        .raw(
            Method::POST,
            "/v1/contacts:batch",
            Some(&auth),
            Some("application/json"),
            body,
        )
        .await;
    assert_error(&wrong, 415, "unsupported_media_type", None);
}

pub(crate) async fn idempotency_keys_replay_refuse_and_forgive<S: TestStore>(b: Backend) {
    let s = server::<S>(b).await;
    contact(&s, "idem").await;
    let auth = format!("Bearer {TOKEN}");
    let post = |key: Option<&'static str>, body: Value| {
        let mut req = s
            .http
            .post(format!("{}/v1/events", s.base))
            .header("authorization", auth.clone())
            .header("content-type", "application/json")
            .body(body.to_string());
        if let Some(k) = key {
            req = req.header("idempotency-key", k);
        }
        async move {
            let res = req.send().await.unwrap();
            let replayed = res.headers().get("idempotent-replayed").is_some();
            (
                res.status().as_u16(),
                replayed,
                res.json::<Value>().await.unwrap(),
            )
        }
    };
    let event = json!({"contact": "idem", "type": "purchase", "id": "o-1"});
    let (status, replayed, first) = post(Some("key-1"), event.clone()).await;
    assert_eq!((status, replayed), (201, false), "{first}");
    let (status, replayed, again) = post(Some("key-1"), event.clone()).await;
    assert_eq!(
        (status, replayed),
        (201, true),
        "the original answer, replayed"
    );
    assert_eq!(again, first);
    // Without a key the same event is a repeat (200), not a replay.
    let (status, _, _) = post(None, event.clone()).await;
    assert_eq!(status, 200);
    // The key with another body.
    let other = json!({"contact": "idem", "type": "purchase", "id": "o-2"});
    let (status, _, body) = post(Some("key-1"), other.clone()).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["code"], "idempotency_key_reused");
    assert_eq!(body["error"]["field"], "Idempotency-Key");
    // A refused request does not keep its key: fixed, it goes through.
    let bad = json!({"contact": "nobody", "type": "purchase", "id": "o-3"});
    let (status, _, _) = post(Some("key-2"), bad).await;
    assert_eq!(status, 422);
    let fixed = json!({"contact": "idem", "type": "purchase", "id": "o-3"});
    let (status, replayed, _) = post(Some("key-2"), fixed).await;
    assert_eq!((status, replayed), (201, false));
    // Keys on responses too: a retried response is recorded once.
    let response = json!({"kind": "positive", "contact": "idem", "channel": "email"});
    let r1 = s
        .http
        .post(format!("{}/v1/responses", s.base))
        .header("authorization", auth.clone())
        .header("content-type", "application/json")
        .header("idempotency-key", "resp-1")
        .body(response.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r1.status(), 201);
    let r1: Value = r1.json().await.unwrap();
    let r2 = s
        .http
        .post(format!("{}/v1/responses", s.base))
        .header("authorization", auth.clone())
        .header("content-type", "application/json")
        .header("idempotency-key", "resp-1")
        .body(response.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r2.status(), 201);
    assert_eq!(r2.json::<Value>().await.unwrap(), r1);
    let kept = s
        .store
        .responses_for_contact(&ContactId::parse("idem").unwrap())
        .await
        .unwrap();
    assert_eq!(kept.len(), 1);
    // Keys that are not keys.
    for key in ["", "a key with spaces", &"k".repeat(256)] {
        let res = s
            .http
            .post(format!("{}/v1/events", s.base))
            .header("authorization", auth.clone())
            .header("content-type", "application/json")
            .header("idempotency-key", key)
            .body(event.to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 400, "{key:?}");
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["error"]["code"], "invalid_idempotency_key");
    }
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
