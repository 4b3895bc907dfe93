//! Properties of path containment that must hold for every input.

mod common;

use common::FakeFs;
use portcullis_policy::{LexicalResolver, PathRejection, Root, check_path};
use proptest::prelude::*;

/// Path segments: names (one of them the root's), `.`, `..` and empty (a doubled slash).
fn segment() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec!["r", "a", "b", ".", "..", ""])
}

/// The reference model: apply segments to a stack; `..` above `/` escapes.
fn model(segments: &[&str]) -> Option<Vec<String>> {
    let mut stack: Vec<String> = Vec::new();
    for s in segments {
        match *s {
            "" | "." => {}
            ".." => {
                stack.pop()?;
            }
            name => stack.push(name.to_owned()),
        }
    }
    Some(stack)
}

proptest! {
    #[test]
    fn lexical_containment_agrees_with_the_model(segments in prop::collection::vec(segment(), 0..12)) {
        let path = format!("/{}", segments.join("/"));
        let roots = [Root::lexical("/r").expect("root")];
        let got = check_path(&path, &roots, &LexicalResolver);
        match model(&segments) {
            None => prop_assert_eq!(got, Err(PathRejection::AboveRoot)),
            Some(stack) if stack.first().map(String::as_str) == Some("r") => {
                let expected = format!("/{}", stack.join("/"));
                prop_assert_eq!(got.map(|p| p.display().to_string()), Ok(expected));
            }
            Some(_) => prop_assert!(matches!(got, Err(PathRejection::Outside(_))), "{:?}", got),
        }
    }

    #[test]
    fn a_symlink_component_pointing_outside_never_passes(
        before in prop::collection::vec(prop::sample::select(vec!["a", "b", ".", ""]), 0..6),
        after in prop::collection::vec(prop::sample::select(vec!["a", "b", ".", "..", ""]), 0..8),
    ) {
        // Every component called `l`, in any directory, is a link to /x, outside /r.
        let fs = FakeFs::default().with_link_named("l", "/x");
        let roots = [Root::new("/r", &fs).expect("root")];
        let path = format!("/r/{}/l/{}", before.join("/"), after.join("/"));
        prop_assert!(check_path(&path, &roots, &fs).is_err(), "{} passed", path);
        let uri = format!("file://{path}");
        prop_assert!(check_path(&uri, &roots, &fs).is_err(), "{} passed", uri);
    }

    #[test]
    fn a_path_passes_only_when_both_its_text_and_its_target_are_inside(
        segments in prop::collection::vec(prop::sample::select(vec!["r", "a", "l", "in", ".", ".."]), 0..10),
    ) {
        // /r/l leads outside; /r/in leads to /r/a (inside).
        let fs = FakeFs::default().with_link("/r/l", "/x").with_link("/r/in", "/r/a");
        let roots = [Root::new("/r", &fs).expect("root")];
        let path = format!("/{}", segments.join("/"));
        let lexical_inside = model(&segments)
            .is_some_and(|s| s.first().map(String::as_str) == Some("r"));
        let resolved = portcullis_policy::PathResolver::resolve(&fs, std::path::Path::new(&path))
            .expect("fake fs resolves");
        let resolved_inside = resolved.starts_with("/r");
        prop_assert_eq!(
            check_path(&path, &roots, &fs).is_ok(),
            lexical_inside && resolved_inside,
            "{}", path
        );
    }

    #[test]
    fn checking_never_panics(value in any::<String>()) {
        let roots = [Root::lexical("/r").expect("root")];
        let _ = check_path(&value, &roots, &LexicalResolver);
        let _ = check_path(&format!("file://{value}"), &roots, &LexicalResolver);
    }
}
