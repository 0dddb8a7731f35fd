//! Helpers shared by the fuzz targets: input splitting, `[trust]` presets, and the
//! invariants every analysis and every rendered header must satisfy.
//!
//! Each check panics with a message naming the broken invariant, so libFuzzer records the
//! input as a crash.

pub mod session;

use std::net::IpAddr;
use tls_milter::chain::{Analysis, Trust};
use tls_milter::header::{self, HEADER_NAME};
use tls_milter::hop::{TlsClass, Verdict};

/// RFC 5322's limit on one line of a message, CRLF excluded.
pub const MAX_LINE_OCTETS: usize = 998;

/// Splits fuzz input into NUL-separated parts, each decoded as lossy UTF-8.
///
/// NUL is the separator because no field value that reaches the milter can contain one:
/// the milter protocol carries header values as C strings.
pub fn split_parts(data: &[u8]) -> Vec<String> {
    data.split(|&byte| byte == 0).map(|part| String::from_utf8_lossy(part).into_owned()).collect()
}

/// Returns one of several `[trust]` settings, chosen by `selector`, so the analysis runs
/// with empty lists, the defaults, and lists that match hosts of the seed corpus.
pub fn trust_preset(selector: u8) -> Trust {
    let networks = |list: &[&str]| list.iter().filter_map(|net| net.parse().ok()).collect::<Vec<_>>();
    let names = |list: &[&str]| list.iter().map(|name| name.to_string()).collect::<Vec<_>>();
    match selector % 4 {
        0 => Trust::default(),
        1 => Trust { internal_networks: tls_milter::chain::default_internal_networks(), ..Trust::default() },
        2 => Trust {
            internal_networks: networks(&["10.0.0.0/8", "192.0.2.0/24", "2001:db8::/32"]),
            internal_hosts: names(&["*.example.org", "mx.example.org"]),
            tls_logging_hosts: names(&["*.example.net", "gw.example.com"]),
            tls_proxies: networks(&["198.51.100.0/24"]),
        },
        _ => Trust {
            internal_networks: networks(&["127.0.0.0/8", "::1/128", "0.0.0.0/0"]),
            internal_hosts: names(&["*.com", "localhost"]),
            tls_logging_hosts: names(&["*.org"]),
            tls_proxies: networks(&["::/0"]),
        },
    }
}

/// Parses an IP address from fuzz text, for the live client address.
pub fn parse_ip(text: &str) -> Option<IpAddr> {
    text.trim().parse().ok()
}

