//! The client credentials grant against a recording token endpoint on 127.0.0.1.

mod upstream_support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use portcullis_auth::upstream::{CredentialError, UpstreamCredential};
use serde_json::json;
use upstream_support::{Reply, Server, basic_credentials, credential, secret_file, spec};

/// A secret with characters that form encoding must escape (RFC 6749 §2.3.1).
const CLIENT_SECRET: &str = "s3cr:t/+ &=%é";

fn client_credentials(server: &Server, secret: &tempfile::NamedTempFile, extra: &str) -> String {
    format!(
        r#"{{ client_credentials = {{ token_url = "{}", client_id = "gateway:1", secret_file = "{}"{extra} }} }}"#,
        server.token_url(),
        secret.path().display()
    )
}

#[tokio::test]
async fn the_grant_sends_the_form_and_basic_client_authentication() {
    let server = Server::start(|_, _| Reply::token("upstream-token-1", 3600)).await;
    let secret = secret_file(CLIENT_SECRET);
    let cred = credential(&client_credentials(
        &server,
        &secret,
        r#", scope = "tickets:read tickets:write", resource = "https://tickets.example.com/mcp""#,
    ));
    let headers = cred.headers(None).await.unwrap();
    assert_eq!(headers.len(), 1);
    assert_eq!(headers[0].0, "authorization");
    assert_eq!(headers[0].1, "Bearer upstream-token-1");
    assert!(headers[0].1.is_sensitive());

    let requests = server.token_requests();
    assert_eq!(requests.len(), 1);
    let r = &requests[0];
    assert_eq!(
        r.headers["content-type"],
        "application/x-www-form-urlencoded"
    );
    assert_eq!(
        basic_credentials(&r.headers),
        Some(("gateway:1".to_owned(), CLIENT_SECRET.to_owned()))
    );
    assert_eq!(
        r.form(),
        vec![
            ("grant_type".to_owned(), "client_credentials".to_owned()),
            ("scope".to_owned(), "tickets:read tickets:write".to_owned()),
            (
                "resource".to_owned(),
                "https://tickets.example.com/mcp".to_owned()
            ),
        ]
    );
    // With basic authentication the secret is in the header only, never in the form.
    assert!(r.field("client_secret").is_none());
}

#[tokio::test]
async fn client_secret_post_sends_the_secret_in_the_form_only() {
    let server = Server::start(|_, _| Reply::token("t", 3600)).await;
    let secret = secret_file(CLIENT_SECRET);
    let cred = credential(&client_credentials(
        &server,
        &secret,
        r#", auth_method = "client_secret_post""#,
    ));
    cred.headers(None).await.unwrap();
    let r = &server.token_requests()[0];
    assert!(r.headers.get("authorization").is_none());
    assert_eq!(r.field("client_id").as_deref(), Some("gateway:1"));
    assert_eq!(r.field("client_secret").as_deref(), Some(CLIENT_SECRET));
    assert_eq!(r.field("grant_type").as_deref(), Some("client_credentials"));
}

#[tokio::test]
async fn a_cached_token_does_not_hit_the_endpoint_again() {
    let server = Server::start(|n, _| Reply::token(&format!("t{n}"), 3600)).await;
    let secret = secret_file(CLIENT_SECRET);
    let cred = credential(&client_credentials(&server, &secret, ""));
    for _ in 0..5 {
        let headers = cred.headers(None).await.unwrap();
        assert_eq!(headers[0].1, "Bearer t0");
    }
    assert_eq!(server.token_requests().len(), 1);
}

#[tokio::test]
async fn a_token_near_expiry_is_refreshed() {
    // expires_in = 1 s: reused for half of it, then refreshed.
    let server = Server::start(|n, _| Reply::token(&format!("t{n}"), 1)).await;
    let secret = secret_file(CLIENT_SECRET);
    let cred = credential(&client_credentials(&server, &secret, ""));
    assert_eq!(cred.headers(None).await.unwrap()[0].1, "Bearer t0");
    assert_eq!(cred.headers(None).await.unwrap()[0].1, "Bearer t0");
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(cred.headers(None).await.unwrap()[0].1, "Bearer t1");
    assert_eq!(server.token_requests().len(), 2);
}

