//! Mapping between rows and domain types.

use chrono::{DateTime, Utc};
use sqlx::{Row, SqliteConnection, sqlite::SqliteRow};

use crate::{
    domain::{
        Birthday, Contact, ContactId, EmailAddress, NewTouch, PhoneNumber, Touch, TouchId,
        contact::{parse_date, parse_timezone},
    },
    store::{ContactUpsert, StoreError},
};

use super::q;

/// Upserts a group of contacts in two statements (row-at-a-time statements cost a trip to
/// SQLite's thread each). Rows apply in order, so the last row for an id wins.
pub(super) async fn upsert_contacts(
    tx: &mut SqliteConnection,
    rows: &[ContactUpsert],
    now: i64,
) -> Result<(), StoreError> {
    let json: Vec<serde_json::Value> = rows
        .iter()
        .map(|r| {
            let c = &r.contact;
            serde_json::json!({
                "id": c.id.as_str(), "first_name": c.first_name, "last_name": c.last_name,
                "email": c.email.as_ref().map(EmailAddress::as_str),
                "phone": c.phone.as_ref().map(PhoneNumber::as_str),
                "timezone": c.timezone.map(|t| t.name()), "locale": c.locale,
                "birthday": c.birthday.map(|b| b.to_field()),
                "birthday_md": c.birthday.map(|b| b.day.key()),
                "customer_since": c.customer_since.map(|d| d.to_string()),
                "since_md": c.customer_since.map(|d| crate::domain::MonthDay::of(d).key()),
                "tier": c.tier,
                "attributes": serde_json::Value::Object(c.attributes.clone()).to_string(),
                "consent": r.email_consent,
            })
        })
        .collect();
    let json = serde_json::Value::Array(json).to_string();
    sqlx::query(
        "INSERT INTO contacts (id, first_name, last_name, email, phone, timezone, locale, birthday, \
         birthday_md, customer_since, since_md, tier, attributes, email_consent, created_at, updated_at) \
         SELECT value ->> 'id', value ->> 'first_name', value ->> 'last_name', value ->> 'email', \
         value ->> 'phone', value ->> 'timezone', value ->> 'locale', value ->> 'birthday', \
         value ->> 'birthday_md', value ->> 'customer_since', value ->> 'since_md', value ->> 'tier', \
         value ->> 'attributes', 1, ?2, ?2 FROM json_each(?1) WHERE true \
         ON CONFLICT(id) DO UPDATE SET first_name = excluded.first_name, last_name = excluded.last_name, \
         email = excluded.email, phone = excluded.phone, timezone = excluded.timezone, \
         locale = excluded.locale, birthday = excluded.birthday, birthday_md = excluded.birthday_md, \
         customer_since = excluded.customer_since, since_md = excluded.since_md, tier = excluded.tier, \
         attributes = excluded.attributes, updated_at = excluded.updated_at",
    )
    .bind(&json)
    .bind(now)
    .execute(&mut *tx)
    .await
    .map_err(q)?;
    // Consent only where a row states it (the last statement per id wins); a row that
    // says nothing keeps what the store knows.
    sqlx::query(
        "UPDATE contacts SET email_consent = j.consent FROM \
         (SELECT value ->> 'id' AS id, value ->> 'consent' AS consent, MAX(key) \
          FROM json_each(?1) WHERE value ->> 'consent' IS NOT NULL GROUP BY value ->> 'id') AS j \
         WHERE contacts.id = j.id",
    )
    .bind(&json)
    .execute(&mut *tx)
    .await
    .map_err(q)?;
    Ok(())
}

/// Insert-if-absent for a group of touches, in one statement. Returns the ids that were new.
pub(super) async fn insert_touches(
    tx: &mut SqliteConnection,
    touches: &[NewTouch],
    now: DateTime<Utc>,
) -> Result<std::collections::HashSet<String>, StoreError> {
    let rows: Vec<serde_json::Value> = touches
        .iter()
        .map(|t| {
            serde_json::json!({
                "id": t.id.as_str(), "occasion": t.occasion, "contact_id": t.contact_id.as_str(),
                "occurrence": t.occurrence, "channel": t.channel, "priority": t.priority,
                "status": t.status.as_str(), "scheduled_at": t.scheduled_at.timestamp(),
                "expires_at": t.expires_at.timestamp(), "reason": t.reason,
            })
        })
        .collect();
    // `WHERE true` keeps SQLite from reading ON CONFLICT as part of the SELECT's join.
    let inserted = sqlx::query(
        "INSERT INTO touches (id, occasion, contact_id, occurrence, channel, priority, status, \
         scheduled_at, next_attempt_at, expires_at, attempts, reason, queued_at, created_at, updated_at) \
         SELECT value ->> 'id', value ->> 'occasion', value ->> 'contact_id', value ->> 'occurrence', \
         value ->> 'channel', value ->> 'priority', value ->> 'status', value ->> 'scheduled_at', \
         value ->> 'scheduled_at', value ->> 'expires_at', 0, value ->> 'reason', ?2, ?2, ?2 \
         FROM json_each(?1) WHERE true ON CONFLICT(id) DO NOTHING RETURNING id",
    )
    .bind(serde_json::Value::Array(rows).to_string())
    .bind(now.timestamp())
    .fetch_all(&mut *tx)
    .await
    .map_err(q)?;
    Ok(inserted.iter().map(|r| r.get::<String, _>("id")).collect())
}

