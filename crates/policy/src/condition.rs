//! `when = '<CEL expression>'`: a rule condition in the Common Expression Language.
//!
//! Conditions are compiled once, when the policy is built: a syntax error, a reference to
//! an unknown variable, or macros nested more than [`MAX_COMPREHENSION_NESTING`] deep is an
//! error then, with the position in the expression. At decision time a condition must
//! evaluate to a bool; anything else (a missing key, a type mismatch, an unknown function,
//! a non-bool result) is an evaluation error, and the decision is deny (fail closed).
//!
//! Variables (see [`VARIABLES`]):
//!
//! | variable | value |
//! |---|---|
//! | `principal` | map: `sub`, `iss` (null when anonymous; `"local"` for a local user), `client_id` (or null), `scopes` (list), `groups` (list), `claims` (map) |
//! | `server` | the server name |
//! | `tool` | map: `name`, `annotations` (the upstream's tool annotations: **untrusted**; an empty map when unknown). Bound for tool decisions only |
//! | `prompt` | map: `name`. Bound for prompt decisions only |
//! | `resource` | map: `uri`. Bound for resource decisions only |
//! | `args` | map: the call's arguments (an empty map when there are none) |
//! | `session` | map: `id` |
//! | `transport` | `"stdio"` or `"http"` |
//!
//! JSON numbers become `int` when they fit, else `uint`, else `double`. The standard CEL
//! library is available (`size`, `startsWith`, `endsWith`, `contains`, `matches` with the
//! linear-time `regex` crate, `in`, `has()`, `all`, `exists`, `exists_one`, `map`,
//! `filter`), plus the strings extension (`lowerAscii`, `upperAscii`, `split`, `join`,
//! `replace`, `indexOf`, `substring`, `trim`, ...).
//!
//! Cost is bounded as defence in depth: expressions are at most [`MAX_CONDITION_LEN`]
//! characters and nest at most [`MAX_COMPREHENSION_NESTING`] macros, and arguments with more
//! than [`MAX_ARG_VALUES`] JSON values are not evaluated (the condition errors, so the
//! decision is deny).

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, OnceLock};

use cel::common::ast::{EntryExpr, Expr, IdedExpr};
use cel::common::value::{CowVal, Val};
use cel::context::VariableResolver;
use cel::objects::{Key, Map};
use cel::{Context, Env, Program, Value};

use crate::policy::Request;
use crate::rule::Kind;

/// The variables a condition may use.
pub const VARIABLES: [&str; 8] = [
    "principal",
    "server",
    "tool",
    "prompt",
    "resource",
    "args",
    "session",
    "transport",
];

/// Names CEL itself defines as identifiers (types and the `optional` namespace).
const BUILTIN_IDENTS: [&str; 11] = [
    "bool",
    "bytes",
    "double",
    "int",
    "list",
    "map",
    "null_type",
    "string",
    "type",
    "uint",
    "optional",
];

/// Longest condition accepted, in characters.
pub const MAX_CONDITION_LEN: usize = 4096;
/// Deepest nesting of macros (`all`, `exists`, `map`, ...) accepted: each level can
/// multiply the work by the size of a list.
pub const MAX_COMPREHENSION_NESTING: usize = 2;
/// Most JSON values (of all depths) in the arguments a condition is evaluated on.
pub const MAX_ARG_VALUES: usize = 10_000;
/// Deepest JSON nesting a condition is evaluated on.
pub const MAX_ARG_DEPTH: usize = 64;

fn env() -> &'static Arc<Env> {
    static ENV: OnceLock<Arc<Env>> = OnceLock::new();
    ENV.get_or_init(|| {
        let mut env = Env::stdlib();
        // The strings extension only adds functions; it cannot fail on a fresh stdlib.
        let _ = env.add_extension(cel::extensions::strings);
        Arc::new(env)
    })
}

/// A compiled `when` condition.
#[derive(Clone)]
pub struct Condition {
    source: Arc<str>,
    program: Arc<Program>,
    /// Which of [`VARIABLES`] it uses, as bits.
    uses: u16,
    /// Does it read `tool.annotations`?
    annotations: bool,
}

