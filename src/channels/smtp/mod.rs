//! SMTP over a pool of our own sessions ([`session`]): pipelined transactions on
//! sockets with TCP_NODELAY, reused directly, a connection idle for a while checked
//! with a NOOP first. A failure mid-transaction is never resent on the spot (the
//! server may have accepted the message): it goes back to the ledger, and its retry
//! carries the same Message-ID.

mod reply;
mod session;

use crate::channels::SetupError;
use std::{
    sync::Mutex,
    time::{Duration, Instant},
};

use futures::future::BoxFuture;
use session::{Endpoint, Progress, Session, SmtpError};
use tokio::sync::Semaphore;

use super::{DeliveryError, EmailChannel, Gate, OutboundEmail, email::Dkim};
use crate::config::{EmailConfig, EmailTransport, TlsMode};

/// Idle connections older than this are closed rather than reused: servers drop idle
/// clients (RFC 5321 suggests 5 minutes), and a fresh connect is cheap by comparison.
const MAX_IDLE: Duration = Duration::from_secs(30);
/// Idle longer than this, a connection is checked with a NOOP before use: under load
/// connections are reused within milliseconds and skip it.
const CHECK_AFTER: Duration = Duration::from_secs(2);

pub(super) struct Smtp {
    cfg: EmailConfig,
    dkim: Option<Dkim>,
    endpoint: Endpoint,
    idle: Mutex<Vec<(Session, Instant)>>,
    slots: Semaphore,
}

impl Smtp {
    pub(super) fn new(cfg: &EmailConfig, dkim: Option<Dkim>) -> Result<Self, SetupError> {
        let EmailTransport::Smtp {
            host,
            port,
            tls,
            username_env,
            password_env,
            pool_size,
            timeout,
        } = &cfg.transport
        else {
            return Err("not an SMTP transport".into());
        };
        // Credentials come from the environment variables the config names; the values
        // never pass through the config file or the logs.
        let read = |name: &Option<String>| {
            name.as_ref()
                .and_then(|n| std::env::var(n).ok())
                .filter(|v| !v.is_empty())
        };
        let credentials = match (read(username_env), read(password_env)) {
            (Some(user), Some(pass)) => Some((user, pass)),
            (Some(_), None) => {
                return Err(format!(
                    "the SMTP username is set but the password variable {} is empty",
                    password_env.as_deref().unwrap_or("(password_env unset)")
                )
                .into());
            }
            _ => None,
        };
        if *tls != TlsMode::None && rustls::pki_types::ServerName::try_from(host.clone()).is_err() {
            return Err(format!("SMTP TLS setup: {host:?} is not a valid server name").into());
        }
        let hello = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_owned())
            .ok()
            .filter(|h| !h.is_empty() && h.is_ascii())
            .unwrap_or_else(|| "localhost".into());
        Ok(Self {
            cfg: cfg.clone(),
            dkim,
            endpoint: Endpoint {
                host: host.clone(),
                port: *port,
                tls: *tls,
                hello,
                credentials,
                timeout: *timeout,
            },
            idle: Mutex::new(Vec::new()),
            slots: Semaphore::new(*pool_size as usize),
        })
    }

    async fn connect(&self, deadline: tokio::time::Instant) -> Result<Session, DeliveryError> {
        // Anything that fails while setting up the session (greeting, EHLO, STARTTLS,
        // AUTH) says nothing about this recipient: even a 5xx there (a rotated password)
        // must not fail the message permanently.
        match tokio::time::timeout_at(deadline, Session::open(&self.endpoint)).await {
            Ok(Ok(session)) => Ok(session),
            Ok(Err(SmtpError::Reply(code))) => Err(DeliveryError::transient(format!(
                "smtp {code} while connecting"
            ))),
            Ok(Err(SmtpError::Before(what) | SmtpError::After(what))) => Err(
                DeliveryError::transient(format!("smtp {what} error while connecting")),
            ),
            Err(_) => Err(DeliveryError::transient("smtp timeout while connecting")),
        }
    }

    fn take_idle(&self) -> Option<(Session, Instant)> {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        while let Some((session, since)) = idle.pop() {
            if since.elapsed() < MAX_IDLE && !session.is_broken() {
                return Some((session, since));
            }
        }
        None
    }

    /// A pooled session that still answers, or a new one. Checking idle sessions and
    /// connecting share one timeout: however many dead sessions the pool holds, getting
    /// one never takes longer than a connection attempt may.
    async fn session(&self) -> Result<Session, DeliveryError> {
        let deadline = tokio::time::Instant::now() + self.endpoint.timeout;
        while let Some((mut session, since)) = self.take_idle() {
            if since.elapsed() < CHECK_AFTER {
                return Ok(session);
            }
            match tokio::time::timeout_at(deadline, session.noop()).await {
                Ok(true) => return Ok(session),
                Ok(false) => {}
                Err(_) => return Err(DeliveryError::transient("smtp timeout while connecting")),
            }
        }
        self.connect(deadline).await
    }

    fn put_idle(&self, session: Session) {
        if !session.is_broken() {
            let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
            // Sessions are taken from the top: expired ones at the bottom would otherwise
            // keep their sockets open for as long as the top one stays busy.
            idle.retain(|(_, since)| since.elapsed() < MAX_IDLE);
            idle.push((session, Instant::now()));
        }
    }

    async fn send_on(
        &self,
        session: &mut Session,
        from: &str,
        to: &[&str],
        bytes: &[u8],
    ) -> Result<(), DeliveryError> {
        match tokio::time::timeout(self.endpoint.timeout, session.send(from, to, bytes)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(classify(&e)),
            // Cut off by the timeout: what it means depends on how far the transaction
            // got. (The session stays broken and is not reused.)
            Err(_) => Err(match session.progress() {
                Progress::Envelope => {
                    DeliveryError::transient("smtp timeout before the message was sent")
                }
                // The server had answered: its answer stands.
                Progress::Refused(code) => classify(&SmtpError::Reply(code)),
                Progress::Body => DeliveryError::uncertain("smtp timeout during the transaction"),
            }),
        }
    }
}

