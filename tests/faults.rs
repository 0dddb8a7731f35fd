//! Faults around the milter process, through a real Postfix on 127.0.0.1. The cases: the milter
//! killed in the middle of a transaction and restarted, SIGHUP with a broken config file while
//! SMTP sessions are open, a stale unix socket file at start, `socket_mode`, and a socket path
//! that is a regular file.
//!
//! Each case runs its own milter process, so it can kill, signal and restart it, on a port or
//! socket path fixed before the binary's one Postfix starts. Postfix runs with the recommended
//! `milter_default_action = tempfail`, and the milter counts loopback clients as external
//! (`internal_networks = []`). Starting Postfix requires root: `bash tests/run.sh` installs the
//! packages and runs this binary with the rest of the tests.

mod common;

use std::fs::{self, File};
use std::io::{BufRead, BufReader, Write as _};
use std::net::TcpStream;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::Duration;

use libtest_mimic::{Failed, Trial};
use tempfile::TempDir;

use common::fixture::{Case, Fixture, run_cases};
use common::header::{FIELD_NAME, TransportSecurity, fields_named};
use common::postfix::{Listener, Postfix, PostfixConfig, SINK_DOMAIN};
use common::process::ChildProcess;
use common::swaks::Email;
use common::{LOG_TAIL_LINES, WAIT_TIMEOUT, free_port, poll, public_temp_dir, tail, unique_marker, wait_for_port};

/// The smtpd listener whose milter the kill case kills and restarts.
const KILL_LISTENER: &str = "kill";
/// The smtpd listener whose milter gets SIGHUP.
const HUP_LISTENER: &str = "hup";
/// The smtpd listener whose milter listens on a unix socket that was stale at start.
const UNIX_LISTENER: &str = "unix";

/// How long a milter gets to exit after SIGTERM before it is killed, and to exit by itself
/// after a failed start.
const EXIT_TIMEOUT: Duration = Duration::from_secs(10);
/// The read timeout of the SMTP client for one reply.
const SMTP_TIMEOUT: Duration = Duration::from_secs(30);
/// The number of SMTP sessions kept open across SIGHUP.
const OPEN_SESSIONS: usize = 3;

fn main() -> ExitCode {
    let with_postfix: [Case<Setup>; 3] = [
        ("killed_milter_tempfails_then_retry_delivers", killed_milter_tempfails_then_retry_delivers),
        ("sighup_broken_config_keeps_old_config", sighup_broken_config_keeps_old_config),
        ("stale_unix_socket_is_replaced", stale_unix_socket_is_replaced),
    ];
    let standalone = [
        Trial::test("socket_mode_is_applied", socket_mode_is_applied),
        Trial::test("socket_path_regular_file_fails", socket_path_regular_file_fails),
    ];
    run_cases("Postfix", start_setup, with_postfix, standalone)
}

/// Postfix and the milter addresses it was configured with, started by the first case that
/// needs them.
struct Setup {
    postfix: Postfix,
    kill_port: u16,
    hup_port: u16,
    /// The unix socket of the stale-socket case, in a directory every user can enter, so
    /// Postfix's smtpd (running as the postfix user) reaches it.
    unix_socket: PathBuf,
    _unix_dir: TempDir,
}

/// Each case starts and stops its own milter, so the setup stops only Postfix.
impl Fixture for Setup {
    fn stop(&self) {
        self.postfix.stop();
    }
}

fn start_setup() -> Result<Setup, String> {
    let kill_port = free_port()?;
    let hup_port = free_port()?;
    let unix_dir = public_temp_dir("tls-milter-faults-")?;
    let unix_socket = unix_dir.path().join("tls-milter.sock");

    let config = PostfixConfig {
        listeners: vec![
            Listener::new(KILL_LISTENER, &format!("inet:127.0.0.1:{kill_port}")),
            Listener::new(HUP_LISTENER, &format!("inet:127.0.0.1:{hup_port}")),
            Listener::new(UNIX_LISTENER, &format!("unix:{}", unix_socket.display())),
        ],
        ..PostfixConfig::default()
    };
    let postfix = Postfix::start(&config)?;
    Ok(Setup { postfix, kill_port, hup_port, unix_socket, _unix_dir: unix_dir })
}

