//! The date-time after a Received field's `;`, read as RFC 5322 section 3.3 with its
//! obsolete forms (section 4.3), written out as RFC 3339.
//!
//! mail-parser 0.11 reads a two-digit year as 19xx, so this reader is separate. Its
//! output is the same text as mail-parser's `DateTime::to_rfc3339` (a unit test checks
//! that), written without the formatting machinery because it runs for every hop.

/// A date read from the text after the `;`.
pub(crate) struct ParsedDate {
    pub rfc3339: Rfc3339,
    /// Byte offset just past the date (and its zone), for text that follows it.
    pub end: usize,
}

/// An RFC 3339 date-time (`2025-02-03T13:32:13Z` or `...+01:00`), kept inline so that
/// reading the date of a field allocates nothing.
#[derive(Clone, Copy, Eq, PartialEq)]
pub struct Rfc3339 {
    text: [u8; 25],
    length: u8,
}

impl Rfc3339 {
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(self.text.get(..usize::from(self.length)).unwrap_or_default()).unwrap_or_default()
    }
}

impl std::ops::Deref for Rfc3339 {
    type Target = str;

    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl std::fmt::Debug for Rfc3339 {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self.as_str(), formatter)
    }
}

impl std::fmt::Display for Rfc3339 {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(self.as_str())
    }
}

impl serde::Serialize for Rfc3339 {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

struct Cursor<'a> {
    bytes: &'a [u8],
    index: usize,
}

impl Cursor<'_> {
    /// Skips whitespace and comments, such as the `(UTC)` after a zone.
    fn skip_cfws(&mut self) {
        while let Some(&byte) = self.bytes.get(self.index) {
            match byte {
                b' ' | b'\t' | b'\r' | b'\n' => self.index += 1,
                b'(' => self.index = super::lexer::skip_comment(self.bytes, self.index).0,
                _ => break,
            }
        }
    }

    fn number(&mut self, max_digits: usize) -> Option<(u32, usize)> {
        self.skip_cfws();
        let start = self.index;
        let mut value = 0u32;
        while let Some(&byte) = self.bytes.get(self.index) {
            if !byte.is_ascii_digit() || self.index - start == max_digits {
                break;
            }
            value = value * 10 + u32::from(byte - b'0');
            self.index += 1;
        }
        let digits = self.index - start;
        (digits > 0).then_some((value, digits))
    }

    fn word(&mut self) -> &[u8] {
        self.skip_cfws();
        let start = self.index;
        while self.bytes.get(self.index).is_some_and(u8::is_ascii_alphabetic) {
            self.index += 1;
        }
        self.bytes.get(start..self.index).unwrap_or_default()
    }

    fn eat(&mut self, expected: u8) -> bool {
        self.skip_cfws();
        let found = self.bytes.get(self.index) == Some(&expected);
        if found {
            self.index += 1;
        }
        found
    }
}

const MONTHS: [&[u8]; 12] = [b"jan", b"feb", b"mar", b"apr", b"may", b"jun", b"jul", b"aug", b"sep", b"oct", b"nov", b"dec"];

