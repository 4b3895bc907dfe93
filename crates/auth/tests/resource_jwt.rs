//! JWT access-token validation end to end (keys served by a local identity provider): what is
//! accepted, and one test per attack, each asserting the specific refusal.

mod resource_support;

use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use portcullis_auth::resource::{TokenError, TokenValidator};
use resource_support::*;
use serde_json::json;

#[tokio::test]
async fn a_valid_token_yields_its_principal_scopes_and_expiry() {
    let rsa = key("rsa-a", "k1");
    let (idp, _, v) = setup(&[&rsa]).await;
    let claims = claims(&idp.issuer());
    let t = v.validate(&rsa.sign(&claims), AUDIENCE).await.unwrap();
    assert_eq!(t.issuer, idp.issuer());
    assert_eq!(t.subject, "alice");
    assert_eq!(t.client_id.as_deref(), Some("claude-desktop"));
    assert_eq!(t.scopes, ["mcp:tools", "files:read"]);
    assert_eq!(
        t.expires_at,
        UNIX_EPOCH + Duration::from_secs(claims["exp"].as_u64().unwrap())
    );
    assert_eq!(t.claims["iat"], claims["iat"]);
}

#[tokio::test]
async fn every_asymmetric_algorithm_verifies_with_its_own_key_type() {
    let keys = [
        key("rsa-a", "rs"),
        key("rsa-b", "ps").with_alg(Algorithm::PS384),
        key("ec-p256", "es256"),
        key("ec-p384", "es384"),
        key("ed25519", "ed"),
    ];
    let refs: Vec<_> = keys.iter().collect();
    let (idp, _, v) = setup(&refs).await;
    for k in &keys {
        let t = k.sign(&claims(&idp.issuer()));
        assert!(v.validate(&t, AUDIENCE).await.is_ok(), "{:?}", k.alg);
    }
    assert_eq!(idp.hits("/jwks"), 1, "the keys are fetched once and cached");
}

#[tokio::test]
async fn typ_at_jwt_application_at_jwt_jwt_and_no_typ_are_accepted() {
    let rsa = key("rsa-a", "k1");
    let (idp, _, v) = setup(&[&rsa]).await;
    for typ in [
        Some("at+jwt"),
        Some("application/at+jwt"),
        Some("JWT"),
        None,
    ] {
        let t = rsa.sign_with(&claims(&idp.issuer()), |h| h.typ = typ.map(Into::into));
        assert!(v.validate(&t, AUDIENCE).await.is_ok(), "{typ:?}");
    }
    let t = rsa.sign_with(&claims(&idp.issuer()), |h| {
        h.typ = Some("id_token+jwt".into())
    });
    assert_eq!(v.validate(&t, AUDIENCE).await, Err(TokenError::Malformed));
}

#[tokio::test]
async fn scopes_are_read_from_scope_or_from_an_scp_array() {
    let rsa = key("rsa-a", "k1");
    let (idp, _, v) = setup(&[&rsa]).await;
    let mut c = claims(&idp.issuer());
    c.as_object_mut().unwrap().remove("scope");
    c["scp"] = json!(["tickets:read", "tickets:write"]);
    let t = v.validate(&rsa.sign(&c), AUDIENCE).await.unwrap();
    assert_eq!(t.scopes, ["tickets:read", "tickets:write"]);
    c.as_object_mut().unwrap().remove("scp");
    let t = v.validate(&rsa.sign(&c), AUDIENCE).await.unwrap();
    assert!(t.scopes.is_empty());
}

#[tokio::test]
async fn a_token_signed_with_alg_none_is_refused() {
    let rsa = key("rsa-a", "k1");
    let (idp, _, v) = setup(&[&rsa]).await;
    for alg in ["none", "None"] {
        let t = raw_token(
            &json!({"alg": alg, "kid": "k1"}),
            &claims(&idp.issuer()),
            b"",
        );
        assert_eq!(
            v.validate(&t, AUDIENCE).await,
            Err(TokenError::AlgorithmNotAllowed)
        );
    }
    assert_eq!(idp.hits("/jwks"), 0, "refused before any key lookup");
}

