//! Shared harness of the end-to-end tests: a private Postfix instance on loopback, the milter as a
//! child process, a test PKI, swaks as the SMTP client, and a parser for the header the milter writes.
//! [`fixture`] runs the cases of a libtest-mimic binary on one such harness.
//!
//! Every test binary compiles this module on its own and uses only part of it.
#![allow(dead_code)]

pub mod fixture;
pub mod header;
pub mod milter;
pub mod pki;
pub mod postfix;
pub mod process;
pub mod sendmail;
pub mod swaks;

use std::fs;
use std::io::Write as _;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tempfile::TempDir;

use fixture::Fixture;
use milter::Milter;
use postfix::{Postfix, PostfixConfig};
use swaks::Email;

/// How long a helper waits for a delivery or a listening port before it fails.
pub const WAIT_TIMEOUT: Duration = Duration::from_secs(20);

/// Number of log lines that failure messages quote from each log.
pub const LOG_TAIL_LINES: usize = 40;

const POLL_INTERVAL: Duration = Duration::from_millis(50);

/// The milters and the Postfix instance of one test binary.
pub struct Harness {
    pub milters: Vec<Milter>,
    pub postfix: Postfix,
    /// Directories that Postfix or a milter reads, such as a sasldb. Drop removes them after
    /// [`Harness::stop`] has stopped every process.
    pub directories: Vec<TempDir>,
}

impl Harness {
    /// Starts one milter for each `(name, config file text)` of `milters`, then a Postfix with
    /// the config that `postfix_config` builds from the running milters. Both `postfix_config`
    /// and [`Harness::milters`] get the milters in the order of `milters`.
    ///
    /// On error every process started so far is stopped.
    pub fn start(
        milters: &[(&str, &str)],
        postfix_config: impl FnOnce(&[Milter]) -> PostfixConfig,
    ) -> Result<Harness, String> {
        let mut running = Vec::new();
        for (name, config) in milters {
            running.push(Milter::start(name, config)?);
        }

        // On error the milters are dropped here, which stops them.
        let postfix = Postfix::start(&postfix_config(&running))?;
        Ok(Harness { milters: running, postfix, directories: Vec::new() })
    }

    /// Sends `email` with swaks and returns the text of the delivered copy that contains `marker`.
    ///
    /// Errors carry the swaks transcript or the logs of Postfix and of every milter.
    pub fn send_and_receive(&self, email: &Email, marker: &str) -> Result<String, String> {
        email.send().map_err(|error| format!("{error}\n{}", self.diagnostics()))?;
        self.postfix.wait_for_message(marker, WAIT_TIMEOUT).map_err(|error| format!("{error}\n{}", self.diagnostics()))
    }

    /// Returns the tails of the Postfix log and of every milter log, and the Postfix queue listing,
    /// for failure messages.
    pub fn diagnostics(&self) -> String {
        let mut text = self.postfix.diagnostics();
        for milter in &self.milters {
            text.push_str(&milter.diagnostics());
        }
        text
    }

    /// Stops Postfix, then every milter, so Postfix opens no connection to a milter that is gone.
    /// Calling it again does nothing.
    pub fn stop(&self) {
        self.postfix.stop();
        for milter in &self.milters {
            milter.stop();
        }
    }
}