/// Returns a config file for the milter: `authserv_id`, debug logs on stderr, loopback
/// clients external, and `extra` appended to the `[milter]` table.
fn milter_config(authserv_id: &str, milter_table: &str) -> String {
    format!(
        "[milter]\n{milter_table}\n\n[header]\nauthserv_id = \"{authserv_id}\"\n\n\
         [log]\nlevel = \"debug\"\ndestination = \"stderr\"\n\n[trust]\ninternal_networks = []\n"
    )
}

/// One tls-milter process with its own config file and log.
struct MilterProcess {
    name: String,
    process: ChildProcess,
    log_file: PathBuf,
}

impl MilterProcess {
    /// Starts the milter with the config file `config_file` on `socket` (`--socket` syntax),
    /// writing stdout and stderr to `log_file`. It does not wait for the socket.
    fn spawn(name: &str, config_file: &Path, socket: &str, log_file: &Path) -> Result<MilterProcess, String> {
        let log = File::create(log_file).map_err(|error| format!("creating {} failed: {error}", log_file.display()))?;
        let log_for_stdout =
            log.try_clone().map_err(|error| format!("duplicating the log file handle failed: {error}"))?;
        let child = Command::new(env!("CARGO_BIN_EXE_tls-milter"))
            .arg("--config")
            .arg(config_file)
            .args(["--socket", socket])
            .stdin(Stdio::null())
            .stdout(log_for_stdout)
            .stderr(log)
            .spawn()
            .map_err(|error| format!("starting tls-milter failed: {error}"))?;
        Ok(MilterProcess {
            name: name.to_string(),
            process: ChildProcess::new(&format!("milter {name:?}"), child, EXIT_TIMEOUT),
            log_file: log_file.to_path_buf(),
        })
    }

    /// Starts the milter on 127.0.0.1:`port` and waits until the port accepts connections.
    fn start_inet(name: &str, config_file: &Path, port: u16, log_file: &Path) -> Result<MilterProcess, String> {
        let milter = MilterProcess::spawn(name, config_file, &format!("inet:127.0.0.1:{port}"), log_file)?;
        wait_for_port(port, WAIT_TIMEOUT, || milter.process.check_running())
            .map_err(|error| format!("milter {name:?} is not listening: {error}\n{}", milter.diagnostics()))?;
        Ok(milter)
    }

    /// Starts the milter on the unix socket `path` and waits until the socket accepts connections.
    fn start_unix(name: &str, config_file: &Path, path: &Path, log_file: &Path) -> Result<MilterProcess, String> {
        let milter = MilterProcess::spawn(name, config_file, &format!("unix:{}", path.display()), log_file)?;
        let listening = poll(WAIT_TIMEOUT, || {
            if milter.process.check_running().is_err() {
                return Some(false);
            }
            UnixStream::connect(path).is_ok().then_some(true)
        });
        if listening != Some(true) {
            return Err(format!("milter {name:?} is not listening on {}\n{}", path.display(), milter.diagnostics()));
        }
        Ok(milter)
    }

    fn log(&self) -> String {
        fs::read(&self.log_file).map(|bytes| String::from_utf8_lossy(&bytes).into_owned()).unwrap_or_default()
    }

    fn diagnostics(&self) -> String {
        format!(
            "--- milter {:?}, last {LOG_TAIL_LINES} lines of {} ---\n{}\n",
            self.name,
            self.log_file.display(),
            tail(&self.log_file, LOG_TAIL_LINES)
        )
    }
}

/// A plain SMTP client that stops where a test needs it to, between commands.
struct Smtp {
    reader: BufReader<TcpStream>,
    transcript: String,
}

impl Smtp {
    /// Connects to 127.0.0.1:`port`, reads the greeting and sends EHLO.
    fn open(port: u16) -> Result<Smtp, String> {
        let stream = TcpStream::connect(("127.0.0.1", port)).map_err(|error| format!("connecting to port {port} failed: {error}"))?;
        stream.set_read_timeout(Some(SMTP_TIMEOUT)).map_err(|error| format!("setting a read timeout failed: {error}"))?;
        let mut smtp = Smtp { reader: BufReader::new(stream), transcript: String::new() };
        smtp.expect_reply("220")?;
        smtp.command("EHLO client.faults.test", "250")?;
        Ok(smtp)
    }

