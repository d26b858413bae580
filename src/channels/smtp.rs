//! SMTP through lettre's async client, on a connection pool of our own.
//!
//! Why not lettre's `AsyncSmtpTransport` pool: it leaves Nagle's algorithm on, and lettre
//! writes the message body and the final `.` as two small writes, so every message
//! waits out the peer's delayed ACK (about 40 ms on Linux: ~700 msg/s on 32 connections
//! to a local sink); it also sends a NOOP before every reuse. Here sockets are opened
//! with TCP_NODELAY, handed to lettre's `AsyncSmtpConnection`, and reused directly; a
//! connection idle for a while is checked with a NOOP first. A failure mid-transaction is
//! never resent on the spot (the server may have accepted the message): it goes back to
//! the ledger as a transient failure, and its retry carries the same Message-ID.

use std::{
    sync::Mutex,
    time::{Duration, Instant},
};

use futures::future::BoxFuture;
use lettre::{
    address::Envelope,
    transport::smtp::{
        Error as SmtpError,
        authentication::{Credentials, Mechanism},
        client::{AsyncSmtpConnection, TlsParameters},
        extension::ClientId,
    },
};
use tokio::sync::Semaphore;

use super::{DeliveryError, EmailChannel, OutboundEmail};
use crate::config::{EmailConfig, EmailTransport, TlsMode};

/// Idle connections older than this are closed rather than reused: servers drop idle
/// clients (RFC 5321 suggests 5 minutes), and a fresh connect is cheap by comparison.
const MAX_IDLE: Duration = Duration::from_secs(30);
/// Idle longer than this, a connection is checked with a NOOP before use: under load
/// connections are reused within milliseconds and skip it.
const CHECK_AFTER: Duration = Duration::from_secs(2);

pub(super) struct Smtp {
    cfg: EmailConfig,
    host: String,
    port: u16,
    tls: TlsMode,
    timeout: Duration,
    credentials: Option<Credentials>,
    hello: ClientId,
    idle: Mutex<Vec<(AsyncSmtpConnection, Instant)>>,
    slots: Semaphore,
}

