//! Properties checked on generated input: the analysis never panics, every rendered header
//! follows the documented grammar, and forged copies are always removed.

mod protocol;

use indymilter_test::EomAction;
use proptest::prelude::*;
use std::sync::OnceLock;
use tls_milter::chain::{self, LiveSource, LiveTls, Trust};
use tls_milter::header;

/// Text that looks like Received fields often enough to reach deep parser paths.
fn field_text() -> impl Strategy<Value = String> {
    let words = prop::sample::select(vec![
        "from", "by", "with", "id", "for", "via", ";", "(", ")", "[", "]", "\"", "<", ">", "ESMTPS", "ESMTP", "SMTP",
        "LMTP", "esmtps", "using", "TLSv1.3", "TLS1_2", "version=TLS1_3", "cipher=", "bits=256/256", "(Postfix)",
        "(Exim", "4.97)", "Microsoft", "SMTP Server", "[IPv6:2001:db8::1]", "192.0.2.1", "mx.example.org", "\r\n\t",
        "\n ", "Mon, 3 Feb 2025 10:00:00 +0000", "(TLS)", "tls", "TLS_AES_256_GCM_SHA384", "\u{fffd}", "\0", "%",
    ]);
    prop_oneof![
        prop::collection::vec(words, 0..40).prop_map(|words| words.join(" ")),
        ".{0,300}",
    ]
}

fn trust() -> Trust {
    Trust { internal_networks: vec!["10.0.0.0/8".parse().unwrap()], ..Trust::default() }
}

/// Checks the documented grammar on an unfolded field value.
fn check_grammar(value: &str) -> Result<(), String> {
    let unfolded = header::unfold(value);
    let (id, rest) = unfolded.split_once("; ").ok_or("no authserv-id")?;
    if id.is_empty() || !id.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_')) {
        return Err(format!("bad authserv-id {id:?}"));
    }

    let (tokens, comment) = match rest.find(" (") {
        Some(at) => (&rest[..at], Some(&rest[at + 1..])),
        None => (rest, None),
    };
    for token in tokens.split(' ') {
        let (key, token_value) = token.split_once('=').ok_or(format!("token without '=': {token:?}"))?;
        let key_ok = !key.is_empty() && key.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-'));
        let value_ok = !token_value.is_empty()
            && token_value.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | ':' | '/' | '+' | '-'));
        if !key_ok || !value_ok {
            return Err(format!("bad token {token:?}"));
        }
    }
    if let Some(comment) = comment {
        let inner = comment.strip_prefix('(').and_then(|c| c.strip_suffix(')')).ok_or("unclosed comment")?;
        if inner.contains(['(', ')', '\\']) {
            return Err(format!("bad comment {comment:?}"));
        }
    }
    if !tokens.starts_with("v=1 tls=") {
        return Err("v=1 tls= must come first".into());
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn analysis_never_panics(fields in prop::collection::vec(field_text(), 0..8), bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let raw = String::from_utf8_lossy(&bytes).into_owned();
        let mut all: Vec<&str> = fields.iter().map(String::as_str).collect();
        all.push(&raw);

        let offline = chain::analyse(&all, all.len(), LiveSource::TopmostField, &trust());
        let live = LiveTls { tls_macros_requested: true, ..LiveTls::default() };
        let online = chain::analyse(&all, all.len(), LiveSource::Macros(&live), &trust());

        let counts = online.counts;
        prop_assert_eq!(counts.encrypted + counts.plaintext + counts.internal + counts.unknown, counts.hops);
        prop_assert_eq!(offline.counts.hops, all.len() - 1);
    }

    #[test]
    fn rendered_header_follows_grammar(
        fields in prop::collection::vec(field_text(), 0..6),
        version in ".{0,40}",
        cipher in ".{0,200}",
        bits in ".{0,30}",
        subject in ".{0,100}",
        verify in ".{0,10}",
        authserv_id in "[a-z0-9.-]{1,40}",
    ) {
        let live = LiveTls {
            client_ip: Some("192.0.2.1".parse().unwrap()),
            tls_version: Some(version),
            cipher: Some(cipher),
            cipher_bits: Some(bits),
            cert_subject: Some(subject),
            verify: Some(verify),
            tls_macros_requested: true,
            ..LiveTls::default()
        };
        let refs: Vec<&str> = fields.iter().map(String::as_str).collect();
        let analysis = chain::analyse(&refs, refs.len(), LiveSource::Macros(&live), &trust());
        let comment = header::comment_for(&analysis, false);

        let value = header::render(&authserv_id, &analysis, None, comment.as_deref());

        prop_assert!(value.is_ascii());
        prop_assert!(value.lines().all(|line| line.len() <= 998));
        prop_assert!(!value.contains('\r'));
        prop_assert!(value.lines().skip(1).all(|line| line.starts_with('\t')));
        if let Err(error) = check_grammar(&value) {
            prop_assert!(false, "{}: {}", error, value);
        }
    }
}

