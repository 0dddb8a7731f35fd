//! Policy rules: which messages must arrive over TLS, and what happens when they did not.
//!
//! Rules are tried in order, and the first whose envelope lists all match wins. A message
//! that matches none gets the implicit rule `default`, which only tags. Live-hop
//! requirements are decided at RCPT for `reject` and `tempfail` rules; chain requirements,
//! and everything about `quarantine` rules, at end of message.

use crate::chain::{Analysis, LiveHop};
use crate::hop::TlsClass;
use ipnet::IpNet;
use std::fmt;
use std::net::IpAddr;

/// The name of the implicit rule for messages that match no configured rule.
pub const DEFAULT_RULE: &str = "default";

/// Action taken on a message whose rule's requirements are not met.
#[derive(Clone, Copy, Debug, Eq, PartialEq, Hash)]
pub enum Action {
    /// Add the header only.
    Tag,
    Reject,
    Tempfail,
    /// Accept into the MTA's hold queue.
    Quarantine,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Tag => "tag",
            Self::Reject => "reject",
            Self::Tempfail => "tempfail",
            Self::Quarantine => "quarantine",
        }
    }

    /// True for the actions that can be taken at RCPT, for one recipient.
    fn decided_at_rcpt(self) -> bool {
        matches!(self, Self::Reject | Self::Tempfail)
    }
}

/// Requirement on every non-internal hop of the chain.
#[derive(Clone, Copy, Debug, Eq, PartialEq, Hash)]
pub enum ChainRequirement {
    Any,
    NoPlaintext,
    AllEncrypted,
}

impl ChainRequirement {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Any => "any",
            Self::NoPlaintext => "no-plaintext",
            Self::AllEncrypted => "all-encrypted",
        }
    }
}

/// Whether the rule applies to SMTP AUTH sessions.
#[derive(Clone, Copy, Debug, Eq, PartialEq, Hash)]
pub enum Authenticated {
    Any,
    Yes,
    No,
}

impl Authenticated {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Any => "any",
            Self::Yes => "yes",
            Self::No => "no",
        }
    }
}

/// One entry of `senders` or `recipients`.
#[derive(Clone, Debug, Eq, PartialEq, Hash)]
pub enum AddressPattern {
    /// `<>`: the null sender of bounces.
    NullSender,
    /// `example.org`: that domain only.
    Domain(String),
    /// `*.example.org`: every subdomain, not the apex.
    Subdomains(String),
    /// `user@example.org`.
    Address(String),
}

impl AddressPattern {
    /// Parses a pattern. Returns `None` for text in none of the accepted forms.
    pub fn parse(text: &str) -> Option<Self> {
        let text = text.trim().to_ascii_lowercase();
        if text == "<>" {
            return Some(Self::NullSender);
        }

        let plain = |part: &str| {
            !part.is_empty() && part.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
        };
        if let Some((local, domain)) = text.rsplit_once('@') {
            let local_ok = !local.is_empty() && !local.chars().any(|c| c.is_whitespace() || c.is_control());
            return (local_ok && plain(domain)).then(|| Self::Address(text.clone()));
        }
        if let Some(domain) = text.strip_prefix("*.") {
            return plain(domain).then(|| Self::Subdomains(domain.to_string()));
        }
        plain(&text).then(|| Self::Domain(text.clone()))
    }

    /// Matches an envelope address (without angle brackets; empty for the null sender).
    pub fn matches(&self, address: &str) -> bool {
        let address = address.to_ascii_lowercase();
        let domain = address.rsplit_once('@').map(|(_, domain)| domain);

        match self {
            Self::NullSender => address.is_empty(),
            Self::Address(expected) => address == *expected,
            Self::Domain(expected) => domain == Some(expected.as_str()),
            Self::Subdomains(parent) => {
                domain.is_some_and(|domain| domain.len() > parent.len() + 1 && domain.ends_with(parent.as_str()) && {
                    let cut = domain.len() - parent.len() - 1;
                    domain.as_bytes().get(cut) == Some(&b'.')
                })
            }
        }
    }
}

