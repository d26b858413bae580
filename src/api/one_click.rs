//! The body of an RFC 8058 one-click unsubscribe: the field `List-Unsubscribe` with the
//! value `One-Click`, as `application/x-www-form-urlencoded` or, as the RFC recommends,
//! `multipart/form-data`. Any other body is a 400: requiring it is what tells a
//! mailbox provider's deliberate POST from a scanner or a stray request.
//!
//! Providers send that one field and nothing else, so the multipart reader here knows
//! just enough to find one short text field by name (axum's multipart extractor is a
//! feature and a dependency this crate does not take for it).

use crate::store::Store;
use axum::extract::{FromRequest, Request};
use axum::http::header::CONTENT_TYPE;

use super::{ApiError, ApiState, json::read_body};

const FIELD: &str = "List-Unsubscribe";
const VALUE: &str = "One-Click";

/// A request whose body asks for the one-click unsubscribe (at most `api.max_body`).
pub(super) struct OneClick;

impl<S: Store> FromRequest<ApiState<S>> for OneClick {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &ApiState<S>) -> Result<Self, ApiError> {
        let content_type = req
            .headers()
            .get(CONTENT_TYPE)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
        let body = read_body(req, state).await?;
        if asks_for_one_click(content_type.as_deref(), &body) {
            Ok(Self)
        } else {
            Err(ApiError::BadRequest {
                code: "not_one_click",
                message: format!(
                    "the body must be {FIELD}={VALUE}, as application/x-www-form-urlencoded or multipart/form-data (RFC 8058)"
                ),
            })
        }
    }
}

/// Whether `body`, sent as `content_type`, holds `List-Unsubscribe=One-Click`. A
/// missing content type is read as a form: that body can only mean one thing.
fn asks_for_one_click(content_type: Option<&str>, body: &[u8]) -> bool {
    let mut params = content_type.unwrap_or("").split(';');
    let essence = params.next().unwrap_or("").trim().to_ascii_lowercase();
    let is_one_click =
        |name: &str, value: &[u8]| name == FIELD && value.trim_ascii() == VALUE.as_bytes();
    match essence.as_str() {
        "" | "application/x-www-form-urlencoded" => url::form_urlencoded::parse(body)
            .any(|(name, value)| is_one_click(&name, value.as_bytes())),
        "multipart/form-data" => boundary(params).is_some_and(|b| {
            multipart_fields(body, &b)
                .iter()
                .any(|(name, value)| is_one_click(name, value))
        }),
        _ => false,
    }
}

/// The `boundary` parameter of a multipart content type, unquoted (RFC 2046: 1 to 70
/// characters).
fn boundary<'a>(mut params: impl Iterator<Item = &'a str>) -> Option<String> {
    params
        .find_map(|p| {
            let (name, value) = p.split_once('=')?;
            name.trim()
                .eq_ignore_ascii_case("boundary")
                .then(|| value.trim().trim_matches('"').to_owned())
        })
        .filter(|b| (1..=70).contains(&b.len()))
}

/// `(name, value)` of each named part of a multipart body. Lines may end in CRLF (as
/// the RFC says) or a bare LF; a part not closed by a delimiter is left out.
fn multipart_fields<'a>(body: &'a [u8], boundary: &str) -> Vec<(String, &'a [u8])> {
    let dash = format!("--{boundary}");
    let delimiter = format!("\n{dash}");
    let mut fields = Vec::new();
    // The first delimiter may open the body; any other follows a line break.
    let mut rest = match body.strip_prefix(dash.as_bytes()) {
        Some(rest) => rest,
        None => match find(body, delimiter.as_bytes()) {
            Some(at) => &body[at + delimiter.len()..],
            None => return fields,
        },
    };
    // After each delimiter: `--` closes the body; otherwise the rest of that line
    // (transport padding) and then a part up to the next delimiter.
    while !rest.starts_with(b"--") {
        let Some(eol) = find(rest, b"\n") else { break };
        let part = &rest[eol + 1..];
        let Some(end) = find(part, delimiter.as_bytes()) else {
            break;
        };
        if let Some(field) = named_part(without_cr(&part[..end])) {
            fields.push(field);
        }
        rest = &part[end + delimiter.len()..];
    }
    fields
}

/// A part's `Content-Disposition: form-data; name="..."` and its content.
fn named_part(part: &[u8]) -> Option<(String, &[u8])> {
    let mut name = None;
    let mut at = 0;
    // Headers, up to the first empty line.
    loop {
        let eol = at + find(&part[at..], b"\n")?;
        let line = String::from_utf8_lossy(without_cr(&part[at..eol]));
        at = eol + 1;
        if line.is_empty() {
            break;
        }
        if let Some((header, value)) = line.split_once(':')
            && header.trim().eq_ignore_ascii_case("content-disposition")
        {
            name = form_data_name(value);
        }
    }
    Some((name?, &part[at..]))
}

