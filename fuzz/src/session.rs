//! The milter_session target's machinery: the real milter running in-process on unix
//! sockets, the decoder that turns fuzz input into milter packets, and a model that
//! predicts which end-of-message commands must produce our header.
//!
//! The model follows the session loop of indymilter 0.3 (session.rs in that crate). A
//! command whose state cannot be reached from the current one aborts the mail
//! transaction, and is then retried from the HELO state or ignored. A payload that does not parse ends the
//! connection. On top of that it states what tls-milter must do: every message that
//! reaches end of message in a negotiated connection gets one header, after the deletion
//! of every incoming copy of it, highest index first.

use indymilter::message::command::{Command, CommandKind};
use indymilter::message::reply::Reply;
use indymilter::message::Message;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;
use tls_milter::config::Config;
use tls_milter::header::HEADER_NAME;
use tls_milter::socket::{BoundSocket, SocketSpec};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;
use tokio::runtime::Runtime;

/// Maximum time for one fuzz session; a longer one counts as a hung milter.
pub const SESSION_TIMEOUT: Duration = Duration::from_secs(10);

/// The milter that only tags, on which the model is checked exactly.
pub const TAG_CONFIG: &str = r#"
[header]
authserv_id = "mx.fuzz.example"
[trust]
internal_networks = []
"#;

/// A milter with one rule of each action, so RCPT and end of message reject, tempfail and
/// quarantine.
pub const POLICY_CONFIG: &str = r#"
[header]
authserv_id = "mx.fuzz.example"
[trust]
internal_networks = ["10.0.0.0/8"]
tls_proxies = ["198.51.100.0/24"]

[[policy]]
name = "partners"
senders = ["partner.example", "*.partner.example"]
require_tls = true
min_tls_version = "TLSv1.2"
action = "reject"
reply = "550 5.7.10 TLS required for partner.example"

[[policy]]
name = "bank"
recipients = ["bank@example.org"]
min_cipher_bits = 128
require_verified_cert = true
action = "tempfail"

[[policy]]
name = "chain"
recipients = ["*.example.org"]
chain = "all-encrypted"
action = "quarantine"

[[policy]]
name = "submission"
authenticated = "yes"
chain = "no-plaintext"
action = "reject"
dry_run = true

[[policy]]
name = "clients"
clients = ["192.0.2.0/24", "2001:db8::/32"]
require_tls = true
action = "tempfail"
"#;

/// The milters of this process and the runtime they run on.
pub struct Milters {
    runtime: Runtime,
    /// The sockets of the tag milter and of the policy milter.
    pub sockets: [PathBuf; 2],
}

/// Starts both milters on first use. The runtime has one thread, the fuzzer's, so the
/// milter runs only while a session is driven and each run is reproducible.
pub fn milters() -> &'static Milters {
    static MILTERS: OnceLock<Milters> = OnceLock::new();
    MILTERS.get_or_init(start_milters)
}

fn start_milters() -> Milters {
    // libFuzzer's main starts the process, so SIGPIPE still has its default action, which
    // would kill the process when the milter closes a connection first.
    // SAFETY: setting a signal to SIG_IGN installs no handler code.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
    }
    // Every log statement formats its arguments, as in the daemon, into a sink.
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::sink)
        .with_env_filter(tracing_subscriber::EnvFilter::new("debug,indymilter=info"))
        .try_init();

    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => panic!("starting the tokio runtime failed: {error}"),
    };
    remove_stale_socket_dirs();
    let directory = std::env::temp_dir().join(format!("{SOCKET_DIR_PREFIX}{}", std::process::id()));
    if let Err(error) = std::fs::create_dir_all(&directory) {
        panic!("creating {} failed: {error}", directory.display());
    }
    let sockets = [directory.join("tag.sock"), directory.join("policy.sock")];
    for (socket, toml) in sockets.iter().zip([TAG_CONFIG, POLICY_CONFIG]) {
        start_milter(&runtime, socket, toml);
    }
    Milters { runtime, sockets }
}

/// The temporary directory of each fuzz process's sockets is this prefix and the process id.
const SOCKET_DIR_PREFIX: &str = "tls-milter-fuzz-";

