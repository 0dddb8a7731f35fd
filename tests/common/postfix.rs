//! A private Postfix instance in a temporary directory, driven with `postfix -c DIR`.
//!
//! It has its own config, queue, data, mail and log directories, runs every service unchrooted,
//! listens only on 127.0.0.1, never delivers off the machine, and leaves /etc/postfix and the
//! system's Postfix service alone. Starting it requires root, as `postfix start` does.
//!
//! Mail to any address in [`SINK_DOMAIN`] is delivered into one Maildir, and mail to
//! [`DISCARD_DOMAIN`] is accepted and dropped. Each [`Listener`] is an smtpd service on its own
//! port with its own `smtpd_milters`.
//!
//! main.cf includes the settings recommended for tls-milter from [`MAIN_CF_SNIPPET_PATH`] as
//! written, except the milter addresses, so every recommended setting is one the tests run with.

use std::fmt::Write as _;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tempfile::TempDir;

use super::pki::TestPki;
use super::{
    LOG_TAIL_LINES, WAIT_TIMEOUT, free_port, is_root, poll, run_command, run_command_with_input, tail, wait_for_port,
};

/// Every address in this domain is delivered into the instance's one Maildir.
pub const SINK_DOMAIN: &str = "sink.test";
/// Every address in this domain is accepted and then dropped by discard(8).
pub const DISCARD_DOMAIN: &str = "discard.test";
/// `myhostname` of the instance, which Postfix writes into its Received fields.
pub const HOSTNAME: &str = "mx.test.example";

const POSTFIX: &str = "/usr/sbin/postfix";
/// uid and gid of `nobody`/`nogroup` on Debian, which virtual(8) delivers as.
const MAIL_OWNER_ID: u32 = 65534;

/// The file of main.cf settings recommended for tls-milter, relative to the crate root.
pub const MAIN_CF_SNIPPET_PATH: &str = "packaging/postfix/main.cf.snippet";
/// The text of [`MAIN_CF_SNIPPET_PATH`], which every instance's main.cf includes.
pub const MAIN_CF_SNIPPET: &str = include_str!("../../packaging/postfix/main.cf.snippet");

/// One smtpd service of the instance, listening on its own port of 127.0.0.1.
#[derive(Clone, Debug)]
pub struct Listener {
    /// Lower-case letters, digits and `_`. The log tags the service's lines `postfix/NAME/smtpd`.
    pub name: String,
    /// The service's `smtpd_milters`, in main.cf syntax (commas, spaces and `{ ... }` allowed).
    /// Empty runs the service without a milter.
    pub smtpd_milters: String,
    /// Further `-o name=value` overrides for the service. Values must contain no whitespace.
    pub options: Vec<(String, String)>,
}

impl Listener {
    pub fn new(name: &str, smtpd_milters: &str) -> Listener {
        Listener { name: name.to_string(), smtpd_milters: smtpd_milters.to_string(), options: Vec::new() }
    }

    /// Adds a master.cf `-o name=value` override for this service.
    pub fn option(mut self, name: &str, value: &str) -> Listener {
        self.options.push((name.to_string(), value.to_string()));
        self
    }

    /// Returns the name of the main.cf parameter that contains this service's milter list. master.cf
    /// references it, so a list with spaces and braces needs no quoting there.
    fn milters_parameter(&self) -> String {
        format!("tls_milter_test_{}_milters", self.name)
    }
}

/// The parts of the instance that a test binary chooses. [`Postfix::start`] fixes everything else.
#[derive(Clone, Debug, Default)]
pub struct PostfixConfig {
    /// At least one. Each gets a free port, see [`Postfix::port`].
    pub listeners: Vec<Listener>,
    /// `non_smtpd_milters`, applied to mail from [`Postfix::sendmail`]. Empty for none.
    pub non_smtpd_milters: String,
    /// main.cf lines appended after the harness's own, so they override them.
    pub extra_main_cf: Vec<String>,
    /// Further files written below the config directory before Postfix starts, as (path relative
    /// to the config directory, text), such as Cyrus SASL's `sasl/smtpd.conf`. Mode 0644.
    pub config_files: Vec<(String, String)>,
}

