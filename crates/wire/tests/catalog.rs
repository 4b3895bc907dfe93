//! Protocol versions and the method catalog.

use portcullis_wire::method::{
    self, is_input_request_method, is_list_changed_notification, list_changed_kind, lookup,
    lookup_in,
};
use portcullis_wire::{Direction, ListKind, MessageKind, ProtocolVersion as V, Target};

#[test]
fn versions_parse_print_and_order_by_date() {
    for v in V::ALL {
        assert_eq!(V::parse(v.as_str()), Some(v));
        assert_eq!(v.to_string(), v.as_str());
        assert_eq!(v.as_str().parse::<V>(), Ok(v));
        assert_eq!(serde_json::to_string(&v).unwrap(), format!("\"{v}\""));
        assert_eq!(serde_json::from_str::<V>(&format!("\"{v}\"")).unwrap(), v);
    }
    assert!(V::ALL.windows(2).all(|w| w[0] < w[1]));
    assert_eq!(V::LATEST, V::V2026_07_28);
    assert_eq!(V::LATEST_WITH_INITIALIZE, V::V2025_11_25);
    assert_eq!(V::parse("2025-06-19"), None);
    assert_eq!(V::parse(""), None);
    assert!(serde_json::from_str::<V>("\"draft\"").is_err());
    assert!(serde_json::from_str::<V>("20250618").is_err());
}

#[test]
fn version_capabilities_match_the_specifications() {
    use V::*;
    let table = [
        // (version, initialize, batch, sessions, standard headers)
        (V2024_11_05, true, true, true, false),
        (V2025_03_26, true, true, true, false),
        (V2025_06_18, true, false, true, false),
        (V2025_11_25, true, false, true, false),
        (V2026_07_28, false, false, false, true),
    ];
    for (v, init, batch, sessions, headers) in table {
        assert_eq!(v.has_initialize(), init, "{v}");
        assert_eq!(v.allows_batch(), batch, "{v}");
        assert_eq!(v.has_sessions(), sessions, "{v}");
        assert_eq!(v.requires_standard_headers(), headers, "{v}");
    }
    assert!(!V2025_03_26.requires_protocol_version_header());
    assert!(V2025_06_18.requires_protocol_version_header());
    assert!(V2025_11_25.has_resumption() && !V2026_07_28.has_resumption());
}

#[test]
fn policy_targets_are_where_policy_looks() {
    let target = |name| lookup(name).unwrap().target;
    assert_eq!(target("tools/call"), Target::ToolName);
    assert_eq!(target("prompts/get"), Target::PromptName);
    assert_eq!(target("resources/read"), Target::ResourceUri);
    assert_eq!(target("resources/subscribe"), Target::ResourceUri);
    assert_eq!(target("resources/unsubscribe"), Target::ResourceUri);
    assert_eq!(target("completion/complete"), Target::CompletionRef);
    assert_eq!(target("tools/list"), Target::List(ListKind::Tools));
    assert_eq!(target("prompts/list"), Target::List(ListKind::Prompts));
    assert_eq!(target("resources/list"), Target::List(ListKind::Resources));
    assert_eq!(
        target("resources/templates/list"),
        Target::List(ListKind::ResourceTemplates)
    );
    assert_eq!(target("ping"), Target::None);
    assert_eq!(Target::ToolName.param(), Some("name"));
    assert_eq!(Target::ResourceUri.param(), Some("uri"));
    assert_eq!(Target::CompletionRef.param(), Some("ref"));
    assert_eq!(Target::List(ListKind::Tools).param(), None);
}

#[test]
fn method_sets_per_version_match_the_schemas() {
    let names = |v| -> Vec<&str> {
        method::all()
            .iter()
            .filter(|m| m.available_in(v))
            .map(|m| m.name)
            .collect()
    };
    let base = [
        "completion/complete",
        "initialize",
        "logging/setLevel",
        "notifications/cancelled",
        "notifications/initialized",
        "notifications/message",
        "notifications/progress",
        "notifications/prompts/list_changed",
        "notifications/resources/list_changed",
        "notifications/resources/updated",
        "notifications/roots/list_changed",
        "notifications/tools/list_changed",
        "ping",
        "prompts/get",
        "prompts/list",
        "resources/list",
        "resources/read",
        "resources/subscribe",
        "resources/templates/list",
        "resources/unsubscribe",
        "roots/list",
        "sampling/createMessage",
        "tools/call",
        "tools/list",
    ];
    assert_eq!(names(V::V2024_11_05), base);
    assert_eq!(names(V::V2025_03_26), base);
    let mut v0618 = base.to_vec();
    v0618.push("elicitation/create");
    v0618.sort_unstable();
    assert_eq!(names(V::V2025_06_18), v0618);
    let mut v1125 = v0618.clone();
    v1125.extend([
        "notifications/elicitation/complete",
        "notifications/tasks/status",
        "tasks/cancel",
        "tasks/get",
        "tasks/list",
        "tasks/result",
    ]);
    v1125.sort_unstable();
    assert_eq!(names(V::V2025_11_25), v1125);
    assert_eq!(
        names(V::V2026_07_28),
        [
            "completion/complete",
            "notifications/cancelled",
            "notifications/message",
            "notifications/progress",
            "notifications/prompts/list_changed",
            "notifications/resources/list_changed",
            "notifications/resources/updated",
            "notifications/subscriptions/acknowledged",
            "notifications/tools/list_changed",
            "prompts/get",
            "prompts/list",
            "resources/list",
            "resources/read",
            "resources/templates/list",
            "server/discover",
            "subscriptions/listen",
            "tools/call",
            "tools/list",
        ]
    );
}

#[test]
fn directions_and_kinds_follow_the_unions() {
    let m = |name| *lookup(name).unwrap();
    assert_eq!(m("tools/call").direction, Direction::ClientToServer);
    assert_eq!(
        m("sampling/createMessage").direction,
        Direction::ServerToClient
    );
    assert_eq!(m("ping").direction, Direction::Both);
    assert_eq!(m("tasks/get").direction, Direction::Both);
    assert_eq!(
        m("notifications/elicitation/complete").direction,
        Direction::ServerToClient
    );
    assert_eq!(
        m("notifications/roots/list_changed").direction,
        Direction::ClientToServer
    );
    assert_eq!(m("server/discover").kind, MessageKind::Request);
    assert_eq!(
        m("notifications/subscriptions/acknowledged").kind,
        MessageKind::Notification
    );
    assert!(Direction::Both.from_client() && Direction::Both.from_server());
    assert!(!Direction::ServerToClient.from_client());
    assert!(lookup_in("initialize", V::V2026_07_28).is_none());
    assert!(lookup_in("server/discover", V::V2025_11_25).is_none());
    assert!(lookup_in("server/discover", V::V2026_07_28).is_some());
    assert!(lookup("tools/unknown").is_none());
}

#[test]
fn list_changed_and_input_request_helpers() {
    assert!(is_list_changed_notification(
        "notifications/tools/list_changed"
    ));
    assert!(is_list_changed_notification(
        "notifications/roots/list_changed"
    ));
    assert!(!is_list_changed_notification(
        "notifications/resources/updated"
    ));
    assert_eq!(
        list_changed_kind("notifications/prompts/list_changed"),
        Some(ListKind::Prompts)
    );
    assert_eq!(list_changed_kind("notifications/roots/list_changed"), None);
    assert!(is_input_request_method("elicitation/create"));
    assert!(!is_input_request_method("tools/call"));
}
