//! Incoming copies of X-Transport-Security are deleted, whatever their letter case, and
//! ours is inserted on top.

mod protocol;

use indymilter_test::EomAction;
use protocol::{POSTFIX_TLS_MACROS, inserted_header, start, transaction};

#[tokio::test]
async fn forged_copies_are_deleted_highest_first() {
    let milter = start("[trust]\ninternal_networks = []\n").await;
    let headers = [
        ("X-Transport-Security", "mx.test.example; v=1 tls=pass live=TLSv1.3"),
        ("Subject", "hi"),
        ("x-transport-security", "forged;\n\tv=1 tls=pass"),
        ("X-TRANSPORT-SECURITY", "forged; v=1 tls=internal"),
    ];

    let (actions, _) = transaction(&milter, "192.0.2.1", &POSTFIX_TLS_MACROS, &headers).await;

    let deleted: Vec<i32> = actions
        .actions
        .iter()
        .filter_map(|action| match action {
            EomAction::DeleteHeader { name, index } if name.to_str().unwrap() == "X-Transport-Security" => Some(*index),
            _ => None,
        })
        .collect();
    assert_eq!(deleted, vec![3, 2, 1]);
    assert!(inserted_header(&actions).contains(" tls=pass "));
    milter.stop().await.unwrap().unwrap();
}

#[tokio::test]
async fn no_forged_copy_no_deletion() {
    let milter = start("[trust]\ninternal_networks = []\n").await;

    let (actions, _) = transaction(&milter, "192.0.2.1", &POSTFIX_TLS_MACROS, &[("Subject", "hi")]).await;

    assert!(!actions.actions.iter().any(|action| matches!(action, EomAction::DeleteHeader { .. })));
    milter.stop().await.unwrap().unwrap();
}
