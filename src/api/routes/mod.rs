//! The handlers, one file per area.

pub(super) mod batch;
pub(super) mod clicks;
pub(super) mod contacts;
pub(super) mod events;
pub(super) mod health;
pub(super) mod openapi;
pub(super) mod responses;
pub(super) mod touches;
pub(super) mod twilio;
pub(super) mod unsubscribe;

use chrono::{DateTime, SecondsFormat, Utc};

use super::ApiError;

/// Any path no route serves.
pub(super) async fn not_found() -> ApiError {
    ApiError::NotFound("no such endpoint (the routes are listed at /openapi.json)".into())
}

/// A route that exists, called with a method it does not take.
pub(super) async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}

/// Instants in responses: RFC 3339 in UTC, to the second (`2026-07-14T08:00:00Z`).
pub(super) fn instant(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}
