//! A test certificate authority with a server and a client certificate, made with the openssl
//! command. Keys are ECDSA P-256, which openssl generates in milliseconds.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::run_command;

/// Common name of the test CA, which Postfix passes to milters as `{cert_issuer}`.
pub const CA_NAME: &str = "tls-milter test CA";
/// Common name and DNS name of the server certificate.
pub const SERVER_NAME: &str = "mx.test.example";
/// Common name of the client certificate, which Postfix passes to milters as `{cert_subject}`
/// when the certificate verifies.
pub const CLIENT_NAME: &str = "client.sink.test";

/// Validity of every certificate, in days. A test run needs minutes.
const VALID_DAYS: &str = "2";

const SERVER_EXTENSIONS: &str = "\
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:mx.test.example
";

const CLIENT_EXTENSIONS: &str = "\
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth
";

/// Paths of the PEM files of the test PKI. Every key is unencrypted.
#[derive(Clone, Debug)]
pub struct TestPki {
    pub ca_cert: PathBuf,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
}

impl TestPki {
    /// Creates the CA and the two certificates it signs in `dir`, which must exist.
    pub fn create(dir: &Path) -> Result<TestPki, String> {
        let pki = TestPki {
            ca_cert: dir.join("ca.pem"),
            server_cert: dir.join("server.pem"),
            server_key: dir.join("server.key"),
            client_cert: dir.join("client.pem"),
            client_key: dir.join("client.key"),
        };
        let ca_key = dir.join("ca.key");

        run_command(
            Command::new("openssl")
                .args(["req", "-x509", "-new", "-nodes", "-days", VALID_DAYS])
                .args(["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"])
                .arg("-keyout")
                .arg(&ca_key)
                .arg("-out")
                .arg(&pki.ca_cert)
                .args(["-subj", &format!("/O=tls-milter tests/CN={CA_NAME}")])
                .args(["-addext", "basicConstraints=critical,CA:TRUE"])
                .args(["-addext", "keyUsage=critical,keyCertSign,cRLSign"]),
        )?;

        let server = Leaf { cert: &pki.server_cert, key: &pki.server_key, serial: "2" };
        server.create(dir, SERVER_NAME, SERVER_EXTENSIONS, &pki.ca_cert, &ca_key)?;
        let client = Leaf { cert: &pki.client_cert, key: &pki.client_key, serial: "3" };
        client.create(dir, CLIENT_NAME, CLIENT_EXTENSIONS, &pki.ca_cert, &ca_key)?;
        Ok(pki)
    }
}

/// An end-entity certificate to be signed by the test CA.
struct Leaf<'a> {
    cert: &'a Path,
    key: &'a Path,
    serial: &'a str,
}

impl Leaf<'_> {
    fn create(
        &self,
        dir: &Path,
        common_name: &str,
        extensions: &str,
        ca_cert: &Path,
        ca_key: &Path,
    ) -> Result<(), String> {
        let request = self.cert.with_extension("csr");
        let extensions_file = self.cert.with_extension("ext");
        fs::write(&extensions_file, extensions)
            .map_err(|error| format!("writing {} failed: {error}", extensions_file.display()))?;

        run_command(
            Command::new("openssl")
                .current_dir(dir)
                .args(["req", "-new", "-nodes"])
                .args(["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"])
                .arg("-keyout")
                .arg(self.key)
                .arg("-out")
                .arg(&request)
                .args(["-subj", &format!("/O=tls-milter tests/CN={common_name}")]),
        )?;
        run_command(
            Command::new("openssl")
                .current_dir(dir)
                .args(["x509", "-req", "-days", VALID_DAYS, "-set_serial", self.serial])
                .arg("-in")
                .arg(&request)
                .arg("-CA")
                .arg(ca_cert)
                .arg("-CAkey")
                .arg(ca_key)
                .arg("-extfile")
                .arg(&extensions_file)
                .arg("-out")
                .arg(self.cert),
        )?;
        Ok(())
    }
}
