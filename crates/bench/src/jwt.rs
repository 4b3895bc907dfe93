//! JWT validation, in process: what the gateway's `[auth]` costs each request once the
//! issuer's keys are cached.
//!
//! A `portcullis_auth::resource::TokenValidator` like the gateway's (issuer only: metadata
//! discovered, then the JWKS) trusts the in-process authorization server
//! ([`crate::auth_server`]). One validation per algorithm warms it (the only fetches it may
//! make); then the same token is validated again and again, each call timed, as every request
//! of a client is. Afterwards the server must have seen exactly the warm-up's fetches: a
//! figure taken with a fetch per validation would be a network benchmark.

use std::hint::black_box;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use portcullis_auth::resource::{IssuerConfig, ResourceServerConfig, TokenValidator};
use portcullis_egress::{EgressClient, EgressConfig};

use crate::auth_server::{Alg, AuthServer, Fetches};
use crate::stats::Latency;

/// The resource the tokens are for (the validator compares `aud` with it exactly).
pub const AUDIENCE: &str = "https://mcp.example.com/mcp/demo";

/// Untimed validations before the timed ones, per timed validation.
const WARMUP_SHARE: usize = 10;
/// The runtime gets a turn this often (untimed), so Ctrl-C is heard during a long run.
const YIELD_EVERY: usize = 1024;

/// One algorithm's figures.
#[derive(Debug, Clone)]
pub struct AlgFigures {
    pub alg: &'static str,
    pub token_bytes: usize,
    pub latency: Latency,
}

#[derive(Debug, Clone)]
pub struct JwtValidation {
    /// Timed validations per algorithm.
    pub validations: usize,
    pub rs256: AlgFigures,
    pub es256: AlgFigures,
    /// What the authorization server was asked for during the whole part.
    pub fetches: Fetches,
}

/// `validations` timed validations of an RS256 token, then of an ES256 token.
pub async fn run(validations: usize) -> anyhow::Result<JwtValidation> {
    let server = AuthServer::start().await?;
    let egress =
        EgressClient::new(&EgressConfig::default()).context("cannot build the egress client")?;
    let config = ResourceServerConfig::new(vec![IssuerConfig {
        issuer: server.issuer().to_owned(),
        jwks_uri: None,
    }]);
    let validator =
        TokenValidator::new(config, egress).context("the validator refused its config")?;
    let rs256 = server.mint(Alg::Rs256, AUDIENCE)?;
    let es256 = server.mint(Alg::Es256, AUDIENCE)?;
    for token in [&rs256, &es256] {
        validator
            .validate(token, AUDIENCE)
            .await
            .context("the warm-up validation failed")?;
    }
    let warm = server.fetches();
    let expected = Fetches {
        metadata: 1,
        jwks: 1,
        other: 0,
    };
    if warm != expected {
        bail!("warming the key cache should take one metadata and one JWKS fetch, not {warm:?}");
    }
    refuses_what_it_must(&validator, &rs256).await?;
    let rs = timed(&validator, "RS256", &rs256, validations).await?;
    let es = timed(&validator, "ES256", &es256, validations).await?;
    let fetches = server.fetches();
    if fetches != warm {
        bail!(
            "the authorization server was asked again during the timed validations ({fetches:?} \
             after warm-up {warm:?}): the keys were not served from the cache"
        );
    }
    Ok(JwtValidation {
        validations,
        rs256: rs,
        es256: es,
        fetches,
    })
}

/// The validator is not one that accepts anything: a token for another resource and a token
/// whose signature was altered are refused (both without a fetch: the key is known).
async fn refuses_what_it_must(validator: &TokenValidator, token: &str) -> anyhow::Result<()> {
    if validator
        .validate(token, "https://other.example.com/mcp/demo")
        .await
        .is_ok()
    {
        bail!("the validator accepted a token for another audience");
    }
    if validator.validate(&tamper(token), AUDIENCE).await.is_ok() {
        bail!("the validator accepted a token whose signature was altered");
    }
    Ok(())
}

/// `token` with one character of its signature changed (mid-signature, where every bit
/// counts, unlike the last character's padding bits).
fn tamper(token: &str) -> String {
    let mut bytes = token.as_bytes().to_vec();
    let at = bytes.len().saturating_sub(20);
    if let Some(b) = bytes.get_mut(at) {
        *b = if *b == b'A' { b'B' } else { b'A' };
    }
    String::from_utf8(bytes).unwrap_or_default()
}

/// A tenth of `n` untimed, then `n` timed validations of `token`; every one must pass.
async fn timed(
    validator: &TokenValidator,
    alg: &'static str,
    token: &str,
    n: usize,
) -> anyhow::Result<AlgFigures> {
    for i in 0..n / WARMUP_SHARE {
        let ok = validator.validate(black_box(token), AUDIENCE).await.is_ok();
        if !black_box(ok) {
            bail!("{alg}: warm-up validation {i} failed");
        }
    }
    let mut samples: Vec<Duration> = Vec::with_capacity(n);
    for i in 0..n {
        let start = Instant::now();
        let verdict = validator.validate(black_box(token), AUDIENCE).await;
        let took = start.elapsed();
        if let Err(e) = black_box(verdict) {
            bail!("{alg}: validation {i} of {n} failed: {e}");
        }
        samples.push(took);
        if i % YIELD_EVERY == YIELD_EVERY - 1 {
            tokio::task::yield_now().await;
        }
    }
    Ok(AlgFigures {
        alg,
        token_bytes: token.len(),
        latency: Latency::from_samples(samples),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tampering_changes_the_signature_only() {
        let token = "aaaa.bbbb.cccccccccccccccccccccccccccccccccccccccc";
        let t = tamper(token);
        assert_ne!(t, token);
        assert_eq!(t.len(), token.len());
        assert!(t.starts_with("aaaa.bbbb."));
    }

    #[tokio::test(flavor = "current_thread")]
    async fn every_validation_passes_on_one_fetch_of_each_document() -> anyhow::Result<()> {
        let v = run(50).await?;
        assert_eq!(v.rs256.latency.calls, 50);
        assert_eq!(v.es256.latency.calls, 50);
        assert!(v.rs256.latency.p50_us > 0.0);
        assert_eq!(
            v.fetches,
            Fetches {
                metadata: 1,
                jwks: 1,
                other: 0
            }
        );
        // A realistic access token: some 800 bytes with RS256, less with ES256.
        assert!(
            (700..=1000).contains(&v.rs256.token_bytes),
            "{}",
            v.rs256.token_bytes
        );
        assert!(v.es256.token_bytes < v.rs256.token_bytes);
        Ok(())
    }
}
