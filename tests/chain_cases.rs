//! Chain analysis cases: internal hops, the trust boundary, proxies, tls_logging_hosts,
//! sender-controlled text, malformed fields, the verdict rules and the bounds.

use std::net::IpAddr;
use tls_milter::chain::{self, Analysis, LiveSource, LiveTls, MAX_ANALYSED_FIELDS, MAX_FIELD_LEN, Trust};
use tls_milter::hop::{Claim, TlsClass, Verdict};

/// Our MX, Postfix, receiving over TLS from an external relay.
const MX_TLS: &str = "from mail.example.net (mail.example.net [192.0.2.10])\n\t(using TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits))\n\t(No client certificate requested)\n\tby mx.example.org (Postfix) with ESMTPS id 4Xk9Lm2QzRz1xyZ\n\tfor <alice@example.org>; Mon,  3 Feb 2025 13:32:13 +0000 (UTC)";
/// Our MX, Postfix, receiving without TLS from an external relay.
const MX_PLAIN: &str = "from mail.example.net (mail.example.net [192.0.2.13])\n\tby mx.example.org (Postfix) with ESMTP id 4B1C2D3E4F\n\tfor <erin@example.org>; Sun, 16 Feb 2025 21:02:11 +0100 (CET)";
/// The sender's submission server, over TLS.
const SENDER_TLS: &str = "from [192.168.1.20] (unknown [203.0.113.45])\n\t(using TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits))\n\tby mail.example.net (Postfix) with ESMTPSA id 4M5n6b7v8c9x\n\tfor <alice@example.org>; Mon,  3 Feb 2025 13:32:10 +0000 (UTC)";
/// The sender's submission server, without TLS.
const SENDER_PLAIN: &str = "from pc.home.example (pc.home.example [203.0.113.46])\n\tby mail.example.net (Postfix) with ESMTPA id 4M5n6b7v8c9y\n\tfor <alice@example.org>; Mon,  3 Feb 2025 13:32:09 +0000 (UTC)";
/// A generic stamp from an MTA the fingerprint table does not know.
const UNKNOWN_WRITER: &str = "from foo.example.com (foo.example.com [192.0.2.190])\n\tby bar.example.net with ESMTP id AbC123;\n\tWed, 12 Feb 2025 13:17:11 +0000";
/// Postfix after an amavis content filter: re-injection on 127.0.0.1:10025.
const REINJECTED: &str = "from localhost (localhost [127.0.0.1])\n\tby mx.example.org (Postfix) with ESMTP id 7F3A21C0B2\n\tfor <alice@example.org>; Mon,  3 Feb 2025 13:32:15 +0000 (UTC)";
/// amavis receiving from Postfix on 127.0.0.1:10024.
const AMAVIS: &str = "from mx.example.org ([127.0.0.1])\n\tby localhost (mx.example.org [127.0.0.1]) (amavisd-new, port 10024)\n\twith ESMTP id AbCdEfGhIjKl for <alice@example.org>;\n\tMon,  3 Feb 2025 13:32:14 +0000 (UTC)";
/// A Gmail-sent message, as it arrives at our MX.
const FROM_GMAIL: &str = "from mail-sor-f41.google.com (mail-sor-f41.google.com. [209.85.220.41])\n\tby mx.example.org (Postfix) with ESMTPS id 4Q1w2e3r4t5y\n\tfor <alice@example.org>; Mon,  3 Feb 2025 13:32:13 +0000 (UTC)";
const GMAIL_INTERNAL: &str = "by 2002:a05:6a20:1234:b0:1c4:abcd:ef01 with SMTP id ab12csp1234567pzb;\n        Mon, 3 Feb 2025 05:32:12 -0800 (PST)";
const GMAIL_OUTBOUND: &str = "by mail-wr1-f54.google.com with SMTP id ffacd0b85a97d-38c2a1b2c3dso123456f8f.1;\n        Mon, 03 Feb 2025 05:32:12 -0800 (PST)";
const GMAIL_HTTP: &str = "by 2002:a05:7b31:abcd:b0:5e6:7f80:9a1b with HTTP; Mon, 3 Feb 2025 05:32:11 -0800 (PST)";