/// Why a condition was refused, with the one-based line and column in the expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConditionError {
    /// What is wrong.
    pub message: String,
    /// One-based line within the expression.
    pub line: usize,
    /// One-based column (in characters) within that line.
    pub column: usize,
}

impl fmt::Display for ConditionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.line, self.column, self.message)
    }
}

impl std::error::Error for ConditionError {}

impl Condition {
    /// Compiles `source`, refusing syntax errors, unknown variables and deep nesting.
    pub fn compile(source: &str) -> Result<Condition, ConditionError> {
        let at_start = |message: String| ConditionError {
            message,
            line: 1,
            column: 1,
        };
        let len = source.chars().count();
        if len > MAX_CONDITION_LEN {
            return Err(at_start(format!(
                "the condition is {len} characters long; the limit is {MAX_CONDITION_LEN}"
            )));
        }
        if source.trim().is_empty() {
            return Err(at_start("the condition is empty".to_owned()));
        }
        let program = env().compile(source).map_err(|errors| {
            let first = errors.errors.first();
            ConditionError {
                message: first.map_or_else(|| errors.to_string(), |e| e.msg.clone()),
                line: first.map_or(1, |e| usize::try_from(e.pos.0).unwrap_or(1).max(1)),
                column: first.map_or(1, |e| usize::try_from(e.pos.1).unwrap_or(1).max(1)),
            }
        })?;
        let mut walk = Walk {
            source,
            info: program.source_info(),
            scope: Vec::new(),
            uses: 0,
            annotations: false,
        };
        walk.expr(program.expression(), 0)?;
        let (uses, annotations) = (walk.uses, walk.annotations);
        Ok(Condition {
            source: Arc::from(source),
            program: Arc::new(program),
            uses,
            annotations,
        })
    }

    /// The expression as written.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Does the condition use `variable` (one of [`VARIABLES`])?
    pub fn uses(&self, variable: &str) -> bool {
        VARIABLES
            .iter()
            .position(|v| *v == variable)
            .is_some_and(|i| self.uses & (1 << i) != 0)
    }

    /// Does the condition read `tool.annotations`, which the upstream server supplies?
    pub fn uses_annotations(&self) -> bool {
        self.annotations
    }

    /// Evaluates the condition; `Err` carries the reason it could not be (fail closed).
    pub(crate) fn evaluate(&self, bindings: &Bindings<'_>) -> Result<bool, String> {
        for (i, name) in VARIABLES.iter().enumerate() {
            if self.uses & (1 << i) != 0 {
                bindings.prepare(name)?;
            }
        }
        let mut ctx = Context::with_env(Arc::clone(env()));
        ctx.set_variable_resolver(bindings);
        match self.program.execute(&ctx) {
            Ok(Value::Bool(b)) => Ok(b),
            Ok(other) => Err(format!(
                "the condition evaluated to {}, not a bool",
                type_name(&other)
            )),
            Err(e) => Err(e.to_string()),
        }
    }
}

impl fmt::Debug for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Condition({:?})", self.source)
    }
}

/// Two conditions are equal when they were written the same way.
impl PartialEq for Condition {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::List(_) => "a list",
        Value::Map(_) => "a map",
        Value::Int(_) => "an int",
        Value::UInt(_) => "a uint",
        Value::Float(_) => "a double",
        Value::String(_) => "a string",
        Value::Bytes(_) => "bytes",
        Value::Null => "null",
        _ => "a value that is not a bool",
    }
}

/// The compile-time walk: scopes of macro variables, uses, nesting.
struct Walk<'a> {
    source: &'a str,
    info: &'a cel::common::ast::SourceInfo,
    scope: Vec<&'a str>,
    uses: u16,
    annotations: bool,
}

impl<'a> Walk<'a> {
    fn error_at(&self, id: u64, message: String) -> ConditionError {
        let offset = self
            .info
            .offset_for(id)
            .map_or(0, |(start, _)| start as usize);
        let (mut line, mut column) = (1, 1);
        for c in self.source.chars().take(offset) {
            if c == '\n' {
                line += 1;
                column = 1;
            } else {
                column += 1;
            }
        }
        ConditionError {
            message,
            line,
            column,
        }
    }

