//! Offline analysis of saved messages, as `tls-milter check` runs it.
//!
//! Offline there are no milter macros, so the topmost Received field (written by the
//! receiving MTA) stands for the live hop, and `live` in the JSON output is null.

use crate::chain::{self, Analysis, Hop, LiveSource};
use crate::config::Config;
use crate::header::{self, HEADER_NAME};
use mail_parser::{HeaderName, MessageParser};
use serde_json::{Value, json};
use std::fmt::Write as _;

/// The analysis of one message.
#[derive(Clone, Debug)]
pub struct Report {
    /// The file name, or `-` for standard input.
    pub source: String,
    pub message_id: Option<String>,
    pub analysis: Analysis<'static>,
    /// The field value the milter would add for the same live state.
    pub header: String,
    /// Incoming `X-Transport-Security` fields, which the milter would delete as forged.
    pub forged: usize,
}

/// True when the input starts with a header field (after an optional mbox `From ` line), so
/// a binary or text file is not read as a message without header fields.
fn starts_with_header_field(bytes: &[u8]) -> bool {
    let mut rest = bytes;
    if rest.starts_with(b"From ") {
        rest = rest.iter().position(|&byte| byte == b'\n').map_or(&[][..], |end| &rest[end + 1..]);
    }

    let first_line = rest.split(|&byte| byte == b'\n').next().unwrap_or_default();
    match first_line.iter().position(|&byte| byte == b':') {
        Some(colon) if colon > 0 => first_line[..colon].iter().all(|byte| (33..=126).contains(byte)),
        _ => false,
    }
}

/// Analyses one message.
///
/// # Errors
///
/// Returns a message when `bytes` has no header fields, so it cannot be a message.
pub fn check_message(bytes: &[u8], source: &str, config: &Config) -> Result<Report, String> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err("not a message: the input is empty".into());
    }
    if !starts_with_header_field(bytes) {
        return Err("not a message: the first line is not a header field".into());
    }

    let parser = MessageParser::new().with_message_ids().header_raw(HeaderName::Received);
    let message = parser.parse(bytes).ok_or_else(|| "not a message: no header fields".to_string())?;
    if message.headers().is_empty() {
        return Err("not a message: no header fields".into());
    }

    // The raw field text (folding included) comes from the offsets mail-parser records.
    let raw = message.raw_message();
    let mut fields: Vec<String> = Vec::new();
    let mut total = 0;
    for field in message.headers().iter().filter(|field| field.name == HeaderName::Received) {
        total += 1;
        if fields.len() < chain::MAX_ANALYSED_FIELDS {
            let start = (field.offset_start as usize).min(raw.len());
            let end = (field.offset_end as usize).clamp(start, raw.len());
            let kept = &raw[start..end.min(start + chain::MAX_FIELD_LEN + 1)];
            fields.push(String::from_utf8_lossy(kept).trim_end().to_string());
        }
    }

    let field_refs: Vec<&str> = fields.iter().map(String::as_str).collect();
    let analysis = chain::analyse(&field_refs, total, LiveSource::TopmostField, &config.trust);
    let comment = header::comment_for(&analysis, true);
    let header = header::render(&config.authserv_id, &analysis, None, comment.as_deref());

    let forged = message
        .headers()
        .iter()
        .filter(|field| field.name.as_str().eq_ignore_ascii_case(HEADER_NAME))
        .count();

    Ok(Report {
        source: source.to_string(),
        message_id: message.message_id().map(str::to_string),
        analysis: analysis.into_owned(),
        header,
        forged,
    })
}

/// Returns the JSON object printed by `check --format json` (one line per message).
pub fn to_json(report: &Report) -> Value {
    json!({
        "source": report.source,
        "message_id": report.message_id,
        "verdict": report.analysis.verdict.as_str(),
        "live": Value::Null,
        "hops": report.analysis.hops.iter().map(hop_json).collect::<Vec<_>>(),
        "header": report.header,
        "forged_headers": report.forged,
    })
}

