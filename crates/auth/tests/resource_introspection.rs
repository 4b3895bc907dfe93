//! RFC 7662 introspection of opaque tokens against a local authorization server.

mod resource_support;

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use portcullis_auth::resource::{IntrospectionConfig, ManualClock, TokenError, TokenValidator};
use portcullis_auth::secret::Secret;
use resource_support::*;
use serde_json::{Value, json};

const OPAQUE: &str = "2YotnFZFEjr1zCsicMWpAA";
const CLIENT_SECRET: &str = "s3cret:with spaces&symbols";

fn active(idp: &Idp) -> Value {
    json!({
        "active": true,
        "iss": idp.issuer(),
        "sub": "bob",
        "aud": [AUDIENCE],
        "exp": unix_now() + 3600,
        "client_id": "cli-7",
        "scope": "mcp:tools tickets:read",
        "token_type": "Bearer",
    })
}

fn introspecting(idp: &Idp, clock: &Arc<ManualClock>, endpoint: Option<String>) -> TokenValidator {
    let mut config = config_for(idp, clock);
    let mut ic = IntrospectionConfig::new("gateway", Secret::new(CLIENT_SECRET.into()));
    ic.endpoint = endpoint;
    config.introspection = Some(ic);
    TokenValidator::new(config, egress()).expect("a valid introspection config")
}

async fn setup_introspection(answer: Value) -> (Idp, Arc<ManualClock>, TokenValidator) {
    let idp = Idp::start().await;
    idp.serve_json("/introspect", 200, &answer, &[]);
    let clock = Arc::new(ManualClock::new());
    let v = introspecting(&idp, &clock, Some(idp.url("/introspect")));
    (idp, clock, v)
}

#[tokio::test]
async fn an_active_opaque_token_is_accepted_with_its_principal() {
    let idp = Idp::start().await;
    idp.serve_json("/introspect", 200, &active(&idp), &[]);
    let clock = Arc::new(ManualClock::new());
    let v = introspecting(&idp, &clock, Some(idp.url("/introspect")));
    let t = v.validate(OPAQUE, AUDIENCE).await.unwrap();
    assert_eq!(t.issuer, idp.issuer());
    assert_eq!(t.subject, "bob");
    assert_eq!(t.client_id.as_deref(), Some("cli-7"));
    assert_eq!(t.scopes, ["mcp:tools", "tickets:read"]);

    // RFC 7662 §2.1 with client_secret_basic (RFC 6749 §2.3.1: form-encoded, then base64).
    let reqs = idp.requests();
    assert_eq!(reqs.len(), 1);
    assert_eq!(reqs[0].method, "POST");
    let basic = reqs[0]
        .authorization
        .as_deref()
        .unwrap()
        .strip_prefix("Basic ")
        .unwrap();
    let pair = String::from_utf8(STANDARD.decode(basic).unwrap()).unwrap();
    assert_eq!(pair, "gateway:s3cret%3Awith+spaces%26symbols");
    let form: Vec<(String, String)> = form_urlencoded::parse(reqs[0].body.as_bytes())
        .into_owned()
        .collect();
    assert_eq!(
        form,
        [
            ("token".to_owned(), OPAQUE.to_owned()),
            ("token_type_hint".to_owned(), "access_token".to_owned())
        ]
    );
}

#[tokio::test]
async fn an_inactive_token_is_refused_and_not_cached() {
    let (idp, _, v) = setup_introspection(json!({"active": false})).await;
    assert_eq!(
        v.validate(OPAQUE, AUDIENCE).await,
        Err(TokenError::Inactive)
    );
    assert_eq!(
        v.validate(OPAQUE, AUDIENCE).await,
        Err(TokenError::Inactive)
    );
    assert_eq!(idp.hits("/introspect"), 2);
    for odd in [json!({}), json!({"active": "true"}), json!({"active": 1})] {
        idp.serve_json("/introspect", 200, &odd, &[]);
        assert_eq!(
            v.validate(OPAQUE, AUDIENCE).await,
            Err(TokenError::Inactive),
            "{odd}"
        );
    }
}

#[tokio::test]
async fn a_cached_answer_does_not_call_the_endpoint_twice() {
    let idp = Idp::start().await;
    idp.serve_json("/introspect", 200, &active(&idp), &[]);
    let clock = Arc::new(ManualClock::new());
    let v = introspecting(&idp, &clock, Some(idp.url("/introspect")));
    for _ in 0..5 {
        assert!(v.validate(OPAQUE, AUDIENCE).await.is_ok());
    }
    assert_eq!(idp.hits("/introspect"), 1);
    // Another token is another question.
    assert!(v.validate("another-opaque-token", AUDIENCE).await.is_ok());
    assert_eq!(idp.hits("/introspect"), 2);
    // The cached answer is still checked against each request's audience.
    assert_eq!(
        v.validate(OPAQUE, "https://mcp.example.com/mcp/other")
            .await,
        Err(TokenError::WrongAudience)
    );
    assert_eq!(idp.hits("/introspect"), 2);
}

#[tokio::test]
async fn a_revoked_token_stops_working_once_the_cache_ceiling_has_passed() {
    let idp = Idp::start().await;
    idp.serve_json("/introspect", 200, &active(&idp), &[]);
    let clock = Arc::new(ManualClock::new());
    let v = introspecting(&idp, &clock, Some(idp.url("/introspect")));
    assert!(v.validate(OPAQUE, AUDIENCE).await.is_ok());
    idp.serve_json("/introspect", 200, &json!({"active": false}), &[]);
    clock.advance(Duration::from_secs(59));
    assert!(v.validate(OPAQUE, AUDIENCE).await.is_ok(), "still cached");
    clock.advance(Duration::from_secs(2));
    assert_eq!(
        v.validate(OPAQUE, AUDIENCE).await,
        Err(TokenError::Inactive)
    );
    assert_eq!(idp.hits("/introspect"), 2);
}

