//! Tokenizer for one Received field value.
//!
//! The field is split at top level into atoms, address literals, quoted strings,
//! angle addresses, comments and `;`. Comments nest, and quoted strings are opaque both
//! at top level and inside comments, so a `)` or a clause word inside a quoted local
//! part or a quoted certificate CN cannot end a comment or start a clause.
//! Every delimiter is ASCII, so every slice boundary falls on a char boundary.

/// The kind of one top-level token.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub(crate) enum Kind {
    Atom,
    /// `[...]`, text without the brackets.
    Literal,
    /// `"..."`, text without the quotes.
    Quoted,
    /// `<...>`, text without the angle brackets.
    Angle,
    /// `(...)`, text without the outer parentheses. Nested comments stay in the text.
    Comment,
    Semicolon,
}

#[derive(Clone, Copy, Debug)]
pub(crate) struct Token<'a> {
    pub kind: Kind,
    pub text: &'a str,
    /// Byte offset of the token's first byte (its opening delimiter, if any). Offsets are
    /// `u32` to keep a token at 32 bytes, which is safe because fields over `MAX_FIELD_LEN`
    /// are not parsed.
    start: u32,
    /// Byte offset just past the token.
    end: u32,
}

impl Token<'_> {
    pub fn start(&self) -> usize {
        self.start as usize
    }

    pub fn end(&self) -> usize {
        self.end as usize
    }
}

/// Tokens a typical field has. At 32 bytes a token, this buffer stays within the size
/// that glibc's allocator serves from its per-thread cache; it grows for longer fields.
pub(crate) const TYPICAL_TOKENS: usize = 32;

fn offset(value: usize) -> u32 {
    u32::try_from(value).unwrap_or(u32::MAX)
}

/// A structural error. The tokens read before it are kept.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub(crate) enum LexError {
    UnbalancedParentheses,
    UnclosedQuote,
    UnclosedAngle,
    UnclosedLiteral,
}

impl LexError {
    pub fn describe(self) -> &'static str {
        match self {
            Self::UnbalancedParentheses => "unbalanced parentheses",
            Self::UnclosedQuote => "an unclosed quoted string",
            Self::UnclosedAngle => "an unclosed angle address",
            Self::UnclosedLiteral => "an unclosed address literal",
        }
    }
}

fn is_space(byte: u8) -> bool {
    matches!(byte, b' ' | b'\t' | b'\r' | b'\n')
}

/// Builds a 256-entry table that is true for the given bytes.
const fn byte_table(bytes: &[u8]) -> [bool; 256] {
    let mut table = [false; 256];
    let mut index = 0;
    while index < bytes.len() {
        table[bytes[index] as usize] = true;
        index += 1;
    }
    table
}

/// Bytes that end an atom: whitespace and the delimiters that start another token.
static ATOM_END: [bool; 256] = byte_table(b" \t\r\n()\"<[;");
/// Bytes that end a word inside a comment, or need a closer look there.
static WORD_SPECIAL: [bool; 256] = byte_table(b" \t\r\n,([\"");

/// Returns the offset of the first byte at or after `start` that equals one of `needles`.
///
/// Reads eight bytes at a time: a byte equal to a needle becomes zero after the XOR,
/// and the classic zero-byte test flags it. The lowest flagged byte is always a real
/// match (only bytes above a real zero can be flagged falsely), so the result is exact.
fn find_any<const N: usize>(bytes: &[u8], start: usize, needles: [u8; N]) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    let mut index = start;
    while let Some(chunk) = bytes.get(index..index + 8) {
        let word = u64::from_le_bytes(<[u8; 8]>::try_from(chunk).unwrap_or_default());
        let mut flags = 0;
        for needle in needles {
            let masked = word ^ (ONES * u64::from(needle));
            flags |= masked.wrapping_sub(ONES) & !masked & HIGHS;
        }
        if flags != 0 {
            return Some(index + (flags.trailing_zeros() / 8) as usize);
        }
        index += 8;
    }
    let rest = bytes.get(index..)?;
    rest.iter().position(|byte| needles.contains(byte)).map(|offset| index + offset)
}

