//! Authorization-server metadata discovery against a local server: the MCP spec's URL order,
//! the exact issuer check, and the bounds.

mod resource_support;

use std::time::Duration;

use portcullis_auth::resource::{DiscoveryConfig, DiscoveryError, discover};
use resource_support::*;
use serde_json::json;

fn paths(idp: &Idp) -> Vec<String> {
    idp.requests().into_iter().map(|r| r.path).collect()
}

#[tokio::test]
async fn an_issuer_with_a_path_is_looked_up_in_the_spec_order() {
    let idp = Idp::start().await;
    let issuer = idp.url("/tenant1");
    let err = discover(&egress(), &issuer, &DiscoveryConfig::default())
        .await
        .unwrap_err();
    assert!(matches!(err, DiscoveryError::NotFound { .. }), "{err}");
    assert_eq!(
        paths(&idp),
        [
            "/.well-known/oauth-authorization-server/tenant1",
            "/.well-known/openid-configuration/tenant1",
            "/tenant1/.well-known/openid-configuration",
        ]
    );
}

#[tokio::test]
async fn an_issuer_without_a_path_is_looked_up_at_the_two_root_urls() {
    let idp = Idp::start().await;
    let err = discover(&egress(), &idp.issuer(), &DiscoveryConfig::default())
        .await
        .unwrap_err();
    assert!(matches!(err, DiscoveryError::NotFound { .. }), "{err}");
    assert_eq!(
        paths(&idp),
        [
            "/.well-known/oauth-authorization-server",
            "/.well-known/openid-configuration",
        ]
    );
}

#[tokio::test]
async fn the_first_url_that_answers_wins() {
    let idp = Idp::start().await;
    let issuer = idp.url("/tenant1");
    let doc = json!({
        "issuer": issuer,
        "jwks_uri": idp.url("/tenant1/jwks"),
        "token_endpoint": idp.url("/tenant1/token"),
        "introspection_endpoint": idp.url("/tenant1/introspect"),
        "scopes_supported": ["openid", "mcp:tools"],
    });
    idp.serve_json("/.well-known/openid-configuration/tenant1", 200, &doc, &[]);
    idp.serve_json(
        "/tenant1/.well-known/openid-configuration",
        200,
        &json!({"issuer": "x"}),
        &[],
    );
    let m = discover(&egress(), &issuer, &DiscoveryConfig::default())
        .await
        .unwrap();
    assert_eq!(m.issuer, issuer);
    assert_eq!(
        m.jwks_uri.as_deref(),
        Some(idp.url("/tenant1/jwks").as_str())
    );
    assert_eq!(
        m.token_endpoint.as_deref(),
        Some(idp.url("/tenant1/token").as_str())
    );
    assert_eq!(
        m.introspection_endpoint.as_deref(),
        Some(idp.url("/tenant1/introspect").as_str())
    );
    assert_eq!(
        m.scopes_supported,
        Some(vec!["openid".into(), "mcp:tools".into()])
    );
    assert_eq!(
        paths(&idp),
        [
            "/.well-known/oauth-authorization-server/tenant1",
            "/.well-known/openid-configuration/tenant1",
        ],
        "the third URL is not asked once the second answered"
    );
}

#[tokio::test]
async fn oidc_path_appending_is_the_last_resort() {
    let idp = Idp::start().await;
    let issuer = idp.url("/realms/acme");
    idp.serve_json(
        "/realms/acme/.well-known/openid-configuration",
        200,
        &json!({"issuer": issuer, "jwks_uri": idp.url("/realms/acme/certs")}),
        &[],
    );
    let m = discover(&egress(), &issuer, &DiscoveryConfig::default())
        .await
        .unwrap();
    assert_eq!(
        m.jwks_uri.as_deref(),
        Some(idp.url("/realms/acme/certs").as_str())
    );
    assert_eq!(m.introspection_endpoint, None);
    assert_eq!(paths(&idp).len(), 3);
}

#[tokio::test]
async fn metadata_naming_another_issuer_is_never_used() {
    let idp = Idp::start().await;
    let evil = Idp::start().await;
    idp.serve_json(
        "/.well-known/oauth-authorization-server",
        200,
        &json!({"issuer": evil.issuer(), "jwks_uri": evil.url("/jwks")}),
        &[],
    );
    let err = discover(&egress(), &idp.issuer(), &DiscoveryConfig::default())
        .await
        .unwrap_err();
    assert!(
        matches!(&err, DiscoveryError::IssuerMismatch { found, .. } if *found == evil.issuer()),
        "{err}"
    );
    assert!(evil.requests().is_empty());
}

#[tokio::test]
async fn a_trailing_slash_difference_is_an_issuer_mismatch() {
    let idp = Idp::start().await;
    idp.serve_json(
        "/.well-known/oauth-authorization-server",
        200,
        &json!({"issuer": format!("{}/", idp.issuer())}),
        &[],
    );
    let err = discover(&egress(), &idp.issuer(), &DiscoveryConfig::default())
        .await
        .unwrap_err();
    assert!(
        matches!(err, DiscoveryError::IssuerMismatch { .. }),
        "{err}"
    );
}

#[tokio::test]
async fn oversized_or_slow_metadata_is_refused() {
    let idp = Idp::start().await;
    idp.serve_json(
        "/.well-known/oauth-authorization-server",
        200,
        &json!({"issuer": idp.issuer(), "pad": "x".repeat(70 * 1024)}),
        &[],
    );
    let err = discover(&egress(), &idp.issuer(), &DiscoveryConfig::default())
        .await
        .unwrap_err();
    assert!(matches!(err, DiscoveryError::Unreachable { .. }), "{err}");

    let slow = Idp::start().await;
    slow.serve_json(
        "/.well-known/oauth-authorization-server",
        200,
        &json!({"issuer": slow.issuer()}),
        &[],
    );
    slow.delay(
        "/.well-known/oauth-authorization-server",
        Duration::from_secs(5),
    );
    let config = DiscoveryConfig {
        timeout: Duration::from_millis(200),
        ..DiscoveryConfig::default()
    };
    let started = std::time::Instant::now();
    let err = discover(&egress(), &slow.issuer(), &config)
        .await
        .unwrap_err();
    assert!(matches!(err, DiscoveryError::Unreachable { .. }), "{err}");
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn a_non_json_answer_moves_on_to_the_next_url() {
    let idp = Idp::start().await;
    idp.serve_bytes(
        "/.well-known/oauth-authorization-server",
        200,
        b"<html>".to_vec(),
        &[],
    );
    idp.serve_json(
        "/.well-known/openid-configuration",
        200,
        &json!({"issuer": idp.issuer()}),
        &[],
    );
    let m = discover(&egress(), &idp.issuer(), &DiscoveryConfig::default())
        .await
        .unwrap();
    assert_eq!(m.issuer, idp.issuer());
    assert_eq!(m.jwks_uri, None);
}
