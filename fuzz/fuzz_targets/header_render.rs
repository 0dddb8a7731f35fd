//! Header rendering from arbitrary milter macro values.
//!
//! Input: one option byte, then NUL-separated parts: client address, `{tls_version}`,
//! `{cipher}`, `{cipher_bits}`, `{cert_subject}`, `{cert_issuer}`, `{verify}`,
//! authserv-id, policy rule name, comment, then Received field values. An empty or
//! missing part is an unset macro, as the milter treats one.
//!
//! Option bits: 0 the MTA accepted macro requests, 1 local submission, 2-3 the `[trust]`
//! preset, 4 a policy tag is shown, 5 dry run, 6-7 the action.

#![no_main]

use libfuzzer_sys::fuzz_target;
use tls_milter::chain::{self, LiveSource, LiveTls};
use tls_milter::header::{self, PolicyTag};
use tls_milter_fuzz::{check_header_matches, check_header_value, parse_ip, split_parts, trust_preset, valid_authserv_id};

fuzz_target!(|data: &[u8]| {
    let Some((&options, rest)) = data.split_first() else { return };
    let parts = split_parts(rest);
    let part = |index: usize| parts.get(index).filter(|text| !text.is_empty()).cloned();

    let live = LiveTls {
        client_ip: part(0).as_deref().and_then(parse_ip),
        tls_version: part(1),
        cipher: part(2),
        cipher_bits: part(3),
        cert_subject: part(4),
        cert_issuer: part(5),
        verify: part(6),
        tls_macros_requested: options & 1 != 0,
        local_submission: options & 2 != 0,
    };
    // The configuration accepts only authserv-ids of the documented grammar.
    let authserv_id = part(7).filter(|id| valid_authserv_id(id)).unwrap_or_else(|| "mx.example.org".into());
    let rule = part(8).unwrap_or_default();
    let fields: Vec<&str> = parts.iter().skip(10).take(chain::MAX_ANALYSED_FIELDS).map(String::as_str).collect();

    let trust = trust_preset(options >> 2);
    let analysis = chain::analyse(&fields, fields.len(), LiveSource::Macros(&live), &trust);
    let action = ["tag", "reject", "tempfail", "quarantine"][usize::from(options >> 6)];
    let tag = PolicyTag { rule, action, dry_run: options & 32 != 0 };
    let policy = (options & 16 != 0).then_some(&tag);
    let comment = part(9).or_else(|| header::comment_for(&analysis, false));

    let value = header::render(&authserv_id, &analysis, policy, comment.as_deref());
    check_header_value(&value);
    check_header_matches(&value, &analysis);
    assert!(value.starts_with(&format!("{authserv_id};")), "the header does not start with the authserv-id: {value:?}");
});