/// Returns the offset just past the atom starting at `start`.
///
/// Eight bytes at a time, every byte up to `)` (0x29) is a candidate, which covers
/// whitespace, `"`, `(` and `)`, and `;`, `<` and `[` are compared exactly. A candidate
/// that is not in [`ATOM_END`] (such as `!` or `%`) is skipped.
fn find_atom_end(bytes: &[u8], start: usize) -> usize {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    let mut index = start;
    while let Some(chunk) = bytes.get(index..index + 8) {
        let word = u64::from_le_bytes(<[u8; 8]>::try_from(chunk).unwrap_or_default());
        let mut flags = word.wrapping_sub(ONES * 0x2A) & !word & HIGHS;
        for needle in [b';', b'<', b'['] {
            let masked = word ^ (ONES * u64::from(needle));
            flags |= masked.wrapping_sub(ONES) & !masked & HIGHS;
        }
        if flags == 0 {
            index += 8;
            continue;
        }
        let candidate = index + (flags.trailing_zeros() / 8) as usize;
        if bytes.get(candidate).is_some_and(|&byte| ends_atom(byte)) {
            return candidate;
        }
        index = candidate + 1;
    }
    find(bytes, index, &ATOM_END).unwrap_or(bytes.len())
}

/// Returns the offset of the first byte at or after `start` that is true in `table`.
fn find(bytes: &[u8], start: usize, table: &[bool; 256]) -> Option<usize> {
    let rest = bytes.get(start..)?;
    rest.iter().position(|&byte| table[usize::from(byte)]).map(|offset| start + offset)
}

fn ends_atom(byte: u8) -> bool {
    ATOM_END[usize::from(byte)]
}

/// Returns the slice `start..end` of `text`, or `""` if the range is not on char boundaries.
pub(crate) fn slice(text: &str, start: usize, end: usize) -> &str {
    text.get(start..end).unwrap_or_default()
}

/// Returns the first `max` bytes of `text`, shortened to a char boundary.
pub(crate) fn prefix(text: &str, max: usize) -> &str {
    let mut end = max.min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    slice(text, 0, end)
}

/// Splits `raw` into top-level tokens, appending them to `tokens`, up to and including the
/// first top-level `;` (the date separator). The date after it is not tokenized.
///
/// On an unclosed comment, quote, angle address or literal, the open token runs to the
/// end of the input and is still appended. A stray `)` is skipped. Either way the first
/// error is returned after the clauses were read.
pub(crate) fn tokenize<'a>(raw: &'a str, tokens: &mut Vec<Token<'a>>) -> Result<(), LexError> {
    let bytes = raw.as_bytes();
    let mut error = None;
    let mut index = 0;

    while let Some(&byte) = bytes.get(index) {
        if is_space(byte) {
            index += 1;
            continue;
        }

        let start = index;
        let (kind, end, text_end, failure) = match byte {
            b'(' => {
                let (end, closed) = skip_comment(bytes, start);
                let failure = (!closed).then_some(LexError::UnbalancedParentheses);
                (Kind::Comment, end, if closed { end - 1 } else { end }, failure)
            }
            b'"' => {
                let (end, closed) = skip_quoted(bytes, start);
                let failure = (!closed).then_some(LexError::UnclosedQuote);
                (Kind::Quoted, end, if closed { end - 1 } else { end }, failure)
            }
            b'<' => {
                let (end, closed) = skip_angle(bytes, start);
                let failure = (!closed).then_some(LexError::UnclosedAngle);
                (Kind::Angle, end, if closed { end - 1 } else { end }, failure)
            }
            b'[' => match find_any(bytes, start, *b"]") {
                Some(close) => (Kind::Literal, close + 1, close, None),
                None => (Kind::Literal, bytes.len(), bytes.len(), Some(LexError::UnclosedLiteral)),
            },
            b';' => {
                // The date follows, which the date reader reads from the raw text, so no
                // token after this one is ever looked at.
                tokens.push(Token { kind: Kind::Semicolon, text: slice(raw, start, start + 1), start: offset(start), end: offset(start + 1) });
                break;
            }
            b')' => {
                error.get_or_insert(LexError::UnbalancedParentheses);
                index += 1;
                continue;
            }
            _ => {
                let end = find_atom_end(bytes, start);
                (Kind::Atom, end, end, None)
            }
        };

        let text_start = if matches!(kind, Kind::Atom | Kind::Semicolon) { start } else { start + 1 };
        tokens.push(Token { kind, text: slice(raw, text_start, text_end), start: offset(start), end: offset(end) });
        if let Some(failure) = failure {
            error.get_or_insert(failure);
        }
        index = end;
    }

    match error {
        Some(error) => Err(error),
        None => Ok(()),
    }
}

