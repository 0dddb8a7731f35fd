//! The labelled Received corpus, `tests/data/received.jsonl`, read line by line.
//!
//! Each test checks one field over every corpus line and lists all mismatches with the
//! line id, so one run shows every failure. Corpus conventions: `from_host` is the token
//! after `from` as written, `from_ip` has no brackets or `IPv6:` prefix, `protocol` is
//! the standard spelling for registered transmission types and the with word as written
//! otherwise, and `tls` is `yes`, `no` or `unknown`.

use serde_json::Value;
use tls_milter::hop::Claim;
use tls_milter::received::{self, ReceivedLine};

struct Entry {
    id: String,
    expected: Value,
    line: ReceivedLine<'static>,
}

fn corpus() -> Vec<Entry> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/received.jsonl");
    let text = std::fs::read_to_string(path).unwrap_or_else(|error| panic!("cannot read {path}: {error}"));
    text.lines()
        .filter(|line| !line.trim().is_empty())
        .enumerate()
        .map(|(number, line)| {
            let expected: Value = serde_json::from_str(line).unwrap_or_else(|error| panic!("line {}: invalid JSON: {error}", number + 1));
            let id = expected["id"].as_str().unwrap_or("?").to_string();
            let header = expected["header"].as_str().unwrap_or_else(|| panic!("{id}: header missing"));
            Entry { id, line: received::parse(header).into_owned(), expected }
        })
        .collect()
}

/// Compares one field over the whole corpus and fails with every mismatch.
fn check_field(field: &str, actual: impl Fn(&ReceivedLine<'_>) -> Value) {
    let entries = corpus();
    let mismatches: Vec<String> = entries
        .iter()
        .filter_map(|entry| {
            let expected = &entry.expected[field];
            let got = actual(&entry.line);
            (*expected != got).then(|| format!("{} {field}: expected {expected}, got {got}", entry.id))
        })
        .collect();
    let score = entries.len() - mismatches.len();
    eprintln!("corpus {field}: {score}/{}", entries.len());
    assert!(mismatches.is_empty(), "{} mismatches:\n{}", mismatches.len(), mismatches.join("\n"));
}

fn text(value: Option<&str>) -> Value {
    value.map_or(Value::Null, |value| Value::String(value.to_string()))
}

#[test]
fn corpus_size() {
    assert_eq!(corpus().len(), 120);
}

#[test]
fn corpus_claim() {
    check_field("tls", |line| {
        let label = match line.claim {
            Claim::Encrypted => "yes",
            Claim::Plaintext => "no",
            Claim::Unknown => "unknown",
        };
        Value::String(label.to_string())
    });
}

#[test]
fn corpus_tls_version() {
    check_field("tls_version", |line| text(line.tls_version));
}

#[test]
fn corpus_cipher() {
    check_field("cipher", |line| text(line.cipher.as_deref()));
}

#[test]
fn corpus_bits() {
    check_field("bits", |line| line.bits.map_or(Value::Null, Value::from));
}

#[test]
fn corpus_protocol() {
    check_field("protocol", |line| text(line.transmission_type.or(line.protocol.as_deref())));
}

#[test]
fn corpus_from_host() {
    check_field("from_host", |line| text(line.from_name.as_deref()));
}

#[test]
fn corpus_from_ip() {
    check_field("from_ip", |line| text(line.ip.as_deref()));
}

#[test]
fn corpus_by_host() {
    check_field("by_host", |line| text(line.by.as_deref()));
}

#[test]
fn corpus_evidence_present() {
    let missing: Vec<String> = corpus().into_iter().filter(|entry| entry.line.evidence.is_empty()).map(|entry| entry.id).collect();
    assert!(missing.is_empty(), "lines without evidence: {missing:?}");
}