/// Parses `text` (the part after the `;`) as an RFC 5322 date-time.
///
/// Accepts a missing day of week, a space-padded day, two- and three-digit years
/// (00-49 are 20xx, 50-999 add 1900), missing seconds, obsolete zone names and a
/// trailing zone comment. Returns `None` when a part is missing or out of range.
pub(crate) fn parse(text: &str) -> Option<ParsedDate> {
    let mut cursor = Cursor { bytes: text.as_bytes(), index: 0 };

    cursor.skip_cfws();
    if cursor.bytes.get(cursor.index).is_some_and(u8::is_ascii_alphabetic) {
        cursor.word();
        cursor.eat(b',');
    }

    let (day, _) = cursor.number(2)?;
    let month_word = cursor.word();
    let month = MONTHS.iter().position(|name| month_word.eq_ignore_ascii_case(name))? + 1;
    let (year, year_digits) = cursor.number(4)?;
    let year = match year_digits {
        1 | 2 if year < 50 => year + 2000,
        1..=3 => year + 1900,
        _ => year,
    };

    let (hour, _) = cursor.number(2)?;
    if !cursor.eat(b':') {
        return None;
    }
    let (minute, _) = cursor.number(2)?;
    let second = if cursor.eat(b':') { cursor.number(2)?.0 } else { 0 };

    let zone_minutes = read_zone(&mut cursor);
    let end = cursor.index;

    let valid = (1..=31).contains(&day)
        && (0..=23).contains(&hour)
        && (0..=59).contains(&minute)
        && (0..=60).contains(&second)
        && (1900..=9999).contains(&year)
        && zone_minutes.unsigned_abs() < 24 * 60;
    if !valid {
        return None;
    }

    let rfc3339 = format_rfc3339([year, month as u32, day, hour, minute, second], zone_minutes);
    Some(ParsedDate { rfc3339, end })
}

/// Writes `YYYY-MM-DDTHH:MM:SS` and `Z` for a zero offset or `+HH:MM` / `-HH:MM`.
/// The parts must be in range: the year has four digits, the others two.
fn format_rfc3339(parts: [u32; 6], zone_minutes: i32) -> Rfc3339 {
    fn put(buffer: &mut [u8; 25], at: usize, value: u32, digits: u32) {
        let mut divisor = if digits == 4 { 1000 } else { 10 };
        let mut index = at;
        while divisor > 0 {
            if let Some(slot) = buffer.get_mut(index) {
                *slot = b'0' + ((value / divisor) % 10) as u8;
            }
            divisor /= 10;
            index += 1;
        }
    }

    let [year, month, day, hour, minute, second] = parts;
    let mut buffer = *b"0000-00-00T00:00:00+00:00";
    put(&mut buffer, 0, year, 4);
    put(&mut buffer, 5, month, 2);
    put(&mut buffer, 8, day, 2);
    put(&mut buffer, 11, hour, 2);
    put(&mut buffer, 14, minute, 2);
    put(&mut buffer, 17, second, 2);

    let zone = zone_minutes.unsigned_abs();
    let length = if zone == 0 {
        buffer[19] = b'Z';
        20
    } else {
        buffer[19] = if zone_minutes < 0 { b'-' } else { b'+' };
        put(&mut buffer, 20, zone / 60, 2);
        put(&mut buffer, 23, zone % 60, 2);
        25
    };
    Rfc3339 { text: buffer, length }
}

/// Reads the zone as minutes east of UTC.
///
/// NOTE: a missing or unrecognised zone reads as UTC, which is what RFC 5322 means by
/// `-0000` ("local offset unknown"), so such dates can be off by the sender's offset.
fn read_zone(cursor: &mut Cursor<'_>) -> i32 {
    cursor.skip_cfws();
    let sign = match cursor.bytes.get(cursor.index) {
        Some(b'+') => 1,
        Some(b'-') => -1,
        Some(byte) if byte.is_ascii_alphabetic() => return named_zone(cursor.word()),
        _ => return 0,
    };
    cursor.index += 1;
    let start = cursor.index;
    match cursor.number(4) {
        Some((value, 4)) if cursor.index == start + 4 => {
            let (hours, minutes) = (value / 100, value % 100);
            if minutes > 59 {
                return 24 * 60;
            }
            sign * (hours * 60 + minutes) as i32
        }
        _ => 24 * 60,
    }
}

/// Returns the offset of an obsolete zone name of RFC 5322 section 4.3, in minutes.
/// Military letters and unknown names are `-0000` there, so they read as UTC.
fn named_zone(name: &[u8]) -> i32 {
    const ZONES: [(&[u8], i32); 8] =
        [(b"EDT", -4), (b"EST", -5), (b"CDT", -5), (b"CST", -6), (b"MDT", -6), (b"MST", -7), (b"PDT", -7), (b"PST", -8)];
    let hours = ZONES.iter().find(|(zone, _)| name.eq_ignore_ascii_case(zone)).map_or(0, |&(_, hours)| hours);
    hours * 60
}

