//! A small HTTP/1.1 server for integration tests: it stands in for Twilio, a webhook
//! receiver or any other HTTP API, over real TCP on 127.0.0.1.
//!
//! Every request is recorded (method, target, lower-cased headers, raw body, arrival
//! time) and answered by a responder closure, so a test decides per request what the
//! "remote" says, including answering late (`Reply::after`) to trigger client timeouts.
//! Keep-alive, `Content-Length` and chunked request bodies, and `Expect: 100-continue`
//! are understood; nothing else of HTTP is (no TLS, no HTTP/2, no pipelined replies out
//! of order).
//!
//! ```ignore
//! let stub = HttpStub::start(|req| match req.path() {
//!     "/hook" => Reply::status(204),
//!     _ => Reply::status(404),
//! })
//! .await;
//! // ... point a client at stub.url() ...
//! assert!(stub.wait_for_count(1, Duration::from_secs(5)).await);
//! assert_eq!(stub.requests()[0].header("content-type"), Some("application/json"));
//! ```

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio::task::{JoinHandle, JoinSet};

/// Request heads beyond this are refused with 431: a test client gone wrong, not a case
/// worth buffering.
const MAX_HEAD: usize = 64 * 1024;

/// One request as the stub received it.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    /// Path and query, exactly as sent (`/a/b?x=1`).
    pub target: String,
    /// Names lower-cased, values trimmed, in arrival order (repeats kept).
    pub headers: Vec<(String, String)>,
    /// The body bytes (chunked bodies already decoded).
    pub body: Vec<u8>,
    /// When the request line arrived (for rate and spacing assertions).
    pub received_at: Instant,
}

impl Request {
    /// The target without its query.
    pub fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or("")
    }

    /// The raw query string, if any.
    pub fn query(&self) -> Option<&str> {
        self.target.split_once('?').map(|(_, q)| q)
    }

    /// The query, percent-decoded.
    pub fn query_pairs(&self) -> Vec<(String, String)> {
        decode_form(self.query().unwrap_or("").as_bytes())
    }

    /// The first value of a header (name matched case-insensitively).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.header_all(name).into_iter().next()
    }

    /// Every value of a header, in arrival order.
    pub fn header_all(&self, name: &str) -> Vec<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .filter(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// The body read as `application/x-www-form-urlencoded`, percent-decoded.
    pub fn form(&self) -> Vec<(String, String)> {
        decode_form(&self.body)
    }

    /// The first form field called `name`.
    pub fn form_value(&self, name: &str) -> Option<String> {
        self.form()
            .into_iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v)
    }

    /// The body as text (lossy), for assertions and failure messages.
    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

fn decode_form(bytes: &[u8]) -> Vec<(String, String)> {
    url::form_urlencoded::parse(bytes).into_owned().collect()
}

/// What the stub answers. `content-length` is added unless given.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// Wait this long before answering (the request is recorded at once).
    pub delay: Option<Duration>,
}

impl Reply {
    /// An empty answer with this status.
    pub fn status(status: u16) -> Reply {
        Reply {
            status,
            headers: Vec::new(),
            body: Vec::new(),
            delay: None,
        }
    }

    /// A JSON answer.
    pub fn json(status: u16, body: impl Into<String>) -> Reply {
        Reply::status(status)
            .header("content-type", "application/json")
            .body(body.into())
    }

    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Reply {
        self.headers.push((name.into(), value.into()));
        self
    }

    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Reply {
        self.body = body.into();
        self
    }

    /// Answer only after `delay`.
    pub fn after(mut self, delay: Duration) -> Reply {
        self.delay = Some(delay);
        self
    }
}

type Responder = dyn Fn(&Request) -> Reply + Send + Sync;

struct Shared {
    requests: Mutex<Vec<Request>>,
    changed: Notify,
    connections: AtomicUsize,
    responder: Box<Responder>,
}

