//! A private sendmail 8.17 on 127.0.0.1, unpacked from Debian's `sendmail-bin` and `sendmail-cf`.
//!
//! The `sendmail-bin` package conflicts with `postfix`, so the packages are fetched with
//! `apt-get download` and unpacked with `dpkg -x` under Cargo's target directory, never installed.
//! The instance has its own `.cf` built with m4, queue and mail directories in a temporary
//! directory, listens only on 127.0.0.1, offers STARTTLS with the test PKI's server certificate and
//! requests a client certificate, which verifies against the test CA. It runs the milter lines of
//! `packaging/sendmail/tls-milter.mc` as a sendmail admin would, with only the socket replaced.
//!
//! Mail to any address in [`SINK_DOMAIN`] goes to a local mailer that writes each message into a
//! file of its own. The unpacked binary links against `libwrap0` and the .cf is built with `m4`,
//! which `tests/run.sh` installs. Starting it requires root, as sendmail's daemon mode does.

use std::fs::{self, File};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use tempfile::TempDir;

use super::pki::TestPki;
use super::postfix::SINK_DOMAIN;
use super::process::ChildProcess;
use super::{LOG_TAIL_LINES, WAIT_TIMEOUT, free_port, is_root, poll, run_command, tail, wait_for_port};

/// The milter lines a sendmail admin adds to sendmail.mc, as shipped.
pub const MILTER_MC: &str = include_str!("../../packaging/sendmail/tls-milter.mc");

/// The socket that [`MILTER_MC`] names, which the instance replaces with the milter under test.
pub const MILTER_MC_SOCKET: &str = "S=local:/run/tls-milter/tls-milter.sock";

/// The instance's host name, which sendmail writes into its Received fields. sendmail sleeps
/// 60 seconds at every start when its host name has no dot, so it runs in a UTS namespace of
/// its own with this name.
pub const HOSTNAME: &str = "mx.sendmail.test";

/// Debian packages unpacked for the instance: the binary, and the m4 files that build the .cf.
const PACKAGES: &[&str] = &["sendmail-bin", "sendmail-cf"];
/// The daemon, relative to the unpacked tree.
const BINARY: &str = "usr/libexec/sendmail/sendmail";
/// The m4 entry point of sendmail's configuration kit, relative to the unpacked tree.
const CF_M4: &str = "usr/share/sendmail/cf/m4/cf.m4";

/// How long sendmail gets to exit after SIGTERM before it is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(5);

/// A running private sendmail. [`Sendmail::stop`] or drop stops it and removes its files.
///
/// NOTE: a test process killed by a signal leaves its sendmail running. Find it with
/// `pgrep -a sendmail` and stop it with `kill PID`.
pub struct Sendmail {
    port: u16,
    mail_dir: PathBuf,
    /// Every SMTP command and reply, as sendmail's `-X` option writes them.
    traffic_log: PathBuf,
    /// sendmail's stdout and stderr.
    output_log: PathBuf,
    pki: TestPki,
    daemon: ChildProcess,
    // After `daemon`, so the files are removed after sendmail has stopped.
    root: TempDir,
}

