//! The roots the gateway gives a server that has `servers.<name>.roots`.
//!
//! Such a server's `roots/list` is answered by the gateway, never by the client: with the
//! configured roots, narrowed by the client's own roots when the client has some. For each
//! pair of a configured root and a client root the narrower is kept — the configured root
//! when it lies inside (or is) the client's, the client's when it lies strictly inside the
//! configured one — and a root outside every configured one is dropped. So the server is
//! told about no directory the configuration does not give it, and about none the client
//! has not opened either.
//!
//! Client roots are `file:` URIs, decoded and checked the way rule `paths` are (a remote
//! host, a query, a double encoding, look-alike characters… drop the root) and compared
//! with their symbolic links resolved: a client root that is a link out of the configured
//! roots is outside them. What goes upstream are the resolved paths as `file:` URIs.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use portcullis_policy::{PathResolver, Root};
use serde_json::{Value, json};

/// A server's configured roots, normalized (absolute, no `.` or `..`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfiguredRoots {
    paths: Vec<PathBuf>,
}

/// One root as the server is told about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamedRoot {
    pub path: PathBuf,
    pub name: String,
}

/// One of the client's roots, resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientRoot {
    pub path: PathBuf,
    pub name: Option<String>,
}

impl ConfiguredRoots {
    /// The roots of a server's config; `None` when it has none (the gateway then relays
    /// `roots/list` to the client as for any server). A root the path checker cannot use
    /// was refused when the config loaded; should one get here it is left out.
    pub fn new(paths: &[PathBuf]) -> Option<Arc<ConfiguredRoots>> {
        let mut out: Vec<PathBuf> = Vec::new();
        for p in paths {
            match p.to_str().map(Root::lexical) {
                Some(Ok(root)) if !out.iter().any(|o| o == root.resolved()) => {
                    out.push(root.resolved().to_path_buf());
                }
                Some(Ok(_)) => {}
                _ => {
                    tracing::warn!(root = %p.display(), "a configured root the path checker cannot use is left out")
                }
            }
        }
        (!out.is_empty()).then(|| Arc::new(ConfiguredRoots { paths: out }))
    }

    /// The `roots/list` result with every configured root.
    pub fn result(&self) -> Value {
        let all: Vec<NamedRoot> = self
            .paths
            .iter()
            .map(|p| NamedRoot {
                path: p.clone(),
                name: name_of(p),
            })
            .collect();
        list_result(&all)
    }

    /// The `roots/list` result narrowed by the client's roots.
    pub fn narrowed_result(&self, client: &[ClientRoot]) -> Value {
        list_result(&intersect(&self.paths, client))
    }

    /// A client's `ListRootsResult` (as it answered an input request) narrowed to the
    /// configured roots.
    pub fn narrow_answer(&self, answer: &Value, resolver: &dyn PathResolver) -> Value {
        self.narrowed_result(&client_roots(answer, resolver))
    }
}

/// Most client roots compared: each costs a resolution on the filesystem, and the
/// narrowing is quadratic. Those beyond are dropped (which can only narrow the answer).
pub const MAX_CLIENT_ROOTS: usize = 256;

/// The roots of a client's `ListRootsResult` that can be compared: `file:` URIs naming an
/// absolute path on this host, resolved. Anything else is dropped (and cannot widen what
/// the server is told).
pub fn client_roots(result: &Value, resolver: &dyn PathResolver) -> Vec<ClientRoot> {
    let Some(roots) = result.get("roots").and_then(Value::as_array) else {
        return Vec::new();
    };
    if roots.len() > MAX_CLIENT_ROOTS {
        tracing::warn!(
            roots = roots.len(),
            kept = MAX_CLIENT_ROOTS,
            "the client listed more roots than the gateway compares; the rest are dropped"
        );
    }
    roots
        .iter()
        .take(MAX_CLIENT_ROOTS)
        .filter_map(|r| {
            let uri = r.get("uri")?.as_str()?;
            if !uri.get(..5)?.eq_ignore_ascii_case("file:") {
                return None;
            }
            match Root::new(uri, resolver) {
                Ok(root) => Some(ClientRoot {
                    path: root.resolved().to_path_buf(),
                    name: r.get("name").and_then(Value::as_str).map(str::to_owned),
                }),
                Err(e) => {
                    tracing::debug!(error = %e, "a client root that cannot be checked is dropped");
                    None
                }
            }
        })
        .collect()
}

