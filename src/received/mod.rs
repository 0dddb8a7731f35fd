//! Received field parsing: one field value in, one [`ReceivedLine`] out.
//!
//! This module judges a single Received field on its own text. Whether the hop is
//! internal by address or organisation, and where the trust boundary lies, is decided
//! over the whole chain in [`crate::chain`].
//!
//! The field is tokenized ([`lexer`]), split into clauses ([`fields`]), searched for
//! TLS comment shapes ([`tls`]) and matched against the MTA fingerprint table
//! ([`rules`]). Parsing is linear in the field length and returns a line for any input:
//! a field that cannot be read is a `malformed` line with `claim = unknown`.

mod date;
mod fields;
mod lexer;
mod rules;
mod tls;

use crate::chain::MAX_FIELD_LEN;
use crate::hop::Claim;
use fields::Fields;
use rules::MtaRule;
use serde::Serialize;
use std::borrow::Cow;
use std::net::IpAddr;
use tls::TlsDetails;

pub use date::Rfc3339;

pub use tls::verify_token;
pub(crate) use tls::version as normalise_version;

/// The parts of one Received field, read leniently: a missing part is `None`, never an error.
///
/// Text parts borrow the field value where they stand in it as written, so parsing a field
/// allocates only for a folded name of several words. [`ReceivedLine::into_owned`] makes a
/// line that outlives the value.
#[derive(Clone, Debug, Default, Eq, PartialEq, Serialize)]
pub struct ReceivedLine<'a> {
    /// The token after `from`, as written (brackets and trailing dots kept).
    pub from_name: Option<Cow<'a, str>>,
    /// The HELO/EHLO name when the field records one apart from `from_name`.
    pub helo: Option<Cow<'a, str>>,
    /// The reverse-DNS name of the sending side.
    pub host: Option<Cow<'a, str>>,
    /// The sending side's address, without brackets or an `IPv6:` prefix.
    pub ip: Option<Cow<'a, str>>,
    /// The host after `by`, as written.
    pub by: Option<Cow<'a, str>>,
    /// The `with` word as written (`ESMTPS`, `Microsoft SMTP Server`, `esmtps`).
    pub protocol: Option<Cow<'a, str>>,
    pub id: Option<Cow<'a, str>>,
    /// The text after the `;` that ends the clauses: the date, read by [`ReceivedLine::date`].
    #[serde(skip)]
    pub date_text: Cow<'a, str>,
    /// The negotiated version, `TLSv1.0`..`TLSv1.3` or `SSLv3`, only where the field states it exactly.
    pub tls_version: Option<&'static str>,
    pub cipher: Option<Cow<'a, str>>,
    /// The first number of an `a/b` bits pair.
    pub bits: Option<u32>,
    /// Client certificate status: `ok`, `fail`, `no-cert`, `not-requested` or `unknown`.
    pub verify: Option<&'static str>,
    /// The software that wrote the field, from the fingerprint table (`postfix`, `exim`, ...).
    pub mta: Option<&'static str>,
    pub claim: Claim,
    /// One short sentence naming the rule that decided `claim`.
    pub evidence: Cow<'static, str>,
    /// The reason the hop never touched a network (`with local`, LMTP over a unix socket, ...), if it did not.
    pub local_handoff: Option<&'static str>,
    /// True for a provider-internal shape, such as Gmail's from-less `by <address> with SMTP id`.
    pub provider_internal: bool,
    /// True when the field is structurally broken. `claim` is then `unknown`.
    pub malformed: bool,
    /// The with word in its standard spelling (`ESMTPS` for Exim's `esmtps`, `UTF8SMTPS`
    /// for `utf8esmtps`, `SMTPS` for `SMTPs`). It is `None` for a word outside the protocol table.
    #[serde(skip)]
    pub transmission_type: Option<&'static str>,
    /// True when sendmail marked `host` with `(may be forged)`: the name did not resolve back.
    #[serde(skip)]
    pub host_may_be_forged: bool,
    /// The kind of rule that decided `claim`.
    #[serde(skip)]
    pub basis: ClaimBasis,
    /// The provider-internal shape that matched, when `provider_internal` is true.
    #[serde(skip)]
    pub provider_shape: Option<&'static str>,
    /// `ip` as an address. An IPv4-mapped IPv6 address stays an IPv6 address here.
    #[serde(skip)]
    pub ip_addr: Option<IpAddr>,
}

