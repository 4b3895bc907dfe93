//! The claim checks shared by JWT access tokens (RFC 9068 §4) and introspection answers
//! (RFC 7662 §2.2), and what a verified token tells the gateway.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value};

use super::error::TokenError;

/// A token that passed every check, for one audience.
#[derive(Debug, Clone, PartialEq)]
pub struct VerifiedToken {
    /// `iss`: one of the configured issuers.
    pub issuer: String,
    /// `sub`: with the issuer, the principal the gateway binds sessions to.
    pub subject: String,
    /// `client_id` (RFC 9068 §2.2), else `azp`.
    pub client_id: Option<String>,
    /// From `scope` (space-separated) or, failing that, `scp` (array or string).
    pub scopes: Vec<String>,
    /// Every claim, for policy conditions.
    pub claims: Map<String, Value>,
    /// `exp`. For an introspected token without `exp`: the end of the time its introspection
    /// answer is trusted (cached).
    pub expires_at: SystemTime,
}

/// What the checks need besides the claims.
pub struct ClaimRules<'a> {
    pub audience: &'a str,
    pub now: SystemTime,
    pub leeway: Duration,
    pub required_claims: &'a [String],
    /// JWTs must carry `exp` (RFC 9068); introspection answers may omit it.
    pub exp_required: bool,
    /// JWTs must carry `sub` (RFC 9068). An introspection answer may omit it (RFC 7662
    /// §2.2) for a token that stands for the client itself (client credentials): its
    /// `client_id` is then the subject.
    pub client_may_be_subject: bool,
}

/// Checks the time claims, the audience, `sub` and the required claims, and reads scopes and
/// client id. `issuer` has been matched by the caller (it chose the keys with it).
pub fn check(
    issuer: &str,
    claims: Map<String, Value>,
    rules: &ClaimRules<'_>,
    expiry_when_absent: SystemTime,
) -> Result<VerifiedToken, TokenError> {
    let now = seconds(rules.now);
    let leeway = rules.leeway.as_secs_f64();
    let exp = numeric_date(&claims, "exp")?;
    match exp {
        None if rules.exp_required => return Err(TokenError::MissingClaim("exp".into())),
        Some(exp) if now >= exp + leeway => return Err(TokenError::Expired),
        _ => {}
    }
    if numeric_date(&claims, "nbf")?.is_some_and(|nbf| nbf > now + leeway) {
        return Err(TokenError::NotYetValid);
    }
    if numeric_date(&claims, "iat")?.is_some_and(|iat| iat > now + leeway) {
        return Err(TokenError::NotYetValid);
    }
    check_audience(&claims, rules.audience)?;
    let subject = match claims.get("sub") {
        None | Some(Value::Null) if rules.client_may_be_subject => match claims.get("client_id") {
            Some(Value::String(c)) if !c.is_empty() => c.clone(),
            _ => return Err(TokenError::MissingClaim("sub".into())),
        },
        None | Some(Value::Null) => return Err(TokenError::MissingClaim("sub".into())),
        Some(Value::String(s)) if s.is_empty() => {
            return Err(TokenError::MissingClaim("sub".into()));
        }
        Some(Value::String(s)) => s.clone(),
        Some(_) => return Err(TokenError::Malformed),
    };
    for name in rules.required_claims {
        if matches!(claims.get(name), None | Some(Value::Null)) {
            return Err(TokenError::MissingClaim(name.clone()));
        }
    }
    let scopes = scopes(&claims)?;
    let client_id = match (claims.get("client_id"), claims.get("azp")) {
        (Some(Value::String(c)), _) => Some(c.clone()),
        (Some(_), _) => return Err(TokenError::Malformed),
        (None, Some(Value::String(a))) => Some(a.clone()),
        (None, Some(_)) => return Err(TokenError::Malformed),
        (None, None) => None,
    };
    let expires_at = match exp {
        Some(exp) => Duration::try_from_secs_f64(exp)
            .ok()
            .and_then(|d| UNIX_EPOCH.checked_add(d))
            .ok_or(TokenError::Malformed)?,
        None => expiry_when_absent,
    };
    Ok(VerifiedToken {
        issuer: issuer.to_owned(),
        subject,
        client_id,
        scopes,
        claims,
        expires_at,
    })
}

