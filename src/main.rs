//! The `tls-milter` command: argument parsing, signals and exit codes around the library.

// Nothing outside tests may unwrap or panic: most of what this program reads comes from the
// MTA, the message or the config file. `cargo clippy` in tests/run.sh enforces it.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

use clap::{Parser, Subcommand, ValueEnum};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use tls_milter::config::{self, Config};
use tls_milter::socket::{BoundSocket, SocketSpec};
use tls_milter::{check, logging};
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc;
use tracing::{error, info, warn};

/// Exit code for a configuration that cannot be used (sysexits EX_CONFIG, as OpenDKIM uses).
const EXIT_CONFIG: u8 = 78;

#[derive(Parser)]
#[command(version, about = "Milter that records whether each message travelled over TLS, hop by hop")]
struct Args {
    /// Configuration file [default: /etc/tls-milter/tls-milter.toml if it exists, else built-in defaults]
    #[arg(long, short = 'c', value_name = "FILE")]
    config: Option<PathBuf>,

    /// Listening socket, overriding [milter] socket: inet:HOST:PORT, inet6:[ADDR]:PORT, inet:PORT@HOST or unix:/path
    #[arg(long, short = 's', value_name = "SPEC")]
    socket: Option<String>,

    /// Check the configuration, print the effective settings and exit (0 valid, 78 invalid)
    #[arg(long, short = 'n')]
    check_config: bool,

    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Analyse saved messages offline and print the verdict for each
    Check {
        /// Output format
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,

        /// Configuration file for the [trust] and [header] settings [default: /etc/tls-milter/tls-milter.toml if it exists, else built-in defaults]
        #[arg(long, short = 'c', value_name = "FILE")]
        config: Option<PathBuf>,

        /// Message files; none or "-" reads standard input
        files: Vec<PathBuf>,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    Text,
    Json,
}

fn main() -> ExitCode {
    limit_malloc_arenas();
    let args = Args::parse();

    match args.command {
        Some(Command::Check { format, config, files }) => run_check(format, config.as_deref(), &files),
        None => run_daemon(args.config.as_deref(), args.socket.as_deref(), args.check_config),
    }
}

/// Caps glibc's malloc at two arenas. By default each thread that allocates can get its own
/// arena (up to eight per core), and the per-connection buffers of the sessions then spread
/// over several partly used heaps. `bench/run.sh` measured peak RSS with 1000 sessions at
/// 28.8 MiB with two arenas and 31.4 MiB without the cap (docs/benchmarks.md).
fn limit_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes glibc's allocator settings, and it runs before any other
    // thread exists. A failure (return value 0) leaves the default, which is still correct.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}

/// Loads the named file, else the default file if it exists, else the built-in defaults.
fn load_config(path: Option<&Path>) -> Result<Config, config::ConfigError> {
    match path {
        Some(path) => Config::load(path),
        None if Path::new(config::DEFAULT_PATH).exists() => Config::load(Path::new(config::DEFAULT_PATH)),
        None => Ok(Config::default()),
    }
}

fn run_check(format: Format, config_path: Option<&Path>, files: &[PathBuf]) -> ExitCode {
    let config = match load_config(config_path) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("tls-milter: {error}");
            return ExitCode::from(2);
        }
    };

    let stdin = [PathBuf::from("-")];
    let files = if files.is_empty() { &stdin[..] } else { files };
    let mut failed = false;
    let mut stdout = io::stdout().lock();

    for file in files {
        let source = file.display().to_string();
        let bytes = if source == "-" {
            let mut bytes = Vec::new();
            io::stdin().read_to_end(&mut bytes).map(|_| bytes)
        } else {
            std::fs::read(file)
        };

        let report = match bytes {
            Ok(bytes) => check::check_message(&bytes, &source, &config),
            Err(error) => Err(format!("failed to read: {error}")),
        };

        let written = match report {
            Ok(report) => match format {
                Format::Json => writeln!(stdout, "{}", check::to_json(&report)),
                Format::Text => write!(stdout, "{}", check::to_text(&report)),
            },
            Err(message) => {
                failed = true;
                eprintln!("tls-milter: {source}: {message}");
                Ok(())
            }
        };
        if written.is_err() {
            // Standard output is closed (a pipe to head, say): nothing more can be reported.
            return ExitCode::from(1);
        }
    }

    if failed { ExitCode::from(1) } else { ExitCode::SUCCESS }
}

