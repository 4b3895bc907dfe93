//! `portcullis approvals list|approve|deny`: the calls waiting for a person's decision in a
//! running gateway, through its admin API (`/approvals/api/…`, see
//! `consent::approvals::api`).
//!
//! The gateway is found where the config says browsers reach it — `gateway.public_url`, else
//! `gateway.listen` (a wildcard address as loopback) — or at `--url`; the admin token is read
//! where `approvals.admin_token` says, as the gateway reads it. Nothing is stored here: the
//! queue lives in the gateway's memory, so a gateway that is not running has nothing waiting.
//!
//! A request id can be shortened to any unique prefix of at least [`MIN_PREFIX`] characters
//! (`list` shows the first 12). Everything printed that a caller wrote (names, arguments)
//! goes through `consent::render`: invisible characters as code points, long values cut
//! with a marker, so a crafted argument cannot rewrite the operator's terminal.
//!
//! Exit codes: 0 done, 1 the gateway is not reachable, refused the token, or has no such
//! call waiting, 2 a usage or config error.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Subcommand, ValueEnum};
use portcullis_egress::{
    EgressClient, EgressConfig, EgressError, EgressRequest, HeaderValue, Method, StatusCode,
};
use portcullis_gateway::config::Config;
use portcullis_gateway::consent::approvals::admin::read_admin_token;
use portcullis_gateway::consent::approvals::api::{Decided, DecisionBody, PendingList};
use portcullis_gateway::consent::render;

use super::text::emit;
use super::{load_or_exit, runtime, usage_error};

/// Shortest id prefix accepted for `approve` and `deny`.
const MIN_PREFIX: usize = 6;
/// Longest a whole command may take against the gateway.
const TIMEOUT: Duration = Duration::from_secs(15);
/// Largest answer read from the gateway (a list of waiting calls with their arguments).
const MAX_ANSWER_BYTES: usize = 16 << 20;
/// Longest argument text shown per call in `list`.
const MAX_SHOWN_ARGUMENTS: usize = 300;

#[derive(Subcommand, Debug)]
pub enum ApprovalsCommand {
    /// List the calls waiting for approval in the running gateway: id, server, tool, caller,
    /// time left, the rule that holds it, and its arguments (shown safely).
    List(ListArgs),
    /// Approve a waiting call; the caller's call goes through.
    Approve(ApproveArgs),
    /// Deny a waiting call; the caller gets the refusal (and the reason).
    Deny(DenyArgs),
    /// List the approvals remembered "always" (in the state database, no running gateway
    /// needed): principal, server, tool, what they cover, the rule, and when they expire.
    Remembered(super::remembered::RememberedArgs),
    /// Forget remembered approvals of a server (or --all), of everyone or one principal:
    /// those calls are asked again, at once even in a running gateway. Audited.
    Forget(super::remembered::ForgetArgs),
}

#[derive(Args, Debug)]
pub struct Target {
    /// The gateway's config ([approvals] names the admin token; gateway.public_url or
    /// gateway.listen says where the gateway is).
    #[arg(long, short)]
    config: Option<PathBuf>,
    /// The gateway's address instead of the config's, e.g. http://127.0.0.1:8440.
    #[arg(long)]
    url: Option<String>,
}

