//! `[auth]`: the gateway as an OAuth 2.1 resource server.
//!
//! Only what can be checked without the network is checked here: URL syntax, algorithm
//! names (asymmetric only, whatever the file says), bounds. Discovery and keys come later,
//! at startup and per request, in `transport::http::auth`.

use std::ops::Range;
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use super::diagnostic::Issues;
use super::net::HttpUrl;
use super::raw::SpannedList;
use super::units::{RawDuration, format_duration, parse_duration};

/// Default `auth.leeway`: clock skew tolerated on `exp`, `nbf` and `iat`.
pub const DEFAULT_LEEWAY: Duration = Duration::from_secs(60);
/// Largest accepted `auth.leeway`.
pub const MAX_LEEWAY: Duration = Duration::from_secs(300);
/// Default `auth.max_sessions_per_principal`.
pub const DEFAULT_SESSIONS_PER_PRINCIPAL: usize = 100;
/// The JWS algorithms accepted by default: every asymmetric one.
pub const ASYMMETRIC_ALGORITHMS: &[&str] = &[
    "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA",
];

/// `[auth]`, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthConfig {
    /// The trusted issuers, exactly as their tokens' `iss` and metadata's `issuer` say.
    pub issuers: Vec<String>,
    /// The audience tokens must carry; `None`: each route's canonical URL.
    pub audience: Option<String>,
    /// Scopes advertised in the protected resource metadata and asked for in challenges.
    pub scopes_supported: Vec<String>,
    /// The issuer's JWKS, when not discovered from its metadata (one issuer only).
    pub jwks_uri: Option<String>,
    /// Accepted JWS algorithms (asymmetric only).
    pub algorithms: Vec<String>,
    /// Clock skew tolerated on time claims.
    pub leeway: Duration,
    /// Claims a token must carry besides the standard ones.
    pub required_claims: Vec<String>,
    /// The claim whose strings become the principal's groups (`group:<name>` in rules).
    pub groups_claim: String,
    /// Request headers removed before anything is copied upstream, besides `Authorization`,
    /// `Cookie` and `Proxy-Authorization`, which always are. Lowercase.
    pub strip_headers: Vec<String>,
    /// Most live sessions one principal may hold.
    pub max_sessions_per_principal: usize,
    /// RFC 7662 introspection of opaque tokens.
    pub introspection: Option<IntrospectionConfig>,
    /// `auth.sign_in`: how a person proves, in a browser, which principal they are (the
    /// per-user OAuth consent page requires it behind `[auth]`).
    pub sign_in: Option<SignInConfig>,
}

/// `auth.sign_in`: the gateway's OpenID Connect client at the `[auth]` issuer, for browser
/// sign-in (scope `openid`; the `id_token`'s `sub` is compared with the principal).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignInConfig {
    pub client_id: String,
    /// The variable holding its secret; `None`: a public client (PKCE only).
    pub secret_env: Option<String>,
}

/// `auth.introspection`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IntrospectionConfig {
    /// The endpoint; `None`: the issuer's metadata `introspection_endpoint`.
    pub endpoint: Option<String>,
    pub client_id: String,
    /// The variable holding the client secret (never the secret itself).
    pub secret_env: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "the [auth] table")]
pub(crate) struct RawAuth {
    /// A string or a list of strings (toml cannot keep spans through an untagged enum).
    pub issuer: Option<Spanned<toml::Value>>,
    pub audience: Option<Spanned<String>>,
    pub scopes_supported: Option<SpannedList>,
    pub jwks_uri: Option<Spanned<String>>,
    pub algorithms: Option<SpannedList>,
    pub leeway: Option<Spanned<RawDuration>>,
    pub required_claims: Option<SpannedList>,
    pub groups_claim: Option<Spanned<String>>,
    pub strip_headers: Option<SpannedList>,
    pub max_sessions_per_principal: Option<Spanned<i64>>,
    pub introspection: Option<Spanned<RawIntrospection>>,
    pub sign_in: Option<Spanned<RawSignIn>>,
}

#[derive(Debug, Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "an introspection table such as { client_id = \"gateway\", secret_env = \"INTROSPECTION_SECRET\" }"
)]
pub(crate) struct RawIntrospection {
    pub endpoint: Option<Spanned<String>>,
    pub client_id: Spanned<String>,
    pub secret_env: Spanned<String>,
}

#[derive(Debug, Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a sign-in table such as { client_id = \"portcullis-browser\", secret_env = \"SIGN_IN_SECRET\" }"
)]
pub(crate) struct RawSignIn {
    pub client_id: Spanned<String>,
    pub secret_env: Option<Spanned<String>>,
}

