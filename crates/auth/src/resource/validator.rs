//! The token validator: what the gateway calls with each request's bearer token.
//!
//! A JWT access token (RFC 9068) is verified locally: header rules ([`super::jwt`]), `iss`
//! one of the configured issuers, the signature with that issuer's key for the token's `kid`
//! ([`super::jwks`]), then the claims ([`super::claims`]). Anything that is not a JWS
//! compact token is opaque: it is introspected (RFC 7662) when introspection is configured,
//! and refused otherwise.

use std::sync::Arc;
use std::time::Duration;

use jsonwebtoken::Algorithm;
use portcullis_egress::EgressClient;
use serde_json::Value;

use super::bearer::MAX_TOKEN_BYTES;
use super::claims::{self, ClaimRules, VerifiedToken};
use super::clock::{Clock, SystemClock};
use super::discovery::{self, DiscoveryConfig, DiscoveryError, LazyMetadata};
use super::error::TokenError;
use super::fetch::{self, InvalidEndpoint};
use super::introspection::{EndpointSource, IntrospectionConfig, Introspector};
use super::jwks::{JwksSource, KeyCache, KeyCacheConfig};
use super::jwt;

/// The algorithms accepted unless configured otherwise: every asymmetric JWS algorithm this
/// crate verifies.
pub const DEFAULT_ALGORITHMS: [&str; 9] = [
    "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA",
];

/// One trusted authorization server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuerConfig {
    /// The issuer identifier, compared exactly with `iss` (and with the discovered metadata).
    pub issuer: String,
    /// The JWKS URL; discovered from the issuer's metadata when absent.
    pub jwks_uri: Option<String>,
}

/// Everything the validator is configured with. Start from [`ResourceServerConfig::new`].
#[derive(Debug, Clone)]
pub struct ResourceServerConfig {
    pub issuers: Vec<IssuerConfig>,
    /// JWS algorithm names. `none` and `HS*` are refused at construction, whatever is
    /// configured. Default: [`DEFAULT_ALGORITHMS`].
    pub algorithms: Vec<String>,
    /// Clock skew allowed on `exp`, `nbf` and `iat` (default 60 s).
    pub leeway: Duration,
    /// Claims that must be present besides `iss`, `sub`, `aud` and `exp`.
    pub required_claims: Vec<String>,
    pub introspection: Option<IntrospectionConfig>,
    pub keys: KeyCacheConfig,
    pub discovery: DiscoveryConfig,
    pub clock: Arc<dyn Clock>,
}

impl ResourceServerConfig {
    pub fn new(issuers: Vec<IssuerConfig>) -> Self {
        ResourceServerConfig {
            issuers,
            algorithms: DEFAULT_ALGORITHMS.iter().map(|a| a.to_string()).collect(),
            leeway: Duration::from_secs(60),
            required_claims: Vec::new(),
            introspection: None,
            keys: KeyCacheConfig::default(),
            discovery: DiscoveryConfig::default(),
            clock: Arc::new(SystemClock::new()),
        }
    }
}

/// A configuration the validator refuses to run with.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("no issuer is configured: every token would be refused")]
    NoIssuer,
    #[error("issuer {0:?} is configured twice")]
    DuplicateIssuer(String),
    #[error("invalid issuer: {0}")]
    InvalidIssuer(#[from] DiscoveryError),
    #[error("invalid jwks_uri: {0}")]
    InvalidJwksUri(InvalidEndpoint),
    #[error("algorithm \"none\" is never accepted: an unsigned token proves nothing")]
    NoneAlgorithm,
    #[error(
        "algorithm {0:?} is refused: HMAC needs a secret shared with the issuer, and a key \
         taken from a public JWKS would let anyone sign tokens"
    )]
    SymmetricAlgorithm(String),
    #[error("unknown algorithm {0:?} (known: {known})", known = DEFAULT_ALGORITHMS.join(", "))]
    UnknownAlgorithm(String),
    #[error("no algorithm is allowed: every token would be refused")]
    NoAlgorithms,
    #[error("introspection: {0}")]
    Introspection(&'static str),
    #[error("invalid introspection endpoint: {0}")]
    InvalidIntrospectionEndpoint(InvalidEndpoint),
}

#[derive(Debug)]
struct TrustedIssuer {
    issuer: String,
    keys: KeyCache,
}

/// Validates bearer tokens for this resource server. Share one per process (it holds the
/// key and introspection caches).
#[derive(Debug)]
pub struct TokenValidator {
    issuers: Vec<TrustedIssuer>,
    algorithms: Vec<Algorithm>,
    leeway: Duration,
    required_claims: Vec<String>,
    introspector: Option<Introspector>,
    clock: Arc<dyn Clock>,
}

