//! `[approvals]`: the admin token is named, never written; the bound is bounded.

use std::path::PathBuf;

use super::super::{AdminTokenSource, Config, ConfigSource};
use super::{error, ok};

#[test]
fn the_admin_token_is_named_by_variable_or_file() {
    let c = ok("[approvals]\nadmin_token = { env = \"PORTCULLIS_ADMIN_TOKEN\" }\n");
    let a = c.approvals.expect("the section");
    assert_eq!(
        a.admin_token,
        AdminTokenSource::Env("PORTCULLIS_ADMIN_TOKEN".into())
    );
    assert_eq!(a.max_pending, 100);
    assert!(ok("").approvals.is_none(), "no section, no page");
}

#[test]
fn a_relative_token_file_is_beside_the_config() {
    let c = Config::parse(
        "[approvals]\nadmin_token = { file = \"secrets/admin\" }\n",
        ConfigSource::File(PathBuf::from("/etc/portcullis/portcullis.toml")),
    )
    .expect("valid");
    assert_eq!(
        c.approvals.expect("the section").admin_token,
        AdminTokenSource::File(PathBuf::from("/etc/portcullis/secrets/admin"))
    );
}

#[test]
fn an_inline_admin_token_is_refused() {
    let e = error("[approvals]\nadmin_token = \"hunter2hunter2hunter2hunter2hunter2\"\n");
    assert!(e.contains("inline secret values are not allowed"), "{e}");
    assert!(e.starts_with("2:"), "{e}");
}

#[test]
fn a_section_without_a_token_is_an_error() {
    let e = error("[approvals]\nmax_pending = 5\n");
    assert!(e.contains("needs the admin token"), "{e}");
}

#[test]
fn max_pending_is_bounded() {
    for bad in ["0", "-1", "10001"] {
        let e = error(&format!(
            "[approvals]\nadmin_token = {{ env = \"T\" }}\nmax_pending = {bad}\n"
        ));
        assert!(e.contains("between 1 and 10000"), "{e}");
    }
    let c = ok("[approvals]\nadmin_token = { env = \"T\" }\nmax_pending = 3\n");
    assert_eq!(c.approvals.expect("the section").max_pending, 3);
}
