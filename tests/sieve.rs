//! The Sieve example of docs/header.md, run by Pigeonhole's `sieve-test` against messages that a
//! real Postfix delivered through the milter.
//!
//! The script is read from the document, so the documented script is the tested one. Only its
//! authserv-id `mx.example.org` is replaced, by the one the test milters write. Dovecot's
//! `dovecot-core` and `dovecot-sieve` packages are downloaded and unpacked under Cargo's target
//! directory, never installed, because installing them starts Dovecot on public ports. Starting
//! Postfix requires root: `bash tests/run.sh` installs what the test needs and runs it.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::header::{FIELD_NAME, fields_named};
use common::milter::{AUTHSERV_ID, test_config};
use common::postfix::{Listener, PostfixConfig};
use common::sendmail::unpack_debian_packages;
use common::swaks::Email;
use common::{Harness, public_temp_dir, run_command, unique_marker};

/// The document the Sieve example is read from, relative to the crate root.
const DOC_PATH: &str = "docs/header.md";
/// The authserv-id of the document's examples, written as a regular expression inside a Sieve
/// string (each backslash doubled).
const DOC_AUTHSERV_ID_PATTERN: &str = r"mx\\.example\\.org";

/// An authserv-id long enough that the milter folds its field before `tls=`, so the delivered
/// field reads `v=1` CRLF TAB `tls=...`.
const LONG_AUTHSERV_ID: &str = "mail-gateway-with-a-rather-long-name.test.example";

/// The listener whose milter writes [`AUTHSERV_ID`].
const MILTER_LISTENER: &str = "milter";
/// The listener whose milter writes [`LONG_AUTHSERV_ID`].
const LONG_ID_LISTENER: &str = "long_id";

/// The folder of Sieve's implicit keep.
const INBOX: &str = "INBOX";

/// The user and group that Dovecot runs `sieve-test` as, because it refuses to read mail as root.
const SIEVE_USER: &str = "nobody";
const SIEVE_GROUP: &str = "nogroup";
const SIEVE_UID: u32 = 65534;

