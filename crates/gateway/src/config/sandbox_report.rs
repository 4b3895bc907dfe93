//! `portcullis check`'s sandbox section: what this kernel lets the sandbox do, then for each
//! local (stdio) server the layers it gets, what is bound into its root and whether it
//! would start.
//!
//! Every fact shown comes from the calls a launch makes — the kernel probe
//! ([`support`]), [`layers`], and [`Confinement::plan`] (which resolves the program and
//! plans the binds) — so the report cannot drift from what the gateway does. A kernel
//! without namespaces, Landlock or seccomp is reported, not an error: `check` still passes
//! and says which servers would be refused.

use std::fmt::Write as _;

use portcullis_sandbox::linux::seccomp::REFUSED;
use portcullis_sandbox::{Bind, Layer, LayerState, Profile, Support, layers, support};

use super::{Config, RunMode, ServerConfig, StdioUpstream, Upstream};
use crate::upstream::confine::Confinement;
use crate::upstream::slot::{child_env, resolve_program};

/// Lines are wrapped at this width (the seccomp list).
const WIDTH: usize = 96;

/// The whole section, starting with a blank line.
pub(crate) fn section(config: &Config) -> String {
    let mut out = String::from("\nSandbox of local servers\n");
    let support = support();
    kernel(&mut out, support);
    let mut stdio_servers = 0;
    for server in config.servers.values() {
        if let Upstream::Stdio(stdio) = &server.upstream {
            stdio_servers += 1;
            server_report(&mut out, server, stdio, config.run_mode);
        }
    }
    if stdio_servers == 0 {
        out.push_str("\n  No local (stdio) servers are configured.\n");
    }
    out
}

/// What this kernel supports, layer by layer, and as whom the gateway runs.
fn kernel(out: &mut String, s: &Support) {
    out.push_str("  this kernel:\n");
    let namespaces = match &s.namespaces {
        Ok(()) => "available: user, mount, PID, IPC, UTS and network namespaces".to_owned(),
        Err(why) => format!("not available: {why}"),
    };
    row(out, "namespaces", &namespaces);
    let landlock = match s.landlock_abi {
        None => "not available: Landlock is not enabled in this kernel (see `lsm=` on the kernel command line)".to_owned(),
        Some(abi) => landlock_coverage(abi),
    };
    row(out, "landlock", &landlock);
    if s.seccomp {
        let refused = format!("available; refuses {}", REFUSED.join(", "));
        let mut lines = wrap(&refused, WIDTH - 18).into_iter();
        row(out, "seccomp", &lines.next().unwrap_or_default());
        for line in lines {
            row(out, "", &line);
        }
    } else {
        row(
            out,
            "seccomp",
            "not available: no seccomp filters that answer with an errno",
        );
    }
    let processes = match (&s.pids_cgroup, s.root) {
        (Some(dir), _) => format!("a pids cgroup per server, under {}", dir.display()),
        (None, false) => "RLIMIT_NPROC, which the kernel counts per user namespace".to_owned(),
        (None, true) => "not limited: RLIMIT_NPROC does not apply to root, and no pids cgroup is writable (/sys/fs/cgroup/pids)".to_owned(),
    };
    row(out, "processes", &processes);
    let uid = nix::unistd::geteuid().as_raw();
    let user = match (s.root, s.namespaces.is_ok()) {
        (true, true) => "root; a server runs as uid 1000 in its user namespace (never 0), so it holds no capability".to_owned(),
        (true, false) => "root, without user namespaces: a server started without them runs as root".to_owned(),
        (false, true) => format!("uid {uid}; a server keeps that uid in its user namespace (never 0)"),
        (false, false) => format!("uid {uid}; a server runs as that user"),
    };
    row(out, "user", &user);
    if s.namespaces.is_err() || s.landlock_abi.is_none() || !s.seccomp {
        out.push_str(
            "  This kernel cannot enforce every layer. The check still passes: a server whose\n  sandbox is required (the default under `serve`) will not start, and says why; see each\n  server's verdict below.\n",
        );
    }
}