fn loopback_trust() -> Trust {
    Trust { internal_networks: chain::default_internal_networks(), ..Trust::default() }
}

fn offline<'a>(fields: &[&'a str], trust: &Trust) -> Analysis<'a> {
    chain::analyse(fields, fields.len(), LiveSource::TopmostField, trust)
}

fn daemon<'a>(fields: &[&'a str], live: &LiveTls, trust: &Trust) -> Analysis<'a> {
    chain::analyse(fields, fields.len(), LiveSource::Macros(live), trust)
}

fn ip(text: &str) -> Option<IpAddr> {
    text.parse().ok()
}

fn live_tls(client: &str, version: Option<&str>) -> LiveTls {
    LiveTls {
        client_ip: ip(client),
        tls_version: version.map(str::to_string),
        tls_macros_requested: true,
        ..LiveTls::default()
    }
}

fn classes(analysis: &Analysis<'_>) -> Vec<TlsClass> {
    analysis.hops.iter().map(|hop| hop.tls).collect()
}

fn trusted(analysis: &Analysis<'_>) -> Vec<bool> {
    analysis.hops.iter().map(|hop| hop.trusted).collect()
}

fn live_token<'a>(analysis: &'a Analysis<'_>) -> Option<&'a str> {
    analysis.live.as_ref().map(|live| live.evidence.as_str())
}

#[test]
fn offline_pass() {
    let analysis = offline(&[MX_TLS, SENDER_TLS], &loopback_trust());
    assert_eq!(analysis.verdict, Verdict::Pass);
    assert_eq!(live_token(&analysis), Some("TLSv1.3"));
    assert_eq!(analysis.counts.hops, 1);
    assert_eq!(analysis.counts.encrypted, 1);
}

#[test]
fn offline_fail_lower_hop() {
    let analysis = offline(&[MX_TLS, SENDER_PLAIN], &loopback_trust());
    assert_eq!(analysis.verdict, Verdict::Fail);
    assert_eq!(analysis.counts.plaintext, 1);
}

#[test]
fn offline_fail_live_hop() {
    let analysis = offline(&[MX_PLAIN, SENDER_TLS], &loopback_trust());
    assert_eq!(analysis.verdict, Verdict::Fail);
    assert_eq!(live_token(&analysis), Some("none"));
}

#[test]
fn offline_unknown_writer() {
    let analysis = offline(&[MX_TLS, UNKNOWN_WRITER], &loopback_trust());
    assert_eq!(analysis.verdict, Verdict::Unknown);
    assert_eq!(analysis.counts.unknown, 1);
}

#[test]
fn no_received_fields() {
    let analysis = offline(&[], &loopback_trust());
    assert_eq!(analysis.live, None);
    assert_eq!(analysis.verdict, Verdict::Unknown);
    assert_eq!(analysis.counts.hops, 0);
}

#[test]
fn daemon_without_live_tls_state() {
    let live = LiveTls { client_ip: ip("192.0.2.10"), ..LiveTls::default() };
    let analysis = daemon(&[SENDER_TLS], &live, &loopback_trust());
    assert_eq!(live_token(&analysis), Some("unknown"));
    assert_eq!(analysis.verdict, Verdict::Unknown);
}

#[test]
fn offline_internal_only() {
    let pickup = "by mx.example.org (Postfix, from userid 1000)\n\tid 4D9E8F7A6B; Tue, 18 Feb 2025 09:17:11 +0000 (UTC)";
    let analysis = offline(&[pickup], &loopback_trust());
    assert_eq!(classes(&analysis), [TlsClass::Internal]);
    assert_eq!(analysis.verdict, Verdict::Internal);
}

