//! The test server's handle: start it on a free loopback port, change its faults while
//! it runs, read what it received, wait for messages, and stop it by dropping it.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio::task::{JoinHandle, JoinSet};

use super::options::{Cut, SmtpOptions};
use super::received::Received;
use super::session::handle_connection;
use super::state::{Shared, State};

/// Test SMTP server on 127.0.0.1; stops (with all its connections) on drop.
pub struct SmtpServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    accept_task: JoinHandle<()>,
}

impl SmtpServer {
    /// Binds 127.0.0.1 on an ephemeral port and starts accepting.
    ///
    /// # Panics
    /// If the loopback port cannot be bound; a test cannot proceed anyway.
    pub async fn start(opts: SmtpOptions) -> SmtpServer {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind test SMTP server");
        let addr = listener
            .local_addr()
            .expect("local addr of test SMTP server");
        let state = State {
            delay: opts.delay_per_message,
            fail_once: opts.fail_once,
            fail_always: opts.fail_always,
            no_pipelining: opts.no_pipelining,
            reject_rcpt: opts.reject_rcpt,
            data_despite_failure: opts.data_despite_failure,
            cut_once: opts.cut_once,
            enhanced_status_codes: opts.enhanced_status_codes,
            ..State::default()
        };
        let shared = Arc::new(Shared {
            state: Mutex::new(state),
            changed: Notify::new(),
        });
        let accept_task = tokio::spawn(accept_loop(listener, shared.clone()));
        SmtpServer {
            addr,
            shared,
            accept_task,
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// `smtp://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.addr.port())
    }

    /// Snapshot of accepted messages, in acceptance order.
    pub fn messages(&self) -> Vec<Received> {
        self.shared.lock().messages.clone()
    }

    pub fn count(&self) -> usize {
        self.shared.lock().messages.len()
    }

    /// Messages refused at DATA end by fault injection.
    pub fn rejected(&self) -> usize {
        self.shared.lock().rejected
    }

    /// Completed DATA transfers (accepted or rejected) with at least one
    /// recipient containing `rcpt_substring`.
    pub fn attempts_for(&self, rcpt_substring: &str) -> usize {
        self.shared.lock().attempts_for(rcpt_substring)
    }

    /// `RCPT TO` commands naming a recipient that contains `rcpt_substring`, accepted
    /// or refused: every attempt to reach it, even one refused before DATA.
    pub fn rcpts_for(&self, rcpt_substring: &str) -> usize {
        let st = self.shared.lock();
        st.rcpts
            .iter()
            .filter(|r| r.contains(rcpt_substring))
            .count()
    }

    /// TCP connections accepted so far (lets tests observe connection reuse).
    pub fn connections(&self) -> usize {
        self.shared.lock().connections
    }

    /// Reject the next message to a matching recipient with `reply`.
    pub fn fail_once(&self, rcpt_substring: impl Into<String>, reply: impl Into<String>) {
        let rule = (rcpt_substring.into(), reply.into());
        self.shared.lock().fail_once.push(rule);
    }

    /// Reject every message to a matching recipient with `reply`.
    pub fn fail_always(&self, rcpt_substring: impl Into<String>, reply: impl Into<String>) {
        let rule = (rcpt_substring.into(), reply.into());
        self.shared.lock().fail_always.push(rule);
    }

    /// Drop all fault rules (e.g. to let a "down" recipient recover).
    pub fn clear_faults(&self) {
        let mut st = self.shared.lock();
        st.fail_once.clear();
        st.fail_always.clear();
    }

    /// Refuse RCPT for every matching recipient with `reply` (which may span
    /// several lines, `\r\n`-separated, each starting with the code).
    pub fn reject_rcpt(&self, rcpt_substring: impl Into<String>, reply: impl Into<String>) {
        let rule = (rcpt_substring.into(), reply.into());
        self.shared.lock().reject_rcpt.push(rule);
    }

    /// Answer the next MAIL command with `reply` instead of accepting it.
    pub fn reject_next_mail(&self, reply: impl Into<String>) {
        self.shared.lock().reject_next_mail = Some(reply.into());
    }

    /// Misbehave once at `stage` (replaces any cut not yet fired).
    pub fn cut_once(&self, stage: Cut) {
        self.shared.lock().cut_once = Some(stage);
    }

    /// RSET commands received so far.
    pub fn rsets(&self) -> usize {
        self.shared.lock().rsets
    }

    /// DATA transfers completed without any accepted recipient.
    pub fn data_without_recipients(&self) -> usize {
        self.shared.lock().data_without_recipients
    }

    /// When each transaction started (its MAIL command arrived), in arrival order.
    pub fn mail_times(&self) -> Vec<Instant> {
        self.shared.lock().mails.clone()
    }

    pub fn set_delay(&self, delay: Duration) {
        self.shared.lock().delay = delay;
    }

    /// True once at least `n` messages are stored; false on timeout.
    pub async fn wait_for_count(&self, n: usize, timeout: Duration) -> bool {
        self.wait_until(timeout, |st| st.messages.len() >= n).await
    }

    /// True once `attempts_for(rcpt_substring) >= n`; false on timeout.
    pub async fn wait_for_attempts(
        &self,
        rcpt_substring: &str,
        n: usize,
        timeout: Duration,
    ) -> bool {
        self.wait_until(timeout, |st| st.attempts_for(rcpt_substring) >= n)
            .await
    }

    async fn wait_until(&self, timeout: Duration, done: impl Fn(&State) -> bool) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            // Register interest before checking, so a notification between
            // the check and the await cannot be lost.
            let notified = self.shared.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if done(&self.shared.lock()) {
                return true;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return done(&self.shared.lock());
            }
        }
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        // The connection tasks live in a JoinSet owned by the accept task,
        // so aborting it tears them all down too.
        self.accept_task.abort();
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    shared.lock().connections += 1;
                    let shared = shared.clone();
                    conns.spawn(async move {
                        // A client hanging up mid-session is not a test failure.
                        let _ = handle_connection(stream, &shared).await;
                    });
                }
                // E.g. out of file descriptors: back off instead of spinning.
                Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            },
            // Reap finished sessions so the set does not grow without bound.
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
}
