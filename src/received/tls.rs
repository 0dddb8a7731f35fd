//! The comment shapes in which MTAs record TLS, and the version and verify vocabularies.
//!
//! Every shape is anchored at the start of a comment, so TLS words inside other comments
//! (an envelope sender, a certificate CN, a HELO name) never match.

use super::lexer::comment_words;

/// The details a TLS comment records. Fields the comment does not state are `None`.
#[derive(Clone, Copy, Debug, Default, Eq, PartialEq)]
pub(crate) struct TlsDetails<'a> {
    pub version: Option<&'static str>,
    pub cipher: Option<&'a str>,
    pub bits: Option<u32>,
    pub verify: Option<&'static str>,
}

impl<'a> TlsDetails<'a> {
    /// Fills the fields still missing from `other`.
    pub fn merge(&mut self, other: TlsDetails<'a>) {
        self.version = self.version.or(other.version);
        self.cipher = self.cipher.or(other.cipher);
        self.bits = self.bits.or(other.bits);
        self.verify = self.verify.or(other.verify);
    }
}

/// A comment that records TLS: its shape (for the evidence sentence) and details.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub(crate) struct TlsComment<'a> {
    pub shape: &'static str,
    pub details: TlsDetails<'a>,
}

/// Maps a version as MTAs spell it (`TLSv1.3`, `TLS1_3`, `TLS1.3`, `TLS-1.0`, `TLSv1`,
/// `SSLv3`) to `TLSv1.0`..`TLSv1.3` or `SSLv3`. Returns `None` for anything else,
/// including OpenSSL's cipher family `TLSv1/SSLv3`, which is not a negotiated version.
pub(crate) fn version(text: &str) -> Option<&'static str> {
    let text = text.trim();
    let bytes = text.as_bytes();
    let (family, rest) = (bytes.get(..3)?, bytes.get(3..)?);

    if family.eq_ignore_ascii_case(b"SSL") {
        let rest = rest.strip_prefix(b"v").or_else(|| rest.strip_prefix(b"V")).unwrap_or(rest);
        return matches!(rest, b"3" | b"3.0").then_some("SSLv3");
    }
    if !family.eq_ignore_ascii_case(b"TLS") {
        return None;
    }

    let rest = match rest.first() {
        Some(b'v' | b'V' | b'-' | b'_') => rest.get(1..)?,
        _ => rest,
    };
    match rest {
        b"1" => Some("TLSv1.0"),
        [b'1', b'.' | b'_' | b'-', minor] => match minor {
            b'0' => Some("TLSv1.0"),
            b'1' => Some("TLSv1.1"),
            b'2' => Some("TLSv1.2"),
            b'3' => Some("TLSv1.3"),
            _ => None,
        },
        _ => None,
    }
}

/// True for a word that names a TLS or SSL protocol version or family.
fn names_protocol(word: &str) -> bool {
    word.get(..3).is_some_and(|family| family.eq_ignore_ascii_case("TLS") || family.eq_ignore_ascii_case("SSL"))
}

/// Maps sendmail's `{verify}` value (also written as `verify=` in its Received field) to
/// the `verify=` token: `ok`, `fail`, `no-cert`, `not-requested` or `unknown`.
pub fn verify_token(value: &str) -> &'static str {
    const TOKENS: [(&str, &str); 8] = [
        ("OK", "ok"),
        ("TRUSTED", "ok"),
        ("FAIL", "fail"),
        ("TEMP", "fail"),
        ("PROTOCOL", "fail"),
        ("SOFTWARE", "fail"),
        ("NO", "no-cert"),
        ("NOT", "not-requested"),
    ];
    let value = value.trim();
    TOKENS.iter().find(|(name, _)| value.eq_ignore_ascii_case(name)).map_or("unknown", |&(_, token)| token)
}

/// Reads the leading decimal number of `text`, after an optional `(`.
fn leading_number(text: &str) -> Option<u32> {
    let text = text.strip_prefix('(').unwrap_or(text);
    let digits = text.bytes().take_while(u8::is_ascii_digit).count();
    text.get(..digits.min(9))?.parse().ok()
}

