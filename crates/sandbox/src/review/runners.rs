//! Package runners (`npx`, `npm exec`, `pnpm dlx`, `yarn dlx`, `bunx`, `uvx`, `uv tool
//! run`, `uv run`, `pipx run`) and container runs (`docker run`, `podman run`): the package
//! or image they fetch, whether it is pinned, and their dangerous options.

use std::path::Path;

use super::command::{Analysis, Target, command, inline_shell, set_target, set_via};
use super::findings::{Severity, push};
use super::package::{Ecosystem, PackageRef};
use super::syntax::{DOCKER, Syntax, UV, scan};

/// `npx`, `pnpm dlx`, `bunx`, `uvx`, `pipx run`: the package and whether it is pinned.
pub(super) fn runner(
    via: &str,
    ecosystem: Ecosystem,
    args: &[String],
    syntax: &Syntax,
    home: Option<&Path>,
    a: &mut Analysis,
    depth: usize,
) {
    set_via(a, via);
    let s = scan(args, syntax);
    let yes = s.has(&["-y", "--yes"]);
    let named: Vec<&str> = s.values(&["-p", "--package", "--from", "--spec"]).collect();
    for extra in s.values(&["--with"]) {
        if !PackageRef::new(ecosystem, extra).pinned {
            push(
                &mut a.findings,
                Severity::Warning,
                format!("the extra package `{extra}` (--with) is not pinned to a version"),
            );
        }
    }
    if named.is_empty()
        && let Some(code) = s
            .values(&["-c", "--call"])
            .next()
            .filter(|_| ecosystem == Ecosystem::Npm)
    {
        return inline_shell(&format!("{via} -c"), code, home, a, depth);
    }
    let spec = if named.is_empty() {
        match s.operand {
            Some(i) => args[i].clone(),
            None => return,
        }
    } else {
        named.join(" ")
    };
    let pinned = if named.is_empty() {
        PackageRef::new(ecosystem, &spec).pinned
    } else {
        named.iter().all(|p| PackageRef::new(ecosystem, p).pinned)
    };
    package_target(
        a,
        PackageRef {
            ecosystem,
            spec,
            pinned,
        },
        yes,
    );
}

/// `uv run [options] <script.py | command …>`.
pub(super) fn uv_run(args: &[String], home: Option<&Path>, a: &mut Analysis, depth: usize) {
    let s = scan(args, &UV);
    for extra in s.values(&["--with"]) {
        if !PackageRef::new(Ecosystem::PyPi, extra).pinned {
            push(
                &mut a.findings,
                Severity::Warning,
                format!("the extra package `{extra}` (--with) is not pinned to a version"),
            );
        }
    }
    let Some(i) = s.operand else { return };
    if args[i].ends_with(".py") {
        set_via(a, "uv run");
        set_target(a, Target::Script(args[i].clone()));
    } else {
        command(&args[i..], home, a, depth + 1);
    }
}

/// `docker run [options] IMAGE [command …]`.
pub(super) fn container(via: &str, args: &[String], a: &mut Analysis) {
    set_via(a, via);
    let s = scan(args, &DOCKER);
    if s.has(&["--privileged"]) {
        push(
            &mut a.findings,
            Severity::Danger,
            "the container is privileged (`--privileged`): it can take over the host",
        );
    }
    for (names, what, severity) in [
        (&["--network", "--net"][..], "network", Severity::Warning),
        (&["--pid"][..], "process namespace", Severity::Danger),
        (&["--ipc"][..], "IPC namespace", Severity::Warning),
        (&["--userns"][..], "user namespace", Severity::Danger),
    ] {
        if s.values(names).any(|v| v == "host") {
            push(
                &mut a.findings,
                severity,
                format!(
                    "the container shares the host's {what} (`{}=host`)",
                    names[0]
                ),
            );
        }
    }
    for cap in s.values(&["--cap-add"]) {
        if matches!(
            cap.to_ascii_uppercase().trim_start_matches("CAP_"),
            "ALL" | "SYS_ADMIN" | "SYS_PTRACE" | "SYS_MODULE" | "NET_ADMIN" | "DAC_READ_SEARCH"
        ) {
            push(
                &mut a.findings,
                Severity::Danger,
                format!("the container gets the capability {cap}"),
            );
        }
    }
    if let Some(i) = s.operand {
        package_target(a, PackageRef::new(Ecosystem::Image, &args[i]), false);
    }
}

