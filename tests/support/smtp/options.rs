//! How the test server is told to behave: its startup options, and the stages at which
//! it can be made to hang up or fall silent.

use std::time::Duration;

/// Startup configuration; everything can also be changed later on the server.
#[derive(Debug, Clone, Default)]
pub struct SmtpOptions {
    /// Sleep before answering the final `.` of each message, so a test can
    /// interrupt a run while messages are still in flight.
    pub delay_per_message: Duration,
    /// `(recipient substring, reply)`: rejected once, accepted afterwards.
    pub fail_once: Vec<(String, String)>,
    /// `(recipient substring, reply)`: rejected every time.
    pub fail_always: Vec<(String, String)>,
    /// Do not offer PIPELINING (RFC 2920), so clients send one command at a time.
    pub no_pipelining: bool,
    /// `(recipient substring, reply)`: refused at RCPT every time.
    pub reject_rcpt: Vec<(String, String)>,
    /// Answer DATA with 354 even when no recipient was accepted (a server that
    /// ignores RFC 2920 3.1); the content is then refused with 554 at its end.
    pub data_despite_failure: bool,
    /// Misbehave once, at the first connection that reaches this stage.
    pub cut_once: Option<Cut>,
    /// Announce ENHANCEDSTATUSCODES (RFC 2034), as real servers do: the client then
    /// reads the `5.1.1` of a reply as its status. Without it, only as text.
    pub enhanced_status_codes: bool,
}

/// Where the server stops behaving (see `SmtpOptions::cut_once`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cut {
    /// Close the connection on MAIL, without answering it.
    CloseAtMail,
    /// Never answer MAIL (nor anything after it), keeping the connection open.
    SilentAtMail,
    /// Close the connection after the final `.`, without answering it; the
    /// message is not stored.
    CloseAtDataEnd,
    /// Close the connection on RSET, without answering it.
    CloseAtRset,
    /// Close the connection on NOOP, without answering it.
    CloseAtNoop,
}