#[test]
fn amavis_reinjection() {
    let analysis = offline(&[REINJECTED, AMAVIS, MX_TLS, SENDER_TLS], &loopback_trust());
    assert_eq!(classes(&analysis), [TlsClass::Internal, TlsClass::Internal, TlsClass::Encrypted, TlsClass::Encrypted]);
    assert_eq!(trusted(&analysis), [true, true, true, false]);
    assert_eq!(analysis.verdict, Verdict::Pass);
    assert_eq!(analysis.counts.claimed, 1);
}

#[test]
fn amavis_reinjection_daemon() {
    let live = LiveTls { client_ip: ip("127.0.0.1"), tls_macros_requested: true, ..LiveTls::default() };
    let analysis = daemon(&[AMAVIS, MX_TLS, SENDER_TLS], &live, &loopback_trust());
    assert_eq!(analysis.live.as_ref().map(|live| live.class), Some(TlsClass::Internal));
    assert_eq!(trusted(&analysis), [true, true, false]);
    assert_eq!(analysis.verdict, Verdict::Pass);
}

#[test]
fn loopback_external_without_networks() {
    let analysis = offline(&[REINJECTED, AMAVIS, MX_TLS], &Trust::default());
    assert_eq!(analysis.hops.first().map(|hop| hop.tls), Some(TlsClass::Plaintext));
    assert_eq!(analysis.verdict, Verdict::Fail);
}

#[test]
fn internal_networks_private_relay() {
    let relay = "from relay.corp.example.com (relay.corp.example.com [10.1.2.3])\n\tby mx.example.org (Postfix) with ESMTP id 1A; Mon,  3 Feb 2025 13:32:13 +0000";
    let networks = ["10.0.0.0/8".parse(), "127.0.0.0/8".parse()].into_iter().flatten().collect();
    let trust = Trust { internal_networks: networks, ..Trust::default() };
    let analysis = offline(&[relay, MX_TLS], &trust);
    assert_eq!(classes(&analysis), [TlsClass::Internal, TlsClass::Encrypted]);
    assert_eq!(analysis.hops.first().map(|hop| hop.line.claim), Some(Claim::Plaintext));
    assert_eq!(analysis.verdict, Verdict::Pass);
}

#[test]
fn internal_hosts_exact() {
    let hop = "from relay.partner.example (relay.partner.example [198.51.100.7])\n\tby mx.example.org (Postfix) with ESMTP id 2B; Mon,  3 Feb 2025 13:32:13 +0000";
    let trust = Trust { internal_hosts: vec!["RELAY.partner.example".into()], ..loopback_trust() };
    let analysis = offline(&[MX_TLS, hop], &trust);
    assert_eq!(classes(&analysis), [TlsClass::Encrypted, TlsClass::Internal]);
    let reason = analysis.hops.get(1).and_then(|hop| hop.internal_reason.as_ref()).map(ToString::to_string).unwrap_or_default();
    assert!(reason.contains("internal_hosts"), "{reason}");
}

#[test]
fn internal_hosts_ignores_helo() {
    // The HELO names an internal host, but the reverse-DNS name is someone else's.
    let hop = "from relay.partner.example (attacker.example.net [203.0.113.66])\n\tby mx.example.org (Postfix) with ESMTP id 2D; Mon,  3 Feb 2025 13:32:13 +0000";
    let trust = Trust { internal_hosts: vec!["relay.partner.example".into()], ..loopback_trust() };
    let analysis = offline(&[MX_TLS, hop], &trust);
    assert_eq!(classes(&analysis), [TlsClass::Encrypted, TlsClass::Plaintext]);
    assert_eq!(analysis.verdict, Verdict::Fail);
}

#[test]
fn gmail_outbound_hop_is_internal() {
    let analysis = offline(&[FROM_GMAIL, GMAIL_OUTBOUND, GMAIL_HTTP], &loopback_trust());
    assert_eq!(classes(&analysis), [TlsClass::Encrypted, TlsClass::Internal, TlsClass::Internal]);
    assert_eq!(analysis.verdict, Verdict::Pass);
}

