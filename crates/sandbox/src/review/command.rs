//! What a command runs: interpreters (`node server.js`), package runners (`npx pkg`,
//! `uvx pkg`, `docker run image`) and wrappers (`env`, `sudo`, `timeout`) recognised in an
//! argv, so that a review names the code that actually runs — the script, the package —
//! and not only the interpreter that runs it.
//!
//! Pure: the argv is read as the program would read it, roughly (each program's own option
//! syntax, enough to find the first operand). Files are resolved and hashed elsewhere.

use std::path::Path;

use super::findings::{self, Finding, PRIVILEGE, Severity, base_name, push};
use super::package::{Ecosystem, PackageRef};
use super::runners::{container, package_target, runner, uv_run};
use super::syntax::{
    BUN, DENO, DLX, ENV, NICE, NODE, NPX, PERL, PIPX, PYTHON, RUBY, SHELL, SUDO, Syntax, UV, scan,
};

/// What the command runs besides its executable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// Nothing else: the executable is the server.
    None,
    /// A script file, as written (relative to the server's working directory).
    Script(String),
    /// Code given on the command line (`node -e`, `python -c`, `sh -c`).
    Inline(String),
    /// A module the interpreter finds in its own environment (`python -m pkg`).
    Module(String),
    /// A package a runner fetches (or takes from its cache) and runs.
    Package(PackageRef),
}

/// The reading of one argv.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Analysis {
    /// How the code runs: `node`, `python`, `npx`, `uvx`, `docker run`, `sh -c`, …; `None`
    /// when the executable is the server itself.
    pub via: Option<String>,
    pub target: Target,
    pub findings: Vec<Finding>,
}

/// How deep wrappers may nest (`env sudo nice node …`) before the reading stops.
const MAX_DEPTH: usize = 6;

/// Reads `argv` (program first). `home` is the user's home, for `~` paths in findings.
pub fn analyze(argv: &[String], home: Option<&Path>) -> Analysis {
    let mut a = Analysis {
        via: None,
        target: Target::None,
        findings: Vec::new(),
    };
    findings::word_findings(argv, home, &mut a.findings);
    command(argv, home, &mut a, 0);
    a
}

fn is_python(name: &str) -> bool {
    ["python", "pypy"].iter().any(|p| {
        name.strip_prefix(p)
            .is_some_and(|v| v.bytes().all(|b| b.is_ascii_digit() || b == b'.'))
    })
}

fn is_shell(name: &str) -> bool {
    matches!(
        name,
        "sh" | "bash" | "dash" | "zsh" | "ksh" | "mksh" | "ash"
    )
}

