//! Authorization-server metadata discovery (RFC 8414, OpenID Connect Discovery 1.0), in the
//! order the MCP authorization spec (§4.3) prescribes, with the issuer check of RFC 8414 §3.3:
//! a document whose `issuer` differs from the configured issuer is never used, since it
//! would let one server name another's keys as its own (the mix-up attack).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::Uri;
use portcullis_egress::EgressClient;
use serde_json::{Map, Value};
use tokio::sync::OnceCell;

use super::clock::Clock;
use super::fetch::{self, Bounds, FetchError, InvalidEndpoint};

/// The parts of the metadata this crate uses; `document` keeps the rest.
#[derive(Debug, Clone, PartialEq)]
pub struct AuthorizationServerMetadata {
    pub issuer: String,
    pub jwks_uri: Option<String>,
    pub introspection_endpoint: Option<String>,
    pub token_endpoint: Option<String>,
    pub authorization_endpoint: Option<String>,
    pub scopes_supported: Option<Vec<String>>,
    /// The whole document as served.
    pub document: Map<String, Value>,
}

/// Bounds of a discovery fetch.
#[derive(Debug, Clone)]
pub struct DiscoveryConfig {
    /// Per URL tried, head and body (default 10 s).
    pub timeout: Duration,
    /// Largest metadata document (default 64 KiB).
    pub max_body_bytes: usize,
    /// After a failed discovery, the next attempt waits this long (default 10 s), so that
    /// requests arriving while the authorization server is down do not each retry it.
    pub retry_after_failure: Duration,
}

