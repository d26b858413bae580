//! The SMS (Twilio Messages API) and webhook (Standard Webhooks) channels over real TCP
//! against the in-process HTTP stub.
//!
//! What is checked besides delivery: the exact request each provider gets (auth, form
//! fields, signature headers), how every answer is classified, that redirects are never
//! followed, that internal addresses are refused before anything is sent, and that no
//! error reason carries the phone number, the message, a secret or the server's text.
//! Webhook signatures are checked by a verifier written here from the spec, not by the
//! crate's own `sign`.

#[path = "../support/mod.rs"]
mod support;

mod sms;
mod webhook;

use std::time::Duration;

use base64::{Engine, engine::general_purpose::STANDARD};
use chrono::Utc;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use rapport::{
    channels::{
        DeliveryClass, DeliveryError, OutboundSms, OutboundWebhook, SmsChannel, WebhookChannel,
        sms::{SmsSender, Twilio, TwilioSettings},
        webhook::{Webhook, WebhookSettings, parse_secret},
    },
    domain::{PhoneNumber, TouchId},
};
use support::http_stub::{HttpStub, Reply, Request};

const SID: &str = "AC0123456789abcdef0123456789abcdef";
const TOKEN: &str = "auth-token-Zx81";
const PHONE: &str = "+15551234567";
const TEXT: &str = "Happy birthday, Ada! Cake's on us.";
/// Put into every error body the stub sends: must never reach an error reason.
const SERVER_TEXT: &str = "SERVERTEXT";
const CALLBACK: &str = "https://rapport.example/twilio/status";
/// Standard Webhooks secrets: 24 and 32 bytes.
const SECRET: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";
const OLD_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw6jUFzw1vDYk=";
/// The spec's verifier tolerance.
const TOLERANCE_SECS: i64 = 300;

fn touch() -> TouchId {
    TouchId::from_stored("birthday:cus_42:2026".into())
}

fn assert_safe(err: &DeliveryError) {
    for secret in [
        PHONE,
        "5551234567",
        TEXT,
        TOKEN,
        SERVER_TEXT,
        SECRET,
        "127.0.0.1",
    ] {
        assert!(!err.reason.contains(secret), "{err} carries {secret:?}");
    }
}
