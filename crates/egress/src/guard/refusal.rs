//! A refused outbound request, as the audit records it: the URL, the address, the rule.

use std::fmt;
use std::net::{IpAddr, SocketAddr};

use http::Uri;

use crate::address::BlockReason;

/// The longest URL kept in a refusal (an attacker chooses the URL; the audit stays bounded).
const MAX_URL_CHARS: usize = 512;

/// An outbound request the guard refused. `url` is redacted for the audit: no userinfo, no
/// query, no fragment (a URL may carry a token in either), at most 512 characters.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct Refusal {
    pub url: String,
    /// The address that decided it: an IP literal's, or the blocked one a name resolved to.
    pub address: Option<IpAddr>,
    pub rule: Rule,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "outbound request to {} refused: {}", self.url, self.rule)?;
        if let Some(address) = self.address {
            write!(f, " (address {address})")?;
        }
        Ok(())
    }
}

/// A rule's verdict before it is tied to a request: the rule, and the address that decided it
/// (an IP literal, or the blocked address a name resolved to). The guard turns it into a
/// [`Refusal`] for a URL; the sandbox's proxy reports it for a `host:port`. One type, so both
/// refuse with the same [`Rule`] and the same codes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct Denial {
    pub rule: Rule,
    pub address: Option<IpAddr>,
}

impl Denial {
    pub(crate) fn new(rule: Rule) -> Denial {
        Denial {
            rule,
            address: None,
        }
    }

    pub(crate) fn at(rule: Rule, address: IpAddr) -> Denial {
        Denial {
            rule,
            address: Some(address),
        }
    }
}

impl fmt::Display for Denial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.rule)?;
        if let Some(address) = self.address {
            write!(f, " (address {address})")?;
        }
        Ok(())
    }
}

impl Refusal {
    pub(crate) fn new(uri: &Uri, rule: Rule) -> Refusal {
        Refusal {
            url: redact_uri(uri),
            address: None,
            rule,
        }
    }

    /// `denial`, for the request to `uri`.
    pub(crate) fn denied(uri: &Uri, denial: Denial) -> Refusal {
        Refusal {
            url: redact_uri(uri),
            address: denial.address,
            rule: denial.rule,
        }
    }

    pub(crate) fn at(mut self, address: IpAddr) -> Refusal {
        self.address = Some(address);
        self
    }

    /// The same refusal, naming the request's URL (the connector sees only its origin).
    pub(crate) fn for_request(mut self, uri: &Uri) -> Refusal {
        self.url = redact_uri(uri);
        self
    }

    /// For text that is not even a URL.
    pub(crate) fn for_text(text: &str, rule: Rule) -> Refusal {
        Refusal {
            url: redact_text(text),
            address: None,
            rule,
        }
    }
}

/// The rule that refused a request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rule {
    #[error("not a valid absolute URL: {0}")]
    InvalidUrl(String),
    #[error("the scheme {0:?} is not allowed (https only)")]
    Scheme(String),
    #[error("plain http is allowed only to the hosts in http_hosts")]
    PlainHttp,
    #[error("credentials in the URL (user@host) are not allowed")]
    Userinfo,
    #[error("the host is not a host name or an IP address")]
    BadHost,
    #[error("port 0 cannot be reached")]
    PortZero,
    #[error("{0} is a cloud metadata service's name")]
    MetadataHost(String),
    #[error("the address is {0}, which egress.allow does not open")]
    BlockedAddress(BlockReason),
    #[error("the name could not be resolved: {0}")]
    ResolveFailed(String),
    #[error("the name resolves to no address")]
    NoAddresses,
    #[error("connected to {connected}, which is not the checked address {checked}")]
    PeerMismatch {
        checked: SocketAddr,
        connected: SocketAddr,
    },
    #[error("a redirect without a usable Location: {0}")]
    BadRedirect(String),
    #[error("more than {0} redirects")]
    TooManyRedirects(usize),
}

impl Rule {
    /// A stable name for the audit record and metrics.
    pub fn code(&self) -> &'static str {
        match self {
            Rule::InvalidUrl(_) => "invalid_url",
            Rule::Scheme(_) => "scheme",
            Rule::PlainHttp => "plain_http",
            Rule::Userinfo => "userinfo",
            Rule::BadHost => "bad_host",
            Rule::PortZero => "port_zero",
            Rule::MetadataHost(_) => "metadata_host",
            Rule::BlockedAddress(_) => "blocked_address",
            Rule::ResolveFailed(_) => "resolve_failed",
            Rule::NoAddresses => "no_addresses",
            Rule::PeerMismatch { .. } => "peer_mismatch",
            Rule::BadRedirect(_) => "bad_redirect",
            Rule::TooManyRedirects(_) => "too_many_redirects",
        }
    }
}

/// `scheme://host[:port]/path`, without userinfo and query.
pub(crate) fn redact_uri(uri: &Uri) -> String {
    let mut out = String::new();
    if let Some(scheme) = uri.scheme_str() {
        out.push_str(scheme);
        out.push_str("://");
    }
    if let Some(authority) = uri.authority() {
        let text = authority.as_str();
        out.push_str(text.rsplit_once('@').map_or(text, |(_, host)| host));
    }
    out.push_str(uri.path());
    bounded(out)
}

/// The same redaction for text that did not parse as a URL.
pub(crate) fn redact_text(text: &str) -> String {
    let text = text.split(['?', '#']).next().unwrap_or_default();
    let (scheme, rest) = text.split_once("://").unwrap_or(("", text));
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let host = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    let out = if scheme.is_empty() {
        format!("{host}{path}")
    } else {
        format!("{scheme}://{host}{path}")
    };
    bounded(out)
}

fn bounded(mut text: String) -> String {
    if let Some((cut, _)) = text.char_indices().nth(MAX_URL_CHARS) {
        text.truncate(cut);
        text.push('…');
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_never_carry_userinfo_or_query_secrets() {
        let uri: Uri = "https://alice:hunter2@idp.example/token?code=s3cret"
            .parse()
            .expect("uri");
        let refusal = Refusal::new(&uri, Rule::Userinfo);
        assert_eq!(refusal.url, "https://idp.example/token");
        let text = refusal.to_string();
        assert!(
            !text.contains("hunter2") && !text.contains("s3cret"),
            "{text}"
        );
        let raw = Refusal::for_text("gopher://bob:pw@host/x?token=abc", Rule::BadHost);
        assert_eq!(raw.url, "gopher://host/x");
        let long = format!("https://example.com/{}", "a".repeat(5000));
        assert!(Refusal::for_text(&long, Rule::BadHost).url.chars().count() <= 513);
    }
}
