//! The tls-milter binary under test, run as a child process on a free port of 127.0.0.1.

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use tempfile::TempDir;

use super::process::ChildProcess;
use super::{LOG_TAIL_LINES, WAIT_TIMEOUT, free_port, tail, wait_for_port};

/// The authserv-id the tests configure, which starts every header the milter writes.
pub const AUTHSERV_ID: &str = "mx.test.example";

/// How long the milter gets to exit after SIGTERM before it is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(5);

/// Returns the config file the tests run the milter with: debug logs on stderr, and no internal
/// networks, so that clients on loopback count as external.
pub fn test_config() -> String {
    format!(
        r#"dry_run = false

[header]
authserv_id = "{AUTHSERV_ID}"

[log]
level = "debug"
destination = "stderr"

[trust]
internal_networks = []
"#
    )
}

/// A running milter. [`Milter::stop`] or drop stops it.
pub struct Milter {
    name: String,
    port: u16,
    log_file: PathBuf,
    process: ChildProcess,
    // After `process`, so the config file and the log outlive the milter.
    dir: TempDir,
}

impl Milter {
    /// Starts the milter on a free port with `config` as its config file, and waits until the port
    /// accepts connections. `name` identifies the milter in failure messages.
    pub fn start(name: &str, config: &str) -> Result<Milter, String> {
        let binary = env!("CARGO_BIN_EXE_tls-milter");
        let dir = tempfile::Builder::new()
            .prefix("tls-milter-milter-")
            .tempdir()
            .map_err(|error| format!("creating a temporary directory failed: {error}"))?;
        let config_file = dir.path().join("tls-milter.toml");
        fs::write(&config_file, config)
            .map_err(|error| format!("writing {} failed: {error}", config_file.display()))?;
        let log_file = dir.path().join("milter.log");
        let log =
            File::create(&log_file).map_err(|error| format!("creating {} failed: {error}", log_file.display()))?;
        let log_for_stdout =
            log.try_clone().map_err(|error| format!("duplicating the log file handle failed: {error}"))?;

        let port = free_port()?;
        let child = Command::new(binary)
            .arg("--config")
            .arg(&config_file)
            .arg("--socket")
            .arg(format!("inet:127.0.0.1:{port}"))
            .stdin(Stdio::null())
            .stdout(log_for_stdout)
            .stderr(log)
            .spawn()
            .map_err(|error| format!("starting {binary} failed: {error}"))?;

        let process = ChildProcess::new(&format!("milter {name:?}"), child, STOP_TIMEOUT);
        let milter = Milter { name: name.to_string(), port, log_file, process, dir };
        wait_for_port(port, WAIT_TIMEOUT, || milter.check_running())
            .map_err(|error| format!("milter {name:?} is not listening: {error}\n{}", milter.diagnostics()))?;
        Ok(milter)
    }

    /// Returns the milter's address in Postfix's syntax, for `smtpd_milters` and `non_smtpd_milters`.
    pub fn socket(&self) -> String {
        format!("inet:127.0.0.1:{}", self.port)
    }

    pub fn log_file(&self) -> &Path {
        &self.log_file
    }

    /// Returns the process id of the milter, or `None` once it was stopped.
    pub fn pid(&self) -> Option<u32> {
        self.process.pid()
    }

    /// Returns the whole log the milter wrote so far, stdout and stderr.
    pub fn log(&self) -> String {
        fs::read(&self.log_file).map(|bytes| String::from_utf8_lossy(&bytes).into_owned()).unwrap_or_default()
    }

    /// Returns an error when the milter process has exited.
    pub fn check_running(&self) -> Result<(), String> {
        self.process.check_running()
    }

    /// Returns whether the milter is still running and the tail of its log, for failure messages.
    pub fn diagnostics(&self) -> String {
        format!(
            "--- milter {:?} ({}), last {LOG_TAIL_LINES} lines of {} ---\n{}\n",
            self.name,
            self.process.state(),
            self.log_file.display(),
            tail(&self.log_file, LOG_TAIL_LINES),
        )
    }

    /// Stops the milter with SIGTERM, or SIGKILL when it has not exited after a few seconds.
    /// Calling it again does nothing.
    pub fn stop(&self) {
        self.process.stop();
    }
}
