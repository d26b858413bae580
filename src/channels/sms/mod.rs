//! SMS: a Twilio-compatible Messages API (`twilio`), the outbox folder (`outbox`), and
//! segment counting (`segments`).

mod outbox;
pub mod segments;
mod twilio;

pub use outbox::SmsOutbox;
pub use twilio::{SmsSender, Twilio, TwilioSettings};