/// Skips a comment starting at `start` (an opening parenthesis). Returns the offset just
/// past it and whether it was closed.
pub(crate) fn skip_comment(bytes: &[u8], start: usize) -> (usize, bool) {
    let mut depth = 0usize;
    let mut index = start;
    while let Some(found) = find_any(bytes, index, *b"\\\"()") {
        index = found;
        match bytes.get(index) {
            Some(b'\\') => index += 2,
            Some(b'"') => {
                let (end, closed) = skip_quoted(bytes, index);
                if !closed {
                    return (bytes.len(), false);
                }
                index = end;
            }
            Some(b'(') => {
                depth += 1;
                index += 1;
            }
            _ => {
                depth = depth.saturating_sub(1);
                index += 1;
                if depth == 0 {
                    return (index, true);
                }
            }
        }
    }
    (bytes.len(), false)
}

/// Skips a quoted string starting at `start` (a `"`), honouring backslash escapes.
fn skip_quoted(bytes: &[u8], start: usize) -> (usize, bool) {
    let mut index = start + 1;
    while let Some(found) = find_any(bytes, index, *b"\\\"") {
        if bytes.get(found) == Some(&b'"') {
            return (found + 1, true);
        }
        index = found + 2;
    }
    (bytes.len(), false)
}

/// Skips an angle address starting at `start` (a `<`), with quoted local parts opaque.
fn skip_angle(bytes: &[u8], start: usize) -> (usize, bool) {
    let mut index = start + 1;
    while let Some(&byte) = bytes.get(index) {
        match byte {
            b'"' => {
                let (end, closed) = skip_quoted(bytes, index);
                if !closed {
                    return (bytes.len(), false);
                }
                index = end;
            }
            b'>' => return (index + 1, true),
            _ => index = find_any(bytes, index, *b"\">").unwrap_or(bytes.len()),
        }
    }
    (bytes.len(), false)
}

/// Iterates over the words at the top level of a comment's text.
///
/// Words are separated by whitespace and commas. A nested comment is one word with its
/// parentheses, and `[...]` and `"..."` stay inside the word they start or continue, so
/// `[unix socket]` and `[192.0.2.1]:25` are single words.
pub(crate) fn comment_words(text: &str) -> CommentWords<'_> {
    CommentWords { text, index: 0 }
}

pub(crate) struct CommentWords<'a> {
    text: &'a str,
    index: usize,
}

