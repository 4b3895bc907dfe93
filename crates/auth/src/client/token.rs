//! The token requests of the authorization code flow: redeeming a code (with the PKCE
//! verifier, the exact redirect URI and the `resource`), and refreshing, where a new refresh
//! token replaces the old one (OAuth 2.1 §4.3.1 rotation: the old one is dead at the server).
//!
//! Answers are read bounded in size and time and checked like the upstream grants' (the same
//! cleaning and scrubbing of server text, [`crate::upstream::CredentialError`] for failures).

use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use portcullis_egress::{EgressClient, EgressError, EgressRequest};
use serde::Deserialize;
use zeroize::Zeroizing;

use super::authorize::AuthorizationGrant;
use super::error::OAuthClientError;
use crate::secret::Secret;
use crate::upstream::CredentialError;
use crate::upstream::token_endpoint::{basic_authorization, scrub, seconds};
use crate::upstream::{DEFAULT_TOKEN_TIMEOUT, MAX_TOKEN_RESPONSE_BYTES};

/// How the gateway authenticates at the token endpoint.
#[derive(Debug, Clone)]
pub enum ClientAuth {
    /// A public client (a Client ID Metadata Document, or DCR without a secret): only
    /// `client_id` in the form; PKCE is what protects the code.
    None,
    ClientSecretBasic(Secret),
    ClientSecretPost(Secret),
}

/// The gateway's client registration at one authorization server.
#[derive(Debug, Clone)]
pub struct ClientIdentity {
    pub client_id: String,
    pub auth: ClientAuth,
}

impl ClientIdentity {
    pub fn public(client_id: impl Into<String>) -> Self {
        ClientIdentity {
            client_id: client_id.into(),
            auth: ClientAuth::None,
        }
    }

    fn secret(&self) -> Option<&Secret> {
        match &self.auth {
            ClientAuth::None => None,
            ClientAuth::ClientSecretBasic(s) | ClientAuth::ClientSecretPost(s) => Some(s),
        }
    }
}

/// The tokens of one principal at one server. `Debug` shows no token.
#[derive(Debug, Clone)]
pub struct TokenSet {
    pub access_token: Secret,
    pub refresh_token: Option<Secret>,
    pub expires_in: Option<Duration>,
    /// The scope granted, when the server says (it may be less than asked).
    pub scope: Option<String>,
}

impl TokenSet {
    /// The set after a refresh answered `next`: its refresh token replaces this one's; a
    /// server that sends none lets the old one live on.
    fn rotated(self, next: TokenSet) -> TokenSet {
        TokenSet {
            refresh_token: next.refresh_token.or(self.refresh_token),
            scope: next.scope.or(self.scope),
            ..next
        }
    }
}

/// Redeems the code of `grant` at the token endpoint recorded with it.
pub async fn exchange_code(
    egress: &EgressClient,
    client: &ClientIdentity,
    grant: AuthorizationGrant,
) -> Result<TokenSet, OAuthClientError> {
    let (tokens, _) = exchange_code_for_identity(egress, client, grant).await?;
    Ok(tokens)
}

/// [`exchange_code`] for a sign-in (scope `openid`): the tokens and the OpenID Connect
/// `id_token` that says who signed in (to be validated by the caller: issuer, audience =
/// the client id, signature, expiry).
pub async fn exchange_code_for_identity(
    egress: &EgressClient,
    client: &ClientIdentity,
    grant: AuthorizationGrant,
) -> Result<(TokenSet, Option<Secret>), OAuthClientError> {
    let p = &grant.pending;
    let params = [
        ("grant_type", "authorization_code"),
        ("code", grant.code.expose()),
        ("redirect_uri", p.redirect_uri.as_str()),
        ("code_verifier", p.code_verifier.expose()),
        ("resource", p.resource.as_str()),
    ];
    let never_echo = [grant.code.expose(), p.code_verifier.expose()];
    let answer = request(egress, &p.token_endpoint, client, &params, &never_echo).await?;
    Ok((answer.tokens, answer.id_token))
}

/// Refreshes `tokens` for `resource` (optionally narrowing `scope`), returning the rotated
/// set. The caller must store the result in place of `tokens`: after rotation the old
/// refresh token no longer works.
pub async fn refresh(
    egress: &EgressClient,
    token_endpoint: &Uri,
    client: &ClientIdentity,
    tokens: TokenSet,
    resource: &str,
    scope: Option<&str>,
) -> Result<TokenSet, OAuthClientError> {
    let refresh_token = tokens
        .refresh_token
        .clone()
        .ok_or(OAuthClientError::NoRefreshToken)?;
    let mut params = vec![
        ("grant_type", "refresh_token"),
        ("refresh_token", refresh_token.expose()),
        ("resource", resource),
    ];
    if let Some(scope) = scope {
        params.push(("scope", scope));
    }
    let next = request(
        egress,
        token_endpoint,
        client,
        &params,
        &[refresh_token.expose()],
    )
    .await?
    .tokens;
    Ok(tokens.rotated(next))
}

