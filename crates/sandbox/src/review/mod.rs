//! Launch review: what exactly a local server's command runs, what is dangerous about it,
//! and what of it is pinned.
//!
//! `portcullis trust <server>` shows a [`Review`] to the person approving a server; the
//! gateway computes the same [`Fingerprint`] before each launch and compares it with the
//! approved one ([`diff`]). Both go through [`review`], so what was shown is what is
//! checked.
//!
//! - `resolve`: the executable as `execvp` finds it with the child's `PATH`, symlinks
//!   resolved; scripts against the child's working directory;
//! - `digest`: SHA-256 of files, cached by file identity so a launch per session does not
//!   rehash a large runtime but a tampered file is always rehashed;
//! - `command`: interpreters and wrappers recognised in the argv, `runners`: package
//!   runners and containers (`syntax`: their option syntax);
//! - `package`: whether a package spec is pinned to one version;
//! - `findings`: dangerous patterns (privilege, `sh -c`, `curl | sh`, `rm -rf`, credential
//!   paths, unpinned packages, a loose sandbox); `shell`: the same in `sh -c` command lines;
//! - `diff`: the fingerprint and the changes between two of them.
//!
//! Everything but `resolve` and `digest` is pure.

mod command;
mod diff;
mod digest;
mod findings;
mod package;
mod resolve;
mod runners;
mod shell;
mod syntax;
#[cfg(test)]
mod testing;

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

pub use command::{Analysis, Target, analyze};
pub use diff::{Change, Fingerprint, diff};
pub use digest::{MAX_HASHED_BYTES, sha256_file};
pub use findings::{Finding, Severity};
pub use package::{Ecosystem, PackageRef};
pub use resolve::{DEFAULT_PATH, Resolved, resolve_executable, resolve_script};

use crate::profile::Profile;

/// Why a launch could not be reviewed (and so cannot be trusted or checked).
#[derive(Debug, thiserror::Error)]
pub enum ReviewError {
    #[error("cannot find the program \"{program}\" (looked in {searched})")]
    NotFound { program: String, searched: String },
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{} is not a regular file", .0.display())]
    NotAFile(PathBuf),
    #[error("{} is {size} bytes, over the {limit}-byte limit for hashing", path.display())]
    TooLarge {
        path: PathBuf,
        size: u64,
        limit: u64,
    },
    #[error("the path {} is not UTF-8", .0.display())]
    NotUtf8(PathBuf),
}

/// The value a child's environment variable will have, as far as a review may know it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnvValue {
    /// A plain value (`env.pass` from the gateway's environment, `env.set`).
    Value(String),
    /// A secret: its value is never looked at.
    Secret,
}

/// Everything a launch is made of.
#[derive(Debug, Clone, Copy)]
pub struct LaunchInput<'a> {
    /// The argv as configured, program first.
    pub argv: &'a [String],
    /// What is executed: `argv[0]`, or what the gateway substitutes for it (its own
    /// executable for `portcullis`).
    pub program: &'a Path,
    /// The child's working directory; `None`: the gateway's.
    pub cwd: Option<&'a Path>,
    /// The child's whole environment.
    pub env: &'a [(String, EnvValue)],
    /// The user's home directory, for findings about `~` paths.
    pub home: Option<&'a Path>,
    /// The sandbox profile; `None`: no sandbox.
    pub sandbox: Option<&'a Profile>,
}

/// What a launch runs, what is pinned of it, and what is dangerous about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Review {
    pub fingerprint: Fingerprint,
    /// Where the executable was found, before symlinks (`/usr/bin/node`).
    pub found: PathBuf,
    /// How the code runs (`node`, `npx`, `sh -c`, …), when not directly.
    pub via: Option<String>,
    /// The script, inline code, module or package run, as the argv names it.
    pub target: Target,
    /// Most severe first.
    pub findings: Vec<Finding>,
}

/// Reviews one launch: resolves and hashes the executable and the script, reads the argv,
/// and collects the findings. Fails when the executable cannot be found or read; a script
/// that cannot be read is a finding (and never matches a pin).
pub fn review(input: &LaunchInput<'_>) -> Result<Review, ReviewError> {
    let path = input.env.iter().find_map(|(name, value)| match value {
        EnvValue::Value(v) if name == "PATH" => Some(v.as_str()),
        _ => None,
    });
    let resolved = resolve_executable(input.program, input.cwd, path)?;
    let executable_sha256 = sha256_file(&resolved.executable)?;
    let analysis = analyze(input.argv, input.home);
    let mut findings = analysis.findings;
    writable_by_others(&resolved.executable, "executable", &mut findings);

    let (mut script, mut script_sha256, mut package) = (None, None, None);
    match &analysis.target {
        Target::Script(written) => match resolve_script(written, input.cwd) {
            Ok(path) => {
                writable_by_others(&path, "script", &mut findings);
                script_sha256 = match sha256_file(&path) {
                    Ok(digest) => Some(digest),
                    Err(e) => {
                        findings::push(
                            &mut findings,
                            Severity::Warning,
                            format!("the script cannot be hashed: {e}"),
                        );
                        None
                    }
                };
                script = Some(utf8(path)?);
            }
            Err(e) => {
                findings::push(
                    &mut findings,
                    Severity::Warning,
                    format!("the script \"{written}\" cannot be found: {e}"),
                );
                script = Some(written.clone());
            }
        },
        Target::Package(p) => package = Some(p.spec.clone()),
        Target::None | Target::Inline(_) | Target::Module(_) => {}
    }
    findings::env_findings(input.env.iter().map(|(n, _)| n.as_str()), &mut findings);
    findings::sandbox_findings(input.sandbox, input.home, &mut findings);
    findings.sort_by_key(|f| std::cmp::Reverse(f.severity));

    Ok(Review {
        fingerprint: Fingerprint {
            argv: input.argv.to_vec(),
            executable: utf8(resolved.executable)?,
            executable_sha256,
            script,
            script_sha256,
            package,
        },
        found: resolved.found,
        via: analysis.via,
        target: analysis.target,
        findings,
    })
}