#[test]
fn internal_hosts_wildcard() {
    let sub = "from a.partner.example (a.partner.example [198.51.100.7])\n\tby mx.example.org (Postfix) with ESMTP id 2B; Mon,  3 Feb 2025 13:32:13 +0000";
    let apex = "from partner.example (partner.example [198.51.100.8])\n\tby mx.example.org (Postfix) with ESMTP id 2C; Mon,  3 Feb 2025 13:32:13 +0000";
    let trust = Trust { internal_hosts: vec!["*.partner.example".into()], ..loopback_trust() };
    let analysis = offline(&[MX_TLS, sub, apex], &trust);
    assert_eq!(analysis.hops.get(1).map(|hop| hop.tls), Some(TlsClass::Internal));
    assert_eq!(analysis.hops.get(2).map(|hop| hop.tls), Some(TlsClass::Plaintext));
}

#[test]
fn same_organisation_rdns() {
    let hop = "from out1.example.org (out1.example.org [198.51.100.7])\n\tby mx.example.org (Postfix) with ESMTP id 3C; Mon,  3 Feb 2025 13:32:13 +0000";
    let analysis = offline(&[hop, SENDER_TLS], &loopback_trust());
    assert_eq!(analysis.live.as_ref().map(|live| live.class), Some(TlsClass::Internal));
    assert_eq!(live_token(&analysis), Some("none"));
    assert_eq!(trusted(&analysis), [true, true]);
}

#[test]
fn same_organisation_ignores_helo() {
    let forged = "from mx2.example.org (unknown [203.0.113.9])\n\tby mx.example.org (Postfix) with ESMTP id 3D; Mon,  3 Feb 2025 13:32:13 +0000";
    let analysis = offline(&[forged], &loopback_trust());
    assert_eq!(classes(&analysis), [TlsClass::Plaintext]);
    assert_eq!(analysis.verdict, Verdict::Fail);
}

#[test]
fn same_organisation_ignores_forged_rdns() {
    let forged = "from x (mx2.example.org [203.0.113.9] (may be forged))\n\tby mx.example.org (8.18.1/8.18.1) with ESMTP id 3E; Mon, 3 Feb 2025 13:32:13 +0000";
    let analysis = offline(&[forged], &loopback_trust());
    assert_eq!(classes(&analysis), [TlsClass::Plaintext]);
}

#[test]
fn public_suffix_not_one_organisation() {
    let hop = "from mail.alpha.co.uk (mail.alpha.co.uk [198.51.100.9])\n\tby mx.beta.co.uk (Postfix) with ESMTP id 3F; Mon,  3 Feb 2025 13:32:13 +0000";
    let analysis = offline(&[hop], &loopback_trust());
    assert_eq!(classes(&analysis), [TlsClass::Plaintext]);
}

#[test]
fn gmail_provider_internal() {
    let analysis = offline(&[FROM_GMAIL, GMAIL_INTERNAL, GMAIL_HTTP], &loopback_trust());
    assert_eq!(classes(&analysis), [TlsClass::Encrypted, TlsClass::Internal, TlsClass::Internal]);
    assert_eq!(analysis.verdict, Verdict::Pass);
    assert_eq!(trusted(&analysis), [true, false, false]);
}

#[test]
fn local_handoff_unix_socket() {
    let lmtp = "from mx6.messagingengine.com ([unix socket])\n\t by sloti12345n1 (Cyrus 3.11.0) with LMTPA;\n\t Wed, 12 Feb 2025 08:17:11 -0500";
    let analysis = offline(&[lmtp, MX_TLS, SENDER_TLS], &loopback_trust());
    assert_eq!(classes(&analysis), [TlsClass::Internal, TlsClass::Encrypted, TlsClass::Encrypted]);
    assert_eq!(analysis.verdict, Verdict::Pass);
}