impl AuthConfig {
    /// What `portcullis check` says about authentication.
    pub fn summary(&self) -> String {
        let audience = match &self.audience {
            Some(a) => format!("audience {a}"),
            None => "audience: each route's URL".to_owned(),
        };
        let opaque = if self.introspection.is_some() {
            ", opaque tokens introspected"
        } else {
            ""
        };
        format!(
            "Auth: OAuth bearer tokens from {} ({audience}; {}{opaque}); sessions bound to their caller, at most {} each",
            self.issuers.join(", "),
            self.algorithms.join(" "),
            self.max_sessions_per_principal
        )
    }
}

/// What `portcullis check` says when there is no `[auth]`.
pub fn no_auth_summary(insecure: bool) -> &'static str {
    if insecure {
        "Auth: none (insecure_no_auth): every HTTP caller is the same anonymous caller"
    } else {
        "Auth: none: HTTP callers are anonymous (loopback only)"
    }
}

/// A URL the gateway fetches or compares against: `https`, or `http` for a loopback host
/// (a development authorization server on this machine).
fn auth_url(text: &Spanned<String>, key: &str, issues: &mut Issues) -> Option<String> {
    match HttpUrl::parse(text.get_ref(), key) {
        Ok(url) if url.scheme == "https" || url.is_loopback() => Some(text.get_ref().clone()),
        Ok(_) => {
            issues.at(
                text.span(),
                format!(
                    "{key} must be an https:// URL (http:// only for a loopback host), not \"{}\"",
                    text.get_ref()
                ),
            );
            None
        }
        Err(e) => {
            issues.at(text.span(), e);
            None
        }
    }
}

/// Is `name` a token a header name may be (RFC 9110 `token`)?
fn is_header_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// `[auth]` (`span`: the section's key, for what is missing from it).
/// Behind `[auth]`, a server with per-user OAuth needs `auth.sign_in`: the MCP spec requires
/// the gateway to verify that the person who opens a connect link is the principal it was
/// made for, or one user could bind their account at the server to another's principal.
pub(crate) fn require_sign_in(
    servers: &std::collections::BTreeMap<String, super::ServerConfig>,
    span: Range<usize>,
    issues: &mut Issues,
) {
    let per_user: Vec<&str> = servers
        .values()
        .filter(|s| {
            matches!(&s.upstream, super::Upstream::Http(h)
                if matches!(h.credential, Some(portcullis_auth::upstream::CredentialSpec::Oauth(_))))
        })
        .map(|s| s.name.as_str())
        .collect();
    if !per_user.is_empty() {
        issues.at(
            span,
            format!(
                "servers {} use per-user OAuth (credential = {{ oauth }}) behind [auth]: add auth.sign_in = {{ client_id = \"…\" }} (an OpenID Connect client at the issuer), so that the consent page can check who opens a link",
                per_user.join(", ")
            ),
        );
    }
}

