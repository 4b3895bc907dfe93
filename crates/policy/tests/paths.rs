//! Path constraints: traversal attempts of every kind stay out.

mod common;

use common::FakeFs;
use portcullis_policy::{LOOKALIKES, LexicalResolver, PathRejection, Root, check_path};

fn fs() -> FakeFs {
    FakeFs::default()
        .with_link("/srv/data/link", "/etc")
        .with_link("/srv/data/rel", "../secret")
        .with_link("/srv/data/inner", "/srv/data/sub")
        .with_link("/srv/data/loop", "/srv/data/loop")
        .with_link("/data", "/srv/data")
}

fn roots() -> Vec<Root> {
    vec![Root::new("/srv/data", &fs()).expect("root")]
}

fn check(value: &str) -> Result<String, PathRejection> {
    check_path(value, &roots(), &fs()).map(|p| p.display().to_string())
}

#[test]
fn paths_inside_the_root_pass_and_resolve() {
    assert_eq!(check("/srv/data/a.txt"), Ok("/srv/data/a.txt".into()));
    assert_eq!(check("/srv/data"), Ok("/srv/data".into()));
    assert_eq!(check("/srv/data/"), Ok("/srv/data".into()));
    assert_eq!(check("/srv/data/./a//b/../c"), Ok("/srv/data/a/c".into()));
    assert_eq!(check("/srv/data/inner/x"), Ok("/srv/data/sub/x".into()));
    // A plain path is not percent-decoded: `%2e%2e` is a file name there.
    assert_eq!(check("/srv/data/%2e%2e/x"), Ok("/srv/data/%2e%2e/x".into()));
}

#[test]
fn dot_dot_out_of_the_root_fails() {
    for value in [
        "/srv/data/../secret",
        "/srv/data/../../etc/passwd",
        "/srv/data/a/../../secret",
        "/srv/database/x",
        "/srv",
        "/etc/passwd",
    ] {
        assert!(
            matches!(check(value), Err(PathRejection::Outside(_))),
            "{value}: {:?}",
            check(value)
        );
    }
    assert_eq!(check("/../srv/data/x"), Err(PathRejection::AboveRoot));
    assert_eq!(check("/srv/data/../../../x"), Err(PathRejection::AboveRoot));
}

#[test]
fn relative_and_empty_paths_are_refused() {
    for value in ["srv/data/x", "./x", "x", "~/x", "../srv/data"] {
        assert_eq!(check(value), Err(PathRejection::Relative), "{value}");
    }
    assert_eq!(check(""), Err(PathRejection::Empty));
    assert_eq!(check("file://"), Err(PathRejection::Empty));
}

#[test]
fn symlinks_out_of_the_root_fail() {
    let out = |v: &str| matches!(check(v), Err(PathRejection::ResolvesOutside { .. }));
    assert!(out("/srv/data/link/passwd"));
    assert!(out("/srv/data/link"));
    // Relative link target: /srv/data/../secret.
    assert!(out("/srv/data/rel/x"));
    // `..` after a link climbs from the link's target, not from the link.
    assert!(out("/srv/data/link/../x"));
    assert!(out("file:///srv/data/link/passwd"));
    assert!(matches!(
        check("/srv/data/loop/x"),
        Err(PathRejection::Unresolvable(_))
    ));
}

#[test]
fn roots_are_resolved_once_and_either_form_is_accepted() {
    let root = Root::new("/data/", &fs()).expect("root");
    assert_eq!(root.written().display().to_string(), "/data");
    assert_eq!(root.resolved().display().to_string(), "/srv/data");
    let roots = [root];
    for value in ["/data/x", "/srv/data/x"] {
        assert!(check_path(value, &roots, &fs()).is_ok(), "{value}");
    }
    assert!(check_path("/data/link/x", &roots, &fs()).is_err());
    assert_eq!(
        Root::new("data", &fs()),
        Err(PathRejection::Relative),
        "roots must be absolute"
    );
    assert_eq!(Root::new("/../x", &fs()), Err(PathRejection::AboveRoot));
}

