#![allow(dead_code, unreachable_pub)]

pub mod daemon;
pub mod smtp;
