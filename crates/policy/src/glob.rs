//! Glob patterns for tool names, prompt names and resource URIs.
//!
//! Patterns are parsed once, when the policy is built, into a small token list, and matched
//! with the classic greedy-star algorithm that keeps a single backtrack point. That bounds a
//! match to O(pattern × name) steps whatever the input: a policy is evaluated on names chosen
//! by untrusted upstream servers and clients, so a pathological name must not be able to
//! stall the gateway (no exponential backtracking, no regex engine).
//!
//! Matching works on `char`s, not bytes, so `?` is exactly one Unicode scalar value and a
//! class never matches half of a multi-byte character. Matching is case-sensitive, as MCP
//! names are.

use std::fmt;

/// The longest pattern accepted, in characters. Policies are written by people; anything
/// longer is a mistake or an attack on the matcher, and refusing it keeps matching cheap.
pub const MAX_GLOB_LEN: usize = 1024;

/// Why a pattern was refused. Positions are zero-based character offsets into the pattern;
/// the messages print them one-based, as an editor would.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GlobError {
    /// `""`: a rule naming nothing is almost certainly a typo, so it is refused rather than
    /// silently matching no name at all.
    #[error("empty pattern (use `*` to match every name)")]
    Empty,
    /// Longer than [`MAX_GLOB_LEN`] characters.
    #[error("pattern is {len} characters long; the limit is {max}", max = MAX_GLOB_LEN)]
    TooLong {
        /// The pattern's length in characters.
        len: usize,
    },
    /// A `[` with no closing `]`.
    #[error("unclosed `[` at character {} (escape a literal bracket as `\\[`)", .position + 1)]
    UnclosedClass {
        /// Offset of the `[`.
        position: usize,
    },
    /// A `\` as the last character, with nothing to escape.
    #[error("trailing `\\` at character {} escapes nothing (write `\\\\` for a backslash)", .position + 1)]
    TrailingEscape {
        /// Offset of the `\`.
        position: usize,
    },
    /// `[]`, `[!]` or `[^]`: a class that could match no character.
    #[error("empty character class at character {} (escape a literal `]` as `\\]`)", .position + 1)]
    EmptyClass {
        /// Offset of the `[`.
        position: usize,
    },
    /// `[z-a]`: a range whose end comes before its start.
    #[error("invalid range `{start}-{end}` at character {}: the end comes before the start", .position + 1)]
    InvalidRange {
        /// Offset of the range's first character.
        position: usize,
        /// First character of the range.
        start: char,
        /// Last character of the range.
        end: char,
    },
}

impl GlobError {
    /// Zero-based character offset of the problem, where there is one.
    pub fn position(&self) -> Option<usize> {
        match self {
            GlobError::Empty | GlobError::TooLong { .. } => None,
            GlobError::UnclosedClass { position }
            | GlobError::TrailingEscape { position }
            | GlobError::EmptyClass { position }
            | GlobError::InvalidRange { position, .. } => Some(*position),
        }
    }
}

/// One parsed unit of a pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    /// Exactly this character.
    Literal(char),
    /// `?`: any one character.
    AnyChar,
    /// `*`: any sequence, possibly empty. Runs of stars are collapsed to one when parsing.
    Star,
    /// `[...]`: one character in (or, negated, not in) the inclusive ranges.
    Class {
        negated: bool,
        ranges: Vec<(char, char)>,
    },
}

impl Token {
    /// Does this single-character token accept `c`? (`Star` is handled by the matcher.)
    fn accepts(&self, c: char) -> bool {
        match self {
            Token::Literal(l) => *l == c,
            Token::AnyChar => true,
            Token::Star => false,
            Token::Class { negated, ranges } => {
                ranges.iter().any(|&(lo, hi)| lo <= c && c <= hi) != *negated
            }
        }
    }
}

/// A compiled glob pattern.
///
/// Syntax: `*` matches any sequence of characters (including `/` and `.`, so `file:///*`
/// covers a whole tree of resource URIs); `?` matches exactly one character; `[abc]`,
/// `[a-z]` match one character of a set, `[!a-z]` / `[^a-z]` one character outside it;
/// `\` makes the next character literal, inside or outside a class. Everything else is
/// literal.
#[derive(Clone)]
pub struct Glob {
    pattern: String,
    tokens: Vec<Token>,
    /// The literal characters the pattern starts with, and ends with (after its last
    /// wildcard): every match starts and ends with them, so most names that do not match
    /// are refused by two string comparisons.
    prefix: String,
    suffix: String,
}

impl Glob {
    /// Parses `pattern`, refusing malformed or oversized patterns with the position of the
    /// problem.
    pub fn new(pattern: &str) -> Result<Glob, GlobError> {
        let chars: Vec<char> = pattern.chars().collect();
        if chars.is_empty() {
            return Err(GlobError::Empty);
        }
        if chars.len() > MAX_GLOB_LEN {
            return Err(GlobError::TooLong { len: chars.len() });
        }
        let mut tokens = Vec::new();
        let mut i = 0;
        while i < chars.len() {
            match chars[i] {
                '*' => {
                    if tokens.last() != Some(&Token::Star) {
                        tokens.push(Token::Star);
                    }
                    i += 1;
                }
                '?' => {
                    tokens.push(Token::AnyChar);
                    i += 1;
                }
                '\\' => {
                    let escaped = *chars
                        .get(i + 1)
                        .ok_or(GlobError::TrailingEscape { position: i })?;
                    tokens.push(Token::Literal(escaped));
                    i += 2;
                }
                '[' => {
                    let (token, next) = parse_class(&chars, i)?;
                    tokens.push(token);
                    i = next;
                }
                c => {
                    tokens.push(Token::Literal(c));
                    i += 1;
                }
            }
        }
        let literal = |t: &Token| match t {
            Token::Literal(c) => Some(*c),
            _ => None,
        };
        let prefix: String = tokens.iter().map_while(literal).collect();
        let suffix: String = if prefix.chars().count() == tokens.len() {
            String::new()
        } else {
            let mut rev: Vec<char> = tokens.iter().rev().map_while(literal).collect();
            rev.reverse();
            rev.into_iter().collect()
        };
        Ok(Glob {
            pattern: pattern.to_owned(),
            tokens,
            prefix,
            suffix,
        })
    }

