//! What a server's `credential = { … }` says, as the config layer deserializes it.
//!
//! The forms are externally tagged, one key each:
//!
//! ```toml
//! credential = { bearer_env = "TICKETS_TOKEN" }
//! credential = { bearer_file = "/run/secrets/tickets" }
//! credential = { headers = { "X-Api-Key" = { env = "KEY" }, "X-Org" = { file = "/run/org" } } }
//! credential = { client_credentials = { token_url = "https://idp/token", client_id = "gw", secret_env = "GW_SECRET" } }
//! credential = { token_exchange = { token_url = "https://idp/token", client_id = "gw", secret_file = "/run/gw", audience = "tickets" } }
//! credential = { oauth = {} }     # each user authorizes the gateway at the server's own AS
//! credential = { oauth = { client_id = "gw", secret_env = "GW_SECRET", scope = "tickets:read" } }
//! ```
//!
//! A spec names where secrets live (a variable, a file), never a secret itself: an inline
//! string where a source belongs is a deserialization error that says so. Deserializing
//! validates everything that does not need the environment (URLs, header names, scope
//! syntax), so mistakes come back with the config file's line; [`CredentialSpec::validate`]
//! runs the same checks for specs built in code.

use std::fmt;
use std::path::PathBuf;

use http::HeaderName;
use serde::Deserialize;
use serde::de::{self, MapAccess, Visitor};

use super::user_oauth::UserOAuthSpec;
use super::validate::{
    validate_env_name, validate_form_text, validate_optional, validate_path, validate_resource,
    validate_scope, validate_token_type, validate_token_url,
};

/// One remote server's credential, as written in its config.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum CredentialSpec {
    /// `Authorization: Bearer <value of the variable>`.
    BearerEnv(String),
    /// `Authorization: Bearer <content of the file>`.
    BearerFile(PathBuf),
    /// Fixed headers, each value from a variable or a file.
    Headers(SecretHeaders),
    /// The OAuth 2.0 client credentials grant (RFC 6749 §4.4).
    ClientCredentials(ClientCredentialsSpec),
    /// OAuth 2.0 token exchange (RFC 8693) of the client's token for one meant for this
    /// upstream.
    TokenExchange(TokenExchangeSpec),
    /// The gateway as an OAuth client of the server's own authorization server, for each
    /// user (principal) separately: the user authorizes once on the gateway's page.
    Oauth(UserOAuthSpec),
}

impl CredentialSpec {
    /// The checks deserialization makes, for a spec built in code.
    pub fn validate(&self) -> Result<(), SpecError> {
        match self {
            CredentialSpec::BearerEnv(name) => validate_env_name(name),
            CredentialSpec::BearerFile(path) => validate_path(path),
            CredentialSpec::Headers(headers) => headers.validate(),
            CredentialSpec::ClientCredentials(cc) => cc.validate(),
            CredentialSpec::TokenExchange(te) => te.validate(),
            CredentialSpec::Oauth(o) => o.validate(),
        }
    }
}

/// Where a secret comes from. Never the secret itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretSource {
    /// An environment variable, read once at startup.
    Env(String),
    /// A file, read once at startup.
    File(PathBuf),
}

impl SecretSource {
    pub(super) fn validate(&self) -> Result<(), SpecError> {
        match self {
            SecretSource::Env(name) => validate_env_name(name),
            SecretSource::File(path) => validate_path(path),
        }
    }
}

const INLINE_SECRET: &str = "inline secret values are not allowed in the configuration \
    (config files are read by many tools and often committed); name where the secret is: \
    { env = \"VARIABLE\" } or { file = \"/path/to/file\" }";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SourceTable {
    env: Option<String>,
    file: Option<PathBuf>,
}

impl<'de> Deserialize<'de> for SecretSource {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct SourceVisitor;
        impl<'de> Visitor<'de> for SourceVisitor {
            type Value = SecretSource;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a table { env = \"VARIABLE\" } or { file = \"/path\" }")
            }
            fn visit_str<E: de::Error>(self, _inline: &str) -> Result<SecretSource, E> {
                Err(E::custom(INLINE_SECRET))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<SecretSource, A::Error> {
                let table = SourceTable::deserialize(de::value::MapAccessDeserializer::new(map))?;
                let source = match (table.env, table.file) {
                    (Some(name), None) => SecretSource::Env(name),
                    (None, Some(path)) => SecretSource::File(path),
                    _ => {
                        return Err(de::Error::custom(
                            "a secret source has exactly one of `env` or `file`",
                        ));
                    }
                };
                source.validate().map_err(de::Error::custom)?;
                Ok(source)
            }
        }
        d.deserialize_any(SourceVisitor)
    }
}

