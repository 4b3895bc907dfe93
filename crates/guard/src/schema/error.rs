//! Why a call was refused by schema validation, and how validator errors become [`Problem`]s.

use crate::invalid::{MAX_ECHO, Problem, preview, shorten};
use crate::{Invalid, invalid};
use jsonschema::error::ValidationErrorKind;
use jsonschema::{ValidationError, Validator};
use serde_json::Value;

/// A tool's `inputSchema` that Portcullis will not use. The call is refused (fail closed): the
/// schema is the upstream's, so the message says so.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SchemaError {
    #[error("the upstream's inputSchema is invalid: it is {found}, not a JSON object")]
    NotAnObject { found: &'static str },
    #[error("the upstream's inputSchema is invalid: it is larger than {limit} bytes")]
    TooLarge { limit: usize },
    #[error("the upstream's inputSchema is invalid: it nests deeper than {limit} levels")]
    TooDeep { limit: usize },
    #[error("the upstream's inputSchema is invalid: it has more than {limit} references")]
    TooManyReferences { limit: usize },
    #[error("the upstream's inputSchema is invalid: it has more than {limit} patterns")]
    TooManyPatterns { limit: usize },
    #[error(
        "the upstream's inputSchema is invalid: one argument value could need more than {limit} \
         subschema evaluations"
    )]
    TooExpensive { limit: u64 },
    #[error("the upstream's inputSchema is invalid: its references are too complex to bound")]
    TooComplex,
    #[error(
        "the upstream's inputSchema is invalid: it refers to {reference:?}, outside the schema \
         (Portcullis never fetches schemas)"
    )]
    ExternalReference { reference: String },
    #[error("the upstream's inputSchema is invalid: unsupported JSON Schema dialect {dialect:?}")]
    UnsupportedDialect { dialect: String },
    #[error("the upstream's inputSchema is invalid: {message}")]
    Invalid { message: String },
}

/// Why a `tools/call` was refused by [`crate::SchemaCache::validate`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejected {
    /// The arguments do not satisfy the schema: a tool error (`isError: true`) for the caller.
    #[error(transparent)]
    Arguments(#[from] Invalid),
    /// The schema cannot be used: nothing is forwarded.
    #[error(transparent)]
    Schema(#[from] SchemaError),
}

impl SchemaError {
    pub(crate) fn from_build(error: &ValidationError<'_>) -> Self {
        let at = error.instance_path().as_str();
        let mut message = error.masked_with(preview(error.instance(), "")).to_string();
        if !at.is_empty() {
            message = format!(
                "{} (at {})",
                shorten(message, 200),
                shorten(at.to_owned(), 100)
            );
        }
        SchemaError::Invalid {
            message: shorten(message, invalid::MAX_MESSAGE),
        }
    }
}

/// The problems with `args`, at most [`invalid::MAX_PROBLEMS`].
pub(crate) fn problems(validator: &Validator, args: &Value) -> Invalid {
    let problems: Vec<Problem> = validator
        .iter_errors(args)
        .take(invalid::MAX_PROBLEMS)
        .map(|error| problem(&error))
        .collect();
    if problems.is_empty() {
        // `is_valid` and `iter_errors` disagreed: still refuse.
        return Invalid::one("", "the arguments do not satisfy the tool's inputSchema");
    }
    Invalid { problems }
}

fn problem(error: &ValidationError<'_>) -> Problem {
    let path = error.instance_path().as_str();
    let message = match error.kind() {
        ValidationErrorKind::AdditionalProperties { unexpected } => {
            format!(
                "additional properties are not allowed ({})",
                names(unexpected)
            )
        }
        ValidationErrorKind::UnevaluatedProperties { unexpected } => {
            format!(
                "unevaluated properties are not allowed ({})",
                names(unexpected)
            )
        }
        ValidationErrorKind::PropertyNames { error: inner } => {
            let shown = preview(inner.instance(), path);
            format!("property name {}", inner.masked_with(shown))
        }
        _ => error
            .masked_with(preview(error.instance(), path))
            .to_string(),
    };
    Problem::new(path, message)
}

/// `"a", "b" and 3 more`, quoting at most [`MAX_ECHO`] bytes of names.
fn names(unexpected: &[String]) -> String {
    let mut out = String::new();
    for (shown, name) in unexpected.iter().enumerate() {
        let quoted = preview(&Value::from(name.as_str()), "");
        if !out.is_empty() && out.len() + quoted.len() > MAX_ECHO {
            return format!("{out} and {} more", unexpected.len() - shown);
        }
        if !out.is_empty() {
            out.push_str(", ");
        }
        out.push_str(&shorten(quoted, MAX_ECHO));
    }
    out
}