impl<'a> Iterator for CommentWords<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        let bytes = self.text.as_bytes();
        while bytes.get(self.index).is_some_and(|&b| is_space(b) || b == b',') {
            self.index += 1;
        }
        let start = self.index;
        let first = *bytes.get(start)?;

        if first == b'(' {
            let (end, _) = skip_comment(bytes, start);
            self.index = end;
            return Some(slice(self.text, start, end));
        }

        let mut index = start;
        loop {
            let Some(found) = find(bytes, index, &WORD_SPECIAL) else {
                index = bytes.len();
                break;
            };
            match bytes.get(found) {
                Some(b'[') => {
                    let close = bytes.get(found..).and_then(|rest| rest.iter().position(|&byte| byte == b']'));
                    index = close.map_or(bytes.len(), |offset| found + offset + 1);
                }
                Some(b'"') => index = skip_quoted(bytes, found).0,
                _ => {
                    index = found;
                    break;
                }
            }
        }
        self.index = index;
        Some(slice(self.text, start, index))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(raw: &str) -> (Vec<(Kind, &str)>, Result<(), LexError>) {
        let mut tokens = Vec::new();
        let result = tokenize(raw, &mut tokens);
        (tokens.iter().map(|token| (token.kind, token.text)).collect(), result)
    }

    #[test]
    fn tokenize_nested_comment() {
        let (tokens, result) = kinds("from a (b [1.2.3.4] (c (d))) by e;x");
        assert_eq!(result, Ok(()));
        assert_eq!(tokens[2], (Kind::Comment, "b [1.2.3.4] (c (d))"));
        assert_eq!(tokens[4], (Kind::Atom, "e"));
        assert_eq!(tokens[5], (Kind::Semicolon, ";"));
    }

    #[test]
    fn tokenize_quoted_parenthesis_in_comment() {
        let (tokens, result) = kinds("(envelope-from <\"x) (TLS1.3) (y\"@z>) id 1");
        assert_eq!(result, Ok(()));
        assert_eq!(tokens.len(), 3);
        assert_eq!(tokens[0].0, Kind::Comment);
    }

    #[test]
    fn tokenize_quoted_angle() {
        let (tokens, _) = kinds("for <\"with ESMTPS\"@example.org>;");
        assert_eq!(tokens[1], (Kind::Angle, "\"with ESMTPS\"@example.org"));
    }

    #[test]
    fn tokenize_unclosed_comment() {
        let (tokens, result) = kinds("from a (b [1.2.3.4] by c");
        assert_eq!(result, Err(LexError::UnbalancedParentheses));
        assert_eq!(tokens[2], (Kind::Comment, "b [1.2.3.4] by c"));
    }

    #[test]
    fn tokenize_stray_close() {
        let (tokens, result) = kinds("from a) by b");
        assert_eq!(result, Err(LexError::UnbalancedParentheses));
        assert_eq!(tokens.len(), 4);
    }

    #[test]
    fn atom_end_long() {
        let text = b"abcdefghijklmnop!qrstuvwxyz%0123456789 tail";
        assert_eq!(find_atom_end(text, 0), 38);
    }

    #[test]
    fn atom_end_delimiters() {
        for (text, expected) in [(&b"abc;d"[..], 3), (b"abcdefgh<", 8), (b"abcdefghij[", 10), (b"x\ty", 1), (b"\xc3\xa9abcdefgh(", 10), (b"abc", 3)] {
            assert_eq!(find_atom_end(text, 0), expected, "{text:?}");
        }
    }

    #[test]
    fn tokenize_literal_with_port() {
        let (tokens, _) = kinds("from [IPv6:2001:db8::1]:25 by x");
        assert_eq!(tokens[1], (Kind::Literal, "IPv6:2001:db8::1"));
        assert_eq!(tokens[2], (Kind::Atom, ":25"));
    }

    #[test]
    fn prefix_char_boundary() {
        assert_eq!(prefix("aé", 2), "a");
    }

    #[test]
    fn comment_words_split() {
        let words: Vec<&str> = comment_words("a [unix socket], b=c (d e)f [1.2.3.4]:5").collect();
        assert_eq!(words, ["a", "[unix socket]", "b=c", "(d e)", "f", "[1.2.3.4]:5"]);
    }

    #[test]
    fn comment_words_non_ascii() {
        let words: Vec<&str> = comment_words("Client CN \"Ünïcode � Relay\", é").collect();
        assert_eq!(words, ["Client", "CN", "\"Ünïcode � Relay\"", "é"]);
    }
}
