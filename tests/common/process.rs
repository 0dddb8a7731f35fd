//! A daemon that a test runs as a child process and stops with SIGTERM, or with SIGKILL when it
//! does not exit in time.

use std::process::{Child, Command, ExitStatus};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use super::{poll, run_command};

/// A child process shared by the test threads. [`ChildProcess::stop`] or drop stops it.
pub struct ChildProcess {
    /// The process in messages, such as `milter "main"` or `sendmail`.
    name: String,
    /// `None` once the process was stopped or killed.
    child: Mutex<Option<Child>>,
    /// How long the process gets to exit after SIGTERM before it is killed.
    stop_timeout: Duration,
}

impl ChildProcess {
    /// Takes ownership of `child`, which messages call `name`.
    pub fn new(name: &str, child: Child, stop_timeout: Duration) -> ChildProcess {
        ChildProcess { name: name.to_string(), child: Mutex::new(Some(child)), stop_timeout }
    }

    /// Returns the process id, or `None` once the process was stopped.
    pub fn pid(&self) -> Option<u32> {
        self.lock().as_ref().map(Child::id)
    }

    /// Returns an error when the process has exited or was stopped.
    pub fn check_running(&self) -> Result<(), String> {
        let mut guard = self.lock();
        let Some(child) = guard.as_mut() else {
            return Err(format!("{} was stopped", self.name));
        };
        match child.try_wait() {
            Ok(None) => Ok(()),
            Ok(Some(status)) => Err(format!("{} exited with {status}", self.name)),
            Err(error) => Err(format!("checking {} failed: {error}", self.name)),
        }
    }

    /// Returns `running`, or why the process is not running, for failure messages.
    pub fn state(&self) -> String {
        match self.check_running() {
            Ok(()) => "running".to_string(),
            Err(error) => error,
        }
    }

    /// Sends `signal`, a `kill -s` name such as `HUP`, to the process.
    pub fn signal(&self, signal: &str) -> Result<(), String> {
        let pid = self.pid().ok_or_else(|| format!("{} was stopped", self.name))?;
        run_command(Command::new("kill").args(["-s", signal, &pid.to_string()])).map(|_| ())
    }

    /// Waits up to `timeout` for the process to exit by itself and returns its status, or `None`
    /// when it still runs or was stopped.
    pub fn wait_exit(&self, timeout: Duration) -> Option<ExitStatus> {
        self.pid()?;
        poll(timeout, || self.lock().as_mut()?.try_wait().ok().flatten())
    }

    /// Kills the process with SIGKILL, reaps it and returns its status.
    pub fn kill(&self) -> Result<ExitStatus, String> {
        let mut child = self.lock().take().ok_or_else(|| format!("{} was stopped", self.name))?;
        child.kill().map_err(|error| format!("killing {} failed: {error}", self.name))?;
        child.wait().map_err(|error| format!("waiting for {} failed: {error}", self.name))
    }

    /// Stops the process with SIGTERM, or SIGKILL when it has not exited within the stop timeout.
    /// Calling it again does nothing.
    pub fn stop(&self) {
        let Some(mut child) = self.lock().take() else { return };
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }

        if let Err(error) = run_command(Command::new("kill").args(["-s", "TERM", &child.id().to_string()])) {
            eprintln!("sending SIGTERM to {} failed: {error}", self.name);
        }

        let exited = poll(self.stop_timeout, || child.try_wait().ok().flatten());
        if exited.is_none() {
            eprintln!("{} did not exit within {:?} of SIGTERM, so it is killed", self.name, self.stop_timeout);
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Locks the child, also after a test thread panicked while it held the lock.
    fn lock(&self) -> MutexGuard<'_, Option<Child>> {
        self.child.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Drop for ChildProcess {
    fn drop(&mut self) {
        self.stop();
    }
}