impl ReceivedLine<'_> {
    /// Returns the date after the `;` as RFC 3339, when it reads as an RFC 5322 date-time.
    /// It is read on demand, because the analysis never needs it.
    pub fn date(&self) -> Option<Rfc3339> {
        date::parse(&self.date_text).map(|date| date.rfc3339)
    }

    /// Returns the same line with every text part owned.
    pub fn into_owned(self) -> ReceivedLine<'static> {
        fn own(text: Option<Cow<'_, str>>) -> Option<Cow<'static, str>> {
            text.map(|text| Cow::Owned(text.into_owned()))
        }
        ReceivedLine {
            from_name: own(self.from_name),
            helo: own(self.helo),
            host: own(self.host),
            ip: own(self.ip),
            by: own(self.by),
            protocol: own(self.protocol),
            id: own(self.id),
            cipher: own(self.cipher),
            date_text: Cow::Owned(self.date_text.into_owned()),
            tls_version: self.tls_version,
            bits: self.bits,
            verify: self.verify,
            mta: self.mta,
            claim: self.claim,
            evidence: self.evidence,
            local_handoff: self.local_handoff,
            provider_internal: self.provider_internal,
            malformed: self.malformed,
            transmission_type: self.transmission_type,
            host_may_be_forged: self.host_may_be_forged,
            basis: self.basis,
            provider_shape: self.provider_shape,
            ip_addr: self.ip_addr,
        }
    }
}

/// The kind of rule that decided a line's claim.
#[derive(Clone, Copy, Debug, Default, Eq, PartialEq)]
pub enum ClaimBasis {
    /// A TLS mark in the field: `encrypted`.
    TlsMark,
    /// The MTA marks TLS whenever it is used with this with word, and the field has no mark: `plaintext`.
    WriterMarksTls,
    /// A TLS comment before the by host contradicts a with word in which the MTA marks TLS: `plaintext`.
    Contradicted,
    /// No TLS mark, and the MTA is not known to mark TLS with this with word: `unknown`.
    NoMark,
    /// No with clause and no TLS mark: `unknown`.
    #[default]
    NoProtocol,
    /// The field is structurally broken: `unknown`.
    Malformed,
    /// The field is over [`MAX_FIELD_LEN`] and was not parsed: `unknown`.
    TooLong,
}

/// A TLS mark after the by host, which only the receiving MTA writes.
#[derive(Clone, Copy)]
enum ReceiverMark {
    Protocol,
    Comment(&'static str),
    TlsClause,
    OverTls,
    StartTls,
}

/// The TLS marks of one field.
#[derive(Default)]
struct Marks<'a> {
    receiver: Option<ReceiverMark>,
    receiver_details: TlsDetails<'a>,
    /// The shape of the first TLS comment on the sending side, after its TCP-info.
    sender: Option<&'static str>,
    sender_details: TlsDetails<'a>,
    postfix_verify: Option<&'static str>,
}

/// Parses one Received field value (folding included, without the `Received:` name).
///
/// A value longer than [`MAX_FIELD_LEN`] is not parsed: it returns an `unknown` line
/// whose evidence gives the length.
pub fn parse(raw: &str) -> ReceivedLine<'_> {
    Parser::new().parse(raw)
}

/// A parser that keeps its token buffer between fields, so the fields of one message
/// share one allocation. [`parse`] makes a new one per field.
pub struct Parser<'a> {
    tokens: Vec<lexer::Token<'a>>,
}

impl Default for Parser<'_> {
    fn default() -> Self {
        Self::new()
    }
}

impl<'a> Parser<'a> {
    pub fn new() -> Self {
        Parser { tokens: Vec::with_capacity(lexer::TYPICAL_TOKENS) }
    }

