//! Dangerous patterns in a launch: what a person approving it should look at twice.
//!
//! Pure functions over text: the argv, a shell command line given to `sh -c`, environment
//! variable names, the sandbox profile. They cannot prove a command safe; they point at the
//! patterns that turn a local server into a way in (privilege, code fetched and run
//! unseen, credentials in reach, destruction).

use std::fmt;
use std::path::{Component, Path, PathBuf};

use crate::profile::{Network, Profile};

/// How much a finding matters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    /// Worth knowing (e.g. a preloaded module).
    Notice,
    /// Loosens what the launch guarantees (an unpinned package, a shell in between).
    Warning,
    /// Gives the server, or whoever controls its inputs, much more than an MCP server needs.
    Danger,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Notice => "notice",
            Severity::Warning => "warning",
            Severity::Danger => "danger",
        }
    }
}

/// One dangerous pattern, in words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub severity: Severity,
    pub message: String,
}

impl Finding {
    pub fn new(severity: Severity, message: impl Into<String>) -> Finding {
        Finding {
            severity,
            message: message.into(),
        }
    }
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.severity.as_str(), self.message)
    }
}

/// Programs that run their arguments as another (usually more privileged) user.
pub(crate) const PRIVILEGE: &[&str] = &["sudo", "doas", "su", "pkexec", "runuser"];

/// Programs that run code they are given as a string or on stdin.
const CODE_RUNNERS: &[&str] = &[
    "sh", "bash", "dash", "zsh", "ksh", "mksh", "ash", "fish", "python", "python3", "perl", "ruby",
    "node", "deno", "bun", "php",
];

/// Programs that fetch from the network.
pub(crate) const FETCHERS: &[&str] = &["curl", "wget", "fetch", "aria2c", "http", "iwr"];

/// Home-relative places holding credentials: reaching them is reaching the user's keys.
const SECRET_HOME_DIRS: &[&str] = &[
    ".ssh",
    ".aws",
    ".gnupg",
    ".kube",
    ".docker",
    ".netrc",
    ".password-store",
    ".azure",
    ".config/gcloud",
    ".git-credentials",
    ".npmrc",
    ".pypirc",
];

/// System places holding credentials or control of the machine.
const SECRET_SYSTEM_PATHS: &[&str] = &[
    "/root",
    "/etc/shadow",
    "/etc/gshadow",
    "/etc/sudoers",
    "/etc/ssh",
    "/var/run/docker.sock",
    "/run/docker.sock",
    "/proc/1",
];

/// Directories of the system itself, with everything under them: a server writing there
/// can change what every user runs.
const SYSTEM_TREES: &[&str] = &[
    "/bin", "/boot", "/dev", "/etc", "/lib", "/lib32", "/lib64", "/proc", "/root", "/sbin", "/sys",
    "/usr",
];

/// Directories that are the system's as a whole, though places under them may be a
/// server's own (`/var/lib/app`, `/opt/app`).
const SYSTEM_ROOTS: &[&str] = &["/", "/home", "/opt", "/var"];

/// Environment variables that change what code an interpreter or the loader runs.
const CODE_ENV: &[&str] = &[
    "LD_PRELOAD",
    "LD_LIBRARY_PATH",
    "LD_AUDIT",
    "NODE_OPTIONS",
    "NODE_PATH",
    "PYTHONPATH",
    "PYTHONSTARTUP",
    "PYTHONHOME",
    "PERL5OPT",
    "PERL5LIB",
    "RUBYOPT",
    "RUBYLIB",
    "BASH_ENV",
    "ENV",
    "DENO_DIR",
    "NPM_CONFIG_REGISTRY",
    "UV_INDEX_URL",
    "PIP_INDEX_URL",
];

/// The file name of `program` (`/usr/bin/sudo` → `sudo`).
pub(crate) fn base_name(program: &str) -> &str {
    program.rsplit('/').next().unwrap_or(program)
}

/// Whether `name` is a code runner, counting versioned names (`python3.12`).
pub(crate) fn is_code_runner(name: &str) -> bool {
    let trimmed = name.trim_end_matches(|c: char| c.is_ascii_digit() || c == '.');
    CODE_RUNNERS.contains(&name) || CODE_RUNNERS.contains(&trimmed)
}

