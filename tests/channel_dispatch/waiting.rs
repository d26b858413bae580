//! How long a touch waits: a Retry-After from the SMS API or the webhook receiver is
//! honoured over the backoff, and a rate-limit place after the touch's expiry is not
//! waited for (the touch expires).

use chrono::Duration;
use rapport::domain::TouchStatus;

use crate::ledger::Backend;
use crate::rig::{at, date, stubbed, years_before};
use crate::support::{backends::TestStore, http_stub::Reply};

pub(crate) async fn retry_after_is_honoured<S: TestStore>(backend: Backend) {
    let (rig, _sms, _hook) = stubbed::<S>(
        backend,
        Reply::status(429).header("Retry-After", "90"),
        Reply::status(503).header("Retry-After", "120"),
        &[
            ("OCCASIONS__BIRTHDAY__CHANNELS", r#"["webhook"]"#),
            ("OCCASIONS__ANNIVERSARY__CHANNELS", r#"["sms"]"#),
        ],
    )
    .await;
    rig.contact("r1", 1, true, true).await;
    rig.plan("birthday", at(1, 0)).await;
    let now = at(1, 9);
    assert_eq!(rig.step(now).await.retried, 1);
    // The schedule says 5 s; the receiver asked for 120.
    let wait = rig.touch("r1", "birthday").await.next_attempt_at - now;
    assert_eq!(wait, Duration::seconds(120));

    rig.customer_since("r1", years_before(date(20), 2)).await;
    rig.plan("anniversary", at(20, 0)).await;
    // Within dispatch.max_age (6 h) of the planned time, so a retry is still possible.
    let now = at(20, 1);
    assert_eq!(rig.step(now).await.retried, 1);
    // Backoff would be 15 to 30 s; the API asked for 90.
    let wait = rig.touch("r1", "anniversary").await.next_attempt_at - now;
    assert_eq!(wait, Duration::seconds(90));
}

pub(crate) async fn a_rate_limit_place_after_expiry_is_not_waited_for<S: TestStore>(
    backend: Backend,
) {
    let (rig, sms, _hook) = stubbed::<S>(
        backend,
        Reply::status(201),
        Reply::status(200),
        &[
            ("OCCASIONS__BIRTHDAY__CHANNELS", r#"["sms"]"#),
            ("CHANNELS__SMS__RATE", "1/h"),
        ],
    )
    .await;
    rig.contact("a1", 1, true, true).await;
    rig.contact("a2", 1, true, true).await;
    rig.plan("birthday", at(1, 0)).await;
    // 23:30: one place now, the next an hour later, after the birthday's end.
    let report = tokio::time::timeout(
        std::time::Duration::from_secs(20),
        rig.step(at(1, 23) + Duration::minutes(30)),
    )
    .await
    .expect("a place past the expiry is not waited for");
    assert_eq!((report.sent, report.expired), (1, 1), "{report:?}");
    let late = rig
        .touches()
        .await
        .into_iter()
        .find(|t| t.status == TouchStatus::Expired)
        .unwrap();
    assert_eq!(
        late.reason.as_deref(),
        Some("the sms rate limit (1/1h) has no place before its expiry")
    );
    assert_eq!(sms.count(), 1);
}
