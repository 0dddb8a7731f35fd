//! Received field parsing: one field value in, one [`ReceivedLine`] out.
//!
//! This module judges a single Received field on its own text. Whether the hop is
//! internal by address or organisation, and where the trust boundary lies, is decided
//! over the whole chain in [`crate::chain`].

use crate::hop::Claim;
use serde::Serialize;

/// What one Received field records, read leniently: missing parts are `None`, never an error.
#[derive(Clone, Debug, Default, Eq, PartialEq, Serialize)]
pub struct ReceivedLine {
    /// The token after `from`, as written (brackets and trailing dots kept).
    pub from_name: Option<String>,
    /// The HELO/EHLO name when the field records one apart from `from_name`.
    pub helo: Option<String>,
    /// The reverse-DNS name of the sending side.
    pub host: Option<String>,
    /// The sending side's address, without brackets or an `IPv6:` prefix.
    pub ip: Option<String>,
    /// The host after `by`, as written.
    pub by: Option<String>,
    /// The `with` word as written (`ESMTPS`, `Microsoft SMTP Server`, `esmtps`).
    pub protocol: Option<String>,
    pub id: Option<String>,
    /// The date after the last `;`, as RFC 3339.
    pub date: Option<String>,
    /// The negotiated version, `TLSv1.0`..`TLSv1.3` or `SSLv3`, only where the field states it exactly.
    pub tls_version: Option<String>,
    pub cipher: Option<String>,
    /// The first number of an `a/b` bits pair.
    pub bits: Option<u32>,
    /// Client certificate status: `ok`, `fail`, `no-cert`, `not-requested` or `unknown`.
    pub verify: Option<String>,
    /// The software that wrote the field, from the fingerprint table (`postfix`, `exim`, ...).
    pub mta: Option<&'static str>,
    pub claim: Claim,
    /// One short sentence naming the rule that decided `claim`.
    pub evidence: String,
    /// Why the hop never touched a network (`with local`, LMTP over a unix socket, ...), if it did not.
    pub local_handoff: Option<&'static str>,
    /// True for a provider-internal shape, such as Gmail's from-less `by <address> with SMTP id`.
    pub provider_internal: bool,
    /// True when the field is structurally broken; `claim` is then `unknown`.
    pub malformed: bool,
}

impl Default for Claim {
    fn default() -> Self {
        Self::Unknown
    }
}

/// Parses one Received field value (folding included, without the `Received:` name).
pub fn parse(raw: &str) -> ReceivedLine {
    // TODO: first cut only; the full parser replaces this stub.
    let lower = raw.to_ascii_lowercase();
    let mut line = ReceivedLine {
        evidence: "no TLS information recognised".into(),
        ..Default::default()
    };
    if lower.contains("with esmtps") || lower.contains("with esmtpsa") {
        line.claim = Claim::Encrypted;
        line.evidence = "protocol word records TLS".into();
    }
    line
}