/// A running private Postfix instance. [`Postfix::stop`] or drop stops it and removes its files.
///
/// NOTE: a test process killed by a signal leaves its instance running. Stop such an instance with
/// `postfix -c /tmp/tls-milter-postfix-*/etc stop`.
pub struct Postfix {
    config_dir: PathBuf,
    queue_dir: PathBuf,
    maildir: PathBuf,
    log_file: PathBuf,
    pki: TestPki,
    ports: Vec<(String, u16)>,
    running: AtomicBool,
    // Last, so it is removed after `Drop::drop` has stopped Postfix.
    root: TempDir,
}

impl Postfix {
    /// Writes the instance's files into a new temporary directory, starts it and waits until every
    /// listener accepts connections.
    pub fn start(config: &PostfixConfig) -> Result<Postfix, String> {
        check_prerequisites(config)?;

        let root = tempfile::Builder::new()
            .prefix("tls-milter-postfix-")
            .tempdir()
            .map_err(|error| format!("creating a temporary directory failed: {error}"))?;
        // `postfix -c DIR` exits 1 with no message when DIR is relative.
        let root_path = root
            .path()
            .canonicalize()
            .map_err(|error| format!("resolving {} failed: {error}", root.path().display()))?;
        // Postfix's daemons run as the postfix user and virtual(8) as nobody: both must reach
        // their directories through the temporary directory, which tempfile creates as 0700.
        set_mode(&root_path, 0o755)?;

        let config_dir = root_path.join("etc");
        let queue_dir = root_path.join("queue");
        let data_dir = root_path.join("data");
        let mail_dir = root_path.join("mail");
        let log_dir = root_path.join("log");
        let tls_dir = root_path.join("tls");
        for dir in [&config_dir, &queue_dir, &data_dir, &mail_dir, &log_dir, &tls_dir] {
            fs::create_dir(dir).map_err(|error| format!("creating {} failed: {error}", dir.display()))?;
        }
        run_command(Command::new("chown").arg("postfix").arg(&data_dir))?;
        std::os::unix::fs::chown(&mail_dir, Some(MAIL_OWNER_ID), Some(MAIL_OWNER_ID))
            .map_err(|error| format!("changing the owner of {} failed: {error}", mail_dir.display()))?;

        let pki = TestPki::create(&tls_dir)?;
        let mut ports = Vec::new();
        for listener in &config.listeners {
            ports.push((listener.name.clone(), free_port()?));
        }

        let postfix = Postfix {
            maildir: mail_dir.join("sink"),
            log_file: log_dir.join("maillog"),
            config_dir,
            queue_dir,
            pki,
            ports,
            running: AtomicBool::new(false),
            root,
        };
        postfix.write_main_cf(config, &root_path, &data_dir, &mail_dir)?;
        postfix.write_master_cf(config)?;
        for (relative_path, text) in &config.config_files {
            let path = postfix.config_dir.join(relative_path);
            if let Some(parent) = path.parent() {
                fs::create_dir_all(parent).map_err(|error| format!("creating {} failed: {error}", parent.display()))?;
            }
            write_file(&path, text)?;
            set_mode(&path, 0o644)?;
        }

        // `postfix start` runs `postfix check` first and fails on what it finds.
        postfix.running.store(true, Ordering::SeqCst);
        run_command(Command::new(POSTFIX).arg("-c").arg(&postfix.config_dir).arg("start"))
            .map_err(|error| format!("{error}\n{}", postfix.diagnostics()))?;
        for (name, port) in &postfix.ports {
            wait_for_port(*port, WAIT_TIMEOUT, || Ok(())).map_err(|error| {
                format!("Postfix listener {name:?} is not listening: {error}\n{}", postfix.diagnostics())
            })?;
        }
        Ok(postfix)
    }

