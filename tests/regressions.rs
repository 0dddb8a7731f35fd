//! Inputs the fuzz targets (fuzz/) found to break the milter, replayed as ordinary tests so
//! a fixed bug stays fixed. Each test names the target that found the input and what went
//! wrong; docs/security.md lists the findings.

mod protocol;

use protocol::start;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Frames one milter packet: 4-octet big-endian length, command octet, payload.
fn packet(command: u8, payload: &[u8]) -> Vec<u8> {
    let length = u32::try_from(payload.len() + 1).unwrap();
    let mut bytes = length.to_be_bytes().to_vec();
    bytes.push(command);
    bytes.extend_from_slice(payload);
    bytes
}

/// Joins strings as NUL-terminated C strings, the form of milter command arguments.
fn cstrings(values: &[&str]) -> Vec<u8> {
    values.iter().flat_map(|value| value.bytes().chain([0])).collect()
}

/// Returns the option negotiation packet of an MTA that offers every action and option.
fn negotiate() -> Vec<u8> {
    let mut payload = 6u32.to_be_bytes().to_vec();
    payload.extend_from_slice(&0x1ffu32.to_be_bytes());
    payload.extend_from_slice(&0x1f_ffffu32.to_be_bytes());
    packet(b'O', &payload)
}

/// Returns a connect packet for an IPv4 client.
fn connect(client: &str) -> Vec<u8> {
    let mut payload = cstrings(&["client.example.net"]);
    payload.push(b'4');
    payload.extend_from_slice(&40000u16.to_be_bytes());
    payload.extend_from_slice(&cstrings(&[client]));
    packet(b'C', &payload)
}

/// Returns MAIL, RCPT, one header and end of message.
fn message(subject: &str) -> Vec<u8> {
    [
        packet(b'M', &cstrings(&["<alice@example.net>"])),
        packet(b'R', &cstrings(&["<bob@example.org>"])),
        packet(b'L', &cstrings(&["Subject", subject])),
        packet(b'E', b""),
    ]
    .concat()
}

/// Writes `session` to the milter, closes the writing side, and returns the command
/// octets of every reply the milter sent before it closed the connection.
async fn replies(addr: std::net::SocketAddr, session: &[u8]) -> Vec<u8> {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(session).await.unwrap();
    stream.shutdown().await.unwrap();
    let mut output = Vec::new();
    tokio::time::timeout(std::time::Duration::from_secs(15), stream.read_to_end(&mut output))
        .await
        .expect("the milter did not close the connection")
        .unwrap();

    let mut commands = Vec::new();
    let mut rest = &output[..];
    while let Some((length, after)) = rest.split_first_chunk::<4>() {
        let length = u32::from_be_bytes(*length) as usize;
        assert!(length >= 1 && after.len() >= length, "truncated reply in {output:?}");
        commands.push(after[0]);
        rest = &after[length..];
    }
    commands
}

/// milter_session: after QUIT_NC ("quit, a new connection follows") the MTA reuses the
/// milter connection for its next SMTP client. The milter dropped its per-connection
/// state at QUIT_NC, so every later message was tempfailed instead of tagged.
#[tokio::test]
async fn quit_nc_then_new_connection_is_tagged() {
    let milter = start("[trust]\ninternal_networks = []\n").await;
    let session = [
        negotiate(),
        connect("192.0.2.1"),
        message("first"),
        packet(b'K', b""),
        connect("192.0.2.2"),
        message("second"),
        packet(b'Q', b""),
    ]
    .concat();

    let commands = replies(milter.addr, &session).await;
    let inserted = commands.iter().filter(|&&command| command == b'i').count();

    assert_eq!(inserted, 2, "replies {:?}", String::from_utf8_lossy(&commands));
    assert!(!commands.contains(&b't'), "a message was tempfailed: {:?}", String::from_utf8_lossy(&commands));
    milter.stop().await.unwrap().unwrap();
}
