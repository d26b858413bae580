//! Domain types: parsed at the edge, so inner code never sees raw strings.

pub mod contact;
pub mod time;
pub mod touch;

pub use contact::{Birthday, Contact, ContactId, EmailAddress, MonthDay, PhoneNumber};
pub use time::{Clock, FixedClock, SendWindow, SystemClock};
pub use touch::{NewTouch, Touch, TouchId, TouchStatus};
