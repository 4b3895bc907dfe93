//! One request to an OAuth token endpoint, and its answer.
//!
//! Both grants the gateway uses (client credentials, token exchange) are a form POST with
//! client authentication, answered by the same JSON (RFC 6749 §5.1, §5.2; RFC 8693 §2.2).
//! What comes back is bounded (size, time) and checked before it is used: an access token
//! of type Bearer, or an OAuth error surfaced by its code. Neither the client secret nor any
//! token ever reaches an error message.

use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, header};
use portcullis_egress::{EgressClient, EgressError, EgressRequest, Uri};
use serde::Deserialize;
use zeroize::Zeroizing;

use super::CredentialError;
use super::spec::{ClientAuthMethod, OAuthClientSpec};
use super::validate::validate_token_url;
use crate::secret::Secret;

/// The largest token endpoint response read.
pub const MAX_TOKEN_RESPONSE_BYTES: usize = 64 * 1024;
/// How long a token request may take, from connect to the last byte, unless configured.
pub const DEFAULT_TOKEN_TIMEOUT: Duration = Duration::from_secs(10);
/// OAuth error text longer than this is cut: it ends up in logs.
const MAX_ERROR_TEXT: usize = 256;

/// A token endpoint and the gateway's credentials there.
pub(crate) struct TokenEndpoint {
    url: Uri,
    url_text: String,
    client_id: String,
    client_secret: Secret,
    auth_method: ClientAuthMethod,
    egress: EgressClient,
    pub(crate) timeout: Duration,
}

/// An access token as issued: the header to send, and how long the issuer says it lives.
pub(crate) struct IssuedToken {
    pub(crate) authorization: HeaderValue,
    pub(crate) expires_in: Option<Duration>,
}

impl TokenEndpoint {
    pub(crate) fn new(
        spec: &OAuthClientSpec,
        client_secret: Secret,
        egress: EgressClient,
    ) -> Result<Self, CredentialError> {
        let url = validate_token_url(&spec.token_url)?;
        Ok(TokenEndpoint {
            url,
            url_text: spec.token_url.clone(),
            client_id: spec.client_id.clone(),
            client_secret,
            auth_method: spec.auth_method,
            egress,
            timeout: DEFAULT_TOKEN_TIMEOUT,
        })
    }

    pub(crate) fn url(&self) -> &str {
        &self.url_text
    }

    /// POSTs the grant's parameters (client authentication is added here) and returns the
    /// issued token. `never_echo` are values (the subject token) that must not come back in
    /// an error message even if the server quotes them.
    pub(crate) async fn request(
        &self,
        params: &[(&str, &str)],
        never_echo: &[&str],
    ) -> Result<IssuedToken, CredentialError> {
        let request = self.build(params)?;
        let exchange = async {
            let response = self
                .egress
                .send(request)
                .await
                .map_err(|e| self.egress_error(e))?;
            let status = response.status();
            let body = response
                .bytes_limited(MAX_TOKEN_RESPONSE_BYTES)
                .await
                .map_err(|e| self.egress_error(e))?;
            Ok::<_, CredentialError>((status, body))
        };
        let (status, body) = tokio::time::timeout(self.timeout, exchange)
            .await
            .map_err(|_| CredentialError::TokenEndpointTimeout {
                url: self.url_text.clone(),
                timeout: self.timeout,
            })??;
        let mut never_echo = never_echo.to_vec();
        never_echo.push(self.client_secret.expose());
        self.interpret(status, &body, &never_echo)
    }

    fn build(&self, params: &[(&str, &str)]) -> Result<EgressRequest, CredentialError> {
        let mut form = form_urlencoded::Serializer::new(String::new());
        form.extend_pairs(params);
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/x-www-form-urlencoded"),
        );
        headers.insert(header::ACCEPT, HeaderValue::from_static("application/json"));
        match self.auth_method {
            ClientAuthMethod::ClientSecretBasic => {
                headers.insert(header::AUTHORIZATION, self.basic_authorization()?);
            }
            ClientAuthMethod::ClientSecretPost => {
                form.append_pair("client_id", &self.client_id);
                form.append_pair("client_secret", self.client_secret.expose());
            }
        }
        let body = Zeroizing::new(form.finish());
        let mut request = EgressRequest::new(Method::POST, self.url.clone());
        request.headers = headers;
        // The request body is handed to the HTTP client as shared bytes, which cannot be
        // wiped; the intermediate string is.
        request.body = Bytes::copy_from_slice(body.as_bytes());
        request.timeout = Some(self.timeout);
        Ok(request)
    }

    fn basic_authorization(&self) -> Result<HeaderValue, CredentialError> {
        basic_authorization(&self.client_id, &self.client_secret).ok_or_else(|| {
            CredentialError::InvalidTokenResponse {
                url: self.url_text.clone(),
                reason: "client credentials cannot form a header".into(),
            }
        })
    }

    fn egress_error(&self, e: EgressError) -> CredentialError {
        match e {
            EgressError::BodyTooLarge { limit, .. } => CredentialError::TokenResponseTooLarge {
                url: self.url_text.clone(),
                limit,
            },
            EgressError::Timeout { .. } => CredentialError::TokenEndpointTimeout {
                url: self.url_text.clone(),
                timeout: self.timeout,
            },
            other => CredentialError::TokenEndpointUnreachable {
                url: self.url_text.clone(),
                reason: other.to_string(),
            },
        }
    }

    fn interpret(
        &self,
        status: http::StatusCode,
        body: &[u8],
        never_echo: &[&str],
    ) -> Result<IssuedToken, CredentialError> {
        let invalid = |reason: &str| CredentialError::InvalidTokenResponse {
            url: self.url_text.clone(),
            reason: reason.to_owned(),
        };
        let parsed: Result<TokenResponse, _> = serde_json::from_slice(body);
        if !status.is_success() {
            return Err(match parsed {
                Ok(TokenResponse {
                    error: Some(error), ..
                }) => CredentialError::OAuth {
                    url: self.url_text.clone(),
                    status: status.as_u16(),
                    error: scrub(&error, never_echo),
                    description: parsed_description(body, never_echo),
                },
                _ => CredentialError::TokenEndpointStatus {
                    url: self.url_text.clone(),
                    status: status.as_u16(),
                },
            });
        }
        // serde_json's messages quote no input, only positions and expected shapes.
        let response = parsed.map_err(|e| invalid(&format!("not a token response: {e}")))?;
        let token = response
            .access_token
            .filter(|t| !t.is_empty())
            .ok_or_else(|| invalid("no access_token"))?;
        let token_type = response
            .token_type
            .ok_or_else(|| invalid("no token_type"))?;
        if !token_type.eq_ignore_ascii_case("bearer") {
            return Err(CredentialError::UnsupportedTokenType {
                url: self.url_text.clone(),
                token_type: scrub(&token_type, never_echo),
            });
        }
        let expires_in = match response.expires_in {
            None | Some(serde_json::Value::Null) => None,
            Some(v) => Some(seconds(&v).ok_or_else(|| invalid("expires_in is not a number"))?),
        };
        let authorization = token
            .bearer_header_value()
            .map_err(|_| invalid("access_token has characters not allowed in a header"))?;
        Ok(IssuedToken {
            authorization,
            expires_in,
        })
    }
}