/// `aud` (a string or an array of strings) must contain `audience` exactly.
fn check_audience(claims: &Map<String, Value>, audience: &str) -> Result<(), TokenError> {
    let matches = match claims.get("aud") {
        None | Some(Value::Null) => return Err(TokenError::MissingClaim("aud".into())),
        Some(Value::String(aud)) => aud == audience,
        Some(Value::Array(auds)) => {
            let mut found = false;
            for aud in auds {
                found |= aud.as_str().ok_or(TokenError::Malformed)? == audience;
            }
            found
        }
        Some(_) => return Err(TokenError::Malformed),
    };
    if matches {
        Ok(())
    } else {
        Err(TokenError::WrongAudience)
    }
}

fn scopes(claims: &Map<String, Value>) -> Result<Vec<String>, TokenError> {
    let split = |s: &str| {
        s.split(' ')
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect()
    };
    match (claims.get("scope"), claims.get("scp")) {
        (Some(Value::String(s)), _) => Ok(split(s)),
        (Some(_), _) => Err(TokenError::Malformed),
        (None, Some(Value::String(s))) => Ok(split(s)),
        (None, Some(Value::Array(items))) => items
            .iter()
            .map(|v| v.as_str().map(str::to_owned).ok_or(TokenError::Malformed))
            .collect(),
        (None, Some(_)) => Err(TokenError::Malformed),
        (None, None) => Ok(Vec::new()),
    }
}

/// A NumericDate (RFC 7519 §2): a non-negative finite number of seconds; absent is `None`,
/// anything else is malformed.
fn numeric_date(claims: &Map<String, Value>, name: &str) -> Result<Option<f64>, TokenError> {
    match claims.get(name) {
        None => Ok(None),
        Some(Value::Number(n)) => match n.as_f64() {
            Some(v) if v.is_finite() && v >= 0.0 => Ok(Some(v)),
            _ => Err(TokenError::Malformed),
        },
        Some(_) => Err(TokenError::Malformed),
    }
}

