//! Caps with on_throttle = defer: a capped touch waits for the exact instant a place
//! frees up (fitted into its send window), and a lower touch leaves a birthday another
//! worker has claimed its place.

use chrono::Duration;
use rapport::dispatch::BatchReport;

use crate::{
    backends::TestStore,
    ledger::Backend,
    rig::{assert_held, assert_sent, at, date, rig, stamp, tid, year},
};

const CAP_1_PER_7D: [(&str, &str); 3] = [
    (
        "RAPPORT__TIERS__FRIEND__CAPS",
        r#"[{count = 1, per = "7d"}]"#,
    ),
    ("RAPPORT__TIERS__FRIEND__MIN_GAP", "0s"),
    ("RAPPORT__OCCASIONS__THANK_YOU__EXPIRES", "10d"),
];

pub(crate) async fn capped_touch_waits_exactly_for_its_place<S: TestStore>(b: Backend) {
    let rig = rig::<S>(b, &CAP_1_PER_7D).await;
    rig.contact("fa", "friend", "UTC", Some(date(1))).await;
    assert_eq!(rig.plan("birthday", at(1, "00:00")).await, 1);
    rig.purchase("fa", "order-2", at(1, "06:00"), at(1, "06:00"))
        .await;
    let birthday = tid("birthday", "fa", &year(1));
    let thank_you = tid("thank_you", "fa", "order-2");
    assert_eq!(rig.touch(&thank_you).await.scheduled_at, at(1, "09:00"));

    // Both due in one job: the birthday goes first, the thank-you waits 7 days.
    let r = rig.step(at(1, "09:00")).await;
    assert_eq!((r.claimed, r.sent, r.deferred), (2, 1, 1), "{r:?}");
    assert_sent(&rig.touch(&birthday).await, at(1, "09:00"));
    let t = rig.touch(&thank_you).await;
    assert_held(&t, at(8, "09:00"));
    assert_eq!(
        t.reason.as_deref(),
        Some(
            format!(
                "held until {}: tier friend cap 1 per 7d reached",
                stamp(at(8, "09:00"))
            )
            .as_str()
        )
    );

    assert_eq!(rig.step(at(8, "08:59")).await, BatchReport::default());
    assert_eq!(rig.step(at(8, "09:00")).await.sent, 1);
    assert_sent(&rig.touch(&thank_you).await, at(8, "09:00"));
    assert_eq!(
        rig.sent(),
        vec![(birthday, at(1, "09:00")), (thank_you, at(8, "09:00"))]
    );
}

pub(crate) async fn capped_touch_waits_for_its_place_inside_its_window<S: TestStore>(b: Backend) {
    let mut env = CAP_1_PER_7D.to_vec();
    env.push(("RAPPORT__OCCASIONS__BIRTHDAY__SEND_WINDOW", "06:00-18:00"));
    let rig = rig::<S>(b, &env).await;
    rig.contact("ga", "friend", "UTC", Some(date(1))).await;
    assert_eq!(rig.plan("birthday", at(1, "00:00")).await, 1);
    rig.purchase("ga", "order-3", at(1, "05:00"), at(1, "05:00"))
        .await;
    let birthday = tid("birthday", "ga", &year(1));
    let thank_you = tid("thank_you", "ga", "order-3");

    assert_eq!(rig.step(at(1, "06:00")).await.sent, 1);
    assert_sent(&rig.touch(&birthday).await, at(1, "06:00"));
    let r = rig.step(at(1, "09:00")).await;
    assert_eq!((r.sent, r.deferred), (0, 1), "{r:?}");
    // The cap frees a place at 06:00 a week later; the thank-you's window opens at 09:00.
    assert_held(&rig.touch(&thank_you).await, at(8, "09:00"));
    assert_eq!(rig.step(at(8, "09:00")).await.sent, 1);
    assert_eq!(
        rig.sent(),
        vec![(birthday, at(1, "06:00")), (thank_you, at(8, "09:00"))]
    );
}

/// Another worker has claimed the birthday (it is `sending`, its place not reserved yet:
/// slow, or about to crash): the thank-you must still leave it its place.
pub(crate) async fn claimed_birthday_keeps_its_place_from_a_lower_touch<S: TestStore>(b: Backend) {
    let rig = rig::<S>(b, &CAP_1_PER_7D).await;
    rig.contact("mo", "friend", "UTC", Some(date(1))).await;
    assert_eq!(rig.plan("birthday", at(1, "00:00")).await, 1);
    rig.purchase("mo", "order-5", at(1, "06:00"), at(1, "06:00"))
        .await;
    let birthday = tid("birthday", "mo", &year(1));
    let thank_you = tid("thank_you", "mo", "order-5");

    let now = at(1, "09:00");
    rig.clock.set(now);
    let other = rig
        .store
        .claim(
            std::slice::from_ref(&birthday),
            "another-worker",
            now,
            now + Duration::minutes(2),
        )
        .await
        .unwrap();
    assert_eq!(other.touches.len(), 1);
    let r = rig.dispatch(std::slice::from_ref(&thank_you)).await;
    assert_eq!(
        (r.sent, r.deferred),
        (0, 1),
        "the thank-you must yield: {r:?}"
    );
    let t = rig.touch(&thank_you).await;
    assert!(
        t.reason
            .as_deref()
            .is_some_and(|r| r.starts_with("held until ") && r.contains("yields to birthday")),
        "{t:?}"
    );

    // The other worker never finished: its lease lapses, the reconciler hands the
    // birthday on, and it goes out.
    rig.clock.set(at(1, "09:03"));
    let r = rig.dispatch(std::slice::from_ref(&birthday)).await;
    assert_eq!(r.sent, 1, "{r:?}");
    assert_sent(&rig.touch(&birthday).await, at(1, "09:03"));
    assert_eq!(rig.sent(), vec![(birthday, at(1, "09:03"))]);
}