#[test]
fn local_handoff_exim_local() {
    let local = "from www-data by web.example.org with local (Exim 4.96)\n\t(envelope-from <www-data@web.example.org>)\n\tid 1tAbCf-000XyZ-3z\n\tfor gus@example.com; Thu, 13 Feb 2025 14:22:11 +0000";
    let analysis = offline(&[MX_TLS, local], &loopback_trust());
    assert_eq!(classes(&analysis), [TlsClass::Encrypted, TlsClass::Internal]);
    assert_eq!(analysis.verdict, Verdict::Pass);
}

#[test]
fn local_handoff_mapi() {
    let mapi = "from DB8PR07MB4411.eurprd07.prod.outlook.com ([fe80::4a1c:93ff:fe2b:7d10]) by\n DB8PR07MB4411.eurprd07.prod.outlook.com ([fe80::4a1c:93ff:fe2b:7d10%4]) with\n mapi id 15.20.7091.028; Sat, 23 Dec 2023 18:05:27 +0000";
    let analysis = offline(&[MX_TLS, mapi], &loopback_trust());
    assert_eq!(analysis.hops.get(1).map(|hop| hop.tls), Some(TlsClass::Internal));
}

#[test]
fn trust_boundary_offline() {
    let analysis = offline(&[MX_TLS, SENDER_TLS, SENDER_PLAIN], &loopback_trust());
    assert_eq!(trusted(&analysis), [true, false, false]);
    assert_eq!(analysis.counts.claimed, 2);
    assert_eq!(analysis.verdict, Verdict::Fail);
}

#[test]
fn trust_boundary_daemon_external() {
    let live = live_tls("192.0.2.10", Some("TLSv1.3"));
    let analysis = daemon(&[SENDER_TLS], &live, &loopback_trust());
    assert_eq!(trusted(&analysis), [false]);
    assert_eq!(analysis.counts.hops, 1);
    assert_eq!(analysis.counts.claimed, 1);
    assert_eq!(analysis.verdict, Verdict::Pass);
}

#[test]
fn trust_boundary_daemon_internal() {
    let networks = ["10.0.0.0/8".parse()].into_iter().flatten().collect();
    let trust = Trust { internal_networks: networks, ..Trust::default() };
    let relay = "from mx.example.net (mx.example.net [192.0.2.77])\n\t(using TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits))\n\tby edge.example.org (Postfix) with ESMTPS id 5E; Mon,  3 Feb 2025 13:32:12 +0000";
    let live = live_tls("10.0.0.5", None);
    let analysis = daemon(&[relay, SENDER_TLS], &live, &trust);
    assert_eq!(analysis.live.as_ref().map(|live| live.class), Some(TlsClass::Internal));
    assert_eq!(trusted(&analysis), [true, false]);
    assert_eq!(analysis.counts.claimed, 1);
    assert_eq!(analysis.verdict, Verdict::Pass);
}

#[test]
fn tls_proxy_daemon() {
    let proxies = ["192.0.2.99/32".parse()].into_iter().flatten().collect();
    let trust = Trust { tls_proxies: proxies, ..loopback_trust() };
    let live = live_tls("192.0.2.99", None);
    let analysis = daemon(&[SENDER_TLS], &live, &trust);
    assert_eq!(live_token(&analysis), Some("unknown"));
    assert_eq!(analysis.verdict, Verdict::Unknown);
    assert_eq!(trusted(&analysis), [false]);
}

#[test]
fn tls_proxy_on_loopback() {
    let proxies = ["127.0.0.1/32".parse()].into_iter().flatten().collect();
    let trust = Trust { tls_proxies: proxies, ..loopback_trust() };
    let live = live_tls("127.0.0.1", None);
    let analysis = daemon(&[SENDER_TLS], &live, &trust);
    assert_eq!(analysis.live.as_ref().map(|live| live.class), Some(TlsClass::Unknown));
    assert_eq!(analysis.verdict, Verdict::Unknown);
}

#[test]
fn tls_proxy_offline() {
    let proxies = ["127.0.0.1/32".parse()].into_iter().flatten().collect();
    let trust = Trust { tls_proxies: proxies, ..loopback_trust() };
    let analysis = offline(&[REINJECTED, SENDER_TLS], &trust);
    assert_eq!(live_token(&analysis), Some("unknown"));
    assert_eq!(trusted(&analysis), [true, false]);
    assert_eq!(analysis.verdict, Verdict::Unknown);
}