/// Applies milter header deletions to a header list by 1-based occurrence index among
/// fields of that name (case-insensitive). `renumber` selects whether each deletion shifts
/// later indexes (as an MTA that removes fields at once) or not (one that marks them).
fn apply_deletions(headers: &[(String, String)], deletions: &[i32], renumber: bool) -> Vec<(String, String)> {
    let mut deleted = vec![false; headers.len()];

    for &index in deletions {
        let candidates: Vec<usize> = (0..headers.len())
            .filter(|&position| headers[position].0.eq_ignore_ascii_case("X-Transport-Security"))
            .filter(|&position| !(renumber && deleted[position]))
            .collect();
        let target = usize::try_from(index - 1).ok().and_then(|offset| candidates.get(offset).copied());
        if let Some(target) = target {
            deleted[target] = true;
        }
    }

    headers.iter().zip(deleted).filter(|(_, deleted)| !deleted).map(|(field, _)| field.clone()).collect()
}

fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap())
}

fn milter() -> &'static protocol::Milter {
    static MILTER: OnceLock<protocol::Milter> = OnceLock::new();
    MILTER.get_or_init(|| runtime().block_on(protocol::start("[trust]\ninternal_networks = []\n")))
}

fn header_field() -> impl Strategy<Value = (String, String)> {
    let names = prop::sample::select(vec![
        "X-Transport-Security", "x-transport-security", "X-TRANSPORT-SECURITY", "X-Transport-security", "Subject",
        "Received", "X-Transport-Securityx", "X-Transport",
    ]);
    let values = prop::sample::select(vec!["mx; v=1 tls=pass", "forged;\n\tv=1 tls=internal", "", "x"]);
    (names, values).prop_map(|(name, value)| (name.to_string(), value.to_string()))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn forged_copies_always_removed(headers in prop::collection::vec(header_field(), 0..12)) {
        let milter = milter();
        let pairs: Vec<(&str, &str)> = headers.iter().map(|(name, value)| (name.as_str(), value.as_str())).collect();

        let (actions, _) = runtime().block_on(protocol::transaction(milter, "192.0.2.1", &protocol::POSTFIX_TLS_MACROS, &pairs));

        let deletions: Vec<i32> = actions.actions.iter().filter_map(|action| match action {
            EomAction::DeleteHeader { index, .. } => Some(*index),
            _ => None,
        }).collect();
        for renumber in [false, true] {
            let remaining = apply_deletions(&headers, &deletions, renumber);
            let copies = remaining.iter().filter(|(name, _)| name.eq_ignore_ascii_case("X-Transport-Security")).count();
            prop_assert_eq!(copies, 0, "renumber={} deletions={:?} headers={:?}", renumber, deletions, headers);
        }
        let inserted = actions.actions.iter().filter(|action| matches!(action, EomAction::InsertHeader { index: 0, .. })).count();
        prop_assert_eq!(inserted, 1);
    }
}
