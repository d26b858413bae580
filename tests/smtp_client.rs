//! rapport's own SMTP client (`channels::smtp`) against the in-process test server over
//! real TCP, through the public API: a config loaded the way the app loads it, then
//! `channels::email_channel`. Every case runs with and without PIPELINING (RFC 2920).
//!
//! What is checked besides delivery: how failures are classified (4xx transient, 5xx
//! permanent, no answer before the body transient, no answer after it uncertain), that a
//! refused transaction leaves the connection usable (RSET) while a broken one is never
//! reused, and that no error reason carries the recipient or the server's text.

mod support;

use std::{
    path::Path,
    time::{Duration, Instant},
};

use rapport::{
    channels::{self, DeliveryClass, DeliveryError, EmailChannel, OutboundEmail},
    config::Config,
    domain::{ContactId, EmailAddress, TouchId},
    render::RenderedEmail,
};
use support::smtp::{Cut, SmtpOptions, SmtpServer};

const REPO: &str = env!("CARGO_MANIFEST_DIR");
/// The `from` of config/rapport.toml.
const FROM: &str = "hello@rapport.example";
/// Put into every refusal the server sends: must never reach an error reason.
const SERVER_TEXT: &str = "SERVERTEXT";
const MODES: [Mode; 2] = [Mode::Pipelined, Mode::OneByOne];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Pipelined,
    OneByOne,
}

async fn server(mode: Mode, opts: SmtpOptions) -> SmtpServer {
    SmtpServer::start(SmtpOptions {
        no_pipelining: mode == Mode::OneByOne,
        ..opts
    })
    .await
}

fn channel(server: &SmtpServer) -> Box<dyn EmailChannel> {
    channel_at(server.url())
}

/// The SMTP channel as the app builds it: config/rapport.toml plus env overrides.
fn channel_at(url: String) -> Box<dyn EmailChannel> {
    let env = [
        ("RAPPORT__CHANNELS__EMAIL__TRANSPORT", "smtp".to_owned()),
        ("RAPPORT__CHANNELS__EMAIL__URL", url),
        ("RAPPORT__CHANNELS__EMAIL__TLS", "none".to_owned()),
        ("RAPPORT__CHANNELS__EMAIL__TIMEOUT", "1s".to_owned()),
        // Whatever the machine's environment holds, no AUTH against the test server.
        (
            "RAPPORT__CHANNELS__EMAIL__USERNAME_ENV",
            "RAPPORT_SMTP_CLIENT_TEST_UNSET_USER".to_owned(),
        ),
        (
            "RAPPORT__CHANNELS__EMAIL__PASSWORD_ENV",
            "RAPPORT_SMTP_CLIENT_TEST_UNSET_PASSWORD".to_owned(),
        ),
        ("RAPPORT__TEMPLATES__DIR", format!("{REPO}/templates")),
    ]
    .map(|(k, v)| (k.to_owned(), v));
    let cfg = Config::load_with(Path::new(&format!("{REPO}/config/rapport.toml")), None, env)
        .expect("config loads");
    let ch = channels::email_channel(&cfg.email).expect("smtp channel");
    assert_eq!(ch.kind(), "smtp");
    ch
}

fn email(contact: &str, to: &str, subject: &str, text: &str) -> OutboundEmail {
    OutboundEmail {
        touch: TouchId::derive("birthday", &ContactId::parse(contact).unwrap(), "2026"),
        to: EmailAddress::parse(to).unwrap(),
        to_name: Some("Ada Lovelace".into()),
        content: RenderedEmail {
            subject: subject.into(),
            text: text.into(),
            html: None,
        },
        unsubscribe: None,
    }
}

fn simple(contact: &str, to: &str) -> OutboundEmail {
    email(contact, to, "Hello", "Hi there,\r\nsee you soon.\r\n")
}

