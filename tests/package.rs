//! The Debian package: `cargo deb` builds it, `dpkg -i` installs it on this machine, the
//! installed binary runs with the installed configuration, and `dpkg --purge` removes it.
//!
//! Installing writes system paths (/usr/sbin, /etc/tls-milter, /var/spool/postfix/tls-milter,
//! the user database), so it needs root and is skipped with a note otherwise. One test function
//! does every step in order, so nothing else in this binary touches those paths at the same time,
//! and a guard purges the package even when a step fails. `bash tests/run.sh` installs cargo-deb.
//!
//! NOTE: the machine has no running systemd here, so the unit is checked with
//! `systemd-analyze verify` and its user and socket directory by running the binary as the
//! service user, but the unit's sandbox settings are never exercised.

mod common;

use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use common::{free_port, is_root, poll, run_command, wait_for_port};

const PACKAGE: &str = "tls-milter";
const INSTALLED_BINARY: &str = "/usr/sbin/tls-milter";
const INSTALLED_CONFIG: &str = "/etc/tls-milter/tls-milter.toml";
const INSTALLED_UNIT: &str = "/usr/lib/systemd/system/tls-milter.service";
const INSTALLED_TMPFILES: &str = "/usr/lib/tmpfiles.d/tls-milter.conf";
const SOCKET_DIR: &str = "/var/spool/postfix/tls-milter";
const PACKAGED_SOCKET: &str = "/var/spool/postfix/tls-milter/tls-milter.sock";
const SERVICE_USER: &str = "tls-milter";

/// The sample configuration and its packaged copy, relative to the crate root.
const SAMPLE_CONFIG: &str = "conf/tls-milter.toml";
const PACKAGED_CONFIG: &str = "packaging/tls-milter.toml";
/// Lines of the packaged copy that the sample does not have start with this.
const PACKAGE_NOTE_PREFIX: &str = "# Debian package:";

/// How long the milter gets to start listening, and to exit after SIGTERM.
const MILTER_TIMEOUT: Duration = Duration::from_secs(10);

#[test]
fn packaged_config_is_sample_with_unix_socket() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let sample = fs::read_to_string(root.join(SAMPLE_CONFIG)).expect("the sample configuration is readable");
    let packaged = fs::read_to_string(root.join(PACKAGED_CONFIG)).expect("the packaged configuration is readable");

    let socket_line = format!("socket = \"unix:{PACKAGED_SOCKET}\"");
    assert_eq!(
        packaged.lines().filter(|line| *line == socket_line).count(),
        1,
        "{PACKAGED_CONFIG} lacks {socket_line}"
    );
    assert!(
        packaged.lines().any(|line| line == "socket_mode = \"0660\""),
        "{PACKAGED_CONFIG} lacks socket_mode = \"0660\""
    );

    let restored: String = packaged
        .lines()
        .filter(|line| !line.starts_with(PACKAGE_NOTE_PREFIX))
        .map(|line| if line == socket_line { "socket = \"inet:127.0.0.1:8894\"" } else { line })
        .map(|line| format!("{line}\n"))
        .collect();
    assert!(
        restored == sample,
        "{PACKAGED_CONFIG} must be {SAMPLE_CONFIG} with only the socket line changed and lines starting \
         {PACKAGE_NOTE_PREFIX:?} added; copy the sample again and reapply those changes"
    );
}

#[test]
fn debian_package_installs_runs_and_purges() {
    if !is_root() {
        println!("skipped: installing the Debian package requires root; run `bash tests/run.sh` as root");
        return;
    }
    if let Some(reason) = machine_not_clean() {
        println!("skipped: {reason}");
        return;
    }

    let build_dir = tempfile::Builder::new().prefix("tls-milter-deb-").tempdir().expect("a temporary directory");
    let deb = build_package(build_dir.path());

    let package = InstalledPackage::install(&deb);
    check_installed_files();
    check_service_user();
    check_config_is_valid();
    check_inet_run();
    check_unix_socket_run();
    check_saved_message();
    check_installed_man_pages();
    check_unit_with_systemd_analyze();

    package.purge();
    check_purged();
}

