//! Protocol-level load generator for milters: N concurrent milter sessions against one milter
//! socket, each one mail transaction shaped like Postfix 3.7's, and a report of messages per
//! second and session latency.
//!
//! A session is what Postfix's smtpd sends for one message over STARTTLS. It starts with option
//! negotiation, connect, HELO, abort and HELO again after STARTTLS (now with the TLS macros).
//! MAIL, RCPT and DATA follow, then eight header fields of which four are Received fields from
//! the labelled corpus, end of headers, a small body, end of message and QUIT.
//!
//! Stages and replies follow the negotiation, as in Postfix. A stage the milter declined
//! (`SMFIP_NO*`) is not sent, a stage without reply (`SMFIP_NR_*`) is not waited for, and
//! macro lists the milter requested replace Postfix's default lists.
//!
//! Only loopback TCP addresses and unix sockets are accepted. Every run is bounded by a
//! session count and a time limit, and every session by a timeout.
//!
//! Output: one line of `key=value` pairs on stdout, which bench/run.sh parses.

use clap::Parser;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpStream, UnixStream};
use tokio::sync::Barrier;

/// Milter protocol version Postfix 3.7 negotiates.
const PROTOCOL_VERSION: u32 = 6;
/// Every action of protocol version 6 (`SMFIF_ADDHDRS` .. `SMFIF_SETSYMLIST`), as Postfix offers.
const OFFERED_ACTIONS: u32 = 0x1ff;
/// Every protocol option up to `SMFIP_HDR_LEADSPC`, as Postfix offers.
const OFFERED_OPTIONS: u32 = 0x1f_ffff;
/// Largest reply accepted: 1 MiB, the largest `MILTER_MAX_DATA_SIZE` libmilter negotiates.
const MAX_PACKET_LEN: usize = 1024 * 1024;

// Protocol options (`SMFIP_*` in libmilter's mfdef.h).
const NO_CONNECT: u32 = 0x1;
const NO_HELO: u32 = 0x2;
const NO_MAIL: u32 = 0x4;
const NO_RCPT: u32 = 0x8;
const NO_BODY: u32 = 0x10;
const NO_HEADERS: u32 = 0x20;
const NO_EOH: u32 = 0x40;
const NOREPLY_HEADER: u32 = 0x80;
const NO_DATA: u32 = 0x200;
const NOREPLY_CONNECT: u32 = 0x1000;
const NOREPLY_HELO: u32 = 0x2000;
const NOREPLY_MAIL: u32 = 0x4000;
const NOREPLY_RCPT: u32 = 0x8000;
const NOREPLY_DATA: u32 = 0x1_0000;
const NOREPLY_EOH: u32 = 0x4_0000;
const NOREPLY_BODY: u32 = 0x8_0000;

/// Postfix 3.7's default macro lists (`milter_*_macros`), by the stage index of the
/// negotiation reply (`SMFIM_CONNECT` = 0 .. `SMFIM_EOH` = 6).
const DEFAULT_MACROS: [&str; 7] = [
    "j {daemon_name} {daemon_addr} v _",
    "{tls_version} {cipher} {cipher_bits} {cert_subject} {cert_issuer}",
    "i {auth_type} {auth_authen} {auth_author} {mail_addr} {mail_host} {mail_mailer}",
    "{rcpt_addr} {rcpt_host} {rcpt_mailer}",
    "i",
    "i",
    "i",
];
const STAGE_CONNECT: usize = 0;
const STAGE_HELO: usize = 1;
const STAGE_MAIL: usize = 2;
const STAGE_RCPT: usize = 3;
const STAGE_DATA: usize = 4;
const STAGE_EOM: usize = 5;
const STAGE_EOH: usize = 6;

const CLIENT_NAME: &str = "mail.example.net";
/// The client address in the connect packet: documentation range, outside the milter's
/// default internal_networks, so the live hop is judged from the TLS macros. Nothing connects to it.
const CLIENT_ADDR: &str = "192.0.2.10";
const CLIENT_PORT: u16 = 41_234;

