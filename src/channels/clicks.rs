//! Click tracking: signed click tokens and the rewrite of the links in an email body.
//!
//! A tracked link points at our own `/c/{token}`, which records the click and redirects
//! to the original URL. The token carries both the touch id and that URL, so nothing is
//! stored per link and a click on a months-old email still resolves. Because the server
//! redirects to whatever the token names, the token is signed (HMAC-SHA256, tag
//! truncated to 128 bits), and only http(s) targets are ever signed or honoured: a valid
//! key must not be enough to make us redirect to `javascript:` or `data:`.
//!
//! Layout before base64url (no padding, so it fits one path segment):
//! `version (1) | touch length (u16 BE) | touch | url | tag (16)`. One binary body
//! rather than the `id.tag` text of [`super::unsubscribe`] tokens: the length prefix
//! keeps touch and URL apart whatever characters they hold, with no separator to pick.
//!
//! The rewrites never wrap the one-click unsubscribe link: RFC 8058 receivers and
//! mailbox providers distrust an unsubscribe that goes through a redirect. Callers pass
//! its base (`unsubscribe::https_url(public_url, "")`) as `skip_prefix`; every URL
//! starting with it is left alone. The rewrites are pure and ask `link` for each
//! replacement, so the caller decides how the click URL is built (and may decline one
//! by returning `None`).

mod html;
mod text;

use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use hmac::{Hmac, Mac};
use sha2::Sha256;

pub use html::rewrite_html;
pub use text::rewrite_text;

/// Binds a MAC to this use: a key shared with unsubscribe tokens never yields a valid
/// click token from one, nor the other way round.
const PURPOSE: &[u8] = b"rapport-click\0";
/// The first byte of every token we issue, covered by the MAC: a later layout gets a
/// new number, and old emails keep resolving as long as we still read this one.
const VERSION: u8 = 1;
/// 128 bits of HMAC-SHA256: plenty against forgery, half the length of the full tag.
const TAG_LEN: usize = 16;
/// Touch ids are `occasion:contact:occurrence`; a contact id is at most 128 bytes.
const MAX_TOUCH_LEN: usize = 512;
/// Longer URLs are not tracked (the link stays as it is): browsers and proxies start
/// refusing request lines not far beyond this once the URL is base64 inside our own.
const MAX_URL_LEN: usize = 2048;
const HEADER_LEN: usize = 1 + 2;
/// The longest token we issue; anything longer is refused before any decoding work.
const MAX_TOKEN_LEN: usize = (HEADER_LEN + MAX_TOUCH_LEN + MAX_URL_LEN + TAG_LEN).div_ceil(3) * 4;

/// What a verified click token names: the touch that carried the link, and where the
/// link pointed (always http or https).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Click {
    pub touch: String,
    pub url: String,
}

fn mac(key: &[u8], body: &[u8]) -> Hmac<Sha256> {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(PURPOSE);
    mac.update(body);
    mac
}

/// The URL-safe token for a click on `url` in the message of `touch`, or `None` when
/// the URL may not be tracked: not an absolute http(s) URL (see [`trackable`]), or
/// longer than 2048 bytes, or a touch id longer than 512 bytes. Deterministic: the same
/// link in the same touch always gets the same token.
pub fn token(key: &[u8], touch: &str, url: &str) -> Option<String> {
    let fits = touch.len() <= MAX_TOUCH_LEN && url.len() <= MAX_URL_LEN;
    (fits && is_http_url(url)).then(|| seal(key, touch, url))
}

/// Encodes and signs without checking the URL: [`token`] checks, tests forge with this.
fn seal(key: &[u8], touch: &str, url: &str) -> String {
    let touch_len = u16::try_from(touch.len()).expect("touch length checked by the caller");
    let mut body = Vec::with_capacity(HEADER_LEN + touch.len() + url.len() + TAG_LEN);
    body.push(VERSION);
    body.extend_from_slice(&touch_len.to_be_bytes());
    body.extend_from_slice(touch.as_bytes());
    body.extend_from_slice(url.as_bytes());
    let tag = mac(key, &body).finalize().into_bytes();
    body.extend_from_slice(&tag[..TAG_LEN]);
    URL_SAFE_NO_PAD.encode(body)
}

/// The click a token was issued for, or `None` for anything we did not sign with `key`,
/// and for a signed URL that is not http(s) (defence in depth: [`token`] never signs
/// one, but the redirect must not depend on that alone). The MAC is compared in
/// constant time, so timing does not reveal how much of a guess was right.
pub fn verify(key: &[u8], token: &str) -> Option<Click> {
    if token.len() > MAX_TOKEN_LEN {
        return None;
    }
    let raw = URL_SAFE_NO_PAD.decode(token).ok()?;
    let body_len = raw.len().checked_sub(TAG_LEN)?;
    let (body, tag) = raw.split_at(body_len);
    mac(key, body).verify_truncated_left(tag).ok()?;
    let (&version, rest) = body.split_first()?;
    if version != VERSION {
        return None;
    }
    let (len, rest) = rest.split_first_chunk::<2>()?;
    let (touch, url) = rest.split_at_checked(usize::from(u16::from_be_bytes(*len)))?;
    let click = Click {
        touch: String::from_utf8(touch.to_vec()).ok()?,
        url: String::from_utf8(url.to_vec()).ok()?,
    };
    is_http_url(&click.url).then_some(click)
}

/// Whether a link to `url` is wrapped in a click token: an absolute http(s) URL with a
/// host and no whitespace or control characters, that does not start with `skip_prefix`
/// (the one-click unsubscribe base; compared ignoring ASCII case, so a differently
/// spelled host does not slip through). `url` is the URL itself, HTML entities already
/// decoded.
pub fn trackable(url: &str, skip_prefix: Option<&str>) -> bool {
    is_http_url(url) && !skip_prefix.is_some_and(|prefix| starts_with_ignore_case(url, prefix))
}

/// `http://` or `https://` (any case), a non-empty authority, and nothing a browser
/// would strip or stop at.
fn is_http_url(url: &str) -> bool {
    let rest = ["https://", "http://"]
        .into_iter()
        .find(|scheme| starts_with_ignore_case(url, scheme))
        .map(|scheme| &url[scheme.len()..]);
    rest.is_some_and(|r| !r.is_empty() && !r.starts_with(['/', '?', '#']))
        && !url.chars().any(|c| c.is_whitespace() || c.is_control())
}

fn starts_with_ignore_case(s: &str, prefix: &str) -> bool {
    s.as_bytes()
        .get(..prefix.len())
        .is_some_and(|head| head.eq_ignore_ascii_case(prefix.as_bytes()))
}

#[cfg(test)]
mod tests;