impl fmt::Display for AddressPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NullSender => f.write_str("<>"),
            Self::Domain(domain) => f.write_str(domain),
            Self::Subdomains(domain) => write!(f, "*.{domain}"),
            Self::Address(address) => f.write_str(address),
        }
    }
}

/// TLS protocol versions in order, for `min_tls_version`.
#[derive(Clone, Copy, Debug, Eq, PartialEq, Ord, PartialOrd, Hash)]
pub enum TlsVersion {
    Ssl3,
    Tls10,
    Tls11,
    Tls12,
    Tls13,
}

impl TlsVersion {
    /// Parses the normalised spellings `SSLv3` and `TLSv1.0`..`TLSv1.3`.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "SSLv3" => Some(Self::Ssl3),
            "TLSv1.0" => Some(Self::Tls10),
            "TLSv1.1" => Some(Self::Tls11),
            "TLSv1.2" => Some(Self::Tls12),
            "TLSv1.3" => Some(Self::Tls13),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ssl3 => "SSLv3",
            Self::Tls10 => "TLSv1.0",
            Self::Tls11 => "TLSv1.1",
            Self::Tls12 => "TLSv1.2",
            Self::Tls13 => "TLSv1.3",
        }
    }
}

/// An SMTP reply: code, enhanced status code and text.
#[derive(Clone, Debug, Eq, PartialEq, Hash)]
pub struct Reply {
    pub code: String,
    pub enhanced: Option<String>,
    pub text: String,
}

impl Reply {
    /// Parses `"550 5.7.10 Encryption needed"`; the enhanced status code is optional.
    ///
    /// # Errors
    ///
    /// Returns what is wrong: a code that is not 4xx or 5xx, an enhanced status code whose
    /// class differs from the code's, or text with control characters.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut parts = text.trim().splitn(2, ' ');
        let code = parts.next().unwrap_or_default();
        let rest = parts.next().unwrap_or_default().trim();

        let valid_code = code.len() == 3 && code.chars().all(|c| c.is_ascii_digit()) && matches!(&code[..1], "4" | "5");
        if !valid_code {
            return Err("expected a 4xx or 5xx reply code first, as in \"550 5.7.10 Encryption needed\"".into());
        }

        let (enhanced, text) = match rest.split_once(' ').map_or((rest, ""), |(first, text)| (first, text)) {
            (first, text) if is_enhanced_code(first) => (Some(first.to_string()), text.trim()),
            _ => (None, rest),
        };
        if let Some(enhanced) = &enhanced
            && enhanced[..1] != code[..1]
        {
            return Err(format!("the enhanced status code {enhanced} must be of the same class as reply code {code}"));
        }
        if text.chars().any(|c| c.is_control()) {
            return Err("the reply text must not contain control characters".into());
        }
        if text.is_empty() {
            return Err("the reply text is missing".into());
        }

        let text: String = text.chars().take(200).collect();
        Ok(Self { code: code.to_string(), enhanced, text: text.trim_end().to_string() })
    }

    /// Returns the default reply of an action, if it sends one.
    pub fn default_for(action: Action) -> Option<Self> {
        let (code, enhanced, text) = match action {
            Action::Reject => ("550", "5.7.10", "Encryption needed: TLS required by local policy"),
            Action::Tempfail => ("451", "4.7.0", "TLS required by local policy, try again later"),
            Action::Tag | Action::Quarantine => return None,
        };
        Some(Self { code: code.into(), enhanced: Some(enhanced.into()), text: text.into() })
    }

    /// Returns the text with `%` doubled, as milter reply text requires, and anything
    /// outside printable ASCII replaced.
    pub fn escaped_text(&self) -> String {
        self.text
            .chars()
            .map(|c| if c.is_ascii_graphic() || c == ' ' { c } else { '?' })
            .collect::<String>()
            .replace('%', "%%")
    }
}

fn is_enhanced_code(text: &str) -> bool {
    let parts: Vec<&str> = text.split('.').collect();
    parts.len() == 3
        && matches!(parts[0], "4" | "5")
        && parts[1..].iter().all(|part| (1..=3).contains(&part.len()) && part.chars().all(|c| c.is_ascii_digit()))
}

impl fmt::Display for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.enhanced {
            Some(enhanced) => write!(f, "{} {enhanced} {}", self.code, self.text),
            None => write!(f, "{} {}", self.code, self.text),
        }
    }
}