    /// Parses one Received field value, as [`parse`] does.
    pub fn parse(&mut self, raw: &'a str) -> ReceivedLine<'a> {
        self.tokens.clear();
        parse_with(raw, &mut self.tokens)
    }
}

fn parse_with<'a>(raw: &'a str, tokens: &mut Vec<lexer::Token<'a>>) -> ReceivedLine<'a> {
    if raw.len() > MAX_FIELD_LEN {
        return too_long(raw.len());
    }

    let lexed = lexer::tokenize(raw, tokens);
    let mut fields = fields::read(raw, tokens);
    if let Err(error) = lexed {
        fields.malformed = Some(error.describe());
    }

    let view = rules::View::new(&fields);
    let rule = rules::fingerprint(&view);
    let marks = collect_marks(&fields);
    let mut line = ReceivedLine {
        from_name: fields.from_name.map(|name| if fields.from_is_one_atom { Cow::Borrowed(name) } else { collapse_whitespace(name) }),
        helo: fields.sender.helo.map(Cow::Borrowed),
        host: sender_host(&fields, rule).map(Cow::Borrowed),
        ip: fields.sender.ip.map(|(text, _)| Cow::Borrowed(text)),
        ip_addr: fields.sender.ip.map(|(_, ip)| ip),
        by: fields.by.map(Cow::Borrowed),
        protocol: fields.with_word.map(|word| if fields.with_is_one_atom { Cow::Borrowed(word) } else { collapse_whitespace(word) }),
        id: fields.id.map(Cow::Borrowed),
        date_text: Cow::Borrowed(fields.date_text),
        mta: rule.map(|rule| rule.mta),
        malformed: fields.malformed.is_some(),
        transmission_type: fields.protocol.map(|protocol| protocol.canonical),
        host_may_be_forged: fields.sender.host_may_be_forged,
        ..ReceivedLine::default()
    };

    decide_claim(&mut line, &fields, rule, &marks);

    if !line.malformed {
        line.local_handoff = rules::first_shape(rules::LOCAL_HANDOFFS, &view);
        line.provider_shape = rules::first_shape(rules::PROVIDER_INTERNAL, &view);
        line.provider_internal = line.provider_shape.is_some();
    }
    line
}

fn too_long(length: usize) -> ReceivedLine<'static> {
    ReceivedLine {
        evidence: format!("The field is {length} bytes, over the {MAX_FIELD_LEN}-byte limit, so it was not parsed.").into(),
        basis: ClaimBasis::TooLong,
        ..ReceivedLine::default()
    }
}

/// Joins the words of a folded value with single spaces.
fn collapse_whitespace(text: &str) -> Cow<'_, str> {
    // Already collapsed when the only whitespace is single spaces between words.
    let mut previous_space = true;
    let collapsed = text.bytes().all(|byte| {
        let space = byte.is_ascii_whitespace();
        let fine = !space || (byte == b' ' && !previous_space);
        previous_space = space;
        fine
    });
    if collapsed && !previous_space {
        return Cow::Borrowed(text);
    }
    let mut words = text.split_ascii_whitespace();
    let mut collapsed = String::with_capacity(text.len());
    collapsed.push_str(words.next().unwrap_or_default());
    for word in words {
        collapsed.push(' ');
        collapsed.push_str(word);
    }
    Cow::Owned(collapsed)
}

/// Returns the reverse-DNS name: from the TCP-info, or Exim's from name when the TCP-info has none.
fn sender_host<'a>(fields: &Fields<'_, 'a>, rule: Option<&MtaRule>) -> Option<&'a str> {
    if fields.sender.host.is_some() {
        return fields.sender.host;
    }
    let from_is_rdns = rule.is_some_and(|rule| rule.from_is_rdns);
    let name = fields.from_name.filter(|name| !name.contains(char::is_whitespace) && fields::address(name).is_none());
    name.filter(|_| from_is_rdns && !fields.from_is_literal && fields.sender.ip.is_some())
}

