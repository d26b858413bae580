//! The email channel's keys.

use std::{path::PathBuf, time::Duration};

use super::Issues;
use crate::{
    config::{
        DkimAlgorithm, DkimKey, EmailConfig, EmailTransport, TlsMode,
        raw::{RawDkim, RawEmail},
    },
    domain::EmailAddress,
};

pub(super) fn email(issues: &mut Issues<'_>, raw: Option<&RawEmail>) -> Option<EmailConfig> {
    let Some(raw) = raw else {
        issues.push(
            "channels.email",
            "missing: the email channel must be configured",
        );
        return None;
    };
    let (from_name, from) = from(issues, raw);
    let timeout = issues.duration(
        "channels.email.timeout",
        raw.timeout.as_deref(),
        Duration::from_secs(15),
    );
    let pool_size = issues.positive("channels.email.pool_size", raw.pool_size, 16);
    let transport = match raw.transport.as_deref().unwrap_or("outbox") {
        "outbox" => EmailTransport::Outbox {
            dir: PathBuf::from(
                raw.outbox_dir
                    .clone()
                    .unwrap_or_else(|| "data/outbox".into()),
            ),
        },
        "smtp" => smtp(issues, raw, pool_size, timeout),
        other => {
            issues.push(
                "channels.email.transport",
                format!("unknown transport {other:?} (known: outbox, smtp)"),
            );
            return None;
        }
    };
    let list_unsubscribe_mailto = raw.list_unsubscribe_mailto.as_deref().and_then(|m| {
        EmailAddress::parse(m)
            .map_err(|e| issues.push("channels.email.list_unsubscribe_mailto", e.0))
            .ok()
    });
    let dkim = raw.dkim.as_ref().and_then(|d| dkim(issues, d));
    let rate = issues.rate("channels.email.rate", raw.rate.as_deref());
    Some(EmailConfig {
        transport,
        from_name,
        from: from?,
        list_unsubscribe_mailto,
        dkim,
        rate,
        track_clicks: raw.track_clicks.unwrap_or(false),
    })
}

/// `from`: the sender's display name (if any) and address; required.
fn from(issues: &mut Issues<'_>, raw: &RawEmail) -> (Option<String>, Option<EmailAddress>) {
    match raw.from.as_deref() {
        None => {
            issues.push(
                "channels.email.from",
                "missing: e.g. \"Acme <hello@acme.example>\"",
            );
            (None, None)
        }
        Some(f) => match parse_mailbox(f) {
            Ok((n, a)) => (n, Some(a)),
            Err(e) => {
                issues.push("channels.email.from", e);
                (None, None)
            }
        },
    }
}

/// `transport = "smtp"`: the server's URL and how to secure the connection.
fn smtp(
    issues: &mut Issues<'_>,
    raw: &RawEmail,
    pool_size: u32,
    timeout: Duration,
) -> EmailTransport {
    let tls = match raw.tls.as_deref().unwrap_or("starttls") {
        "none" => TlsMode::None,
        "starttls" => TlsMode::StartTls,
        "tls" => TlsMode::Tls,
        other => {
            issues.push(
                "channels.email.tls",
                format!("unknown TLS mode {other:?} (known: none, starttls, tls)"),
            );
            TlsMode::StartTls
        }
    };
    let (host, port) = match raw.url.as_deref().map(parse_smtp_url) {
        Some(Ok(hp)) => hp,
        Some(Err(e)) => {
            issues.push("channels.email.url", e);
            (String::new(), 0)
        }
        None => {
            issues.push(
                "channels.email.url",
                "missing: smtp://HOST:PORT is required when transport = \"smtp\"",
            );
            (String::new(), 0)
        }
    };
    EmailTransport::Smtp {
        host,
        port,
        tls,
        username_env: raw.username_env.clone(),
        password_env: raw.password_env.clone(),
        pool_size,
        timeout,
    }
}