    fn write_main_cf(
        &self,
        config: &PostfixConfig,
        root: &Path,
        data_dir: &Path,
        mail_dir: &Path,
    ) -> Result<(), String> {
        let mut text = format!(
            "\
compatibility_level = 3.6

# Private locations: nothing is read from or written to /etc/postfix or /var/spool/postfix,
# except meta_directory's postfix-files, which is only read.
queue_directory = {queue}
data_directory = {data}
command_directory = /usr/sbin
daemon_directory = /usr/lib/postfix/sbin
shlib_directory = /usr/lib/postfix
meta_directory = /etc/postfix
mail_owner = postfix
setgid_group = postdrop
maillog_file = {log}
maillog_file_prefixes = {root}

# Identity and routing: mail for {sink} goes into one Maildir, mail for {discard} is dropped,
# and nothing is sent anywhere else.
myhostname = {hostname}
mydomain = test.example
myorigin = $myhostname
mydestination =
alias_maps =
alias_database =
inet_interfaces = loopback-only
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
virtual_mailbox_domains = {sink}
virtual_mailbox_base = {mail}
virtual_mailbox_maps = static:sink/
virtual_uid_maps = static:{owner}
virtual_gid_maps = static:{owner}
transport_maps = inline:{{{discard}=discard:}}
default_transport = error:the test instance sends no mail off the machine
relay_transport = error:the test instance sends no mail off the machine

# No sleeps or flow control that slow a test down.
smtpd_error_sleep_time = 0s
in_flow_delay = 0s

# STARTTLS offered, a client certificate requested and verified against the test CA.
smtpd_tls_security_level = may
smtpd_tls_cert_file = {server_cert}
smtpd_tls_key_file = {server_key}
smtpd_tls_ask_ccert = yes
smtpd_tls_CAfile = {ca_cert}
smtpd_tls_loglevel = 1

# --- {snippet_path}, with the milter addresses of the test ---
{snippet}# --- end of {snippet_path} ---

# Short enough that a hung milter fails a test within swaks' 20 s timeout for each step.
milter_connect_timeout = 5s
milter_command_timeout = 10s
milter_content_timeout = 10s
",
            queue = self.queue_dir.display(),
            data = data_dir.display(),
            log = self.log_file.display(),
            root = root.display(),
            sink = SINK_DOMAIN,
            discard = DISCARD_DOMAIN,
            hostname = HOSTNAME,
            mail = mail_dir.display(),
            owner = MAIL_OWNER_ID,
            server_cert = self.pki.server_cert.display(),
            server_key = self.pki.server_key.display(),
            ca_cert = self.pki.ca_cert.display(),
            snippet_path = MAIN_CF_SNIPPET_PATH,
            snippet = main_cf_snippet(&config.non_smtpd_milters)?,
        );
        for listener in &config.listeners {
            writeln!(text, "{} = {}", listener.milters_parameter(), listener.smtpd_milters).unwrap();
        }
        if !config.extra_main_cf.is_empty() {
            text.push_str("\n# Lines the test binary added.\n");
            for line in &config.extra_main_cf {
                writeln!(text, "{line}").unwrap();
            }
        }
        write_file(&self.config_dir.join("main.cf"), &text)
    }

    fn write_master_cf(&self, config: &PostfixConfig) -> Result<(), String> {
        // Debian's master.cf runs services chrooted, but this instance has no chroot tree.
        let mut text = String::from("# service type private unpriv chroot wakeup maxproc command\n");
        for (listener, (_, port)) in config.listeners.iter().zip(&self.ports) {
            write!(
                text,
                "127.0.0.1:{port} inet n - n - - smtpd\n  -o syslog_name=postfix/{name}\n  -o smtpd_milters=${parameter}\n",
                name = listener.name,
                parameter = listener.milters_parameter(),
            )
            .unwrap();
            for (name, value) in &listener.options {
                writeln!(text, "  -o {name}={value}").unwrap();
            }
        }
        text.push_str(
            "\
pickup     unix  n - n 60    1 pickup
cleanup    unix  n - n -     0 cleanup
qmgr       unix  n - n 300   1 qmgr
tlsmgr     unix  - - n 1000? 1 tlsmgr
rewrite    unix  - - n -     - trivial-rewrite
bounce     unix  - - n -     0 bounce
defer      unix  - - n -     0 bounce
trace      unix  - - n -     0 bounce
verify     unix  - - n -     1 verify
flush      unix  n - n 1000? 0 flush
proxymap   unix  - - n -     - proxymap
proxywrite unix  - - n -     1 proxymap
smtp       unix  - - n -     - smtp
relay      unix  - - n -     - smtp
showq      unix  n - n -     - showq
error      unix  - - n -     - error
retry      unix  - - n -     - error
discard    unix  - - n -     - discard
virtual    unix  - n n -     - virtual
anvil      unix  - - n -     1 anvil
scache     unix  - - n -     1 scache
postlog    unix-dgram n - n - 1 postlogd
",
        );
        write_file(&self.config_dir.join("master.cf"), &text)
    }

    /// Returns the port of the listener named `name`.
    ///
    /// Panics when the instance has no such listener, which is a mistake in the test.
    pub fn port(&self, name: &str) -> u16 {
        match self.ports.iter().find(|(listener, _)| listener == name) {
            Some((_, port)) => *port,
            None => panic!("the Postfix instance has no listener named {name:?}, only {:?}", self.ports),
        }
    }

