//! Instants, touch builders and small read helpers shared by the cases.

use rapport::domain::Channel;
use std::collections::BTreeMap;

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use rapport::{
    domain::{ContactId, NewTouch, Touch, TouchId, TouchStatus},
    store::Store,
};

use crate::QueuedJob;

/// The fixed "now" every case is built around.
pub(crate) fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 7, 14, 9, 0, 0).unwrap()
}
pub(crate) fn secs(n: i64) -> TimeDelta {
    TimeDelta::seconds(n)
}
pub(crate) fn mins(n: i64) -> TimeDelta {
    TimeDelta::minutes(n)
}
pub(crate) fn hours(n: i64) -> TimeDelta {
    TimeDelta::hours(n)
}
pub(crate) fn days(n: i64) -> TimeDelta {
    TimeDelta::days(n)
}

pub(crate) fn cid(s: &str) -> ContactId {
    ContactId::parse(s).unwrap()
}

/// A planned email touch for `occasion:contact:occurrence`, due at `at`, open for a day.
pub(crate) fn planned_for(
    occasion: &str,
    contact: &str,
    occurrence: &str,
    at: DateTime<Utc>,
) -> NewTouch {
    let contact_id = cid(contact);
    NewTouch {
        id: TouchId::derive(occasion, &contact_id, occurrence),
        occasion: occasion.into(),
        contact_id,
        occurrence: occurrence.into(),
        channel: Channel::Email,
        priority: 10,
        scheduled_at: at,
        due: at,
        expires_at: at + days(1),
        status: TouchStatus::Planned,
        reason: None,
    }
}

/// A planned birthday touch for `contact` this year.
pub(crate) fn planned(contact: &str, at: DateTime<Utc>) -> NewTouch {
    planned_for("birthday", contact, "2026", at)
}

/// The same with its own expiry.
pub(crate) fn expiring(contact: &str, at: DateTime<Utc>, expires: DateTime<Utc>) -> NewTouch {
    NewTouch {
        expires_at: expires,
        ..planned(contact, at)
    }
}

/// `n` planned touches for contacts `{prefix}000`, `{prefix}001`, ..., all due at `at`.
pub(crate) fn batch(prefix: &str, n: usize, at: DateTime<Utc>) -> Vec<NewTouch> {
    (0..n)
        .map(|i| planned(&format!("{prefix}{i:03}"), at))
        .collect()
}

pub(crate) fn ids_of(touches: &[NewTouch]) -> Vec<TouchId> {
    touches.iter().map(|t| t.id.clone()).collect()
}

pub(crate) fn sorted(mut ids: Vec<TouchId>) -> Vec<TouchId> {
    ids.sort();
    ids
}

/// Every touch id in `jobs`, sorted, duplicates kept (so a twice-queued touch shows).
pub(crate) fn queued_ids(jobs: &[QueuedJob]) -> Vec<TouchId> {
    sorted(jobs.iter().flat_map(|j| j.touches.clone()).collect())
}

/// The one stored touch with `id`.
pub(crate) async fn touch<S: Store>(store: &S, id: &TouchId) -> Touch {
    let mut found = store.get_touches(std::slice::from_ref(id)).await.unwrap();
    assert_eq!(found.len(), 1, "touch {id}: {found:?}");
    found.remove(0)
}

/// The touch as the ledger must hold it right after planning at `now`.
pub(crate) fn as_planned(t: &NewTouch, now: DateTime<Utc>) -> Touch {
    Touch {
        id: t.id.clone(),
        occasion: t.occasion.clone(),
        contact_id: t.contact_id.clone(),
        occurrence: t.occurrence.clone(),
        channel: t.channel,
        tried: Vec::new(),
        priority: t.priority,
        status: t.status,
        scheduled_at: t.scheduled_at,
        next_attempt_at: t.scheduled_at,
        expires_at: t.expires_at,
        attempts: 0,
        reason: t.reason.clone(),
        created_at: now,
        updated_at: now,
        sent_at: None,
        slot_at: None,
        uncertain: 0,
        responded_at: None,
    }
}

/// Non-zero status counts by name, so an assertion reads like the ledger.
pub(crate) async fn counts<S: Store>(store: &S) -> BTreeMap<&'static str, u64> {
    store
        .status_counts()
        .await
        .unwrap()
        .into_iter()
        .filter(|(_, n)| *n > 0)
        .map(|(s, n)| (s.as_str(), n))
        .collect()
}
