//! One SMTP session: the commands the test server answers (RFC 5321, pipelined or not),
//! the message content read up to the lone dot, and the faults applied on the way.

use std::borrow::Cow;
use std::io;
use std::time::Instant;

use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use super::options::Cut;
use super::state::{Shared, State};

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

pub(super) async fn handle_connection(stream: TcpStream, shared: &Shared) -> io::Result<()> {
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
