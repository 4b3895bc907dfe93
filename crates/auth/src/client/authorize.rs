//! The authorization request and its callback (OAuth 2.1 §4.1, RFC 7636, RFC 8707, RFC 9207).
//!
//! The request carries a fresh PKCE `S256` challenge, a fresh single-use `state`, the exact
//! redirect URI, and the `resource` the token is for. The callback is checked in the order
//! that keeps an attacker's response from being acted on: the `state` first (and consumed,
//! whatever follows), then the issuer, and only then are its `error` fields read or its code
//! accepted.

use super::discovery::AuthorizationServer;
use super::error::OAuthClientError;
use super::pending::{PendingAuthorization, PendingAuthorizations};
use super::pkce::Pkce;
use crate::resource::fetch;
use crate::secret::Secret;
use crate::upstream::token_endpoint::scrub;

/// Where to send the user, and the state that will come back.
#[derive(Debug, Clone)]
pub struct StartedAuthorization {
    /// The authorization endpoint with the request's parameters.
    pub url: String,
    pub state: String,
}

/// A code received at the callback, with what is needed to redeem it.
#[derive(Debug)]
pub struct AuthorizationGrant {
    pub code: Secret,
    pub pending: PendingAuthorization,
}

/// Starts an authorization of `principal` at `server`: records a pending authorization and
/// returns the URL to send the user to. `redirect_uri` must be `https` (or `http` to a
/// loopback host) and is sent exactly as given; `resource` is the canonical server URL.
pub fn start_authorization(
    pending: &PendingAuthorizations,
    server: &AuthorizationServer,
    client_id: &str,
    redirect_uri: &str,
    resource: &str,
    scope: Option<&str>,
    principal: &str,
) -> Result<StartedAuthorization, OAuthClientError> {
    fetch::endpoint(redirect_uri).map_err(|e| OAuthClientError::InvalidRedirectUri {
        url: redirect_uri.to_owned(),
        reason: e.reason,
    })?;
    let pkce = Pkce::generate();
    let challenge = pkce.challenge().to_owned();
    let state = pending.insert(PendingAuthorization {
        issuer: server.issuer().to_owned(),
        iss_parameter_supported: server.iss_parameter_supported,
        token_endpoint: server.token_endpoint.clone(),
        client_id: client_id.to_owned(),
        redirect_uri: redirect_uri.to_owned(),
        resource: resource.to_owned(),
        scope: scope.map(str::to_owned),
        code_verifier: pkce.into_verifier(),
        principal: principal.to_owned(),
    })?;
    let mut query = form_urlencoded::Serializer::new(String::new());
    query.append_pair("response_type", "code");
    query.append_pair("client_id", client_id);
    query.append_pair("redirect_uri", redirect_uri);
    if let Some(scope) = scope {
        query.append_pair("scope", scope);
    }
    query.append_pair("state", &state);
    query.append_pair("code_challenge", &challenge);
    query.append_pair("code_challenge_method", Pkce::METHOD);
    query.append_pair("resource", resource);
    let endpoint = server.authorization_endpoint.to_string();
    let separator = if endpoint.contains('?') { '&' } else { '?' };
    Ok(StartedAuthorization {
        url: format!("{endpoint}{separator}{}", query.finish()),
        state,
    })
}

