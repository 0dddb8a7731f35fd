//! Starts the real milter in-process on 127.0.0.1 with a port of its own, for
//! protocol-level tests driven by indymilter-test.

#![allow(dead_code)]

use indymilter_test::{EomActions, Status, TestConnection};
use std::net::SocketAddr;
use std::path::Path;
use tls_milter::config::Config;
use tls_milter::socket::{BoundSocket, SocketSpec};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

/// A running milter; stop it with [`Milter::stop`].
pub struct Milter {
    pub addr: SocketAddr,
    pub reload: mpsc::Sender<Config>,
    shutdown: oneshot::Sender<()>,
    task: JoinHandle<std::io::Result<()>>,
}

/// Reads configuration text as the daemon would read a file.
pub fn config(toml: &str) -> Config {
    match Config::from_toml(toml, Path::new("/test/tls-milter.toml")) {
        Ok(config) => config,
        Err(error) => panic!("test configuration rejected: {error}"),
    }
}

/// Starts the milter with `toml` on a free loopback port.
pub async fn start(toml: &str) -> Milter {
    let config = config(toml);
    let spec = SocketSpec::Inet("127.0.0.1:0".parse().unwrap());
    let socket = BoundSocket::bind(&spec, 0o660).await.unwrap();
    let SocketSpec::Inet(addr) = socket.local_spec().unwrap() else { unreachable!() };

    let (reload, reload_receiver) = mpsc::channel(1);
    let (shutdown, shutdown_receiver) = oneshot::channel();
    let task = tokio::spawn(tls_milter::run(socket, config, reload_receiver, async move {
        let _ = shutdown_receiver.await;
    }));

    Milter { addr, reload, shutdown, task }
}

impl Milter {
    /// Starts shutdown and returns the task, which completes when the milter has stopped.
    pub fn stop(self) -> JoinHandle<std::io::Result<()>> {
        let _ = self.shutdown.send(());
        self.task
    }
}

/// Milter macros Postfix sends at HELO after STARTTLS.
pub const POSTFIX_TLS_MACROS: [(&str, &str); 3] =
    [("{tls_version}", "TLSv1.3"), ("{cipher}", "TLS_AES_256_GCM_SHA384"), ("{cipher_bits}", "256")];

/// Sends HELO and MAIL as an MTA does after negotiation: the TLS macros go with HELO when the
/// milter takes the HELO stage, else with MAIL, where the milter requested them.
pub async fn helo_and_mail(conn: &mut TestConnection, tls_macros: &[(&str, &str)], sender: &str) {
    let helo_declined = conn.negotiated_opts().contains(indymilter_test::ProtoOpts::NO_HELO);
    let stage = if helo_declined { indymilter_test::MacroStage::Mail } else { indymilter_test::MacroStage::Helo };

    if !tls_macros.is_empty() {
        conn.macros(stage, tls_macros.iter().copied()).await.unwrap();
    }
    if !helo_declined {
        conn.helo("client.example.net").await.unwrap();
    }
    conn.mail([sender]).await.unwrap();
}

/// Sends RCPT unless the milter declined the stage (NO_RCPT), as an MTA does.
pub async fn send_rcpt(conn: &mut TestConnection, recipient: &str) {
    if !conn.negotiated_opts().contains(indymilter_test::ProtoOpts::NO_RCPT) {
        conn.rcpt([recipient]).await.unwrap();
    }
}

/// Runs one transaction from an external client with the given HELO macros and header
/// fields, and returns the end-of-message actions and status.
pub async fn transaction(
    milter: &Milter,
    client: &str,
    helo_macros: &[(&str, &str)],
    headers: &[(&str, &str)],
) -> (EomActions, Status) {
    let mut conn = TestConnection::open(milter.addr).await.unwrap();
    conn.connect("client.example.net", (client.parse::<std::net::IpAddr>().unwrap(), 40000)).await.unwrap();
    helo_and_mail(&mut conn, helo_macros, "<alice@example.net>").await;
    send_rcpt(&mut conn, "<bob@example.org>").await;
    conn.macros(indymilter_test::MacroStage::Data, [("i", "4ABCD1234")]).await.unwrap();
    for (name, value) in headers {
        conn.header(*name, *value).await.unwrap();
    }
    if !conn.negotiated_opts().contains(indymilter_test::ProtoOpts::NO_EOH) {
        conn.eoh().await.unwrap();
    }
    let result = conn.eom().await.unwrap();
    conn.close().await.unwrap();
    result
}

/// Returns the value of the header inserted at index 0, unfolded.
pub fn inserted_header(actions: &EomActions) -> String {
    for action in &actions.actions {
        if let indymilter_test::EomAction::InsertHeader { index: 0, name, value } = action {
            assert_eq!(name.to_str().unwrap(), "X-Transport-Security");
            return tls_milter::header::unfold(value.to_str().unwrap());
        }
    }
    panic!("no header inserted at index 0: {actions:?}");
}
