//! Chain analysis: the live hop plus every Received field, classified, with the trust
//! boundary and the verdict.
//!
//! Each field is parsed on its own by [`crate::received`]. This module adds what needs
//! the configuration or the neighbouring fields: internal hops (`[trust]` networks and
//! hosts, local hand-offs, one organisation at both ends), `tls_logging_hosts`, TLS
//! proxies, the trust boundary, the counters and the verdict.

use crate::hop::{Claim, TlsClass, Verdict};
use crate::received::{self, ClaimBasis, ReceivedLine};
use ipnet::IpNet;
use std::borrow::Cow;
use std::net::IpAddr;

/// Maximum number of Received fields analysed per message. Fields past it are counted as
/// `unknown` hops without being parsed, so a message with 10,000 fields costs at most
/// this many parses and can never reach `pass`.
pub const MAX_ANALYSED_FIELDS: usize = 100;

/// Maximum length of one Received field that is parsed. A longer field is an `unknown`
/// hop whose evidence gives the length, which bounds the parse of a 1 MiB field to a length check.
/// 16 KiB is 16 times RFC 5322's 998-octet line limit, room for any folded field an
/// MTA writes. Parsing is linear, so the bound caps the work per field.
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

/// Returns the default `internal_networks`: the IPv4 and IPv6 loopback networks.
pub fn default_internal_networks() -> Vec<IpNet> {
    ["127.0.0.0/8", "::1/128"].iter().filter_map(|network| network.parse().ok()).collect()
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

/// The source of the live hop.
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

/// One hop of the chain, classified. Its text borrows the Received field value.
#[derive(Clone, Debug, Eq, PartialEq)]
pub struct Hop<'a> {
    /// 1 = the topmost Received field of the message.
    pub position: usize,
    pub line: ReceivedLine<'a>,
    pub tls: TlsClass,
    pub trusted: bool,
    /// The reason the hop is internal, when `tls` is `internal`.
    pub internal_reason: Option<InternalReason<'a>>,
    /// True when the sending address is in `tls_proxies`: the field records the proxy's
    /// hand-off, not the client's connection, so `tls` is `unknown`.
    pub from_tls_proxy: bool,
}

impl Hop<'_> {
    /// Returns the sentence naming the rule that decided `tls`.
    pub fn evidence(&self) -> Cow<'_, str> {
        if self.from_tls_proxy {
            Cow::Borrowed("The sending address is a TLS-terminating proxy listed in tls_proxies.")
        } else if let Some(reason) = &self.internal_reason {
            Cow::Owned(reason.to_string())
        } else {
            Cow::Borrowed(&self.line.evidence)
        }
    }

    /// Returns the same hop with every text part owned.
    pub fn into_owned(self) -> Hop<'static> {
        Hop {
            position: self.position,
            line: self.line.into_owned(),
            tls: self.tls,
            trusted: self.trusted,
            internal_reason: self.internal_reason.map(InternalReason::into_owned),
            from_tls_proxy: self.from_tls_proxy,
        }
    }
}

/// The reason a hop is internal. The sentence is written only when it is read (`check`,
/// debug logs), not for every hop analysed.
#[derive(Clone, Debug, Eq, PartialEq)]
pub enum InternalReason<'a> {
    /// A hand-off that never touched a network, such as `with local`.
    LocalHandoff(&'static str),
    /// A hand-off inside one mail provider's network.
    ProviderInternal(&'static str),
    /// The sending address is in `internal_networks`.
    Network(IpAddr),
    /// The verified reverse-DNS name matches `internal_hosts`.
    Host(Cow<'a, str>),
    /// Both ends share this registrable domain (or host name).
    Organisation(Cow<'a, str>),
}

impl InternalReason<'_> {
    fn into_owned(self) -> InternalReason<'static> {
        match self {
            Self::LocalHandoff(reason) => InternalReason::LocalHandoff(reason),
            Self::ProviderInternal(shape) => InternalReason::ProviderInternal(shape),
            Self::Network(ip) => InternalReason::Network(ip),
            Self::Host(name) => InternalReason::Host(Cow::Owned(name.into_owned())),
            Self::Organisation(domain) => InternalReason::Organisation(Cow::Owned(domain.into_owned())),
        }
    }
}

impl std::fmt::Display for InternalReason<'_> {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::LocalHandoff(reason) => write!(formatter, "Local hand-off: {reason}."),
            Self::ProviderInternal(shape) => write!(formatter, "Provider-internal: {shape}."),
            Self::Network(ip) => write!(formatter, "The sending address {ip} is in internal_networks."),
            Self::Host(name) => write!(formatter, "The sending host {name} matches internal_hosts."),
            Self::Organisation(domain) => write!(formatter, "Both ends belong to {domain}."),
        }
    }
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

