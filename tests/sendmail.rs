//! End-to-end tests against a real sendmail 8.17 on 127.0.0.1. swaks sends mail over plain SMTP
//! or STARTTLS, and sendmail passes it through the milter with the lines of
//! `packaging/sendmail/tls-milter.mc`. Each case reads the delivered copy, then runs
//! `tls-milter check` on it to read sendmail's own Received field.
//!
//! The binary starts one sendmail and one milter before the first case that runs, and stops both
//! after the last, also when cases fail or panic. Cases run in parallel and tell their messages
//! apart by a unique Subject. sendmail is unpacked from Debian's packages on first use (see
//! `common::sendmail`); starting it requires root: `bash tests/run.sh` installs what it needs and
//! runs this binary with the rest of the tests.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use libtest_mimic::Failed;
use serde_json::Value;

use common::fixture::{Case, Fixture, run_cases};
use common::header::{FIELD_NAME, TransportSecurity, fields_named, header_section, parse_milter_field};
use common::milter::{Milter, test_config};
use common::sendmail::Sendmail;
use common::swaks::Email;
use common::{WAIT_TIMEOUT, run_command, unique_marker};

fn main() -> ExitCode {
    let cases: [Case<Instance>; 4] = [
        ("plain_smtp_reports_live_none", plain_smtp_reports_live_none),
        ("starttls_reports_verify_no_cert", starttls_reports_verify_no_cert),
        ("client_cert_reports_verify_ok", client_cert_reports_verify_ok),
        ("shipped_mc_sets_helo_macros", shipped_mc_sets_helo_macros),
    ];
    run_cases("sendmail and the milter", start_instance, cases, [])
}

/// The milter and the sendmail that every case uses.
struct Instance {
    milter: Milter,
    sendmail: Sendmail,
    /// The milter's configuration file, for `tls-milter check`.
    check_config: PathBuf,
}

impl Instance {
    fn diagnostics(&self) -> String {
        format!("{}{}", self.sendmail.diagnostics(), self.milter.diagnostics())
    }
}

impl Fixture for Instance {
    fn stop(&self) {
        self.sendmail.stop();
        self.milter.stop();
    }
}

fn start_instance() -> Result<Instance, String> {
    let milter = Milter::start("sendmail", &test_config())?;
    // On error the milter is dropped here, which stops it.
    let sendmail = Sendmail::start(&milter.socket())?;
    let check_config = sendmail.root().join("tls-milter.toml");
    std::fs::write(&check_config, test_config())
        .map_err(|error| format!("writing {} failed: {error}", check_config.display()))?;
    Ok(Instance { milter, sendmail, check_config })
}

/// A delivered message, its one X-Transport-Security field parsed, and its file.
struct Delivered {
    message: String,
    header: TransportSecurity,
    path: PathBuf,
}

impl Delivered {
    /// Returns the header section and the logs, for assertion messages.
    fn context(&self, instance: &Instance) -> String {
        format!("delivered header section:\n{}\n{}", header_section(&self.message), instance.diagnostics())
    }

    /// Returns sendmail's own Received field, the topmost, unfolded.
    fn sendmail_received(&self) -> String {
        fields_named(&self.message, "Received").first().map(|field| field.unfolded()).unwrap_or_default()
    }

    /// Returns the TLS comment of sendmail's own Received field.
    ///
    /// Panics when the field has no such comment, with the logs in the message.
    fn sendmail_tls(&self, instance: &Instance) -> SendmailTls {
        let received = self.sendmail_received();
        match SendmailTls::parse(&received) {
            Some(tls) => tls,
            None => panic!(
                "sendmail's Received field has no (version=... cipher=... bits=... verify=...): {received}\n{}",
                self.context(instance)
            ),
        }
    }
}