    /// Reads one reply, multi-line or not, and returns its code and text.
    fn reply(&mut self) -> Result<(String, String), String> {
        let mut text = String::new();
        loop {
            let mut line = String::new();
            let read = self.reader.read_line(&mut line).map_err(|error| format!("reading a reply failed: {error}\n{}", self.transcript))?;
            if read == 0 {
                return Err(format!("the server closed the connection\n{}", self.transcript));
            }
            self.transcript.push_str("<- ");
            self.transcript.push_str(&line);
            text.push_str(&line);
            if line.len() < 4 || line.as_bytes()[3] != b'-' {
                return Ok((line.get(..3).unwrap_or_default().to_string(), text));
            }
        }
    }

    fn send_line(&mut self, line: &str) -> Result<(), String> {
        self.transcript.push_str("-> ");
        self.transcript.push_str(line);
        self.transcript.push('\n');
        let stream = self.reader.get_mut();
        stream.write_all(format!("{line}\r\n").as_bytes()).map_err(|error| format!("sending {line:?} failed: {error}"))
    }

    fn expect_reply(&mut self, code: &str) -> Result<String, String> {
        let (got, text) = self.reply()?;
        if got == code { Ok(text) } else { Err(format!("expected a {code} reply, got:\n{}", self.transcript)) }
    }

    fn command(&mut self, line: &str, code: &str) -> Result<String, String> {
        self.send_line(line)?;
        self.expect_reply(code)
    }

    /// Sends MAIL FROM and RCPT TO, which leaves the milter in the middle of a transaction:
    /// Postfix passes MAIL to the milter before it replies to the client, and the milter's
    /// transaction starts there.
    fn start_transaction(&mut self) -> Result<(), String> {
        self.command(&format!("MAIL FROM:<sender@{SINK_DOMAIN}>"), "250")?;
        self.command(&format!("RCPT TO:<recipient@{SINK_DOMAIN}>"), "250")?;
        Ok(())
    }

    /// Sends DATA and a message with Subject `marker`, and returns the reply to the final dot.
    fn send_data(&mut self, marker: &str) -> Result<(String, String), String> {
        self.send_line("DATA")?;
        let (code, text) = self.reply()?;
        if code != "354" {
            return Ok((code, text));
        }
        for line in [
            format!("From: <sender@{SINK_DOMAIN}>"),
            format!("To: <recipient@{SINK_DOMAIN}>"),
            format!("Subject: {marker}"),
            format!("Message-ID: <{marker}@faults.test>"),
            String::new(),
            "Fault test.".to_string(),
            ".".to_string(),
        ] {
            self.send_line(&line)?;
        }
        self.reply()
    }

    fn quit(mut self) {
        let _ = self.send_line("QUIT");
    }
}

/// Returns our field of a delivered message, parsed.
fn our_header(message: &str) -> Result<TransportSecurity, String> {
    let fields = fields_named(message, FIELD_NAME);
    if fields.len() != 1 {
        return Err(format!("expected one {FIELD_NAME} field, found {}:\n{message}", fields.len()));
    }
    TransportSecurity::parse(&fields[0].unfolded())
}

/// Writes a config file into `dir` and returns its path.
fn write_config(dir: &Path, text: &str) -> Result<PathBuf, String> {
    let path = dir.join("tls-milter.toml");
    fs::write(&path, text).map_err(|error| format!("writing {} failed: {error}", path.display()))?;
    Ok(path)
}

fn temp_dir() -> Result<TempDir, String> {
    tempfile::Builder::new().prefix("tls-milter-faults-").tempdir().map_err(|error| format!("creating a temporary directory failed: {error}"))
}