fn collect_marks<'a>(fields: &Fields<'_, 'a>) -> Marks<'a> {
    let mut marks = Marks::default();

    // The receiving side: only the receiving MTA writes after its own host name.
    let prefix = rules::CISCO_TLS_PREFIX;
    let with = fields.with_word.unwrap_or_default();
    if with.get(..prefix.len()).is_some_and(|head| head.eq_ignore_ascii_case(prefix)) {
        marks.receiver = Some(ReceiverMark::Protocol);
        marks.receiver_details.cipher = with.get(prefix.len()..).filter(|cipher| !cipher.is_empty());
    }
    if fields.protocol.is_some_and(|protocol| protocol.records_tls) {
        marks.receiver = Some(ReceiverMark::Protocol);
    }
    for (_, text) in fields.receiver_comments() {
        if let Some(comment) = tls::read_comment(text) {
            marks.receiver.get_or_insert(ReceiverMark::Comment(comment.shape));
            marks.receiver_details.merge(comment.details);
        }
    }
    if let Some(suite) = fields.tls_clause {
        marks.receiver.get_or_insert(ReceiverMark::TlsClause);
        marks.receiver_details.merge(TlsDetails { cipher: Some(suite), ..TlsDetails::default() });
    }
    if fields.over_tls {
        marks.receiver.get_or_insert(ReceiverMark::OverTls);
    }
    if fields.starttls {
        marks.receiver.get_or_insert(ReceiverMark::StartTls);
    }

    // The sending side: a HELO name with spaces and parentheses can add comments here,
    // but only before the TCP-info comment, which the receiving MTA writes after the HELO.
    let after_address = fields.sender.address_comment.unwrap_or(0);
    for (index, text) in fields.sender_comments() {
        if fields.sender.address_comment.is_some() && index <= after_address {
            continue;
        }
        if let Some(comment) = tls::read_comment(text) {
            marks.sender.get_or_insert(comment.shape);
            marks.sender_details.merge(comment.details);
        } else if let Some(verify) = tls::postfix_verify(text) {
            marks.postfix_verify.get_or_insert(verify);
        }
    }
    marks
}

fn decide_claim<'a>(line: &mut ReceivedLine<'a>, fields: &Fields<'_, '_>, rule: Option<&MtaRule>, marks: &Marks<'a>) {
    // Taken out and put back below, so the evidence can borrow it without a copy.
    let protocol = line.protocol.take();
    let with_word = protocol.as_deref().unwrap_or_default();
    let key = line.transmission_type;
    let marking_rule = rule.filter(|rule| key.is_some_and(|key| rule.marks_tls_with.contains(&key)));

    let (claim, basis, evidence) = if let Some(reason) = fields.malformed {
        (Claim::Unknown, ClaimBasis::Malformed, sentence(&["Malformed field (", reason, "), so nothing in it counts."]).into())
    } else if let Some(mark) = marks.receiver {
        let mut details = marks.receiver_details;
        details.merge(marks.sender_details);
        set_details(line, details, marks.postfix_verify);
        (Claim::Encrypted, ClaimBasis::TlsMark, receiver_evidence(mark, with_word))
    } else if let (Some(shape), Some(rule)) = (marks.sender, marking_rule) {
        let evidence = sentence(&[rule.name, " marks TLS in ", with_word, " whenever it is used, so the ", shape, " before the by host is not its own."]);
        (Claim::Plaintext, ClaimBasis::Contradicted, evidence.into())
    } else if let Some(shape) = marks.sender {
        set_details(line, marks.sender_details, marks.postfix_verify);
        (Claim::Encrypted, ClaimBasis::TlsMark, comment_evidence(shape, "before"))
    } else if let Some(rule) = marking_rule {
        (Claim::Plaintext, ClaimBasis::WriterMarksTls, sentence(&["No TLS mark, and ", rule.name, " marks TLS whenever it uses ", with_word, "."]).into())
    } else if fields.with_word.is_none() {
        (Claim::Unknown, ClaimBasis::NoProtocol, Cow::Borrowed("No TLS mark and no with clause."))
    } else if let Some(rule) = rule {
        (Claim::Unknown, ClaimBasis::NoMark, sentence(&["No TLS mark, and ", rule.name, " is not known to mark TLS with ", with_word, "."]).into())
    } else {
        (Claim::Unknown, ClaimBasis::NoMark, sentence(&["No TLS mark, and the MTA is unknown, so ", with_word, " proves nothing."]).into())
    };

    line.protocol = protocol;
    line.claim = claim;
    line.basis = basis;
    line.evidence = evidence;
}

