//! The configuration file: TOML read through the `config` crate, every key checked once at
//! load time, defaults kept in one place.
//!
//! Errors name the file, the key and the value, and the line where the key is assigned when
//! it can be found in the file text (the `config` crate itself reports no line numbers).

use crate::chain::Trust;
use crate::policy::{Action, AddressPattern, Authenticated, ChainRequirement, Reply, Rule, TlsVersion};
use crate::socket::SocketSpec;
use ipnet::IpNet;
use serde::Deserialize;
use std::fmt;
use std::fs;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The file read when no `--config` is given, if it exists.
pub const DEFAULT_PATH: &str = "/etc/tls-milter/tls-milter.toml";

/// The listening socket when neither the file nor `--socket` sets one.
pub const DEFAULT_SOCKET: &str = "inet:127.0.0.1:8894";

/// The file as written: every key optional, unknown keys rejected.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    dry_run: Option<bool>,
    #[serde(default)]
    milter: MilterSection,
    #[serde(default)]
    header: HeaderSection,
    #[serde(default)]
    log: LogSection,
    #[serde(default)]
    trust: TrustSection,
    #[serde(default)]
    policy: Vec<PolicySection>,
}

/// One `[[policy]]` table as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicySection {
    name: Option<String>,
    senders: Option<Vec<String>>,
    recipients: Option<Vec<String>>,
    clients: Option<Vec<String>>,
    authenticated: Option<String>,
    require_tls: Option<bool>,
    min_tls_version: Option<String>,
    min_cipher_bits: Option<i64>,
    require_verified_cert: Option<bool>,
    chain: Option<String>,
    action: Option<String>,
    reply: Option<String>,
    dry_run: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct MilterSection {
    socket: Option<String>,
    socket_mode: Option<String>,
    max_connections: Option<i64>,
    connection_timeout: Option<i64>,
    shutdown_timeout: Option<i64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct HeaderSection {
    authserv_id: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct LogSection {
    level: Option<String>,
    destination: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct TrustSection {
    internal_networks: Option<Vec<String>>,
    internal_hosts: Option<Vec<String>>,
    tls_logging_hosts: Option<Vec<String>>,
    tls_proxies: Option<Vec<String>>,
}

/// Log destination.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub enum LogDestination {
    Stderr,
    Syslog,
}

/// The checked configuration the daemon and `check` run on.
#[derive(Clone, Debug)]
pub struct Config {
    /// The file this was read from; `None` for the built-in defaults.
    pub path: Option<PathBuf>,
    pub dry_run: bool,
    pub socket: SocketSpec,
    /// Permission bits of a unix socket.
    pub socket_mode: u32,
    pub max_connections: usize,
    pub connection_timeout: Duration,
    pub shutdown_timeout: Duration,
    pub authserv_id: String,
    pub log_level: tracing::Level,
    pub log_destination: LogDestination,
    pub trust: Trust,
    /// The `[[policy]]` rules in file order; the first match wins.
    pub policies: Vec<Rule>,
    /// The rule for messages that match no configured rule.
    pub default_policy: Rule,
    /// Settings that are valid but probably not what was meant, for the log and `--check-config`.
    pub warnings: Vec<String>,
}

impl Default for Config {
    fn default() -> Self {
        let mut config = Self {
            path: None,
            dry_run: false,
            socket: SocketSpec::parse(DEFAULT_SOCKET).unwrap_or_else(|_| unreachable!("the default socket is valid")),
            socket_mode: 0o660,
            max_connections: 100,
            // Longer than Postfix's milter_content_timeout (300 s), so the MTA, not the milter,
            // decides when a slow transaction is over.
            connection_timeout: Duration::from_secs(600),
            shutdown_timeout: Duration::from_secs(30),
            authserv_id: default_authserv_id(),
            log_level: tracing::Level::INFO,
            log_destination: LogDestination::Stderr,
            trust: Trust::default(),
            policies: Vec::new(),
            default_policy: Rule::default_rule(),
            warnings: Vec::new(),
        };
        config.trust.internal_networks = default_internal_networks();
        config
    }
}

fn default_internal_networks() -> Vec<IpNet> {
    ["127.0.0.0/8", "::1/128"].iter().filter_map(|net| net.parse().ok()).collect()
}

/// Returns the host name, reduced to the characters an authserv-id may contain.
fn default_authserv_id() -> String {
    let name = gethostname::gethostname().to_string_lossy().into_owned();
    let name: String = name.chars().filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_')).collect();
    if name.is_empty() { "localhost".into() } else { name }
}

/// A configuration file that could not be used.
#[derive(Debug)]
pub struct ConfigError {
    pub path: PathBuf,
    /// The dotted key (`milter.socket_mode`), when the error concerns one key.
    pub key: Option<String>,
    pub value: Option<String>,
    pub line: Option<usize>,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.path.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        f.write_str(": ")?;
        match (&self.key, &self.value) {
            (Some(key), Some(value)) => write!(f, "invalid value {value} for key {key}: {}", self.message),
            (Some(key), None) => write!(f, "key {key}: {}", self.message),
            _ => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for ConfigError {}

impl Config {
    /// Reads and checks the configuration file at `path`.
    ///
    /// # Errors
    ///
    /// Returns an error when the file cannot be read, is not valid TOML, has an unknown key,
    /// or has a value of the wrong type or out of range. The error names the file, the key,
    /// the value and, where it can be found, the line.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = fs::read_to_string(path).map_err(|error| ConfigError {
            path: path.to_path_buf(),
            key: None,
            value: None,
            line: None,
            message: format!("failed to read the configuration file: {error}"),
        })?;

        Self::from_toml(&text, path)
    }

    /// Checks configuration text as if it had been read from `path`.
    ///
    /// # Errors
    ///
    /// As for [`Config::load`].
    pub fn from_toml(text: &str, path: &Path) -> Result<Self, ConfigError> {
        check_document(text, path)?;

        let built = config::Config::builder()
            .add_source(config::File::from_str(text, config::FileFormat::Toml))
            .build()
            .map_err(|error| parse_error(error, text, path))?;

        // The config crate converts between types ("yes" to true, 0o660 to "432"), so every
        // value's TOML type is checked before that conversion can hide a mistake.
        let checker = Checker { text, path };
        let root: config::Map<String, config::Value> =
            built.clone().try_deserialize().map_err(|error| parse_error(error, text, path))?;
        checker.check_types(&root)?;

        let file: FileConfig = built.try_deserialize().map_err(|error| parse_error(error, text, path))?;

        checker.check(file)
    }
}

impl Config {
    /// Returns the effective settings as TOML, every key shown, for `--check-config`.
    pub fn describe(&self) -> String {
        let list = |items: &[String]| {
            let quoted: Vec<String> = items.iter().map(|item| toml_string(item)).collect();
            format!("[{}]", quoted.join(", "))
        };
        let networks = |nets: &[IpNet]| list(&nets.iter().map(IpNet::to_string).collect::<Vec<_>>());
        let source = self.path.as_ref().map_or("built-in defaults".to_string(), |path| path.display().to_string());

        format!(
            "# effective configuration from {source}\n\
             dry_run = {}\n\n[milter]\nsocket = {}\nsocket_mode = \"{:04o}\"\nmax_connections = {}\n\
             connection_timeout = {}\nshutdown_timeout = {}\n\n[header]\nauthserv_id = {}\n\n\
             [log]\nlevel = \"{}\"\ndestination = \"{}\"\n\n[trust]\ninternal_networks = {}\n\
             internal_hosts = {}\ntls_logging_hosts = {}\ntls_proxies = {}\n",
            self.dry_run,
            toml_string(&self.socket.to_string()),
            self.socket_mode,
            self.max_connections,
            self.connection_timeout.as_secs(),
            self.shutdown_timeout.as_secs(),
            toml_string(&self.authserv_id),
            self.log_level.as_str().to_ascii_lowercase(),
            match self.log_destination {
                LogDestination::Stderr => "stderr",
                LogDestination::Syslog => "syslog",
            },
            networks(&self.trust.internal_networks),
            list(&self.trust.internal_hosts),
            list(&self.trust.tls_logging_hosts),
            networks(&self.trust.tls_proxies),
        ) + &self.describe_policies()
    }

    /// Returns the rules as `[[policy]]` tables with every default filled in, the implicit
    /// `default` rule last (commented, as it cannot be configured).
    fn describe_policies(&self) -> String {
        let mut text = String::new();
        let quoted = |items: Vec<String>| format!("[{}]", items.iter().map(|item| toml_string(item)).collect::<Vec<_>>().join(", "));

        for rule in &self.policies {
            text.push_str(&format!(
                "\n[[policy]]\nname = {}\nsenders = {}\nrecipients = {}\nclients = {}\nauthenticated = {:?}\n\
                 require_tls = {}\n{}\n{}\nrequire_verified_cert = {}\n\
                 chain = {:?}\naction = {:?}\n{}\ndry_run = {}\n",
                toml_string(&rule.name),
                quoted(rule.senders.iter().map(ToString::to_string).collect()),
                quoted(rule.recipients.iter().map(ToString::to_string).collect()),
                quoted(rule.clients.iter().map(ToString::to_string).collect()),
                rule.authenticated.as_str(),
                rule.require_tls,
                rule.min_tls_version.map_or("# min_tls_version is not set".to_string(), |version| format!("min_tls_version = {:?}", version.as_str())),
                rule.min_cipher_bits.map_or("# min_cipher_bits is not set".to_string(), |bits| format!("min_cipher_bits = {bits}")),
                rule.require_verified_cert,
                rule.chain.as_str(),
                rule.action.as_str(),
                rule.reply.as_ref().map_or("# reply: this action sends none".to_string(), |reply| format!("reply = {}", toml_string(&reply.to_string()))),
                rule.dry_run || self.dry_run,
            ));
        }

        text.push_str("\n# Messages that match no rule above get the implicit rule \"default\": action \"tag\".\n");
        text
    }

    /// Returns the keys whose new value in `new` is used only after a restart.
    pub fn restart_keys_changed(&self, new: &Config) -> Vec<&'static str> {
        let mut keys = Vec::new();
        if self.socket != new.socket {
            keys.push("milter.socket");
        }
        if self.socket_mode != new.socket_mode {
            keys.push("milter.socket_mode");
        }
        if self.max_connections != new.max_connections {
            keys.push("milter.max_connections");
        }
        if self.connection_timeout != new.connection_timeout {
            keys.push("milter.connection_timeout");
        }
        keys
    }
}

