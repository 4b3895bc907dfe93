//! `paths = [...]` inside `roots = [...]`: a path argument must stay inside a directory.
//!
//! A value passes when every step below does:
//!
//! 1. **Decoding.** A `file:` URI (`file:///srv/a`, `file://localhost/srv/a`, `file:/srv/a`)
//!    is percent-decoded once, as the server will; a remote host, a `?query` or `#fragment`,
//!    a malformed escape, bytes that are not UTF-8 after decoding, and a value that still
//!    holds an escape after decoding (`%252e`, double encoding) are refused. Anything else is
//!    taken as a path as written (no decoding: `%2e%2e` in a plain path is a file name).
//! 2. **Characters.** Control characters (NUL included), backslashes, invisible formatting
//!    characters (zero-width, bidirectional controls, variation selectors, tags) and Unicode
//!    look-alikes of `/`, `\` and `.` ([`LOOKALIKES`]) are refused: a server or a person
//!    reading the path may see a separator or a dot where the gateway sees a letter.
//! 3. **Absolute.** Relative paths are refused: the gateway does not know the server's
//!    working directory.
//! 4. **Lexical containment.** `.` and `..` are applied to the text; a `..` above `/` is
//!    refused, and the result must be inside a root (as written, or as resolved).
//! 5. **Resolved containment.** The path as given (not its lexical form: `link/..` is the
//!    parent of the link's target for the kernel) goes through the [`PathResolver`], which
//!    follows symbolic links in its longest existing prefix; the result must be inside a
//!    root's resolved form. A symlink inside a root that points outside fails here.
//!
//! Nothing here touches the filesystem: the gateway's resolver does, behind the trait.
//! A check is a snapshot: a link created after the check and before the server opens the
//! path is not seen (sandboxing the server is the defence for that).

use std::borrow::Cow;
use std::io;
use std::path::{Component, Path, PathBuf};

/// Follows symbolic links in a path, as the kernel would when opening it.
///
/// The gateway's implementation canonicalizes the longest prefix that exists and appends
/// the rest, applying `..` in that rest to the text; tests use an in-memory model.
pub trait PathResolver: Send + Sync {
    /// The absolute path, free of `.`, `..` and symbolic links, that `path` (absolute) names.
    fn resolve(&self, path: &Path) -> io::Result<PathBuf>;
}

/// A resolver that knows of no links: `.` and `..` are applied to the text. For tests,
/// benchmarks and tools without a filesystem.
#[derive(Debug, Clone, Copy, Default)]
pub struct LexicalResolver;

impl PathResolver for LexicalResolver {
    fn resolve(&self, path: &Path) -> io::Result<PathBuf> {
        let mut out = PathBuf::from("/");
        for c in path.components() {
            match c {
                Component::Normal(n) => out.push(n),
                Component::ParentDir => {
                    out.pop();
                }
                Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
            }
        }
        Ok(out)
    }
}

/// Unicode characters refused in paths because they look like (or normalize to) `/`, `\`
/// or `.`, with their names for messages.
pub const LOOKALIKES: &[(char, &str)] = &[
    ('\u{2044}', "FRACTION SLASH"),
    ('\u{2215}', "DIVISION SLASH"),
    ('\u{FF0F}', "FULLWIDTH SOLIDUS"),
    ('\u{29F8}', "BIG SOLIDUS"),
    (
        '\u{2571}',
        "BOX DRAWINGS LIGHT DIAGONAL UPPER RIGHT TO LOWER LEFT",
    ),
    ('\u{1735}', "PHILIPPINE SINGLE PUNCTUATION"),
    ('\u{0337}', "COMBINING SHORT SOLIDUS OVERLAY"),
    ('\u{0338}', "COMBINING LONG SOLIDUS OVERLAY"),
    ('\u{FF3C}', "FULLWIDTH REVERSE SOLIDUS"),
    ('\u{FE68}', "SMALL REVERSE SOLIDUS"),
    ('\u{29F5}', "REVERSE SOLIDUS OPERATOR"),
    ('\u{29F9}', "BIG REVERSE SOLIDUS"),
    ('\u{2216}', "SET MINUS"),
    ('\u{FF0E}', "FULLWIDTH FULL STOP"),
    ('\u{2024}', "ONE DOT LEADER"),
    ('\u{2025}', "TWO DOT LEADER"),
    ('\u{2026}', "HORIZONTAL ELLIPSIS"),
    ('\u{FE52}', "SMALL FULL STOP"),
    ('\u{0701}', "SYRIAC SUPRALINEAR FULL STOP"),
    ('\u{0702}', "SYRIAC SUBLINEAR FULL STOP"),
    ('\u{A4F8}', "LISU LETTER TONE MYA TI"),
];

