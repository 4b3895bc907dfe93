//! Description scanning at every list: the checks of `portcullis scan` (in
//! `portcullis_guard::scan`) on each tool the gateway learns, with
//! `servers.<name>.scan` deciding what a finding does.
//!
//! - A tool whose worst finding reaches `warn` (default: any finding) is audited — event
//!   `scan`, decision `warn`, the findings in the reason — once per definition.
//! - One that reaches `block` (default: high) is withheld: absent from every list, and a
//!   call to it refused with the finding (decision `withheld`, rule `scan`). It is audited
//!   once per definition too (decision `block`).
//!
//! - A server's `instructions` are scanned when a session starts (`init.rs`): at `block`
//!   they are left out of what the client is told, audited once (method `initialize`).
//!
//! A definition is scanned once: results are kept per server and SHA-256 of the tool's
//! bytes as listed ([`Scans`], shared by every session, bounded), so a list costs a hash
//! per tool and a call one lookup. A changed definition is a new one: scanned, and audited,
//! again. In a virtual server the checks across its members (shadowed and confusable names,
//! descriptions naming another member's tools) run on the members' latest full lists, again
//! once per set of lists. A call made before any list of a virtual server is checked across
//! the members that are running.

use std::collections::{HashMap, VecDeque};
use std::hash::Hash;
use std::sync::{Arc, Mutex, Weak};

use portcullis_guard::scan::{self, Finding, ServerTools, max_severity};
use portcullis_wire::{ErrorObject, codes};
use serde_json::json;
use serde_json::value::RawValue;

use super::Session;
use super::admission::Call;
use crate::audit::{Context, Entry};
use crate::config::{ScanAction, ScanPolicy};
use crate::upstream::UpstreamConn;
use crate::upstream::catalog::{self, ListKind, Listing};

/// Tool definitions remembered (once scanned, once audited) while this many newer ones have
/// not pushed them out.
const MAX_TOOLS: usize = 4096;
/// Virtual-server results remembered (one per set of member lists).
const MAX_ROUTES: usize = 64;
/// Cross-member findings remembered as audited.
const MAX_AUDITED: usize = 8192;
/// Longest reason in an audit record or an error.
const MAX_REASON: usize = 1000;

/// What the scan makes of one tool.
#[derive(Debug)]
pub struct ScanVerdict {
    pub findings: Vec<Finding>,
    pub action: ScanAction,
}

impl ScanVerdict {
    fn new(findings: Vec<Finding>, policy: &ScanPolicy) -> Self {
        let action = policy.action(max_severity(&findings));
        ScanVerdict { findings, action }
    }

    /// The worst finding (and how many more), for a person.
    pub fn reason(&self) -> String {
        summary(&self.findings)
    }
}

/// The findings, worst first, as one bounded line.
fn summary(findings: &[Finding]) -> String {
    let Some(worst) = findings.first() else {
        return String::new();
    };
    let mut out = format!(
        "{} {} in {}: {}",
        worst.severity, worst.rule, worst.location.field, worst.message
    );
    if findings.len() > 1 {
        let others: Vec<String> = findings[1..]
            .iter()
            .map(|f| format!("{}:{}", f.rule, f.severity))
            .collect();
        out.push_str(&format!("; also {}", others.join(", ")));
    }
    if out.len() > MAX_REASON {
        let cut = (0..=MAX_REASON)
            .rev()
            .find(|i| out.is_char_boundary(*i))
            .unwrap_or(0);
        out.truncate(cut);
        out.push('…');
    }
    out
}

/// A map that forgets its oldest entries beyond a bound.
struct Memo<K, V> {
    map: HashMap<K, V>,
    order: VecDeque<K>,
    max: usize,
}

impl<K: Hash + Eq + Clone, V: Clone> Memo<K, V> {
    fn new(max: usize) -> Self {
        Memo {
            map: HashMap::new(),
            order: VecDeque::new(),
            max,
        }
    }

    fn get(&self, key: &K) -> Option<V> {
        self.map.get(key).cloned()
    }

