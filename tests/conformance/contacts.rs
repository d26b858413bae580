//! Contacts: round trips, replacement, consent, and the month-day lookups.

use std::sync::Arc;

use chrono::NaiveDate;
use rapport::{
    config::DateField,
    domain::{Birthday, Contact, EmailAddress, MonthDay, PhoneNumber},
    render::sample_contact,
    store::ContactUpsert,
};
use serde_json::json;

use crate::{Backend, fixtures::cid};

fn md(month: u32, day: u32) -> MonthDay {
    MonthDay::new(month, day).unwrap()
}

fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap()
}

/// Every field set, a birthday with its year, nested attributes.
fn full(id: &str) -> Contact {
    let mut c = sample_contact("gold");
    c.id = cid(id);
    c.phone = Some(PhoneNumber::parse("+44 7700 900123").unwrap());
    c.attributes.insert(
        "nested".into(),
        json!({ "list": [1, 2.5, null, true], "text": "Zoë \"quoted\"" }),
    );
    c
}

/// Only what is required, and a birthday without a year (Feb 29 at that).
fn sparse(id: &str, consent: bool) -> Contact {
    Contact {
        id: cid(id),
        first_name: None,
        last_name: None,
        email: None,
        phone: None,
        timezone: None,
        locale: None,
        birthday: Some(Birthday {
            day: md(2, 29),
            year: None,
        }),
        customer_since: None,
        tier: "bronze".into(),
        attributes: serde_json::Map::new(),
        email_consent: consent,
        sms_consent: true,
    }
}

fn row(contact: &Contact, email_consent: Option<bool>) -> ContactUpsert {
    ContactUpsert {
        contact: contact.clone(),
        email_consent,
        sms_consent: None,
        keep_tier: false,
    }
}

/// `contact` with its birthday on `day` (year kept) and customer since `since`.
fn on(id: &str, day: Option<MonthDay>, since: Option<NaiveDate>) -> Contact {
    Contact {
        birthday: day.map(|day| Birthday {
            day,
            year: Some(1992), // a leap year, so Feb 29 is a real birthday
        }),
        customer_since: since,
        ..full(id)
    }
}

pub(crate) async fn contacts_round_trip<S: Backend>(store: Arc<S>) {
    let ada = full("ada");
    let bob = sparse("bob", false);
    assert_eq!(store.count_contacts().await.unwrap(), 0);
    store
        .upsert_contacts(&[row(&ada, None), row(&bob, Some(false))])
        .await
        .unwrap();

    // No consent given for a new contact means the default: consenting.
    assert!(ada.email_consent);
    assert_eq!(store.get_contact(&ada.id).await.unwrap(), Some(ada.clone()));
    let got = store.get_contact(&bob.id).await.unwrap();
    assert_eq!(got, Some(bob.clone()));
    assert_eq!(got.and_then(|b| b.birthday).map(|b| b.year), Some(None));
    assert_eq!(store.get_contact(&cid("nobody")).await.unwrap(), None);
    assert_eq!(store.count_contacts().await.unwrap(), 2);

    let found = store
        .get_contacts(&[cid("bob"), cid("nobody"), cid("ada"), cid("bob")])
        .await
        .unwrap();
    assert_eq!(found.len(), 2, "{:?}", found.keys());
    assert_eq!(found.get(&ada.id), Some(&ada));
    assert_eq!(found.get(&bob.id), Some(&bob));
    assert!(store.get_contacts(&[]).await.unwrap().is_empty());
}

pub(crate) async fn upsert_replaces_and_keeps_opt_outs<S: Backend>(store: Arc<S>) {
    let ada = full("ada");
    store
        .upsert_contacts(&[row(&ada, Some(false))])
        .await
        .unwrap();

    // Every field is replaced, cleared ones included; consent is kept when not given.
    let mut attributes = serde_json::Map::new();
    attributes.insert("plan".into(), json!("pro"));
    let moved = Contact {
        id: ada.id.clone(),
        first_name: Some("Augusta".into()),
        last_name: None,
        email: Some(EmailAddress::parse("augusta@example.org").unwrap()),
        phone: None,
        timezone: Some(chrono_tz::America::New_York),
        locale: Some("fr-CA".into()),
        birthday: Some(Birthday {
            day: md(12, 10),
            year: None,
        }),
        customer_since: Some(date(2021, 1, 31)),
        tier: "silver".into(),
        attributes,
        email_consent: false,
        sms_consent: true,
    };
    store.upsert_contacts(&[row(&moved, None)]).await.unwrap();
    assert_eq!(
        store.get_contact(&ada.id).await.unwrap(),
        Some(moved.clone())
    );

    // An explicit yes re-subscribes; a later silent re-import keeps it.
    let yes = Contact {
        email_consent: true,
        sms_consent: true,
        ..moved.clone()
    };
    store
        .upsert_contacts(&[row(&yes, Some(true))])
        .await
        .unwrap();
    assert_eq!(store.get_contact(&ada.id).await.unwrap(), Some(yes.clone()));
    store.upsert_contacts(&[row(&yes, None)]).await.unwrap();
    assert_eq!(store.get_contact(&ada.id).await.unwrap(), Some(yes));

    // Within one batch the last row for an id wins.
    let first = sparse("cat", true);
    let second = Contact {
        tier: "gold".into(),
        email_consent: false,
        sms_consent: true,
        ..sparse("cat", false)
    };
    store
        .upsert_contacts(&[row(&first, None), row(&second, Some(false))])
        .await
        .unwrap();
    assert_eq!(store.get_contact(&first.id).await.unwrap(), Some(second));
    assert_eq!(store.count_contacts().await.unwrap(), 2);
}