const BODY: &str = "Hello,\r\n\r\nthis is the body of a benchmark message. It is short, as most\r\n\
    mail is when a milter sees no body callback, and ends with a signature.\r\n\r\n-- \r\nAlice\r\n";

#[derive(Parser)]
#[command(about = "Drive a milter with concurrent Postfix-shaped sessions and report msgs/s and latency")]
struct Args {
    /// Milter socket: unix:/path or inet:127.0.0.1:PORT (loopback only)
    #[arg(long)]
    socket: String,

    /// Number of sessions in progress at once
    #[arg(long, default_value_t = 50)]
    concurrency: usize,

    /// Maximum number of measured sessions
    #[arg(long, default_value_t = 20_000)]
    messages: usize,

    /// Maximum measured run time in seconds. No session starts after it
    #[arg(long, default_value_t = 10.0)]
    duration: f64,

    /// Sessions run before the measured ones, at the same concurrency, to warm both sides up
    #[arg(long, default_value_t = 500)]
    warmup: usize,

    /// Hold mode for memory measurements: run exactly --concurrency sessions, stop each after
    /// its header fields until all of them got there, keep them open this many seconds, then
    /// finish them
    #[arg(long, value_name = "SECONDS")]
    hold: Option<f64>,

    /// Seconds one session may take before it counts as failed (hold time not included)
    #[arg(long, default_value_t = 30.0)]
    timeout: f64,

    /// Worker threads of the generator's own runtime
    #[arg(long, default_value_t = 1)]
    threads: usize,

    /// JSON-lines file whose "header" values are the Received fields sent, four per message
    #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/received.jsonl"))]
    corpus: PathBuf,

    /// Label copied into the output line
    #[arg(long, default_value = "milter")]
    label: String,
}

#[derive(Clone, Debug)]
enum Target {
    Unix(PathBuf),
    Tcp(SocketAddr),
}

impl Target {
    fn parse(spec: &str) -> Result<Self, String> {
        if let Some(path) = spec.strip_prefix("unix:") {
            return Ok(Self::Unix(PathBuf::from(path)));
        }
        let Some(address) = spec.strip_prefix("inet:") else {
            return Err(format!("invalid socket {spec:?}: expected unix:/path or inet:127.0.0.1:PORT"));
        };
        let address: SocketAddr =
            address.parse().map_err(|_| format!("invalid address in {spec:?}: expected inet:127.0.0.1:PORT"))?;
        if !address.ip().is_loopback() {
            return Err(format!("{address} is not a loopback address: the load generator only connects to this machine"));
        }
        Ok(Self::Tcp(address))
    }
}

/// Settings shared by the sessions of one run.
struct Run {
    target: Target,
    received_fields: Vec<String>,
    session_timeout: Duration,
    hold: Option<(Arc<Barrier>, Duration)>,
}

/// Result of one finished session.
struct SessionStats {
    latency: Duration,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().worker_threads(args.threads.max(1)).enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("loadgen: starting the tokio runtime failed: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(args)) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(message) => {
            eprintln!("loadgen: {message}");
            ExitCode::from(2)
        }
    }
}

