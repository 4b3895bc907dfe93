//! The gateway's OAuth client against a real authorization server (`oidc-provider`) and a
//! loopback MCP server's challenge and metadata: discovery → authorization code with PKCE →
//! token for the resource → refresh with rotation, with a pre-registered client and with
//! Dynamic Client Registration. The user's login and consent are driven over HTTP as a
//! browser would.

mod client_support;

use std::sync::Arc;
use std::time::Duration;

use client_support::{AuthServer, McpServer, authorize_in_browser, jwt_claims};
use http::{Method, StatusCode};
use portcullis_auth::client::{
    ClientIdentity, Discovered, DynamicRegistrationRequest, OAuthClientError,
    PendingAuthorizations, RegistrationChoice, choose_registration, discover, exchange_code,
    finish_authorization, initial_scope, parse_bearer_challenge, refresh, register_dynamic,
    start_authorization,
};
use portcullis_auth::resource::{DiscoveryConfig, DiscoveryError, SystemClock};
use portcullis_auth::upstream::CredentialError;
use portcullis_egress::{EgressClient, EgressConfig, EgressRequest};
use serde_json::json;

/// Nothing listens here: the browser stops at the redirect and hands its query over.
const REDIRECT_URI: &str = "http://127.0.0.1:9/oauth/callback";
const CLIENT_ID: &str = "portcullis-gateway";

fn as_config(resource: &str) -> serde_json::Value {
    json!({
        "clients": [{
            "client_id": CLIENT_ID,
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "redirect_uris": [REDIRECT_URI],
            "token_endpoint_auth_method": "none",
        }],
        "resources": { resource: { "scope": "mcp:tools mcp:admin" } },
        "devInteractions": true,
        "registration": true,
        "generateKey": true,
        "refreshTokens": true,
    })
}

async fn start() -> (McpServer, AuthServer) {
    let mcp = McpServer::start("mcp:tools").await;
    let auth = AuthServer::start(&as_config(&mcp.url));
    mcp.set_issuer(&auth.issuer);
    (mcp, auth)
}

fn pending() -> PendingAuthorizations {
    PendingAuthorizations::new(Duration::from_secs(600), 100, Arc::new(SystemClock::new()))
}

/// The upstream's 401, fetched through the egress client as the gateway would.
async fn challenge_of(
    egress: &EgressClient,
    url: &str,
) -> portcullis_auth::client::BearerChallenge {
    let req = EgressRequest::new(
        Method::GET,
        EgressClient::parse_url(url).expect("server URL"),
    );
    let resp = egress.send(req).await.expect("the upstream answers");
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    parse_bearer_challenge(resp.headers()).expect("a Bearer challenge")
}

/// `user` authorizes `client_id` in the browser; the query of the redirect back.
async fn authorize(
    pending: &PendingAuthorizations,
    found: &Discovered,
    client_id: &str,
    scope: Option<&str>,
    user: &str,
) -> String {
    let started = start_authorization(
        pending,
        &found.server,
        client_id,
        REDIRECT_URI,
        &found.resource.resource,
        scope,
        user,
    )
    .expect("the authorization starts");
    authorize_in_browser(&started.url, REDIRECT_URI, user).await
}

/// The OAuth error code the token endpoint answered with, if that is what `err` is.
fn oauth_error(err: &OAuthClientError) -> Option<&str> {
    match err {
        OAuthClientError::Token(e) => match &**e {
            CredentialError::OAuth { error, .. } => Some(error),
            _ => None,
        },
        _ => None,
    }
}

#[tokio::test]
async fn a_pre_registered_client_gets_a_resource_bound_token_and_rotates_its_refresh_token() {
    let (mcp, auth) = start().await;
    let egress = EgressClient::new(&EgressConfig::default()).unwrap();

    let challenge = challenge_of(&egress, &mcp.url).await;
    let found = discover(
        &egress,
        &mcp.url,
        Some(&challenge),
        &DiscoveryConfig::default(),
    )
    .await
    .unwrap();
    assert_eq!(found.resource.resource, mcp.url);
    assert_eq!(found.server.issuer(), auth.issuer);
    assert!(found.server.iss_parameter_supported);
    let scope = initial_scope(Some(&challenge), &found.resource);
    assert_eq!(scope.as_deref(), Some("mcp:tools"));

    let pre = ClientIdentity::public(CLIENT_ID);
    let client = match choose_registration(Some(&pre), None, &found.server).unwrap() {
        RegistrationChoice::PreRegistered(c) => c,
        other => panic!("{other:?}"),
    };
    let pending = pending();
    let callback = authorize(
        &pending,
        &found,
        &client.client_id,
        scope.as_deref(),
        "alice",
    )
    .await;
    assert!(
        callback.contains("iss="),
        "RFC 9207 iss expected: {callback}"
    );
    let grant = finish_authorization(&pending, &callback).unwrap();
    assert_eq!(grant.pending.principal, "alice");

    let tokens = exchange_code(&egress, &client, grant).await.unwrap();
    let claims = jwt_claims(tokens.access_token.expose());
    assert_eq!(claims["aud"], json!(mcp.url), "{claims}");
    assert_eq!(claims["iss"], json!(auth.issuer));
    assert_eq!(claims["scope"], json!("mcp:tools"));
    assert_eq!(claims["sub"], json!("alice"));
    let first_refresh = tokens.refresh_token.clone().expect("a refresh token");

    // The same callback again: the state was spent.
    assert!(matches!(
        finish_authorization(&pending, &callback),
        Err(OAuthClientError::UnknownState)
    ));

    let stale = tokens.clone();
    let rotated = refresh(
        &egress,
        &found.server.token_endpoint,
        &client,
        tokens,
        &found.resource.resource,
        None,
    )
    .await
    .unwrap();
    let second_refresh = rotated.refresh_token.clone().unwrap();
    assert_ne!(
        second_refresh, first_refresh,
        "the refresh token must rotate"
    );
    assert_ne!(rotated.access_token, stale.access_token);
    assert_eq!(
        jwt_claims(rotated.access_token.expose())["aud"],
        json!(mcp.url)
    );

    // The old refresh token is dead at the server once rotated.
    let err = refresh(
        &egress,
        &found.server.token_endpoint,
        &client,
        stale,
        &found.resource.resource,
        None,
    )
    .await
    .unwrap_err();
    assert_eq!(oauth_error(&err), Some("invalid_grant"), "{err}");
    assert!(!err.to_string().contains(first_refresh.expose()));
}