/// Quotes text as a TOML basic string.
fn toml_string(text: &str) -> String {
    let mut quoted = String::with_capacity(text.len() + 2);
    quoted.push('"');
    for c in text.chars() {
        match c {
            '"' => quoted.push_str("\\\""),
            '\\' => quoted.push_str("\\\\"),
            c if c.is_control() => quoted.push_str(&format!("\\u{:04X}", u32::from(c))),
            c => quoted.push(c),
        }
    }
    quoted.push('"');
    quoted
}

/// Nesting the schema never needs: tables, `[[policy]]` arrays and lists of strings.
const MAX_NESTING: usize = 4;

/// Parses the text as TOML and checks that every key is a plain name and nothing is nested
/// deeper than the schema. The `config` crate reads dots and brackets in quoted keys as a
/// path, and a key such as `"a[1166]"` or `"a.a.a…"` can make it allocate without bound or
/// recurse until the stack overflows.
fn check_document(text: &str, path: &Path) -> Result<(), ConfigError> {
    let error = |line: Option<usize>, key: Option<String>, message: String| ConfigError {
        path: path.to_path_buf(),
        key,
        value: None,
        line,
        message,
    };
    let line_of = |offset: usize| Some(text.get(..offset).unwrap_or(text).matches('\n').count() + 1);

    let document: toml::Table = text.parse().map_err(|parse_error: toml::de::Error| {
        let line = parse_error.span().and_then(|span| line_of(span.start));
        error(line, None, format!("invalid TOML: {}", parse_error.message().trim()))
    })?;

    let mut pending: Vec<(&toml::Table, usize)> = vec![(&document, 1)];
    while let Some((table, depth)) = pending.pop() {
        for (key, value) in table {
            let plain = !key.is_empty() && key.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-'));
            if !plain {
                let shown: String = key.chars().take(64).collect();
                let message = format!("invalid key name {shown:?}: keys are plain names such as socket_mode");
                return Err(error(text.find(key.as_str()).and_then(line_of), None, message));
            }

            let mut values = vec![(value, depth)];
            while let Some((value, depth)) = values.pop() {
                if depth > MAX_NESTING {
                    return Err(error(None, Some(key.clone()), format!("nested deeper than {MAX_NESTING} levels")));
                }
                match value {
                    toml::Value::Table(inner) => pending.push((inner, depth + 1)),
                    toml::Value::Array(items) => values.extend(items.iter().map(|item| (item, depth + 1))),
                    _ => {}
                }
            }
        }
    }
    Ok(())
}

