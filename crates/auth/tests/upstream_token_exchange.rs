//! RFC 8693 token exchange against a recording token endpoint on 127.0.0.1: the client's
//! token goes to the token endpoint as the subject, and nowhere else.

mod upstream_support;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use portcullis_auth::upstream::{CredentialError, TOKEN_EXCHANGE_GRANT, UpstreamCredential};
use serde_json::json;
use upstream_support::{Reply, Server, basic_credentials, credential, secret_file, send_upstream};

const CLIENT_SECRET: &str = "gateway-client-secret-42";
const SUBJECT: &str = "client-access-token-ALICE";

fn token_exchange(server: &Server, secret: &tempfile::NamedTempFile, extra: &str) -> String {
    format!(
        r#"{{ token_exchange = {{ token_url = "{}", client_id = "gateway", secret_file = "{}"{extra} }} }}"#,
        server.token_url(),
        secret.path().display()
    )
}

/// Issues `exchanged-<n>` for the n-th request.
async fn exchanging_server() -> Server {
    Server::start(|n, _| {
        Reply::json(
            200,
            json!({
                "access_token": format!("exchanged-{n}"),
                "issued_token_type": "urn:ietf:params:oauth:token-type:access_token",
                "token_type": "Bearer",
                "expires_in": 3600,
            }),
        )
    })
    .await
}

