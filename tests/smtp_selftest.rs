//! Self tests for the test SMTP server in `tests/support/smtp/`, so that a
//! broken fake cannot make the real integration tests pass or fail spuriously.

mod support;

use std::time::{Duration, Instant};

use support::smtp::{SmtpOptions, SmtpServer};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

/// Minimal raw SMTP client: sends lines verbatim, returns whole replies.
struct Client {
    reader: BufReader<OwnedReadHalf>,
    writer: OwnedWriteHalf,
}

impl Client {
    async fn connect(server: &SmtpServer) -> Client {
        let (r, w) = TcpStream::connect(server.addr())
            .await
            .unwrap()
            .into_split();
        let mut client = Client {
            reader: BufReader::new(r),
            writer: w,
        };
        let greeting = client.reply().await;
        assert!(greeting.starts_with("220 "), "greeting: {greeting:?}");
        client
    }

    /// Reads one (possibly multi-line) reply, keeping the CRLFs.
    async fn reply(&mut self) -> String {
        let mut all = String::new();
        loop {
            let mut line = String::new();
            let n = self.reader.read_line(&mut line).await.unwrap();
            assert!(n > 0, "server closed the connection; got so far: {all:?}");
            assert!(line.ends_with("\r\n"), "reply line without CRLF: {line:?}");
            all.push_str(&line);
            // Continuation lines are "NNN-", the last one "NNN ".
            if line.as_bytes().get(3) != Some(&b'-') {
                return all;
            }
        }
    }

    async fn cmd(&mut self, line: &str) -> String {
        self.writer
            .write_all(format!("{line}\r\n").as_bytes())
            .await
            .unwrap();
        self.reply().await
    }

    /// Runs one transaction; `wire_data` is sent as-is and must already be
    /// dot-stuffed and end with a line break. Returns the DATA-end reply.
    async fn send(&mut self, from: &str, to: &[&str], wire_data: &str) -> String {
        assert_code(&self.cmd(&format!("MAIL FROM:<{from}>")).await, "250");
        for rcpt in to {
            assert_code(&self.cmd(&format!("RCPT TO:<{rcpt}>")).await, "250");
        }
        assert_code(&self.cmd("DATA").await, "354");
        self.writer.write_all(wire_data.as_bytes()).await.unwrap();
        self.cmd(".").await
    }
}

fn assert_code(reply: &str, code: &str) {
    assert!(reply.starts_with(code), "expected {code}, got {reply:?}");
}

fn simple(subject: &str) -> String {
    format!("From: a@example.com\r\nSubject: {subject}\r\n\r\nbody of {subject}\r\n")
}

const WAIT: Duration = Duration::from_secs(5);

#[tokio::test]
async fn plain_message_is_accepted_and_parsed() {
    let server = SmtpServer::start(SmtpOptions::default()).await;
    assert_eq!(server.url(), format!("smtp://127.0.0.1:{}", server.port()));
    let mut c = Client::connect(&server).await;

    let ehlo = c.cmd("EHLO client.example").await;
    assert!(ehlo.starts_with("250-"), "{ehlo:?}");
    assert!(ehlo.contains("250-SIZE") && ehlo.contains("8BITMIME") && ehlo.contains("SMTPUTF8"));
    assert!(
        !ehlo.contains("STARTTLS") && !ehlo.contains("AUTH"),
        "{ehlo:?}"
    );

    let data = "From: Alice <alice@example.com>\r\n\
                message-id: <abc.123@example.com>\r\n\
                SUBJECT: Hello\r\n\tthere\r\n\
                To: bob@example.com\r\n\
                \r\n\
                Hi Bob,\r\nsee you.\r\n";
    let reply = c
        .send(
            "alice@example.com",
            &["bob@example.com", "carol@example.com"],
            data,
        )
        .await;
    assert_code(&reply, "250");
    assert_code(&c.cmd("QUIT").await, "221");

    assert!(server.wait_for_count(1, WAIT).await);
    let msgs = server.messages();
    assert_eq!(msgs.len(), 1);
    let m = &msgs[0];
    assert_eq!(m.mail_from, "alice@example.com");
    assert_eq!(m.rcpt_to, vec!["bob@example.com", "carol@example.com"]);
    assert_eq!(m.data, data);
    assert_eq!(m.message_id.as_deref(), Some("<abc.123@example.com>"));
    assert_eq!(m.subject.as_deref(), Some("Hello\tthere"));
    assert_eq!(m.header("to").as_deref(), Some("bob@example.com"));
    assert_eq!(m.body(), "Hi Bob,\r\nsee you.\r\n");
    assert_eq!(server.rejected(), 0);
    assert_eq!(server.attempts_for("bob@"), 1);
}

