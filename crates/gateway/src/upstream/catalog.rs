//! What an upstream lists: its tools and prompts, cached per connection.
//!
//! The gateway answers a call for a tool it does not know, or may not show, itself — with
//! one error for both — so a caller cannot tell a hidden tool from a missing one. To know,
//! it keeps the upstream's full list, fetched on first need, refreshed whenever a client
//! lists, and dropped when the upstream says `notifications/*/list_changed`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use portcullis_guard::{CompiledSchema, ResourceIndex, SchemaCache, SchemaError};
use serde_json::Value;
use serde_json::value::RawValue;

use super::{Reply, UpstreamConn, UpstreamError};
use crate::json::{RawObject, raw_array};

/// Most pages the gateway follows when it collects a whole list.
pub const MAX_PAGES: usize = 100;
/// Most items it keeps from one list.
pub const MAX_ITEMS: usize = 10_000;

/// The kinds of list an upstream serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ListKind {
    Tools,
    Prompts,
    Resources,
    ResourceTemplates,
}

impl ListKind {
    pub fn method(self) -> &'static str {
        match self {
            ListKind::Tools => crate::mcp::TOOLS_LIST,
            ListKind::Prompts => crate::mcp::PROMPTS_LIST,
            ListKind::Resources => crate::mcp::RESOURCES_LIST,
            ListKind::ResourceTemplates => crate::mcp::RESOURCES_TEMPLATES_LIST,
        }
    }

    /// The member of the result that holds the items.
    pub fn items_key(self) -> &'static str {
        match self {
            ListKind::Tools => "tools",
            ListKind::Prompts => "prompts",
            ListKind::Resources => "resources",
            ListKind::ResourceTemplates => "resourceTemplates",
        }
    }

    /// The member of an item that names it.
    pub fn name_key(self) -> &'static str {
        match self {
            ListKind::Tools | ListKind::Prompts => "name",
            ListKind::Resources => "uri",
            ListKind::ResourceTemplates => "uriTemplate",
        }
    }

    /// The list a `notifications/*/list_changed` notification is about.
    pub fn changed_by(notification: &str) -> Option<Self> {
        Some(match notification {
            crate::mcp::NOTIFICATION_TOOLS_LIST_CHANGED => ListKind::Tools,
            crate::mcp::NOTIFICATION_PROMPTS_LIST_CHANGED => ListKind::Prompts,
            crate::mcp::NOTIFICATION_RESOURCES_LIST_CHANGED => ListKind::Resources,
            _ => return None,
        })
    }

    pub fn from_method(method: &str) -> Option<Self> {
        Some(match method {
            crate::mcp::TOOLS_LIST => ListKind::Tools,
            crate::mcp::PROMPTS_LIST => ListKind::Prompts,
            crate::mcp::RESOURCES_LIST => ListKind::Resources,
            crate::mcp::RESOURCES_TEMPLATES_LIST => ListKind::ResourceTemplates,
            _ => return None,
        })
    }
}

/// A complete list, by name.
#[derive(Debug, Default)]
pub struct Listing {
    pub items: Vec<Box<RawValue>>,
    by_name: HashMap<String, usize>,
    /// Each item parsed, on first use: a call needs its tool's schema and annotations, and
    /// parsing (and compiling the schema) once per list, not once per call, keeps that cheap.
    parsed: Vec<OnceLock<Option<Arc<Definition>>>>,
    /// For a templates list: the matcher of its templates, built on first use.
    template_index: OnceLock<ResourceIndex>,
    /// For a tools list: what the definition pins said about it ([`super::definitions`]).
    definitions: Mutex<Option<Arc<super::definitions::Review>>>,
}

impl Listing {
    pub fn new(kind: ListKind, items: Vec<Box<RawValue>>) -> Self {
        let mut by_name = HashMap::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            if let Some(name) = item_name(kind, item) {
                by_name.entry(name).or_insert(i);
            }
        }
        let parsed = items.iter().map(|_| OnceLock::new()).collect();
        Listing {
            items,
            by_name,
            parsed,
            template_index: OnceLock::new(),
            definitions: Mutex::new(None),
        }
    }

    /// The definitions review of this tools list, once made.
    pub fn definitions_review(&self) -> Option<Arc<super::definitions::Review>> {
        self.definitions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub fn set_definitions_review(&self, review: Arc<super::definitions::Review>) {
        *self.definitions.lock().unwrap_or_else(|p| p.into_inner()) = Some(review);
    }

    pub fn contains(&self, name: &str) -> bool {
        self.by_name.contains_key(name)
    }

    pub fn get(&self, name: &str) -> Option<&RawValue> {
        self.by_name.get(name).map(|&i| &*self.items[i])
    }

    /// The item named `name`, parsed (`None` when it is not listed, or not a JSON object).
    pub fn definition(&self, name: &str) -> Option<Arc<Definition>> {
        let &i = self.by_name.get(name)?;
        self.parsed[i]
            .get_or_init(|| Definition::parse(&self.items[i]).map(Arc::new))
            .clone()
    }

    /// Whether `uri` fits one of this templates list's `uriTemplate`s.
    pub fn template_matches(&self, uri: &str) -> bool {
        self.template_index
            .get_or_init(|| {
                let templates = self
                    .items
                    .iter()
                    .filter_map(|i| item_name(ListKind::ResourceTemplates, i));
                ResourceIndex::new(std::iter::empty(), templates)
            })
            .allows(uri)
    }
}

