//! One mail transaction: the envelope (`MAIL FROM`, `RCPT TO`, `DATA`), pipelined when
//! the server offers it, then the body; a refused envelope is cleaned up so the session
//! can be reused, when that is safe.

use super::{Progress, Session, SmtpError};
use crate::channels::smtp::reply::{Reply, Step};

/// What the server answered to an envelope.
struct EnvelopeAnswers {
    /// The first command refused, if any: the transaction's answer.
    refused: Option<Reply>,
    /// DATA got its 354: the server waits for a body.
    data_open: bool,
    /// At least one RCPT was accepted.
    rcpt_accepted: bool,
    /// Every answer is one this state allows, and none says the server is closing.
    sane: bool,
}

impl Session {
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
        let answers = self.send_envelope(&envelope(from, to, utf8)).await?;
        if let Some(refused) = answers.refused {
            self.broken =
                !(answers.sane && self.reset(answers.data_open, answers.rcpt_accepted).await);
            return Err(SmtpError::Reply(refused));
        }
        self.send_body(message).await
    }

    /// Sends the envelope and reads every answer to it. Pipelined, every command gets
    /// its answer even when an earlier one failed (RFC 2920): read them all, then judge
    /// by the first failure. One at a time, stop at the first failure.
    async fn send_envelope(&mut self, envelope: &[String]) -> Result<EnvelopeAnswers, SmtpError> {
        let mut answers = EnvelopeAnswers {
            refused: None,
            data_open: false,
            rcpt_accepted: false,
            sane: true,
        };
        if self.pipelining {
            self.out.clear();
            for c in envelope {
                self.out.extend_from_slice(c.as_bytes());
            }
            self.flush().await?;
        }
        let last = envelope.len() - 1;
        for (i, c) in envelope.iter().enumerate() {
            if !self.pipelining {
                if answers.refused.is_some() {
                    break;
                }
                self.command(c.as_bytes()).await?;
            }
            let code = match self.reply().await {
                Ok(code) => code,
                // Refused already: that answer stands (the session stays broken).
                Err(e) => return Err(answers.refused.map_or(e, SmtpError::Reply)),
            };
            let step = match i {
                0 => Step::Mail,
                i if i == last => Step::Data,
                _ => Step::Rcpt,
            };
            let ok = if step == Step::Data {
                answers.data_open = code == 354;
                answers.data_open
            } else {
                (200..300).contains(&code)
            };
            answers.rcpt_accepted |= ok && step == Step::Rcpt;
            answers.sane &= ok || ((400..600).contains(&code) && code != 421);
            if !ok && answers.refused.is_none() {
                let refused = Reply {
                    code,
                    status: self.status(code),
                    to: step,
                };
                answers.refused = Some(refused);
                self.progress = Progress::Refused(refused);
            }
        }
        Ok(answers)
    }

    /// Sends the body and its final dot, after a 354, and reads the verdict on it.
    async fn send_body(&mut self, message: &[u8]) -> Result<(), SmtpError> {
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
}

/// The envelope's commands: `MAIL FROM` (with `SMTPUTF8` when an address needs it),
/// a `RCPT TO` per recipient, `DATA`.
fn envelope(from: &str, to: &[&str], utf8: bool) -> Vec<String> {
    let params = if utf8 { " SMTPUTF8" } else { "" };
    let mut envelope = vec![format!("MAIL FROM:<{from}>{params}\r\n")];
    envelope.extend(to.iter().map(|t| format!("RCPT TO:<{t}>\r\n")));
    envelope.push("DATA\r\n".to_owned());
    envelope
}

/// `.` at the start of a line becomes `..` (RFC 5321 4.5.2); the body ends with CRLF.
pub(super) fn dot_stuff(body: &[u8], out: &mut Vec<u8>) {
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
