//! Credentials in the arguments of open-world tools: a tool that reaches the outside world
//! (`openWorldHint: true`, or listed in `[[content.open_world]]`) must not be handed a secret
//! that a model copied out of a file or an earlier result. The arguments are searched as JSON
//! text, so a key names the secret of its value (`{"api_key": "…"}`) as in a result.

use serde_json::Value;

use super::{NoSkip, json_text};
use crate::config::{ContentConfig, SecretsInArguments};
use portcullis_guard::secrets::Redactions;

/// What the arguments of one call hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ArgumentCheck {
    /// Nothing to act on: no credential, or not an open-world tool.
    Clean,
    /// Credentials of these kinds (never their values; empty when the arguments could not be
    /// searched, which is treated the same), and what the config says to do.
    Found {
        kinds: Redactions,
        action: SecretsInArguments,
    },
}

impl ArgumentCheck {
    /// The hook for consent: the call must be held until a person approves it.
    pub(crate) fn needs_consent(&self) -> bool {
        matches!(
            self,
            ArgumentCheck::Found {
                action: SecretsInArguments::Consent,
                ..
            }
        )
    }
}

/// Searches the arguments of `tool` of `server` (as the upstream names it; `annotations` as
/// it listed them) when the tool is open-world. The `[[content.allow]]` entries covering the
/// tool apply, as they do to its results.
pub(crate) fn check_arguments(
    config: &ContentConfig,
    server: &str,
    tool: &str,
    annotations: Option<&Value>,
    args: &Value,
) -> ArgumentCheck {
    if !config.is_open_world(server, tool, annotations) {
        return ArgumentCheck::Clean;
    }
    let text = args.to_string();
    let allow = config.allowlist(server, Some(tool));
    let work = json_text::Work {
        sanitize: None,
        redact: Some(&allow),
    };
    let kinds = match json_text::rewrite(&text, &NoSkip, work) {
        Ok(out) if out.redacted.is_empty() => return ArgumentCheck::Clean,
        Ok(out) => out.redacted,
        // Not reachable for serde's own output; arguments that cannot be searched count as
        // holding a credential (fail closed).
        Err(_) => Redactions::default(),
    };
    ArgumentCheck::Found {
        kinds,
        action: config.secrets_in_arguments,
    }
}
