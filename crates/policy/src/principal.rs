//! Who is asking. A placeholder for the first cut: rules do not match on principals yet,
//! but every decision already takes one, so adding principal matchers later changes no
//! call site.

use std::fmt;

/// An authenticated (or deliberately unauthenticated) caller.
///
/// The identity is the pair `<issuer, subject>`: the subject alone is only unique within
/// its issuer, so two identity providers can never be confused for each other.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Principal {
    /// The subject (`sub`), unique within the issuer.
    pub subject: String,
    /// Who vouches for the subject: an OAuth issuer URL, [`Principal::LOCAL_ISSUER`] for a
    /// local user, or `None` for no one (anonymous).
    pub issuer: Option<String>,
    /// The OAuth client the caller used, when known.
    pub client_id: Option<String>,
}

impl Principal {
    /// The issuer of local users: the gateway itself, trusting the operating system (stdio
    /// mode, loopback without auth). Never a valid OAuth issuer, which is an https URL.
    pub const LOCAL_ISSUER: &'static str = "local";

    /// A local user (stdio mode, or loopback without auth).
    pub fn local(user: impl Into<String>) -> Self {
        Principal {
            subject: user.into(),
            issuer: Some(Self::LOCAL_ISSUER.to_owned()),
            client_id: None,
        }
    }

    /// Nobody in particular: no credentials were presented and none were required.
    pub fn anonymous() -> Self {
        Principal {
            subject: "anonymous".to_owned(),
            issuer: None,
            client_id: None,
        }
    }

    /// Is this the anonymous principal (no issuer)?
    pub fn is_anonymous(&self) -> bool {
        self.issuer.is_none()
    }
}

/// `local:alice`, `anonymous`, or `https://idp.example.com|alice` (`iss|sub`).
impl fmt::Display for Principal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.issuer.as_deref() {
            None => f.write_str(&self.subject),
            Some(Self::LOCAL_ISSUER) => write!(f, "local:{}", self.subject),
            Some(issuer) => write!(f, "{issuer}|{}", self.subject),
        }
    }
}
