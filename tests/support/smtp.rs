//! A small in-process SMTP server for integration tests.
//!
//! It speaks just enough RFC 5321 (with RFC 2920 pipelining) for lettre's
//! async transport and rapport's own SMTP client, records every accepted
//! message, and can be told to reject messages for chosen recipients (at RCPT
//! or at the end of DATA), to refuse a MAIL, or to hang up or fall silent at a
//! given stage, so retry and failure paths can be tested without a real mail
//! server.

use std::borrow::Cow;
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio::task::{JoinHandle, JoinSet};

/// Startup configuration; everything can also be changed later on the server.
#[derive(Debug, Clone, Default)]
pub struct SmtpOptions {
    /// Sleep before answering the final `.` of each message, so a test can
    /// interrupt a run while messages are still in flight.
    pub delay_per_message: Duration,
    /// `(recipient substring, reply)`: rejected once, accepted afterwards.
    pub fail_once: Vec<(String, String)>,
    /// `(recipient substring, reply)`: rejected every time.
    pub fail_always: Vec<(String, String)>,
    /// Do not offer PIPELINING (RFC 2920), so clients send one command at a time.
    pub no_pipelining: bool,
    /// `(recipient substring, reply)`: refused at RCPT every time.
    pub reject_rcpt: Vec<(String, String)>,
    /// Answer DATA with 354 even when no recipient was accepted (a server that
    /// ignores RFC 2920 3.1); the content is then refused with 554 at its end.
    pub data_despite_failure: bool,
    /// Misbehave once, at the first connection that reaches this stage.
    pub cut_once: Option<Cut>,
    /// Announce ENHANCEDSTATUSCODES (RFC 2034), as real servers do: the client then
    /// reads the `5.1.1` of a reply as its status. Without it, only as text.
    pub enhanced_status_codes: bool,
}

/// Where the server stops behaving (see `SmtpOptions::cut_once`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cut {
    /// Close the connection on MAIL, without answering it.
    CloseAtMail,
    /// Never answer MAIL (nor anything after it), keeping the connection open.
    SilentAtMail,
    /// Close the connection after the final `.`, without answering it; the
    /// message is not stored.
    CloseAtDataEnd,
    /// Close the connection on RSET, without answering it.
    CloseAtRset,
    /// Close the connection on NOOP, without answering it.
    CloseAtNoop,
}

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
    fn parse(
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

#[derive(Default)]
struct State {
    delay: Duration,
    /// `(recipient substring, reply)` rules; a fail-once rule is removed
    /// when it fires.
    fail_once: Vec<(String, String)>,
    fail_always: Vec<(String, String)>,
    messages: Vec<Received>,
    rejected: usize,
    /// Recipient lists of every completed DATA, accepted or not.
    attempts: Vec<Vec<String>>,
    connections: usize,
    no_pipelining: bool,
    reject_rcpt: Vec<(String, String)>,
    /// Reply to the next MAIL with this instead of accepting it.
    reject_next_mail: Option<String>,
    data_despite_failure: bool,
    cut_once: Option<Cut>,
    /// RSET commands received.
    rsets: usize,
    /// DATA transfers completed with no recipient (see `data_despite_failure`).
    data_without_recipients: usize,
    /// When each MAIL command arrived (every transaction started, whatever its end).
    mails: Vec<Instant>,
    enhanced_status_codes: bool,
    /// Every `RCPT TO` address received, accepted or refused.
    rcpts: Vec<String>,
}

impl State {
    fn attempts_for(&self, pattern: &str) -> usize {
        self.attempts
            .iter()
            .filter(|rcpts| hits(rcpts, pattern))
            .count()
    }
}

fn hits(rcpts: &[String], pattern: &str) -> bool {
    rcpts.iter().any(|r| r.contains(pattern))
}

struct Shared {
    state: Mutex<State>,
    /// Wakes `wait_*` callers whenever a DATA completes.
    changed: Notify,
}

impl Shared {
    // A panicking test thread must not make every later assertion panic too.
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// True (once) if the server is to misbehave at `stage` now.
    fn cut_at(&self, stage: Cut) -> bool {
        let mut st = self.lock();
        let hit = st.cut_once == Some(stage);
        if hit {
            st.cut_once = None;
        }
        hit
    }

    /// Decides the fate of a complete message and returns the reply line.
    fn finish(
        &self,
        mail_from: String,
        rcpt_to: Vec<String>,
        data: String,
        started_at: Instant,
    ) -> String {
        let mut st = self.lock();
        st.attempts.push(rcpt_to.clone());
        let always = st.fail_always.iter().find(|(p, _)| hits(&rcpt_to, p));
        let mut reply = always.map(|(_, r)| r.clone());
        if reply.is_none() {
            if let Some(i) = st.fail_once.iter().position(|(p, _)| hits(&rcpt_to, p)) {
                reply = Some(st.fail_once.remove(i).1);
            }
        }
        let reply = match reply {
            Some(r) => {
                st.rejected += 1;
                r
            }
            None => {
                st.messages
                    .push(Received::parse(mail_from, rcpt_to, data, started_at));
                format!("250 2.0.0 Ok: queued as {}", st.messages.len())
            }
        };
        drop(st);
        self.changed.notify_waiters();
        // Configured replies may come without a line terminator.
        format!("{}\r\n", reply.trim_end())
    }
}

/// Test SMTP server on 127.0.0.1; stops (with all its connections) on drop.
pub struct SmtpServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    accept_task: JoinHandle<()>,
}

