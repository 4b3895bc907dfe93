//! Portcullis host-control policy.
//!
//! Ordered rules, first match wins, no match denies. The same [`Policy`] answers two
//! questions: whether a call may go through ([`Policy::decide`]) and what a caller may even
//! see ([`Policy::may_expose`], and `decide` per listed name), so that list filtering and
//! call enforcement can never disagree.
//!
//! This crate does no I/O: rules are built by the gateway's config loader (or by tests) and
//! evaluated in memory.

mod glob;
mod policy;
mod principal;
mod rule;

pub use glob::{Glob, GlobError, MAX_GLOB_LEN};
pub use policy::{Decision, Policy, Target};
pub use principal::Principal;
pub use rule::{Coverage, Effect, Kind, Rule, RuleOrigin};
