//! What the test server knows, shared by its connections: the fault rules still to
//! apply, and everything received so far, behind one lock with a wake-up for waiters.

use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

use super::options::Cut;
use super::received::Received;

#[derive(Default)]
pub(super) struct State {
    pub(super) delay: Duration,
    /// `(recipient substring, reply)` rules; a fail-once rule is removed
    /// when it fires.
    pub(super) fail_once: Vec<(String, String)>,
    pub(super) fail_always: Vec<(String, String)>,
    pub(super) messages: Vec<Received>,
    pub(super) rejected: usize,
    /// Recipient lists of every completed DATA, accepted or not.
    pub(super) attempts: Vec<Vec<String>>,
    pub(super) connections: usize,
    pub(super) no_pipelining: bool,
    pub(super) reject_rcpt: Vec<(String, String)>,
    /// Reply to the next MAIL with this instead of accepting it.
    pub(super) reject_next_mail: Option<String>,
    pub(super) data_despite_failure: bool,
    pub(super) cut_once: Option<Cut>,
    /// RSET commands received.
    pub(super) rsets: usize,
    /// DATA transfers completed with no recipient (see `data_despite_failure`).
    pub(super) data_without_recipients: usize,
    /// When each MAIL command arrived (every transaction started, whatever its end).
    pub(super) mails: Vec<Instant>,
    pub(super) enhanced_status_codes: bool,
    /// Every `RCPT TO` address received, accepted or refused.
    pub(super) rcpts: Vec<String>,
}

impl State {
    pub(super) fn attempts_for(&self, pattern: &str) -> usize {
        self.attempts
            .iter()
            .filter(|rcpts| hits(rcpts, pattern))
            .count()
    }
}

fn hits(rcpts: &[String], pattern: &str) -> bool {
    rcpts.iter().any(|r| r.contains(pattern))
}

pub(super) struct Shared {
    pub(super) state: Mutex<State>,
    /// Wakes `wait_*` callers whenever a DATA completes.
    pub(super) changed: Notify,
}

impl Shared {
    // A panicking test thread must not make every later assertion panic too.
    pub(super) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// True (once) if the server is to misbehave at `stage` now.
    pub(super) fn cut_at(&self, stage: Cut) -> bool {
        let mut st = self.lock();
        let hit = st.cut_once == Some(stage);
        if hit {
            st.cut_once = None;
        }
        hit
    }

    /// Decides the fate of a complete message and returns the reply line.
    pub(super) fn finish(
        &self,
        mail_from: String,
        rcpt_to: Vec<String>,
        data: String,
        started_at: Instant,
    ) -> String {
        let mut st = self.lock();
        st.attempts.push(rcpt_to.clone());
        let always = st.fail_always.iter().find(|(p, _)| hits(&rcpt_to, p));
        let mut reply = always.map(|(_, r)| r.clone());
        if reply.is_none() {
            if let Some(i) = st.fail_once.iter().position(|(p, _)| hits(&rcpt_to, p)) {
                reply = Some(st.fail_once.remove(i).1);
            }
        }
        let reply = match reply {
            Some(r) => {
                st.rejected += 1;
                r
            }
            None => {
                st.messages
                    .push(Received::parse(mail_from, rcpt_to, data, started_at));
                format!("250 2.0.0 Ok: queued as {}", st.messages.len())
            }
        };
        drop(st);
        self.changed.notify_waiters();
        // Configured replies may come without a line terminator.
        format!("{}\r\n", reply.trim_end())
    }
}
