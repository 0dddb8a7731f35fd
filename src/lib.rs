//! tls-milter: tells, for every inbound message, whether it travelled over TLS hop by hop,
//! and records the answer in an `X-Transport-Security` header.

pub mod chain;
pub mod hop;
pub mod received;
