//! The clause pass: which token is the from name, the by host, the with word, the id,
//! and where the date starts. The sending side's TCP-info is read here too.
//!
//! Text the sender controls (HELO name, reverse-DNS name, recipient, queue ids written
//! by other hosts) reaches this pass as atoms, quoted strings, angle addresses or
//! comments. Only the clause keywords at top level and the comment shapes in
//! [`super::tls`] are ever read as structure, and a clause out of its RFC 5321 order is
//! treated as malformed rather than guessed at.

use super::lexer::{self, Kind, Token};
use super::rules::{self, ProtocolWord};
use std::net::{IpAddr, Ipv4Addr};

#[derive(Clone, Copy, Debug, Eq, PartialEq)]
enum Keyword {
    From,
    By,
    Via,
    With,
    Id,
    For,
}

fn keyword(word: &str) -> Option<Keyword> {
    let first = word.as_bytes().first().map(u8::to_ascii_lowercase);
    let (keyword, text) = match (word.len(), first) {
        (4, Some(b'f')) => (Keyword::From, "from"),
        (2, Some(b'b')) => (Keyword::By, "by"),
        (3, Some(b'v')) => (Keyword::Via, "via"),
        (4, Some(b'w')) => (Keyword::With, "with"),
        (2, Some(b'i')) => (Keyword::Id, "id"),
        (3, Some(b'f')) => (Keyword::For, "for"),
        _ => return None,
    };
    word.eq_ignore_ascii_case(text).then_some(keyword)
}

/// The sending side as its comments (the TCP-info) record it.
#[derive(Debug, Default)]
pub(crate) struct Sender<'a> {
    /// The reverse-DNS name, as written. It is `None` for Postfix's `unknown`.
    pub host: Option<&'a str>,
    /// sendmail marks a reverse-DNS name that did not resolve back with `(may be forged)`.
    pub host_may_be_forged: bool,
    /// The address as written (without brackets or `IPv6:`), and parsed.
    pub ip: Option<(&'a str, IpAddr)>,
    pub helo: Option<&'a str>,
    /// True when `[unix socket]` (Cyrus) or `[local]` (OpenSMTPD) is written in place of the address.
    pub unix_socket: bool,
    /// Token index of the comment that carries the address.
    pub address_comment: Option<usize>,
}

/// One Received field, split into its clauses. Slices borrow the raw field.
#[derive(Debug)]
pub(crate) struct Fields<'t, 'a> {
    pub raw: &'a str,
    pub tokens: &'t [Token<'a>],
    /// Index of the first top-level `;` (the date separator), or `tokens.len()`.
    pub end: usize,
    pub has_from: bool,
    /// The from name as written. It spans folding when it is several words.
    pub from_name: Option<&'a str>,
    pub from_is_literal: bool,
    /// True when the from name is one atom, so it has no whitespace to collapse.
    pub from_is_one_atom: bool,
    pub by_index: Option<usize>,
    pub by: Option<&'a str>,
    /// The with word as written. `Microsoft SMTP Server` spans several atoms.
    pub with_word: Option<&'a str>,
    pub protocol: Option<&'static ProtocolWord>,
    /// True when the with word is one atom, so it has no whitespace to collapse.
    pub with_is_one_atom: bool,
    pub id: Option<&'a str>,
    /// Mimecast's second `with STARTTLS` clause.
    pub starttls: bool,
    /// The RFC 8314 `tls` clause (cipher suite name).
    pub tls_clause: Option<&'a str>,
    /// Hotmail's `over TLS secured channel` after the by host.
    pub over_tls: bool,
    /// The text after the date separator.
    pub date_text: &'a str,
    /// Courier writes `id` after the date.
    pub id_after_date: bool,
    pub sender: Sender<'a>,
    pub malformed: Option<&'static str>,
}