/// How a case's message is sent.
enum Sending {
    Plain,
    Starttls,
    /// STARTTLS, with this message as the DATA.
    StarttlsData(&'static str),
    /// Plain SMTP, with this message as the DATA.
    PlainData(&'static str),
}

/// One message, the listener it is sent to, the authserv-id the script is adapted to, and the
/// folder the script must file it into.
struct Case {
    name: &'static str,
    listener: &'static str,
    sending: Sending,
    script_authserv_id: &'static str,
    expected_folder: &'static str,
}

/// A message whose one Received field below the live hop was written by an MTA that does not
/// record TLS, so the verdict is `unknown`.
const UNKNOWN_HOP_MESSAGE: &str = "\
Received: from mail.sender.example (mail.sender.example [192.0.2.10])
\tby relay.partner.example with SMTP id abc123; Fri, 4 Dec 2026 20:00:00 +0000
Date: Fri, 4 Dec 2026 20:00:01 +0000
From: sender@sink.test
To: recipient@sink.test
Subject: {marker}
Message-ID: <{marker}@sink.test>

One hop whose MTA does not record TLS.
";

/// A message that carries a forged field claiming tls=pass under the test's own authserv-id,
/// which `{authserv_id}` stands for.
const FORGED_PASS_MESSAGE: &str = "\
X-Transport-Security: {authserv_id}; v=1 tls=pass live=TLSv1.3 hops=0 encrypted=0
\tplaintext=0 internal=0 unknown=0 claimed=0
Date: Fri, 4 Dec 2026 20:00:01 +0000
From: sender@sink.test
To: recipient@sink.test
Subject: {marker}
Message-ID: <{marker}@sink.test>

A forged tls=pass field above.
";

fn cases() -> Vec<Case> {
    vec![
        Case {
            name: "plain SMTP files into Plaintext",
            listener: MILTER_LISTENER,
            sending: Sending::Plain,
            script_authserv_id: AUTHSERV_ID,
            expected_folder: "Plaintext",
        },
        Case {
            name: "STARTTLS is kept in the inbox",
            listener: MILTER_LISTENER,
            sending: Sending::Starttls,
            script_authserv_id: AUTHSERV_ID,
            expected_folder: INBOX,
        },
        Case {
            name: "unknown hop files into Unverified",
            listener: MILTER_LISTENER,
            sending: Sending::StarttlsData(UNKNOWN_HOP_MESSAGE),
            script_authserv_id: AUTHSERV_ID,
            expected_folder: "Unverified",
        },
        Case {
            name: "forged tls=pass field is not trusted",
            listener: MILTER_LISTENER,
            sending: Sending::PlainData(FORGED_PASS_MESSAGE),
            script_authserv_id: AUTHSERV_ID,
            expected_folder: "Plaintext",
        },
        Case {
            name: "field folded before tls= still matches",
            listener: LONG_ID_LISTENER,
            sending: Sending::Plain,
            script_authserv_id: LONG_AUTHSERV_ID,
            expected_folder: "Plaintext",
        },
        Case {
            name: "field of another authserv-id is ignored",
            listener: LONG_ID_LISTENER,
            sending: Sending::Plain,
            script_authserv_id: AUTHSERV_ID,
            expected_folder: INBOX,
        },
    ]
}

#[test]
fn documented_sieve_script_files_delivered_mail() {
    let doc_script = match documented_sieve_script() {
        Ok(script) => script,
        Err(error) => panic!("{error}"),
    };
    let sieve = match SieveTest::prepare() {
        Ok(sieve) => sieve,
        Err(error) => panic!("preparing sieve-test failed: {error}"),
    };
    let harness = match start_harness() {
        Ok(harness) => harness,
        Err(error) => panic!("starting the test harness failed: {error}"),
    };

    let mut failures = Vec::new();
    for (index, case) in cases().iter().enumerate() {
        if let Err(error) = run_case(&harness, &sieve, &doc_script, index, case) {
            failures.push(format!("case {:?}: {error}", case.name));
        }
    }
    harness.stop();
    assert!(failures.is_empty(), "{} of {} cases failed:\n\n{}", failures.len(), cases().len(), failures.join("\n\n"));
}

fn start_harness() -> Result<Harness, String> {
    let long_id_config = test_config().replace(&format!("\"{AUTHSERV_ID}\""), &format!("\"{LONG_AUTHSERV_ID}\""));
    Harness::start(&[("main", &test_config()), ("long-id", &long_id_config)], |milters| PostfixConfig {
        listeners: vec![
            Listener::new(MILTER_LISTENER, &milters[0].socket()),
            Listener::new(LONG_ID_LISTENER, &milters[1].socket()),
        ],
        ..PostfixConfig::default()
    })
}

/// Sends the case's message, runs the adapted script on the delivered copy and compares the folder.
fn run_case(harness: &Harness, sieve: &SieveTest, doc_script: &str, index: usize, case: &Case) -> Result<(), String> {
    let marker = unique_marker("sieve");
    let port = harness.postfix.port(case.listener);
    let email = match case.sending {
        Sending::Plain => Email::new(port).header(&format!("Subject: {marker}")),
        Sending::Starttls => Email::new(port).header(&format!("Subject: {marker}")).starttls(),
        Sending::StarttlsData(message) => Email::new(port).data(&fill_in(message, &marker)).starttls(),
        Sending::PlainData(message) => Email::new(port).data(&fill_in(message, &marker)),
    };
    let delivered = harness.send_and_receive(&email, &marker)?;

    let fields = fields_named(&delivered, FIELD_NAME);
    if fields.len() != 1 {
        return Err(format!("expected one {FIELD_NAME} field, found {}:\n{delivered}", fields.len()));
    }
    if case.listener == LONG_ID_LISTENER && !fields[0].raw_value.contains("v=1\n\ttls=") {
        return Err(format!("the field is not folded before tls=, so the case tests nothing:\n{delivered}"));
    }

    let script = adapt_script(doc_script, case.script_authserv_id);
    let folder = sieve.run(&format!("case{index}"), &script, &delivered)?;
    if folder != case.expected_folder {
        return Err(format!(
            "filed into {folder:?}, expected {:?}\n--- script ---\n{script}\n--- delivered message ---\n{delivered}",
            case.expected_folder
        ));
    }
    Ok(())
}

/// Replaces `{marker}` and `{authserv_id}` in a message template.
fn fill_in(template: &str, marker: &str) -> String {
    template.replace("{marker}", marker).replace("{authserv_id}", AUTHSERV_ID)
}

/// Returns the body of the first ```sieve block of docs/header.md.
fn documented_sieve_script() -> Result<String, String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(DOC_PATH);
    let text = fs::read_to_string(&path).map_err(|error| format!("reading {} failed: {error}", path.display()))?;
    let start = text.find("```sieve\n").ok_or_else(|| format!("{DOC_PATH} has no ```sieve block"))?;
    let body = &text[start + "```sieve\n".len()..];
    let end = body.find("\n```").ok_or_else(|| format!("the ```sieve block of {DOC_PATH} is not closed"))?;
    let script = format!("{}\n", &body[..end]);
    if !script.contains(DOC_AUTHSERV_ID_PATTERN) {
        return Err(format!(
            "the Sieve example of {DOC_PATH} does not match the authserv-id as {DOC_AUTHSERV_ID_PATTERN}"
        ));
    }
    Ok(script)
}

/// Replaces the document's authserv-id in `script` with `authserv_id`, escaped the same way.
fn adapt_script(script: &str, authserv_id: &str) -> String {
    script.replace(DOC_AUTHSERV_ID_PATTERN, &authserv_id.replace('.', r"\\."))
}

/// Pigeonhole's sieve-test, unpacked, with a private Dovecot configuration.
struct SieveTest {
    /// The unpacked tree of dovecot-core and dovecot-sieve.
    tree: PathBuf,
    /// Scripts, messages and the configuration; owned by [`SIEVE_USER`], who must write the
    /// compiled scripts next to their sources.
    work: tempfile::TempDir,
}

impl SieveTest {
    fn prepare() -> Result<SieveTest, String> {
        let tree = unpack_debian_packages("dovecot", &["dovecot-core", "dovecot-sieve"])?;
        let work = public_temp_dir("tls-milter-sieve-")?;
        std::os::unix::fs::chown(work.path(), Some(SIEVE_UID), None)
            .map_err(|error| format!("changing the owner of {} failed: {error}", work.path().display()))?;

        let config = format!(
            "\
# A private configuration for sieve-test only: nothing listens, nothing is logged to syslog.
base_dir = {work}/run
state_dir = {work}/state
log_path = /dev/stderr
# sieve-test stores nothing without -e, but refuses to start without a mail location.
mail_location = maildir:{work}/mail
protocols =
ssl = no
# Dovecot refuses to read mail as root, and Debian's dovenull user may not exist.
mail_uid = {SIEVE_USER}
mail_gid = {SIEVE_GROUP}
default_login_user = {SIEVE_USER}
default_internal_user = {SIEVE_USER}
default_internal_group = {SIEVE_GROUP}
",
            work = work.path().display(),
        );
        fs::write(work.path().join("dovecot.conf"), config)
            .map_err(|error| format!("writing dovecot.conf failed: {error}"))?;
        Ok(SieveTest { tree, work })
    }

