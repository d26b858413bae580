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

use std::{sync::Arc, time::Duration};

use base64::Engine as _;
use tokio::{
    io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader},
    net::TcpStream,
};

use super::reply::{Reply, Status, Step, parse_status};
use crate::config::TlsMode;

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

/// Longest reply line read (RFC 5321 4.5.3.1.5 allows 512 octets): a server that never
/// ends a line must not make us buffer without bound until the timeout.
const MAX_REPLY_LINE: u64 = 4096;
/// Most lines kept of one reply (EHLO lists a dozen capabilities at most).
const MAX_REPLY_LINES: usize = 256;

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

fn tls_config() -> Arc<rustls::ClientConfig> {
    static CONFIG: std::sync::OnceLock<Arc<rustls::ClientConfig>> = std::sync::OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let roots =
                rustls::RootCertStore::from_iter(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            Arc::new(
                rustls::ClientConfig::builder_with_provider(provider)
                    .with_safe_default_protocol_versions()
                    .expect("ring supports the default TLS versions")
                    .with_root_certificates(roots)
                    .with_no_client_auth(),
            )
        })
        .clone()
}

async fn wrap_tls(tcp: Box<dyn Stream>, host: &str) -> Result<Box<dyn Stream>, SmtpError> {
    let name = rustls::pki_types::ServerName::try_from(host.to_owned())
        .map_err(|_| SmtpError::Before("tls"))?;
    let tls = tokio_rustls::TlsConnector::from(tls_config())
        .connect(name, tcp)
        .await
        .map_err(|_| SmtpError::Before("tls"))?;
    Ok(Box::new(tls))
}

fn offers(caps: &[String], keyword: &str) -> bool {
    caps.iter()
        .any(|c| c.split_whitespace().next() == Some(keyword))
}