#[tokio::test]
async fn an_hs256_token_keyed_with_the_rsa_public_key_is_refused() {
    let rsa = key("rsa-a", "k1");
    let (idp, _, v) = setup(&[&rsa]).await;
    // The classic confusion: the attacker uses the published key bytes as an HMAC secret.
    for secret in [
        rsa.jwk["n"].as_str().unwrap().as_bytes(),
        rsa.jwk.to_string().as_bytes(),
    ] {
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some("k1".into());
        let t = jsonwebtoken::encode(
            &header,
            &claims(&idp.issuer()),
            &EncodingKey::from_secret(secret),
        )
        .unwrap();
        assert_eq!(
            v.validate(&t, AUDIENCE).await,
            Err(TokenError::AlgorithmNotAllowed)
        );
    }
}

#[tokio::test]
async fn a_token_whose_alg_does_not_fit_the_key_is_refused() {
    let rsa = key("rsa-a", "k1");
    let ec = key("ec-p256", "e1");
    let (idp, _, v) = setup(&[&rsa]).await;
    // An ES256 token naming the RSA key's kid.
    let t = ec.sign_with(&claims(&idp.issuer()), |h| h.kid = Some("k1".into()));
    assert_eq!(
        v.validate(&t, AUDIENCE).await,
        Err(TokenError::AlgorithmNotAllowed)
    );

    // A JWK that pins RS256 does not verify PS256, even with the right key.
    let mut pinned = key("rsa-a", "pinned");
    pinned.jwk["alg"] = json!("RS256");
    let (idp, _, v) = setup(&[&pinned]).await;
    let ps = key("rsa-a", "pinned").with_alg(Algorithm::PS256);
    let t = ps.sign(&claims(&idp.issuer()));
    assert_eq!(
        v.validate(&t, AUDIENCE).await,
        Err(TokenError::AlgorithmNotAllowed)
    );
}

#[tokio::test]
async fn an_unconfigured_algorithm_is_refused_even_with_a_good_signature() {
    let ec = key("ec-p256", "e1");
    let idp = Idp::start().await;
    idp.serve_json("/jwks", 200, &ec.jwks(), &[]);
    let clock = Arc::new(portcullis_auth::resource::ManualClock::new());
    let mut config = config_for(&idp, &clock);
    config.algorithms = vec!["RS256".into()];
    let v = TokenValidator::new(config, egress()).unwrap();
    let t = ec.sign(&claims(&idp.issuer()));
    assert_eq!(
        v.validate(&t, AUDIENCE).await,
        Err(TokenError::AlgorithmNotAllowed)
    );
}

#[tokio::test]
async fn a_token_for_another_resource_is_refused() {
    let rsa = key("rsa-a", "k1");
    let (idp, _, v) = setup(&[&rsa]).await;
    let mut c = claims(&idp.issuer());
    c["aud"] = json!("https://mcp.example.com/mcp/tickets");
    assert_eq!(
        v.validate(&rsa.sign(&c), AUDIENCE).await,
        Err(TokenError::WrongAudience)
    );
    c["aud"] = json!(["https://other.example", "https://mcp.example.com/mcp"]);
    assert_eq!(
        v.validate(&rsa.sign(&c), AUDIENCE).await,
        Err(TokenError::WrongAudience)
    );
    // The same token is fine for the resource it was issued for.
    c["aud"] = json!(["https://other.example", AUDIENCE]);
    assert!(v.validate(&rsa.sign(&c), AUDIENCE).await.is_ok());
}

#[tokio::test]
async fn a_token_from_an_untrusted_issuer_is_refused_without_fetching_its_keys() {
    let rsa = key("rsa-a", "k1");
    let (idp, _, v) = setup(&[&rsa]).await;
    let evil = Idp::start().await;
    evil.serve_json("/jwks", 200, &rsa.jwks(), &[]);
    let mut c = claims(&evil.issuer());
    assert_eq!(
        v.validate(&rsa.sign(&c), AUDIENCE).await,
        Err(TokenError::WrongIssuer)
    );
    // A lookalike of the trusted issuer is another issuer.
    c["iss"] = json!(format!("{}/", idp.issuer()));
    assert_eq!(
        v.validate(&rsa.sign(&c), AUDIENCE).await,
        Err(TokenError::WrongIssuer)
    );
    c.as_object_mut().unwrap().remove("iss");
    assert_eq!(
        v.validate(&rsa.sign(&c), AUDIENCE).await,
        Err(TokenError::MissingClaim("iss".into()))
    );
    assert!(evil.requests().is_empty());
}