    /// Runs `script` on `message` and returns the one folder it is stored into, the implicit
    /// keep's `INBOX` included.
    fn run(&self, name: &str, script: &str, message: &str) -> Result<String, String> {
        let script_file = self.work.path().join(format!("{name}.sieve"));
        let message_file = self.work.path().join(format!("{name}.eml"));
        fs::write(&script_file, script)
            .map_err(|error| format!("writing {} failed: {error}", script_file.display()))?;
        fs::write(&message_file, message)
            .map_err(|error| format!("writing {} failed: {error}", message_file.display()))?;

        // Dovecot's programs read their settings by running /usr/bin/doveconf, a path built into
        // them. The unpacked doveconf with -e runs the program named after it with the settings
        // in its environment, which is what that fallback does too.
        let output = run_command(
            Command::new(self.tree.join("usr/bin/doveconf"))
                .arg("-c")
                .arg(self.work.path().join("dovecot.conf"))
                .arg("-e")
                .arg(self.tree.join("usr/bin/sieve-test"))
                .arg(&script_file)
                .arg(&message_file)
                .env("LD_LIBRARY_PATH", self.tree.join("usr/lib/dovecot")),
        )?;
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        if stderr.contains("Error:") {
            return Err(format!("sieve-test reported an error:\n{stderr}"));
        }

        let folders: Vec<&str> =
            stdout.lines().filter_map(|line| line.trim().strip_prefix("* store message in folder: ")).collect();
        match folders.as_slice() {
            [folder] => Ok(folder.to_string()),
            _ => Err(format!(
                "expected sieve-test to store the message in one folder, got {folders:?}:\n{stdout}\n{stderr}"
            )),
        }
    }
}

#[test]
fn adapted_script_escapes_the_new_id() {
    let script = adapt_script(r#"header :regex "X" "^mx\\.example\\.org;.* tls=fail( |$)""#, "a.b-c.test");
    assert_eq!(script, r#"header :regex "X" "^a\\.b-c\\.test;.* tls=fail( |$)""#);
}
