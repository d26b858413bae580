//! A small in-process SMTP server for integration tests.
//!
//! It speaks just enough RFC 5321 (with RFC 2920 pipelining) for lettre's
//! async transport and rapport's own SMTP client, records every accepted
//! message, and can be told to reject messages for chosen recipients (at RCPT
//! or at the end of DATA), to refuse a MAIL, or to hang up or fall silent at a
//! given stage, so retry and failure paths can be tested without a real mail
//! server.

mod options;
mod received;
mod server;
mod session;
mod state;

// The paths the tests use (`support::smtp::SmtpServer`); each binary uses some.
#[allow(unused_imports)]
pub use self::{
    options::{Cut, SmtpOptions},
    received::Received,
    server::SmtpServer,
};
