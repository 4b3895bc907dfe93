//! What is decided before a call leaves for its upstream, in this order:
//!
//! 1. the name resolves to a server of the route, and exists in that server's latest list;
//! 2. the policy decides on the call itself — arguments, principal, session;
//! 3. a name the principal may not even see is refused with the error a name that does not
//!    exist gets (no probing for hidden tools);
//!    then a tool whose definition is not the one pinned (`upstream::definitions`) is
//!    withheld, with the reason, and so is one the description scan blocks
//!    (`session::scanning`);
//! 4. the arguments satisfy the tool's `inputSchema` (or the prompt's declared arguments):
//!    invalid arguments never reach the server, and the caller learns how to fix them;
//! 5. the verdict: a deny or a missing scope refuses; a credential in the arguments of an
//!    open-world tool (`[content]`, see [`super::content_step`]) refuses, or asks for consent;
//! 6. the rate limit of the deciding rule, or the gateway's default, has room (before a
//!    person is asked: a flood of calls must not become a flood of questions);
//! 7. a consent verdict holds the call until a person decides (see [`super::consent_step`]
//!    and [`crate::consent`]): approved, it goes on; denied or unanswered, it is refused;
//! 8. the decision is in the audit log, durably — or the call is not made.
//!
//! Every refusal is audited too. What happens after the call (its answer or error, and how
//! long it took) is recorded by [`Session::note_outcome`].

use std::sync::Arc;
use std::time::Instant;

use portcullis_policy::{Decision, Kind, Request, Verdict};
use portcullis_wire::{ErrorObject, codes};
use serde_json::{Value, json};

use super::Session;
use super::relay::{Outcome, unknown};
use crate::audit::Entry;
use crate::limits::RateKey;
use crate::upstream::catalog::{self, Definition, ListKind};
use crate::upstream::{Reply, UpstreamConn};

/// What one call asks for.
pub(super) struct Call<'a> {
    pub method: &'a str,
    pub kind: Kind,
    /// The name (or URI) as the client wrote it.
    pub name: &'a str,
    /// The call's arguments (`tools/call`, `prompts/get`), if any.
    pub args: Option<&'a Value>,
    /// What the call's params say about asking a person for it (a consent rule).
    pub consent: &'a super::consent_step::ConsentContext,
}

/// A call the gateway decided to make.
pub(super) struct Admission {
    pub conn: Arc<UpstreamConn>,
    pub server: String,
    /// The name (or URI) as the upstream knows it.
    pub upstream_name: String,
    started: Instant,
}

/// What the upstream lists under a call's name.
enum Listed {
    /// A tool or a prompt, with its definition.
    Named(Arc<Definition>),
    /// A resource it lists, or a URI one of its templates fits.
    Resource,
}

/// Why a call is not made.
pub(super) enum Refused {
    /// A JSON-RPC error.
    Error(ErrorObject),
    /// A tool result with `isError: true` (invalid arguments are the model's to fix).
    ToolError(String),
    /// A result that is not the call's: a 2026-07-28 `input_required` asking for consent.
    Answer(Box<serde_json::value::RawValue>),
    /// The client cancelled the call while it was held: nothing is answered.
    Cancelled,
}

impl From<ErrorObject> for Refused {
    fn from(e: ErrorObject) -> Self {
        Refused::Error(e)
    }
}

impl Refused {
    pub fn into_outcome(self) -> Outcome {
        match self {
            Refused::Error(e) => Outcome::Error(e),
            Refused::ToolError(text) => {
                let result =
                    json!({ "content": [{ "type": "text", "text": text }], "isError": true });
                Outcome::Reply(Reply::Result(crate::mcp::raw(&result)))
            }
            Refused::Answer(result) => Outcome::Reply(Reply::Result(result)),
            Refused::Cancelled => Outcome::Cancelled,
        }
    }
}

fn list_kind(kind: Kind) -> ListKind {
    match kind {
        Kind::Tool => ListKind::Tools,
        Kind::Prompt => ListKind::Prompts,
        Kind::Resource => ListKind::Resources,
    }
}