    /// Inserts; `false` when the key was there already.
    fn insert(&mut self, key: K, value: V) -> bool {
        if self.map.contains_key(&key) {
            return false;
        }
        if self.order.len() >= self.max
            && let Some(oldest) = self.order.pop_front()
        {
            self.map.remove(&oldest);
        }
        self.order.push_back(key.clone());
        self.map.insert(key, value);
        true
    }
}

type ToolKey = (String, [u8; 32]);

/// The latest lists of a virtual server's members, by identity: the lists are kept alive
/// (their allocations, by the `Weak`s) while the entry is, so an address is never reused
/// for another list under it.
type RouteKey = (String, Vec<(Arc<str>, usize)>);

struct RouteEntry {
    _lists: Vec<Weak<Listing>>,
    /// Cross-member findings by (server, tool).
    findings: Arc<HashMap<(String, String), Vec<Finding>>>,
}

/// Scan results shared by every session of a gateway.
pub struct Scans {
    tools: Mutex<Memo<ToolKey, Arc<ScanVerdict>>>,
    routes: Mutex<Memo<RouteKey, Arc<RouteEntry>>>,
    audited: Mutex<Memo<[u8; 32], ()>>,
}

impl Default for Scans {
    fn default() -> Self {
        Scans {
            tools: Mutex::new(Memo::new(MAX_TOOLS)),
            routes: Mutex::new(Memo::new(MAX_ROUTES)),
            audited: Mutex::new(Memo::new(MAX_AUDITED)),
        }
    }
}