/// Turns an error of the `config` crate into one that names the key and, if found, the line.
fn parse_error(error: config::ConfigError, text: &str, path: &Path) -> ConfigError {
    let message = error.to_string();
    let mut result = ConfigError { path: path.to_path_buf(), key: None, value: None, line: None, message };

    match &error {
        config::ConfigError::Type { key: Some(key), unexpected, expected, .. } => {
            result.line = find_key_line(text, key);
            result.key = Some(key.clone());
            result.value = Some(unexpected.to_string());
            result.message = format!("expected {expected}");
        }
        config::ConfigError::FileParse { cause, .. } => {
            // toml reports "TOML parse error at line N, column M" as the first line.
            let cause = cause.to_string();
            result.line = cause
                .split("line ")
                .nth(1)
                .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
                .and_then(|digits| digits.parse().ok());
            result.message = format!("invalid TOML: {}", cause.lines().last().unwrap_or_default().trim());
        }
        _ => {
            // serde's deny_unknown_fields message reads "unknown field `x`, expected one of ...",
            // and the config crate appends "for key `table`" inside a table.
            if let Some(field) = result.message.split('`').nth(1).filter(|_| result.message.starts_with("unknown field")) {
                let table = result.message.split_once("for key `").and_then(|(_, rest)| rest.split('`').next());
                let key = match table {
                    Some(table) => format!("{table}.{field}"),
                    None => field.to_string(),
                };
                let expected = result.message.split_once(", ").map_or("", |(_, rest)| rest);
                let expected = expected.split(" for key").next().unwrap_or_default();
                result.line = match key.strip_prefix("policy[").and_then(|rest| rest.split_once("].")) {
                    Some((index, name)) => index.parse().ok().and_then(|index| find_policy_key_line(text, index, name)),
                    None => find_key_line(text, &key),
                };
                result.message = format!("unknown key; {expected}");
                result.key = Some(key);
            }
        }
    }

    result
}