/// The outcome of analysing one message. Its hops borrow the Received field values.
#[derive(Clone, Debug, Eq, PartialEq)]
pub struct Analysis<'a> {
    /// `None` offline when the message has no Received field at all.
    pub live: Option<LiveHop>,
    /// Every Received field in message order, the live one included offline.
    pub hops: Vec<Hop<'a>>,
    pub counts: Counts,
    pub verdict: Verdict,
}

impl Analysis<'_> {
    /// Returns the same analysis with every text part owned, so it outlives the field values.
    pub fn into_owned(self) -> Analysis<'static> {
        Analysis { live: self.live, hops: self.hops.into_iter().map(Hop::into_owned).collect(), counts: self.counts, verdict: self.verdict }
    }
}

/// Analyses the Received fields of one message (topmost first) against the live hop.
///
/// `total_fields` is the number of Received fields the message had, which may exceed
/// `fields.len()` when the caller stopped collecting at [`MAX_ANALYSED_FIELDS`].
///
/// Trust runs down from the live hop. Offline, the topmost field is written by our
/// receiving MTA. In the daemon the MTA's own field is not passed to the milter, so the
/// topmost field was written by the client, which is ours only when the live hop is
/// internal. Below a field written by us, the next field is ours too exactly when the
/// hop it records is internal: its sender wrote the next field.
pub fn analyse<'a>(fields: &[&'a str], total_fields: usize, live: LiveSource<'_>, trust: &Trust) -> Analysis<'a> {
    let analysed = fields.get(..MAX_ANALYSED_FIELDS).unwrap_or(fields);
    let skipped = total_fields.max(fields.len()) - analysed.len();
    let mut parser = received::Parser::new();
    let mut hops: Vec<Hop<'a>> = analysed.iter().enumerate().map(|(index, raw)| classify(index + 1, parser.parse(raw), trust)).collect();

    let (live_hop, topmost_trusted, counted_from) = match live {
        LiveSource::Macros(tls) => {
            let live_hop = live_from_macros(tls, trust);
            let client_is_ours = live_hop.class == TlsClass::Internal;
            (Some(live_hop), client_is_ours, 0)
        }
        LiveSource::TopmostField => match hops.first() {
            Some(top) => (Some(live_from_field(top)), true, 1),
            None => (None, false, 0),
        },
    };

    let mut trusted = topmost_trusted;
    for hop in &mut hops {
        hop.trusted = trusted;
        trusted = trusted && hop.tls == TlsClass::Internal;
    }

    let counted = hops.get(counted_from..).unwrap_or_default();
    let mut counts = Counts::default();
    for hop in counted {
        count(&mut counts, hop.tls);
        counts.claimed += usize::from(!hop.trusted);
    }
    counts.unknown += skipped;
    counts.hops += skipped;
    counts.claimed += skipped;

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

/// Applies the verdict rules: the first rule that applies wins.
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

/// Classifies one parsed field.
fn classify<'a>(position: usize, mut line: ReceivedLine<'a>, trust: &Trust) -> Hop<'a> {
    apply_tls_logging_hosts(&mut line, trust);

    // A malformed field's address may come from a comment the sender wrote.
    let ip = line.ip_addr.map(|ip| ip.to_canonical()).filter(|_| !line.malformed);
    let from_tls_proxy = ip.is_some_and(|ip| in_networks(ip, &trust.tls_proxies));
    let internal_reason = if from_tls_proxy { None } else { internal_reason(&line, ip, trust) };

    let tls = if from_tls_proxy {
        TlsClass::Unknown
    } else if internal_reason.is_some() {
        TlsClass::Internal
    } else {
        TlsClass::from(line.claim)
    };
    Hop { position, line, tls, trusted: false, internal_reason, from_tls_proxy }
}

