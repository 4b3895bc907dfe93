//! The catalog of MCP methods, 2024-11-05 … 2026-07-28.
//!
//! Read from the specification schemas (modelcontextprotocol/modelcontextprotocol):
//! `schema/2024-11-05/schema.ts`, `schema/2025-03-26/schema.ts`, `schema/2025-06-18/schema.ts`,
//! `schema/2025-11-25/schema.ts` and `schema/2026-07-28/schema.ts` (the `ClientRequest`,
//! `ClientNotification`, `ServerRequest` and `ServerNotification` unions), together with
//! `docs/specification/2026-07-28/changelog.mdx`.
//!
//! Notes on the newest versions:
//! - 2025-11-25 adds the experimental tasks methods (`tasks/get`, `tasks/result`,
//!   `tasks/list`, `tasks/cancel`, `notifications/tasks/status`; both directions) and
//!   `notifications/elicitation/complete`.
//! - 2026-07-28 removes `initialize`, `notifications/initialized`, `ping`,
//!   `logging/setLevel`, `resources/subscribe`/`unsubscribe`, `notifications/roots/list_changed`,
//!   `notifications/elicitation/complete`, and moves tasks into an extension
//!   (`io.modelcontextprotocol/tasks`, not part of the core schema). It adds `server/discover`,
//!   `subscriptions/listen` and `notifications/subscriptions/acknowledged`.
//! - In 2026-07-28, `sampling/createMessage`, `roots/list` and `elicitation/create` are no
//!   longer JSON-RPC requests: they appear only as entries of `inputRequests` inside an
//!   `input_required` result (multi round-trip requests). Their `until` is therefore
//!   2025-11-25; see [`is_input_request_method`].

use crate::ProtocolVersion;
use crate::ProtocolVersion::{V2024_11_05, V2025_06_18, V2025_11_25, V2026_07_28};

/// Who may send a method. For the few methods whose direction changed between versions this
/// is the union (`notifications/progress` is client→server too before 2026-07-28).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Sent by clients to servers.
    ClientToServer,
    /// Sent by servers to clients.
    ServerToClient,
    /// Sent by either side.
    Both,
}

impl Direction {
    /// A client may send it.
    pub fn from_client(self) -> bool {
        matches!(self, Direction::ClientToServer | Direction::Both)
    }

    /// A server may send it.
    pub fn from_server(self) -> bool {
        matches!(self, Direction::ServerToClient | Direction::Both)
    }
}

/// Whether a method is a request (answered) or a notification (not answered).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum MessageKind {
    /// Carries an id and expects a response.
    Request,
    /// No id, no response.
    Notification,
}

/// The list a `*/list` method returns.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum ListKind {
    /// `tools/list`.
    Tools,
    /// `prompts/list`.
    Prompts,
    /// `resources/list`.
    Resources,
    /// `resources/templates/list`.
    ResourceTemplates,
}

/// What policy looks at in a method's params.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum Target {
    /// Nothing beyond the method name.
    None,
    /// `params.name` of `tools/call`.
    ToolName,
    /// `params.name` of `prompts/get`.
    PromptName,
    /// `params.uri` of `resources/read`, `resources/subscribe`, `resources/unsubscribe`, and of
    /// the server's `notifications/resources/updated` (which a client should only get for
    /// resources it may read).
    ResourceUri,
    /// `params.ref` of `completion/complete` (a prompt or resource-template reference).
    CompletionRef,
    /// The result is a list that policy filters.
    List(ListKind),
}

impl Target {
    /// The member of `params` that holds the target, if any (`"name"`, `"uri"`, `"ref"`).
    /// For `tools/call`, `prompts/get` and `resources/read` this is also the body value the
    /// 2026-07-28 `Mcp-Name` header must match.
    pub fn param(self) -> Option<&'static str> {
        match self {
            Target::ToolName | Target::PromptName => Some("name"),
            Target::ResourceUri => Some("uri"),
            Target::CompletionRef => Some("ref"),
            Target::None | Target::List(_) => None,
        }
    }
}

/// One MCP method.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct MethodSpec {
    /// The method name, e.g. `tools/call`.
    pub name: &'static str,
    /// Who sends it.
    pub direction: Direction,
    /// Request or notification.
    pub kind: MessageKind,
    /// The first version that has it.
    pub since: ProtocolVersion,
    /// The last version that has it; `None` while it is still current.
    pub until: Option<ProtocolVersion>,
    /// What policy looks at.
    pub target: Target,
}

impl MethodSpec {
    /// The method exists in `version`.
    pub fn available_in(&self, version: ProtocolVersion) -> bool {
        self.since <= version && self.until.is_none_or(|u| version <= u)
    }
}

const fn spec(
    name: &'static str,
    direction: Direction,
    kind: MessageKind,
    since: ProtocolVersion,
    until: Option<ProtocolVersion>,
    target: Target,
) -> MethodSpec {
    MethodSpec {
        name,
        direction,
        kind,
        since,
        until,
        target,
    }
}

use Direction::{Both, ClientToServer as C2S, ServerToClient as S2C};
use MessageKind::{Notification as N, Request as R};

const UP_TO_2025_11_25: Option<ProtocolVersion> = Some(V2025_11_25);

