//! A purchase resets the check-in clock: no check-in until the period has run again from
//! it, and a planned check-in it overtakes is skipped, not sent.

use rapport::domain::Touch;

use crate::{
    backends::TestStore,
    ledger::Backend,
    rig::{assert_sent, assert_skipped, at, rig, short, tid},
};

const CHECK_IN_30D: [(&str, &str); 1] = [("RAPPORT__TIERS__FRIEND__CHECK_IN_EVERY", "30d")];

pub(crate) async fn purchase_resets_the_check_in_clock<S: TestStore>(b: Backend) {
    let rig = rig::<S>(b, &CHECK_IN_30D).await;
    rig.contact("cy", "friend", "UTC", None).await;
    rig.contact("di", "friend", "UTC", None).await;
    rig.purchase("cy", "order-7", at(0, "07:00"), at(0, "07:00"))
        .await;

    assert_eq!(rig.plan("check_in", at(0, "08:00")).await, 1);
    let occasions = |ts: Vec<Touch>| ts.into_iter().map(|t| t.occasion).collect::<Vec<_>>();
    assert_eq!(occasions(rig.ledger("cy").await), ["thank_you"]);
    assert_eq!(occasions(rig.ledger("di").await), ["check_in"]);
    // Still not due a day short of 30 days after the purchase; due once they are over.
    // (`di`, never checked in with, is due again in every new period.)
    rig.plan("check_in", at(29, "08:00")).await;
    assert_eq!(occasions(rig.ledger("cy").await), ["thank_you"]);
    rig.plan("check_in", at(30, "08:00")).await;
    let cy = rig.ledger("cy").await;
    assert_eq!(occasions(cy.clone()), ["thank_you", "check_in"]);
    assert_eq!(cy[1].scheduled_at, at(30, "09:00"));
}

pub(crate) async fn check_in_overtaken_by_a_purchase_is_not_sent<S: TestStore>(b: Backend) {
    let rig = rig::<S>(b, &CHECK_IN_30D).await;
    rig.contact("ed", "friend", "UTC", None).await;
    assert_eq!(rig.plan("check_in", at(0, "08:00")).await, 1);
    let check_in = rig.ledger("ed").await.remove(0);
    assert_eq!(
        (check_in.occasion.as_str(), check_in.scheduled_at),
        ("check_in", at(0, "09:00"))
    );
    rig.purchase("ed", "order-9", at(0, "08:30"), at(0, "08:30"))
        .await;

    let r = rig.step(at(0, "09:00")).await;
    assert_eq!((r.sent, r.skipped), (0, 1), "{r:?}");
    assert_skipped(
        &rig.touch(&check_in.id).await,
        &format!(
            "skipped: no longer due: last interaction {} is less than 30d ago",
            short(at(0, "08:30"))
        ),
    );
    // The thank-you is not held back by a check-in that never went out.
    assert_eq!(rig.step(at(0, "10:30")).await.sent, 1);
    let thank_you = tid("thank_you", "ed", "order-9");
    assert_sent(&rig.touch(&thank_you).await, at(0, "10:30"));
    assert_eq!(rig.sent(), vec![(thank_you, at(0, "10:30"))]);
}

/// A purchase just before a planned check-in: the check-in (skipped) and the thank-you
/// (sent) are decided in one job.
pub(crate) async fn check_in_and_thank_you_due_together<S: TestStore>(b: Backend) {
    let rig = rig::<S>(b, &CHECK_IN_30D).await;
    rig.contact("ni", "friend", "UTC", None).await;
    assert_eq!(rig.plan("check_in", at(0, "08:00")).await, 1);
    let check_in = rig.ledger("ni").await.remove(0).id;
    rig.purchase("ni", "order-6", at(0, "06:30"), at(0, "08:45"))
        .await;
    let thank_you = tid("thank_you", "ni", "order-6");
    assert_eq!(rig.touch(&thank_you).await.scheduled_at, at(0, "09:00"));

    let r = rig.step(at(0, "09:00")).await;
    assert_eq!((r.claimed, r.sent, r.skipped), (2, 1, 1), "{r:?}");
    assert_sent(&rig.touch(&thank_you).await, at(0, "09:00"));
    assert_skipped(&rig.touch(&check_in).await, "skipped: no longer due: ");
    assert_eq!(rig.sent(), vec![(thank_you, at(0, "09:00"))]);
}
