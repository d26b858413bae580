//! Policy: pure decisions about when a message may go out. Time and randomness are
//! passed in.

pub mod retry;