/// Runs the warm-up and the measured sessions and prints the report line. Returns false when
/// any measured session failed.
async fn run(args: Args) -> Result<bool, String> {
    let target = Target::parse(&args.socket)?;
    let received_fields = read_corpus(&args.corpus)?;
    if args.concurrency == 0 {
        return Err("--concurrency must be at least 1".into());
    }
    let session_timeout = Duration::from_secs_f64(args.timeout);
    let hold = args.hold.map(|seconds| (Arc::new(Barrier::new(args.concurrency)), Duration::from_secs_f64(seconds)));

    if hold.is_none() && args.warmup > 0 {
        let warmup = Arc::new(Run { target: target.clone(), received_fields: received_fields.clone(), session_timeout, hold: None });
        let (_, errors, first_error, _) = drive(&warmup, args.concurrency, args.warmup, Duration::from_secs(60)).await;
        if errors > 0 {
            return Err(format!("{errors} of {} warm-up sessions failed; first error: {}", args.warmup, first_error.unwrap_or_default()));
        }
    }

    let (messages, limit) = match &hold {
        // Every session must reach the barrier, so the count is exact and the limit generous.
        Some((_, hold_time)) => (args.concurrency, session_timeout + *hold_time),
        None => (args.messages, Duration::from_secs_f64(args.duration)),
    };
    let run = Arc::new(Run { target, received_fields, session_timeout, hold });
    let cpu_before = process_cpu_seconds();
    let (mut latencies, errors, first_error, elapsed) = drive(&run, args.concurrency, messages, limit).await;
    let cpu = process_cpu_seconds().zip(cpu_before).map_or(f64::NAN, |(after, before)| after - before);

    latencies.sort_unstable();
    let seconds = elapsed.as_secs_f64();
    let completed = latencies.len();
    println!(
        "label={} socket={} concurrency={} sessions={completed} errors={errors} seconds={seconds:.3} msgs_per_s={:.0} \
         p50_ms={:.3} p99_ms={:.3} max_ms={:.3} generator_cpu_s={cpu:.2}",
        args.label,
        args.socket,
        args.concurrency,
        completed as f64 / seconds,
        percentile_ms(&latencies, 50.0),
        percentile_ms(&latencies, 99.0),
        latencies.last().map_or(f64::NAN, |max| max.as_secs_f64() * 1e3),
    );
    if let Some(error) = first_error {
        eprintln!("loadgen: {errors} sessions failed; first error: {error}");
    }
    Ok(errors == 0)
}

/// Runs `count` sessions, `concurrency` at a time, starting none after `limit`. Returns the
/// latencies of the sessions that succeeded, the number that failed, the first error and the
/// wall time.
async fn drive(run: &Arc<Run>, concurrency: usize, count: usize, limit: Duration) -> (Vec<Duration>, usize, Option<String>, Duration) {
    let next = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let deadline = start + limit;
    let mut workers = Vec::with_capacity(concurrency);

    for _ in 0..concurrency.min(count) {
        let run = Arc::clone(run);
        let next = Arc::clone(&next);
        workers.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut errors = 0;
            let mut first_error = None;
            loop {
                let number = next.fetch_add(1, Ordering::Relaxed);
                if number >= count || Instant::now() >= deadline {
                    break;
                }
                match session(&run, number).await {
                    Ok(stats) => latencies.push(stats.latency),
                    Err(error) => {
                        errors += 1;
                        first_error.get_or_insert(error);
                    }
                }
            }
            (latencies, errors, first_error)
        }));
    }

    let mut latencies = Vec::with_capacity(count.min(1 << 20));
    let mut errors = 0;
    let mut first_error = None;
    for worker in workers {
        match worker.await {
            Ok((worker_latencies, worker_errors, worker_error)) => {
                latencies.extend(worker_latencies);
                errors += worker_errors;
                if first_error.is_none() {
                    first_error = worker_error;
                }
            }
            Err(error) => {
                errors += 1;
                first_error.get_or_insert_with(|| format!("worker task failed: {error}"));
            }
        }
    }
    (latencies, errors, first_error, start.elapsed())
}

/// Runs one session with its timeout.
async fn session(run: &Run, number: usize) -> Result<SessionStats, String> {
    let start = Instant::now();
    let limit = run.session_timeout + run.hold.as_ref().map_or(Duration::ZERO, |(_, hold)| *hold);
    let result = match &run.target {
        Target::Unix(path) => {
            let stream = UnixStream::connect(path).await.map_err(|error| format!("connecting to {} failed: {error}", path.display()))?;
            tokio::time::timeout(limit, transaction(stream, run, number)).await
        }
        Target::Tcp(address) => {
            let stream = TcpStream::connect(address).await.map_err(|error| format!("connecting to {address} failed: {error}"))?;
            // With Nagle's algorithm on the generator's side, its own delays would be counted
            // as the milter's latency.
            stream.set_nodelay(true).map_err(|error| format!("setting TCP_NODELAY failed: {error}"))?;
            tokio::time::timeout(limit, transaction(stream, run, number)).await
        }
    };
    match result {
        Ok(Ok(())) => Ok(SessionStats { latency: start.elapsed() }),
        Ok(Err(error)) => Err(format!("session {number}: {error}")),
        Err(_) => Err(format!("session {number}: timed out after {limit:?}")),
    }
}

