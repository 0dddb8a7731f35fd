//! Inputs shared by the micro-benchmarks: messages built from the labelled Received corpus,
//! the default `[trust]` settings and the live hop of a TLS 1.3 connection from outside.

use std::net::{IpAddr, Ipv4Addr};
use tls_milter::chain::{LiveTls, Trust};
use tls_milter::config::Config;

/// The labelled Received corpus that the tests also read, one JSON object a line.
pub const CORPUS_PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/received.jsonl");

/// Returns the `header` value of every corpus line, in file order.
///
/// # Panics
///
/// Panics when the corpus is missing or a line is not a JSON object with a `header` string.
pub fn corpus_fields() -> Vec<String> {
    let text = std::fs::read_to_string(CORPUS_PATH).unwrap_or_else(|error| panic!("reading {CORPUS_PATH} failed: {error}"));
    text.lines()
        .filter(|line| !line.trim().is_empty())
        .enumerate()
        .map(|(index, line)| {
            let value: serde_json::Value =
                serde_json::from_str(line).unwrap_or_else(|error| panic!("{CORPUS_PATH} line {}: invalid JSON: {error}", index + 1));
            value["header"]
                .as_str()
                .unwrap_or_else(|| panic!("{CORPUS_PATH} line {}: no header string", index + 1))
                .to_string()
        })
        .collect()
}

/// Splits the corpus into messages of `hops` Received fields each: message k contains fields
/// k*hops .. k*hops+hops, wrapping at the end, so every field is used and every message
/// mixes the MTAs that follow each other in the file.
pub fn messages(fields: &[String], hops: usize) -> Vec<Vec<&str>> {
    let count = fields.len().div_ceil(hops);
    (0..count)
        .map(|message| (0..hops).map(|hop| fields[(message * hops + hop) % fields.len()].as_str()).collect())
        .collect()
}

/// Returns the built-in `[trust]` settings: loopback is internal, no host lists, no proxies.
pub fn default_trust() -> Trust {
    Config::default().trust
}

/// Returns the milter macros of a TLS 1.3 connection from a client outside internal_networks,
/// as Postfix sends them at HELO when the milter requested them.
pub fn live_tls13() -> LiveTls {
    LiveTls {
        client_ip: Some(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 10))),
        tls_version: Some("TLSv1.3".into()),
        cipher: Some("TLS_AES_256_GCM_SHA384".into()),
        cipher_bits: Some("256".into()),
        tls_macros_requested: true,
        ..LiveTls::default()
    }
}
