//! The option syntax of the programs [`super::command`] recognises: enough of each to
//! find its first operand (the script, the package, the wrapped command) and the options
//! that matter for a review.

/// One program's option syntax, enough to find its first operand.
pub(super) struct Syntax {
    /// Options whose value is the next argument when not attached (`--opt=v`, `-ov`).
    pub(super) value: &'static [&'static str],
    /// Options after which the rest of the argv belongs to the code (`-c`, `-e`, `-m`).
    pub(super) stop: &'static [&'static str],
    /// Short options may be clustered (`-Bc`, `-it`).
    pub(super) clustered: bool,
}

/// The options before the first operand, and where that operand is.
pub(super) struct Scan {
    pub(super) opts: Vec<(String, Option<String>)>,
    pub(super) operand: Option<usize>,
}

impl Scan {
    pub(super) fn values<'a>(&'a self, names: &'a [&str]) -> impl Iterator<Item = &'a str> + 'a {
        self.opts
            .iter()
            .filter(|(n, _)| names.contains(&n.as_str()))
            .filter_map(|(_, v)| v.as_deref())
    }

    pub(super) fn has(&self, names: &[&str]) -> bool {
        self.opts.iter().any(|(n, _)| names.contains(&n.as_str()))
    }
}

pub(super) fn scan(args: &[String], syntax: &Syntax) -> Scan {
    let mut opts = Vec::new();
    let mut i = 0;
    while i < args.len() {
        let arg = &args[i];
        if arg == "--" {
            let operand = (i + 1 < args.len()).then_some(i + 1);
            return Scan { opts, operand };
        }
        if arg == "-" || !arg.starts_with('-') {
            return Scan {
                opts,
                operand: Some(i),
            };
        }
        let mut stop = false;
        if arg.starts_with("--") || !syntax.clustered || arg.len() == 2 {
            let (name, attached) = match arg.split_once('=').filter(|_| arg.starts_with("--")) {
                Some((n, v)) => (n.to_owned(), Some(v.to_owned())),
                None => (arg.clone(), None),
            };
            let value = if attached.is_none() && syntax.value.contains(&name.as_str()) {
                i += 1;
                args.get(i).cloned()
            } else {
                attached
            };
            stop = syntax.stop.contains(&name.as_str());
            opts.push((name, value));
        } else {
            let chars: Vec<char> = arg[1..].chars().collect();
            for (k, c) in chars.iter().enumerate() {
                let name = format!("-{c}");
                if syntax.value.contains(&name.as_str()) {
                    let rest: String = chars[k + 1..].iter().collect();
                    let value = if rest.is_empty() {
                        i += 1;
                        args.get(i).cloned()
                    } else {
                        Some(rest)
                    };
                    stop = syntax.stop.contains(&name.as_str());
                    opts.push((name, value));
                    break;
                }
                opts.push((name, None));
            }
        }
        if stop {
            return Scan {
                opts,
                operand: None,
            };
        }
        i += 1;
    }
    Scan {
        opts,
        operand: None,
    }
}

#[rustfmt::skip]
pub(super) const NODE: Syntax = Syntax {
    value: &[
        "-r", "--require", "--import", "--loader", "--experimental-loader", "-C", "--conditions",
        "--title", "--input-type", "--env-file", "--inspect-port", "-e", "--eval", "-p",
        "--print",
    ],
    stop: &["-e", "--eval", "-p", "--print"],
    clustered: false,
};

#[rustfmt::skip]
pub(super) const PYTHON: Syntax = Syntax {
    value: &[
        "-c", "-m", "-W", "-X", "--check-hash-based-pycs",
    ],
    stop: &["-c", "-m"],
    clustered: true,
};

#[rustfmt::skip]
pub(super) const DENO: Syntax = Syntax {
    value: &[
        "-c", "--config", "--import-map", "--lock", "--cert", "--location", "--seed", "-L",
        "--log-level",
    ],
    stop: &[],
    clustered: false,
};

