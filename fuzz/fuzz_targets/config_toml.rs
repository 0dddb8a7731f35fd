//! Configuration parsing: any text must give `Ok` or `Err`, never a panic.
//!
//! An error must name the file and give a line inside the text, and an accepted
//! configuration must print with `--check-config` output that loads again to the same
//! effective settings.

#![no_main]

use libfuzzer_sys::fuzz_target;
use std::path::Path;
use tls_milter::config::Config;

const PATH: &str = "/fuzz/tls-milter.toml";

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    match Config::from_toml(&text, Path::new(PATH)) {
        Ok(config) => {
            let described = config.describe();
            let reloaded = match Config::from_toml(&described, Path::new(PATH)) {
                Ok(reloaded) => reloaded,
                Err(error) => panic!("--check-config output does not load again: {error}\n{described}"),
            };
            assert_eq!(reloaded.describe(), described, "--check-config output loads to different settings");
        }
        Err(error) => {
            let message = error.to_string();
            assert!(message.starts_with(PATH), "the error does not name the file: {message}");
            if let Some(line) = error.line {
                let lines = text.lines().count().max(1);
                assert!((1..=lines + 1).contains(&line), "the error names line {line} of {lines}: {message}");
            }
        }
    }
});