/// Removes the socket directories of fuzz processes that no longer run. libFuzzer ends the
/// process with exit(), so no process removes its own.
fn remove_stale_socket_dirs() {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else { return };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(|name| name.strip_prefix(SOCKET_DIR_PREFIX)) else { continue };
        if pid.parse::<u32>().is_ok() && !Path::new("/proc").join(pid).exists() {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

fn start_milter(runtime: &Runtime, socket: &Path, toml: &str) {
    let config = match Config::from_toml(toml, Path::new("/fuzz/tls-milter.toml")) {
        Ok(config) => config,
        Err(error) => panic!("the fuzz configuration is invalid: {error}"),
    };
    let spec = SocketSpec::Unix(socket.to_path_buf());
    let bound = match runtime.block_on(BoundSocket::bind(&spec, 0o600)) {
        Ok(bound) => bound,
        Err(error) => panic!("binding {spec} failed: {error}"),
    };
    // The reload sender is leaked so the reload channel stays open for the life of the process.
    let (reload_sender, reload) = tokio::sync::mpsc::channel(1);
    std::mem::forget(reload_sender);
    runtime.spawn(tls_milter::run(bound, config, reload, std::future::pending()));
}

impl Milters {
    /// Writes `input` to a new connection to `socket`, closes the writing side, and
    /// returns everything the milter sent until it closed the connection.
    ///
    /// Panics when the milter does not close the connection within [`SESSION_TIMEOUT`].
    pub fn run_session(&self, socket: &Path, input: &[u8]) -> Vec<u8> {
        self.runtime.block_on(async {
            let stream = match UnixStream::connect(socket).await {
                Ok(stream) => stream,
                Err(error) => panic!("connecting to the milter at {} failed: {error}", socket.display()),
            };
            let (mut reader, mut writer) = stream.into_split();
            let write = async {
                // The milter may close first, after a command it rejects: the rest is not read.
                let _ = writer.write_all(input).await;
                let _ = writer.shutdown().await;
            };
            let read = async {
                let mut output = Vec::new();
                let _ = reader.read_to_end(&mut output).await;
                output
            };
            match tokio::time::timeout(SESSION_TIMEOUT, async { tokio::join!(write, read) }).await {
                Ok(((), output)) => output,
                Err(_) => panic!("the milter did not end the session within {SESSION_TIMEOUT:?}"),
            }
        })
    }
}

/// One milter packet: command octet and payload.
#[derive(Clone, Debug)]
pub struct Packet {
    pub kind: u8,
    pub payload: Vec<u8>,
}

/// Frames packets as the MTA sends them: 4-octet big-endian length, command, payload.
pub fn frame(packets: &[Packet]) -> Vec<u8> {
    let mut bytes = Vec::new();
    for packet in packets {
        let length = u32::try_from(packet.payload.len() + 1).unwrap_or(u32::MAX);
        bytes.extend_from_slice(&length.to_be_bytes());
        bytes.push(packet.kind);
        bytes.extend_from_slice(&packet.payload);
    }
    bytes
}

/// Every action and every protocol option of milter protocol version 6, as Postfix offers.
pub const ALL_ACTIONS: u32 = 0x1ff;
pub const ALL_OPTS: u32 = 0x1f_ffff;

/// The protocol options that bits 2-6 of the option byte withhold from the negotiation:
/// NOREPLY for connect, HELO, MAIL and header, and the stages the milter declines, NO_HELO
/// and NO_RCPT.
const WITHHELD_OPTS: [u32; 5] = [0x1000, 0x2000, 0x4000, 0x80, 0x2 | 0x8];
/// The action that bit 7 withholds: macro requests.
const REQUEST_MACROS: u32 = 0x100;

/// Builds the negotiation packet the structured sessions start with.
pub fn negotiate(options: u8) -> Packet {
    let mut opts = ALL_OPTS;
    for (bit, flag) in WITHHELD_OPTS.iter().enumerate() {
        if options & (4 << bit) != 0 {
            opts &= !flag;
        }
    }
    let actions = if options & 0x80 != 0 { ALL_ACTIONS & !REQUEST_MACROS } else { ALL_ACTIONS };
    let mut payload = Vec::with_capacity(12);
    payload.extend_from_slice(&6u32.to_be_bytes());
    payload.extend_from_slice(&actions.to_be_bytes());
    payload.extend_from_slice(&opts.to_be_bytes());
    Packet { kind: b'O', payload }
}

/// Decodes records of `kind, length (2 octets, little-endian), payload`. A payload cut
/// short by the end of the input keeps what is there.
pub fn decode_records(mut data: &[u8]) -> Vec<Packet> {
    let mut packets = Vec::new();
    while let Some((&kind, rest)) = data.split_first() {
        let (length, rest) = match rest {
            [low, high, rest @ ..] => (usize::from(u16::from_le_bytes([*low, *high])), rest),
            _ => (0, &[][..]),
        };
        let (payload, rest) = rest.split_at(length.min(rest.len()));
        packets.push(Packet { kind, payload: payload.to_vec() });
        data = rest;
    }
    packets
}

/// indymilter 0.3's protocol states, with its transition table.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
enum State {
    Init,
    Opts,
    Conn,
    Helo,
    Mail,
    Rcpt,
    Data,
    Header,
    Eoh,
    Body,
    Eom,
    Quit,
    Abort,
    Unknown,
    QuitNc,
}

const STATES: [State; 15] = [
    State::Init,
    State::Opts,
    State::Conn,
    State::Helo,
    State::Mail,
    State::Rcpt,
    State::Data,
    State::Header,
    State::Eoh,
    State::Body,
    State::Eom,
    State::Quit,
    State::Abort,
    State::Unknown,
    State::QuitNc,
];

impl State {
    fn of(kind: CommandKind) -> Option<Self> {
        Some(match kind {
            CommandKind::Abort => Self::Abort,
            CommandKind::BodyChunk => Self::Body,
            CommandKind::ConnInfo => Self::Conn,
            CommandKind::DefMacros => return None,
            CommandKind::BodyEnd => Self::Eom,
            CommandKind::Helo => Self::Helo,
            CommandKind::QuitNc => Self::QuitNc,
            CommandKind::Header => Self::Header,
            CommandKind::Mail => Self::Mail,
            CommandKind::Eoh => Self::Eoh,
            CommandKind::OptNeg => Self::Opts,
            CommandKind::Quit => Self::Quit,
            CommandKind::Rcpt => Self::Rcpt,
            CommandKind::Data => Self::Data,
            CommandKind::Unknown => Self::Unknown,
        })
    }

    fn is_mail_transaction(self) -> bool {
        matches!(self, Self::Mail | Self::Rcpt | Self::Data | Self::Header | Self::Eoh | Self::Body)
    }

    fn has_transition_to(self, next: Self) -> bool {
        use State::*;
        match self {
            Init => matches!(next, Opts),
            Opts | QuitNc => matches!(next, Conn | Unknown),
            Conn | Helo => matches!(next, Helo | Mail | Unknown),
            Mail => matches!(next, Rcpt | Abort | Unknown),
            Rcpt => matches!(next, Header | Eoh | Data | Body | Eom | Rcpt | Abort | Unknown),
            Data | Header => matches!(next, Eoh | Header | Abort),
            Eoh | Body => matches!(next, Body | Eom | Abort),
            Eom => matches!(next, Quit | Mail | Unknown | QuitNc),
            Quit | Abort => false,
            Unknown => matches!(next, Helo | Mail | Rcpt | Data | Body | Unknown | Abort | Quit | QuitNc),
        }
    }

    fn can_reach(self, target: Self, opts: u32) -> bool {
        let skippable = |state: &State| {
            let flag = match state {
                State::Conn => 0x1,
                State::Helo => 0x2,
                State::Mail => 0x4,
                State::Rcpt => 0x8,
                State::Data => 0x200,
                State::Header => 0x20,
                State::Eoh => 0x40,
                State::Body => 0x10,
                State::Unknown => 0x100,
                _ => return false,
            };
            opts & flag != 0
        };
        if self.has_transition_to(target) {
            return true;
        }
        STATES
            .iter()
            .skip_while(|state| **state != self)
            .skip(1)
            .take_while(|state| skippable(state))
            .any(|state| state.has_transition_to(target))
    }
}

/// The model's expectation for one session of the tag milter.
#[derive(Debug, Default)]
pub struct Expectation {
    /// For each end of message that must be tagged, in order, the number of incoming
    /// copies of our header it must delete first.
    pub tagged: Vec<usize>,
}

/// Protocol options tls-milter's callbacks imply (no data, EOH, body or unknown callback).
const CALLBACK_OPTS: u32 = 0x200 | 0x40 | 0x10 | 0x100;
/// The NOREPLY options the tag milter requests when offered: connect, HELO, MAIL, header,
/// and RCPT, because it has no policy rules to decide there.
const MILTER_NOREPLY: u32 = 0x1000 | 0x2000 | 0x4000 | 0x80 | 0x8000;
const SKIP: u32 = 0x400;
/// NO_HELO, which tls-milter requests when it may also request macros: the TLS macros then
/// come at MAIL.
const NO_HELO: u32 = 0x2;
/// NO_RCPT, which the tag milter requests when offered, because it has no policy rules to
/// decide there. An RCPT sent anyway still follows indymilter's transition table.
const NO_RCPT: u32 = 0x8;

/// Runs the model over the packets the harness sends.
pub fn expect(packets: &[Packet]) -> Expectation {
    let mut expectation = Expectation::default();
    let mut state = State::Init;
    let mut opts = CALLBACK_OPTS;
    let mut session = false;
    // The number of incoming copies of our header in the message in progress.
    let mut message: Option<usize> = None;

    for packet in packets {
        let Ok(kind) = CommandKind::try_from(packet.kind) else { break };

        if let Some(next) = State::of(kind) {
            if !state.can_reach(next, opts) {
                if state.is_mail_transaction() {
                    message = None;
                }
                state = State::Helo;
                if !state.can_reach(next, opts) {
                    if next == State::Quit {
                        break;
                    }
                    continue;
                }
            }
        }
        let needs_payload = matches!(
            kind,
            CommandKind::DefMacros
                | CommandKind::BodyChunk
                | CommandKind::ConnInfo
                | CommandKind::Helo
                | CommandKind::Header
                | CommandKind::Mail
                | CommandKind::OptNeg
                | CommandKind::Rcpt
                | CommandKind::Unknown
        );
        if needs_payload && packet.payload.is_empty() {
            break;
        }
        if let Some(next) = State::of(kind) {
            state = next;
        }

        // Payloads that indymilter parses before it calls a callback; a failure ends the
        // connection.
        let parsed = matches!(
            kind,
            CommandKind::OptNeg | CommandKind::ConnInfo | CommandKind::Helo | CommandKind::Mail | CommandKind::Rcpt | CommandKind::Header
        );
        let command = if parsed {
            match Command::parse_command(Message::new(packet.kind, packet.payload.clone())) {
                Ok(command) => Some(command),
                Err(_) => break,
            }
        } else {
            None
        };

        match (kind, command) {
            (CommandKind::OptNeg, Some(Command::OptNeg(payload))) => {
                if payload.version < 2 {
                    break;
                }
                // indymilter reads no options as its minimum set: NO_CONNECT, NO_HELO, NO_MAIL,
                // NO_RCPT, NO_HEADER and NO_BODY.
                let mta_opts = match payload.opts.bits() {
                    0 => 0x1 | 0x2 | 0x4 | 0x8 | 0x20 | 0x10,
                    bits => bits,
                };
                let mut requested = CALLBACK_OPTS | (mta_opts & SKIP) | (MILTER_NOREPLY & mta_opts) | (mta_opts & NO_RCPT);
                if payload.actions.bits() & REQUEST_MACROS != 0 {
                    requested |= mta_opts & NO_HELO;
                }
                if mta_opts & requested != requested {
                    break;
                }
                opts = requested;
                session = true;
                message = None;
            }
            (CommandKind::Mail, _) => {
                if session {
                    message = Some(0);
                }
            }
            (CommandKind::Header, Some(Command::Header(header))) => {
                if let Some(forged) = message.as_mut()
                    && header.name.to_bytes().eq_ignore_ascii_case(HEADER_NAME.as_bytes())
                {
                    *forged += 1;
                }
            }
            (CommandKind::BodyEnd, _) => {
                match (session, message.take()) {
                    (true, Some(forged)) => expectation.tagged.push(forged),
                    // Tempfail, and indymilter returns to the HELO state.
                    _ => state = State::Helo,
                }
            }
            (CommandKind::Abort, _) => message = None,
            (CommandKind::Quit, _) => break,
            (CommandKind::QuitNc, _) => {
                // A new SMTP connection follows on the same milter connection, so the
                // milter must serve it as it served the first.
                message = None;
            }
            _ => {}
        }
    }
    expectation
}

/// One end-of-message modification group: header deletions and insertions, and a
/// quarantine, in the order the milter sent them.
#[derive(Debug, Default)]
pub struct Group {
    pub deleted: Vec<i32>,
    pub inserted: Vec<(i32, String)>,
    pub quarantined: bool,
}

/// Decodes the milter's replies and checks each one: every packet parses, only the
/// actions tls-milter uses appear, our header is the only one touched, and every
/// inserted value is a valid field value. Returns the modification groups.
pub fn check_replies(output: &[u8]) -> Vec<Group> {
    let mut groups = Vec::new();
    let mut current: Option<Group> = None;
    let mut rest = output;

    while !rest.is_empty() {
        let Some((length, after)) = rest.split_first_chunk::<4>() else {
            panic!("the milter sent a truncated length: {rest:?}");
        };
        let length = u32::from_be_bytes(*length) as usize;
        assert!(length >= 1, "the milter sent a packet of length 0");
        assert!(after.len() >= length, "the milter sent a truncated packet: {length} octets announced, {} sent", after.len());
        let (packet, after) = after.split_at(length);
        rest = after;

        let reply = match Reply::parse_reply(Message::new(packet[0], packet[1..].to_vec())) {
            Ok(reply) => reply,
            Err(error) => panic!("the milter sent a reply that does not parse ({error}): {packet:?}"),
        };
        match reply {
            Reply::ChangeHeader { name, index, value } => {
                assert_eq!(name.to_bytes(), HEADER_NAME.as_bytes(), "the milter changed another header");
                assert!(index >= 1, "header deletion with index {index}");
                assert!(value.as_bytes().is_empty(), "the milter changed our header instead of deleting it: {value:?}");
                current.get_or_insert_with(Group::default).deleted.push(index);
            }
            Reply::InsertHeader { index, name, value } => {
                assert_eq!(name.to_bytes(), HEADER_NAME.as_bytes(), "the milter inserted another header");
                let value = match value.into_string() {
                    Ok(value) => value,
                    Err(error) => panic!("the inserted header is not UTF-8: {error}"),
                };
                crate::check_header_value(&value);
                assert!(value.starts_with("mx.fuzz.example; "), "the inserted header has another authserv-id: {value:?}");
                current.get_or_insert_with(Group::default).inserted.push((index, value));
            }
            Reply::Quarantine { reason } => {
                assert!(!reason.as_bytes().is_empty(), "quarantine without a reason");
                current.get_or_insert_with(Group::default).quarantined = true;
            }
            Reply::ReplyCode { reply } => {
                let text = reply.to_string_lossy();
                let code_valid = text.len() > 4
                    && text.as_bytes()[..3].iter().all(u8::is_ascii_digit)
                    && matches!(text.as_bytes()[0], b'4' | b'5')
                    && text.as_bytes()[3] == b' ';
                assert!(code_valid, "the SMTP reply does not start with a 4xx or 5xx code: {text:?}");
                assert!(text.bytes().all(|byte| (0x20..0x7f).contains(&byte)), "the SMTP reply has control or non-ASCII characters: {text:?}");
                groups.extend(current.take());
            }
            Reply::OptNeg { .. } => assert!(current.is_none(), "negotiation reply inside end of message"),
            Reply::Continue | Reply::Tempfail | Reply::Reject | Reply::Accept => groups.extend(current.take()),
            other => panic!("the milter sent an action it never uses: {other:?}"),
        }
    }
    assert!(current.is_none(), "header modifications without a final reply");
    groups
}

/// Checks one modification group: the deletions run from the highest index down to 1,
/// then exactly one header is inserted at the top.
pub fn check_group(group: &Group) {
    let expected: Vec<i32> = (1..=group.deleted.len() as i32).rev().collect();
    assert_eq!(group.deleted, expected, "forged copies were not deleted highest index first, each once");
    assert_eq!(group.inserted.len(), 1, "end of message inserted {} headers", group.inserted.len());
    assert_eq!(group.inserted[0].0, 0, "our header was not inserted at the top");
}
