//! Reading header fields of delivered messages, and the X-Transport-Security field the milter writes.
//!
//! The field's grammar, after unfolding:
//!
//! ```text
//! <authserv-id>; v=1 tls=<pass|fail|unknown|internal>
//!   live=<TLSv1.0|TLSv1.1|TLSv1.2|TLSv1.3|tls|none|unknown> [cipher=<name>] [bits=<n>]
//!   [verify=<ok|fail|no-cert|not-requested|unknown>]
//!   hops=<n> encrypted=<n> plaintext=<n> internal=<n> unknown=<n> claimed=<n>
//!   [policy=<rule-name> action=<tag|reject|tempfail|quarantine> [dry_run=yes]]
//!   [(free-text comment for humans, which parsers ignore)]
//! ```

use super::milter::AUTHSERV_ID;

pub const FIELD_NAME: &str = "X-Transport-Security";

const TLS_VALUES: &[&str] = &["pass", "fail", "unknown", "internal"];
const LIVE_VALUES: &[&str] = &["TLSv1.0", "TLSv1.1", "TLSv1.2", "TLSv1.3", "tls", "none", "unknown"];
const VERIFY_VALUES: &[&str] = &["ok", "fail", "no-cert", "not-requested", "unknown"];
const ACTION_VALUES: &[&str] = &["tag", "reject", "tempfail", "quarantine"];
const COUNT_KEYS: &[&str] = &["hops", "encrypted", "plaintext", "internal", "unknown", "claimed"];
/// The class counters, which add up to `hops`.
const CLASS_KEYS: &[&str] = &["encrypted", "plaintext", "internal", "unknown"];
const OPTIONAL_KEYS: &[&str] = &["cipher", "bits", "verify", "policy", "action", "dry_run"];

/// One header field as it appears in the message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Field {
    pub name: String,
    /// Everything after the colon, folded lines included, with line breaks normalised to LF.
    pub raw_value: String,
}

impl Field {
    /// Returns the value with folding removed (RFC 5322 section 2.2.3), trimmed.
    pub fn unfolded(&self) -> String {
        self.raw_value.replace('\n', "").trim().to_string()
    }
}

/// Returns the header fields of `message` in order, up to the first empty line.
///
/// A header line with no colon becomes a field with that line as its name and an empty value.
pub fn header_fields(message: &str) -> Vec<Field> {
    let mut fields: Vec<Field> = Vec::new();
    for line in message.lines() {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.is_empty() {
            break;
        }
        if line.starts_with([' ', '\t'])
            && let Some(field) = fields.last_mut()
        {
            field.raw_value.push('\n');
            field.raw_value.push_str(line);
            continue;
        }
        let field = match line.split_once(':') {
            Some((name, value)) => Field { name: name.trim_end().to_string(), raw_value: value.to_string() },
            None => Field { name: line.to_string(), raw_value: String::new() },
        };
        fields.push(field);
    }
    fields
}

/// Returns the fields of `message` named `name`, compared case-insensitively.
pub fn fields_named(message: &str, name: &str) -> Vec<Field> {
    header_fields(message).into_iter().filter(|field| field.name.eq_ignore_ascii_case(name)).collect()
}

/// Returns the header section of `message`, everything before the first empty line.
pub fn header_section(message: &str) -> &str {
    let end = message.find("\n\n").unwrap_or(message.len());
    &message[..end]
}

/// Checks that `message` has exactly one X-Transport-Security field, and that its value parses,
/// carries [`AUTHSERV_ID`] and follows the grammar. Returns the value parsed.
///
/// Panics at the first check that fails, with `context()` appended to the message.
pub fn parse_milter_field(message: &str, context: impl Fn() -> String) -> TransportSecurity {
    let fields = fields_named(message, FIELD_NAME);
    assert_eq!(fields.len(), 1, "expected exactly one {FIELD_NAME} field, case-insensitively\n{}", context());
    let value = fields[0].unfolded();
    let header = match TransportSecurity::parse(&value) {
        Ok(header) => header,
        Err(error) => panic!("{FIELD_NAME} value {value:?} does not parse: {error}\n{}", context()),
    };

    assert_eq!(header.authserv_id, AUTHSERV_ID, "the authserv-id is not ours\n{}", context());
    if let Err(problems) = header.check_grammar() {
        panic!("{FIELD_NAME} value {value:?} breaks the grammar:\n  {}\n{}", problems.join("\n  "), context());
    }
    header
}

/// A parsed X-Transport-Security value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TransportSecurity {
    pub authserv_id: String,
    /// The `key=value` tokens in order.
    pub tokens: Vec<(String, String)>,
    /// The trailing comment without its parentheses.
    pub comment: Option<String>,
}