/// `.` at the start of a line becomes `..` (RFC 5321 4.5.2); the body ends with CRLF.
pub(crate) fn dot_stuff(body: &[u8], out: &mut Vec<u8>) {
    out.reserve(body.len() + 16);
    let mut line_start = true;
    for &b in body {
        if line_start && b == b'.' {
            out.push(b'.');
        }
        out.push(b);
        line_start = b == b'\n';
    }
    if !body.ends_with(b"\r\n") {
        out.extend_from_slice(b"\r\n");
    }
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

    /// Sends one message: `from` and `to` are bare addresses, `message` the full RFC
    /// 5322 text (CRLF line ends).
    pub(crate) async fn send(
        &mut self,
        from: &str,
        to: &[&str],
        message: &[u8],
    ) -> Result<(), SmtpError> {
        // Broken until the transaction ends in a known state (`transaction` clears it
        // there): if this future is dropped halfway (a timeout), or anything unexpected
        // happens, the session is never reused.
        self.broken = true;
        self.progress = Progress::Envelope;
        self.transaction(from, to, message).await
    }

    /// How far the last (or current) transaction got.
    pub(crate) fn progress(&self) -> Progress {
        self.progress
    }

    async fn transaction(
        &mut self,
        from: &str,
        to: &[&str],
        message: &[u8],
    ) -> Result<(), SmtpError> {
        let utf8 = !from.is_ascii() || to.iter().any(|t| !t.is_ascii());
        if utf8 && !self.smtputf8 {
            // The server cannot take this address at all: no point retrying. Nothing
            // was sent, the session is as it was.
            self.broken = false;
            return Err(SmtpError::Reply(Reply::bare(553, Step::Mail)));
        }
        let params = if utf8 { " SMTPUTF8" } else { "" };
        let mut envelope = vec![format!("MAIL FROM:<{from}>{params}\r\n")];
        envelope.extend(to.iter().map(|t| format!("RCPT TO:<{t}>\r\n")));
        envelope.push("DATA\r\n".to_owned());

        // Pipelined, every command gets its answer even when an earlier one failed
        // (RFC 2920): read them all, then judge by the first failure. One at a time,
        // stop at the first failure.
        let mut first_failure = None;
        let mut data_open = false;
        let mut rcpt_accepted = false;
        // Every answer is one this state allows, and none says the server is closing.
        let mut sane = true;
        if self.pipelining {
            self.out.clear();
            for c in &envelope {
                self.out.extend_from_slice(c.as_bytes());
            }
            self.flush().await?;
        }
        let last = envelope.len() - 1;
        for (i, c) in envelope.iter().enumerate() {
            if !self.pipelining {
                if first_failure.is_some() {
                    break;
                }
                self.command(c.as_bytes()).await?;
            }
            let code = match self.reply().await {
                Ok(code) => code,
                // Refused already: that answer stands (the session stays broken).
                Err(e) => return Err(first_failure.map_or(e, SmtpError::Reply)),
            };
            let step = match i {
                0 => Step::Mail,
                i if i == last => Step::Data,
                _ => Step::Rcpt,
            };
            let ok = if step == Step::Data {
                data_open = code == 354;
                data_open
            } else {
                (200..300).contains(&code)
            };
            rcpt_accepted |= ok && step == Step::Rcpt;
            sane &= ok || ((400..600).contains(&code) && code != 421);
            if !ok && first_failure.is_none() {
                let refused = Reply {
                    code,
                    status: self.status(code),
                    to: step,
                };
                first_failure = Some(refused);
                self.progress = Progress::Refused(refused);
            }
        }
        if let Some(refused) = first_failure {
            self.broken = !(sane && self.reset(data_open, rcpt_accepted).await);
            return Err(SmtpError::Reply(refused));
        }
        self.progress = Progress::Body;
        self.out.clear();
        dot_stuff(message, &mut self.out);
        self.out.extend_from_slice(b".\r\n");
        self.flush()
            .await
            .map_err(|_| SmtpError::After("connection"))?;
        match self.reply().await {
            Ok(200..=299) => {
                self.broken = false;
                Ok(())
            }
            Ok(code @ 400..=599) => {
                // The transaction is over either way; 421: the server is closing.
                self.broken = code == 421;
                Err(SmtpError::Reply(Reply {
                    code,
                    status: self.status(code),
                    to: Step::Message,
                }))
            }
            // An answer that makes no sense after the body says nothing of its fate.
            Ok(_) => Err(SmtpError::After("protocol")),
            Err(SmtpError::Before(what) | SmtpError::After(what)) => Err(SmtpError::After(what)),
            Err(e) => Err(e),
        }
    }

    /// Ends a refused transaction; true if the session is left idle and usable.
    async fn reset(&mut self, data_open: bool, rcpt_accepted: bool) -> bool {
        if data_open {
            // A server that said 354 despite the failure waits for a body. With no
            // recipient accepted a lone dot ends it harmlessly (RFC 2920 3.1); with one,
            // the dot would deliver an empty message to it: hang up instead, which
            // aborts the transaction (RFC 5321 3.8).
            if rcpt_accepted || self.command(b".\r\n").await.is_err() || self.reply().await.is_err()
            {
                return false;
            }
        }
        self.command(b"RSET\r\n").await.is_ok() && matches!(self.reply().await, Ok(200..=299))
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

    async fn command(&mut self, line: &[u8]) -> Result<(), SmtpError> {
        self.out.clear();
        self.out.extend_from_slice(line);
        self.flush().await
    }

    async fn flush(&mut self) -> Result<(), SmtpError> {
        let io = self.io.get_mut();
        io.write_all(&self.out)
            .await
            .map_err(|_| SmtpError::Before("connection"))?;
        io.flush()
            .await
            .map_err(|_| SmtpError::Before("connection"))
    }

    async fn expect(&mut self, want: u16) -> Result<(), SmtpError> {
        match self.reply().await? {
            code if code == want => Ok(()),
            code => Err(SmtpError::Reply(Reply::bare(code, Step::Session))),
        }
    }

    /// The enhanced status code of the reply just read (from its last line), when the
    /// server announced them.
    fn status(&self, code: u16) -> Option<Status> {
        if self.enhanced {
            parse_status(&self.line, code)
        } else {
            None
        }
    }

    /// The code of the next (possibly multi-line) reply.
    async fn reply(&mut self) -> Result<u16, SmtpError> {
        loop {
            let (code, last) = self.read_line().await?;
            if last {
                return Ok(code);
            }
        }
    }

    /// The code and text lines of the next reply.
    async fn reply_lines(&mut self) -> Result<(u16, Vec<String>), SmtpError> {
        let mut lines = Vec::new();
        loop {
            let (code, last) = self.read_line().await?;
            let text = String::from_utf8_lossy(self.line.get(4..).unwrap_or_default());
            lines.push(text.trim_end().to_owned());
            if lines.len() > MAX_REPLY_LINES {
                return Err(SmtpError::Before("protocol"));
            }
            if last {
                return Ok((code, lines));
            }
        }
    }

    /// One reply line: its code, and whether it is the last line of the reply.
    async fn read_line(&mut self) -> Result<(u16, bool), SmtpError> {
        self.line.clear();
        let n = (&mut self.io)
            .take(MAX_REPLY_LINE)
            .read_until(b'\n', &mut self.line)
            .await
            .map_err(|_| SmtpError::Before("connection"))?;
        if !self.line.ends_with(b"\n") {
            // Cut off: the connection closed, or the line is far too long.
            let what = if n as u64 == MAX_REPLY_LINE {
                "protocol"
            } else {
                "connection"
            };
            return Err(SmtpError::Before(what));
        }
        let code = self
            .line
            .get(..3)
            .filter(|c| c.iter().all(u8::is_ascii_digit))
            .and_then(|c| std::str::from_utf8(c).ok()?.parse::<u16>().ok())
            .filter(|c| (200..600).contains(c))
            .ok_or(SmtpError::Before("protocol"))?;
        Ok((code, self.line.get(3) != Some(&b'-')))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::TcpListener;

    /// A one-connection server: sends `greeting`, then answers every line it reads with
    /// `answer(line)` (possibly nothing). Returns the lines read once the client leaves.
    async fn scripted(
        greeting: Vec<u8>,
        mut answer: impl FnMut(&str) -> Vec<u8> + Send + 'static,
    ) -> (Endpoint, tokio::task::JoinHandle<Vec<String>>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let task = tokio::spawn(async move {
            let (stream, _) = listener.accept().await.unwrap();
            let (r, mut w) = stream.into_split();
            let mut r = BufReader::new(r);
            w.write_all(&greeting).await.unwrap();
            let (mut seen, mut line) = (Vec::new(), String::new());
            while matches!(r.read_line(&mut line).await, Ok(n) if n > 0) {
                let reply = answer(line.trim_end());
                seen.push(line.trim_end().to_owned());
                line.clear();
                if w.write_all(&reply).await.is_err() {
                    break;
                }
            }
            seen
        });
        let ep = Endpoint {
            host: "127.0.0.1".into(),
            port,
            tls: TlsMode::None,
            hello: "client.test".into(),
            credentials: None,
            timeout: Duration::from_secs(5),
        };
        (ep, task)
    }

    /// Answers by verb; `rcpt` gives the reply to each RCPT in turn.
    fn by_verb(rcpt: &'static [&'static str]) -> impl FnMut(&str) -> Vec<u8> + Send {
        let (mut in_data, mut rcpts) = (false, rcpt.iter());
        move |line| {
            let reply: &[u8] = match line {
                "." if in_data => {
                    in_data = false;
                    b"250 queued \xff\xfe\r\n"
                }
                _ if in_data => b"",
                l if l.starts_with("EHLO") => {
                    b"250-m\xe9l.test\r\n250-pipelining\r\n250-SIZE 1000\r\n250 8BITMIME\r\n"
                }
                l if l.starts_with("MAIL") => b"250\r\n",
                l if l.starts_with("RCPT") => return rcpts.next().unwrap().as_bytes().to_vec(),
                "DATA" => {
                    in_data = true;
                    b"354 go ahead\r\n"
                }
                _ => b"250 ok\r\n",
            };
            reply.to_vec()
        }
    }

    #[tokio::test]
    async fn replies_need_not_be_utf8_nor_carry_text() {
        let (ep, server) = scripted(
            b"220-m\xe9l.test\r\n220 ready\r\n".to_vec(),
            by_verb(&["250\r\n"]),
        )
        .await;
        let mut s = Session::open(&ep).await.unwrap();
        assert!(s.pipelining, "capabilities are matched case-insensitively");
        s.send("a@x.test", &["b@y.test"], b"Subject: x\r\n\r\n.hi\r\n")
            .await
            .unwrap();
        assert!(!s.is_broken());
        drop(s);
        let seen = server.await.unwrap();
        assert_eq!(
            seen[1..],
            [
                "MAIL FROM:<a@x.test>",
                "RCPT TO:<b@y.test>",
                "DATA",
                "Subject: x",
                "",
                "..hi",
                "."
            ]
        );
    }

    #[tokio::test]
    async fn an_endless_reply_line_is_a_protocol_error() {
        let mut greeting = b"220 ".to_vec();
        greeting.resize(MAX_REPLY_LINE as usize * 2, b'x');
        let (ep, _server) = scripted(greeting, |_| Vec::new()).await;
        assert_eq!(
            Session::open(&ep).await.err(),
            Some(SmtpError::Before("protocol"))
        );
    }

    /// 354 although one recipient was refused: a dot would deliver an empty message to
    /// the other one, so the client hangs up instead (RFC 5321 3.8: no delivery).
    #[tokio::test]
    async fn a_354_after_a_partly_refused_envelope_gets_no_dot() {
        let rcpt = &["250 ok\r\n", "550 5.1.1 no\r\n"];
        let (ep, server) = scripted(b"220 hi\r\n".to_vec(), by_verb(rcpt)).await;
        let mut s = Session::open(&ep).await.unwrap();
        let sent = s
            .send("a@x.test", &["ok@y.test", "gone@y.test"], b"x\r\n")
            .await;
        // This server announced no ENHANCEDSTATUSCODES: "5.1.1" is only text.
        let refused = Reply::bare(550, Step::Rcpt);
        assert_eq!(sent, Err(SmtpError::Reply(refused)));
        assert!(s.is_broken());
        assert_eq!(s.progress(), Progress::Refused(refused));
        drop(s);
        let seen = server.await.unwrap();
        assert_eq!(seen.last().map(String::as_str), Some("DATA"), "{seen:?}");
    }

    /// From a server that announced ENHANCEDSTATUSCODES, a refusal carries its status
    /// and the command it answered: RCPT, or the final dot.
    #[tokio::test]
    async fn refusals_carry_the_enhanced_status_and_the_command_refused() {
        let mut in_data = false;
        let answer = move |line: &str| -> Vec<u8> {
            let reply: &[u8] = match line {
                "." if in_data => {
                    in_data = false;
                    b"550 5.1.1 <late@y.test> unknown\r\n"
                }
                _ if in_data => b"",
                l if l.starts_with("EHLO") => b"250-mx.test\r\n250 ENHANCEDSTATUSCODES\r\n",
                l if l.starts_with("RCPT TO:<gone@") => {
                    b"550-5.1.1 <gone@y.test>\r\n550 5.1.1 unknown\r\n"
                }
                "DATA" => {
                    in_data = true;
                    b"354 go ahead\r\n"
                }
                _ => b"250 2.0.0 ok\r\n",
            };
            reply.to_vec()
        };
        let (ep, _server) = scripted(b"220 hi\r\n".to_vec(), answer).await;
        let mut s = Session::open(&ep).await.unwrap();
        let status = parse_status(b"550 5.1.1", 550);
        assert!(status.is_some());
        let at_rcpt = s.send("a@x.test", &["gone@y.test"], b"x\r\n").await;
        let want = |to| Reply {
            code: 550,
            status,
            to,
        };
        assert_eq!(at_rcpt, Err(SmtpError::Reply(want(Step::Rcpt))));
        let after_body = s.send("a@x.test", &["late@y.test"], b"x\r\n").await;
        assert_eq!(after_body, Err(SmtpError::Reply(want(Step::Message))));
        assert!(!s.is_broken());
    }

    #[test]
    fn dot_stuffing_doubles_leading_dots_and_ends_with_crlf() {
        let mut out = Vec::new();
        dot_stuff(b".hidden\r\nok\r\n..two\r\nmid.dot\r\n.", &mut out);
        assert_eq!(out, b"..hidden\r\nok\r\n...two\r\nmid.dot\r\n..\r\n");
        out.clear();
        dot_stuff(b"line\r\n", &mut out);
        assert_eq!(out, b"line\r\n");
    }
}
