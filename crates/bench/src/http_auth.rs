//! HTTP with `[auth]` on, beside auth off, in one run: the fixture directly, the plain
//! gateway, and the same gateway with an `[auth]` section whose issuer is the in-process
//! authorization server ([`crate::auth_server`]), measured in the same alternating rounds.
//!
//! The auth-on gateway discovers the issuer's metadata and keys itself, as it would in
//! production; its client sends `Authorization: Bearer <token>` with every request, a token
//! minted for the endpoint the gateway printed (`http://127.0.0.1:<port>/mcp/demo`, the
//! audience it derives from the `Host` the client sends). Before anything is measured it must
//! refuse a request without a token and one with a token for another resource (401 both), so
//! the comparison is never against a gateway that ignores its `[auth]`.

use anyhow::{Context, bail};

use crate::auth_server::{Alg, AuthServer, Fetches};
use crate::full;
use crate::http_client::{HttpClient, Refusal};
use crate::scenarios::{self, Env, HttpGateway, MintToken, Settings, Side};

/// How the auth-on gateway refused requests without a good token, and the token its client
/// sent.
#[derive(Debug, Clone)]
pub struct AuthChecks {
    /// `initialize` with no `Authorization` header.
    pub unauthenticated: Refusal,
    /// `initialize` with a valid token for another resource of the same gateway.
    pub other_audience: Refusal,
    /// Bytes of the access token sent with every measured call.
    pub token_bytes: usize,
}

/// Direct, auth off and auth on.
#[derive(Debug, Clone)]
pub struct HttpAuth {
    pub direct: Side,
    pub auth_off: Side,
    pub auth_on: Side,
    pub checks: AuthChecks,
    /// What the authorization server was asked for during the whole run.
    pub fetches: Fetches,
    /// `tools/call` requests the auth-on gateway validated a token for (warm-up included).
    pub calls: usize,
}

pub async fn run(env: &Env, s: &Settings) -> anyhow::Result<HttpAuth> {
    let server = AuthServer::start().await?;
    let state = scenarios::state_line(&env.dir, "http-auth-on");
    let issuer = full::toml_string(server.issuer());
    let config = |upstream: &str| auth_on_config(upstream, &state, &issuer);
    let mint = |audience: &str| server.mint(Alg::Rs256, audience);
    let gateways = [
        HttpGateway::plain("http-auth-off"),
        HttpGateway {
            tag: "http-auth-on",
            config: Some(&config),
            bearer: Some(&mint),
        },
    ];
    let sides = scenarios::http_sides(env, s, &gateways).await?;
    let [direct, auth_off, auth_on]: [Side; 3] = sides
        .try_into()
        .map_err(|_| anyhow::anyhow!("three targets measured, not three results"))?;
    let checks = auth_on
        .auth
        .clone()
        .context("the auth-on gateway's refusals were not checked")?;
    let fetches = server.fetches();
    if fetches.jwks == 0 {
        bail!(
            "the auth-on gateway never fetched its issuer's keys: it cannot have checked a token"
        );
    }
    Ok(HttpAuth {
        calls: full::calls_made(&auth_on, s),
        direct,
        auth_off,
        auth_on,
        checks,
        fetches,
    })
}

/// The plain gateway's config with `[auth]`: tokens from `issuer` (a TOML string), keys
/// discovered from its metadata, audience each route's URL (the default).
fn auth_on_config(upstream: &str, state: &str, issuer: &str) -> String {
    format!(
        "{}\n[auth]\nissuer = {issuer}\n",
        scenarios::http_config(upstream, 1000, state)
    )
}

/// Checks that the gateway at `url` refuses a request without a token and one with a token
/// for another of its resources (both 401, with a Bearer challenge), then returns `client`
/// sending a token minted for `url`.
pub async fn authorize(
    client: HttpClient,
    url: &str,
    mint: MintToken<'_>,
) -> anyhow::Result<(HttpClient, AuthChecks)> {
    let unauthenticated = client.try_initialize().await?;
    let challenge = unauthenticated.challenge.as_deref().unwrap_or_default();
    if unauthenticated.status != 401
        || !challenge.starts_with("Bearer")
        || !challenge.contains("resource_metadata=")
    {
        bail!(
            "a request without a token got HTTP {} ({challenge:?}), not 401 with a Bearer challenge",
            unauthenticated.status
        );
    }
    let elsewhere = client
        .clone()
        .with_bearer(&mint(&other_resource(url))?)?
        .try_initialize()
        .await?;
    let challenge = elsewhere.challenge.as_deref().unwrap_or_default();
    if elsewhere.status != 401 || !challenge.contains("invalid_token") {
        bail!(
            "a token for another resource got HTTP {} ({challenge:?}), not 401 invalid_token",
            elsewhere.status
        );
    }
    let token = mint(url)?;
    let checks = AuthChecks {
        unauthenticated,
        other_audience: elsewhere,
        token_bytes: token.len(),
    };
    Ok((client.with_bearer(&token)?, checks))
}

/// Another route of the same gateway: `…/mcp/demo` → `…/mcp/not-demo`.
fn other_resource(url: &str) -> String {
    match url.rsplit_once('/') {
        Some((base, route)) => format!("{base}/not-{route}"),
        None => format!("{url}/elsewhere"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_other_resource_is_another_route_of_the_same_origin() {
        assert_eq!(
            other_resource("http://127.0.0.1:4000/mcp/demo"),
            "http://127.0.0.1:4000/mcp/not-demo"
        );
    }

    #[test]
    fn the_auth_on_config_is_the_plain_one_with_an_issuer() -> anyhow::Result<()> {
        use portcullis_gateway::config::{Config, ConfigSource};
        let dir = tempfile::tempdir()?;
        let state = scenarios::state_line(dir.path(), "x");
        let text = auth_on_config(
            "http://127.0.0.1:1/mcp",
            &state,
            &full::toml_string("http://127.0.0.1:2"),
        );
        let cfg = Config::parse(&text, ConfigSource::File(dir.path().join("auth.toml")))
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let auth = cfg.auth.context("no [auth]")?;
        assert_eq!(auth.issuers, ["http://127.0.0.1:2"]);
        assert_eq!(auth.audience, None, "the audience is each route's URL");
        assert_eq!(auth.jwks_uri, None, "the keys are discovered");
        Ok(())
    }
}