impl TokenValidator {
    /// Checks the configuration and prepares the caches. Nothing is fetched yet: keys and
    /// metadata are fetched on first use (or by [`KeyCache::refresh`] through
    /// [`TokenValidator::key_cache`]).
    pub fn new(config: ResourceServerConfig, egress: EgressClient) -> Result<Self, ConfigError> {
        let algorithms = allowed_algorithms(&config.algorithms)?;
        if config.issuers.is_empty() {
            return Err(ConfigError::NoIssuer);
        }
        let mut issuers: Vec<TrustedIssuer> = Vec::new();
        let mut metadata = Vec::new();
        for issuer in &config.issuers {
            discovery::discovery_urls(&issuer.issuer)?;
            if issuers.iter().any(|i| i.issuer == issuer.issuer) {
                return Err(ConfigError::DuplicateIssuer(issuer.issuer.clone()));
            }
            let lazy = Arc::new(LazyMetadata::new(
                issuer.issuer.clone(),
                egress.clone(),
                config.discovery.clone(),
                config.clock.clone(),
            ));
            let source = match &issuer.jwks_uri {
                Some(uri) => {
                    JwksSource::Uri(fetch::endpoint(uri).map_err(ConfigError::InvalidJwksUri)?)
                }
                None => JwksSource::Discovered(lazy.clone()),
            };
            issuers.push(TrustedIssuer {
                issuer: issuer.issuer.clone(),
                keys: KeyCache::new(
                    source,
                    egress.clone(),
                    config.keys.clone(),
                    config.clock.clone(),
                ),
            });
            metadata.push(lazy);
        }
        let introspector = match config.introspection {
            None => None,
            Some(ic) => Some(introspector(ic, &metadata, egress, config.clock.clone())?),
        };
        Ok(TokenValidator {
            issuers,
            algorithms,
            leeway: config.leeway,
            required_claims: config.required_claims,
            introspector,
            clock: config.clock,
        })
    }

    /// The key cache of a configured issuer (to warm it at startup with
    /// [`KeyCache::refresh`]).
    pub fn key_cache(&self, issuer: &str) -> Option<&KeyCache> {
        self.issuers
            .iter()
            .find(|i| i.issuer == issuer)
            .map(|i| &i.keys)
    }

    /// The configured issuer identifiers (the `authorization_servers` of the resource's
    /// metadata).
    pub fn issuers(&self) -> impl Iterator<Item = &str> {
        self.issuers.iter().map(|i| i.issuer.as_str())
    }

    /// Validates `token` for `audience` (the canonical URL of the resource the request is
    /// for). The token is never logged.
    pub async fn validate(&self, token: &str, audience: &str) -> Result<VerifiedToken, TokenError> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(TokenError::TooLarge);
        }
        if token.is_empty() {
            return Err(TokenError::Malformed);
        }
        let rules = ClaimRules {
            audience,
            now: self.clock.now(),
            leeway: self.leeway,
            required_claims: &self.required_claims,
            exp_required: true,
            client_may_be_subject: false,
        };
        if jwt::is_jws_compact(token) {
            return self.validate_jwt(token, &rules).await;
        }
        match &self.introspector {
            Some(introspector) => {
                let rules = ClaimRules {
                    exp_required: false,
                    client_may_be_subject: true,
                    ..rules
                };
                introspector.validate(token, &rules).await
            }
            None => Err(TokenError::Malformed),
        }
    }

    async fn validate_jwt(
        &self,
        token: &str,
        rules: &ClaimRules<'_>,
    ) -> Result<VerifiedToken, TokenError> {
        let jwt = jwt::parse(token, &self.algorithms)?;
        let trusted = match jwt.claims.get("iss") {
            None | Some(Value::Null) => return Err(TokenError::MissingClaim("iss".into())),
            Some(Value::String(iss)) => self
                .issuers
                .iter()
                .find(|i| i.issuer == *iss)
                .ok_or(TokenError::WrongIssuer)?,
            Some(_) => return Err(TokenError::Malformed),
        };
        let key = trusted.keys.key_for(jwt.kid.as_deref(), jwt.alg).await?;
        jwt::verify_signature(&jwt, &key)?;
        claims::check(&trusted.issuer, jwt.claims, rules, rules.now)
    }
}

fn allowed_algorithms(names: &[String]) -> Result<Vec<Algorithm>, ConfigError> {
    let mut out = Vec::new();
    for name in names {
        if name.eq_ignore_ascii_case("none") {
            return Err(ConfigError::NoneAlgorithm);
        }
        if name
            .as_bytes()
            .get(..2)
            .is_some_and(|p| p.eq_ignore_ascii_case(b"HS"))
        {
            return Err(ConfigError::SymmetricAlgorithm(name.clone()));
        }
        let alg: Algorithm = name
            .parse()
            .map_err(|_| ConfigError::UnknownAlgorithm(name.clone()))?;
        if !out.contains(&alg) {
            out.push(alg);
        }
    }
    if out.is_empty() {
        return Err(ConfigError::NoAlgorithms);
    }
    Ok(out)
}

