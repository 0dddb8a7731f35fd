#!/usr/bin/env python3
"""Writes the seed inputs of every fuzz target into fuzz/corpus/<target>/.

The seeds come from the labelled Received corpus (tests/data/received.jsonl), the sample
configuration files, and Postfix-like milter sessions. Each file is named by the SHA-1 of
its content, as libFuzzer names corpus files, so running the script again adds nothing new.

Usage: python3 fuzz/seed_corpus.py [CORPUS_DIR]   (default: fuzz/corpus)
"""

import hashlib
import json
import pathlib
import struct
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
HEADER_NAME = "X-Transport-Security"


def write(corpus, target, data):
    directory = corpus / target
    directory.mkdir(parents=True, exist_ok=True)
    (directory / hashlib.sha1(data).hexdigest()).write_bytes(data)


def received_headers():
    with open(ROOT / "tests/data/received.jsonl", encoding="utf-8") as lines:
        return [json.loads(line)["header"] for line in lines if line.strip()]


def chains(headers, length):
    """Consecutive runs of `length` fields, as a chain of Received fields."""
    return [headers[start : start + length] for start in range(0, len(headers) - length + 1, length)]


def seed_received_chain(corpus, headers):
    # Option byte: trust preset (bits 0-1), live from the topmost field (bit 2), live macros
    # (bits 3-4), fields repeated past the analysis limit (bit 5).
    for index, header in enumerate(headers):
        options = [0, 1, 4, 6, 2 | 8, 3 | 16, 1 | 24][index % 7]
        write(corpus, "received_chain", bytes([options]) + header.encode())
    for chain in chains(headers, 3) + chains(headers, 5):
        for options in (1 | 16, 4 | 2):
            write(corpus, "received_chain", bytes([options]) + b"\0".join(h.encode() for h in chain))
    write(corpus, "received_chain", bytes([32 | 64 | 16]) + headers[0].encode())


def message(chain, extra_headers=()):
    lines = [f"Received: {field}".replace("\n", "\r\n") for field in chain]
    lines += list(extra_headers)
    lines += [
        "From: <alice@example.net>",
        "To: <bob@example.org>",
        "Subject: seed",
        "Message-ID: <seed@example.net>",
        "",
        "Body.",
        "",
    ]
    return "\r\n".join(lines).encode()


def seed_check_message(corpus, headers):
    for header in headers:
        write(corpus, "check_message", message([header]))
    for chain in chains(headers, 4):
        forged = [f"{HEADER_NAME}: forged.example; v=1 tls=pass live=TLSv1.3"]
        write(corpus, "check_message", message(chain, forged))
    write(corpus, "check_message", b"Subject: no Received field\n\nbody\n")


def seed_header_render(corpus, headers):
    # Parts: client address, {tls_version}, {cipher}, {cipher_bits}, {cert_subject},
    # {cert_issuer}, {verify}, authserv-id, rule name, comment, Received fields.
    live_variants = [
        ["192.0.2.1", "TLSv1.3", "TLS_AES_256_GCM_SHA384", "256", "", "", ""],
        ["2001:db8::25", "TLSv1.2", "ECDHE-RSA-AES256-GCM-SHA384", "256", "CN=client.example.net", "CN=Example CA", "OK"],
        ["198.51.100.4", "", "", "", "", "", ""],
        ["127.0.0.1", "SSLv3", "RC4-SHA", "128/128", "", "", "FAIL"],
        ["", "", "", "", "", "", "NO"],
    ]
    for index, live in enumerate(live_variants):
        options = [1, 1 | 16, 0, 1 | 16 | 32 | 64, 2][index]
        parts = live + ["mx.example.org", "partners", ""] + headers[index * 3 : index * 3 + 3]
        write(corpus, "header_render", bytes([options]) + b"\0".join(p.encode() for p in parts))


def seed_config_toml(corpus):
    for path in ["conf/tls-milter.toml", "packaging/tls-milter.toml"]:
        file = ROOT / path
        if file.exists():
            write(corpus, "config_toml", file.read_bytes())
    session = (ROOT / "fuzz/src/session.rs").read_text(encoding="utf-8")
    for name in ["TAG_CONFIG", "POLICY_CONFIG"]:
        start = session.index(f'pub const {name}: &str = r#"') + len(f'pub const {name}: &str = r#"')
        write(corpus, "config_toml", session[start : session.index('"#;', start)].encode())
    for text in [
        '[milter]\nsocket = "unix:/run/tls-milter/tls-milter.sock"\nsocket_mode = "0660"\n',
        '[milter]\nsocket = "inet:8894@localhost"\nmax_connections = 0\n',
        "[trust]\ninternal_networks = [\"10.0.0.0/33\"]\n",
        "[[policy]]\nname = \"default\"\n",
        "[[policy]]\nname = \"x\"\naction = \"reject\"\nreply = \"450 4.7.0 wrong class\"\n",
        "dry_run = true\n[log]\nlevel = \"trace\"\ndestination = \"syslog\"\n",
    ]:
        write(corpus, "config_toml", text.encode())


