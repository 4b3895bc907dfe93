//! A tiny OAuth authorization server inside the benchmark process, on 127.0.0.1: what the
//! `jwt` and `http-auth` parts validate tokens against.
//!
//! It publishes RFC 8414 metadata (`issuer` is its own URL, so discovery's issuer check
//! holds) and a JWKS with an RSA 2048 and a P-256 key made for this run with aws-lc-rs, mints
//! RFC 9068 access tokens (`typ: at+jwt`) signed with them, and counts the requests it gets:
//! a key cache that works costs it a metadata and a JWKS fetch, however many tokens are
//! checked. Signing is aws-lc-rs's own, so the validator (jsonwebtoken on aws-lc-rs) checks
//! signatures it did not make itself.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, anyhow};
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::{KeyPair as RsaKeyPair, KeySize};
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair as _, RSA_PKCS1_SHA256,
};
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

/// The path of the RFC 8414 metadata (an issuer without a path: at the root).
pub const METADATA_PATH: &str = "/.well-known/oauth-authorization-server";
pub const JWKS_PATH: &str = "/jwks";
/// How long the JWKS may be cached: longer than any run, so a refresh never lands in one.
const JWKS_MAX_AGE: &str = "max-age=3600";
/// Lifetime of a minted token: longer than any run.
const TOKEN_LIFETIME_SECS: u64 = 3600;

const RSA_KID: &str = "bench-rsa-2048";
const EC_KID: &str = "bench-p256";

/// The signature algorithms the server signs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Alg {
    Rs256,
    Es256,
}

impl Alg {
    fn name(self) -> &'static str {
        match self {
            Alg::Rs256 => "RS256",
            Alg::Es256 => "ES256",
        }
    }

    fn kid(self) -> &'static str {
        match self {
            Alg::Rs256 => RSA_KID,
            Alg::Es256 => EC_KID,
        }
    }
}

/// The server's key pairs and their public JWK Set. No `Debug`: it holds private keys.
struct SigningKeys {
    rsa: RsaKeyPair,
    ec: EcdsaKeyPair,
    jwks: Value,
}

impl SigningKeys {
    /// Fresh keys (RSA generation takes some tens of milliseconds).
    fn generate() -> anyhow::Result<SigningKeys> {
        let rsa = RsaKeyPair::generate(KeySize::Rsa2048)
            .map_err(|_| anyhow!("cannot generate an RSA 2048 key"))?;
        let ec = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING)
            .map_err(|_| anyhow!("cannot generate a P-256 key"))?;
        let public = rsa.public_key();
        let b64 = |bytes: &[u8]| URL_SAFE_NO_PAD.encode(bytes);
        let rsa_jwk = json!({
            "kty": "RSA", "kid": RSA_KID, "use": "sig", "alg": "RS256",
            "n": b64(public.modulus().big_endian_without_leading_zero()),
            "e": b64(public.exponent().big_endian_without_leading_zero()),
        });
        // X9.62 uncompressed point: 0x04 ‖ x ‖ y, 32 bytes each on P-256.
        let point = ec.public_key().as_ref();
        if point.len() != 65 || point[0] != 4 {
            anyhow::bail!("unexpected P-256 public key encoding");
        }
        let ec_jwk = json!({
            "kty": "EC", "kid": EC_KID, "use": "sig", "alg": "ES256", "crv": "P-256",
            "x": b64(&point[1..33]), "y": b64(&point[33..]),
        });
        Ok(SigningKeys {
            rsa,
            ec,
            jwks: json!({ "keys": [rsa_jwk, ec_jwk] }),
        })
    }

    /// The JWS signature of `input` (RS256: PKCS#1 v1.5; ES256: r ‖ s, as JWS wants).
    fn sign(&self, alg: Alg, input: &[u8]) -> anyhow::Result<Vec<u8>> {
        let rng = SystemRandom::new();
        match alg {
            Alg::Rs256 => {
                let mut sig = vec![0; self.rsa.public_modulus_len()];
                self.rsa
                    .sign(&RSA_PKCS1_SHA256, &rng, input, &mut sig)
                    .map_err(|_| anyhow!("RS256 signing failed"))?;
                Ok(sig)
            }
            Alg::Es256 => Ok(self
                .ec
                .sign(&rng, input)
                .map_err(|_| anyhow!("ES256 signing failed"))?
                .as_ref()
                .to_vec()),
        }
    }
}

