//! A reloaded configuration applies to connections that start after it.

mod protocol;

use protocol::{POSTFIX_TLS_MACROS, config, inserted_header, start, transaction};

#[tokio::test]
async fn new_connections_use_reloaded_config() {
    let milter = start("[header]\nauthserv_id = \"old.example\"\n[trust]\ninternal_networks = []\n").await;
    let (before, _) = transaction(&milter, "192.0.2.1", &POSTFIX_TLS_MACROS, &[]).await;

    milter.reload.send(config("[header]\nauthserv_id = \"new.example\"\n[trust]\ninternal_networks = []\n")).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let (after, _) = transaction(&milter, "192.0.2.1", &POSTFIX_TLS_MACROS, &[]).await;

    assert!(inserted_header(&before).starts_with("old.example; "));
    assert!(inserted_header(&after).starts_with("new.example; "));
    milter.stop().await.unwrap().unwrap();
}
