//! What rapport keeps of an SMTP reply: its code (RFC 5321), its enhanced status code
//! (RFC 3463) when the server announced ENHANCEDSTATUSCODES (RFC 2034), and which
//! command it answered. Never its text: servers echo addresses in it.

use std::fmt;

/// The command a reply answered, which says what a refusal is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Step {
    /// Greeting, EHLO, STARTTLS, AUTH: the session, not a message.
    Session,
    /// `MAIL FROM`: the sender (ours).
    Mail,
    /// `RCPT TO`: the recipient.
    Rcpt,
    /// The `DATA` command, before the body.
    Data,
    /// The final dot: the message as a whole.
    Message,
}

/// An enhanced mail system status code, `class.subject.detail` (`5.1.1`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Status {
    pub class: u16,
    pub subject: u16,
    pub detail: u16,
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.class, self.subject, self.detail)
    }
}

/// A reply as classified: `550`, or `550 5.1.1` with its status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Reply {
    pub code: u16,
    pub status: Option<Status>,
    pub to: Step,
}

impl Reply {
    /// A reply with no enhanced status code.
    pub(crate) fn bare(code: u16, to: Step) -> Self {
        Self {
            code,
            status: None,
            to,
        }
    }
}

/// Codes only, as stored and logged (`550 5.1.1`).
impl fmt::Display for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.status {
            Some(s) => write!(f, "{} {s}", self.code),
            None => write!(f, "{}", self.code),
        }
    }
}

/// The enhanced status code that starts the text of reply `line` (`550 5.1.1 <a@b>
/// unknown`, or `550-5.1.1 ...` on a line of a multi-line reply), or `None` when there is
/// none, it is malformed, or its class is not the first digit of `code` (RFC 2034
/// section 4: every status must agree with the basic code; a reply that disagrees with
/// itself is read as having no status). Only worth asking of a server that announced
/// ENHANCEDSTATUSCODES: from another, digits at the start of the text are just text.
pub(crate) fn parse_status(line: &[u8], code: u16) -> Option<Status> {
    if !matches!(line.get(3), Some(b' ' | b'-')) {
        return None;
    }
    let text = line.get(4..)?;
    let end = text
        .iter()
        .position(|b| matches!(b, b' ' | b'\t' | b'\r' | b'\n'))
        .unwrap_or(text.len());
    let mut parts = text[..end].split(|b| *b == b'.');
    // RFC 3463: class = "2" / "4" / "5"; subject and detail = 1*3digit.
    let number = |part: Option<&[u8]>, max: usize| -> Option<u16> {
        let part = part?;
        if part.is_empty() || part.len() > max || !part.iter().all(u8::is_ascii_digit) {
            return None;
        }
        std::str::from_utf8(part).ok()?.parse().ok()
    };
    let class = number(parts.next(), 1)?;
    let subject = number(parts.next(), 3)?;
    let detail = number(parts.next(), 3)?;
    if parts.next().is_some() || !matches!(class, 2 | 4 | 5) || class != code / 100 {
        return None;
    }
    Some(Status {
        class,
        subject,
        detail,
    })
}

/// Permanent statuses that say the recipient's address itself does not work, and so
/// is suppressed (RFC 3463 section 3.2, with the IANA registry "SMTP Enhanced Status
/// Codes"):
/// - 5.1.1 bad destination mailbox address (no such user);
/// - 5.1.2 bad destination system address (no such domain, or it takes no mail);
/// - 5.1.3 bad destination mailbox address syntax;
/// - 5.1.6 destination mailbox has moved, no forwarding address;
/// - 5.1.10 recipient address has a null MX (RFC 7505: the domain takes no mail);
/// - 5.2.1 mailbox disabled, not accepting messages.
///
/// Not on it, on purpose: 5.1.0 (other address status: says nothing definite), 5.1.4
/// (ambiguous address: the receiving site may resolve it), 5.1.7 and 5.1.8 (the
/// *sender's* address: ours), 5.2.2 (mailbox full: a state, not an address that is
/// gone), 5.4.x (routing), 5.7.x (policy, content, authentication: about the message or
/// about us, not the address) and everything else: those fail the message without
/// suppressing the address.
const DEAD_ADDRESS: [(u16, u16); 6] = [(1, 1), (1, 2), (1, 3), (1, 6), (1, 10), (2, 1)];