/// Requests the server answered, by what they asked for.
#[derive(Debug, Default)]
struct Hits {
    metadata: AtomicUsize,
    jwks: AtomicUsize,
    other: AtomicUsize,
}

/// How many times each document was fetched.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Fetches {
    pub metadata: usize,
    pub jwks: usize,
    /// Any other path (nothing should ask for one).
    pub other: usize,
}

#[derive(Clone)]
struct Served {
    metadata: Arc<Vec<u8>>,
    jwks: Arc<Vec<u8>>,
    hits: Arc<Hits>,
}

/// The running server; stopped when dropped.
pub struct AuthServer {
    issuer: String,
    keys: Arc<SigningKeys>,
    hits: Arc<Hits>,
    task: tokio::task::JoinHandle<()>,
}

impl AuthServer {
    /// Generates the keys and starts serving on 127.0.0.1 (a port of its own).
    pub async fn start() -> anyhow::Result<AuthServer> {
        let keys = tokio::task::spawn_blocking(SigningKeys::generate)
            .await
            .context("key generation panicked")??;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .context("the authorization server cannot listen on 127.0.0.1")?;
        let addr = listener.local_addr()?;
        let issuer = format!("http://{addr}");
        let metadata = json!({
            "issuer": issuer,
            "jwks_uri": format!("{issuer}{JWKS_PATH}"),
            "token_endpoint": format!("{issuer}/token"),
            "response_types_supported": ["code"],
            "grant_types_supported": ["authorization_code", "client_credentials"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic"],
            "scopes_supported": ["mcp:tools"],
        });
        let hits = Arc::new(Hits::default());
        let served = Served {
            metadata: Arc::new(metadata.to_string().into_bytes()),
            jwks: Arc::new(keys.jwks.to_string().into_bytes()),
            hits: hits.clone(),
        };
        let app = axum::Router::new()
            .route(METADATA_PATH, get(serve_metadata))
            .route(JWKS_PATH, get(serve_jwks))
            .fallback(serve_other)
            .with_state(served);
        let task = tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                eprintln!("portcullis-bench: the authorization server stopped: {e}");
            }
        });
        Ok(AuthServer {
            issuer,
            keys: Arc::new(keys),
            hits,
            task,
        })
    }

    /// Its issuer identifier, `http://127.0.0.1:<port>` (no trailing slash).
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The requests it has answered so far.
    pub fn fetches(&self) -> Fetches {
        Fetches {
            metadata: self.hits.metadata.load(Ordering::Relaxed),
            jwks: self.hits.jwks.load(Ordering::Relaxed),
            other: self.hits.other.load(Ordering::Relaxed),
        }
    }

    /// An access token for `audience`, valid for an hour, signed with `alg`.
    pub fn mint(&self, alg: Alg, audience: &str) -> anyhow::Result<String> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .context("the clock is before 1970")?
            .as_secs();
        let mut jti = [0u8; 16];
        aws_lc_rs::rand::fill(&mut jti).map_err(|_| anyhow!("no random bytes"))?;
        let claims = access_token_claims(&self.issuer, audience, now, &jti);
        let header = json!({ "alg": alg.name(), "typ": "at+jwt", "kid": alg.kid() });
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let signature = self.keys.sign(alg, input.as_bytes())?;
        Ok(format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature)))
    }
}

impl Drop for AuthServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The claims of an RFC 9068 access token as an identity provider issues them to an MCP
/// client: a user subject, the client, the resource, a few scopes and groups. With an RS256
/// signature the token is some 800 bytes, a usual size.
fn access_token_claims(issuer: &str, audience: &str, now: u64, jti: &[u8]) -> Value {
    let jti: String = jti.iter().map(|b| format!("{b:02x}")).collect();
    json!({
        "iss": issuer,
        "sub": "5f0c2a9e-7d41-4b8a-9c3e-2f6d8b1a4e70",
        "client_id": "portcullis-bench-client",
        "aud": audience,
        "scope": "mcp:tools files:read tickets:read",
        "iat": now,
        "exp": now + TOKEN_LIFETIME_SECS,
        "jti": jti,
        "groups": ["engineering", "oncall"],
    })
}

