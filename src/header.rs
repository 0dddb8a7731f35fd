//! The `X-Transport-Security` header: rendering one field value from an analysis.
//!
//! Grammar (docs/header.md has it in ABNF):
//!
//! ```text
//! <authserv-id>; v=1 tls=<verdict> live=<live> [cipher=<name>] [bits=<n>] [verify=<status>]
//!     hops=<n> encrypted=<n> plaintext=<n> internal=<n> unknown=<n> claimed=<n>
//!     [policy=<rule-name> action=<action> [dry_run=yes]] [(comment)]
//! ```
//!
//! Every value matches `[A-Za-z0-9_.:/+-]+`. Text from the wire (cipher names) is reduced to
//! that set and capped. The output is ASCII, folded before 78 columns, with no line over 998
//! octets.

use crate::chain::Analysis;
use crate::hop::{TlsClass, Verdict};
use std::fmt::Write as _;

/// The header field name, as written.
pub const HEADER_NAME: &str = "X-Transport-Security";

/// Maximum length of one value taken from the wire (a cipher name, a rule name).
const MAX_VALUE_LEN: usize = 64;

/// Maximum length of the authserv-id, as the configuration allows.
const MAX_AUTHSERV_ID_LEN: usize = 255;

/// Maximum length of the trailing comment.
const MAX_COMMENT_LEN: usize = 200;

/// Lines are folded so that `X-Transport-Security: ` plus the first line stays under 78 columns.
const FOLD_COLUMN: usize = 78;

/// The policy part of the header, when a rule applied.
#[derive(Clone, Debug, Eq, PartialEq)]
pub struct PolicyTag {
    pub rule: String,
    /// `tag`, `reject`, `tempfail` or `quarantine`.
    pub action: &'static str,
    pub dry_run: bool,
}

/// Renders the field value (without the `X-Transport-Security:` name) for one message.
///
/// Continuation lines start with a TAB and lines are joined with `\n`, the form milter
/// header actions take.
pub fn render(authserv_id: &str, analysis: &Analysis, policy: Option<&PolicyTag>, comment: Option<&str>) -> String {
    let mut tokens: Vec<String> = Vec::with_capacity(16);
    // The authserv-id is the operator's, checked when the configuration is read, and is kept
    // whole: filters match on all of it.
    let id: String = authserv_id
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
        .take(MAX_AUTHSERV_ID_LEN)
        .collect();
    tokens.push(format!("{};", if id.is_empty() { "localhost" } else { &id }));
    tokens.push("v=1".into());
    tokens.push(format!("tls={}", analysis.verdict));

    match &analysis.live {
        Some(live) => {
            tokens.push(format!("live={}", sanitise(&live.evidence).unwrap_or_else(|| "unknown".into())));
            if let Some(cipher) = live.cipher.as_deref().and_then(sanitise) {
                tokens.push(format!("cipher={cipher}"));
            }
            if let Some(bits) = live.bits {
                tokens.push(format!("bits={bits}"));
            }
            if let Some(verify) = live.verify.as_deref().and_then(sanitise) {
                tokens.push(format!("verify={verify}"));
            }
        }
        None => tokens.push("live=unknown".into()),
    }

    let counts = &analysis.counts;
    tokens.push(format!("hops={}", counts.hops));
    tokens.push(format!("encrypted={}", counts.encrypted));
    tokens.push(format!("plaintext={}", counts.plaintext));
    tokens.push(format!("internal={}", counts.internal));
    tokens.push(format!("unknown={}", counts.unknown));
    tokens.push(format!("claimed={}", counts.claimed));

    if let Some(policy) = policy {
        tokens.push(format!("policy={}", sanitise(&policy.rule).unwrap_or_else(|| "unnamed".into())));
        tokens.push(format!("action={}", policy.action));
        if policy.dry_run {
            tokens.push("dry_run=yes".into());
        }
    }

    if let Some(comment) = comment.and_then(sanitise_comment) {
        // The comment is folded word by word like the tokens.
        let mut words = comment.split(' ');
        if let Some(first) = words.next() {
            tokens.push(format!("({first}"));
            tokens.extend(words.map(str::to_string));
            if let Some(last) = tokens.last_mut() {
                last.push(')');
            }
        }
    }

    fold(&tokens)
}

/// Returns a short note on what decided a `fail` or `unknown` verdict, for the header comment.
///
/// `live_is_topmost` is true offline, where the topmost Received field is the live hop and
/// not one of the hops below it.
pub fn comment_for(analysis: &Analysis, live_is_topmost: bool) -> Option<String> {
    let live = analysis.live.as_ref();
    let below_live = |position: usize| !(live_is_topmost && position == 1);
    let first_hop = |class: TlsClass| analysis.hops.iter().find(|hop| hop.tls == class && below_live(hop.position));

    match analysis.verdict {
        Verdict::Fail if live.is_some_and(|live| live.class == TlsClass::Plaintext) => Some("live hop not encrypted".into()),
        Verdict::Fail => first_hop(TlsClass::Plaintext).map(|hop| format!("Received field {} plaintext", hop.position)),
        Verdict::Unknown if live.is_none() => Some("no live hop".into()),
        Verdict::Unknown if live.is_some_and(|live| live.class == TlsClass::Unknown) => Some("live hop TLS unknown".into()),
        Verdict::Unknown => match first_hop(TlsClass::Unknown) {
            Some(hop) => Some(format!("Received field {} TLS unknown", hop.position)),
            None => Some("Received fields past the analysis limit".into()),
        },
        Verdict::Pass | Verdict::Internal => None,
    }
}