#[tokio::test]
async fn dot_stuffing_is_undone_and_bare_lf_tolerated() {
    let server = SmtpServer::start(SmtpOptions::default()).await;
    let mut c = Client::connect(&server).await;
    c.cmd("ehlo x").await;
    // Bare LF line ends throughout, and lowercase commands.
    assert_code(&c.cmd("mail from:<a@x>").await, "250");
    assert_code(&c.cmd("rcpt to:<b@y>").await, "250");
    assert_code(&c.cmd("data").await, "354");
    c.writer
        .write_all(b"Subject: dots\n\n..leading\n..\n...\nend.\n.\n")
        .await
        .unwrap();
    assert_code(&c.reply().await, "250");

    let m = &server.messages()[0];
    assert_eq!(
        m.data,
        "Subject: dots\r\n\r\n.leading\r\n.\r\n..\r\nend.\r\n"
    );
    assert_eq!(m.subject.as_deref(), Some("dots"));
    assert_eq!(m.message_id, None);
}

#[tokio::test]
async fn several_messages_on_one_connection() {
    let server = SmtpServer::start(SmtpOptions::default()).await;
    let mut c = Client::connect(&server).await;
    c.cmd("EHLO x").await;
    assert_code(&c.send("a@x", &["one@y"], &simple("first")).await, "250");
    assert_code(&c.cmd("NOOP").await, "250");
    assert_code(&c.send("a@x", &["two@y"], &simple("second")).await, "250");
    // An aborted transaction must not leak recipients into the next one.
    assert_code(&c.cmd("MAIL FROM:<a@x>").await, "250");
    assert_code(&c.cmd("RCPT TO:<stale@y>").await, "250");
    assert_code(&c.cmd("RSET").await, "250");
    assert_code(&c.send("a@x", &["three@y"], &simple("third")).await, "250");

    let msgs = server.messages();
    let subjects: Vec<_> = msgs.iter().map(|m| m.subject.clone().unwrap()).collect();
    assert_eq!(subjects, ["first", "second", "third"]);
    assert_eq!(msgs[2].rcpt_to, vec!["three@y"]);
    assert_eq!(msgs[1].body(), "body of second\r\n");
    assert_eq!(server.connections(), 1);
}

#[tokio::test]
async fn protocol_errors_and_misc_commands() {
    let server = SmtpServer::start(SmtpOptions::default()).await;
    let mut c = Client::connect(&server).await;
    assert_code(&c.cmd("HELO x").await, "250");
    assert_code(&c.cmd("FROB").await, "500");
    assert_code(&c.cmd("").await, "500");
    assert_code(&c.cmd("VRFY bob").await, "252");
    assert_code(&c.cmd("RCPT TO:<b@y>").await, "503");
    assert_code(&c.cmd("MAIL FROM:<>").await, "250");
    assert_code(&c.cmd("DATA").await, "503");
    assert_code(&c.cmd("RCPT bob").await, "501");
    assert_code(&c.cmd("QUIT").await, "221");
    let mut rest = Vec::new();
    c.reader.read_to_end(&mut rest).await.unwrap();
    assert!(rest.is_empty(), "server should close after QUIT");
    assert_eq!(server.count(), 0);
}

#[tokio::test]
async fn fail_once_rejects_first_attempt_only() {
    let server = SmtpServer::start(SmtpOptions::default()).await;
    server.fail_once("flaky", "451 4.3.0 try again later");
    let mut c = Client::connect(&server).await;
    c.cmd("EHLO x").await;

    let first = c.send("a@x", &["flaky@y"], &simple("one")).await;
    assert_eq!(first, "451 4.3.0 try again later\r\n");
    assert_eq!((server.count(), server.rejected()), (0, 1));
    // Other recipients are unaffected by the rule.
    assert_code(&c.send("a@x", &["steady@y"], &simple("other")).await, "250");
    // Same connection stays usable after a rejection.
    assert_code(&c.send("a@x", &["flaky@y"], &simple("two")).await, "250");

    assert_eq!(server.count(), 2);
    assert_eq!(server.rejected(), 1);
    assert_eq!(server.attempts_for("flaky"), 2);
    assert_eq!(server.attempts_for("steady"), 1);
    assert_eq!(server.messages()[1].subject.as_deref(), Some("two"));
}

#[tokio::test]
async fn fail_always_rejects_every_attempt() {
    let opts = SmtpOptions {
        fail_always: vec![("nobody@".into(), "550 5.1.1 no such user".into())],
        ..SmtpOptions::default()
    };
    let server = SmtpServer::start(opts).await;
    for _ in 0..3 {
        // Fresh connections too, as a pooled client may reconnect.
        let mut c = Client::connect(&server).await;
        c.cmd("EHLO x").await;
        let reply = c.send("a@x", &["nobody@y"], &simple("x")).await;
        assert_eq!(reply, "550 5.1.1 no such user\r\n");
    }
    assert_eq!(server.count(), 0);
    assert!(server.messages().is_empty());
    assert_eq!(server.rejected(), 3);
    assert_eq!(server.attempts_for("nobody"), 3);
    assert!(!server.wait_for_count(1, Duration::from_millis(50)).await);

    server.clear_faults();
    let mut c = Client::connect(&server).await;
    assert_code(&c.send("a@x", &["nobody@y"], &simple("x")).await, "250");
    assert_eq!(server.count(), 1);
}