/// The token request, built outside the async fn: the form serializer is not `Send`.
fn token_request(
    url: &Uri,
    url_text: &str,
    client: &ClientIdentity,
    params: &[(&str, &str)],
) -> Result<EgressRequest, CredentialError> {
    let mut form = form_urlencoded::Serializer::new(String::new());
    form.extend_pairs(params);
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-www-form-urlencoded"),
    );
    match &client.auth {
        ClientAuth::None => {
            form.append_pair("client_id", &client.client_id);
        }
        ClientAuth::ClientSecretPost(secret) => {
            form.append_pair("client_id", &client.client_id);
            form.append_pair("client_secret", secret.expose());
        }
        ClientAuth::ClientSecretBasic(secret) => {
            let value = basic_authorization(&client.client_id, secret).ok_or_else(|| {
                CredentialError::InvalidTokenResponse {
                    url: url_text.to_owned(),
                    reason: "client credentials cannot form a header".into(),
                }
            })?;
            headers.insert(header::AUTHORIZATION, value);
        }
    }
    let body = Zeroizing::new(form.finish());
    let mut req = EgressRequest::new(Method::POST, url.clone());
    req.headers = headers;
    req.body = Bytes::copy_from_slice(body.as_bytes());
    Ok(req)
}

async fn request(
    egress: &EgressClient,
    url: &Uri,
    client: &ClientIdentity,
    params: &[(&str, &str)],
    never_echo: &[&str],
) -> Result<Answer, OAuthClientError> {
    let url_text = url.to_string();
    let req = token_request(url, &url_text, client, params)?;
    let (status, body) = send_bounded(egress, req, DEFAULT_TOKEN_TIMEOUT, MAX_TOKEN_RESPONSE_BYTES)
        .await
        .map_err(|e| match e {
            SendError::Timeout => CredentialError::TokenEndpointTimeout {
                url: url_text.clone(),
                timeout: DEFAULT_TOKEN_TIMEOUT,
            },
            SendError::Egress(EgressError::BodyTooLarge { limit, .. }) => {
                CredentialError::TokenResponseTooLarge {
                    url: url_text.clone(),
                    limit,
                }
            }
            SendError::Egress(other) => CredentialError::TokenEndpointUnreachable {
                url: url_text.clone(),
                reason: other.to_string(),
            },
        })?;
    let mut never_echo = never_echo.to_vec();
    if let Some(secret) = client.secret() {
        never_echo.push(secret.expose());
    }
    Ok(interpret(&url_text, status, &body, &never_echo)?)
}

/// Why a bounded exchange failed.
pub(crate) enum SendError {
    Egress(EgressError),
    Timeout,
}

/// Sends `req` and reads the whole answer, within `timeout` (head and body) and `max_bytes`.
pub(crate) async fn send_bounded(
    egress: &EgressClient,
    mut req: EgressRequest,
    timeout: Duration,
    max_bytes: usize,
) -> Result<(StatusCode, Bytes), SendError> {
    req.timeout = Some(timeout);
    req.headers
        .insert(header::ACCEPT, HeaderValue::from_static("application/json"));
    let exchange = async {
        let response = egress.send(req).await?;
        let status = response.status();
        let body = response.bytes_limited(max_bytes).await?;
        Ok::<_, EgressError>((status, body))
    };
    match tokio::time::timeout(timeout, exchange).await {
        Err(_) | Ok(Err(EgressError::Timeout { .. })) => Err(SendError::Timeout),
        Ok(Err(e)) => Err(SendError::Egress(e)),
        Ok(Ok(answer)) => Ok(answer),
    }
}

/// A token endpoint's answer: the tokens, and an OpenID Connect `id_token` when it sent one.
struct Answer {
    tokens: TokenSet,
    id_token: Option<Secret>,
}