fn corrupt(what: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("{what}: {e}"))
}

fn opt(row: &SqliteRow, col: &str) -> Result<Option<String>, StoreError> {
    row.try_get::<Option<String>, _>(col)
        .map_err(|e| corrupt(col, e))
}

pub(super) fn contact(row: &SqliteRow) -> Result<Contact, StoreError> {
    let id: String = row.try_get("id").map_err(|e| corrupt("id", e))?;
    let attributes: String = row
        .try_get("attributes")
        .map_err(|e| corrupt("attributes", e))?;
    let attributes =
        match serde_json::from_str(&attributes).map_err(|e| corrupt("attributes", e))? {
            serde_json::Value::Object(m) => m,
            _ => return Err(corrupt("attributes", "not an object")),
        };
    Ok(Contact {
        id: ContactId::parse(&id).map_err(|e| corrupt("id", e))?,
        first_name: opt(row, "first_name")?,
        last_name: opt(row, "last_name")?,
        email: opt(row, "email")?
            .map(|s| EmailAddress::parse(&s))
            .transpose()
            .map_err(|e| corrupt("email", e))?,
        phone: opt(row, "phone")?
            .map(|s| PhoneNumber::parse(&s))
            .transpose()
            .map_err(|e| corrupt("phone", e))?,
        timezone: opt(row, "timezone")?
            .map(|s| parse_timezone(&s))
            .transpose()
            .map_err(|e| corrupt("timezone", e))?,
        locale: opt(row, "locale")?,
        birthday: opt(row, "birthday")?
            .map(|s| Birthday::parse(&s))
            .transpose()
            .map_err(|e| corrupt("birthday", e))?,
        customer_since: opt(row, "customer_since")?
            .map(|s| parse_date(&s))
            .transpose()
            .map_err(|e| corrupt("customer_since", e))?,
        tier: row.try_get("tier").map_err(|e| corrupt("tier", e))?,
        attributes,
        email_consent: row
            .try_get::<i64, _>("email_consent")
            .map_err(|e| corrupt("email_consent", e))?
            != 0,
    })
}

fn ts(row: &SqliteRow, col: &str) -> Result<DateTime<Utc>, StoreError> {
    let s: i64 = row.try_get(col).map_err(|e| corrupt(col, e))?;
    DateTime::from_timestamp(s, 0).ok_or_else(|| corrupt(col, "out of range"))
}

pub(super) fn touch(row: &SqliteRow) -> Result<Touch, StoreError> {
    let get_s = |col: &str| row.try_get::<String, _>(col).map_err(|e| corrupt(col, e));
    let sent_at: Option<i64> = row.try_get("sent_at").map_err(|e| corrupt("sent_at", e))?;
    Ok(Touch {
        id: TouchId::from_stored(get_s("id")?),
        occasion: get_s("occasion")?,
        contact_id: ContactId::parse(&get_s("contact_id")?)
            .map_err(|e| corrupt("contact_id", e))?,
        occurrence: get_s("occurrence")?,
        channel: get_s("channel")?,
        priority: row
            .try_get::<i64, _>("priority")
            .map_err(|e| corrupt("priority", e))? as u32,
        status: get_s("status")?
            .parse()
            .map_err(|e: String| corrupt("status", e))?,
        scheduled_at: ts(row, "scheduled_at")?,
        next_attempt_at: ts(row, "next_attempt_at")?,
        expires_at: ts(row, "expires_at")?,
        attempts: row
            .try_get::<i64, _>("attempts")
            .map_err(|e| corrupt("attempts", e))? as u32,
        reason: opt(row, "reason")?,
        created_at: ts(row, "created_at")?,
        updated_at: ts(row, "updated_at")?,
        sent_at: sent_at.and_then(|s| DateTime::from_timestamp(s, 0)),
    })
}