fn seconds(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const AUD: &str = "https://mcp.example.com/mcp/files";

    fn now() -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_800_000_000)
    }

    fn run(claims: Value, required: &[&str]) -> Result<VerifiedToken, TokenError> {
        let required: Vec<String> = required.iter().map(|s| s.to_string()).collect();
        let rules = ClaimRules {
            audience: AUD,
            now: now(),
            leeway: Duration::from_secs(60),
            required_claims: &required,
            exp_required: true,
            client_may_be_subject: false,
        };
        check(
            "https://idp",
            claims.as_object().unwrap().clone(),
            &rules,
            now(),
        )
    }

    fn base() -> Value {
        json!({"sub": "alice", "aud": AUD, "exp": 1_800_000_300u64, "iat": 1_800_000_000u64})
    }

    fn with(k: &str, v: Value) -> Value {
        let mut c = base();
        c[k] = v;
        c
    }

    fn without(k: &str) -> Value {
        let mut c = base();
        c.as_object_mut().unwrap().remove(k);
        c
    }

    #[test]
    fn a_good_token_yields_its_principal_and_expiry() {
        let t = run(with("client_id", json!("cli")), &[]).unwrap();
        assert_eq!(t.issuer, "https://idp");
        assert_eq!(t.subject, "alice");
        assert_eq!(t.client_id.as_deref(), Some("cli"));
        assert_eq!(
            t.expires_at,
            UNIX_EPOCH + Duration::from_secs(1_800_000_300)
        );
        assert_eq!(
            run(with("azp", json!("az")), &[])
                .unwrap()
                .client_id
                .as_deref(),
            Some("az")
        );
    }

    #[test]
    fn expiry_respects_the_leeway_on_both_sides() {
        assert!(run(with("exp", json!(1_800_000_000u64 - 59)), &[]).is_ok());
        assert_eq!(
            run(with("exp", json!(1_800_000_000u64 - 60)), &[]),
            Err(TokenError::Expired)
        );
        assert_eq!(
            run(without("exp"), &[]),
            Err(TokenError::MissingClaim("exp".into()))
        );
        assert_eq!(
            run(with("exp", json!("soon")), &[]),
            Err(TokenError::Malformed)
        );
        assert_eq!(run(with("exp", json!(-1)), &[]), Err(TokenError::Malformed));
        assert_eq!(
            run(with("exp", json!(1e300)), &[]),
            Err(TokenError::Malformed)
        );
    }

    #[test]
    fn nbf_and_iat_in_the_future_beyond_leeway_are_not_yet_valid() {
        assert!(run(with("nbf", json!(1_800_000_060u64)), &[]).is_ok());
        assert_eq!(
            run(with("nbf", json!(1_800_000_061u64)), &[]),
            Err(TokenError::NotYetValid)
        );
        assert!(run(with("iat", json!(1_800_000_060u64)), &[]).is_ok());
        assert_eq!(
            run(with("iat", json!(1_800_003_600u64)), &[]),
            Err(TokenError::NotYetValid)
        );
    }

    #[test]
    fn the_audience_must_be_contained_exactly() {
        assert!(run(with("aud", json!(["other", AUD])), &[]).is_ok());
        assert_eq!(
            run(with("aud", json!("https://mcp.example.com/mcp")), &[]),
            Err(TokenError::WrongAudience)
        );
        assert_eq!(
            run(with("aud", json!(format!("{AUD}/"))), &[]),
            Err(TokenError::WrongAudience)
        );
        assert_eq!(
            run(with("aud", json!([])), &[]),
            Err(TokenError::WrongAudience)
        );
        assert_eq!(
            run(with("aud", json!([AUD, 5])), &[]),
            Err(TokenError::Malformed)
        );
        assert_eq!(
            run(without("aud"), &[]),
            Err(TokenError::MissingClaim("aud".into()))
        );
    }

    #[test]
    fn an_introspected_client_token_without_sub_is_the_client_and_a_jwt_never_is() {
        let required: Vec<String> = Vec::new();
        let rules = |client_may_be_subject| ClaimRules {
            audience: AUD,
            now: now(),
            leeway: Duration::from_secs(60),
            required_claims: &required,
            exp_required: true,
            client_may_be_subject,
        };
        let no_sub = with("client_id", json!("ide")).as_object().unwrap().clone();
        let mut no_sub = no_sub;
        no_sub.remove("sub");
        let t = check("https://idp", no_sub.clone(), &rules(true), now()).unwrap();
        assert_eq!(
            (t.subject.as_str(), t.client_id.as_deref()),
            ("ide", Some("ide"))
        );
        assert_eq!(
            check("https://idp", no_sub.clone(), &rules(false), now()),
            Err(TokenError::MissingClaim("sub".into()))
        );
        no_sub.remove("client_id");
        assert_eq!(
            check("https://idp", no_sub, &rules(true), now()),
            Err(TokenError::MissingClaim("sub".into()))
        );
    }

    #[test]
    fn subject_and_configured_claims_are_required() {
        assert_eq!(
            run(without("sub"), &[]),
            Err(TokenError::MissingClaim("sub".into()))
        );
        assert_eq!(
            run(with("sub", json!("")), &[]),
            Err(TokenError::MissingClaim("sub".into()))
        );
        assert_eq!(run(with("sub", json!(42)), &[]), Err(TokenError::Malformed));
        assert_eq!(
            run(base(), &["jti"]),
            Err(TokenError::MissingClaim("jti".into()))
        );
        assert!(run(with("jti", json!("x")), &["jti"]).is_ok());
    }

    #[test]
    fn scopes_come_from_scope_or_scp() {
        let s = |c| run(c, &[]).map(|t| t.scopes);
        assert_eq!(s(with("scope", json!("a  b c"))).unwrap(), ["a", "b", "c"]);
        assert_eq!(s(with("scp", json!(["x", "y"]))).unwrap(), ["x", "y"]);
        assert_eq!(s(with("scp", json!("x y"))).unwrap(), ["x", "y"]);
        assert_eq!(s(base()).unwrap(), Vec::<String>::new());
        assert_eq!(s(with("scope", json!(["a"]))), Err(TokenError::Malformed));
        assert_eq!(s(with("scp", json!([1]))), Err(TokenError::Malformed));
    }
}
