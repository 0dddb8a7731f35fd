//! Graceful shutdown: the socket closes at once, a transaction in progress still reaches
//! end of message, and a transaction that never ends is cut at shutdown_timeout.

mod protocol;

use indymilter_test::{ProtoOpts, TestConnection};
use protocol::{POSTFIX_TLS_MACROS, inserted_header, start};
use std::time::Duration;

/// Opens a connection up to MAIL. The test MTA offers no NOREPLY options, so each command is
/// acknowledged and MAIL is known to be processed when this returns.
async fn open_transaction(addr: std::net::SocketAddr) -> TestConnection {
    let noreply = ProtoOpts::NOREPLY_CONNECT
        | ProtoOpts::NOREPLY_HELO
        | ProtoOpts::NOREPLY_MAIL
        | ProtoOpts::NOREPLY_RCPT
        | ProtoOpts::NOREPLY_HEADER;
    let mut conn = TestConnection::configure().available_opts(ProtoOpts::all() - noreply).open_tcp(addr).await.unwrap();
    conn.connect("client.example.net", ([192, 0, 2, 1], 40000)).await.unwrap();
    protocol::helo_and_mail(&mut conn, &POSTFIX_TLS_MACROS, "<a@example.net>").await;
    conn
}

#[tokio::test]
async fn transaction_in_progress_finishes() {
    let milter = start("[trust]\ninternal_networks = []\n").await;
    let addr = milter.addr;
    let mut conn = open_transaction(addr).await;

    let stopped = milter.stop();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let refused = tokio::net::TcpStream::connect(addr).await;

    protocol::send_rcpt(&mut conn, "<b@example.org>").await;
    conn.header("Subject", "hi").await.unwrap();
    let (actions, _) = conn.eom().await.unwrap();

    assert!(refused.is_err(), "the socket still accepts connections during shutdown");
    assert!(inserted_header(&actions).contains(" tls=pass "));
    stopped.await.unwrap().unwrap();
}

#[tokio::test]
async fn stuck_transaction_is_cut_at_deadline() {
    let milter = start("[trust]\ninternal_networks = []\n[milter]\nshutdown_timeout = 1\n").await;
    let _conn = open_transaction(milter.addr).await;

    let stopped = milter.stop();

    let result = tokio::time::timeout(Duration::from_secs(20), stopped).await;
    assert!(result.is_ok(), "the milter did not stop after shutdown_timeout");
}

#[tokio::test]
async fn idle_milter_stops_at_once() {
    let milter = start("").await;

    let result = tokio::time::timeout(Duration::from_secs(20), milter.stop()).await;

    assert!(matches!(result, Ok(Ok(Ok(())))));
}
