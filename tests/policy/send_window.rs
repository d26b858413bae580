//! The send window, in the contact's own zone: a touch due outside it is held until it
//! opens there.

use rapport::domain::Channel;

use chrono::{Duration, NaiveDate, TimeZone, Utc};
use chrono_tz::Tz;
use rapport::{
    dispatch::BatchReport,
    domain::{Event, EventId, NewTouch, TouchStatus},
};

use crate::{
    backends::TestStore,
    ledger::Backend,
    rig::{assert_held, at, cid, date, rig, tid},
};

pub(crate) async fn touch_outside_the_window_waits_for_it_in_the_contacts_zone<S: TestStore>(
    b: Backend,
) {
    let rig = rig::<S>(b, &[]).await;
    rig.contact("hi", "friend", "Asia/Tokyo", None).await;
    rig.contact("jo", "friend", "America/Los_Angeles", None)
        .await;
    // Due at 10:00 UTC: 19:00 in Tokyo (closed since 18:00), 02:00 or 03:00 in Los
    // Angeles (not open yet). A touch planned for a window that has since changed, or
    // a job that ran late, arrives like this.
    let now = at(0, "10:00");
    for c in ["hi", "jo"] {
        let event = Event {
            contact_id: cid(c),
            id: EventId::parse("late").unwrap(),
            kind: "purchase".into(),
            at: now - Duration::hours(2),
            data: serde_json::Map::new(),
        };
        assert!(rig.store.add_event(&event, now).await.unwrap());
    }
    let touches: Vec<NewTouch> = ["hi", "jo"]
        .iter()
        .map(|c| NewTouch {
            id: tid("thank_you", c, "late"),
            occasion: "thank_you".into(),
            contact_id: cid(c),
            occurrence: "late".into(),
            channel: Channel::Email,
            priority: 80,
            scheduled_at: now,
            due: now,
            expires_at: now + Duration::days(3),
            status: TouchStatus::Planned,
            reason: None,
        })
        .collect();
    assert_eq!(
        rig.store
            .plan_touches(&touches, 10, now)
            .await
            .unwrap()
            .len(),
        2
    );

    let r = rig.step(now).await;
    assert_eq!((r.sent, r.deferred), (0, 2), "{r:?}");
    assert!(rig.sent().is_empty());
    let nine = |zone: Tz, day: NaiveDate| {
        zone.from_local_datetime(&day.and_hms_opt(9, 0, 0).unwrap())
            .unwrap()
            .with_timezone(&Utc)
    };
    let tokyo = nine(chrono_tz::Asia::Tokyo, date(1));
    let la = nine(chrono_tz::America::Los_Angeles, date(0));
    assert_eq!(tokyo, at(1, "00:00"));
    assert!(la > now && la < at(0, "18:00"), "{la}");
    for (c, until) in [("hi", tokyo), ("jo", la)] {
        let t = rig.touch(&tid("thank_you", c, "late")).await;
        assert_held(&t, until);
        assert!(
            t.reason
                .as_deref()
                .unwrap()
                .ends_with(": outside the send window"),
            "{t:?}"
        );
    }

    // Los Angeles opens first (16:00 or 17:00 UTC), then Tokyo (00:00 UTC next day).
    assert_eq!(
        rig.step(la - Duration::seconds(2)).await,
        BatchReport::default()
    );
    assert_eq!(rig.step(la).await.sent, 1);
    assert_eq!(rig.step(tokyo).await.sent, 1);
    assert_eq!(
        rig.sent(),
        vec![
            (tid("thank_you", "jo", "late"), la),
            (tid("thank_you", "hi", "late"), tokyo)
        ]
    );
}