/// Checks the invariants of one analysis.
///
/// `live_is_topmost` is true offline, where the topmost field stands for the live hop and
/// is not counted. `total_fields` is the number of Received fields the message had, when
/// the caller knows it.
pub fn check_analysis(analysis: &Analysis, total_fields: Option<usize>, live_is_topmost: bool) {
    let counts = &analysis.counts;
    assert_eq!(
        counts.hops,
        counts.encrypted + counts.plaintext + counts.internal + counts.unknown,
        "the class counters do not sum to hops: {counts:?}"
    );
    assert!(counts.claimed <= counts.hops, "claimed exceeds hops: {counts:?}");

    if let Some(total) = total_fields {
        let below_live = if live_is_topmost { total.saturating_sub(1) } else { total };
        assert_eq!(counts.hops, below_live, "hops differs from the number of Received fields below the live hop");
    }
    let over_limit = counts.hops + usize::from(live_is_topmost) > tls_milter::chain::MAX_ANALYSED_FIELDS;

    // Trusted hops form an unbroken run from the top, each below an internal one.
    for pair in analysis.hops.windows(2) {
        if pair[1].trusted {
            assert!(pair[0].trusted, "hop {} is trusted below an untrusted hop", pair[1].position);
            assert_eq!(pair[0].tls, TlsClass::Internal, "hop {} is trusted below a non-internal hop", pair[1].position);
        }
    }

    for hop in &analysis.hops {
        if hop.line.malformed {
            assert_eq!(hop.tls, TlsClass::Unknown, "malformed hop {} is not unknown", hop.position);
        }
        if hop.tls == TlsClass::Encrypted {
            assert_eq!(hop.line.claim, tls_milter::hop::Claim::Encrypted, "hop {} encrypted without a claim", hop.position);
        }
        if hop.from_tls_proxy {
            assert_eq!(hop.tls, TlsClass::Unknown, "hop {} from a TLS proxy is not unknown", hop.position);
        }
    }

    let live = analysis.live.as_ref().map(|live| live.class);
    let any_plaintext = counts.plaintext > 0 || live == Some(TlsClass::Plaintext);
    match analysis.verdict {
        Verdict::Fail => assert!(any_plaintext, "verdict fail without a plaintext hop: {counts:?} live {live:?}"),
        Verdict::Pass => {
            assert!(!any_plaintext, "verdict pass with a plaintext hop");
            assert_eq!(counts.unknown, 0, "verdict pass with an unknown hop: {counts:?}");
            assert!(matches!(live, Some(TlsClass::Encrypted | TlsClass::Internal)), "verdict pass with live {live:?}");
            assert!(!over_limit, "verdict pass with {} hops, over the analysis limit", counts.hops);
        }
        Verdict::Internal => {
            assert_eq!(live, Some(TlsClass::Internal), "verdict internal with live {live:?}");
            assert_eq!(counts.internal, counts.hops, "verdict internal with a non-internal hop: {counts:?}");
        }
        Verdict::Unknown => assert!(!any_plaintext, "verdict unknown with a plaintext hop"),
    }
    if any_plaintext {
        assert_eq!(analysis.verdict, Verdict::Fail, "a plaintext hop did not make the verdict fail");
    }
}

/// Checks one rendered `X-Transport-Security` value (without the field name): ASCII, no CR
/// or NUL, no line over 998 octets counting the field name on the first, continuation lines
/// starting with a TAB, and the documented token grammar.
pub fn check_header_value(value: &str) {
    assert!(value.is_ascii(), "header value is not ASCII: {value:?}");
    assert!(!value.contains('\r'), "header value contains CR: {value:?}");
    assert!(!value.contains('\0'), "header value contains NUL: {value:?}");

    for (index, line) in value.split('\n').enumerate() {
        let octets = if index == 0 { HEADER_NAME.len() + 2 + line.len() } else { line.len() };
        assert!(octets <= MAX_LINE_OCTETS, "line {index} of the header is {octets} octets: {value:?}");
        if index > 0 {
            assert!(line.starts_with('\t'), "continuation line {index} does not start with TAB: {value:?}");
            assert!(!line.trim().is_empty(), "continuation line {index} is blank: {value:?}");
        }
    }

    if let Err(problem) = check_grammar(&header::unfold(value)) {
        panic!("header breaks the grammar ({problem}): {value:?}");
    }
}

/// Checks the documented grammar on an unfolded value: `authserv-id; v=1 tls=...`, then
/// `key=value` tokens over `[A-Za-z0-9_.:/+-]`, then an optional comment in parentheses.
fn check_grammar(unfolded: &str) -> Result<(), String> {
    let (id, rest) = unfolded.split_once("; ").ok_or("no authserv-id")?;
    if id.is_empty() || !id.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_')) {
        return Err(format!("invalid authserv-id {id:?}"));
    }

    let (tokens, comment) = match rest.find(" (") {
        Some(at) => (&rest[..at], Some(&rest[at + 1..])),
        None => (rest, None),
    };
    if !tokens.starts_with("v=1 tls=") {
        return Err("v=1 tls= must come first".into());
    }
    for token in tokens.split(' ') {
        let (key, token_value) = token.split_once('=').ok_or(format!("token without '=': {token:?}"))?;
        let key_valid = !key.is_empty() && key.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-'));
        let value_valid = !token_value.is_empty()
            && token_value.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | ':' | '/' | '+' | '-'));
        if !key_valid || !value_valid {
            return Err(format!("invalid token {token:?}"));
        }
    }
    check_token_order(tokens)?;
    if let Some(comment) = comment {
        let inner = comment.strip_prefix('(').and_then(|c| c.strip_suffix(')')).ok_or("unclosed comment")?;
        if inner.is_empty() || inner.contains(['(', ')', '\\']) {
            return Err(format!("invalid comment {comment:?}"));
        }
    }
    Ok(())
}