/// The narrower of each overlapping pair of a configured and a client root; nothing
/// outside every configured root. A root inside another one of the answer adds nothing and
/// is left out.
pub fn intersect(configured: &[PathBuf], client: &[ClientRoot]) -> Vec<NamedRoot> {
    let mut found: Vec<NamedRoot> = Vec::new();
    for c in configured {
        if client.iter().any(|k| c.starts_with(&k.path)) {
            found.push(NamedRoot {
                path: c.clone(),
                name: name_of(c),
            });
        }
    }
    for k in client {
        if configured
            .iter()
            .any(|c| k.path.starts_with(c) && k.path != *c)
        {
            found.push(NamedRoot {
                path: k.path.clone(),
                name: k.name.clone().unwrap_or_else(|| name_of(&k.path)),
            });
        }
    }
    let mut out: Vec<NamedRoot> = Vec::new();
    for (i, r) in found.iter().enumerate() {
        let covered = found.iter().enumerate().any(|(j, other)| {
            (r.path != other.path && r.path.starts_with(&other.path))
                || (r.path == other.path && j < i)
        });
        if !covered {
            out.push(r.clone());
        }
    }
    out
}

/// `{"roots": [{"uri": "file:///…", "name": "…"}, …]}`.
pub fn list_result(roots: &[NamedRoot]) -> Value {
    let roots: Vec<Value> = roots
        .iter()
        .map(|r| json!({ "uri": file_uri(&r.path), "name": r.name }))
        .collect();
    json!({ "roots": roots })
}

