//! The JWKS cache against a local identity provider: caching, refresh bounds, rotation, the
//! rate limit on unknown `kid`s, and failing closed when the keys are gone for too long.

mod resource_support;

use std::sync::Arc;
use std::time::Duration;

use portcullis_auth::resource::{IssuerConfig, ManualClock, TokenError, TokenValidator};
use resource_support::*;
use serde_json::json;

const FLOOR: Duration = Duration::from_secs(5 * 60);
const RATE: Duration = Duration::from_secs(10);
const DAY: Duration = Duration::from_secs(24 * 3600);

/// A token signed by `key` that stays valid for two days of manual-clock time.
fn long_token(k: &TestKey, issuer: &str) -> String {
    let mut c = claims(issuer);
    c["exp"] = json!(unix_now() + 3 * 86_400);
    k.sign(&c)
}

#[tokio::test]
async fn keys_are_fetched_once_and_reused() {
    let rsa = key("rsa-a", "k1");
    let (idp, _, v) = setup(&[&rsa]).await;
    let t = rsa.sign(&claims(&idp.issuer()));
    for _ in 0..20 {
        assert!(v.validate(&t, AUDIENCE).await.is_ok());
    }
    assert_eq!(idp.hits("/jwks"), 1);
}

#[tokio::test]
async fn concurrent_first_validations_share_one_fetch() {
    let rsa = key("rsa-a", "k1");
    let (idp, _, v) = setup(&[&rsa]).await;
    idp.delay("/jwks", Duration::from_millis(200));
    let v = Arc::new(v);
    let t = Arc::new(rsa.sign(&claims(&idp.issuer())));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..50 {
        let (v, t) = (v.clone(), t.clone());
        tasks.spawn(async move { v.validate(&t, AUDIENCE).await });
    }
    while let Some(r) = tasks.join_next().await {
        assert!(r.unwrap().is_ok());
    }
    assert_eq!(idp.hits("/jwks"), 1);
}

#[tokio::test]
async fn a_short_max_age_is_raised_to_the_floor() {
    let rsa = key("rsa-a", "k1");
    let (idp, clock, v) = setup(&[&rsa]).await;
    idp.serve_json(
        "/jwks",
        200,
        &rsa.jwks(),
        &[("cache-control", "public, max-age=1")],
    );
    let t = long_token(&rsa, &idp.issuer());
    assert!(v.validate(&t, AUDIENCE).await.is_ok());
    clock.advance(FLOOR - Duration::from_secs(1));
    assert!(v.validate(&t, AUDIENCE).await.is_ok());
    assert_eq!(
        idp.hits("/jwks"),
        1,
        "max-age=1 must not cause a refetch before the floor"
    );
    clock.advance(Duration::from_secs(2));
    assert!(v.validate(&t, AUDIENCE).await.is_ok());
    assert_eq!(idp.hits("/jwks"), 2, "refreshed after the floor");
}

#[tokio::test]
async fn max_age_within_bounds_is_followed_and_a_huge_one_is_capped_at_the_ceiling() {
    let rsa = key("rsa-a", "k1");
    let (idp, clock, v) = setup(&[&rsa]).await;
    idp.serve_json(
        "/jwks",
        200,
        &rsa.jwks(),
        &[("cache-control", "max-age=3600")],
    );
    let t = long_token(&rsa, &idp.issuer());
    assert!(v.validate(&t, AUDIENCE).await.is_ok());
    clock.advance(Duration::from_secs(3599));
    assert!(v.validate(&t, AUDIENCE).await.is_ok());
    assert_eq!(idp.hits("/jwks"), 1);
    clock.advance(Duration::from_secs(2));
    assert!(v.validate(&t, AUDIENCE).await.is_ok());
    assert_eq!(idp.hits("/jwks"), 2);

    idp.serve_json(
        "/jwks",
        200,
        &rsa.jwks(),
        &[("cache-control", "max-age=31536000")],
    );
    clock.advance(Duration::from_secs(3601));
    assert!(v.validate(&t, AUDIENCE).await.is_ok());
    assert_eq!(idp.hits("/jwks"), 3);
    clock.advance(DAY - Duration::from_secs(1));
    assert!(v.validate(&t, AUDIENCE).await.is_ok());
    assert_eq!(idp.hits("/jwks"), 3);
    clock.advance(Duration::from_secs(2));
    assert!(v.validate(&t, AUDIENCE).await.is_ok());
    assert_eq!(idp.hits("/jwks"), 4, "a year of max-age is capped at a day");
}

