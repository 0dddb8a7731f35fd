//! Load: 1000 milter sessions open at once against the milter binary, each running one mail
//! transaction at the protocol level (indymilter-test). Every session must complete without a
//! protocol error and get our header with its forged copy deleted. The test prints the
//! milter's peak resident set size (VmHWM) and asserts behaviour only, not time.

mod common;

use std::fs;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::milter::Milter;
use indymilter_test::{EomAction, MacroStage, ProtoOpts, Status, TestConnection};
use tokio::sync::Barrier;

/// Sessions open at the same time.
const SESSIONS: usize = 1000;
/// Maximum time for one protocol step, however loaded the milter is.
const STEP_TIMEOUT: Duration = Duration::from_secs(60);
/// Maximum time for the whole test.
const TOTAL_TIMEOUT: Duration = Duration::from_secs(300);

const AUTHSERV_ID: &str = "load.test.example";

/// A Received field as Postfix writes it for a TLS hop, sent five times per message.
const RECEIVED: &str = "from relay.example.net (relay.example.net [192.0.2.11])\n\t\
    (using TLSv1.2 with cipher ECDHE-RSA-AES256-GCM-SHA384 (256/256 bits))\n\t\
    (No client certificate requested)\n\tby mx.example.org (Postfix) with ESMTPS id 3C4D5E6F7A\n\t\
    for <bob@example.org>; Thu, 13 Feb 2025 11:18:55 +0100 (CET)";

fn config() -> String {
    // Room for every session plus the ones a slow close leaves behind.
    format!(
        "[milter]\nmax_connections = {}\n\n[header]\nauthserv_id = \"{AUTHSERV_ID}\"\n\n\
         [log]\nlevel = \"info\"\ndestination = \"stderr\"\n\n[trust]\ninternal_networks = []\n",
        SESSIONS + 24
    )
}

/// Returns the soft and hard limits on open files of this process.
fn open_file_limits() -> Option<(u64, u64)> {
    let limits = fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|line| line.starts_with("Max open files"))?;
    let mut numbers = line.split_whitespace().filter_map(|word| word.parse().ok());
    Some((numbers.next()?, numbers.next()?))
}

/// Raises this process's soft limit on open files to `wanted` with prlimit(1) when it is
/// lower, so the test can hold one socket per session. The milter child inherits the limit.
fn ensure_open_files(wanted: u64) {
    let Some((soft, hard)) = open_file_limits() else {
        panic!("reading /proc/self/limits failed");
    };
    if soft >= wanted {
        return;
    }
    assert!(hard >= wanted, "the hard limit on open files is {hard}, below the {wanted} this test needs");
    let pid = std::process::id().to_string();
    let status = std::process::Command::new("prlimit")
        .args(["--pid", &pid, &format!("--nofile={wanted}:{hard}")])
        .status()
        .expect("starting prlimit failed");
    assert!(status.success(), "prlimit --nofile={wanted} failed with {status}");
}

/// Reads one `Vm*` line of /proc/PID/status, in kB.
fn vm_kilobytes(pid: u32, key: &str) -> Option<u64> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|line| line.starts_with(key))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// What one session saw.
struct Outcome {
    inserted: Option<String>,
    deleted_forged_copy: bool,
    status: Status,
}

/// Awaits `future` for at most [`STEP_TIMEOUT`], naming the session and the step in errors.
async fn step<T, E: std::fmt::Display>(
    index: usize,
    name: &str,
    future: impl std::future::Future<Output = Result<T, E>>,
) -> Result<T, String> {
    match tokio::time::timeout(STEP_TIMEOUT, future).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(error)) => Err(format!("session {index}: {name} failed: {error}")),
        Err(_) => Err(format!("session {index}: {name} timed out after {STEP_TIMEOUT:?}")),
    }
}

