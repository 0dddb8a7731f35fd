//! Sending test mail with swaks, the SMTP client of Debian's `swaks` package.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use super::pki::TestPki;
use super::postfix::SINK_DOMAIN;

/// swaks' timeout for each SMTP step, in seconds.
const STEP_TIMEOUT_SECONDS: &str = "20";

/// How the client secures the session.
#[derive(Clone, Debug)]
pub enum Tls {
    Plain,
    Starttls,
    /// STARTTLS, presenting this client certificate when the server requests one.
    StarttlsWithCert {
        cert: PathBuf,
        key: PathBuf,
    },
}

/// One SMTP transaction for swaks to run against 127.0.0.1.
///
/// Without [`Email::data`], swaks writes the message itself: Date, To, From, a Subject, a
/// Message-Id and X-Mailer, then the [`Email::header`] lines, then the body.
#[derive(Clone, Debug)]
pub struct Email {
    port: u16,
    helo: String,
    sender: String,
    recipients: Vec<String>,
    tls: Tls,
    headers: Vec<String>,
    body: Option<String>,
    data: Option<String>,
    /// swaks' `--tls-protocol` value, such as `tlsv1_2`.
    tls_protocol: Option<String>,
    /// SMTP AUTH user name and password.
    auth: Option<(String, String)>,
}

/// What swaks printed, and whether it reported success.
#[derive(Clone, Debug)]
pub struct SwaksOutcome {
    pub success: bool,
    /// The SMTP session as swaks printed it, then its stderr.
    pub transcript: String,
}

impl Email {
    /// Returns a plain SMTP transaction to 127.0.0.1:`port` from and to addresses in the sink domain.
    pub fn new(port: u16) -> Email {
        Email {
            port,
            helo: format!("client.{SINK_DOMAIN}"),
            sender: format!("sender@{SINK_DOMAIN}"),
            recipients: vec![format!("recipient@{SINK_DOMAIN}")],
            tls: Tls::Plain,
            headers: Vec::new(),
            body: None,
            data: None,
            tls_protocol: None,
            auth: None,
        }
    }

    pub fn helo(mut self, name: &str) -> Email {
        self.helo = name.to_string();
        self
    }

    pub fn sender(mut self, address: &str) -> Email {
        self.sender = address.to_string();
        self
    }

    /// Replaces the recipients.
    pub fn recipients(mut self, addresses: &[&str]) -> Email {
        self.recipients = addresses.iter().map(|address| address.to_string()).collect();
        self
    }

    pub fn starttls(mut self) -> Email {
        self.tls = Tls::Starttls;
        self
    }

    /// Uses STARTTLS and presents the test PKI's client certificate, which the instance verifies.
    pub fn client_cert(mut self, pki: &TestPki) -> Email {
        self.tls = Tls::StarttlsWithCert { cert: pki.client_cert.clone(), key: pki.client_key.clone() };
        self
    }

    /// Adds a `Name: value` header line. swaks replaces a field of the same name that it writes
    /// itself (such as Subject) and appends any other.
    pub fn header(mut self, line: &str) -> Email {
        self.headers.push(line.to_string());
        self
    }

    pub fn body(mut self, text: &str) -> Email {
        self.body = Some(text.to_string());
        self
    }

    /// Sends `message` (header, blank line, body) as the DATA, in place of the message swaks
    /// writes. swaks turns bare LF into CRLF, dot-stuffs lines and replaces `%DATE%`-style tokens.
    pub fn data(mut self, message: &str) -> Email {
        self.data = Some(message.to_string());
        self
    }

    /// Uses STARTTLS with only `protocol` allowed, in swaks' `--tls-protocol` spelling
    /// (`tlsv1_2`, `tlsv1_3`).
    pub fn tls_protocol(mut self, protocol: &str) -> Email {
        if matches!(self.tls, Tls::Plain) {
            self.tls = Tls::Starttls;
        }
        self.tls_protocol = Some(protocol.to_string());
        self
    }

    /// Authenticates with SMTP AUTH PLAIN as `user`, over the session as it is (plain or TLS).
    pub fn auth(mut self, user: &str, password: &str) -> Email {
        self.auth = Some((user.to_string(), password.to_string()));
        self
    }

    /// Runs the transaction and returns the transcript, or an error with the transcript when
    /// swaks reports a failure (a rejected command, a failed STARTTLS, a timeout).
    pub fn send(&self) -> Result<String, String> {
        let outcome = self.try_send()?;
        if outcome.success {
            Ok(outcome.transcript)
        } else {
            Err(format!("swaks failed to send to port {}:\n{}", self.port, outcome.transcript))
        }
    }

    /// Runs the transaction and returns what swaks reported, failures included. It errs only
    /// when swaks cannot be run.
    pub fn try_send(&self) -> Result<SwaksOutcome, String> {
        let mut command = Command::new("swaks");
        command
            .args(["--server", "127.0.0.1", "--port", &self.port.to_string()])
            .args(["--helo", &self.helo, "--from", &self.sender, "--to", &self.recipients.join(",")])
            .args(["--timeout", STEP_TIMEOUT_SECONDS]);
        match &self.tls {
            Tls::Plain => {}
            Tls::Starttls => {
                command.arg("--tls");
            }
            Tls::StarttlsWithCert { cert, key } => {
                command.arg("--tls").arg("--tls-cert").arg(cert).arg("--tls-key").arg(key);
            }
        }
        if let Some(protocol) = &self.tls_protocol {
            command.args(["--tls-protocol", protocol]);
        }
        if let Some((user, password)) = &self.auth {
            command.args(["--auth", "PLAIN", "--auth-user", user, "--auth-password", password]);
        }
        for line in &self.headers {
            command.args(["--header", line]);
        }
        if let Some(body) = &self.body {
            command.args(["--body", body]);
        }
        if self.data.is_some() {
            command.args(["--data", "-"]).stdin(Stdio::piped());
        } else {
            command.stdin(Stdio::null());
        }

        let mut child =
            command.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().map_err(|error| {
                format!("starting swaks failed: {error}; run `bash tests/run.sh`, which installs it")
            })?;
        if let Some(data) = &self.data {
            let mut stdin = child.stdin.take().expect("stdin is piped");
            stdin
                .write_all(data.as_bytes())
                .map_err(|error| format!("writing the message to swaks failed: {error}"))?;
        }
        let output = child.wait_with_output().map_err(|error| format!("waiting for swaks failed: {error}"))?;
        Ok(SwaksOutcome {
            success: output.status.success(),
            transcript: format!(
                "{}{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            ),
        })
    }
}
