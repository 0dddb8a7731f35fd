//! The classification tables: protocol words, MTA fingerprints, and the line shapes that
//! make a hop a local hand-off or provider-internal.
//!
//! To teach the parser a new MTA, add an [`MtaRule`] to [`MTA_RULES`] (before any
//! broader rule that would match its fields first) and a labelled line to
//! `tests/data/received.jsonl`. `marks_tls_with` is the only place where a missing TLS
//! mark becomes `plaintext`: list a protocol word there only when the MTA's source or
//! documentation shows that it marks TLS whenever TLS is used with that word.

use super::fields::Fields;

/// One spelling of a with word.
#[derive(Debug, Eq, PartialEq)]
pub(crate) struct ProtocolWord {
    /// The spelling matched, ignoring case and folding.
    pub spelling: &'static str,
    /// The standard spelling reported as the transmission type.
    pub canonical: &'static str,
    /// True when the word itself records TLS.
    pub records_tls: bool,
}

const fn word(spelling: &'static str, canonical: &'static str, records_tls: bool) -> ProtocolWord {
    ProtocolWord { spelling, canonical, records_tls }
}

/// With words by spelling. The RFC 3848 and RFC 6531 types come first, then the
/// spellings MTAs use outside them.
pub(crate) static PROTOCOL_WORDS: &[ProtocolWord] = &[
    word("SMTP", "SMTP", false),
    word("ESMTP", "ESMTP", false),
    word("ESMTPA", "ESMTPA", false),
    word("ESMTPS", "ESMTPS", true),
    word("ESMTPSA", "ESMTPSA", true),
    word("LMTP", "LMTP", false),
    word("LMTPA", "LMTPA", false),
    word("LMTPS", "LMTPS", true),
    word("LMTPSA", "LMTPSA", true),
    word("UTF8SMTP", "UTF8SMTP", false),
    word("UTF8SMTPA", "UTF8SMTPA", false),
    word("UTF8SMTPS", "UTF8SMTPS", true),
    word("UTF8SMTPSA", "UTF8SMTPSA", true),
    word("UTF8LMTP", "UTF8LMTP", false),
    word("UTF8LMTPA", "UTF8LMTPA", false),
    word("UTF8LMTPS", "UTF8LMTPS", true),
    word("UTF8LMTPSA", "UTF8LMTPSA", true),
    // Exim built with SUPPORT_I18N writes an extra `e`: `utf8esmtps`.
    word("UTF8ESMTP", "UTF8SMTP", false),
    word("UTF8ESMTPA", "UTF8SMTPA", false),
    word("UTF8ESMTPS", "UTF8SMTPS", true),
    word("UTF8ESMTPSA", "UTF8SMTPSA", true),
    // HELO over implicit TLS (Yahoo writes `SMTPs`, also Gmail, Zoho and OpenSMTPD).
    word("SMTPS", "SMTPS", true),
    word("HTTP", "HTTP", false),
    word("HTTPS", "HTTPS", true),
    // CommuniGate Pro and Reddoxx.
    word("ESMTP-TLS", "ESMTP-TLS", true),
    word("SMTP-TLS", "SMTP-TLS", true),
    // Exim's local SMTP over TLS.
    word("local-esmtps", "local-esmtps", true),
    word("local-esmtpsa", "local-esmtpsa", true),
    word("Microsoft SMTP Server", "Microsoft SMTP Server", false),
    word("Microsoft SMTPSVC", "Microsoft SMTPSVC", false),
];

/// Cisco ESA glues the cipher to the protocol: `ESMTP/TLS/AES128-SHA`.
pub(crate) const CISCO_TLS_PREFIX: &str = "ESMTP/TLS/";

/// Looks a with word up in [`PROTOCOL_WORDS`].
pub(crate) fn protocol_word(with: &str) -> Option<&'static ProtocolWord> {
    // Only a spelling of several words can match a with word that has whitespace.
    if with.bytes().any(|byte| byte.is_ascii_whitespace()) {
        return PROTOCOL_WORDS.iter().filter(|entry| entry.spelling.contains(' ')).find(|entry| super::fields::same_words(with, entry.spelling));
    }
    PROTOCOL_WORDS.iter().find(|entry| entry.spelling.len() == with.len() && with.eq_ignore_ascii_case(entry.spelling))
}

