//! Twilio's webhooks: `POST /v1/twilio/sms` (an inbound SMS) and
//! `POST /v1/twilio/status?touch=TOKEN` (the status callback of an SMS we sent).
//!
//! Both are public (Twilio sends no bearer token) and authenticated by
//! `X-Twilio-Signature`, checked against the URL rebuilt from `api.public_url` (never the
//! `Host` header) and every form field: a wrong or missing signature is a 403 and
//! nothing is stored. Both need the Twilio SMS transport and `api.public_url`; without
//! them they answer 404.
//!
//! Inbound: the sender is found by phone number. `STOP` (and the other opt-out words)
//! records an `unsubscribe` response that withdraws SMS consent; `START`/`UNSTOP`/`YES`
//! gives it back; `HELP` is answered with a help text; anything else is a `reply`
//! response, attributed to the last SMS sent to the contact. `MessageSid` is the
//! response id, so a webhook Twilio retries is stored once. The answer is TwiML.
//!
//! Status: `undelivered`/`failed` with 21610 (the recipient opted out at the carrier)
//! withdraws SMS consent; an invalid or unreachable number is a hard bounce (the number
//! is suppressed), a temporary failure a soft one; failures on our side are logged.

use crate::domain::Channel;
use axum::{
    extract::{OriginalUri, Request, State},
    http::{HeaderMap, StatusCode, header::CONTENT_TYPE},
    response::{IntoResponse, Response},
};
use secrecy::ExposeSecret;

use super::responses::feedback_error;
use crate::{
    api::{
        ApiError, ApiState,
        json::read_body,
        twilio::{self, FailureKind, Keyword, StatusOutcome},
    },
    domain::{ContactId, TouchId},
    feedback::{self, FeedbackError, Inbound},
    learning::ResponseKind,
    store::Store,
};

/// The form fields, the URL they were signed for, and nothing more: a request that is
/// not Twilio's never gets past this.
async fn authentic<S: Store>(
    state: &ApiState<S>,
    route: &str,
    uri: &axum::http::Uri,
    headers: &HeaderMap,
    req: Request,
) -> Result<Vec<(String, String)>, ApiError> {
    let (Some(token), Some(base)) = (&state.twilio_auth_token, &state.cfg.api.public_url) else {
        return Err(ApiError::NotFound(
            "Twilio webhooks need channels.sms.transport = \"twilio\" and api.public_url".into(),
        ));
    };
    let form = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if !form {
        return Err(ApiError::UnsupportedMediaType {
            expected: "a form (Content-Type: application/x-www-form-urlencoded), as Twilio posts",
        });
    }
    let body = read_body(req, state).await?;
    let params: Vec<(String, String)> = url::form_urlencoded::parse(&body)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let url = match uri.query() {
        Some(q) => format!("{base}{route}?{q}"),
        None => format!("{base}{route}"),
    };
    let signature = headers
        .get("x-twilio-signature")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if !twilio::verify(token.expose_secret(), &url, &params, signature) {
        tracing::warn!(
            route,
            "twilio webhook with a wrong or missing signature refused"
        );
        return Err(ApiError::Forbidden(
            "X-Twilio-Signature does not sign this request (is api.public_url the URL Twilio calls?)".into(),
        ));
    }
    Ok(params)
}

fn field<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
        .filter(|v| !v.is_empty())
}

fn required<'a>(params: &'a [(String, String)], name: &'static str) -> Result<&'a str, ApiError> {
    field(params, name).ok_or_else(|| ApiError::BadRequest {
        code: "missing_field",
        message: format!("{name}: missing (required in a Twilio webhook)"),
    })
}

fn twiml(text: Option<&str>) -> Response {
    (
        StatusCode::OK,
        [(CONTENT_TYPE, "text/xml; charset=utf-8")],
        twilio::twiml_message(text),
    )
        .into_response()
}

pub(in crate::api) async fn inbound<S: Store>(
    State(state): State<ApiState<S>>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    req: Request,
) -> Result<Response, ApiError> {
    let params = authentic(&state, "/v1/twilio/sms", &uri, &headers, req).await?;
    let sid = required(&params, "MessageSid")?;
    let from = required(&params, "From")?;
    let body = field(&params, "Body").unwrap_or_default();
    let keyword = twilio::keyword(body, field(&params, "OptOutType"));
    if keyword == Some(Keyword::Help) {
        // Anyone may ask, known or not.
        let help = format!(
            "{}: reply STOP to stop these messages, START to get them again.",
            state.cfg.brand_name
        );
        return Ok(twiml(Some(&help)));
    }
    let store = state.store.as_ref();
    let now = state.clock.now();
    // A number may be shared (a family): an opt-out or opt-in is for every contact
    // with it; a reply is from the one we texted last.
    let holders = store
        .contacts_by_phone(from)
        .await
        .map_err(ApiError::internal)?;
    if holders.is_empty() {
        tracing::info!("inbound SMS from a number no contact has; ignored");
        return Ok(twiml(None));
    }
    act_on(&state, &holders, keyword, sid, now).await?;
    // Twilio confirms STOP and START itself; we add nothing.
    Ok(twiml(None))
}