/// Sends `email`, waits for its delivery and checks what holds for every message that passed the
/// milter: exactly one X-Transport-Security field, ours, well-formed, above sendmail's Received field.
fn deliver(instance: &Instance, email: &Email, marker: &str) -> Result<Delivered, Failed> {
    email.send().map_err(|error| format!("{error}\n{}", instance.diagnostics()))?;
    let (path, message) = instance
        .sendmail
        .wait_for_message(marker, WAIT_TIMEOUT)
        .map_err(|error| format!("{error}\n{}", instance.diagnostics()))?;
    let context = || format!("delivered message {}:\n{message}\n{}", path.display(), instance.diagnostics());

    let header = parse_milter_field(&message, context);

    let names: Vec<String> = common::header::header_fields(&message).into_iter().map(|field| field.name).collect();
    let ours = names.iter().position(|name| name.eq_ignore_ascii_case(FIELD_NAME));
    let received = names.iter().position(|name| name.eq_ignore_ascii_case("Received"));
    assert!(received.is_some(), "the message has no Received field\n{}", context());
    assert!(ours < received, "{FIELD_NAME} is not above sendmail's Received field\n{}", context());

    Ok(Delivered { message, header, path })
}

/// Returns a swaks transaction to sendmail with a Subject of `marker`.
fn email(instance: &Instance, marker: &str) -> Email {
    Email::new(instance.sendmail.port()).header(&format!("Subject: {marker}"))
}

/// Runs `tls-milter check --format json` on the delivered file and returns its first hop, the
/// Received field sendmail wrote, which `check` reads as the live hop.
fn checked_first_hop(delivered: &Delivered, instance: &Instance) -> Result<Value, Failed> {
    let output = run_command(
        Command::new(env!("CARGO_BIN_EXE_tls-milter"))
            .args(["check", "--format", "json", "--config"])
            .arg(&instance.check_config)
            .arg(&delivered.path)
            .current_dir(Path::new("/")),
    )?;
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let report: Value = serde_json::from_str(stdout.trim())
        .map_err(|error| format!("check printed invalid JSON: {error}\n{stdout}"))?;
    let hop = report["hops"][0].clone();
    if hop.is_null() {
        return Err(format!("check reported no hop\n{stdout}\n{}", delivered.context(instance)).into());
    }
    Ok(hop)
}

fn plain_smtp_reports_live_none(instance: &Instance) -> Result<(), Failed> {
    let marker = unique_marker("sendmail-plain");
    let delivered = deliver(instance, &email(instance, &marker), &marker)?;
    let header = &delivered.header;
    let context = || delivered.context(instance);

    assert_eq!(header.get("tls"), Some("fail"), "{}", context());
    assert_eq!(header.get("live"), Some("none"), "{}", context());
    assert_eq!(header.get("cipher"), None, "a plaintext session has no cipher\n{}", context());

    let received = delivered.sendmail_received();
    assert!(
        received.contains(" with ESMTP id "),
        "sendmail's Received field is not plain ESMTP: {received}\n{}",
        context()
    );
    let hop = checked_first_hop(&delivered, instance)?;
    assert_eq!(hop["mta"], "sendmail", "check did not recognise sendmail's field: {hop}");
    assert_eq!(hop["claim"], "plaintext", "{hop}");
    assert_eq!(hop["tls_version"], Value::Null, "{hop}");
    assert_eq!(hop["cipher"], Value::Null, "{hop}");
    Ok(())
}

fn starttls_reports_verify_no_cert(instance: &Instance) -> Result<(), Failed> {
    let marker = unique_marker("sendmail-starttls");
    let delivered = deliver(instance, &email(instance, &marker).starttls(), &marker)?;
    let header = &delivered.header;
    let context = || delivered.context(instance);

    let tls = delivered.sendmail_tls(instance);
    assert_eq!(tls.verify, "NO", "swaks sent no client certificate, yet sendmail says otherwise\n{}", context());

    assert_eq!(header.get("tls"), Some("pass"), "{}", context());
    assert_eq!(header.get("live"), Some(tls.version.as_str()), "live= differs from sendmail's version=\n{}", context());
    assert_eq!(
        header.get("cipher"),
        Some(tls.cipher.as_str()),
        "cipher= differs from sendmail's cipher=\n{}",
        context()
    );
    assert_eq!(header.get("bits"), Some(tls.bits.as_str()), "bits= differs from sendmail's bits=\n{}", context());
    assert_eq!(header.get("verify"), Some("no-cert"), "{{verify}} NO must read verify=no-cert\n{}", context());

    let hop = checked_first_hop(&delivered, instance)?;
    assert_eq!(hop["mta"], "sendmail", "check did not recognise sendmail's field: {hop}");
    assert_eq!(hop["claim"], "encrypted", "{hop}");
    assert_eq!(hop["tls_version"], tls.version.as_str(), "{hop}");
    assert_eq!(hop["cipher"], tls.cipher.as_str(), "{hop}");
    assert_eq!(hop["bits"].to_string(), tls.bits, "{hop}");
    assert_eq!(hop["verify"], "no-cert", "{hop}");
    Ok(())
}