/// Turns a line that is `unknown` only because its MTA is not known to mark TLS into
/// `plaintext` when its by host is listed in `tls_logging_hosts`.
fn apply_tls_logging_hosts(line: &mut ReceivedLine<'_>, trust: &Trust) {
    let eligible = line.basis == ClaimBasis::NoMark && line.local_handoff.is_none() && !line.provider_internal;
    let Some(by) = line.by.as_deref().filter(|_| eligible) else { return };
    if matches_host_list(by, &trust.tls_logging_hosts) {
        line.evidence = format!("No TLS mark, and {by} is listed in tls_logging_hosts.").into();
        line.claim = Claim::Plaintext;
        line.basis = ClaimBasis::WriterMarksTls;
    }
}

/// Returns why the hop is internal, or `None`. Malformed and unparsed lines never are.
fn internal_reason<'a>(line: &ReceivedLine<'a>, ip: Option<IpAddr>, trust: &Trust) -> Option<InternalReason<'a>> {
    if line.malformed || line.basis == ClaimBasis::TooLong {
        return None;
    }
    if let Some(reason) = line.local_handoff {
        return Some(InternalReason::LocalHandoff(reason));
    }
    if let Some(shape) = line.provider_shape {
        return Some(InternalReason::ProviderInternal(shape));
    }
    if let Some(ip) = ip.filter(|&ip| in_networks(ip, &trust.internal_networks)) {
        return Some(InternalReason::Network(ip));
    }

    // Only the reverse-DNS name the receiving server recorded counts: the HELO name (and
    // Postfix's from name, which is the HELO) is whatever name the client sent.
    let verified_host = line.host.as_ref().filter(|_| !line.host_may_be_forged);
    if let Some(name) = verified_host.filter(|name| matches_host_list(name, &trust.internal_hosts)) {
        return Some(InternalReason::Host(name.clone()));
    }

    same_organisation(line).map(InternalReason::Organisation)
}

fn in_networks(ip: IpAddr, networks: &[IpNet]) -> bool {
    networks.iter().any(|network| network.contains(&ip))
}

/// True when `name` matches an entry: exactly (case-insensitive, trailing dot ignored),
/// or as a subdomain of a `*.domain` entry.
fn matches_host_list(name: &str, patterns: &[String]) -> bool {
    if patterns.is_empty() {
        return false;
    }
    let name = name.trim().trim_end_matches('.');
    patterns.iter().any(|pattern| match pattern.strip_prefix("*.") {
        Some(domain) => {
            let split = name.len().saturating_sub(domain.len());
            name.len() > domain.len()
                && name.get(split..).is_some_and(|tail| tail.eq_ignore_ascii_case(domain))
                && name.get(..split).is_some_and(|head| head.ends_with('.'))
        }
        None => name.eq_ignore_ascii_case(pattern.trim_end_matches('.')),
    })
}

/// Returns the registrable domain (or the host name) shared by both ends of the hop.
///
/// Only the reverse-DNS name counts on the sending side: the HELO name is the client's
/// choice, and sendmail's `(may be forged)` name did not resolve back.
fn same_organisation<'a>(line: &ReceivedLine<'a>) -> Option<Cow<'a, str>> {
    let host = line.host.as_ref().filter(|_| !line.host_may_be_forged)?;
    let by = line.by.as_deref()?;
    let is_address = |name: &str| name.starts_with('[') || name.contains(':') || name.bytes().all(|byte| byte.is_ascii_digit() || byte == b'.');
    if is_address(host) || is_address(by) {
        return None;
    }
    // A registrable domain has at least two labels, so names whose last two labels differ
    // never share one, and the public suffix list need not be read.
    if !last_two_labels(host).eq_ignore_ascii_case(last_two_labels(by)) {
        return None;
    }
    let host = lower_name(host);
    let by = lower_name(by);
    if host == by {
        return Some(Cow::Owned(host.into_owned()));
    }
    let domain = psl::domain_str(&host)?;
    (psl::domain_str(&by) == Some(domain)).then(|| Cow::Owned(domain.to_string()))
}

