//! Signed one-click unsubscribe tokens (RFC 8058).
//!
//! The one-click POST carries no cookie or session (RFC 8058 forbids any), so the URL
//! alone must say who unsubscribes, and nobody without the key may forge it for someone
//! else. A token is `base64url(contact id) "." base64url(HMAC-SHA256(key, purpose NUL
//! contact id))`: readable enough to debug, unforgeable, and stateless to check.

use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::domain::{ContactId, EmailAddress};

/// Binds a MAC to this use: the same key used elsewhere never yields a valid token.
const PURPOSE: &[u8] = b"rapport-unsubscribe-v1\0";
/// Longer than any token we issue (a 128-character id gives 215); anything longer is
/// refused before any decoding work.
const MAX_TOKEN_LEN: usize = 256;

fn mac(key: &[u8], contact: &[u8]) -> Hmac<Sha256> {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(PURPOSE);
    mac.update(contact);
    mac
}

/// The opaque, URL-safe token that identifies `contact` in an unsubscribe link.
pub fn token(key: &[u8], contact: &ContactId) -> String {
    let id = contact.as_str().as_bytes();
    let tag = mac(key, id).finalize().into_bytes();
    format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(id),
        URL_SAFE_NO_PAD.encode(tag)
    )
}

/// The contact a token was issued for, or `None` for anything we did not sign with
/// `key`. The MAC is compared in constant time, so timing does not reveal how much of a
/// guess was right.
pub fn verify(key: &[u8], token: &str) -> Option<ContactId> {
    if token.len() > MAX_TOKEN_LEN {
        return None;
    }
    let (id, tag) = token.split_once('.')?;
    let id = URL_SAFE_NO_PAD.decode(id).ok()?;
    let tag = URL_SAFE_NO_PAD.decode(tag).ok()?;
    mac(key, &id).verify_slice(&tag).ok()?;
    let id = String::from_utf8(id).ok()?;
    ContactId::parse(&id).ok().filter(|c| c.as_str() == id)
}

/// The one-click URL: `{public_url}/u/{token}`.
pub fn https_url(public_url: &str, token: &str) -> String {
    format!("{}/u/{token}", public_url.trim_end_matches('/'))
}

/// The mailto fallback, for clients without one-click support: the token travels in the
/// subject, so the mailbox that receives it can act without a per-contact address.
pub fn mailto(address: &EmailAddress, token: &str) -> String {
    format!("mailto:{}?subject=unsubscribe%20{token}", address.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &[u8] = b"a test key, 32 bytes or so long!";

    fn contact(id: &str) -> ContactId {
        ContactId::parse(id).unwrap()
    }

    #[test]
    fn a_token_verifies_to_its_contact() {
        for id in ["ada", "cus_42", "a.b-c+d", &"x".repeat(128)] {
            let t = token(KEY, &contact(id));
            assert!(t.len() <= MAX_TOKEN_LEN, "{id}: {} chars", t.len());
            assert!(
                t.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.')),
                "{t} is not URL-safe"
            );
            assert_eq!(verify(KEY, &t), Some(contact(id)));
        }
    }

    #[test]
    fn a_token_is_stable_and_differs_per_contact() {
        assert_eq!(token(KEY, &contact("ada")), token(KEY, &contact("ada")));
        assert_ne!(token(KEY, &contact("ada")), token(KEY, &contact("bob")));
    }

    #[test]
    fn any_changed_character_is_rejected() {
        let t = token(KEY, &contact("cus_42"));
        for i in 0..t.len() {
            let mut bytes = t.clone().into_bytes();
            bytes[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
            let flipped = String::from_utf8(bytes).unwrap();
            assert_eq!(verify(KEY, &flipped), None, "position {i}: {flipped}");
        }
    }

    #[test]
    fn another_key_is_rejected() {
        let t = token(KEY, &contact("ada"));
        assert_eq!(verify(b"another key", &t), None);
        assert_eq!(verify(b"", &t), None);
    }

    #[test]
    fn another_contacts_signature_is_rejected() {
        let ada = token(KEY, &contact("ada"));
        let bob = token(KEY, &contact("bob"));
        let (ada_id, _) = ada.split_once('.').unwrap();
        let (_, bob_tag) = bob.split_once('.').unwrap();
        assert_eq!(verify(KEY, &format!("{ada_id}.{bob_tag}")), None);
    }

    #[test]
    fn garbage_is_rejected() {
        let t = token(KEY, &contact("ada"));
        let (id, tag) = t.split_once('.').unwrap();
        let cases = [
            String::new(),
            ".".into(),
            "ada".into(),
            id.to_owned(),
            format!("{id}."),
            format!(".{tag}"),
            format!("{t}.x"),
            format!("{t}="),
            format!("{id}.{}", &tag[..tag.len() - 1]),
            format!("{id}!.{tag}"),
            format!(" {t}"),
            "x".repeat(10_000),
        ];
        for case in cases {
            assert_eq!(verify(KEY, &case), None, "{case:?}");
        }
    }

    /// A correctly signed id that is not a valid contact id (here: one with a space)
    /// is still refused: only ids we could have issued come back out.
    #[test]
    fn a_signed_invalid_id_is_rejected() {
        let raw = b"not an id";
        let tag = mac(KEY, raw).finalize().into_bytes();
        let t = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(raw),
            URL_SAFE_NO_PAD.encode(tag)
        );
        assert_eq!(verify(KEY, &t), None);
    }

    #[test]
    fn urls_carry_the_token() {
        assert_eq!(
            https_url("https://u.example.com/", "abc.def"),
            "https://u.example.com/u/abc.def"
        );
        assert_eq!(
            https_url("https://example.com/rapport", "abc.def"),
            "https://example.com/rapport/u/abc.def"
        );
        let to = EmailAddress::parse("unsub@example.com").unwrap();
        assert_eq!(
            mailto(&to, "abc.def"),
            "mailto:unsub@example.com?subject=unsubscribe%20abc.def"
        );
    }
}
