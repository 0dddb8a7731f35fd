#!/usr/bin/env bash
# The project's test command: installs what the real-Postfix tests need, then runs every test binary.
# Run it as root on Debian 12, or on a Debian machine where the packages below are already installed.
# It never writes /etc/postfix nor starts the system's Postfix: the tests run private instances.
set -euo pipefail
cd "$(dirname "$0")/.."

# libio-socket-ssl-perl gives swaks its --tls option. sasl2-bin (saslpasswd2) and
# libsasl2-modules (the PLAIN and LOGIN mechanisms) let the policy tests authenticate to their
# Postfix with Cyrus SASL against a private sasldb. The tests do not use saslauthd.
packages=(postfix swaks openssl libio-socket-ssl-perl sasl2-bin libsasl2-modules)
# The sendmail tests unpack Debian's sendmail-bin and sendmail-cf without installing them (they
# conflict with postfix): m4 builds the .cf, and the libraries are what the binary links against.
packages+=(m4 libwrap0 libsasl2-2 libldap-2.5-0 libdb5.3)
# The Sieve test unpacks dovecot-core and dovecot-sieve the same way, and sieve-test needs libunwind8.
# The package test renders the installed man pages with man-db.
packages+=(libunwind8 man-db)
# The fuzz smoke run at the end builds libFuzzer, which is C++.
packages+=(g++)

missing=()
for package in "${packages[@]}"; do
    status=$(dpkg-query -W -f='${Status}' "$package" 2>/dev/null || true)
    if [[ "$status" != "install ok installed" ]]; then
        missing+=("$package")
    fi
done

if ((${#missing[@]} > 0)); then
    if ((EUID != 0)); then
        echo "Missing packages: ${missing[*]}. Run 'bash tests/run.sh' as root to install them." >&2
        exit 1
    fi
    echo "Installing missing packages: ${missing[*]}"
    # "No configuration" makes the postfix package write no main.cf and start no service.
    echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
    apt-get update -q
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}"
fi

# tests/package.rs builds the Debian package with cargo-deb. 3.8.0 needs rustc 1.85 or later.
cargo_deb_version=3.8.0
if [[ "$(cargo deb --version 2>/dev/null || true)" != "cargo-deb $cargo_deb_version" ]]; then
    echo "Installing cargo-deb $cargo_deb_version"
    cargo install --locked cargo-deb --version "$cargo_deb_version"
fi

# src/lib.rs and src/main.rs deny unwrap(), expect() and panic!() outside tests; clippy enforces it.
cargo clippy --locked --lib --bins

# The benchmarks are not run here (their numbers depend on the machine), but they must compile.
cargo check --locked --benches

# --no-fail-fast runs every test binary even after one fails, so one run shows every failure.
cargo test --locked --workspace --no-fail-fast

# A bounded fuzz smoke run: every cargo-fuzz target of fuzz/ for FUZZ_SECONDS (default 30) on
# fuzz/corpus, which holds only the seeds in a fresh clone: 150 s in all plus the build. docs/security.md describes the
# targets and the long runs. libFuzzer's C++ part needs g++. cargo-fuzz passes nightly-only
# flags to rustc, which RUSTC_BOOTSTRAP=1 lets the stable toolchain accept.
cargo_fuzz_version=0.13.2
if [[ "$(cargo fuzz --version 2>/dev/null || true)" != "cargo-fuzz $cargo_fuzz_version" ]]; then
    echo "Installing cargo-fuzz $cargo_fuzz_version"
    cargo install --locked cargo-fuzz --version "$cargo_fuzz_version"
fi
fuzz_seconds=${FUZZ_SECONDS:-30}
fuzz_targets=(received_chain check_message header_render config_toml milter_session)
python3 fuzz/seed_corpus.py fuzz/corpus
fuzz_log_dir=$(mktemp -d)
(
    cd fuzz
    export RUSTC_BOOTSTRAP=1
    cargo fuzz build --sanitizer none --debug-assertions
    for target in "${fuzz_targets[@]}"; do
        log="$fuzz_log_dir/$target.log"
        if ! cargo fuzz run --sanitizer none --debug-assertions "$target" -- \
            -max_total_time="$fuzz_seconds" -timeout=20 -max_len=65536 -print_final_stats=1 >"$log" 2>&1; then
            tail -n 60 "$log"
            echo "fuzz target $target failed; the input is in fuzz/artifacts/$target/, the log in $log" >&2
            exit 1
        fi
        echo "fuzz $target: $(grep -E '^Done [0-9]+ runs' "$log" || echo 'no summary line')"
    done
)
rm -rf "$fuzz_log_dir"
echo "fuzz: ${#fuzz_targets[@]} passed, 0 failed"