/// Opens one session, waits until every session is open, runs one transaction, then waits
/// until every session has finished its transaction before closing.
async fn session(addr: std::net::SocketAddr, index: usize, open: Arc<Barrier>, done: Arc<Barrier>) -> Result<Outcome, String> {
    let mut conn = step(index, "negotiation", TestConnection::open(addr)).await?;
    open.wait().await;

    let client = std::net::Ipv4Addr::new(192, 0, 2, (index % 250) as u8 + 1);
    let queue_id = format!("LOAD{index:04}");
    let subject = format!("load {index}");
    let tls = [("{tls_version}", "TLSv1.3"), ("{cipher}", "TLS_AES_256_GCM_SHA384"), ("{cipher_bits}", "256")];
    step(index, "connect", conn.connect("client.example.net", (client, 40000))).await?;
    // As an MTA does: the TLS macros go with HELO when the milter takes the HELO stage, else
    // with MAIL, where the milter requested them.
    if conn.negotiated_opts().contains(ProtoOpts::NO_HELO) {
        step(index, "MAIL macros", conn.macros(MacroStage::Mail, tls)).await?;
    } else {
        step(index, "HELO macros", conn.macros(MacroStage::Helo, tls)).await?;
        step(index, "HELO", conn.helo("client.example.net")).await?;
    }
    step(index, "MAIL", conn.mail(["<alice@example.net>"])).await?;
    // An MTA does not send a stage the milter declined, and without policy rules the milter
    // declines RCPT.
    if !conn.negotiated_opts().contains(ProtoOpts::NO_RCPT) {
        step(index, "RCPT", conn.rcpt(["<bob@example.org>"])).await?;
    }
    step(index, "DATA macros", conn.macros(MacroStage::Data, [("i", queue_id.as_str())])).await?;
    for _ in 0..5 {
        step(index, "Received header", conn.header("Received", RECEIVED)).await?;
    }
    step(index, "forged header", conn.header("X-Transport-Security", "forged.example; v=1 tls=pass")).await?;
    step(index, "Subject header", conn.header("Subject", subject.as_str())).await?;
    if !conn.negotiated_opts().contains(ProtoOpts::NO_EOH) {
        step(index, "end of header", conn.eoh()).await?;
    }
    let (actions, status) = step(index, "end of message", conn.eom()).await?;
    done.wait().await;
    step(index, "close", conn.close()).await?;

    let mut outcome = Outcome { inserted: None, deleted_forged_copy: false, status };
    for action in actions.actions {
        match action {
            EomAction::InsertHeader { index: 0, name, value } if name.to_bytes() == b"X-Transport-Security" => {
                outcome.inserted = Some(value.to_string_lossy().into_owned());
            }
            EomAction::DeleteHeader { name, index: 1 } if name.to_bytes() == b"X-Transport-Security" => {
                outcome.deleted_forged_copy = true;
            }
            other => return Err(format!("session {index}: unexpected action {other:?}")),
        }
    }
    Ok(outcome)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousand_concurrent_sessions() {
    ensure_open_files(4 * SESSIONS as u64);
    let milter = Milter::start("load", &config()).unwrap_or_else(|error| panic!("{error}"));
    let addr: std::net::SocketAddr = milter.socket().trim_start_matches("inet:").parse().unwrap();
    let pid = milter.pid().expect("the milter runs");
    let idle_rss = vm_kilobytes(pid, "VmRSS:");

    let open = Arc::new(Barrier::new(SESSIONS));
    let done = Arc::new(Barrier::new(SESSIONS));
    let started = Instant::now();
    let tasks: Vec<_> = (0..SESSIONS)
        .map(|index| tokio::spawn(session(addr, index, Arc::clone(&open), Arc::clone(&done))))
        .collect();
    let results = tokio::time::timeout(TOTAL_TIMEOUT, futures_join(tasks))
        .await
        .unwrap_or_else(|_| panic!("the sessions did not finish within {TOTAL_TIMEOUT:?}\n{}", milter.diagnostics()));
    let elapsed = started.elapsed();
    let peak_rss = vm_kilobytes(pid, "VmHWM:");
    let log = milter.log();
    milter.stop();

    eprintln!(
        "{SESSIONS} concurrent sessions in {elapsed:.1?}; milter VmRSS before {} kB, VmHWM {} kB",
        idle_rss.map_or("?".into(), |kb| kb.to_string()),
        peak_rss.map_or("?".into(), |kb| kb.to_string()),
    );
    let mut failures = Vec::new();
    for result in results {
        match result {
            Ok(Ok(outcome)) => {
                let Some(header) = outcome.inserted else {
                    failures.push(format!("a session got no header (status {:?})", outcome.status));
                    continue;
                };
                if !header.starts_with(&format!("{AUTHSERV_ID}; ")) || !header.contains(" tls=pass ") {
                    failures.push(format!("unexpected header {header:?}"));
                }
                if !outcome.deleted_forged_copy {
                    failures.push("a forged copy was not deleted".to_string());
                }
                if outcome.status != Status::Continue {
                    failures.push(format!("end of message returned {:?}", outcome.status));
                }
            }
            Ok(Err(error)) => failures.push(error),
            Err(error) => failures.push(format!("a session task failed: {error}")),
        }
    }
    assert!(failures.is_empty(), "{} of {SESSIONS} sessions failed, first: {:?}\n{log}", failures.len(), failures.first());
    let problems: Vec<&str> = log.lines().filter(|line| line.contains("ERROR") || line.contains("WARN")).collect();
    assert!(problems.is_empty(), "the milter logged problems under load:\n{}", problems.join("\n"));
}

/// Awaits every task in order.
async fn futures_join<T>(tasks: Vec<tokio::task::JoinHandle<T>>) -> Vec<Result<T, tokio::task::JoinError>> {
    let mut results = Vec::with_capacity(tasks.len());
    for task in tasks {
        results.push(task.await);
    }
    results
}
