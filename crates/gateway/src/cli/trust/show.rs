//! What `portcullis trust` shows: the review of a launch, as text for a person or as JSON.
//!
//! Nothing is cut: a person approves exactly what will run. Every string that comes from
//! the config or the file system goes through [`clean`], so a control sequence in an
//! argument cannot rewrite the screen that asks for approval.

use std::io::IsTerminal;

use portcullis_gateway::config::{ConfigSource, StdioUpstream};
use portcullis_gateway::upstream::pinning::secret_source;
use portcullis_sandbox::review::{Change, Review, Severity, Target};
use portcullis_sandbox::{Network, Profile};
use portcullis_store::{LaunchPin, StoreError};
use serde_json::{Value, json};

use super::super::text::clean;
use super::super::time::format_ms;

/// One review, with the pin it is compared with.
pub(super) struct Report<'a> {
    pub server: &'a str,
    pub source: &'a ConfigSource,
    pub stdio: &'a StdioUpstream,
    pub review: &'a Review,
    /// The executable is the gateway's own: trusted without a pin.
    pub gateway_itself: bool,
    pub pin: &'a Result<Option<LaunchPin>, StoreError>,
    /// The differences from the pin, when there is one.
    pub changes: Option<&'a [Change]>,
}

/// Emphasis on a terminal, nothing elsewhere.
struct Style(bool);

impl Style {
    fn paint(&self, code: &str, text: &str) -> String {
        if self.0 {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_owned()
        }
    }
}

impl Report<'_> {
    pub fn text(&self) -> String {
        let style = Style(std::io::stdout().is_terminal());
        let r = self.review;
        let fp = &r.fingerprint;
        let mut out = format!(
            "Server \"{}\": a local (stdio) server of {}\n\nCommand, exactly as it will run:\n",
            clean(self.server),
            clean(&self.source.to_string())
        );
        for (i, arg) in fp.argv.iter().enumerate() {
            out.push_str(&format!("  [{i}] {}\n", clean(arg)));
        }
        out.push_str(&format!(
            "Working directory: {}\n",
            self.stdio.cwd.as_ref().map_or_else(
                || if self.stdio.sandbox.is_some() {
                    "the sandbox's private /tmp".to_owned()
                } else {
                    "the gateway's own".to_owned()
                },
                |c| clean(&c.display().to_string())
            )
        ));
        out.push_str(&format!("Executable: {}\n", clean(&fp.executable)));
        if r.found.to_string_lossy() != fp.executable {
            out.push_str(&format!(
                "  found as {}\n",
                clean(&r.found.display().to_string())
            ));
        }
        out.push_str(&format!("  sha256 {}\n", fp.executable_sha256));
        if self.gateway_itself {
            out.push_str("  this is the gateway's own executable: it is trusted without a pin\n");
        }
        out.push_str(&self.runs_text());
        out.push_str(&self.env_text());
        out.push_str(&sandbox_text(self.stdio.sandbox.as_ref()));
        out.push_str(&self.findings_text(&style));
        out.push_str(&self.pin_text(&style));
        out
    }

    fn runs_text(&self) -> String {
        let r = self.review;
        let via = r.via.as_deref().map(clean).unwrap_or_default();
        match &r.target {
            Target::None if r.via.is_none() => String::new(),
            Target::None => format!("Runs (through {via}): nothing named on the command line\n"),
            Target::Script(_) => format!(
                "Runs (through {via}) the script: {}\n  sha256 {}\n",
                clean(r.fingerprint.script.as_deref().unwrap_or_default()),
                r.fingerprint
                    .script_sha256
                    .as_deref()
                    .unwrap_or("(cannot be read)")
            ),
            Target::Inline(code) => format!("Runs (through {via}) this code: {}\n", clean(code)),
            Target::Module(m) => {
                format!("Runs (through {via}) the installed module {}\n", clean(m))
            }
            Target::Package(p) => format!(
                "Runs (through {via}) the {} package: {}\n  {}\n",
                p.ecosystem,
                clean(&p.spec),
                if p.pinned {
                    "pinned to one version"
                } else {
                    "NOT pinned to a version: whatever is newest runs"
                }
            ),
        }
    }

    fn env_text(&self) -> String {
        let env = &self.stdio.env;
        let mut out = String::from("Environment (the server gets these and nothing else):\n");
        if env.pass.is_empty() && env.set.is_empty() && env.secrets.is_empty() {
            out.push_str("  (empty)\n");
        }
        for name in &env.pass {
            let note = if std::env::var_os(name).is_some() {
                "passed from the gateway's environment"
            } else {
                "passed from the gateway's environment (unset here)"
            };
            out.push_str(&format!("  {}: {note}\n", clean(name)));
        }
        for (name, value) in &env.set {
            out.push_str(&format!("  {} = {}\n", clean(name), clean(value)));
        }
        for (name, source) in &env.secrets {
            out.push_str(&format!(
                "  {}: secret, {}\n",
                clean(name),
                clean(&secret_source(source))
            ));
        }
        out
    }

    fn findings_text(&self, style: &Style) -> String {
        let findings = &self.review.findings;
        if findings.is_empty() {
            return "Findings: none\n".to_owned();
        }
        let mut out = String::from("Findings:\n");
        for f in findings {
            let (mark, code) = match f.severity {
                Severity::Danger => ("!! DANGER ", "1;31"),
                Severity::Warning => ("!  warning", "33"),
                Severity::Notice => ("   notice ", "2"),
            };
            out.push_str(&format!(
                "  {} {}\n",
                style.paint(code, mark),
                style.paint(code, &clean(&f.message))
            ));
        }
        out
    }

    fn pin_text(&self, style: &Style) -> String {
        match (self.pin, self.changes) {
            (Ok(None), _) => "Pin: none (this launch has not been trusted before)\n".to_owned(),
            (Err(e), _) => format!(
                "Pin: {}\n",
                style.paint(
                    "1;31",
                    &format!("cannot be read ({e}); trusting replaces it")
                )
            ),
            (Ok(Some(pin)), changes) => {
                let mut out = format!(
                    "Pin: trusted by {} at {}",
                    clean(&pin.trusted_by),
                    format_ms(pin.trusted_at_ms)
                );
                match changes {
                    Some(changes) if !changes.is_empty() => {
                        out.push_str(&format!(
                            "; {}\n",
                            style.paint("1;31", "this launch DIFFERS from it:")
                        ));
                        for change in changes {
                            out.push_str(&format!("  - {}\n", clean(&format!("{change:#}"))));
                        }
                    }
                    _ => out.push_str("; this launch matches it\n"),
                }
                out
            }
        }
    }

    pub fn json(&self) -> Value {
        let r = self.review;
        let fp = &r.fingerprint;
        let runs = match &r.target {
            Target::None => json!({ "kind": "itself" }),
            Target::Script(written) => json!({
                "kind": "script", "as_written": written,
                "path": fp.script, "sha256": fp.script_sha256,
            }),
            Target::Inline(code) => json!({ "kind": "inline", "code": code }),
            Target::Module(m) => json!({ "kind": "module", "module": m }),
            Target::Package(p) => json!({
                "kind": "package", "spec": p.spec,
                "ecosystem": p.ecosystem.to_string(), "pinned": p.pinned,
            }),
        };
        let env = &self.stdio.env;
        let mut vars: Vec<Value> = env
            .pass
            .iter()
            .map(|n| json!({ "name": n, "from": "gateway environment" }))
            .collect();
        vars.extend(
            env.set
                .iter()
                .map(|(n, v)| json!({ "name": n, "value": v })),
        );
        vars.extend(
            env.secrets
                .iter()
                .map(|(n, s)| json!({ "name": n, "secret": true, "from": secret_source(s) })),
        );
        let pin = match self.pin {
            Ok(None) => Value::Null,
            Err(e) => json!({ "error": e.to_string() }),
            Ok(Some(p)) => json!({
                "trusted_by": p.trusted_by,
                "trusted_at": format_ms(p.trusted_at_ms),
                "matches": self.changes.is_some_and(<[Change]>::is_empty),
                "changes": self.changes.unwrap_or_default().iter()
                    .map(|c| format!("{c:#}")).collect::<Vec<_>>(),
            }),
        };
        json!({
            "server": self.server,
            "argv": fp.argv,
            "cwd": self.stdio.cwd,
            "executable": fp.executable,
            "found": r.found,
            "executable_sha256": fp.executable_sha256,
            "gateway_itself": self.gateway_itself,
            "via": r.via,
            "runs": runs,
            "env": vars,
            "sandbox": self.stdio.sandbox.as_ref().map(sandbox_json),
            "findings": r.findings.iter()
                .map(|f| json!({ "severity": f.severity.as_str(), "message": f.message }))
                .collect::<Vec<_>>(),
            "pin": pin,
        })
    }
}

