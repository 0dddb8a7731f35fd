//! End-to-end tests of `[[policy]]` rules through a real Postfix on 127.0.0.1. swaks sends mail
//! in plaintext, over STARTTLS, with TLS 1.2 only or with SMTP AUTH, and Postfix passes it through
//! the milter. Each case then reads the SMTP transcript, the delivered copy or the hold queue.
//!
//! The binary starts one milter, with every rule below, and one Postfix before the first case
//! that runs, and stops both after the last. Each case selects its rule by the envelope sender's
//! domain (or, for the mixed-recipient case, by a recipient address) and finds its mail by a
//! unique Subject and recipient, so the cases run in parallel. The milter counts loopback
//! clients as external (`internal_networks = []`). Starting Postfix requires root:
//! `bash tests/run.sh` installs the packages and runs this binary with the rest of the tests.

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use libtest_mimic::Failed;
use tempfile::TempDir;

use common::fixture::{Case, run_cases};
use common::header::{TransportSecurity, fields_named, parse_milter_field};
use common::milter::test_config;
use common::postfix::{Listener, MAIN_CF_SNIPPET, PostfixConfig, SINK_DOMAIN, main_cf_parameter};
use common::swaks::Email;
use common::{Harness, WAIT_TIMEOUT, poll, public_temp_dir, run_command, run_command_with_input, unique_marker};

/// The smtpd listener for every case without SMTP AUTH.
const PLAIN_LISTENER: &str = "policy";
/// The smtpd listener that offers SMTP AUTH (Cyrus SASL with a private sasldb), also in plaintext.
const SASL_LISTENER: &str = "sasl";

/// The one SASL account: `SASL_USER` in realm `SASL_REALM`, which clients log in as `user@realm`.
const SASL_USER: &str = "alice";
const SASL_REALM: &str = "sasl.test";
const SASL_PASSWORD: &str = "policy-test-password";

/// The recipient whose rule differs from the default rule at end of message.
const MIXED_HOLD_RECIPIENT: &str = "mixed-hold@sink.test";

/// The rules under test, appended to the harness's milter config. The first match wins, so each
/// rule names its own sender domain.
const RULES: &str = r#"
[[policy]]
name = "tls-required"
senders = ["tls.example"]
require_tls = true
action = "reject"
reply = "550 5.7.10 Encryption needed for tls.example"

[[policy]]
name = "chain-encrypted"
senders = ["chain.example"]
chain = "all-encrypted"
action = "reject"
reply = "554 5.7.10 Every hop must be encrypted"

[[policy]]
name = "hold-plaintext"
senders = ["hold.example"]
require_tls = true
action = "quarantine"

[[policy]]
name = "audit"
senders = ["dry.example"]
require_tls = true
action = "reject"
dry_run = true

[[policy]]
name = "retry-later"
senders = ["later.example"]
require_tls = true
action = "tempfail"

[[policy]]
name = "tls13-only"
senders = ["tls13.example"]
require_tls = true
min_tls_version = "TLSv1.3"
action = "reject"
reply = "550 5.7.10 TLS 1.3 required"

[[policy]]
name = "unauthenticated-need-tls"
senders = ["auth.example"]
authenticated = "no"
require_tls = true
action = "reject"
reply = "550 5.7.10 Authenticate or use TLS"

[[policy]]
name = "authenticated"
senders = ["auth.example"]
authenticated = "yes"
action = "tag"

[[policy]]
name = "local-enforced"
senders = ["local.example"]
require_tls = true
action = "reject"

[[policy]]
name = "mixed-hold"
recipients = ["mixed-hold@sink.test"]
require_tls = true
action = "quarantine"
"#;

/// The reply of a `tempfail` rule without `reply`, as conf/tls-milter.toml documents it.
const DEFAULT_TEMPFAIL_REPLY: &str = "451 4.7.0 TLS required by local policy, try again later";
/// The milter's reply to a recipient under another rule than the transaction's.
const OTHER_POLICY_REPLY: &str = "452 4.5.3 Recipient needs another TLS policy, send it in a new transaction";