impl Smtp {
    pub(super) fn new(cfg: &EmailConfig) -> Result<Self, String> {
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
            (Some(user), Some(pass)) => Some(Credentials::new(user, pass)),
            (Some(_), None) => {
                return Err(format!(
                    "the SMTP username is set but the password variable {} is empty",
                    password_env.as_deref().unwrap_or("(password_env unset)")
                ));
            }
            _ => None,
        };
        if *tls != TlsMode::None {
            TlsParameters::new(host.clone())
                .map_err(|e| format!("SMTP TLS setup for {host}: {e}"))?;
        }
        Ok(Self {
            cfg: cfg.clone(),
            host: host.clone(),
            port: *port,
            tls: *tls,
            timeout: *timeout,
            credentials,
            hello: ClientId::default(),
            idle: Mutex::new(Vec::new()),
            slots: Semaphore::new(*pool_size as usize),
        })
    }

    async fn connect(&self) -> Result<AsyncSmtpConnection, DeliveryError> {
        let tls = || TlsParameters::new(self.host.clone()).map_err(|e| classify(&e));
        let connect = async {
            let mut conn = match self.tls {
                TlsMode::Tls => AsyncSmtpConnection::connect_tokio1(
                    (self.host.as_str(), self.port),
                    Some(self.timeout),
                    &self.hello,
                    Some(tls()?),
                    None,
                )
                .await
                .map_err(|e| classify(&e))?,
                TlsMode::None | TlsMode::StartTls => {
                    let socket = tokio::net::TcpStream::connect((self.host.as_str(), self.port))
                        .await
                        .map_err(|_| DeliveryError::transient("smtp connection error"))?;
                    socket
                        .set_nodelay(true)
                        .map_err(|_| DeliveryError::transient("smtp connection error"))?;
                    let mut conn =
                        AsyncSmtpConnection::connect_with_transport(Box::new(socket), &self.hello)
                            .await
                            .map_err(|e| classify(&e))?;
                    if self.tls == TlsMode::StartTls {
                        if !conn.can_starttls() {
                            return Err(DeliveryError::transient(
                                "smtp server does not offer STARTTLS",
                            ));
                        }
                        conn.starttls(tls()?, &self.hello)
                            .await
                            .map_err(|e| classify(&e))?;
                    }
                    conn
                }
            };
            if let Some(creds) = &self.credentials {
                conn.auth(&[Mechanism::Plain, Mechanism::Login], creds)
                    .await
                    .map_err(|e| classify(&e))?;
            }
            Ok(conn)
        };
        // Anything that fails while setting up the session (greeting, EHLO, STARTTLS,
        // AUTH) says nothing about this recipient: even a 5xx there (a rotated password)
        // must not fail the message permanently.
        match tokio::time::timeout(self.timeout, connect).await {
            Ok(Ok(conn)) => Ok(conn),
            Ok(Err(e)) => Err(DeliveryError::transient(format!(
                "{} while connecting",
                e.reason
            ))),
            Err(_) => Err(DeliveryError::transient("smtp timeout while connecting")),
        }
    }

    fn take_idle(&self) -> Option<(AsyncSmtpConnection, Instant)> {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        while let Some((conn, since)) = idle.pop() {
            if since.elapsed() < MAX_IDLE && !conn.has_broken() {
                return Some((conn, since));
            }
        }
        None
    }

    /// A pooled connection that still answers, or a new one.
    async fn connection(&self) -> Result<AsyncSmtpConnection, DeliveryError> {
        while let Some((mut conn, since)) = self.take_idle() {
            if since.elapsed() < CHECK_AFTER {
                return Ok(conn);
            }
            if matches!(
                tokio::time::timeout(self.timeout, conn.test_connected()).await,
                Ok(true)
            ) {
                return Ok(conn);
            }
        }
        self.connect().await
    }

    fn put_idle(&self, conn: AsyncSmtpConnection) {
        if !conn.has_broken() {
            self.idle
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push((conn, Instant::now()));
        }
    }

    async fn send_on(
        &self,
        conn: &mut AsyncSmtpConnection,
        envelope: &Envelope,
        bytes: &[u8],
    ) -> Result<(), DeliveryError> {
        match tokio::time::timeout(self.timeout, conn.send(envelope, bytes)).await {
            Ok(Ok(_)) => Ok(()),
            // An answer (4xx, 5xx) is clear; no answer at all mid-transaction is not.
            Ok(Err(e)) if e.status().is_some() => Err(classify(&e)),
            Ok(Err(_)) => Err(DeliveryError::uncertain(
                "smtp connection lost during the transaction",
            )),
            Err(_) => Err(DeliveryError::uncertain(
                "smtp timeout during the transaction",
            )),
        }
    }
}

/// 4xx and anything that is not an answer (connection refused, reset, timeout, TLS) is
/// transient; 5xx is permanent. A timeout after DATA is ambiguous (the server may have
/// accepted): it is retried with the same Message-ID, so a receiver can deduplicate.
fn classify(e: &SmtpError) -> DeliveryError {
    match e.status() {
        Some(code) if e.is_permanent() => DeliveryError::permanent(format!("smtp {code}")),
        Some(code) => DeliveryError::transient(format!("smtp {code}")),
        None if e.is_timeout() => DeliveryError::transient("smtp timeout"),
        None if e.is_tls() => DeliveryError::transient("smtp tls error"),
        None => DeliveryError::transient("smtp connection error"),
    }
}

impl EmailChannel for Smtp {
    fn send<'a>(&'a self, email: &'a OutboundEmail) -> BoxFuture<'a, Result<(), DeliveryError>> {
        Box::pin(async move {
            let message = super::build_message(&self.cfg, email)?;
            let envelope = message.envelope().clone();
            let bytes = message.formatted();
            let _slot = self
                .slots
                .acquire()
                .await
                .map_err(|_| DeliveryError::transient("smtp channel closed"))?;
            let mut conn = self.connection().await?;
            self.send_on(&mut conn, &envelope, &bytes).await?;
            self.put_idle(conn);
            Ok(())
        })
    }

    fn kind(&self) -> &'static str {
        "smtp"
    }
}
