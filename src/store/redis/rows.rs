//! Mapping between what the scripts store and return and domain types.

use super::*;

/// A claimed touch as `claim.lua` returns it: id, its hash as read, its new attempt count.
pub(super) type ClaimedRow = (String, Vec<String>, u32);

/// An outcome as `record.lua` reads it: status, reason, next attempt ([`Outcome::counts`]
/// goes with it).
pub(super) fn outcome_args(o: &Outcome, now: DateTime<Utc>) -> (&'static str, &str, Option<i64>) {
    match o {
        Outcome::Fallback { reason, .. } => ("planned", reason, Some(ts(now))),
        Outcome::Sent { .. } => ("sent", "", None),
        Outcome::Failed { reason, .. } => ("failed", reason, None),
        Outcome::Suppressed { reason, .. } => ("suppressed", reason, None),
        Outcome::Expired { reason, .. } => ("expired", reason, None),
        Outcome::Skipped { reason, .. } => ("skipped", reason, None),
        Outcome::Retry { at, reason, .. } => ("planned", reason, Some(not_before(*at))),
        Outcome::Defer { at, reason, .. } => (
            "planned",
            reason.as_deref().unwrap_or(""),
            Some(not_before(*at)),
        ),
    }
}

/// A touch from its id and its hash (which does not repeat what the id says).
pub(super) fn touch_from(id: String, list: Vec<String>) -> Result<Touch, StoreError> {
    let mut map = HashMap::with_capacity(list.len() / 2 + 4);
    let mut it = list.into_iter();
    while let (Some(k), Some(v)) = (it.next(), it.next()) {
        // The scripts write an empty string for a field with no value.
        if !v.is_empty() {
            map.insert(k, v);
        }
    }
    let mut parts = id.splitn(3, ':');
    let (Some(occasion), Some(contact), Some(occurrence)) =
        (parts.next(), parts.next(), parts.next())
    else {
        return Err(corrupt("touch id", &id));
    };
    // Fields a touch gets only once they change (see plan.lua).
    for (field, default) in [
        ("next_attempt_at", "scheduled_at"),
        ("updated_at", "created_at"),
    ] {
        if !map.contains_key(field) {
            if let Some(v) = map.get(default).cloned() {
                map.insert(field.into(), v);
            }
        }
    }
    map.entry("attempts".into()).or_insert_with(|| "0".into());
    map.insert("occasion".into(), occasion.to_owned());
    map.insert("contact_id".into(), contact.to_owned());
    map.insert("occurrence".into(), occurrence.to_owned());
    map.insert("id".into(), id);
    fields::touch(&map)
}

/// A contact as `upsert_contacts.lua` stores it (the fields of
/// `fields::contact_record`, read straight into place: every send reads one).
#[derive(serde::Deserialize)]
pub(super) struct StoredContact {
    pub(super) id: String,
    first_name: Option<String>,
    last_name: Option<String>,
    email: Option<String>,
    phone: Option<String>,
    timezone: Option<String>,
    locale: Option<String>,
    birthday: Option<String>,
    customer_since: Option<String>,
    tier: String,
    attributes: Option<String>,
    email_consent: Option<f64>,
    sms_consent: Option<f64>,
    pub(super) created_at: Option<f64>,
}

impl fields::Fields for StoredContact {
    fn text(&self, name: &str) -> Result<Option<String>, StoreError> {
        Ok(match name {
            "id" => Some(self.id.clone()),
            "first_name" => self.first_name.clone(),
            "last_name" => self.last_name.clone(),
            "email" => self.email.clone(),
            "phone" => self.phone.clone(),
            "timezone" => self.timezone.clone(),
            "locale" => self.locale.clone(),
            "birthday" => self.birthday.clone(),
            "customer_since" => self.customer_since.clone(),
            "tier" => Some(self.tier.clone()),
            "attributes" => self.attributes.clone(),
            _ => None,
        })
    }
    fn int(&self, name: &str) -> Result<Option<i64>, StoreError> {
        Ok(match name {
            "email_consent" => self.email_consent.map(|c| c as i64),
            "sms_consent" => self.sms_consent.map(|c| c as i64),
            _ => None,
        })
    }
}