    fn expr(&mut self, e: &'a IdedExpr, nesting: usize) -> Result<(), ConditionError> {
        match &e.expr {
            Expr::Ident(name) => {
                if name.starts_with('@') || self.scope.contains(&name.as_str()) {
                    return Ok(());
                }
                if let Some(i) = VARIABLES.iter().position(|v| v == name) {
                    self.uses |= 1 << i;
                } else if !BUILTIN_IDENTS.contains(&name.as_str()) {
                    return Err(self.error_at(
                        e.id,
                        format!(
                            "unknown variable `{name}` (known: {})",
                            VARIABLES.join(", ")
                        ),
                    ));
                }
            }
            Expr::Select(select) => {
                if select.field == "annotations"
                    && matches!(&select.operand.expr, Expr::Ident(n) if n == "tool")
                    && !self.scope.contains(&"tool")
                {
                    self.annotations = true;
                }
                self.expr(&select.operand, nesting)?;
            }
            Expr::Call(call) => {
                if let Some(target) = &call.target {
                    self.expr(target, nesting)?;
                }
                for arg in &call.args {
                    self.expr(arg, nesting)?;
                }
            }
            Expr::Comprehension(c) => {
                if nesting >= MAX_COMPREHENSION_NESTING {
                    return Err(self.error_at(
                        e.id,
                        format!(
                            "macros (all, exists, map, filter, ...) nest more than {MAX_COMPREHENSION_NESTING} deep"
                        ),
                    ));
                }
                self.expr(&c.iter_range, nesting)?;
                self.expr(&c.accu_init, nesting)?;
                let depth = self.scope.len();
                self.scope.push(&c.iter_var);
                if let Some(v2) = &c.iter_var2 {
                    self.scope.push(v2);
                }
                self.scope.push(&c.accu_var);
                for part in [&c.loop_cond, &c.loop_step, &c.result] {
                    self.expr(part, nesting + 1)?;
                }
                self.scope.truncate(depth);
            }
            Expr::List(list) => {
                for item in &list.elements {
                    self.expr(item, nesting)?;
                }
            }
            Expr::Map(map) => {
                for entry in &map.entries {
                    self.entry(&entry.expr, nesting)?;
                }
            }
            Expr::Struct(s) => {
                for entry in &s.entries {
                    self.entry(&entry.expr, nesting)?;
                }
            }
            Expr::Literal(_) | Expr::Unspecified => {}
        }
        Ok(())
    }

    fn entry(&mut self, entry: &'a EntryExpr, nesting: usize) -> Result<(), ConditionError> {
        match entry {
            EntryExpr::StructField(f) => self.expr(&f.value, nesting),
            EntryExpr::MapEntry(m) => {
                self.expr(&m.key, nesting)?;
                self.expr(&m.value, nesting)
            }
        }
    }
}

/// The variables of one decision, each built the first time a condition needs it and then
/// shared by every condition evaluated for that decision.
pub(crate) struct Bindings<'r> {
    req: &'r Request<'r>,
    vars: [OnceLock<Result<Box<dyn Val>, String>>; 8],
}

impl<'r> Bindings<'r> {
    pub(crate) fn new(req: &'r Request<'r>) -> Self {
        Bindings {
            req,
            vars: Default::default(),
        }
    }

    /// Builds `name` if needed; `Err` when it cannot be (too large, or not bound for this
    /// kind of target).
    fn prepare(&self, name: &str) -> Result<(), String> {
        let Some(i) = VARIABLES.iter().position(|v| *v == name) else {
            return Ok(());
        };
        match self.vars[i].get_or_init(|| self.build(name)) {
            Ok(_) => Ok(()),
            Err(e) => Err(e.clone()),
        }
    }

