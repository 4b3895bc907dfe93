//! Portcullis host-control policy.
//!
//! Ordered rules, first match wins, no match denies. The same [`Policy`] answers two
//! questions: whether a call may go through ([`Policy::decide`]) and what a caller may even
//! see ([`Policy::visible`], [`Policy::may_expose`]), so that list filtering and call
//! enforcement can never disagree.
//!
//! A rule narrows by server, names (globs), principals, a CEL condition (`when`) and
//! argument constraints (paths inside roots, URLs on hosts, argument size); it decides
//! allow, deny or consent, may require token scopes, and may carry a rate limit.
//! [`Policy::explain`] renders a decision's trace for people.
//!
//! This crate does no I/O: rules are built by the gateway's config loader (or by tests) and
//! evaluated in memory; resolving symbolic links goes through [`PathResolver`].

mod condition;
mod constraints;
mod explain;
mod glob;
mod index;
mod paths;
mod policy;
mod principal;
mod rate;
mod rule;
mod selector;
mod urls;

pub use condition::{
    Condition, ConditionError, MAX_ARG_VALUES, MAX_COMPREHENSION_NESTING, MAX_CONDITION_LEN,
    VARIABLES,
};
pub use constraints::{ArgConstraints, PathConstraint, PathRoots, UrlConstraint};
pub use glob::{Glob, GlobError, MAX_GLOB_LEN};
pub use paths::{LOOKALIKES, LexicalResolver, PathRejection, PathResolver, Root, check_path};
pub use policy::{Decision, Policy, Request, Step, StepOutcome, Target, Verdict};
pub use principal::{Principal, PrincipalPattern, PrincipalPatternError};
pub use rate::{MAX_RATE_COUNT, RateError, RatePeriod, RateSpec};
pub use rule::{Coverage, Effect, Kind, Rule, RuleOrigin};
pub use selector::{MAX_SELECTED, MAX_SELECTOR_STEPS, Selector, SelectorError};
pub use urls::{HostPattern, HostPatternError, UrlRejection, check_url};