fn sha256(bytes: &[u8]) -> [u8; 32] {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, bytes);
    let mut out = [0; 32];
    out.copy_from_slice(digest.as_ref());
    out
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Session {
    fn scan_policy(&self, server: &str) -> ScanPolicy {
        self.gateway
            .config
            .servers
            .get(server)
            .map(|s| s.scan)
            .unwrap_or_default()
    }

    /// The scan of one tool definition of `server` (as listed: `item`), audited the first
    /// time it is seen.
    fn tool_scan(&self, server: &str, item: &RawValue) -> Arc<ScanVerdict> {
        let key = (server.to_owned(), sha256(item.get().as_bytes()));
        if let Some(known) = lock(&self.gateway.scans.tools).get(&key) {
            return known;
        }
        let tool: serde_json::Value =
            serde_json::from_str(item.get()).unwrap_or(serde_json::Value::Null);
        let verdict = Arc::new(ScanVerdict::new(
            scan::scan_tool(server, &tool),
            &self.scan_policy(server),
        ));
        if lock(&self.gateway.scans.tools).insert(key, verdict.clone()) {
            let name = tool.get("name").and_then(|n| n.as_str()).unwrap_or("");
            self.audit_scan(server, crate::mcp::TOOLS_LIST, name, &verdict);
        }
        verdict
    }

    /// The checks across the members of this (virtual) route, on their latest lists.
    fn route_findings(&self) -> Arc<HashMap<(String, String), Vec<Finding>>> {
        let lists: Vec<(Arc<str>, Arc<Listing>)> = self
            .members
            .iter()
            .filter_map(|m| {
                let conn = m.slot.current()?;
                Some((m.server.clone(), conn.catalog().cached(ListKind::Tools)?))
            })
            .collect();
        let key: RouteKey = (
            self.route.name.to_string(),
            lists
                .iter()
                .map(|(s, l)| (s.clone(), Arc::as_ptr(l) as usize))
                .collect(),
        );
        if let Some(known) = lock(&self.gateway.scans.routes).get(&key) {
            return known.findings.clone();
        }
        let parsed: Vec<(Arc<str>, Vec<serde_json::Value>)> = lists
            .iter()
            .map(|(server, listing)| {
                let tools = listing
                    .items
                    .iter()
                    .filter_map(|i| serde_json::from_str(i.get()).ok())
                    .collect();
                (server.clone(), tools)
            })
            .collect();
        let members: Vec<ServerTools<'_>> = parsed
            .iter()
            .map(|(server, tools)| ServerTools { server, tools })
            .collect();
        let mut by_tool: HashMap<(String, String), Vec<Finding>> = HashMap::new();
        for f in scan::scan_route(&members) {
            let tool = f.location.tool.clone().unwrap_or_default();
            by_tool
                .entry((f.location.server.clone(), tool))
                .or_default()
                .push(f);
        }
        for ((server, tool), findings) in &by_tool {
            self.audit_cross(server, tool, findings);
        }
        let entry = Arc::new(RouteEntry {
            _lists: lists.iter().map(|(_, l)| Arc::downgrade(l)).collect(),
            findings: Arc::new(by_tool),
        });
        lock(&self.gateway.scans.routes).insert(key, entry.clone());
        entry.findings.clone()
    }

    /// Why the scan withholds tool `name` of `server` (listed as `item`), if it does.
    fn scan_blocks(&self, server: &str, name: &str, item: &RawValue) -> Option<String> {
        let policy = self.scan_policy(server);
        if policy.warn.is_none() && policy.block.is_none() {
            return None;
        }
        // Scanned (and warnings audited) even when nothing is blocked: `block = "off"`
        // turns off withholding, not the audit.
        let own = self.tool_scan(server, item);
        if own.action == ScanAction::Block {
            return Some(own.reason());
        }
        if !self.route.is_virtual() {
            return None;
        }
        let across = self.route_findings();
        policy.block?;
        let cross = across.get(&(server.to_owned(), name.to_owned()))?;
        let verdict = ScanVerdict::new(cross.clone(), &policy);
        (verdict.action == ScanAction::Block).then(|| verdict.reason())
    }

    /// Whether the description scan withholds this list item (tools only): the hook of
    /// every list, single and virtual.
    pub(super) fn scan_withholds(
        &self,
        server: &str,
        kind: ListKind,
        name: &str,
        item: &RawValue,
    ) -> bool {
        kind == ListKind::Tools && self.scan_blocks(server, name, item).is_some()
    }

    /// The refusal of a call to a tool the scan withholds (audited), or `None`.
    pub(super) async fn scan_refusal(
        &self,
        call: &Call<'_>,
        server: &str,
        name: &str,
        conn: &Arc<UpstreamConn>,
    ) -> Option<ErrorObject> {
        if call.method != crate::mcp::TOOLS_CALL {
            return None;
        }
        // Fail closed: a list that cannot be read again (dropped by a `list_changed` since
        // the call was admitted), or no longer holding the tool, cannot be scanned.
        let listing = match catalog::listing(conn, ListKind::Tools).await {
            Ok(listing) => listing,
            Err(e) => {
                return Some(ErrorObject::new(
                    codes::UPSTREAM_UNAVAILABLE,
                    format!(
                        "the tools list of server {server:?} could not be read to scan tool {name:?}: {e}"
                    ),
                ));
            }
        };
        let Some(item) = listing.get(name) else {
            return Some(ErrorObject::new(
                codes::UPSTREAM_UNAVAILABLE,
                format!(
                    "tool {name:?} is no longer listed by server {server:?}; list the tools again"
                ),
            ));
        };
        let reason = self.scan_blocks(server, name, item)?;
        let reason = format!(
            "tool {:?} of server {server:?} is withheld by the description scan: {reason}",
            call.name
        );
        tracing::warn!(session = %self.id, server, tool = name, "call refused: {reason}");
        self.gateway.audit.note(
            self.audit_context(),
            Entry {
                event: "decision",
                server,
                method: call.method,
                name: call.name,
                args: call.args,
                decision: "withheld",
                rule: Some("scan".to_owned()),
                reason: reason.clone(),
                ..Entry::default()
            },
        );
        Some(
            ErrorObject::new(
                codes::POLICY_DENIED,
                format!("{reason}. The call was not made; run `portcullis scan {server}` to see every finding."),
            )
            .with_data(json!({ "withheld": { "server": server, "tool": name, "status": "scan" } })),
        )
    }

    /// Whether `server`'s instructions may be passed on to the client: not when the scan
    /// blocks them (they are then left out, audited once, like a withheld tool).
    pub(super) fn scan_shows_instructions(&self, server: &str, text: &str) -> bool {
        // Their own key space: no tool definition hashes to the same (server, digest).
        let key = (format!("{server} instructions"), sha256(text.as_bytes()));
        if let Some(known) = lock(&self.gateway.scans.tools).get(&key) {
            return known.action != ScanAction::Block;
        }
        let verdict = Arc::new(ScanVerdict::new(
            scan::scan_instructions(server, text),
            &self.scan_policy(server),
        ));
        if lock(&self.gateway.scans.tools).insert(key, verdict.clone()) {
            self.audit_scan(server, crate::mcp::INITIALIZE, "", &verdict);
        }
        verdict.action != ScanAction::Block
    }

    /// The `scan` record of a definition's findings, when they reach `warn` or `block`.
    fn audit_scan(&self, server: &str, method: &str, tool: &str, verdict: &ScanVerdict) {
        if verdict.action == ScanAction::Pass {
            return;
        }
        let reason = verdict.reason();
        match verdict.action {
            ScanAction::Block => {
                tracing::warn!(
                    server,
                    tool,
                    "tool withheld by the description scan: {reason}"
                )
            }
            _ => tracing::info!(server, tool, "description scan: {reason}"),
        }
        let ctx = Context {
            principal: "gateway".to_owned(),
            session: String::new(),
            transport: self.transport.as_str(),
        };
        self.gateway.audit.note(
            &ctx,
            Entry {
                event: "scan",
                server,
                method,
                name: tool,
                decision: verdict.action.as_str(),
                rule: verdict.findings.first().map(|f| f.rule.id().to_owned()),
                reason,
                ..Entry::default()
            },
        );
    }

    /// [`Session::audit_scan`] for cross-member findings, once per route and findings.
    fn audit_cross(&self, server: &str, tool: &str, findings: &[Finding]) {
        let verdict = ScanVerdict::new(findings.to_vec(), &self.scan_policy(server));
        if verdict.action == ScanAction::Pass {
            return;
        }
        let mut seen = format!("{}\n{server}\n{tool}", self.route.name);
        for f in findings {
            seen.push_str(&format!("\n{}:{}", f.rule, f.message));
        }
        if lock(&self.gateway.scans.audited).insert(sha256(seen.as_bytes()), ()) {
            self.audit_scan(server, crate::mcp::TOOLS_LIST, tool, &verdict);
        }
    }
}

