//! The gateway as an OAuth 2.1 resource server (MCP authorization, 2025-11-25).
//!
//! What a request goes through, and where:
//! - [`parse_bearer`]: the token comes from exactly one `Authorization: Bearer` header; a
//!   token in the query string is refused ([`token_in_query`]); over [`MAX_TOKEN_BYTES`] it
//!   is refused before parsing.
//! - [`TokenValidator::validate`]: a JWT access token (RFC 9068) is checked locally: the
//!   header (`alg` among the configured asymmetric algorithms and fitting the key; `jku`,
//!   `x5u`, `jwk`, `crit` refused outright and never followed), `iss` one of the configured
//!   issuers, the signature with that issuer's key from its JWKS ([`KeyCache`]), then `exp`,
//!   `nbf`, `iat`, `aud` (must contain this resource's canonical URL), `sub` and the required
//!   claims. Opaque tokens are introspected (RFC 7662) when that is configured.
//! - [`challenge`]: the `WWW-Authenticate` values of the 401, 403 and 400 answers.
//! - [`ProtectedResourceMetadata`] and [`metadata_url`]: RFC 9728, how clients find the
//!   authorization server; [`canonical_resource`]: the audience string (RFC 8707).
//!
//! Every outbound request (discovery, JWKS, introspection) goes through
//! `portcullis_egress::EgressClient` and is bounded in time and size. Every failure refuses
//! the token; none of them logs it.

mod bearer;
mod canonical;
pub mod challenge;
mod claims;
mod clock;
mod discovery;
mod error;
pub(crate) mod fetch;
mod introspection;
pub(crate) mod json;
mod jwk;
mod jwks;
mod jwt;
mod metadata;
mod validator;

pub use bearer::{
    BearerToken, MAX_TOKEN_BYTES, MalformedAuthorization, parse_bearer, token_in_query,
};
pub use canonical::{InvalidResourceUrl, canonical_resource};
pub use claims::VerifiedToken;
pub use clock::{Clock, ManualClock, SystemClock};
pub use discovery::{
    AuthorizationServerMetadata, DiscoveryConfig, DiscoveryError, LazyMetadata, discover,
    discovery_urls,
};
pub use error::TokenError;
pub use fetch::{FetchError, InvalidEndpoint};
pub use introspection::IntrospectionConfig;
pub use jwk::{JwkSetError, KeyType, VerificationKey};
pub use jwks::{JwksError, JwksSource, KeyCache, KeyCacheConfig};
pub use metadata::{ProtectedResourceMetadata, metadata_url};
pub use validator::{
    ConfigError, DEFAULT_ALGORITHMS, IssuerConfig, ResourceServerConfig, TokenValidator,
};