fn main() -> ExitCode {
    let cases: [Case<Harness>; 12] = [
        ("plaintext_rejected_at_rcpt", plaintext_rejected_at_rcpt),
        ("starttls_accepted_and_tagged", starttls_accepted_and_tagged),
        ("plaintext_chain_hop_rejected_after_data", plaintext_chain_hop_rejected_after_data),
        ("quarantine_holds_message", quarantine_holds_message),
        ("dry_run_delivers_and_reports", dry_run_delivers_and_reports),
        ("other_policy_recipient_gets_452", other_policy_recipient_gets_452),
        ("tempfail_answers_4xx", tempfail_answers_4xx),
        ("tls12_below_tls13_floor_rejected", tls12_below_tls13_floor_rejected),
        ("authenticated_plaintext_exempt", authenticated_plaintext_exempt),
        ("unauthenticated_plaintext_rejected", unauthenticated_plaintext_rejected),
        ("local_submission_tagged_internal", local_submission_tagged_internal),
        ("snippet_settings_in_force", snippet_settings_in_force),
    ];
    run_cases("the test harness", start_harness, cases, [])
}

/// Starts the milter with [`RULES`] and a Postfix whose SASL listener reads a new sasldb.
fn start_harness() -> Result<Harness, String> {
    let (sasl_dir, sasl_database) = create_sasl_database()?;
    // Cyrus SASL reads `<smtpd_sasl_path>.conf`. Debian's Postfix 3.7 looks for it only in
    // $config_directory/sasl and /usr/lib/sasl, and ignores cyrus_sasl_config_path.
    let smtpd_conf = format!(
        "pwcheck_method: auxprop\nauxprop_plugin: sasldb\nsasldb_path: {}\nmech_list: PLAIN LOGIN\n",
        sasl_database.display()
    );

    let milter_config = format!("{}{RULES}", test_config());
    let mut harness = Harness::start(&[("policy", &milter_config)], |milters| {
        let socket = milters[0].socket();
        let sasl_listener = Listener::new(SASL_LISTENER, &socket)
            .option("smtpd_sasl_auth_enable", "yes")
            .option("smtpd_sasl_type", "cyrus")
            .option("smtpd_sasl_path", "smtpd");
        PostfixConfig {
            listeners: vec![Listener::new(PLAIN_LISTENER, &socket), sasl_listener],
            non_smtpd_milters: socket,
            config_files: vec![("sasl/smtpd.conf".to_string(), smtpd_conf)],
            ..PostfixConfig::default()
        }
    })?;

    // The harness removes the sasldb only after Postfix has stopped.
    harness.directories.push(sasl_dir);
    Ok(harness)
}

/// Creates a directory with a sasldb that contains the one test account, readable by the postfix
/// user, and returns the directory and the database's path.
fn create_sasl_database() -> Result<(TempDir, PathBuf), String> {
    // smtpd runs as the postfix user and must reach the database through the directory.
    let dir = public_temp_dir("tls-milter-sasl-")?;
    let path =
        dir.path().canonicalize().map_err(|error| format!("resolving {} failed: {error}", dir.path().display()))?;

    let database = path.join("sasldb2");
    create_sasl_account(&database)?;
    run_command(Command::new("chgrp").arg("postfix").arg(&database))?;
    fs::set_permissions(&database, fs::Permissions::from_mode(0o640))
        .map_err(|error| format!("changing the mode of {} failed: {error}", database.display()))?;
    Ok((dir, database))
}

/// Adds the test account to a new sasldb at `database` with `saslpasswd2 -p`, which reads the
/// password from stdin.
fn create_sasl_account(database: &Path) -> Result<(), String> {
    let mut command = Command::new("saslpasswd2");
    command.args(["-c", "-p", "-f"]).arg(database).args(["-u", SASL_REALM, SASL_USER]);
    run_command_with_input(&mut command, SASL_PASSWORD.as_bytes())
        .map_err(|error| format!("{error}\nrun `bash tests/run.sh` as root, which installs sasl2-bin"))?;
    Ok(())
}