/// `name` of a `form-data` disposition (`form-data; name="List-Unsubscribe"`).
fn form_data_name(disposition: &str) -> Option<String> {
    let mut params = disposition.split(';');
    if !params.next()?.trim().eq_ignore_ascii_case("form-data") {
        return None;
    }
    params.find_map(|p| {
        let (key, value) = p.split_once('=')?;
        key.trim()
            .eq_ignore_ascii_case("name")
            .then(|| value.trim().trim_matches('"').to_owned())
    })
}

fn without_cr(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r").unwrap_or(line)
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    const FORM: Option<&str> = Some("application/x-www-form-urlencoded");

    fn multipart(boundary: &str, body: &str) -> bool {
        let ct = format!("multipart/form-data; boundary={boundary}");
        asks_for_one_click(Some(&ct), body.as_bytes())
    }

    #[test]
    fn url_encoded_bodies() {
        for ok in [
            "List-Unsubscribe=One-Click",
            "List-Unsubscribe=One-Click\r\n",
            "List%2DUnsubscribe=One%2DClick",
            "a=b&List-Unsubscribe=One-Click&c",
        ] {
            assert!(asks_for_one_click(FORM, ok.as_bytes()), "{ok:?}");
        }
        for ct in [
            None,
            Some("Application/X-WWW-Form-URLEncoded; charset=utf-8"),
        ] {
            assert!(
                asks_for_one_click(ct, b"List-Unsubscribe=One-Click"),
                "{ct:?}"
            );
        }
        for bad in [
            "",
            "List-Unsubscribe",
            "List-Unsubscribe=",
            "List-Unsubscribe=one-click",
            "list-unsubscribe=One-Click",
            "List-Unsubscribe=One-Click-Not",
            "{\"List-Unsubscribe\":\"One-Click\"}",
        ] {
            assert!(!asks_for_one_click(FORM, bad.as_bytes()), "{bad:?}");
        }
        for ct in ["text/plain", "application/json", "multipart/form-data"] {
            assert!(
                !asks_for_one_click(Some(ct), b"List-Unsubscribe=One-Click"),
                "{ct}"
            );
        }
    }

    #[test]
    fn multipart_bodies() {
        // As reqwest and curl send it.
        let crlf = "--XyZ\r\nContent-Disposition: form-data; name=\"List-Unsubscribe\"\r\n\r\nOne-Click\r\n--XyZ--\r\n";
        assert!(multipart("XyZ", crlf));
        assert!(multipart("\"XyZ\"", crlf), "quoted boundary");
        assert!(multipart("XyZ", &crlf.replace("\r\n", "\n")), "bare LF");
        let with_more = "preamble\r\n--b\r\nContent-Disposition: form-data; name=\"x\"\r\n\r\ny\r\n--b  \r\ncontent-type: text/plain\r\nCONTENT-DISPOSITION: Form-Data; Name=List-Unsubscribe\r\n\r\nOne-Click\r\n--b--";
        assert!(multipart("b", with_more));
        let ct = "multipart/form-data; charset=utf-8; BOUNDARY=\"a=b\"";
        let body = "--a=b\r\nContent-Disposition: form-data; name=\"List-Unsubscribe\"\r\n\r\nOne-Click\r\n--a=b--\r\n";
        assert!(asks_for_one_click(Some(ct), body.as_bytes()));

        for bad in [
            // Another boundary, another name, a file name only, another value.
            crlf.replace("XyZ", "Other"),
            crlf.replace("name=\"List-Unsubscribe\"", "name=\"List-Unsubscribe2\""),
            crlf.replace(
                "; name=\"List-Unsubscribe\"",
                "; filename=\"List-Unsubscribe\"",
            ),
            crlf.replace("form-data", "attachment"),
            crlf.replace("One-Click", "One-Click!"),
            // Not closed by a delimiter; no headers at all; empty.
            crlf.replace("\r\n--XyZ--\r\n", ""),
            "--XyZ\r\n\r\nOne-Click\r\n--XyZ--".into(),
            String::new(),
        ] {
            assert!(!multipart("XyZ", &bad), "{bad:?}");
        }
        let no_boundary = asks_for_one_click(Some("multipart/form-data"), crlf.as_bytes());
        assert!(!no_boundary);
        assert!(!multipart(
            &"b".repeat(71),
            &crlf.replace("XyZ", &"b".repeat(71))
        ));
    }
}
