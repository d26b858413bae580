//! What the test server records of each accepted message, with its headers unfolded and
//! RFC 2047 encoded words decoded.

use std::time::Instant;

/// One accepted message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    pub mail_from: String,
    pub rcpt_to: Vec<String>,
    /// The message as the client meant it: dot-stuffing undone, every line
    /// terminated by CRLF (even if the client sent bare LF).
    pub data: String,
    /// Raw `Message-ID` value, angle brackets included.
    pub message_id: Option<String>,
    /// `Subject`, unfolded and with RFC 2047 encoded words decoded.
    pub subject: Option<String>,
    /// When its MAIL command arrived: the transaction's start.
    pub started_at: Instant,
    /// When the server accepted it (after any configured delay).
    pub accepted_at: Instant,
}

impl Received {
    pub(super) fn parse(
        mail_from: String,
        rcpt_to: Vec<String>,
        data: String,
        started_at: Instant,
    ) -> Received {
        let headers = parse_headers(&data);
        let message_id = find_header(&headers, "Message-ID");
        let subject = find_header(&headers, "Subject").map(|s| decode_encoded_words(&s));
        Received {
            mail_from,
            rcpt_to,
            data,
            message_id,
            subject,
            started_at,
            accepted_at: Instant::now(),
        }
    }

    /// First header with this (case-insensitive) name, unfolded and decoded.
    pub fn header(&self, name: &str) -> Option<String> {
        find_header(&parse_headers(&self.data), name).map(|v| decode_encoded_words(&v))
    }

    /// Everything after the blank line that ends the header block.
    pub fn body(&self) -> &str {
        self.data
            .split_once("\r\n\r\n")
            .map_or("", |(_, body)| body)
    }
}

/// Header block as `(name, unfolded value)` pairs, values trimmed.
fn parse_headers(data: &str) -> Vec<(String, String)> {
    let mut headers: Vec<(String, String)> = Vec::new();
    for line in data.lines() {
        if line.is_empty() {
            break;
        }
        if line.starts_with([' ', '\t']) {
            // Unfolding (RFC 5322 2.2.3) removes only the line break.
            if let Some((_, value)) = headers.last_mut() {
                value.push_str(line);
            }
        } else if let Some((name, value)) = line.split_once(':') {
            headers.push((name.trim().to_string(), value.to_string()));
        }
    }
    for (_, value) in &mut headers {
        *value = value.trim().to_string();
    }
    headers
}

fn find_header(headers: &[(String, String)], name: &str) -> Option<String> {
    let mut found = headers.iter().filter(|(n, _)| n.eq_ignore_ascii_case(name));
    found.next().map(|(_, value)| value.clone())
}

/// Decodes RFC 2047 `=?utf-8?b?...?=` words, which lettre uses for any
/// non-ASCII header (it never emits the `?q?` form, so neither do we decode
/// it); whitespace between adjacent encoded words is dropped, as specified.
fn decode_encoded_words(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    let mut prev_encoded = false;
    while !rest.is_empty() {
        let ws_len = rest.len() - rest.trim_start().len();
        let (ws, tail) = rest.split_at(ws_len);
        let tok_len = tail.find(char::is_whitespace).unwrap_or(tail.len());
        let (tok, tail) = tail.split_at(tok_len);
        rest = tail;
        match decode_word(tok) {
            Some(decoded) => {
                if !prev_encoded {
                    out.push_str(ws);
                }
                out.push_str(&decoded);
                prev_encoded = true;
            }
            None => {
                out.push_str(ws);
                out.push_str(tok);
                prev_encoded = false;
            }
        }
    }
    out
}

fn decode_word(tok: &str) -> Option<String> {
    let inner = tok.strip_prefix("=?")?.strip_suffix("?=")?;
    let (charset, rest) = inner.split_once('?')?;
    let text = rest
        .strip_prefix("b?")
        .or_else(|| rest.strip_prefix("B?"))?;
    if !["utf-8", "us-ascii"]
        .iter()
        .any(|c| charset.eq_ignore_ascii_case(c))
    {
        return None;
    }
    String::from_utf8(decode_base64(text)?).ok()
}

fn decode_base64(text: &str) -> Option<Vec<u8>> {
    let (mut out, mut acc, mut bits) = (Vec::new(), 0u32, 0u32);
    for c in text.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            b'=' => break,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}
