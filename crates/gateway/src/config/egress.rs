//! `[egress]`: the destinations the operator opens on purpose to the gateway's outbound client.
//!
//! The egress guard (`portcullis_egress::guard`) blocks loopback, private, link-local (cloud
//! metadata) and other internal addresses, and plain `http`, for every request the gateway
//! makes. The two lists here are its only exceptions, and both default to empty in every run
//! mode: a gateway that must reach an internal identity provider says so in its config, and
//! `portcullis check` warns about each entry.
//!
//! Each entry is parsed on its own, so a bad one is reported at its own line and every bad
//! entry is reported at once; the policy is then built from the entries that parsed.

use portcullis_egress::guard::{AllowEntry, EgressPolicy};
use portcullis_egress::proxy::{Destination, Host};
use portcullis_sandbox::{Network, Profile};
use serde::Deserialize;
use toml::Spanned;

use super::diagnostic::Issues;
use super::raw::SpannedList;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "the [egress] table")]
pub(crate) struct RawEgress {
    pub allow: Option<SpannedList>,
    pub http: Option<SpannedList>,
}

/// `[egress]` into the guard's policy. Bad entries are recorded in `issues`.
pub(crate) fn egress(raw: RawEgress, issues: &mut Issues) -> EgressPolicy {
    let allow: Vec<String> = entries(raw.allow, issues, |text| {
        AllowEntry::parse(text)
            .map(|_| ())
            .map_err(|e| e.to_string())
    });
    let http: Vec<String> = entries(raw.http, issues, |text| {
        Host::parse(text).map(|_| ()).map_err(|e| {
            format!(
                "egress.http entry {text:?}: {e} (write a host name or an IP address, without scheme or port)"
            )
        })
    });
    // Every entry passed its own check above, so this only fails if the two parsers disagree;
    // then nothing is opened rather than part of it.
    EgressPolicy::new(&allow, &http).unwrap_or_else(|e| {
        issues.at(0..0, e.to_string());
        EgressPolicy::default()
    })
}

/// The entries of one list that `check` accepts; the others become issues at their span.
fn entries(
    list: Option<SpannedList>,
    issues: &mut Issues,
    check: impl Fn(&str) -> Result<(), String>,
) -> Vec<String> {
    let Some(list) = list else {
        return Vec::new();
    };
    list.into_inner()
        .into_iter()
        .filter_map(|entry: Spanned<String>| match check(entry.get_ref()) {
            Ok(()) => Some(entry.into_inner()),
            Err(reason) => {
                issues.at(entry.span(), reason);
                None
            }
        })
        .collect()
}

/// `portcullis check`'s warnings: each loosening of the guard, named.
pub(crate) fn warnings(policy: &EgressPolicy, out: &mut Vec<String>) {
    for entry in policy.allow() {
        let what = match entry {
            AllowEntry::Network { .. } => "every address in this network, on every port",
            AllowEntry::Address { .. } => "this address on this port",
            AllowEntry::Name { .. } => "this name on this port, wherever it resolves",
        };
        out.push(format!(
            "egress.allow = \"{entry}\" lets the gateway's outbound requests reach {what}, even where it is internal (loopback, private, link-local)"
        ));
    }
    for host in policy.http_hosts() {
        out.push(format!(
            "egress.http = \"{host}\" lets the gateway reach {host} over plain http: requests, tokens included, travel unencrypted"
        ));
    }
}

/// `portcullis check`'s warnings about a sandboxed server's network allow list: the proxy
/// decides with this same policy, so an entry it refuses before any resolution (an address
/// the rules block, or a metadata name, that `egress.allow` does not open) can never be
/// reached. Names are not resolved here: what they resolve to is known only when asked.
pub(crate) fn unreachable_entries(
    policy: &EgressPolicy,
    server: &super::ServerConfig,
    profile: &Profile,
    out: &mut Vec<String>,
) {
    let Network::Allow(list) = &profile.network else {
        return;
    };
    for entry in list {
        let Ok(dest) = Destination::new(&entry.host, entry.port) else {
            continue;
        };
        if let Err(denial) = policy.check_host(&dest.host, dest.port) {
            out.push(format!(
                "server \"{}\": sandbox.network.allow entry \"{dest}\" can never be reached: {}; its proxy decides with [egress], so add \"{dest}\" to egress.allow to open it",
                server.name, denial.rule
            ));
        }
    }
}