#[derive(Args, Debug)]
pub struct ListArgs {
    #[command(flatten)]
    target: Target,
    /// Print the gateway's JSON (full ids, arguments as sent) instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(Args, Debug)]
pub struct ApproveArgs {
    /// The request id, or a unique prefix of it (at least 6 characters). Ids are base64url
    /// and may start with "-": it is read as the id, not as an option.
    #[arg(allow_hyphen_values = true)]
    id: String,
    /// How far the approval reaches: this call only, the caller's session, or always (kept
    /// for as long as the rule allows).
    #[arg(long, value_enum, default_value_t = RememberArg::Once)]
    remember: RememberArg,
    /// What a remembered approval covers: these exact arguments, or any call of the tool.
    #[arg(long = "for", value_enum, default_value_t = ForArg::Arguments)]
    scope: ForArg,
    #[command(flatten)]
    target: Target,
}

#[derive(Args, Debug)]
pub struct DenyArgs {
    /// The request id, or a unique prefix of it (at least 6 characters). Ids are base64url
    /// and may start with "-": it is read as the id, not as an option.
    #[arg(allow_hyphen_values = true)]
    id: String,
    /// Why, for the caller and the audit log.
    #[arg(long)]
    reason: Option<String>,
    #[command(flatten)]
    target: Target,
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
enum RememberArg {
    Once,
    Session,
    Always,
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
enum ForArg {
    Arguments,
    Tool,
}

/// The commands that ask the running gateway (the others read the state database).
enum OnGateway {
    List(ListArgs),
    Approve(ApproveArgs),
    Deny(DenyArgs),
}

pub fn run(command: ApprovalsCommand) -> anyhow::Result<ExitCode> {
    let command = match command {
        ApprovalsCommand::Remembered(args) => return super::remembered::remembered(args),
        ApprovalsCommand::Forget(args) => return super::remembered::forget(args),
        ApprovalsCommand::List(a) => OnGateway::List(a),
        ApprovalsCommand::Approve(a) => OnGateway::Approve(a),
        ApprovalsCommand::Deny(a) => OnGateway::Deny(a),
    };
    let target = match &command {
        OnGateway::List(a) => &a.target,
        OnGateway::Approve(a) => &a.target,
        OnGateway::Deny(a) => &a.target,
    };
    let admin = match AdminApi::from_target(target) {
        Ok(a) => a,
        Err(code) => return Ok(code),
    };
    runtime(None)?.block_on(async move {
        let work = async {
            match command {
                OnGateway::List(args) => list(&admin, args.json).await,
                OnGateway::Approve(args) => {
                    let body = DecisionBody {
                        decision: "approve".into(),
                        remember: Some(remember_name(args.remember).into()),
                        scope: Some(for_name(args.scope).into()),
                        reason: None,
                        operator: operator(),
                    };
                    decide(&admin, &args.id, body).await
                }
                OnGateway::Deny(args) => {
                    let body = DecisionBody {
                        decision: "deny".into(),
                        remember: None,
                        scope: None,
                        reason: args.reason,
                        operator: operator(),
                    };
                    decide(&admin, &args.id, body).await
                }
            }
        };
        match tokio::time::timeout(TIMEOUT, work).await {
            Ok(Ok(code)) => Ok(code),
            Ok(Err(failure)) => {
                eprintln!("portcullis: {failure}");
                Ok(ExitCode::FAILURE)
            }
            Err(_) => {
                eprintln!(
                    "portcullis: the gateway at {} did not answer within {}s",
                    admin.base,
                    TIMEOUT.as_secs()
                );
                Ok(ExitCode::FAILURE)
            }
        }
    })
}

fn remember_name(r: RememberArg) -> &'static str {
    match r {
        RememberArg::Once => "once",
        RememberArg::Session => "session",
        RememberArg::Always => "always",
    }
}

fn for_name(f: ForArg) -> &'static str {
    match f {
        ForArg::Arguments => "arguments",
        ForArg::Tool => "tool",
    }
}

/// Who is typing, as the system says (recorded as stated, not as proof).
fn operator() -> Option<String> {
    std::env::var("USER").ok().filter(|u| !u.is_empty())
}

/// The running gateway's admin API.
struct AdminApi {
    base: String,
    token: portcullis_auth::secret::Secret,
    http: EgressClient,
}

impl AdminApi {
    fn from_target(target: &Target) -> Result<AdminApi, ExitCode> {
        let config = load_or_exit(target.config.as_ref())?;
        let Some(approvals) = &config.approvals else {
            return Err(usage_error(format!(
                "{} has no [approvals] section: the gateway serves no approvals page or API without its admin token",
                config.source
            )));
        };
        let token = read_admin_token(&approvals.admin_token).map_err(usage_error)?;
        let base = match &target.url {
            Some(url) => url.trim_end_matches('/').to_owned(),
            None => gateway_base(&config),
        };
        // The admin token decides for everyone: never sent where it can be read on the way.
        let uri =
            EgressClient::parse_url(&base).map_err(|e| usage_error(format!("{base}: {e}")))?;
        if uri.scheme_str() != Some("https")
            && !portcullis_auth::is_loopback_host(uri.host().unwrap_or_default())
        {
            return Err(usage_error(format!(
                "refusing to send the admin token to {base} over plain http: reach the gateway over https (gateway.public_url, gateway.tls, or --url https://…), or on loopback"
            )));
        }
        let http = EgressClient::new(&EgressConfig {
            connect_timeout: Duration::from_secs(5),
            ..EgressConfig::default()
        })
        .map_err(usage_error)?;
        Ok(AdminApi { base, token, http })
    }

