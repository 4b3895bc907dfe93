//! Validation of `tools/call` arguments against the tool's `inputSchema`.
//!
//! Safe settings of the `jsonschema` crate (see the crate README for why each matters):
//! - built with `default-features = false`: no HTTP or file retrieval compiled in at all;
//! - a retriever that refuses every URI, and references outside the document refused before
//!   compiling ([`budget`]), so a remote or file `$ref` is an error, never a fetch;
//! - the `regex` engine for `pattern` and `patternProperties` (linear time; no look-around or
//!   back-references, so such patterns make the schema refused), with compile-size limits;
//! - draft 2020-12 unless `$schema` names draft 4, 6, 7 or 2019-09; any other `$schema` is an
//!   unsupported dialect (refused with an error), never a meta-schema to fetch;
//! - `format` is an annotation, as 2020-12 specifies by default, for every draft;
//! - schemas bounded before compiling: size, depth, references, patterns, and the evaluations
//!   one argument value can cost ([`budget`]).

mod budget;
mod cache;
mod error;

pub use budget::{
    MAX_ARGUMENT_DEPTH, MAX_CALL_EVALUATIONS, MAX_EVALUATIONS, MAX_PATTERNS, MAX_REFERENCES,
};
pub use cache::SchemaCache;
pub use error::{Rejected, SchemaError};

use crate::Invalid;
use crate::invalid::preview;
use budget::TooCostly;
use jsonschema::{Draft, PatternOptions, Retrieve, Uri, Validator};
use portcullis_wire::canonical::{Bounds, Overflow, hex};
use serde_json::Value;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::LazyLock;

/// The largest schema compiled, in bytes of its canonical serialization.
pub const MAX_SCHEMA_BYTES: usize = 256 * 1024;
/// The deepest schema compiled (containers; the schema object is depth 1).
pub const MAX_SCHEMA_DEPTH: usize = 64;
/// Size limit of one compiled `pattern` (bytes of the `regex` crate's program).
pub const MAX_PATTERN_BYTES: usize = 256 * 1024;
/// Capacity of one pattern's lazy DFA cache.
const PATTERN_DFA_BYTES: usize = 256 * 1024;

/// A tool's `inputSchema`, compiled with the safe settings. Cheap to share (`Arc`) and to use
/// from many threads.
#[derive(Debug)]
pub struct CompiledSchema {
    validator: Validator,
    key: [u8; 32],
    /// Bound on evaluations per argument value, by depth ([`budget::check`]).
    per_depth: Vec<u64>,
}

impl CompiledSchema {
    /// Checks `args` (the call's `arguments`; `Value::Null` stands for absent, validated as `{}`).
    /// The arguments must be an object nested at most [`MAX_ARGUMENT_DEPTH`] levels, and small
    /// enough that validating them costs at most [`MAX_CALL_EVALUATIONS`] subschema evaluations
    /// (a bound computed from the schema, so that a costly schema cannot be multiplied by a
    /// large argument list).
    pub fn validate(&self, args: &Value) -> Result<(), Invalid> {
        static EMPTY: LazyLock<Value> = LazyLock::new(|| Value::Object(serde_json::Map::new()));
        let args = if args.is_null() { &*EMPTY } else { args };
        if !args.is_object() {
            let shown = preview(args, "");
            return Err(Invalid::one(
                "",
                format!("{shown} is not of type \"object\""),
            ));
        }
        match budget::call_cost(args, &self.per_depth) {
            Ok(_) => {}
            Err(TooCostly::Deep) => {
                let message = format!("the arguments nest deeper than {MAX_ARGUMENT_DEPTH} levels");
                return Err(Invalid::one("", message));
            }
            Err(TooCostly::Large) => {
                let message = "the arguments are too large to validate against this inputSchema";
                return Err(Invalid::one("", message));
            }
        }
        // The validator is not expected to panic; if it does, the call is refused all the same.
        match catch_unwind(AssertUnwindSafe(|| self.validator.is_valid(args))) {
            Ok(true) => Ok(()),
            Ok(false) => {
                Err(
                    catch_unwind(AssertUnwindSafe(|| error::problems(&self.validator, args)))
                        .unwrap_or_else(|_| {
                            Invalid::one("", "the arguments could not be validated")
                        }),
                )
            }
            Err(_) => Err(Invalid::one("", "the arguments could not be validated")),
        }
    }

    /// `sha256:<hex>` of the schema's canonical form (the cache key), for audit and pinning.
    #[must_use]
    pub fn digest(&self) -> String {
        format!("sha256:{}", hex(&self.key))
    }
}

/// Compiles `schema` with the safe settings, without caching (see [`SchemaCache`]).
pub fn compile(schema: &Value) -> Result<CompiledSchema, SchemaError> {
    let key = key(schema)?;
    compile_keyed(schema, key)
}

/// The cache key, checking size and depth on the way.
fn key(schema: &Value) -> Result<[u8; 32], SchemaError> {
    let bounds = Bounds {
        max_bytes: MAX_SCHEMA_BYTES,
        max_depth: MAX_SCHEMA_DEPTH,
    };
    crate::digest::sha256(schema, bounds).map_err(|overflow| match overflow {
        Overflow::Bytes => SchemaError::TooLarge {
            limit: MAX_SCHEMA_BYTES,
        },
        Overflow::Depth => SchemaError::TooDeep {
            limit: MAX_SCHEMA_DEPTH,
        },
        // The hasher never fails; if it did, the schema is refused all the same.
        Overflow::Output(_) => SchemaError::Invalid {
            message: "it could not be hashed".to_owned(),
        },
    })
}

fn compile_keyed(schema: &Value, key: [u8; 32]) -> Result<CompiledSchema, SchemaError> {
    let found = match schema {
        Value::Object(_) => None,
        Value::Null => Some("null"),
        Value::Bool(_) => Some("a boolean"),
        Value::Number(_) => Some("a number"),
        Value::String(_) => Some("a string"),
        Value::Array(_) => Some("an array"),
    };
    if let Some(found) = found {
        return Err(SchemaError::NotAnObject { found });
    }
    let draft = Draft::Draft202012.detect(schema);
    if draft == Draft::Unknown {
        let dialect = schema
            .get("$schema")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let dialect = crate::invalid::shorten(dialect.to_owned(), crate::invalid::MAX_ECHO);
        return Err(SchemaError::UnsupportedDialect { dialect });
    }
    let per_depth = budget::check(schema)?;
    let patterns = PatternOptions::regex()
        .size_limit(MAX_PATTERN_BYTES)
        .dfa_size_limit(PATTERN_DFA_BYTES);
    let options = jsonschema::options()
        .with_draft(draft)
        .with_retriever(RefuseRetrieval)
        .with_pattern_options(patterns)
        .should_validate_formats(false);
    match catch_unwind(AssertUnwindSafe(|| options.build(schema))) {
        Ok(Ok(validator)) => Ok(CompiledSchema {
            validator,
            key,
            per_depth,
        }),
        Ok(Err(error)) => Err(SchemaError::from_build(&error)),
        Err(_) => Err(SchemaError::Invalid {
            message: "the validator failed to compile it".to_owned(),
        }),
    }
}

/// Refuses every external resource: Portcullis never fetches schemas.
struct RefuseRetrieval;

impl Retrieve for RefuseRetrieval {
    fn retrieve(
        &self,
        uri: &Uri<String>,
    ) -> Result<Value, Box<dyn std::error::Error + Send + Sync>> {
        Err(format!("Portcullis does not fetch {uri}").into())
    }
}
