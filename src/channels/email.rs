//! Building the MIME message both transports send.

mod dkim;

pub use dkim::Dkim;
use lettre::{
    Message,
    message::{
        Mailbox, MessageBuilder, MultiPart, SinglePart,
        header::{ContentType, HeaderName, HeaderValue},
    },
};

use super::DeliveryError;
use crate::{
    config::EmailConfig,
    domain::{EmailAddress, TouchId},
    render::RenderedEmail,
};

/// RFC 5322's limit on a header line, CRLF excluded.
const MAX_LINE: usize = 998;

/// One email, ready to go.
#[derive(Debug, Clone)]
pub struct OutboundEmail {
    pub touch: TouchId,
    pub to: EmailAddress,
    pub to_name: Option<String>,
    pub content: RenderedEmail,
    /// `List-Unsubscribe` targets; `None` for a transactional email.
    pub unsubscribe: Option<ListUnsubscribe>,
}

/// Where a recipient can unsubscribe (RFC 2369 / RFC 8058): the one-click https URL
/// with the contact's signed token, and/or a mailto address.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListUnsubscribe {
    pub https: Option<String>,
    pub mailto: Option<String>,
}

impl OutboundEmail {
    /// Derived from the touch id, so every retry of a touch carries the same Message-ID
    /// (receivers and our own tests can deduplicate on it) and no two touches share one.
    pub fn message_id(&self, domain: &str) -> String {
        format!("<{}@{domain}>", self.touch.token())
    }
}

/// The message as sent, signed with `dkim` when given. Any failure is permanent: the
/// same input would fail the same way on a retry.
pub fn build_message(
    cfg: &EmailConfig,
    dkim: Option<&Dkim>,
    email: &OutboundEmail,
) -> Result<Message, DeliveryError> {
    let bad = |what: &str| DeliveryError::permanent(format!("cannot build message: bad {what}"));
    let from = Mailbox::new(
        cfg.from_name.as_deref().map(one_line),
        cfg.from.as_str().parse().map_err(|_| bad("from address"))?,
    );
    let to = Mailbox::new(
        email.to_name.as_deref().map(one_line),
        email
            .to
            .as_str()
            .parse()
            .map_err(|_| bad("recipient address"))?,
    );
    let mut builder = Message::builder()
        .from(from)
        .to(to)
        .subject(one_line(&email.content.subject))
        .message_id(Some(email.message_id(cfg.from.domain())));
    if let Some(targets) = &email.unsubscribe {
        builder = with_list_unsubscribe(builder, targets)?;
    }
    let text = SinglePart::builder()
        .header(ContentType::TEXT_PLAIN)
        .body(email.content.text.clone());
    let built = match &email.content.html {
        None => builder.singlepart(text),
        Some(html) => builder.multipart(
            MultiPart::alternative().singlepart(text).singlepart(
                SinglePart::builder()
                    .header(ContentType::TEXT_HTML)
                    .body(html.clone()),
            ),
        ),
    };
    let mut message = built.map_err(|_| bad("message"))?;
    if let Some(dkim) = dkim {
        dkim.sign(&mut message);
    }
    Ok(message)
}