/// Every method, sorted by name (checked by a test) for binary search.
#[rustfmt::skip]
static METHODS: [MethodSpec; 34] = [
    spec("completion/complete", C2S, R, V2024_11_05, None, Target::CompletionRef),
    spec("elicitation/create", S2C, R, V2025_06_18, UP_TO_2025_11_25, Target::None),
    spec("initialize", C2S, R, V2024_11_05, UP_TO_2025_11_25, Target::None),
    spec("logging/setLevel", C2S, R, V2024_11_05, UP_TO_2025_11_25, Target::None),
    spec("notifications/cancelled", Both, N, V2024_11_05, None, Target::None),
    spec("notifications/elicitation/complete", S2C, N, V2025_11_25, UP_TO_2025_11_25, Target::None),
    spec("notifications/initialized", C2S, N, V2024_11_05, UP_TO_2025_11_25, Target::None),
    spec("notifications/message", S2C, N, V2024_11_05, None, Target::None),
    spec("notifications/progress", Both, N, V2024_11_05, None, Target::None),
    spec("notifications/prompts/list_changed", S2C, N, V2024_11_05, None, Target::None),
    spec("notifications/resources/list_changed", S2C, N, V2024_11_05, None, Target::None),
    spec("notifications/resources/updated", S2C, N, V2024_11_05, None, Target::ResourceUri),
    spec("notifications/roots/list_changed", C2S, N, V2024_11_05, UP_TO_2025_11_25, Target::None),
    spec("notifications/subscriptions/acknowledged", S2C, N, V2026_07_28, None, Target::None),
    spec("notifications/tasks/status", Both, N, V2025_11_25, UP_TO_2025_11_25, Target::None),
    spec("notifications/tools/list_changed", S2C, N, V2024_11_05, None, Target::None),
    spec("ping", Both, R, V2024_11_05, UP_TO_2025_11_25, Target::None),
    spec("prompts/get", C2S, R, V2024_11_05, None, Target::PromptName),
    spec("prompts/list", C2S, R, V2024_11_05, None, Target::List(ListKind::Prompts)),
    spec("resources/list", C2S, R, V2024_11_05, None, Target::List(ListKind::Resources)),
    spec("resources/read", C2S, R, V2024_11_05, None, Target::ResourceUri),
    spec("resources/subscribe", C2S, R, V2024_11_05, UP_TO_2025_11_25, Target::ResourceUri),
    spec("resources/templates/list", C2S, R, V2024_11_05, None, Target::List(ListKind::ResourceTemplates)),
    spec("resources/unsubscribe", C2S, R, V2024_11_05, UP_TO_2025_11_25, Target::ResourceUri),
    spec("roots/list", S2C, R, V2024_11_05, UP_TO_2025_11_25, Target::None),
    spec("sampling/createMessage", S2C, R, V2024_11_05, UP_TO_2025_11_25, Target::None),
    spec("server/discover", C2S, R, V2026_07_28, None, Target::None),
    // Its params may list `notifications.resourceSubscriptions` (resource URIs): policy
    // should check those like `resources/subscribe`.
    spec("subscriptions/listen", C2S, R, V2026_07_28, None, Target::None),
    spec("tasks/cancel", Both, R, V2025_11_25, UP_TO_2025_11_25, Target::None),
    spec("tasks/get", Both, R, V2025_11_25, UP_TO_2025_11_25, Target::None),
    spec("tasks/list", Both, R, V2025_11_25, UP_TO_2025_11_25, Target::None),
    spec("tasks/result", Both, R, V2025_11_25, UP_TO_2025_11_25, Target::None),
    spec("tools/call", C2S, R, V2024_11_05, None, Target::ToolName),
    spec("tools/list", C2S, R, V2024_11_05, None, Target::List(ListKind::Tools)),
];

/// Every known method, sorted by name.
pub fn all() -> &'static [MethodSpec] {
    &METHODS
}

/// The method called `name`, in any version.
pub fn lookup(name: &str) -> Option<&'static MethodSpec> {
    METHODS
        .binary_search_by(|m| m.name.cmp(name))
        .ok()
        .and_then(|i| METHODS.get(i))
}

/// The method called `name` if it exists in `version`.
pub fn lookup_in(name: &str, version: ProtocolVersion) -> Option<&'static MethodSpec> {
    lookup(name).filter(|m| m.available_in(version))
}

/// `notifications/{tools,prompts,resources,roots}/list_changed`.
pub fn is_list_changed_notification(name: &str) -> bool {
    matches!(
        name,
        "notifications/tools/list_changed"
            | "notifications/prompts/list_changed"
            | "notifications/resources/list_changed"
            | "notifications/roots/list_changed"
    )
}

/// The list a `notifications/*/list_changed` invalidates (`None` for roots and others).
pub fn list_changed_kind(name: &str) -> Option<ListKind> {
    match name {
        "notifications/tools/list_changed" => Some(ListKind::Tools),
        "notifications/prompts/list_changed" => Some(ListKind::Prompts),
        "notifications/resources/list_changed" => Some(ListKind::Resources),
        _ => None,
    }
}

/// A method a 2026-07-28 server may ask the client for inside an `input_required` result
/// (`inputRequests`), rather than as a server→client JSON-RPC request.
pub fn is_input_request_method(name: &str) -> bool {
    matches!(
        name,
        "sampling/createMessage" | "roots/list" | "elicitation/create"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_sorted_and_unique_so_binary_search_finds_every_method() {
        for pair in METHODS.windows(2) {
            assert!(
                pair[0].name < pair[1].name,
                "{} / {}",
                pair[0].name,
                pair[1].name
            );
        }
        for m in &METHODS {
            assert_eq!(lookup(m.name), Some(m));
        }
        assert_eq!(lookup("tools/cal"), None);
        assert_eq!(lookup(""), None);
    }

    #[test]
    fn notifications_are_named_notifications_and_requests_are_not() {
        for m in &METHODS {
            assert_eq!(
                m.kind == MessageKind::Notification,
                m.name.starts_with("notifications/"),
                "{}",
                m.name
            );
            assert!(m.until.is_none_or(|u| m.since <= u), "{}", m.name);
        }
    }
}