fn is_cipher_name(word: &str) -> bool {
    !word.is_empty() && word.bytes().all(|byte| byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.'))
}

/// Reads a comment's text (without the outer parentheses) as a TLS comment.
pub(crate) fn read_comment(text: &str) -> Option<TlsComment<'_>> {
    // Every shape starts with one of these letters, except qmail-tls's `<cipher> encrypted`.
    let first_letter = text.trim_start().bytes().next().map(|byte| byte.to_ascii_lowercase());
    if !matches!(first_letter, Some(b'u' | b'v' | b't' | b'a' | b'c' | b's')) && !text.trim_end().ends_with("encrypted") {
        return None;
    }
    let mut words = comment_words(text);
    let first = words.next()?;
    let second = words.next();

    if first.eq_ignore_ascii_case("using") {
        return read_using(second?, words);
    }
    if first.get(..8).is_some_and(|key| key.eq_ignore_ascii_case("version=")) {
        return read_key_values(comment_words(text));
    }
    if first.eq_ignore_ascii_case("TLS:") || first.eq_ignore_ascii_case("AUTH:") {
        return read_courier(comment_words(text));
    }

    match (second, words.next()) {
        (None, _) if first.eq_ignore_ascii_case("TLS") => Some(TlsComment { shape: "(TLS) marker", details: TlsDetails::default() }),
        (None, _) if version(first).is_some() => {
            let details = TlsDetails { version: version(first), ..TlsDetails::default() };
            Some(TlsComment { shape: "version comment", details })
        }
        (None, _) => read_colon_fields(first),
        (Some(fields), None) if first.eq_ignore_ascii_case("Cipher") => read_colon_fields(fields),
        (Some(last), None) if last.eq_ignore_ascii_case("encrypted") && is_cipher_name(first) => {
            let details = TlsDetails { cipher: Some(first), ..TlsDetails::default() };
            Some(TlsComment { shape: "qmail-tls cipher comment", details })
        }
        _ => None,
    }
}

/// Postfix, Stalwart, James, Dovecot and Postini: `using TLSv1.3 with cipher X (256/256 bits) ...`.
fn read_using<'a>(protocol: &'a str, mut words: impl Iterator<Item = &'a str>) -> Option<TlsComment<'a>> {
    if !names_protocol(protocol) {
        return None;
    }
    let mut details = TlsDetails { version: version(protocol), ..TlsDetails::default() };
    let with = words.next();
    let cipher_word = words.next();
    if with.is_some_and(|word| word.eq_ignore_ascii_case("with")) && cipher_word.is_some_and(|word| word.eq_ignore_ascii_case("cipher")) {
        details.cipher = words.next().filter(|cipher| is_cipher_name(cipher));
        details.bits = words.next().filter(|bits| bits.starts_with('(')).and_then(leading_number);
    }
    Some(TlsComment { shape: "using comment", details })
}

/// sendmail, Gmail, old Haraka, Yahoo, Exchange and Mimecast:
/// `version=TLSv1.3 cipher=X bits=256[/256] verify=NO`, separated by spaces or commas.
fn read_key_values<'a>(words: impl Iterator<Item = &'a str>) -> Option<TlsComment<'a>> {
    let mut details = TlsDetails::default();
    let mut records_tls = false;
    for word in words {
        let Some((key, value)) = word.split_once('=') else { continue };
        if key.eq_ignore_ascii_case("version") {
            records_tls |= names_protocol(value);
            details.version = details.version.or(version(value));
        } else if key.eq_ignore_ascii_case("cipher") && is_cipher_name(value) {
            records_tls = true;
            details.cipher = details.cipher.or(Some(value));
        } else if key.eq_ignore_ascii_case("bits") {
            details.bits = details.bits.or(leading_number(value));
        } else if key.eq_ignore_ascii_case("verify") {
            details.verify = details.verify.or(Some(verify_token(value)));
        }
    }
    records_tls.then_some(TlsComment { shape: "version= comment", details })
}

/// Exim before 4.92, Exim 3 and OpenSMTPD: `TLSv1.2:CIPHER:256` with OpenSMTPD's
/// `:YES` or `:NO` for a verified peer certificate.
fn read_colon_fields(word: &str) -> Option<TlsComment<'_>> {
    let mut parts = word.split(':');
    let protocol = parts.next()?;
    let cipher = parts.next()?;
    if !names_protocol(protocol) || !is_cipher_name(cipher) {
        return None;
    }
    let bits = parts.next().and_then(leading_number);
    let verify = parts.next().map(|verified| if verified.eq_ignore_ascii_case("YES") { "ok" } else { "unknown" });
    let details = TlsDetails { version: version(protocol), cipher: Some(cipher), bits, verify };
    Some(TlsComment { shape: "version:cipher:bits comment", details })
}

/// Courier: `TLS: TLSv1.3,256bits,CIPHER`, possibly after `AUTH: method user,`.
fn read_courier<'a>(mut words: impl Iterator<Item = &'a str>) -> Option<TlsComment<'a>> {
    words.find(|word| word.eq_ignore_ascii_case("TLS:"))?;
    let protocol = words.next()?;
    if !names_protocol(protocol) {
        return None;
    }
    let mut details = TlsDetails { version: version(protocol), ..TlsDetails::default() };
    for word in words.take(2) {
        if word.ends_with("bits") {
            details.bits = leading_number(word);
        } else if is_cipher_name(word) {
            details.cipher = Some(word);
        }
    }
    Some(TlsComment { shape: "Courier TLS: comment", details })
}