/// Returns the 1-based line on which `key` (dotted, or a bare name) is assigned.
fn find_key_line(text: &str, key: &str) -> Option<usize> {
    let (table, name) = match key.rsplit_once('.') {
        Some((table, name)) => (Some(table), name),
        None => (None, key),
    };
    let mut current_table = String::new();

    for (index, line) in text.lines().enumerate() {
        let line = line.trim();
        if let Some(header) = line.strip_prefix('[') {
            current_table = header.trim_matches(|c| c == '[' || c == ']').trim().to_string();
            continue;
        }

        let assigned = line.split('=').next().map(str::trim).map(|name| name.trim_matches('"'));
        let table_matches = table.is_none_or(|table| table == current_table);
        if assigned == Some(name) && table_matches {
            return Some(index + 1);
        }
    }
    None
}

/// Returns the line of `key` inside the `index`-th `[[policy]]` table, or of the table
/// header itself when `key` is empty or not found.
fn find_policy_key_line(text: &str, index: usize, key: &str) -> Option<usize> {
    let mut seen = 0;
    let mut header_line = None;

    for (number, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.starts_with('[') {
            if header_line.is_some() {
                break;
            }
            if line.trim_start_matches('[').trim_end_matches(']').trim() == "policy" && line.starts_with("[[") {
                if seen == index {
                    header_line = Some(number + 1);
                }
                seen += 1;
            }
            continue;
        }
        if header_line.is_some() && !key.is_empty() && line.split('=').next().map(str::trim) == Some(key) {
            return Some(number + 1);
        }
    }
    header_line
}

/// The TOML types keys take.
#[derive(Clone, Copy)]
enum ValueType {
    Boolean,
    Integer,
    String,
    Strings,
}

impl ValueType {
    fn description(self) -> &'static str {
        match self {
            Self::Boolean => "true or false",
            Self::Integer => "a whole number",
            Self::String => "a quoted string",
            Self::Strings => "a list of quoted strings, such as [\"a\", \"b\"]",
        }
    }
}

fn section_key_type(section: &str, key: &str) -> Option<ValueType> {
    let kind = match (section, key) {
        ("milter", "socket" | "socket_mode") => ValueType::String,
        ("milter", "max_connections" | "connection_timeout" | "shutdown_timeout") => ValueType::Integer,
        ("header", "authserv_id") | ("log", "level" | "destination") => ValueType::String,
        ("trust", "internal_networks" | "internal_hosts" | "tls_logging_hosts" | "tls_proxies") => ValueType::Strings,
        _ => return None,
    };
    Some(kind)
}

fn policy_key_type(key: &str) -> Option<ValueType> {
    let kind = match key {
        "name" | "authenticated" | "min_tls_version" | "chain" | "action" | "reply" => ValueType::String,
        "senders" | "recipients" | "clients" => ValueType::Strings,
        "require_tls" | "require_verified_cert" | "dry_run" => ValueType::Boolean,
        "min_cipher_bits" => ValueType::Integer,
        _ => return None,
    };
    Some(kind)
}

/// Returns a value as it would be written in TOML, for error messages.
fn describe_value(value: &config::Value) -> String {
    match &value.kind {
        config::ValueKind::Nil => "nothing".into(),
        config::ValueKind::Boolean(flag) => flag.to_string(),
        config::ValueKind::I64(number) => number.to_string(),
        config::ValueKind::I128(number) => number.to_string(),
        config::ValueKind::U64(number) => number.to_string(),
        config::ValueKind::U128(number) => number.to_string(),
        config::ValueKind::Float(number) => number.to_string(),
        config::ValueKind::String(text) => format!("{text:?}"),
        config::ValueKind::Table(_) => "a table".into(),
        config::ValueKind::Array(_) => "a list".into(),
    }
}

/// A value already written out, shown without further quoting.
struct DisplayValue(String);

impl fmt::Debug for DisplayValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Returns the name of the `index`-th rule for messages, or `#N` before it is known.
fn policy_name(_value: &config::Value, index: usize, text: &str) -> String {
    let header = find_policy_key_line(text, index, "name");
    header
        .and_then(|line| text.lines().nth(line - 1))
        .and_then(|line| line.split_once('=').map(|(_, value)| value.trim().trim_matches('"').to_string()))
        .unwrap_or_else(|| format!("#{}", index + 1))
}

struct Checker<'a> {
    text: &'a str,
    path: &'a Path,
}