/// Joins tokens with spaces, starting a new TAB-indented line before a token that would
/// pass the fold column.
fn fold(tokens: &[String]) -> String {
    let mut value = String::with_capacity(256);
    let mut column = HEADER_NAME.len() + 2;

    for (index, token) in tokens.iter().enumerate() {
        if index > 0 {
            if column + 1 + token.len() > FOLD_COLUMN {
                value.push_str("\n\t");
                column = 8;
            } else {
                value.push(' ');
                column += 1;
            }
        }
        let _ = write!(value, "{token}");
        column += token.len();
    }

    value
}

/// Reduces wire text to the value character set and caps its length; `None` when nothing
/// is left.
pub fn sanitise(text: &str) -> Option<String> {
    let value: String = text
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | ':' | '/' | '+' | '-'))
        .take(MAX_VALUE_LEN)
        .collect();
    (!value.is_empty()).then_some(value)
}

/// Keeps printable ASCII without parentheses or backslashes, squeezes spaces and caps the length.
fn sanitise_comment(text: &str) -> Option<String> {
    let cleaned: String = text
        .chars()
        .map(|c| if c.is_ascii_graphic() && !matches!(c, '(' | ')' | '\\') { c } else { ' ' })
        .collect();
    let words: Vec<&str> = cleaned.split_whitespace().collect();
    let mut comment = String::new();
    for word in words {
        let word: String = word.chars().take(MAX_VALUE_LEN).collect();
        if comment.len() + word.len() + 1 > MAX_COMMENT_LEN {
            break;
        }
        if !comment.is_empty() {
            comment.push(' ');
        }
        comment.push_str(&word);
    }
    (!comment.is_empty()).then_some(comment)
}

/// Joins the folded lines of a field value into one line.
pub fn unfold(value: &str) -> String {
    value.split(['\r', '\n']).map(str::trim).filter(|line| !line.is_empty()).collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chain::{Counts, LiveHop};
    use crate::hop::{TlsClass, Verdict};

    fn analysis(cipher: &str) -> Analysis<'static> {
        Analysis {
            live: Some(LiveHop {
                evidence: "TLSv1.3".into(),
                class: TlsClass::Encrypted,
                cipher: Some(cipher.into()),
                bits: Some(256),
                verify: Some("ok".into()),
                reason: String::new(),
            }),
            hops: Vec::new(),
            counts: Counts { hops: 2, encrypted: 1, internal: 1, ..Counts::default() },
            verdict: Verdict::Pass,
        }
    }

    #[test]
    fn render_orders_tokens() {
        let value = unfold(&render("mx.example.org", &analysis("TLS_AES_256_GCM_SHA384"), None, None));
        assert_eq!(
            value,
            "mx.example.org; v=1 tls=pass live=TLSv1.3 cipher=TLS_AES_256_GCM_SHA384 bits=256 verify=ok \
             hops=2 encrypted=1 plaintext=0 internal=1 unknown=0 claimed=0"
        );
    }

    #[test]
    fn render_adds_policy_tokens() {
        let policy = PolicyTag { rule: "partners".into(), action: "reject", dry_run: true };
        let value = unfold(&render("mx", &analysis("X"), Some(&policy), None));
        assert!(value.ends_with("policy=partners action=reject dry_run=yes"), "{value}");
    }

    #[test]
    fn render_folds_before_78_columns() {
        let value = render("mx.example.org", &analysis("TLS_AES_256_GCM_SHA384"), None, Some("a comment for humans"));
        let first = format!("{HEADER_NAME}: {}", value.lines().next().unwrap());
        assert!(first.len() <= 78, "{first}");
        for line in value.lines() {
            assert!(line.len() <= 78, "{line}");
        }
    }

    #[test]
    fn hostile_cipher_is_sanitised() {
        let hostile = format!("AES\r\nX-Evil: 1\0%(){}", "A".repeat(100_000));
        let value = render("mx", &analysis(&hostile), None, None);
        assert!(value.is_ascii());
        assert!(!value.contains('\r'));
        assert!(value.lines().all(|line| !line.starts_with("X-Evil")), "{value}");
        let cipher = unfold(&value).split(' ').find(|token| token.starts_with("cipher=")).unwrap().to_string();
        assert_eq!(cipher.len(), "cipher=".len() + MAX_VALUE_LEN);
    }

    #[test]
    fn comment_keeps_parentheses_balanced() {
        let value = unfold(&render("mx", &analysis("X"), None, Some("hop 2 (forged?) said \\ ESMTPS")));
        assert!(value.ends_with("(hop 2 forged? said ESMTPS)"), "{value}");
    }

    #[test]
    fn long_authserv_id_is_kept_whole() {
        let id = format!("{}.example.org", "a".repeat(70));
        let value = render(&id, &analysis("X"), None, None);
        assert!(unfold(&value).starts_with(&format!("{id}; v=1 ")), "{value}");
    }

    #[test]
    fn empty_cipher_is_left_out() {
        let value = render("mx", &analysis("\u{fffd}\u{fffd}"), None, None);
        assert!(!value.contains("cipher="));
    }
}