#[tokio::test]
async fn concurrent_connections_and_wait_for_count() {
    let server = SmtpServer::start(SmtpOptions::default()).await;
    let addr = server.addr();
    assert!(!server.wait_for_count(1, Duration::from_millis(20)).await);
    let mut tasks = Vec::new();
    for i in 0..10 {
        tasks.push(tokio::spawn(async move {
            let (r, w) = TcpStream::connect(addr).await.unwrap().into_split();
            let mut c = Client {
                reader: BufReader::new(r),
                writer: w,
            };
            c.reply().await;
            c.cmd("EHLO x").await;
            for j in 0..2 {
                let reply = c
                    .send("a@x", &[&format!("r{i}@y")], &simple(&format!("{i}-{j}")))
                    .await;
                assert_code(&reply, "250");
            }
        }));
    }
    assert!(server.wait_for_count(20, WAIT).await);
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(server.connections(), 10);
}

#[tokio::test]
async fn delay_slows_down_final_reply() {
    let opts = SmtpOptions {
        delay_per_message: Duration::from_millis(200),
        ..SmtpOptions::default()
    };
    let server = SmtpServer::start(opts).await;
    let mut c = Client::connect(&server).await;
    let started = Instant::now();
    assert_code(&c.send("a@x", &["b@y"], &simple("slow")).await, "250");
    assert!(started.elapsed() >= Duration::from_millis(200));
    server.set_delay(Duration::ZERO);
    let started = Instant::now();
    assert_code(&c.send("a@x", &["b@y"], &simple("fast")).await, "250");
    assert!(started.elapsed() < Duration::from_millis(200));
}

#[tokio::test]
async fn dropping_the_server_closes_listener_and_connections() {
    let server = SmtpServer::start(SmtpOptions::default()).await;
    let addr = server.addr();
    let mut c = Client::connect(&server).await;
    drop(server);
    // Abort takes effect when the runtime next polls the tasks.
    let mut buf = Vec::new();
    let read = tokio::time::timeout(WAIT, c.reader.read_to_end(&mut buf)).await;
    assert!(
        matches!(read, Ok(Ok(0)) | Ok(Err(_))),
        "connection still open: {read:?}"
    );
    assert!(
        TcpStream::connect(addr).await.is_err(),
        "listener still accepting"
    );
}

#[tokio::test]
async fn lettre_pooled_client_is_served() {
    use lettre::message::{Body, SinglePart, header::ContentTransferEncoding};
    use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

    let server = SmtpServer::start(SmtpOptions::default()).await;
    server.fail_once("retry@", "451 4.3.0 try again later");
    let mailer = AsyncSmtpTransport::<Tokio1Executor>::from_url(&server.url())
        .unwrap()
        .build();
    let mail = |to: &str, subject: &str, id: u32| {
        Message::builder()
            .from("Rapport <noreply@example.com>".parse().unwrap())
            .to(to.parse().unwrap())
            .subject(subject)
            .message_id(Some(format!("<m{id}@example.com>")))
            // Forced 8bit so the raw UTF-8 and the leading dot reach the wire.
            .singlepart(SinglePart::plain(
                Body::new_with_encoding(
                    String::from("Grüße,\r\n.hidden dot line\r\n"),
                    ContentTransferEncoding::EightBit,
                )
                .unwrap(),
            ))
            .unwrap()
    };
    let long = "Ünïcödé subject that is long enough to be folded over several lines by lettre";
    mailer.send(mail("a@example.com", long, 1)).await.unwrap();
    // lettre parks a used connection back in its pool from a spawned task.
    tokio::time::sleep(Duration::from_millis(100)).await;
    mailer
        .send(mail("b@example.com", "plain", 2))
        .await
        .unwrap();
    // The pool reuses one connection while all goes well.
    assert_eq!(server.connections(), 1);
    let err = mailer
        .send(mail("retry@example.com", "again", 3))
        .await
        .unwrap_err();
    assert!(err.is_transient(), "{err:?}");
    mailer
        .send(mail("retry@example.com", "again", 4))
        .await
        .unwrap();

    let msgs = server.messages();
    assert_eq!(msgs.len(), 3);
    assert_eq!(msgs[0].subject.as_deref(), Some(long));
    assert_eq!(msgs[0].message_id.as_deref(), Some("<m1@example.com>"));
    assert_eq!(msgs[2].message_id.as_deref(), Some("<m4@example.com>"));
    assert_eq!(msgs[1].mail_from, "noreply@example.com");
    assert!(
        msgs[1].body().contains("Grüße,\r\n.hidden dot line\r\n"),
        "{:?}",
        msgs[1].body()
    );
    assert_eq!(server.attempts_for("retry@"), 2);
}