fn sandbox_text(profile: Option<&Profile>) -> String {
    let Some(p) = profile else {
        return "Sandbox: off (the server has every right of the gateway's user)\n".to_owned();
    };
    let list = |paths: &[std::path::PathBuf]| {
        paths
            .iter()
            .map(|p| clean(&p.display().to_string()))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut out = String::from("Sandbox:\n");
    out.push_str(&format!(
        "  read: system directories, the server's installation and working directory{}\n",
        if p.read.is_empty() {
            String::new()
        } else {
            format!(", {}", list(&p.read))
        }
    ));
    out.push_str(&format!(
        "  write: {}\n",
        if p.write.is_empty() {
            "the server's roots".to_owned()
        } else {
            list(&p.write)
        }
    ));
    out.push_str(&format!("  network: {}\n", clean(&p.network.to_string())));
    let l = &p.limits;
    out.push_str(&format!(
        "  limits: memory {}, processes {}, open files {}, CPU time {}\n",
        size(l.memory),
        l.processes,
        l.files,
        l.cpu_seconds
            .map_or("unlimited".to_owned(), |s| format!("{s} s"))
    ));
    out.push_str(&format!(
        "  every layer required: {}\n",
        match p.required {
            Some(true) => "yes",
            Some(false) => "no (best effort)",
            None => "the default (yes under serve, best effort under stdio)",
        }
    ));
    out
}

fn sandbox_json(p: &Profile) -> Value {
    let network = match &p.network {
        Network::None => json!("none"),
        Network::Host => json!("host"),
        Network::Allow(list) => {
            json!({ "allow": list.iter().map(ToString::to_string).collect::<Vec<_>>() })
        }
    };
    json!({
        "read": p.read, "write": p.write, "network": network,
        "memory": p.limits.memory, "processes": p.limits.processes,
        "files": p.limits.files, "cpu_seconds": p.limits.cpu_seconds,
        "required": p.required,
    })
}

/// `2G`, `512M`, or bytes.
fn size(bytes: u64) -> String {
    if bytes.is_multiple_of(1 << 30) {
        format!("{}G", bytes >> 30)
    } else if bytes.is_multiple_of(1 << 20) {
        format!("{}M", bytes >> 20)
    } else {
        format!("{bytes} bytes")
    }
}
