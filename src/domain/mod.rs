//! Domain types: parsed at the edge, so inner code never sees raw strings.

pub mod contact;
pub mod event;
pub mod time;
pub mod touch;

pub use contact::{Birthday, Contact, ContactId, EmailAddress, MonthDay, PhoneNumber};
pub use event::{Event, EventId};
pub use time::{Clock, FixedClock, SendWindow, SystemClock};
pub use touch::{Adoption, NewTouch, Touch, TouchId, TouchStatus};
