//! The README's first command: the embedded quickstart serves the bundled fixture, and the
//! policy hides what no rule allows.

mod support;

use serde_json::json;
use support::{Gateway, RawHttp};

#[tokio::test]
async fn quickstart_lists_allowed_tools_and_hides_the_rest() {
    let config =
        std::fs::read_to_string(support::workspace_root().join("examples/quickstart.toml"))
            .unwrap();
    // Run the fixture through the test binary path rather than PATH lookup.
    let config = config.replace(
        r#"command = ["portcullis", "fixture", "stdio"]"#,
        &format!(
            r#"command = ["{}", "fixture", "stdio"]"#,
            support::portcullis_bin().display()
        ),
    );
    let gw = Gateway::start(&config);
    let mut c = RawHttp::new(&gw.url("demo"));
    c.initialize(json!({})).await;
    let list = c.request(1, "tools/list", json!({})).await;
    let names: Vec<&str> = list["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"echo") && names.contains(&"add"),
        "{names:?}"
    );
    for hidden in ["crash", "hang", "garbage", "unsolicited", "fail"] {
        assert!(
            !names.contains(&hidden),
            "{hidden} must be hidden: {names:?}"
        );
    }
    let echo = c
        .request(
            2,
            "tools/call",
            json!({"name": "echo", "arguments": {"message": "hi"}}),
        )
        .await;
    assert_eq!(echo["result"]["content"][0]["text"], "hi");

    let hidden = c
        .request(3, "tools/call", json!({"name": "crash", "arguments": {}}))
        .await;
    let missing = c
        .request(
            3,
            "tools/call",
            json!({"name": "no-such-tool", "arguments": {}}),
        )
        .await;
    assert_eq!(hidden["error"]["code"], missing["error"]["code"]);
    assert_eq!(
        hidden["error"]["message"]
            .as_str()
            .unwrap()
            .replace("crash", "X"),
        missing["error"]["message"]
            .as_str()
            .unwrap()
            .replace("no-such-tool", "X"),
        "a hidden tool must be indistinguishable from a missing one"
    );
}
