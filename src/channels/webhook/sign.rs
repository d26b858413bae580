//! Standard Webhooks v1 signing: secrets, message ids and signatures.

use crate::channels::SetupError;
use base64::{Engine, engine::general_purpose::STANDARD};
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use crate::domain::TouchId;

/// The spec's bounds on a decoded secret: at least 192 bits, at most 512.
const KEY_BYTES: std::ops::RangeInclusive<usize> = 24..=64;

/// Decodes a `whsec_` secret into its signing key. Errors describe the shape only: the
/// secret itself never reaches a message or a log.
pub fn parse_secret(s: &str) -> Result<Vec<u8>, SetupError> {
    let encoded = s
        .trim()
        .strip_prefix("whsec_")
        .ok_or("the webhook secret must start with `whsec_`")?;
    let key = STANDARD
        .decode(encoded)
        .map_err(|_| "the webhook secret is not standard base64 after `whsec_`")?;
    if !KEY_BYTES.contains(&key.len()) {
        return Err(format!(
            "the webhook secret decodes to {} bytes; Standard Webhooks needs 24 to 64",
            key.len()
        )
        .into());
    }
    Ok(key)
}

/// The `webhook-id` of a touch: the same on every retry, so receivers can dedupe, and a
/// hash rather than the touch id, which carries a contact id and may contain `.`.
pub fn webhook_id(touch: &TouchId) -> String {
    let digest = Sha256::digest(touch.as_str().as_bytes());
    let mut id = String::from("msg_");
    id.push_str(&hex(&digest)[..26]);
    id
}

/// The `webhook-signature` value: one `v1,<base64 HMAC-SHA256>` per key over
/// `{id}.{timestamp}.{body}`, space-separated, so receivers holding either key during a
/// rotation can verify.
pub fn sign(id: &str, timestamp: i64, body: &[u8], keys: &[Vec<u8>]) -> String {
    keys.iter()
        // HMAC accepts a key of any length, so this drops nothing.
        .filter_map(|key| Hmac::<Sha256>::new_from_slice(key).ok())
        .map(|mut mac| {
            mac.update(id.as_bytes());
            mac.update(b".");
            mac.update(timestamp.to_string().as_bytes());
            mac.update(b".");
            mac.update(body);
            format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Lower-case hex.
pub(super) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";
    const BODY: &[u8] = br#"{"email":"test@example.com","username":"test_user"}"#;

    #[test]
    fn matches_the_spec_reference_vector() {
        let key = parse_secret(SECRET).unwrap();
        assert_eq!(key.len(), 24);
        let sig = sign("msg_27UH4WbU6Z5A5EzD8u03UvzRbpk", 1649367553, BODY, &[key]);
        assert_eq!(sig, "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw=");
    }

    #[test]
    fn signs_once_per_key_in_order() {
        let current = parse_secret(SECRET).unwrap();
        let previous = vec![7u8; 32];
        let both = sign("msg_x", 1, b"{}", &[current.clone(), previous.clone()]);
        let parts: Vec<&str> = both.split(' ').collect();
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0], sign("msg_x", 1, b"{}", &[current]));
        assert_eq!(parts[1], sign("msg_x", 1, b"{}", &[previous]));
        assert_ne!(parts[0], parts[1]);
        // Any change to id, timestamp or body changes the signature.
        let key = vec![vec![1u8; 24]];
        let base = sign("msg_x", 1, b"{}", &key);
        assert_ne!(base, sign("msg_y", 1, b"{}", &key));
        assert_ne!(base, sign("msg_x", 2, b"{}", &key));
        assert_ne!(base, sign("msg_x", 1, b"{ }", &key));
    }

    #[test]
    fn secrets_are_checked_without_echoing_them() {
        let short = format!("whsec_{}", STANDARD.encode([9u8; 23]));
        let long = format!("whsec_{}", STANDARD.encode([9u8; 65]));
        assert_eq!(
            parse_secret(&format!("whsec_{}", STANDARD.encode([9u8; 64])))
                .unwrap()
                .len(),
            64
        );
        assert_eq!(parse_secret(&format!(" {SECRET}\n")).unwrap().len(), 24);
        for bad in [
            "C2FVsBQIhrscChlQIMV+b5sSYspob7oD",
            "whsk_C2FVsBQIhrscChlQIMV+b5sSYspob7oD",
            "whsec_not*base64!!!",
            "whsec_",
            short.as_str(),
            long.as_str(),
        ] {
            let err = parse_secret(bad).unwrap_err().to_string();
            let body = bad.trim_start_matches("whsec_");
            assert!(
                body.is_empty() || !err.contains(body),
                "{err} echoes the secret"
            );
        }
    }

    #[test]
    fn webhook_ids_are_stable_dot_free_and_distinct() {
        let a = TouchId::from_stored("birthday:cus.42:2026".into());
        let b = TouchId::from_stored("birthday:cus.42:2027".into());
        let id = webhook_id(&a);
        assert_eq!(id, webhook_id(&a.clone()));
        assert_ne!(id, webhook_id(&b));
        assert_eq!(id.len(), 4 + 26);
        assert!(id.starts_with("msg_") && !id.contains('.'), "{id}");
        assert!(!id.contains("cus"), "{id}");
    }
}