/// 4xx and anything that is not an answer before the body was sent (connection refused,
/// reset, timeout, TLS) is transient; 5xx is permanent, and a hard bounce when its
/// enhanced status says the recipient's address is dead (see
/// [`reply::Reply::refuses_the_address`]: the address is then suppressed). No answer
/// after the body is uncertain: the server may have accepted it, and its retry carries
/// the same Message-ID so a receiver can deduplicate. Reasons carry codes only
/// (`smtp 550 5.1.1`), never the server's text.
fn classify(e: &SmtpError) -> DeliveryError {
    match e {
        SmtpError::Reply(r) if r.refuses_the_address() => {
            DeliveryError::hard_bounce(format!("smtp {r}"))
        }
        SmtpError::Reply(r) if r.code >= 500 => DeliveryError::permanent(format!("smtp {r}")),
        SmtpError::Reply(r) => DeliveryError::transient(format!("smtp {r}")),
        SmtpError::Before(what) => DeliveryError::transient(format!("smtp {what} error")),
        SmtpError::After(_) => {
            DeliveryError::uncertain("smtp connection lost during the transaction")
        }
    }
}

impl EmailChannel for Smtp {
    fn send_gated<'a>(
        &'a self,
        email: &'a OutboundEmail,
        gate: &'a dyn Gate,
    ) -> BoxFuture<'a, Result<(), DeliveryError>> {
        Box::pin(async move {
            let message = super::build_message(&self.cfg, self.dkim.as_ref(), email)?;
            let envelope = message.envelope();
            let from = envelope.from().map(|a| a.to_string()).unwrap_or_default();
            let to: Vec<String> = envelope.to().iter().map(ToString::to_string).collect();
            let to: Vec<&str> = to.iter().map(String::as_str).collect();
            let bytes = message.formatted();
            let _slot = self
                .slots
                .acquire()
                .await
                .map_err(|_| DeliveryError::transient("smtp channel closed"))?;
            let mut session = self.session().await?;
            // Asked after the waits (a pool slot, a connection), right before MAIL FROM:
            // a claim that lapsed meanwhile starts no transaction.
            if let Err(refused) = gate.admit(self.endpoint.timeout).await {
                self.put_idle(session);
                return Err(refused);
            }
            let sent = self.send_on(&mut session, &from, &to, &bytes).await;
            self.put_idle(session);
            sent
        })
    }

    fn kind(&self) -> &'static str {
        "smtp"
    }
}

