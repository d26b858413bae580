//! The headers a receiver sees, over real SMTP (the in-process test server) through the
//! public API: `channels::email_channel` on a config loaded the way the app loads it.
//!
//! Checked on the raw messages as captured: the Message-ID (one per touch, the same on
//! a retry), the RFC 8058 list headers with a token the unsubscribe endpoint accepts,
//! a DKIM signature verified independently of lettre (our own relaxed
//! canonicalization, openssl for the signature), and that a line break in a name or
//! subject never makes a header.

mod support;

use std::{path::Path, process::Command};

use base64::{Engine as _, engine::general_purpose::STANDARD};
use rapport::{
    channels::{self, EmailChannel, ListUnsubscribe, OutboundEmail, unsubscribe},
    config::{Config, DkimAlgorithm, DkimKey, EmailConfig},
    domain::{ContactId, EmailAddress, TouchId},
    render::RenderedEmail,
};
use sha2::{Digest, Sha256};
use support::smtp::{Received, SmtpOptions, SmtpServer};

const REPO: &str = env!("CARGO_MANIFEST_DIR");
const SIGNING_KEY: &[u8] = b"the unsubscribe signing key of these tests";
const PUBLIC_URL: &str = "https://rapport.example/";

/// config/rapport.toml with the SMTP transport pointed at `url`.
fn config(url: String) -> EmailConfig {
    let env = [
        ("RAPPORT__CHANNELS__EMAIL__TRANSPORT", "smtp".to_owned()),
        ("RAPPORT__CHANNELS__EMAIL__URL", url),
        ("RAPPORT__CHANNELS__EMAIL__TLS", "none".to_owned()),
        ("RAPPORT__CHANNELS__EMAIL__TIMEOUT", "5s".to_owned()),
        (
            "RAPPORT__CHANNELS__EMAIL__USERNAME_ENV",
            "RAPPORT_EMAIL_HEADERS_TEST_UNSET_USER".to_owned(),
        ),
        (
            "RAPPORT__CHANNELS__EMAIL__PASSWORD_ENV",
            "RAPPORT_EMAIL_HEADERS_TEST_UNSET_PASSWORD".to_owned(),
        ),
        ("RAPPORT__TEMPLATES__DIR", format!("{REPO}/templates")),
    ]
    .map(|(k, v)| (k.to_owned(), v));
    let cfg = Config::load_with(Path::new(&format!("{REPO}/config/rapport.toml")), None, env)
        .expect("config loads");
    cfg.email
}

fn channel(cfg: &EmailConfig) -> Box<dyn EmailChannel> {
    let ch = channels::email_channel(cfg).expect("smtp channel");
    assert_eq!(ch.kind(), "smtp");
    ch
}

fn contact(id: &str) -> ContactId {
    ContactId::parse(id).unwrap()
}

/// A marketing email to `<contact>@example.com`, with both unsubscribe targets.
fn email(contact_id: &str, occurrence: &str) -> OutboundEmail {
    let c = contact(contact_id);
    let token = unsubscribe::token(SIGNING_KEY, &c);
    let mailbox = EmailAddress::parse("unsubscribe@rapport.example").unwrap();
    OutboundEmail {
        touch: TouchId::derive("birthday", &c, occurrence),
        to: EmailAddress::parse(&format!("{contact_id}@example.com")).unwrap(),
        to_name: Some("Ada Lovelace".into()),
        content: RenderedEmail {
            subject: "Alles Gute, Zoë!".into(),
            text: "Dear Ada,\r\n  many happy returns.  \r\n\r\n".into(),
            html: Some("<p>Dear Ada,</p>\r\n".into()),
        },
        unsubscribe: Some(ListUnsubscribe {
            https: Some(unsubscribe::https_url(PUBLIC_URL, &token)),
            mailto: Some(unsubscribe::mailto(&mailbox, &token)),
        }),
    }
}

fn transactional(contact_id: &str) -> OutboundEmail {
    OutboundEmail {
        unsubscribe: None,
        ..email(contact_id, "receipt")
    }
}

/// The header block, one entry per header with its folding kept, and the body.
fn split(data: &str) -> (Vec<String>, &str) {
    let (head, body) = data.split_once("\r\n\r\n").expect("a header block");
    let mut headers: Vec<String> = Vec::new();
    for line in head.split("\r\n") {
        match headers.last_mut() {
            Some(last) if line.starts_with([' ', '\t']) => {
                last.push_str("\r\n");
                last.push_str(line);
            }
            _ => headers.push(line.to_owned()),
        }
    }
    (headers, body)
}

fn name_of(header: &str) -> &str {
    header.split_once(':').map_or(header, |(n, _)| n.trim())
}