/// Returns why the machine cannot take the test package: one is installed already, or a
/// configuration from a source install is in its place. Both would be lost to the purge.
fn machine_not_clean() -> Option<String> {
    // dpkg-query prints nothing for a package it never saw, and "unknown ok not-installed" for
    // one that was purged. Every other state leaves files behind.
    let status = Command::new("dpkg-query").args(["-W", "-f", "${Status}", PACKAGE]).output().ok()?;
    let status = String::from_utf8_lossy(&status.stdout).trim().to_string();
    let state = status.rsplit(' ').next().unwrap_or_default();
    if !state.is_empty() && state != "not-installed" {
        return Some(format!(
            "package {PACKAGE} is on this machine ({status}), and the test would purge it; \
             run `dpkg --purge {PACKAGE}` first if it is left over from an interrupted test run"
        ));
    }
    if Path::new(INSTALLED_CONFIG).exists() {
        return Some(format!("{INSTALLED_CONFIG} exists without the package, and the test would replace it"));
    }
    None
}

/// Runs `cargo deb` on this crate and returns the path of the .deb it writes into `output_dir`.
fn build_package(output_dir: &Path) -> PathBuf {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
    let version = Command::new(&cargo).args(["deb", "--version"]).output();
    if !version.is_ok_and(|output| output.status.success()) {
        panic!("`{cargo} deb` is not available: run `bash tests/run.sh`, which installs cargo-deb");
    }

    let output = run_command(
        Command::new(&cargo)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .args(["deb", "--quiet", "--output"])
            .arg(output_dir)
            .args(["--", "--locked"]),
    )
    .unwrap_or_else(|error| panic!("building the package failed: {error}"));

    let printed = String::from_utf8_lossy(&output.stdout);
    let deb = printed.lines().rev().map(str::trim).find(|line| line.ends_with(".deb"));
    match deb {
        Some(path) => PathBuf::from(path),
        None => panic!("cargo deb printed no .deb path:\n{printed}"),
    }
}

/// The installed package. Drop purges it, so a failing step leaves nothing behind.
struct InstalledPackage {
    installed: bool,
}

impl InstalledPackage {
    fn install(deb: &Path) -> InstalledPackage {
        let package = InstalledPackage { installed: true };
        let result = run_command(Command::new("dpkg").arg("-i").arg(deb).env("DEBIAN_FRONTEND", "noninteractive"));
        if let Err(error) = result {
            panic!("dpkg -i failed: {error}");
        }
        package
    }

    fn purge(mut self) {
        self.installed = false;
        if let Err(error) = run_command(Command::new("dpkg").args(["--purge", PACKAGE])) {
            panic!("dpkg --purge failed: {error}");
        }
    }
}

impl Drop for InstalledPackage {
    fn drop(&mut self) {
        if self.installed
            && let Err(error) = run_command(Command::new("dpkg").args(["--purge", PACKAGE]))
        {
            eprintln!("purging {PACKAGE} after a failed step failed too: {error}");
        }
    }
}

fn check_installed_files() {
    for path in [INSTALLED_BINARY, INSTALLED_CONFIG, INSTALLED_UNIT, INSTALLED_TMPFILES] {
        assert!(Path::new(path).is_file(), "{path} is not installed");
    }
    let mode = fs::metadata(INSTALLED_BINARY).expect("the binary is installed").permissions().mode();
    assert_eq!(mode & 0o777, 0o755, "{INSTALLED_BINARY} has mode {:o}", mode & 0o777);

    let conffiles = run_command(Command::new("dpkg-query").args(["-W", "-f", "${Conffiles}", PACKAGE]))
        .expect("dpkg-query lists the conffiles");
    let conffiles = String::from_utf8_lossy(&conffiles.stdout);
    assert!(conffiles.contains(INSTALLED_CONFIG), "{INSTALLED_CONFIG} is not a conffile: {conffiles:?}");
}