/// Names and subjects come from contact data and templates. lettre already puts a CR or
/// LF inside an RFC 2047 encoded word, so none can start a header line; they are still
/// replaced, because a decoded name or subject with line breaks is what a log line or a
/// forwarding tool would write out raw.
fn one_line(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// `List-Unsubscribe` (https first, then mailto) and, with an https URL, the RFC 8058
/// one-click `List-Unsubscribe-Post`.
fn with_list_unsubscribe(
    builder: MessageBuilder,
    targets: &ListUnsubscribe,
) -> Result<MessageBuilder, DeliveryError> {
    let https = targets.https.as_deref().map(|u| checked_uri(u, "https://"));
    let mailto = targets.mailto.as_deref().map(|u| checked_uri(u, "mailto:"));
    let uris = [https.transpose()?, mailto.transpose()?];
    let value = uris
        .iter()
        .flatten()
        .map(|u| format!("<{u}>"))
        .collect::<Vec<_>>()
        .join(", ");
    if value.is_empty() {
        return Ok(builder);
    }
    if "List-Unsubscribe: ".len() + value.len() > MAX_LINE {
        return Err(DeliveryError::permanent(
            "cannot build message: List-Unsubscribe longer than a header line may be",
        ));
    }
    // Pre-encoded, so lettre does not fold it: a folded List-Unsubscribe is what relays
    // refold, breaking the DKIM signature over it. Safe only because `checked_uri`
    // admitted nothing but printable ASCII without spaces or angle brackets.
    let name = HeaderName::new_from_ascii_str("List-Unsubscribe");
    let mut builder = builder.raw_header(HeaderValue::dangerous_new_pre_encoded(
        name,
        value.clone(),
        value,
    ));
    if uris[0].is_some() {
        builder = builder.raw_header(HeaderValue::new(
            HeaderName::new_from_ascii_str("List-Unsubscribe-Post"),
            "List-Unsubscribe=One-Click".into(),
        ));
    }
    Ok(builder)
}

/// The URI if it has `scheme` and could not end the `<...>` it goes into, start a new
/// one or a new header line. The error names the kind only: the URI holds a token.
fn checked_uri<'a>(uri: &'a str, scheme: &str) -> Result<&'a str, DeliveryError> {
    let has_scheme = uri
        .get(..scheme.len())
        .is_some_and(|s| s.eq_ignore_ascii_case(scheme));
    let clean = uri
        .bytes()
        .all(|b| b.is_ascii_graphic() && !matches!(b, b'<' | b'>'));
    if has_scheme && uri.len() > scheme.len() && clean {
        Ok(uri)
    } else {
        let kind = scheme.trim_end_matches(['/', ':']);
        Err(DeliveryError::permanent(format!(
            "cannot build message: bad List-Unsubscribe {kind} URI"
        )))
    }
}

#[cfg(test)]
mod tests {
    use base64::{Engine as _, engine::general_purpose::STANDARD};

    use super::*;
    use crate::{
        channels::DeliveryClass,
        config::{DkimAlgorithm, DkimKey, EmailTransport},
        domain::ContactId,
    };

    const HTTPS: &str = "https://u.rapport.example/u/YWRh.c2lnbmF0dXJl";
    const MAILTO: &str = "mailto:unsub@rapport.example?subject=unsubscribe%20YWRh.c2ln";

    fn cfg() -> EmailConfig {
        EmailConfig {
            transport: EmailTransport::Outbox {
                dir: "/unused".into(),
            },
            from_name: Some("Rapport".into()),
            from: EmailAddress::parse("hello@rapport.example").unwrap(),
            list_unsubscribe_mailto: None,
            dkim: None,
            rate: None,
            track_clicks: false,
        }
    }

    fn email(unsubscribe: Option<ListUnsubscribe>) -> OutboundEmail {
        OutboundEmail {
            touch: TouchId::derive("birthday", &ContactId::parse("ada").unwrap(), "2026"),
            to: EmailAddress::parse("ada@example.com").unwrap(),
            to_name: Some("Ada Lovelace".into()),
            content: RenderedEmail {
                subject: "Happy birthday".into(),
                text: "Dear Ada,\r\nall the best.\r\n".into(),
                html: None,
            },
            unsubscribe,
        }
    }

    fn both() -> Option<ListUnsubscribe> {
        Some(ListUnsubscribe {
            https: Some(HTTPS.into()),
            mailto: Some(MAILTO.into()),
        })
    }

    /// The header block as sent, one line per entry (continuations not joined).
    fn header_lines(message: &Message) -> Vec<String> {
        let raw = String::from_utf8(message.formatted()).unwrap();
        let (head, _) = raw.split_once("\r\n\r\n").unwrap();
        head.split("\r\n").map(str::to_owned).collect()
    }

    /// Every header with this name, unfolded.
    fn headers(message: &Message, name: &str) -> Vec<String> {
        let mut unfolded: Vec<String> = Vec::new();
        for line in header_lines(message) {
            match unfolded.last_mut() {
                Some(last) if line.starts_with([' ', '\t']) => last.push_str(&line),
                _ => unfolded.push(line),
            }
        }
        unfolded
            .into_iter()
            .filter_map(|h| {
                let (n, v) = h.split_once(':')?;
                n.eq_ignore_ascii_case(name).then(|| v.trim().to_owned())
            })
            .collect()
    }