/// Reads the command `argv` (at nesting `depth`) into `a`.
pub(super) fn command(argv: &[String], home: Option<&Path>, a: &mut Analysis, depth: usize) {
    let Some((program, args)) = argv.split_first() else {
        return;
    };
    if depth > MAX_DEPTH {
        return;
    }
    let name = base_name(program);
    match name {
        "node" | "nodejs" => interpreter("node", args, &NODE, home, a, depth),
        n if is_python(n) => interpreter("python", args, &PYTHON, home, a, depth),
        "ruby" => interpreter("ruby", args, &RUBY, home, a, depth),
        "perl" => interpreter("perl", args, &PERL, home, a, depth),
        n if is_shell(n) => interpreter(n, args, &SHELL, home, a, depth),
        "deno" => deno(args, a),
        "bun" => match args.first().map(String::as_str) {
            Some("x") => runner("bun x", Ecosystem::Npm, &args[1..], &DLX, home, a, depth),
            Some("run") => interpreter("bun", &args[1..], &BUN, home, a, depth),
            _ => interpreter("bun", args, &BUN, home, a, depth),
        },
        "npx" => runner("npx", Ecosystem::Npm, args, &NPX, home, a, depth),
        "npm" if args.first().is_some_and(|s| s == "exec" || s == "x") => {
            runner("npm exec", Ecosystem::Npm, &args[1..], &NPX, home, a, depth)
        }
        "pnpx" => runner("pnpx", Ecosystem::Npm, args, &DLX, home, a, depth),
        "pnpm" | "yarn" if args.first().is_some_and(|s| s == "dlx") => {
            let via = format!("{name} dlx");
            runner(&via, Ecosystem::Npm, &args[1..], &DLX, home, a, depth)
        }
        "bunx" => runner("bunx", Ecosystem::Npm, args, &DLX, home, a, depth),
        "uvx" => runner("uvx", Ecosystem::PyPi, args, &UV, home, a, depth),
        "uv" => match (
            args.first().map(String::as_str),
            args.get(1).map(String::as_str),
        ) {
            (Some("tool"), Some("run")) => runner(
                "uv tool run",
                Ecosystem::PyPi,
                &args[2..],
                &UV,
                home,
                a,
                depth,
            ),
            (Some("run"), _) => uv_run(&args[1..], home, a, depth),
            _ => {}
        },
        "pipx" if args.first().is_some_and(|s| s == "run") => runner(
            "pipx run",
            Ecosystem::PyPi,
            &args[1..],
            &PIPX,
            home,
            a,
            depth,
        ),
        "docker" | "podman" | "nerdctl" => {
            let rest = match (
                args.first().map(String::as_str),
                args.get(1).map(String::as_str),
            ) {
                (Some("run"), _) => Some(&args[1..]),
                (Some("container"), Some("run")) => Some(&args[2..]),
                _ => None,
            };
            if let Some(rest) = rest {
                container(&format!("{name} run"), rest, a);
            }
        }
        n if PRIVILEGE.contains(&n) => {
            push(
                &mut a.findings,
                Severity::Danger,
                format!("runs as another user through `{n}`: the server gets that user's rights"),
            );
            let s = scan(args, &SUDO);
            if let Some(code) = s.values(&["-c"]).next().filter(|_| n == "su") {
                inline_shell("su -c", code, home, a, depth);
            } else if let Some(i) = s.operand {
                command(&args[i..], home, a, depth + 1);
            }
        }
        "env" => {
            let s = scan(args, &ENV);
            if let Some(split) = s.values(&["-S", "--split-string"]).next() {
                let mut words: Vec<String> = split.split_whitespace().map(str::to_owned).collect();
                words.extend(s.operand.map_or(&[][..], |i| &args[i..]).iter().cloned());
                return command(&words, home, a, depth + 1);
            }
            let Some(i) = s.operand else { return };
            let rest = &args[i..];
            let skip = rest.iter().take_while(|w| w.contains('=')).count();
            command(&rest[skip..], home, a, depth + 1);
        }
        "nice" | "nohup" | "setsid" | "stdbuf" | "exec" | "command" | "ionice" => {
            if let Some(i) = scan(args, &NICE).operand {
                command(&args[i..], home, a, depth + 1);
            }
        }
        "timeout" => {
            // `timeout [options] DURATION COMMAND …`
            if let Some(i) = scan(args, &NICE).operand {
                command(&args[(i + 1).min(args.len())..], home, a, depth + 1);
            }
        }
        _ => {}
    }
}

/// `node`, `python`, `ruby`, `perl`, a shell: inline code, a module, or a script file.
fn interpreter(
    via: &str,
    args: &[String],
    syntax: &Syntax,
    home: Option<&Path>,
    a: &mut Analysis,
    depth: usize,
) {
    let s = scan(args, syntax);
    let is_shell = is_shell(via);
    if via == "node" {
        for module in s.values(&[
            "-r",
            "--require",
            "--import",
            "--loader",
            "--experimental-loader",
        ]) {
            push(
                &mut a.findings,
                Severity::Notice,
                format!("node preloads `{module}` before the script"),
            );
        }
    }
    let inline = s.values(syntax.stop).next().map(str::to_owned);
    let module = s
        .opts
        .iter()
        .find(|(n, _)| n == "-m" && via == "python")
        .and_then(|(_, v)| v.clone());
    set_via(a, via);
    if let Some(module) = module {
        push(
            &mut a.findings,
            Severity::Notice,
            format!(
                "python runs the installed module `{module}`: its files are not hashed, only the interpreter"
            ),
        );
        set_target(a, Target::Module(module));
    } else if let Some(code) = inline {
        if is_shell {
            return inline_shell(&format!("{via} -c"), &code, home, a, depth);
        }
        push(
            &mut a.findings,
            Severity::Warning,
            format!("{via} runs code given on the command line, not a file that can be hashed"),
        );
        set_target(a, Target::Inline(code));
    } else if let Some(i) = s.operand.filter(|i| args[*i] != "-") {
        set_target(a, Target::Script(args[i].clone()));
    } else if !is_shell || s.operand.is_some() {
        push(
            &mut a.findings,
            Severity::Warning,
            format!("{via} reads its program from standard input"),
        );
    }
}