/// `[channels.email.dkim]`: the key file is read when the channel starts (a missing or
/// unreadable file is reported then, naming it).
fn dkim(issues: &mut Issues<'_>, raw: &RawDkim) -> Option<DkimKey> {
    let mut need = |key: &str, v: &Option<String>, example: &str| {
        let v = v.clone().filter(|s| !s.trim().is_empty());
        if v.is_none() {
            issues.missing(&format!("channels.email.dkim.{key}"), example);
        }
        v
    };
    let selector = need(
        "selector",
        &raw.selector,
        "the DNS selector, e.g. \"rapport\"",
    );
    let domain = need(
        "domain",
        &raw.domain,
        "the signing domain, e.g. \"example.com\"",
    );
    let key_file = need("key_file", &raw.key_file, "the path of the PEM private key");
    let algorithm = match raw.algorithm.as_deref().unwrap_or("rsa") {
        "rsa" => DkimAlgorithm::Rsa,
        "ed25519" => DkimAlgorithm::Ed25519,
        other => {
            issues.push(
                "channels.email.dkim.algorithm",
                format!("unknown algorithm {other:?} (known: rsa, ed25519)"),
            );
            return None;
        }
    };
    Some(DkimKey {
        selector: selector?,
        domain: domain?,
        key_file: PathBuf::from(key_file?),
        algorithm,
    })
}

/// `Name <addr@host>` or a bare address.
fn parse_mailbox(s: &str) -> Result<(Option<String>, EmailAddress), String> {
    let s = s.trim();
    let (name, addr) = match (s.find('<'), s.ends_with('>')) {
        (Some(i), true) => (
            Some(s[..i].trim().trim_matches('"').to_owned()),
            &s[i + 1..s.len() - 1],
        ),
        _ => (None, s),
    };
    let addr = EmailAddress::parse(addr).map_err(|e| format!("{s:?}: {e}"))?;
    Ok((name.filter(|n| !n.is_empty()), addr))
}

/// `smtp://host[:port]`; the port defaults to 25.
fn parse_smtp_url(s: &str) -> Result<(String, u16), String> {
    // Never echo what precedes an `@`: it may be a password.
    let shown = match s.rsplit_once('@') {
        Some((_, host)) => format!("smtp://***@{host}"),
        None => s.to_owned(),
    };
    let bad = || format!("{shown:?} is not an SMTP URL (expected smtp://HOST:PORT)");
    let rest = s
        .strip_prefix("smtp://")
        .or_else(|| s.strip_prefix("smtps://"))
        .ok_or_else(bad)?;
    let rest = rest.trim_end_matches('/');
    if rest.contains('@') || rest.contains('/') {
        return Err(format!(
            "{shown:?}: put credentials in username_env / password_env, not in the URL"
        ));
    }
    let (host, port) = match rest.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(']') || h.starts_with('[') => {
            (h, p.parse::<u16>().map_err(|_| bad())?)
        }
        _ => (rest, 25),
    };
    if host.is_empty() {
        return Err(bad());
    }
    Ok((
        host.trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned(),
        port,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smtp_urls() {
        assert_eq!(
            parse_smtp_url("smtp://127.0.0.1:2525"),
            Ok(("127.0.0.1".into(), 2525))
        );
        assert_eq!(
            parse_smtp_url("smtp://mail.example.com"),
            Ok(("mail.example.com".into(), 25))
        );
        assert_eq!(parse_smtp_url("smtp://[::1]:25"), Ok(("::1".into(), 25)));
        let e = parse_smtp_url("smtp://user:Hunter2@host:25").unwrap_err();
        assert!(!e.contains("Hunter2") && e.contains("username_env"), "{e}");
        assert!(parse_smtp_url("http://x").is_err());
    }

    #[test]
    fn mailboxes() {
        let (n, a) = parse_mailbox("Acme Team <hello@acme.example>").unwrap();
        assert_eq!(
            (n.as_deref(), a.as_str()),
            (Some("Acme Team"), "hello@acme.example")
        );
        assert!(parse_mailbox("Acme <nope>").is_err());
    }
}