/// Checks the keys, their order and their fixed value sets against docs/header.md.
fn check_token_order(tokens: &str) -> Result<(), String> {
    const ORDER: [&str; 15] = [
        "v", "tls", "live", "cipher", "bits", "verify", "hops", "encrypted", "plaintext", "internal", "unknown", "claimed",
        "policy", "action", "dry_run",
    ];
    const OPTIONAL: [&str; 6] = ["cipher", "bits", "verify", "policy", "action", "dry_run"];
    let pairs: Vec<(&str, &str)> = tokens.split(' ').filter_map(|token| token.split_once('=')).collect();
    let keys: Vec<&str> = pairs.iter().map(|(key, _)| *key).collect();

    let mut last = None;
    for key in &keys {
        let position = ORDER.iter().position(|known| known == key).ok_or(format!("unknown key {key:?}"))?;
        if last.is_some_and(|last| position <= last) {
            return Err(format!("key {key:?} out of order"));
        }
        last = Some(position);
    }
    for key in ORDER.iter().filter(|key| !OPTIONAL.contains(key)) {
        if !keys.contains(key) {
            return Err(format!("missing key {key:?}"));
        }
    }
    if keys.contains(&"policy") != keys.contains(&"action") || (keys.contains(&"dry_run") && !keys.contains(&"policy")) {
        return Err("policy=, action= and dry_run= must come together".into());
    }

    let allowed: [(&str, &[&str]); 5] = [
        ("v", &["1"]),
        ("tls", &["pass", "fail", "unknown", "internal"]),
        ("live", &["SSLv3", "TLSv1.0", "TLSv1.1", "TLSv1.2", "TLSv1.3", "tls", "none", "unknown"]),
        ("verify", &["ok", "fail", "no-cert", "not-requested", "unknown"]),
        ("action", &["tag", "reject", "tempfail", "quarantine"]),
    ];
    for (key, value) in &pairs {
        if let Some((_, values)) = allowed.iter().find(|(name, _)| name == key)
            && !values.contains(value)
        {
            return Err(format!("{key}={value} is outside the documented values"));
        }
        let numeric = matches!(*key, "bits" | "hops" | "encrypted" | "plaintext" | "internal" | "unknown" | "claimed");
        if numeric && !value.bytes().all(|byte| byte.is_ascii_digit()) {
            return Err(format!("{key}={value} is not a number"));
        }
        if *key == "dry_run" && *value != "yes" {
            return Err(format!("dry_run={value}"));
        }
    }
    Ok(())
}

/// Checks that the counters and the verdict in a rendered value are those of `analysis`.
pub fn check_header_matches(value: &str, analysis: &Analysis) {
    let unfolded = header::unfold(value);
    let tokens = unfolded.split_once("; ").map_or("", |(_, rest)| rest);
    let token = |key: &str| {
        let prefix = format!("{key}=");
        tokens.split(' ').find_map(|token| token.strip_prefix(prefix.as_str())).map(str::to_string)
    };
    let counts = &analysis.counts;
    let expected = [
        ("tls", analysis.verdict.as_str().to_string()),
        ("hops", counts.hops.to_string()),
        ("encrypted", counts.encrypted.to_string()),
        ("plaintext", counts.plaintext.to_string()),
        ("internal", counts.internal.to_string()),
        ("unknown", counts.unknown.to_string()),
        ("claimed", counts.claimed.to_string()),
    ];
    for (key, wanted) in expected {
        assert_eq!(token(key).as_deref(), Some(wanted.as_str()), "{key}= in the header differs from the analysis: {value:?}");
    }
}

/// True for an authserv-id the configuration accepts (`[header] authserv_id`): 1 to 255
/// characters from letters, digits, `.`, `-` and `_`.
pub fn valid_authserv_id(text: &str) -> bool {
    !text.is_empty() && text.len() <= 255 && text.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
}