#[cfg(test)]
mod tests {
    use super::{format_rfc3339, parse};
    use mail_parser::DateTime;

    #[test]
    fn format_matches_mail_parser() {
        let cases: [([u32; 6], i32); 3] = [([2025, 2, 3, 13, 32, 13], 0), ([1999, 12, 31, 23, 59, 60], -330), ([2007, 1, 4, 0, 0, 0], 60)];
        for (parts, zone) in cases {
            let [year, month, day, hour, minute, second] = parts;
            let reference = DateTime {
                year: year as u16,
                month: month as u8,
                day: day as u8,
                hour: hour as u8,
                minute: minute as u8,
                second: second as u8,
                tz_before_gmt: zone < 0,
                tz_hour: (zone.unsigned_abs() / 60) as u8,
                tz_minute: (zone.unsigned_abs() % 60) as u8,
            };
            assert_eq!(format_rfc3339(parts, zone).as_str(), reference.to_rfc3339());
        }
    }

    fn rfc3339(text: &str) -> Option<String> {
        parse(text).map(|date| date.rfc3339.to_string())
    }

    #[test]
    fn date_full() {
        assert_eq!(rfc3339(" Mon,  3 Feb 2025 13:32:13 +0000 (UTC)").as_deref(), Some("2025-02-03T13:32:13Z"));
    }

    #[test]
    fn date_negative_zone() {
        assert_eq!(rfc3339(" Tue, 18 Feb 2025 03:17:10 -0500 (EST)").as_deref(), Some("2025-02-18T03:17:10-05:00"));
    }

    #[test]
    fn date_two_digit_year_low() {
        assert_eq!(rfc3339(" Mon, 3 Feb 25 10:00:00 GMT").as_deref(), Some("2025-02-03T10:00:00Z"));
    }

    #[test]
    fn date_two_digit_year_high() {
        assert_eq!(rfc3339("3 Feb 99 10:00:00 +0100").as_deref(), Some("1999-02-03T10:00:00+01:00"));
    }

    #[test]
    fn date_three_digit_year() {
        assert_eq!(rfc3339("3 Feb 103 10:00:00 +0000").as_deref(), Some("2003-02-03T10:00:00Z"));
    }

    #[test]
    fn date_without_weekday() {
        assert_eq!(rfc3339(" 12 Feb 2025 13:17:11 -0000").as_deref(), Some("2025-02-12T13:17:11Z"));
    }

    #[test]
    fn date_obsolete_zone() {
        assert_eq!(rfc3339(" Mon, 23 Feb 2009 08:59:14 PST").as_deref(), Some("2009-02-23T08:59:14-08:00"));
    }

    #[test]
    fn date_folded() {
        assert_eq!(rfc3339(" Mon, 3\n Feb 2025 10:00:03 +0000").as_deref(), Some("2025-02-03T10:00:03Z"));
    }

    #[test]
    fn date_missing_zone() {
        assert_eq!(rfc3339(" Sun, 26 Dec 2010 17:43:33").as_deref(), Some("2010-12-26T17:43:33Z"));
    }

    #[test]
    fn date_bad_month() {
        assert_eq!(rfc3339(" Mon, 3 Foo 2025 10:00:00 +0000"), None);
    }

    #[test]
    fn date_bad_hour() {
        assert_eq!(rfc3339(" Mon, 3 Feb 2025 24:00:00 +0000"), None);
    }

    #[test]
    fn date_bad_zone() {
        assert_eq!(rfc3339(" Mon, 3 Feb 2025 10:00:00 +9999"), None);
    }

    #[test]
    fn date_end_offset() {
        let text = " Wed, 12 Feb 2025 13:17:11 +0000\n  id 0000";
        let end = parse(text).map(|date| date.end);
        assert_eq!(end, Some(32));
    }
}