/// RFC 6749 §5.1 / §5.2. No `Debug`: it holds tokens.
#[derive(Deserialize)]
struct TokenResponse {
    access_token: Option<String>,
    id_token: Option<String>,
    token_type: Option<String>,
    expires_in: Option<serde_json::Value>,
    refresh_token: Option<String>,
    scope: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

fn interpret(
    url: &str,
    status: StatusCode,
    body: &[u8],
    never_echo: &[&str],
) -> Result<Answer, CredentialError> {
    let invalid = |reason: &str| CredentialError::InvalidTokenResponse {
        url: url.to_owned(),
        reason: reason.to_owned(),
    };
    let parsed: Result<TokenResponse, _> = serde_json::from_slice(body);
    if !status.is_success() {
        return Err(match parsed {
            Ok(TokenResponse {
                error: Some(error),
                error_description,
                ..
            }) => CredentialError::OAuth {
                url: url.to_owned(),
                status: status.as_u16(),
                error: scrub(&error, never_echo),
                description: error_description.map(|d| scrub(&d, never_echo)),
            },
            _ => CredentialError::TokenEndpointStatus {
                url: url.to_owned(),
                status: status.as_u16(),
            },
        });
    }
    // serde_json's messages quote no input, only positions and expected shapes.
    let response = parsed.map_err(|e| invalid(&format!("not a token response: {e}")))?;
    let access_token = Secret::new(
        response
            .access_token
            .filter(|t| !t.is_empty())
            .ok_or_else(|| invalid("no access_token"))?,
    );
    let refresh_token = response
        .refresh_token
        .filter(|t| !t.is_empty())
        .map(Secret::new);
    let token_type = response
        .token_type
        .ok_or_else(|| invalid("no token_type"))?;
    if !token_type.eq_ignore_ascii_case("bearer") {
        return Err(CredentialError::UnsupportedTokenType {
            url: url.to_owned(),
            token_type: scrub(&token_type, never_echo),
        });
    }
    access_token
        .bearer_header_value()
        .map_err(|_| invalid("access_token has characters not allowed in a header"))?;
    let expires_in = match response.expires_in {
        None | Some(serde_json::Value::Null) => None,
        Some(v) => Some(seconds(&v).ok_or_else(|| invalid("expires_in is not a number"))?),
    };
    Ok(Answer {
        tokens: TokenSet {
            access_token,
            refresh_token,
            expires_in,
            scope: response.scope.map(|s| scrub(&s, never_echo)),
        },
        id_token: response.id_token.filter(|t| !t.is_empty()).map(Secret::new),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(body: &str) -> Result<TokenSet, CredentialError> {
        interpret("https://as/token", StatusCode::OK, body.as_bytes(), &[]).map(|a| a.tokens)
    }

    #[test]
    fn an_id_token_is_kept_apart_from_the_token_set() {
        let a = interpret(
            "https://as/token",
            StatusCode::OK,
            br#"{"access_token":"at-1","token_type":"Bearer","id_token":"h.p.s"}"#,
            &[],
        )
        .map_err(|e| e.to_string())
        .unwrap();
        assert_eq!(a.id_token.as_ref().map(Secret::expose), Some("h.p.s"));
        assert_eq!(a.tokens.access_token.expose(), "at-1");
    }

    #[test]
    fn a_token_response_gives_a_token_set_that_prints_no_token() {
        let t = ok(r#"{"access_token":"at-1","token_type":"bearer","expires_in":60,"refresh_token":"rt-1","scope":"a b"}"#)
            .unwrap();
        assert_eq!(t.access_token.expose(), "at-1");
        assert_eq!(t.refresh_token.as_ref().unwrap().expose(), "rt-1");
        assert_eq!(t.expires_in, Some(Duration::from_secs(60)));
        let printed = format!("{t:?}");
        assert!(
            !printed.contains("at-1") && !printed.contains("rt-1"),
            "{printed}"
        );
    }

    #[test]
    fn unusable_token_responses_are_refused() {
        for body in [
            r#"{"token_type":"Bearer"}"#,
            r#"{"access_token":"","token_type":"Bearer"}"#,
            r#"{"access_token":"a"}"#,
            r#"{"access_token":"a\nb","token_type":"Bearer"}"#,
            r#"{"access_token":"a","token_type":"Bearer","expires_in":"soon"}"#,
            "not json",
        ] {
            assert!(ok(body).is_err(), "{body}");
        }
        assert!(matches!(
            ok(r#"{"access_token":"a","token_type":"DPoP"}"#),
            Err(CredentialError::UnsupportedTokenType { .. })
        ));
    }

    #[test]
    fn an_oauth_error_is_surfaced_without_the_code_it_quotes() {
        let err = interpret(
            "https://as/token",
            StatusCode::BAD_REQUEST,
            br#"{"error":"invalid_grant","error_description":"code c0de-123 was used"}"#,
            &["c0de-123"],
        )
        .map(|a| a.tokens)
        .unwrap_err();
        let text = err.to_string();
        assert!(text.contains("invalid_grant"), "{text}");
        assert!(!text.contains("c0de-123"), "{text}");
    }

    #[test]
    fn rotation_replaces_the_refresh_token_and_keeps_it_when_none_is_sent() {
        let old = TokenSet {
            access_token: Secret::new("at-1".into()),
            refresh_token: Some(Secret::new("rt-1".into())),
            expires_in: None,
            scope: Some("a".into()),
        };
        let next =
            ok(r#"{"access_token":"at-2","token_type":"Bearer","refresh_token":"rt-2"}"#).unwrap();
        let t = old.clone().rotated(next);
        assert_eq!(t.access_token.expose(), "at-2");
        assert_eq!(t.refresh_token.unwrap().expose(), "rt-2");
        assert_eq!(t.scope.as_deref(), Some("a"));
        let next = ok(r#"{"access_token":"at-3","token_type":"Bearer"}"#).unwrap();
        assert_eq!(old.rotated(next).refresh_token.unwrap().expose(), "rt-1");
    }
}