    /// Sends one request; the status and the JSON body, or what went wrong, in words.
    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<(StatusCode, serde_json::Value), String> {
        let url = format!("{}{path}", self.base);
        let uri = EgressClient::parse_url(&url).map_err(|e| e.to_string())?;
        let mut req = EgressRequest::new(method, uri);
        let bearer = HeaderValue::from_str(&format!("Bearer {}", self.token.expose()))
            .map_err(|_| "the admin token holds characters an HTTP header cannot".to_owned())?;
        req.headers.insert(http::header::AUTHORIZATION, bearer);
        if let Some(body) = body {
            req.headers.insert(
                http::header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            req.body = body.into();
        }
        req.timeout = Some(TIMEOUT);
        let resp = self
            .http
            .send(req)
            .await
            .map_err(|e| self.unreachable(&e))?;
        let status = resp.status();
        let bytes = resp
            .bytes_limited(MAX_ANSWER_BYTES)
            .await
            .map_err(|e| e.to_string())?;
        let json = serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
        match status {
            StatusCode::UNAUTHORIZED => Err(format!(
                "the gateway at {} refused the admin token: is it running with this config's approvals.admin_token?",
                self.base
            )),
            StatusCode::NOT_FOUND if json.is_null() => Err(format!(
                "the gateway at {} serves no approvals API: its config has no [approvals] section",
                self.base
            )),
            _ => Ok((status, json)),
        }
    }

    fn unreachable(&self, e: &EgressError) -> String {
        match e {
            EgressError::Connect { reason, .. } => format!(
                "no gateway answers at {} ({reason}): start it (`portcullis serve`, or a host running `portcullis stdio`) with this config, or name its address with --url",
                self.base
            ),
            other => format!("cannot reach the gateway at {}: {other}", self.base),
        }
    }

    async fn pending(&self) -> Result<PendingList, String> {
        let (status, json) = self
            .call(Method::GET, "/approvals/api/pending", None)
            .await?;
        if status != StatusCode::OK {
            return Err(api_error(status, &json));
        }
        serde_json::from_value(json).map_err(|e| format!("the gateway's answer: {e}"))
    }
}

/// Where the gateway is, from its config: `public_url`, else `gateway.listen` (a wildcard
/// address as loopback; https when `gateway.tls` is set).
fn gateway_base(config: &Config) -> String {
    if let Some(url) = &config.gateway.public_url {
        return url.clone();
    }
    let listen = config.gateway.listen;
    let ip = match listen.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    let scheme = if config.gateway.tls.is_some() {
        "https"
    } else {
        "http"
    };
    format!("{scheme}://{}", SocketAddr::new(ip, listen.port()))
}

fn api_error(status: StatusCode, json: &serde_json::Value) -> String {
    let message = json["error"].as_str().unwrap_or("no reason given");
    format!(
        "the gateway answered {status}: {}",
        render::line(message, 300)
    )
}

async fn list(admin: &AdminApi, as_json: bool) -> Result<ExitCode, String> {
    let list = admin.pending().await?;
    if as_json {
        let text = serde_json::to_string_pretty(&list).map_err(|e| e.to_string())?;
        emit(&format!("{text}\n"));
        return Ok(ExitCode::SUCCESS);
    }
    if list.pending.is_empty() {
        emit("No call is waiting for approval.\n");
        return Ok(ExitCode::SUCCESS);
    }
    let mut out = String::new();
    for p in &list.pending {
        let short: String = p.id.chars().take(12).collect();
        out.push_str(&format!(
            "{}  {} at {}  for {}  ({} left)\n    held by {}\n    arguments: {}\n",
            render::line(&short, 12),
            render::line(&p.tool, 100),
            render::line(&p.server, 100),
            render::line(&p.principal, 200),
            time_left(p.seconds_left),
            render::line(&p.rule, 200),
            render::line(&p.arguments.to_string(), MAX_SHOWN_ARGUMENTS),
        ));
    }
    out.push_str(&format!(
        "{} waiting. Approve with `portcullis approvals approve <id>`, deny with `portcullis approvals deny <id>`.\n",
        list.pending.len()
    ));
    emit(&out);
    Ok(ExitCode::SUCCESS)
}

fn time_left(seconds: u64) -> String {
    if seconds >= 60 {
        format!("{}m{:02}s", seconds / 60, seconds % 60)
    } else {
        format!("{seconds}s")
    }
}

async fn decide(admin: &AdminApi, id: &str, body: DecisionBody) -> Result<ExitCode, String> {
    let id = resolve(admin, id).await?;
    let bytes = serde_json::to_vec(&body).map_err(|e| e.to_string())?;
    let path = format!("/approvals/api/{id}");
    let (status, json) = admin.call(Method::POST, &path, Some(bytes)).await?;
    if status != StatusCode::OK {
        return Err(api_error(status, &json));
    }
    let decided: Decided =
        serde_json::from_value(json).map_err(|e| format!("the gateway's answer: {e}"))?;
    let what = match body.decision.as_str() {
        "approve" => format!(
            "Approved ({}, for {})",
            body.remember.as_deref().unwrap_or("once"),
            match body.scope.as_deref() {
                Some("tool") => "the tool",
                _ => "these arguments",
            }
        ),
        _ => "Denied".to_owned(),
    };
    emit(&format!(
        "{what}: {} at {} for {}.\n",
        render::line(&decided.tool, 100),
        render::line(&decided.server, 100),
        render::line(&decided.principal, 200)
    ));
    Ok(ExitCode::SUCCESS)
}

/// The full id of the one waiting call `id` names (itself, or a unique prefix).
async fn resolve(admin: &AdminApi, id: &str) -> Result<String, String> {
    let list = admin.pending().await?;
    if list.pending.iter().any(|p| p.id == id) {
        return Ok(id.to_owned());
    }
    if id.chars().count() < MIN_PREFIX {
        return Err(format!(
            "{} is not a waiting call's id, and too short a prefix (at least {MIN_PREFIX} characters)",
            render::line(id, 60)
        ));
    }
    let matching: Vec<&str> = list
        .pending
        .iter()
        .filter(|p| p.id.starts_with(id))
        .map(|p| p.id.as_str())
        .collect();
    match matching.as_slice() {
        [one] => Ok((*one).to_owned()),
        [] => Err(format!(
            "no call waits under {}: it was decided already, its time ran out, or its caller went away (see `portcullis approvals list`)",
            render::line(id, 60)
        )),
        _ => Err(format!(
            "{} is the start of {} waiting calls' ids: give more of it",
            render::line(id, 60),
            matching.len()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(text: &str) -> Config {
        Config::parse(
            text,
            portcullis_gateway::config::ConfigSource::Embedded("test"),
        )
        .unwrap()
    }

    #[test]
    fn the_gateway_is_found_at_its_public_url_else_its_listener() {
        assert_eq!(
            gateway_base(&config("[gateway]\nlisten = \"127.0.0.1:9000\"\n")),
            "http://127.0.0.1:9000"
        );
        assert_eq!(
            gateway_base(&config(
                "[gateway]\nlisten = \"0.0.0.0:9000\"\ninsecure_no_auth = true\n"
            )),
            "http://127.0.0.1:9000"
        );
        assert_eq!(
            gateway_base(&config(
                "[gateway]\npublic_url = \"https://gw.example.com\"\n"
            )),
            "https://gw.example.com"
        );
    }

    #[test]
    fn time_left_reads_as_minutes_and_seconds() {
        assert_eq!(time_left(5), "5s");
        assert_eq!(time_left(125), "2m05s");
    }
}
