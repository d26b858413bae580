//! A check-in yields to the touches ahead of it: due the day before a birthday it is
//! skipped, or held past the birthday and its gap; and it yields to two touches that
//! together need the week's places, not just to each one.

use chrono::Datelike;
use rapport::dispatch::BatchReport;

use crate::{
    backends::TestStore,
    ledger::Backend,
    rig::{assert_held, assert_sent, assert_skipped, at, date, rig, short, tid, year},
};

/// The friend tier with a gap and loose caps: the gap decides.
const GAP_2D: [(&str, &str); 3] = [
    (
        "RAPPORT__TIERS__FRIEND__CAPS",
        r#"[{count = 5, per = "7d"}]"#,
    ),
    ("RAPPORT__TIERS__FRIEND__MIN_GAP", "2d"),
    ("RAPPORT__TIERS__FRIEND__CHECK_IN_EVERY", "30d"),
];

pub(crate) async fn check_in_before_a_birthday_is_skipped<S: TestStore>(b: Backend) {
    let rig = rig::<S>(b, &GAP_2D).await;
    rig.contact("ada", "friend", "UTC", Some(date(1))).await;
    assert_eq!(rig.plan("birthday", at(0, "08:00")).await, 0, "not today");
    assert_eq!(rig.plan("check_in", at(0, "08:00")).await, 1);
    let check_in = rig.ledger("ada").await.remove(0);
    assert_eq!(check_in.occasion, "check_in");
    assert_eq!(check_in.scheduled_at, at(0, "09:00"));

    let r = rig.step(at(0, "09:00")).await;
    assert_eq!((r.sent, r.skipped), (0, 1), "{r:?}");
    let t = rig.touch(&check_in.id).await;
    assert_skipped(
        &t,
        &format!(
            "skipped: yields to birthday (priority 100) due {} (min_gap 2d)",
            short(at(1, "09:00"))
        ),
    );

    assert_eq!(rig.plan("birthday", at(1, "00:00")).await, 1);
    let r = rig.step(at(1, "09:00")).await;
    assert_eq!(r.sent, 1, "{r:?}");
    let birthday = tid("birthday", "ada", &year(1));
    assert_sent(&rig.touch(&birthday).await, at(1, "09:00"));
    assert_eq!(rig.sent(), vec![(birthday, at(1, "09:00"))]);
    assert_eq!(rig.touch(&check_in.id).await, t, "a skip is final");
}

pub(crate) async fn deferred_check_in_waits_for_the_birthday_and_its_gap<S: TestStore>(b: Backend) {
    let mut env = GAP_2D.to_vec();
    env.extend([
        ("RAPPORT__OCCASIONS__CHECK_IN__ON_THROTTLE", "defer"),
        ("RAPPORT__OCCASIONS__CHECK_IN__EXPIRES", "5d"),
    ]);
    let rig = rig::<S>(b, &env).await;
    rig.contact("ada", "friend", "UTC", Some(date(1))).await;
    assert_eq!(rig.plan("check_in", at(0, "08:00")).await, 1);
    let check_in = rig.ledger("ada").await.remove(0).id;

    let r = rig.step(at(0, "09:00")).await;
    assert_eq!((r.sent, r.deferred), (0, 1), "{r:?}");
    // The birthday's place is kept free, and the gap after it.
    let t = rig.touch(&check_in).await;
    assert_held(&t, at(3, "09:00"));
    assert!(
        t.reason.as_deref().unwrap().ends_with(&format!(
            "yields to birthday (priority 100) due {} (min_gap 2d)",
            short(at(1, "09:00"))
        )),
        "{t:?}"
    );

    assert_eq!(rig.plan("birthday", at(1, "00:00")).await, 1);
    let r = rig.step(at(1, "09:00")).await;
    assert_eq!(r.sent, 1, "only the birthday is due: {r:?}");
    let birthday = tid("birthday", "ada", &year(1));
    assert_sent(&rig.touch(&birthday).await, at(1, "09:00"));
    assert_eq!(rig.step(at(3, "08:59")).await, BatchReport::default());

    // Its time comes, but the birthday was an interaction: a check-in is no longer due.
    let r = rig.step(at(3, "09:00")).await;
    assert_eq!((r.sent, r.skipped), (0, 1), "{r:?}");
    assert_skipped(
        &rig.touch(&check_in).await,
        &format!(
            "skipped: no longer due: last interaction {} is less than 30d ago",
            short(at(1, "09:00"))
        ),
    );
    assert_eq!(rig.sent(), vec![(birthday, at(1, "09:00"))]);
}

/// Two places a week, no gap: the caps decide.
const CAP_2_PER_7D: [(&str, &str); 3] = [
    (
        "RAPPORT__TIERS__FRIEND__CAPS",
        r#"[{count = 2, per = "7d"}]"#,
    ),
    ("RAPPORT__TIERS__FRIEND__MIN_GAP", "0s"),
    ("RAPPORT__TIERS__FRIEND__CHECK_IN_EVERY", "30d"),
];

pub(crate) async fn check_in_yields_to_every_touch_ahead_not_just_each_one<S: TestStore>(
    b: Backend,
) {
    let rig = rig::<S>(b, &CAP_2_PER_7D).await;
    // Birthday and anniversary both tomorrow: together they need both places this week.
    let since = date(1).with_year(date(1).year() - 4).unwrap();
    rig.contact_since("lu", "friend", "UTC", Some(date(1)), Some(since))
        .await;
    assert_eq!(rig.plan("check_in", at(0, "08:00")).await, 1);
    let check_in = rig.ledger("lu").await.remove(0).id;
    let r = rig.step(at(0, "09:00")).await;
    assert_eq!((r.sent, r.skipped), (0, 1), "{r:?}");
    assert_skipped(&rig.touch(&check_in).await, "skipped: yields to ");

    assert_eq!(rig.plan("birthday", at(1, "00:00")).await, 1);
    assert_eq!(rig.plan("anniversary", at(1, "00:00")).await, 1);
    let r = rig.step(at(1, "09:00")).await;
    assert_eq!(r.sent, 2, "{r:?}");
    let birthday = tid("birthday", "lu", &year(1));
    let anniversary = tid("anniversary", "lu", &year(1));
    assert_sent(&rig.touch(&birthday).await, at(1, "09:00"));
    assert_sent(&rig.touch(&anniversary).await, at(1, "09:00"));
    assert_eq!(rig.sent().len(), 2, "{:?}", rig.sent());
}