#[cfg(test)]
mod tests {
    use portcullis_guard::scan::{Location, Rule, Severity};

    use super::*;

    fn finding(rule: Rule, severity: Severity, message: &str) -> Finding {
        Finding {
            rule,
            severity,
            location: Location {
                server: "fx".into(),
                tool: Some("t".into()),
                field: "/description".into(),
                offset: Some(3),
            },
            evidence: String::new(),
            message: message.into(),
        }
    }

    #[test]
    fn the_reason_names_the_worst_finding_and_counts_the_rest() {
        let verdict = ScanVerdict::new(
            vec![
                finding(Rule::UnicodeTags, Severity::Critical, "hidden text"),
                finding(Rule::ZeroWidth, Severity::Medium, "zw"),
            ],
            &ScanPolicy::default(),
        );
        assert_eq!(verdict.action, ScanAction::Block);
        assert_eq!(
            verdict.reason(),
            "critical unicode-tags in /description: hidden text; also zero-width:medium"
        );
        let long = finding(Rule::HiddenBlock, Severity::High, &"é".repeat(2000));
        assert!(summary(&[long]).len() <= MAX_REASON + 3);
    }

    #[test]
    fn the_memo_forgets_its_oldest_entries() {
        let mut memo = Memo::new(2);
        assert!(memo.insert(1, ()));
        assert!(!memo.insert(1, ()));
        assert!(memo.insert(2, ()));
        assert!(memo.insert(3, ()));
        assert!(memo.get(&1).is_none() && memo.get(&3).is_some());
    }
}
