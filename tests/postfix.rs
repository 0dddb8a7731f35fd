//! End-to-end tests against a real Postfix on 127.0.0.1: swaks sends mail over plain SMTP or
//! STARTTLS, Postfix passes it through the milter, and each case reads the delivered copy.
//!
//! The binary starts one Postfix and one milter before the first case that runs, and stops both
//! after the last, also when cases fail or panic. Cases run in parallel and tell their messages
//! apart by a unique Subject. Starting Postfix requires root: `bash tests/run.sh` installs the
//! packages and runs this binary with the rest of the tests.

mod common;

use std::process::ExitCode;

use libtest_mimic::Failed;

use common::fixture::{Case, run_cases};
use common::header::{
    FIELD_NAME, Field, TransportSecurity, fields_named, header_fields, header_section, parse_milter_field,
};
use common::milter::test_config;
use common::postfix::{Listener, PostfixConfig, SINK_DOMAIN};
use common::swaks::Email;
use common::{Harness, unique_marker};

/// The smtpd listener that passes mail through the milter.
const MILTER_LISTENER: &str = "milter";
/// The smtpd listener without a milter, the control for "the milter wrote this field".
const BARE_LISTENER: &str = "bare";

/// Fields that Postfix's virtual(8) adds at delivery, above everything the milter receives.
const DELIVERY_FIELDS: &[&str] = &["Return-Path", "X-Original-To", "Delivered-To"];

fn main() -> ExitCode {
    let cases: [Case<Harness>; 5] = [
        ("plain_smtp_reports_tls_fail", plain_smtp_reports_tls_fail),
        ("starttls_reports_tls_pass", starttls_reports_tls_pass),
        ("verified_client_cert_reports_verify_ok", verified_client_cert_reports_verify_ok),
        ("forged_fields_are_replaced", forged_fields_are_replaced),
        ("listener_without_milter_adds_no_field", listener_without_milter_adds_no_field),
    ];
    run_cases("the test harness", start_harness, cases, [])
}

fn start_harness() -> Result<Harness, String> {
    Harness::start(&[("main", &test_config())], |milters| PostfixConfig {
        listeners: vec![Listener::new(MILTER_LISTENER, &milters[0].socket()), Listener::new(BARE_LISTENER, "")],
        ..PostfixConfig::default()
    })
}

/// A delivered message with its one X-Transport-Security field, parsed.
struct Delivered {
    message: String,
    header: TransportSecurity,
}

impl Delivered {
    /// Returns the header section and the harness logs, for assertion messages.
    fn context(&self, harness: &Harness) -> String {
        format!("delivered header section:\n{}\n{}", header_section(&self.message), harness.diagnostics())
    }
}

/// Returns a swaks transaction to the milter listener with a Subject of `marker`.
fn email(harness: &Harness, marker: &str) -> Email {
    Email::new(harness.postfix.port(MILTER_LISTENER)).header(&format!("Subject: {marker}"))
}

/// Sends `email`, waits for its delivery and checks what holds for every message that passed
/// the milter: exactly one X-Transport-Security field, ours, well-formed, above the Received field.
fn deliver(harness: &Harness, email: &Email, marker: &str) -> Result<Delivered, Failed> {
    let message = harness.send_and_receive(email, marker)?;
    let context = || format!("delivered message:\n{message}\n{}", harness.diagnostics());

    let header = parse_milter_field(&message, context);
    assert_eq!(header.get("v"), Some("1"), "the field has no v=1\n{}", context());

    let all_fields = header_fields(&message);
    let ours = position(&all_fields, FIELD_NAME).expect("the field was found above");
    let received = position(&all_fields, "Received");
    assert!(received.is_some(), "the message has no Received field\n{}", context());
    assert!(ours < received.unwrap(), "{FIELD_NAME} is not above the first Received field\n{}", context());
    for field in &all_fields[..ours] {
        let added_at_delivery = DELIVERY_FIELDS.iter().any(|name| field.name.eq_ignore_ascii_case(name));
        assert!(added_at_delivery, "field {:?} is above {FIELD_NAME}\n{}", field.name, context());
    }

    Ok(Delivered { message, header })
}

fn position(fields: &[Field], name: &str) -> Option<usize> {
    fields.iter().position(|field| field.name.eq_ignore_ascii_case(name))
}