    /// The text of the `=?utf-8?b?...?=` words in a header value, joined.
    fn decoded_words(value: &str) -> String {
        let mut out = Vec::new();
        for word in value.split("=?utf-8?b?").skip(1) {
            let (b64, _) = word.split_once("?=").unwrap();
            out.extend(STANDARD.decode(b64).unwrap());
        }
        String::from_utf8(out).unwrap()
    }

    fn build(email: &OutboundEmail) -> Message {
        build_message(&cfg(), None, email).unwrap()
    }

    #[test]
    fn both_list_headers_go_on_one_line_https_first() {
        let m = build(&email(both()));
        let want = format!("List-Unsubscribe: <{HTTPS}>, <{MAILTO}>");
        assert!(header_lines(&m).contains(&want), "{:?}", header_lines(&m));
        assert_eq!(
            headers(&m, "List-Unsubscribe-Post"),
            ["List-Unsubscribe=One-Click"]
        );
    }

    #[test]
    fn one_click_needs_an_https_url() {
        let only_mailto = email(Some(ListUnsubscribe {
            https: None,
            mailto: Some(MAILTO.into()),
        }));
        let m = build(&only_mailto);
        assert_eq!(headers(&m, "List-Unsubscribe"), [format!("<{MAILTO}>")]);
        assert!(headers(&m, "List-Unsubscribe-Post").is_empty());

        let only_https = email(Some(ListUnsubscribe {
            https: Some(HTTPS.into()),
            mailto: None,
        }));
        let m = build(&only_https);
        assert_eq!(headers(&m, "List-Unsubscribe"), [format!("<{HTTPS}>")]);
        assert_eq!(headers(&m, "List-Unsubscribe-Post").len(), 1);
    }

    #[test]
    fn a_transactional_email_has_no_list_headers() {
        for unsubscribe in [None, Some(ListUnsubscribe::default())] {
            let m = build(&email(unsubscribe));
            assert!(headers(&m, "List-Unsubscribe").is_empty());
            assert!(headers(&m, "List-Unsubscribe-Post").is_empty());
        }
    }

    #[test]
    fn a_uri_that_could_break_out_of_its_header_fails_permanently() {
        let bad_https = [
            format!("{HTTPS}\r\nBcc: evil@example.com"),
            format!("{HTTPS}\n"),
            format!("{HTTPS} x"),
            format!("{HTTPS}>, <https://evil.example"),
            "http://u.rapport.example/u/x".into(),
            "https://".into(),
            "https://ü.example/u/x".into(),
        ];
        for https in bad_https {
            let e = email(Some(ListUnsubscribe {
                https: Some(https.clone()),
                mailto: Some(MAILTO.into()),
            }));
            let err = build_message(&cfg(), None, &e).unwrap_err();
            assert_eq!(err.class, DeliveryClass::Permanent, "{https:?}");
            assert!(err.reason.contains("https URI"), "{https:?}: {err}");
            assert!(!err.reason.contains("rapport.example"), "URI leaked: {err}");
        }
        let e = email(Some(ListUnsubscribe {
            https: None,
            mailto: Some("mailto:a@example.com?subject=a\rb".into()),
        }));
        let err = build_message(&cfg(), None, &e).unwrap_err();
        assert!(err.reason.contains("mailto URI"), "{err}");
        let long = email(Some(ListUnsubscribe {
            https: Some(format!("{HTTPS}{}", "a".repeat(1000))),
            mailto: None,
        }));
        let err = build_message(&cfg(), None, &long).unwrap_err();
        assert!(err.reason.contains("longer"), "{err}");
    }

    #[test]
    fn line_breaks_in_a_name_or_subject_never_make_a_header() {
        let mut e = email(None);
        e.to_name = Some("Ada\r\nBcc: evil@example.com".into());
        e.content.subject = "Hi\r\nBcc: evil@example.com\nX-Evil: 1\r".into();
        let m = build(&e);
        for line in header_lines(&m) {
            let lower = line.to_ascii_lowercase();
            assert!(
                !lower.starts_with("bcc") && !lower.starts_with("x-evil"),
                "{line:?}"
            );
        }
        assert_eq!(m.envelope().to().len(), 1);
        let to = headers(&m, "To").remove(0);
        assert!(to.starts_with("=?utf-8?b?"), "name not encoded: {to}");
        assert!(to.ends_with("<ada@example.com>"), "{to}");
        assert_eq!(decoded_words(&to), "Ada  Bcc: evil@example.com");
        // Line breaks became spaces: what looked like headers is the subject's text.
        assert_eq!(
            headers(&m, "Subject"),
            ["Hi  Bcc: evil@example.com X-Evil: 1"]
        );
    }

