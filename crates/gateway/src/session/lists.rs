//! List methods: the same policy that refuses a call hides the item from every list.
//!
//! For a single server the client's page request (cursor included) goes upstream and the
//! page comes back minus what the principal may not see; when nothing is hidden the result
//! is forwarded byte-for-byte. A virtual server collects every member's whole list, renames
//! the items (`<server>.<name>`, `<server>+<uri>`) and returns one page; a member that fails
//! is left out and logged, or fails the list, per `on_upstream_failure`.

use std::sync::Arc;

use portcullis_policy::Kind;
use portcullis_wire::{ErrorObject, Id, codes};
use serde_json::value::RawValue;

use super::Session;
use super::relay::Outcome;
use crate::config::FailureMode;
use crate::json::{RawObject, raw_array, to_raw_array};
use crate::mcp;
use crate::upstream::Reply;
use crate::upstream::catalog::{self, ListKind, Listing, item_name};
use crate::upstream::definitions::Review;

pub(super) fn policy_kind(kind: ListKind) -> Kind {
    match kind {
        ListKind::Tools => Kind::Tool,
        ListKind::Prompts => Kind::Prompt,
        ListKind::Resources | ListKind::ResourceTemplates => Kind::Resource,
    }
}

/// The server capability that announces a list.
pub(super) fn capability(kind: ListKind) -> &'static str {
    match kind {
        ListKind::Tools => "tools",
        ListKind::Prompts => "prompts",
        ListKind::Resources | ListKind::ResourceTemplates => "resources",
    }
}

fn empty_list(kind: ListKind) -> Box<RawValue> {
    mcp::raw(&serde_json::json!({ kind.items_key(): [] }))
}

/// A tool item's `annotations`, when it has an object there.
fn tool_annotations(item: &RawValue) -> Option<serde_json::Value> {
    let obj = RawObject::parse(item).ok()?;
    let raw = obj.get("annotations")?;
    serde_json::from_str::<serde_json::Value>(raw.get())
        .ok()
        .filter(serde_json::Value::is_object)
}

/// Whether the definitions review of a tools list withholds `name`.
fn withheld(review: Option<&Review>, name: &str) -> bool {
    review.is_some_and(|r| r.withheld(name).is_some())
}

fn has_cursor(params: Option<&RawValue>) -> bool {
    params
        .and_then(|p| RawObject::parse(p).ok())
        .is_some_and(|o| o.get("cursor").is_some())
}

impl Session {
    pub(super) async fn list(
        self: &Arc<Self>,
        id: &Id,
        kind: ListKind,
        params: Option<Box<RawValue>>,
    ) -> Outcome {
        if self.route.is_virtual() {
            self.list_virtual(kind, params).await
        } else {
            self.list_single(id, kind, params).await
        }
    }

    /// Whether the principal may see `item` (named `name`) of `server`'s list, and the
    /// description scan does not withhold it. A tool's annotations are read when a rule's
    /// condition looks at them.
    fn visible(&self, server: &str, kind: ListKind, name: &str, item: &RawValue) -> bool {
        let policy = self.gateway.policy();
        let annotations = (kind == ListKind::Tools && policy.reads_annotations())
            .then(|| tool_annotations(item))
            .flatten();
        policy.visible(
            &self.caller(),
            server,
            policy_kind(kind),
            name,
            annotations.as_ref(),
        ) && !self.scan_withholds(server, kind, name, item)
    }

