//! Mapping between rows and domain types.

use chrono::{DateTime, Utc};
use sqlx::{Row, SqliteConnection, sqlite::SqliteRow};

use crate::{
    domain::{Contact, NewTouch, Touch},
    store::{
        ContactUpsert, StoreError,
        fields::{self, Fields, corrupt},
    },
};

use super::q;

/// Upserts a group of contacts in two statements (row-at-a-time statements cost a trip to
/// SQLite's thread each). Rows apply in order, so the last row for an id wins.
pub(super) async fn upsert_contacts(
    tx: &mut SqliteConnection,
    rows: &[ContactUpsert],
    now: i64,
    pepper: &[u8],
) -> Result<(), StoreError> {
    let json: Vec<serde_json::Value> = rows
        .iter()
        .map(|r| {
            let mut record = crate::store::fields::contact_record(&r.contact);
            record["consent"] = serde_json::json!(r.email_consent);
            record["sms"] = serde_json::json!(r.sms_consent);
            let (email, phone) = crate::store::relationships::address_hashes(pepper, &r.contact);
            record["keep_tier"] = serde_json::json!(r.keep_tier);
            record["email_hash"] = serde_json::json!(email);
            record["phone_hash"] = serde_json::json!(phone);
            record
        })
        .collect();
    let json = serde_json::Value::Array(json).to_string();
    sqlx::query(
        "INSERT INTO contacts (id, first_name, last_name, email, phone, timezone, locale, birthday, \
         birthday_md, customer_since, since_md, tier, attributes, email_consent, created_at, updated_at, \
         last_interaction_at) \
         SELECT value ->> 'id', value ->> 'first_name', value ->> 'last_name', value ->> 'email', \
         value ->> 'phone', value ->> 'timezone', value ->> 'locale', value ->> 'birthday', \
         value ->> 'birthday_md', value ->> 'customer_since', value ->> 'since_md', \
         COALESCE(CASE WHEN value ->> 'keep_tier' THEN (SELECT tier FROM contacts c WHERE c.id = value ->> 'id') END, \
         value ->> 'tier'), \
         value ->> 'attributes', 1, ?2, ?2, ?2 FROM json_each(?1) WHERE true \
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
    for (column, field) in [("email_consent", "consent"), ("sms_consent", "sms")] {
        // Both names come from the literal pairs above, never from input.
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE contacts SET {column} = j.v FROM \
             (SELECT value ->> 'id' AS id, value ->> '{field}' AS v, MAX(key) \
              FROM json_each(?1) WHERE value ->> '{field}' IS NOT NULL GROUP BY value ->> 'id') AS j \
             WHERE contacts.id = j.id"
        )))
        .bind(&json)
        .execute(&mut *tx)
        .await
        .map_err(q)?;
    }
    // An address on the suppression list (a complaint, a hard bounce, an erasure) gets
    // no consent back, whatever the import says.
    for (column, field) in [
        ("email_consent", "email_hash"),
        ("sms_consent", "phone_hash"),
    ] {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE contacts SET {column} = 0 WHERE id IN \
             (SELECT value ->> 'id' FROM json_each(?1) \
              WHERE value ->> '{field}' IN (SELECT hash FROM suppressions))"
        )))
        .bind(&json)
        .execute(&mut *tx)
        .await
        .map_err(q)?;
    }
    Ok(())
}

/// Insert-if-absent for a group of touches, in one statement. Returns the ids that were new.
pub(super) async fn insert_touches(
    tx: &mut SqliteConnection,
    touches: &[NewTouch],
    now: DateTime<Utc>,
) -> Result<std::collections::HashSet<String>, StoreError> {
    let rows: Vec<serde_json::Value> = touches.iter().map(fields::touch_record).collect();
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

/// A row read by column name.
impl Fields for SqliteRow {
    fn text(&self, name: &str) -> Result<Option<String>, StoreError> {
        self.try_get::<Option<String>, _>(name)
            .map_err(|e| corrupt(name, e))
    }
    fn int(&self, name: &str) -> Result<Option<i64>, StoreError> {
        self.try_get::<Option<i64>, _>(name)
            .map_err(|e| corrupt(name, e))
    }
}

pub(super) fn contact(row: &SqliteRow) -> Result<Contact, StoreError> {
    fields::contact(row)
}

pub(super) fn touch(row: &SqliteRow) -> Result<Touch, StoreError> {
    fields::touch(row)
}