fn raw_headers<'a>(headers: &'a [String], name: &str) -> Vec<&'a String> {
    let found = headers
        .iter()
        .filter(|h| name_of(h).eq_ignore_ascii_case(name));
    found.collect()
}

#[tokio::test]
async fn the_message_id_is_one_per_touch_and_the_same_on_a_retry() {
    let server = SmtpServer::start(SmtpOptions::default()).await;
    let ch = channel(&config(server.url()));
    let (first, second) = (email("ada", "2026"), email("ada", "2027"));
    for sent in [&first, &second, &first] {
        ch.send(sent).await.unwrap();
    }
    let ids: Vec<String> = server
        .messages()
        .into_iter()
        .map(|m| m.message_id.expect("a Message-ID"))
        .collect();
    assert_eq!(ids.len(), 3);
    assert_eq!(ids[0], first.message_id("rapport.example"));
    assert_eq!(ids[0], ids[2], "a retry keeps its Message-ID");
    assert_ne!(ids[0], ids[1], "another touch gets another");
}

#[tokio::test]
async fn list_headers_carry_a_token_that_verifies_for_the_contact() {
    let server = SmtpServer::start(SmtpOptions::default()).await;
    let ch = channel(&config(server.url()));
    ch.send(&email("ada", "2026")).await.unwrap();
    ch.send(&transactional("bob")).await.unwrap();
    let msgs = server.messages();

    let (headers, _) = split(&msgs[0].data);
    let list = raw_headers(&headers, "List-Unsubscribe");
    assert_eq!(list.len(), 1, "{headers:?}");
    assert!(!list[0].contains('\n'), "folded: {:?}", list[0]);
    let value = list[0].strip_prefix("List-Unsubscribe: ").unwrap();
    let (https, mailto) = value.split_once(", ").expect("two targets");
    let https = https
        .strip_prefix('<')
        .and_then(|u| u.strip_suffix('>'))
        .unwrap();
    let mailto = mailto
        .strip_prefix('<')
        .and_then(|u| u.strip_suffix('>'))
        .unwrap();
    let token = https
        .strip_prefix("https://rapport.example/u/")
        .expect("the one-click URL under the public URL");
    assert_eq!(
        unsubscribe::verify(SIGNING_KEY, token),
        Some(contact("ada"))
    );
    assert_eq!(unsubscribe::verify(b"another key", token), None);
    assert_eq!(
        mailto,
        format!("mailto:unsubscribe@rapport.example?subject=unsubscribe%20{token}")
    );
    assert_eq!(
        msgs[0].header("List-Unsubscribe-Post").as_deref(),
        Some("List-Unsubscribe=One-Click")
    );

    assert_eq!(msgs[1].header("List-Unsubscribe"), None, "transactional");
    assert_eq!(
        msgs[1].header("List-Unsubscribe-Post"),
        None,
        "transactional"
    );
}

#[tokio::test]
async fn a_line_break_in_a_name_or_subject_makes_no_header() {
    let server = SmtpServer::start(SmtpOptions::default()).await;
    let ch = channel(&config(server.url()));
    let mut sent = transactional("ada");
    sent.to_name = Some("Ada\r\nBcc: evil@example.com".into());
    sent.content.subject = "Hello\r\nBcc: evil@example.com\r\n\r\nfake body".into();
    ch.send(&sent).await.unwrap();

    let m = &server.messages()[0];
    assert_eq!(m.rcpt_to, ["ada@example.com"]);
    let (headers, body) = split(&m.data);
    assert!(raw_headers(&headers, "Bcc").is_empty(), "{headers:?}");
    assert!(!body.contains("fake body"), "{body}");
    let to = raw_headers(&headers, "To");
    assert!(
        to[0].starts_with("To: =?utf-8?b?"),
        "not an encoded word: {to:?}"
    );
    assert!(!to[0].contains("evil@"), "in plain text: {to:?}");
    assert!(to[0].ends_with("<ada@example.com>"), "{to:?}");
    let name = m.header("To").unwrap();
    assert!(name.contains("Bcc: evil@example.com"), "{name}");
    assert!(!name.contains(['\r', '\n']), "{name:?}");
    // Line breaks became spaces: what looked like a header is the subject's text.
    let subject = raw_headers(&headers, "Subject");
    assert_eq!(subject.len(), 1, "{headers:?}");
    assert!(
        subject[0].starts_with("Subject: Hello  Bcc: evil@"),
        "{subject:?}"
    );
}

