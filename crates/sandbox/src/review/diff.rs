//! What a launch pins, and how a launch differs from its pin.

use std::fmt;

/// What `portcullis trust` approves and a launch is compared with: the exact argv, the
/// executable that runs (resolved, and its SHA-256), the script an interpreter runs (and
/// its SHA-256), the package a runner fetches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fingerprint {
    pub argv: Vec<String>,
    /// Absolute, every symlink resolved.
    pub executable: String,
    /// Lower-case hex.
    pub executable_sha256: String,
    pub script: Option<String>,
    /// `None` when the script could not be read.
    pub script_sha256: Option<String>,
    pub package: Option<String>,
}

/// One difference between a pin and a launch.
///
/// `Display` names the change in a sentence with digests cut to 12 hex digits (for an error
/// a client shows); the alternate form (`{:#}`) prints them whole (for `portcullis trust`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    Argv {
        trusted: Vec<String>,
        now: Vec<String>,
    },
    Executable {
        trusted: String,
        trusted_sha256: String,
        now: String,
        now_sha256: String,
    },
    Script {
        trusted: Option<String>,
        trusted_sha256: Option<String>,
        now: Option<String>,
        now_sha256: Option<String>,
    },
    Package {
        trusted: Option<String>,
        now: Option<String>,
    },
}

/// Every difference of `now` from `trusted`, in the order argv, executable, script, package.
pub fn diff(trusted: &Fingerprint, now: &Fingerprint) -> Vec<Change> {
    let mut changes = Vec::new();
    if trusted.argv != now.argv {
        changes.push(Change::Argv {
            trusted: trusted.argv.clone(),
            now: now.argv.clone(),
        });
    }
    if trusted.executable != now.executable || trusted.executable_sha256 != now.executable_sha256 {
        changes.push(Change::Executable {
            trusted: trusted.executable.clone(),
            trusted_sha256: trusted.executable_sha256.clone(),
            now: now.executable.clone(),
            now_sha256: now.executable_sha256.clone(),
        });
    }
    // A script that cannot be read now never matches, even if none could be read then.
    if trusted.script != now.script
        || trusted.script_sha256 != now.script_sha256
        || (now.script.is_some() && now.script_sha256.is_none())
    {
        changes.push(Change::Script {
            trusted: trusted.script.clone(),
            trusted_sha256: trusted.script_sha256.clone(),
            now: now.script.clone(),
            now_sha256: now.script_sha256.clone(),
        });
    }
    if trusted.package != now.package {
        changes.push(Change::Package {
            trusted: trusted.package.clone(),
            now: now.package.clone(),
        });
    }
    changes
}

/// A digest as shown: whole, or its first 12 digits and an ellipsis.
struct Sha<'a>(Option<&'a str>, bool);

impl fmt::Display for Sha<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            None => f.write_str("unreadable"),
            Some(h) if self.1 || h.len() <= 12 => write!(f, "sha256 {h}"),
            Some(h) => write!(f, "sha256 {}…", &h[..h.floor_char_boundary(12)]),
        }
    }
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let full = f.alternate();
        match self {
            Change::Argv { trusted, now } => {
                write!(
                    f,
                    "the command changed: {trusted:?} was trusted, now {now:?}"
                )
            }
            Change::Executable {
                trusted,
                trusted_sha256,
                now,
                now_sha256,
            } => {
                let (was, is) = (Sha(Some(trusted_sha256), full), Sha(Some(now_sha256), full));
                if trusted == now {
                    write!(
                        f,
                        "the executable {now} changed: {was} was trusted, now {is}"
                    )
                } else {
                    write!(
                        f,
                        "the executable is now {now} ({is}); {trusted} ({was}) was trusted"
                    )
                }
            }
            Change::Script {
                trusted,
                trusted_sha256,
                now,
                now_sha256,
            } => {
                let was = Sha(trusted_sha256.as_deref(), full);
                let is = Sha(now_sha256.as_deref(), full);
                match (trusted, now) {
                    (Some(t), Some(n)) if t == n => {
                        write!(f, "the script {n} changed: {was} was trusted, now {is}")
                    }
                    (Some(t), Some(n)) => {
                        write!(f, "the script is now {n} ({is}); {t} ({was}) was trusted")
                    }
                    (None, Some(n)) => {
                        write!(f, "it now runs the script {n} ({is}); none was trusted")
                    }
                    (Some(t), None) => {
                        write!(f, "it no longer runs the trusted script {t} ({was})")
                    }
                    (None, None) => f.write_str("the script changed"),
                }
            }
            Change::Package { trusted, now } => match (trusted, now) {
                (Some(t), Some(n)) => write!(f, "the package changed: {t} was trusted, now {n}"),
                (None, Some(n)) => write!(f, "it now runs the package {n}; none was trusted"),
                (Some(t), None) => write!(f, "it no longer runs the trusted package {t}"),
                (None, None) => f.write_str("the package changed"),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pinned() -> Fingerprint {
        Fingerprint {
            argv: vec!["node".into(), "server.js".into()],
            executable: "/usr/bin/node".into(),
            executable_sha256: "ab".repeat(32),
            script: Some("/srv/server.js".into()),
            script_sha256: Some("cd".repeat(32)),
            package: None,
        }
    }

    #[test]
    fn an_identical_launch_has_no_changes() {
        assert!(diff(&pinned(), &pinned()).is_empty());
    }

    #[test]
    fn a_tampered_executable_names_its_path_and_both_digests() {
        let mut now = pinned();
        now.executable_sha256 = "ef".repeat(32);
        let changes = diff(&pinned(), &now);
        assert_eq!(changes.len(), 1);
        assert_eq!(
            changes[0].to_string(),
            "the executable /usr/bin/node changed: sha256 abababababab… was trusted, now sha256 efefefefefef…"
        );
        let full = format!("{:#}", changes[0]);
        assert!(
            full.contains(&"ab".repeat(32)) && full.contains(&"ef".repeat(32)),
            "{full}"
        );
    }

    #[test]
    fn each_kind_of_change_is_named() {
        let mut now = pinned();
        now.argv.push("--insecure".into());
        now.executable = "/opt/node/bin/node".into();
        now.script_sha256 = Some("00".repeat(32));
        now.package = Some("pkg@1.0.0".into());
        let text: Vec<String> = diff(&pinned(), &now)
            .iter()
            .map(|c| c.to_string())
            .collect();
        assert_eq!(text.len(), 4, "{text:?}");
        assert!(text[0].starts_with("the command changed:") && text[0].contains("--insecure"));
        assert!(text[1].starts_with("the executable is now /opt/node/bin/node"));
        assert!(text[2].starts_with("the script /srv/server.js changed"));
        assert_eq!(
            text[3],
            "it now runs the package pkg@1.0.0; none was trusted"
        );
    }

    #[test]
    fn an_unreadable_script_never_matches() {
        let mut then = pinned();
        then.script_sha256 = None;
        let now = then.clone();
        let changes = diff(&then, &now);
        assert_eq!(changes.len(), 1);
        assert!(changes[0].to_string().contains("unreadable"));
    }
}