/// Returns a transaction to `listener` from `sender` to one recipient, `marker` in the sink
/// domain, with `marker` as the Subject.
fn email(harness: &Harness, listener: &str, sender: &str, marker: &str) -> Email {
    Email::new(harness.postfix.port(listener))
        .sender(sender)
        .recipients(&[&recipient(marker)])
        .header(&format!("Subject: {marker}"))
}

fn recipient(marker: &str) -> String {
    format!("{marker}@{SINK_DOMAIN}")
}

/// Returns the server's reply to the first command in `transcript` that starts with `command`.
/// The lines of a multi-line reply are joined by `\n`, without swaks' direction marks.
fn reply_to(transcript: &str, command: &str) -> Option<String> {
    reply_after(transcript, |sent| sent.starts_with(command))
}

/// Returns the server's reply to the `.` that ends the message data.
fn reply_to_data_end(transcript: &str) -> Option<String> {
    reply_after(transcript, |sent| sent == ".")
}

/// Returns the server's reply to the first command for which `is_command` is true.
///
/// swaks marks what it sends with ` -> ` (` ~> ` inside TLS) and what it receives with `<-  `, or
/// `<** ` for an error reply (`<~  ` and `<~* ` inside TLS).
fn reply_after(transcript: &str, is_command: impl Fn(&str) -> bool) -> Option<String> {
    let mut lines = transcript.lines().skip_while(|line| {
        let sent = line.trim_start().strip_prefix("->").or_else(|| line.trim_start().strip_prefix("~>"));
        !sent.is_some_and(|sent| is_command(sent.trim()))
    });
    lines.next()?;
    let reply: Vec<&str> = lines
        .take_while(|line| line.starts_with('<'))
        .map(|line| line.get(4..).unwrap_or_default().trim_end())
        .collect();
    if reply.is_empty() { None } else { Some(reply.join("\n")) }
}

/// Checks the `policy=`, `action=` and `dry_run=` tokens of `header`.
fn assert_policy(header: &TransportSecurity, rule: &str, action: &str, dry_run: bool, context: &str) {
    assert_eq!(header.get("policy"), Some(rule), "{context}");
    assert_eq!(header.get("action"), Some(action), "{context}");
    assert_eq!(header.get("dry_run"), dry_run.then_some("yes"), "{context}");
}

/// Returns the queue id from the topmost Received field, which Postfix wrote (`... id ID ...`).
fn queue_id(message: &str) -> Option<String> {
    let received = fields_named(message, "Received").into_iter().next()?.unfolded();
    let after_id = received.split_once(" id ")?.1;
    let id: String = after_id.chars().take_while(|c| c.is_ascii_alphanumeric()).collect();
    (!id.is_empty()).then_some(id)
}

/// Returns the milter's info line for the message with `queue_id`.
fn milter_log_line(harness: &Harness, queue_id: &str) -> Option<String> {
    let prefix = format!("{queue_id}: tls=");
    poll(WAIT_TIMEOUT, || harness.milters[0].log().lines().find(|line| line.contains(&prefix)).map(str::to_string))
}

/// Waits until the milter has logged a line that contains `text`.
fn wait_for_milter_log(harness: &Harness, text: &str) -> bool {
    poll(WAIT_TIMEOUT, || harness.milters[0].log().contains(text).then_some(())).is_some()
}

/// Returns the header section of a `postcat` output: the lines after `*** MESSAGE CONTENTS`
/// up to the next `***` line.
fn postcat_message(postcat: &str) -> String {
    let lines: Vec<&str> = postcat
        .lines()
        .skip_while(|line| !line.starts_with("*** MESSAGE CONTENTS"))
        .skip(1)
        .take_while(|line| !line.starts_with("*** "))
        .collect();
    lines.join("\n")
}