    /// Returns the instance's config directory, for `postfix -c`, `postconf -c`, `postqueue -c` and the like.
    pub fn config_dir(&self) -> &Path {
        &self.config_dir
    }

    pub fn pki(&self) -> &TestPki {
        &self.pki
    }

    /// Returns the Maildir that receives all mail for [`SINK_DOMAIN`].
    pub fn maildir(&self) -> &Path {
        &self.maildir
    }

    pub fn log_file(&self) -> &Path {
        &self.log_file
    }

    /// Returns the text of every delivered message that contains `marker`.
    pub fn delivered_messages(&self, marker: &str) -> Vec<String> {
        let Ok(entries) = fs::read_dir(self.maildir.join("new")) else {
            return Vec::new();
        };
        let mut messages = Vec::new();
        for entry in entries.flatten() {
            // virtual(8) writes into tmp/ and renames into new/, so a file in new/ is complete.
            if let Ok(bytes) = fs::read(entry.path()) {
                let text = String::from_utf8_lossy(&bytes).into_owned();
                if text.contains(marker) {
                    messages.push(text);
                }
            }
        }
        messages
    }

    /// Waits until a message that contains `marker` is delivered and returns its text.
    ///
    /// When several are, it returns any one of them.
    pub fn wait_for_message(&self, marker: &str, timeout: Duration) -> Result<String, String> {
        poll(timeout, || self.delivered_messages(marker).pop()).ok_or_else(|| {
            format!("no message containing {marker:?} was delivered into {} within {timeout:?}", self.maildir.display())
        })
    }

    /// Submits `data` through Postfix's sendmail(1), the path that `non_smtpd_milters` applies to.
    pub fn sendmail(&self, sender: &str, recipients: &[&str], data: &str) -> Result<(), String> {
        let mut command = Command::new("/usr/sbin/sendmail");
        command.arg("-C").arg(&self.config_dir).args(["-i", "-f", sender, "--"]).args(recipients);
        run_command_with_input(&mut command, data.as_bytes())?;
        Ok(())
    }

    /// Returns the output of `postqueue -p`: every message in the active, incoming, deferred and
    /// hold queues, with a `!` after the queue id of a held message.
    pub fn queue_listing(&self) -> Result<String, String> {
        let output = run_command(Command::new("/usr/sbin/postqueue").arg("-c").arg(&self.config_dir).arg("-p"))?;
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }

    /// Returns the queue ids of the messages in `queue` (`hold`, `deferred`, `incoming`, `active`,
    /// `maildrop`), read from the queue directory.
    pub fn queue_ids(&self, queue: &str) -> Vec<String> {
        let mut ids = Vec::new();
        collect_file_names(&self.queue_dir.join(queue), &mut ids);
        ids.sort();
        ids
    }

    /// Returns `postcat -q ID`: the envelope, header and body of a queued message, for a held one too.
    pub fn postcat(&self, queue_id: &str) -> Result<String, String> {
        let output =
            run_command(Command::new("/usr/sbin/postcat").arg("-c").arg(&self.config_dir).args(["-q", queue_id]))?;
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }

    /// Sets main.cf parameters (`name = value` each) with `postconf -e`, then reloads Postfix.
    ///
    /// NOTE: the reload is asynchronous, and it applies to every listener at once, so a test binary
    /// that runs cases in parallel should not call it while other cases send mail.
    pub fn set_main_cf(&self, settings: &[&str]) -> Result<(), String> {
        run_command(Command::new("/usr/sbin/postconf").arg("-c").arg(&self.config_dir).arg("-e").args(settings))?;
        run_command(Command::new(POSTFIX).arg("-c").arg(&self.config_dir).arg("reload"))?;
        Ok(())
    }

    /// Returns the tail of the Postfix log and the queue listing, for failure messages.
    pub fn diagnostics(&self) -> String {
        let queue = self.queue_listing().unwrap_or_else(|error| error);
        format!(
            "--- Postfix log, last {LOG_TAIL_LINES} lines of {} ---\n{}\n--- postqueue -p ---\n{}\n",
            self.log_file.display(),
            tail(&self.log_file, LOG_TAIL_LINES),
            queue.trim_end(),
        )
    }