fn hop_json(hop: &Hop<'_>) -> Value {
    let line = &hop.line;
    json!({
        "position": hop.position,
        "from": {
            "name": line.from_name,
            "helo": line.helo,
            "host": line.host,
            "ip": line.ip,
        },
        "by": line.by,
        "protocol": line.protocol,
        "id": line.id,
        "date": line.date(),
        "claim": line.claim.as_str(),
        "tls": hop.tls.as_str(),
        "tls_version": line.tls_version,
        "cipher": line.cipher,
        "bits": line.bits,
        "verify": line.verify,
        "mta": line.mta,
        "trusted": hop.trusted,
        "evidence": hop.evidence(),
    })
}

/// Returns the text report: each Received field annotated, the trust boundary, the
/// verdict and the header line.
pub fn to_text(report: &Report) -> String {
    let mut text = String::new();
    let id = report.message_id.as_deref().map(|id| format!(" <{id}>")).unwrap_or_default();
    let _ = writeln!(text, "{}{id}", report.source);

    if report.analysis.hops.is_empty() {
        let _ = writeln!(text, "  no Received fields");
    }

    let mut boundary_shown = false;
    for hop in &report.analysis.hops {
        if !hop.trusted && !boundary_shown {
            let _ = writeln!(text, "  ---- trust boundary: the fields below were written outside our servers ----");
            boundary_shown = true;
        }
        write_hop(&mut text, hop);
    }

    let analysis = &report.analysis;
    let counts = &analysis.counts;
    let hops = if counts.hops == 1 { "hop" } else { "hops" };
    let _ = writeln!(
        text,
        "  verdict: {} ({} {hops} below the live hop: {} encrypted, {} plaintext, {} internal, {} unknown; {} claimed)",
        analysis.verdict, counts.hops, counts.encrypted, counts.plaintext, counts.internal, counts.unknown, counts.claimed,
    );
    if report.forged > 0 {
        let _ = writeln!(text, "  {} incoming {HEADER_NAME} fields: forged, the milter deletes them", report.forged);
    }
    let _ = writeln!(text, "  {HEADER_NAME}: {}", report.header.replace('\n', "\n  "));
    text
}

fn write_hop(text: &mut String, hop: &Hop<'_>) {
    let line = &hop.line;
    let unknown = "?";
    let from = line.from_name.as_deref().or(line.host.as_deref()).unwrap_or(unknown);
    let ip = line.ip.as_deref().map(|ip| format!(" [{ip}]")).unwrap_or_default();
    let by = line.by.as_deref().unwrap_or(unknown);
    let protocol = line.protocol.as_deref().map(|protocol| format!(" with {protocol}")).unwrap_or_default();
    let role = if hop.position == 1 { " (live hop)" } else { "" };
    let _ = writeln!(text, "  [{}] from {from}{ip} by {by}{protocol}{role}", hop.position);

    let mut tls: Vec<String> = Vec::new();
    tls.extend(line.tls_version.map(str::to_string));
    tls.extend(line.cipher.as_deref().map(str::to_string));
    tls.extend(line.bits.map(|bits| format!("{bits} bits")));
    tls.extend(line.verify.map(|verify| format!("verify {verify}")));
    let tls = if tls.is_empty() { String::new() } else { format!("; {}", tls.join(" ")) };
    let _ = writeln!(
        text,
        "      claim {}, class {}{tls}; mta {}; {}",
        line.claim,
        hop.tls,
        line.mta.unwrap_or("unrecognised"),
        if hop.trusted { "trusted" } else { "claim by others" },
    );
    let _ = writeln!(text, "      evidence: {}", hop.evidence());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(text: &str) -> Result<Report, String> {
        check_message(text.as_bytes(), "-", &Config::default())
    }

    #[test]
    fn empty_input_named() {
        assert_eq!(check("").err().as_deref(), Some("not a message: the input is empty"));
        assert_eq!(check("\n \n").err().as_deref(), Some("not a message: the input is empty"));
    }

    #[test]
    fn text_without_header_rejected() {
        assert_eq!(check("hello world\n").err().as_deref(), Some("not a message: the first line is not a header field"));
    }

    #[test]
    fn message_analysed() {
        let text = "Received: from a.example.net (a.example.net [192.0.2.1]) by mx.example.org (Postfix) with ESMTP id 1; Mon, 3 Feb 2025 13:32:13 +0000\nSubject: x\n\nbody\n";
        let report = check(text).unwrap();

        assert_eq!(report.analysis.hops.len(), 1);
        assert_eq!(report.forged, 0);
        assert!(report.header.contains("tls=fail"), "{}", report.header);
    }
}