/// A throwaway key pair from the openssl tool: the private key for rapport, the public
/// one for the independent check.
fn keypair(dir: &Path, algorithm: DkimAlgorithm) -> (DkimKey, std::path::PathBuf) {
    let (key_file, public) = (dir.join("dkim.pem"), dir.join("dkim.pub.pem"));
    let gen_args: &[&str] = match algorithm {
        DkimAlgorithm::Rsa => &["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"],
        DkimAlgorithm::Ed25519 => &["-algorithm", "ed25519"],
    };
    let key = key_file.to_str().unwrap();
    openssl(&[&["genpkey", "-out", key][..], gen_args].concat());
    openssl(&[
        "pkey",
        "-in",
        key,
        "-pubout",
        "-out",
        public.to_str().unwrap(),
    ]);
    let dkim = DkimKey {
        selector: "s2026".into(),
        domain: "rapport.example".into(),
        key_file,
        algorithm,
    };
    (dkim, public)
}

fn openssl(args: &[&str]) -> std::process::Output {
    Command::new("openssl")
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "the DKIM tests need the openssl command line tool (apt-get install openssl): {e}"
            )
        })
}

#[tokio::test]
async fn a_dkim_signature_covers_the_list_headers_and_verifies() {
    for algorithm in [DkimAlgorithm::Rsa, DkimAlgorithm::Ed25519] {
        let dir = tempfile::tempdir().unwrap();
        let (key, public) = keypair(dir.path(), algorithm);
        let server = SmtpServer::start(SmtpOptions::default()).await;
        let mut cfg = config(server.url());
        cfg.dkim = Some(key);
        let ch = channel(&cfg);
        ch.send(&email("ada", "2026")).await.unwrap();
        ch.send(&transactional("bob")).await.unwrap();
        let msgs = server.messages();

        let signature = msgs[0].header("DKIM-Signature").expect("signed");
        let signed = tags(&signature)["h"].to_ascii_lowercase();
        let signed: Vec<&str> = signed.split(':').collect();
        for h in [
            "list-unsubscribe",
            "list-unsubscribe-post",
            "message-id",
            "from",
        ] {
            assert!(
                signed.contains(&h),
                "{algorithm:?}: {h} not in h={signed:?}"
            );
        }
        for m in &msgs {
            verify(&m.data, &public).unwrap_or_else(|e| panic!("{algorithm:?}: {e}"));
        }
        assert_tampering_is_caught(&msgs[0], &public);
    }
}

/// The checker can fail: a changed unsubscribe URL, a removed one-click header, a
/// changed body and an added List-Unsubscribe (on a message signed without one) are
/// each rejected.
fn assert_tampering_is_caught(m: &Received, public: &Path) {
    let data = &m.data;
    let url = data.replacen("https://rapport.example/u/", "https://evil.example/u/", 1);
    let post = data.replacen(
        "List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n",
        "",
        1,
    );
    let body = data.replacen("many happy returns", "many happy return$", 1);
    for (what, forged) in [("url", url), ("post", post), ("body", body)] {
        assert_ne!(&forged, data, "{what}: nothing replaced");
        assert!(verify(&forged, public).is_err(), "{what}: forgery verified");
    }
}

#[tokio::test]
async fn a_list_header_added_after_signing_breaks_the_signature() {
    let dir = tempfile::tempdir().unwrap();
    let (key, public) = keypair(dir.path(), DkimAlgorithm::Rsa);
    let server = SmtpServer::start(SmtpOptions::default()).await;
    let mut cfg = config(server.url());
    cfg.dkim = Some(key);
    channel(&cfg).send(&transactional("bob")).await.unwrap();
    let data = &server.messages()[0].data;
    verify(data, &public).unwrap();
    let forged = format!("List-Unsubscribe: <https://evil.example/u/x>\r\n{data}");
    assert!(
        verify(&forged, &public).is_err(),
        "an added header verified"
    );
}

#[test]
fn a_missing_dkim_key_stops_the_channel_from_being_built() {
    let mut cfg = config("smtp://127.0.0.1:9".into());
    cfg.dkim = Some(DkimKey {
        selector: "s2026".into(),
        domain: "rapport.example".into(),
        key_file: "/nonexistent/dkim.pem".into(),
        algorithm: DkimAlgorithm::Rsa,
    });
    let err = channels::email_channel(&cfg)
        .err()
        .expect("no channel")
        .to_string();
    assert!(err.contains("/nonexistent/dkim.pem"), "{err}");
}

/// A DKIM signature's tags, whitespace removed.
fn tags(signature: &str) -> std::collections::HashMap<String, String> {
    signature
        .split(';')
        .filter_map(|t| {
            let (k, v) = t.split_once('=')?;
            Some((k.trim().to_owned(), v.split_whitespace().collect()))
        })
        .collect()
}