/// The failure, with its class checked and its reason free of the recipient, of any
/// address, and of the server's text.
fn failure(
    mode: Mode,
    result: Result<(), DeliveryError>,
    class: DeliveryClass,
    to: &str,
) -> DeliveryError {
    let err = match result {
        Err(e) => e,
        Ok(()) => panic!("{mode:?}: expected a {class:?} failure, the send succeeded"),
    };
    assert_eq!(err.class, class, "{mode:?}: {err}");
    let local = to.split('@').next().unwrap();
    for shown in [err.reason.clone(), err.to_string(), format!("{err:?}")] {
        for leak in [to, local, "@", SERVER_TEXT, "5.1.1", "4.2.0", "mailbox"] {
            assert!(
                !shown.contains(leak),
                "{mode:?}: {leak:?} leaked into {shown:?}"
            );
        }
    }
    err
}

#[tokio::test]
async fn messages_arrive_intact_with_dots_and_non_ascii_subject() {
    for mode in MODES {
        let server = server(mode, SmtpOptions::default()).await;
        let ch = channel(&server);
        // Lines that are or start with dots: unstuffed wrongly, the lone "." would
        // end the message early and the rest would be read as commands.
        let text = "Dear Ada,\r\n.leading dot\r\n..two dots\r\n.\r\nafter the lone dot\r\n. space\r\nend.\r\n";
        let subject = "Alles Gute zum Geburtstag, Zoë! 🎂 — ünïcödé";
        let sent = email("ada", "ada@example.com", subject, text);
        ch.send(&sent).await.unwrap();

        let msgs = server.messages();
        assert_eq!(msgs.len(), 1, "{mode:?}");
        let m = &msgs[0];
        assert_eq!(m.mail_from, FROM, "{mode:?}");
        assert_eq!(m.rcpt_to, ["ada@example.com"], "{mode:?}");
        assert_eq!(m.subject.as_deref(), Some(subject), "{mode:?}");
        assert_eq!(
            m.message_id.as_deref(),
            Some(sent.message_id("rapport.example").as_str()),
            "{mode:?}"
        );
        assert!(m.body().contains(text), "{mode:?}: body {:?}", m.body());
        assert_eq!(server.rejected(), 0, "{mode:?}");
    }
}

#[tokio::test]
async fn a_message_with_html_arrives_with_both_parts() {
    for mode in MODES {
        let server = server(mode, SmtpOptions::default()).await;
        let ch = channel(&server);
        let mut sent = email("ada", "ada@example.com", "Hi", ".plain part\r\n");
        sent.content.html = Some("<p>html part</p>\r\n".into());
        ch.send(&sent).await.unwrap();
        let m = &server.messages()[0];
        assert!(m.body().contains(".plain part\r\n"), "{mode:?}");
        assert!(m.body().contains("<p>html part</p>"), "{mode:?}");
        assert!(m.data.contains("multipart/alternative"), "{mode:?}");
    }
}

#[tokio::test]
async fn several_messages_reuse_one_connection() {
    for mode in MODES {
        let server = server(mode, SmtpOptions::default()).await;
        let ch = channel(&server);
        for i in 0..5 {
            let to = format!("friend{i}@example.com");
            ch.send(&simple(&format!("c{i}"), &to)).await.unwrap();
        }
        let msgs = server.messages();
        let rcpts: Vec<_> = msgs.iter().map(|m| m.rcpt_to[0].clone()).collect();
        assert_eq!(
            rcpts,
            (0..5)
                .map(|i| format!("friend{i}@example.com"))
                .collect::<Vec<_>>(),
            "{mode:?}"
        );
        assert_eq!(server.connections(), 1, "{mode:?}");
        assert_eq!(server.rsets(), 0, "{mode:?}: no RSET when all goes well");
    }
}

#[tokio::test]
async fn concurrent_sends_share_the_pool() {
    for mode in MODES {
        let server = server(mode, SmtpOptions::default()).await;
        let ch = channel(&server);
        let emails: Vec<_> = (0..40)
            .map(|i| simple(&format!("c{i}"), &format!("p{i}@example.com")))
            .collect();
        let results = futures::future::join_all(emails.iter().map(|e| ch.send(e))).await;
        assert!(results.iter().all(Result::is_ok), "{mode:?}: {results:?}");
        assert_eq!(server.count(), 40, "{mode:?}");
        // pool_size in config/rapport.toml
        assert!(
            server.connections() <= 16,
            "{mode:?}: {}",
            server.connections()
        );
        // Every message exactly once.
        let mut ids: Vec<_> = server
            .messages()
            .into_iter()
            .map(|m| m.message_id.unwrap())
            .collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), 40, "{mode:?}");
    }
}

