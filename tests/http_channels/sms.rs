//! SMS over the Twilio Messages API: the request's shape, how each answer is
//! classified, and what is refused before anything is sent.

use super::*;

fn sms() -> OutboundSms {
    OutboundSms {
        touch: touch(),
        to: PhoneNumber::parse(PHONE).unwrap(),
        body: TEXT.into(),
    }
}

fn twilio_settings(base_url: String) -> TwilioSettings {
    TwilioSettings {
        base_url,
        account_sid: SID.into(),
        auth_token: TOKEN.into(),
        sender: SmsSender::From("+15550001111".into()),
        status_callback: Some(CALLBACK.into()),
        timeout: Duration::from_secs(5),
        allow_private: true,
    }
}

fn twilio(stub: &HttpStub) -> Twilio {
    Twilio::new(twilio_settings(stub.url())).unwrap()
}

/// A Twilio error body, with text that must not leak into reasons.
fn twilio_error(status: u16, code: u32) -> Reply {
    let body = format!(
        r#"{{"code":{code},"message":"{SERVER_TEXT} for {PHONE}","more_info":"https://www.twilio.com/docs/errors/{code}","status":{status}}}"#
    );
    Reply::json(status, body)
}

#[tokio::test]
async fn sms_request_has_twilio_shape_auth_and_callback() {
    let stub = HttpStub::always(Reply::json(201, r#"{"sid":"SM1","status":"queued"}"#)).await;
    twilio(&stub).send(&sms()).await.expect("201 is success");

    let reqs = stub.requests();
    assert_eq!(reqs.len(), 1);
    let req = &reqs[0];
    assert_eq!(req.method, "POST");
    assert_eq!(
        req.path(),
        format!("/2010-04-01/Accounts/{SID}/Messages.json")
    );
    assert_eq!(
        req.header("content-type"),
        Some("application/x-www-form-urlencoded")
    );
    let auth = req.header("authorization").expect("basic auth");
    let encoded = auth.strip_prefix("Basic ").expect("Basic scheme");
    let decoded = String::from_utf8(STANDARD.decode(encoded).unwrap()).unwrap();
    assert_eq!(decoded, format!("{SID}:{TOKEN}"));

    assert_eq!(req.form_value("To").as_deref(), Some(PHONE));
    assert_eq!(req.form_value("From").as_deref(), Some("+15550001111"));
    assert_eq!(req.form_value("MessagingServiceSid"), None);
    assert_eq!(req.form_value("Body").as_deref(), Some(TEXT));
    let callback = req.form_value("StatusCallback").expect("status callback");
    let callback = url::Url::parse(&callback).unwrap();
    assert_eq!(callback.as_str().split('?').next(), Some(CALLBACK));
    let pairs: Vec<(String, String)> = callback.query_pairs().into_owned().collect();
    assert_eq!(pairs, [("touch".to_owned(), touch().token())]);
}

#[tokio::test]
async fn sms_from_a_messaging_service_without_callback() {
    let stub = HttpStub::always(Reply::json(200, "{}")).await;
    let mut settings = twilio_settings(stub.url());
    settings.sender = SmsSender::MessagingService("MG0123".into());
    settings.status_callback = None;
    Twilio::new(settings).unwrap().send(&sms()).await.unwrap();

    let req = &stub.requests()[0];
    assert_eq!(
        req.form_value("MessagingServiceSid").as_deref(),
        Some("MG0123")
    );
    assert_eq!(req.form_value("From"), None);
    assert_eq!(req.form_value("StatusCallback"), None);
    let fields: Vec<String> = req.form().into_iter().map(|(n, _)| n).collect();
    assert_eq!(fields, ["To", "MessagingServiceSid", "Body"]);
}

#[tokio::test]
async fn sms_refusals_are_classified_once_and_not_retried() {
    let secs = |s| Some(Duration::from_secs(s));
    let cases = [
        (twilio_error(400, 21610), DeliveryClass::OptedOut, None),
        (twilio_error(400, 21211), DeliveryClass::Permanent, None),
        (
            twilio_error(429, 20429).header("Retry-After", "7"),
            DeliveryClass::Transient,
            secs(7),
        ),
        (twilio_error(500, 20500), DeliveryClass::Transient, None),
        (
            Reply::status(503)
                .header("retry-after", "30")
                .body(SERVER_TEXT),
            DeliveryClass::Transient,
            secs(30),
        ),
        (twilio_error(401, 20003), DeliveryClass::Transient, None),
        // A gateway error may come after the message was created: resent once at most.
        (
            Reply::status(502).body(SERVER_TEXT),
            DeliveryClass::Uncertain,
            None,
        ),
        (
            Reply::status(504).body(SERVER_TEXT),
            DeliveryClass::Uncertain,
            None,
        ),
    ];
    for (reply, class, retry_after) in cases {
        let status = reply.status;
        let stub = HttpStub::always(reply).await;
        let err = twilio(&stub).send(&sms()).await.expect_err("a refusal");
        assert_eq!(
            (err.class, err.retry_after),
            (class, retry_after),
            "{status}: {err}"
        );
        assert_safe(&err);
        assert_eq!(
            stub.count(),
            1,
            "{status}: the channel itself never retries"
        );
    }
    let stub = HttpStub::always(twilio_error(400, 21211)).await;
    let err = twilio(&stub).send(&sms()).await.unwrap_err();
    assert_eq!(err.reason, "twilio 400 code 21211");
    let stub = HttpStub::always(twilio_error(400, 21610)).await;
    let err = twilio(&stub).send(&sms()).await.unwrap_err();
    assert_eq!(err.reason, "twilio 21610 (recipient opted out)");
    let stub = HttpStub::always(twilio_error(401, 20003)).await;
    let err = twilio(&stub).send(&sms()).await.unwrap_err();
    assert!(err.reason.contains("auth token"), "{err}");
}

#[tokio::test]
async fn sms_timeout_after_sending_is_uncertain() {
    let stub = HttpStub::always(Reply::json(201, "{}").after(Duration::from_secs(3))).await;
    let mut settings = twilio_settings(stub.url());
    settings.timeout = Duration::from_millis(400);
    let err = Twilio::new(settings)
        .unwrap()
        .send(&sms())
        .await
        .unwrap_err();
    assert_eq!(err.class, DeliveryClass::Uncertain, "{err}");
    assert_eq!(stub.count(), 1, "the request did reach the server");
    assert_safe(&err);
}

#[tokio::test]
async fn sms_connection_refused_is_transient() {
    // A port that was just free: nothing listens, so nothing can have been sent.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let t = Twilio::new(twilio_settings(format!("http://127.0.0.1:{port}"))).unwrap();
    let err = t.send(&sms()).await.unwrap_err();
    assert_eq!(err.class, DeliveryClass::Transient, "{err}");
    assert_safe(&err);
}

#[tokio::test]
async fn sms_to_an_internal_address_is_refused_before_sending() {
    let stub = HttpStub::always(Reply::json(201, "{}")).await;
    let mut literal = twilio_settings(stub.url());
    literal.allow_private = false;
    let err = Twilio::new(literal)
        .expect_err("a loopback literal")
        .to_string();
    assert!(err.contains("loopback"), "{err}");

    let mut named = twilio_settings(format!("http://localhost:{}", stub.addr().port()));
    named.allow_private = false;
    let err = Twilio::new(named).unwrap().send(&sms()).await.unwrap_err();
    assert_eq!(err.class, DeliveryClass::Permanent, "{err}");
    assert!(err.reason.contains("refused"), "{err}");
    assert_eq!(stub.count(), 0);
}