/// RFC 6376 3.4.2: lowercase name, unfolded, runs of whitespace as one space, none
/// around the colon or at the end.
fn relaxed_header(header: &str) -> String {
    let (name, value) = header.split_once(':').unwrap();
    let unfolded = value.replace("\r\n", "");
    let value: Vec<&str> = unfolded
        .split([' ', '\t'])
        .filter(|w| !w.is_empty())
        .collect();
    format!(
        "{}:{}\r\n",
        name.trim().to_ascii_lowercase(),
        value.join(" ")
    )
}

/// RFC 6376 3.4.4: runs of whitespace as one space, none at line ends, no empty lines
/// at the end.
fn relaxed_body(body: &str) -> String {
    let mut lines: Vec<String> = body
        .split("\r\n")
        .map(|line| {
            let (mut out, mut blank) = (String::new(), false);
            for c in line.chars() {
                if matches!(c, ' ' | '\t') {
                    blank = true;
                } else {
                    if std::mem::take(&mut blank) {
                        out.push(' ');
                    }
                    out.push(c);
                }
            }
            out
        })
        .collect();
    while lines.last().is_some_and(String::is_empty) {
        lines.pop();
    }
    lines.iter().map(|l| format!("{l}\r\n")).collect()
}

/// The DKIM-Signature header with the b= value emptied (RFC 6376 3.7), folding kept.
fn without_b(header: &str) -> String {
    let mut out = String::new();
    let mut parts = header.split(';').peekable();
    while let Some(part) = parts.next() {
        let tag = part.trim_start_matches([' ', '\t', '\r', '\n']);
        if let Some(name) = tag.split_once('=').map(|(n, _)| n.trim()) {
            if name == "b" {
                out.push_str(&part[..part.find('=').unwrap() + 1]);
            } else {
                out.push_str(part);
            }
        } else {
            out.push_str(part);
        }
        if parts.peek().is_some() {
            out.push(';');
        }
    }
    out
}

/// Verifies a relaxed/relaxed DKIM signature the way a receiver does, with openssl for
/// the public-key step (RSA: PKCS#1 v1.5 over SHA-256; Ed25519: RFC 8463, over the
/// SHA-256 of the signed data).
fn verify(data: &str, public: &Path) -> Result<(), String> {
    let (headers, body) = split(data);
    let signature = *raw_headers(&headers, "DKIM-Signature")
        .first()
        .ok_or("no DKIM-Signature")?;
    let t = tags(signature.split_once(':').unwrap().1);
    if t["c"] != "relaxed/relaxed" || t["v"] != "1" {
        return Err(format!("unexpected c={} v={}", t["c"], t["v"]));
    }
    let bh = STANDARD.encode(Sha256::digest(relaxed_body(body).as_bytes()));
    if bh != t["bh"] {
        return Err(format!("body hash {bh} != bh={}", t["bh"]));
    }
    let mut signed = String::new();
    let mut used = vec![false; headers.len()];
    for name in t["h"].split(':') {
        // The last instance not yet used (RFC 6376 5.4.2); none: signed as absent.
        let found = (0..headers.len())
            .rev()
            .find(|&i| !used[i] && name_of(&headers[i]).eq_ignore_ascii_case(name));
        if let Some(i) = found {
            used[i] = true;
            signed.push_str(&relaxed_header(&headers[i]));
        }
    }
    signed.push_str(relaxed_header(&without_b(signature)).trim_end_matches("\r\n"));

    let dir = tempfile::tempdir().unwrap();
    let (data_file, sig_file) = (dir.path().join("data"), dir.path().join("sig"));
    let sig = STANDARD
        .decode(&t["b"])
        .map_err(|e| format!("b= is not base64: {e}"))?;
    std::fs::write(&sig_file, sig).unwrap();
    let (data_path, sig_path) = (data_file.to_str().unwrap(), sig_file.to_str().unwrap());
    let public = public.to_str().unwrap();
    let out = match t["a"].as_str() {
        "rsa-sha256" => {
            std::fs::write(&data_file, signed.as_bytes()).unwrap();
            openssl(&[
                "dgst",
                "-sha256",
                "-verify",
                public,
                "-signature",
                sig_path,
                data_path,
            ])
        }
        "ed25519-sha256" => {
            std::fs::write(&data_file, Sha256::digest(signed.as_bytes())).unwrap();
            openssl(&[
                "pkeyutl", "-verify", "-pubin", "-inkey", public, "-rawin", "-in", data_path,
                "-sigfile", sig_path,
            ])
        }
        other => return Err(format!("unexpected a={other}")),
    };
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "signature does not verify: {}",
            String::from_utf8_lossy(&out.stdout)
        ))
    }
}
