//! The `gateway.state` setting: where the state store lives.

use crate::error::StoreError;
use std::path::PathBuf;

/// A parsed `state = "…"` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StateLocation {
    /// `sqlite:<path>`: the embedded store, a file on this machine (relative paths are taken
    /// as given; the gateway resolves them against the config file's directory).
    Sqlite(PathBuf),
    /// `redis://…` or `rediss://…`: shared state for replicas (not implemented yet).
    Redis(String),
}

impl StateLocation {
    pub fn parse(text: &str) -> Result<StateLocation, StoreError> {
        if let Some(path) = text.strip_prefix("sqlite:") {
            let path = path.strip_prefix("//").unwrap_or(path);
            if path.is_empty() {
                return Err(StoreError::Location(
                    "`sqlite:` needs a file path, e.g. \"sqlite:portcullis.db\"".into(),
                ));
            }
            if path == ":memory:" {
                return Err(StoreError::Location(
                    "an in-memory database would lose the audit log; name a file".into(),
                ));
            }
            return Ok(StateLocation::Sqlite(PathBuf::from(path)));
        }
        if text.starts_with("redis://") || text.starts_with("rediss://") {
            return Ok(StateLocation::Redis(text.to_owned()));
        }
        Err(StoreError::Location(
            "expected \"sqlite:<path>\" or \"redis://host:port\"".into(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_documented_forms() {
        assert_eq!(
            StateLocation::parse("sqlite:portcullis.db").unwrap(),
            StateLocation::Sqlite("portcullis.db".into())
        );
        assert_eq!(
            StateLocation::parse("sqlite:///var/lib/portcullis/state.db").unwrap(),
            StateLocation::Sqlite("/var/lib/portcullis/state.db".into())
        );
        assert_eq!(
            StateLocation::parse("redis://cache:6379").unwrap(),
            StateLocation::Redis("redis://cache:6379".into())
        );
        for bad in [
            "sqlite:",
            "sqlite::memory:",
            "postgres://x",
            "portcullis.db",
        ] {
            assert!(StateLocation::parse(bad).is_err(), "{bad}");
        }
    }
}