#[test]
fn tls_logging_host_plaintext() {
    let trust = Trust { tls_logging_hosts: vec!["*.example.net".into()], ..loopback_trust() };
    let analysis = offline(&[MX_TLS, UNKNOWN_WRITER], &trust);
    let hop = analysis.hops.get(1);
    assert_eq!(hop.map(|hop| hop.line.claim), Some(Claim::Plaintext));
    assert!(hop.is_some_and(|hop| hop.evidence().contains("tls_logging_hosts")));
    assert_eq!(analysis.verdict, Verdict::Fail);
}

#[test]
fn tls_logging_host_malformed() {
    let broken = "from foo.example.com (foo.example.com [192.0.2.190]\n\tby bar.example.net with ESMTP id AbC123;\n\tWed, 12 Feb 2025 13:17:11 +0000";
    let trust = Trust { tls_logging_hosts: vec!["bar.example.net".into()], ..loopback_trust() };
    let analysis = offline(&[MX_TLS, broken], &trust);
    assert_eq!(analysis.hops.get(1).map(|hop| hop.line.claim), Some(Claim::Unknown));
}

#[test]
fn tls_logging_host_other_by() {
    let trust = Trust { tls_logging_hosts: vec!["other.example.net".into()], ..loopback_trust() };
    let analysis = offline(&[MX_TLS, UNKNOWN_WRITER], &trust);
    assert_eq!(analysis.hops.get(1).map(|hop| hop.line.claim), Some(Claim::Unknown));
}

#[test]
fn quoted_local_part_injection() {
    let line = "from mail.example.net (mail.example.net [192.0.2.206])\n\tby mx.example.org (Postfix) with ESMTP id 4J44EF56\n\tfor <\"with ESMTPS (TLSv1.3)\"@example.org>; Wed, 12 Feb 2025 13:26:11 +0000 (UTC)";
    let analysis = offline(&[line], &loopback_trust());
    assert_eq!(analysis.hops.first().map(|hop| hop.line.claim), Some(Claim::Plaintext));
    assert_eq!(analysis.verdict, Verdict::Fail);
}

#[test]
fn envelope_sender_injection() {
    let line = "from mail.example.net ([192.0.2.33] helo=mail.example.net)\n\tby mx.example.org with esmtp (Exim 4.96)\n\t(envelope-from <\"x) (TLS1.3) (y\"@example.net>)\n\tid 1tAbCe-000XyZ-2y; Thu, 13 Feb 2025 14:17:11 +0000";
    let line = tls_milter::received::parse(line);
    assert_eq!(line.claim, Claim::Plaintext);
    assert_eq!(line.tls_version, None);
}

#[test]
fn helo_injection_tls_comment() {
    let line = "from x (using TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits)) (unknown [203.0.113.5])\n\tby mx.example.org (Postfix) with ESMTP id 6F; Mon,  3 Feb 2025 13:32:13 +0000";
    let line = tls_milter::received::parse(line);
    assert_eq!(line.claim, Claim::Plaintext);
    assert_eq!(line.cipher, None);
}

#[test]
fn helo_injection_tls_words() {
    let line = "from TLSv1.3-with-cipher.example.net (unknown [198.51.100.66])\n\tby mx.example.org (Postfix) with ESMTP id TLS13ESMTPS\n\tfor <esmtps@example.org>; Wed, 12 Feb 2025 13:18:11 +0000 (UTC)";
    let line = tls_milter::received::parse(line);
    assert_eq!(line.claim, Claim::Plaintext);
    assert_eq!(line.tls_version, None);
}