#[rustfmt::skip]
pub(super) const BUN: Syntax = Syntax {
    value: &[
        "-r", "--preload", "--cwd", "--env-file", "--config", "-e", "--eval", "-p", "--print",
    ],
    stop: &["-e", "--eval", "-p", "--print"],
    clustered: false,
};

#[rustfmt::skip]
pub(super) const RUBY: Syntax = Syntax {
    value: &[
        "-e", "-r", "-I", "-C", "-E",
    ],
    stop: &["-e"],
    clustered: true,
};

#[rustfmt::skip]
pub(super) const PERL: Syntax = Syntax {
    value: &[
        "-e", "-E", "-I", "-M", "-m",
    ],
    stop: &["-e", "-E"],
    clustered: true,
};

#[rustfmt::skip]
pub(super) const SHELL: Syntax = Syntax {
    value: &[
        "-c", "-o", "-O",
    ],
    stop: &["-c"],
    clustered: true,
};

#[rustfmt::skip]
pub(super) const NPX: Syntax = Syntax {
    value: &[
        "-p", "--package", "-c", "--call", "--registry", "--cache", "--prefix", "--userconfig",
        "-w", "--workspace",
    ],
    stop: &["-c", "--call"],
    clustered: false,
};

#[rustfmt::skip]
pub(super) const DLX: Syntax = Syntax {
    value: &[
        "-p", "--package",
    ],
    stop: &[],
    clustered: false,
};

#[rustfmt::skip]
pub(super) const UV: Syntax = Syntax {
    value: &[
        "--from", "--with", "--with-editable", "--with-requirements", "-p", "--python",
        "--index", "--index-url", "--extra-index-url", "--default-index", "-f", "--find-links",
        "--directory", "--project", "--cache-dir", "--config-file", "-c", "--constraints",
        "--overrides", "--env-file", "--python-preference", "--package",
    ],
    stop: &[],
    clustered: false,
};

#[rustfmt::skip]
pub(super) const PIPX: Syntax = Syntax {
    value: &[
        "--spec", "--python", "-i", "--index-url", "--pip-args",
    ],
    stop: &[],
    clustered: false,
};

#[rustfmt::skip]
pub(super) const DOCKER: Syntax = Syntax {
    value: &[
        "-e", "--env", "--env-file", "-v", "--volume", "--mount", "-p", "--publish", "--name",
        "--network", "--net", "-w", "--workdir", "-u", "--user", "--entrypoint", "-l", "--label",
        "-m", "--memory", "--cpus", "--cap-add", "--cap-drop", "--device", "--add-host", "--dns",
        "-h", "--hostname", "--platform", "--pull", "--restart", "--ulimit", "--tmpfs",
        "--security-opt", "--ipc", "--pid", "--userns", "--shm-size", "--log-driver",
        "--log-opt", "--runtime", "--gpus", "--cidfile", "--expose", "--group-add", "--uts",
        "-a", "--attach", "-c", "--cpu-shares", "--cgroupns", "--stop-signal", "--stop-timeout",
    ],
    stop: &[],
    clustered: true,
};

#[rustfmt::skip]
pub(super) const SUDO: Syntax = Syntax {
    value: &[
        "-u", "-g", "-h", "-p", "-C", "-D", "-r", "-t", "-U", "-T", "--user", "--group",
    ],
    stop: &[],
    clustered: true,
};

#[rustfmt::skip]
pub(super) const ENV: Syntax = Syntax {
    value: &[
        "-u", "--unset", "-C", "--chdir", "-S", "--split-string",
    ],
    stop: &[],
    clustered: true,
};

#[rustfmt::skip]
pub(super) const NICE: Syntax = Syntax {
    value: &[
        "-n", "--adjustment", "-s", "--signal", "-k", "--kill-after", "-i", "-o", "-e",
    ],
    stop: &[],
    clustered: false,
};
