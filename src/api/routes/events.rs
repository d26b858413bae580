//! `POST /v1/events`: `{"contact", "type", "id", "at"?, "data"?}`, through the same code
//! as `rapport event add`: stored once per (contact, id), counted as an interaction, and
//! the occasions it triggers planned before the answer (201 new, 200 a repeat). An
//! unknown contact is a 422 naming `contact` (the endpoint exists; the body points at
//! nothing), as the CLI's is a data error.

use crate::store::Store;
use axum::{Json, extract::State, http::StatusCode};
use serde_json::{Value, json};

use super::instant;
use crate::{
    api::{
        ApiError, ApiState,
        json::{JsonObject, optional_str, reject_unknown, required_str},
    },
    ingest,
    store::StoreError,
};

const FIELDS: [&str; 5] = ["contact", "type", "id", "at", "data"];

pub(in crate::api) async fn post<S: Store>(
    State(state): State<ApiState<S>>,
    JsonObject(body): JsonObject,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    reject_unknown(&body, &FIELDS)?;
    let contact = required_str(&body, "contact")?;
    let kind = required_str(&body, "type")?;
    let id = required_str(&body, "id")?;
    let at = optional_str(&body, "at")?;
    let now = state.clock.now();
    let event = ingest::parse_event(contact, kind, id, at, body.get("data").cloned(), now)
        .map_err(|(field, message)| ApiError::field("invalid_field", field, message))?;
    // Answered only once the event and its touches (with their queue jobs) are
    // committed: a 2xx means nothing is lost if the process dies right after.
    let report = match ingest::record_event(state.store.as_ref(), &state.cfg, &event, now).await {
        Ok(r) => r,
        Err(StoreError::UnknownContact(id)) => {
            return Err(ApiError::field(
                "unknown_contact",
                "contact",
                format!("no contact with id {id}; PUT /v1/contacts/{id} first"),
            ));
        }
        Err(e) => return Err(ApiError::internal(e)),
    };
    let touches: Vec<Value> = report
        .touches
        .iter()
        .map(|t| {
            json!({
                "id": t.id.as_str(),
                "occasion": t.occasion,
                "channel": t.channel,
                "status": t.status.as_str(),
                "scheduled_at": instant(t.scheduled_at),
                "expires_at": instant(t.expires_at),
                "reason": t.reason,
                // Recorded by this call, or already in the ledger (a repeat).
                "new": report.planned.contains(&t.id),
            })
        })
        .collect();
    let status = if report.new {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((
        status,
        Json(json!({
            "new": report.new,
            "event": {
                "contact": event.contact_id.as_str(),
                "type": event.kind,
                "id": event.id.as_str(),
                "at": instant(event.at),
                "data": event.data,
            },
            "touches": touches,
        })),
    ))
}