impl<'a> Fields<'_, 'a> {
    fn mark_malformed(&mut self, reason: &'static str) {
        self.malformed.get_or_insert(reason);
    }

    fn token(&self, index: usize) -> Option<&Token<'a>> {
        self.tokens.get(index).filter(|_| index < self.end)
    }

    fn atom(&self, index: usize) -> Option<&'a str> {
        self.token(index).filter(|token| token.kind == Kind::Atom).map(|token| token.text)
    }

    /// Comments before the by clause (or before the date when there is none), with their token index.
    pub fn sender_comments(&self) -> impl Iterator<Item = (usize, &'a str)> + '_ {
        let limit = self.by_index.unwrap_or(self.end);
        self.comments_in(0, limit)
    }

    /// Comments after the by host and before the date.
    pub fn receiver_comments(&self) -> impl Iterator<Item = (usize, &'a str)> + '_ {
        let start = self.by_index.map_or(self.end, |index| index + 1);
        self.comments_in(start, self.end)
    }

    /// Returns every comment before the date.
    pub fn comments(&self) -> impl Iterator<Item = (usize, &'a str)> + '_ {
        self.comments_in(0, self.end)
    }

    fn comments_in(&self, start: usize, end: usize) -> impl Iterator<Item = (usize, &'a str)> + '_ {
        let tokens = self.tokens.get(start..end).unwrap_or_default();
        tokens
            .iter()
            .enumerate()
            .filter(|(_, token)| token.kind == Kind::Comment)
            .map(move |(offset, token)| (start + offset, token.text))
    }

    /// True when the with word matches `word`, ignoring case and folding.
    pub fn with_is(&self, word: &str) -> bool {
        match self.protocol {
            Some(protocol) => protocol.canonical.eq_ignore_ascii_case(word) || protocol.spelling.eq_ignore_ascii_case(word),
            None => self.with_word.is_some_and(|with| same_words(with, word)),
        }
    }
}

/// Compares two texts word by word, ignoring case and the amount of whitespace.
pub(crate) fn same_words(left: &str, right: &str) -> bool {
    if left.eq_ignore_ascii_case(right) {
        return true;
    }
    let has_space = |text: &str| text.bytes().any(|byte| byte.is_ascii_whitespace());
    if !has_space(left) && !has_space(right) {
        return false;
    }
    let mut left_words = left.split_ascii_whitespace();
    let mut right_words = right.split_ascii_whitespace();
    loop {
        match (left_words.next(), right_words.next()) {
            (None, None) => return true,
            (Some(a), Some(b)) if a.eq_ignore_ascii_case(b) => continue,
            _ => return false,
        }
    }
}

/// Reads the clauses of a tokenized field.
pub(crate) fn read<'t, 'a>(raw: &'a str, tokens: &'t [Token<'a>]) -> Fields<'t, 'a> {
    let end = tokens.iter().position(|token| token.kind == Kind::Semicolon).unwrap_or(tokens.len());
    let date_text = tokens.get(end).map_or("", |semicolon| raw.get(semicolon.end()..).unwrap_or_default());

    let mut fields = Fields {
        raw,
        tokens,
        end,
        has_from: false,
        from_name: None,
        from_is_literal: false,
        from_is_one_atom: false,
        by_index: None,
        by: None,
        with_word: None,
        protocol: None,
        with_is_one_atom: false,
        id: None,
        starttls: false,
        tls_clause: None,
        over_tls: false,
        date_text,
        id_after_date: false,
        sender: Sender::default(),
        malformed: None,
    };

    let mut seen_clause = false;
    let mut index = 0;
    while let Some(&token) = fields.token(index) {
        index += 1;
        match token.kind {
            Kind::Comment => continue,
            Kind::Atom => {}
            _ => {
                if !seen_clause {
                    fields.mark_malformed("text before the first clause");
                }
                continue;
            }
        }

        let Some(keyword) = keyword(token.text) else {
            if !seen_clause {
                fields.mark_malformed("text before the first clause");
            } else if fields.by_index.is_some() {
                index += read_extra_clause(&mut fields, token.text, index);
            }
            continue;
        };

        seen_clause = true;
        let after_by_clause = matches!(keyword, Keyword::Via | Keyword::With | Keyword::Id | Keyword::For);
        if after_by_clause && fields.by_index.is_none() && has_by_after(&fields, index) {
            fields.mark_malformed("a via, with, id or for clause before the by clause");
        }

        match keyword {
            Keyword::From => index = read_from(&mut fields, index),
            Keyword::By => {
                if fields.by_index.is_some() {
                    fields.mark_malformed("two by clauses");
                    continue;
                }
                fields.by_index = Some(index - 1);
                if let Some(value) = fields.token(index).filter(|value| matches!(value.kind, Kind::Atom | Kind::Literal)) {
                    fields.by = Some(lexer::slice(raw, value.start(), value.end()));
                    index += 1;
                }
            }
            Keyword::With => index = read_with(&mut fields, index),
            Keyword::Id => {
                if fields.id.is_some() {
                    fields.mark_malformed("two id clauses");
                }
                if let Some(value) = fields.token(index).filter(|value| matches!(value.kind, Kind::Atom | Kind::Angle)) {
                    fields.id.get_or_insert(lexer::slice(raw, value.start(), value.end()));
                    index += 1;
                }
            }
            Keyword::For => {
                let value = fields.token(index).map(|value| value.kind);
                if matches!(value, Some(Kind::Atom | Kind::Angle | Kind::Quoted)) {
                    index += 1;
                }
                // An Exim-style quoted local part: `for "a b"@example.org`.
                if value == Some(Kind::Quoted) && fields.atom(index).is_some_and(|atom| atom.starts_with('@')) {
                    index += 1;
                }
            }
            Keyword::Via => {
                if fields.atom(index).is_some() {
                    index += 1;
                }
            }
        }
    }

    read_date_tail(&mut fields);
    let (sender, address_comments) = read_sender(&fields);
    fields.sender = sender;
    // A sender can only add a second address-bearing comment through a HELO name with
    // spaces and parentheses, and that comment would claim an address it does not have.
    if address_comments > 1 {
        fields.mark_malformed("more than one sending address");
    }
    fields
}

/// True when a `by` keyword follows token `index`, before the date.
fn has_by_after(fields: &Fields<'_, '_>, index: usize) -> bool {
    let tokens = fields.tokens.get(index..fields.end).unwrap_or_default();
    tokens.iter().any(|token| token.kind == Kind::Atom && keyword(token.text) == Some(Keyword::By))
}

/// Reads the from name after the `from` at `index - 1`, and returns the next token index.
fn read_from(fields: &mut Fields<'_, '_>, mut index: usize) -> usize {
    if fields.has_from || fields.by_index.is_some() {
        fields.mark_malformed("a from clause after another from or by clause");
        return index;
    }
    fields.has_from = true;

    let Some(first) = fields.token(index).copied() else { return index };
    match first.kind {
        Kind::Literal => {
            fields.from_is_literal = true;
            fields.from_name = Some(lexer::slice(fields.raw, first.start(), first.end()));
            index + 1
        }
        Kind::Atom => {
            // The first word is the name even if it spells a keyword. Exchange's
            // `from mail pickup service by` continues over several words.
            let mut last = first;
            index += 1;
            while let Some(&next) = fields.token(index) {
                if next.kind != Kind::Atom || keyword(next.text).is_some() {
                    break;
                }
                last = next;
                index += 1;
            }
            fields.from_name = Some(lexer::slice(fields.raw, first.start(), last.end()));
            fields.from_is_one_atom = last.start() == first.start();
            index
        }
        _ => index,
    }
}

/// Reads the with word after the `with` at `index - 1`, and returns the next token index.
fn read_with(fields: &mut Fields<'_, '_>, mut index: usize) -> usize {
    let Some(first) = fields.token(index).copied().filter(|token| token.kind == Kind::Atom) else {
        return index;
    };
    index += 1;

    if fields.with_word.is_some() {
        if first.text.eq_ignore_ascii_case("STARTTLS") {
            fields.starttls = true;
        } else {
            fields.mark_malformed("two with clauses");
        }
        return index;
    }

    // Microsoft writes `with Microsoft SMTP Server` and `with Microsoft SMTPSVC(6.0...)`:
    // the with word runs to the next comment or clause.
    let mut last = first;
    if first.text.eq_ignore_ascii_case("Microsoft") {
        while let Some(&next) = fields.token(index) {
            if next.kind != Kind::Atom || keyword(next.text).is_some() {
                break;
            }
            last = next;
            index += 1;
        }
    }
    let word = lexer::slice(fields.raw, first.start(), last.end());
    fields.with_word = Some(word);
    fields.with_is_one_atom = last.start() == first.start();
    fields.protocol = rules::protocol_word(word);
    index
}

/// Reads a non-registered clause after the by clause: RFC 8314 `tls <suite>` and
/// Hotmail's `over TLS secured channel`. `index` is the token after `name`. Returns
/// how many value tokens the clause has.
fn read_extra_clause(fields: &mut Fields<'_, '_>, name: &str, index: usize) -> usize {
    if name.eq_ignore_ascii_case("tls") {
        let Some(suite) = fields.atom(index) else { return 0 };
        fields.tls_clause.get_or_insert(suite);
        return 1;
    }
    if name.eq_ignore_ascii_case("over") {
        let words = ["TLS", "secured", "channel"];
        let matches = words.iter().enumerate().all(|(offset, word)| fields.atom(index + offset).is_some_and(|atom| atom.eq_ignore_ascii_case(word)));
        fields.over_tls |= matches;
        return if matches { words.len() } else { 0 };
    }
    0
}

/// Checks the text after the date separator. A TLS word there is malformed, because no
/// MTA writes one after the date, and Courier's trailing `id` is read.
fn read_date_tail(fields: &mut Fields<'_, '_>) {
    let text = fields.date_text;
    let words = DateTailWords::of(text);
    if words.tls {
        fields.mark_malformed("TLS text after the date separator");
    }

    // The date is read here only to find where Courier's `id` starts after it.
    if !words.id {
        return;
    }
    let Some(date) = super::date::parse(text) else { return };
    let mut rest = text.get(date.end..).unwrap_or_default().split_ascii_whitespace();
    if rest.next().is_some_and(|word| word.eq_ignore_ascii_case("id"))
        && let Some(id) = rest.next()
    {
        fields.id.get_or_insert(id);
        fields.id_after_date = true;
    }
}

/// The TLS words that make text after the date separator malformed, lower case.
const DATE_TAIL_TLS_WORDS: [&str; 6] = ["tls", "ssl", "cipher", "smtps", "lmtps", "https"];

/// True for the first letters of [`DATE_TAIL_TLS_WORDS`] and of `id`, either case.
static DATE_TAIL_FIRST_LETTERS: [bool; 256] = {
    let mut table = [false; 256];
    let letters = b"tTsScClLhHiI";
    let mut index = 0;
    while index < letters.len() {
        table[letters[index] as usize] = true;
        index += 1;
    }
    table
};

/// The words found by one pass over the text after the date separator, ignoring case.
struct DateTailWords {
    /// One of [`DATE_TAIL_TLS_WORDS`].
    tls: bool,
    /// `id`, as Courier writes after the date.
    id: bool,
}

impl DateTailWords {
    fn of(text: &str) -> Self {
        let bytes = text.as_bytes();
        let mut words = DateTailWords { tls: false, id: false };
        for (start, &byte) in bytes.iter().enumerate() {
            if !DATE_TAIL_FIRST_LETTERS[usize::from(byte)] {
                continue;
            }
            let rest = bytes.get(start..).unwrap_or_default();
            let first = byte.to_ascii_lowercase();
            if first == b'i' {
                words.id |= rest.get(1).is_some_and(|next| next.eq_ignore_ascii_case(&b'd'));
                continue;
            }
            words.tls |= DATE_TAIL_TLS_WORDS
                .iter()
                .filter(|word| word.as_bytes().first() == Some(&first))
                .any(|word| rest.get(..word.len()).is_some_and(|head| head.eq_ignore_ascii_case(word.as_bytes())));
        }
        words
    }
}

/// Returns the address in `text` (an address literal's content or a bare address),
/// without an `IPv6:` prefix, a zone id or a port after the literal.
pub(crate) fn address(text: &str) -> Option<&str> {
    parse_address(text).map(|(text, _)| text)
}

/// Like [`address`], also returning the parsed address.
pub(crate) fn parse_address(text: &str) -> Option<(&str, IpAddr)> {
    let text = text.trim_ascii();
    // Most words are names: an address starts with a hex digit, `:` or `IPv6:`.
    if !text.bytes().next().is_some_and(|byte| byte.is_ascii_hexdigit() || matches!(byte, b':' | b'I' | b'i')) {
        return None;
    }
    let text = match text.get(..5) {
        Some(prefix) if prefix.eq_ignore_ascii_case("IPv6:") => text.get(5..).unwrap_or_default(),
        _ => text,
    };
    let text = match text.bytes().position(|byte| byte == b'%') {
        Some(zone) => text.get(..zone).unwrap_or_default().trim_ascii(),
        None => text,
    };
    // Most words are names, so reject them before the full address parse.
    if text.is_empty() || !text.bytes().all(|byte| byte.is_ascii_hexdigit() || matches!(byte, b':' | b'.')) {
        return None;
    }
    if let Some(ip) = dotted_quad(text) {
        return Some((text, IpAddr::V4(ip)));
    }
    text.parse::<IpAddr>().ok().map(|ip| (text, ip))
}

/// Reads the common IPv4 form, four decimal octets without leading zeros, faster than the
/// general parser. Anything else is `None`, and the general parser decides.
fn dotted_quad(text: &str) -> Option<Ipv4Addr> {
    let mut octets = [0u8; 4];
    let mut count = 0;
    let mut value = 0u32;
    let mut digits = 0;
    for &byte in text.as_bytes() {
        if byte == b'.' {
            *octets.get_mut(count)? = u8::try_from(value).ok().filter(|_| digits > 0)?;
            count += 1;
            (value, digits) = (0, 0);
        } else if byte.is_ascii_digit() && digits < 3 && !(digits == 1 && value == 0) {
            value = value * 10 + u32::from(byte - b'0');
            digits += 1;
        } else {
            return None;
        }
    }
    *octets.get_mut(count).filter(|_| count == 3)? = u8::try_from(value).ok().filter(|_| digits > 0)?;
    Some(Ipv4Addr::from(octets))
}

/// Returns the content of a `[...]` word, without what follows the `]` (Exim's `:port`).
fn literal_content(word: &str) -> Option<&str> {
    let inner = word.strip_prefix('[')?;
    Some(inner.split(']').next().unwrap_or_default())
}

/// The longest TCP-info prefix read. A reverse-DNS name is at most 253 bytes.
const TCP_INFO_MAX_LEN: usize = 320;

/// Reads the sending side's comments. Returns the sender and how many of its comments
/// carry an address.
fn read_sender<'a>(fields: &Fields<'_, 'a>) -> (Sender<'a>, usize) {
    let mut sender = Sender::default();
    let mut address_comments = 0;

    for (index, text) in fields.sender_comments() {
        let mut carries_address = false;
        let mut previous: Option<&'a str> = None;
        // TCP-info is short: `(name [address] (may be forged))`, `([address]:port helo=name)`,
        // `(account user HELO name)`. Words after the fourth, or past the first
        // TCP_INFO_MAX_LEN bytes, are never read.
        let text = lexer::prefix(text, TCP_INFO_MAX_LEN);
        for (position, word) in lexer::comment_words(text).enumerate().take(4) {
            if let Some(content) = literal_content(word) {
                let content = content.trim();
                if content.eq_ignore_ascii_case("unix socket") || content.eq_ignore_ascii_case("local") {
                    sender.unix_socket = true;
                    carries_address = true;
                } else if let Some(ip) = parse_address(content) {
                    carries_address = true;
                    sender.ip.get_or_insert(ip);
                    // Postfix and sendmail write `(name [address])`, and `unknown` when
                    // the address has no verified name.
                    let name = previous.filter(|name| position == 1 && !name.eq_ignore_ascii_case("unknown"));
                    if let Some(name) = name.filter(|name| address(name).is_none()) {
                        sender.host.get_or_insert(name);
                    }
                }
            } else if let Some(ip) = if position == 0 { parse_address(word) } else { None } {
                carries_address = true;
                sender.ip.get_or_insert(ip);
            } else if word.eq_ignore_ascii_case("(may be forged)") {
                sender.host_may_be_forged = true;
            } else if let Some(helo) = strip_prefix_ignore_case(word, "helo=") {
                sender.helo.get_or_insert(helo);
            } else if previous.is_some_and(|verb| ["HELO", "EHLO", "LHLO"].iter().any(|helo| verb.eq_ignore_ascii_case(helo))) {
                sender.helo.get_or_insert(word);
            }
            previous = Some(word);
        }

        if carries_address {
            address_comments += 1;
            sender.address_comment = Some(index);
        }
    }

    if sender.ip.is_none() {
        let name = fields.from_name.unwrap_or_default();
        sender.ip = if fields.from_is_literal { literal_content(name).and_then(parse_address) } else { parse_address(name) };
    }
    (sender, address_comments)
}

fn strip_prefix_ignore_case<'a>(word: &'a str, prefix: &str) -> Option<&'a str> {
    let head = word.get(..prefix.len())?;
    let rest = word.get(prefix.len()..)?;
    (head.eq_ignore_ascii_case(prefix) && !rest.is_empty()).then_some(rest)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_fields<R>(raw: &str, check: impl FnOnce(&Fields<'_, '_>) -> R) -> R {
        let mut tokens = Vec::new();
        let _ = lexer::tokenize(raw, &mut tokens);
        let fields = read(raw, &tokens);
        check(&fields)
    }

    #[test]
    fn address_ipv6_prefix() {
        assert_eq!(address("IPv6:2001:db8::1"), Some("2001:db8::1"));
    }

    #[test]
    fn address_zone() {
        assert_eq!(address("fe80::1%4"), Some("fe80::1"));
    }

    #[test]
    fn dotted_quad_agrees_with_std() {
        for text in ["192.0.2.1", "0.0.0.0", "255.255.255.255", "256.1.1.1", "01.2.3.4", "1.2.3", "1.2.3.4.5", "1..3.4", "1.2.3.4a", ""] {
            let std_reading = text.parse::<Ipv4Addr>().ok();
            let fast_reading = dotted_quad(text);
            assert!(fast_reading.is_none() || fast_reading == std_reading, "{text}");
            assert_eq!(parse_address(text).map(|(_, ip)| ip), std_reading.map(IpAddr::V4), "{text}");
        }
    }

    #[test]
    fn address_name() {
        assert_eq!(address("mail.example.net"), None);
    }

    #[test]
    fn from_multi_word() {
        let name = with_fields("from mail pickup service by x with y;", |fields| fields.from_name.map(str::to_string));
        assert_eq!(name.as_deref(), Some("mail pickup service"));
    }

    #[test]
    fn with_before_by_malformed() {
        let malformed = with_fields("from x with ESMTPS (u [1.2.3.4]) by mx with ESMTP id 1;", |fields| fields.malformed);
        assert!(malformed.is_some());
    }

    #[test]
    fn two_addresses_malformed() {
        let malformed = with_fields("from x (a [127.0.0.1]) (unknown [192.0.2.1]) by mx with ESMTP;", |fields| fields.malformed);
        assert_eq!(malformed, Some("more than one sending address"));
    }

    #[test]
    fn exim_port_literal() {
        let ip = with_fields("from a ([192.0.2.35]:52313) by b with esmtps;", |fields| fields.sender.ip.map(|(text, _)| text.to_string()));
        assert_eq!(ip.as_deref(), Some("192.0.2.35"));
    }
}