/// What an inbound SMS from the number `holders` share does: STOP withdraws every
/// holder's SMS consent, START gives it back to those without it, anything else is a
/// reply from the one texted last.
async fn act_on<S: Store>(
    state: &ApiState<S>,
    holders: &[ContactId],
    keyword: Option<Keyword>,
    sid: &str,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<(), ApiError> {
    let store = state.store.as_ref();
    let respond = |contact: &ContactId, kind| Inbound {
        id: Some(format!("sms:{sid}")),
        kind,
        touch: None,
        contact: Some(contact.clone()),
        channel: Some(Channel::Sms),
        at: now,
        source: "sms",
    };
    let contacts = store
        .get_contacts(holders)
        .await
        .map_err(ApiError::internal)?;
    let subscribed = |id: &ContactId| contacts.get(id).is_some_and(|c| c.sms_consent);
    match keyword {
        Some(Keyword::OptOut) => {
            for contact in holders {
                feedback::respond(
                    store,
                    &state.cfg,
                    respond(contact, ResponseKind::Unsubscribe),
                    now,
                )
                .await
                .map_err(feedback_error)?;
                tracing::info!(contact = contact.as_str(), "SMS consent withdrawn by STOP");
            }
        }
        // "Yes" from someone who never said no is an answer, not an opt-in.
        Some(Keyword::OptIn) if !holders.iter().all(subscribed) => {
            for contact in holders.iter().filter(|c| !subscribed(c)) {
                feedback::consent(store, contact, Channel::Sms, true, "START by SMS", now)
                    .await
                    .map_err(feedback_error)?;
                tracing::info!(
                    contact = contact.as_str(),
                    "SMS consent given back by START"
                );
            }
        }
        _ => {
            let contact = last_texted(store, holders).await?;
            feedback::respond(
                store,
                &state.cfg,
                respond(&contact, ResponseKind::Reply),
                now,
            )
            .await
            .map_err(feedback_error)?;
        }
    }
    Ok(())
}

/// Of the contacts sharing a number, the one an SMS was last sent to (the first when
/// none was texted).
async fn last_texted<S: Store>(store: &S, holders: &[ContactId]) -> Result<ContactId, ApiError> {
    let mut best: Option<(chrono::DateTime<chrono::Utc>, &ContactId)> = None;
    for id in holders {
        let touches = store
            .touches_for_contact(id)
            .await
            .map_err(ApiError::internal)?;
        let last = touches
            .iter()
            .filter(|t| t.channel == Channel::Sms)
            .filter_map(|t| t.sent_at)
            .max();
        if let Some(at) = last {
            if best.is_none_or(|(b, _)| at > b) {
                best = Some((at, id));
            }
        }
    }
    Ok(best.map_or(&holders[0], |(_, id)| id).clone())
}

pub(in crate::api) async fn status<S: Store>(
    State(state): State<ApiState<S>>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    req: Request,
) -> Result<StatusCode, ApiError> {
    let params = authentic(&state, "/v1/twilio/status", &uri, &headers, req).await?;
    let sid = required(&params, "MessageSid")?;
    let message_status = required(&params, "MessageStatus")?;
    let touch = uri
        .query()
        .and_then(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .find(|(k, _)| k == "touch")
                .map(|(_, v)| v.into_owned())
        })
        .and_then(|t| TouchId::from_token(&t))
        .ok_or_else(|| ApiError::BadRequest {
            code: "missing_field",
            message: "touch: the callback URL names no touch (?touch=...)".into(),
        })?;
    let kind = match twilio::status_callback(message_status, field(&params, "ErrorCode")) {
        StatusOutcome::Delivered | StatusOutcome::InFlight => return Ok(StatusCode::NO_CONTENT),
        StatusOutcome::Failed { kind } => match kind {
            FailureKind::OptedOut => ResponseKind::Unsubscribe,
            FailureKind::HardBounce => ResponseKind::BounceHard,
            FailureKind::SoftBounce => ResponseKind::BounceSoft,
            FailureKind::Ours => {
                tracing::warn!(
                    touch = touch.as_str(),
                    status = message_status,
                    error_code = field(&params, "ErrorCode").unwrap_or(""),
                    "Twilio could not deliver an SMS for a reason on our side (account, sender or content)"
                );
                return Ok(StatusCode::NO_CONTENT);
            }
        },
    };
    let store = state.store.as_ref();
    let now = state.clock.now();
    let input = Inbound {
        id: Some(format!("twilio_status:{sid}:{message_status}")),
        kind,
        touch: Some(touch.clone()),
        contact: None,
        channel: Some(Channel::Sms),
        at: now,
        source: "twilio_status",
    };
    match feedback::respond(store, &state.cfg, input.clone(), now).await {
        Ok(_) => Ok(StatusCode::NO_CONTENT),
        // The report beat our own record of the send (Twilio is quick, and does not
        // retry callbacks): what it says of the number still counts, for the contact.
        Err(FeedbackError::NotSent(..)) => {
            let owner = store
                .get_touches(std::slice::from_ref(&touch))
                .await
                .map_err(ApiError::internal)?
                .pop()
                .map(|t| t.contact_id);
            let input = Inbound {
                touch: None,
                contact: owner,
                ..input
            };
            match feedback::respond(store, &state.cfg, input, now).await {
                Ok(_) | Err(FeedbackError::UnknownContact(_) | FeedbackError::NoTarget) => {
                    Ok(StatusCode::NO_CONTENT)
                }
                Err(e) => Err(feedback_error(e)),
            }
        }
        // The touch is gone (its contact erased): nothing to learn.
        Err(FeedbackError::UnknownTouch(_) | FeedbackError::UnknownContact(_)) => {
            Ok(StatusCode::NO_CONTENT)
        }
        Err(e) => Err(feedback_error(e)),
    }
}