/// RFC 6749 §2.3.1: id and secret are each form-encoded, then joined for Basic. The header
/// is marked sensitive; `None` if it cannot be a header value.
pub(crate) fn basic_authorization(client_id: &str, client_secret: &Secret) -> Option<HeaderValue> {
    let mut pair = Zeroizing::new(String::new());
    pair.extend(form_urlencoded::byte_serialize(client_id.as_bytes()));
    pair.push(':');
    pair.extend(form_urlencoded::byte_serialize(
        client_secret.expose().as_bytes(),
    ));
    let mut value = Zeroizing::new(String::from("Basic "));
    base64::engine::general_purpose::STANDARD.encode_string(pair.as_bytes(), &mut value);
    let mut header = HeaderValue::from_str(&value).ok()?;
    header.set_sensitive(true);
    Some(header)
}

/// The fields of RFC 6749 §5.1 / §5.2 the gateway reads. No `Debug`: it holds a token.
#[derive(Deserialize)]
struct TokenResponse {
    #[serde(default, deserialize_with = "optional_secret")]
    access_token: Option<Secret>,
    token_type: Option<String>,
    expires_in: Option<serde_json::Value>,
    error: Option<String>,
}

#[derive(Deserialize)]
struct ErrorDescription {
    error_description: Option<String>,
}

fn parsed_description(body: &[u8], never_echo: &[&str]) -> Option<String> {
    serde_json::from_slice::<ErrorDescription>(body)
        .ok()?
        .error_description
        .map(|d| scrub(&d, never_echo))
}

fn optional_secret<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Secret>, D::Error> {
    Ok(Option::<String>::deserialize(d)?.map(Secret::new))
}

/// `expires_in` is a number of seconds; some servers send it as a string or a float.
pub(crate) fn seconds(value: &serde_json::Value) -> Option<Duration> {
    let secs = match value {
        serde_json::Value::Number(n) => n.as_u64().or_else(|| {
            n.as_f64()
                .filter(|f| f.is_finite() && *f >= 0.0)
                .map(|f| f as u64)
        })?,
        serde_json::Value::String(s) => s.trim().parse::<u64>().ok()?,
        _ => return None,
    };
    Some(Duration::from_secs(secs))
}

/// Server-provided text on its way into an error: control characters dropped, any secret
/// the server echoed back replaced, then cut to a bound (in that order, so the cut cannot
/// leave half a secret behind).
pub(crate) fn scrub(text: &str, never_echo: &[&str]) -> String {
    let mut out: String = text.chars().filter(|c| !c.is_control()).collect();
    for secret in never_echo.iter().filter(|s| !s.is_empty()) {
        if out.contains(secret) {
            out = out.replace(secret, "[redacted]");
        }
    }
    out.chars().take(MAX_ERROR_TEXT).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expires_in_accepts_numbers_and_numeric_strings() {
        let v = |j: &str| seconds(&serde_json::from_str(j).unwrap());
        assert_eq!(v("3600"), Some(Duration::from_secs(3600)));
        assert_eq!(v("\"3600\""), Some(Duration::from_secs(3600)));
        assert_eq!(v("1.9"), Some(Duration::from_secs(1)));
        assert_eq!(v("-5"), None);
        assert_eq!(v("\"soon\""), None);
        assert_eq!(v("true"), None);
    }

    #[test]
    fn scrub_removes_echoed_secrets_and_control_characters() {
        assert_eq!(
            scrub("bad secret s3cr3t-value\r\n", &["s3cr3t-value"]),
            "bad secret [redacted]"
        );
        let long = format!("{}s3cr3t-value-long", "x".repeat(MAX_ERROR_TEXT - 4));
        assert!(!scrub(&long, &["s3cr3t-value-long"]).contains("s3cr"));
        assert_eq!(scrub(&"y".repeat(1000), &[]).len(), MAX_ERROR_TEXT);
    }
}
