//! [`DefinitionGuard`]: one server's definition pins at work on the gateway's list and call
//! paths.
//!
//! The pins are read from the store at every review (a list is rare next to calls, and
//! reading them each time is what lets a `portcullis trust` in another process take effect
//! at the next list, without a restart). A call is checked against the review of the list
//! it was admitted from, made once per list; only when that says "withheld" are the pins
//! read again, so a tool accepted since is not refused on stale knowledge.
//!
//! Fail closed: pins that cannot be read withhold every tool of the server; a tool that
//! cannot be pinned on first sight is withheld.
//!
//! What is audited: each withheld definition, once per process (`definition/withheld`); a
//! tool (or instructions) pinned on first sight on a server that already had pins
//! (`definition/pinned`: something new appeared). The very first sight of a server is only
//! logged — it changes nothing that was trusted.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use portcullis_store::{DefinitionKind, DefinitionPin, Store};
use serde_json::Value;
use serde_json::value::RawValue;

use super::compare::{Status, compare};
use super::fingerprint::{self, ToolFingerprint};
use super::{DefinitionMode, fits, identity, instructions_pin, reason, short, tool_pin};
use crate::audit::{Audit, Context, Entry};
use crate::config::{RunMode, ServerConfig};
use crate::upstream::catalog::Listing;

/// Who the gateway's own pins name.
const FIRST_SIGHT: &str = "gateway (first sight)";
/// Most withheld definitions remembered as audited (then the memory starts over).
const MAX_AUDITED: usize = 4096;
/// Most instructions texts whose verdict is remembered.
const MAX_INSTRUCTIONS: usize = 64;

/// Why a tool is withheld.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Withheld {
    /// `changed`, `renamed`, `new`, `duplicate`, or `unpinned` (pins unreadable, or a pin
    /// that could not be stored).
    pub status: &'static str,
    /// The whole explanation, ending with what to run.
    pub reason: String,
}

/// What one review of a tools list decided: the tools withheld, by name.
#[derive(Debug, Default)]
pub struct Review {
    withheld: HashMap<String, Withheld>,
}

impl Review {
    pub fn withheld(&self, name: &str) -> Option<&Withheld> {
        self.withheld.get(name)
    }

    /// Whether nothing is withheld.
    pub fn is_clear(&self) -> bool {
        self.withheld.is_empty()
    }
}

/// The definition pins of one server, as the running gateway applies them.
pub struct DefinitionGuard {
    server: Arc<str>,
    identity: String,
    mode: DefinitionMode,
    store: Arc<dyn Store>,
    audit: Audit,
    transport: &'static str,
    /// Withheld definitions already audited (by status, name and fingerprint), so that a
    /// list per session does not repeat the record.
    audited: Mutex<HashSet<String>>,
    /// Instructions fingerprints and whether clients may be told them.
    instructions: Mutex<HashMap<String, bool>>,
}

impl std::fmt::Debug for DefinitionGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DefinitionGuard")
            .field("server", &self.server)
            .field("identity", &self.identity)
            .field("mode", &self.mode)
            .finish_non_exhaustive()
    }
}

impl DefinitionGuard {
    /// The guard of `server`, or `None` under `definitions = "off"`.
    pub fn new(
        server: &ServerConfig,
        store: Arc<dyn Store>,
        audit: Audit,
        run_mode: RunMode,
    ) -> Option<Arc<DefinitionGuard>> {
        if server.definitions == DefinitionMode::Off {
            return None;
        }
        Some(Arc::new(DefinitionGuard {
            server: Arc::from(server.name.as_str()),
            identity: identity(server),
            mode: server.definitions,
            store,
            audit,
            transport: match run_mode {
                RunMode::Serve => "http",
                RunMode::Stdio => "stdio",
            },
            audited: Mutex::default(),
            instructions: Mutex::default(),
        }))
    }

    pub fn identity(&self) -> &str {
        &self.identity
    }

    pub fn mode(&self) -> DefinitionMode {
        self.mode
    }