impl Fixture for Harness {
    fn stop(&self) {
        Harness::stop(self);
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Returns a TCP port on 127.0.0.1 that was free at the time of the call.
///
/// NOTE: another process can take the port before the caller binds it, which then fails at start.
pub fn free_port() -> Result<u16, String> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .map_err(|error| format!("binding a free port on 127.0.0.1 failed: {error}"))?;
    let address =
        listener.local_addr().map_err(|error| format!("reading the address of a bound socket failed: {error}"))?;
    Ok(address.port())
}

/// Waits until 127.0.0.1:`port` accepts TCP connections.
///
/// `check_alive` runs between attempts and ends the wait early with its error, so a server that
/// exited at start fails at once instead of after `timeout`.
pub fn wait_for_port(
    port: u16,
    timeout: Duration,
    mut check_alive: impl FnMut() -> Result<(), String>,
) -> Result<(), String> {
    let address = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let deadline = Instant::now() + timeout;
    loop {
        if TcpStream::connect_timeout(&address, POLL_INTERVAL).is_ok() {
            return Ok(());
        }
        check_alive()?;
        if Instant::now() >= deadline {
            return Err(format!("timed out after {timeout:?} waiting for {address} to accept connections"));
        }
        thread::sleep(POLL_INTERVAL);
    }
}

/// Calls `probe` until it returns `Some`, or returns `None` once `timeout` has passed.
pub fn poll<T>(timeout: Duration, mut probe: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = probe() {
            return Some(value);
        }
        if Instant::now() >= deadline {
            return None;
        }
        thread::sleep(POLL_INTERVAL);
    }
}

/// Returns the last `lines` lines of the file at `path`, or a note that it cannot be read.
pub fn tail(path: &Path, lines: usize) -> String {
    match fs::read(path) {
        Ok(bytes) => {
            let text = String::from_utf8_lossy(&bytes);
            let all: Vec<&str> = text.lines().collect();
            all[all.len().saturating_sub(lines)..].join("\n")
        }
        Err(error) => format!("(reading {} failed: {error})", path.display()),
    }
}

/// Returns a token that no other call in any test process returns, for a Subject or Message-ID.
pub fn unique_marker(label: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let count = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|time| time.subsec_nanos()).unwrap_or(0);
    format!("{label}-{}-{count}-{nanos:09}", std::process::id())
}

/// Runs `command` to completion and returns its output, or an error with its output when it
/// cannot start or exits non-zero.
pub fn run_command(command: &mut Command) -> Result<Output, String> {
    let description = format!("{command:?}");
    let output = command.output().map_err(|error| format!("starting {description} failed: {error}"))?;
    check_output(&description, output)
}

/// Runs `command` with `input` on its stdin, like [`run_command`].
pub fn run_command_with_input(command: &mut Command, input: &[u8]) -> Result<Output, String> {
    let description = format!("{command:?}");
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|error| format!("starting {description} failed: {error}"))?;

    // NOTE: the input is written in full before the output is read, so a command that writes more
    // than a pipe buffer (64 KiB on Linux) before it has read its input blocks both processes.
    let mut stdin = child.stdin.take().expect("stdin is piped");
    stdin.write_all(input).map_err(|error| format!("writing to the stdin of {description} failed: {error}"))?;
    // Closing stdin ends the input.
    drop(stdin);

    let output = child.wait_with_output().map_err(|error| format!("waiting for {description} failed: {error}"))?;
    check_output(&description, output)
}

/// Returns `output`, or an error with it when the command exited non-zero.
fn check_output(description: &str, output: Output) -> Result<Output, String> {
    if output.status.success() {
        Ok(output)
    } else {
        Err(format!(
            "{description} failed with {}\nstdout:\n{}\nstderr:\n{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr),
        ))
    }
}

/// Creates a temporary directory whose name starts with `prefix`, with mode 0755, so that the
/// unprivileged processes of Postfix and Dovecot can reach the files in it.
pub fn public_temp_dir(prefix: &str) -> Result<TempDir, String> {
    let dir = tempfile::Builder::new()
        .prefix(prefix)
        .tempdir()
        .map_err(|error| format!("creating a temporary directory failed: {error}"))?;
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755))
        .map_err(|error| format!("changing the mode of {} failed: {error}", dir.path().display()))?;
    Ok(dir)
}

/// Returns whether this process runs as root, which Postfix's `postfix start` requires.
pub fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|output| String::from_utf8_lossy(&output.stdout).trim() == "0")
        .unwrap_or(false)
}