/// The state that decides which macros are defined, as in Postfix's smtpd.
struct MacroState {
    tls: bool,
    queue_id: Option<String>,
}

impl MacroState {
    fn value(&self, name: &str) -> Option<String> {
        let fixed = match name {
            "j" | "{daemon_name}" => "mx.example.org",
            "{daemon_addr}" => "127.0.0.1",
            "v" => "Postfix 3.7.11",
            "_" => "mail.example.net [192.0.2.10]",
            "{client_addr}" => CLIENT_ADDR,
            "{client_name}" | "{client_ptr}" => CLIENT_NAME,
            "{mail_addr}" => "alice@example.net",
            "{mail_mailer}" | "{rcpt_mailer}" => "smtp",
            "{mail_host}" => "example.net",
            "{rcpt_addr}" => "bob@example.org",
            "{rcpt_host}" => "example.org",
            "{tls_version}" if self.tls => "TLSv1.3",
            "{cipher}" if self.tls => "TLS_AES_256_GCM_SHA384",
            "{cipher_bits}" if self.tls => "256",
            "i" => return self.queue_id.clone(),
            _ => return None,
        };
        Some(fixed.to_string())
    }
}

/// The negotiated protocol: options and the macro list of each stage.
struct Negotiated {
    options: u32,
    macros: [String; 7],
}

impl Negotiated {
    fn sends(&self, no_flag: u32) -> bool {
        self.options & no_flag == 0
    }

    fn replies(&self, noreply_flag: u32) -> bool {
        self.options & noreply_flag == 0
    }
}

async fn transaction<S: AsyncRead + AsyncWrite + Unpin>(mut stream: S, run: &Run, number: usize) -> Result<(), String> {
    let negotiated = negotiate(&mut stream).await?;
    let mut state = MacroState { tls: false, queue_id: None };

    if negotiated.sends(NO_CONNECT) {
        send_macros(&mut stream, &negotiated, &state, STAGE_CONNECT, b'C').await?;
        let mut connect = cstring(CLIENT_NAME);
        connect.push(b'4');
        connect.extend_from_slice(&CLIENT_PORT.to_be_bytes());
        connect.extend(cstring(CLIENT_ADDR));
        command(&mut stream, &negotiated, b'C', &connect, NOREPLY_CONNECT, "connect").await?;
    }

    // Postfix sends HELO, then SMFIC_ABORT once STARTTLS succeeds, then the new HELO with
    // the TLS macros defined.
    if negotiated.sends(NO_HELO) {
        send_macros(&mut stream, &negotiated, &state, STAGE_HELO, b'H').await?;
        command(&mut stream, &negotiated, b'H', &cstring(CLIENT_NAME), NOREPLY_HELO, "HELO").await?;
    }
    write_packet(&mut stream, b'A', &[]).await?;
    state.tls = true;
    if negotiated.sends(NO_HELO) {
        send_macros(&mut stream, &negotiated, &state, STAGE_HELO, b'H').await?;
        command(&mut stream, &negotiated, b'H', &cstring(CLIENT_NAME), NOREPLY_HELO, "HELO").await?;
    }

    if negotiated.sends(NO_MAIL) {
        send_macros(&mut stream, &negotiated, &state, STAGE_MAIL, b'M').await?;
        let mut mail = cstring("<alice@example.net>");
        mail.extend(cstring("SIZE=2048"));
        command(&mut stream, &negotiated, b'M', &mail, NOREPLY_MAIL, "MAIL").await?;
    }
    if negotiated.sends(NO_RCPT) {
        send_macros(&mut stream, &negotiated, &state, STAGE_RCPT, b'R').await?;
        command(&mut stream, &negotiated, b'R', &cstring("<bob@example.org>"), NOREPLY_RCPT, "RCPT").await?;
    }

    state.queue_id = Some(format!("4Q{number:010X}"));
    if negotiated.sends(NO_DATA) {
        send_macros(&mut stream, &negotiated, &state, STAGE_DATA, b'T').await?;
        command(&mut stream, &negotiated, b'T', &[], NOREPLY_DATA, "DATA").await?;
    }

    if negotiated.sends(NO_HEADERS) {
        for (name, value) in header_fields(&run.received_fields, number) {
            let mut field = cstring(name);
            field.extend(cstring(&value));
            command(&mut stream, &negotiated, b'L', &field, NOREPLY_HEADER, "header").await?;
        }
    }

    if let Some((barrier, hold_time)) = &run.hold {
        barrier.wait().await;
        tokio::time::sleep(*hold_time).await;
    }

    if negotiated.sends(NO_EOH) {
        send_macros(&mut stream, &negotiated, &state, STAGE_EOH, b'N').await?;
        command(&mut stream, &negotiated, b'N', &[], NOREPLY_EOH, "end of headers").await?;
    }
    if negotiated.sends(NO_BODY) {
        command(&mut stream, &negotiated, b'B', BODY.as_bytes(), NOREPLY_BODY, "body").await?;
    }

    send_macros(&mut stream, &negotiated, &state, STAGE_EOM, b'E').await?;
    write_packet(&mut stream, b'E', &[]).await?;
    end_of_message_replies(&mut stream).await?;

    write_packet(&mut stream, b'Q', &[]).await?;
    Ok(())
}