    /// Reviews one tools list (a page, or a whole list): pins on first sight what `tofu`
    /// pins, and says what is withheld.
    pub async fn review(&self, items: &[Box<RawValue>]) -> Arc<Review> {
        let listed: Vec<ToolFingerprint> = items
            .iter()
            .filter_map(|raw| serde_json::from_str::<Value>(raw.get()).ok())
            .filter_map(|value| fingerprint::of_tool(&value))
            .collect();
        let pins = match self.read_pins().await {
            Ok(pins) => pins,
            Err(why) => {
                let reason = format!(
                    "the gateway cannot read the definition pins of server {:?} ({why}), so it withholds its tools; run `portcullis trust {}` to pin them again",
                    &*self.server, &*self.server
                );
                let withheld: HashMap<String, Withheld> = listed
                    .into_iter()
                    .map(|t| {
                        let w = Withheld {
                            status: "unpinned",
                            reason: reason.clone(),
                        };
                        self.note_withheld(&t, &w);
                        (t.name, w)
                    })
                    .collect();
                return Arc::new(Review { withheld });
            }
        };
        // A server seen for the very first time is logged; a tool that appears later on a
        // server already pinned is a change, and audited.
        let known = !pins.is_empty();
        let comparison = compare(&pins, listed);
        let mut withheld = HashMap::new();
        let mut first_sight = Vec::new();
        for compared in comparison.tools {
            match (&compared.status, self.mode) {
                (Status::Unchanged, _) => {}
                (Status::New, DefinitionMode::Tofu) => first_sight.push(compared.tool),
                (status, _) => {
                    let w = Withheld {
                        status: status.as_str(),
                        reason: reason(&self.server, status, &compared.tool),
                    };
                    self.note_withheld(&compared.tool, &w);
                    withheld.insert(compared.tool.name, w);
                }
            }
        }
        for (tool, why) in self.pin_first_sight(first_sight, known).await {
            let w = Withheld {
                status: "unpinned",
                reason: format!(
                    "it is new and could not be pinned ({why}); run `portcullis trust {}` to review and pin it",
                    &*self.server
                ),
            };
            self.note_withheld(&tool, &w);
            withheld.insert(tool.name, w);
        }
        Arc::new(Review { withheld })
    }

    /// The review of a whole list the gateway keeps, made once per list.
    pub async fn review_listing(&self, listing: &Listing) -> Arc<Review> {
        if let Some(review) = listing.definitions_review() {
            return review;
        }
        let review = self.review(&listing.items).await;
        listing.set_definitions_review(review.clone());
        review
    }

    /// Why a call of tool `name` (listed in `listing`) must be refused, if it must. A tool
    /// the list's review withheld is looked at again with the pins as they are now (a
    /// person may have accepted it since).
    pub async fn check_call(&self, listing: &Listing, name: &str) -> Option<Withheld> {
        self.review_listing(listing).await.withheld(name)?;
        let fresh = self.review(&listing.items).await;
        listing.set_definitions_review(fresh.clone());
        fresh.withheld(name).cloned()
    }

    /// Checks the server's `instructions` (at each session's start) against their pin:
    /// pinned on first sight under `tofu`; when they differ from the pin (or, under
    /// `strict`, were never accepted) clients are not told them, and that is audited.
    pub async fn check_instructions(&self, text: Option<&str>) {
        let Some(text) = text else {
            return;
        };
        let fp = fingerprint::of_instructions(text);
        let shown = match self.read_pins().await {
            Err(why) => {
                self.note_instructions(
                    "withheld",
                    &fp,
                    format!("the definition pins cannot be read ({why})"),
                );
                false
            }
            Ok(pins) => match pins.iter().find(|p| p.kind == DefinitionKind::Instructions) {
                // (`pins` is empty on the server's very first sight: then only logged.)
                Some(pin) if pin.fingerprint == fp => true,
                Some(pin) => {
                    self.note_instructions(
                        "withheld",
                        &fp,
                        format!(
                            "the server's instructions changed since they were pinned ({} was pinned, {} is sent now); clients are not told them; run `portcullis trust {}` to review the difference and accept it",
                            short(&pin.fingerprint),
                            short(&fp),
                            &*self.server
                        ),
                    );
                    false
                }
                None if self.mode == DefinitionMode::Tofu => {
                    let pin = instructions_pin(&self.identity, text, FIRST_SIGHT, now_ms());
                    match self.write_pins(vec![pin]).await {
                        Ok(()) => {
                            tracing::info!(server = %self.server, fingerprint = %fp, "server instructions pinned on first sight");
                            if !pins.is_empty() {
                                self.note_instructions(
                                    "pinned",
                                    &fp,
                                    format!("instructions pinned on first sight: {fp}"),
                                );
                            }
                            true
                        }
                        Err(why) => {
                            self.note_instructions(
                                "withheld",
                                &fp,
                                format!("the instructions could not be pinned ({why})"),
                            );
                            false
                        }
                    }
                }
                None => {
                    self.note_instructions(
                        "withheld",
                        &fp,
                        format!(
                            "the server's instructions were never accepted, and definitions = \"strict\" withholds them until a person does; run `portcullis trust {}`",
                            &*self.server
                        ),
                    );
                    false
                }
            },
        };
        let mut known = lock(&self.instructions);
        if known.len() >= MAX_INSTRUCTIONS {
            known.clear();
        }
        known.insert(fp, shown);
    }