/// A test that recognises an MTA's fields.
pub(crate) enum Signature {
    /// A comment after the by host equal to this text (the product comment), ignoring case.
    Product(&'static str),
    /// A comment after the by host that starts with this text, ignoring case.
    ProductPrefix(&'static str),
    /// Any comment before the date that starts with this text, ignoring case.
    CommentPrefix(&'static str),
    /// The by host is this domain or one of its subdomains. The domain has two labels.
    ByDomain(&'static str),
    /// The with word, ignoring case and folding.
    With(&'static str),
    /// The start of the with word, ignoring case.
    WithPrefix(&'static str),
    /// Any other test on the field.
    Shape(fn(&View<'_, '_>) -> bool),
}

/// The parts of one field that the rules test: the clauses, plus the comments and the
/// by domain, collected once so that each rule compares against a short array.
///
/// NOTE: only the first [`VIEW_COMMENTS`] comments after the by host, and the first that
/// many of the whole field, are compared. A signature comment after them is missed.
pub(crate) struct View<'v, 'a> {
    pub fields: &'v Fields<'v, 'a>,
    /// The last two labels of the by host, without a trailing dot (`google.com`).
    by_domain: &'a str,
    receiver: [&'a str; VIEW_COMMENTS],
    receiver_count: usize,
    all: [&'a str; VIEW_COMMENTS],
    all_count: usize,
}

const VIEW_COMMENTS: usize = 8;

impl<'v, 'a> View<'v, 'a> {
    pub fn new(fields: &'v Fields<'v, 'a>) -> Self {
        let by_domain = fields.by.map_or("", last_two_labels);
        let mut view = View { fields, by_domain, receiver: [""; VIEW_COMMENTS], receiver_count: 0, all: [""; VIEW_COMMENTS], all_count: 0 };
        let after_by = fields.by_index.unwrap_or(usize::MAX);
        for (index, text) in fields.comments() {
            let text = text.trim_ascii();
            if let Some(slot) = view.all.get_mut(view.all_count) {
                *slot = text;
                view.all_count += 1;
            }
            if index > after_by
                && let Some(slot) = view.receiver.get_mut(view.receiver_count)
            {
                *slot = text;
                view.receiver_count += 1;
            }
            if view.all_count == VIEW_COMMENTS && view.receiver_count == VIEW_COMMENTS {
                break;
            }
        }
        view
    }

    /// Comments after the by host, trimmed.
    fn receiver(&self) -> &[&'a str] {
        self.receiver.get(..self.receiver_count).unwrap_or_default()
    }

    /// Comments before the date, trimmed.
    fn all(&self) -> &[&'a str] {
        self.all.get(..self.all_count).unwrap_or_default()
    }
}

impl Signature {
    fn matches(&self, view: &View<'_, '_>) -> bool {
        match *self {
            Self::Product(text) => view.receiver().iter().any(|comment| comment.eq_ignore_ascii_case(text)),
            Self::ProductPrefix(prefix) => view.receiver().iter().any(|comment| starts_with_ignore_case(comment, prefix)),
            Self::CommentPrefix(prefix) => view.all().iter().any(|comment| starts_with_ignore_case(comment, prefix)),
            Self::ByDomain(domain) => view.by_domain.eq_ignore_ascii_case(domain),
            Self::With(word) => view.fields.with_is(word),
            Self::WithPrefix(prefix) => view.fields.with_word.is_some_and(|with| starts_with_ignore_case(with, prefix)),
            Self::Shape(test) => test(view),
        }
    }
}

/// Returns the last two labels of a host name (`google.com` for `mx.google.com.`).
fn last_two_labels(name: &str) -> &str {
    let name = name.strip_suffix('.').unwrap_or(name);
    let mut dots = name.bytes().enumerate().rev().filter(|&(_, byte)| byte == b'.');
    match (dots.next(), dots.next()) {
        (Some(_), Some((second, _))) => name.get(second + 1..).unwrap_or(name),
        _ => name,
    }
}

fn starts_with_ignore_case(text: &str, prefix: &str) -> bool {
    text.get(..prefix.len()).is_some_and(|head| head.eq_ignore_ascii_case(prefix))
}

/// One MTA: how its fields are recognised and what a missing TLS mark means in them.
pub(crate) struct MtaRule {
    /// The `mta` token (`postfix`, `exim`, ...).
    pub mta: &'static str,
    /// The name used in evidence sentences.
    pub name: &'static str,
    /// Any one of these identifies the MTA.
    pub(crate) signatures: &'static [Signature],
    /// Canonical with words after which this MTA always marks TLS when it was used, so a
    /// field with one of them and no TLS mark is `plaintext`.
    pub marks_tls_with: &'static [&'static str],
    /// The from name is the verified reverse-DNS name (Exim's `$sender_rcvhost`).
    pub from_is_rdns: bool,
}

use Signature::{ByDomain, CommentPrefix, Product, ProductPrefix, Shape, With, WithPrefix};

/// The fingerprint table, first match wins.
///
/// Sources for `marks_tls_with`: the standard sendmail.cf `HReceived` template writes
/// `(version=${tls_version} cipher=...)` whenever `${tls_version}` is set, whatever the
/// protocol. Exim's default `received_header_text` (globals.c, 4.92 and later) writes
/// `($tls_in_ver)` whenever the session is TLS. The other entries follow the labelled
/// lines of `tests/data/received.jsonl`, whose notes name the source behind each label.
/// Postfix adds `S` to ESMTP and UTF8SMTP but never to HELO-mode SMTP. OpenSMTPD, Haraka
/// and Stalwart add `S` under TLS. Exchange writes `(TLS)` or `(version=...)` after
/// `Microsoft SMTP Server`. Gmail writes ESMTPS and a version comment.
pub(crate) static MTA_RULES: &[MtaRule] = &[
    MtaRule {
        mta: "postfix",
        name: "Postfix",
        signatures: &[Product("Postfix"), ProductPrefix("Postfix, from userid")],
        marks_tls_with: &["ESMTP", "ESMTPA", "UTF8SMTP", "UTF8SMTPA"],
        from_is_rdns: false,
    },
    // Proofpoint Protection Server is sendmail inside, with the same Received format.
    MtaRule {
        mta: "proofpoint",
        name: "Proofpoint",
        signatures: &[ByDomain("pphosted.com")],
        marks_tls_with: &["SMTP", "ESMTP", "ESMTPA"],
        from_is_rdns: false,
    },
    MtaRule {
        mta: "proofpoint-essentials",
        name: "Proofpoint Essentials",
        signatures: &[Product("PPE Hosted ESMTP Server"), ByDomain("ppe-hosted.com")],
        marks_tls_with: &[],
        from_is_rdns: false,
    },
    MtaRule {
        mta: "sendmail",
        name: "sendmail",
        signatures: &[Shape(has_sendmail_version)],
        marks_tls_with: &["SMTP", "ESMTP", "ESMTPA"],
        from_is_rdns: false,
    },
    MtaRule {
        mta: "exim",
        name: "Exim",
        signatures: &[ProductPrefix("Exim ")],
        marks_tls_with: &["ESMTP", "ESMTPA", "UTF8SMTP", "UTF8SMTPA"],
        from_is_rdns: true,
    },
    MtaRule {
        mta: "outlook.com",
        name: "Exchange Online",
        signatures: &[ByDomain("outlook.com")],
        marks_tls_with: &["Microsoft SMTP Server"],
        from_is_rdns: false,
    },
    MtaRule {
        mta: "exchange",
        name: "Exchange",
        signatures: &[With("Microsoft SMTP Server"), With("mapi")],
        marks_tls_with: &["Microsoft SMTP Server"],
        from_is_rdns: false,
    },
    // IIS SMTP records TLS only in Hotmail's `over TLS secured channel`.
    MtaRule {
        mta: "smtpsvc",
        name: "Microsoft SMTPSVC",
        signatures: &[With("Microsoft SMTPSVC")],
        marks_tls_with: &[],
        from_is_rdns: false,
    },
    MtaRule {
        mta: "gmail",
        name: "Gmail",
        signatures: &[ByDomain("google.com"), ByDomain("gmail.com"), Shape(is_google_internal)],
        marks_tls_with: &["ESMTP"],
        from_is_rdns: false,
    },
    MtaRule {
        mta: "yahoo",
        name: "Yahoo",
        signatures: &[ByDomain("yahoo.com")],
        marks_tls_with: &[],
        from_is_rdns: false,
    },
    MtaRule {
        mta: "amazon-ses",
        name: "Amazon SES",
        signatures: &[ByDomain("amazonses.com"), CommentPrefix("SimpleEmailService"), Shape(is_ses_inbound)],
        marks_tls_with: &[],
        from_is_rdns: false,
    },
    MtaRule {
        mta: "opensmtpd",
        name: "OpenSMTPD",
        signatures: &[Product("OpenSMTPD")],
        marks_tls_with: &["SMTP", "ESMTP", "ESMTPA"],
        from_is_rdns: false,
    },
    MtaRule {
        mta: "haraka",
        name: "Haraka",
        signatures: &[ProductPrefix("Haraka/")],
        marks_tls_with: &["ESMTP", "ESMTPA"],
        from_is_rdns: false,
    },
    MtaRule {
        mta: "stalwart",
        name: "Stalwart",
        signatures: &[Product("Stalwart SMTP")],
        marks_tls_with: &["ESMTP", "ESMTPA"],
        from_is_rdns: false,
    },
    MtaRule {
        mta: "cisco-esa",
        name: "Cisco ESA",
        signatures: &[WithPrefix(CISCO_TLS_PREFIX), ByDomain("iphmx.com")],
        marks_tls_with: &[],
        from_is_rdns: false,
    },
    MtaRule {
        mta: "qmail",
        name: "qmail",
        signatures: &[CommentPrefix("qmail "), Shape(has_qmail_tcp_info)],
        marks_tls_with: &[],
        from_is_rdns: false,
    },
    MtaRule {
        mta: "courier",
        name: "Courier",
        signatures: &[CommentPrefix("TLS: "), CommentPrefix("AUTH: "), Shape(has_id_after_date)],
        marks_tls_with: &[],
        from_is_rdns: false,
    },
    MtaRule {
        mta: "zimbra",
        name: "Zimbra",
        signatures: &[CommentPrefix("LHLO ")],
        marks_tls_with: &[],
        from_is_rdns: false,
    },
    MtaRule {
        mta: "amavis",
        name: "amavisd-new",
        signatures: &[ProductPrefix("amavisd-new")],
        marks_tls_with: &[],
        from_is_rdns: false,
    },
    MtaRule {
        mta: "cyrus",
        name: "Cyrus",
        signatures: &[ProductPrefix("Cyrus ")],
        marks_tls_with: &[],
        from_is_rdns: false,
    },
    MtaRule {
        mta: "dovecot",
        name: "Dovecot",
        signatures: &[Product("Dovecot")],
        marks_tls_with: &[],
        from_is_rdns: false,
    },
    MtaRule {
        mta: "fastmail",
        name: "Fastmail",
        signatures: &[Product("LMTPProxy"), ByDomain("messagingengine.com")],
        marks_tls_with: &[],
        from_is_rdns: false,
    },
    MtaRule {
        mta: "mimecast",
        name: "Mimecast",
        signatures: &[ByDomain("mimecast.com")],
        marks_tls_with: &[],
        from_is_rdns: false,
    },
    MtaRule {
        mta: "communigate",
        name: "CommuniGate Pro",
        signatures: &[ProductPrefix("CommuniGate Pro"), With("ESMTP-TLS")],
        marks_tls_with: &[],
        from_is_rdns: false,
    },
    // James keeps ESMTPA without an S under TLS, so its protocol word proves nothing.
    MtaRule {
        mta: "james",
        name: "Apache James",
        signatures: &[ProductPrefix("JAMES SMTP Server")],
        marks_tls_with: &[],
        from_is_rdns: false,
    },
    MtaRule {
        mta: "maddy",
        name: "maddy",
        signatures: &[ProductPrefix("envelope-sender ")],
        marks_tls_with: &[],
        from_is_rdns: false,
    },
    MtaRule {
        mta: "zoho",
        name: "Zoho",
        signatures: &[ByDomain("zohomail.com"), ByDomain("zoho.com")],
        marks_tls_with: &[],
        from_is_rdns: false,
    },
    MtaRule {
        mta: "postini",
        name: "Postini",
        signatures: &[ByDomain("postini.com")],
        marks_tls_with: &[],
        from_is_rdns: false,
    },
    MtaRule {
        mta: "rzmta",
        name: "Strato RZmta",
        signatures: &[ProductPrefix("RZmta")],
        marks_tls_with: &[],
        from_is_rdns: false,
    },
    MtaRule {
        mta: "reddoxx",
        name: "Reddoxx",
        signatures: &[Product("Reddoxx engine"), With("SMTP-TLS")],
        marks_tls_with: &[],
        from_is_rdns: false,
    },
];

/// Returns the first rule whose signature matches the field.
pub(crate) fn fingerprint(view: &View<'_, '_>) -> Option<&'static MtaRule> {
    MTA_RULES.iter().find(|rule| rule.signatures.iter().any(|signature| signature.matches(view)))
}

/// A line shape and the reason it gives.
pub(crate) struct LineShape {
    pub test: fn(&View<'_, '_>) -> bool,
    pub reason: &'static str,
}

/// Shapes of a hand-off that never touches a network, so TLS does not apply.
pub(crate) static LOCAL_HANDOFFS: &[LineShape] = &[
    LineShape { test: is_exim_local, reason: "local submission (with local)" },
    LineShape { test: |view| view.fields.sender.unix_socket, reason: "delivery over a unix socket" },
    LineShape { test: is_lmtp_without_address, reason: "LMTP delivery without a network address (unix socket)" },
    LineShape { test: is_mapi_on_one_host, reason: "MAPI submission inside one host" },
    LineShape { test: is_http_submission, reason: "HTTP submission inside the provider" },
    LineShape { test: is_iis_pickup, reason: "IIS pickup directory" },
    LineShape { test: is_sendmail_submit, reason: "sendmail local submission" },
    LineShape { test: is_postfix_pickup, reason: "Postfix pickup of a local submission" },
    LineShape { test: is_qmail_queue, reason: "qmail-queue hand-off on one host" },
];

/// Shapes of a hand-off inside one mail provider's network.
pub(crate) static PROVIDER_INTERNAL: &[LineShape] = &[
    LineShape { test: is_google_internal, reason: "Gmail-internal hand-off (no from, by an address, with SMTP)" },
    LineShape { test: is_google_outbound, reason: "Gmail-internal hand-off to its outbound server (no from, by a google.com host, with SMTP)" },
];

/// Returns the reason of the first shape that matches.
pub(crate) fn first_shape(shapes: &'static [LineShape], view: &View<'_, '_>) -> Option<&'static str> {
    shapes.iter().find(|shape| (shape.test)(view)).map(|shape| shape.reason)
}

/// sendmail's `(8.18.1/8.18.1)` product comment, also `(8.18.1.2/8.18.1.2)` and `(.../Submit)`.
fn has_sendmail_version(view: &View<'_, '_>) -> bool {
    view.receiver().iter().any(|comment| is_sendmail_version(comment))
}

fn is_sendmail_version(comment: &str) -> bool {
    if !comment.bytes().next().is_some_and(|byte| byte.is_ascii_digit()) {
        return false;
    }
    let mut parts = comment.split('/');
    let first = parts.next().is_some_and(is_dotted_version);
    let second = parts.next().is_some_and(is_dotted_version);
    let rest = parts.next().is_none_or(|tag| !tag.is_empty() && tag.bytes().all(|byte| byte.is_ascii_alphabetic()));
    first && second && rest && parts.next().is_none()
}

/// True for two to five dot-separated numbers, such as `8.18.1`.
fn is_dotted_version(part: &str) -> bool {
    let bytes = part.as_bytes();
    let dots = bytes.iter().filter(|&&byte| byte == b'.').count();
    let well_formed = bytes.iter().all(|byte| byte.is_ascii_digit() || *byte == b'.')
        && bytes.first().is_some_and(u8::is_ascii_digit)
        && bytes.last().is_some_and(u8::is_ascii_digit)
        && !bytes.windows(2).any(|pair| pair == b"..");
    well_formed && (1..=4).contains(&dots)
}

/// Gmail's internal hops: `by <address> with SMTP id ...` with no from clause.
fn is_google_internal(view: &View<'_, '_>) -> bool {
    let fields = view.fields;
    !fields.has_from && fields.id.is_some() && fields.with_is("SMTP") && fields.by.and_then(super::fields::address).is_some()
}

/// Gmail's hand-off to its outbound server: `by mail-xx.google.com with SMTP id ...`, no from.
fn is_google_outbound(view: &View<'_, '_>) -> bool {
    let fields = view.fields;
    !fields.has_from && fields.id.is_some() && fields.with_is("SMTP") && view.by_domain.eq_ignore_ascii_case("google.com")
}

fn is_ses_inbound(view: &View<'_, '_>) -> bool {
    view.by_domain.eq_ignore_ascii_case("amazonaws.com") && view.fields.by.is_some_and(|by| starts_with_ignore_case(by, "inbound-smtp."))
}

/// qmail-smtpd writes `(HELO name) (address)` with the address unbracketed.
fn has_qmail_tcp_info(view: &View<'_, '_>) -> bool {
    let helo_comment = view.all().iter().any(|comment| starts_with_ignore_case(comment, "HELO "));
    helo_comment && view.all().iter().any(|comment| super::fields::address(comment).is_some())
}

fn has_id_after_date(view: &View<'_, '_>) -> bool {
    view.fields.id_after_date
}

fn is_exim_local(view: &View<'_, '_>) -> bool {
    view.fields.with_word.is_some_and(|with| with.eq_ignore_ascii_case("local") || starts_with_ignore_case(with, "local-"))
}

/// Dovecot writes no TCP-info for a unix socket client.
fn is_lmtp_without_address(view: &View<'_, '_>) -> bool {
    let fields = view.fields;
    let lmtp = fields.protocol.is_some_and(|protocol| protocol.canonical.starts_with("LMTP") || protocol.canonical.starts_with("UTF8LMTP"));
    lmtp && fields.sender.ip.is_none() && fields.sender.address_comment.is_none()
}

fn is_mapi_on_one_host(view: &View<'_, '_>) -> bool {
    let fields = view.fields;
    let same_host = match (fields.from_name, fields.by) {
        (Some(from), Some(by)) => from.eq_ignore_ascii_case(by),
        (None, Some(_)) => true,
        _ => false,
    };
    fields.with_is("mapi") && same_host
}

fn is_http_submission(view: &View<'_, '_>) -> bool {
    !view.fields.has_from && (view.fields.with_is("HTTP") || view.fields.with_is("HTTPS"))
}

fn is_iis_pickup(view: &View<'_, '_>) -> bool {
    let name = view.fields.from_name.unwrap_or_default();
    starts_with_ignore_case(name, "mail ") && super::fields::same_words(name, "mail pickup service")
}

fn is_sendmail_submit(view: &View<'_, '_>) -> bool {
    !view.fields.has_from && view.receiver().iter().any(|comment| comment.ends_with("/Submit") && is_sendmail_version(comment))
}

fn is_postfix_pickup(view: &View<'_, '_>) -> bool {
    view.receiver().iter().any(|comment| starts_with_ignore_case(comment, "Postfix, from userid"))
}

/// `(qmail 4321 invoked by uid 89)` and `(qmail 12345 invoked from network)` are the queue
/// entry qmail writes on its own host. The network hop, if any, has its own field.
fn is_qmail_queue(view: &View<'_, '_>) -> bool {
    let fields = view.fields;
    !fields.has_from && fields.by.is_none() && view.all().iter().any(|comment| starts_with_ignore_case(comment, "qmail ") && comment.contains(" invoked "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sendmail_version_pair() {
        assert!(is_sendmail_version("8.18.1/8.18.1"));
    }

    #[test]
    fn sendmail_version_submit() {
        assert!(is_sendmail_version("8.18.1/8.18.1/Submit"));
    }

    #[test]
    fn sendmail_version_rejects_product() {
        assert!(!is_sendmail_version("Exim 4.97"));
    }

    #[test]
    fn protocol_word_folded() {
        let entry = protocol_word("Microsoft SMTP\n Server");
        assert_eq!(entry.map(|entry| entry.canonical), Some("Microsoft SMTP Server"));
    }

    #[test]
    fn protocol_word_exim_utf8() {
        let entry = protocol_word("utf8esmtps");
        assert_eq!(entry.map(|entry| entry.canonical), Some("UTF8SMTPS"));
    }

    #[test]
    fn by_domains_have_two_labels() {
        for rule in MTA_RULES {
            for signature in rule.signatures {
                if let ByDomain(domain) = signature {
                    assert_eq!(domain.matches('.').count(), 1, "{}: {domain}", rule.mta);
                }
            }
        }
    }

    #[test]
    fn last_two_labels_trailing_dot() {
        assert_eq!(last_two_labels("mx.Google.com."), "Google.com");
    }

    #[test]
    fn rules_have_unique_names() {
        for (index, rule) in MTA_RULES.iter().enumerate() {
            let duplicate = MTA_RULES.iter().skip(index + 1).any(|other| other.mta == rule.mta);
            assert!(!duplicate, "{} appears twice", rule.mta);
        }
    }

    #[test]
    fn marks_use_canonical_words() {
        for rule in MTA_RULES {
            for word in rule.marks_tls_with {
                let known = PROTOCOL_WORDS.iter().any(|entry| entry.canonical == *word && !entry.records_tls);
                assert!(known, "{}: {word} is not a canonical word without TLS", rule.mta);
            }
        }
    }
}