impl TransportSecurity {
    /// Parses an unfolded value: the authserv-id, `;`, whitespace-separated `key=value` tokens,
    /// and an optional trailing parenthesised comment. Checks the form, not the values: see
    /// [`TransportSecurity::check_grammar`].
    pub fn parse(value: &str) -> Result<TransportSecurity, String> {
        let (value, comment) = split_trailing_comment(value.trim())?;
        let Some((authserv_id, rest)) = value.split_once(';') else {
            return Err(format!("no ';' after the authserv-id in {value:?}"));
        };
        let authserv_id = authserv_id.trim();
        if authserv_id.is_empty() || authserv_id.contains(char::is_whitespace) {
            return Err(format!("invalid authserv-id {authserv_id:?}"));
        }

        let mut tokens: Vec<(String, String)> = Vec::new();
        for token in rest.split_whitespace() {
            let Some((key, token_value)) = token.split_once('=') else {
                return Err(format!("token {token:?} is not key=value"));
            };
            if key.is_empty() || token_value.is_empty() {
                return Err(format!("token {token:?} has an empty key or value"));
            }
            if tokens.iter().any(|(seen, _)| seen == key) {
                return Err(format!("key {key:?} appears twice"));
            }
            tokens.push((key.to_string(), token_value.to_string()));
        }
        Ok(TransportSecurity { authserv_id: authserv_id.to_string(), tokens, comment })
    }

    /// Returns the value of token `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.tokens.iter().find(|(name, _)| name == key).map(|(_, value)| value.as_str())
    }

    /// Checks the tokens against the field's grammar (module docs): `v=1` first, every required
    /// key present, each value from its set, no unknown key, and the class counters summing to
    /// `hops`. Returns every problem found.
    pub fn check_grammar(&self) -> Result<(), Vec<String>> {
        let mut problems = Vec::new();

        if self.tokens.first().map(|(key, value)| (key.as_str(), value.as_str())) != Some(("v", "1")) {
            problems.push(format!("the first token is not v=1: {:?}", self.tokens.first()));
        }
        self.check_value("tls", TLS_VALUES, true, &mut problems);
        self.check_value("live", LIVE_VALUES, true, &mut problems);
        self.check_value("verify", VERIFY_VALUES, false, &mut problems);
        self.check_value("action", ACTION_VALUES, false, &mut problems);
        self.check_value("dry_run", &["yes"], false, &mut problems);

        if self.get("policy").is_some() != self.get("action").is_some() {
            problems.push("policy= and action= must appear together".to_string());
        }
        if self.get("dry_run").is_some() && self.get("policy").is_none() {
            problems.push("dry_run= appears without policy=".to_string());
        }
        if let Some(bits) = self.get("bits")
            && bits.parse::<u32>().is_err()
        {
            problems.push(format!("bits={bits} is not a number"));
        }

        let mut counts = Vec::new();
        for key in COUNT_KEYS {
            match self.get(key).map(str::parse::<u64>) {
                Some(Ok(count)) => counts.push((*key, count)),
                Some(Err(_)) => problems.push(format!("{key}= is not a number")),
                None => problems.push(format!("{key}= is missing")),
            }
        }
        if counts.len() == COUNT_KEYS.len() {
            let count = |key: &str| counts.iter().find(|(name, _)| *name == key).map_or(0, |(_, count)| *count);
            let classes: u64 = CLASS_KEYS.iter().map(|key| count(key)).sum();
            if classes != count("hops") {
                problems.push(format!("encrypted+plaintext+internal+unknown = {classes}, but hops={}", count("hops")));
            }
        }

        for (key, _) in &self.tokens {
            let known = ["v", "tls", "live"].contains(&key.as_str())
                || COUNT_KEYS.contains(&key.as_str())
                || OPTIONAL_KEYS.contains(&key.as_str());
            if !known {
                problems.push(format!("unknown key {key:?}"));
            }
        }

        if problems.is_empty() { Ok(()) } else { Err(problems) }
    }

    fn check_value(&self, key: &str, allowed: &[&str], required: bool, problems: &mut Vec<String>) {
        match self.get(key) {
            Some(value) if !allowed.contains(&value) => {
                problems.push(format!("{key}={value} is not one of {allowed:?}"))
            }
            None if required => problems.push(format!("{key}= is missing")),
            _ => {}
        }
    }
}

/// Splits a trailing `( ... )` comment, with nested parentheses, off `value`.
fn split_trailing_comment(value: &str) -> Result<(&str, Option<String>), String> {
    if !value.ends_with(')') {
        return Ok((value, None));
    }
    let mut depth = 0usize;
    for (index, character) in value.char_indices().rev() {
        match character {
            ')' => depth += 1,
            '(' => {
                depth -= 1;
                if depth == 0 {
                    let comment = value[index + 1..value.len() - 1].to_string();
                    return Ok((value[..index].trim_end(), Some(comment)));
                }
            }
            _ => {}
        }
    }
    Err(format!("unbalanced parentheses in the trailing comment of {value:?}"))
}