/// Returns the cipher and the bits that Postfix's own Received field records, from its
/// `(using TLSv1.3 with cipher NAME (256/256 bits)` comment.
fn received_cipher(message: &str) -> Option<(String, String)> {
    let received = fields_named(message, "Received").into_iter().next()?.unfolded();
    let after_cipher = received.split_once(" with cipher ")?.1;
    let (cipher, rest) = after_cipher.split_once(' ')?;
    let bits = rest.strip_prefix('(')?.split_once('/')?.0;
    Some((cipher.to_string(), bits.to_string()))
}

fn plain_smtp_reports_tls_fail(harness: &Harness) -> Result<(), Failed> {
    let marker = unique_marker("plain");
    let delivered = deliver(harness, &email(harness, &marker), &marker)?;
    let header = &delivered.header;
    let context = || delivered.context(harness);

    assert_eq!(header.get("tls"), Some("fail"), "{}", context());
    assert_eq!(header.get("live"), Some("none"), "{}", context());
    assert_eq!(header.get("cipher"), None, "a plaintext session has no cipher\n{}", context());
    Ok(())
}

fn starttls_reports_tls_pass(harness: &Harness) -> Result<(), Failed> {
    let marker = unique_marker("starttls");
    let delivered = deliver(harness, &email(harness, &marker).starttls(), &marker)?;
    let header = &delivered.header;
    let context = || delivered.context(harness);

    assert_eq!(header.get("tls"), Some("pass"), "{}", context());
    assert_eq!(header.get("live"), Some("TLSv1.3"), "{}", context());
    let Some((cipher, bits)) = received_cipher(&delivered.message) else {
        panic!("Postfix's Received field names no cipher\n{}", context());
    };
    assert_eq!(
        header.get("cipher"),
        Some(cipher.as_str()),
        "cipher= differs from Postfix's Received field\n{}",
        context()
    );
    if let Some(header_bits) = header.get("bits") {
        assert_eq!(header_bits, bits, "bits= differs from Postfix's Received field\n{}", context());
    }
    Ok(())
}

fn verified_client_cert_reports_verify_ok(harness: &Harness) -> Result<(), Failed> {
    let marker = unique_marker("client-cert");
    let email = email(harness, &marker).client_cert(harness.postfix.pki());
    let delivered = deliver(harness, &email, &marker)?;
    let header = &delivered.header;
    let context = || delivered.context(harness);

    assert!(
        delivered.message.contains("(verified OK)"),
        "Postfix did not verify the client certificate, so the case tests nothing\n{}",
        context()
    );
    assert_eq!(header.get("tls"), Some("pass"), "{}", context());
    assert_eq!(header.get("verify"), Some("ok"), "{}", context());
    Ok(())
}

fn forged_fields_are_replaced(harness: &Harness) -> Result<(), Failed> {
    let marker = unique_marker("forged");
    // One forged field folded over two lines above the others, one in lower case among them.
    let data = format!(
        "\
X-Transport-Security: forged.example; v=1 tls=pass live=TLSv1.3
\thops=0 encrypted=0 plaintext=0 internal=0 unknown=0 claimed=0
Date: %DATE%
From: sender@{SINK_DOMAIN}
To: recipient@{SINK_DOMAIN}
x-transport-security: forged.example; v=1 tls=pass live=TLSv1.3 hops=0 encrypted=0 plaintext=0 internal=0 unknown=0 claimed=0
Subject: {marker}
Message-ID: <{marker}@{SINK_DOMAIN}>

Two forged X-Transport-Security fields above.
"
    );
    let email = Email::new(harness.postfix.port(MILTER_LISTENER)).data(&data);
    let delivered = deliver(harness, &email, &marker)?;
    let header = &delivered.header;
    let context = || delivered.context(harness);

    assert!(!header_section(&delivered.message).contains("forged.example"), "a forged field survived\n{}", context());
    assert_eq!(header.get("tls"), Some("fail"), "the forged tls=pass leaked into ours\n{}", context());
    assert_eq!(header.get("live"), Some("none"), "{}", context());
    Ok(())
}

fn listener_without_milter_adds_no_field(harness: &Harness) -> Result<(), Failed> {
    let marker = unique_marker("bare");
    let email = Email::new(harness.postfix.port(BARE_LISTENER)).header(&format!("Subject: {marker}"));
    let message = harness.send_and_receive(&email, &marker)?;

    let fields = fields_named(&message, FIELD_NAME);
    assert!(fields.is_empty(), "a message that bypassed the milter has {FIELD_NAME}\n{message}");
    Ok(())
}