/// Reads Postfix's client certificate comment that follows its using comment.
pub(crate) fn postfix_verify(text: &str) -> Option<&'static str> {
    if text.eq_ignore_ascii_case("No client certificate requested") {
        return Some("not-requested");
    }
    if text.eq_ignore_ascii_case("Client did not present a certificate") {
        return Some("no-cert");
    }
    if !text.starts_with("Client CN ") && !text.starts_with("Client RPK ") {
        return None;
    }
    let status = comment_words(text).last().unwrap_or_default();
    Some(if status.eq_ignore_ascii_case("(verified OK)") {
        "ok"
    } else if status.eq_ignore_ascii_case("(not verified)") {
        "fail"
    } else {
        "unknown"
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_spellings() {
        let cases = [
            ("TLSv1.3", Some("TLSv1.3")),
            ("TLS1_2", Some("TLSv1.2")),
            ("TLS1.3", Some("TLSv1.3")),
            ("TLS-1.0", Some("TLSv1.0")),
            ("TLSv1", Some("TLSv1.0")),
            ("tlsv1.1", Some("TLSv1.1")),
            ("SSLv3", Some("SSLv3")),
            ("TLSv1/SSLv3", None),
            ("TLSv1.4", None),
            ("TLS", None),
            ("", None),
        ];
        for (text, expected) in cases {
            assert_eq!(version(text), expected, "{text}");
        }
    }

    #[test]
    fn verify_mapping() {
        let cases = [("OK", "ok"), ("TRUSTED", "ok"), ("FAIL", "fail"), ("TEMP", "fail"), ("NO", "no-cert"), ("NOT", "not-requested"), ("NONE", "unknown")];
        for (value, expected) in cases {
            assert_eq!(verify_token(value), expected, "{value}");
        }
    }

    #[test]
    fn using_comment_bits() {
        let comment = read_comment("using TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits)\n\t key-exchange X25519 server-signature RSA-PSS (2048 bits)");
        let details = comment.map(|comment| comment.details);
        assert_eq!(details.and_then(|details| details.bits), Some(256));
        assert_eq!(details.and_then(|details| details.cipher), Some("TLS_AES_256_GCM_SHA384"));
    }

    #[test]
    fn using_without_cipher() {
        let details = read_comment("using TLSv1").map(|comment| comment.details);
        assert_eq!(details.and_then(|details| details.version), Some("TLSv1.0"));
    }

    #[test]
    fn using_non_tls() {
        assert_eq!(read_comment("using a spoon"), None);
    }

    #[test]
    fn key_values_exchange() {
        let details = read_comment("version=TLS1_2,\n cipher=TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384").map(|comment| comment.details);
        assert_eq!(details.and_then(|details| details.version), Some("TLSv1.2"));
        assert_eq!(details.and_then(|details| details.cipher), Some("TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384"));
    }

    #[test]
    fn colon_fields_opensmtpd() {
        let details = read_comment("TLSv1.2:ECDHE-RSA-AES256-GCM-SHA384:256:YES").map(|comment| comment.details);
        assert_eq!(details.and_then(|details| details.verify), Some("ok"));
        assert_eq!(details.and_then(|details| details.bits), Some(256));
    }

    #[test]
    fn courier_after_auth() {
        let details = read_comment("AUTH: PLAIN mona@example.org, TLS: TLSv1.2,128bits,ECDHE-RSA-AES128-GCM-SHA256").map(|comment| comment.details);
        assert_eq!(details.and_then(|details| details.bits), Some(128));
        assert_eq!(details.and_then(|details| details.cipher), Some("ECDHE-RSA-AES128-GCM-SHA256"));
    }

    #[test]
    fn courier_auth_only() {
        assert_eq!(read_comment("AUTH: PLAIN mona@example.org"), None);
    }

    #[test]
    fn envelope_from_not_tls() {
        assert_eq!(read_comment("envelope-from <TLSv1.3@example.net>"), None);
    }

    #[test]
    fn product_not_tls() {
        assert_eq!(read_comment("Exim 4.97"), None);
    }

    #[test]
    fn sentences_are_not_tls_comments() {
        for text in ["Authenticated sender: tls@example.org", "Client CN \"TLSv1.3\", Issuer \"x\" (verified OK)", "sender uses TLS"] {
            assert!(read_comment(text).is_none(), "{text}");
        }
        for text in ["TLS", "TLSv1.2", "TLSv1.2:AES256:256", "Cipher TLSv1.2:AES:256", "AES256-SHA ENCRYPTED", "using TLSv1.3 with cipher X", " TLS, "] {
            assert!(read_comment(text).is_some(), "{text}");
        }
    }

    #[test]
    fn postfix_verify_cn() {
        assert_eq!(postfix_verify("Client CN \"a (verified OK)\", Issuer \"b\" (not verified)"), Some("fail"));
    }
}