    /// Escapes `text` so that the resulting pattern matches exactly `text` and nothing else.
    pub fn escape(text: &str) -> String {
        let mut out = String::with_capacity(text.len());
        for c in text.chars() {
            if matches!(c, '*' | '?' | '[' | ']' | '\\') {
                out.push('\\');
            }
            out.push(c);
        }
        out
    }

    /// Does the whole of `s` match the pattern?
    pub fn matches(&self, s: &str) -> bool {
        if !s.starts_with(self.prefix.as_str()) || !s.ends_with(self.suffix.as_str()) {
            return false;
        }
        let tokens = &self.tokens;
        let mut t = 0; // next token
        let mut si = 0; // byte offset of the next unmatched char of `s`
        // The single backtrack point: the token after the last star seen, and the byte
        // offset in `s` where that star's current attempt ends. Only the latest star needs
        // remembering: whatever an earlier star could absorb, the later one can absorb too.
        let mut backtrack: Option<(usize, usize)> = None;
        loop {
            let next_char = s[si..].chars().next();
            match (tokens.get(t), next_char) {
                (Some(Token::Star), _) => {
                    t += 1;
                    backtrack = Some((t, si));
                    continue;
                }
                (Some(token), Some(c)) if token.accepts(c) => {
                    t += 1;
                    si += c.len_utf8();
                    continue;
                }
                (None, None) => return true,
                _ => {}
            }
            // Mismatch: let the last star absorb one more character and retry after it.
            match backtrack {
                Some((after_star, star_end)) => match s[star_end..].chars().next() {
                    Some(c) => {
                        let star_end = star_end + c.len_utf8();
                        backtrack = Some((after_star, star_end));
                        t = after_star;
                        si = star_end;
                    }
                    None => return false,
                },
                None => return false,
            }
        }
    }

    /// The literal text every match starts with (possibly empty).
    pub fn literal_prefix(&self) -> &str {
        &self.prefix
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.pattern
    }

    /// Does this pattern match every string (it is made of stars only)? Used to tell that a
    /// rule covers a whole kind, for `may_expose` and for shadowed-rule warnings.
    pub fn is_match_all(&self) -> bool {
        self.tokens == [Token::Star]
    }

    /// Is this pattern a plain name with no wildcard, i.e. does it match exactly one string?
    pub fn is_literal(&self) -> bool {
        self.tokens.iter().all(|t| matches!(t, Token::Literal(_)))
    }

    /// The one string a pattern without wildcards matches (escapes removed), or `None` when
    /// it has a wildcard. Used to index rules by exact name.
    pub fn literal(&self) -> Option<String> {
        self.tokens
            .iter()
            .map(|t| match t {
                Token::Literal(c) => Some(*c),
                _ => None,
            })
            .collect()
    }
}

/// Parses a class starting at `chars[open] == '['`; returns the token and the index after
/// the closing `]`.
fn parse_class(chars: &[char], open: usize) -> Result<(Token, usize), GlobError> {
    let mut i = open + 1;
    let negated = matches!(chars.get(i), Some('!' | '^'));
    if negated {
        i += 1;
    }
    let mut ranges = Vec::new();
    loop {
        let (start, start_at) = match chars.get(i) {
            None => return Err(GlobError::UnclosedClass { position: open }),
            Some(']') => break,
            Some('\\') => match chars.get(i + 1) {
                Some(&c) => (c, i),
                None => return Err(GlobError::UnclosedClass { position: open }),
            },
            Some(&c) => (c, i),
        };
        i = if chars[i] == '\\' { i + 2 } else { i + 1 };
        // A `-` between two characters makes a range; at either end of the class it is
        // literal.
        if chars.get(i) == Some(&'-') && !matches!(chars.get(i + 1), None | Some(']')) {
            let (end, next) = match chars[i + 1] {
                '\\' => match chars.get(i + 2) {
                    Some(&c) => (c, i + 3),
                    None => return Err(GlobError::UnclosedClass { position: open }),
                },
                c => (c, i + 2),
            };
            if end < start {
                return Err(GlobError::InvalidRange {
                    position: start_at,
                    start,
                    end,
                });
            }
            ranges.push((start, end));
            i = next;
        } else {
            ranges.push((start, start));
        }
    }
    if ranges.is_empty() {
        return Err(GlobError::EmptyClass { position: open });
    }
    Ok((Token::Class { negated, ranges }, i + 1))
}

impl fmt::Debug for Glob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Glob({:?})", self.pattern)
    }
}

impl fmt::Display for Glob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.pattern)
    }
}

/// Two globs are equal when they were written the same way.
impl PartialEq for Glob {
    fn eq(&self, other: &Self) -> bool {
        self.pattern == other.pattern
    }
}

impl Eq for Glob {}

impl std::str::FromStr for Glob {
    type Err = GlobError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Glob::new(s)
    }
}

impl serde::Serialize for Glob {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.pattern)
    }
}

impl<'de> serde::Deserialize<'de> for Glob {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let pattern = String::deserialize(deserializer)?;
        Glob::new(&pattern).map_err(serde::de::Error::custom)
    }
}