/// What each Landlock ABI adds, and what this one lacks.
fn landlock_coverage(abi: u32) -> String {
    const BY_ABI: [(u32, &str); 6] = [
        (1, "files and directories"),
        (2, "renames and links between directories"),
        (3, "truncation"),
        (4, "TCP bind and connect by port"),
        (5, "device ioctls"),
        (6, "signals and abstract Unix sockets leaving the sandbox"),
    ];
    let has: Vec<&str> = BY_ABI
        .iter()
        .filter(|(v, _)| *v <= abi)
        .map(|(_, w)| *w)
        .collect();
    let lacks: Vec<&str> = BY_ABI
        .iter()
        .filter(|(v, _)| *v > abi)
        .map(|(_, w)| *w)
        .collect();
    let mut text = format!("ABI {abi}: {}", has.join(", "));
    if !lacks.is_empty() {
        let _ = write!(text, "; not: {}", lacks.join(", "));
    }
    text
}

/// One server: off, or its layers, binds and verdict.
fn server_report(out: &mut String, server: &ServerConfig, stdio: &StdioUpstream, mode: RunMode) {
    let name = &server.name;
    let Some(profile) = &stdio.sandbox else {
        let _ = writeln!(
            out,
            "\n  server \"{name}\": off (sandbox = \"off\"): it runs with every right of the gateway's user"
        );
        return;
    };
    let _ = writeln!(
        out,
        "\n  server \"{name}\": {}",
        required_text(profile, mode)
    );
    let real = plan(server, stdio, mode, profile);
    // A refused plan has no binds to show; the same plan without `required` has them
    // whenever the refusal was only about layers this kernel lacks.
    let shown = match &real {
        Confinement::Refused(_) => {
            let relaxed = Profile {
                required: Some(false),
                ..profile.clone()
            };
            plan(server, stdio, mode, &relaxed)
        }
        other => other.clone(),
    };
    let layers = match &shown {
        Confinement::Sandboxed { program, sandbox } => {
            let _ = writeln!(out, "    program: {}", program.display());
            sandbox.layers().to_vec()
        }
        _ => layers(profile, support()),
    };
    out.push_str("    layers:\n");
    layer_rows(out, &layers);
    match &shown {
        Confinement::Sandboxed { sandbox, .. } => {
            out.push_str(bound_heading(&layers));
            bind_rows(out, sandbox.binds());
        }
        _ => {
            out.push_str("    bound: not known until the launch can be planned (see the verdict)\n")
        }
    }
    let _ = writeln!(
        out,
        "    verdict: {}",
        verdict(&real, &shown, &layers, profile)
    );
}

fn plan(
    server: &ServerConfig,
    stdio: &StdioUpstream,
    mode: RunMode,
    profile: &Profile,
) -> Confinement {
    let Some(program) = stdio.command.first() else {
        return Confinement::Refused("its command is empty".into());
    };
    let program = match resolve_program(program) {
        Ok(p) => p,
        Err(e) => return Confinement::Refused(e),
    };
    let env = child_env(&stdio.env.pass, &stdio.env.set);
    let stdio = StdioUpstream {
        sandbox: Some(profile.clone()),
        ..stdio.clone()
    };
    Confinement::plan(server, &stdio, &program, &env, mode)
}

fn required_text(profile: &Profile, mode: RunMode) -> &'static str {
    match (profile.required, mode) {
        (Some(true), _) => "sandboxed; every layer required (sandbox.required = true)",
        (Some(false), _) => "sandboxed; best effort (sandbox.required = false)",
        (None, RunMode::Serve) => {
            "sandboxed; every layer required (the default under `serve`; `portcullis stdio` runs with the layers there are)"
        }
        (None, RunMode::Stdio) => "sandboxed; best effort (the default under `stdio`)",
    }
}

fn state_word(state: LayerState) -> &'static str {
    match state {
        LayerState::Enforced => "enforced",
        LayerState::Partial => "partial",
        LayerState::Missing => "missing",
        LayerState::Off => "off",
    }
}

fn layer_rows(out: &mut String, layers: &[Layer]) {
    let width = layers.iter().map(|l| l.name.len()).max().unwrap_or(0);
    for l in layers {
        let _ = writeln!(
            out,
            "      {:<width$}  {:<8}  {}",
            l.name,
            state_word(l.state),
            l.detail
        );
    }
}