/// Concatenates the parts of an evidence sentence.
fn sentence(parts: &[&str]) -> String {
    let mut text = String::with_capacity(parts.iter().map(|part| part.len()).sum());
    for part in parts {
        text.push_str(part);
    }
    text
}

fn set_details<'a>(line: &mut ReceivedLine<'a>, details: TlsDetails<'a>, postfix_verify: Option<&'static str>) {
    line.tls_version = details.version;
    line.cipher = details.cipher.map(Cow::Borrowed);
    line.bits = details.bits;
    line.verify = details.verify.or(postfix_verify);
}

fn receiver_evidence(mark: ReceiverMark, with_word: &str) -> Cow<'static, str> {
    match mark {
        ReceiverMark::Protocol => protocol_evidence(with_word),
        ReceiverMark::Comment(shape) => comment_evidence(shape, "after"),
        ReceiverMark::TlsClause => Cow::Borrowed("An RFC 8314 tls clause names the cipher suite."),
        ReceiverMark::OverTls => Cow::Borrowed("The by clause says over TLS secured channel."),
        ReceiverMark::StartTls => Cow::Borrowed("A with STARTTLS clause records TLS."),
    }
}

/// Returns the sentence for a with word that records TLS. The common spellings are static
/// strings, because the sentence is built for every field and read only in logs and `check`.
fn protocol_evidence(with_word: &str) -> Cow<'static, str> {
    macro_rules! by_word {
        ($($word:literal),*) => {
            match with_word {
                $($word => Cow::Borrowed(concat!("The with word ", $word, " records TLS.")),)*
                other => Cow::Owned(sentence(&["The with word ", other, " records TLS."])),
            }
        };
    }
    by_word!("ESMTPS", "ESMTPSA", "esmtps", "esmtpsa", "SMTPS", "SMTPs", "LMTPS", "LMTPSA", "UTF8SMTPS", "UTF8SMTPSA", "utf8esmtps", "utf8esmtpsa")
}

/// Returns the sentence for a TLS comment `side` (`before` or `after`) the by host, static
/// for the shapes that [`tls::read_comment`] returns.
fn comment_evidence(shape: &'static str, side: &'static str) -> Cow<'static, str> {
    macro_rules! by_shape {
        ($($shape:literal),*) => {
            match (shape, side) {
                $(
                    ($shape, "before") => Cow::Borrowed(concat!("A ", $shape, " before the by host records TLS.")),
                    ($shape, "after") => Cow::Borrowed(concat!("A ", $shape, " after the by host records TLS.")),
                )*
                _ => Cow::Owned(sentence(&["A ", shape, " ", side, " the by host records TLS."])),
            }
        };
    }
    by_shape!(
        "(TLS) marker",
        "version comment",
        "qmail-tls cipher comment",
        "using comment",
        "version= comment",
        "version:cipher:bits comment",
        "Courier TLS: comment"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn static_protocol_evidence_matches_built() {
        for word in ["ESMTPS", "ESMTPSA", "esmtps", "esmtpsa", "SMTPS", "SMTPs", "LMTPS", "LMTPSA", "UTF8SMTPS", "UTF8SMTPSA", "utf8esmtps", "utf8esmtpsa"] {
            let evidence = protocol_evidence(word);
            assert!(matches!(evidence, Cow::Borrowed(_)), "{word} is not static");
            assert_eq!(evidence, sentence(&["The with word ", word, " records TLS."]));
        }
        assert_eq!(protocol_evidence("HTTPS"), "The with word HTTPS records TLS.");
    }

    #[test]
    fn static_comment_evidence_matches_built() {
        for shape in ["(TLS) marker", "version comment", "qmail-tls cipher comment", "using comment", "version= comment", "version:cipher:bits comment", "Courier TLS: comment"] {
            for side in ["before", "after"] {
                let evidence = comment_evidence(shape, side);
                assert!(matches!(evidence, Cow::Borrowed(_)), "{shape} {side} is not static");
                assert_eq!(evidence, sentence(&["A ", shape, " ", side, " the by host records TLS."]));
            }
        }
    }
}
