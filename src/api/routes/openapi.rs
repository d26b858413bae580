//! `GET /openapi.json`: the API described in OpenAPI 3.1, written by hand beside the
//! code (`src/api/openapi.json`); a test holds it to the router's routes.

use axum::http::header::CONTENT_TYPE;

/// The document, as served.
pub(in crate::api) const DOCUMENT: &str = include_str!("../openapi.json");

pub(in crate::api) async fn document() -> ([(axum::http::HeaderName, &'static str); 1], &'static str)
{
    ([(CONTENT_TYPE, "application/json")], DOCUMENT)
}
