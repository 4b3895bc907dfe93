//! The filesystem side of path constraints: [`SystemPaths`] resolves symbolic links for
//! the policy's `paths`/`roots` checks (the policy crate itself does no I/O). The config
//! loader uses it to resolve each rule's roots once; the gateway passes it to every
//! decision.

use std::io;
use std::path::{Component, Path, PathBuf};

use portcullis_policy::PathResolver;

/// Resolves a path as the kernel would open it: the longest prefix that exists is
/// canonicalized (every symbolic link in it followed, `..` applied after each link), and
/// the components that do not exist yet are appended, `..` among them applied to the text.
///
/// A prefix that is not a directory (`/etc/passwd/x`) counts as not existing, so the
/// answer errs towards the path's textual parent; other errors (permission denied, a link
/// loop) are errors, and the policy treats the path as unverifiable.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemPaths;

impl PathResolver for SystemPaths {
    fn resolve(&self, path: &Path) -> io::Result<PathBuf> {
        let components: Vec<Component<'_>> = path.components().collect();
        for existing in (1..=components.len()).rev() {
            let prefix: PathBuf = components[..existing].iter().collect();
            match std::fs::canonicalize(&prefix) {
                Ok(mut resolved) => {
                    for c in &components[existing..] {
                        match c {
                            Component::Normal(name) => resolved.push(name),
                            Component::ParentDir => {
                                resolved.pop();
                            }
                            Component::CurDir | Component::RootDir | Component::Prefix(_) => {}
                        }
                    }
                    return Ok(resolved);
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
                    ) => {}
                Err(e) => return Err(e),
            }
        }
        Err(io::Error::new(
            io::ErrorKind::NotFound,
            "no part of the path exists",
        ))
    }
}

#[cfg(all(test, unix))]
mod tests {
    use std::os::unix::fs::symlink;

    use portcullis_policy::{PathRejection, Root, check_path};

    use super::*;

    #[test]
    fn symlinks_on_disk_are_followed_and_missing_tails_appended() {
        let dir = tempfile::tempdir().expect("tempdir");
        let base = dir.path().canonicalize().expect("canonical tempdir");
        let root = base.join("root");
        std::fs::create_dir_all(root.join("sub")).expect("mkdir");
        std::fs::create_dir_all(base.join("outside")).expect("mkdir");
        symlink(base.join("outside"), root.join("escape")).expect("symlink");
        symlink(root.join("sub"), root.join("inner")).expect("symlink");
        symlink(root.join("loop"), root.join("loop")).expect("symlink");
        std::fs::write(root.join("file.txt"), "x").expect("write");

        let r = SystemPaths;
        assert_eq!(
            r.resolve(&root.join("inner/new/../x")).expect("resolves"),
            root.join("sub/x")
        );
        assert_eq!(
            r.resolve(&root.join("escape/secret")).expect("resolves"),
            base.join("outside/secret")
        );
        // `..` after a link is taken from the link's target, as the kernel does.
        assert_eq!(
            r.resolve(&root.join("escape/../x")).expect("resolves"),
            base.join("x")
        );
        assert_eq!(
            r.resolve(&root.join("file.txt/../../x")).expect("resolves"),
            base.join("x")
        );
        assert!(r.resolve(&root.join("loop/x")).is_err());

        let roots = [Root::new(root.to_str().expect("utf-8"), &r).expect("root")];
        let check = |p: PathBuf| check_path(p.to_str().expect("utf-8"), &roots, &r);
        assert!(check(root.join("sub/a")).is_ok());
        assert!(check(root.join("inner/a")).is_ok());
        assert!(check(root.join("not-yet/a")).is_ok());
        assert!(matches!(
            check(root.join("escape/secret")),
            Err(PathRejection::ResolvesOutside { .. })
        ));
        assert!(matches!(
            check(root.join("escape/../outside/x")),
            Err(PathRejection::ResolvesOutside { .. })
        ));
        assert!(matches!(
            check(root.join("loop/x")),
            Err(PathRejection::Unresolvable(_))
        ));
    }

    #[test]
    fn a_root_that_is_a_link_is_resolved_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        let base = dir.path().canonicalize().expect("canonical tempdir");
        std::fs::create_dir_all(base.join("real")).expect("mkdir");
        symlink(base.join("real"), base.join("alias")).expect("symlink");
        let root =
            Root::new(base.join("alias").to_str().expect("utf-8"), &SystemPaths).expect("root");
        assert_eq!(root.written(), base.join("alias"));
        assert_eq!(root.resolved(), base.join("real"));
    }
}