#[tokio::test]
async fn fifty_concurrent_callers_cause_one_token_request() {
    // A slow endpoint, so that every caller arrives while the first fetch is in flight.
    let server = Server::start(|n, _| {
        Reply::token(&format!("t{n}"), 3600).after(Duration::from_millis(300))
    })
    .await;
    let secret = secret_file(CLIENT_SECRET);
    let cred = Arc::new(credential(&client_credentials(&server, &secret, "")));
    let mut callers = tokio::task::JoinSet::new();
    for _ in 0..50 {
        let cred = cred.clone();
        callers.spawn(async move { cred.headers(None).await });
    }
    let mut answered = 0;
    while let Some(result) = callers.join_next().await {
        assert_eq!(result.unwrap().unwrap()[0].1, "Bearer t0");
        answered += 1;
    }
    assert_eq!(answered, 50);
    assert_eq!(server.token_requests().len(), 1);
}

#[tokio::test]
async fn an_oauth_error_is_surfaced_without_the_secret() {
    let server = Server::start(|_, _| {
        Reply::json(
            401,
            json!({
                "error": "invalid_client",
                // A careless server that quotes what it got.
                "error_description": format!("client secret {CLIENT_SECRET} is wrong"),
            }),
        )
    })
    .await;
    let secret = secret_file(CLIENT_SECRET);
    let cred = credential(&client_credentials(&server, &secret, ""));
    let err = cred.headers(None).await.unwrap_err();
    let CredentialError::OAuth {
        status,
        error,
        description,
        ..
    } = &err
    else {
        panic!("not an OAuth error: {err:?}");
    };
    assert_eq!(*status, 401);
    assert_eq!(error, "invalid_client");
    assert_eq!(
        description.as_deref(),
        Some("client secret [redacted] is wrong")
    );
    for shown in [err.to_string(), format!("{err:?}")] {
        assert!(shown.contains("invalid_client"), "{shown}");
        assert!(!shown.contains(CLIENT_SECRET), "{shown}");
    }
}

#[tokio::test]
async fn a_failed_fetch_is_not_retried_within_the_backoff() {
    let server = Server::start(|n, _| {
        if n == 0 {
            Reply::json(503, json!({}))
        } else {
            Reply::token("t", 3600)
        }
    })
    .await;
    let secret = secret_file(CLIENT_SECRET);
    let cred = credential(&client_credentials(&server, &secret, ""));
    let first = cred.headers(None).await.unwrap_err();
    assert!(
        matches!(
            first,
            CredentialError::TokenEndpointStatus { status: 503, .. }
        ),
        "{first}"
    );
    let second = cred.headers(None).await.unwrap_err();
    assert!(
        matches!(second, CredentialError::BackingOff { .. }),
        "{second}"
    );
    assert_eq!(server.token_requests().len(), 1);
}

#[tokio::test]
async fn a_token_that_is_not_bearer_is_refused() {
    for token_type in ["DPoP", "N_A", "mac"] {
        let server = Server::start(move |_, _| {
            Reply::json(
                200,
                json!({"access_token": "t", "token_type": token_type, "expires_in": 60}),
            )
        })
        .await;
        let secret = secret_file(CLIENT_SECRET);
        let cred = credential(&client_credentials(&server, &secret, ""));
        let err = cred.headers(None).await.unwrap_err();
        assert!(
            matches!(&err, CredentialError::UnsupportedTokenType { token_type: t, .. } if t == token_type),
            "{err}"
        );
    }
    // The type is case-insensitive (RFC 6749 §5.1).
    let server = Server::start(|_, _| {
        Reply::json(200, json!({"access_token": "t", "token_type": "bearer"}))
    })
    .await;
    let secret = secret_file(CLIENT_SECRET);
    let cred = credential(&client_credentials(&server, &secret, ""));
    assert_eq!(cred.headers(None).await.unwrap()[0].1, "Bearer t");
}

