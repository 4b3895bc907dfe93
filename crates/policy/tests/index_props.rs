//! The rule index never changes a decision: indexed first match equals a plain walk.

mod common;

use common::{globs, rule};
use portcullis_policy::{Effect, Kind, LexicalResolver, Policy, Principal, Request, Rule};
use proptest::prelude::*;

fn arb_rule() -> impl Strategy<Value = (Option<&'static str>, u8, Vec<&'static str>, bool)> {
    (
        prop::sample::select(vec![None, Some("a"), Some("b")]),
        0u8..4, // which kinds: 0 none listed, 1 tools, 2 prompts, 3 tools+prompts
        prop::collection::vec(
            prop::sample::select(vec![
                "x", "y", "x*", "*", "?", "[xy]", "x\\*", "xy*", "*y", "y*x", "[x]y",
            ]),
            1..3,
        ),
        any::<bool>(),
    )
}

fn build(i: usize, (server, kinds, names, allow): (Option<&str>, u8, Vec<&str>, bool)) -> Rule {
    let mut r = rule(i, server, if allow { Effect::Allow } else { Effect::Deny });
    if kinds & 1 != 0 {
        r.tools = globs(&names);
    }
    if kinds & 2 != 0 {
        r.prompts = globs(&names);
    }
    r
}

proptest! {
    #[test]
    fn indexed_decisions_equal_a_plain_first_match_walk(
        specs in prop::collection::vec(arb_rule(), 0..12),
        server in prop::sample::select(vec!["a", "b", "c"]),
        kind in prop::sample::select(Kind::ALL.to_vec()),
        name in prop::sample::select(vec!["x", "y", "xy", "x*", "", "z"]),
    ) {
        let rules: Vec<Rule> = specs.into_iter().enumerate().map(|(i, s)| build(i, s)).collect();
        let expected = rules.iter().position(|r| r.matches(server, kind, name));
        let policy = Policy::new(rules);
        let me = Principal::local("me");
        let d = policy.decide(&Request::new(&me, server, kind, name), &LexicalResolver);
        prop_assert_eq!(d.rule, expected);
        prop_assert_eq!(
            d.is_allowed(),
            expected.is_some_and(|i| policy.rules()[i].effect == Effect::Allow)
        );
        prop_assert_eq!(policy.visible(&me, server, kind, name, None), d.is_allowed());
        if d.is_allowed() {
            prop_assert!(policy.may_expose(&me, server, kind));
            prop_assert!(policy.could_expose(server, kind));
        }
    }
}
