//! `GET /v1/touches?contact=ID&status=STATUS`: a contact's touches (all, or those in one
//! status), oldest first; `GET /v1/stats`: how each (tier, channel, occasion) answers.

use crate::store::Store;
use std::collections::BTreeMap;

use axum::{
    Json,
    extract::{Query, State, rejection::QueryRejection},
};
use serde::Deserialize;
use serde_json::{Value, json};

use super::instant;
use crate::{
    api::{ApiError, ApiState},
    domain::{ContactId, Touch, TouchStatus},
    store::StatField,
};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(in crate::api) struct TouchQuery {
    contact: Option<String>,
    status: Option<String>,
}

pub(in crate::api) async fn list<S: Store>(
    State(state): State<ApiState<S>>,
    query: Result<Query<TouchQuery>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::BadRequest {
        code: "bad_query",
        message: format!("{} (known parameters: contact, status)", e.body_text()),
    })?;
    let contact = query
        .contact
        .as_deref()
        .ok_or_else(|| {
            ApiError::field(
                "missing_field",
                "contact",
                "missing (required): ?contact=ID",
            )
        })
        .and_then(|c| {
            ContactId::parse(c)
                .map_err(|e| ApiError::field("invalid_field", "contact", e.to_string()))
        })?;
    let status = query
        .status
        .as_deref()
        .map(|s| {
            s.parse::<TouchStatus>().map_err(|_| {
                let known: Vec<_> = TouchStatus::ALL.iter().map(|s| s.as_str()).collect();
                ApiError::field(
                    "invalid_field",
                    "status",
                    format!("unknown status {s:?} (known: {})", known.join(", ")),
                )
            })
        })
        .transpose()?;
    let store = state.store.as_ref();
    if store
        .get_contact(&contact)
        .await
        .map_err(ApiError::internal)?
        .is_none()
    {
        return Err(ApiError::NotFound(format!("no contact with id {contact}")));
    }
    let touches: Vec<Value> = store
        .touches_for_contact(&contact)
        .await
        .map_err(ApiError::internal)?
        .iter()
        .filter(|t| status.is_none_or(|s| t.status == s))
        .map(touch_json)
        .collect();
    Ok(Json(
        json!({ "contact": contact.as_str(), "touches": touches }),
    ))
}

/// A touch in `GET /v1/touches`: its fields on the timeline, with its contact and
/// occurrence.
pub(in crate::api) fn touch_json(t: &Touch) -> Value {
    let mut v = touch_fields(t);
    v["contact"] = json!(t.contact_id.as_str());
    v["occurrence"] = json!(t.occurrence);
    v
}

/// The fields of a touch both the touch list and a contact's timeline show.
pub(in crate::api) fn touch_fields(t: &Touch) -> Value {
    json!({
        "id": t.id.as_str(),
        "occasion": t.occasion,
        "channel": t.channel,
        "status": t.status.as_str(),
        "reason": t.reason,
        "attempts": t.attempts,
        "scheduled_at": instant(t.scheduled_at),
        "next_attempt_at": instant(t.next_attempt_at),
        "expires_at": instant(t.expires_at),
        "sent_at": t.sent_at.map(instant),
        "responded_at": t.responded_at.map(instant),
        "updated_at": instant(t.updated_at),
    })
}

#[derive(Default)]
struct Row {
    settled: u64,
    responded: u64,
    opt_outs: u64,
}

/// Per (tier, channel, occasion): touches whose outcome is known (`sent`: answered, or
/// ignored for the response window), how many were answered, the rate, and opt-outs
/// (unsubscribes, STOPs, complaints); plus the ledger's counts by status.
pub(in crate::api) async fn stats<S: Store>(
    State(state): State<ApiState<S>>,
) -> Result<Json<Value>, ApiError> {
    let store = state.store.as_ref();
    let mut rows: BTreeMap<(String, String, String), Row> = BTreeMap::new();
    for (key, field, n) in store.stats().await.map_err(ApiError::internal)? {
        // The tiers' answer hours are the planner's, not a row.
        if let StatField::AnsweredAt(_) = field {
            continue;
        }
        let row = rows
            .entry((key.tier, key.channel, key.occasion))
            .or_default();
        match field {
            StatField::Settled => row.settled += n,
            StatField::Responded => row.responded += n,
            StatField::OptOut => row.opt_outs += n,
            StatField::AnsweredAt(_) => {}
        }
    }
    let rows: Vec<Value> = rows
        .into_iter()
        .map(|((tier, channel, occasion), r)| {
            json!({
                "tier": tier,
                "channel": channel,
                "occasion": occasion,
                "sent": r.settled,
                "responded": r.responded,
                "response_rate": rate(r.responded, r.settled),
                "opt_outs": r.opt_outs,
            })
        })
        .collect();
    let mut by_status: BTreeMap<&str, u64> =
        TouchStatus::ALL.iter().map(|s| (s.as_str(), 0)).collect();
    for (s, n) in store.status_counts().await.map_err(ApiError::internal)? {
        by_status.insert(s.as_str(), n);
    }
    Ok(Json(json!({
        "response_window": crate::config::format_duration(state.cfg.learning.model.response_window),
        "rows": rows,
        "touches": by_status,
    })))
}

fn rate(n: u64, of: u64) -> Option<f64> {
    (of > 0).then(|| (n as f64 / of as f64 * 1000.0).round() / 1000.0)
}