/// SIGKILL in the middle of a transaction: the client gets Postfix's reply for
/// `milter_default_action = tempfail`, a 451. The same transaction, retried by the client on a new connection after the
/// milter is restarted on the same port, is delivered and tagged.
fn killed_milter_tempfails_then_retry_delivers(setup: &Setup) -> Result<(), Failed> {
    let dir = temp_dir()?;
    let authserv_id = "kill.test.example";
    let config = write_config(dir.path(), &milter_config(authserv_id, ""))?;
    let milter = MilterProcess::start_inet("kill", &config, setup.kill_port, &dir.path().join("first.log"))?;
    let port = setup.postfix.port(KILL_LISTENER);
    let marker = unique_marker("killed");

    let mut smtp = Smtp::open(port)?;
    smtp.start_transaction()?;
    let status = milter.process.kill()?;
    let (code, text) = smtp.send_data(&marker)?;
    smtp.quit();

    let context = || format!("{}{}", milter.diagnostics(), setup.postfix.diagnostics());
    assert!(!status.success(), "the milter exited with {status} instead of being killed");
    // Postfix replies "451 4.7.1 Service unavailable - try again later" for tempfail.
    assert_eq!(code, "451", "expected Postfix's milter_default_action = tempfail answer, got {text}\n{}", context());
    eprintln!("after SIGKILL the client got: {}", text.trim_end());
    assert!(
        setup.postfix.delivered_messages(&marker).is_empty(),
        "the message was delivered while the milter was down\n{}",
        context()
    );

    let restarted = MilterProcess::start_inet("kill-restarted", &config, setup.kill_port, &dir.path().join("second.log"))?;
    let mut retry = Smtp::open(port)?;
    retry.start_transaction()?;
    let (code, text) = retry.send_data(&marker)?;
    retry.quit();

    let context = || format!("{}{}", restarted.diagnostics(), setup.postfix.diagnostics());
    assert_eq!(code, "250", "the retry after the restart was not accepted: {text}\n{}", context());
    let message = setup.postfix.wait_for_message(&marker, WAIT_TIMEOUT).map_err(|error| format!("{error}\n{}", context()))?;
    let header = our_header(&message)?;
    assert_eq!(header.authserv_id, authserv_id, "{}", context());
    assert_eq!(header.get("live"), Some("none"), "{}", context());
    Ok(())
}

/// SIGHUP with a config file that does not load, while SMTP sessions are in the middle of a
/// transaction: no session is dropped, the running config stays in force for sessions that
/// start after the signal, and the log names the file, the key and the value. A valid file
/// and a second SIGHUP then take effect, which shows the signal was acted on.
fn sighup_broken_config_keeps_old_config(setup: &Setup) -> Result<(), Failed> {
    let dir = temp_dir()?;
    let old_id = "before-hup.test.example";
    let new_id = "after-hup.test.example";
    let broken_value = "not a host name";
    let config = write_config(dir.path(), &milter_config(old_id, ""))?;
    let milter = MilterProcess::start_inet("hup", &config, setup.hup_port, &dir.path().join("milter.log"))?;
    let port = setup.postfix.port(HUP_LISTENER);
    let context = || format!("{}{}", milter.diagnostics(), setup.postfix.diagnostics());

    let mut open_sessions = Vec::new();
    for _ in 0..OPEN_SESSIONS {
        let mut smtp = Smtp::open(port)?;
        smtp.start_transaction()?;
        open_sessions.push(smtp);
    }

    fs::write(&config, milter_config(broken_value, ""))?;
    milter.process.signal("HUP")?;
    let logged = poll(WAIT_TIMEOUT, || milter.log().lines().find(|line| line.contains("SIGHUP")).map(str::to_string));
    let Some(error_line) = logged else {
        return Err(format!("the milter logged nothing on SIGHUP\n{}", context()).into());
    };

    let mut markers = Vec::new();
    for (index, mut smtp) in open_sessions.into_iter().enumerate() {
        let marker = unique_marker(&format!("open-{index}"));
        let (code, text) = smtp.send_data(&marker)?;
        smtp.quit();
        assert_eq!(code, "250", "session {index}, open across SIGHUP, was not accepted: {text}\n{}", context());
        markers.push(marker);
    }
    let after_marker = unique_marker("after-broken-hup");
    Email::new(port).header(&format!("Subject: {after_marker}")).send().map_err(|error| format!("{error}\n{}", context()))?;
    markers.push(after_marker);

    for marker in &markers {
        let message = setup.postfix.wait_for_message(marker, WAIT_TIMEOUT).map_err(|error| format!("{error}\n{}", context()))?;
        let header = our_header(&message)?;
        assert_eq!(header.authserv_id, old_id, "message {marker} was not tagged under the running config\n{}", context());
    }
    let config_path = config.display().to_string();
    assert!(error_line.contains(&config_path), "the SIGHUP error does not name the file: {error_line}");
    assert!(error_line.contains("header.authserv_id"), "the SIGHUP error does not name the key: {error_line}");
    assert!(error_line.contains(broken_value), "the SIGHUP error does not name the value: {error_line}");

    fs::write(&config, milter_config(new_id, ""))?;
    milter.process.signal("HUP")?;
    let reloaded = poll(WAIT_TIMEOUT, || milter.log().contains("configuration reloaded").then_some(()));
    assert!(reloaded.is_some(), "the milter did not log a reload of the valid file\n{}", context());
    let reload_marker = unique_marker("after-valid-hup");
    Email::new(port).header(&format!("Subject: {reload_marker}")).send().map_err(|error| format!("{error}\n{}", context()))?;
    let message = setup.postfix.wait_for_message(&reload_marker, WAIT_TIMEOUT).map_err(|error| format!("{error}\n{}", context()))?;
    assert_eq!(our_header(&message)?.authserv_id, new_id, "the valid reload was not applied\n{}", context());
    Ok(())
}