    /// Stops Postfix with `postfix stop`, or `postfix abort` when that fails. Calling it again
    /// does nothing.
    pub fn stop(&self) {
        if !self.running.swap(false, Ordering::SeqCst) {
            return;
        }
        let stopped = run_command(Command::new(POSTFIX).arg("-c").arg(&self.config_dir).arg("stop"));
        if let Err(error) = stopped {
            eprintln!("postfix stop failed, so running postfix abort: {error}");
            if let Err(error) = run_command(Command::new(POSTFIX).arg("-c").arg(&self.config_dir).arg("abort")) {
                eprintln!("postfix abort failed, so Postfix may still be running: {error}");
            }
        }
    }
}

impl Drop for Postfix {
    fn drop(&mut self) {
        self.stop();
    }
}

fn check_prerequisites(config: &PostfixConfig) -> Result<(), String> {
    if !Path::new(POSTFIX).exists() {
        return Err(format!("{POSTFIX} not found: run `bash tests/run.sh` as root, which installs Postfix"));
    }
    if !is_root() {
        return Err("starting a private Postfix requires root: run `bash tests/run.sh` as root".to_string());
    }
    if config.listeners.is_empty() {
        return Err("the Postfix config has no listener".to_string());
    }
    for (index, listener) in config.listeners.iter().enumerate() {
        let valid_name = !listener.name.is_empty()
            && listener.name.bytes().all(|byte| byte.is_ascii_lowercase() || byte.is_ascii_digit() || byte == b'_');
        if !valid_name {
            return Err(format!("invalid listener name {:?}: use lower-case letters, digits and _", listener.name));
        }
        if config.listeners[..index].iter().any(|other| other.name == listener.name) {
            return Err(format!("two listeners are named {:?}", listener.name));
        }
        for (name, value) in &listener.options {
            if name.contains(char::is_whitespace) || value.contains(char::is_whitespace) {
                return Err(format!("invalid master.cf option {name}={value:?} of listener {:?}", listener.name));
            }
        }
    }
    Ok(())
}

fn collect_file_names(dir: &Path, names: &mut Vec<String>) {
    let Ok(entries) = fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            // Postfix hashes the deferred queue into subdirectories.
            collect_file_names(&path, names);
        } else {
            names.push(entry.file_name().to_string_lossy().into_owned());
        }
    }
}

/// Returns [`MAIN_CF_SNIPPET`] with its `non_smtpd_milters` line set to `non_smtpd_milters` and
/// its `smtpd_milters` line emptied, because each listener sets its own in master.cf.
///
/// Every other line stays as written, so the recommended settings are the ones tested.
fn main_cf_snippet(non_smtpd_milters: &str) -> Result<String, String> {
    let mut text = String::new();
    let mut replaced = Vec::new();
    let mut lines = MAIN_CF_SNIPPET.lines().peekable();
    while let Some(line) = lines.next() {
        let replacement = match main_cf_parameter(line) {
            Some("smtpd_milters") => {
                "# Each listener sets smtpd_milters in master.cf from its own parameter below.\nsmtpd_milters ="
                    .to_string()
            }
            Some("non_smtpd_milters") => format!("non_smtpd_milters = {non_smtpd_milters}"),
            _ => {
                writeln!(text, "{line}").unwrap();
                continue;
            }
        };
        // Postfix would append a continuation line to the value that replaced the line above it.
        if lines.peek().is_some_and(|next| next.starts_with([' ', '\t'])) {
            return Err(format!("{MAIN_CF_SNIPPET_PATH}: write {line:?} on one line, so the tests can replace it"));
        }
        replaced.push(main_cf_parameter(line));
        writeln!(text, "{replacement}").unwrap();
    }
    for name in ["smtpd_milters", "non_smtpd_milters"] {
        let count = replaced.iter().filter(|found| **found == Some(name)).count();
        if count != 1 {
            return Err(format!("{MAIN_CF_SNIPPET_PATH} sets {name} {count} times, expected once"));
        }
    }
    Ok(text)
}

/// Returns the parameter name of a main.cf `name = value` line, or `None` for a comment, a blank
/// line or a continuation line.
pub fn main_cf_parameter(line: &str) -> Option<&str> {
    if line.starts_with(['#', ' ', '\t']) {
        return None;
    }
    line.split_once('=').map(|(name, _)| name.trim_end())
}

fn write_file(path: &Path, text: &str) -> Result<(), String> {
    fs::write(path, text).map_err(|error| format!("writing {} failed: {error}", path.display()))
}

fn set_mode(path: &Path, mode: u32) -> Result<(), String> {
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .map_err(|error| format!("changing the mode of {} failed: {error}", path.display()))
}