/// Findings about words of a command: a privilege wrapper, a recursive `rm`, credentials or
/// system paths named as arguments.
pub(crate) fn word_findings(words: &[String], home: Option<&Path>, out: &mut Vec<Finding>) {
    if let Some(first) = words.first() {
        let name = base_name(first);
        if PRIVILEGE.contains(&name) {
            push(
                out,
                Severity::Danger,
                format!(
                    "runs as another user through `{name}`: the server gets that user's rights"
                ),
            );
        }
        if name == "rm" && words[1..].iter().any(|w| recursive_flag(w)) {
            push(
                out,
                Severity::Danger,
                "deletes files recursively (`rm -r`/`rm -rf`)",
            );
        }
    }
    for word in words {
        for candidate in path_candidates(word) {
            path_finding(candidate, home, out);
        }
    }
}

fn recursive_flag(word: &str) -> bool {
    word == "--recursive"
        || (word.starts_with('-') && !word.starts_with("--") && word[1..].contains(['r', 'R']))
}

/// The parts of an argument that may be paths: the whole word, and its pieces between
/// `=`, `:` and `,` (`--key=/x`, volume mounts `src:dst`, `--mount type=bind,source=/x`).
/// A URL is one piece.
fn path_candidates(word: &str) -> Vec<&str> {
    let mut out = vec![word];
    if !word.contains("://") {
        out.extend(word.split(['=', ':', ',']).filter(|p| *p != word));
    }
    out
}