/// A refused RCPT is classified by its code, and the connection stays usable: the
/// client reset the transaction (the server answers a second MAIL without RSET with
/// 503, which would fail the next send).
#[tokio::test]
async fn a_refused_recipient_is_classified_and_the_connection_reused() {
    let cases = [
        (
            "gone@example.com",
            format!("550 5.1.1 <gone@example.com> {SERVER_TEXT} mailbox unavailable"),
            DeliveryClass::Permanent,
        ),
        (
            "full@example.com",
            format!("450 4.2.0 <full@example.com> {SERVER_TEXT} mailbox busy"),
            DeliveryClass::Transient,
        ),
        // Multi-line: every line must be read as one reply, or the replies that
        // follow (DATA's, when pipelined) get out of step.
        (
            "multi@example.com",
            format!(
                "550-5.1.1 <multi@example.com> {SERVER_TEXT} first line\r\n\
                 550-5.1.1 second line\r\n550 5.1.1 last line"
            ),
            DeliveryClass::Permanent,
        ),
    ];
    for mode in MODES {
        let server = server(mode, SmtpOptions::default()).await;
        for (to, reply, _) in &cases {
            server.reject_rcpt(*to, reply.as_str());
        }
        let ch = channel(&server);
        for (i, (to, _, class)) in cases.iter().enumerate() {
            let err = failure(mode, ch.send(&simple("x", to)).await, *class, to);
            let code = &cases[i].1[..3];
            assert_eq!(err.reason, format!("smtp {code}"), "{mode:?}");
            let ok = format!("ok{i}@example.com");
            ch.send(&simple("ok", &ok)).await.unwrap();
        }
        assert_eq!(server.count(), cases.len(), "{mode:?}");
        assert_eq!(server.attempts_for("gone@"), 0, "{mode:?}: no DATA for it");
        assert_eq!(server.rsets(), cases.len(), "{mode:?}");
        assert_eq!(server.connections(), 1, "{mode:?}");
    }
}

#[tokio::test]
async fn a_refused_mail_from_is_transient_or_permanent_and_the_connection_reused() {
    for mode in MODES {
        let server = server(mode, SmtpOptions::default()).await;
        let ch = channel(&server);
        let to = "ada@example.com";
        server.reject_next_mail(format!("451 4.3.0 {SERVER_TEXT} <{FROM}> try later"));
        failure(
            mode,
            ch.send(&simple("a", to)).await,
            DeliveryClass::Transient,
            to,
        );
        ch.send(&simple("a", to)).await.unwrap();
        server.reject_next_mail(format!("553 5.7.1 {SERVER_TEXT} <{FROM}> not allowed"));
        failure(
            mode,
            ch.send(&simple("b", to)).await,
            DeliveryClass::Permanent,
            to,
        );
        ch.send(&simple("b", to)).await.unwrap();
        assert_eq!(server.count(), 2, "{mode:?}");
        assert_eq!(server.connections(), 1, "{mode:?}");
    }
}

/// 421 means the server is closing the channel (RFC 5321 3.8): transient, and the
/// session must not be reused even if the socket is still open.
#[tokio::test]
async fn a_421_is_transient_and_the_session_dropped() {
    for mode in MODES {
        let server = server(mode, SmtpOptions::default()).await;
        let ch = channel(&server);
        let to = "busy@example.com";
        server.reject_rcpt("busy@", format!("421 4.3.2 {SERVER_TEXT} closing"));
        failure(
            mode,
            ch.send(&simple("a", to)).await,
            DeliveryClass::Transient,
            to,
        );
        ch.send(&simple("b", "ada@example.com")).await.unwrap();
        assert_eq!(server.connections(), 2, "{mode:?}");
    }
}

