//! Inputs the fuzz targets (fuzz/) found to break the milter, replayed as ordinary tests so
//! a fixed bug stays fixed. Each test names the target that found the input and what went
//! wrong; docs/security.md lists the findings.

mod protocol;

use protocol::start;
use std::path::Path;
use std::time::{Duration, Instant};
use tls_milter::chain::{self, LiveSource, LiveTls};
use tls_milter::config::Config;
use tls_milter::header;
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

/// Returns MAIL, RCPT, one header and end of message. RCPT is sent whatever was negotiated, as
/// in the fuzz input. The milter declines that stage here, but indymilter still takes an RCPT
/// after MAIL, and the milter sends no reply to it (NOREPLY_RCPT).
fn message(subject: &str) -> Vec<u8> {
    [
        packet(b'M', &cstrings(&["<alice@example.net>"])),
        packet(b'R', &cstrings(&["<bob@example.org>"])),
        packet(b'L', &cstrings(&["Subject", subject])),
        packet(b'E', b""),
    ]
    .concat()
}

/// Loads configuration text as the daemon loads a file.
fn load(text: &str) -> Result<Config, String> {
    Config::from_toml(text, Path::new("/test/tls-milter.toml")).map_err(|error| error.to_string())
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
        assert!(length >= 1, "a reply of length 0 in {output:?}");
        assert!(after.len() >= length, "a truncated reply in {output:?}");
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

/// header_render: the configuration accepts an authserv-id of up to 255 characters, but the
/// header cut it to 64, so filters that match their own authserv-id found no field.
#[test]
fn long_authserv_id_is_written_whole() {
    let authserv_id = format!("mx-{}.example.org", "a".repeat(62));
    let config = load(&format!("[header]\nauthserv_id = \"{authserv_id}\"\n")).unwrap();
    let analysis = chain::analyse(&[], 0, LiveSource::Macros(&LiveTls::default()), &config.trust);

    let value = header::render(&config.authserv_id, &analysis, None, None);

    assert!(value.starts_with(&format!("{authserv_id};")), "{value}");
}

/// config_toml: `--check-config` quoted list entries and the reply with Rust's `{:?}`,
/// which writes `\u{85}` where TOML needs `\u0085`, and wrote the socket path between
/// quotes without escaping it, so its output did not load again.
#[test]
fn check_config_output_loads_again() {
    let texts = [
        "[[policy]]\nname = \"x\"\nsenders = [\"a\u{85}b@example.org\"]\n",
        "[[policy]]\nname = \"x\"\naction = \"reject\"\nreply = \"550 5.7.1 soft\u{ad}hyphen\"\n",
        "[milter]\nsocket = \"unix:/run/tls-milter/a\\\"b.sock\"\n",
    ];
    for text in texts {
        // A file the configuration rejects prints nothing to load again.
        let Ok(config) = load(text) else { continue };

        let described = config.describe();
        let reloaded = load(&described);

        assert!(reloaded.is_ok(), "{reloaded:?}\n{described}");
    }
}

/// config_toml: the reply text was cut to 200 characters after it was trimmed, so it could
/// end in a space that the next load of the `--check-config` output trimmed away.
#[test]
fn cut_reply_has_no_trailing_space() {
    let text = format!("[[policy]]\nname = \"x\"\naction = \"reject\"\nreply = \"550 5.7.10 {} b\"\n", "a".repeat(199));
    let config = load(&text).unwrap();

    let reply = config.policies[0].reply.as_ref().unwrap();

    assert!(!reply.text.ends_with(' '), "{:?}", reply.text);
}

/// config_toml: the config crate splits a quoted key at its dots and copies the path per
/// level, so time and memory grew with the square of the key. 4.8 KB of `["a.a.a...b"]`
/// took 3.4 s and 1.6 GB in a release build, and a 20 KB file exhausted memory. The load
/// runs on a thread with the 8 MiB stack of a main thread, because the nesting overflowed
/// the 2 MiB stack of a test thread.
#[test]
fn quoted_dotted_key_is_cheap() {
    let text = format!("[\"{}b\"]\n", "a.".repeat(1200));

    let loader = std::thread::Builder::new().stack_size(8 << 20).spawn(move || {
        let started = Instant::now();
        let result = load(&text);
        (result.is_err(), started.elapsed())
    });
    let (rejected, elapsed) = loader.unwrap().join().unwrap();

    assert!(rejected, "an unknown table was accepted");
    assert!(elapsed < Duration::from_millis(500), "loading a 2.4 KB file took {elapsed:?}");
}

/// config_toml: the config crate reads a quoted key as a path, and allocates an index in it
/// as an array, so a 20-byte file aborted the process (SIGABRT) at startup, on
/// `--check-config`, and on SIGHUP, which killed the running milter. It must be rejected as
/// an invalid file (exit code 78) instead.
#[test]
fn quoted_key_with_index_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("tls-milter.toml");
    std::fs::write(&file, "[\"a[99999999999]\"]\n").unwrap();

    let output = std::process::Command::new(env!("CARGO_BIN_EXE_tls-milter"))
        .arg("--check-config")
        .arg("--config")
        .arg(&file)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);

    assert_eq!(output.status.code(), Some(78), "{}\n{stderr}", output.status);
    assert!(stderr.contains(&file.display().to_string()), "{stderr}");
}