#[tokio::test]
async fn a_token_with_an_unknown_kid_is_refused_after_one_refetch() {
    let rsa = key("rsa-a", "k1");
    let (idp, clock, v) = setup(&[&rsa]).await;
    assert!(
        v.validate(&rsa.sign(&claims(&idp.issuer())), AUDIENCE)
            .await
            .is_ok()
    );
    clock.advance(RATE);
    let stranger = key("rsa-b", "k-unknown");
    let t = stranger.sign(&claims(&idp.issuer()));
    assert_eq!(v.validate(&t, AUDIENCE).await, Err(TokenError::UnknownKey));
    assert_eq!(idp.hits("/jwks"), 2, "one refetch for the unknown kid");
}

#[tokio::test]
async fn a_flood_of_random_kids_causes_at_most_one_refetch_per_interval() {
    let rsa = key("rsa-a", "k1");
    let (idp, clock, v) = setup(&[&rsa]).await;
    let v = Arc::new(v);
    assert!(
        v.validate(&rsa.sign(&claims(&idp.issuer())), AUDIENCE)
            .await
            .is_ok()
    );
    assert_eq!(idp.hits("/jwks"), 1);
    clock.advance(RATE);

    // 1,000 concurrent tokens, each with its own random kid.
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..1000 {
        let t = rsa.sign_with(&claims(&idp.issuer()), |h| {
            h.kid = Some(format!("random-{i}-{}", rand_suffix(i)));
        });
        let v = v.clone();
        tasks.spawn(async move { v.validate(&t, AUDIENCE).await });
    }
    while let Some(r) = tasks.join_next().await {
        assert_eq!(r.unwrap(), Err(TokenError::UnknownKey));
    }
    assert_eq!(
        idp.hits("/jwks"),
        2,
        "1,000 random kids: one shared refetch"
    );

    // And 1,000 more one after the other, within the interval: none.
    for i in 0..1000 {
        let t = rsa.sign_with(&claims(&idp.issuer()), |h| h.kid = Some(format!("seq-{i}")));
        assert_eq!(v.validate(&t, AUDIENCE).await, Err(TokenError::UnknownKey));
    }
    assert_eq!(idp.hits("/jwks"), 2);
    // Good tokens keep working during the flood.
    assert!(
        v.validate(&rsa.sign(&claims(&idp.issuer())), AUDIENCE)
            .await
            .is_ok()
    );

    clock.advance(RATE);
    for i in 0..100 {
        let t = rsa.sign_with(&claims(&idp.issuer()), |h| {
            h.kid = Some(format!("later-{i}"))
        });
        assert_eq!(v.validate(&t, AUDIENCE).await, Err(TokenError::UnknownKey));
    }
    assert_eq!(
        idp.hits("/jwks"),
        3,
        "one more refetch once the interval has passed"
    );
}

fn rand_suffix(i: u64) -> u64 {
    i.wrapping_mul(0x9E37_79B9_7F4A_7C15).rotate_left(17)
}