impl Session {
    /// Runs the checks of the module docs; on success the call may leave.
    pub(super) async fn admit(&self, call: &Call<'_>) -> Result<Admission, Refused> {
        let started = Instant::now();
        let resolved = match call.kind {
            Kind::Resource => self.route.resolve_uri(call.name),
            Kind::Tool | Kind::Prompt => self.route.resolve_name(call.name),
        };
        let Some(resolved) = resolved else {
            self.refusal(
                call,
                "",
                "unknown",
                "no server of this route has this name",
                None,
            );
            return Err(unknown(call.kind, call.name).into());
        };
        let (server, upstream_name) = (resolved.server.to_owned(), resolved.name.to_owned());
        let policy = self.gateway.policy();
        let caller = self.caller();
        // Nothing of this kind on this server could be allowed: refuse without starting it.
        if !policy.may_expose(&caller, &server, call.kind) {
            self.refusal(
                call,
                &server,
                "deny",
                "no rule allows anything of this kind on this server",
                None,
            );
            return Err(unknown(call.kind, call.name).into());
        }
        let conn = match self.conn(&server).await {
            Ok(conn) => conn,
            Err(e) => {
                self.refusal(call, &server, "error", &e.message, None);
                return Err(e.into());
            }
        };

        // 1. It must exist upstream: the same answer as for a hidden name otherwise.
        let listed = match self.definition(&conn, call.kind, &upstream_name).await {
            Ok(Some(def)) => def,
            Ok(None) => {
                self.refusal(
                    call,
                    &server,
                    "unknown",
                    "the upstream does not list it",
                    None,
                );
                return Err(unknown(call.kind, call.name).into());
            }
            Err(e) => {
                self.refusal(call, &server, "error", &e.message, None);
                return Err(e.into());
            }
        };
        let annotations = match &listed {
            Listed::Named(def) if call.kind == Kind::Tool => def.annotations(),
            _ => None,
        };

        // 2. The decision on this very call.
        let mut request = Request::new(&caller, &server, call.kind, &upstream_name)
            .in_session(&self.id, self.transport.as_str());
        if let Some(args) = call.args {
            request = request.with_args(args);
        }
        if let Some(a) = annotations {
            request = request.with_annotations(a);
        }
        let decision = policy.decide(&request, &crate::config::SystemPaths);
        crate::decision::log(
            policy,
            &self.id,
            self.transport.as_str(),
            call.method,
            &decision,
        );
        let rule = crate::decision::describe_rule(policy, &decision);
        // 3. A name this principal may not even see gets the error a missing one gets.
        if !decision.is_allowed()
            && !policy.visible(&caller, &server, call.kind, &upstream_name, annotations)
        {
            return Err(self.refuse_decision(
                call,
                &decision,
                &rule,
                "deny",
                unknown(call.kind, call.name),
            ));
        }

        // 3b. A tool whose definition is not the one pinned (a rug pull, a rename) is
        // withheld: the caller learns why and what to run.
        if call.kind == Kind::Tool
            && let Some(withheld) = self.withheld_definition(&conn, &upstream_name).await
        {
            let reason = format!(
                "tool {:?} of server {server:?} is withheld: {}",
                call.name, withheld.reason
            );
            self.refusal(call, &server, "withheld", &reason, None);
            return Err(ErrorObject::new(
                codes::POLICY_DENIED,
                format!("{reason}. The call was not made."),
            )
            .with_data(json!({ "withheld": {
                "server": server, "tool": upstream_name, "status": withheld.status,
            }}))
            .into());
        }

        // 3c. A tool the description scan withholds (`scanning`): refused with the finding.
        if call.kind == Kind::Tool
            && let Some(refused) = self
                .scan_refusal(call, &server, &upstream_name, &conn)
                .await
        {
            return Err(refused.into());
        }

        // 4. The arguments (or the resource) are what the upstream declared. Checked before
        // the verdict is acted on: a malformed call gets the error that says how to fix it.
        if let Err(refused) = self.check_arguments(call, &listed) {
            let reason = match &refused {
                Refused::ToolError(text) => text.clone(),
                Refused::Error(e) => e.message.clone(),
                Refused::Answer(_) | Refused::Cancelled => String::new(),
            };
            self.refusal(call, &server, "invalid", &reason, Some(&rule));
            return Err(refused);
        }

        // 5. The verdict.
        let mut needs_consent = false;
        match &decision.verdict {
            Verdict::Allow => {}
            Verdict::Deny => {
                return Err(self.refuse_decision(
                    call,
                    &decision,
                    &rule,
                    "deny",
                    denied(&decision),
                ));
            }
            Verdict::Consent => needs_consent = true,
            Verdict::InsufficientScope { missing } => {
                let err = ErrorObject::new(
                    codes::INSUFFICIENT_SCOPE,
                    format!(
                        "the call needs the scopes {}, which the caller's token does not carry",
                        missing.join(" ")
                    ),
                )
                .with_data(json!({ "missingScopes": missing }));
                return Err(self.refuse_decision(
                    call,
                    &decision,
                    &rule,
                    "insufficient_scope",
                    err,
                ));
            }
        }

        // 5b. A credential in the arguments of an open-world tool (`[content]`): refused, or
        // held for a person's consent as a consent rule's call is.
        let mut consent_rule = rule.clone();
        if let Some(reason) = self.secret_in_arguments(call, &server, &upstream_name, annotations) {
            if reason.needs_consent {
                needs_consent = true;
                consent_rule = format!("{rule}; {}", reason.text);
            } else {
                self.refusal(call, &server, "deny", &reason.text, Some(&rule));
                return Err(ErrorObject::new(
                    codes::POLICY_DENIED,
                    format!("{}; the call was not made", reason.text),
                )
                .into());
            }
        }

        // 6. The rate limit.
        let spec = decision.rate.or(self.gateway.config.limits.rate);
        if let Some(spec) = spec {
            let key = RateKey {
                principal: self.audit_context().principal.clone(),
                server: server.clone(),
                name: upstream_name.clone(),
            };
            if let Err(retry) = self.gateway.limiter.check(&key, &spec, Instant::now()) {
                let ms = retry.0.as_millis().max(1) as u64;
                let reason = format!(
                    "more than {} calls per {}",
                    spec.count,
                    spec.period.as_str()
                );
                let whose = if decision.rate.is_some() {
                    rule.as_str()
                } else {
                    "limits.rate"
                };
                self.refusal(call, &server, "rate_limited", &reason, Some(&rule));
                return Err(ErrorObject::new(
                    codes::RATE_LIMITED,
                    format!(
                        "rate limit of {whose} ({reason}) reached for {}; try again in {ms} ms",
                        call.name
                    ),
                )
                .with_data(json!({ "retryAfterMs": ms }))
                .into());
            }
        }

        // 7. A person decides.
        let mut reason = decision.reason.clone();
        if needs_consent {
            let how = self
                .hold_for_consent(call, &decision, &consent_rule)
                .await?;
            reason = format!("{reason}; {how}");
        }

        // 8. On the record before it leaves.
        let entry = Entry {
            event: "decision",
            server: &server,
            method: call.method,
            name: &upstream_name,
            args: call.args,
            decision: "allow",
            rule: Some(rule),
            reason,
            latency: Some(started.elapsed()),
            trace: Some(policy.explain(&decision)),
        };
        self.gateway
            .audit
            .commit(self.audit_context(), entry)
            .await?;
        Ok(Admission {
            conn,
            server,
            upstream_name,
            started,
        })
    }