fn utf8(path: PathBuf) -> Result<String, ReviewError> {
    path.into_os_string()
        .into_string()
        .map_err(|p| ReviewError::NotUtf8(PathBuf::from(p)))
}

/// A file anyone may rewrite, or in a directory anyone may add to (without the sticky
/// bit), is not the file that was reviewed for long.
fn writable_by_others(path: &Path, what: &str, out: &mut Vec<Finding>) {
    let world_writable = |p: &Path, dir: bool| {
        std::fs::metadata(p).is_ok_and(|m| {
            let mode = m.mode();
            mode & 0o002 != 0 && !(dir && mode & 0o1000 != 0)
        })
    };
    if world_writable(path, false) {
        findings::push(
            out,
            Severity::Danger,
            format!("the {what} {} can be rewritten by any user", path.display()),
        );
    }
    if let Some(dir) = path.parent()
        && world_writable(dir, true)
    {
        findings::push(
            out,
            Severity::Danger,
            format!(
                "the {what}'s directory {} can be written by any user",
                dir.display()
            ),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn env(path: &Path) -> Vec<(String, EnvValue)> {
        vec![
            ("PATH".into(), EnvValue::Value(path.display().to_string())),
            ("API_TOKEN".into(), EnvValue::Secret),
        ]
    }

    #[test]
    fn an_interpreter_launch_pins_the_interpreter_and_its_script() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().canonicalize().expect("canonical");
        std::fs::create_dir(root.join("bin")).expect("mkdir");
        std::fs::write(root.join("bin/node"), b"interpreter").expect("write");
        std::fs::set_permissions(
            root.join("bin/node"),
            std::fs::Permissions::from_mode(0o755),
        )
        .expect("chmod");
        std::fs::write(root.join("server.js"), b"script").expect("write");
        let argv: Vec<String> = vec!["node".into(), "server.js".into()];
        let env = env(&root.join("bin"));
        let input = LaunchInput {
            argv: &argv,
            program: Path::new("node"),
            cwd: Some(&root),
            env: &env,
            home: None,
            sandbox: Some(&Profile::default()),
        };
        let r = review(&input).expect("review");
        assert_eq!(
            r.fingerprint.executable,
            root.join("bin/node").display().to_string()
        );
        assert_eq!(r.fingerprint.executable_sha256.len(), 64);
        assert_eq!(
            r.fingerprint.script.as_deref(),
            Some(root.join("server.js").to_str().unwrap())
        );
        assert!(r.fingerprint.script_sha256.is_some());
        assert_eq!(r.via.as_deref(), Some("node"));
        assert!(r.findings.is_empty(), "{:?}", r.findings);

        // The script changes: the next review differs in the script alone.
        std::fs::write(root.join("server.js"), b"evil script").expect("write");
        let again = review(&input).expect("review");
        let changes = diff(&r.fingerprint, &again.fingerprint);
        assert!(
            matches!(changes.as_slice(), [Change::Script { .. }]),
            "{changes:?}"
        );
    }

    #[test]
    fn findings_come_most_severe_first_and_secrets_are_only_names() {
        let dir = tempfile::tempdir().expect("tempdir");
        let argv: Vec<String> = ["sh", "-c", "npx -y pkg | sh"].map(String::from).to_vec();
        let env = vec![
            ("PATH".into(), EnvValue::Value("/bin:/usr/bin".into())),
            ("NODE_OPTIONS".into(), EnvValue::Secret),
        ];
        let r = review(&LaunchInput {
            argv: &argv,
            program: Path::new("sh"),
            cwd: Some(dir.path()),
            env: &env,
            home: None,
            sandbox: None,
        })
        .expect("review");
        let severities: Vec<Severity> = r.findings.iter().map(|f| f.severity).collect();
        let mut sorted = severities.clone();
        sorted.sort_by(|a, b| b.cmp(a));
        assert_eq!(severities, sorted);
        assert_eq!(severities[0], Severity::Danger);
        assert!(
            r.findings
                .iter()
                .any(|f| f.message.contains("NODE_OPTIONS"))
        );
        assert!(r.findings.iter().any(|f| f.message.contains("no sandbox")));
    }

    #[test]
    fn a_world_writable_executable_is_dangerous() {
        let dir = tempfile::tempdir().expect("tempdir");
        let exe = dir.path().join("srv");
        std::fs::write(&exe, b"x").expect("write");
        std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o777)).expect("chmod");
        let argv = vec![exe.display().to_string()];
        let r = review(&LaunchInput {
            argv: &argv,
            program: &exe,
            cwd: None,
            env: &[],
            home: None,
            sandbox: Some(&Profile::default()),
        })
        .expect("review");
        assert!(
            r.findings
                .iter()
                .any(|f| f.severity == Severity::Danger && f.message.contains("any user")),
            "{:?}",
            r.findings
        );
    }
}