/// An (unsigned, as far as this test cares) JWT whose `exp` is `secs` from now.
fn jwt_expiring_in(secs: u64) -> String {
    let exp = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs()
        + secs;
    let b64 = |s: String| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
    format!(
        "{}.{}.c2ln",
        b64(r#"{"alg":"RS256","typ":"at+jwt"}"#.to_owned()),
        b64(format!(r#"{{"sub":"alice","exp":{exp}}}"#))
    )
}

#[tokio::test]
async fn the_exchange_sends_the_subject_token_and_the_upstreams_parameters() {
    let server = exchanging_server().await;
    let secret = secret_file(CLIENT_SECRET);
    let cred = credential(&token_exchange(
        &server,
        &secret,
        r#", audience = "tickets", resource = "https://tickets.example.com/mcp", scope = "tickets:read", requested_token_type = "urn:ietf:params:oauth:token-type:access_token""#,
    ));
    let headers = cred.headers(Some(SUBJECT)).await.unwrap();
    assert_eq!(headers.len(), 1);
    assert_eq!(headers[0].0, "authorization");
    assert_eq!(headers[0].1, "Bearer exchanged-0");
    assert!(headers[0].1.is_sensitive());

    let r = &server.token_requests()[0];
    assert_eq!(
        basic_credentials(&r.headers),
        Some(("gateway".to_owned(), CLIENT_SECRET.to_owned()))
    );
    let field = |name| r.field(name);
    assert_eq!(field("grant_type").as_deref(), Some(TOKEN_EXCHANGE_GRANT));
    assert_eq!(field("subject_token").as_deref(), Some(SUBJECT));
    assert_eq!(
        field("subject_token_type").as_deref(),
        Some("urn:ietf:params:oauth:token-type:access_token")
    );
    assert_eq!(field("audience").as_deref(), Some("tickets"));
    assert_eq!(
        field("resource").as_deref(),
        Some("https://tickets.example.com/mcp")
    );
    assert_eq!(field("scope").as_deref(), Some("tickets:read"));
    assert_eq!(
        field("requested_token_type").as_deref(),
        Some("urn:ietf:params:oauth:token-type:access_token")
    );
    // The subject travels in the form only: not as the token request's credentials.
    assert!(
        !r.headers["authorization"]
            .to_str()
            .unwrap()
            .contains(SUBJECT)
    );
}

#[tokio::test]
async fn the_subject_token_never_reaches_the_upstream() {
    let server = exchanging_server().await;
    let secret = secret_file(CLIENT_SECRET);
    let cred = credential(&token_exchange(&server, &secret, ""));
    let mut client_headers = http::HeaderMap::new();
    client_headers.insert(
        "authorization",
        format!("Bearer {SUBJECT}").parse().unwrap(),
    );
    client_headers.insert("mcp-protocol-version", "2025-11-25".parse().unwrap());
    send_upstream(&server, &cred, &client_headers, Some(SUBJECT)).await;

    let upstream = server.upstream_requests();
    assert_eq!(upstream.len(), 1);
    assert_eq!(upstream[0].headers["authorization"], "Bearer exchanged-0");
    assert_eq!(upstream[0].headers["mcp-protocol-version"], "2025-11-25");
    let everything = upstream[0].everything();
    assert!(!everything.contains(SUBJECT), "{everything}");
    // The only request that carried it is the exchange itself.
    let carriers: Vec<_> = server
        .token_requests()
        .into_iter()
        .chain(upstream)
        .filter(|r| r.everything().contains(SUBJECT))
        .collect();
    assert_eq!(carriers.len(), 1);
    assert_eq!(carriers[0].path, "/token");
}

#[tokio::test]
async fn exchanged_tokens_are_cached_per_subject() {
    let server = exchanging_server().await;
    let secret = secret_file(CLIENT_SECRET);
    let cred = credential(&token_exchange(&server, &secret, ""));
    let alice = cred.headers(Some("token-of-alice")).await.unwrap();
    let bob = cred.headers(Some("token-of-bob")).await.unwrap();
    assert_eq!(alice[0].1, "Bearer exchanged-0");
    assert_eq!(bob[0].1, "Bearer exchanged-1");
    // Each subject gets its own token again, without another exchange.
    assert_eq!(
        cred.headers(Some("token-of-alice")).await.unwrap()[0].1,
        "Bearer exchanged-0"
    );
    assert_eq!(
        cred.headers(Some("token-of-bob")).await.unwrap()[0].1,
        "Bearer exchanged-1"
    );
    assert_eq!(server.token_requests().len(), 2);
}

#[tokio::test]
async fn an_exchanged_token_is_not_cached_past_the_subject_tokens_expiry() {
    let server = exchanging_server().await; // issues tokens valid for an hour
    let secret = secret_file(CLIENT_SECRET);
    let cred = credential(&token_exchange(&server, &secret, ""));
    let subject = jwt_expiring_in(2); // 1 to 2 s left: reused for at most 1 s
    assert_eq!(
        cred.headers(Some(&subject)).await.unwrap()[0].1,
        "Bearer exchanged-0"
    );
    assert_eq!(
        cred.headers(Some(&subject)).await.unwrap()[0].1,
        "Bearer exchanged-0"
    );
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(
        cred.headers(Some(&subject)).await.unwrap()[0].1,
        "Bearer exchanged-1"
    );
}

#[tokio::test]
async fn a_subject_token_echoed_in_an_error_is_redacted() {
    let server = Server::start(|_, r| {
        let subject = r.field("subject_token").unwrap_or_default();
        Reply::json(
            400,
            json!({
                "error": "invalid_grant",
                "error_description": format!("subject_token {subject} is not acceptable"),
            }),
        )
    })
    .await;
    let secret = secret_file(CLIENT_SECRET);
    let cred = credential(&token_exchange(&server, &secret, ""));
    let err = cred.headers(Some(SUBJECT)).await.unwrap_err();
    assert!(
        matches!(&err, CredentialError::OAuth { error, .. } if error == "invalid_grant"),
        "{err}"
    );
    for shown in [err.to_string(), format!("{err:?}")] {
        assert!(!shown.contains(SUBJECT), "{shown}");
        assert!(shown.contains("[redacted]"), "{shown}");
    }
}

#[tokio::test]
async fn token_exchange_without_a_subject_token_sends_nothing() {
    let server = exchanging_server().await;
    let secret = secret_file(CLIENT_SECRET);
    let cred = credential(&token_exchange(&server, &secret, ""));
    assert!(cred.needs_subject_token());
    let err = cred.headers(None).await.unwrap_err();
    assert_eq!(err, CredentialError::SubjectTokenRequired);
    assert!(server.token_requests().is_empty());
}

#[tokio::test]
async fn a_flood_of_subjects_keeps_the_cache_bounded_and_correct() {
    let server = exchanging_server().await;
    let secret = secret_file(CLIENT_SECRET);
    let cred = credential(&token_exchange(&server, &secret, "")).with_max_cached_subjects(2);
    for subject in ["a", "b", "c"] {
        cred.headers(Some(subject)).await.unwrap();
    }
    // "a" was evicted (least recently used): asking again exchanges again, and the answer is
    // a token for "a", never another subject's cached one.
    let again = cred.headers(Some("a")).await.unwrap();
    assert_eq!(again[0].1, "Bearer exchanged-3");
    assert_eq!(server.token_requests().len(), 4);
    assert_eq!(
        server.token_requests()[3].field("subject_token").as_deref(),
        Some("a")
    );
}

#[tokio::test]
async fn debug_output_never_shows_the_subject_or_the_exchanged_token() {
    let server = exchanging_server().await;
    let secret = secret_file(CLIENT_SECRET);
    let cred: UpstreamCredential = credential(&token_exchange(&server, &secret, ""));
    let headers = cred.headers(Some(SUBJECT)).await.unwrap();
    for shown in [format!("{cred:?}"), format!("{headers:?}")] {
        assert!(!shown.contains(SUBJECT), "{shown}");
        assert!(!shown.contains("exchanged-0"), "{shown}");
        assert!(!shown.contains(CLIENT_SECRET), "{shown}");
    }
}