fn check_service_user() {
    let user = run_command(Command::new("id").arg(SERVICE_USER)).expect("postinst created the service user");
    let user = String::from_utf8_lossy(&user.stdout);
    assert!(user.contains(&format!("({SERVICE_USER})")), "unexpected id output: {user}");

    if !user_exists("postfix") {
        println!("note: no postfix user on this machine, so its group membership and socket directory are not checked");
        return;
    }
    let groups = run_command(Command::new("id").args(["-nG", "postfix"])).expect("id -nG postfix runs");
    let groups = String::from_utf8_lossy(&groups.stdout);
    assert!(
        groups.split_whitespace().any(|group| group == SERVICE_USER),
        "postinst did not add postfix to group {SERVICE_USER}: {groups}"
    );

    let metadata = fs::metadata(SOCKET_DIR).unwrap_or_else(|error| panic!("{SOCKET_DIR} was not created: {error}"));
    assert_eq!(metadata.permissions().mode() & 0o7777, 0o750, "{SOCKET_DIR} mode");
    assert_eq!(Some(metadata.uid()), numeric_id("-u", SERVICE_USER), "{SOCKET_DIR} owner");
    assert_eq!(Some(metadata.gid()), numeric_id("-g", "postfix"), "{SOCKET_DIR} group");
}

fn check_config_is_valid() {
    let output = run_command(Command::new(INSTALLED_BINARY).arg("--check-config"))
        .expect("the installed configuration is valid");
    let settings = String::from_utf8_lossy(&output.stdout);
    assert!(settings.contains(INSTALLED_CONFIG), "--check-config did not read {INSTALLED_CONFIG}:\n{settings}");
    assert!(settings.contains(PACKAGED_SOCKET), "--check-config does not show the packaged socket:\n{settings}");
}

/// Runs the installed binary with the installed configuration on a temporary TCP socket and
/// stops it with SIGTERM.
fn check_inet_run() {
    let port = free_port().expect("a free port");
    let log = tempfile::NamedTempFile::new().expect("a log file");
    let mut milter = RunningMilter::spawn(
        Command::new(INSTALLED_BINARY).arg("--socket").arg(format!("inet:127.0.0.1:{port}")),
        log.path(),
    );

    if let Err(error) = wait_for_port(port, MILTER_TIMEOUT, || milter.check_running()) {
        panic!("the installed milter is not listening: {error}\n{}", milter.log());
    }
    let status = milter.terminate();
    let log = milter.log();
    assert_eq!(status.code(), Some(0), "the milter did not exit 0 on SIGTERM:\n{log}");
    assert!(log.contains(&format!("listening on inet:127.0.0.1:{port}")), "no start line in the log:\n{log}");
    assert!(log.contains(INSTALLED_CONFIG), "the log does not name {INSTALLED_CONFIG}:\n{log}");
    assert!(log.contains("stopped"), "no stop line in the log:\n{log}");
}

