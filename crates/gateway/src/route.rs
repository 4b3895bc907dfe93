//! Routes: what a client reaches at `/mcp/<name>` (or through `portcullis stdio <name>`).
//!
//! A route is either one configured server, or a virtual server that joins several. In a
//! virtual server every name carries its server: tools and prompts are `<server>.<name>`,
//! resource URIs are `<server>+<uri>`. Server names are `[a-z0-9-]+`, so the first `.` or
//! `+` always splits a joined name back unambiguously, whatever the upstream's own names
//! contain — and `<server>+<scheme>:…` is itself a valid URI, with templates kept intact.

use std::sync::Arc;

use crate::config::{Config, FailureMode};

#[derive(Debug, Clone)]
pub struct Route {
    pub name: Arc<str>,
    pub members: Vec<Arc<str>>,
    /// `None` for a single server: names pass through unchanged.
    pub virtual_mode: Option<FailureMode>,
}

/// A name or URI as the upstream knows it, and the server it belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved<'a> {
    pub server: &'a str,
    pub name: &'a str,
}

impl Route {
    pub fn single(server: &str) -> Self {
        Route {
            name: Arc::from(server),
            members: vec![Arc::from(server)],
            virtual_mode: None,
        }
    }

    pub fn is_virtual(&self) -> bool {
        self.virtual_mode.is_some()
    }

    fn member(&self, server: &str) -> Option<&str> {
        self.members.iter().find(|m| &***m == server).map(|m| &**m)
    }

    /// Splits a client-visible tool or prompt name.
    pub fn resolve_name<'a>(&'a self, name: &'a str) -> Option<Resolved<'a>> {
        self.resolve(name, '.')
    }

    /// Splits a client-visible resource URI (or URI template).
    pub fn resolve_uri<'a>(&'a self, uri: &'a str) -> Option<Resolved<'a>> {
        self.resolve(uri, '+')
    }

    fn resolve<'a>(&'a self, joined: &'a str, sep: char) -> Option<Resolved<'a>> {
        if !self.is_virtual() {
            return Some(Resolved {
                server: &self.members[0],
                name: joined,
            });
        }
        let (server, name) = joined.split_once(sep)?;
        let server = self.member(server)?;
        (!name.is_empty()).then_some(Resolved { server, name })
    }

    /// The client-visible form of an upstream's tool or prompt name.
    pub fn expose_name(&self, server: &str, name: &str) -> String {
        if self.is_virtual() {
            format!("{server}.{name}")
        } else {
            name.to_owned()
        }
    }

    /// The client-visible form of an upstream's resource URI or template.
    pub fn expose_uri(&self, server: &str, uri: &str) -> String {
        if self.is_virtual() {
            format!("{server}+{uri}")
        } else {
            uri.to_owned()
        }
    }
}

/// Every route of a configuration: one per server, one per virtual server.
pub fn routes(config: &Config) -> Vec<Arc<Route>> {
    let mut out: Vec<Arc<Route>> = config
        .servers
        .keys()
        .map(|s| Arc::new(Route::single(s)))
        .collect();
    for (name, v) in &config.virtuals {
        out.push(Arc::new(Route {
            name: Arc::from(name.as_str()),
            members: v.servers.iter().map(|s| Arc::from(s.as_str())).collect(),
            virtual_mode: Some(v.on_upstream_failure),
        }));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn joined() -> Route {
        Route {
            name: Arc::from("all"),
            members: vec![Arc::from("files"), Arc::from("git-hub")],
            virtual_mode: Some(FailureMode::Omit),
        }
    }

    #[test]
    fn single_routes_pass_names_through() {
        let r = Route::single("files");
        assert_eq!(
            r.resolve_name("read.file"),
            Some(Resolved {
                server: "files",
                name: "read.file"
            })
        );
        assert_eq!(r.expose_name("files", "a.b"), "a.b");
    }

    #[test]
    fn virtual_names_split_at_the_first_separator() {
        let r = joined();
        assert_eq!(
            r.resolve_name("files.read.file"),
            Some(Resolved {
                server: "files",
                name: "read.file"
            })
        );
        assert_eq!(
            r.resolve_uri("git-hub+git+https://x/y+z"),
            Some(Resolved {
                server: "git-hub",
                name: "git+https://x/y+z"
            })
        );
        assert_eq!(r.resolve_name("nope.x"), None);
        assert_eq!(r.resolve_name("files."), None);
        assert_eq!(r.resolve_name("files"), None);
    }

    #[test]
    fn exposing_then_resolving_gives_back_the_upstream_name() {
        let r = joined();
        for (server, name) in [("files", "a.b.c"), ("git-hub", ""), ("files", "x+y")] {
            let shown = r.expose_name(server, name);
            let back = r.resolve_name(&shown);
            if name.is_empty() {
                assert!(back.is_none());
            } else {
                assert_eq!(back, Some(Resolved { server, name }));
            }
        }
        let uri = r.expose_uri("files", "file:///{path}");
        assert_eq!(uri, "files+file:///{path}");
        assert_eq!(
            r.resolve_uri(&uri),
            Some(Resolved {
                server: "files",
                name: "file:///{path}"
            })
        );
    }
}
