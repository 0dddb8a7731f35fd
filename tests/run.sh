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

# --no-fail-fast runs every test binary even after one fails, so one run shows every failure.
cargo test --locked --workspace --no-fail-fast
