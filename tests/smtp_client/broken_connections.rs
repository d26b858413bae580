//! Connections that break: no answer or a hang-up before the body is transient, after
//! it uncertain; a broken session is never reused, an idle one is checked first, and an
//! unreachable server is transient.

use std::time::{Duration, Instant};

use rapport::channels::DeliveryClass;

use crate::harness::{MODES, Mode, channel, channel_at, failure, server, simple};
use crate::support::smtp::{Cut, SmtpOptions};

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
