//! The tier's channels: a touch on a channel its contact's tier does not allow is
//! skipped, not sent.

use rapport::dispatch::BatchReport;

use crate::{
    backends::TestStore,
    ledger::Backend,
    rig::{assert_skipped, at, rig, tid},
};

pub(crate) async fn channel_the_tier_does_not_allow_is_skipped<S: TestStore>(b: Backend) {
    let rig = rig::<S>(b, &[("RAPPORT__TIERS__FRIEND__CHANNELS", r#"["sms"]"#)]).await;
    rig.contact("ka", "friend", "UTC", None).await;
    rig.purchase("ka", "order-4", at(0, "10:00"), at(0, "10:00"))
        .await;
    let r = rig.step(at(0, "12:00")).await;
    assert_eq!((r.sent, r.skipped), (0, 1), "{r:?}");
    assert_skipped(
        &rig.touch(&tid("thank_you", "ka", "order-4")).await,
        "skipped: tier friend does not allow channel email",
    );
    assert!(rig.sent().is_empty());
    assert_eq!(rig.step(at(1, "12:00")).await, BatchReport::default());
}
