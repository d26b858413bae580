//! One SMTP session (RFC 5321): greeting, EHLO, STARTTLS or implicit TLS, AUTH, then
//! any number of mail transactions, pipelined (RFC 2920) when the server offers it.
//!
//! Why not lettre's client here: it sends MAIL, RCPT, DATA, the body and the final dot
//! one by one and waits for each answer, so every message costs four round trips and
//! five writes; on a busy morning the syscalls and wake-ups of that, on both ends,
//! were the largest single cost. Pipelined, a message is two writes and two reads:
//! `MAIL FROM` + `RCPT TO` + `DATA` together, then the body with its final dot.
//! Messages are still built by lettre.
//!
//! Of a reply only its codes leave this module ([`Reply`]: the basic code and, from a
//! server that announced ENHANCEDSTATUSCODES, the enhanced status); the server's text
//! (which may echo addresses) never does.
//!
//! The session's parts: `wire` reads replies and writes commands, `transaction` sends
//! one message (the envelope, the body, the cleanup after a refusal), `tls` wraps the
//! connection.

#[cfg(test)]
mod tests;
mod tls;
mod transaction;
mod wire;

use std::time::Duration;

use base64::Engine as _;
use tokio::{
    io::{AsyncRead, AsyncWrite, BufReader},
    net::TcpStream,
};

use super::reply::{Reply, Step};
use crate::config::TlsMode;
use tls::wrap_tls;

/// What a session needs to know about its server.
#[derive(Clone)]
pub(crate) struct Endpoint {
    pub host: String,
    pub port: u16,
    pub tls: TlsMode,
    pub hello: String,
    pub credentials: Option<(String, String)>,
    pub timeout: Duration,
}

/// Where a failure happened, which decides how sure we are of the outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SmtpError {
    /// The server answered with this reply (4xx, 5xx, or an unexpected one).
    Reply(Reply),
    /// No usable answer before the message could have been accepted: nothing was
    /// delivered. `&str` names what broke ("timeout", "connection", "tls", "protocol").
    Before(&'static str),
    /// The body was sent but no final answer came: the server may have accepted it.
    After(&'static str),
}

/// How far the current transaction got: what a timeout that cuts it off means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Progress {
    /// Nothing the server could accept has been sent: nothing was delivered.
    Envelope,
    /// The server refused the transaction with this reply; only the cleanup was left.
    Refused(Reply),
    /// The body was (being) sent: the server may have accepted the message.
    Body,
}

trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

pub(crate) struct Session {
    io: BufReader<Box<dyn Stream>>,
    pipelining: bool,
    smtputf8: bool,
    /// The server announced ENHANCEDSTATUSCODES (RFC 2034): its replies' text starts
    /// with an enhanced status code, and only then is that read as one.
    enhanced: bool,
    /// A transaction broke off: the session's state is unknown, do not reuse it.
    broken: bool,
    progress: Progress,
    out: Vec<u8>,
    /// The last reply line read: bytes, as servers do not always send UTF-8.
    line: Vec<u8>,
}

fn offers(caps: &[String], keyword: &str) -> bool {
    caps.iter()
        .any(|c| c.split_whitespace().next() == Some(keyword))
}

impl Session {
    /// Connects, reads the greeting, says EHLO, upgrades to TLS and authenticates as
    /// the endpoint says. The caller bounds it with a timeout.
    pub(crate) async fn open(ep: &Endpoint) -> Result<Session, SmtpError> {
        let tcp = TcpStream::connect((ep.host.as_str(), ep.port))
            .await
            .map_err(|_| SmtpError::Before("connection"))?;
        tcp.set_nodelay(true)
            .map_err(|_| SmtpError::Before("connection"))?;
        let mut stream: Box<dyn Stream> = Box::new(tcp);
        if ep.tls == TlsMode::Tls {
            stream = wrap_tls(stream, &ep.host).await?;
        }
        let mut s = Session {
            io: BufReader::new(stream),
            pipelining: false,
            smtputf8: false,
            enhanced: false,
            broken: false,
            progress: Progress::Envelope,
            out: Vec::with_capacity(4096),
            line: Vec::new(),
        };
        s.expect(220).await?;
        let mut caps = s.ehlo(&ep.hello).await?;
        if ep.tls == TlsMode::StartTls {
            if !offers(&caps, "STARTTLS") {
                return Err(SmtpError::Before("no starttls"));
            }
            s.command(b"STARTTLS\r\n").await?;
            s.expect(220).await?;
            let placeholder = tokio::io::join(tokio::io::empty(), tokio::io::sink());
            let plain = std::mem::replace(&mut s.io, BufReader::new(Box::new(placeholder)));
            // Nothing may be buffered past the 220: that would be a STARTTLS injection.
            if !plain.buffer().is_empty() {
                return Err(SmtpError::Before("protocol"));
            }
            s.io = BufReader::new(wrap_tls(plain.into_inner(), &ep.host).await?);
            caps = s.ehlo(&ep.hello).await?;
        }
        s.pipelining = offers(&caps, "PIPELINING");
        s.smtputf8 = offers(&caps, "SMTPUTF8");
        s.enhanced = offers(&caps, "ENHANCEDSTATUSCODES");
        if let Some((user, pass)) = &ep.credentials {
            s.auth(&caps, user, pass).await?;
        }
        Ok(s)
    }

    async fn ehlo(&mut self, hello: &str) -> Result<Vec<String>, SmtpError> {
        self.command(format!("EHLO {hello}\r\n").as_bytes()).await?;
        let (code, lines) = self.reply_lines().await?;
        if code != 250 {
            return Err(SmtpError::Reply(Reply::bare(code, Step::Session)));
        }
        // Capabilities: every line after the greeting line, e.g. "AUTH PLAIN LOGIN".
        Ok(lines
            .iter()
            .skip(1)
            .map(|l| l.to_ascii_uppercase())
            .collect())
    }

    async fn auth(&mut self, caps: &[String], user: &str, pass: &str) -> Result<(), SmtpError> {
        let b64 = |s: &[u8]| base64::engine::general_purpose::STANDARD.encode(s);
        let mechanisms: Vec<&str> = caps
            .iter()
            .find_map(|c| c.strip_prefix("AUTH "))
            .map(|m| m.split_whitespace().collect())
            .unwrap_or_default();
        if mechanisms.contains(&"PLAIN") {
            let plain = format!("\0{user}\0{pass}");
            self.command(format!("AUTH PLAIN {}\r\n", b64(plain.as_bytes())).as_bytes())
                .await?;
            self.expect(235).await
        } else if mechanisms.contains(&"LOGIN") {
            self.command(b"AUTH LOGIN\r\n").await?;
            self.expect(334).await?;
            self.command(format!("{}\r\n", b64(user.as_bytes())).as_bytes())
                .await?;
            self.expect(334).await?;
            self.command(format!("{}\r\n", b64(pass.as_bytes())).as_bytes())
                .await?;
            self.expect(235).await
        } else {
            Err(SmtpError::Before("no usable AUTH mechanism"))
        }
    }

    /// NOOP: whether the session still answers.
    pub(crate) async fn noop(&mut self) -> bool {
        self.broken = true;
        let ok = self.command(b"NOOP\r\n").await.is_ok() && self.reply().await == Ok(250);
        self.broken = !ok;
        ok
    }

    pub(crate) fn is_broken(&self) -> bool {
        self.broken
    }
}
