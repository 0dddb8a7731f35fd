//! Whole-message analysis as `tls-milter check` runs it: the input is a message file.
//!
//! `check_message` must return `Ok` or `Err` and never panic; for `Ok`, the analysis
//! and the header satisfy their invariants and both output formats render.

#![no_main]

use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;
use tls_milter::check;
use tls_milter::config::Config;
use tls_milter_fuzz::{check_analysis, check_header_matches, check_header_value};

fn config() -> &'static Config {
    static CONFIG: OnceLock<Config> = OnceLock::new();
    CONFIG.get_or_init(Config::default)
}

fuzz_target!(|data: &[u8]| {
    let Ok(report) = check::check_message(data, "-", config()) else { return };

    check_analysis(&report.analysis, None, true);
    check_header_value(&report.header);
    check_header_matches(&report.header, &report.analysis);

    let json = check::to_json(&report).to_string();
    assert!(!json.is_empty());
    let text = check::to_text(&report);
    assert!(text.starts_with("-"), "the text report does not start with the source name: {text:?}");
});
