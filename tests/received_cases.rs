//! Robustness of the Received parser on arbitrary and hostile input: no panic, and a
//! malformed field never yields TLS details.

use proptest::prelude::*;
use tls_milter::chain::{self, LiveSource, MAX_FIELD_LEN, Trust};
use tls_milter::hop::Claim;
use tls_milter::received;

/// Pieces that exercise every tokenizer state and clause keyword.
const PIECES: &[&str] = &[
    "from ", "by ", "with ", "id ", "for ", "via ", "tls ", "over ", "(", ")", "\"", "\\", "<", ">", "[", "]", ";", " ", "\n\t", ",",
    "ESMTPS", "ESMTP", "TLSv1.3", "version=TLS1_2", "cipher=X", "bits=256/256", "using", "(Postfix)", "[127.0.0.1]", "[IPv6:::1]",
    "é", "�", "Mon, 3 Feb 25 10:00:00 GMT", "0", ":", "%",
];

fn field_from(indices: &[usize]) -> String {
    indices.iter().filter_map(|&index| PIECES.get(index % PIECES.len())).copied().collect()
}

proptest! {
    #[test]
    fn parse_arbitrary_text(raw in ".{0,400}") {
        let line = received::parse(&raw);
        if line.malformed {
            prop_assert_eq!(line.claim, Claim::Unknown);
        }
    }

    #[test]
    fn parse_hostile_pieces(indices in proptest::collection::vec(0usize..1000, 0..80)) {
        let raw = field_from(&indices);
        let line = received::parse(&raw);
        if line.malformed {
            prop_assert_eq!(line.claim, Claim::Unknown);
            prop_assert_eq!(line.tls_version, None);
            prop_assert_eq!(line.cipher, None);
        }
    }

    #[test]
    fn analyse_hostile_chain(chains in proptest::collection::vec(proptest::collection::vec(0usize..1000, 0..40), 0..8)) {
        let fields: Vec<String> = chains.iter().map(|indices| field_from(indices)).collect();
        let borrowed: Vec<&str> = fields.iter().map(String::as_str).collect();
        let analysis = chain::analyse(&borrowed, borrowed.len(), LiveSource::TopmostField, &Trust::default());
        let counts = analysis.counts;
        prop_assert_eq!(counts.encrypted + counts.plaintext + counts.internal + counts.unknown, counts.hops);
    }
}

#[test]
fn deep_nesting() {
    let raw = format!("from a {} by b with ESMTPS; Mon, 3 Feb 2025 10:00:00 +0000", "(".repeat(MAX_FIELD_LEN - 100));
    let line = received::parse(&raw);
    assert!(line.malformed);
    assert_eq!(line.claim, Claim::Unknown);
}

#[test]
fn many_comments() {
    let raw = format!("from a (a [192.0.2.1]) {} by b (Postfix) with ESMTP id 1; Mon, 3 Feb 2025 10:00:00 +0000", "() ".repeat(5000));
    let line = received::parse(&raw);
    assert_eq!(line.claim, Claim::Plaintext);
}

#[test]
fn field_at_limit_parsed() {
    let head = "from a (a [192.0.2.1]) (";
    let tail = ") by b (Postfix) with ESMTPS id 1; Mon, 3 Feb 2025 10:00:00 +0000";
    let raw = format!("{head}{}{tail}", "x".repeat(MAX_FIELD_LEN - head.len() - tail.len()));
    assert_eq!(raw.len(), MAX_FIELD_LEN);
    assert_eq!(received::parse(&raw).claim, Claim::Encrypted);
}

#[test]
fn field_over_limit_not_parsed() {
    let raw = format!("by b with ESMTPS id 1; {}", "x".repeat(MAX_FIELD_LEN));
    let line = received::parse(&raw);
    assert_eq!(line.claim, Claim::Unknown);
    assert_eq!(line.by, None);
}

#[test]
fn empty_field() {
    let line = received::parse("");
    assert_eq!(line.claim, Claim::Unknown);
    assert!(!line.evidence.is_empty());
}