/// Invisible formatting characters: zero-width characters, bidirectional controls,
/// variation selectors, tags. Refused in paths (they make two different paths look equal).
fn is_invisible(c: char) -> bool {
    matches!(c,
        '\u{00AD}' | '\u{034F}' | '\u{061C}' | '\u{115F}' | '\u{1160}' | '\u{17B4}' | '\u{17B5}'
        | '\u{180B}'..='\u{180F}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}'
        | '\u{2060}'..='\u{206F}' | '\u{3164}' | '\u{FE00}'..='\u{FE0F}' | '\u{FEFF}'
        | '\u{FFA0}' | '\u{FFF9}'..='\u{FFFB}' | '\u{E0000}'..='\u{E0FFF}')
}

/// Why a path value did not pass. [`PathRejection::is_outside`] tells a clean "outside the
/// roots" from a value that could not be judged at all. The messages never repeat the value
/// (decision traces go to the audit log, which may be told not to keep arguments).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathRejection {
    /// `""`.
    #[error("is empty")]
    Empty,
    /// A control character (NUL included).
    #[error("contains control character U+{:04X} at character {position}", u32::from(*ch))]
    Control {
        /// The character.
        ch: char,
        /// One-based character position (in the decoded path).
        position: usize,
    },
    /// A look-alike of `/`, `\` or `.`.
    #[error("contains U+{:04X} {name} at character {position}, which looks like a path separator or dot", u32::from(*ch))]
    LookAlike {
        /// The character.
        ch: char,
        /// Its Unicode name.
        name: &'static str,
        /// One-based character position.
        position: usize,
    },
    /// An invisible formatting character.
    #[error("contains invisible character U+{:04X} at character {position}", u32::from(*ch))]
    Invisible {
        /// The character.
        ch: char,
        /// One-based character position.
        position: usize,
    },
    /// A `\`.
    #[error("contains a backslash, a path separator on some systems")]
    Backslash,
    /// A `file:` URI naming another host.
    #[error("is a file URI naming another host")]
    RemoteFileUri(String),
    /// A `file:` URI with `?` or `#`.
    #[error("is a file URI with a ?query or #fragment")]
    UriQueryOrFragment,
    /// A bad `%` escape in a `file:` URI.
    #[error("has a malformed %-escape")]
    BadEscape,
    /// Decoded bytes that are not UTF-8.
    #[error("is not UTF-8 once percent-decoded")]
    NotUtf8,
    /// An escape left after decoding once.
    #[error("is percent-encoded twice")]
    DoubleEncoded,
    /// Not absolute.
    #[error(
        "is not an absolute path (relative paths are refused: the server's working directory is unknown)"
    )]
    Relative,
    /// `..` above `/`.
    #[error("climbs above / with ..")]
    AboveRoot,
    /// Lexically outside every root.
    #[error("is outside the allowed roots")]
    Outside(PathBuf),
    /// Resolves (through a symbolic link) outside every root.
    #[error("resolves through a symbolic link to a place outside the allowed roots")]
    ResolvesOutside {
        /// The lexical form.
        path: PathBuf,
        /// What the resolver made of it.
        resolved: PathBuf,
    },
    /// The resolver failed (permissions, a link loop).
    #[error("cannot be resolved: {0}")]
    Unresolvable(String),
}

impl PathRejection {
    /// Was the value a well-formed path that is simply outside the roots? (Every other
    /// rejection means the value could not be judged.)
    pub fn is_outside(&self) -> bool {
        matches!(
            self,
            PathRejection::Outside(_) | PathRejection::ResolvesOutside { .. }
        )
    }
}

/// A directory paths must stay inside: as written (normalized) and as resolved once, when
/// the policy is built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Root {
    written: PathBuf,
    resolved: PathBuf,
}

impl Root {
    /// A root from the config: absolute, clean, resolved through `resolver` now.
    pub fn new(text: &str, resolver: &dyn PathResolver) -> Result<Root, PathRejection> {
        let text = decode(text)?;
        let written = normalize(&text)?;
        let resolved = resolver
            .resolve(&written)
            .map_err(|e| PathRejection::Unresolvable(e.to_string()))?;
        let resolved = clean_resolved(resolved)?;
        Ok(Root { written, resolved })
    }

    /// A root taken as already resolved (no links in it): for tests and tools.
    pub fn lexical(text: &str) -> Result<Root, PathRejection> {
        Root::new(text, &LexicalResolver)
    }

    /// The root as written, normalized.
    pub fn written(&self) -> &Path {
        &self.written
    }

