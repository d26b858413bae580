//! Delivery: messages arrive intact (dot-stuffing, a non-ASCII subject, an HTML part),
//! several go out on one connection, and concurrent sends share the pool.

use crate::harness::{FROM, MODES, channel, email, server, simple};
use crate::support::smtp::SmtpOptions;

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