#[tokio::test]
async fn the_cache_never_outlives_the_token() {
    let idp = Idp::start().await;
    let mut answer = active(&idp);
    answer["exp"] = json!(unix_now() + 20);
    idp.serve_json("/introspect", 200, &answer, &[]);
    let clock = Arc::new(ManualClock::new());
    let v = introspecting(&idp, &clock, Some(idp.url("/introspect")));
    assert!(v.validate(OPAQUE, AUDIENCE).await.is_ok());
    clock.advance(Duration::from_secs(21 + 60));
    assert_eq!(v.validate(OPAQUE, AUDIENCE).await, Err(TokenError::Expired));
    assert_eq!(
        idp.hits("/introspect"),
        2,
        "asked again after exp, not served from cache"
    );
}

#[tokio::test]
async fn an_active_answer_for_another_audience_or_issuer_is_refused() {
    let idp = Idp::start().await;
    let clock = Arc::new(ManualClock::new());
    let v = introspecting(&idp, &clock, Some(idp.url("/introspect")));
    let mut answer = active(&idp);
    answer["aud"] = json!("https://mcp.example.com/mcp/tickets");
    idp.serve_json("/introspect", 200, &answer, &[]);
    assert_eq!(
        v.validate(OPAQUE, AUDIENCE).await,
        Err(TokenError::WrongAudience)
    );

    let mut answer = active(&idp);
    answer.as_object_mut().unwrap().remove("aud");
    idp.serve_json("/introspect", 200, &answer, &[]);
    assert_eq!(
        v.validate(OPAQUE, AUDIENCE).await,
        Err(TokenError::MissingClaim("aud".into()))
    );

    let mut answer = active(&idp);
    answer["iss"] = json!("https://evil.example");
    idp.serve_json("/introspect", 200, &answer, &[]);
    assert_eq!(
        v.validate(OPAQUE, AUDIENCE).await,
        Err(TokenError::WrongIssuer)
    );

    let mut answer = active(&idp);
    answer["token_type"] = json!("refresh_token");
    idp.serve_json("/introspect", 200, &answer, &[]);
    assert_eq!(
        v.validate(OPAQUE, AUDIENCE).await,
        Err(TokenError::Inactive)
    );
}

#[tokio::test]
async fn an_unreachable_or_failing_endpoint_fails_closed() {
    let (idp, _, v) = setup_introspection(json!({})).await;
    idp.fail("/introspect");
    assert_eq!(
        v.validate(OPAQUE, AUDIENCE).await,
        Err(TokenError::IntrospectionFailed)
    );
    idp.serve_bytes("/introspect", 200, b"not json".to_vec(), &[]);
    assert_eq!(
        v.validate(OPAQUE, AUDIENCE).await,
        Err(TokenError::IntrospectionFailed)
    );
    assert!(TokenError::IntrospectionFailed.is_temporary());
}

#[tokio::test]
async fn the_introspection_endpoint_can_be_discovered() {
    let idp = Idp::start().await;
    idp.serve_json("/oauth/introspect", 200, &active(&idp), &[]);
    idp.serve_json(
        "/.well-known/oauth-authorization-server",
        200,
        &json!({"issuer": idp.issuer(), "introspection_endpoint": idp.url("/oauth/introspect")}),
        &[],
    );
    let clock = Arc::new(ManualClock::new());
    let v = introspecting(&idp, &clock, None);
    assert_eq!(v.validate(OPAQUE, AUDIENCE).await.unwrap().subject, "bob");
    assert_eq!(idp.hits("/oauth/introspect"), 1);
}

#[tokio::test]
async fn a_jwt_is_never_sent_to_introspection() {
    let rsa = key("rsa-a", "k1");
    let idp = Idp::start().await;
    idp.serve_json("/jwks", 200, &rsa.jwks(), &[]);
    idp.serve_json("/introspect", 200, &active(&idp), &[]);
    let clock = Arc::new(ManualClock::new());
    let v = introspecting(&idp, &clock, Some(idp.url("/introspect")));
    let mut c = claims(&idp.issuer());
    c["aud"] = json!("https://elsewhere.example");
    assert_eq!(
        v.validate(&rsa.sign(&c), AUDIENCE).await,
        Err(TokenError::WrongAudience)
    );
    assert_eq!(idp.hits("/introspect"), 0);
}

#[tokio::test]
async fn the_answer_cache_is_bounded_and_drops_the_soonest_expiring_answer() {
    let idp = Idp::start().await;
    idp.serve_json("/introspect", 200, &active(&idp), &[]);
    let clock = Arc::new(ManualClock::new());
    let mut config = config_for(&idp, &clock);
    let mut ic = IntrospectionConfig::new("gateway", Secret::new(CLIENT_SECRET.into()));
    ic.endpoint = Some(idp.url("/introspect"));
    ic.cache_entries = 2;
    config.introspection = Some(ic);
    let v = TokenValidator::new(config, egress()).unwrap();
    for t in ["token-1", "token-2", "token-3"] {
        assert!(v.validate(t, AUDIENCE).await.is_ok());
        clock.advance(Duration::from_secs(1));
    }
    assert_eq!(idp.hits("/introspect"), 3);
    assert!(v.validate("token-3", AUDIENCE).await.is_ok());
    assert!(v.validate("token-2", AUDIENCE).await.is_ok());
    assert_eq!(
        idp.hits("/introspect"),
        3,
        "the two newest answers are cached"
    );
    assert!(v.validate("token-1", AUDIENCE).await.is_ok());
    assert_eq!(idp.hits("/introspect"), 4, "the oldest was dropped");
}