    /// The root with its links resolved.
    pub fn resolved(&self) -> &Path {
        &self.resolved
    }
}

/// Checks one value against `roots`; returns the resolved path it names.
pub fn check_path(
    value: &str,
    roots: &[Root],
    resolver: &dyn PathResolver,
) -> Result<PathBuf, PathRejection> {
    let decoded = decode(value)?;
    let lexical = normalize(&decoded)?;
    if !roots
        .iter()
        .any(|r| lexical.starts_with(&r.written) || lexical.starts_with(&r.resolved))
    {
        return Err(PathRejection::Outside(lexical));
    }
    let resolved = resolver
        .resolve(Path::new(decoded.as_ref()))
        .map_err(|e| PathRejection::Unresolvable(e.to_string()))?;
    let resolved = clean_resolved(resolved)?;
    if !roots.iter().any(|r| resolved.starts_with(&r.resolved)) {
        return Err(PathRejection::ResolvesOutside {
            path: lexical,
            resolved,
        });
    }
    Ok(resolved)
}

/// A resolver's answer must be absolute and free of `.` and `..`.
fn clean_resolved(p: PathBuf) -> Result<PathBuf, PathRejection> {
    let clean = p.is_absolute()
        && p.components()
            .all(|c| matches!(c, Component::RootDir | Component::Normal(_)));
    if clean {
        Ok(p)
    } else {
        Err(PathRejection::Unresolvable(format!(
            "the resolver returned {}, which is not absolute and clean",
            p.display()
        )))
    }
}

/// Steps 1 and 2: decodes a `file:` URI, then refuses what must not be in a path.
pub(crate) fn decode(value: &str) -> Result<Cow<'_, str>, PathRejection> {
    let decoded = match value.get(..5) {
        Some(scheme) if scheme.eq_ignore_ascii_case("file:") => {
            Cow::Owned(decode_file_uri(&value[5..])?)
        }
        _ => Cow::Borrowed(value),
    };
    if decoded.is_empty() {
        return Err(PathRejection::Empty);
    }
    for (i, c) in decoded.chars().enumerate() {
        let position = i + 1;
        if c.is_control() {
            return Err(PathRejection::Control { ch: c, position });
        }
        if c == '\\' {
            return Err(PathRejection::Backslash);
        }
        if let Some((_, name)) = LOOKALIKES.iter().find(|(l, _)| *l == c) {
            return Err(PathRejection::LookAlike {
                ch: c,
                name,
                position,
            });
        }
        if is_invisible(c) {
            return Err(PathRejection::Invisible { ch: c, position });
        }
    }
    Ok(decoded)
}

/// The path of a `file:` URI (after the scheme), percent-decoded once.
fn decode_file_uri(rest: &str) -> Result<String, PathRejection> {
    if rest.contains(['?', '#']) {
        return Err(PathRejection::UriQueryOrFragment);
    }
    let path = match rest.strip_prefix("//") {
        Some(after) => {
            let (host, path) = after.split_at(after.find('/').unwrap_or(after.len()));
            if !(host.is_empty() || host.eq_ignore_ascii_case("localhost")) {
                return Err(PathRejection::RemoteFileUri(host.to_owned()));
            }
            path
        }
        None => rest,
    };
    let bytes = path.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3).ok_or(PathRejection::BadEscape)?;
            let hex = std::str::from_utf8(hex).map_err(|_| PathRejection::BadEscape)?;
            let b = u8::from_str_radix(hex, 16).map_err(|_| PathRejection::BadEscape)?;
            out.push(b);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    let decoded = String::from_utf8(out).map_err(|_| PathRejection::NotUtf8)?;
    if has_escape(&decoded) {
        return Err(PathRejection::DoubleEncoded);
    }
    Ok(decoded)
}

/// Does `s` contain `%` followed by two hex digits?
fn has_escape(s: &str) -> bool {
    s.as_bytes()
        .windows(3)
        .any(|w| w[0] == b'%' && w[1].is_ascii_hexdigit() && w[2].is_ascii_hexdigit())
}

/// Step 3 and the first half of 4: the absolute path with `.` and `..` applied to the text.
pub(crate) fn normalize(path: &str) -> Result<PathBuf, PathRejection> {
    if !path.starts_with('/') {
        return Err(PathRejection::Relative);
    }
    let mut parts: Vec<&str> = Vec::new();
    for segment in path.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                if parts.pop().is_none() {
                    return Err(PathRejection::AboveRoot);
                }
            }
            name => parts.push(name),
        }
    }
    let mut out = String::with_capacity(path.len());
    out.push('/');
    out.push_str(&parts.join("/"));
    Ok(PathBuf::from(out))
}
