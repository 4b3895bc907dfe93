//! `PORTCULLIS_STATE`: the state location from the environment, replacing the config's
//! `gateway.state` for every command (tests, and `portcullis audit` against another copy).

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use portcullis_gateway::config::{Config, ConfigSource, StateLocation};
use portcullis_store::SqliteStore;

use super::text::clean;
use super::usage_error;

/// The variable's name.
pub const STATE_ENV: &str = "PORTCULLIS_STATE";

/// Replaces `config.gateway.state` with `PORTCULLIS_STATE` when that is set (and not
/// empty). An unusable value is an error naming the variable.
pub fn apply_override(config: &mut Config) -> Result<(), String> {
    if let Some(location) = from_env()? {
        config.gateway.state = location;
    }
    Ok(())
}

/// `PORTCULLIS_STATE`, parsed; `None` when unset or empty.
pub fn from_env() -> Result<Option<StateLocation>, String> {
    match std::env::var(STATE_ENV) {
        Err(std::env::VarError::NotPresent) => Ok(None),
        Err(std::env::VarError::NotUnicode(_)) => Err(format!("{STATE_ENV} is not valid UTF-8")),
        Ok(text) if text.is_empty() => Ok(None),
        Ok(text) => parse(&text)
            .map(Some)
            .map_err(|e| format!("{STATE_ENV}: {e}")),
    }
}

/// `sqlite:<path>` (a relative path is relative to the working directory).
pub fn parse(text: &str) -> Result<StateLocation, String> {
    if let Some(path) = text.strip_prefix("sqlite:") {
        if path.is_empty() || path.contains('\0') {
            return Err(
                "needs a database path after `sqlite:` (e.g. \"sqlite:portcullis.db\")".to_owned(),
            );
        }
        return Ok(StateLocation::Sqlite(PathBuf::from(path)));
    }
    let lower = text.to_ascii_lowercase();
    if lower.starts_with("redis://") || lower.starts_with("rediss://") {
        Err(format!(
            "\"{text}\": Redis state is not yet supported; use \"sqlite:<path>\""
        ))
    } else {
        Err(format!(
            "must be \"sqlite:<path>\" (e.g. \"sqlite:portcullis.db\"), not \"{text}\""
        ))
    }
}

/// Where the state location in effect came from, for messages: `PORTCULLIS_STATE`, the
/// config file's `gateway.state`, or the default.
pub fn describe_origin(config: &Config) -> String {
    if matches!(from_env(), Ok(Some(_))) {
        return format!("from {STATE_ENV}");
    }
    match &config.source {
        ConfigSource::File(path) => format!("gateway.state of {}", path.display()),
        ConfigSource::Embedded(_) => {
            format!("the default gateway.state; set --config or {STATE_ENV}")
        }
    }
}

/// The state database opened read-only (safe next to a running gateway) for a command that
/// lists what it holds: `Ok(None)` when it does not exist yet (nothing to list), the exit
/// code of a usage error naming the file and where its location came from otherwise.
pub fn open_for_listing(config: &Config) -> Result<Option<Arc<SqliteStore>>, ExitCode> {
    let StateLocation::Sqlite(path) = &config.gateway.state;
    if !path.exists() {
        return Ok(None);
    }
    SqliteStore::open_read_only(path).map(Some).map_err(|e| {
        usage_error(format_args!(
            "cannot read the state database {} ({}): {e}",
            clean(&path.display().to_string()),
            describe_origin(config)
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_paths_are_taken_as_written() {
        assert_eq!(
            parse("sqlite:/var/lib/p.db"),
            Ok(StateLocation::Sqlite(PathBuf::from("/var/lib/p.db")))
        );
        assert_eq!(
            parse("sqlite:rel/p.db"),
            Ok(StateLocation::Sqlite(PathBuf::from("rel/p.db")))
        );
    }

    #[test]
    fn anything_else_is_refused_with_a_reason() {
        assert!(
            parse("sqlite:")
                .unwrap_err()
                .contains("needs a database path")
        );
        assert!(
            parse("redis://h:6379")
                .unwrap_err()
                .contains("not yet supported")
        );
        assert!(
            parse("/tmp/p.db")
                .unwrap_err()
                .contains("must be \"sqlite:<path>\"")
        );
    }
}