/// A server that answers DATA with 354 although no recipient was accepted waits for a
/// body: the client ends it with a lone dot (RFC 2920 3.1), resets, and goes on on the
/// same connection. One at a time, DATA is never sent after a refused RCPT.
#[tokio::test]
async fn a_354_despite_a_refused_recipient_is_ended_with_a_lone_dot() {
    for mode in MODES {
        let opts = SmtpOptions {
            data_despite_failure: true,
            ..SmtpOptions::default()
        };
        let server = server(mode, opts).await;
        let ch = channel(&server);
        let to = "gone@example.com";
        server.reject_rcpt("gone@", format!("550 5.1.1 <{to}> {SERVER_TEXT}"));
        let err = failure(
            mode,
            ch.send(&simple("a", to)).await,
            DeliveryClass::Permanent,
            to,
        );
        assert_eq!(err.reason, "smtp 550", "{mode:?}");
        let lone_dots = if mode == Mode::Pipelined { 1 } else { 0 };
        assert_eq!(server.data_without_recipients(), lone_dots, "{mode:?}");
        ch.send(&simple("b", "ada@example.com")).await.unwrap();
        assert_eq!(server.count(), 1, "{mode:?}");
        assert_eq!(server.rsets(), 1, "{mode:?}");
        assert_eq!(server.connections(), 1, "{mode:?}");
    }
}

#[tokio::test]
async fn a_refusal_at_the_end_of_data_is_classified_by_its_code() {
    for mode in MODES {
        let server = server(mode, SmtpOptions::default()).await;
        let ch = channel(&server);
        let soft = "soft@example.com";
        let hard = "hard@example.com";
        server.fail_once("soft@", format!("451 4.3.0 <{soft}> {SERVER_TEXT} later"));
        server.fail_always("hard@", format!("554 5.7.1 <{hard}> {SERVER_TEXT} spam"));

        let err = failure(
            mode,
            ch.send(&simple("s", soft)).await,
            DeliveryClass::Transient,
            soft,
        );
        assert_eq!(err.reason, "smtp 451", "{mode:?}");
        ch.send(&simple("s", soft)).await.unwrap();
        let err = failure(
            mode,
            ch.send(&simple("h", hard)).await,
            DeliveryClass::Permanent,
            hard,
        );
        assert_eq!(err.reason, "smtp 554", "{mode:?}");
        ch.send(&simple("ok", "ada@example.com")).await.unwrap();

        assert_eq!(server.count(), 2, "{mode:?}");
        assert_eq!(server.rejected(), 2, "{mode:?}");
        // The transaction ends with the reply to the dot: no RSET needed, same socket.
        assert_eq!(server.rsets(), 0, "{mode:?}");
        assert_eq!(server.connections(), 1, "{mode:?}");
    }
}

/// The server refused the recipient, then hung up on the RSET: its answer stands
/// (permanent), and the half-reset session is not reused.
#[tokio::test]
async fn a_refusal_stands_when_the_reset_fails() {
    for mode in MODES {
        let opts = SmtpOptions {
            cut_once: Some(Cut::CloseAtRset),
            ..SmtpOptions::default()
        };
        let server = server(mode, opts).await;
        let ch = channel(&server);
        let to = "gone@example.com";
        server.reject_rcpt("gone@", format!("550 5.1.1 <{to}> {SERVER_TEXT}"));
        let err = failure(
            mode,
            ch.send(&simple("a", to)).await,
            DeliveryClass::Permanent,
            to,
        );
        assert_eq!(err.reason, "smtp 550", "{mode:?}");
        ch.send(&simple("b", "ada@example.com")).await.unwrap();
        assert_eq!(server.connections(), 2, "{mode:?}");
    }
}

/// A connection idle for a while is checked with NOOP before use; one the server has
/// closed meanwhile is replaced, and the message goes out on a fresh one.
#[tokio::test]
async fn an_idle_connection_is_checked_and_replaced_when_dead() {
    let server = server(Mode::Pipelined, SmtpOptions::default()).await;
    let ch = channel(&server);
    ch.send(&simple("a", "a@example.com")).await.unwrap();
    // CHECK_AFTER in src/channels/smtp/mod.rs is 2s.
    tokio::time::sleep(Duration::from_millis(2200)).await;
    ch.send(&simple("b", "b@example.com")).await.unwrap();
    assert_eq!(server.connections(), 1, "a live idle connection is reused");
    server.cut_once(Cut::CloseAtNoop);
    tokio::time::sleep(Duration::from_millis(2200)).await;
    ch.send(&simple("c", "c@example.com")).await.unwrap();
    assert_eq!(server.connections(), 2);
    assert_eq!(server.count(), 3);
}

