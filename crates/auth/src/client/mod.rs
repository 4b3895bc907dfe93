//! The gateway as an OAuth client of a remote MCP server's authorization server, acting for
//! one user (MCP authorization 2025-11-25, the client's side).
//!
//! A remote server answers 401; from there, in order:
//! - [`parse_bearer_challenge`]: the `WWW-Authenticate` challenge (`resource_metadata`,
//!   `scope`, `error`).
//! - [`discover`]: the protected resource metadata (the challenge's URL, else the well-known
//!   URLs path-inserted then root), whose `resource` must cover the server URL; then the
//!   authorization server's metadata (RFC 8414 / OIDC order, exact `issuer`), refused unless
//!   it advertises PKCE `S256`.
//! - [`choose_registration`]: a pre-registered client, else a Client ID Metadata Document,
//!   else Dynamic Client Registration ([`register_dynamic`]).
//! - [`initial_scope`] and [`StepUp`]: which scopes to ask for, and the bounded step-up on a
//!   403 `insufficient_scope`.
//! - [`start_authorization`]: PKCE, a single-use `state` kept in [`PendingAuthorizations`],
//!   the `resource` parameter; [`finish_authorization`]: the callback (state consumed once,
//!   RFC 9207 `iss`, error responses).
//! - [`exchange_code`] and [`refresh`]: the token requests, refresh tokens rotated.
//! - [`StoredGrant`] and [`ClientIdentity::to_json`]: what is kept of a grant and of a
//!   registration, as bytes for the vault ([`crate::vault`]) to seal.
//!
//! Every URL here can come from someone else (the upstream, its metadata), so each is checked
//! (`https`, or `http` to loopback) and fetched only through `portcullis_egress`; tokens live
//! in [`Secret`](crate::secret::Secret)s and never reach an error message.

mod authorize;
mod challenge;
mod discovery;
mod error;
mod pending;
mod pkce;
mod registration;
mod scope;
mod stored;
mod token;

pub use authorize::{
    AuthorizationGrant, StartedAuthorization, finish_authorization, start_authorization,
};
pub use challenge::{BearerChallenge, parse_bearer_challenge};
pub use discovery::{
    AuthorizationServer, Discovered, ResourceMetadata, discover, discover_authorization_server,
    discover_resource, resource_covers, resource_metadata_urls,
};
pub use error::OAuthClientError;
pub use pending::{
    DEFAULT_MAX_PENDING, DEFAULT_STATE_LIFETIME, PendingAuthorization, PendingAuthorizations,
};
pub use pkce::Pkce;
pub use registration::{
    ClientIdMetadataDocument, DynamicRegistrationRequest, RegistrationChoice, choose_registration,
    register_dynamic,
};
pub use scope::{DEFAULT_STEP_UP_LIMIT, StepUp, initial_scope};
pub use stored::{StoredFormError, StoredGrant};
pub use token::{
    ClientAuth, ClientIdentity, TokenSet, exchange_code, exchange_code_for_identity, refresh,
};
