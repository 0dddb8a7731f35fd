//! Chain analysis: the live hop plus every Received field, classified, with the trust
//! boundary and the verdict.

use crate::hop::{Claim, TlsClass, Verdict};
use crate::received::{self, ReceivedLine};
use ipnet::IpNet;
use std::net::IpAddr;

/// Maximum number of Received fields analysed per message. Fields past it are counted as
/// `unknown` hops without being parsed, so a message with 10,000 fields costs at most
/// this many parses and can never reach `pass`.
pub const MAX_ANALYSED_FIELDS: usize = 100;

/// Maximum length of one Received field that is parsed. A longer field is an `unknown`
/// hop (evidence says why), which bounds the parse of a 1 MiB field to a length check.
pub const MAX_FIELD_LEN: usize = 16 * 1024;

/// The `[trust]` settings the analysis needs.
#[derive(Clone, Debug, Default)]
pub struct Trust {
    pub internal_networks: Vec<IpNet>,
    /// Host names: exact (case-insensitive) or `*.domain` for any subdomain.
    pub internal_hosts: Vec<String>,
    /// Host names whose Received fields always record TLS when it was used.
    pub tls_logging_hosts: Vec<String>,
    /// Client addresses that terminate TLS in front of the MTA.
    pub tls_proxies: Vec<IpNet>,
}

/// TLS state of the live connection, from the milter macros of the last HELO or MAIL stage.
#[derive(Clone, Debug, Default, Eq, PartialEq)]
pub struct LiveTls {
    pub client_ip: Option<IpAddr>,
    /// `{tls_version}` as sent.
    pub tls_version: Option<String>,
    pub cipher: Option<String>,
    pub cipher_bits: Option<String>,
    pub cert_subject: Option<String>,
    pub cert_issuer: Option<String>,
    /// sendmail's `{verify}` as sent (`OK`, `NO`, `FAIL`, ...).
    pub verify: Option<String>,
    /// True when the MTA accepted our macro request for `{tls_version}` at HELO and MAIL,
    /// so its absence means the connection was not encrypted.
    pub tls_macros_requested: bool,
    /// True for mail the MTA submits itself (Postfix's non_smtpd_milters): the live hop never
    /// touched a network, so it is internal.
    pub local_submission: bool,
}

/// Where the live hop comes from.
#[derive(Clone, Copy, Debug)]
pub enum LiveSource<'a> {
    /// The milter macros of the connection in progress.
    Macros(&'a LiveTls),
    /// Offline: the topmost Received field, written by the receiving MTA.
    TopmostField,
}

/// The live hop as the header reports it.
#[derive(Clone, Debug, Eq, PartialEq)]
pub struct LiveHop {
    /// The `live=` token: `TLSv1.0`..`TLSv1.3`, `tls`, `none` or `unknown`.
    pub evidence: String,
    pub class: TlsClass,
    pub cipher: Option<String>,
    pub bits: Option<u32>,
    /// The `verify=` token, when known.
    pub verify: Option<String>,
    /// One short sentence on how the live hop was judged.
    pub reason: String,
}

/// One hop of the chain, classified.
#[derive(Clone, Debug, Eq, PartialEq)]
pub struct Hop {
    /// 1 = the topmost Received field of the message.
    pub position: usize,
    pub line: ReceivedLine,
    pub tls: TlsClass,
    pub trusted: bool,
}

/// The class counters of the header; they sum to `hops`.
#[derive(Clone, Copy, Debug, Default, Eq, PartialEq)]
pub struct Counts {
    pub hops: usize,
    pub encrypted: usize,
    pub plaintext: usize,
    pub internal: usize,
    pub unknown: usize,
    /// Hops below the trust boundary.
    pub claimed: usize,
}

/// The outcome of analysing one message.
#[derive(Clone, Debug, Eq, PartialEq)]
pub struct Analysis {
    /// `None` offline when the message has no Received field at all.
    pub live: Option<LiveHop>,
    /// Every Received field in message order, the live one included offline.
    pub hops: Vec<Hop>,
    pub counts: Counts,
    pub verdict: Verdict,
}