impl SmtpServer {
    /// Binds 127.0.0.1 on an ephemeral port and starts accepting.
    ///
    /// # Panics
    /// If the loopback port cannot be bound; a test cannot proceed anyway.
    pub async fn start(opts: SmtpOptions) -> SmtpServer {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind test SMTP server");
        let addr = listener
            .local_addr()
            .expect("local addr of test SMTP server");
        let state = State {
            delay: opts.delay_per_message,
            fail_once: opts.fail_once,
            fail_always: opts.fail_always,
            no_pipelining: opts.no_pipelining,
            reject_rcpt: opts.reject_rcpt,
            data_despite_failure: opts.data_despite_failure,
            cut_once: opts.cut_once,
            enhanced_status_codes: opts.enhanced_status_codes,
            ..State::default()
        };
        let shared = Arc::new(Shared {
            state: Mutex::new(state),
            changed: Notify::new(),
        });
        let accept_task = tokio::spawn(accept_loop(listener, shared.clone()));
        SmtpServer {
            addr,
            shared,
            accept_task,
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// `smtp://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.addr.port())
    }

    /// Snapshot of accepted messages, in acceptance order.
    pub fn messages(&self) -> Vec<Received> {
        self.shared.lock().messages.clone()
    }

    pub fn count(&self) -> usize {
        self.shared.lock().messages.len()
    }

    /// Messages refused at DATA end by fault injection.
    pub fn rejected(&self) -> usize {
        self.shared.lock().rejected
    }

    /// Completed DATA transfers (accepted or rejected) with at least one
    /// recipient containing `rcpt_substring`.
    pub fn attempts_for(&self, rcpt_substring: &str) -> usize {
        self.shared.lock().attempts_for(rcpt_substring)
    }

    /// `RCPT TO` commands naming a recipient that contains `rcpt_substring`, accepted
    /// or refused: every attempt to reach it, even one refused before DATA.
    pub fn rcpts_for(&self, rcpt_substring: &str) -> usize {
        let st = self.shared.lock();
        st.rcpts
            .iter()
            .filter(|r| r.contains(rcpt_substring))
            .count()
    }

    /// TCP connections accepted so far (lets tests observe connection reuse).
    pub fn connections(&self) -> usize {
        self.shared.lock().connections
    }

    /// Reject the next message to a matching recipient with `reply`.
    pub fn fail_once(&self, rcpt_substring: impl Into<String>, reply: impl Into<String>) {
        let rule = (rcpt_substring.into(), reply.into());
        self.shared.lock().fail_once.push(rule);
    }

    /// Reject every message to a matching recipient with `reply`.
    pub fn fail_always(&self, rcpt_substring: impl Into<String>, reply: impl Into<String>) {
        let rule = (rcpt_substring.into(), reply.into());
        self.shared.lock().fail_always.push(rule);
    }

    /// Drop all fault rules (e.g. to let a "down" recipient recover).
    pub fn clear_faults(&self) {
        let mut st = self.shared.lock();
        st.fail_once.clear();
        st.fail_always.clear();
    }

    /// Refuse RCPT for every matching recipient with `reply` (which may span
    /// several lines, `\r\n`-separated, each starting with the code).
    pub fn reject_rcpt(&self, rcpt_substring: impl Into<String>, reply: impl Into<String>) {
        let rule = (rcpt_substring.into(), reply.into());
        self.shared.lock().reject_rcpt.push(rule);
    }

    /// Answer the next MAIL command with `reply` instead of accepting it.
    pub fn reject_next_mail(&self, reply: impl Into<String>) {
        self.shared.lock().reject_next_mail = Some(reply.into());
    }

    /// Misbehave once at `stage` (replaces any cut not yet fired).
    pub fn cut_once(&self, stage: Cut) {
        self.shared.lock().cut_once = Some(stage);
    }

    /// RSET commands received so far.
    pub fn rsets(&self) -> usize {
        self.shared.lock().rsets
    }

    /// DATA transfers completed without any accepted recipient.
    pub fn data_without_recipients(&self) -> usize {
        self.shared.lock().data_without_recipients
    }

    /// When each transaction started (its MAIL command arrived), in arrival order.
    pub fn mail_times(&self) -> Vec<Instant> {
        self.shared.lock().mails.clone()
    }

    pub fn set_delay(&self, delay: Duration) {
        self.shared.lock().delay = delay;
    }

    /// True once at least `n` messages are stored; false on timeout.
    pub async fn wait_for_count(&self, n: usize, timeout: Duration) -> bool {
        self.wait_until(timeout, |st| st.messages.len() >= n).await
    }

    /// True once `attempts_for(rcpt_substring) >= n`; false on timeout.
    pub async fn wait_for_attempts(
        &self,
        rcpt_substring: &str,
        n: usize,
        timeout: Duration,
    ) -> bool {
        self.wait_until(timeout, |st| st.attempts_for(rcpt_substring) >= n)
            .await
    }

    async fn wait_until(&self, timeout: Duration, done: impl Fn(&State) -> bool) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            // Register interest before checking, so a notification between
            // the check and the await cannot be lost.
            let notified = self.shared.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if done(&self.shared.lock()) {
                return true;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return done(&self.shared.lock());
            }
        }
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        // The connection tasks live in a JoinSet owned by the accept task,
        // so aborting it tears them all down too.
        self.accept_task.abort();
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    shared.lock().connections += 1;
                    let shared = shared.clone();
                    conns.spawn(async move {
                        // A client hanging up mid-session is not a test failure.
                        let _ = handle_connection(stream, &shared).await;
                    });
                }
                // E.g. out of file descriptors: back off instead of spinning.
                Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            },
            // Reap finished sessions so the set does not grow without bound.
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
}