/// Runs the installed binary as the service user on the packaged unix socket, as the unit does,
/// and connects to it as the postfix user, which must be allowed, and as nobody, which must not.
fn check_unix_socket_run() {
    if !user_exists("postfix") || !Path::new(SOCKET_DIR).is_dir() {
        println!("note: no postfix user or no {SOCKET_DIR}, so the packaged unix socket is not run");
        return;
    }
    let log = tempfile::NamedTempFile::new().expect("a log file");
    // setpriv execs the milter, so the child's pid is the milter's.
    let mut command = Command::new("setpriv");
    command
        .arg(format!("--reuid={SERVICE_USER}"))
        .arg(format!("--regid={SERVICE_USER}"))
        .arg("--init-groups")
        .arg(INSTALLED_BINARY);
    let mut milter = RunningMilter::spawn(&mut command, log.path());

    let socket = Path::new(PACKAGED_SOCKET);
    let listening = poll(MILTER_TIMEOUT, || {
        let is_socket = fs::metadata(socket).is_ok_and(|metadata| metadata.file_type().is_socket());
        (is_socket || milter.check_running().is_err()).then_some(())
    });
    if listening.is_none() || !socket.exists() {
        panic!("the milter did not create {PACKAGED_SOCKET} as {SERVICE_USER}:\n{}", milter.log());
    }

    let metadata = fs::metadata(socket).expect("the socket exists");
    assert_eq!(metadata.permissions().mode() & 0o777, 0o660, "socket mode\n{}", milter.log());
    assert_eq!(Some(metadata.gid()), numeric_id("-g", SERVICE_USER), "socket group\n{}", milter.log());

    let postfix = connect_as("postfix", socket);
    assert!(
        postfix.status.success(),
        "postfix cannot connect: {}\n{}",
        String::from_utf8_lossy(&postfix.stderr),
        milter.log()
    );
    let nobody = connect_as("nobody", socket);
    assert!(!nobody.status.success(), "nobody can connect to {PACKAGED_SOCKET}, which only postfix should");

    let status = milter.terminate();
    assert_eq!(status.code(), Some(0), "the milter did not exit 0 on SIGTERM:\n{}", milter.log());
}

/// Runs `tls-milter check` with the installed configuration on a message that Postfix received
/// over TLS 1.3.
fn check_saved_message() {
    let message = "\
Received: from client.example.net (client.example.net [192.0.2.25])
\t(using TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits)
\t key-exchange X25519 server-signature RSA-PSS (2048 bits) server-digest SHA256)
\t(No client certificate requested)
\tby mx.example.org (Postfix) with ESMTPS id 4XkQ9m2Qz
\tfor <user@example.org>; Mon, 3 Feb 2025 13:32:13 +0000 (UTC)
From: sender@example.net
To: user@example.org
Subject: package check
Date: Mon, 3 Feb 2025 13:32:12 +0000
Message-ID: <package-check@example.net>

Body.
";
    let file = tempfile::NamedTempFile::new().expect("a message file");
    fs::write(file.path(), message).expect("the message is written");

    let output = run_command(Command::new(INSTALLED_BINARY).args(["check", "--format", "json"]).arg(file.path()))
        .expect("tls-milter check reads the message");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let report: serde_json::Value =
        serde_json::from_str(stdout.trim()).unwrap_or_else(|error| panic!("invalid JSON ({error}): {stdout}"));
    assert_eq!(report["verdict"], "pass", "{stdout}");
    assert_eq!(report["hops"][0]["tls_version"], "TLSv1.3", "{stdout}");
    assert_eq!(report["hops"][0]["mta"], "postfix", "{stdout}");
}

fn check_installed_man_pages() {
    for page in ["8 tls-milter", "5 tls-milter.toml"] {
        let (section, name) = page.split_once(' ').expect("section and name");
        let path = run_command(Command::new("man").args(["-w", section, name]))
            .unwrap_or_else(|error| panic!("man -w {page}: {error}"));
        let path = String::from_utf8_lossy(&path.stdout).trim().to_string();
        assert!(path.starts_with("/usr/share/man/"), "man {page} resolves to {path}");

        let rendered = run_command(Command::new("man").args(["--warnings", "-l", &path]).env("MANWIDTH", "80"))
            .unwrap_or_else(|error| panic!("rendering {path} failed: {error}"));
        let warnings = String::from_utf8_lossy(&rendered.stderr);
        assert!(warnings.trim().is_empty(), "man --warnings -l {path} warns:\n{warnings}");
        assert!(!rendered.stdout.is_empty(), "{path} renders empty");
    }
}