/// No answer to the final dot: the server may have accepted the message.
#[tokio::test]
async fn no_answer_to_the_final_dot_is_uncertain_and_the_session_not_reused() {
    for mode in MODES {
        let opts = SmtpOptions {
            delay_per_message: Duration::from_millis(2500),
            ..SmtpOptions::default()
        };
        let server = server(mode, opts).await;
        let ch = channel(&server);
        let to = "ada@example.com";
        let started = Instant::now();
        let err = failure(
            mode,
            ch.send(&simple("a", to)).await,
            DeliveryClass::Uncertain,
            to,
        );
        let took = started.elapsed();
        assert!(
            took >= Duration::from_millis(900) && took < Duration::from_millis(2400),
            "{mode:?}: the 1s timeout took {took:?}"
        );
        assert!(err.reason.contains("timeout"), "{mode:?}: {err}");

        server.set_delay(Duration::ZERO);
        ch.send(&simple("b", "bob@example.com")).await.unwrap();
        // The timed-out session was dropped, not handed out again with a late "250"
        // still on its way (which would be read as the next transaction's answers).
        assert_eq!(server.connections(), 2, "{mode:?}");
        let last = server.messages().pop().unwrap();
        assert_eq!(last.rcpt_to, ["bob@example.com"], "{mode:?}");
    }
}

/// The server hangs up once at `cut`: the send fails as `class`, and the next one goes
/// out on a new connection.
async fn a_hang_up_fails_one_send(cut: Cut, class: DeliveryClass) {
    for mode in MODES {
        let opts = SmtpOptions {
            cut_once: Some(cut),
            ..SmtpOptions::default()
        };
        let server = server(mode, opts).await;
        let ch = channel(&server);
        let to = "ada@example.com";
        let err = failure(mode, ch.send(&simple("a", to)).await, class, to);
        assert!(err.reason.contains("connection"), "{mode:?}: {err}");
        ch.send(&simple("a", to)).await.unwrap();
        assert_eq!(server.count(), 1, "{mode:?}");
        assert_eq!(server.connections(), 2, "{mode:?}");
    }
}

/// Closed after the final dot: the server may have accepted the message.
#[tokio::test]
async fn a_connection_closed_after_the_final_dot_is_uncertain() {
    a_hang_up_fails_one_send(Cut::CloseAtDataEnd, DeliveryClass::Uncertain).await;
}

/// Closed before MAIL was answered: nothing can have been accepted.
#[tokio::test]
async fn a_connection_closed_before_mail_is_answered_is_transient() {
    a_hang_up_fails_one_send(Cut::CloseAtMail, DeliveryClass::Transient).await;
}

/// Silent before MAIL was answered: a timeout before the body is transient too (an
/// uncertain outcome is retried only once, so this matters).
#[tokio::test]
async fn no_answer_to_mail_within_the_timeout_is_transient() {
    for mode in MODES {
        let opts = SmtpOptions {
            cut_once: Some(Cut::SilentAtMail),
            ..SmtpOptions::default()
        };
        let server = server(mode, opts).await;
        let ch = channel(&server);
        let to = "ada@example.com";
        let started = Instant::now();
        let err = failure(
            mode,
            ch.send(&simple("a", to)).await,
            DeliveryClass::Transient,
            to,
        );
        assert!(started.elapsed() < Duration::from_secs(3), "{mode:?}");
        assert!(err.reason.contains("timeout"), "{mode:?}: {err}");
        ch.send(&simple("a", to)).await.unwrap();
        assert_eq!(server.count(), 1, "{mode:?}");
        assert_eq!(server.connections(), 2, "{mode:?}");
    }
}

#[tokio::test]
async fn an_unreachable_server_is_transient() {
    // Bind and drop: nothing listens on that port any more.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let ch = channel_at(format!("smtp://127.0.0.1:{port}"));
    let to = "ada@example.com";
    let err = failure(
        Mode::Pipelined,
        ch.send(&simple("a", to)).await,
        DeliveryClass::Transient,
        to,
    );
    assert!(err.reason.contains("connecting"), "{err}");
}