/// Sends the option negotiation and reads the reply with its macro lists.
async fn negotiate<S: AsyncRead + AsyncWrite + Unpin>(stream: &mut S) -> Result<Negotiated, String> {
    let mut offer = Vec::with_capacity(12);
    for word in [PROTOCOL_VERSION, OFFERED_ACTIONS, OFFERED_OPTIONS] {
        offer.extend_from_slice(&word.to_be_bytes());
    }
    write_packet(stream, b'O', &offer).await?;

    let (kind, reply) = read_packet(stream).await?;
    if kind != b'O' || reply.len() < 12 {
        return Err(format!("expected a negotiation reply, got {:?} with {} octets", char::from(kind), reply.len()));
    }
    let word = |at: usize| u32::from_be_bytes([reply[at], reply[at + 1], reply[at + 2], reply[at + 3]]);
    let options = word(8);
    let mut macros = DEFAULT_MACROS.map(str::to_string);

    // The rest is (stage index, NUL-terminated list) pairs. A list replaces the default.
    let mut rest = &reply[12..];
    while rest.len() >= 4 {
        let stage = u32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
        let end = rest[4..].iter().position(|&byte| byte == 0).ok_or("unterminated macro list in the negotiation reply")?;
        let list = String::from_utf8_lossy(&rest[4..4 + end]).into_owned();
        if let Some(slot) = macros.get_mut(stage) {
            *slot = list;
        }
        rest = &rest[4 + end + 1..];
    }
    Ok(Negotiated { options, macros })
}

/// Sends the SMFIC_MACRO packet for `stage` with every defined macro of its list, as Postfix
/// does; nothing when none is defined.
async fn send_macros<S: AsyncWrite + Unpin>(
    stream: &mut S,
    negotiated: &Negotiated,
    state: &MacroState,
    stage: usize,
    command: u8,
) -> Result<(), String> {
    let mut packet = vec![command];
    for name in negotiated.macros[stage].split_whitespace() {
        if let Some(value) = state.value(name) {
            packet.extend(cstring(name));
            packet.extend(cstring(&value));
        }
    }
    if packet.len() > 1 { write_packet(stream, b'D', &packet).await } else { Ok(()) }
}

/// Sends one command and, unless the stage was negotiated without reply, reads its reply,
/// which must be continue.
async fn command<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    negotiated: &Negotiated,
    kind: u8,
    data: &[u8],
    noreply_flag: u32,
    stage: &str,
) -> Result<(), String> {
    write_packet(stream, kind, data).await?;
    if !negotiated.replies(noreply_flag) {
        return Ok(());
    }
    loop {
        let (reply, _) = read_packet(stream).await?;
        match reply {
            b'c' => return Ok(()),
            b'p' => continue,
            other => return Err(format!("{stage}: expected continue, got reply {:?}", char::from(other))),
        }
    }
}