    fn build(&self, name: &str) -> Result<Box<dyn Val>, String> {
        let req = self.req;
        let value = match name {
            "principal" => principal_value(req),
            "server" => Value::from(req.server),
            "transport" => Value::from(req.transport),
            "session" => map([("id", Value::from(req.session))]),
            "args" => match req.args {
                None => map::<0>([]),
                Some(args) => {
                    let mut budget = MAX_ARG_VALUES;
                    json(args, &mut budget, 0).map_err(|why| format!("args {why}"))?
                }
            },
            "tool" | "prompt" | "resource" if name != kind_variable(req.kind) => {
                return Err(format!(
                    "`{name}` is not defined when deciding on a {}",
                    req.kind
                ));
            }
            "tool" => {
                let annotations = match req.annotations {
                    Some(a @ serde_json::Value::Object(_)) => {
                        let mut budget = MAX_ARG_VALUES;
                        json(a, &mut budget, 0).map_err(|why| format!("tool.annotations {why}"))?
                    }
                    _ => map::<0>([]),
                };
                map([
                    ("name", Value::from(req.name)),
                    ("annotations", annotations),
                ])
            }
            "prompt" => map([("name", Value::from(req.name))]),
            "resource" => map([("uri", Value::from(req.name))]),
            _ => Value::Null,
        };
        Box::<dyn Val>::try_from(value).map_err(|e| e.to_string())
    }
}

impl VariableResolver for Bindings<'_> {
    fn resolve<'b>(&'b self, variable: &str) -> Option<CowVal<'b, 'b>> {
        let i = VARIABLES.iter().position(|v| *v == variable)?;
        match self.vars[i].get() {
            Some(Ok(v)) => Some(CowVal::Borrowed(v.as_ref())),
            _ => None,
        }
    }
}

/// The variable bound to the target of this kind.
fn kind_variable(kind: Kind) -> &'static str {
    match kind {
        Kind::Tool => "tool",
        Kind::Prompt => "prompt",
        Kind::Resource => "resource",
    }
}

fn map<const N: usize>(entries: [(&str, Value); N]) -> Value {
    let map: HashMap<Key, Value> = entries
        .into_iter()
        .map(|(k, v)| (Key::String(Arc::new(k.to_owned())), v))
        .collect();
    Value::Map(Map { map: Arc::new(map) })
}

fn strings(items: &[String]) -> Value {
    Value::List(Arc::new(
        items.iter().map(|s| Value::from(s.as_str())).collect(),
    ))
}

fn principal_value(req: &Request<'_>) -> Value {
    let p = req.principal;
    let opt = |s: &Option<String>| s.as_deref().map_or(Value::Null, Value::from);
    let mut budget = MAX_ARG_VALUES;
    let claims = json_map(&p.claims, &mut budget, 0).unwrap_or_else(|_| map::<0>([]));
    map([
        ("sub", Value::from(p.subject.as_str())),
        ("iss", opt(&p.issuer)),
        ("client_id", opt(&p.client_id)),
        ("scopes", strings(&p.scopes)),
        ("groups", strings(&p.groups)),
        ("claims", claims),
    ])
}

/// JSON to CEL, counting values against `budget`.
fn json(v: &serde_json::Value, budget: &mut usize, depth: usize) -> Result<Value, String> {
    if *budget == 0 {
        return Err(format!(
            "hold more than {MAX_ARG_VALUES} values: too large for a condition"
        ));
    }
    if depth > MAX_ARG_DEPTH {
        return Err(format!(
            "nest deeper than {MAX_ARG_DEPTH} levels: too deep for a condition"
        ));
    }
    *budget -= 1;
    Ok(match v {
        serde_json::Value::Null => Value::Null,
        serde_json::Value::Bool(b) => Value::Bool(*b),
        serde_json::Value::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), _, _) => Value::Int(i),
            (None, Some(u), _) => Value::UInt(u),
            (None, None, Some(f)) => Value::Float(f),
            (None, None, None) => Value::Null,
        },
        serde_json::Value::String(s) => Value::from(s.as_str()),
        serde_json::Value::Array(items) => Value::List(Arc::new(
            items
                .iter()
                .map(|item| json(item, budget, depth + 1))
                .collect::<Result<_, _>>()?,
        )),
        serde_json::Value::Object(m) => json_map(m, budget, depth + 1)?,
    })
}

fn json_map(
    m: &serde_json::Map<String, serde_json::Value>,
    budget: &mut usize,
    depth: usize,
) -> Result<Value, String> {
    let mut out = HashMap::with_capacity(m.len());
    for (k, v) in m {
        out.insert(Key::String(Arc::new(k.clone())), json(v, budget, depth)?);
    }
    Ok(Value::Map(Map { map: Arc::new(out) }))
}