/// Starts the milter over a unix socket file left by a process that did not stop cleanly: the
/// milter removes it and listens in its place, and Postfix delivers through it.
fn stale_unix_socket_is_replaced(setup: &Setup) -> Result<(), Failed> {
    let path = &setup.unix_socket;
    drop(UnixListener::bind(path).map_err(|error| format!("binding {} failed: {error}", path.display()))?);
    let stale = fs::symlink_metadata(path).map_err(|error| format!("the stale socket {} is missing: {error}", path.display()))?;
    assert!(stale.file_type().is_socket(), "{} is not a socket before the start", path.display());
    assert!(UnixStream::connect(path).is_err(), "the stale socket {} still accepts connections", path.display());

    let dir = temp_dir()?;
    let authserv_id = "unix.test.example";
    // Postfix's smtpd runs as the postfix user, so the socket must be open to others.
    let config = write_config(dir.path(), &milter_config(authserv_id, "socket_mode = \"0666\""))?;
    let milter = MilterProcess::start_unix("unix", &config, path, &dir.path().join("milter.log"))?;
    let context = || format!("{}{}", milter.diagnostics(), setup.postfix.diagnostics());

    let marker = unique_marker("stale-socket");
    Email::new(setup.postfix.port(UNIX_LISTENER))
        .header(&format!("Subject: {marker}"))
        .send()
        .map_err(|error| format!("{error}\n{}", context()))?;
    let message = setup.postfix.wait_for_message(&marker, WAIT_TIMEOUT).map_err(|error| format!("{error}\n{}", context()))?;
    assert_eq!(our_header(&message)?.authserv_id, authserv_id, "{}", context());
    Ok(())
}

/// `socket_mode` sets the permission bits of the unix socket.
fn socket_mode_is_applied() -> Result<(), Failed> {
    for (text, mode) in [("0600", 0o600), ("0640", 0o640), ("0666", 0o666)] {
        let dir = temp_dir()?;
        let path = dir.path().join("mode.sock");
        let config = write_config(dir.path(), &milter_config("mode.test.example", &format!("socket_mode = \"{text}\"")))?;
        let milter = MilterProcess::start_unix("mode", &config, &path, &dir.path().join("milter.log"))?;

        let metadata = fs::symlink_metadata(&path).map_err(|error| format!("stat {} failed: {error}", path.display()))?;
        milter.process.stop();

        assert!(metadata.file_type().is_socket(), "{} is not a socket", path.display());
        assert_eq!(metadata.permissions().mode() & 0o7777, mode, "socket_mode = {text:?} gave mode {:o}", metadata.permissions().mode() & 0o7777);
        assert!(!path.exists(), "the milter left {} behind after SIGTERM", path.display());
    }
    Ok(())
}

/// A regular file where the unix socket should be: the milter does not start, exits
/// non-zero, names the path in its message, and leaves the file alone.
fn socket_path_regular_file_fails() -> Result<(), Failed> {
    let dir = temp_dir()?;
    let path = dir.path().join("not-a-socket");
    let content = "an operator's file, not a socket\n";
    fs::write(&path, content)?;
    let config = write_config(dir.path(), &milter_config("file.test.example", ""))?;
    let milter = MilterProcess::spawn("file", &config, &format!("unix:{}", path.display()), &dir.path().join("milter.log"))?;

    let status = milter.process.wait_exit(EXIT_TIMEOUT);
    let log = milter.log();
    milter.process.stop();

    let Some(status) = status else {
        return Err(format!("the milter still runs on a regular file after {EXIT_TIMEOUT:?}\n{log}").into());
    };
    assert!(!status.success(), "the milter exited with {status}\n{log}");
    assert!(log.contains(&path.display().to_string()), "the message does not name {}:\n{log}", path.display());
    assert!(log.contains("not a socket"), "the message does not say the path is not a socket:\n{log}");
    assert_eq!(fs::read_to_string(&path)?, content, "the milter changed the regular file");
    Ok(())
}