/// Returns the last two labels of a host name, without a trailing dot.
fn last_two_labels(name: &str) -> &str {
    let name = name.strip_suffix('.').unwrap_or(name);
    let mut dots = name.bytes().enumerate().rev().filter(|&(_, byte)| byte == b'.');
    match dots.nth(1) {
        Some((dot, _)) => name.get(dot + 1..).unwrap_or(name),
        None => name,
    }
}

/// Returns `name` in lower case without a trailing dot, borrowed when it already is.
fn lower_name(name: &str) -> Cow<'_, str> {
    let name = name.trim_end_matches('.');
    if name.bytes().any(|byte| byte.is_ascii_uppercase()) { Cow::Owned(name.to_ascii_lowercase()) } else { Cow::Borrowed(name) }
}

fn live_from_macros(tls: &LiveTls, trust: &Trust) -> LiveHop {
    let present = |value: &Option<String>| value.as_deref().map(str::trim).filter(|value| !value.is_empty()).map(str::to_string);
    let version = present(&tls.tls_version);
    let cipher = present(&tls.cipher);
    let proxy = !tls.local_submission && tls.client_ip.is_some_and(|ip| in_networks(ip.to_canonical(), &trust.tls_proxies));
    let internal_client = tls.client_ip.is_some_and(|ip| in_networks(ip.to_canonical(), &trust.internal_networks));
    let internal = tls.local_submission || (!proxy && internal_client);

    let (evidence, class, reason) = if proxy {
        ("unknown".to_string(), TlsClass::Unknown, "The client is a TLS-terminating proxy listed in tls_proxies.")
    } else if let Some(version) = &version {
        let token = normalise_version(version).unwrap_or("tls");
        (token.to_string(), TlsClass::Encrypted, "The tls_version macro is set.")
    } else if cipher.is_some() {
        ("tls".to_string(), TlsClass::Encrypted, "The cipher macro is set without tls_version.")
    } else if tls.tls_macros_requested {
        ("none".to_string(), TlsClass::Plaintext, "The tls_version macro was requested and not set.")
    } else {
        ("unknown".to_string(), TlsClass::Unknown, "The MTA did not accept the macro requests.")
    };

    let encrypted = class == TlsClass::Encrypted;
    let verify = match present(&tls.verify) {
        Some(value) => Some(received::verify_token(&value)),
        None if !encrypted => None,
        // Postfix sends no {verify}; a subject means a client certificate was verified.
        None if present(&tls.cert_subject).is_some() => Some("ok"),
        None => Some("unknown"),
    };
    let bits = tls.cipher_bits.as_deref().and_then(leading_number);

    LiveHop {
        evidence,
        class: if internal { TlsClass::Internal } else { class },
        cipher,
        bits,
        verify: verify.map(str::to_string),
        reason: reason.to_string(),
    }
}

fn leading_number(text: &str) -> Option<u32> {
    let text = text.trim();
    let digits = text.bytes().take_while(u8::is_ascii_digit).count();
    text.get(..digits.min(9))?.parse().ok()
}

fn live_from_field(top: &Hop<'_>) -> LiveHop {
    let evidence = if top.from_tls_proxy {
        "unknown"
    } else {
        match top.line.claim {
            Claim::Encrypted => top.line.tls_version.unwrap_or("tls"),
            Claim::Plaintext => "none",
            Claim::Unknown => "unknown",
        }
    };
    LiveHop {
        evidence: evidence.to_string(),
        class: top.tls,
        cipher: top.line.cipher.as_deref().map(str::to_string),
        bits: top.line.bits,
        verify: top.line.verify.map(str::to_string),
        reason: ["From the topmost Received field: ", &top.evidence()].concat(),
    }
}

/// Maps the version spellings MTAs use (`TLSv1.3`, `TLS1_3`, `TLSv1`) to `TLSv1.0`..`TLSv1.3`.
///
/// `SSLv3` maps to itself. OpenSSL's cipher family `TLSv1/SSLv3` is not a negotiated
/// version and maps to `None`.
pub fn normalise_version(version: &str) -> Option<&'static str> {
    received::normalise_version(version)
}