    async fn list_single(
        self: &Arc<Self>,
        id: &Id,
        kind: ListKind,
        params: Option<Box<RawValue>>,
    ) -> Outcome {
        let server = self.route.members[0].clone();
        if !self
            .gateway
            .policy()
            .may_expose(&self.caller(), &server, policy_kind(kind))
        {
            return Outcome::Reply(Reply::Result(empty_list(kind)));
        }
        let conn = match self.conn(&server).await {
            Ok(c) => c,
            Err(e) => return e.into(),
        };
        if !conn
            .identity()
            .is_some_and(|i| i.has_capability(capability(kind)))
        {
            return ErrorObject::new(
                codes::METHOD_NOT_FOUND,
                format!("Method not found: {}", kind.method()),
            )
            .into();
        }
        let whole_list_asked = !has_cursor(params.as_deref());
        let result = match self.forward(id, &conn, kind.method(), params).await {
            Outcome::Reply(Reply::Result(r)) => r,
            other => return other,
        };
        let Ok(mut page) = RawObject::parse(&result) else {
            return Outcome::Reply(Reply::Result(result));
        };
        let Some(Ok(items)) = page.get(kind.items_key()).map(raw_array) else {
            return Outcome::Reply(Reply::Result(result));
        };
        let names: Vec<Option<String>> = items.iter().map(|it| item_name(kind, it)).collect();
        // Tools whose definitions are not the pinned ones are withheld (rug pulls).
        let review = match self.gateway.definitions(&server) {
            Some(guard) if kind == ListKind::Tools => Some(guard.review(&items).await),
            _ => None,
        };
        let keep: Vec<bool> = names
            .iter()
            .zip(&items)
            .map(|(n, item)| {
                n.as_deref().is_some_and(|n| {
                    self.visible(&server, kind, n, item) && !withheld(review.as_deref(), n)
                })
            })
            .collect();
        let hidden = keep.iter().filter(|k| !**k).count();
        if hidden > 0 {
            tracing::debug!(session = %self.id, server = %server, list = kind.method(), hidden, "list filtered by policy");
        }
        let complete = whole_list_asked && page.get("nextCursor").is_none();
        let all_kept = hidden == 0;
        let filtered: Vec<Box<RawValue>> = if all_kept {
            Vec::new()
        } else {
            items
                .iter()
                .zip(&keep)
                .filter(|(_, k)| **k)
                .map(|(it, _)| it.clone())
                .collect()
        };
        if complete {
            let listing = Listing::new(kind, items);
            if let Some(review) = review {
                listing.set_definitions_review(review);
            }
            conn.catalog().store(kind, Arc::new(listing));
        }
        if all_kept {
            return Outcome::Reply(Reply::Result(result));
        }
        page.set(kind.items_key(), to_raw_array(&filtered));
        Outcome::Reply(Reply::Result(page.to_raw()))
    }

    async fn list_virtual(
        self: &Arc<Self>,
        kind: ListKind,
        params: Option<Box<RawValue>>,
    ) -> Outcome {
        if has_cursor(params.as_deref()) {
            // A virtual server returns every list in one page and never hands out a cursor.
            return ErrorObject::new(codes::INVALID_PARAMS, "invalid cursor").into();
        }
        let fetches = self.members.iter().map(|m| async move {
            if !self
                .gateway
                .policy()
                .may_expose(&self.caller(), &m.server, policy_kind(kind))
            {
                return Ok(None);
            }
            let conn = m.slot.get().await.map_err(|e| e.to_string())?;
            if !conn
                .identity()
                .is_some_and(|i| i.has_capability(capability(kind)))
            {
                return Ok(None);
            }
            let listing = catalog::fetch_all(&conn, kind)
                .await
                .map_err(|e| e.to_string())?;
            let listing = Arc::new(listing);
            if let Some(guard) = self.gateway.definitions(&m.server)
                && kind == ListKind::Tools
            {
                guard.review_listing(&listing).await;
            }
            conn.catalog().store(kind, listing.clone());
            Ok::<_, String>(Some(listing))
        });
        let results = futures::future::join_all(fetches).await;
        let mut out = Vec::new();
        for (member, result) in self.members.iter().zip(results) {
            let listing = match result {
                Ok(Some(l)) => l,
                Ok(None) => continue,
                Err(reason) => match self.route.virtual_mode {
                    Some(FailureMode::Fail) => {
                        return ErrorObject::new(
                            codes::UPSTREAM_UNAVAILABLE,
                            format!("upstream {:?} failed: {reason}", member.server),
                        )
                        .into();
                    }
                    _ => {
                        tracing::warn!(session = %self.id, route = %self.route.name, server = %member.server, reason, "upstream left out of the list");
                        continue;
                    }
                },
            };
            let review = listing.definitions_review();
            for item in &listing.items {
                let Some(name) = item_name(kind, item) else {
                    continue;
                };
                if !self.visible(&member.server, kind, &name, item)
                    || withheld(review.as_deref(), &name)
                {
                    continue;
                }
                let Ok(mut obj) = RawObject::parse(item) else {
                    continue;
                };
                let shown = match kind {
                    ListKind::Tools | ListKind::Prompts => {
                        self.route.expose_name(&member.server, &name)
                    }
                    ListKind::Resources | ListKind::ResourceTemplates => {
                        self.route.expose_uri(&member.server, &name)
                    }
                };
                obj.set_str(kind.name_key(), &shown);
                out.push(obj.to_raw());
            }
        }
        let mut page = RawObject::default();
        page.set(kind.items_key(), to_raw_array(&out));
        Outcome::Reply(Reply::Result(page.to_raw()))
    }
}
