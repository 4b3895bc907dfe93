//! What a sandboxed server may touch: the profile an operator writes in
//! `servers.<name>.sandbox`, as plain data. The config crate parses and checks it; this
//! crate turns it into kernel state ([`crate::Plan`]).

use std::fmt;
use std::path::PathBuf;

/// `servers.<name>.sandbox`: the server's view of the machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profile {
    /// Extra paths the server may read (and execute), besides the system directories, its
    /// own installation and its working directory.
    pub read: Vec<PathBuf>,
    /// Paths the server may read and write. Empty means the server's roots.
    pub write: Vec<PathBuf>,
    /// Which network the server sees.
    pub network: Network,
    /// rlimits (and a pids cgroup where the gateway may create one).
    pub limits: ResourceLimits,
    /// Refuse to start the server when a layer of this profile cannot be enforced on this
    /// kernel. `None`: the gateway's default (required in `serve`, best effort in `stdio`).
    pub required: Option<bool>,
}

impl Default for Profile {
    /// The safe default: no network, no home directory, read-only system directories, a
    /// private `/tmp`, and the default limits.
    fn default() -> Self {
        Profile {
            read: Vec::new(),
            write: Vec::new(),
            network: Network::None,
            limits: ResourceLimits::default(),
            required: None,
        }
    }
}

/// `sandbox.network`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Network {
    /// A network namespace with only a loopback interface of its own.
    None,
    /// The host's network, unfiltered (an explicit loosening; `check` warns).
    Host,
    /// No direct network; an HTTP proxy on the sandbox's own loopback reaches these
    /// destinations only.
    Allow(Vec<HostPort>),
}

impl fmt::Display for Network {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Network::None => f.write_str("none"),
            Network::Host => f.write_str("host (unfiltered)"),
            Network::Allow(list) => {
                f.write_str("proxy to ")?;
                for (i, hp) in list.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{hp}")?;
                }
                Ok(())
            }
        }
    }
}

/// One destination of a network allow list: a host name or IP literal, and a port.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct HostPort {
    /// Lower-case host name, or an IP literal (IPv6 without brackets).
    pub host: String,
    pub port: u16,
}

impl HostPort {
    /// Parses `host:port` or `[v6]:port`. The port is required: an allow list that opened
    /// every port of a host would open its SSH and database ports too.
    pub fn parse(text: &str) -> Result<HostPort, String> {
        let (host, port) = if let Some(rest) = text.strip_prefix('[') {
            let (host, after) = rest
                .split_once(']')
                .ok_or_else(|| format!("\"{text}\": an IPv6 address needs a closing ']'"))?;
            let port = after
                .strip_prefix(':')
                .ok_or_else(|| format!("\"{text}\" needs a port: \"[{host}]:443\""))?;
            if host.parse::<std::net::Ipv6Addr>().is_err() {
                return Err(format!("\"{text}\": \"{host}\" is not an IPv6 address"));
            }
            (host.to_owned(), port)
        } else {
            let (host, port) = text
                .rsplit_once(':')
                .ok_or_else(|| format!("\"{text}\" needs a port: \"{text}:443\""))?;
            if host.contains(':') {
                return Err(format!(
                    "\"{text}\": write an IPv6 address in brackets, \"[{host}]:443\""
                ));
            }
            let valid = !host.is_empty()
                && host.len() <= 253
                && host
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
            if !valid {
                return Err(format!("\"{text}\": \"{host}\" is not a host name"));
            }
            (host.to_ascii_lowercase(), port)
        };
        let port: u16 = port
            .parse()
            .ok()
            .filter(|p| *p != 0)
            .ok_or_else(|| format!("\"{text}\": the port must be 1 to 65535"))?;
        Ok(HostPort { host, port })
    }
}

impl fmt::Display for HostPort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// `sandbox.memory`, `.processes`, `.files`, `.cpu_seconds`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResourceLimits {
    /// Bytes of private writable memory (`RLIMIT_DATA`: unlike `RLIMIT_AS` it does not count
    /// the address space V8 and others reserve but never touch).
    pub memory: u64,
    /// Processes and threads of the server (a pids cgroup, else `RLIMIT_NPROC`, which the
    /// kernel counts per user namespace).
    pub processes: u64,
    /// Open file descriptors (`RLIMIT_NOFILE`).
    pub files: u64,
    /// CPU seconds (`RLIMIT_CPU`); `None`: unlimited (a long-lived server accumulates).
    pub cpu_seconds: Option<u64>,
}

impl Default for ResourceLimits {
    fn default() -> Self {
        ResourceLimits {
            memory: 2 << 30,
            processes: 256,
            files: 1024,
            cpu_seconds: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_port_parses_names_and_literals() {
        let hp = HostPort::parse("API.Example.com:443").expect("name");
        assert_eq!((hp.host.as_str(), hp.port), ("api.example.com", 443));
        let hp = HostPort::parse("[::1]:8080").expect("v6");
        assert_eq!((hp.host.as_str(), hp.port), ("::1", 8080));
        assert_eq!(hp.to_string(), "[::1]:8080");
        assert_eq!(
            HostPort::parse("127.0.0.1:80").expect("v4").to_string(),
            "127.0.0.1:80"
        );
    }

    #[test]
    fn host_port_refuses_what_would_open_too_much() {
        for bad in [
            "example.com",
            "example.com:0",
            "example.com:99999",
            "::1:80",
            "[nothex]:80",
            ":443",
            "exa mple.com:443",
            "*.example.com:443",
        ] {
            assert!(HostPort::parse(bad).is_err(), "{bad} accepted");
        }
    }
}
