//! Refusals: a refused RCPT, MAIL or message is classified by its code (4xx transient,
//! 5xx permanent); the connection is reused after a reset, but not after a 421 or a
//! failed reset.

use rapport::channels::DeliveryClass;

use crate::harness::{FROM, MODES, Mode, SERVER_TEXT, channel, failure, server, simple};
use crate::support::smtp::{Cut, SmtpOptions};

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