/// The `file:` URI of an absolute path: every byte but unreserved characters and `/`
/// percent-encoded (a space is `%20`, `%` is `%25`, `#` and `?` cannot end the path early).
pub fn file_uri(path: &Path) -> String {
    let bytes = path.as_os_str().as_encoded_bytes();
    let mut out = String::with_capacity(7 + bytes.len());
    out.push_str("file://");
    for &b in bytes {
        if b.is_ascii_alphanumeric() || matches!(b, b'/' | b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A root's name: its last component (`/` for the root directory).
fn name_of(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "/".to_owned())
}

#[cfg(test)]
mod tests {
    use portcullis_policy::LexicalResolver;

    use super::*;

    fn configured(paths: &[&str]) -> Arc<ConfiguredRoots> {
        let paths: Vec<PathBuf> = paths.iter().map(PathBuf::from).collect();
        ConfiguredRoots::new(&paths).expect("roots")
    }

    fn client(uris: &[&str]) -> Vec<ClientRoot> {
        let roots: Vec<Value> = uris.iter().map(|u| json!({ "uri": u })).collect();
        client_roots(&json!({ "roots": roots }), &LexicalResolver)
    }

    fn uris(result: &Value) -> Vec<String> {
        result["roots"]
            .as_array()
            .expect("roots")
            .iter()
            .map(|r| r["uri"].as_str().expect("uri").to_owned())
            .collect()
    }

    #[test]
    fn a_configured_root_inside_a_client_root_is_kept() {
        let c = configured(&["/home/me/proj", "/srv/data"]);
        let r = c.narrowed_result(&client(&["file:///home/me"]));
        assert_eq!(uris(&r), ["file:///home/me/proj"]);
        assert_eq!(r["roots"][0]["name"], "proj");
        // Equal roots: the configured one, once.
        let r = c.narrowed_result(&client(&["file:///srv/data", "file:///srv/data/"]));
        assert_eq!(uris(&r), ["file:///srv/data"]);
    }

    #[test]
    fn a_client_root_strictly_inside_a_configured_root_is_kept_instead() {
        let c = configured(&["/home/me/proj"]);
        let roots = vec![ClientRoot {
            path: PathBuf::from("/home/me/proj/web"),
            name: Some("Web app".into()),
        }];
        let r = c.narrowed_result(&roots);
        assert_eq!(uris(&r), ["file:///home/me/proj/web"]);
        assert_eq!(
            r["roots"][0]["name"], "Web app",
            "the client's name is kept"
        );
    }

    #[test]
    fn roots_outside_every_configured_root_are_dropped() {
        let c = configured(&["/home/me/proj"]);
        let r = c.narrowed_result(&client(&[
            "file:///etc",
            "file:///home/me/project-other",
            "file:///home/me/proj/../other",
            "file:///home/you",
        ]));
        assert_eq!(uris(&r), Vec::<String>::new());
        // No client roots at all: nothing is open on the client's side.
        assert_eq!(uris(&c.narrowed_result(&[])), Vec::<String>::new());
    }

    #[test]
    fn a_root_inside_another_of_the_answer_is_left_out() {
        let c = configured(&["/srv/a", "/srv/b"]);
        let r = c.narrowed_result(&client(&["file:///", "file:///srv/a/x", "file:///srv/b/y"]));
        assert_eq!(uris(&r), ["file:///srv/a", "file:///srv/b"]);
    }

    #[test]
    fn client_roots_that_cannot_be_checked_are_dropped() {
        let c = configured(&["/srv"]);
        let r = c.narrowed_result(&client(&[
            "https://example.com/srv",
            "file://evil.example/srv",
            "file:///srv/a?x=1",
            "file:///srv/%252e%252e",
            "file:///srv/a\u{2215}b",
            "/srv",
            "file:///srv/ok",
        ]));
        assert_eq!(uris(&r), ["file:///srv/ok"]);
    }

    #[test]
    fn client_roots_are_compared_with_links_resolved() {
        struct OneLink;
        impl PathResolver for OneLink {
            fn resolve(&self, path: &Path) -> std::io::Result<PathBuf> {
                let p = LexicalResolver.resolve(path)?;
                Ok(match p.strip_prefix("/srv/link") {
                    Ok(rest) => Path::new("/etc").join(rest),
                    Err(_) => p,
                })
            }
        }
        let c = configured(&["/srv"]);
        let answer =
            json!({ "roots": [{ "uri": "file:///srv/link" }, { "uri": "file:///srv/real" }] });
        assert_eq!(
            uris(&c.narrow_answer(&answer, &OneLink)),
            ["file:///srv/real"]
        );
    }

    #[test]
    fn only_the_first_client_roots_up_to_the_bound_are_compared() {
        let c = configured(&["/srv"]);
        let mut uris_sent: Vec<String> = (0..MAX_CLIENT_ROOTS)
            .map(|i| format!("file:///elsewhere/{i}"))
            .collect();
        uris_sent.push("file:///srv/late".into());
        let sent: Vec<&str> = uris_sent.iter().map(String::as_str).collect();
        assert_eq!(
            uris(&c.narrowed_result(&client(&sent))),
            Vec::<String>::new()
        );
    }

    #[test]
    fn file_uris_are_percent_encoded_and_decode_back() {
        let path = Path::new("/tmp/a dir/50%/x#y?z/é");
        let uri = file_uri(path);
        assert_eq!(uri, "file:///tmp/a%20dir/50%25/x%23y%3Fz/%C3%A9");
        let back = Root::lexical(&uri).expect("decodes");
        assert_eq!(back.written(), path);
        assert_eq!(file_uri(Path::new("/")), "file:///");
    }

    #[test]
    fn the_full_answer_names_each_root() {
        let c = configured(&["/srv/data/", "/srv/../srv/data", "/"]);
        assert_eq!(
            c.result(),
            json!({ "roots": [
                { "uri": "file:///srv/data", "name": "data" },
                { "uri": "file:///", "name": "/" },
            ] })
        );
    }
}
