//! The outbound requests of the resource server (metadata, JWKS, introspection), all through
//! the gateway's one egress client, each bounded in time and size.

use std::time::Duration;

use bytes::Bytes;
use http::header::{ACCEPT, CONTENT_TYPE};
use http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use portcullis_egress::{EgressClient, EgressError, EgressRequest};
use serde_json::{Map, Value};

use super::json;

/// Why a URL is not acceptable as an authorization-server endpoint.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{url:?} is not an acceptable endpoint URL: {reason}")]
pub struct InvalidEndpoint {
    pub url: String,
    pub reason: &'static str,
}

/// An authorization-server URL (issuer, JWKS, introspection): `https`, or plain `http` to a
/// loopback host only (RFC 8414 and the MCP spec require TLS for authorization servers; a
/// local test IdP is the one exception worth having). No user information, no fragment.
pub fn endpoint(url: &str) -> Result<Uri, InvalidEndpoint> {
    let invalid = |reason| InvalidEndpoint {
        url: url.to_owned(),
        reason,
    };
    if url.contains('#') {
        return Err(invalid("fragments are not allowed"));
    }
    let uri = EgressClient::parse_url(url).map_err(|_| invalid("not an absolute http(s) URL"))?;
    let authority = uri.authority().ok_or_else(|| invalid("no host"))?;
    if authority.as_str().contains('@') {
        return Err(invalid("user information is not allowed"));
    }
    if uri.scheme_str() == Some("http") && !crate::is_loopback_host(authority.host()) {
        return Err(invalid("plain http is only allowed to a loopback host"));
    }
    Ok(uri)
}

/// Why a fetch failed. Carries no response body: bodies from a misbehaving server are not
/// trusted into logs.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error(transparent)]
    Egress(#[from] EgressError),
    #[error("timed out")]
    Timeout,
    #[error("unexpected HTTP status {0}")]
    Status(StatusCode),
    #[error("the response is not a JSON object (or repeats a member name)")]
    NotJson,
}

/// A bounded request: the timeout covers the response head and the body.
pub struct Bounds {
    pub timeout: Duration,
    pub max_body_bytes: usize,
}

/// GETs a JSON object. Only `200 OK` is accepted (redirects are not followed by egress).
pub async fn get_json(
    egress: &EgressClient,
    uri: &Uri,
    bounds: &Bounds,
) -> Result<(HeaderMap, Map<String, Value>), FetchError> {
    let mut req = EgressRequest::new(Method::GET, uri.clone());
    req.headers
        .insert(ACCEPT, HeaderValue::from_static("application/json"));
    send_json(egress, req, bounds).await
}

/// POSTs an `application/x-www-form-urlencoded` body and reads a JSON object.
pub async fn post_form(
    egress: &EgressClient,
    uri: &Uri,
    headers: HeaderMap,
    body: String,
    bounds: &Bounds,
) -> Result<(HeaderMap, Map<String, Value>), FetchError> {
    let mut req = EgressRequest::new(Method::POST, uri.clone());
    req.headers = headers;
    req.headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/x-www-form-urlencoded"),
    );
    req.headers
        .insert(ACCEPT, HeaderValue::from_static("application/json"));
    req.body = Bytes::from(body);
    send_json(egress, req, bounds).await
}

async fn send_json(
    egress: &EgressClient,
    mut req: EgressRequest,
    bounds: &Bounds,
) -> Result<(HeaderMap, Map<String, Value>), FetchError> {
    req.timeout = Some(bounds.timeout);
    let exchange = async {
        let resp = egress.send(req).await?;
        if resp.status() != StatusCode::OK {
            return Err(FetchError::Status(resp.status()));
        }
        let headers = resp.headers().clone();
        let body = resp.bytes_limited(bounds.max_body_bytes).await?;
        let object = json::strict_object(&body).map_err(|_| FetchError::NotJson)?;
        Ok((headers, object))
    };
    tokio::time::timeout(bounds.timeout, exchange)
        .await
        .map_err(|_| FetchError::Timeout)?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authorization_server_urls_must_be_https_except_to_loopback() {
        for ok in [
            "https://idp.example.com/realms/acme",
            "http://127.0.0.1:8080/",
            "http://[::1]:9000/jwks",
            "http://localhost:3000",
        ] {
            assert!(endpoint(ok).is_ok(), "{ok}");
        }
        for bad in [
            "http://idp.example.com/",
            "http://10.0.0.1/",
            "https://u:p@idp.example.com/",
            "https://idp.example.com/#x",
            "file:///etc/passwd",
            "idp.example.com",
        ] {
            assert!(endpoint(bad).is_err(), "{bad}");
        }
    }
}