pub(crate) fn auth(raw: RawAuth, span: Range<usize>, issues: &mut Issues) -> AuthConfig {
    let mut issuers = Vec::new();
    match &raw.issuer {
        None => issues.at(
            span.clone(),
            "[auth] needs `issuer`: the authorization server whose tokens the gateway accepts",
        ),
        Some(value) => {
            let at = value.span();
            let listed: Option<Vec<&str>> = match value.get_ref() {
                toml::Value::String(one) => Some(vec![one.as_str()]),
                toml::Value::Array(many) => many.iter().map(toml::Value::as_str).collect(),
                _ => None,
            };
            match listed {
                None => issues.at(
                    at.clone(),
                    "auth.issuer must be an issuer URL or a list of issuer URLs",
                ),
                Some(list) if list.is_empty() => {
                    issues.at(at.clone(), "auth.issuer must name at least one issuer")
                }
                Some(list) => {
                    for one in list {
                        let one = Spanned::new(at.clone(), one.to_owned());
                        match auth_url(&one, "auth.issuer", issues) {
                            Some(url) if issuers.contains(&url) => {
                                issues.at(at.clone(), format!("issuer \"{url}\" is listed twice"))
                            }
                            Some(url) => issuers.push(url),
                            None => {}
                        }
                    }
                }
            }
        }
    }
    let audience = raw.audience.as_ref().and_then(|a| {
        match HttpUrl::parse(a.get_ref(), "auth.audience") {
            // RFC 8707 resource: no fragment (refused by the parser), no query here either,
            // and the form the gateway compares against: lowercase, default port dropped,
            // no trailing slash.
            Ok(url) if !url.rest.contains('?') => Some(format!(
                "{}{}",
                url.origin(),
                url.rest.trim_end_matches('/')
            )),
            Ok(_) => {
                issues.at(a.span(), "auth.audience must not have a ?query");
                None
            }
            Err(e) => {
                issues.at(a.span(), e);
                None
            }
        }
    });
    let jwks_uri = raw
        .jwks_uri
        .as_ref()
        .and_then(|j| auth_url(j, "auth.jwks_uri", issues));
    if let (Some(j), true) = (&raw.jwks_uri, issuers.len() > 1) {
        issues.at(
            j.span(),
            "auth.jwks_uri can only be set with a single issuer; with several, each issuer's keys are discovered from its metadata",
        );
    }
    let mut algorithms = Vec::new();
    match &raw.algorithms {
        None => algorithms.extend(ASYMMETRIC_ALGORITHMS.iter().map(|a| a.to_string())),
        Some(list) => {
            if list.get_ref().is_empty() {
                issues.at(list.span(), "auth.algorithms must not be empty");
            }
            for alg in list.get_ref() {
                let name = alg.get_ref();
                if ASYMMETRIC_ALGORITHMS.contains(&name.as_str()) {
                    algorithms.push(name.clone());
                } else if name.eq_ignore_ascii_case("none") || name.starts_with("HS") {
                    issues.at(
                        alg.span(),
                        format!(
                            "algorithm \"{name}\" is refused: an access token must be signed with the issuer's private key (one of {})",
                            ASYMMETRIC_ALGORITHMS.join(", ")
                        ),
                    );
                } else {
                    issues.at(
                        alg.span(),
                        format!(
                            "unknown algorithm \"{name}\": expected one of {}",
                            ASYMMETRIC_ALGORITHMS.join(", ")
                        ),
                    );
                }
            }
        }
    }
    let leeway = match &raw.leeway {
        None => DEFAULT_LEEWAY,
        Some(d) => match parse_duration(&d.get_ref().0) {
            Ok(v) if v <= MAX_LEEWAY => v,
            Ok(_) => {
                issues.at(
                    d.span(),
                    format!(
                        "auth.leeway must be at most {}",
                        format_duration(MAX_LEEWAY)
                    ),
                );
                DEFAULT_LEEWAY
            }
            Err(e) => {
                issues.at(d.span(), format!("invalid duration for auth.leeway: {e}"));
                DEFAULT_LEEWAY
            }
        },
    };
    let strings = |list: &Option<SpannedList>| -> Vec<String> {
        list.as_ref()
            .map(|l| l.get_ref().iter().map(|s| s.get_ref().clone()).collect())
            .unwrap_or_default()
    };
    let scopes_supported = strings(&raw.scopes_supported);
    if let Some(list) = &raw.scopes_supported {
        for s in list.get_ref() {
            let v = s.get_ref();
            if v.is_empty()
                || v.bytes()
                    .any(|b| b <= b' ' || b == b'"' || b == b'\\' || b > 0x7e)
            {
                issues.at(
                    s.span(),
                    format!("scope {v:?} is not a valid OAuth scope (printable ASCII, no spaces, quotes or backslashes)"),
                );
            }
        }
    }
    let mut strip_headers = Vec::new();
    if let Some(list) = &raw.strip_headers {
        for h in list.get_ref() {
            if is_header_name(h.get_ref()) {
                strip_headers.push(h.get_ref().to_ascii_lowercase());
            } else {
                issues.at(
                    h.span(),
                    format!("\"{}\" is not a valid HTTP header name", h.get_ref()),
                );
            }
        }
    }
    let max_sessions_per_principal = match &raw.max_sessions_per_principal {
        None => DEFAULT_SESSIONS_PER_PRINCIPAL,
        Some(n) => match usize::try_from(*n.get_ref()) {
            Ok(v) if (1..=super::MAX_SESSIONS_LIMIT).contains(&v) => v,
            _ => {
                issues.at(
                    n.span(),
                    format!(
                        "auth.max_sessions_per_principal must be between 1 and {}, not {}",
                        super::MAX_SESSIONS_LIMIT,
                        n.get_ref()
                    ),
                );
                DEFAULT_SESSIONS_PER_PRINCIPAL
            }
        },
    };
    let introspection = raw.introspection.map(|i| {
        let i = i.into_inner();
        IntrospectionConfig {
            endpoint: i
                .endpoint
                .as_ref()
                .and_then(|e| auth_url(e, "auth.introspection.endpoint", issues)),
            client_id: i.client_id.into_inner(),
            secret_env: i.secret_env.into_inner(),
        }
    });
    let sign_in = raw.sign_in.and_then(|s| {
        let (span, s) = (s.span(), s.into_inner());
        if s.client_id.get_ref().is_empty() {
            issues.at(span, "auth.sign_in.client_id is empty");
            return None;
        }
        Some(SignInConfig {
            client_id: s.client_id.into_inner(),
            secret_env: s.secret_env.map(Spanned::into_inner),
        })
    });
    let groups_claim = raw
        .groups_claim
        .map_or_else(|| "groups".to_owned(), Spanned::into_inner);
    AuthConfig {
        issuers,
        audience,
        scopes_supported,
        jwks_uri,
        algorithms,
        leeway,
        required_claims: strings(&raw.required_claims),
        groups_claim,
        strip_headers,
        max_sessions_per_principal,
        introspection,
        sign_in,
    }
}
