//! Helpers shared by the policy tests.
#![allow(dead_code)]

use std::collections::{BTreeMap, VecDeque};
use std::io;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use portcullis_policy::{Effect, Glob, PathResolver, Rule, RuleOrigin};

pub fn globs(ps: &[&str]) -> Option<Vec<Glob>> {
    Some(ps.iter().map(|p| Glob::new(p).expect("valid")).collect())
}

/// A rule for `server` with an origin in `policy.toml` at line `3 + 4 × index`.
pub fn rule(index: usize, server: Option<&str>, effect: Effect) -> Rule {
    let mut r = Rule::new(
        effect,
        RuleOrigin {
            index,
            file: Some(Arc::from("policy.toml")),
            line: Some(3 + 4 * index),
        },
    );
    r.server = server.map(str::to_owned);
    r
}

/// An in-memory filesystem where every path exists as a directory except the symbolic
/// links listed, resolved as the kernel does (links followed component by component, `..`
/// applied to where a link led).
#[derive(Debug, Default, Clone)]
pub struct FakeFs {
    /// Links by absolute path.
    pub links: BTreeMap<String, String>,
    /// Links by name: every component with this name, in any directory, is such a link.
    pub named: BTreeMap<String, String>,
}

impl FakeFs {
    pub fn with_link(mut self, at: &str, target: &str) -> Self {
        self.links.insert(at.to_owned(), target.to_owned());
        self
    }

    pub fn with_link_named(mut self, name: &str, target: &str) -> Self {
        self.named.insert(name.to_owned(), target.to_owned());
        self
    }
}

fn names(path: &str) -> Vec<String> {
    Path::new(path)
        .components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n.to_string_lossy().into_owned()),
            Component::ParentDir => Some("..".to_owned()),
            _ => None,
        })
        .collect()
}

impl PathResolver for FakeFs {
    fn resolve(&self, path: &Path) -> io::Result<PathBuf> {
        let mut out: Vec<String> = Vec::new();
        let mut pending: VecDeque<String> = names(&path.to_string_lossy()).into();
        let mut hops = 0;
        while let Some(c) = pending.pop_front() {
            if c == ".." {
                out.pop();
                continue;
            }
            let link = self.named.get(&c).cloned();
            out.push(c);
            let here = format!("/{}", out.join("/"));
            if let Some(target) = self.links.get(&here).cloned().or(link) {
                hops += 1;
                if hops > 40 {
                    return Err(io::Error::other("too many levels of symbolic links"));
                }
                out.pop();
                if target.starts_with('/') {
                    out.clear();
                }
                for (i, n) in names(&target).into_iter().enumerate() {
                    pending.insert(i, n);
                }
            }
        }
        Ok(PathBuf::from(format!("/{}", out.join("/"))))
    }
}