#[tokio::test]
async fn dynamic_client_registration_is_used_when_nothing_is_pre_registered() {
    let (mcp, auth) = start().await;
    let egress = EgressClient::new(&EgressConfig::default()).unwrap();

    // No challenge: the well-known URL is found by path insertion.
    let found = discover(&egress, &mcp.url, None, &DiscoveryConfig::default())
        .await
        .unwrap();
    assert_eq!(found.server.issuer(), auth.issuer);
    let endpoint = match choose_registration(None, None, &found.server).unwrap() {
        RegistrationChoice::Dynamic { endpoint } => endpoint,
        other => panic!("{other:?}"),
    };
    let request = DynamicRegistrationRequest::new("Portcullis", vec![REDIRECT_URI.to_owned()]);
    let client = register_dynamic(&egress, &endpoint, &request)
        .await
        .unwrap();
    assert_ne!(client.client_id, CLIENT_ID);

    let pending = pending();
    let scope = initial_scope(None, &found.resource);
    let callback = authorize(&pending, &found, &client.client_id, scope.as_deref(), "bob").await;
    let grant = finish_authorization(&pending, &callback).unwrap();
    let tokens = exchange_code(&egress, &client, grant).await.unwrap();
    let claims = jwt_claims(tokens.access_token.expose());
    assert_eq!(claims["aud"], json!(mcp.url));
    assert_eq!(claims["sub"], json!("bob"));
    assert_eq!(claims["client_id"], json!(client.client_id));
}

#[tokio::test]
async fn a_code_redeemed_with_the_wrong_verifier_is_refused_by_the_server() {
    let (mcp, _auth) = start().await;
    let egress = EgressClient::new(&EgressConfig::default()).unwrap();
    let found = discover(&egress, &mcp.url, None, &DiscoveryConfig::default())
        .await
        .unwrap();
    let client = ClientIdentity::public(CLIENT_ID);
    let pending = pending();
    let callback = authorize(&pending, &found, CLIENT_ID, Some("mcp:tools"), "carol").await;
    let mut grant = finish_authorization(&pending, &callback).unwrap();
    grant.pending.code_verifier = portcullis_auth::secret::Secret::new("x".repeat(43));
    let err = exchange_code(&egress, &client, grant).await.unwrap_err();
    assert_eq!(oauth_error(&err), Some("invalid_grant"), "{err}");
}

#[tokio::test]
async fn metadata_naming_the_issuer_in_another_spelling_is_refused() {
    let mcp = McpServer::start("mcp:tools").await;
    let auth = AuthServer::start(&as_config(&mcp.url));
    // The same server under another name: its metadata says 127.0.0.1, so this is not the
    // issuer that was asked for (RFC 8414 §3.3 compares exactly).
    mcp.set_issuer(&auth.issuer.replace("127.0.0.1", "localhost"));
    let egress = EgressClient::new(&EgressConfig::default()).unwrap();
    let err = discover(&egress, &mcp.url, None, &DiscoveryConfig::default())
        .await
        .unwrap_err();
    assert!(
        matches!(&err, OAuthClientError::Discovery(e) if matches!(**e, DiscoveryError::IssuerMismatch { .. })),
        "{err}"
    );
}

#[tokio::test]
async fn metadata_claiming_another_resource_is_refused() {
    let mcp = McpServer::start_claiming("mcp:tools", Some("https://bank.example.com/mcp")).await;
    let auth = AuthServer::start(&as_config(&mcp.url));
    mcp.set_issuer(&auth.issuer);
    let egress = EgressClient::new(&EgressConfig::default()).unwrap();
    let challenge = challenge_of(&egress, &mcp.url).await;
    let err = discover(
        &egress,
        &mcp.url,
        Some(&challenge),
        &DiscoveryConfig::default(),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(err, OAuthClientError::ResourceMismatch { .. }),
        "{err}"
    );
}
