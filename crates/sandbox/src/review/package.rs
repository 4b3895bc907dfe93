//! Whether a package a runner fetches is pinned to one version.
//!
//! `npx pkg` runs whatever `pkg` is on the registry the day the server starts: a takeover
//! of the package, or a malicious release, runs with the user's rights at the next launch.
//! A spec pinned to an exact version (or a content digest) names one immutable artifact;
//! ranges, tags (`latest`, `next`) and bare names do not.

use std::fmt;

/// Where a package comes from; decides how its spec is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ecosystem {
    /// npm (`npx`, `npm exec`, `pnpm dlx`, `yarn dlx`, `bunx`, Deno's `npm:`).
    Npm,
    /// JSR (Deno's `jsr:`), versions as on npm.
    Jsr,
    /// PyPI (`uvx`, `uv tool run`, `pipx run`).
    PyPi,
    /// A container image (`docker run`, `podman run`): only a digest pins it, tags move.
    Image,
    /// Code fetched from a URL (`deno run https://…`).
    Url,
}

impl fmt::Display for Ecosystem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Ecosystem::Npm => "npm",
            Ecosystem::Jsr => "jsr",
            Ecosystem::PyPi => "PyPI",
            Ecosystem::Image => "container image",
            Ecosystem::Url => "URL",
        })
    }
}

/// A package a runner fetches and runs, as the command names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackageRef {
    pub ecosystem: Ecosystem,
    /// The spec exactly as written (`@scope/pkg@1.2.3`, `mcp-server-fetch==0.6.2`, …).
    pub spec: String,
    /// Whether the spec names exactly one artifact.
    pub pinned: bool,
}

impl PackageRef {
    pub fn new(ecosystem: Ecosystem, spec: &str) -> PackageRef {
        let pinned = match ecosystem {
            Ecosystem::Npm | Ecosystem::Jsr => npm_pinned(spec),
            Ecosystem::PyPi => pypi_pinned(spec),
            Ecosystem::Image => image_pinned(spec),
            Ecosystem::Url => url_pinned(spec),
        };
        PackageRef {
            ecosystem,
            spec: spec.to_owned(),
            pinned,
        }
    }
}

/// `name@1.2.3`, `@scope/name@1.2.3`, or a git URL ending in `#<full commit>`.
fn npm_pinned(spec: &str) -> bool {
    if let Some((_, fragment)) = spec.split_once('#') {
        return is_commit(fragment);
    }
    let spec = spec.strip_prefix("npm:").unwrap_or(spec);
    // A scoped name starts with '@': the version's '@' comes after the '/'.
    let name_end = if spec.starts_with('@') {
        match spec.find('/') {
            Some(slash) => slash,
            None => return false,
        }
    } else {
        0
    };
    match spec[name_end..].find('@') {
        Some(at) => {
            let version = &spec[name_end + at + 1..];
            exact_semver(version.strip_prefix('=').unwrap_or(version))
        }
        None => false,
    }
}

/// `1.2.3`, `v1.2.3`, `1.2.3-rc.1+build`: one version, no range.
fn exact_semver(version: &str) -> bool {
    let version = version.strip_prefix('v').unwrap_or(version);
    let core_end = version.find(['-', '+']).unwrap_or(version.len());
    let (core, rest) = version.split_at(core_end);
    let parts: Vec<&str> = core.split('.').collect();
    parts.len() == 3
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
        && rest
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'+' | b'.'))
}

/// `pkg==1.2.3`, `pkg[extra]===1.2.3`, `pkg@1.2.3` (uv's spelling), or a VCS URL at a full
/// commit (`git+https://…@<sha>`).
fn pypi_pinned(spec: &str) -> bool {
    let spec = spec.trim();
    if spec.contains("://") {
        return spec
            .rsplit_once('@')
            .is_some_and(|(_, rev)| is_commit(rev.split('#').next().unwrap_or(rev)));
    }
    let version = if let Some((_, v)) = spec.split_once("===") {
        v
    } else if let Some((_, v)) = spec.split_once("==") {
        v
    } else if let Some((_, v)) = spec.split_once('@') {
        v
    } else {
        return false;
    };
    let version = version.trim();
    // A PEP 440 version without wildcards or further clauses: `1.2`, `1.2.3rc1`, `2!1.0.post1`.
    !version.is_empty()
        && version.as_bytes()[0].is_ascii_digit()
        && version
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'!' | b'+' | b'-' | b'_'))
}