fn plaintext_rejected_at_rcpt(harness: &Harness) -> Result<(), Failed> {
    let marker = unique_marker("plain-reject");
    let outcome = email(harness, PLAIN_LISTENER, "a@tls.example", &marker).try_send()?;
    let context = format!("{}\n{}", outcome.transcript, harness.diagnostics());

    assert!(!outcome.success, "swaks reported success\n{context}");
    assert_eq!(
        reply_to(&outcome.transcript, "RCPT TO:").as_deref(),
        Some("550 5.7.10 Encryption needed for tls.example"),
        "{context}"
    );
    assert_eq!(reply_to(&outcome.transcript, "DATA"), None, "DATA was sent with no recipient accepted\n{context}");
    let logged = format!("recipient <{}> rejected by policy tls-required: require_tls: live=none", recipient(&marker));
    assert!(wait_for_milter_log(harness, &logged), "the milter did not log {logged:?}\n{context}");
    Ok(())
}

fn starttls_accepted_and_tagged(harness: &Harness) -> Result<(), Failed> {
    let marker = unique_marker("tls-accept");
    let email = email(harness, PLAIN_LISTENER, "a@tls.example", &marker).starttls();
    let message = harness.send_and_receive(&email, &marker)?;
    let context = format!("delivered message:\n{message}\n{}", harness.diagnostics());
    let header = parse_milter_field(&message, || context.clone());

    assert_eq!(header.get("tls"), Some("pass"), "{context}");
    assert_eq!(header.get("live"), Some("TLSv1.3"), "{context}");
    assert_policy(&header, "tls-required", "tag", false, &context);

    let Some(id) = queue_id(&message) else { panic!("no queue id in Postfix's Received field\n{context}") };
    let Some(line) = milter_log_line(harness, &id) else { panic!("the milter logged no line for {id}\n{context}") };
    assert!(line.contains("live=TLSv1.3 policy=tls-required action=tag "), "milter log line {line:?}\n{context}");
    Ok(())
}

fn plaintext_chain_hop_rejected_after_data(harness: &Harness) -> Result<(), Failed> {
    let marker = unique_marker("chain");
    let to = recipient(&marker);
    // The relay before ours is a Postfix that wrote `with ESMTP`. Postfix writes `ESMTPS` whenever
    // TLS is active, so that hop was plaintext.
    let data = format!(
        "\
Received: from old.example.com (old.example.com [203.0.113.5])
\tby out.example.net (Postfix) with ESMTP id 3C4D5E6F7A
\tfor <{to}>; Mon,  3 Feb 2025 13:32:10 +0000 (UTC)
Date: %DATE%
From: a@chain.example
To: {to}
Subject: {marker}
Message-ID: <{marker}@chain.example>

One plaintext hop below ours.
"
    );
    let email = email(harness, PLAIN_LISTENER, "a@chain.example", &marker).starttls().data(&data);
    let outcome = email.try_send()?;
    let context = format!("{}\n{}", outcome.transcript, harness.diagnostics());

    assert!(!outcome.success, "swaks reported success\n{context}");
    assert!(outcome.transcript.contains("=== TLS started"), "the session did not use STARTTLS\n{context}");
    let rcpt = reply_to(&outcome.transcript, "RCPT TO:").unwrap_or_default();
    assert!(rcpt.starts_with("250 "), "RCPT got {rcpt:?}, expected 250: chain rules wait for the data\n{context}");
    assert_eq!(
        reply_to_data_end(&outcome.transcript).as_deref(),
        Some("554 5.7.10 Every hop must be encrypted"),
        "{context}"
    );
    assert!(harness.postfix.delivered_messages(&marker).is_empty(), "the message was delivered\n{context}");
    Ok(())
}