    #[test]
    fn the_message_id_derives_from_the_touch() {
        let m = build(&email(None));
        assert_eq!(
            headers(&m, "Message-ID"),
            ["<birthday.ada.2026@rapport.example>"]
        );
    }

    fn ed25519(dir: &std::path::Path) -> Dkim {
        // A throwaway test key: 32 fixed bytes.
        let key_file = dir.join("dkim.key");
        std::fs::write(&key_file, STANDARD.encode([7u8; 32])).unwrap();
        Dkim::load(&DkimKey {
            selector: "s2026".into(),
            domain: "rapport.example".into(),
            key_file,
            algorithm: DkimAlgorithm::Ed25519,
        })
        .unwrap()
    }

    /// A DKIM tag's value, whitespace removed (signatures are folded).
    fn tag(signature: &str, name: &str) -> String {
        let flat: String = signature.split_whitespace().collect();
        flat.split(';')
            .find_map(|t| t.strip_prefix(&format!("{name}=")))
            .unwrap_or_else(|| panic!("no {name}= in {signature}"))
            .to_owned()
    }

    #[test]
    fn a_signed_message_covers_the_list_headers_relaxed() {
        let dir = tempfile::tempdir().unwrap();
        let dkim = ed25519(dir.path());
        let m = build_message(&cfg(), Some(&dkim), &email(both())).unwrap();
        let sig = headers(&m, "DKIM-Signature");
        assert_eq!(sig.len(), 1, "{:?}", header_lines(&m));
        let sig = &sig[0];
        assert_eq!(tag(sig, "d"), "rapport.example");
        assert_eq!(tag(sig, "s"), "s2026");
        assert_eq!(tag(sig, "a"), "ed25519-sha256");
        assert_eq!(tag(sig, "c"), "relaxed/relaxed");
        let signed = tag(sig, "h");
        let signed: Vec<&str> = signed.split(':').collect();
        for h in [
            "from",
            "to",
            "subject",
            "date",
            "message-id",
            "list-unsubscribe",
            "list-unsubscribe-post",
        ] {
            assert!(signed.contains(&h), "{h} not in h={signed:?}");
        }
        assert!(!signed.contains(&"content-type"), "lettre cannot see it");
        assert!(!tag(sig, "b").is_empty());
        // The List-Unsubscribe line is still the unfolded one.
        let want = format!("List-Unsubscribe: <{HTTPS}>, <{MAILTO}>");
        assert!(header_lines(&m).contains(&want));
    }

    /// Runs of spaces and tabs become one space; trailing ones go.
    fn relaxed_line(line: &str) -> String {
        let (mut out, mut blank) = (String::new(), false);
        for c in line.chars() {
            if matches!(c, ' ' | '\t') {
                blank = true;
                continue;
            }
            if std::mem::take(&mut blank) {
                out.push(' ');
            }
            out.push(c);
        }
        out
    }

    /// bh= recomputed independently: relaxed body canonicalization (RFC 6376 3.4.4) and
    /// SHA-256, for a single part and a multipart body.
    #[test]
    fn the_body_hash_matches_the_body_sent() {
        use sha2::{Digest, Sha256};
        let dir = tempfile::tempdir().unwrap();
        let dkim = ed25519(dir.path());
        let mut multi = email(both());
        multi.content.html = Some("<p>Dear  Ada,\t </p>\r\n\r\n".into());
        for e in [email(None), multi] {
            let m = build_message(&cfg(), Some(&dkim), &e).unwrap();
            let raw = String::from_utf8(m.formatted()).unwrap();
            let (_, body) = raw.split_once("\r\n\r\n").unwrap();
            let mut lines: Vec<String> = body.split("\r\n").map(relaxed_line).collect();
            while lines.last().is_some_and(String::is_empty) {
                lines.pop();
            }
            let canonical: String = lines.iter().map(|l| format!("{l}\r\n")).collect();
            let bh = STANDARD.encode(Sha256::digest(canonical.as_bytes()));
            let sig = headers(&m, "DKIM-Signature").remove(0);
            assert_eq!(tag(&sig, "bh"), bh, "{raw}");
        }
    }
}
