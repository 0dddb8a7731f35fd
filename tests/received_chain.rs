//! Received fields the client sent are counted into the header.

mod protocol;

use protocol::{POSTFIX_TLS_MACROS, inserted_header, start, transaction};

const POSTFIX_TLS_FIELD: &str = "from out.example.net (out.example.net [198.51.100.20])\n\t(using TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits))\n\t(No client certificate requested)\n\tby relay.example.com (Postfix) with ESMTPS id 4Xk9Lm2QzRz1xyZ\n\tfor <bob@example.org>; Mon,  3 Feb 2025 13:32:13 +0000 (UTC)";

const POSTFIX_PLAIN_FIELD: &str = "from old.example.com (old.example.com [203.0.113.5])\n\tby out.example.net (Postfix) with ESMTP id 3C4D5E6F7A\n\tfor <bob@example.org>; Mon,  3 Feb 2025 13:32:10 +0000 (UTC)";

#[tokio::test]
async fn encrypted_chain_passes() {
    let milter = start("[trust]\ninternal_networks = []\n").await;

    let (actions, _) = transaction(&milter, "192.0.2.1", &POSTFIX_TLS_MACROS, &[("Received", POSTFIX_TLS_FIELD)]).await;
    let header = inserted_header(&actions);

    assert!(header.contains(" tls=pass "), "{header}");
    assert!(header.contains(" hops=1 encrypted=1 plaintext=0 internal=0 unknown=0 "), "{header}");
    milter.stop().await.unwrap().unwrap();
}

#[tokio::test]
async fn plaintext_hop_below_fails() {
    let milter = start("[trust]\ninternal_networks = []\n").await;
    let headers = [("Received", POSTFIX_TLS_FIELD), ("Received", POSTFIX_PLAIN_FIELD)];

    let (actions, _) = transaction(&milter, "192.0.2.1", &POSTFIX_TLS_MACROS, &headers).await;
    let header = inserted_header(&actions);

    assert!(header.contains(" tls=fail live=TLSv1.3 "), "{header}");
    assert!(header.contains(" hops=2 encrypted=1 plaintext=1 "), "{header}");
    milter.stop().await.unwrap().unwrap();
}

#[tokio::test]
async fn ten_thousand_fields_get_a_verdict() {
    let milter = start("[trust]\ninternal_networks = []\n").await;
    let headers: Vec<(&str, &str)> = std::iter::repeat_n(("Received", POSTFIX_TLS_FIELD), 10_000).collect();

    let (actions, _) = transaction(&milter, "192.0.2.1", &POSTFIX_TLS_MACROS, &headers).await;
    let header = inserted_header(&actions);

    assert!(header.contains(" hops=10000 "), "{header}");
    assert!(header.contains(" tls=unknown "), "{header}");
    milter.stop().await.unwrap().unwrap();
}

/// A milter packet is at most 1 MiB - 1 octets, so this is close to the largest field an
/// MTA can pass.
#[tokio::test]
async fn near_mebibyte_field_gets_a_verdict() {
    let milter = start("[trust]\ninternal_networks = []\n").await;
    let huge = format!("from a (a [192.0.2.9]) by b with ESMTPS id x ({}); Mon, 3 Feb 2025 10:00:00 +0000", "x".repeat(1_000_000));

    let (actions, _) = transaction(&milter, "192.0.2.1", &POSTFIX_TLS_MACROS, &[("Received", &huge)]).await;
    let header = inserted_header(&actions);

    assert!(header.contains(" hops=1 "), "{header}");
    assert!(header.contains(" unknown=1 "), "{header}");
    milter.stop().await.unwrap().unwrap();
}