fn quarantine_holds_message(harness: &Harness) -> Result<(), Failed> {
    let marker = unique_marker("hold");
    let outcome = email(harness, PLAIN_LISTENER, "a@hold.example", &marker).try_send()?;
    let context = format!("{}\n{}", outcome.transcript, harness.diagnostics());

    assert!(outcome.success, "swaks reported a failure: quarantine accepts the message\n{context}");
    let held_message = poll(WAIT_TIMEOUT, || {
        harness.postfix.queue_ids("hold").into_iter().find_map(|id| {
            let text = harness.postfix.postcat(&id).ok()?;
            text.contains(&marker).then_some((id, text))
        })
    });
    let Some((id, postcat)) = held_message else { panic!("no message with {marker:?} in the hold queue\n{context}") };
    let context = format!("postcat -q {id}:\n{postcat}\n{context}");

    let header = parse_milter_field(&postcat_message(&postcat), || context.clone());
    assert_eq!(header.get("tls"), Some("fail"), "{context}");
    assert_eq!(header.get("live"), Some("none"), "{context}");
    assert_policy(&header, "hold-plaintext", "quarantine", false, &context);
    assert!(harness.postfix.delivered_messages(&marker).is_empty(), "the held message was delivered\n{context}");

    let Some(line) = milter_log_line(harness, &id) else { panic!("the milter logged no line for {id}\n{context}") };
    assert!(line.contains("live=none policy=hold-plaintext action=quarantine "), "milter log line {line:?}\n{context}");
    Ok(())
}

fn dry_run_delivers_and_reports(harness: &Harness) -> Result<(), Failed> {
    let marker = unique_marker("dry-run");
    let email = email(harness, PLAIN_LISTENER, "a@dry.example", &marker);
    let message = harness.send_and_receive(&email, &marker)?;
    let context = format!("delivered message:\n{message}\n{}", harness.diagnostics());
    let header = parse_milter_field(&message, || context.clone());

    assert_eq!(header.get("tls"), Some("fail"), "{context}");
    assert_eq!(header.get("live"), Some("none"), "{context}");
    assert_policy(&header, "audit", "reject", true, &context);
    Ok(())
}

fn other_policy_recipient_gets_452(harness: &Harness) -> Result<(), Failed> {
    let marker = unique_marker("mixed");
    let first = recipient(&marker);
    let email = email(harness, PLAIN_LISTENER, "a@mixed.example", &marker).recipients(&[&first, MIXED_HOLD_RECIPIENT]);
    let outcome = email.try_send()?;
    let context = format!("{}\n{}", outcome.transcript, harness.diagnostics());

    let first_reply = reply_to(&outcome.transcript, &format!("RCPT TO:<{first}>")).unwrap_or_default();
    assert!(first_reply.starts_with("250 "), "the first recipient got {first_reply:?}\n{context}");
    assert_eq!(
        reply_to(&outcome.transcript, &format!("RCPT TO:<{MIXED_HOLD_RECIPIENT}>")).as_deref(),
        Some(OTHER_POLICY_REPLY),
        "{context}"
    );
    let data_end = reply_to_data_end(&outcome.transcript).unwrap_or_default();
    assert!(data_end.starts_with("250 "), "the message got {data_end:?} after its data\n{context}");

    let message =
        harness.postfix.wait_for_message(&marker, WAIT_TIMEOUT).map_err(|error| format!("{error}\n{context}"))?;
    let context = format!("delivered message:\n{message}\n{context}");
    let original_to: Vec<String> =
        fields_named(&message, "X-Original-To").iter().map(|field| field.unfolded()).collect();
    assert_eq!(original_to, std::slice::from_ref(&first), "{context}");
    let header = parse_milter_field(&message, || context.clone());
    assert_policy(&header, "default", "tag", false, &context);

    // Once the queue file is gone every recipient of it is done, so a copy for the deferred
    // recipient would be in the Maildir by then.
    let Some(id) = queue_id(&message) else { panic!("no queue id in Postfix's Received field\n{context}") };
    let removed = poll(WAIT_TIMEOUT, || {
        harness.postfix.queue_listing().ok().filter(|listing| !listing.contains(&id)).map(|_| ())
    });
    assert!(removed.is_some(), "queue file {id} is still queued\n{context}");
    assert_eq!(harness.postfix.delivered_messages(&marker).len(), 1, "more than one copy was delivered\n{context}");
    Ok(())
}

