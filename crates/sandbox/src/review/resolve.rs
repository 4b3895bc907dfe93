//! Which file a launch executes: the program looked up the way `execvp` looks it up with
//! the child's own `PATH`, then every symlink resolved, so that the digest is of the file
//! that runs and a symlink switched to another target is a different executable.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use super::ReviewError;

/// `PATH` for a child whose environment has none: glibc's `execvp` default
/// (`confstr(_CS_PATH)`).
pub const DEFAULT_PATH: &str = "/bin:/usr/bin";

/// Where `program` was found, and the file that is executed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    /// The path as found (in a `PATH` directory, or as given), before symlinks.
    pub found: PathBuf,
    /// The absolute path with every symlink resolved.
    pub executable: PathBuf,
}

/// Resolves `program` as `execvp` does in the child: a name with a `/` is a path (relative
/// to the child's working directory `cwd`, else to the gateway's); a bare name is looked up
/// in each directory of `path` (the child's `PATH`, [`DEFAULT_PATH`] when it has none) and
/// the first executable regular file wins. An empty `PATH` entry is the working directory.
pub fn resolve_executable(
    program: &Path,
    cwd: Option<&Path>,
    path: Option<&str>,
) -> Result<Resolved, ReviewError> {
    let text = program.as_os_str();
    if text.is_empty() {
        return Err(ReviewError::NotFound {
            program: String::new(),
            searched: String::new(),
        });
    }
    let base = || -> Result<PathBuf, ReviewError> {
        match cwd {
            Some(dir) if dir.is_absolute() => Ok(dir.to_path_buf()),
            Some(dir) => Ok(current_dir()?.join(dir)),
            None => current_dir(),
        }
    };
    if program.to_string_lossy().contains('/') {
        let found = if program.is_absolute() {
            program.to_path_buf()
        } else {
            base()?.join(program)
        };
        return if is_executable_file(&found) {
            finish(found)
        } else {
            Err(ReviewError::NotFound {
                program: program.display().to_string(),
                searched: found.display().to_string(),
            })
        };
    }
    let search = path.unwrap_or(DEFAULT_PATH);
    for dir in search.split(':') {
        let dir = if dir.is_empty() {
            base()?
        } else if Path::new(dir).is_absolute() {
            PathBuf::from(dir)
        } else {
            base()?.join(dir)
        };
        let candidate = dir.join(program);
        if is_executable_file(&candidate) {
            return finish(candidate);
        }
    }
    Err(ReviewError::NotFound {
        program: program.display().to_string(),
        searched: format!("PATH={search}"),
    })
}

fn current_dir() -> Result<PathBuf, ReviewError> {
    std::env::current_dir().map_err(|source| ReviewError::Read {
        path: PathBuf::from("."),
        source,
    })
}

fn finish(found: PathBuf) -> Result<Resolved, ReviewError> {
    let executable = std::fs::canonicalize(&found).map_err(|source| ReviewError::Read {
        path: found.clone(),
        source,
    })?;
    Ok(Resolved { found, executable })
}

/// A regular file (after symlinks) with an execute bit: what `execvp` would not skip.
fn is_executable_file(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Resolves a script named on the command line, relative to the child's working directory.
pub fn resolve_script(script: &str, cwd: Option<&Path>) -> Result<PathBuf, ReviewError> {
    let path = Path::new(script);
    let full = if path.is_absolute() {
        path.to_path_buf()
    } else {
        match cwd {
            Some(dir) if dir.is_absolute() => dir.join(path),
            Some(dir) => current_dir()?.join(dir).join(path),
            None => current_dir()?.join(path),
        }
    };
    std::fs::canonicalize(&full).map_err(|source| ReviewError::Read { path: full, source })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn executable(path: &Path) {
        std::fs::write(path, b"#!/bin/sh\n").expect("write");
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }

    #[test]
    fn a_bare_name_is_found_on_the_childs_path_in_order_and_symlinks_are_resolved() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().canonicalize().expect("canonical");
        let (first, second, real) = (root.join("a"), root.join("b"), root.join("real"));
        for d in [&first, &second, &real] {
            std::fs::create_dir(d).expect("mkdir");
        }
        executable(&real.join("node-20"));
        symlink(real.join("node-20"), second.join("node")).expect("symlink");
        // Not executable: skipped, as execvp skips it.
        std::fs::write(first.join("node"), b"x").expect("write");
        let path = format!("{}:{}", first.display(), second.display());
        let r = resolve_executable(Path::new("node"), None, Some(&path)).expect("found");
        assert_eq!(r.found, second.join("node"));
        assert_eq!(r.executable, real.join("node-20"));
    }

    #[test]
    fn a_path_with_a_slash_is_relative_to_the_childs_working_directory() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().canonicalize().expect("canonical");
        std::fs::create_dir(root.join("bin")).expect("mkdir");
        executable(&root.join("bin/srv"));
        let r = resolve_executable(Path::new("bin/srv"), Some(&root), Some("/nonexistent"))
            .expect("found");
        assert_eq!(r.executable, root.join("bin/srv"));
        assert!(resolve_executable(Path::new("./srv"), Some(&root), None).is_err());
    }

    #[test]
    fn a_missing_program_names_what_was_searched() {
        let err = resolve_executable(Path::new("no-such-server"), None, Some("/nonexistent"))
            .expect_err("missing");
        let text = err.to_string();
        assert!(
            text.contains("no-such-server") && text.contains("PATH=/nonexistent"),
            "{text}"
        );
        let err = resolve_executable(Path::new("/nonexistent/x"), None, None).expect_err("missing");
        assert!(err.to_string().contains("/nonexistent/x"));
    }

    #[test]
    fn without_a_path_the_execvp_default_is_searched() {
        let r = resolve_executable(Path::new("sh"), None, None).expect("sh in /bin or /usr/bin");
        assert!(r.found.starts_with("/bin") || r.found.starts_with("/usr/bin"));
    }

    #[test]
    fn scripts_resolve_against_the_working_directory() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().canonicalize().expect("canonical");
        std::fs::write(root.join("server.js"), b"").expect("write");
        symlink(root.join("server.js"), root.join("link.js")).expect("symlink");
        assert_eq!(
            resolve_script("link.js", Some(&root)).expect("script"),
            root.join("server.js")
        );
        assert!(resolve_script("missing.js", Some(&root)).is_err());
    }
}