#[tokio::test]
async fn a_rotated_key_is_picked_up_without_restart_and_a_removed_key_stops_working() {
    let old = key("rsa-a", "2025");
    let new = key("ec-p256", "2026");
    let (idp, clock, v) = setup(&[&old]).await;
    assert!(
        v.validate(&old.sign(&claims(&idp.issuer())), AUDIENCE)
            .await
            .is_ok()
    );

    // The IdP publishes the new key next to the old one and starts signing with it.
    idp.serve_json("/jwks", 200, &json!({"keys": [old.jwk, new.jwk]}), &[]);
    clock.advance(RATE);
    assert!(
        v.validate(&new.sign(&claims(&idp.issuer())), AUDIENCE)
            .await
            .is_ok()
    );
    assert_eq!(idp.hits("/jwks"), 2);
    assert!(
        v.validate(&old.sign(&claims(&idp.issuer())), AUDIENCE)
            .await
            .is_ok()
    );

    // The old key is withdrawn; after the next refresh its tokens are refused.
    idp.serve_json("/jwks", 200, &new.jwks(), &[]);
    clock.advance(FLOOR + Duration::from_secs(1));
    assert!(
        v.validate(&new.sign(&claims(&idp.issuer())), AUDIENCE)
            .await
            .is_ok()
    );
    assert_eq!(
        v.validate(&old.sign(&claims(&idp.issuer())), AUDIENCE)
            .await,
        Err(TokenError::UnknownKey)
    );
}

#[tokio::test]
async fn with_the_jwks_endpoint_down_cached_keys_still_validate() {
    let rsa = key("rsa-a", "k1");
    let (idp, clock, v) = setup(&[&rsa]).await;
    let t = long_token(&rsa, &idp.issuer());
    assert!(v.validate(&t, AUDIENCE).await.is_ok());
    idp.fail("/jwks");
    clock.advance(FLOOR + Duration::from_secs(1));
    assert!(
        v.validate(&t, AUDIENCE).await.is_ok(),
        "stale keys within max age are used"
    );
    assert_eq!(idp.hits("/jwks"), 2, "the refresh was attempted");
    // Failed refreshes are retried at most once per interval.
    for _ in 0..50 {
        assert!(v.validate(&t, AUDIENCE).await.is_ok());
    }
    assert_eq!(idp.hits("/jwks"), 2);
    clock.advance(RATE);
    assert!(v.validate(&t, AUDIENCE).await.is_ok());
    assert_eq!(idp.hits("/jwks"), 3);
}

#[tokio::test]
async fn with_the_jwks_endpoint_down_and_nothing_cached_validation_fails_closed() {
    let rsa = key("rsa-a", "k1");
    let (idp, clock, v) = setup(&[&rsa]).await;
    idp.fail("/jwks");
    let t = rsa.sign(&claims(&idp.issuer()));
    assert_eq!(
        v.validate(&t, AUDIENCE).await,
        Err(TokenError::KeysUnavailable)
    );
    assert_eq!(
        v.validate(&t, AUDIENCE).await,
        Err(TokenError::KeysUnavailable)
    );
    assert_eq!(idp.hits("/jwks"), 1, "no retry within the interval");
    // It recovers once the endpoint does.
    idp.serve_json("/jwks", 200, &rsa.jwks(), &[]);
    clock.advance(RATE);
    assert!(v.validate(&t, AUDIENCE).await.is_ok());
}

#[tokio::test]
async fn with_no_jwks_server_at_all_validation_fails_closed() {
    let rsa = key("rsa-a", "k1");
    // A port nothing listens on.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let clock = Arc::new(ManualClock::new());
    let mut config = portcullis_auth::resource::ResourceServerConfig::new(vec![IssuerConfig {
        issuer: format!("http://{addr}"),
        jwks_uri: Some(format!("http://{addr}/jwks")),
    }]);
    config.clock = clock;
    let v = TokenValidator::new(config, egress()).unwrap();
    let t = rsa.sign(&claims(&format!("http://{addr}")));
    assert_eq!(
        v.validate(&t, AUDIENCE).await,
        Err(TokenError::KeysUnavailable)
    );
}

#[tokio::test]
async fn keys_older_than_the_max_age_are_not_used_when_refresh_fails() {
    let rsa = key("rsa-a", "k1");
    let (idp, clock, v) = setup(&[&rsa]).await;
    let t = long_token(&rsa, &idp.issuer());
    assert!(v.validate(&t, AUDIENCE).await.is_ok());
    idp.fail("/jwks");
    clock.advance(DAY - Duration::from_secs(1));
    assert!(v.validate(&t, AUDIENCE).await.is_ok());
    clock.advance(Duration::from_secs(2));
    assert_eq!(
        v.validate(&t, AUDIENCE).await,
        Err(TokenError::KeysUnavailable)
    );
}

