//! Received parsing and hop classification from raw bytes.
//!
//! Input: one option byte, then Received field values separated by NUL. The option byte
//! chooses the `[trust]` preset (bits 0-1), whether the live hop comes from milter macros
//! or from the topmost field (bit 2), the live macros (bits 3-4), and whether the fields
//! repeat past the analysis limit (bit 5, with bits 6-7 adding up to 300 more), as in a
//! message with hundreds of Received fields.

#![no_main]

use libfuzzer_sys::fuzz_target;
use tls_milter::chain::{self, LiveSource, LiveTls, MAX_FIELD_LEN};
use tls_milter::hop::Claim;
use tls_milter::received::{self, ClaimBasis};
use tls_milter_fuzz::{check_analysis, check_header_matches, check_header_value, split_parts, trust_preset};

fuzz_target!(|data: &[u8]| {
    let Some((&options, rest)) = data.split_first() else { return };
    let mut fields = split_parts(rest);

    for field in &fields {
        let line = received::parse(field);
        assert_eq!(line, received::parse(field), "parsing the same field twice gave different results");
        if field.len() > MAX_FIELD_LEN {
            assert_eq!(line.basis, ClaimBasis::TooLong, "a field over MAX_FIELD_LEN was parsed");
        }
        if line.malformed {
            assert_eq!(line.claim, Claim::Unknown, "a malformed field has claim {:?}", line.claim);
        }
    }

    if options & 32 != 0 {
        let wanted = chain::MAX_ANALYSED_FIELDS + 1 + usize::from(options >> 6) * 100;
        fields = fields.iter().cycle().take(wanted).cloned().collect();
    }

    let trust = trust_preset(options);
    let live = match (options >> 3) & 3 {
        0 => LiveTls::default(),
        1 => LiveTls { tls_macros_requested: true, client_ip: "192.0.2.7".parse().ok(), ..LiveTls::default() },
        2 => LiveTls {
            tls_macros_requested: true,
            client_ip: "203.0.113.9".parse().ok(),
            tls_version: Some("TLSv1.3".into()),
            cipher: Some("TLS_AES_256_GCM_SHA384".into()),
            cipher_bits: Some("256".into()),
            ..LiveTls::default()
        },
        _ => LiveTls { local_submission: true, client_ip: "127.0.0.1".parse().ok(), ..LiveTls::default() },
    };
    let live_is_topmost = options & 4 != 0;
    let source = if live_is_topmost { LiveSource::TopmostField } else { LiveSource::Macros(&live) };

    // As the milter and `check` do: collect at most MAX_ANALYSED_FIELDS, count them all.
    let total = fields.len();
    let collected: Vec<&str> = fields.iter().take(chain::MAX_ANALYSED_FIELDS).map(String::as_str).collect();
    let analysis = chain::analyse(&collected, total, source, &trust);
    assert_eq!(analysis.hops.len(), collected.len(), "the analysis kept a different number of hops");
    check_analysis(&analysis, Some(total), live_is_topmost);

    let comment = tls_milter::header::comment_for(&analysis, live_is_topmost);
    let value = tls_milter::header::render("mx.example.org", &analysis, None, comment.as_deref());
    check_header_value(&value);
    check_header_matches(&value, &analysis);
});
