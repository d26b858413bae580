use tokio::{
    io::{AsyncBufReadExt, AsyncWriteExt},
    net::TcpListener,
};

use super::{transaction::dot_stuff, wire::MAX_REPLY_LINE, *};
use crate::channels::smtp::reply::parse_status;

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