fn client_cert_reports_verify_ok(instance: &Instance) -> Result<(), Failed> {
    let marker = unique_marker("sendmail-client-cert");
    let email = email(instance, &marker).client_cert(instance.sendmail.pki());
    let delivered = deliver(instance, &email, &marker)?;
    let header = &delivered.header;
    let context = || delivered.context(instance);

    let tls = delivered.sendmail_tls(instance);
    assert_eq!(
        tls.verify,
        "OK",
        "sendmail did not verify the client certificate, so the case tests nothing\n{}",
        context()
    );

    assert_eq!(header.get("tls"), Some("pass"), "{}", context());
    assert_eq!(header.get("live"), Some(tls.version.as_str()), "{}", context());
    assert_eq!(header.get("cipher"), Some(tls.cipher.as_str()), "{}", context());
    assert_eq!(header.get("verify"), Some("ok"), "{{verify}} OK must read verify=ok\n{}", context());

    let hop = checked_first_hop(&delivered, instance)?;
    assert_eq!(hop["mta"], "sendmail", "check did not recognise sendmail's field: {hop}");
    assert_eq!(hop["claim"], "encrypted", "{hop}");
    assert_eq!(hop["tls_version"], tls.version.as_str(), "{hop}");
    assert_eq!(hop["cipher"], tls.cipher.as_str(), "{hop}");
    assert_eq!(hop["verify"], "ok", "{hop}");
    Ok(())
}

fn shipped_mc_sets_helo_macros(instance: &Instance) -> Result<(), Failed> {
    let cf_file = instance.sendmail.root().join("etc/sendmail.cf");
    let cf =
        std::fs::read_to_string(&cf_file).map_err(|error| format!("reading {} failed: {error}", cf_file.display()))?;

    let helo = cf.lines().find(|line| line.starts_with("O Milter.macros.helo="));
    let Some(helo) = helo else {
        panic!("{} sets no Milter.macros.helo", cf_file.display());
    };
    for name in ["{tls_version}", "{cipher}", "{cipher_bits}", "{cert_subject}", "{cert_issuer}", "{verify}"] {
        assert!(helo.contains(name), "Milter.macros.helo lacks {name}: {helo}");
    }
    let filter = cf.lines().find(|line| line.starts_with("Xtls-milter,"));
    assert!(filter.is_some_and(|line| line.contains("F=T")), "no Xtls-milter line with F=T in {}", cf_file.display());
    Ok(())
}

/// The TLS comment of sendmail's Received field: `(version=TLSv1.3 cipher=NAME bits=256 verify=NO)`.
struct SendmailTls {
    version: String,
    cipher: String,
    bits: String,
    verify: String,
}

impl SendmailTls {
    fn parse(received: &str) -> Option<SendmailTls> {
        let start = received.find("(version=")?;
        let end = start + received[start..].find(')')?;
        let mut tls =
            SendmailTls { version: String::new(), cipher: String::new(), bits: String::new(), verify: String::new() };
        for token in received[start + 1..end].split_whitespace() {
            let (key, value) = token.split_once('=')?;
            let slot = match key {
                "version" => &mut tls.version,
                "cipher" => &mut tls.cipher,
                "bits" => &mut tls.bits,
                "verify" => &mut tls.verify,
                _ => continue,
            };
            *slot = value.to_string();
        }
        let complete = [&tls.version, &tls.cipher, &tls.bits, &tls.verify].iter().all(|value| !value.is_empty());
        complete.then_some(tls)
    }
}
