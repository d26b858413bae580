#![allow(dead_code, unreachable_pub)]

pub mod backends;
pub mod daemon;
pub mod http_stub;
pub mod people;
pub mod redis;
pub mod sent;
pub mod smtp;