impl Checker<'_> {
    fn error(&self, key: &str, value: impl fmt::Debug, message: impl Into<String>) -> ConfigError {
        ConfigError {
            path: self.path.to_path_buf(),
            key: Some(key.to_string()),
            value: Some(format!("{value:?}")),
            line: find_key_line(self.text, key),
            message: message.into(),
        }
    }

    /// Checks the TOML type of every known key; unknown keys are left to the deserialiser.
    fn check_types(&self, root: &config::Map<String, config::Value>) -> Result<(), ConfigError> {
        for (key, value) in root {
            match key.as_str() {
                "dry_run" => self.expect_kind(key, value, ValueType::Boolean, None)?,
                "milter" | "header" | "log" | "trust" => {
                    let table = self.expect_table(key, value)?;
                    for (name, value) in table {
                        if let Some(kind) = section_key_type(key, name) {
                            self.expect_kind(&format!("{key}.{name}"), value, kind, None)?;
                        }
                    }
                }
                "policy" => {
                    let config::ValueKind::Array(rules) = &value.kind else {
                        return Err(self.error("policy", DisplayValue(describe_value(value)), "expected [[policy]] tables: write each rule as [[policy]], not [policy]"));
                    };
                    for (index, rule) in rules.iter().enumerate() {
                        let config::ValueKind::Table(table) = &rule.kind else {
                            return Err(self.error("policy", DisplayValue(describe_value(rule)), "expected [[policy]] tables"));
                        };
                        for (name, value) in table {
                            if let Some(kind) = policy_key_type(name) {
                                self.expect_kind(name, value, kind, Some(index))?;
                            }
                        }
                    }
                }
                _ => {}
            }
        }
        Ok(())
    }

    fn expect_table<'v>(&self, key: &str, value: &'v config::Value) -> Result<&'v config::Map<String, config::Value>, ConfigError> {
        match &value.kind {
            config::ValueKind::Table(table) => Ok(table),
            _ => Err(self.error(key, DisplayValue(describe_value(value)), format!("expected a [{key}] table"))),
        }
    }

    /// Fails unless `value` has the TOML type `kind`. `policy` is the index of the
    /// `[[policy]]` table the key belongs to, if any.
    fn expect_kind(&self, key: &str, value: &config::Value, kind: ValueType, policy: Option<usize>) -> Result<(), ConfigError> {
        let matches = match (&value.kind, kind) {
            (config::ValueKind::Boolean(_), ValueType::Boolean) => true,
            (config::ValueKind::I64(_) | config::ValueKind::U64(_) | config::ValueKind::I128(_) | config::ValueKind::U128(_), ValueType::Integer) => true,
            (config::ValueKind::String(_), ValueType::String) => true,
            (config::ValueKind::Array(items), ValueType::Strings) => items.iter().all(|item| matches!(item.kind, config::ValueKind::String(_))),
            _ => false,
        };
        if matches {
            return Ok(());
        }

        let mut message = format!("expected {}", kind.description());
        if key.ends_with("socket_mode") && matches!(value.kind, config::ValueKind::I64(_)) {
            message.push_str(" (quote the mode: an unquoted 0o660 is the number 432)");
        }
        match policy {
            Some(index) => {
                let name = policy_name(value, index, self.text);
                Err(self.policy_error(index, &name, key, DisplayValue(describe_value(value)), &message))
            }
            None => Err(self.error(key, DisplayValue(describe_value(value)), message)),
        }
    }

    fn check(&self, file: FileConfig) -> Result<Config, ConfigError> {
        let mut config = Config { path: Some(self.path.to_path_buf()), ..Config::default() };

        if let Some(dry_run) = file.dry_run {
            config.dry_run = dry_run;
        }

        let milter = file.milter;
        if let Some(socket) = milter.socket {
            config.socket = SocketSpec::parse(&socket).map_err(|message| self.error("milter.socket", &socket, message))?;
        }
        if let Some(mode) = milter.socket_mode {
            config.socket_mode = parse_mode(&mode).ok_or_else(|| {
                self.error("milter.socket_mode", &mode, "expected an octal mode from \"0000\" to \"0777\" such as \"0660\"")
            })?;
        }
        if let Some(count) = milter.max_connections {
            config.max_connections = self.positive("milter.max_connections", count, 100_000)? as usize;
        }
        if let Some(seconds) = milter.connection_timeout {
            config.connection_timeout = Duration::from_secs(self.positive("milter.connection_timeout", seconds, 86_400)?);
        }
        if let Some(seconds) = milter.shutdown_timeout {
            config.shutdown_timeout = Duration::from_secs(self.positive("milter.shutdown_timeout", seconds, 3_600)?);
        }

        if let Some(id) = file.header.authserv_id {
            let valid = !id.is_empty()
                && id.len() <= 255
                && id.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'));
            if !valid {
                return Err(self.error("header.authserv_id", &id, "expected a host name: letters, digits, '.', '-' and '_'"));
            }
            config.authserv_id = id;
        }

        if let Some(level) = file.log.level {
            config.log_level = match level.to_ascii_lowercase().as_str() {
                "error" => tracing::Level::ERROR,
                "warn" | "warning" => tracing::Level::WARN,
                "info" => tracing::Level::INFO,
                "debug" => tracing::Level::DEBUG,
                "trace" => tracing::Level::TRACE,
                _ => return Err(self.error("log.level", &level, "expected one of error, warn, info, debug, trace")),
            };
        }
        if let Some(destination) = file.log.destination {
            config.log_destination = match destination.as_str() {
                "stderr" => LogDestination::Stderr,
                "syslog" => LogDestination::Syslog,
                _ => return Err(self.error("log.destination", &destination, "expected \"stderr\" or \"syslog\"")),
            };
        }

        let trust = file.trust;
        if let Some(networks) = trust.internal_networks {
            config.trust.internal_networks = self.networks("trust.internal_networks", &networks)?;
        }
        if let Some(proxies) = trust.tls_proxies {
            config.trust.tls_proxies = self.networks("trust.tls_proxies", &proxies)?;
        }
        if let Some(hosts) = trust.internal_hosts {
            config.trust.internal_hosts = self.host_patterns("trust.internal_hosts", hosts)?;
        }
        if let Some(hosts) = trust.tls_logging_hosts {
            config.trust.tls_logging_hosts = self.host_patterns("trust.tls_logging_hosts", hosts)?;
        }

        let mut names = std::collections::HashSet::new();
        for (index, section) in file.policy.into_iter().enumerate() {
            let rule = self.policy(index, section)?;
            if !names.insert(rule.name.clone()) || rule.name == crate::policy::DEFAULT_RULE {
                return Err(self.policy_error(index, &rule.name, "name", &rule.name, "rule names must be unique and not \"default\""));
            }
            let enforcing = rule.action != Action::Tag;
            let has_requirements = rule.require_tls
                || rule.min_tls_version.is_some()
                || rule.min_cipher_bits.is_some()
                || rule.require_verified_cert
                || rule.chain != ChainRequirement::Any;
            if enforcing && !has_requirements {
                config.warnings.push(format!(
                    "{}: policy {:?} has action {:?} but no requirement, so it never acts; set require_tls, a floor or chain",
                    self.path.display(),
                    rule.name,
                    rule.action.as_str(),
                ));
            }
            config.policies.push(rule);
        }

        Ok(config)
    }

    fn policy_error(&self, index: usize, rule: &str, key: &str, value: impl fmt::Debug, message: &str) -> ConfigError {
        ConfigError {
            path: self.path.to_path_buf(),
            key: Some(format!("policy {rule:?} {key}")),
            value: Some(format!("{value:?}")),
            line: find_policy_key_line(self.text, index, key),
            message: message.to_string(),
        }
    }

    fn policy(&self, index: usize, section: PolicySection) -> Result<Rule, ConfigError> {
        let label = section.name.clone().unwrap_or_else(|| format!("#{}", index + 1));
        let error = |key: &str, value: &dyn fmt::Debug, message: &str| self.policy_error(index, &label, key, value, message);

        let name = section.name.clone().ok_or_else(|| ConfigError {
            path: self.path.to_path_buf(),
            key: Some(format!("policy {label} name")),
            value: None,
            line: find_policy_key_line(self.text, index, ""),
            message: "missing: every [[policy]] needs a name".into(),
        })?;
        let name_ok = !name.is_empty() && name.len() <= 64 && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
        if !name_ok {
            return Err(error("name", &name, "expected 1 to 64 characters from A-Z a-z 0-9 . _ -"));
        }

        let patterns = |key: &str, values: Option<Vec<String>>, allow_null: bool| -> Result<Vec<AddressPattern>, ConfigError> {
            values
                .unwrap_or_default()
                .iter()
                .map(|value| match AddressPattern::parse(value) {
                    Some(AddressPattern::NullSender) if !allow_null => Err(error(key, value, "\"<>\" is allowed in senders only")),
                    Some(pattern) => Ok(pattern),
                    None => Err(error(key, value, "expected a domain, *.domain, an address, or \"<>\" for the null sender")),
                })
                .collect()
        };
        let senders = patterns("senders", section.senders, true)?;
        let recipients = patterns("recipients", section.recipients, false)?;

        let clients = section
            .clients
            .unwrap_or_default()
            .iter()
            .map(|value| {
                let trimmed = value.trim();
                trimmed
                    .parse::<IpNet>()
                    .or_else(|_| trimmed.parse::<IpAddr>().map(IpNet::from))
                    .map(|net| net.trunc())
                    .map_err(|_| error("clients", value, "expected an IP address or a CIDR network such as \"192.0.2.0/24\""))
            })
            .collect::<Result<Vec<_>, _>>()?;

        let authenticated = match section.authenticated.as_deref() {
            None | Some("any") => Authenticated::Any,
            Some("yes") => Authenticated::Yes,
            Some("no") => Authenticated::No,
            Some(other) => return Err(error("authenticated", &other, "expected \"any\", \"yes\" or \"no\"")),
        };

        let min_tls_version = match section.min_tls_version.as_deref() {
            None => None,
            Some(value) => Some(
                TlsVersion::parse(value)
                    .filter(|version| *version >= TlsVersion::Tls10)
                    .ok_or_else(|| error("min_tls_version", &value, "expected \"TLSv1.0\", \"TLSv1.1\", \"TLSv1.2\" or \"TLSv1.3\""))?,
            ),
        };
        let min_cipher_bits = match section.min_cipher_bits {
            None => None,
            Some(bits) => Some(
                u32::try_from(bits)
                    .ok()
                    .filter(|bits| (1..=4096).contains(bits))
                    .ok_or_else(|| error("min_cipher_bits", &bits, "expected a whole number from 1 to 4096"))?,
            ),
        };

        let chain = match section.chain.as_deref() {
            None | Some("any") => ChainRequirement::Any,
            Some("no-plaintext") => ChainRequirement::NoPlaintext,
            Some("all-encrypted") => ChainRequirement::AllEncrypted,
            Some(other) => return Err(error("chain", &other, "expected \"any\", \"no-plaintext\" or \"all-encrypted\"")),
        };
        let action = match section.action.as_deref() {
            None | Some("tag") => Action::Tag,
            Some("reject") => Action::Reject,
            Some("tempfail") => Action::Tempfail,
            Some("quarantine") => Action::Quarantine,
            Some(other) => return Err(error("action", &other, "expected \"tag\", \"reject\", \"tempfail\" or \"quarantine\"")),
        };

        let reply = match (section.reply, action) {
            (None, action) => Reply::default_for(action),
            (Some(text), Action::Reject | Action::Tempfail) => {
                let reply = Reply::parse(&text).map_err(|message| error("reply", &text, &message))?;
                let wanted = if action == Action::Reject { "5" } else { "4" };
                if !reply.code.starts_with(wanted) {
                    return Err(error("reply", &text, &format!("action {} needs a {wanted}xx reply code", action.as_str())));
                }
                Some(reply)
            }
            (Some(text), _) => return Err(error("reply", &text, "only reject and tempfail rules send a reply")),
        };

        Ok(Rule {
            name,
            senders,
            recipients,
            clients,
            authenticated,
            require_tls: section.require_tls.unwrap_or(false),
            min_tls_version,
            min_cipher_bits,
            require_verified_cert: section.require_verified_cert.unwrap_or(false),
            chain,
            action,
            reply,
            dry_run: section.dry_run.unwrap_or(false),
        })
    }

    fn positive(&self, key: &str, value: i64, max: u64) -> Result<u64, ConfigError> {
        match u64::try_from(value) {
            Ok(value) if value >= 1 && value <= max => Ok(value),
            _ => Err(self.error(key, value, format!("expected a whole number from 1 to {max}"))),
        }
    }

    fn networks(&self, key: &str, values: &[String]) -> Result<Vec<IpNet>, ConfigError> {
        values
            .iter()
            .map(|value| {
                let trimmed = value.trim();
                trimmed
                    .parse::<IpNet>()
                    .or_else(|_| trimmed.parse::<IpAddr>().map(IpNet::from))
                    .map(|net| net.trunc())
                    .map_err(|_| self.error(key, value, "expected an IP address or a CIDR network such as \"192.0.2.0/24\""))
            })
            .collect()
    }

    fn host_patterns(&self, key: &str, values: Vec<String>) -> Result<Vec<String>, ConfigError> {
        values
            .into_iter()
            .map(|value| {
                let name = value.strip_prefix("*.").unwrap_or(&value);
                let valid = !name.is_empty()
                    && name.len() <= 253
                    && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'));
                if valid {
                    Ok(value.to_ascii_lowercase())
                } else {
                    Err(self.error(key, &value, "expected a host name, or *.domain for every subdomain"))
                }
            })
            .collect()
    }
}