/// Handles the query of the callback request. Refused: a missing, unknown, used or expired
/// `state`; a repeated parameter; an `iss` other than the recorded issuer (or none, when the
/// issuer advertised it); an error response (surfaced, cleaned); no code.
pub fn finish_authorization(
    pending: &PendingAuthorizations,
    query: &str,
) -> Result<AuthorizationGrant, OAuthClientError> {
    let mut params: Vec<(String, String)> = Vec::new();
    for (name, value) in form_urlencoded::parse(query.as_bytes()) {
        if params.iter().any(|(n, _)| *n == name) {
            return Err(OAuthClientError::RepeatedParameter(scrub(&name, &[])));
        }
        params.push((name.into_owned(), value.into_owned()));
    }
    let get = |name: &str| {
        params
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    };
    let state = get("state").ok_or(OAuthClientError::MissingState)?;
    let pending = pending.take(state)?;
    let iss = get("iss");
    // RFC 9207 §2.4: compared as plain strings; required when advertised, and checked when
    // present anyway (a mismatch is a mix-up whether advertised or not).
    if (pending.iss_parameter_supported || iss.is_some()) && iss != Some(pending.issuer.as_str()) {
        return Err(OAuthClientError::IssuerMismatch {
            expected: pending.issuer,
            found: iss.map(|i| scrub(i, &[])),
        });
    }
    if let Some(error) = get("error") {
        return Err(OAuthClientError::AuthorizationDenied {
            error: scrub(error, &[]),
            description: get("error_description").map(|d| scrub(d, &[])),
        });
    }
    let code = get("code")
        .filter(|c| !c.is_empty())
        .ok_or(OAuthClientError::MissingCode)?;
    Ok(AuthorizationGrant {
        code: Secret::new(code.to_owned()),
        pending,
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;
    use crate::resource::{AuthorizationServerMetadata, ManualClock};

    const ISSUER: &str = "https://as.example.com";

    fn server(iss_supported: bool) -> AuthorizationServer {
        AuthorizationServer {
            metadata: AuthorizationServerMetadata {
                issuer: ISSUER.into(),
                jwks_uri: None,
                introspection_endpoint: None,
                token_endpoint: Some(format!("{ISSUER}/token")),
                authorization_endpoint: Some(format!("{ISSUER}/authorize?tenant=a")),
                scopes_supported: None,
                document: Default::default(),
            },
            authorization_endpoint: format!("{ISSUER}/authorize?tenant=a").parse().unwrap(),
            token_endpoint: format!("{ISSUER}/token").parse().unwrap(),
            registration_endpoint: None,
            iss_parameter_supported: iss_supported,
            client_id_metadata_document_supported: false,
        }
    }

    fn store() -> (Arc<ManualClock>, PendingAuthorizations) {
        let clock = Arc::new(ManualClock::new());
        (
            clock.clone(),
            PendingAuthorizations::new(Duration::from_secs(600), 100, clock),
        )
    }

    fn start(store: &PendingAuthorizations, iss_supported: bool) -> StartedAuthorization {
        start_authorization(
            store,
            &server(iss_supported),
            "https://gw.example.com/client.json",
            "https://gw.example.com/oauth/callback",
            "https://mcp.example.com/mcp",
            Some("files:read mcp:tools"),
            "alice",
        )
        .unwrap()
    }

    fn query_of(url: &str) -> Vec<(String, String)> {
        let q = url.split_once('?').unwrap().1;
        form_urlencoded::parse(q.as_bytes()).into_owned().collect()
    }

    #[test]
    fn the_request_has_pkce_s256_state_resource_and_the_exact_redirect_uri() {
        let (_, s) = store();
        let started = start(&s, true);
        assert!(
            started
                .url
                .starts_with("https://as.example.com/authorize?tenant=a&")
        );
        let q = query_of(&started.url);
        let get = |n: &str| q.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone());
        assert_eq!(get("response_type").as_deref(), Some("code"));
        assert_eq!(get("code_challenge_method").as_deref(), Some("S256"));
        assert_eq!(get("code_challenge").unwrap().len(), 43);
        assert_eq!(get("state").as_deref(), Some(started.state.as_str()));
        assert_eq!(
            get("resource").as_deref(),
            Some("https://mcp.example.com/mcp")
        );
        assert_eq!(
            get("redirect_uri").as_deref(),
            Some("https://gw.example.com/oauth/callback")
        );
        assert_eq!(get("scope").as_deref(), Some("files:read mcp:tools"));
        // The verifier itself never leaves in the URL.
        let grant =
            finish_authorization(&s, &format!("code=c1&state={}&iss={ISSUER}", started.state))
                .unwrap();
        assert!(!started.url.contains(grant.pending.code_verifier.expose()));
        assert_eq!(grant.code.expose(), "c1");
    }

    #[test]
    fn a_redirect_uri_that_is_not_https_or_loopback_is_refused() {
        let (_, s) = store();
        for bad in [
            "http://gw.example.com/cb",
            "javascript:alert(1)",
            "https://gw/cb#x",
        ] {
            let err = start_authorization(&s, &server(false), "c", bad, "https://m", None, "a")
                .unwrap_err();
            assert!(
                matches!(err, OAuthClientError::InvalidRedirectUri { .. }),
                "{bad}"
            );
        }
        assert!(s.is_empty());
    }

    #[test]
    fn a_replayed_state_is_refused() {
        let (_, s) = store();
        let st = start(&s, false).state;
        finish_authorization(&s, &format!("code=c&state={st}")).unwrap();
        assert!(matches!(
            finish_authorization(&s, &format!("code=c&state={st}")),
            Err(OAuthClientError::UnknownState)
        ));
        assert!(matches!(
            finish_authorization(&s, "code=c"),
            Err(OAuthClientError::MissingState)
        ));
    }

    #[test]
    fn an_expired_state_is_refused() {
        let (clock, s) = store();
        let st = start(&s, false).state;
        clock.advance(Duration::from_secs(601));
        assert!(matches!(
            finish_authorization(&s, &format!("code=c&state={st}")),
            Err(OAuthClientError::ExpiredState)
        ));
    }

    #[test]
    fn an_iss_mismatch_is_refused_and_its_error_fields_are_not_read() {
        let (_, s) = store();
        let st = start(&s, true).state;
        let err = finish_authorization(
            &s,
            &format!("error=access_denied&state={st}&iss=https://evil.example.com"),
        )
        .unwrap_err();
        assert!(
            matches!(err, OAuthClientError::IssuerMismatch { .. }),
            "{err}"
        );
        // Advertised but absent: refused too, and the state is spent either way.
        let st = start(&s, true).state;
        assert!(matches!(
            finish_authorization(&s, &format!("code=c&state={st}")),
            Err(OAuthClientError::IssuerMismatch { found: None, .. })
        ));
        assert!(s.is_empty());
        // Not advertised and absent is fine; present and wrong is not.
        let st = start(&s, false).state;
        assert!(finish_authorization(&s, &format!("code=c&state={st}")).is_ok());
        let st = start(&s, false).state;
        assert!(finish_authorization(&s, &format!("code=c&state={st}&iss=https://x")).is_err());
    }

    #[test]
    fn an_error_response_is_surfaced_cleaned() {
        let (_, s) = store();
        let st = start(&s, true).state;
        let err = finish_authorization(
            &s,
            &format!(
                "error=access_denied&error_description=user%20said%20no%0D%0A&state={st}&iss={ISSUER}"
            ),
        )
        .unwrap_err();
        match err {
            OAuthClientError::AuthorizationDenied { error, description } => {
                assert_eq!(error, "access_denied");
                assert_eq!(description.as_deref(), Some("user said no"));
            }
            other => panic!("{other}"),
        }
    }

    #[test]
    fn repeated_parameters_and_missing_codes_are_refused() {
        let (_, s) = store();
        let st = start(&s, false).state;
        assert!(matches!(
            finish_authorization(&s, &format!("code=a&code=b&state={st}")),
            Err(OAuthClientError::RepeatedParameter(_))
        ));
        let st = start(&s, false).state;
        assert!(matches!(
            finish_authorization(&s, &format!("state={st}")),
            Err(OAuthClientError::MissingCode)
        ));
    }
}