async fn serve_metadata(State(s): State<Served>) -> Response {
    s.hits.metadata.fetch_add(1, Ordering::Relaxed);
    json_response(&s.metadata, None)
}

async fn serve_jwks(State(s): State<Served>) -> Response {
    s.hits.jwks.fetch_add(1, Ordering::Relaxed);
    json_response(&s.jwks, Some(JWKS_MAX_AGE))
}

async fn serve_other(State(s): State<Served>) -> Response {
    s.hits.other.fetch_add(1, Ordering::Relaxed);
    (StatusCode::NOT_FOUND, "not found").into_response()
}

fn json_response(body: &Arc<Vec<u8>>, cache: Option<&'static str>) -> Response {
    let mut resp = Response::new(axum::body::Body::from(body.as_ref().clone()));
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if let Some(cache) = cache {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "current_thread")]
    async fn it_publishes_its_metadata_and_keys_and_counts_the_fetches() -> anyhow::Result<()> {
        let server = AuthServer::start().await?;
        let http = reqwest::Client::builder().no_proxy().build()?;
        let meta = http
            .get(format!("{}{METADATA_PATH}", server.issuer()))
            .send()
            .await?
            .bytes()
            .await?;
        let meta: Value = serde_json::from_slice(&meta)?;
        assert_eq!(meta["issuer"].as_str(), Some(server.issuer()));
        let jwks = http
            .get(meta["jwks_uri"].as_str().unwrap_or(""))
            .send()
            .await?;
        assert_eq!(
            jwks.headers().get(header::CACHE_CONTROL),
            Some(&HeaderValue::from_static(JWKS_MAX_AGE))
        );
        let jwks: Value = serde_json::from_slice(&jwks.bytes().await?)?;
        let keys = jwks["keys"].as_array().map_or(0, Vec::len);
        assert_eq!(keys, 2);
        let missing = http
            .get(format!(
                "{}/.well-known/openid-configuration",
                server.issuer()
            ))
            .send()
            .await?;
        assert_eq!(missing.status(), reqwest::StatusCode::NOT_FOUND);
        assert_eq!(
            server.fetches(),
            Fetches {
                metadata: 1,
                jwks: 1,
                other: 1
            }
        );
        Ok(())
    }

    #[tokio::test(flavor = "current_thread")]
    async fn minted_tokens_carry_the_claims_and_header_of_an_access_token() -> anyhow::Result<()> {
        let server = AuthServer::start().await?;
        let token = server.mint(Alg::Rs256, "http://127.0.0.1:1/mcp/demo")?;
        let parts: Vec<&str> = token.split('.').collect();
        assert_eq!(parts.len(), 3);
        let header: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0])?)?;
        assert_eq!(header["typ"], "at+jwt");
        assert_eq!(header["kid"], RSA_KID);
        let claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1])?)?;
        assert_eq!(claims["iss"].as_str(), Some(server.issuer()));
        assert_eq!(claims["aud"], "http://127.0.0.1:1/mcp/demo");
        assert!(claims["exp"].as_u64() > claims["iat"].as_u64());
        // 2048-bit RSA: a 256-byte signature.
        assert_eq!(URL_SAFE_NO_PAD.decode(parts[2])?.len(), 256);
        let es = server.mint(Alg::Es256, "http://127.0.0.1:1/mcp/demo")?;
        let sig = es.rsplit('.').next().unwrap_or("");
        assert_eq!(URL_SAFE_NO_PAD.decode(sig)?.len(), 64);
        // Two tokens never share a jti.
        assert_ne!(
            token,
            server.mint(Alg::Rs256, "http://127.0.0.1:1/mcp/demo")?
        );
        Ok(())
    }
}