#[tokio::test]
async fn an_expired_token_is_refused() {
    let rsa = key("rsa-a", "k1");
    let (idp, clock, v) = setup(&[&rsa]).await;
    let mut c = claims(&idp.issuer());
    c["exp"] = json!(unix_now() - 120);
    assert_eq!(
        v.validate(&rsa.sign(&c), AUDIENCE).await,
        Err(TokenError::Expired)
    );
    // A token valid now expires once the clock passes exp plus the leeway.
    let t = rsa.sign(&claims(&idp.issuer()));
    assert!(v.validate(&t, AUDIENCE).await.is_ok());
    clock.advance(Duration::from_secs(300 + 61));
    assert_eq!(v.validate(&t, AUDIENCE).await, Err(TokenError::Expired));
}

#[tokio::test]
async fn a_token_with_nbf_in_the_future_is_refused() {
    let rsa = key("rsa-a", "k1");
    let (idp, _, v) = setup(&[&rsa]).await;
    let mut c = claims(&idp.issuer());
    c["nbf"] = json!(unix_now() + 120);
    assert_eq!(
        v.validate(&rsa.sign(&c), AUDIENCE).await,
        Err(TokenError::NotYetValid)
    );
    c["nbf"] = json!(unix_now() + 30);
    assert!(
        v.validate(&rsa.sign(&c), AUDIENCE).await.is_ok(),
        "within the leeway"
    );
}

#[tokio::test]
async fn a_token_issued_far_in_the_future_is_refused() {
    let rsa = key("rsa-a", "k1");
    let (idp, _, v) = setup(&[&rsa]).await;
    let mut c = claims(&idp.issuer());
    c["iat"] = json!(unix_now() + 86_400);
    c["exp"] = json!(unix_now() + 90_000);
    assert_eq!(
        v.validate(&rsa.sign(&c), AUDIENCE).await,
        Err(TokenError::NotYetValid)
    );
}

#[tokio::test]
async fn a_token_without_sub_or_exp_is_refused() {
    let rsa = key("rsa-a", "k1");
    let (idp, _, v) = setup(&[&rsa]).await;
    for claim in ["sub", "exp", "aud"] {
        let mut c = claims(&idp.issuer());
        c.as_object_mut().unwrap().remove(claim);
        assert_eq!(
            v.validate(&rsa.sign(&c), AUDIENCE).await,
            Err(TokenError::MissingClaim(claim.into()))
        );
    }
}

#[tokio::test]
async fn a_configured_required_claim_must_be_present() {
    let rsa = key("rsa-a", "k1");
    let idp = Idp::start().await;
    idp.serve_json("/jwks", 200, &rsa.jwks(), &[]);
    let clock = Arc::new(portcullis_auth::resource::ManualClock::new());
    let mut config = config_for(&idp, &clock);
    config.required_claims = vec!["jti".into()];
    let v = TokenValidator::new(config, egress()).unwrap();
    let mut c = claims(&idp.issuer());
    assert_eq!(
        v.validate(&rsa.sign(&c), AUDIENCE).await,
        Err(TokenError::MissingClaim("jti".into()))
    );
    c["jti"] = json!("abc");
    assert!(v.validate(&rsa.sign(&c), AUDIENCE).await.is_ok());
}

#[tokio::test]
async fn a_token_signed_by_an_outside_key_under_a_published_kid_is_refused() {
    let published = key("rsa-a", "k1");
    let (idp, _, v) = setup(&[&published]).await;
    let impostor = key("rsa-b", "k1");
    let t = impostor.sign(&claims(&idp.issuer()));
    assert_eq!(
        v.validate(&t, AUDIENCE).await,
        Err(TokenError::InvalidSignature)
    );
}