#[tokio::test]
async fn an_oversized_or_invalid_jwks_is_refused() {
    let rsa = key("rsa-a", "k1");
    let (idp, _, v) = setup(&[&rsa]).await;
    let mut big = rsa.jwks();
    big["padding"] = json!("x".repeat(70 * 1024));
    idp.serve_json("/jwks", 200, &big, &[]);
    let t = rsa.sign(&claims(&idp.issuer()));
    assert_eq!(
        v.validate(&t, AUDIENCE).await,
        Err(TokenError::KeysUnavailable)
    );

    let (idp, _, v) = setup(&[&rsa]).await;
    idp.serve_bytes("/jwks", 200, b"{\"keys\":[] , \"keys\":[]}".to_vec(), &[]);
    let t = rsa.sign(&claims(&idp.issuer()));
    assert_eq!(
        v.validate(&t, AUDIENCE).await,
        Err(TokenError::KeysUnavailable)
    );

    let (idp, _, v) = setup(&[&rsa]).await;
    let many: Vec<_> = (0..101)
        .map(|i| key("ec-p256", &i.to_string()).jwk)
        .collect();
    idp.serve_json("/jwks", 200, &json!({ "keys": many }), &[]);
    let t = rsa.sign(&claims(&idp.issuer()));
    assert_eq!(
        v.validate(&t, AUDIENCE).await,
        Err(TokenError::KeysUnavailable)
    );
}

#[tokio::test]
async fn a_symmetric_key_in_the_jwks_is_never_used() {
    let rsa = key("rsa-a", "k1");
    let (idp, _, v) = setup(&[&rsa]).await;
    idp.serve_json(
        "/jwks",
        200,
        &json!({"keys": [{"kty": "oct", "kid": "h1", "k": "c2VjcmV0LXNlY3JldC1zZWNyZXQ"}, rsa.jwk]}),
        &[],
    );
    let hs = raw_token(
        &json!({"alg": "HS256", "kid": "h1"}),
        &claims(&idp.issuer()),
        b"sig",
    );
    assert_eq!(
        v.validate(&hs, AUDIENCE).await,
        Err(TokenError::AlgorithmNotAllowed)
    );
    assert!(
        v.validate(&rsa.sign(&claims(&idp.issuer())), AUDIENCE)
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn the_jwks_uri_is_discovered_from_the_issuer_metadata() {
    let rsa = key("rsa-a", "k1");
    let idp = Idp::start().await;
    idp.serve_json("/keys/signing", 200, &rsa.jwks(), &[]);
    idp.serve_json(
        "/.well-known/oauth-authorization-server",
        200,
        &json!({"issuer": idp.issuer(), "jwks_uri": idp.url("/keys/signing")}),
        &[],
    );
    let clock = Arc::new(ManualClock::new());
    let mut config = config_for(&idp, &clock);
    config.issuers[0].jwks_uri = None;
    let v = TokenValidator::new(config, egress()).unwrap();
    let t = rsa.sign(&claims(&idp.issuer()));
    assert!(v.validate(&t, AUDIENCE).await.is_ok());
    assert!(v.validate(&t, AUDIENCE).await.is_ok());
    assert_eq!(idp.hits("/.well-known/oauth-authorization-server"), 1);
    assert_eq!(idp.hits("/keys/signing"), 1);
}

#[tokio::test]
async fn warming_the_cache_fetches_before_the_first_request() {
    let rsa = key("rsa-a", "k1");
    let (idp, _, v) = setup(&[&rsa]).await;
    let cache = v.key_cache(&idp.issuer()).unwrap();
    assert_eq!(cache.refresh().await.unwrap(), 1);
    assert_eq!(idp.hits("/jwks"), 1);
    assert!(
        v.validate(&rsa.sign(&claims(&idp.issuer())), AUDIENCE)
            .await
            .is_ok()
    );
    assert_eq!(idp.hits("/jwks"), 1);
    assert!(v.key_cache("https://not-configured.example").is_none());
}