fn check_unit_with_systemd_analyze() {
    let Ok(output) = Command::new("systemd-analyze").arg("verify").arg(INSTALLED_UNIT).output() else {
        println!("note: systemd-analyze not found, so {INSTALLED_UNIT} is not verified");
        return;
    };
    // systemd-analyze exits 0 on many problems it only warns about, so any line about the unit fails.
    let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    let problems: Vec<&str> = text.lines().filter(|line| line.contains("tls-milter")).collect();
    assert!(output.status.success() && problems.is_empty(), "systemd-analyze verify {INSTALLED_UNIT}:\n{text}");
}

fn check_purged() {
    for path in [INSTALLED_BINARY, INSTALLED_CONFIG, INSTALLED_UNIT, INSTALLED_TMPFILES, SOCKET_DIR, "/etc/tls-milter"]
    {
        assert!(!Path::new(path).exists(), "{path} is left after the purge");
    }
    assert!(!user_exists(SERVICE_USER), "user {SERVICE_USER} is left after the purge");
    let group = Command::new("getent").args(["group", SERVICE_USER]).output().expect("getent runs");
    assert!(!group.status.success(), "group {SERVICE_USER} is left after the purge");
}

fn user_exists(name: &str) -> bool {
    Command::new("getent").args(["passwd", name]).stdout(Stdio::null()).status().is_ok_and(|status| status.success())
}

/// Returns `id -u NAME` or `id -g NAME` as a number.
fn numeric_id(flag: &str, name: &str) -> Option<u32> {
    let output = Command::new("id").args([flag, name]).output().ok()?;
    String::from_utf8_lossy(&output.stdout).trim().parse().ok()
}

/// Opens a connection to the unix socket at `socket` as `user` with perl, and closes it.
fn connect_as(user: &str, socket: &Path) -> Output {
    Command::new("setpriv")
        .arg(format!("--reuid={user}"))
        .arg(format!("--regid={user}"))
        .arg("--init-groups")
        .args(["perl", "-MIO::Socket::UNIX", "-e"])
        .arg("IO::Socket::UNIX->new(Type => SOCK_STREAM(), Peer => $ARGV[0]) or die qq(connecting to $ARGV[0] failed: $!\\n)")
        .arg(socket)
        .output()
        .expect("setpriv and perl run")
}

/// The installed milter as a child process, killed on drop if it still runs.
struct RunningMilter {
    child: Child,
    log_file: PathBuf,
}

impl RunningMilter {
    fn spawn(command: &mut Command, log_file: &Path) -> RunningMilter {
        let log = fs::File::create(log_file).expect("the log file is created");
        let stderr = log.try_clone().expect("the log file handle is duplicated");
        let child = command
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(stderr)
            .spawn()
            .unwrap_or_else(|error| panic!("starting {command:?} failed: {error}"));
        RunningMilter { child, log_file: log_file.to_path_buf() }
    }

    fn check_running(&mut self) -> Result<(), String> {
        match self.child.try_wait() {
            Ok(None) => Ok(()),
            Ok(Some(status)) => Err(format!("the milter exited with {status}:\n{}", self.log())),
            Err(error) => Err(format!("checking the milter failed: {error}")),
        }
    }

    fn log(&self) -> String {
        fs::read_to_string(&self.log_file).unwrap_or_default()
    }

    /// Sends SIGTERM and returns the exit status; panics when the milter outlives the timeout.
    fn terminate(&mut self) -> std::process::ExitStatus {
        run_command(Command::new("kill").args(["-TERM", &self.child.id().to_string()])).expect("kill -TERM runs");
        match poll(MILTER_TIMEOUT, || self.child.try_wait().ok().flatten()) {
            Some(status) => status,
            None => panic!("the milter did not exit within {MILTER_TIMEOUT:?} of SIGTERM:\n{}", self.log()),
        }
    }
}

impl Drop for RunningMilter {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