/// Reads the modification replies after end of message up to the final reply. The milter
/// must insert or add exactly one header field and then continue or accept.
async fn end_of_message_replies<S: AsyncRead + Unpin>(stream: &mut S) -> Result<(), String> {
    let mut added_fields = 0;
    loop {
        let (reply, _) = read_packet(stream).await?;
        match reply {
            b'h' | b'i' => added_fields += 1,
            b'm' | b'p' | b'q' | b'+' | b'-' | b'2' | b'e' | b'b' => {}
            b'c' | b'a' if added_fields == 1 => return Ok(()),
            b'c' | b'a' => return Err(format!("end of message: {added_fields} header fields added, expected 1")),
            other => return Err(format!("end of message: expected continue or accept, got reply {:?}", char::from(other))),
        }
    }
}

/// Returns the eight header fields of message `number`: four Received fields drawn in turn
/// from the corpus, then Date, From, To and Subject.
fn header_fields(received_fields: &[String], number: usize) -> Vec<(&'static str, String)> {
    let mut fields: Vec<(&'static str, String)> =
        (0..4).map(|hop| ("Received", received_fields[(number * 4 + hop) % received_fields.len()].clone())).collect();
    fields.push(("Date", "Mon, 3 Feb 2025 13:32:13 +0000".into()));
    fields.push(("From", "Alice Example <alice@example.net>".into()));
    fields.push(("To", "Bob Example <bob@example.org>".into()));
    fields.push(("Subject", format!("benchmark message {number}")));
    fields
}

fn cstring(text: &str) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(text.len() + 1);
    bytes.extend_from_slice(text.as_bytes());
    bytes.push(0);
    bytes
}

/// Writes one packet with one write call, as Postfix flushes each packet on its own.
async fn write_packet<S: AsyncWrite + Unpin>(stream: &mut S, kind: u8, data: &[u8]) -> Result<(), String> {
    let length = u32::try_from(data.len() + 1).map_err(|_| "packet too large")?;
    let mut packet = Vec::with_capacity(data.len() + 5);
    packet.extend_from_slice(&length.to_be_bytes());
    packet.push(kind);
    packet.extend_from_slice(data);
    stream.write_all(&packet).await.map_err(|error| format!("writing command {:?} failed: {error}", char::from(kind)))
}

async fn read_packet<S: AsyncRead + Unpin>(stream: &mut S) -> Result<(u8, Vec<u8>), String> {
    let mut length = [0; 4];
    stream.read_exact(&mut length).await.map_err(|error| format!("reading a reply failed: {error}"))?;
    let length = u32::from_be_bytes(length) as usize;
    if length == 0 || length > MAX_PACKET_LEN {
        return Err(format!("invalid reply length {length}"));
    }
    let mut packet = vec![0; length];
    stream.read_exact(&mut packet).await.map_err(|error| format!("reading a reply failed: {error}"))?;
    let kind = packet.remove(0);
    Ok((kind, packet))
}

fn read_corpus(path: &std::path::Path) -> Result<Vec<String>, String> {
    let text = std::fs::read_to_string(path).map_err(|error| format!("reading {} failed: {error}", path.display()))?;
    let fields: Vec<String> = text
        .lines()
        .filter(|line| !line.trim().is_empty())
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter_map(|value| value["header"].as_str().map(str::to_string))
        .collect();
    if fields.is_empty() {
        return Err(format!("{} has no JSON line with a \"header\" string", path.display()));
    }
    Ok(fields)
}

/// Returns the user plus system CPU time of this process so far, from /proc/self/stat.
fn process_cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let after_name = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = after_name.split(' ').collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    // USER_HZ, the unit of both, is 100 on x86 and ARM Linux.
    Some(ticks / 100.0)
}

/// Nearest-rank percentile of sorted latencies, in milliseconds.
fn percentile_ms(sorted: &[Duration], percent: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((percent / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1].as_secs_f64() * 1e3
}