/// `~/x`, `$HOME/x`, `${HOME}/x` and absolute paths, made absolute and normalized
/// lexically (`/home/u/../u/.ssh` is `~/.ssh`). Anything else (a relative path, a word) is
/// `None`.
pub(crate) fn absolute(word: &str, home: Option<&Path>) -> Option<PathBuf> {
    let word = word.trim_matches(|c| c == '"' || c == '\'');
    let rest = ["~/", "$HOME/", "${HOME}/"]
        .iter()
        .find_map(|prefix| word.strip_prefix(prefix));
    let path = match rest {
        Some(rest) => home?.join(rest),
        None if matches!(word, "~" | "$HOME" | "${HOME}") => home?.to_path_buf(),
        None if word.starts_with('/') => PathBuf::from(word),
        None => return None,
    };
    let mut normal = PathBuf::from("/");
    for part in path.components() {
        match part {
            Component::ParentDir => {
                normal.pop();
            }
            Component::Normal(p) => normal.push(p),
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    Some(normal)
}

/// A finding for one path named in the command, if it is a sensitive place.
fn path_finding(word: &str, home: Option<&Path>, out: &mut Vec<Finding>) {
    let Some(path) = absolute(word, home) else {
        return;
    };
    if let Some(home) = home {
        for dir in SECRET_HOME_DIRS {
            if path.starts_with(home.join(dir)) {
                push(
                    out,
                    Severity::Danger,
                    format!("names {} (~/{dir}): credentials live there", path.display()),
                );
                return;
            }
        }
        if path.starts_with(home.join(".config")) {
            push(
                out,
                Severity::Warning,
                format!(
                    "names {} (under ~/.config): applications keep tokens there",
                    path.display()
                ),
            );
            return;
        }
        if path == home {
            push(
                out,
                Severity::Warning,
                format!("names the whole home directory {}", path.display()),
            );
            return;
        }
    }
    if let Some(secret) = SECRET_SYSTEM_PATHS
        .iter()
        .find(|s| path.starts_with(Path::new(s)))
    {
        push(
            out,
            Severity::Danger,
            format!("names {} (under {secret})", path.display()),
        );
    } else if path == Path::new("/") {
        push(out, Severity::Danger, "names the root directory /");
    } else if path.starts_with("/etc") {
        push(
            out,
            Severity::Warning,
            format!("names {} (the system's configuration)", path.display()),
        );
    }
}

/// Environment variables that change what runs (`LD_PRELOAD`, `NODE_OPTIONS`, …).
pub(crate) fn env_findings<'a>(names: impl Iterator<Item = &'a str>, out: &mut Vec<Finding>) {
    for name in names {
        if CODE_ENV.contains(&name) || name.starts_with("DYLD_") {
            push(
                out,
                Severity::Warning,
                format!("sets {name}, which changes what code the server loads"),
            );
        }
    }
}

/// Findings about the sandbox profile: none at all, the host's network, system or
/// credential directories in reach.
pub(crate) fn sandbox_findings(
    profile: Option<&Profile>,
    home: Option<&Path>,
    out: &mut Vec<Finding>,
) {
    let Some(profile) = profile else {
        push(
            out,
            Severity::Warning,
            "no sandbox (`sandbox = \"off\"`): the server has every right of the gateway's user",
        );
        return;
    };
    if profile.network == Network::Host {
        push(
            out,
            Severity::Warning,
            "the sandbox gives the server the host's whole network",
        );
    }
    for path in &profile.write {
        let shown = path.display();
        if SYSTEM_ROOTS.iter().any(|d| Path::new(d) == path)
            || SYSTEM_TREES.iter().any(|d| path.starts_with(d))
        {
            push(
                out,
                Severity::Danger,
                format!("the sandbox lets the server write to the system directory {shown}"),
            );
        }
    }
    for path in profile.read.iter().chain(&profile.write) {
        let mut found = Vec::new();
        path_finding(&path.to_string_lossy(), home, &mut found);
        for f in found.into_iter().filter(|f| f.severity == Severity::Danger) {
            push(out, Severity::Danger, format!("the sandbox {}", f.message));
        }
    }
}

/// Adds a finding unless the same one is there already.
pub(crate) fn push(out: &mut Vec<Finding>, severity: Severity, message: impl Into<String>) {
    let finding = Finding::new(severity, message);
    if !out.contains(&finding) {
        out.push(finding);
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::has;
    use super::*;

    const HOME: &str = "/home/alice";

    fn words(argv: &[&str]) -> Vec<Finding> {
        let argv: Vec<String> = argv.iter().map(|s| s.to_string()).collect();
        let mut out = Vec::new();
        word_findings(&argv, Some(Path::new(HOME)), &mut out);
        out
    }

    #[test]
    fn privilege_and_recursive_deletion_are_dangerous() {
        assert!(has(
            &words(&["sudo", "node", "s.js"]),
            Severity::Danger,
            "`sudo`"
        ));
        assert!(has(
            &words(&["/usr/bin/doas", "x"]),
            Severity::Danger,
            "`doas`"
        ));
        assert!(has(
            &words(&["rm", "-rf", "/tmp/x"]),
            Severity::Danger,
            "rm -r"
        ));
        assert!(words(&["rm", "-f", "/tmp/x"]).is_empty());
    }

    #[test]
    fn credential_directories_are_found_however_spelled() {
        for word in [
            "~/.ssh/id_rsa",
            "$HOME/.aws/credentials",
            "${HOME}/.gnupg",
            "/home/alice/x/../.ssh",
            "--key=/home/alice/.ssh/id_ed25519",
            "/home/alice/.kube:/root/.kube",
            "/etc/shadow",
            "/var/run/docker.sock",
        ] {
            assert!(
                words(&["srv", word])
                    .iter()
                    .any(|f| f.severity == Severity::Danger),
                "{word}"
            );
        }
        assert!(has(
            &words(&["srv", "~/.config/app"]),
            Severity::Warning,
            "~/.config"
        ));
        assert!(has(
            &words(&["srv", "/etc/hosts"]),
            Severity::Warning,
            "configuration"
        ));
        assert!(has(
            &words(&["srv", "/home/alice"]),
            Severity::Warning,
            "whole home"
        ));
        assert!(words(&["srv", "/home/alice/projects/x", "./.ssh", "data"]).is_empty());
    }

    #[test]
    fn environment_that_changes_code_is_a_warning() {
        let mut out = Vec::new();
        env_findings(
            ["PATH", "NODE_OPTIONS", "LD_PRELOAD", "API_KEY"].into_iter(),
            &mut out,
        );
        assert_eq!(out.len(), 2, "{out:?}");
        assert!(out.iter().all(|f| f.severity == Severity::Warning));
    }

    #[test]
    fn sandbox_profiles_that_open_the_system_are_flagged() {
        let mut out = Vec::new();
        sandbox_findings(None, Some(Path::new(HOME)), &mut out);
        assert!(has(&out, Severity::Warning, "no sandbox"));

        let mut out = Vec::new();
        let profile = Profile {
            write: vec![PathBuf::from("/etc"), PathBuf::from("/srv/data")],
            read: vec![PathBuf::from("/home/alice/.ssh")],
            network: Network::Host,
            ..Profile::default()
        };
        sandbox_findings(Some(&profile), Some(Path::new(HOME)), &mut out);
        assert!(
            has(&out, Severity::Danger, "system directory /etc"),
            "{out:?}"
        );
        assert!(!has(&out, Severity::Danger, "/srv/data"), "{out:?}");
        assert!(
            has(&out, Severity::Danger, "the sandbox names /home/alice/.ssh"),
            "{out:?}"
        );
        assert!(
            has(&out, Severity::Warning, "host's whole network"),
            "{out:?}"
        );

        let mut out = Vec::new();
        sandbox_findings(Some(&Profile::default()), Some(Path::new(HOME)), &mut out);
        assert!(out.is_empty(), "{out:?}");
    }
}