pub(crate) async fn contacts_on_matches_month_days<S: Backend>(store: Arc<S>) {
    let contacts = [
        on("a-jul14", Some(md(7, 14)), Some(date(2020, 7, 15))),
        Contact {
            birthday: Some(Birthday {
                day: md(7, 14),
                year: None,
            }),
            ..on("b-jul14-noyear", None, None)
        },
        on("c-jul15", Some(md(7, 15)), Some(date(2019, 7, 14))),
        on("d-feb29", Some(md(2, 29)), Some(date(2024, 2, 29))),
        on("e-none", None, None),
        on("f-moves", Some(md(7, 14)), Some(date(2018, 7, 14))),
    ];
    let rows: Vec<_> = contacts.iter().map(|c| row(c, None)).collect();
    store.upsert_contacts(&rows).await.unwrap();
    // A re-import that moves a date moves the contact out of the old day's lookup.
    let moved = on("f-moves", Some(md(8, 1)), Some(date(2018, 8, 1)));
    store.upsert_contacts(&[row(&moved, None)]).await.unwrap();

    let ids = async |field, days: &[MonthDay]| {
        let found = store.contacts_on(field, days).await.unwrap();
        let mut ids: Vec<String> = found.iter().map(|c| c.id.to_string()).collect();
        ids.sort();
        (ids, found)
    };
    let (got, found) = ids(DateField::Birthday, &[md(7, 14)]).await;
    assert_eq!(got, ["a-jul14", "b-jul14-noyear"]);
    // Whole contacts come back, not just ids.
    assert!(found.contains(&contacts[0]) && found.contains(&contacts[1]));
    let (got, _) = ids(DateField::Birthday, &[md(7, 14), md(2, 29), md(3, 3)]).await;
    assert_eq!(got, ["a-jul14", "b-jul14-noyear", "d-feb29"]);
    let (got, _) = ids(DateField::Birthday, &[md(8, 1)]).await;
    assert_eq!(got, ["f-moves"]);
    let (got, _) = ids(DateField::Birthday, &[]).await;
    assert!(got.is_empty());

    let (got, found) = ids(DateField::CustomerSince, &[md(7, 14)]).await;
    assert_eq!(got, ["c-jul15"]);
    assert_eq!(found, [contacts[2].clone()]);
    let (got, _) = ids(DateField::CustomerSince, &[md(7, 15), md(2, 29), md(8, 1)]).await;
    assert_eq!(got, ["a-jul14", "d-feb29", "f-moves"]);
}

pub(crate) async fn contacts_on_pages_through_a_day_in_id_order<S: Backend>(store: Arc<S>) {
    let mut rows = Vec::new();
    for i in 0..25 {
        rows.push(row(&on(&format!("p{i:02}"), Some(md(7, 14)), None), None));
    }
    rows.push(row(&on("other-day", Some(md(7, 15)), None), None));
    store.upsert_contacts(&rows).await.unwrap();
    let mut seen = Vec::new();
    let mut after: Option<rapport::domain::ContactId> = None;
    loop {
        let page = store
            .contacts_on_page(DateField::Birthday, md(7, 14), after.as_ref(), 10)
            .await
            .unwrap();
        assert!(page.len() <= 10, "a page holds at most `limit` contacts");
        let Some(last) = page.last() else { break };
        after = Some(last.id.clone());
        seen.extend(page.iter().map(|c| c.id.to_string()));
    }
    let expected: Vec<String> = (0..25).map(|i| format!("p{i:02}")).collect();
    assert_eq!(seen, expected, "every contact once, in id order");
}