impl Sendmail {
    /// Unpacks sendmail if needed, writes the instance's files into a new temporary directory,
    /// starts the daemon with `milter_socket` (Postfix's `inet:127.0.0.1:PORT` form) as the
    /// milter, and waits until it accepts connections.
    pub fn start(milter_socket: &str) -> Result<Sendmail, String> {
        if !is_root() {
            return Err("starting a private sendmail requires root: run `bash tests/run.sh` as root".to_string());
        }
        let sendmail_socket = sendmail_socket_spec(milter_socket)?;
        let unpacked = unpack_debian_packages("sendmail", PACKAGES)?;

        let root = tempfile::Builder::new()
            .prefix("tls-milter-sendmail-")
            .tempdir()
            .map_err(|error| format!("creating a temporary directory failed: {error}"))?;
        let root_path = root.path().to_path_buf();
        // The local mailer runs as sendmail's unprivileged DefaultUser, and must reach the mail
        // directory through the temporary directory, which tempfile creates as 0700.
        set_mode(&root_path, 0o755)?;

        let etc_dir = root_path.join("etc");
        let queue_dir = root_path.join("queue");
        let mail_dir = root_path.join("mail");
        let tls_dir = root_path.join("tls");
        for dir in [&etc_dir, &queue_dir, &mail_dir, &tls_dir] {
            fs::create_dir(dir).map_err(|error| format!("creating {} failed: {error}", dir.display()))?;
        }
        set_mode(&queue_dir, 0o700)?;
        set_mode(&mail_dir, 0o1777)?;

        let pki = TestPki::create(&tls_dir)?;
        // sendmail refuses a private key that others can read.
        set_mode(&pki.server_key, 0o600)?;

        let port = free_port()?;
        let files = InstanceFiles {
            etc_dir: &etc_dir,
            queue_dir: &queue_dir,
            mail_dir: &mail_dir,
            tls_dir: &tls_dir,
            pki: &pki,
        };
        files.write_support_files()?;
        let mc_file = etc_dir.join("sendmail.mc");
        write_file(&mc_file, &files.mc(&unpacked.join(CF_M4), port, &sendmail_socket)?)?;
        let cf_file = etc_dir.join("sendmail.cf");
        let m4_output = run_command(Command::new("m4").arg(&mc_file))
            .map_err(|error| format!("{error}\nrun `bash tests/run.sh` as root, which installs m4"))?;
        fs::write(&cf_file, &m4_output.stdout)
            .map_err(|error| format!("writing {} failed: {error}", cf_file.display()))?;

        let traffic_log = root_path.join("traffic.log");
        let output_log = root_path.join("sendmail.log");
        let output =
            File::create(&output_log).map_err(|error| format!("creating {} failed: {error}", output_log.display()))?;
        let output_for_stderr =
            output.try_clone().map_err(|error| format!("duplicating the log file handle failed: {error}"))?;

        // unshare execs the shell, which execs sendmail, so the child's pid is the daemon's.
        // -bD runs the daemon in the foreground, so this process can stop it by that pid.
        let child = Command::new("unshare")
            .args(["--uts", "sh", "-c", &format!("hostname {HOSTNAME} && exec \"$0\" \"$@\"")])
            .arg(unpacked.join(BINARY))
            .arg("-C")
            .arg(&cf_file)
            .arg("-bD")
            .arg("-X")
            .arg(&traffic_log)
            .stdin(Stdio::null())
            .stdout(output)
            .stderr(output_for_stderr)
            .spawn()
            .map_err(|error| format!("starting sendmail with unshare failed: {error}"))?;

        let daemon = ChildProcess::new("sendmail", child, STOP_TIMEOUT);
        let sendmail = Sendmail { port, mail_dir, traffic_log, output_log, pki, daemon, root };
        wait_for_port(port, WAIT_TIMEOUT, || sendmail.check_running())
            .map_err(|error| format!("sendmail is not listening: {error}\n{}", sendmail.diagnostics()))?;
        Ok(sendmail)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn pki(&self) -> &TestPki {
        &self.pki
    }

    /// Returns the directory that contains the instance's files.
    pub fn root(&self) -> &Path {
        self.root.path()
    }

    /// Returns the path and text of every delivered message that contains `marker`.
    pub fn delivered_messages(&self, marker: &str) -> Vec<(PathBuf, String)> {
        let Ok(entries) = fs::read_dir(&self.mail_dir) else {
            return Vec::new();
        };
        let mut messages = Vec::new();
        for entry in entries.flatten() {
            let path = entry.path();
            // The local mailer writes `tmp.*` and renames it to `*.eml`, so an `.eml` file is complete.
            if path.extension().is_none_or(|extension| extension != "eml") {
                continue;
            }
            if let Ok(bytes) = fs::read(&path) {
                let text = String::from_utf8_lossy(&bytes).into_owned();
                if text.contains(marker) {
                    messages.push((path, text));
                }
            }
        }
        messages
    }

    /// Waits until a message that contains `marker` is delivered and returns its path and text.
    ///
    /// When several are, it returns any one of them.
    pub fn wait_for_message(&self, marker: &str, timeout: Duration) -> Result<(PathBuf, String), String> {
        poll(timeout, || self.delivered_messages(marker).pop()).ok_or_else(|| {
            format!(
                "no message containing {marker:?} was delivered into {} within {timeout:?}",
                self.mail_dir.display()
            )
        })
    }

    /// Returns an error when the daemon has exited.
    pub fn check_running(&self) -> Result<(), String> {
        self.daemon.check_running()
    }

    /// Returns whether sendmail runs, its output and the tail of its SMTP traffic log, for
    /// failure messages. sendmail logs to syslog, which the tests do not read.
    pub fn diagnostics(&self) -> String {
        format!(
            "--- sendmail ({}), output in {} ---\n{}\n--- last {LOG_TAIL_LINES} lines of the SMTP traffic log {} ---\n{}\n",
            self.daemon.state(),
            self.output_log.display(),
            tail(&self.output_log, LOG_TAIL_LINES),
            self.traffic_log.display(),
            tail(&self.traffic_log, LOG_TAIL_LINES),
        )
    }

    /// Stops the daemon with SIGTERM, or SIGKILL when it has not exited after a few seconds.
    /// Calling it again does nothing.
    pub fn stop(&self) {
        self.daemon.stop();
    }
}

/// The paths that the .mc file and the support files name.
struct InstanceFiles<'a> {
    etc_dir: &'a Path,
    queue_dir: &'a Path,
    mail_dir: &'a Path,
    /// The directory of the test PKI, which sendmail searches for CA certificates.
    tls_dir: &'a Path,
    pki: &'a TestPki,
}