#[test]
fn file_uris_are_decoded_once_and_checked_as_paths() {
    for ok in [
        "file:///srv/data/a",
        "file://localhost/srv/data/a",
        "FILE://LOCALHOST/srv/data/a",
        "file:/srv/data/a",
        "file:///srv/data/a%20b",
    ] {
        assert!(check(ok).is_ok(), "{ok}: {:?}", check(ok));
    }
    for outside in [
        "file:///srv/data/%2e%2e/secret",
        "file:///srv/data/%2E%2E/%2E%2E/etc/passwd",
        "file:///srv/data/.%2e/secret",
        "file:///srv/data/a%2f..%2f..%2fsecret",
        "file:///srv%2fdata%2f..%2fsecret",
    ] {
        assert!(
            matches!(check(outside), Err(PathRejection::Outside(_))),
            "{outside}: {:?}",
            check(outside)
        );
    }
    assert_eq!(
        check("file:///srv/data/%252e%252e/x"),
        Err(PathRejection::DoubleEncoded)
    );
    assert!(matches!(
        check("file:///srv/data/a%00b"),
        Err(PathRejection::Control { ch: '\0', .. })
    ));
    assert_eq!(check("file:///srv/data/%zz"), Err(PathRejection::BadEscape));
    assert_eq!(check("file:///srv/data/%2"), Err(PathRejection::BadEscape));
    assert_eq!(check("file:///srv/data/%ff"), Err(PathRejection::NotUtf8));
    assert!(matches!(
        check("file://evil.example/srv/data/a"),
        Err(PathRejection::RemoteFileUri(_))
    ));
    assert_eq!(
        check("file:///srv/data/a?x=1"),
        Err(PathRejection::UriQueryOrFragment)
    );
    assert_eq!(
        check("file:///srv/data/a#b"),
        Err(PathRejection::UriQueryOrFragment)
    );
    assert!(matches!(
        check("file:///srv/data/%e2%88%95etc"),
        Err(PathRejection::LookAlike { ch: '\u{2215}', .. })
    ));
}

#[test]
fn control_characters_and_backslashes_are_refused() {
    assert!(matches!(
        check("/srv/data/a\0b"),
        Err(PathRejection::Control {
            ch: '\0',
            position: 12
        })
    ));
    assert!(matches!(
        check("/srv/data/a\nb"),
        Err(PathRejection::Control { .. })
    ));
    assert!(matches!(
        check("/srv/data/\u{85}"),
        Err(PathRejection::Control { .. })
    ));
    assert_eq!(check("/srv/data\\..\\etc"), Err(PathRejection::Backslash));
    assert_eq!(check("C:\\Windows"), Err(PathRejection::Backslash));
}

#[test]
fn unicode_look_alike_slashes_and_dots_are_refused() {
    assert!(matches!(
        check("/srv/data/..\u{2215}..\u{2215}etc"),
        Err(PathRejection::LookAlike {
            ch: '\u{2215}',
            name: "DIVISION SLASH",
            position: 13
        })
    ));
    assert!(matches!(
        check("\u{FF0F}etc\u{FF0F}passwd"),
        Err(PathRejection::LookAlike { position: 1, .. })
    ));
    assert!(matches!(
        check("/srv/data/\u{FF0E}\u{FF0E}/x"),
        Err(PathRejection::LookAlike { .. })
    ));
    assert!(matches!(
        check("/srv/data/\u{2025}/x"),
        Err(PathRejection::LookAlike {
            name: "TWO DOT LEADER",
            ..
        })
    ));
    for (c, name) in LOOKALIKES {
        let value = format!("/srv/data/a{c}b");
        assert!(
            matches!(check(&value), Err(PathRejection::LookAlike { ch, .. }) if ch == *c),
            "{name}"
        );
    }
    for invisible in [
        '\u{200B}', '\u{200D}', '\u{202E}', '\u{2066}', '\u{FEFF}', '\u{FE0F}',
    ] {
        let value = format!("/srv/data/a{invisible}");
        assert!(
            matches!(check(&value), Err(PathRejection::Invisible { .. })),
            "U+{:04X}",
            u32::from(invisible)
        );
    }
    // Ordinary non-ASCII names are fine.
    assert!(check("/srv/data/café/日本語.txt").is_ok());
}

#[test]
fn rejections_say_whether_the_value_was_merely_outside() {
    assert!(check("/etc/passwd").unwrap_err().is_outside());
    assert!(check("/srv/data/link/x").unwrap_err().is_outside());
    assert!(!check("x").unwrap_err().is_outside());
    assert!(!check("/srv/data/loop").unwrap_err().is_outside());
    // Messages never repeat the value.
    assert_eq!(
        check("/etc/passwd").unwrap_err().to_string(),
        "is outside the allowed roots"
    );
}

#[test]
fn the_lexical_resolver_applies_dot_dot_like_the_kernel_at_the_root() {
    let roots = [Root::lexical("/srv").expect("root")];
    assert!(check_path("/srv/a/../b", &roots, &LexicalResolver).is_ok());
    assert!(check_path("/srv/../etc", &roots, &LexicalResolver).is_err());
}