#[tokio::test]
async fn an_unusable_token_response_is_refused() {
    let bodies = [
        json!({"token_type": "Bearer"}),
        json!({"access_token": "", "token_type": "Bearer"}),
        json!({"access_token": "t"}),
        json!({"access_token": "t\r\nX-Injected: 1", "token_type": "Bearer"}),
        json!({"access_token": "t", "token_type": "Bearer", "expires_in": "soon"}),
        json!(["not", "an", "object"]),
    ];
    for body in bodies {
        let reply = body.to_string();
        let server = Server::start(move |_, _| Reply {
            status: 200,
            body: reply.clone(),
            delay: Duration::ZERO,
        })
        .await;
        let secret = secret_file(CLIENT_SECRET);
        let cred = credential(&client_credentials(&server, &secret, ""));
        let err = cred.headers(None).await.unwrap_err();
        assert!(
            matches!(err, CredentialError::InvalidTokenResponse { .. }),
            "{body}: {err}"
        );
        assert!(!err.to_string().contains("X-Injected"));
    }
}

#[tokio::test]
async fn an_oversize_token_response_is_refused() {
    let server = Server::start(|_, _| {
        Reply::json(
            200,
            json!({"access_token": "a".repeat(70 * 1024), "token_type": "Bearer"}),
        )
    })
    .await;
    let secret = secret_file(CLIENT_SECRET);
    let cred = credential(&client_credentials(&server, &secret, ""));
    let err = cred.headers(None).await.unwrap_err();
    assert!(
        matches!(
            err,
            CredentialError::TokenResponseTooLarge { limit: 65536, .. }
        ),
        "{err}"
    );
}

#[tokio::test]
async fn a_token_endpoint_that_stalls_is_bounded_by_the_timeout() {
    let server =
        Server::start(|_, _| Reply::token("late", 3600).after(Duration::from_secs(5))).await;
    let secret = secret_file(CLIENT_SECRET);
    let cred = credential(&client_credentials(&server, &secret, ""))
        .with_token_timeout(Duration::from_millis(200));
    let started = Instant::now();
    let err = cred.headers(None).await.unwrap_err();
    assert!(
        matches!(err, CredentialError::TokenEndpointTimeout { .. }),
        "{err}"
    );
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn a_discarded_token_is_fetched_again() {
    let server = Server::start(|n, _| Reply::token(&format!("t{n}"), 3600)).await;
    let secret = secret_file(CLIENT_SECRET);
    let cred = credential(&client_credentials(&server, &secret, ""));
    assert_eq!(cred.headers(None).await.unwrap()[0].1, "Bearer t0");
    cred.discard_cached(None); // say the upstream answered 401
    assert_eq!(cred.headers(None).await.unwrap()[0].1, "Bearer t1");
}

#[tokio::test]
async fn the_client_token_never_reaches_the_upstream() {
    let server = Server::start(|_, _| Reply::token("gateway-own-token", 3600)).await;
    let secret = secret_file(CLIENT_SECRET);
    let cred = credential(&client_credentials(&server, &secret, ""));
    let mut client_headers = http::HeaderMap::new();
    client_headers.insert("authorization", "Bearer CLIENT-TOKEN".parse().unwrap());
    client_headers.insert("cookie", "session=CLIENT-COOKIE".parse().unwrap());
    upstream_support::send_upstream(&server, &cred, &client_headers, Some("CLIENT-TOKEN")).await;
    let seen = &server.upstream_requests()[0];
    assert_eq!(seen.headers["authorization"], "Bearer gateway-own-token");
    let everything = seen.everything();
    assert!(!everything.contains("CLIENT-TOKEN"), "{everything}");
    assert!(!everything.contains("CLIENT-COOKIE"), "{everything}");
    assert!(!everything.contains(CLIENT_SECRET));
}

#[tokio::test]
async fn debug_output_of_every_type_never_shows_secrets() {
    let server = Server::start(|_, _| Reply::token("issued-access-token", 3600)).await;
    let secret = secret_file(CLIENT_SECRET);
    let text = client_credentials(&server, &secret, "");
    let spec = spec(&text);
    let cred = UpstreamCredential::new(&spec, upstream_support::egress()).unwrap();
    let headers = cred.headers(None).await.unwrap();
    let backing_off = CredentialError::BackingOff {
        retry_in: Duration::from_secs(1),
        last: Box::new(CredentialError::SubjectTokenRequired),
    };
    for shown in [
        format!("{spec:?}"),
        format!("{cred:?}"),
        format!("{headers:?}"),
        format!("{backing_off:?}"),
    ] {
        assert!(!shown.contains(CLIENT_SECRET), "{shown}");
        assert!(!shown.contains("issued-access-token"), "{shown}");
    }
}