#[tokio::test]
async fn a_token_with_an_edited_payload_is_refused() {
    let rsa = key("rsa-a", "k1");
    let (idp, _, v) = setup(&[&rsa]).await;
    let t = rsa.sign(&claims(&idp.issuer()));
    let parts: Vec<&str> = t.split('.').collect();
    let mut c = claims(&idp.issuer());
    c["sub"] = json!("admin");
    let forged = raw_token(
        &json!({"alg": "RS256", "kid": "k1", "typ": "at+jwt"}),
        &c,
        b"x",
    );
    let forged = format!(
        "{}.{}.{}",
        parts[0],
        forged.split('.').nth(1).unwrap(),
        parts[2]
    );
    assert_eq!(
        v.validate(&forged, AUDIENCE).await,
        Err(TokenError::InvalidSignature)
    );
}

#[tokio::test]
async fn jku_x5u_and_jwk_headers_are_refused_and_never_followed() {
    let rsa = key("rsa-a", "k1");
    let (idp, _, v) = setup(&[&rsa]).await;
    // The attacker's server publishes the attacker's key.
    let evil = Idp::start().await;
    let attacker = key("rsa-b", "k1");
    evil.serve_json("/jwks", 200, &attacker.jwks(), &[]);
    evil.serve_json("/cert", 200, &json!({}), &[]);
    let c = claims(&idp.issuer());
    let jku = attacker.sign_with(&c, |h| h.jku = Some(evil.url("/jwks")));
    assert_eq!(
        v.validate(&jku, AUDIENCE).await,
        Err(TokenError::ForbiddenHeader("jku"))
    );
    let x5u = attacker.sign_with(&c, |h| h.x5u = Some(evil.url("/cert")));
    assert_eq!(
        v.validate(&x5u, AUDIENCE).await,
        Err(TokenError::ForbiddenHeader("x5u"))
    );
    let embedded: jsonwebtoken::jwk::Jwk = serde_json::from_value(attacker.jwk.clone()).unwrap();
    let jwk = attacker.sign_with(&c, |h| h.jwk = Some(embedded));
    assert_eq!(
        v.validate(&jwk, AUDIENCE).await,
        Err(TokenError::ForbiddenHeader("jwk"))
    );
    assert!(
        evil.requests().is_empty(),
        "the attacker's server was contacted"
    );
    assert_eq!(idp.hits("/jwks"), 0);
}

#[tokio::test]
async fn a_kid_that_looks_like_a_path_or_url_is_only_a_lookup_key() {
    let rsa = key("rsa-a", "k1");
    let (idp, _, v) = setup(&[&rsa]).await;
    let evil = Idp::start().await;
    for kid in ["../../jwks", "/jwks", &evil.url("/jwks"), "k1/../k1"] {
        let t = rsa.sign_with(&claims(&idp.issuer()), |h| h.kid = Some(kid.to_owned()));
        assert_eq!(
            v.validate(&t, AUDIENCE).await,
            Err(TokenError::UnknownKey),
            "{kid}"
        );
    }
    assert!(evil.requests().is_empty());
    assert!(idp.requests().iter().all(|r| r.path == "/jwks"));
}

#[tokio::test]
async fn a_64_kib_token_is_refused_before_parsing() {
    let rsa = key("rsa-a", "k1");
    let (idp, _, v) = setup(&[&rsa]).await;
    let mut c = claims(&idp.issuer());
    c["pad"] = json!("x".repeat(64 * 1024));
    let t = rsa.sign(&c);
    assert!(t.len() > 64 * 1024);
    assert_eq!(v.validate(&t, AUDIENCE).await, Err(TokenError::TooLarge));
    assert_eq!(idp.hits("/jwks"), 0);
}

#[tokio::test]
async fn a_token_without_kid_uses_the_only_key_that_fits_its_alg() {
    let rsa = key("rsa-a", "k1");
    let ec = key("ec-p256", "e1");
    let (idp, _, v) = setup(&[&rsa, &ec]).await;
    let t = rsa.sign_with(&claims(&idp.issuer()), |h| h.kid = None);
    assert!(v.validate(&t, AUDIENCE).await.is_ok());
    // Two RSA keys: a token without kid is ambiguous.
    let other = key("rsa-b", "k2");
    let (idp, _, v) = setup(&[&rsa, &other]).await;
    let t = rsa.sign_with(&claims(&idp.issuer()), |h| h.kid = None);
    assert_eq!(v.validate(&t, AUDIENCE).await, Err(TokenError::UnknownKey));
}