fn introspector(
    config: IntrospectionConfig,
    metadata: &[Arc<LazyMetadata>],
    egress: EgressClient,
    clock: Arc<dyn Clock>,
) -> Result<Introspector, ConfigError> {
    if config.client_id.is_empty() {
        return Err(ConfigError::Introspection("client_id is empty"));
    }
    let lazy = match &config.issuer {
        Some(issuer) => {
            metadata
                .iter()
                .find(|m| m.issuer() == issuer)
                .ok_or(ConfigError::Introspection(
                    "its issuer is not a configured issuer",
                ))?
        }
        None if metadata.len() == 1 => &metadata[0],
        None => {
            return Err(ConfigError::Introspection(
                "several issuers are configured: name the one that introspects",
            ));
        }
    };
    let endpoint = match &config.endpoint {
        Some(url) => EndpointSource::Uri(
            fetch::endpoint(url).map_err(ConfigError::InvalidIntrospectionEndpoint)?,
        ),
        None => EndpointSource::Discovered(lazy.clone()),
    };
    Ok(Introspector::new(
        lazy.issuer().to_owned(),
        endpoint,
        egress,
        config,
        clock,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn egress() -> EgressClient {
        EgressClient::new(&portcullis_egress::EgressConfig::default()).unwrap()
    }

    fn config(algorithms: &[&str]) -> ResourceServerConfig {
        let mut c = ResourceServerConfig::new(vec![IssuerConfig {
            issuer: "https://idp.example.com".into(),
            jwks_uri: Some("https://idp.example.com/jwks".into()),
        }]);
        c.algorithms = algorithms.iter().map(|a| a.to_string()).collect();
        c
    }

    #[tokio::test]
    async fn alg_none_is_refused_at_construction_even_if_configured() {
        for none in ["none", "NONE"] {
            let err = TokenValidator::new(config(&["RS256", none]), egress()).unwrap_err();
            assert!(matches!(err, ConfigError::NoneAlgorithm), "{err}");
        }
    }

    #[tokio::test]
    async fn hmac_algorithms_are_refused_at_construction_with_a_clear_error() {
        for hs in ["HS256", "HS384", "hs512"] {
            let err = TokenValidator::new(config(&[hs]), egress()).unwrap_err();
            assert!(matches!(err, ConfigError::SymmetricAlgorithm(_)), "{err}");
            assert!(err.to_string().contains("shared"), "{err}");
        }
    }

    #[tokio::test]
    async fn unknown_or_no_algorithms_are_configuration_errors() {
        assert!(matches!(
            TokenValidator::new(config(&["RS1024"]), egress()),
            Err(ConfigError::UnknownAlgorithm(_))
        ));
        assert!(matches!(
            TokenValidator::new(config(&[]), egress()),
            Err(ConfigError::NoAlgorithms)
        ));
        assert!(TokenValidator::new(config(&DEFAULT_ALGORITHMS), egress()).is_ok());
    }

    #[tokio::test]
    async fn issuers_must_be_present_unique_and_https() {
        let mut c = config(&["RS256"]);
        c.issuers.clear();
        assert!(matches!(
            TokenValidator::new(c, egress()),
            Err(ConfigError::NoIssuer)
        ));
        let mut c = config(&["RS256"]);
        c.issuers.push(c.issuers[0].clone());
        assert!(matches!(
            TokenValidator::new(c, egress()),
            Err(ConfigError::DuplicateIssuer(_))
        ));
        let mut c = config(&["RS256"]);
        c.issuers[0].issuer = "http://idp.example.com".into();
        assert!(matches!(
            TokenValidator::new(c, egress()),
            Err(ConfigError::InvalidIssuer(_))
        ));
        let mut c = config(&["RS256"]);
        c.issuers[0].jwks_uri = Some("http://idp.example.com/jwks".into());
        assert!(matches!(
            TokenValidator::new(c, egress()),
            Err(ConfigError::InvalidJwksUri(_))
        ));
    }

    #[tokio::test]
    async fn an_oversized_or_opaque_token_without_introspection_is_refused_without_io() {
        let v = TokenValidator::new(config(&["RS256"]), egress()).unwrap();
        let huge = "a".repeat(64 * 1024);
        assert_eq!(
            v.validate(&huge, "https://r").await,
            Err(TokenError::TooLarge)
        );
        assert_eq!(
            v.validate("opaque-token", "https://r").await,
            Err(TokenError::Malformed)
        );
        assert_eq!(
            v.validate("", "https://r").await,
            Err(TokenError::Malformed)
        );
    }
}
