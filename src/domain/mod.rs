//! Domain types: parsed at the edge, so inner code never sees raw strings.

pub mod channel;
pub mod contact;
pub mod event;
mod outcome;
pub mod time;
pub mod touch;

pub use channel::{Channel, UnknownChannel};
pub use contact::{Birthday, Contact, ContactId, EmailAddress, MonthDay, PhoneNumber};
pub use event::{Event, EventId};
pub use outcome::Outcome;
pub use time::{BadWindow, Clock, FixedClock, SendWindow, SystemClock};
pub use touch::{Adoption, NewTouch, Touch, TouchId, TouchStatus, UnknownStatus};
