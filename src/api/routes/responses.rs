//! `POST /v1/responses`: `{"kind", "touch_id"?, "contact"?, "channel"?, "at"?, "id"?}`.
//!
//! Attributed to the touch named (`touch_id`, as links and webhook payloads carry it),
//! else to the most recent touch sent to `contact` on `channel`. Recorded once per
//! (contact, `id`): the same id again answers 200 with what was recorded the first
//! time; a new response answers 201 with what it changed (`effects`: consent withdrawn,
//! suppression, a tier move, in words). Negative signals act before the answer.

use crate::store::Store;
use axum::{Json, extract::State, http::StatusCode};
use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};

use super::instant;
use crate::{
    api::{
        ApiError, ApiState,
        json::{JsonObject, optional_str, reject_unknown, required_str},
    },
    domain::{Channel, ContactId, TouchId},
    feedback::{self, FeedbackError, Inbound, Recorded},
    learning::ResponseKind,
    store::ResponseRecord,
};

const FIELDS: [&str; 6] = ["kind", "touch_id", "contact", "channel", "at", "id"];

/// How far ahead of our clock a response's time may be (the sender's clock may run a
/// little fast); beyond, it is a mistake.
const SKEW_SECS: i64 = 300;

pub(in crate::api) async fn post<S: Store>(
    State(state): State<ApiState<S>>,
    JsonObject(body): JsonObject,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    reject_unknown(&body, &FIELDS)?;
    let now = state.clock.now();
    let input = inbound(&body, now)?;
    let recorded = feedback::respond(state.store.as_ref(), &state.cfg, input, now)
        .await
        .map_err(feedback_error)?;
    let (status, new) = match &recorded {
        Recorded::New(_) => (StatusCode::CREATED, true),
        Recorded::Known(_) => (StatusCode::OK, false),
    };
    Ok((
        status,
        Json(json!({ "new": new, "response": response_json(recorded.record()) })),
    ))
}

/// The response a request body describes, checked field by field (a future `at` beyond
/// the clock skew is refused).
fn inbound(body: &Map<String, Value>, now: DateTime<Utc>) -> Result<Inbound, ApiError> {
    let kind: ResponseKind =
        required_str(body, "kind")?
            .parse()
            .map_err(|e: crate::learning::UnknownKind| {
                ApiError::field("invalid_field", "kind", e.to_string())
            })?;
    let touch = optional_str(body, "touch_id")?
        .map(|t| t.trim())
        .filter(|t| !t.is_empty())
        .map(|t| TouchId::from_stored(t.to_owned()));
    let contact = optional_str(body, "contact")?
        .map(ContactId::parse)
        .transpose()
        .map_err(|e| ApiError::field("invalid_field", "contact", e.to_string()))?;
    let channel = optional_str(body, "channel")?
        .map(|c| {
            c.parse::<Channel>()
                .map_err(|e| ApiError::field("invalid_field", "channel", e.to_string()))
        })
        .transpose()?;
    if touch.is_none() && (contact.is_none() || channel.is_none()) {
        let missing = if contact.is_none() {
            "contact"
        } else {
            "channel"
        };
        return Err(ApiError::field(
            "missing_field",
            missing,
            "a response names its touch_id, or its contact and channel",
        ));
    }
    let at = match optional_str(body, "at")? {
        None => now,
        Some(raw) => DateTime::parse_from_rfc3339(raw)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|_| {
                ApiError::field(
                    "invalid_field",
                    "at",
                    "must be an RFC 3339 instant (2026-07-14T08:00:00Z)",
                )
            })?,
    };
    if (at - now).num_seconds() > SKEW_SECS {
        return Err(ApiError::field("invalid_field", "at", "is in the future"));
    }
    let id = optional_str(body, "id")?
        .map(str::trim)
        .map(|id| {
            if id.is_empty() || id.len() > 200 {
                Err(ApiError::field(
                    "invalid_field",
                    "id",
                    "must be 1 to 200 characters",
                ))
            } else {
                Ok(id.to_owned())
            }
        })
        .transpose()?;
    Ok(Inbound {
        id,
        kind,
        touch,
        contact,
        channel,
        at,
        source: "api",
    })
}

/// A response as the API shows it (here and on a contact's timeline).
pub(in crate::api) fn response_json(r: &ResponseRecord) -> Value {
    json!({
        "id": r.id,
        "contact": r.contact.as_str(),
        "kind": r.kind.as_str(),
        "channel": r.channel,
        "touch_id": r.touch.as_ref().map(TouchId::as_str),
        "at": instant(r.at),
        "recorded_at": instant(r.recorded_at),
        "source": r.source,
        "effects": r.effects,
    })
}

pub(in crate::api) fn feedback_error(e: FeedbackError) -> ApiError {
    let message = e.to_string();
    match e {
        FeedbackError::UnknownContact(_) => ApiError::field("unknown_contact", "contact", message),
        FeedbackError::UnknownTouch(_) => ApiError::field("unknown_touch", "touch_id", message),
        FeedbackError::WrongContact { .. } => ApiError::field("invalid_field", "contact", message),
        FeedbackError::WrongChannel { .. } => ApiError::field("invalid_field", "channel", message),
        FeedbackError::NoTarget => ApiError::field("missing_field", "touch_id", message),
        FeedbackError::NotSent(..) => ApiError::Conflict {
            code: "touch_not_sent",
            field: Some("touch_id"),
            message,
        },
        FeedbackError::Busy(_) => ApiError::Conflict {
            code: "busy",
            field: None,
            message,
        },
        FeedbackError::Store(e) => ApiError::internal(e),
    }
}
