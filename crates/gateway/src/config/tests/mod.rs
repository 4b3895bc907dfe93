//! Tests of the config module: one file per concern.

use std::path::PathBuf;

use super::{Config, ConfigError, ConfigSource};

mod approvals;
mod auth;
mod consent;
mod content;
mod egress;
mod errors;
mod examples;
mod keys;
mod net_values;
mod render;
mod roots;
mod rule_parts;
mod scan;
mod sections;
mod units;
mod warnings;

/// Parses `text` as `test.toml`.
fn parse(text: &str) -> Result<Config, ConfigError> {
    Config::parse(text, ConfigSource::File(PathBuf::from("test.toml")))
}

/// Parses a config that must be valid.
fn ok(text: &str) -> Config {
    parse(text).unwrap_or_else(|e| panic!("config should parse:\n{e}\n---\n{text}"))
}

/// The diagnostics of a config that must fail, as `line:col: message`.
fn errors(text: &str) -> Vec<String> {
    match parse(text) {
        Ok(_) => panic!("config unexpectedly parsed:\n{text}"),
        Err(e) => e
            .errors
            .iter()
            .map(|d| format!("{}:{}: {}", d.line, d.column, d.message))
            .collect(),
    }
}

/// The single diagnostic of a config that must fail with exactly one.
fn error(text: &str) -> String {
    let errors = errors(text);
    assert_eq!(errors.len(), 1, "expected one error, got {errors:#?}");
    errors.into_iter().next().unwrap_or_default()
}

/// A minimal valid server, for configs that test something else.
const SERVER: &str = "[servers.files]\ncommand = [\"files-server\"]\n";