impl InstanceFiles<'_> {
    /// Writes the local mailer, an empty aliases file and a service switch without DNS.
    fn write_support_files(&self) -> Result<(), String> {
        // Each message goes into a file of its own, written under a temporary name and renamed,
        // so a reader never sees half a message.
        let mailer = format!(
            "#!/bin/sh\n\
             name=$(date +%s.%N).$$\n\
             cat > '{dir}/tmp.'\"$name\" && mv '{dir}/tmp.'\"$name\" '{dir}/'\"$name\".eml\n",
            dir = self.mail_dir.display(),
        );
        let mailer_file = self.etc_dir.join("deliver.sh");
        write_file(&mailer_file, &mailer)?;
        set_mode(&mailer_file, 0o755)?;

        write_file(&self.etc_dir.join("aliases"), "")?;
        write_file(&self.etc_dir.join("helpfile"), "")?;
        // The machine has no DNS: host names come from /etc/hosts only.
        write_file(&self.etc_dir.join("service.switch"), "hosts files\naliases files\n")
    }

    /// Returns the .mc text: private paths, STARTTLS, a listener on 127.0.0.1:`port`, the
    /// shipped milter lines with the socket replaced by `milter_socket`, and the local mailer.
    fn mc(&self, cf_m4: &Path, port: u16, milter_socket: &str) -> Result<String, String> {
        if MILTER_MC.matches(MILTER_MC_SOCKET).count() != 1 {
            return Err(format!("packaging/sendmail/tls-milter.mc must name {MILTER_MC_SOCKET:?} exactly once"));
        }
        let milter_lines = MILTER_MC.replace(MILTER_MC_SOCKET, &format!("S={milter_socket}"));

        Ok(format!(
            "\
divert(-1)
divert(0)dnl
include(`{cf_m4}')dnl
OSTYPE(`linux')dnl
define(`confDOMAIN_NAME', `{HOSTNAME}')dnl
define(`QUEUE_DIR', `{queue}')dnl
define(`ALIAS_FILE', `{etc}/aliases')dnl
define(`STATUS_FILE', `{etc}/statistics')dnl
define(`HELP_FILE', `{etc}/helpfile')dnl
define(`confPID_FILE', `{etc}/sendmail.pid')dnl
define(`confSERVICE_SWITCH_FILE', `{etc}/service.switch')dnl
define(`confDONT_PROBE_INTERFACES', `True')dnl
dnl /tmp is world-writable with the sticky bit, which sendmail otherwise calls unsafe.
define(`confDONT_BLAME_SENDMAIL', `GroupWritableDirPathSafe,TrustStickyBit')dnl
dnl Deliver before the reply to the end of DATA, so a sent message is already in its file.
define(`confDELIVERY_MODE', `interactive')dnl
FEATURE(`accept_unresolvable_domains')dnl
FEATURE(`no_default_msa')dnl
dnl STARTTLS with the test PKI. sendmail requests a client certificate by default and
dnl verifies it against confCACERT, the test CA.
define(`confCACERT_PATH', `{tls}')dnl
define(`confCACERT', `{ca_cert}')dnl
define(`confSERVER_CERT', `{server_cert}')dnl
define(`confSERVER_KEY', `{server_key}')dnl
DAEMON_OPTIONS(`Family=inet, Name=MTA-test, Port={port}, Addr=127.0.0.1')dnl
dnl The milter lines of packaging/sendmail/tls-milter.mc, with the socket of the milter under test.
{milter_lines}dnl
LOCAL_DOMAIN(`{sink}')dnl
dnl Any local part is accepted: the local mailer does not look users up in /etc/passwd (flag w).
define(`LOCAL_MAILER_PATH', `{etc}/deliver.sh')dnl
define(`LOCAL_MAILER_ARGS', `deliver.sh $u')dnl
define(`LOCAL_MAILER_FLAGS', `Pn')dnl
MODIFY_MAILER_FLAGS(`LOCAL', `-w')dnl
MAILER(`local')dnl
MAILER(`smtp')dnl
",
            cf_m4 = cf_m4.display(),
            queue = self.queue_dir.display(),
            etc = self.etc_dir.display(),
            tls = self.tls_dir.display(),
            ca_cert = self.pki.ca_cert.display(),
            server_cert = self.pki.server_cert.display(),
            server_key = self.pki.server_key.display(),
            sink = SINK_DOMAIN,
        ))
    }
}

/// Converts Postfix's `inet:HOST:PORT` milter address into sendmail's `inet:PORT@HOST`.
pub fn sendmail_socket_spec(postfix_form: &str) -> Result<String, String> {
    let invalid = || format!("milter socket {postfix_form:?} is not of the form inet:HOST:PORT");
    let address = postfix_form.strip_prefix("inet:").ok_or_else(invalid)?;
    let (host, port) = address.rsplit_once(':').ok_or_else(invalid)?;
    port.parse::<u16>().map_err(|_| invalid())?;
    Ok(format!("inet:{port}@{host}"))
}

/// Returns a directory into which Debian's `packages` are unpacked with `dpkg -x`, downloading
/// and unpacking them on first use. `name` names the cache entry under Cargo's target directory,
/// where later runs find it.
///
/// NOTE: the cache is not refreshed when Debian publishes new versions. Remove
/// `target/tmp/debian-packages` to fetch them again.
pub fn unpack_debian_packages(name: &str, packages: &[&str]) -> Result<PathBuf, String> {
    let cache = Path::new(env!("CARGO_TARGET_TMPDIR")).join("debian-packages");
    let unpacked = cache.join(name);
    let complete_marker = unpacked.join(".complete");
    if complete_marker.exists() {
        return Ok(unpacked);
    }
    fs::create_dir_all(&cache).map_err(|error| format!("creating {} failed: {error}", cache.display()))?;

    // Staged in a directory of its own and renamed at the end, so a run that stops half-way
    // leaves no cache entry that looks complete, and parallel runs do not mix their files.
    let staging = tempfile::Builder::new()
        .prefix(&format!("{name}-staging-"))
        .tempdir_in(&cache)
        .map_err(|error| format!("creating a directory in {} failed: {error}", cache.display()))?;
    let downloads = staging.path().join("downloads");
    let tree = staging.path().join("tree");
    for dir in [&downloads, &tree] {
        fs::create_dir(dir).map_err(|error| format!("creating {} failed: {error}", dir.display()))?;
    }

    run_command(Command::new("apt-get").arg("download").args(packages).current_dir(&downloads))
        .map_err(|error| format!("{error}\nrun `apt-get update` as root if apt-get found no package of that name"))?;
    let entries =
        fs::read_dir(&downloads).map_err(|error| format!("reading {} failed: {error}", downloads.display()))?;
    for entry in entries.flatten() {
        run_command(Command::new("dpkg").arg("-x").arg(entry.path()).arg(&tree))?;
    }
    write_file(&tree.join(".complete"), &format!("{}\n", packages.join(" ")))?;

    if let Err(error) = fs::rename(&tree, &unpacked) {
        // Another run may have completed the same entry first.
        if !complete_marker.exists() {
            return Err(format!("renaming {} to {} failed: {error}", tree.display(), unpacked.display()));
        }
    }
    Ok(unpacked)
}

fn write_file(path: &Path, text: &str) -> Result<(), String> {
    fs::write(path, text).map_err(|error| format!("writing {} failed: {error}", path.display()))
}

fn set_mode(path: &Path, mode: u32) -> Result<(), String> {
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .map_err(|error| format!("changing the mode of {} to {mode:o} failed: {error}", path.display()))
}