/// `image@sha256:<64 hex>`: a tag (even `:1.2.3`) can be pushed again.
fn image_pinned(spec: &str) -> bool {
    spec.rsplit_once("@sha256:")
        .is_some_and(|(_, d)| d.len() == 64 && d.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// A URL with a path segment `name@<exact version>` (deno.land/x, esm.sh, jsdelivr).
fn url_pinned(spec: &str) -> bool {
    let path = spec.split_once("://").map_or(spec, |(_, rest)| rest);
    path.split('/').any(|segment| {
        segment
            .rsplit_once('@')
            .is_some_and(|(name, v)| !name.is_empty() && exact_semver(v))
    })
}

/// A full git commit id: 40 (SHA-1) or 64 (SHA-256) hex digits.
fn is_commit(text: &str) -> bool {
    matches!(text.len(), 40 | 64) && text.bytes().all(|b| b.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pinned(eco: Ecosystem, spec: &str) -> bool {
        PackageRef::new(eco, spec).pinned
    }

    #[test]
    fn npm_specs_are_pinned_only_by_an_exact_version() {
        for spec in [
            "pkg@1.2.3",
            "@scope/pkg@1.2.3",
            "@modelcontextprotocol/server-filesystem@2025.8.21",
            "pkg@v1.0.0-rc.1",
            "npm:pkg@=4.0.1",
            "github:owner/repo#0123456789abcdef0123456789abcdef01234567",
        ] {
            assert!(pinned(Ecosystem::Npm, spec), "{spec}");
        }
        for spec in [
            "pkg",
            "@scope/pkg",
            "pkg@latest",
            "pkg@^1.2.3",
            "pkg@~1.2",
            "pkg@1.x",
            "pkg@>=1.0.0",
            "@scope",
            "github:owner/repo#main",
        ] {
            assert!(!pinned(Ecosystem::Npm, spec), "{spec}");
        }
    }

    #[test]
    fn pypi_specs_are_pinned_by_double_equals_or_an_at_version() {
        for spec in [
            "mcp-server-fetch==0.6.2",
            "pkg[cli]===1.0",
            "ruff@0.6.9",
            "git+https://github.com/o/r@0123456789abcdef0123456789abcdef01234567",
        ] {
            assert!(pinned(Ecosystem::PyPi, spec), "{spec}");
        }
        for spec in [
            "mcp-server-fetch",
            "pkg>=1.0",
            "pkg==1.*",
            "pkg~=1.2",
            "pkg@latest",
            "git+https://github.com/o/r@main",
        ] {
            assert!(!pinned(Ecosystem::PyPi, spec), "{spec}");
        }
    }

    #[test]
    fn images_are_pinned_only_by_digest() {
        let digest = format!("mcp/fetch@sha256:{}", "a1".repeat(32));
        assert!(pinned(Ecosystem::Image, &digest));
        assert!(!pinned(Ecosystem::Image, "mcp/fetch:1.2.3"));
        assert!(!pinned(Ecosystem::Image, "mcp/fetch"));
    }

    #[test]
    fn urls_are_pinned_by_a_versioned_path_segment() {
        assert!(pinned(
            Ecosystem::Url,
            "https://deno.land/x/mcp@v1.2.3/mod.ts"
        ));
        assert!(!pinned(Ecosystem::Url, "https://example.com/server.ts"));
        assert!(!pinned(Ecosystem::Url, "https://deno.land/x/mcp/mod.ts"));
    }
}