impl Shared {
    fn requests(&self) -> MutexGuard<'_, Vec<Request>> {
        // A panicking responder must not hide the requests from the test's assertions.
        self.requests.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Test HTTP server on 127.0.0.1; stops (with all its connections) on drop.
pub struct HttpStub {
    addr: SocketAddr,
    shared: Arc<Shared>,
    accept_task: JoinHandle<()>,
}

impl HttpStub {
    /// Binds 127.0.0.1 on an ephemeral port and answers every request with `responder`.
    /// A responder that panics drops that connection without an answer.
    ///
    /// # Panics
    /// If the loopback port cannot be bound; a test cannot proceed anyway.
    pub async fn start(responder: impl Fn(&Request) -> Reply + Send + Sync + 'static) -> HttpStub {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind test HTTP server");
        let addr = listener
            .local_addr()
            .expect("local addr of test HTTP server");
        let shared = Arc::new(Shared {
            requests: Mutex::new(Vec::new()),
            changed: Notify::new(),
            connections: AtomicUsize::new(0),
            responder: Box::new(responder),
        });
        let accept_task = tokio::spawn(accept_loop(listener, shared.clone()));
        HttpStub {
            addr,
            shared,
            accept_task,
        }
    }

    /// Answers every request with the same reply.
    pub async fn always(reply: Reply) -> HttpStub {
        HttpStub::start(move |_| reply.clone()).await
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`, without a trailing slash.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `url()` followed by `path` (which starts with `/`).
    pub fn url_for(&self, path: &str) -> String {
        format!("{}{path}", self.url())
    }

    /// Snapshot of the requests received so far, in arrival order.
    pub fn requests(&self) -> Vec<Request> {
        self.shared.requests().clone()
    }

    pub fn count(&self) -> usize {
        self.shared.requests().len()
    }

    /// TCP connections accepted so far (lets tests observe keep-alive reuse).
    pub fn connections(&self) -> usize {
        self.shared.connections.load(Ordering::SeqCst)
    }

    /// True once at least `n` requests arrived; false on timeout.
    pub async fn wait_for_count(&self, n: usize, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            // Register interest before checking, so a request arriving between the
            // check and the await cannot be missed.
            let notified = self.shared.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.count() >= n {
                return true;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return self.count() >= n;
            }
        }
    }
}

impl Drop for HttpStub {
    fn drop(&mut self) {
        // The connection tasks live in a JoinSet owned by the accept task, so aborting
        // it tears them all down too.
        self.accept_task.abort();
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                shared.connections.fetch_add(1, Ordering::SeqCst);
                conns.spawn(serve(stream, shared.clone()));
            }
            // Reap finished connections so the set does not grow without bound.
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
}

/// Serves one connection until the client closes it or asks to.
async fn serve(stream: TcpStream, shared: Arc<Shared>) {
    let (read, mut write) = stream.into_split();
    let mut read = BufReader::new(read);
    loop {
        let req = match read_request(&mut read, &mut write).await {
            Ok(Some(req)) => req,
            Ok(None) => return,
            Err(status) => {
                let _ = write_reply(&mut write, &Reply::status(status), true).await;
                return;
            }
        };
        let close = wants_close(&req);
        shared.requests().push(req.clone());
        shared.changed.notify_waiters();
        let reply = (shared.responder)(&req);
        if let Some(delay) = reply.delay {
            tokio::time::sleep(delay).await;
        }
        if write_reply(&mut write, &reply, close).await.is_err() || close {
            return;
        }
    }
}

fn wants_close(req: &Request) -> bool {
    req.header_all("connection")
        .iter()
        .any(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case("close")))
}

/// `Ok(None)`: the client closed the connection between requests. `Err(status)`: the
/// request was malformed; answer `status` and close.
async fn read_request(
    read: &mut (impl AsyncBufRead + Unpin),
    write: &mut (impl AsyncWriteExt + Unpin),
) -> Result<Option<Request>, u16> {
    let mut line = String::new();
    // RFC 9112 2.2: ignore empty lines before the request line.
    loop {
        line.clear();
        if read.read_line(&mut line).await.map_err(|_| 400u16)? == 0 {
            return Ok(None);
        }
        if !line.trim_end().is_empty() {
            break;
        }
    }
    let received_at = Instant::now();
    let mut parts = line.split_whitespace();
    let (Some(method), Some(target), Some(_version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(400);
    };
    let (method, target) = (method.to_owned(), target.to_owned());
    let headers = read_headers(read).await?;
    let mut req = Request {
        method,
        target,
        headers,
        body: Vec::new(),
        received_at,
    };
    if req
        .header("expect")
        .is_some_and(|v| v.eq_ignore_ascii_case("100-continue"))
    {
        write
            .write_all(b"HTTP/1.1 100 Continue\r\n\r\n")
            .await
            .map_err(|_| 400u16)?;
    }
    req.body = read_body(read, &req).await?;
    Ok(Some(req))
}

async fn read_headers(
    read: &mut (impl AsyncBufRead + Unpin),
) -> Result<Vec<(String, String)>, u16> {
    let mut headers = Vec::new();
    let mut size = 0;
    loop {
        let mut line = String::new();
        let n = read.read_line(&mut line).await.map_err(|_| 400u16)?;
        size += n;
        if n == 0 {
            return Err(400);
        }
        if size > MAX_HEAD {
            return Err(431);
        }
        let line = line.trim_end_matches(['\r', '\n']);
        if line.is_empty() {
            return Ok(headers);
        }
        let (name, value) = line.split_once(':').ok_or(400u16)?;
        headers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
    }
}

async fn read_body(read: &mut (impl AsyncBufRead + Unpin), req: &Request) -> Result<Vec<u8>, u16> {
    let chunked = req
        .header("transfer-encoding")
        .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
    if chunked {
        return read_chunked(read).await;
    }
    let len: usize = match req.header("content-length") {
        Some(v) => v.parse().map_err(|_| 400u16)?,
        None => 0,
    };
    let mut body = vec![0; len];
    read.read_exact(&mut body).await.map_err(|_| 400u16)?;
    Ok(body)
}

async fn read_chunked(read: &mut (impl AsyncBufRead + Unpin)) -> Result<Vec<u8>, u16> {
    let mut body = Vec::new();
    loop {
        let mut line = String::new();
        read.read_line(&mut line).await.map_err(|_| 400u16)?;
        let size = line.trim_end().split(';').next().unwrap_or("");
        let size = usize::from_str_radix(size.trim(), 16).map_err(|_| 400u16)?;
        if size == 0 {
            // Trailers, then the empty line that ends the message.
            read_headers(read).await?;
            return Ok(body);
        }
        let start = body.len();
        body.resize(start + size, 0);
        read.read_exact(&mut body[start..])
            .await
            .map_err(|_| 400u16)?;
        let mut crlf = [0u8; 2];
        read.read_exact(&mut crlf).await.map_err(|_| 400u16)?;
    }
}

async fn write_reply(
    write: &mut (impl AsyncWriteExt + Unpin),
    reply: &Reply,
    close: bool,
) -> std::io::Result<()> {
    let mut head = format!("HTTP/1.1 {} {}\r\n", reply.status, reason(reply.status));
    let has = |name: &str| {
        reply
            .headers
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case(name))
    };
    for (name, value) in &reply.headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    if !has("content-length") {
        head.push_str(&format!("content-length: {}\r\n", reply.body.len()));
    }
    if close && !has("connection") {
        head.push_str("connection: close\r\n");
    }
    head.push_str("\r\n");
    write.write_all(head.as_bytes()).await?;
    write.write_all(&reply.body).await?;
    write.flush().await
}

fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        301 => "Moved Permanently",
        302 => "Found",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        410 => "Gone",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Status",
    }
}