/// Fixed credential headers, in the order written, names validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretHeaders(pub Vec<(HeaderName, SecretSource)>);

/// Headers the gateway itself writes on every upstream request (framing, routing, the MCP
/// session and version): a credential setting one would break the exchange or smuggle a
/// second meaning into it.
const RESERVED_HEADERS: &[&str] = &[
    "host",
    "content-length",
    "content-type",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "proxy-connection",
    "upgrade",
    "te",
    "trailer",
    "accept",
    "last-event-id",
];

impl SecretHeaders {
    fn validate(&self) -> Result<(), SpecError> {
        if self.0.is_empty() {
            return Err(SpecError::new("`headers` names at least one header"));
        }
        for (i, (name, source)) in self.0.iter().enumerate() {
            check_header_name(name)?;
            if self.0[..i].iter().any(|(earlier, _)| earlier == name) {
                return Err(SpecError::new(format!(
                    "header {name} is given twice (header names ignore case)"
                )));
            }
            source.validate()?;
        }
        Ok(())
    }
}

fn check_header_name(name: &HeaderName) -> Result<(), SpecError> {
    let text = name.as_str();
    if RESERVED_HEADERS.contains(&text) || text.starts_with("mcp-") {
        return Err(SpecError::new(format!(
            "header {text} is set by the gateway itself and cannot be a credential"
        )));
    }
    Ok(())
}

impl<'de> Deserialize<'de> for SecretHeaders {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct HeadersVisitor;
        impl<'de> Visitor<'de> for HeadersVisitor {
            type Value = SecretHeaders;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a table of header names to { env = … } or { file = … }")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<SecretHeaders, A::Error> {
                let mut out = Vec::new();
                while let Some(key) = map.next_key::<String>()? {
                    let name = HeaderName::from_bytes(key.as_bytes()).map_err(|_| {
                        de::Error::custom(format!("{key:?} is not a valid HTTP header name"))
                    })?;
                    let source: SecretSource = map.next_value()?;
                    out.push((name, source));
                }
                let headers = SecretHeaders(out);
                headers.validate().map_err(de::Error::custom)?;
                Ok(headers)
            }
        }
        d.deserialize_map(HeadersVisitor)
    }
}

/// How the gateway authenticates itself to the token endpoint (RFC 6749 §2.3.1).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClientAuthMethod {
    /// HTTP Basic with the form-encoded client id and secret (the RFC's default).
    #[default]
    ClientSecretBasic,
    /// `client_id` and `client_secret` in the form body.
    ClientSecretPost,
}

/// The token endpoint and the gateway's client registration there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthClientSpec {
    pub token_url: String,
    pub client_id: String,
    pub client_secret: SecretSource,
    pub auth_method: ClientAuthMethod,
}

impl OAuthClientSpec {
    fn validate(&self) -> Result<(), SpecError> {
        validate_token_url(&self.token_url)?;
        if self.client_id.is_empty() {
            return Err(SpecError::new("client_id is empty"));
        }
        self.client_secret.validate()
    }
}

/// `client_credentials = { … }`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "RawClientCredentials")]
pub struct ClientCredentialsSpec {
    pub client: OAuthClientSpec,
    /// Space-separated scopes to request.
    pub scope: Option<String>,
    /// The upstream's resource indicator (RFC 8707), so the token is bound to it.
    pub resource: Option<String>,
}