    /// What the upstream lists under the name: the tool or prompt definition, or, for a
    /// resource, that the URI is one it lists (or fits one of its templates).
    async fn definition(
        &self,
        conn: &Arc<UpstreamConn>,
        kind: Kind,
        name: &str,
    ) -> Result<Option<Listed>, ErrorObject> {
        let listing = |kind| async move {
            catalog::listing(conn, kind)
                .await
                .map_err(|e| ErrorObject::new(codes::UPSTREAM_UNAVAILABLE, e.to_string()))
        };
        match kind {
            Kind::Tool | Kind::Prompt => Ok(listing(list_kind(kind))
                .await?
                .definition(name)
                .map(Listed::Named)),
            Kind::Resource => {
                if listing(ListKind::Resources).await?.contains(name) {
                    return Ok(Some(Listed::Resource));
                }
                let templates = listing(ListKind::ResourceTemplates).await?;
                // A template itself (as `completion/complete` names it), or a URI it matches.
                let found = templates.contains(name) || templates.template_matches(name);
                Ok(found.then_some(Listed::Resource))
            }
        }
    }

    /// Why the definition pins withhold tool `name` of `conn`'s server, if they do.
    async fn withheld_definition(
        &self,
        conn: &Arc<UpstreamConn>,
        name: &str,
    ) -> Option<crate::upstream::definitions::Withheld> {
        let guard = self.gateway.definitions(conn.server())?;
        // The list may have been dropped (a `list_changed`) since step 1: a list that cannot
        // be read again cannot be checked, so the call is withheld (fail closed).
        let listing = match catalog::listing(conn, ListKind::Tools).await {
            Ok(listing) => listing,
            Err(e) => {
                return Some(crate::upstream::definitions::Withheld {
                    status: "unpinned",
                    reason: format!("its tools list could not be read to check the pins ({e})"),
                });
            }
        };
        guard.check_call(&listing, name).await
    }