/// Sets a package as the target, with a finding when it is not pinned.
pub(super) fn package_target(a: &mut Analysis, package: PackageRef, auto_yes: bool) {
    if !package.pinned {
        let how = match package.ecosystem {
            Ecosystem::Npm | Ecosystem::Jsr => "pkg@1.2.3",
            Ecosystem::PyPi => "pkg==1.2.3",
            Ecosystem::Image => "image@sha256:…",
            Ecosystem::Url => "a URL with @1.2.3 in its path",
        };
        let (severity, what) = if auto_yes {
            (
                Severity::Danger,
                "installs and runs, without asking (`-y`), whatever is newest",
            )
        } else {
            (Severity::Warning, "runs whatever is newest")
        };
        push(
            &mut a.findings,
            severity,
            format!(
                "{} `{}` is not pinned: each launch {what} (pin it: {how})",
                package.ecosystem, package.spec
            ),
        );
    }
    set_target(a, Target::Package(package));
}

#[cfg(test)]
mod tests {
    use super::super::testing::{danger, package, read};
    use super::*;

    #[test]
    fn npm_runners_report_the_package_and_whether_it_is_pinned() {
        let a = read(&[
            "npx",
            "-y",
            "@modelcontextprotocol/server-filesystem@2025.8.21",
            "/srv",
        ]);
        assert_eq!(
            package(&a),
            ("@modelcontextprotocol/server-filesystem@2025.8.21", true)
        );
        assert!(a.findings.is_empty(), "{:?}", a.findings);

        let a = read(&[
            "npx",
            "-y",
            "@modelcontextprotocol/server-filesystem",
            "/srv",
        ]);
        assert_eq!(
            package(&a),
            ("@modelcontextprotocol/server-filesystem", false)
        );
        assert!(danger(&a, "without asking"), "{:?}", a.findings);

        let a = read(&["npx", "server-x"]);
        assert_eq!(package(&a), ("server-x", false));
        assert!(
            a.findings
                .iter()
                .any(|f| f.severity == Severity::Warning && f.message.contains("not pinned"))
        );

        let a = read(&["npx", "--package=pkg@1.0.0", "pkg-bin"]);
        assert_eq!(package(&a), ("pkg@1.0.0", true));
        assert_eq!(
            package(&read(&["npm", "exec", "--", "pkg@2.0.0"])),
            ("pkg@2.0.0", true)
        );
        assert_eq!(
            package(&read(&["pnpm", "dlx", "pkg@latest"])),
            ("pkg@latest", false)
        );
        assert_eq!(package(&read(&["bunx", "pkg@3.1.4"])), ("pkg@3.1.4", true));
        assert_eq!(package(&read(&["bun", "x", "pkg"])), ("pkg", false));
    }

    #[test]
    fn python_runners_report_the_package_and_whether_it_is_pinned() {
        assert_eq!(
            package(&read(&["uvx", "mcp-server-fetch"])),
            ("mcp-server-fetch", false)
        );
        assert_eq!(
            package(&read(&["uvx", "mcp-server-fetch==0.6.2"])),
            ("mcp-server-fetch==0.6.2", true)
        );
        assert_eq!(
            package(&read(&[
                "uvx",
                "--from",
                "mcp-server-fetch==0.6.2",
                "mcp-server-fetch"
            ])),
            ("mcp-server-fetch==0.6.2", true)
        );
        assert_eq!(
            package(&read(&[
                "uv",
                "tool",
                "run",
                "--python",
                "3.12",
                "pkg@1.2.3"
            ])),
            ("pkg@1.2.3", true)
        );
        assert_eq!(
            package(&read(&["pipx", "run", "--spec", "pkg==1.0", "pkg"])),
            ("pkg==1.0", true)
        );
        let a = read(&["uvx", "--with", "requests", "pkg==1.0"]);
        assert!(
            a.findings
                .iter()
                .any(|f| f.message.contains("`requests` (--with)"))
        );
        let a = read(&["uv", "run", "--with", "mcp==1.2.0", "python", "srv.py"]);
        assert_eq!(a.target, Target::Script("srv.py".into()));
    }

    #[test]
    fn containers_report_the_image_and_dangerous_options() {
        let a = read(&["docker", "run", "-i", "--rm", "-e", "TOKEN", "mcp/fetch"]);
        assert_eq!(package(&a), ("mcp/fetch", false));
        assert_eq!(a.via.as_deref(), Some("docker run"));
        let image = format!("mcp/fetch@sha256:{}", "0f".repeat(32));
        let a = read(&["podman", "run", "-it", "--network=host", &image]);
        assert!(package(&a).1);
        assert!(
            a.findings
                .iter()
                .any(|f| f.message.contains("host's network"))
        );
        let a = read(&[
            "docker",
            "run",
            "--privileged",
            "-v",
            "/:/host",
            "--pid",
            "host",
            "img@sha256:x",
        ]);
        assert!(danger(&a, "privileged"));
        assert!(danger(&a, "process namespace"));
        assert!(danger(&a, "root directory"), "{:?}", a.findings);
    }
}
