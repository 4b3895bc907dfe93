//! Who is asking, and the `principals = [...]` patterns that narrow a rule to some callers.

use std::fmt;

use serde_json::{Map, Value};

use crate::glob::{Glob, GlobError};

/// An authenticated (or deliberately unauthenticated) caller.
///
/// The identity is the pair `<issuer, subject>`: the subject alone is only unique within
/// its issuer, so two identity providers can never be confused for each other. What the
/// caller's token carries besides (scopes, groups, other claims) is filled in by the
/// authenticator; the policy only reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The subject (`sub`), unique within the issuer; the user name for a local user.
    pub subject: String,
    /// Who vouches for the subject: an OAuth issuer URL, [`Principal::LOCAL_ISSUER`] for a
    /// local user, or `None` for no one (anonymous).
    pub issuer: Option<String>,
    /// The OAuth client the caller used, when known.
    pub client_id: Option<String>,
    /// The scopes the caller's token carries (empty for local and anonymous callers).
    pub scopes: Vec<String>,
    /// The groups the authenticator placed the caller in (e.g. from a `groups` claim).
    pub groups: Vec<String>,
    /// The token's other claims, as the authenticator passes them on (untouched JSON).
    pub claims: Map<String, Value>,
}

impl Principal {
    /// The issuer of local users: the gateway itself, trusting the operating system (stdio
    /// mode, loopback without auth). Never a valid OAuth issuer, which is an https URL.
    pub const LOCAL_ISSUER: &'static str = "local";

    /// A local user (stdio mode, or loopback without auth).
    pub fn local(user: impl Into<String>) -> Self {
        Principal {
            issuer: Some(Self::LOCAL_ISSUER.to_owned()),
            ..Self::bare(user.into())
        }
    }

    /// Nobody in particular: no credentials were presented and none were required.
    pub fn anonymous() -> Self {
        Self::bare("anonymous".to_owned())
    }

    /// A caller authenticated by an OAuth token from `issuer`.
    pub fn oauth(issuer: impl Into<String>, subject: impl Into<String>) -> Self {
        Principal {
            issuer: Some(issuer.into()),
            ..Self::bare(subject.into())
        }
    }

    fn bare(subject: String) -> Self {
        Principal {
            subject,
            issuer: None,
            client_id: None,
            scopes: Vec::new(),
            groups: Vec::new(),
            claims: Map::new(),
        }
    }

    /// The same principal using OAuth client `client_id`.
    pub fn with_client(mut self, client_id: impl Into<String>) -> Self {
        self.client_id = Some(client_id.into());
        self
    }

    /// The same principal with these token scopes.
    pub fn with_scopes<S: Into<String>>(mut self, scopes: impl IntoIterator<Item = S>) -> Self {
        self.scopes = scopes.into_iter().map(Into::into).collect();
        self
    }

    /// The same principal in these groups.
    pub fn with_groups<S: Into<String>>(mut self, groups: impl IntoIterator<Item = S>) -> Self {
        self.groups = groups.into_iter().map(Into::into).collect();
        self
    }

    /// The same principal with these token claims.
    pub fn with_claims(mut self, claims: Map<String, Value>) -> Self {
        self.claims = claims;
        self
    }

    /// A principal written as on `portcullis explain`'s command line: `sub:<subject>` (an
    /// OAuth caller of `issuer`, or of the placeholder issuer `explain` when none is
    /// known), `local:<user>`, or `anonymous`.
    pub fn from_spec(spec: &str, issuer: Option<&str>) -> Result<Principal, String> {
        let nonempty = |v: &str| {
            if v.is_empty() {
                Err(format!("empty name in principal \"{spec}\""))
            } else {
                Ok(v.to_owned())
            }
        };
        if spec == "anonymous" {
            Ok(Principal::anonymous())
        } else if let Some(user) = spec.strip_prefix("local:") {
            Ok(Principal::local(nonempty(user)?))
        } else if let Some(sub) = spec.strip_prefix("sub:") {
            Ok(Principal::oauth(
                issuer.unwrap_or("explain"),
                nonempty(sub)?,
            ))
        } else {
            Err(format!(
                "unknown principal \"{spec}\": write sub:<subject>, local:<user> or anonymous"
            ))
        }
    }

    /// Is this the anonymous principal (no issuer)?
    pub fn is_anonymous(&self) -> bool {
        self.issuer.is_none()
    }

    /// Is this a local user (stdio mode, loopback without auth)?
    pub fn is_local(&self) -> bool {
        self.issuer.as_deref() == Some(Self::LOCAL_ISSUER)
    }

    /// Is this a caller authenticated by a token (neither local nor anonymous)?
    pub fn is_oauth(&self) -> bool {
        !self.is_anonymous() && !self.is_local()
    }

    /// Is `other` the same caller: same issuer, subject and OAuth client? (Scopes, groups
    /// and claims may differ between two tokens of the same caller.) A session belongs to
    /// one identity; a request on it by anyone else is refused as if the session did not
    /// exist.
    pub fn same_identity(&self, other: &Principal) -> bool {
        self.issuer == other.issuer
            && self.subject == other.subject
            && self.client_id == other.client_id
    }