/// One listed tool or prompt, parsed, with the tool's input schema compiled on first use.
#[derive(Debug)]
pub struct Definition {
    pub value: Value,
    schema: OnceLock<Result<Arc<CompiledSchema>, SchemaError>>,
}

impl Definition {
    fn parse(raw: &RawValue) -> Option<Definition> {
        let value: Value = serde_json::from_str(raw.get()).ok()?;
        value.is_object().then(|| Definition {
            value,
            schema: OnceLock::new(),
        })
    }

    /// The tool's `annotations`, when they are an object.
    pub fn annotations(&self) -> Option<&Value> {
        self.value.get("annotations").filter(|a| a.is_object())
    }

    /// The tool's `inputSchema`, compiled (through `cache`, shared by every connection, so
    /// the same schema is compiled once).
    pub fn input_schema(&self, cache: &SchemaCache) -> Result<Arc<CompiledSchema>, SchemaError> {
        self.schema
            .get_or_init(|| {
                static OBJECT: std::sync::LazyLock<Value> =
                    std::sync::LazyLock::new(|| serde_json::json!({ "type": "object" }));
                cache.compile(self.value.get("inputSchema").unwrap_or(&OBJECT))
            })
            .clone()
    }
}

/// The name (or URI) of one list item.
pub fn item_name(kind: ListKind, item: &RawValue) -> Option<String> {
    RawObject::parse(item).ok()?.get_str(kind.name_key())
}

/// The upstream's lists, each cached until the upstream says it changed.
#[derive(Default)]
pub struct Catalog {
    tools: Mutex<Option<Arc<Listing>>>,
    prompts: Mutex<Option<Arc<Listing>>>,
    resources: Mutex<Option<Arc<Listing>>>,
    templates: Mutex<Option<Arc<Listing>>>,
}

impl Catalog {
    fn slot(&self, kind: ListKind) -> &Mutex<Option<Arc<Listing>>> {
        match kind {
            ListKind::Tools => &self.tools,
            ListKind::Prompts => &self.prompts,
            ListKind::Resources => &self.resources,
            ListKind::ResourceTemplates => &self.templates,
        }
    }

    pub fn cached(&self, kind: ListKind) -> Option<Arc<Listing>> {
        self.slot(kind)
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub fn store(&self, kind: ListKind, listing: Arc<Listing>) {
        *self.slot(kind).lock().unwrap_or_else(|p| p.into_inner()) = Some(listing);
    }

    /// The upstream announced a change (`notifications/<kind>/list_changed`).
    pub fn invalidate(&self, kind: ListKind) {
        *self.slot(kind).lock().unwrap_or_else(|p| p.into_inner()) = None;
        if kind == ListKind::Resources {
            *self.templates.lock().unwrap_or_else(|p| p.into_inner()) = None;
        }
    }
}

/// The cached list, or the whole list fetched page by page (and cached for tools/prompts).
pub async fn listing(conn: &Arc<UpstreamConn>, kind: ListKind) -> Result<Arc<Listing>, ListError> {
    if let Some(cached) = conn.catalog().cached(kind) {
        return Ok(cached);
    }
    let listing = Arc::new(fetch_all(conn, kind).await?);
    conn.catalog().store(kind, listing.clone());
    Ok(listing)
}

/// Why a whole list could not be collected.
#[derive(Debug, thiserror::Error)]
pub enum ListError {
    #[error(transparent)]
    Upstream(#[from] UpstreamError),
    #[error("upstream {server:?} answered {method} with an error: {error}")]
    Refused {
        server: String,
        method: &'static str,
        error: String,
    },
    #[error("upstream {server:?} sent a malformed {method} result: {reason}")]
    Malformed {
        server: String,
        method: &'static str,
        reason: String,
    },
}

/// Follows `nextCursor` until the list is complete (bounded by [`MAX_PAGES`] and
/// [`MAX_ITEMS`]; beyond that the list is cut short and a warning logged).
pub async fn fetch_all(conn: &Arc<UpstreamConn>, kind: ListKind) -> Result<Listing, ListError> {
    let server = conn.server().to_owned();
    let method = kind.method();
    let mut items = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..MAX_PAGES {
        let params = cursor
            .as_ref()
            .map(|c| crate::mcp::raw(&serde_json::json!({ "cursor": c })));
        let result = match conn.request(method, params, None).await? {
            Reply::Result(r) => r,
            Reply::Error(e) => {
                return Err(ListError::Refused {
                    server,
                    method,
                    error: e.get().to_owned(),
                });
            }
        };
        let page = RawObject::parse(&result).map_err(|e| ListError::Malformed {
            server: server.clone(),
            method,
            reason: e.to_string(),
        })?;
        if let Some(list) = page.get(kind.items_key()) {
            let page_items = raw_array(list).map_err(|e| ListError::Malformed {
                server: server.clone(),
                method,
                reason: e.to_string(),
            })?;
            items.extend(page_items);
        }
        if items.len() > MAX_ITEMS {
            tracing::warn!(
                server,
                method,
                "list longer than {MAX_ITEMS} items; cut short"
            );
            items.truncate(MAX_ITEMS);
            break;
        }
        cursor = page.get_str("nextCursor");
        if cursor.is_none() {
            return Ok(Listing::new(kind, items));
        }
    }
    tracing::warn!(
        server,
        method,
        "list longer than {MAX_PAGES} pages; cut short"
    );
    Ok(Listing::new(kind, items))
}