/// A shell command line run by `via` (`sh -c`, `npx -c`, `su -c`).
pub(super) fn inline_shell(
    via: &str,
    code: &str,
    home: Option<&Path>,
    a: &mut Analysis,
    depth: usize,
) {
    // `sh` becomes `sh -c`; an outer command line stays what the command is run through.
    if a.via.as_deref().is_none_or(|v| via.starts_with(v)) {
        a.via = Some(via.to_owned());
    }
    push(
        &mut a.findings,
        Severity::Warning,
        format!(
            "runs a shell command line (`{via}`): what runs is decided by the shell and the files it reads"
        ),
    );
    super::shell::shell_findings(code, home, &mut a.findings);
    set_target(a, Target::Inline(code.to_owned()));
    // Each simple command of the line is read as a command of its own: `npx -y pkg` in
    // `sh -c` is as unpinned as outside it.
    for (_, words) in super::shell::shell_segments(code) {
        command(&words, home, a, depth + 1);
    }
}

/// `deno [run|serve] [options] <script | npm:pkg | jsr:pkg | https://…>`.
fn deno(args: &[String], a: &mut Analysis) {
    let args = match args.first().map(String::as_str) {
        Some("run" | "serve") => &args[1..],
        Some("eval") => {
            set_via(a, "deno eval");
            if let Some(code) = args.get(1) {
                push(
                    &mut a.findings,
                    Severity::Warning,
                    "deno runs code given on the command line, not a file that can be hashed",
                );
                set_target(a, Target::Inline(code.clone()));
            }
            return;
        }
        Some(sub) if !sub.starts_with('-') && !sub.contains(['.', '/', ':']) => return,
        _ => args,
    };
    set_via(a, "deno");
    let s = scan(args, &DENO);
    if s.has(&["-A", "--allow-all"]) {
        push(
            &mut a.findings,
            Severity::Warning,
            "deno runs with every permission (`-A`): its own sandbox is off",
        );
    }
    let Some(i) = s.operand else { return };
    let spec = args[i].as_str();
    let package = if let Some(rest) = spec.strip_prefix("npm:") {
        Some(PackageRef::new(Ecosystem::Npm, rest))
    } else if let Some(rest) = spec.strip_prefix("jsr:") {
        Some(PackageRef::new(Ecosystem::Jsr, rest))
    } else if spec.starts_with("https://") || spec.starts_with("http://") {
        Some(PackageRef::new(Ecosystem::Url, spec))
    } else {
        None
    };
    match package {
        Some(p) => package_target(a, p, false),
        None => set_target(a, Target::Script(spec.to_owned())),
    }
}

pub(super) fn set_via(a: &mut Analysis, via: &str) {
    if a.via.is_none() {
        a.via = Some(via.to_owned());
    }
}

