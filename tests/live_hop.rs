//! The live hop judged from milter macros: TLS, plaintext, and an MTA that takes no macro
//! requests. Also the negotiation: the macros requested per stage and the stages declined.

mod protocol;

use indymilter_test::{Actions, ProtoOpts, Status, TestConnection};
use protocol::{POSTFIX_TLS_MACROS, inserted_header, start, transaction};

const EXTERNAL: &str = "[trust]\ninternal_networks = []\n[header]\nauthserv_id = \"mx.test.example\"\n";

#[tokio::test]
async fn starttls_client_passes() {
    let milter = start(EXTERNAL).await;

    let (actions, status) = transaction(&milter, "192.0.2.1", &POSTFIX_TLS_MACROS, &[("Subject", "hi")]).await;
    let header = inserted_header(&actions);

    assert_eq!(status, Status::Continue);
    assert!(header.starts_with("mx.test.example; v=1 tls=pass live=TLSv1.3"), "{header}");
    assert!(header.contains(" cipher=TLS_AES_256_GCM_SHA384 bits=256 "), "{header}");
    assert!(header.contains(" hops=0 "), "{header}");
    milter.stop().await.unwrap().unwrap();
}

#[tokio::test]
async fn plain_client_fails() {
    let milter = start(EXTERNAL).await;

    let (actions, _) = transaction(&milter, "192.0.2.1", &[], &[("Subject", "hi")]).await;
    let header = inserted_header(&actions);

    assert!(header.contains(" tls=fail live=none "), "{header}");
    assert!(!header.contains("cipher="), "{header}");
    milter.stop().await.unwrap().unwrap();
}

#[tokio::test]
async fn mta_without_macro_requests_is_unknown() {
    let milter = start(EXTERNAL).await;

    let mut conn = TestConnection::configure()
        .available_actions(Actions::all() - Actions::REQUEST_MACROS)
        .open_tcp(milter.addr)
        .await
        .unwrap();
    conn.connect("client.example.net", ([192, 0, 2, 1], 40000)).await.unwrap();
    conn.helo("client.example.net").await.unwrap();
    conn.mail(["<a@example.net>"]).await.unwrap();
    protocol::send_rcpt(&mut conn, "<b@example.org>").await;
    let (actions, _) = conn.eom().await.unwrap();
    conn.close().await.unwrap();
    let header = inserted_header(&actions);

    assert!(header.contains(" tls=unknown live=unknown "), "{header}");
    milter.stop().await.unwrap().unwrap();
}

#[tokio::test]
async fn loopback_client_is_internal_by_default() {
    let milter = start("").await;

    let (actions, _) = transaction(&milter, "127.0.0.1", &[], &[("Subject", "hi")]).await;
    let header = inserted_header(&actions);

    assert!(header.contains(" tls=internal "), "{header}");
    milter.stop().await.unwrap().unwrap();
}

#[tokio::test]
async fn macros_are_requested_per_stage() {
    let milter = start(EXTERNAL).await;

    let conn = TestConnection::open(milter.addr).await.unwrap();
    let mail = conn.requested_macros().get(&indymilter_test::MacroStage::Mail).unwrap();

    assert!(mail.to_str().unwrap().contains("{tls_version}"));
    assert!(conn.negotiated_opts().contains(ProtoOpts::NO_HELO), "the HELO stage is not needed");
    assert!(conn.negotiated_opts().contains(ProtoOpts::NOREPLY_RCPT), "no rule answers at RCPT");
    assert!(conn.negotiated_actions().contains(Actions::ADD_HEADER | Actions::CHANGE_HEADER));
    conn.close().await.unwrap();
    milter.stop().await.unwrap().unwrap();
}

#[tokio::test]
async fn helo_macros_requested_when_helo_needed() {
    let milter = start(EXTERNAL).await;

    let conn = TestConnection::configure()
        .available_opts(ProtoOpts::all() - ProtoOpts::NO_HELO)
        .open_tcp(milter.addr)
        .await
        .unwrap();
    let helo = conn.requested_macros().get(&indymilter_test::MacroStage::Helo).unwrap();

    assert!(helo.to_str().unwrap().contains("{tls_version}"));
    conn.close().await.unwrap();
    milter.stop().await.unwrap().unwrap();
}

#[tokio::test]
async fn rcpt_declined_without_rules() {
    let milter = start(EXTERNAL).await;

    let mut conn = TestConnection::open(milter.addr).await.unwrap();
    // Checked first: with RCPT taken, indymilter aborts a transaction whose header follows
    // MAIL directly, and end of message would time out.
    assert!(conn.negotiated_opts().contains(ProtoOpts::NO_RCPT), "no rule decides at RCPT, so the stage is declined");

    conn.connect("client.example.net", ([192, 0, 2, 1], 40000)).await.unwrap();
    protocol::helo_and_mail(&mut conn, &POSTFIX_TLS_MACROS, "<a@example.net>").await;
    conn.header("Subject", "hi").await.unwrap();
    let (actions, status) = conn.eom().await.unwrap();
    conn.close().await.unwrap();

    assert_eq!(status, Status::Continue);
    assert!(inserted_header(&actions).contains(" tls=pass "));
    milter.stop().await.unwrap().unwrap();
}

#[tokio::test]
async fn rcpt_unanswered_when_mta_cannot_skip() {
    let milter = start(EXTERNAL).await;

    let mut conn = TestConnection::configure()
        .available_opts(ProtoOpts::all() - ProtoOpts::NO_RCPT)
        .open_tcp(milter.addr)
        .await
        .unwrap();
    conn.connect("client.example.net", ([192, 0, 2, 1], 40000)).await.unwrap();
    protocol::helo_and_mail(&mut conn, &POSTFIX_TLS_MACROS, "<a@example.net>").await;
    let rcpt = conn.rcpt(["<b@example.org>"]).await.unwrap();
    let (actions, status) = conn.eom().await.unwrap();
    conn.close().await.unwrap();

    assert_eq!(rcpt, Status::Noreply);
    assert_eq!(status, Status::Continue);
    assert!(inserted_header(&actions).contains(" tls=pass "));
    milter.stop().await.unwrap().unwrap();
}

#[tokio::test]
async fn rcpt_answered_when_rules_exist() {
    let milter = start(&format!("{EXTERNAL}[[policy]]\nname = \"any\"\n")).await;

    let mut conn = TestConnection::open(milter.addr).await.unwrap();
    let opts = conn.negotiated_opts();
    conn.connect("client.example.net", ([192, 0, 2, 1], 40000)).await.unwrap();
    protocol::helo_and_mail(&mut conn, &POSTFIX_TLS_MACROS, "<a@example.net>").await;
    let rcpt = conn.rcpt(["<b@example.org>"]).await;
    conn.close().await.unwrap();

    assert!(!opts.contains(ProtoOpts::NO_RCPT), "rules decide at RCPT, so the stage is taken");
    assert!(!opts.contains(ProtoOpts::NOREPLY_RCPT), "rules answer at RCPT");
    assert!(matches!(rcpt, Ok(Status::Continue)), "{rcpt:?}");
    milter.stop().await.unwrap().unwrap();
}
