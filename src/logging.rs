//! Log output: plain lines on stderr (for journald) or to syslog with facility `mail`.
//!
//! Every line about one message starts with `QUEUEID: ` (`NONE` when the MTA sent no `i`
//! macro), so an operator can grep the MTA's log and ours with the same id.

use crate::config::{Config, LogDestination};
use syslog_tracing::{Facility, Options, Syslog};
use tracing::level_filters::LevelFilter;
use tracing_subscriber::{fmt, prelude::*, reload};

/// Changes the log level of the running process.
pub struct LogHandle {
    level: reload::Handle<LevelFilter, tracing_subscriber::Registry>,
    destination: LogDestination,
}

impl LogHandle {
    /// Applies the level of a reloaded configuration; returns false when its destination
    /// differs, which needs a restart.
    pub fn apply(&self, config: &Config) -> bool {
        let _ = self.level.modify(|level| *level = LevelFilter::from_level(config.log_level));
        config.log_destination == self.destination
    }
}

/// Installs the global logger for `config`. Returns `None` if one was installed already.
pub fn init(config: &Config) -> Option<LogHandle> {
    let (filter, level) = reload::Layer::new(LevelFilter::from_level(config.log_level));
    let format = fmt::layer().with_ansi(false).with_target(false);

    let installed = match config.log_destination {
        LogDestination::Stderr => tracing_subscriber::registry()
            .with(filter)
            .with(format.with_writer(std::io::stderr))
            .try_init(),
        LogDestination::Syslog => {
            let syslog = Syslog::new(c"tls-milter", Options::LOG_PID, Facility::Mail)?;
            tracing_subscriber::registry()
                .with(filter)
                .with(format.without_time().with_level(false).with_writer(syslog))
                .try_init()
        }
    };

    installed.ok().map(|()| LogHandle { level, destination: config.log_destination })
}
