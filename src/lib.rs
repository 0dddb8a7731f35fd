//! tls-milter: determines, for every inbound message, whether it travelled over TLS hop by hop,
//! and records the result in an `X-Transport-Security` header.
//!
//! The daemon is [`run`]; the offline analysis behind `tls-milter check` is [`check`].
//! Both rest on [`received`] (one Received field) and [`chain`] (the whole chain and the
//! verdict), which know nothing of sockets.

// Nothing outside tests may unwrap or panic: most of what this program reads comes from the
// MTA, the message or the config file. `cargo clippy` in tests/run.sh enforces it.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

pub mod chain;
pub mod check;
pub mod config;
pub mod header;
pub mod hop;
pub mod logging;
pub mod milter;
pub mod policy;
pub mod received;
pub mod socket;

use crate::config::Config;
use crate::milter::Shared;
use crate::socket::{BoundSocket, MilterListener};
use std::future::Future;
use std::io;
use tokio::sync::{mpsc, watch};
use tracing::{info, warn};

/// Runs the milter on `socket` until `shutdown` completes.
///
/// Each configuration received on `reload` applies to connections that start after it.
/// On shutdown the socket is closed at once, mail transactions in progress get up to the
/// configured `shutdown_timeout` to reach end of message, and then every connection closes.
///
/// # Errors
///
/// Returns an error when the socket fails so that no connection can be accepted.
pub async fn run(
    socket: BoundSocket,
    config: Config,
    mut reload: mpsc::Receiver<Config>,
    shutdown: impl Future<Output = ()> + Send,
) -> io::Result<()> {
    let milter_config = indymilter::Config {
        max_connections: config.max_connections,
        connection_timeout: config.connection_timeout,
        ..Default::default()
    };
    let shared = Shared::new(config);

    let reload_shared = shared.clone();
    let reload_task = tokio::spawn(async move {
        while let Some(config) = reload.recv().await {
            reload_shared.replace_config(config);
        }
    });

    // The listener stops accepting as soon as shutdown starts; indymilter's own shutdown
    // future completes only later, because it drops the commands still queued.
    let (closed_sender, mut closed) = watch::channel(false);
    let listener = MilterListener::new(socket, async move {
        let _ = closed.wait_for(|closed| *closed).await;
    });

    let drain_shared = shared.clone();
    let drained = async move {
        shutdown.await;
        let _ = closed_sender.send(true);

        let timeout = drain_shared.config().shutdown_timeout;
        let in_progress = drain_shared.transactions_in_progress();
        info!("stopping: socket closed, waiting up to {}s for {in_progress} mail transactions", timeout.as_secs());

        if tokio::time::timeout(timeout, drain_shared.transactions_done()).await.is_err() {
            warn!(
                "stopping: shutdown_timeout passed with {} mail transactions in progress; closing them",
                drain_shared.transactions_in_progress()
            );
        }
    };

    let result = indymilter::run(listener, milter::callbacks(shared), milter_config, drained).await;
    reload_task.abort();
    result
}