    fn check_arguments(&self, call: &Call<'_>, listed: &Listed) -> Result<(), Refused> {
        let Listed::Named(definition) = listed else {
            return Ok(());
        };
        let args = call.args.unwrap_or(&Value::Null);
        match call.kind {
            Kind::Tool if call.method == crate::mcp::TOOLS_CALL => {
                let schema = definition
                    .input_schema(&self.gateway.schemas)
                    .map_err(|e| {
                        ErrorObject::new(
                            codes::UPSTREAM_UNAVAILABLE,
                            format!("{e}; the gateway does not forward calls it cannot check"),
                        )
                    })?;
                schema.validate(args).map_err(|invalid| {
                    Refused::ToolError(format!("Invalid arguments for {}: {invalid}", call.name))
                })
            }
            Kind::Prompt if call.method == crate::mcp::PROMPTS_GET => {
                portcullis_guard::check_prompt_arguments(&definition.value, args).map_err(
                    |invalid| {
                        ErrorObject::new(
                            codes::INVALID_PARAMS,
                            format!("Invalid arguments for prompt {}: {invalid}", call.name),
                        )
                        .into()
                    },
                )
            }
            _ => Ok(()),
        }
    }

    /// Audits a refusal that needs no durability wait (nothing is forwarded for it).
    fn refusal(
        &self,
        call: &Call<'_>,
        server: &str,
        decision: &str,
        reason: &str,
        rule: Option<&str>,
    ) {
        self.gateway.audit.note(
            self.audit_context(),
            Entry {
                event: "decision",
                server,
                method: call.method,
                name: call.name,
                args: call.args,
                decision,
                rule: rule.map(str::to_owned),
                reason: reason.to_owned(),
                ..Entry::default()
            },
        );
    }

    pub(super) fn refuse_decision(
        &self,
        call: &Call<'_>,
        decision: &Decision,
        rule: &str,
        verdict: &str,
        err: ErrorObject,
    ) -> Refused {
        self.gateway.audit.note(
            self.audit_context(),
            Entry {
                event: "decision",
                server: &decision.server,
                method: call.method,
                name: &decision.name,
                args: call.args,
                decision: verdict,
                rule: Some(rule.to_owned()),
                reason: decision.reason.clone(),
                trace: Some(self.gateway.policy().explain(decision)),
                ..Entry::default()
            },
        );
        err.into()
    }

    /// Records how a call that was made ended.
    /// `content` is what cleaning the answer found (`crate::content`): its kinds and counts
    /// join the record's reason.
    pub(super) fn note_outcome(
        &self,
        call: &Call<'_>,
        admission: &Admission,
        outcome: &Outcome,
        content: &crate::content::Report,
    ) {
        let (decision, mut reason) = match outcome {
            Outcome::Reply(Reply::Result(_)) => ("ok", String::new()),
            Outcome::Reply(Reply::Error(e)) => {
                ("upstream_error", e.get().chars().take(200).collect())
            }
            Outcome::Error(e) => ("error", e.message.clone()),
            Outcome::Cancelled => ("cancelled", String::new()),
        };
        if !content.is_empty() {
            let sep = if reason.is_empty() { "" } else { "; " };
            reason = format!("{reason}{sep}content: {content}");
        }
        self.gateway.audit.note(
            self.audit_context(),
            Entry {
                event: "completed",
                server: &admission.server,
                method: call.method,
                name: &admission.upstream_name,
                decision,
                reason,
                latency: Some(admission.started.elapsed()),
                ..Entry::default()
            },
        );
    }
}

fn denied(decision: &Decision) -> ErrorObject {
    ErrorObject::new(
        codes::POLICY_DENIED,
        format!("refused by policy: {}", decision.reason),
    )
}