/// The EHLO answer: its capabilities as the options say.
fn ehlo_reply(st: &State) -> String {
    let mut reply = String::from("250-localhost greets you\r\n");
    if !st.no_pipelining {
        reply.push_str("250-PIPELINING\r\n");
    }
    if st.enhanced_status_codes {
        reply.push_str("250-ENHANCEDSTATUSCODES\r\n");
    }
    reply.push_str("250-SIZE 35882577\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n");
    reply
}

async fn handle_connection(stream: TcpStream, shared: &Shared) -> io::Result<()> {
    let (reader, mut writer) = stream.into_split();
    let mut reader = BufReader::new(reader);
    writer
        .write_all(b"220 localhost ESMTP rapport test server\r\n")
        .await?;
    let mut from: Option<String> = None;
    let mut mail_at = Instant::now();
    let mut rcpts: Vec<String> = Vec::new();
    let mut line = String::new();
    while read_line(&mut reader, &mut line).await? {
        let (verb, arg) = line.split_once(' ').unwrap_or((line.as_str(), ""));
        let cmd = verb.to_ascii_uppercase();
        if matches!(cmd.as_str(), "EHLO" | "HELO" | "RSET") {
            // Each of these aborts any transaction in progress (RFC 5321 4.1.4).
            from = None;
            rcpts.clear();
        }
        if cmd == "RSET" {
            shared.lock().rsets += 1;
            if shared.cut_at(Cut::CloseAtRset) {
                return Ok(());
            }
        }
        if cmd == "NOOP" && shared.cut_at(Cut::CloseAtNoop) {
            return Ok(());
        }
        if cmd == "MAIL" {
            if shared.cut_at(Cut::CloseAtMail) {
                return Ok(());
            }
            if shared.cut_at(Cut::SilentAtMail) {
                // Until the server is dropped, which aborts this task.
                std::future::pending::<()>().await;
            }
        }
        let refusal =
            |reply: String| -> Cow<'static, str> { format!("{}\r\n", reply.trim_end()).into() };
        let reply: Cow<'static, str> = match cmd.as_str() {
            "EHLO" => ehlo_reply(&shared.lock()).into(),
            "HELO" => "250 localhost\r\n".into(),
            "RSET" => "250 2.0.0 Ok\r\n".into(),
            "MAIL" if from.is_some() => "503 5.5.1 nested MAIL command\r\n".into(),
            "MAIL" if shared.lock().reject_next_mail.is_some() => {
                refusal(shared.lock().reject_next_mail.take().unwrap_or_default())
            }
            "MAIL" => match path_arg(arg, "FROM:") {
                Some(addr) => {
                    mail_at = Instant::now();
                    shared.lock().mails.push(mail_at);
                    from = Some(addr);
                    "250 2.1.0 Ok\r\n".into()
                }
                None => "501 5.5.4 syntax: MAIL FROM:<address>\r\n".into(),
            },
            "RCPT" if from.is_none() => "503 5.5.1 need MAIL first\r\n".into(),
            "RCPT" => match path_arg(arg, "TO:") {
                Some(addr) => {
                    shared.lock().rcpts.push(addr.clone());
                    let rejected = shared
                        .lock()
                        .reject_rcpt
                        .iter()
                        .find(|(p, _)| addr.contains(p.as_str()))
                        .map(|(_, r)| r.clone());
                    match rejected {
                        Some(reply) => refusal(reply),
                        None => {
                            rcpts.push(addr);
                            "250 2.1.5 Ok\r\n".into()
                        }
                    }
                }
                None => "501 5.5.4 syntax: RCPT TO:<address>\r\n".into(),
            },
            "DATA" if rcpts.is_empty() && !shared.lock().data_despite_failure => {
                "503 5.5.1 need RCPT first\r\n".into()
            }
            "DATA" => {
                writer
                    .write_all(b"354 End data with <CR><LF>.<CR><LF>\r\n")
                    .await?;
                let Some(data) = read_data(&mut reader, &mut line).await? else {
                    return Ok(());
                };
                if shared.cut_at(Cut::CloseAtDataEnd) {
                    return Ok(());
                }
                if rcpts.is_empty() {
                    // Only with `data_despite_failure`: nobody to deliver to.
                    from = None;
                    shared.lock().data_without_recipients += 1;
                    writer
                        .write_all(b"554 5.5.1 no valid recipients\r\n")
                        .await?;
                    continue;
                }
                let delay = shared.lock().delay;
                if !delay.is_zero() {
                    tokio::time::sleep(delay).await;
                }
                // The transaction ends at DATA end whatever the outcome.
                let mail_from = from.take().unwrap_or_default();
                shared
                    .finish(mail_from, std::mem::take(&mut rcpts), data, mail_at)
                    .into()
            }
            "NOOP" => "250 2.0.0 Ok\r\n".into(),
            "VRFY" => "252 2.5.2 cannot VRFY user\r\n".into(),
            "QUIT" => {
                writer.write_all(b"221 2.0.0 Bye\r\n").await?;
                return Ok(());
            }
            _ => "500 5.5.2 command not recognized\r\n".into(),
        };
        writer.write_all(reply.as_bytes()).await?;
    }
    Ok(())
}