/// What the bind list means on this kernel: a private root holding only these, Landlock
/// rules on the host's own tree, or nothing at all.
fn bound_heading(layers: &[Layer]) -> &'static str {
    let holds = |name: &str| {
        layers
            .iter()
            .any(|l| l.name == name && l.state != LayerState::Missing)
    };
    if holds("filesystem") {
        "    bound (nothing else of the host; /tmp, /dev and /proc are its own):\n"
    } else if holds("landlock") {
        "    reachable (Landlock rules on the host's own tree: no private root without a mount namespace):\n"
    } else {
        "    would be bound, but nothing confines its files on this kernel:\n"
    }
}

/// The binds: the read-only system paths on a few wrapped lines (they are the same for
/// every server), then each other path with its access and why it is there.
fn bind_rows(out: &mut String, binds: &[Bind]) {
    let (system, own): (Vec<&Bind>, Vec<&Bind>) = binds
        .iter()
        .partition(|b| b.reason == "system" && !b.writable);
    if !system.is_empty() {
        let paths: Vec<String> = system
            .iter()
            .map(|b| b.path.display().to_string())
            .collect();
        let label = "system, read-only: ";
        for (i, line) in wrap(&paths.join(", "), WIDTH - 6 - label.len())
            .iter()
            .enumerate()
        {
            let lead = if i == 0 { label } else { "" };
            let _ = writeln!(out, "      {lead:<w$}{line}", w = label.len());
        }
    }
    let width = own
        .iter()
        .map(|b| b.path.display().to_string().chars().count())
        .max()
        .unwrap_or(0);
    for b in own {
        let access = if b.writable {
            "read-write"
        } else {
            "read-only"
        };
        let path = b.path.display().to_string();
        let _ = writeln!(out, "      {path:<width$}  {access:<10}  {}", b.reason);
    }
}

/// Whether the server starts, and with what.
fn verdict(real: &Confinement, shown: &Confinement, layers: &[Layer], profile: &Profile) -> String {
    let named = |state: LayerState| -> Vec<&str> {
        layers
            .iter()
            .filter(|l| l.state == state)
            .map(|l| l.name)
            .collect()
    };
    let (missing, partial) = (named(LayerState::Missing), named(LayerState::Partial));
    match real {
        Confinement::Refused(why) => {
            let mut text = format!("refused: {why}");
            if profile.required.is_none() && matches!(shown, Confinement::Sandboxed { .. }) {
                text.push_str("; `portcullis stdio` would start it without the missing layers");
            }
            text
        }
        Confinement::Off => "starts without a sandbox".to_owned(),
        Confinement::Sandboxed { .. } if !missing.is_empty() => format!(
            "starts WITHOUT {} (its sandbox is best effort)",
            missing.join(", ")
        ),
        Confinement::Sandboxed { .. } if !partial.is_empty() => format!(
            "starts; every layer holds, {} only in part",
            partial.join(", ")
        ),
        Confinement::Sandboxed { .. } => "starts with every layer enforced".to_owned(),
    }
}

/// A table cell of the kernel part: a name column and its text.
fn row(out: &mut String, name: &str, text: &str) {
    let _ = writeln!(out, "    {name:<12}  {text}");
}

/// Splits `text` into lines of at most `width` characters, at spaces.
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in text.split(' ') {
        if !line.is_empty() && line.chars().count() + 1 + word.chars().count() > width {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.is_empty() {
        lines.push(line);
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn landlock_coverage_names_what_an_old_abi_lacks() {
        let text = landlock_coverage(3);
        assert!(text.starts_with("ABI 3: files and directories"), "{text}");
        assert!(
            text.contains("; not: TCP bind and connect by port"),
            "{text}"
        );
        assert!(!landlock_coverage(6).contains("not:"));
    }

    #[test]
    fn wrapping_keeps_every_word_and_the_width() {
        let text = "a bb ccc dddd eeeee ffffff";
        let lines = wrap(text, 9);
        assert!(lines.iter().all(|l| l.chars().count() <= 9), "{lines:?}");
        assert_eq!(lines.join(" "), text);
    }
}