#[test]
fn helo_injection_fake_address() {
    let line = "from x (localhost [127.0.0.1]) (unknown [203.0.113.5])\n\tby mx.example.org (Postfix) with ESMTP id 7A; Mon,  3 Feb 2025 13:32:13 +0000";
    let analysis = offline(&[line], &loopback_trust());
    assert_eq!(analysis.hops.first().map(|hop| hop.line.malformed), Some(true));
    assert_eq!(classes(&analysis), [TlsClass::Unknown]);
    assert_eq!(analysis.verdict, Verdict::Unknown);
}

#[test]
fn helo_injection_with_clause() {
    let line = "from x with ESMTPS (unknown [203.0.113.5])\n\tby mx.example.org (Postfix) with ESMTP id 7B; Mon,  3 Feb 2025 13:32:13 +0000";
    let line = tls_milter::received::parse(line);
    assert_eq!(line.claim, Claim::Unknown);
    assert!(line.malformed);
}

#[test]
fn unbalanced_parentheses() {
    let line = "from mail.example.net (mail.example.net [192.0.2.201]\n\t(using TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits))\n\tby mx.example.org (Postfix) with ESMTPS id 4H22DC34; Wed, 12 Feb 2025 13:19:11 +0000";
    let line = tls_milter::received::parse(line);
    assert_eq!(line.claim, Claim::Unknown);
    assert!(line.evidence.contains("Malformed"), "{}", line.evidence);
    assert_eq!(line.tls_version, None);
}

#[test]
fn extra_closing_parenthesis() {
    let line = "from mail.example.net (mail.example.net [192.0.2.201]))\n\tby mx.example.org (Postfix) with ESMTPS id 4H22DC35; Wed, 12 Feb 2025 13:19:11 +0000";
    let line = tls_milter::received::parse(line);
    assert_eq!(line.claim, Claim::Unknown);
    assert!(line.malformed);
}

#[test]
fn tls_text_after_date() {
    let line = "by mx.example.org (Postfix) with ESMTP id 4M77BC89; (using TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits)) Wed, 12 Feb 2025 13:23:11 +0000";
    let line = tls_milter::received::parse(line);
    assert_eq!(line.claim, Claim::Unknown);
    assert!(line.evidence.contains("after the date separator"), "{}", line.evidence);
}

#[test]
fn two_digit_year() {
    let line = tls_milter::received::parse("from e.example.net ([192.0.2.193]) by f.example.org with SMTP id OLD1; Mon, 3 Feb 25 10:00:00 GMT");
    assert_eq!(line.date().as_deref(), Some("2025-02-03T10:00:00Z"));
}

#[test]
fn ipv6_helo_literal() {
    let line = "from [IPv6:2001:db8:70::1] (unknown [IPv6:2001:db8:70::1])\n\tby smtp.example.org (Postfix) with ESMTPSA id 4O99DE01; Thu, 27 Feb 2025 11:25:19 +0000";
    let line = tls_milter::received::parse(line);
    assert_eq!(line.from_name.as_deref(), Some("[IPv6:2001:db8:70::1]"));
    assert_eq!(line.ip.as_deref(), Some("2001:db8:70::1"));
    assert_eq!(line.helo, None);
}

#[test]
fn internal_live_never_plaintext() {
    let live = LiveTls { client_ip: ip("::1"), tls_macros_requested: true, ..LiveTls::default() };
    let analysis = daemon(&[], &live, &loopback_trust());
    assert_eq!(live_token(&analysis), Some("none"));
    assert_eq!(analysis.live.as_ref().map(|live| live.class), Some(TlsClass::Internal));
    assert_eq!(analysis.verdict, Verdict::Internal);
}

#[test]
fn local_submission_live_internal() {
    let live = LiveTls { local_submission: true, ..LiveTls::default() };
    let analysis = daemon(&[], &live, &Trust::default());
    assert_eq!(analysis.verdict, Verdict::Internal);
}

#[test]
fn live_version_not_exact() {
    let live = live_tls("192.0.2.10", Some("TLSv1/SSLv3"));
    let analysis = daemon(&[], &live, &loopback_trust());
    assert_eq!(live_token(&analysis), Some("tls"));
    assert_eq!(analysis.verdict, Verdict::Pass);
}

