//! The data a template sees. Optional contact fields are left out when empty, so strict
//! mode turns a template that needs one into an error instead of a blank.

use chrono::{Datelike, NaiveDate};
use serde_json::{Map, Value, json};

use crate::domain::{Birthday, Contact, ContactId, EmailAddress, Event, EventId, MonthDay};

/// `{ contact, tier, occasion, brand, age?, years? }` for a touch in `year`.
pub fn context(contact: &Contact, occasion: &str, year: i32, brand: &str) -> Value {
    let mut c = Map::new();
    c.insert("id".into(), json!(contact.id.as_str()));
    let mut put = |k: &str, v: Option<String>| {
        if let Some(v) = v.filter(|v| !v.trim().is_empty()) {
            c.insert(k.into(), Value::String(v));
        }
    };
    put("first_name", contact.first_name.clone());
    put("last_name", contact.last_name.clone());
    let full = [contact.first_name.as_deref(), contact.last_name.as_deref()]
        .into_iter()
        .flatten()
        .filter(|s| !s.trim().is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    put("full_name", Some(full));
    put(
        "email",
        contact.email.as_ref().map(|e| e.as_str().to_owned()),
    );
    put(
        "phone",
        contact.phone.as_ref().map(|p| p.as_str().to_owned()),
    );
    put("timezone", contact.timezone.map(|t| t.name().to_owned()));
    put("locale", contact.locale.clone());
    put("birthday", contact.birthday.map(|b| b.to_field()));
    put(
        "customer_since",
        contact.customer_since.map(|d| d.to_string()),
    );
    c.insert("tier".into(), json!(contact.tier));
    c.insert(
        "attributes".into(),
        Value::Object(contact.attributes.clone()),
    );

    let mut root = Map::new();
    root.insert("contact".into(), Value::Object(c));
    root.insert("tier".into(), json!(contact.tier));
    root.insert("occasion".into(), json!(occasion));
    root.insert("brand".into(), json!({ "name": brand }));
    if let Some(y) = contact.birthday.and_then(|b| b.year) {
        root.insert("age".into(), json!(year - y));
    }
    if let Some(since) = contact.customer_since {
        root.insert("years".into(), json!(year - since.year()));
    }
    Value::Object(root)
}

/// Adds `event` (`{ id, type, at, data }`) for a touch an event triggered, so a
/// thank-you can say what it thanks for (`{{event.data.product}}`).
pub fn with_event(mut ctx: Value, event: &Event) -> Value {
    if let Value::Object(root) = &mut ctx {
        root.insert(
            "event".into(),
            json!({
                "id": event.id.as_str(), "type": event.kind, "at": event.at.to_rfc3339(),
                "data": Value::Object(event.data.clone()),
            }),
        );
    }
    ctx
}

/// An event of `kind` for `contact`, used by `rapport check` and `preview`.
pub fn sample_event(contact: &Contact, kind: &str) -> Event {
    let mut data = Map::new();
    data.insert("product".into(), json!("the blue teapot"));
    data.insert("total".into(), json!("42.00"));
    Event {
        contact_id: contact.id.clone(),
        id: EventId::parse("sample-1").expect("valid literal"),
        kind: kind.to_owned(),
        at: chrono::DateTime::from_timestamp(1_767_225_600, 0).unwrap_or_default(),
        data,
    }
}

/// A complete contact of `tier`, used by `rapport check` to render every template.
pub fn sample_contact(tier: &str) -> Contact {
    let mut attributes = Map::new();
    attributes.insert("favourite_product".into(), json!("the blue teapot"));
    Contact {
        id: ContactId::parse("sample").expect("valid literal"),
        first_name: Some("Ada".into()),
        last_name: Some("Lovelace".into()),
        email: EmailAddress::parse("ada@example.com").ok(),
        phone: None,
        timezone: Some(chrono_tz::Europe::London),
        locale: Some("en-GB".into()),
        birthday: Some(Birthday {
            day: MonthDay::new(12, 10).expect("valid literal"),
            year: Some(1985),
        }),
        customer_since: NaiveDate::from_ymd_opt(2019, 3, 1),
        tier: tier.to_owned(),
        attributes,
        email_consent: true,
        sms_consent: true,
    }
}
