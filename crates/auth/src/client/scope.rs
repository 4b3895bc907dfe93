//! Which scopes to ask for (MCP authorization §6, §10.1).
//!
//! First the challenge's `scope` (authoritative for the request that got it), else all of
//! the metadata's `scopes_supported`, else no `scope` parameter at all. A later 403
//! `insufficient_scope` asks again for the union of what was granted and what is now
//! needed, a bounded number of times: a server that keeps asking must not loop the user
//! through consent forever.

use super::challenge::BearerChallenge;
use super::discovery::ResourceMetadata;
use super::error::OAuthClientError;

/// Step-up attempts allowed per resource and operation, unless configured.
pub const DEFAULT_STEP_UP_LIMIT: u32 = 2;

/// The scope of the first authorization request, space-separated; `None`: omit `scope`.
pub fn initial_scope(
    challenge: Option<&BearerChallenge>,
    resource: &ResourceMetadata,
) -> Option<String> {
    if let Some(scope) = challenge
        .and_then(|c| c.scope.as_deref())
        .map(normalize)
        .filter(|s| !s.is_empty())
    {
        return Some(scope);
    }
    resource
        .scopes_supported
        .as_ref()
        .map(|s| normalize(&s.join(" ")))
        .filter(|s| !s.is_empty())
}

/// Scopes deduplicated, in first-seen order.
fn words(scope: &str) -> Vec<&str> {
    let mut out: Vec<&str> = Vec::new();
    for w in scope.split_ascii_whitespace() {
        if !out.contains(&w) {
            out.push(w);
        }
    }
    out
}

fn normalize(scope: &str) -> String {
    words(scope).join(" ")
}

/// The step-up state of one resource and operation: the scopes asked for so far and how
/// many times more were asked for.
#[derive(Debug, Clone)]
pub struct StepUp {
    scope: Vec<String>,
    attempts: u32,
    limit: u32,
}

impl StepUp {
    /// Starts from the scope of the authorization that got the current token.
    pub fn new(current: Option<&str>, limit: u32) -> Self {
        StepUp {
            scope: current
                .map(|s| words(s).into_iter().map(str::to_owned).collect())
                .unwrap_or_default(),
            attempts: 0,
            limit,
        }
    }

    /// The scopes asked for so far.
    pub fn scope(&self) -> String {
        self.scope.join(" ")
    }

    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    /// On a 403 `insufficient_scope`: the scope to authorize again with (the union of the
    /// current and the challenged scopes). Refused past the limit, and when the challenge
    /// asks for nothing new (re-authorizing would change nothing: a loop).
    pub fn on_insufficient_scope(
        &mut self,
        challenge: &BearerChallenge,
    ) -> Result<String, OAuthClientError> {
        let needed = challenge
            .scope
            .as_deref()
            .filter(|_| challenge.is_insufficient_scope())
            .ok_or(OAuthClientError::NotAScopeChallenge)?;
        if self.attempts >= self.limit {
            return Err(OAuthClientError::StepUpLimit {
                attempts: self.attempts,
            });
        }
        let new: Vec<String> = words(needed)
            .into_iter()
            .filter(|w| !self.scope.iter().any(|s| s == w))
            .map(str::to_owned)
            .collect();
        if new.is_empty() {
            return Err(OAuthClientError::StepUpLoop {
                scope: normalize(needed),
            });
        }
        self.attempts += 1;
        self.scope.extend(new);
        Ok(self.scope())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prm(scopes: Option<&[&str]>) -> ResourceMetadata {
        ResourceMetadata {
            resource: "https://mcp.example.com/mcp".into(),
            authorization_servers: vec!["https://as".into()],
            scopes_supported: scopes.map(|s| s.iter().map(|x| (*x).to_owned()).collect()),
            url: String::new(),
        }
    }

    fn challenge(error: Option<&str>, scope: Option<&str>) -> BearerChallenge {
        BearerChallenge {
            error: error.map(str::to_owned),
            scope: scope.map(str::to_owned),
            ..Default::default()
        }
    }

    #[test]
    fn the_challenge_scope_wins_then_scopes_supported_then_none() {
        let c = challenge(None, Some("files:read  files:read mcp:tools"));
        assert_eq!(
            initial_scope(Some(&c), &prm(Some(&["other"]))).as_deref(),
            Some("files:read mcp:tools")
        );
        assert_eq!(
            initial_scope(Some(&challenge(None, None)), &prm(Some(&["a", "b"]))).as_deref(),
            Some("a b")
        );
        assert_eq!(
            initial_scope(Some(&challenge(None, Some(" "))), &prm(Some(&["a"]))).as_deref(),
            Some("a")
        );
        assert_eq!(initial_scope(None, &prm(None)), None);
        assert_eq!(initial_scope(None, &prm(Some(&[]))), None);
    }

    #[test]
    fn step_up_asks_for_the_union_of_granted_and_challenged_scopes() {
        let mut s = StepUp::new(Some("files:read mcp:tools"), 2);
        let c = challenge(Some("insufficient_scope"), Some("files:read files:write"));
        assert_eq!(
            s.on_insufficient_scope(&c).unwrap(),
            "files:read mcp:tools files:write"
        );
        assert_eq!(s.attempts(), 1);
    }

    #[test]
    fn step_up_stops_at_its_limit_and_on_a_repeated_challenge() {
        let mut s = StepUp::new(None, 2);
        for (i, scope) in ["a", "b"].iter().enumerate() {
            s.on_insufficient_scope(&challenge(Some("insufficient_scope"), Some(scope)))
                .unwrap();
            assert_eq!(s.attempts(), i as u32 + 1);
        }
        let err = s
            .on_insufficient_scope(&challenge(Some("insufficient_scope"), Some("c")))
            .unwrap_err();
        assert!(
            matches!(err, OAuthClientError::StepUpLimit { attempts: 2 }),
            "{err}"
        );

        let mut s = StepUp::new(Some("a b"), 5);
        let err = s
            .on_insufficient_scope(&challenge(Some("insufficient_scope"), Some("b a")))
            .unwrap_err();
        assert!(matches!(err, OAuthClientError::StepUpLoop { .. }), "{err}");
    }

    #[test]
    fn only_an_insufficient_scope_challenge_with_a_scope_steps_up() {
        let mut s = StepUp::new(None, 2);
        for c in [
            challenge(Some("invalid_token"), Some("a")),
            challenge(Some("insufficient_scope"), None),
        ] {
            assert!(matches!(
                s.on_insufficient_scope(&c),
                Err(OAuthClientError::NotAScopeChallenge)
            ));
        }
        assert_eq!(s.attempts(), 0);
    }
}