impl Reply {
    /// The reply refuses the recipient's address for good: a 5xx whose enhanced status
    /// is in [`DEAD_ADDRESS`], answering `RCPT TO` or the end of the message (a server
    /// that checks recipients after the body; rapport sends one recipient per message,
    /// so the refusal is about that recipient). The same status answering `MAIL FROM` is
    /// about our sender, never the recipient. A reply without an enhanced status (the
    /// server announced none) never counts, even 550, 551 or 553 at `RCPT`: RFC 5321
    /// gives 550 to "mailbox unavailable" and to refusals for policy reasons alike, and
    /// an address suppressed by mistake is lost for good.
    pub(crate) fn refuses_the_address(&self) -> bool {
        (500..600).contains(&self.code)
            && matches!(self.to, Step::Rcpt | Step::Message)
            && self
                .status
                .is_some_and(|s| s.class == 5 && DEAD_ADDRESS.contains(&(s.subject, s.detail)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(class: u16, subject: u16, detail: u16) -> Option<Status> {
        Some(Status {
            class,
            subject,
            detail,
        })
    }

    #[test]
    fn the_enhanced_status_is_read_from_the_start_of_the_text() {
        let cases: [(&[u8], u16, Option<Status>); 16] = [
            (
                b"550 5.1.1 <ada@example.com> no such user\r\n",
                550,
                status(5, 1, 1),
            ),
            (b"550-5.1.1 first line of several\r\n", 550, status(5, 1, 1)),
            (
                b"554 5.7.26 unauthenticated sender\r\n",
                554,
                status(5, 7, 26),
            ),
            (b"550 5.1.10 null MX\r\n", 550, status(5, 1, 10)),
            (b"451 4.3.0 try later\r\n", 451, status(4, 3, 0)),
            (b"250 2.0.0\r\n", 250, status(2, 0, 0)),
            (b"550 5.1.1", 550, status(5, 1, 1)),
            // No status, or something else at the start of the text.
            (b"550 no such user\r\n", 550, None),
            (b"550\r\n", 550, None),
            (b"550 5.1\r\n", 550, None),
            (b"550 5.1.1.1 extra part\r\n", 550, None),
            (b"550 5.1.1000 detail too long\r\n", 550, None),
            (b"550 5.x.1 not digits\r\n", 550, None),
            (b"550 3.1.1 no such class\r\n", 550, None),
            // The class must be the basic code's first digit.
            (b"550 4.2.2 mailbox full\r\n", 550, None),
            (b"5505.1.1 no separator\r\n", 550, None),
        ];
        for (line, code, want) in cases {
            assert_eq!(
                parse_status(line, code),
                want,
                "{}",
                String::from_utf8_lossy(line)
            );
        }
    }

    #[test]
    fn a_reply_shows_its_codes_only() {
        let r = Reply {
            code: 550,
            status: status(5, 1, 1),
            to: Step::Rcpt,
        };
        assert_eq!(r.to_string(), "550 5.1.1");
        assert_eq!(Reply::bare(421, Step::Session).to_string(), "421");
    }

    #[test]
    fn only_a_dead_address_at_rcpt_or_after_the_body_refuses_the_address() {
        let reply = |code, s: Option<Status>, to| Reply {
            code,
            status: s,
            to,
        };
        let dead = [
            status(5, 1, 1),
            status(5, 1, 2),
            status(5, 1, 3),
            status(5, 1, 6),
            status(5, 1, 10),
            status(5, 2, 1),
        ];
        for s in dead {
            for to in [Step::Rcpt, Step::Message] {
                assert!(reply(550, s, to).refuses_the_address(), "{s:?} {to:?}");
            }
            for to in [Step::Session, Step::Mail, Step::Data] {
                assert!(!reply(550, s, to).refuses_the_address(), "{s:?} {to:?}");
            }
        }
        let alive = [
            None,
            status(5, 1, 0),
            status(5, 1, 4),
            status(5, 1, 7),
            status(5, 1, 8),
            status(5, 2, 2),
            status(5, 4, 1),
            status(5, 7, 1),
            status(5, 7, 26),
            status(5, 5, 1),
        ];
        for s in alive {
            assert!(!reply(550, s, Step::Rcpt).refuses_the_address(), "{s:?}");
            assert!(!reply(554, s, Step::Message).refuses_the_address(), "{s:?}");
        }
        for code in [550, 551, 553] {
            assert!(!reply(code, None, Step::Rcpt).refuses_the_address());
        }
        // A 4xx is never a hard bounce, whatever it says (parse_status would not give a
        // 5.x.x status to it anyway).
        assert!(!reply(450, status(4, 1, 1), Step::Rcpt).refuses_the_address());
    }
}