/// Analyses the Received fields of one message (topmost first) against the live hop.
///
/// `total_fields` is the number of Received fields the message had, which may exceed
/// `fields.len()` when the caller stopped collecting at [`MAX_ANALYSED_FIELDS`].
pub fn analyse(fields: &[&str], total_fields: usize, live: LiveSource<'_>, trust: &Trust) -> Analysis {
    // TODO: first cut; the full chain rules (internal hops, trust boundary, proxies) replace it.
    let hops: Vec<Hop> = fields
        .iter()
        .take(MAX_ANALYSED_FIELDS)
        .enumerate()
        .map(|(index, raw)| {
            let line = received::parse(raw);
            let tls = TlsClass::from(line.claim);
            Hop { position: index + 1, line, tls, trusted: false }
        })
        .collect();

    let (live_hop, counted) = match live {
        LiveSource::Macros(tls) => (Some(live_from_macros(tls, trust)), &hops[..]),
        LiveSource::TopmostField => match hops.split_first() {
            Some((top, rest)) => (Some(live_from_field(top)), rest),
            None => (None, &hops[..]),
        },
    };

    let mut counts = Counts::default();
    for hop in counted {
        count(&mut counts, hop.tls);
    }
    let skipped = total_fields.saturating_sub(fields.len().min(MAX_ANALYSED_FIELDS));
    counts.unknown += skipped;
    counts.hops += skipped;

    let verdict = verdict(live_hop.as_ref().map(|live| live.class), counted.iter().map(|hop| hop.tls), skipped);
    Analysis { live: live_hop, hops, counts, verdict }
}

fn count(counts: &mut Counts, class: TlsClass) {
    counts.hops += 1;
    match class {
        TlsClass::Encrypted => counts.encrypted += 1,
        TlsClass::Plaintext => counts.plaintext += 1,
        TlsClass::Internal => counts.internal += 1,
        TlsClass::Unknown => counts.unknown += 1,
    }
}

/// Applies the verdict rules: the first that holds wins.
fn verdict(live: Option<TlsClass>, hops: impl Iterator<Item = TlsClass> + Clone, skipped: usize) -> Verdict {
    let Some(live) = live else { return Verdict::Unknown };
    let all = std::iter::once(live).chain(hops).chain(std::iter::repeat_n(TlsClass::Unknown, skipped.min(1)));

    if all.clone().any(|class| class == TlsClass::Plaintext) {
        Verdict::Fail
    } else if all.clone().all(|class| class == TlsClass::Internal) {
        Verdict::Internal
    } else if all.clone().all(|class| matches!(class, TlsClass::Encrypted | TlsClass::Internal)) {
        Verdict::Pass
    } else {
        Verdict::Unknown
    }
}

fn live_from_macros(tls: &LiveTls, trust: &Trust) -> LiveHop {
    let internal =
        tls.local_submission || tls.client_ip.is_some_and(|ip| trust.internal_networks.iter().any(|net| net.contains(&ip)));
    let version = tls.tls_version.as_deref().filter(|value| !value.is_empty());
    let (evidence, class, reason) = match version {
        Some(version) => (normalise_version(version).unwrap_or("tls").to_string(), TlsClass::Encrypted, "tls_version macro is set"),
        None if tls.tls_macros_requested => ("none".to_string(), TlsClass::Plaintext, "tls_version macro requested but not set"),
        None => ("unknown".to_string(), TlsClass::Unknown, "the MTA did not accept macro requests"),
    };
    LiveHop {
        evidence,
        class: if internal { TlsClass::Internal } else { class },
        cipher: tls.cipher.clone().filter(|value| !value.is_empty()),
        bits: tls.cipher_bits.as_deref().and_then(|bits| bits.parse().ok()),
        verify: None,
        reason: reason.to_string(),
    }
}

fn live_from_field(top: &Hop) -> LiveHop {
    let evidence = match top.line.claim {
        Claim::Encrypted => top.line.tls_version.clone().unwrap_or_else(|| "tls".into()),
        Claim::Plaintext => "none".into(),
        Claim::Unknown => "unknown".into(),
    };
    LiveHop {
        evidence,
        class: top.tls,
        cipher: top.line.cipher.clone(),
        bits: top.line.bits,
        verify: top.line.verify.clone(),
        reason: "topmost Received field".into(),
    }
}

/// Maps the version spellings MTAs use (`TLSv1.3`, `TLS1_3`, `TLSv1`) to `TLSv1.0`..`TLSv1.3`.
pub fn normalise_version(version: &str) -> Option<&'static str> {
    match version.trim().to_ascii_uppercase().replace(['_', '-'], ".").as_str() {
        "TLSV1" | "TLSV1.0" | "TLS1.0" | "TLS1" => Some("TLSv1.0"),
        "TLSV1.1" | "TLS1.1" => Some("TLSv1.1"),
        "TLSV1.2" | "TLS1.2" => Some("TLSv1.2"),
        "TLSV1.3" | "TLS1.3" => Some("TLSv1.3"),
        "SSLV3" => Some("SSLv3"),
        _ => None,
    }
}