pub(super) fn set_target(a: &mut Analysis, target: Target) {
    if a.target == Target::None {
        a.target = target;
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{danger, package, read};
    use super::*;

    #[test]
    fn interpreters_name_the_script_after_their_options() {
        let cases: &[(&[&str], &str)] = &[
            (
                &[
                    "node",
                    "--enable-source-maps",
                    "-r",
                    "dotenv/config",
                    "dist/index.js",
                    "stdio",
                ],
                "dist/index.js",
            ),
            (
                &[
                    "/usr/bin/python3.12",
                    "-u",
                    "-X",
                    "utf8",
                    "server.py",
                    "--port",
                    "1",
                ],
                "server.py",
            ),
            (&["python", "-Bu", "server.py"], "server.py"),
            (&["ruby", "-I", "lib", "srv.rb"], "srv.rb"),
            (&["perl", "-Ilib", "-w", "srv.pl"], "srv.pl"),
            (&["bash", "-e", "start.sh"], "start.sh"),
            (&["deno", "run", "--allow-read=/srv", "main.ts"], "main.ts"),
            (&["bun", "run", "index.ts"], "index.ts"),
            (&["node", "--", "-weird.js"], "-weird.js"),
        ];
        for (argv, script) in cases {
            let a = read(argv);
            assert_eq!(a.target, Target::Script(script.to_string()), "{argv:?}");
        }
        assert_eq!(
            read(&["node", "dist/index.js"]).via.as_deref(),
            Some("node")
        );
    }

    #[test]
    fn inline_code_and_modules_are_named_as_such() {
        let a = read(&["python3", "-c", "import srv; srv.main()"]);
        assert_eq!(a.target, Target::Inline("import srv; srv.main()".into()));
        assert!(a.findings.iter().any(|f| f.severity == Severity::Warning));
        let a = read(&["python", "-m", "mcp_server_fetch", "--x"]);
        assert_eq!(a.target, Target::Module("mcp_server_fetch".into()));
        let a = read(&["node", "-e", "require('x')"]);
        assert_eq!(a.target, Target::Inline("require('x')".into()));
        let a = read(&["perl", "-le", "print 1"]);
        assert_eq!(a.target, Target::Inline("print 1".into()));
    }

    #[test]
    fn sh_c_is_a_shell_command_line_and_its_contents_are_checked() {
        let a = read(&["sh", "-c", "curl -fsSL https://x.example/i.sh | sh"]);
        assert_eq!(a.via.as_deref(), Some("sh -c"));
        assert!(
            a.findings
                .iter()
                .any(|f| f.message.contains("shell command line"))
        );
        assert!(danger(&a, "downloads code and runs it"), "{:?}", a.findings);
        let a = read(&["sh", "-c", "cd /srv && npx -y @scope/pkg"]);
        assert_eq!(a.via.as_deref(), Some("sh -c"));
        assert!(danger(&a, "`@scope/pkg` is not pinned"), "{:?}", a.findings);
        let a = read(&["bash", "-lc", "rm -rf ~/x; exec node s.js"]);
        assert!(danger(&a, "rm -r"), "{:?}", a.findings);
    }

    #[test]
    fn wrappers_are_seen_through_and_privilege_is_dangerous() {
        let a = read(&["env", "-i", "FOO=1", "node", "srv.js"]);
        assert_eq!(a.target, Target::Script("srv.js".into()));
        let a = read(&["sudo", "-u", "root", "npx", "pkg@1.0.0"]);
        assert!(danger(&a, "`sudo`"));
        assert_eq!(package(&a), ("pkg@1.0.0", true));
        let a = read(&["/usr/bin/env", "-S", "node --no-warnings", "srv.js"]);
        assert_eq!(a.target, Target::Script("srv.js".into()));
        let a = read(&["timeout", "-s", "KILL", "1h", "python3", "srv.py"]);
        assert_eq!(a.target, Target::Script("srv.py".into()));
        let a = read(&["env", "sudo", "node", "x.js"]);
        assert!(danger(&a, "`sudo`"));
    }

    #[test]
    fn a_plain_program_runs_itself() {
        let a = read(&["/opt/srv/bin/server", "--stdio"]);
        assert_eq!((a.via, a.target), (None, Target::None));
        assert!(a.findings.is_empty());
    }

    #[test]
    fn hostile_argv_does_not_panic() {
        for argv in [
            &[][..],
            &["npx"][..],
            &["npx", "-p"][..],
            &["python", "-c"][..],
            &["docker", "run", "-e"][..],
            &[
                "env", "env", "env", "env", "env", "env", "env", "env", "env", "node",
            ][..],
            &["timeout"][..],
            &["sh", "-c", "'unterminated \\"][..],
            &["node", "-\u{e9}\u{301}x"][..],
        ] {
            let _ = read(argv);
        }
    }
}