#[cfg(test)]
mod tests {
    use super::{
        classify,
        reply::{Reply, Step, parse_status},
        session::SmtpError,
    };
    use crate::channels::DeliveryClass::{self, *};

    /// A refusal as the session reports it: the reply line's codes, and the command it
    /// answered.
    fn reply(line: &str, to: Step) -> SmtpError {
        let code: u16 = line[..3].parse().unwrap();
        SmtpError::Reply(Reply {
            code,
            status: parse_status(line.as_bytes(), code),
            to,
        })
    }

    /// Each refusal gets its class, and leaves with a reason made of codes only.
    fn assert_classified(cases: &[(&str, Step, DeliveryClass, &str)]) {
        for &(line, to, class, reason) in cases {
            let e = classify(&reply(line, to));
            assert_eq!(
                (e.class, e.reason.as_str()),
                (class, reason),
                "{line} at {to:?}"
            );
        }
    }

    #[test]
    fn an_address_that_does_not_exist_or_is_disabled_is_a_hard_bounce() {
        assert_classified(&[
            (
                "550 5.1.1 <a@b.test> no such user",
                Step::Rcpt,
                HardBounce,
                "smtp 550 5.1.1",
            ),
            (
                "550 5.1.1 no such user",
                Step::Message,
                HardBounce,
                "smtp 550 5.1.1",
            ),
            (
                "550 5.1.2 no such domain",
                Step::Rcpt,
                HardBounce,
                "smtp 550 5.1.2",
            ),
            (
                "553 5.1.3 bad syntax",
                Step::Rcpt,
                HardBounce,
                "smtp 553 5.1.3",
            ),
            ("551 5.1.6 moved", Step::Rcpt, HardBounce, "smtp 551 5.1.6"),
            (
                "556 5.1.10 null MX",
                Step::Rcpt,
                HardBounce,
                "smtp 556 5.1.10",
            ),
            (
                "550 5.2.1 mailbox disabled",
                Step::Rcpt,
                HardBounce,
                "smtp 550 5.2.1",
            ),
        ]);
    }

    #[test]
    fn a_hard_bounce_says_so() {
        assert_eq!(
            classify(&reply("550 5.1.1 x", Step::Rcpt)).to_string(),
            "smtp 550 5.1.1 (hard bounce)"
        );
    }

    /// About our sender, not the recipient.
    #[test]
    fn an_unknown_address_refused_at_mail_from_is_permanent_not_a_bounce() {
        assert_classified(&[(
            "550 5.1.1 sender unknown",
            Step::Mail,
            Permanent,
            "smtp 550 5.1.1",
        )]);
    }

    /// Policy and content: the message, not the address.
    #[test]
    fn policy_content_and_a_full_mailbox_are_permanent_not_bounces() {
        assert_classified(&[
            (
                "550 5.7.1 <a@b.test> spam",
                Step::Rcpt,
                Permanent,
                "smtp 550 5.7.1",
            ),
            (
                "550 5.7.26 DMARC",
                Step::Message,
                Permanent,
                "smtp 550 5.7.26",
            ),
            (
                "552 5.2.2 mailbox full",
                Step::Rcpt,
                Permanent,
                "smtp 552 5.2.2",
            ),
        ]);
    }

    /// No enhanced status (none announced): ambiguous, not suppressed.
    #[test]
    fn a_5xx_without_an_enhanced_status_is_permanent_not_a_bounce() {
        assert_classified(&[("550 mailbox unavailable", Step::Rcpt, Permanent, "smtp 550")]);
    }

    #[test]
    fn a_4xx_or_a_closing_server_is_transient() {
        assert_classified(&[
            ("450 4.2.0 busy", Step::Rcpt, Transient, "smtp 450 4.2.0"),
            ("421 closing", Step::Message, Transient, "smtp 421"),
        ]);
    }
}