fn tempfail_answers_4xx(harness: &Harness) -> Result<(), Failed> {
    let marker = unique_marker("tempfail");
    let outcome = email(harness, PLAIN_LISTENER, "a@later.example", &marker).try_send()?;
    let context = format!("{}\n{}", outcome.transcript, harness.diagnostics());

    assert!(!outcome.success, "swaks reported success\n{context}");
    assert_eq!(reply_to(&outcome.transcript, "RCPT TO:").as_deref(), Some(DEFAULT_TEMPFAIL_REPLY), "{context}");
    let logged = format!("recipient <{}> tempfailed by policy retry-later", recipient(&marker));
    assert!(wait_for_milter_log(harness, &logged), "the milter did not log {logged:?}\n{context}");
    Ok(())
}

fn tls12_below_tls13_floor_rejected(harness: &Harness) -> Result<(), Failed> {
    let marker = unique_marker("tls12");
    let email_tls12 = email(harness, PLAIN_LISTENER, "a@tls13.example", &marker).tls_protocol("tlsv1_2");
    let outcome = email_tls12.try_send()?;
    let context = format!("{}\n{}", outcome.transcript, harness.diagnostics());

    assert!(
        outcome.transcript.contains("=== TLS started with cipher TLSv1.2:"),
        "the session did not negotiate TLS 1.2, so the case tests nothing\n{context}"
    );
    assert!(!outcome.success, "swaks reported success\n{context}");
    assert_eq!(reply_to(&outcome.transcript, "RCPT TO:").as_deref(), Some("550 5.7.10 TLS 1.3 required"), "{context}");

    // The same rule accepts TLS 1.3, so the rejection above is the floor's doing.
    let marker = unique_marker("tls13");
    let email_tls13 = email(harness, PLAIN_LISTENER, "a@tls13.example", &marker).starttls();
    let message = harness.send_and_receive(&email_tls13, &marker)?;
    let context = format!("delivered message:\n{message}\n{}", harness.diagnostics());
    let header = parse_milter_field(&message, || context.clone());
    assert_eq!(header.get("live"), Some("TLSv1.3"), "{context}");
    assert_policy(&header, "tls13-only", "tag", false, &context);
    Ok(())
}

fn authenticated_plaintext_exempt(harness: &Harness) -> Result<(), Failed> {
    let marker = unique_marker("auth-yes");
    let email = email(harness, SASL_LISTENER, "a@auth.example", &marker)
        .auth(&format!("{SASL_USER}@{SASL_REALM}"), SASL_PASSWORD);
    let outcome = email.try_send()?;
    let context = format!("{}\n{}", outcome.transcript, harness.diagnostics());

    let auth_reply = reply_to(&outcome.transcript, "AUTH PLAIN").unwrap_or_default();
    assert!(auth_reply.starts_with("235 "), "SASL authentication failed with {auth_reply:?}\n{context}");
    assert!(outcome.success, "swaks reported a failure\n{context}");

    let message =
        harness.postfix.wait_for_message(&marker, WAIT_TIMEOUT).map_err(|error| format!("{error}\n{context}"))?;
    let context = format!("delivered message:\n{message}\n{context}");
    let header = parse_milter_field(&message, || context.clone());
    assert_eq!(header.get("tls"), Some("fail"), "{context}");
    assert_eq!(header.get("live"), Some("none"), "{context}");
    assert_policy(&header, "authenticated", "tag", false, &context);
    Ok(())
}