impl Default for DiscoveryConfig {
    fn default() -> Self {
        DiscoveryConfig {
            timeout: Duration::from_secs(10),
            max_body_bytes: 64 * 1024,
            retry_after_failure: Duration::from_secs(10),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DiscoveryError {
    #[error("invalid issuer: {0}")]
    InvalidIssuer(#[from] InvalidEndpoint),
    #[error("the issuer identifier {0:?} has a query, which RFC 8414 does not allow")]
    IssuerWithQuery(String),
    #[error("metadata at {url} names issuer {found:?}, not the configured {expected:?}")]
    IssuerMismatch {
        url: String,
        expected: String,
        found: String,
    },
    #[error("member {member:?} of the metadata at {url} has the wrong type")]
    InvalidMember { url: String, member: &'static str },
    #[error("no metadata for issuer {issuer:?} at any well-known URL (last: {last})")]
    NotFound { issuer: String, last: String },
    #[error("could not reach {url}: {source}")]
    Unreachable {
        url: String,
        #[source]
        source: FetchError,
    },
    #[error("discovery for {0:?} failed recently; not retrying yet")]
    RecentlyFailed(String),
}

/// The well-known URLs for `issuer`, in the order they must be tried.
pub fn discovery_urls(issuer: &str) -> Result<Vec<Uri>, DiscoveryError> {
    let uri = fetch::endpoint(issuer)?;
    if uri.query().is_some() {
        return Err(DiscoveryError::IssuerWithQuery(issuer.to_owned()));
    }
    let origin = format!(
        "{}://{}",
        uri.scheme_str().unwrap_or("https"),
        uri.authority().map_or("", |a| a.as_str())
    );
    // RFC 8414 §3.1: a terminating "/" is removed before inserting the well-known segment.
    let path = uri.path().trim_end_matches('/');
    let urls = if path.is_empty() {
        vec![
            format!("{origin}/.well-known/oauth-authorization-server"),
            format!("{origin}/.well-known/openid-configuration"),
        ]
    } else {
        vec![
            format!("{origin}/.well-known/oauth-authorization-server{path}"),
            format!("{origin}/.well-known/openid-configuration{path}"),
            format!("{origin}{path}/.well-known/openid-configuration"),
        ]
    };
    urls.iter().map(|u| Ok(fetch::endpoint(u)?)).collect()
}

/// Fetches the metadata of `issuer`: the first well-known URL that answers `200` with a JSON
/// object wins, and its `issuer` must equal `issuer` exactly. A transport failure stops the
/// search (the other URLs are on the same host); an error status tries the next URL.
pub async fn discover(
    egress: &EgressClient,
    issuer: &str,
    config: &DiscoveryConfig,
) -> Result<AuthorizationServerMetadata, DiscoveryError> {
    let bounds = Bounds {
        timeout: config.timeout,
        max_body_bytes: config.max_body_bytes,
    };
    let mut last = String::from("nothing tried");
    for url in discovery_urls(issuer)? {
        match fetch::get_json(egress, &url, &bounds).await {
            Ok((_, document)) => return parse_metadata(issuer, &url, document),
            Err(FetchError::Status(status)) => {
                last = format!("{url}: HTTP {}", status.as_u16());
            }
            Err(FetchError::NotJson) => last = format!("{url}: not a JSON object"),
            Err(source) => {
                return Err(DiscoveryError::Unreachable {
                    url: url.to_string(),
                    source,
                });
            }
        }
    }
    Err(DiscoveryError::NotFound {
        issuer: issuer.to_owned(),
        last,
    })
}

fn parse_metadata(
    issuer: &str,
    url: &Uri,
    document: Map<String, Value>,
) -> Result<AuthorizationServerMetadata, DiscoveryError> {
    let invalid = |member| DiscoveryError::InvalidMember {
        url: url.to_string(),
        member,
    };
    let string = |member: &'static str| match document.get(member) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(invalid(member)),
    };
    let found = string("issuer")?.ok_or_else(|| invalid("issuer"))?;
    if found != issuer {
        return Err(DiscoveryError::IssuerMismatch {
            url: url.to_string(),
            expected: issuer.to_owned(),
            found,
        });
    }
    let scopes_supported = match document.get("scopes_supported") {
        None | Some(Value::Null) => None,
        Some(Value::Array(items)) => Some(
            items
                .iter()
                .map(|v| v.as_str().map(str::to_owned))
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| invalid("scopes_supported"))?,
        ),
        Some(_) => return Err(invalid("scopes_supported")),
    };
    Ok(AuthorizationServerMetadata {
        issuer: found,
        jwks_uri: string("jwks_uri")?,
        introspection_endpoint: string("introspection_endpoint")?,
        token_endpoint: string("token_endpoint")?,
        authorization_endpoint: string("authorization_endpoint")?,
        scopes_supported,
        document,
    })
}

/// The metadata of one issuer, discovered on first use and then kept. Concurrent first uses
/// share one discovery; after a failure, attempts within
/// [`DiscoveryConfig::retry_after_failure`] fail at once without a request.
#[derive(Debug)]
pub struct LazyMetadata {
    issuer: String,
    egress: EgressClient,
    config: DiscoveryConfig,
    clock: Arc<dyn Clock>,
    cell: OnceCell<Arc<AuthorizationServerMetadata>>,
    failed_at: Mutex<Option<Duration>>,
}

impl LazyMetadata {
    pub fn new(
        issuer: String,
        egress: EgressClient,
        config: DiscoveryConfig,
        clock: Arc<dyn Clock>,
    ) -> Self {
        LazyMetadata {
            issuer,
            egress,
            config,
            clock,
            cell: OnceCell::new(),
            failed_at: Mutex::new(None),
        }
    }

    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    pub async fn get(&self) -> Result<Arc<AuthorizationServerMetadata>, DiscoveryError> {
        let found = self
            .cell
            .get_or_try_init(|| async {
                let now = self.clock.monotonic();
                let failed_at = *self.failed_at.lock().unwrap_or_else(|p| p.into_inner());
                if failed_at.is_some_and(|t| now < t + self.config.retry_after_failure) {
                    return Err(DiscoveryError::RecentlyFailed(self.issuer.clone()));
                }
                match discover(&self.egress, &self.issuer, &self.config).await {
                    Ok(m) => Ok(Arc::new(m)),
                    Err(e) => {
                        *self.failed_at.lock().unwrap_or_else(|p| p.into_inner()) =
                            Some(self.clock.monotonic());
                        tracing::warn!(issuer = %self.issuer, error = %e, "authorization server discovery failed");
                        Err(e)
                    }
                }
            })
            .await?;
        Ok(found.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn urls(issuer: &str) -> Vec<String> {
        discovery_urls(issuer)
            .unwrap()
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn an_issuer_with_a_path_gets_the_three_urls_in_spec_order() {
        assert_eq!(
            urls("https://auth.example.com/tenant1"),
            [
                "https://auth.example.com/.well-known/oauth-authorization-server/tenant1",
                "https://auth.example.com/.well-known/openid-configuration/tenant1",
                "https://auth.example.com/tenant1/.well-known/openid-configuration",
            ]
        );
        // A terminating slash is removed before inserting.
        assert_eq!(
            urls("https://auth.example.com/tenant1/"),
            urls("https://auth.example.com/tenant1")
        );
    }

    #[test]
    fn an_issuer_without_a_path_gets_the_two_root_urls() {
        let expected = [
            "https://auth.example.com/.well-known/oauth-authorization-server",
            "https://auth.example.com/.well-known/openid-configuration",
        ];
        assert_eq!(urls("https://auth.example.com"), expected);
        assert_eq!(urls("https://auth.example.com/"), expected);
    }

    #[test]
    fn issuers_with_a_query_or_plain_http_to_a_remote_host_are_refused() {
        assert!(matches!(
            discovery_urls("https://auth.example.com/?tenant=1"),
            Err(DiscoveryError::IssuerWithQuery(_))
        ));
        assert!(matches!(
            discovery_urls("http://auth.example.com/"),
            Err(DiscoveryError::InvalidIssuer(_))
        ));
    }

    #[test]
    fn metadata_naming_another_issuer_is_refused() {
        let url: Uri = "https://a.example/.well-known/openid-configuration"
            .parse()
            .unwrap();
        let doc = serde_json::json!({"issuer": "https://evil.example", "jwks_uri": "https://evil.example/jwks"});
        let err = parse_metadata("https://a.example", &url, doc.as_object().unwrap().clone())
            .unwrap_err();
        assert!(
            matches!(err, DiscoveryError::IssuerMismatch { .. }),
            "{err}"
        );
        // Exact comparison: a trailing slash is a different issuer.
        let doc = serde_json::json!({"issuer": "https://a.example/"});
        assert!(matches!(
            parse_metadata("https://a.example", &url, doc.as_object().unwrap().clone()),
            Err(DiscoveryError::IssuerMismatch { .. })
        ));
    }

    #[test]
    fn members_of_the_wrong_type_are_refused_and_absent_ones_are_none() {
        let url: Uri = "https://a.example/.well-known/openid-configuration"
            .parse()
            .unwrap();
        let doc = serde_json::json!({"issuer": "https://a.example", "jwks_uri": 5});
        assert!(matches!(
            parse_metadata("https://a.example", &url, doc.as_object().unwrap().clone()),
            Err(DiscoveryError::InvalidMember {
                member: "jwks_uri",
                ..
            })
        ));
        let doc =
            serde_json::json!({"issuer": "https://a.example", "scopes_supported": ["a", "b"]});
        let m =
            parse_metadata("https://a.example", &url, doc.as_object().unwrap().clone()).unwrap();
        assert_eq!(m.scopes_supported, Some(vec!["a".into(), "b".into()]));
        assert_eq!(m.jwks_uri, None);
        assert_eq!(m.introspection_endpoint, None);
    }
}
