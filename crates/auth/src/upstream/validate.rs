//! The checks behind `CredentialSpec::validate`: each says, in the config's terms, what is
//! wrong with one value.

use super::spec::SpecError;

pub(crate) fn validate_optional(
    value: Option<&str>,
    check: impl Fn(&str) -> Result<(), SpecError>,
) -> Result<(), SpecError> {
    value.map_or(Ok(()), check)
}

pub(crate) fn validate_env_name(name: &str) -> Result<(), SpecError> {
    if name.is_empty() || name.contains(['=', '\0']) {
        return Err(SpecError::new(format!(
            "{name:?} is not a valid environment variable name"
        )));
    }
    Ok(())
}

pub(crate) fn validate_path(path: &std::path::Path) -> Result<(), SpecError> {
    if path.as_os_str().is_empty() {
        return Err(SpecError::new("a secret file path is empty"));
    }
    Ok(())
}

/// A client secret is sent to the token endpoint: over TLS, except to this machine (a local
/// test or sidecar authorization server), where there is no network to read it from.
pub(crate) fn validate_token_url(url: &str) -> Result<http::Uri, SpecError> {
    let uri = portcullis_egress::EgressClient::parse_url(url)
        .map_err(|e| SpecError::new(format!("token_url: {e}")))?;
    if uri.authority().is_some_and(|a| a.as_str().contains('@')) {
        // user:password@ would be an inline secret, and would show in every error message.
        return Err(SpecError::new(
            "token_url must not carry credentials (user:password@); use secret_env or secret_file",
        ));
    }
    if uri.scheme_str() == Some("http") && !crate::is_loopback_host(uri.host().unwrap_or_default())
    {
        return Err(SpecError::new(format!(
            "token_url {url:?} must use https (plain http is allowed only to loopback)"
        )));
    }
    Ok(uri)
}

/// RFC 8707 §2: an absolute URI without a fragment.
pub(crate) fn validate_resource(resource: &str) -> Result<(), SpecError> {
    let bad = |why: &str| SpecError::new(format!("resource {resource:?} {why}"));
    if resource.contains('#') {
        return Err(bad("must not have a fragment"));
    }
    let uri: http::Uri = resource
        .parse()
        .map_err(|_| bad("is not a valid absolute URI"))?;
    if uri.scheme().is_none() || uri.host().is_none_or(str::is_empty) {
        return Err(bad("is not an absolute URI (scheme and host)"));
    }
    Ok(())
}

/// RFC 6749 §3.3: space-separated tokens of printable ASCII, no `"` or `\`.
pub(crate) fn validate_scope(scope: &str) -> Result<(), SpecError> {
    let token_ok = |t: &str| {
        !t.is_empty()
            && t.bytes()
                .all(|b| matches!(b, 0x21 | 0x23..=0x5B | 0x5D..=0x7E))
    };
    if !scope.split(' ').all(token_ok) {
        return Err(SpecError::new(format!(
            "scope {scope:?} is not a space-separated list of scope tokens"
        )));
    }
    Ok(())
}

pub(crate) fn validate_token_type(field: &str, value: &str) -> Result<(), SpecError> {
    if value.is_empty() || value.bytes().any(|b| !(0x21..=0x7E).contains(&b)) {
        return Err(SpecError::new(format!(
            "{field} {value:?} is not a token type URI"
        )));
    }
    Ok(())
}

pub(crate) fn validate_form_text(field: &str, value: &str) -> Result<(), SpecError> {
    if value.is_empty() || value.chars().any(char::is_control) {
        return Err(SpecError::new(format!(
            "{field} {value:?} is empty or has control characters"
        )));
    }
    Ok(())
}