#[test]
fn live_none_needs_requests() {
    let live = LiveTls { client_ip: ip("192.0.2.10"), tls_macros_requested: false, ..LiveTls::default() };
    let analysis = daemon(&[], &live, &loopback_trust());
    assert_eq!(live_token(&analysis), Some("unknown"));
}

#[test]
fn live_sendmail_verify() {
    let cases = [("OK", "ok"), ("TRUSTED", "ok"), ("FAIL", "fail"), ("SOFTWARE", "fail"), ("NO", "no-cert"), ("NOT", "not-requested")];
    for (macro_value, expected) in cases {
        let live = LiveTls { verify: Some(macro_value.into()), cipher_bits: Some("256".into()), ..live_tls("192.0.2.10", Some("TLSv1.3")) };
        let analysis = daemon(&[], &live, &loopback_trust());
        let hop = analysis.live.as_ref();
        assert_eq!(hop.and_then(|live| live.verify.as_deref()), Some(expected), "{macro_value}");
        assert_eq!(hop.and_then(|live| live.bits), Some(256), "{macro_value}");
    }
}

#[test]
fn live_postfix_verify() {
    let with_subject = LiveTls { cert_subject: Some("CN=relay.example.net".into()), ..live_tls("192.0.2.10", Some("TLSv1.3")) };
    let without_subject = live_tls("192.0.2.10", Some("TLSv1.3"));
    let verify = |live: &LiveTls| daemon(&[], live, &loopback_trust()).live.and_then(|live| live.verify);
    assert_eq!(verify(&with_subject).as_deref(), Some("ok"));
    assert_eq!(verify(&without_subject).as_deref(), Some("unknown"));
}

#[test]
fn counts_sum_to_hops() {
    let fields = [MX_TLS, REINJECTED, SENDER_PLAIN, UNKNOWN_WRITER, SENDER_TLS, GMAIL_INTERNAL];
    let analysis = offline(&fields, &loopback_trust());
    let counts = analysis.counts;
    assert_eq!(counts.hops, 5);
    assert_eq!(counts.encrypted + counts.plaintext + counts.internal + counts.unknown, counts.hops);
    assert_eq!(counts.claimed, 5);
}

#[test]
fn ten_thousand_fields() {
    let fields = vec![MX_TLS; 10_000];
    let analysis = offline(&fields, &loopback_trust());
    assert_eq!(analysis.hops.len(), MAX_ANALYSED_FIELDS);
    assert_eq!(analysis.counts.hops, 9_999);
    assert_eq!(analysis.counts.unknown, 10_000 - MAX_ANALYSED_FIELDS);
    assert_eq!(analysis.verdict, Verdict::Unknown);
}

#[test]
fn fields_past_collection_limit() {
    let fields = [MX_TLS, SENDER_TLS];
    let analysis = chain::analyse(&fields, 500, LiveSource::TopmostField, &loopback_trust());
    assert_eq!(analysis.counts.hops, 499);
    assert_eq!(analysis.counts.claimed, 499);
    assert_eq!(analysis.verdict, Verdict::Unknown);
}

#[test]
fn one_mebibyte_field() {
    let huge = format!("from a (a [192.0.2.1]) (using TLSv1.3 with cipher X (256/256 bits)) ({}) by mx.example.org (Postfix) with ESMTPS id 1; Mon, 3 Feb 2025 13:32:13 +0000", "x".repeat(1 << 20));
    let analysis = offline(&[MX_TLS, &huge], &loopback_trust());
    let hop = analysis.hops.get(1);
    assert_eq!(hop.map(|hop| hop.tls), Some(TlsClass::Unknown));
    assert!(hop.is_some_and(|hop| hop.line.evidence.contains(&MAX_FIELD_LEN.to_string())));
    assert_eq!(hop.and_then(|hop| hop.line.cipher.clone()), None);
    assert_eq!(analysis.verdict, Verdict::Unknown);
}