/// One `[[policy]]` rule, checked.
#[derive(Clone, Debug, Eq, PartialEq)]
pub struct Rule {
    pub name: String,
    pub senders: Vec<AddressPattern>,
    pub recipients: Vec<AddressPattern>,
    pub clients: Vec<IpNet>,
    pub authenticated: Authenticated,
    pub require_tls: bool,
    pub min_tls_version: Option<TlsVersion>,
    pub min_cipher_bits: Option<u32>,
    pub require_verified_cert: bool,
    pub chain: ChainRequirement,
    pub action: Action,
    /// The reply for `reject` and `tempfail`.
    pub reply: Option<Reply>,
    pub dry_run: bool,
}

impl Rule {
    /// Returns the implicit rule for messages that match no configured rule: tag only.
    pub fn default_rule() -> Self {
        Self {
            name: DEFAULT_RULE.into(),
            senders: Vec::new(),
            recipients: Vec::new(),
            clients: Vec::new(),
            authenticated: Authenticated::Any,
            require_tls: false,
            min_tls_version: None,
            min_cipher_bits: None,
            require_verified_cert: false,
            chain: ChainRequirement::Any,
            action: Action::Tag,
            reply: None,
            dry_run: false,
        }
    }
}

/// Envelope values a rule is matched against.
#[derive(Clone, Copy, Debug)]
pub struct Envelope<'a> {
    /// The envelope sender without angle brackets; empty for the null sender.
    pub sender: &'a str,
    pub recipient: &'a str,
    pub client: Option<IpAddr>,
    pub authenticated: bool,
}

impl Rule {
    /// True when every list of the rule matches (an empty list matches everything).
    pub fn matches(&self, envelope: &Envelope<'_>) -> bool {
        let sender = self.senders.is_empty() || self.senders.iter().any(|pattern| pattern.matches(envelope.sender));
        let recipient =
            self.recipients.is_empty() || self.recipients.iter().any(|pattern| pattern.matches(envelope.recipient));
        let client = self.clients.is_empty()
            || envelope.client.is_some_and(|ip| self.clients.iter().any(|network| network.contains(&ip)));
        let authenticated = match self.authenticated {
            Authenticated::Any => true,
            Authenticated::Yes => envelope.authenticated,
            Authenticated::No => !envelope.authenticated,
        };

        sender && recipient && client && authenticated
    }

    /// True when a live-hop requirement fails and the action is taken at RCPT.
    pub fn rejects_at_rcpt(&self, live: &LiveHop, dry_run: bool) -> bool {
        self.action.decided_at_rcpt() && !(self.dry_run || dry_run) && self.check_live(live).is_err()
    }

    /// Checks the live-hop requirements; the error names the one that failed.
    ///
    /// # Errors
    ///
    /// Returns a short reason naming the requirement and the live value.
    pub fn check_live(&self, live: &LiveHop) -> Result<(), String> {
        // Internal hops need no TLS; an unknown live hop satisfies no requirement.
        if live.class == TlsClass::Internal {
            return Ok(());
        }

        let encrypted = live.class == TlsClass::Encrypted;
        if self.require_tls && !encrypted {
            return Err(format!("require_tls: live={}", live.evidence));
        }
        if let Some(floor) = self.min_tls_version {
            match TlsVersion::parse(&live.evidence) {
                Some(version) if encrypted && version >= floor => {}
                _ => return Err(format!("min_tls_version {}: live={}", floor.as_str(), live.evidence)),
            }
        }
        if let Some(floor) = self.min_cipher_bits {
            match live.bits {
                Some(bits) if encrypted && bits >= floor => {}
                _ => return Err(format!("min_cipher_bits {floor}: bits={}", live.bits.map_or("none".into(), |bits| bits.to_string()))),
            }
        }
        if self.require_verified_cert && live.verify.as_deref() != Some("ok") {
            return Err(format!("require_verified_cert: verify={}", live.verify.as_deref().unwrap_or("unknown")));
        }
        Ok(())
    }