    /// Whether clients may be told `text` as the server's instructions: only when
    /// [`check_instructions`](DefinitionGuard::check_instructions) found it pinned.
    pub fn instructions_shown(&self, text: &str) -> bool {
        lock(&self.instructions)
            .get(&fingerprint::of_instructions(text))
            .copied()
            .unwrap_or(false)
    }

    /// The pins of this server, read off the async threads.
    async fn read_pins(&self) -> Result<Vec<DefinitionPin>, String> {
        let (store, identity) = (self.store.clone(), self.identity.clone());
        tokio::task::spawn_blocking(move || store.definition_pins(&identity))
            .await
            .map_err(|e| format!("the read failed: {e}"))?
            .map_err(|e| e.to_string())
    }

    async fn write_pins(&self, pins: Vec<DefinitionPin>) -> Result<(), String> {
        let (store, identity) = (self.store.clone(), self.identity.clone());
        tokio::task::spawn_blocking(move || store.update_definition_pins(&identity, &pins, &[]))
            .await
            .map_err(|e| format!("the write failed: {e}"))?
            .map_err(|e| e.to_string())
    }

    /// Pins `tools` as seen for the first time (each audited when `audited`: the server had
    /// pins before); returns those that could not be pinned, with why.
    async fn pin_first_sight(
        &self,
        tools: Vec<ToolFingerprint>,
        audited: bool,
    ) -> Vec<(ToolFingerprint, String)> {
        if tools.is_empty() {
            return Vec::new();
        }
        let at = now_ms();
        let (fitting, too_large): (Vec<_>, Vec<_>) = tools
            .into_iter()
            .map(|t| (tool_pin(&self.identity, &t, FIRST_SIGHT, at), t))
            .partition(|(pin, _)| fits(pin));
        let mut failed: Vec<(ToolFingerprint, String)> = too_large
            .into_iter()
            .map(|(_, t)| (t, "its definition is larger than a pin may be".to_owned()))
            .collect();
        let (pins, tools): (Vec<DefinitionPin>, Vec<ToolFingerprint>) = fitting.into_iter().unzip();
        match self.write_pins(pins).await {
            Ok(()) if audited => {
                for tool in &tools {
                    tracing::info!(server = %self.server, tool = %tool.name, fingerprint = %tool.full, "new tool definition pinned on first sight");
                    self.note(
                        "pinned",
                        &tool.name,
                        format!("a new tool, pinned on first sight: {}", tool.full),
                    );
                }
            }
            Ok(()) => {
                tracing::info!(server = %self.server, identity = %super::shown_identity(&self.identity), tools = tools.len(), "the server's tool definitions pinned on first sight");
            }
            Err(why) => failed.extend(tools.into_iter().map(|t| (t, why.clone()))),
        }
        failed
    }

    /// Logs and audits a withheld tool, once per definition.
    fn note_withheld(&self, tool: &ToolFingerprint, withheld: &Withheld) {
        let key = format!("{}\n{}\n{}", withheld.status, tool.name, tool.full);
        if !self.first_time(key) {
            return;
        }
        tracing::warn!(server = %self.server, tool = %tool.name, status = withheld.status, reason = %withheld.reason, "tool withheld: its definition is not the one pinned");
        self.note(
            "withheld",
            &tool.name,
            format!("{} ({})", withheld.reason, tool.full),
        );
    }

    fn note_instructions(&self, decision: &str, fp: &str, reason: String) {
        if decision == "withheld" {
            if !self.first_time(format!("instructions\n{fp}")) {
                return;
            }
            tracing::warn!(server = %self.server, reason = %reason, "server instructions withheld");
        }
        self.note(decision, "instructions", reason);
    }

    /// Whether `key` was not audited yet (and is now).
    fn first_time(&self, key: String) -> bool {
        let mut audited = lock(&self.audited);
        if audited.len() >= MAX_AUDITED {
            audited.clear();
        }
        audited.insert(key)
    }

    fn note(&self, decision: &str, name: &str, reason: String) {
        let ctx = Context {
            principal: "gateway".to_owned(),
            session: String::new(),
            transport: self.transport,
        };
        self.audit.note(
            &ctx,
            Entry {
                event: "definition",
                server: &self.server,
                name,
                decision,
                reason,
                ..Entry::default()
            },
        );
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}
