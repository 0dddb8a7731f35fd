//! The `main` of the end-to-end test binaries that run their cases with libtest-mimic
//! (`harness = false` in Cargo.toml). The cases of such a binary share one fixture, such as an
//! MTA and its milters, which starts before the first case that needs it and stops after the last.
//!
//! The default test harness has no hook that runs after the last test, so those binaries cannot
//! share one MTA between `#[test]` functions and still stop it.

use std::process::ExitCode;
use std::sync::{Arc, OnceLock};

use libtest_mimic::{Arguments, Failed, Trial};

/// Processes that the cases of one test binary share.
pub trait Fixture: Send + Sync + 'static {
    /// Stops every process of the fixture, the MTA before its milters, so the MTA opens no
    /// connection to a milter that is gone. Calling it again does nothing.
    fn stop(&self);
}

/// A case of a test binary: its name in the test list, and the function that runs it.
pub type Case<F> = (&'static str, fn(&F) -> Result<(), Failed>);

/// Runs the trials that the command line selects and returns the exit code for `main`.
///
/// Every case in `cases` receives the same fixture, which `start` starts when the first of them
/// runs, so `--list` and filters that select none of them start nothing. A failed start is not
/// retried, so every such case fails with `starting {fixture_name} failed: ERROR`. The trials in
/// `standalone` run without the fixture. After the last trial the fixture is stopped, also when
/// cases failed or panicked.
pub fn run_cases<F: Fixture>(
    fixture_name: &'static str,
    start: fn() -> Result<F, String>,
    cases: impl IntoIterator<Item = Case<F>>,
    standalone: impl IntoIterator<Item = Trial>,
) -> ExitCode {
    let arguments = Arguments::from_args();
    let shared = Arc::new(SharedFixture { fixture: OnceLock::new(), start, fixture_name });

    let mut trials: Vec<Trial> = cases
        .into_iter()
        .map(|(name, case)| {
            let shared = Arc::clone(&shared);
            Trial::test(name, move || case(shared.get()?))
        })
        .collect();
    trials.extend(standalone);

    let conclusion = libtest_mimic::run(&arguments, trials);
    shared.stop();
    conclusion.exit_code()
}

/// The fixture of one test binary, started on first use.
struct SharedFixture<F: Fixture> {
    fixture: OnceLock<Result<F, String>>,
    start: fn() -> Result<F, String>,
    /// The fixture in the error of a failed start, such as `the test harness`.
    fixture_name: &'static str,
}

impl<F: Fixture> SharedFixture<F> {
    /// Returns the fixture, started by the first call. Concurrent callers wait for that start.
    fn get(&self) -> Result<&F, Failed> {
        match self.fixture.get_or_init(self.start) {
            Ok(fixture) => Ok(fixture),
            Err(error) => Err(format!("starting {} failed: {error}", self.fixture_name).into()),
        }
    }

    /// Stops the fixture if it was started.
    fn stop(&self) {
        if let Some(Ok(fixture)) = self.fixture.get() {
            fixture.stop();
        }
    }
}

impl<F: Fixture> Drop for SharedFixture<F> {
    fn drop(&mut self) {
        self.stop();
    }
}