fn unauthenticated_plaintext_rejected(harness: &Harness) -> Result<(), Failed> {
    let marker = unique_marker("auth-no");
    let outcome = email(harness, SASL_LISTENER, "a@auth.example", &marker).try_send()?;
    let context = format!("{}\n{}", outcome.transcript, harness.diagnostics());

    // The EHLO reply must offer AUTH PLAIN, so that the session is unauthenticated by choice.
    let offers_plain = outcome.transcript.lines().any(|line| {
        let reply = line.get(4..).unwrap_or_default();
        (reply.starts_with("250-AUTH ") || reply.starts_with("250 AUTH "))
            && reply.split_whitespace().any(|word| word == "PLAIN")
    });
    assert!(offers_plain, "the listener offers no AUTH PLAIN\n{context}");
    assert!(!outcome.success, "swaks reported success\n{context}");
    assert_eq!(
        reply_to(&outcome.transcript, "RCPT TO:").as_deref(),
        Some("550 5.7.10 Authenticate or use TLS"),
        "{context}"
    );
    Ok(())
}

fn local_submission_tagged_internal(harness: &Harness) -> Result<(), Failed> {
    let marker = unique_marker("local");
    let to = recipient(&marker);
    let data = format!("From: root@local.example\nTo: {to}\nSubject: {marker}\n\nSubmitted with sendmail(1).\n");
    harness
        .postfix
        .sendmail(&format!("{marker}@local.example"), &[&to], &data)
        .map_err(|error| format!("{error}\n{}", harness.diagnostics()))?;

    let message = harness
        .postfix
        .wait_for_message(&marker, WAIT_TIMEOUT)
        .map_err(|error| format!("{error}\n{}", harness.diagnostics()))?;
    let context = format!("delivered message:\n{message}\n{}", harness.diagnostics());
    let header = parse_milter_field(&message, || context.clone());
    assert_eq!(header.get("tls"), Some("internal"), "{context}");
    assert_policy(&header, "local-enforced", "tag", false, &context);
    let held = harness
        .postfix
        .queue_ids("hold")
        .into_iter()
        .find(|id| harness.postfix.postcat(id).is_ok_and(|text| text.contains(&marker)));
    assert_eq!(held, None, "a copy sits in the hold queue\n{context}");
    Ok(())
}

/// Checks that main.cf contains every line of the snippet except the two milter addresses, and
/// that each of its settings is the value Postfix uses.
fn snippet_settings_in_force(harness: &Harness) -> Result<(), Failed> {
    let main_cf_path = harness.postfix.config_dir().join("main.cf");
    let main_cf = fs::read_to_string(&main_cf_path)
        .map_err(|error| format!("reading {} failed: {error}", main_cf_path.display()))?;
    let main_cf_lines: Vec<&str> = main_cf.lines().collect();

    for line in MAIN_CF_SNIPPET.lines() {
        let parameter = main_cf_parameter(line);
        if matches!(parameter, Some("smtpd_milters" | "non_smtpd_milters")) {
            continue;
        }
        assert!(main_cf_lines.contains(&line), "main.cf lacks the snippet line {line:?}\nmain.cf:\n{main_cf}");
        let Some(name) = parameter else { continue };

        let expected = line.split_once('=').map(|(_, value)| value.trim()).unwrap_or_default();
        let effective = postconf(harness, name)?;
        assert_eq!(
            effective, expected,
            "Postfix uses {name} = {effective}, the snippet sets {expected}\nmain.cf:\n{main_cf}"
        );
    }

    let non_smtpd_milters = postconf(harness, "non_smtpd_milters")?;
    assert_eq!(non_smtpd_milters, harness.milters[0].socket(), "main.cf:\n{main_cf}");
    Ok(())
}

/// Returns the value of main.cf parameter `name` that the instance uses, from `postconf -h`.
fn postconf(harness: &Harness, name: &str) -> Result<String, String> {
    let config_dir = harness.postfix.config_dir();
    let output = run_command(Command::new("/usr/sbin/postconf").arg("-c").arg(config_dir).args(["-h", name]))?;
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_string())
}
