//! Decoding stored records into domain types, shared by every backend: a backend only
//! says how to read one named field ([`Fields`]); what the fields mean lives here once.

use crate::domain::Channel;
use std::collections::HashMap;

use chrono::{DateTime, Utc};

use super::StoreError;
use crate::domain::{
    Birthday, Contact, ContactId, EmailAddress, PhoneNumber, Touch, TouchId,
    contact::{parse_date, parse_timezone},
};

pub(crate) fn corrupt(what: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("{what}: {e}"))
}

/// One stored record (a row, a hash) read field by field.
pub(crate) trait Fields {
    fn text(&self, name: &str) -> Result<Option<String>, StoreError>;
    fn int(&self, name: &str) -> Result<Option<i64>, StoreError>;

    fn required_text(&self, name: &str) -> Result<String, StoreError> {
        self.text(name)?.ok_or_else(|| corrupt(name, "missing"))
    }
    fn required_int(&self, name: &str) -> Result<i64, StoreError> {
        self.int(name)?.ok_or_else(|| corrupt(name, "missing"))
    }
    fn instant(&self, name: &str) -> Result<Option<DateTime<Utc>>, StoreError> {
        self.int(name)?
            .map(|s| DateTime::from_timestamp(s, 0).ok_or_else(|| corrupt(name, "out of range")))
            .transpose()
    }
    fn required_instant(&self, name: &str) -> Result<DateTime<Utc>, StoreError> {
        self.instant(name)?.ok_or_else(|| corrupt(name, "missing"))
    }
    fn parsed<T, E>(
        &self,
        name: &str,
        parse: impl FnOnce(&str) -> Result<T, E>,
    ) -> Result<Option<T>, StoreError> {
        // Not the parser's message: it may quote the stored value (a birthday), and
        // store errors end up in the log.
        self.text(name)?
            .map(|s| parse(&s).map_err(|_| corrupt(name, "not a valid value")))
            .transpose()
    }
}

/// A Redis hash as `HGETALL` returns it: absent fields are `None`.
impl Fields for HashMap<String, String> {
    fn text(&self, name: &str) -> Result<Option<String>, StoreError> {
        Ok(self.get(name).cloned())
    }
    fn int(&self, name: &str) -> Result<Option<i64>, StoreError> {
        self.get(name)
            .map(|s| s.parse::<i64>().map_err(|e| corrupt(name, e)))
            .transpose()
    }
}

pub(crate) fn contact(r: &impl Fields) -> Result<Contact, StoreError> {
    let attributes = match r.text("attributes")? {
        None => serde_json::Map::new(),
        Some(s) => match serde_json::from_str(&s).map_err(|e| corrupt("attributes", e))? {
            serde_json::Value::Object(m) => m,
            _ => return Err(corrupt("attributes", "not an object")),
        },
    };
    Ok(Contact {
        id: ContactId::parse(&r.required_text("id")?).map_err(|e| corrupt("id", e))?,
        first_name: r.text("first_name")?,
        last_name: r.text("last_name")?,
        email: r.parsed("email", EmailAddress::parse)?,
        phone: r.parsed("phone", PhoneNumber::parse)?,
        timezone: r.parsed("timezone", parse_timezone)?,
        locale: r.text("locale")?,
        birthday: r.parsed("birthday", Birthday::parse)?,
        customer_since: r.parsed("customer_since", parse_date)?,
        tier: r.required_text("tier")?,
        attributes,
        email_consent: r.int("email_consent")?.unwrap_or(1) != 0,
        sms_consent: r.int("sms_consent")?.unwrap_or(1) != 0,
    })
}

pub(crate) fn touch(r: &impl Fields) -> Result<Touch, StoreError> {
    let reason = r.text("reason")?;
    let tried = match r.text("tried")? {
        Some(list) if list.is_empty() => Vec::new(),
        Some(list) => list
            .split(',')
            .map(|c| c.parse().map_err(|e| corrupt("tried", e)))
            .collect::<Result<_, _>>()?,
        None => legacy_tried(reason.as_deref()),
    };
    Ok(Touch {
        id: TouchId::from_stored(r.required_text("id")?),
        occasion: r.required_text("occasion")?,
        contact_id: ContactId::parse(&r.required_text("contact_id")?)
            .map_err(|e| corrupt("contact_id", e))?,
        occurrence: r.required_text("occurrence")?,
        channel: r
            .parsed("channel", str::parse::<Channel>)?
            .ok_or_else(|| corrupt("channel", "missing"))?,
        tried,
        priority: r.required_int("priority")? as u32,
        status: r
            .required_text("status")?
            .parse()
            .map_err(|e: crate::domain::UnknownStatus| corrupt("status", e))?,
        scheduled_at: r.required_instant("scheduled_at")?,
        next_attempt_at: r.required_instant("next_attempt_at")?,
        expires_at: r.required_instant("expires_at")?,
        attempts: r.required_int("attempts")? as u32,
        reason,
        created_at: r.required_instant("created_at")?,
        updated_at: r.required_instant("updated_at")?,
        sent_at: r.instant("sent_at")?,
        slot_at: r.instant("slot_at")?,
        uncertain: r.int("uncertain")?.unwrap_or(0) as u32,
        responded_at: r.instant("responded_at")?,
    })
}

/// The channels a touch recorded before `tried` was stored had moved away from, read
/// from the hops in its reason (`"email: why; trying sms; sms: why; trying webhook"`:
/// email and sms). Only rows written by an older rapport have no `tried`.
fn legacy_tried(reason: Option<&str>) -> Vec<Channel> {
    let Some(reason) = reason.filter(|r| r.contains("; trying ")) else {
        return Vec::new();
    };
    reason
        .split("; ")
        .filter(|seg| !seg.starts_with("trying "))
        .filter_map(|seg| seg.split_once(": ").map(|(ch, _)| ch))
        .filter_map(|ch| ch.parse().ok())
        .collect()
}

/// A contact as the flat record both backends store (the SQLite row, the Redis hash):
/// `None` for an empty field. Consent is not here: a write keeps the stored one unless
/// the caller states it.
pub(crate) fn contact_record(c: &Contact) -> serde_json::Value {
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
    })
}

/// A new touch as the flat record both backends insert.
pub(crate) fn touch_record(t: &crate::domain::NewTouch) -> serde_json::Value {
    serde_json::json!({
        "id": t.id.as_str(), "occasion": t.occasion, "contact_id": t.contact_id.as_str(),
        "occurrence": t.occurrence, "channel": t.channel, "priority": t.priority,
        "status": t.status.as_str(), "scheduled_at": t.scheduled_at.timestamp(),
        "expires_at": t.expires_at.timestamp(), "reason": t.reason,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_touch_stored_before_tried_was_takes_its_channels_from_its_reason() {
        assert_eq!(
            legacy_tried(Some(
                "email: smtp 550; trying sms; sms: no SMS consent; trying webhook"
            )),
            [Channel::Email, Channel::Sms]
        );
        // A reason that is not a move names no channel left.
        assert!(legacy_tried(Some("held until 2026-07-14: outside the send window")).is_empty());
        assert!(legacy_tried(None).is_empty());
    }
}