def record(kind, payload=b""):
    return kind.encode() + struct.pack("<H", len(payload)) + payload


def cstrings(*values):
    return b"".join(value.encode() + b"\0" for value in values)


def macros(stage, pairs):
    return record("D", stage.encode() + cstrings(*[item for pair in pairs for item in pair]))


def connect(host, family, port, address):
    return record("C", cstrings(host) + family.encode() + struct.pack(">H", port) + cstrings(address))


def transaction(headers, forged=0, sender="<alice@example.net>", recipient="<bob@example.org>"):
    data = macros("M", [("i", "4ABCD1234"), ("{mail_addr}", sender.strip("<>"))])
    data += record("M", cstrings(sender, "SIZE=1000"))
    data += record("R", cstrings(recipient))
    data += macros("T", [("i", "4ABCD1234")])
    data += record("T")
    for header in headers:
        data += record("L", cstrings("Received", header))
    for index in range(forged):
        name = HEADER_NAME if index % 2 == 0 else HEADER_NAME.lower()
        data += record("L", cstrings(name, "forged.example; v=1 tls=pass"))
    data += record("L", cstrings("Subject", "seed"))
    data += record("N")
    data += record("B", b"Body.\r\n")
    data += macros("E", [("i", "4ABCD1234")])
    data += record("E")
    return data


def seed_milter_session(corpus, headers):
    tls = [("{tls_version}", "TLSv1.3"), ("{cipher}", "TLS_AES_256_GCM_SHA384"), ("{cipher_bits}", "256")]
    opening = connect("client.example.net", "4", 40000, "192.0.2.1")
    opening += macros("C", [("j", "mx.example.org"), ("{daemon_name}", "smtpd"), ("{client_addr}", "192.0.2.1")])
    sessions = [
        opening + macros("H", tls) + record("H", cstrings("client.example.net")) + transaction(headers[:2], forged=1),
        opening + record("H", cstrings("client.example.net")) + transaction(headers[2:5], forged=3) + record("Q"),
        opening + macros("H", tls) + record("H", cstrings("c")) + transaction([]) + transaction(headers[5:6], forged=2),
        opening + record("H", cstrings("c")) + transaction(headers[6:7]) + record("K") + opening + transaction([]),
        connect("localhost", "4", 0, "127.0.0.1") + transaction(headers[7:8], sender="<>"),
        connect("client", "6", 25, "2001:db8::1") + macros("H", tls) + record("H", cstrings("c")) + record("M", cstrings("<a@example.net>")) + record("A") + transaction([]),
        connect("client", "L", 0, "/run/client.sock") + record("U", cstrings("HELP")) + transaction([]),
    ]
    for index, session in enumerate(sessions):
        write(corpus, "milter_session", bytes([0]) + session)
        write(corpus, "milter_session", bytes([1 | (index % 4) << 2]) + session)
    policy_envelopes = [
        ("<x@partner.example>", "<bob@example.org>"),
        ("<a@example.net>", "<bank@example.org>"),
        ("<a@example.net>", "<user@mail.example.org>"),
    ]
    for sender, recipient in policy_envelopes:
        session = opening + record("H", cstrings("c")) + transaction(headers[:3], forged=1, sender=sender, recipient=recipient)
        write(corpus, "milter_session", bytes([1]) + session)
    raw = struct.pack(">I", 13) + b"O" + struct.pack(">III", 6, 0x1FF, 0x1FFFFF) + struct.pack(">I", 1) + b"Q"
    write(corpus, "milter_session", bytes([2]) + raw)


def main():
    corpus = pathlib.Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "fuzz/corpus"
    headers = received_headers()
    seed_received_chain(corpus, headers)
    seed_check_message(corpus, headers)
    seed_header_render(corpus, headers)
    seed_config_toml(corpus)
    seed_milter_session(corpus, headers)
    for target in sorted(path.name for path in corpus.iterdir() if path.is_dir()):
        print(f"{target}: {len(list((corpus / target).iterdir()))} inputs in {corpus / target}")


if __name__ == "__main__":
    main()
