//! Policy rules at the protocol level: RCPT rejection, 452 for a recipient under another
//! rule, end-of-message decisions, quarantine, dry run and local submissions.

mod protocol;

use indymilter_test::{EomAction, Status, TestConnection};
use protocol::{POSTFIX_TLS_MACROS, inserted_header, start};
use std::net::IpAddr;

const RULES: &str = r#"
[header]
authserv_id = "mx.test.example"
[trust]
internal_networks = []

[[policy]]
name = "partners"
senders = ["partner.example"]
require_tls = true
min_tls_version = "TLSv1.2"
action = "reject"
reply = "550 5.7.10 Encryption needed (100% of partner mail)"

[[policy]]
name = "legal"
recipients = ["legal.example.org"]
chain = "all-encrypted"
action = "quarantine"

[[policy]]
name = "audit"
senders = ["audit.example"]
require_tls = true
action = "tempfail"
dry_run = true
"#;

const PLAIN_FIELD: &str = "from old.example.com (old.example.com [203.0.113.5])\n\tby out.example.net (Postfix) with ESMTP id 3C4D5E6F7A\n\tfor <bob@example.org>; Mon,  3 Feb 2025 13:32:10 +0000 (UTC)";

/// Opens an MTA connection up to MAIL from `client` (127.0.0.1 port 0 is a local submission).
async fn session(addr: std::net::SocketAddr, client: (IpAddr, u16), tls: bool, sender: &str) -> TestConnection {
    let mut conn = TestConnection::open(addr).await.unwrap();
    conn.connect("client.example.net", client).await.unwrap();
    let macros: &[(&str, &str)] = if tls { &POSTFIX_TLS_MACROS } else { &[] };
    protocol::helo_and_mail(&mut conn, macros, sender).await;
    conn
}

fn external() -> (IpAddr, u16) {
    ("192.0.2.1".parse().unwrap(), 40000)
}

#[tokio::test]
async fn plaintext_partner_rejected_at_rcpt() {
    let milter = start(RULES).await;
    let mut conn = session(milter.addr, external(), false, "<a@partner.example>").await;

    let status = conn.rcpt(["<b@example.org>"]).await.unwrap();

    let Status::Reject { message: Some(reply) } = status else { panic!("not rejected: {status:?}") };
    assert_eq!(reply.to_str().unwrap(), "550 5.7.10 Encryption needed (100%% of partner mail)");
    conn.close().await.unwrap();
    milter.stop().await.unwrap().unwrap();
}

#[tokio::test]
async fn tls_partner_accepted_and_tagged() {
    let milter = start(RULES).await;
    let mut conn = session(milter.addr, external(), true, "<a@partner.example>").await;

    assert_eq!(conn.rcpt(["<b@example.org>"]).await.unwrap(), Status::Continue);
    let (actions, status) = conn.eom().await.unwrap();

    assert_eq!(status, Status::Continue);
    let header = inserted_header(&actions);
    assert!(header.contains(" policy=partners action=tag"), "{header}");
    conn.close().await.unwrap();
    milter.stop().await.unwrap().unwrap();
}

#[tokio::test]
async fn other_policy_recipient_gets_452() {
    let milter = start(RULES).await;
    let mut conn = session(milter.addr, external(), true, "<a@example.net>").await;

    let first = conn.rcpt(["<b@example.org>"]).await.unwrap();
    let second = conn.rcpt(["<c@legal.example.org>"]).await.unwrap();
    let third = conn.rcpt(["<d@example.org>"]).await.unwrap();

    assert_eq!(first, Status::Continue);
    assert_eq!(third, Status::Continue);
    let Status::Tempfail { message: Some(reply) } = second else { panic!("not deferred: {second:?}") };
    assert!(reply.to_str().unwrap().starts_with("452 4.5.3 "));
    conn.close().await.unwrap();
    milter.stop().await.unwrap().unwrap();
}

#[tokio::test]
async fn plaintext_chain_quarantined_at_eom() {
    let milter = start(RULES).await;
    let mut conn = session(milter.addr, external(), true, "<a@example.net>").await;

    conn.rcpt(["<c@legal.example.org>"]).await.unwrap();
    conn.header("Received", PLAIN_FIELD).await.unwrap();
    let (actions, status) = conn.eom().await.unwrap();

    assert_eq!(status, Status::Continue);
    assert!(actions.actions.iter().any(|action| matches!(action, EomAction::Quarantine { .. })), "{actions:?}");
    assert!(inserted_header(&actions).contains(" policy=legal action=quarantine"));
    conn.close().await.unwrap();
    milter.stop().await.unwrap().unwrap();
}

#[tokio::test]
async fn dry_run_reports_without_acting() {
    let milter = start(RULES).await;
    let mut conn = session(milter.addr, external(), false, "<a@audit.example>").await;

    let rcpt = conn.rcpt(["<b@example.org>"]).await.unwrap();
    let (actions, status) = conn.eom().await.unwrap();

    assert_eq!(rcpt, Status::Continue);
    assert_eq!(status, Status::Continue);
    let header = inserted_header(&actions);
    assert!(header.contains(" policy=audit action=tempfail dry_run=yes"), "{header}");
    conn.close().await.unwrap();
    milter.stop().await.unwrap().unwrap();
}

#[tokio::test]
async fn global_dry_run_disarms_rules() {
    let milter = start(&format!("dry_run = true\n{RULES}")).await;
    let mut conn = session(milter.addr, external(), false, "<a@partner.example>").await;

    let rcpt = conn.rcpt(["<b@example.org>"]).await.unwrap();
    let (actions, _) = conn.eom().await.unwrap();

    assert_eq!(rcpt, Status::Continue);
    assert!(inserted_header(&actions).contains(" policy=partners action=reject dry_run=yes"));
    conn.close().await.unwrap();
    milter.stop().await.unwrap().unwrap();
}

#[tokio::test]
async fn local_submission_never_rejected() {
    let milter = start(RULES).await;
    let local = ("127.0.0.1".parse().unwrap(), 0);
    let mut conn = session(milter.addr, local, false, "<a@partner.example>").await;

    let first = conn.rcpt(["<b@example.org>"]).await.unwrap();
    let second = conn.rcpt(["<c@legal.example.org>"]).await.unwrap();
    let (actions, status) = conn.eom().await.unwrap();

    assert_eq!(first, Status::Continue);
    assert_eq!(second, Status::Continue);
    assert_eq!(status, Status::Continue);
    assert!(inserted_header(&actions).contains(" tls=internal "));
    conn.close().await.unwrap();
    milter.stop().await.unwrap().unwrap();
}

#[tokio::test]
async fn unmatched_message_gets_default() {
    let milter = start(RULES).await;
    let mut conn = session(milter.addr, external(), false, "<a@example.net>").await;

    conn.rcpt(["<b@example.org>"]).await.unwrap();
    let (actions, status) = conn.eom().await.unwrap();

    assert_eq!(status, Status::Continue);
    assert!(inserted_header(&actions).contains(" policy=default action=tag"));
    conn.close().await.unwrap();
    milter.stop().await.unwrap().unwrap();
}