    /// The scopes of `required` this principal's token does not carry, in their order.
    pub fn missing_scopes(&self, required: &[String]) -> Vec<String> {
        required
            .iter()
            .filter(|s| !self.scopes.contains(s))
            .cloned()
            .collect()
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

/// One entry of a rule's `principals = [...]`: which callers the rule is about.
///
/// | written | matches |
/// |---|---|
/// | `sub:<glob>` | a token-authenticated caller whose subject matches (any issuer) |
/// | `iss:<glob>` | a token-authenticated caller whose issuer matches |
/// | `client:<glob>` | a caller whose OAuth client id matches |
/// | `group:<glob>` | a caller in some group that matches |
/// | `local:<glob>` | a local user (stdio mode) whose name matches |
/// | `anonymous` | the anonymous caller |
///
/// The value is a [`Glob`] (`sub:*@example.com`); write `sub:alice` for exactly `alice`.
/// `sub:` and `iss:` never match a local user or the anonymous caller, and `local:` never
/// matches a token's subject, so a remote `root` is never mistaken for the local `root`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PrincipalPattern {
    /// `sub:<glob>`.
    Subject(Glob),
    /// `iss:<glob>`.
    Issuer(Glob),
    /// `client:<glob>`.
    Client(Glob),
    /// `group:<glob>`.
    Group(Glob),
    /// `local:<glob>`.
    Local(Glob),
    /// `anonymous`.
    Anonymous,
}

/// Why a principal pattern was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PrincipalPatternError {
    /// No known prefix.
    #[error(
        "unknown principal pattern \"{0}\": write sub:<subject>, iss:<issuer>, client:<client id>, group:<group>, local:<user> or anonymous"
    )]
    UnknownForm(String),
    /// A prefix with nothing after it.
    #[error("principal pattern \"{0}\" names nothing after the `:` (use `*` for any)")]
    Empty(String),
    /// The value is not a valid glob.
    #[error("bad glob in principal pattern \"{pattern}\": {error}")]
    Glob {
        /// The pattern as written.
        pattern: String,
        /// What is wrong with its glob.
        error: GlobError,
    },
}

impl PrincipalPattern {
    /// The prefixes, as written.
    pub const FORMS: [&'static str; 6] =
        ["sub:", "iss:", "client:", "group:", "local:", "anonymous"];

    /// Parses one `principals` entry.
    pub fn parse(text: &str) -> Result<PrincipalPattern, PrincipalPatternError> {
        if text == "anonymous" {
            return Ok(PrincipalPattern::Anonymous);
        }
        let (prefix, value) = text
            .split_once(':')
            .ok_or_else(|| PrincipalPatternError::UnknownForm(text.to_owned()))?;
        let make: fn(Glob) -> PrincipalPattern = match prefix {
            "sub" => PrincipalPattern::Subject,
            "iss" => PrincipalPattern::Issuer,
            "client" => PrincipalPattern::Client,
            "group" => PrincipalPattern::Group,
            "local" => PrincipalPattern::Local,
            _ => return Err(PrincipalPatternError::UnknownForm(text.to_owned())),
        };
        if value.is_empty() {
            return Err(PrincipalPatternError::Empty(text.to_owned()));
        }
        Glob::new(value)
            .map(make)
            .map_err(|error| PrincipalPatternError::Glob {
                pattern: text.to_owned(),
                error,
            })
    }

    /// Does `p` match this pattern?
    pub fn matches(&self, p: &Principal) -> bool {
        match self {
            PrincipalPattern::Subject(g) => p.is_oauth() && g.matches(&p.subject),
            PrincipalPattern::Issuer(g) => {
                p.is_oauth() && p.issuer.as_deref().is_some_and(|i| g.matches(i))
            }
            PrincipalPattern::Client(g) => p.client_id.as_deref().is_some_and(|c| g.matches(c)),
            PrincipalPattern::Group(g) => p.groups.iter().any(|group| g.matches(group)),
            PrincipalPattern::Local(g) => p.is_local() && g.matches(&p.subject),
            PrincipalPattern::Anonymous => p.is_anonymous(),
        }
    }
}

/// The pattern as it is written in the config.
impl fmt::Display for PrincipalPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PrincipalPattern::Subject(g) => write!(f, "sub:{g}"),
            PrincipalPattern::Issuer(g) => write!(f, "iss:{g}"),
            PrincipalPattern::Client(g) => write!(f, "client:{g}"),
            PrincipalPattern::Group(g) => write!(f, "group:{g}"),
            PrincipalPattern::Local(g) => write!(f, "local:{g}"),
            PrincipalPattern::Anonymous => f.write_str("anonymous"),
        }
    }
}

/// Does `p` match any of `patterns`?
pub(crate) fn any_matches(patterns: &[PrincipalPattern], p: &Principal) -> bool {
    patterns.iter().any(|pattern| pattern.matches(p))
}
