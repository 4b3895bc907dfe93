//! What a request becomes before it leaves for the upstream.
//!
//! Forwarded params stay as the client wrote them, except where the upstream's side of the
//! protocol needs otherwise: a progress token rewritten on a shared connection (two sessions
//! may both pick `1`); the 2026-07-28 per-request envelope set to the gateway's own (a
//! stateless upstream) or removed (a stateful one, where it would contradict the version the
//! session negotiated); and the headers that mirror the body for a stateless HTTP upstream.

use serde_json::value::RawValue;
use serde_json::{Map, Value};

use super::{Era, UpstreamConn, UpstreamError};
use crate::mcp as methods;

/// Headers of the 2026-07-28 protocol that mirror a request's body (HTTP upstreams only).
#[derive(Debug, Default)]
pub(crate) struct Routing {
    pub name: Option<String>,
    pub params: Vec<(String, String)>,
}

impl UpstreamConn {
    /// The 2026-07-28 headers that mirror a request's body: `Mcp-Name`, and `Mcp-Param-*`
    /// for the arguments the tool's schema (from the cached list) marks with `x-mcp-header`.
    pub(super) fn routing(&self, method: &str, params: Option<&RawValue>) -> Routing {
        let name = standard_name(method, params);
        let mut routing = Routing {
            name: name.clone(),
            params: Vec::new(),
        };
        if method == methods::TOOLS_CALL
            && let Some(name) = name
            && let Some(tools) = self
                .catalog
                .cached(crate::upstream::catalog::ListKind::Tools)
            && let Some(tool) = tools.get(&name)
            && let Ok(tool) = serde_json::from_str::<Value>(tool.get())
        {
            let arguments = params
                .and_then(|p| serde_json::from_str::<Value>(p.get()).ok())
                .and_then(|p| p.get("arguments").cloned());
            let schema = tool.get("inputSchema").cloned().unwrap_or_default();
            routing.params = crate::standard_headers::params_for(&schema, arguments.as_ref());
        }
        routing
    }

    /// Rewrites what must be rewritten before a request leaves: the progress token on a
    /// shared connection (two sessions may both use token `1`), and the per-request `_meta`
    /// of the 2026-07-28 protocol. Everything else is forwarded as the caller sent it.
    #[allow(clippy::type_complexity)]
    pub(super) fn prepare_params(
        &self,
        id: u64,
        method: &str,
        params: Option<Box<RawValue>>,
    ) -> Result<(Option<Box<RawValue>>, Option<(String, Option<Value>)>), UpstreamError> {
        let token = params.as_deref().and_then(progress_token);
        let mut params = params;
        let mut progress = None;
        if let Some(token) = token {
            if self.shared {
                let ours = Value::String(format!("portcullis-{id}"));
                params = Some(self.edit_params(params, |obj| {
                    meta_mut(obj).insert("progressToken".into(), ours.clone());
                })?);
                progress = Some((ours.to_string(), Some(token)));
            } else {
                progress = Some((token.to_string(), None));
            }
        }
        if self.era() == Era::Modern {
            if method != methods::SERVER_DISCOVER {
                params = self.with_modern_meta(params)?;
            }
        } else if self.identity.get().is_some()
            && params
                .as_deref()
                .is_some_and(|p| crate::json::may_mention(p.get(), "io.modelcontextprotocol/"))
        {
            // A 2026-07-28 client's per-request envelope means nothing in a stateful upstream
            // session, and would contradict the version that session negotiated.
            params = Some(self.edit_params(params, |obj| {
                if let Some(Value::Object(meta)) = obj.get_mut("_meta") {
                    for key in methods::ENVELOPE_META_KEYS {
                        meta.remove(key);
                    }
                }
            })?);
        }
        Ok((params, progress))
    }

    pub(super) fn with_modern_meta(
        &self,
        params: Option<Box<RawValue>>,
    ) -> Result<Option<Box<RawValue>>, UpstreamError> {
        let Some(identity) = self.identity.get() else {
            return Ok(params);
        };
        let meta = identity.request_meta.clone();
        Ok(Some(self.edit_params(params, |obj| {
            let m = meta_mut(obj);
            for (k, v) in &meta {
                // What the client itself declared for this request (its capabilities, its
                // log level) still holds: a stateless upstream must not ask it for input
                // it cannot give. The version and the client identity are the gateway's.
                let client_owned =
                    k == methods::META_CLIENT_CAPABILITIES || k == methods::META_LOG_LEVEL;
                if !(client_owned && m.contains_key(k)) {
                    m.insert(k.clone(), v.clone());
                }
            }
        })?))
    }

    pub(super) fn edit_params(
        &self,
        params: Option<Box<RawValue>>,
        edit: impl FnOnce(&mut Map<String, Value>),
    ) -> Result<Box<RawValue>, UpstreamError> {
        let mut obj: Map<String, Value> = match params {
            Some(raw) => serde_json::from_str(raw.get()).map_err(|e| UpstreamError::Protocol {
                server: self.server.to_string(),
                reason: format!("request params are not an object: {e}"),
            })?,
            None => Map::new(),
        };
        edit(&mut obj);
        let text = serde_json::to_string(&obj).map_err(|e| UpstreamError::Protocol {
            server: self.server.to_string(),
            reason: e.to_string(),
        })?;
        RawValue::from_string(text).map_err(|e| UpstreamError::Protocol {
            server: self.server.to_string(),
            reason: e.to_string(),
        })
    }
}

/// `params._meta.progressToken`, if the request asks for progress.
fn progress_token(params: &RawValue) -> Option<Value> {
    #[derive(serde::Deserialize)]
    struct Meta {
        #[serde(rename = "progressToken")]
        progress_token: Option<Value>,
    }
    #[derive(serde::Deserialize)]
    struct View {
        #[serde(rename = "_meta")]
        meta: Option<Meta>,
    }
    if !crate::json::may_mention(params.get(), "progressToken") {
        return None;
    }
    let view: View = serde_json::from_str(params.get()).ok()?;
    view.meta?
        .progress_token
        .filter(|t| t.is_string() || t.is_i64() || t.is_u64())
}

fn meta_mut(obj: &mut Map<String, Value>) -> &mut Map<String, Value> {
    let meta = obj
        .entry("_meta")
        .or_insert_with(|| Value::Object(Map::new()));
    if !meta.is_object() {
        *meta = Value::Object(Map::new());
    }
    match meta {
        Value::Object(m) => m,
        _ => unreachable!("replaced by an object above"),
    }
}

/// The value of the 2026-07-28 `Mcp-Name` header: the name or URI the request is about.
fn standard_name(method: &str, params: Option<&RawValue>) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct View {
        name: Option<String>,
        uri: Option<String>,
    }
    let key_is_name = matches!(method, methods::TOOLS_CALL | methods::PROMPTS_GET);
    let key_is_uri = matches!(method, methods::RESOURCES_READ);
    if !key_is_name && !key_is_uri {
        return None;
    }
    let view: View = serde_json::from_str(params?.get()).ok()?;
    if key_is_name { view.name } else { view.uri }
}