impl ClientCredentialsSpec {
    fn validate(&self) -> Result<(), SpecError> {
        self.client.validate()?;
        validate_optional(self.scope.as_deref(), validate_scope)?;
        validate_optional(self.resource.as_deref(), validate_resource)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawClientCredentials {
    token_url: String,
    client_id: String,
    secret_env: Option<String>,
    secret_file: Option<PathBuf>,
    auth_method: Option<ClientAuthMethod>,
    scope: Option<String>,
    resource: Option<String>,
}

impl TryFrom<RawClientCredentials> for ClientCredentialsSpec {
    type Error = SpecError;
    fn try_from(raw: RawClientCredentials) -> Result<Self, SpecError> {
        let spec = ClientCredentialsSpec {
            client: OAuthClientSpec {
                token_url: raw.token_url,
                client_id: raw.client_id,
                client_secret: one_secret_source(raw.secret_env, raw.secret_file)?,
                auth_method: raw.auth_method.unwrap_or_default(),
            },
            scope: raw.scope,
            resource: raw.resource,
        };
        spec.validate()?;
        Ok(spec)
    }
}

/// RFC 8693 §3: the token type of an OAuth access token, the usual subject.
pub const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";

/// `token_exchange = { … }`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "RawTokenExchange")]
pub struct TokenExchangeSpec {
    pub client: OAuthClientSpec,
    /// The logical name of the upstream (RFC 8693 `audience`).
    pub audience: Option<String>,
    /// The upstream's URI (RFC 8693 / RFC 8707 `resource`).
    pub resource: Option<String>,
    pub scope: Option<String>,
    /// What the client's token is; default [`ACCESS_TOKEN_TYPE`].
    pub subject_token_type: String,
    pub requested_token_type: Option<String>,
}

impl TokenExchangeSpec {
    fn validate(&self) -> Result<(), SpecError> {
        self.client.validate()?;
        validate_optional(self.audience.as_deref(), |a| {
            validate_form_text("audience", a)
        })?;
        validate_optional(self.resource.as_deref(), validate_resource)?;
        validate_optional(self.scope.as_deref(), validate_scope)?;
        validate_token_type("subject_token_type", &self.subject_token_type)?;
        validate_optional(self.requested_token_type.as_deref(), |t| {
            validate_token_type("requested_token_type", t)
        })
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTokenExchange {
    token_url: String,
    client_id: String,
    secret_env: Option<String>,
    secret_file: Option<PathBuf>,
    auth_method: Option<ClientAuthMethod>,
    audience: Option<String>,
    resource: Option<String>,
    scope: Option<String>,
    subject_token_type: Option<String>,
    requested_token_type: Option<String>,
}

impl TryFrom<RawTokenExchange> for TokenExchangeSpec {
    type Error = SpecError;
    fn try_from(raw: RawTokenExchange) -> Result<Self, SpecError> {
        let spec = TokenExchangeSpec {
            client: OAuthClientSpec {
                token_url: raw.token_url,
                client_id: raw.client_id,
                client_secret: one_secret_source(raw.secret_env, raw.secret_file)?,
                auth_method: raw.auth_method.unwrap_or_default(),
            },
            audience: raw.audience,
            resource: raw.resource,
            scope: raw.scope,
            subject_token_type: raw
                .subject_token_type
                .unwrap_or_else(|| ACCESS_TOKEN_TYPE.to_owned()),
            requested_token_type: raw.requested_token_type,
        };
        spec.validate()?;
        Ok(spec)
    }
}

pub(super) fn one_secret_source(
    env: Option<String>,
    file: Option<PathBuf>,
) -> Result<SecretSource, SpecError> {
    match (env, file) {
        (Some(name), None) => Ok(SecretSource::Env(name)),
        (None, Some(path)) => Ok(SecretSource::File(path)),
        (None, None) => Err(SpecError::new(
            "the client secret is missing: give `secret_env` or `secret_file`",
        )),
        (Some(_), Some(_)) => Err(SpecError::new(
            "give one of `secret_env` or `secret_file`, not both",
        )),
    }
}

/// A spec that cannot work, said in the config's terms.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SpecError(String);

impl SpecError {
    pub(crate) fn new(message: impl Into<String>) -> Self {
        SpecError(message.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Server {
        credential: CredentialSpec,
    }

    fn parse(toml_text: &str) -> Result<CredentialSpec, String> {
        toml::from_str::<Server>(toml_text)
            .map(|s| s.credential)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn bearer_forms_parse() {
        assert_eq!(
            parse(r#"credential = { bearer_env = "TICKETS_TOKEN" }"#).unwrap(),
            CredentialSpec::BearerEnv("TICKETS_TOKEN".into())
        );
        assert_eq!(
            parse(r#"credential = { bearer_file = "/run/secrets/t" }"#).unwrap(),
            CredentialSpec::BearerFile("/run/secrets/t".into())
        );
    }

    #[test]
    fn two_forms_at_once_are_refused() {
        assert!(parse(r#"credential = { bearer_env = "A", bearer_file = "/b" }"#).is_err());
        assert!(parse(r#"credential = { bearer_token = "A" }"#).is_err());
    }

    #[test]
    fn headers_parse_in_order_with_lowercased_names() {
        let spec = parse(
            r#"credential = { headers = { "X-Api-Key" = { env = "KEY" }, "X-Org" = { file = "/run/org" } } }"#,
        )
        .unwrap();
        let CredentialSpec::Headers(SecretHeaders(headers)) = spec else {
            panic!("not headers: {spec:?}");
        };
        assert_eq!(headers[0].0.as_str(), "x-api-key");
        assert_eq!(headers[0].1, SecretSource::Env("KEY".into()));
        assert_eq!(headers[1].0.as_str(), "x-org");
        assert_eq!(headers[1].1, SecretSource::File("/run/org".into()));
    }

    #[test]
    fn an_inline_secret_in_headers_is_refused_with_the_reason() {
        let err =
            parse(r#"credential = { headers = { "X-Api-Key" = "sk-live-123" } }"#).unwrap_err();
        assert!(
            err.contains("inline secret values are not allowed"),
            "{err}"
        );
        assert!(err.contains("{ env = "), "{err}");
    }

    #[test]
    fn header_names_are_validated() {
        for bad in [
            r#"credential = { headers = { "X Api" = { env = "K" } } }"#,
            r#"credential = { headers = { "Host" = { env = "K" } } }"#,
            r#"credential = { headers = { "Mcp-Session-Id" = { env = "K" } } }"#,
            r#"credential = { headers = { "X-A" = { env = "K" }, "x-a" = { env = "L" } } }"#,
            r#"credential = { headers = {} }"#,
            r#"credential = { headers = { "X-A" = { env = "K", file = "/f" } } }"#,
            r#"credential = { headers = { "X-A" = { value = "K" } } }"#,
        ] {
            assert!(parse(bad).is_err(), "{bad} must be refused");
        }
    }

    #[test]
    fn client_credentials_parse_with_defaults() {
        let spec = parse(
            r#"credential = { client_credentials = { token_url = "https://idp.example.com/token", client_id = "gw", secret_env = "GW_SECRET", scope = "a b", resource = "https://tickets.example.com/mcp" } }"#,
        )
        .unwrap();
        let CredentialSpec::ClientCredentials(cc) = spec else {
            panic!("{spec:?}");
        };
        assert_eq!(cc.client.auth_method, ClientAuthMethod::ClientSecretBasic);
        assert_eq!(
            cc.client.client_secret,
            SecretSource::Env("GW_SECRET".into())
        );
        assert_eq!(cc.scope.as_deref(), Some("a b"));
    }

    #[test]
    fn client_credentials_mistakes_are_refused() {
        for bad in [
            // no secret, two secrets, an inline secret
            r#"credential = { client_credentials = { token_url = "https://i/t", client_id = "gw" } }"#,
            r#"credential = { client_credentials = { token_url = "https://i/t", client_id = "gw", secret_env = "A", secret_file = "/b" } }"#,
            r#"credential = { client_credentials = { token_url = "https://i/t", client_id = "gw", client_secret = "s3cret" } }"#,
            // a secret sent in clear text over the network
            r#"credential = { client_credentials = { token_url = "http://idp.example.com/t", client_id = "gw", secret_env = "A" } }"#,
            r#"credential = { client_credentials = { token_url = "file:///etc/passwd", client_id = "gw", secret_env = "A" } }"#,
            r#"credential = { client_credentials = { token_url = "https://gw:s3cret@i/t", client_id = "gw", secret_env = "A" } }"#,
            r#"credential = { client_credentials = { token_url = "https://i/t", client_id = "", secret_env = "A" } }"#,
            r#"credential = { client_credentials = { token_url = "https://i/t", client_id = "gw", secret_env = "A", resource = "https://x/mcp#frag" } }"#,
            r#"credential = { client_credentials = { token_url = "https://i/t", client_id = "gw", secret_env = "A", scope = "a  b" } }"#,
            r#"credential = { client_credentials = { token_url = "https://i/t", client_id = "gw", secret_env = "A", auth_method = "private_key_jwt" } }"#,
        ] {
            assert!(parse(bad).is_err(), "{bad} must be refused");
        }
        // Loopback may use plain http (a local authorization server).
        assert!(parse(r#"credential = { client_credentials = { token_url = "http://127.0.0.1:9/t", client_id = "gw", secret_env = "A" } }"#).is_ok());
        assert!(parse(r#"credential = { client_credentials = { token_url = "http://[::1]:9/t", client_id = "gw", secret_env = "A" } }"#).is_ok());
    }

    #[test]
    fn token_exchange_defaults_the_subject_token_type() {
        let spec = parse(
            r#"credential = { token_exchange = { token_url = "https://i/t", client_id = "gw", secret_file = "/run/gw", audience = "tickets", auth_method = "client_secret_post" } }"#,
        )
        .unwrap();
        let CredentialSpec::TokenExchange(te) = spec else {
            panic!("{spec:?}");
        };
        assert_eq!(te.subject_token_type, ACCESS_TOKEN_TYPE);
        assert_eq!(te.client.auth_method, ClientAuthMethod::ClientSecretPost);
        assert_eq!(te.audience.as_deref(), Some("tickets"));
        assert!(CredentialSpec::TokenExchange(te).validate().is_ok());
    }

    #[test]
    fn validate_catches_specs_built_in_code() {
        let spec = CredentialSpec::Headers(SecretHeaders(vec![(
            HeaderName::from_static("content-length"),
            SecretSource::Env("K".into()),
        )]));
        assert!(spec.validate().is_err());
        assert!(CredentialSpec::BearerEnv(String::new()).validate().is_err());
    }
}
