//! `GET /c/{token}`: a tracked link. The token signs the touch and the original URL
//! (nothing is looked up to redirect): the click is recorded as a `click` response of
//! that touch, once per link, and the answer is a 302 to the original URL. A link whose
//! touch or contact is gone (erased) still redirects; only a token we did not sign is a
//! 404. Link scanners that follow links count as clicks (as with every ESP).

use crate::store::Store;
use axum::{
    extract::{Path, State, rejection::PathRejection},
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use sha2::{Digest, Sha256};

use crate::{
    api::{ApiError, ApiState},
    channels::clicks,
    domain::TouchId,
    feedback::{self, FeedbackError, Inbound},
    learning::ResponseKind,
};

pub(in crate::api) async fn follow<S: Store>(
    State(state): State<ApiState<S>>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let unknown = || ApiError::NotFound("this link is not one of ours".into());
    let Ok(Path(token)) = path else {
        return Err(unknown());
    };
    let click = clicks::verify(&state.unsubscribe_key, &token).ok_or_else(unknown)?;
    let location = url::Url::parse(&click.url)
        .ok()
        .and_then(|u| HeaderValue::from_str(u.as_str()).ok())
        .ok_or_else(unknown)?;
    // One click response per link of a touch: a second click teaches nothing new. (Ids
    // are unique per contact: the touch is part of it, so the same link in another
    // touch is another click.)
    let id = {
        let mut h = Sha256::new();
        h.update(click.touch.as_bytes());
        h.update([0]);
        h.update(click.url.as_bytes());
        let hex: String = h.finalize()[..8]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        format!("click:{hex}")
    };
    let now = state.clock.now();
    let input = Inbound {
        id: Some(id),
        kind: ResponseKind::Click,
        touch: Some(TouchId::from_stored(click.touch)),
        contact: None,
        channel: None,
        at: now,
        source: "click",
    };
    match feedback::respond(state.store.as_ref(), &state.cfg, input, now).await {
        Ok(_)
        | Err(
            FeedbackError::UnknownTouch(_)
            | FeedbackError::UnknownContact(_)
            | FeedbackError::NotSent(..),
        ) => {}
        // The reader must get where they were going whatever our store is doing: a
        // store out of reach loses this click, not the reader's visit (no 503 here).
        Err(e) => tracing::error!(error = %e, "a click could not be recorded"),
    }
    Ok((
        StatusCode::FOUND,
        [
            (header::LOCATION, location),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
            (
                header::REFERRER_POLICY,
                HeaderValue::from_static("no-referrer"),
            ),
        ],
    )
        .into_response())
}
