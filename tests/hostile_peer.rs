//! Hostile milter peers over a real socket: broken packets, unknown and out-of-order
//! commands, idle peers and more connections than allowed. After each, the milter must still
//! serve a well-behaved MTA.

mod protocol;

use indymilter_test::{ProtoOpts, TestConnection};
use protocol::{POSTFIX_TLS_MACROS, inserted_header, start, transaction};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Maximum time a test waits for the milter to close a connection.
const CLOSE_WAIT: Duration = Duration::from_secs(15);

/// Writes one milter packet: 4-octet big-endian length, command octet, payload.
async fn send_packet(stream: &mut TcpStream, command: u8, payload: &[u8]) {
    let length = u32::try_from(payload.len() + 1).unwrap();
    stream.write_all(&length.to_be_bytes()).await.unwrap();
    stream.write_all(&[command]).await.unwrap();
    stream.write_all(payload).await.unwrap();
}

/// Writes an option negotiation packet offering every action and protocol option.
async fn negotiate(stream: &mut TcpStream) {
    let mut payload = Vec::new();
    payload.extend_from_slice(&6u32.to_be_bytes());
    payload.extend_from_slice(&0x1ffu32.to_be_bytes());
    payload.extend_from_slice(&0x1f_ffffu32.to_be_bytes());
    send_packet(stream, b'O', &payload).await;
}

/// Reads until the milter closes the connection, and fails if it does not within CLOSE_WAIT.
async fn assert_closed(stream: &mut TcpStream) {
    let mut buffer = [0u8; 4096];
    let closed = tokio::time::timeout(CLOSE_WAIT, async {
        loop {
            match stream.read(&mut buffer).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await;
    assert!(closed.is_ok(), "the milter kept the connection open");
}

/// Runs one ordinary transaction and checks that it got our header.
async fn assert_still_serving(milter: &protocol::Milter) {
    let (actions, _) = transaction(milter, "192.0.2.1", &POSTFIX_TLS_MACROS, &[("Subject", "after")]).await;
    assert!(inserted_header(&actions).contains(" tls=pass "));
}

#[tokio::test]
async fn oversized_length_closes_connection() {
    let milter = start("[trust]\ninternal_networks = []\n").await;
    let mut stream = TcpStream::connect(milter.addr).await.unwrap();

    stream.write_all(&u32::MAX.to_be_bytes()).await.unwrap();
    stream.write_all(b"O").await.unwrap();

    assert_closed(&mut stream).await;
    assert_still_serving(&milter).await;
    milter.stop().await.unwrap().unwrap();
}

#[tokio::test]
async fn truncated_packet_then_hangup() {
    let milter = start("[trust]\ninternal_networks = []\n").await;
    let mut stream = TcpStream::connect(milter.addr).await.unwrap();

    stream.write_all(&100u32.to_be_bytes()).await.unwrap();
    stream.write_all(b"Oabc").await.unwrap();
    drop(stream);

    assert_still_serving(&milter).await;
    milter.stop().await.unwrap().unwrap();
}

#[tokio::test]
async fn unknown_command_closes_connection() {
    let milter = start("[trust]\ninternal_networks = []\n").await;
    let mut stream = TcpStream::connect(milter.addr).await.unwrap();

    negotiate(&mut stream).await;
    send_packet(&mut stream, b'Z', b"garbage").await;

    assert_closed(&mut stream).await;
    assert_still_serving(&milter).await;
    milter.stop().await.unwrap().unwrap();
}

/// indymilter reads a command octet even after a zero length, so the peer is idle until
/// connection_timeout closes it.
#[tokio::test]
async fn zero_length_packet_closed_at_timeout() {
    let milter = start("[trust]\ninternal_networks = []\n[milter]\nconnection_timeout = 1\n").await;
    let mut stream = TcpStream::connect(milter.addr).await.unwrap();

    stream.write_all(&0u32.to_be_bytes()).await.unwrap();

    assert_closed(&mut stream).await;
    assert_still_serving(&milter).await;
    milter.stop().await.unwrap().unwrap();
}

#[tokio::test]
async fn out_of_order_commands_are_survived() {
    let milter = start("[trust]\ninternal_networks = []\n").await;
    let mut stream = TcpStream::connect(milter.addr).await.unwrap();

    negotiate(&mut stream).await;
    // End of message, a header and a recipient before any MAIL, then malformed MAIL.
    send_packet(&mut stream, b'E', b"").await;
    send_packet(&mut stream, b'L', b"Subject\0x\0").await;
    send_packet(&mut stream, b'R', b"<b@example.org>\0").await;
    send_packet(&mut stream, b'M', b"no terminator").await;
    send_packet(&mut stream, b'Q', b"").await;
    assert_closed(&mut stream).await;

    assert_still_serving(&milter).await;
    milter.stop().await.unwrap().unwrap();
}

#[tokio::test]
async fn hostile_macro_values_are_survived() {
    let milter = start("[trust]\ninternal_networks = []\n").await;
    let long = "A".repeat(100 * 1024);
    let hostile_version = "TLSv1.3\r\nX-Injected: yes";
    let macros = [
        ("{tls_version}", hostile_version),
        ("{cipher}", long.as_str()),
        ("{cipher_bits}", "99999999999999999999"),
        ("{cert_subject}", "CN=evil\0%s%n"),
    ];

    let (actions, _) = transaction(&milter, "192.0.2.1", &macros, &[("Subject", "x")]).await;
    let header = inserted_header(&actions);

    assert!(header.is_ascii());
    assert!(!header.contains("X-Injected"), "{header}");
    assert!(header.len() < 998, "{header}");
    milter.stop().await.unwrap().unwrap();
}

#[tokio::test]
async fn idle_peer_closed_after_connection_timeout() {
    let milter = start("[trust]\ninternal_networks = []\n[milter]\nconnection_timeout = 1\n").await;
    let mut stream = TcpStream::connect(milter.addr).await.unwrap();

    // One octet of a length field, then nothing: a peer that sends one byte a second or less.
    stream.write_all(&[0]).await.unwrap();

    assert_closed(&mut stream).await;
    assert_still_serving(&milter).await;
    milter.stop().await.unwrap().unwrap();
}

#[tokio::test]
async fn connections_past_limit_wait_their_turn() {
    let milter = start("[trust]\ninternal_networks = []\n[milter]\nmax_connections = 2\n").await;
    let first = TestConnection::open(milter.addr).await.unwrap();
    let second = TestConnection::open(milter.addr).await.unwrap();

    let third = tokio::spawn(TestConnection::configure().available_opts(ProtoOpts::all()).open_tcp(milter.addr));
    tokio::time::sleep(Duration::from_millis(300)).await;
    let served_early = third.is_finished();
    first.close().await.unwrap();
    let third = tokio::time::timeout(CLOSE_WAIT, third).await;

    assert!(!served_early, "a connection past max_connections was served at once");
    let third = third.expect("the waiting connection was never served").unwrap().unwrap();
    third.close().await.unwrap();
    second.close().await.unwrap();
    milter.stop().await.unwrap().unwrap();
}