    /// Checks the chain requirements over the hops below the live hop.
    ///
    /// # Errors
    ///
    /// Returns a short reason naming the requirement and the first hop that fails it.
    pub fn check_chain(&self, analysis: &Analysis, live_is_topmost: bool) -> Result<(), String> {
        if self.chain == ChainRequirement::Any {
            return Ok(());
        }

        let below_live = analysis.hops.iter().filter(|hop| !(live_is_topmost && hop.position == 1));
        for hop in below_live.filter(|hop| hop.tls != TlsClass::Internal) {
            let field = hop.position;
            match hop.tls {
                TlsClass::Plaintext => return Err(format!("chain {}: Received field {field} plaintext", self.chain.as_str())),
                TlsClass::Unknown if self.chain == ChainRequirement::AllEncrypted => {
                    return Err(format!("chain all-encrypted: Received field {field} unknown"));
                }
                _ => {}
            }

            let stated_version = hop.line.tls_version.and_then(TlsVersion::parse);
            if let (Some(floor), Some(version)) = (self.min_tls_version, stated_version)
                && version < floor
            {
                return Err(format!("min_tls_version {}: Received field {field} {}", floor.as_str(), version.as_str()));
            }
            if let (Some(floor), Some(bits)) = (self.min_cipher_bits, hop.line.bits)
                && bits < floor
            {
                return Err(format!("min_cipher_bits {floor}: Received field {field} {bits} bits"));
            }
        }

        // Fields past the analysis limit were not read, so they cannot show encryption.
        let unread = analysis.counts.hops.saturating_sub(analysis.hops.iter().filter(|hop| !(live_is_topmost && hop.position == 1)).count());
        if self.chain == ChainRequirement::AllEncrypted && unread > 0 {
            return Err(format!("chain all-encrypted: {unread} Received fields not analysed"));
        }
        Ok(())
    }

    /// The parts of a rule decided at end of message, which all recipients of one
    /// transaction must share. Live-hop requirements of `reject` and `tempfail` rules were
    /// already decided per recipient at RCPT, so they are not part of it.
    fn end_of_message_terms(&self, dry_run: bool) -> impl PartialEq + use<> {
        let live_at_eom = !self.action.decided_at_rcpt() || self.dry_run || dry_run;
        let floors = (self.min_tls_version, self.min_cipher_bits);
        let live_terms = live_at_eom.then_some((self.require_tls, self.require_verified_cert, floors));
        let chain_terms = (self.chain != ChainRequirement::Any).then_some((self.chain, floors));
        (chain_terms, live_terms, self.action, self.dry_run || dry_run, self.reply.clone())
    }

    /// True when a recipient under `other` cannot join a transaction under this rule.
    pub fn conflicts_with(&self, other: &Rule, dry_run: bool) -> bool {
        self.name != other.name && self.end_of_message_terms(dry_run) != other.end_of_message_terms(dry_run)
    }
}

/// Returns the first rule matching `envelope`, or `default`.
pub fn select<'a>(rules: &'a [Rule], default: &'a Rule, envelope: &Envelope<'_>) -> &'a Rule {
    rules.iter().find(|rule| rule.matches(envelope)).unwrap_or(default)
}

/// The outcome of a rule for one message at end of message.
#[derive(Clone, Debug, Eq, PartialEq)]
pub struct Outcome {
    /// The action taken, or that would be taken in dry-run: `Tag` when requirements are met.
    pub action: Action,
    pub dry_run: bool,
    /// Reason the requirements failed, if they did.
    pub reason: Option<String>,
}