fn parse_mode(text: &str) -> Option<u32> {
    let digits = text.trim();
    if !(3..=4).contains(&digits.len()) || !digits.chars().all(|c| ('0'..='7').contains(&c)) {
        return None;
    }
    // Permission bits only: set-user-ID, set-group-ID and sticky bits mean nothing on a socket.
    u32::from_str_radix(digits, 8).ok().filter(|mode| *mode <= 0o777)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> Result<Config, ConfigError> {
        Config::from_toml(text, Path::new("/etc/tls-milter/test.toml"))
    }

    #[test]
    fn empty_file_gives_defaults() {
        let config = load("").unwrap();
        assert_eq!(config.socket, SocketSpec::parse(DEFAULT_SOCKET).unwrap());
        assert_eq!(config.socket_mode, 0o660);
        assert_eq!(config.trust.internal_networks.len(), 2);
        assert!(!config.dry_run);
    }

    #[test]
    fn full_file_is_read() {
        let config = load(
            "dry_run = true\n[milter]\nsocket = \"unix:/run/tls-milter/sock\"\nsocket_mode = \"0600\"\n\
             max_connections = 7\nconnection_timeout = 20\nshutdown_timeout = 5\n[header]\nauthserv_id = \"mx.example.org\"\n\
             [log]\nlevel = \"debug\"\ndestination = \"syslog\"\n[trust]\ninternal_networks = []\n\
             internal_hosts = [\"*.corp.example\"]\ntls_logging_hosts = [\"gw.example.org\"]\ntls_proxies = [\"192.0.2.7\"]\n",
        )
        .unwrap();
        assert!(config.dry_run);
        assert_eq!(config.socket_mode, 0o600);
        assert_eq!(config.max_connections, 7);
        assert_eq!(config.shutdown_timeout, Duration::from_secs(5));
        assert_eq!(config.authserv_id, "mx.example.org");
        assert_eq!(config.log_destination, LogDestination::Syslog);
        assert!(config.trust.internal_networks.is_empty());
        assert_eq!(config.trust.tls_proxies, vec!["192.0.2.7/32".parse::<IpNet>().unwrap()]);
    }

    #[test]
    fn unknown_key_names_key_and_line() {
        let error = load("[milter]\nsocket = \"inet:127.0.0.1:1\"\nsokcet_mode = \"0660\"\n").unwrap_err();
        let text = error.to_string();
        assert_eq!(error.line, Some(3), "{text}");
        assert!(text.contains("sokcet_mode"), "{text}");
        assert!(text.contains("/etc/tls-milter/test.toml"), "{text}");
    }

    #[test]
    fn bad_mode_names_key_value_line() {
        let error = load("[milter]\nsocket_mode = \"0999\"\n").unwrap_err();
        let text = error.to_string();
        assert_eq!(error.line, Some(2));
        assert!(text.contains("milter.socket_mode"), "{text}");
        assert!(text.contains("0999"), "{text}");
    }

    #[test]
    fn wrong_type_names_key() {
        let error = load("[milter]\nmax_connections = [1]\n").unwrap_err();
        let text = error.to_string();
        assert!(text.contains("max_connections"), "{text}");
    }

    #[test]
    fn bad_network_is_rejected() {
        let error = load("[trust]\ninternal_networks = [\"10.0.0.0/33\"]\n").unwrap_err();
        assert!(error.to_string().contains("10.0.0.0/33"));
        assert_eq!(error.line, Some(2));
    }

    #[test]
    fn invalid_toml_gives_line() {
        let error = load("[milter]\nsocket = \n").unwrap_err();
        assert_eq!(error.line, Some(2), "{error}");
    }

    #[test]
    fn unquoted_mode_is_rejected() {
        let error = load("[milter]\nsocket_mode = 0o660\n").unwrap_err();
        assert_eq!(error.line, Some(2));
        assert!(error.to_string().contains("quote the mode"), "{error}");
    }

    #[test]
    fn string_for_boolean_is_rejected() {
        let error = load("dry_run = \"yes\"\n").unwrap_err();
        assert_eq!(error.key.as_deref(), Some("dry_run"));
    }

    #[test]
    fn string_for_integer_is_rejected() {
        assert!(load("[milter]\nmax_connections = \"100\"\n").is_err());
        assert!(load("[milter]\nshutdown_timeout = 1.5\n").is_err());
    }

    #[test]
    fn policy_key_types_are_checked() {
        let error = load("[[policy]]\nname = \"p\"\nsenders = \"bank.example\"\n").unwrap_err();
        assert_eq!(error.line, Some(3));
        assert!(error.to_string().contains("policy \"p\" senders"), "{error}");
    }

    #[test]
    fn single_policy_table_is_rejected() {
        let error = load("[policy]\nname = \"p\"\n").unwrap_err();
        assert!(error.to_string().contains("[[policy]]"), "{error}");
    }

    #[test]
    fn special_mode_bits_are_rejected() {
        assert!(load("[milter]\nsocket_mode = \"7777\"\n").is_err());
    }

    #[test]
    fn rule_without_requirement_warns() {
        let config = load("[[policy]]\nname = \"p\"\naction = \"reject\"\n").unwrap();
        assert_eq!(config.warnings.len(), 1);
        assert!(config.warnings[0].contains("never acts"), "{:?}", config.warnings);
    }

    #[test]
    fn bracketed_quoted_key_is_rejected() {
        let error = load("[\"vv[1166][11166][11611661166][1166]\"]\n").unwrap_err();
        assert!(error.to_string().contains("invalid key name"), "{error}");
    }

    #[test]
    fn dotted_quoted_key_is_rejected() {
        let key = vec!["a"; 2000].join(".");
        let error = load(&format!("[\"{key}\"]\n")).unwrap_err();
        assert!(error.to_string().contains("invalid key name"), "{error}");
    }

    #[test]
    fn deep_nesting_is_rejected() {
        let error = load("[trust]\ninternal_networks = [[[[[\"10.0.0.0/8\"]]]]]\n").unwrap_err();
        assert!(error.to_string().contains("nested deeper"), "{error}");
    }

    #[test]
    fn described_config_loads_again() {
        let text = "[milter]\nsocket = \"unix:/run/a\\\\b\\\"c.sock\"\n[header]\nauthserv_id = \"mx\"\n\
                    [[policy]]\nname = \"p\"\naction = \"reject\"\nrequire_tls = true\nreply = \"550 5.7.1 soft\u{ad}hyphen\"\n";
        let described = load(text).unwrap().describe();
        let reloaded = load(&described).unwrap_or_else(|error| panic!("{error}\n{described}"));
        assert_eq!(reloaded.describe(), described);
    }

    #[test]
    fn zero_timeout_is_rejected() {
        let error = load("[milter]\nshutdown_timeout = 0\n").unwrap_err();
        assert!(error.to_string().contains("milter.shutdown_timeout"));
    }
}
