//! An index from (server, kind, name) to the rules that could match, so that a decision
//! over a thousand rules looks at the few that are about its target, in order.
//!
//! Rules are bucketed by server (rules for every server in a bucket of their own), then by
//! kind; within a kind, rules whose names are all literal (no wildcard) are found by hash
//! lookup, and the others (globs, or no name list at all) are scanned. Merging the four
//! sorted lists of positions (server exact, server scan, any exact, any scan) yields the
//! candidates in rule order, so first match still wins. Every rule not yielded is about
//! another server, kind or name.

use std::collections::HashMap;

use crate::rule::{Coverage, Kind, Rule};

/// Length of the inline quick-reject prefix of a scanned rule.
const QUICK: usize = 15;

/// A rule that must be matched by glob, with the bytes every name it matches starts with
/// (the longest common literal prefix of its globs, cut to [`QUICK`] bytes), so that most
/// names it does not match are refused without touching the rule.
#[derive(Debug, Clone, Copy)]
struct Scan {
    pos: u32,
    len: u8,
    prefix: [u8; QUICK],
}

impl Scan {
    fn new(pos: u32, prefixes: &[&str]) -> Scan {
        let mut common: &[u8] = prefixes.first().map_or(&[], |p| p.as_bytes());
        for p in prefixes.iter().skip(1) {
            let n = common
                .iter()
                .zip(p.as_bytes())
                .take_while(|(a, b)| a == b)
                .count();
            common = &common[..n];
        }
        let common = &common[..common.len().min(QUICK)];
        let mut prefix = [0; QUICK];
        prefix[..common.len()].copy_from_slice(common);
        Scan {
            pos,
            len: common.len() as u8,
            prefix,
        }
    }

    fn may_match(&self, name: &str) -> bool {
        name.as_bytes()
            .starts_with(&self.prefix[..usize::from(self.len)])
    }
}

#[derive(Debug, Clone, Default)]
struct KindBucket {
    /// Literal name → positions of the rules listing it, ascending.
    exact: HashMap<String, Vec<u32>>,
    /// Rules that must be matched by glob (or cover every name), ascending.
    scan: Vec<Scan>,
}

#[derive(Debug, Clone, Default)]
struct Bucket {
    kinds: [KindBucket; 3],
}

/// The index of a policy's rules.
#[derive(Debug, Clone, Default)]
pub(crate) struct Index {
    servers: HashMap<String, Bucket>,
    any: Bucket,
}

fn slot(kind: Kind) -> usize {
    match kind {
        Kind::Tool => 0,
        Kind::Prompt => 1,
        Kind::Resource => 2,
    }
}

impl Index {
    pub(crate) fn new(rules: &[Rule]) -> Index {
        let mut index = Index::default();
        for (i, rule) in rules.iter().enumerate() {
            let Ok(pos) = u32::try_from(i) else { break };
            let bucket = match &rule.server {
                Some(s) => index.servers.entry(s.clone()).or_default(),
                None => &mut index.any,
            };
            for kind in Kind::ALL {
                let kb = &mut bucket.kinds[slot(kind)];
                match rule.coverage(kind) {
                    Coverage::None => {}
                    Coverage::Every => kb.scan.push(Scan::new(pos, &[])),
                    Coverage::Names(globs) => {
                        let literals: Option<Vec<String>> =
                            globs.iter().map(|g| g.literal()).collect();
                        match literals {
                            Some(names) => {
                                for name in names {
                                    let list = kb.exact.entry(name).or_default();
                                    if list.last() != Some(&pos) {
                                        list.push(pos);
                                    }
                                }
                            }
                            None => {
                                let prefixes: Vec<&str> =
                                    globs.iter().map(|g| g.literal_prefix()).collect();
                                kb.scan.push(Scan::new(pos, &prefixes));
                            }
                        }
                    }
                }
            }
        }
        index
    }

    /// The positions of the rules that may match (server, kind, name), ascending, each with
    /// whether its name globs still need matching (`false`: matched by exact name).
    pub(crate) fn candidates<'a>(
        &'a self,
        server: &str,
        kind: Kind,
        name: &'a str,
    ) -> Candidates<'a> {
        let k = slot(kind);
        let empty_exact: &[u32] = &[];
        let empty_scan: &[Scan] = &[];
        let (server_exact, server_scan) = match self.servers.get(server) {
            Some(b) => (
                b.kinds[k]
                    .exact
                    .get(name)
                    .map_or(empty_exact, Vec::as_slice),
                b.kinds[k].scan.as_slice(),
            ),
            None => (empty_exact, empty_scan),
        };
        let any = &self.any.kinds[k];
        Candidates {
            name,
            exact: [
                server_exact,
                any.exact.get(name).map_or(empty_exact, Vec::as_slice),
            ],
            scan: [server_scan, any.scan.as_slice()],
        }
    }
}

/// A merge of the ascending lists of exact and scanned candidates, in rule order.
pub(crate) struct Candidates<'a> {
    name: &'a str,
    exact: [&'a [u32]; 2],
    scan: [&'a [Scan]; 2],
}

impl Iterator for Candidates<'_> {
    type Item = (usize, bool);

    fn next(&mut self) -> Option<(usize, bool)> {
        // Drop scanned rules whose prefix already rules the name out.
        for list in &mut self.scan {
            while let Some(first) = list.first() {
                if first.may_match(self.name) {
                    break;
                }
                *list = &list[1..];
            }
        }
        let heads = [
            self.exact[0].first().copied(),
            self.scan[0].first().map(|s| s.pos),
            self.exact[1].first().copied(),
            self.scan[1].first().map(|s| s.pos),
        ];
        let (which, pos) = heads
            .iter()
            .enumerate()
            .filter_map(|(i, p)| p.map(|p| (i, p)))
            .min_by_key(|(_, p)| *p)?;
        match which {
            0 => self.exact[0] = &self.exact[0][1..],
            1 => self.scan[0] = &self.scan[0][1..],
            2 => self.exact[1] = &self.exact[1][1..],
            _ => self.scan[1] = &self.scan[1][1..],
        }
        Some((pos as usize, which % 2 == 1))
    }
}
