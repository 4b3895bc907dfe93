//! `[egress]`: the guard's exceptions parse to values, bad entries are errors at their line,
//! and every exception is a warning.

use std::net::IpAddr;

use portcullis_egress::proxy::Host;

use super::{SERVER, errors, ok};

#[test]
fn without_an_egress_section_nothing_is_opened() {
    let config = ok(SERVER);
    assert!(config.egress.allow().is_empty());
    assert!(config.egress.http_hosts().is_empty());
    let quickstart = crate::config::Config::quickstart();
    assert!(quickstart.egress.allow().is_empty() && quickstart.egress.http_hosts().is_empty());
}

#[test]
fn allow_and_http_entries_open_what_they_name() {
    let config = ok(&format!(
        "[egress]\nallow = [\"10.1.2.0/24\", \"idp.internal:443\", \"127.0.0.1:8080\"]\nhttp = [\"127.0.0.1\", \"LocalHost\"]\n{SERVER}"
    ));
    let ip = |s: &str| s.parse::<IpAddr>().expect("test address");
    assert!(config.egress.opens_address(ip("10.1.2.77"), 9000));
    assert!(!config.egress.opens_address(ip("10.1.3.1"), 9000));
    assert!(config.egress.opens_address(ip("127.0.0.1"), 8080));
    assert!(!config.egress.opens_address(ip("127.0.0.1"), 8081));
    assert!(config.egress.opens_name("idp.internal", 443));
    assert!(config.egress.allows_plain_http(&Host::Ip(ip("127.0.0.1"))));
    assert!(
        config
            .egress
            .allows_plain_http(&Host::Name("localhost".into()))
    );
}

#[test]
fn each_bad_entry_is_an_error_at_its_own_line() {
    let errs = errors(&format!(
        "[egress]\nallow = [\n  \"10.1.2.3/33\",\n  \"idp.internal\",\n  \"10.0.0.0/8\",\n]\nhttp = [\"http://dev.local\"]\n{SERVER}"
    ));
    assert_eq!(errs.len(), 3, "{errs:#?}");
    assert!(
        errs[0].starts_with("3:3: ") && errs[0].contains("10.1.2.3/33"),
        "{errs:#?}"
    );
    assert!(
        errs[1].starts_with("4:3: ") && errs[1].contains("needs a port"),
        "{errs:#?}"
    );
    assert!(
        errs[2].starts_with("7:9: ") && errs[2].contains("egress.http"),
        "{errs:#?}"
    );
}

#[test]
fn unknown_egress_keys_are_errors() {
    let errs = errors(&format!("[egress]\nalow = [\"10.0.0.0/8\"]\n{SERVER}"));
    assert!(errs[0].contains("unknown field `alow`"), "{errs:#?}");
}

#[test]
fn every_exception_is_a_warning_naming_it() {
    let config = ok(
        "[egress]\nallow = [\"10.0.0.0/8\", \"idp.internal:443\"]\nhttp = [\"localhost\"]\n[servers.files]\ncommand = [\"x\"]\n[[rules]]\nserver = \"files\"\ntools = [\"*\"]\neffect = \"allow\"\n",
    );
    let w: Vec<String> = config
        .warnings()
        .into_iter()
        .filter(|w| w.starts_with("egress."))
        .collect();
    assert_eq!(w.len(), 3, "{w:#?}");
    assert!(w[0].contains("\"10.0.0.0/8\"") && w[0].contains("every address in this network"));
    assert!(w[1].contains("\"idp.internal:443\"") && w[1].contains("wherever it resolves"));
    assert!(w[2].contains("egress.http = \"localhost\"") && w[2].contains("plain http"));
}

#[test]
fn a_sandbox_entry_the_egress_policy_refuses_warns_until_egress_allow_opens_it() {
    let server = |egress: &str| {
        format!(
            "[egress]\nallow = [{egress}]\n[servers.files]\ncommand = [\"x\"]\nsandbox = {{ network = {{ allow = [\"127.0.0.1:8080\", \"metadata.google.internal:80\", \"api.example.com:443\", \"10.1.2.3:5432\"] }} }}\n[[rules]]\nserver = \"files\"\neffect = \"allow\"\n"
        )
    };
    let unreachable = |text: &str| -> Vec<String> {
        ok(text)
            .warnings()
            .into_iter()
            .filter(|w| w.contains("can never be reached"))
            .collect()
    };
    let w = unreachable(&server(""));
    assert_eq!(w.len(), 3, "{w:#?}");
    assert!(
        w[0].starts_with("server \"files\": sandbox.network.allow entry \"127.0.0.1:8080\"")
            && w[0].contains("loopback")
            && w[0].contains("add \"127.0.0.1:8080\" to egress.allow"),
        "{w:#?}"
    );
    assert!(w[1].contains("metadata.google.internal:80"), "{w:#?}");
    assert!(
        w[2].contains("10.1.2.3:5432") && w[2].contains("private"),
        "{w:#?}"
    );
    // A public name is judged when it resolves, not here.
    assert!(!w.iter().any(|w| w.contains("api.example.com")), "{w:#?}");
    let opened = unreachable(&server(
        "\"127.0.0.1:8080\", \"10.0.0.0/8\", \"metadata.google.internal:80\"",
    ));
    assert!(opened.is_empty(), "{opened:#?}");
}
