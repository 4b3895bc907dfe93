//! Downstream transports: how clients reach the gateway.

pub mod era;
pub mod http;
pub mod pages;
pub mod stdio;