fn run_daemon(config_path: Option<&Path>, socket: Option<&str>, check_only: bool) -> ExitCode {
    let socket_override = match socket.map(SocketSpec::parse).transpose() {
        Ok(spec) => spec,
        Err(message) => {
            eprintln!("tls-milter: invalid --socket {:?}: {message}", socket.unwrap_or_default());
            return ExitCode::from(2);
        }
    };

    let mut config = match load_config(config_path) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("tls-milter: {error}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    if let Some(spec) = &socket_override {
        config.socket = spec.clone();
    }

    if check_only {
        for warning in &config.warnings {
            eprintln!("tls-milter: warning: {warning}");
        }
        print!("{}", config.describe());
        return ExitCode::SUCCESS;
    }

    let Some(log) = logging::init(&config) else {
        eprintln!("tls-milter: failed to install the logger for log.destination");
        return ExitCode::from(1);
    };

    // One thread serves every connection. A message costs the milter well under 100 µs of CPU,
    // so one core outpaces the MTA. Through Postfix this runtime spent about a third less CPU
    // per message than a worker per core, which hands tasks between threads.
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            error!("failed to start the async runtime: {error}");
            return ExitCode::from(1);
        }
    };

    runtime.block_on(serve(config, socket_override, log))
}

async fn serve(config: Config, socket_override: Option<SocketSpec>, log: logging::LogHandle) -> ExitCode {
    let socket = match BoundSocket::bind(&config.socket, config.socket_mode).await {
        Ok(socket) => socket,
        Err(error) => {
            error!("failed to listen on {}: {error}; check [milter] socket and that no other process uses it", config.socket);
            return ExitCode::from(1);
        }
    };
    let (Ok(mut terminate), Ok(mut interrupt), Ok(mut hangup)) =
        (signal(SignalKind::terminate()), signal(SignalKind::interrupt()), signal(SignalKind::hangup()))
    else {
        error!("failed to install the signal handlers");
        return ExitCode::from(1);
    };

    let bound = socket.local_spec().map(|spec| spec.to_string()).unwrap_or_else(|_| config.socket.to_string());
    let source = config.path.as_ref().map_or("built-in defaults".to_string(), |path| path.display().to_string());
    info!("tls-milter {} listening on {bound}, configuration from {source}", env!("CARGO_PKG_VERSION"));
    for warning in &config.warnings {
        warn!("{warning}");
    }

    let (reload_sender, reload) = mpsc::channel(4);
    let mut current = config.clone();
    let shutdown = async move {
        loop {
            tokio::select! {
                _ = terminate.recv() => { info!("stopping on SIGTERM"); break; }
                _ = interrupt.recv() => { info!("stopping on SIGINT"); break; }
                _ = hangup.recv() => {
                    if let Some(new) = reload_config(&current, socket_override.as_ref(), &log) {
                        current = new.clone();
                        let _ = reload_sender.send(new).await;
                    }
                }
            }
        }
    };

    match tls_milter::run(socket, config, reload, shutdown).await {
        Ok(()) => {
            info!("stopped");
            ExitCode::SUCCESS
        }
        Err(error) => {
            error!("milter failed: {error}");
            ExitCode::from(1)
        }
    }
}

/// Re-reads the configuration file on SIGHUP; a file that cannot be used leaves the running
/// configuration in force.
fn reload_config(current: &Config, socket_override: Option<&SocketSpec>, log: &logging::LogHandle) -> Option<Config> {
    let Some(path) = current.path.as_deref() else {
        warn!("SIGHUP: running on built-in defaults, no configuration file to reload");
        return None;
    };

    let mut new = match Config::load(path) {
        Ok(new) => new,
        Err(error) => {
            error!("SIGHUP: {error}; keeping the running configuration");
            return None;
        }
    };
    if let Some(spec) = socket_override {
        new.socket = spec.clone();
    }

    for key in current.restart_keys_changed(&new) {
        warn!("SIGHUP: {key} changed; the new value takes effect after a restart");
    }
    if !log.apply(&new) {
        warn!("SIGHUP: log.destination changed; the new value takes effect after a restart");
    }

    for warning in &new.warnings {
        warn!("SIGHUP: {warning}");
    }
    info!("SIGHUP: configuration reloaded from {}; new connections use it", path.display());
    Some(new)
}