/// Reads one line without its terminator (CRLF or bare LF); false on EOF.
async fn read_line<R: AsyncBufRead + Unpin>(r: &mut R, line: &mut String) -> io::Result<bool> {
    let mut buf = Vec::new();
    if r.read_until(b'\n', &mut buf).await? == 0 {
        return Ok(false);
    }
    while buf.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
        buf.pop();
    }
    // 8BITMIME allows arbitrary bytes; lossy keeps the server from choking.
    *line = String::from_utf8_lossy(&buf).into_owned();
    Ok(true)
}

/// Reads message content up to the lone `.`; None if the client hung up.
async fn read_data<R: AsyncBufRead + Unpin>(
    r: &mut R,
    line: &mut String,
) -> io::Result<Option<String>> {
    let mut data = String::new();
    loop {
        if !read_line(r, line).await? {
            return Ok(None);
        }
        if line == "." {
            return Ok(Some(data));
        }
        // RFC 5321 4.5.2: the client doubled any leading dot.
        data.push_str(line.strip_prefix('.').unwrap_or(line));
        data.push_str("\r\n");
    }
}

/// Extracts the address from `FROM:<a@b> PARAMS` / `TO:<a@b>`; `<>` gives "".
fn path_arg(arg: &str, keyword: &str) -> Option<String> {
    let arg = arg.trim_start();
    let head = arg.get(..keyword.len())?;
    if !head.eq_ignore_ascii_case(keyword) {
        return None;
    }
    let rest = arg[keyword.len()..].trim_start();
    let addr = match rest.strip_prefix('<') {
        Some(inner) => &inner[..inner.find('>')?],
        None => rest.split_whitespace().next()?,
    };
    Some(addr.to_string())
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