/// Decides a rule's outcome at end of message from the whole analysis.
pub fn decide(rule: &Rule, analysis: &Analysis, live_is_topmost: bool, dry_run: bool) -> Outcome {
    let dry_run = rule.dry_run || dry_run;
    let failure = match analysis.live.as_ref() {
        Some(live) => rule.check_live(live),
        None => Err("no live hop".into()),
    }
    .and_then(|()| rule.check_chain(analysis, live_is_topmost))
    .err();

    // A rule without requirements is met, even when there is no live hop.
    let has_requirements = rule.require_tls
        || rule.min_tls_version.is_some()
        || rule.min_cipher_bits.is_some()
        || rule.require_verified_cert
        || rule.chain != ChainRequirement::Any;
    match failure {
        Some(reason) if has_requirements => Outcome { action: rule.action, dry_run, reason: Some(reason) },
        _ => Outcome { action: Action::Tag, dry_run, reason: None },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn live(evidence: &str, class: TlsClass, bits: Option<u32>, verify: Option<&str>) -> LiveHop {
        LiveHop {
            evidence: evidence.into(),
            class,
            cipher: None,
            bits,
            verify: verify.map(str::to_string),
            reason: String::new(),
        }
    }

    fn rule() -> Rule {
        Rule { name: "partners".into(), action: Action::Reject, ..Rule::default_rule() }
    }

    fn envelope<'a>(sender: &'a str, recipient: &'a str) -> Envelope<'a> {
        Envelope { sender, recipient, client: Some("192.0.2.1".parse().unwrap()), authenticated: false }
    }

    #[test]
    fn domain_pattern_matches_apex_only() {
        let pattern = AddressPattern::parse("Partner.Example").unwrap();
        assert!(pattern.matches("a@partner.example"));
        assert!(pattern.matches("A@PARTNER.EXAMPLE"));
        assert!(!pattern.matches("a@sub.partner.example"));
    }

    #[test]
    fn subdomain_pattern_skips_apex() {
        let pattern = AddressPattern::parse("*.partner.example").unwrap();
        assert!(pattern.matches("a@mx.partner.example"));
        assert!(!pattern.matches("a@partner.example"));
        assert!(!pattern.matches("a@evilpartner.example"));
    }

    #[test]
    fn address_pattern_is_exact() {
        let pattern = AddressPattern::parse("Alice@Example.org").unwrap();
        assert!(pattern.matches("alice@example.org"));
        assert!(!pattern.matches("bob@example.org"));
    }

    #[test]
    fn null_sender_pattern() {
        let pattern = AddressPattern::parse("<>").unwrap();
        assert!(pattern.matches(""));
        assert!(!pattern.matches("a@example.org"));
    }

    #[test]
    fn invalid_patterns_are_rejected() {
        assert_eq!(AddressPattern::parse("*."), None);
        assert_eq!(AddressPattern::parse("a b@example.org"), None);
        assert_eq!(AddressPattern::parse("exa mple.org"), None);
    }

    #[test]
    fn empty_lists_match_everything() {
        assert!(Rule::default_rule().matches(&envelope("", "x@y")));
    }

    #[test]
    fn all_lists_must_match() {
        let mut rule = rule();
        rule.senders = vec![AddressPattern::parse("partner.example").unwrap()];
        rule.clients = vec!["198.51.100.0/24".parse().unwrap()];
        assert!(!rule.matches(&envelope("a@partner.example", "b@example.org")));
    }

    #[test]
    fn authenticated_yes_needs_auth() {
        let mut rule = rule();
        rule.authenticated = Authenticated::Yes;
        let mut envelope = envelope("a@x", "b@y");
        assert!(!rule.matches(&envelope));
        envelope.authenticated = true;
        assert!(rule.matches(&envelope));
    }

    #[test]
    fn first_matching_rule_wins() {
        let mut first = rule();
        first.recipients = vec![AddressPattern::parse("example.org").unwrap()];
        let second = Rule { name: "all".into(), ..rule() };
        let default = Rule::default_rule();
        let rules = [first, second];
        assert_eq!(select(&rules, &default, &envelope("a@x", "b@example.org")).name, "partners");
        assert_eq!(select(&rules, &default, &envelope("a@x", "b@other.org")).name, "all");
        assert_eq!(select(&rules[..0], &default, &envelope("a@x", "b@other.org")).name, "default");
    }

    #[test]
    fn require_tls_fails_on_none() {
        let rule = Rule { require_tls: true, ..rule() };
        assert!(rule.check_live(&live("none", TlsClass::Plaintext, None, None)).is_err());
        assert!(rule.check_live(&live("TLSv1.2", TlsClass::Encrypted, None, None)).is_ok());
    }

    #[test]
    fn unknown_live_satisfies_nothing() {
        let rule = Rule { require_tls: true, ..rule() };
        assert!(rule.check_live(&live("unknown", TlsClass::Unknown, None, None)).is_err());
    }

    #[test]
    fn internal_live_satisfies_everything() {
        let rule = Rule {
            require_tls: true,
            min_tls_version: Some(TlsVersion::Tls13),
            min_cipher_bits: Some(256),
            require_verified_cert: true,
            ..rule()
        };
        assert!(rule.check_live(&live("none", TlsClass::Internal, None, None)).is_ok());
    }

    #[test]
    fn live_tls_fails_version_floor() {
        let rule = Rule { require_tls: true, min_tls_version: Some(TlsVersion::Tls12), ..rule() };
        assert!(rule.check_live(&live("tls", TlsClass::Encrypted, Some(256), None)).is_err());
        assert!(rule.check_live(&live("TLSv1.1", TlsClass::Encrypted, Some(256), None)).is_err());
        assert!(rule.check_live(&live("TLSv1.3", TlsClass::Encrypted, Some(256), None)).is_ok());
    }

    #[test]
    fn cipher_bits_floor() {
        let rule = Rule { min_cipher_bits: Some(128), ..rule() };
        assert!(rule.check_live(&live("TLSv1.3", TlsClass::Encrypted, Some(112), None)).is_err());
        assert!(rule.check_live(&live("TLSv1.3", TlsClass::Encrypted, None, None)).is_err());
        assert!(rule.check_live(&live("TLSv1.3", TlsClass::Encrypted, Some(128), None)).is_ok());
    }

    #[test]
    fn verified_cert_needs_ok() {
        let rule = Rule { require_verified_cert: true, ..rule() };
        assert!(rule.check_live(&live("TLSv1.3", TlsClass::Encrypted, None, Some("unknown"))).is_err());
        assert!(rule.check_live(&live("TLSv1.3", TlsClass::Encrypted, None, Some("ok"))).is_ok());
    }

    #[test]
    fn rcpt_rejection_needs_reject_action() {
        let plain = live("none", TlsClass::Plaintext, None, None);
        let reject = Rule { require_tls: true, ..rule() };
        let quarantine = Rule { action: Action::Quarantine, ..reject.clone() };
        let dry = Rule { dry_run: true, ..reject.clone() };
        assert!(reject.rejects_at_rcpt(&plain, false));
        assert!(!reject.rejects_at_rcpt(&plain, true));
        assert!(!quarantine.rejects_at_rcpt(&plain, false));
        assert!(!dry.rejects_at_rcpt(&plain, false));
    }

    #[test]
    fn reply_parses_codes() {
        let reply = Reply::parse("550 5.7.10 Encryption needed").unwrap();
        assert_eq!(reply.code, "550");
        assert_eq!(reply.enhanced.as_deref(), Some("5.7.10"));
        assert_eq!(reply.text, "Encryption needed");
    }

    #[test]
    fn reply_without_enhanced_code() {
        let reply = Reply::parse("554 No TLS, no mail").unwrap();
        assert_eq!(reply.enhanced, None);
        assert_eq!(reply.text, "No TLS, no mail");
    }

    #[test]
    fn reply_rejects_bad_input() {
        assert!(Reply::parse("250 ok").is_err());
        assert!(Reply::parse("550 4.7.1 mismatched class").is_err());
        assert!(Reply::parse("550 5.7.1 bad\r\ntext").is_err());
        assert!(Reply::parse("550").is_err());
    }

    #[test]
    fn reply_text_escapes_percent() {
        let reply = Reply::parse("550 5.7.10 100% encrypted or nothing").unwrap();
        assert_eq!(reply.escaped_text(), "100%% encrypted or nothing");
    }

    #[test]
    fn different_chain_terms_conflict() {
        let strict = Rule { chain: ChainRequirement::AllEncrypted, ..rule() };
        let other = Rule { name: "other".into(), ..rule() };
        assert!(strict.conflicts_with(&other, false));
        assert!(!strict.conflicts_with(&strict.clone(), false));
    }

    #[test]
    fn rcpt_only_terms_do_not_conflict() {
        let tls12 = Rule { require_tls: true, ..rule() };
        let other = Rule { name: "other".into(), ..rule() };
        assert!(!tls12.conflicts_with(&other, false));
        assert!(tls12.conflicts_with(&other, true));
    }
}
