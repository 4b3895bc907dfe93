//! The SSRF corpus: URLs and redirect chains an attacker can hand the gateway, each refused
//! by the guarded client before any connection, with the rule and address the audit records.
//! Loopback listeners stand in for the internet (opened by explicit `egress.allow` entries)
//! and for the internal network (a trap that must never see a connection); a table resolver
//! maps test names to loopback, private and metadata addresses.

#![allow(clippy::unwrap_used)]

mod support;

use std::net::IpAddr;
use std::time::Duration;

use portcullis_egress::guard::{ConnectFailure, GuardLimits, GuardedConnector};
use portcullis_egress::{EgressError, EgressRequest, HeaderValue, Method, StatusCode, Uri};
use support::guarded::World;

/// `(url, rule code, address the refusal names or "")`. `{trap}` is the trap's port, `{origin}`
/// an allowed origin's.
#[rustfmt::skip]
const CORPUS: &[(&str, &str, &str)] = &[
    // Loopback in every spelling.
    ("http://127.0.0.1:{trap}/", "blocked_address", "127.0.0.1"),
    ("http://2130706433:{trap}/", "blocked_address", "127.0.0.1"),
    ("http://0177.0.0.1:{trap}/", "blocked_address", "127.0.0.1"),
    ("http://0x7f.1:{trap}/", "blocked_address", "127.0.0.1"),
    ("http://127.1:{trap}/", "blocked_address", "127.0.0.1"),
    ("http://127.0.1:{trap}/", "blocked_address", "127.0.0.1"),
    ("http://0x7f000001:{trap}/", "blocked_address", "127.0.0.1"),
    ("http://017700000001:{trap}/", "blocked_address", "127.0.0.1"),
    ("http://0x7F.0X0.0.01:{trap}/", "blocked_address", "127.0.0.1"),
    ("http://127.0.0.1.:{trap}/", "blocked_address", "127.0.0.1"),
    ("http://127.255.255.254/", "blocked_address", "127.255.255.254"),
    ("http://[::1]:{trap}/", "blocked_address", "::1"),
    ("http://[0:0:0:0:0:0:0:1]:{trap}/", "blocked_address", "::1"),
    ("http://[::ffff:127.0.0.1]:{trap}/", "blocked_address", "::ffff:127.0.0.1"),
    ("http://[::ffff:7f00:1]:{trap}/", "blocked_address", "::ffff:127.0.0.1"),
    ("http://[::127.0.0.1]:{trap}/", "blocked_address", "::127.0.0.1"),
    ("http://[64:ff9b::127.0.0.1]:{trap}/", "blocked_address", "64:ff9b::7f00:1"),
    ("http://[2002:7f00:1::]:{trap}/", "blocked_address", "2002:7f00:1::"),
    ("http://[2001:0:7f00:1::]:{trap}/", "blocked_address", "2001:0:7f00:1::"),
    ("http://0:{trap}/", "blocked_address", "0.0.0.0"),
    ("http://0.0.0.0:{trap}/", "blocked_address", "0.0.0.0"),
    ("http://[::]:{trap}/", "blocked_address", "::"),
    // An allowed address on another port, or in another form, is not allowed.
    ("http://127.0.0.1:{origin}@127.0.0.1:{trap}/", "blocked_address", "127.0.0.1"),
    ("http://[::ffff:127.0.0.1]:{origin}/", "blocked_address", "::ffff:127.0.0.1"),
    ("http://127.0.0.2:{origin}/", "blocked_address", "127.0.0.2"),
    // Cloud metadata.
    ("http://169.254.169.254/latest/meta-data/", "blocked_address", "169.254.169.254"),
    ("http://2852039166/", "blocked_address", "169.254.169.254"),
    ("http://0xa9fea9fe/", "blocked_address", "169.254.169.254"),
    ("http://0251.0376.0251.0376/", "blocked_address", "169.254.169.254"),
    ("http://169.254.43518/", "blocked_address", "169.254.169.254"),
    ("http://0xa9.0xfe.0xa9.0xfe/", "blocked_address", "169.254.169.254"),
    ("https://169.254.169.254./", "blocked_address", "169.254.169.254"),
    ("http://[::ffff:169.254.169.254]/", "blocked_address", "::ffff:169.254.169.254"),
    ("http://[::ffff:a9fe:a9fe]/", "blocked_address", "::ffff:169.254.169.254"),
    ("http://[64:ff9b::a9fe:a9fe]/", "blocked_address", "64:ff9b::a9fe:a9fe"),
    ("http://[2002:a9fe:a9fe::1]/", "blocked_address", "2002:a9fe:a9fe::1"),
    ("http://[fd00:ec2::254]/", "blocked_address", "fd00:ec2::254"),
    ("http://100.100.100.200/", "blocked_address", "100.100.100.200"),
    ("http://[fe80::a9fe:a9fe]/", "blocked_address", "fe80::a9fe:a9fe"),
    ("http://[fe80::1%25eth0]/", "blocked_address", "fe80::1"),
    ("http://metadata.google.internal/computeMetadata/v1/", "metadata_host", ""),
    ("https://metadata.google.internal./", "metadata_host", ""),
    ("https://METADATA.Google.Internal/", "metadata_host", ""),
    ("https://metadata/", "metadata_host", ""),
    ("https://metadata.goog/", "metadata_host", ""),
    ("https://instance-data.ec2.internal/", "metadata_host", ""),
    // Private, shared, multicast, broadcast and reserved ranges.
    ("http://10.0.0.1/", "blocked_address", "10.0.0.1"),
    ("http://012.0.0.1/", "blocked_address", "10.0.0.1"),
    ("http://167772161/", "blocked_address", "10.0.0.1"),
    ("http://172.16.0.1/", "blocked_address", "172.16.0.1"),
    ("http://192.168.1.1/", "blocked_address", "192.168.1.1"),
    ("http://0xc0a80101/", "blocked_address", "192.168.1.1"),
    ("http://[::ffff:10.0.0.1]/", "blocked_address", "::ffff:10.0.0.1"),
    ("http://[fc00::1]/", "blocked_address", "fc00::1"),
    ("http://[fec0::1]/", "blocked_address", "fec0::1"),
    ("http://224.0.0.1/", "blocked_address", "224.0.0.1"),
    ("http://[ff02::1]/", "blocked_address", "ff02::1"),
    ("http://255.255.255.255/", "blocked_address", "255.255.255.255"),
    ("http://240.0.0.1/", "blocked_address", "240.0.0.1"),
    ("http://198.18.0.1/", "blocked_address", "198.18.0.1"),
    ("http://192.0.0.1/", "blocked_address", "192.0.0.1"),
    // Userinfo tricks.
    ("http://allowed@127.0.0.1:{trap}/", "blocked_address", "127.0.0.1"),
    ("http://api.example.test@127.0.0.1:{trap}/", "blocked_address", "127.0.0.1"),
    ("http://user:pass@api.example.test:{origin}/", "userinfo", ""),
    ("https://api.example.test%40169.254.169.254/", "invalid_url", ""),
    // Schemes and ports.
    ("ftp://api.example.test/", "scheme", ""),
    ("gopher://api.example.test:70/_GET", "scheme", ""),
    ("ws://api.example.test/", "scheme", ""),
    ("file:///etc/passwd", "invalid_url", ""),
    ("https://api.example.test:0/", "port_zero", ""),
    ("/relative/only", "invalid_url", ""),
    // Plain http where it is not allowed.
    ("http://public.example.test/", "plain_http", ""),
    ("http://93.184.216.34/", "plain_http", ""),
    // Names that resolve somewhere blocked (the table resolver stands in for DNS).
    ("http://loopback.example.test:{trap}/", "blocked_address", "127.0.0.1"),
    ("http://localhost:{trap}/", "blocked_address", "127.0.0.1"),
    ("http://localhost.:{trap}/", "blocked_address", "127.0.0.1"),
    ("https://api.example.test/", "blocked_address", "127.0.0.1"),
    ("http://private.example.test/", "blocked_address", "10.0.0.7"),
    ("http://metadata-alias.example.test/", "blocked_address", "169.254.169.254"),
    ("https://v6-loopback.example.test/", "blocked_address", "::1"),
    ("https://mapped.example.test/", "blocked_address", "::ffff:127.0.0.1"),
    ("https://rebind.example.test/", "blocked_address", "127.0.0.1"),
    ("https://cgnat.example.test/", "blocked_address", "100.100.100.200"),
    ("https://ula.example.test/", "blocked_address", "fd00:ec2::254"),
    ("https://nat64.example.test/", "blocked_address", "64:ff9b::a9fe:a9fe"),
    ("https://sixtofour.example.test/", "blocked_address", "2002:a9fe:a9fe::1"),
    ("https://teredo.example.test/", "blocked_address", "2001:0:4136:e378:8000:63bf:80ff:fffe"),
    ("https://link-local-v6.example.test/", "blocked_address", "fe80::1"),
    ("https://empty.example.test/", "no_addresses", ""),
    ("https://unknown.example.test/", "resolve_failed", ""),
];

fn expand(world: &World, url: &str) -> String {
    url.replace("{trap}", &world.trap.addr.port().to_string())
        .replace("{origin}", &world.origin.port().to_string())
}

fn check_refusal(url: &str, code: &str, address: &str, err: &EgressError) -> Option<String> {
    let EgressError::Refused(refusal) = err else {
        return Some(format!("{url}: not refused by the guard: {err}"));
    };
    let expected: Option<IpAddr> = (!address.is_empty()).then(|| address.parse().unwrap());
    if refusal.rule.code() != code || refusal.address != expected {
        return Some(format!(
            "{url}: refused as {} at {:?}, expected {code} at {expected:?} ({refusal})",
            refusal.rule.code(),
            refusal.address
        ));
    }
    None
}

#[tokio::test]
async fn every_url_of_the_corpus_is_refused_before_any_connection() {
    assert!(CORPUS.len() >= 60, "the corpus has {} URLs", CORPUS.len());
    let world = World::start(GuardLimits::default()).await;
    let mut failures = Vec::new();
    for (url, code, address) in CORPUS {
        let url = expand(&world, url);
        let err = match url.parse::<Uri>() {
            Ok(uri) => world
                .client
                .send(EgressRequest::new(Method::GET, uri))
                .await
                .map(|_| ())
                .expect_err(&url),
            Err(_) => EgressError::from(world.guard.check_str(&url).expect_err(&url)),
        };
        failures.extend(check_refusal(&url, code, address, &err));
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    world.assert_untouched(0);
    assert!(world.second.requests().is_empty());
}

/// hyper hands the connector the request's URI; the connector checks it again, so a request
/// that skipped `check_url` (another code path, a bug) still cannot connect anywhere blocked.
#[tokio::test]
async fn the_connector_refuses_the_corpus_on_its_own() {
    let world = World::start(GuardLimits::default()).await;
    let connector = GuardedConnector::new(world.guard.clone(), Duration::from_secs(2));
    let mut failures = Vec::new();
    for (url, code, address) in CORPUS {
        let url = expand(&world, url);
        let Ok(uri) = url.parse::<Uri>() else {
            continue;
        };
        match connector.connect(&uri).await {
            Err(ConnectFailure::Refused(r)) => {
                failures.extend(check_refusal(&url, code, address, &EgressError::from(r)));
            }
            Err(other) => failures.push(format!("{url}: {other}")),
            Ok(_) => failures.push(format!("{url}: connected")),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    world.assert_untouched(0);
}

#[tokio::test]
async fn a_refusal_names_the_whole_url_and_address_but_no_secret() {
    let world = World::start(GuardLimits::default()).await;
    let url = "http://tok:en@private.example.test/deep/path?access_token=s3cret";
    let err = world.get(url).await.unwrap_err();
    let EgressError::Refused(refusal) = &err else {
        panic!("{err}");
    };
    assert_eq!(refusal.rule.code(), "userinfo");
    assert_eq!(refusal.url, "http://private.example.test/deep/path");
    let url = "http://private.example.test/deep/path?access_token=s3cret";
    let err = world.get(url).await.unwrap_err();
    let EgressError::Refused(refusal) = &err else {
        panic!("{err}");
    };
    assert_eq!(refusal.rule.code(), "blocked_address");
    assert_eq!(refusal.address, Some("10.0.0.7".parse().unwrap()));
    assert_eq!(refusal.url, "http://private.example.test/deep/path");
    assert!(!err.to_string().contains("s3cret"), "{err}");
}

#[tokio::test]
async fn literal_hosts_never_reach_the_resolver() {
    let world = World::start(GuardLimits::default()).await;
    for url in [
        "http://0x7f.1/",
        "http://2852039166/",
        "http://[::1]/",
        "http://10.0.0.1/",
    ] {
        assert!(world.get(url).await.is_err(), "{url}");
    }
    assert_eq!(world.resolver.calls(), 0);
}

/// `(path on the allowed origin, rule code, address)`: each redirect leads somewhere blocked.
#[rustfmt::skip]
const REDIRECTS: &[(&str, &str, &str)] = &[
    ("/to-metadata", "blocked_address", "169.254.169.254"),
    ("/to-metadata-303", "blocked_address", "169.254.169.254"),
    ("/to-metadata-decimal", "blocked_address", "169.254.169.254"),
    ("/to-private", "blocked_address", "10.0.0.5"),
    ("/to-private-scheme-relative", "blocked_address", "10.0.0.5"),
    ("/to-private-name", "blocked_address", "10.0.0.7"),
    ("/to-alias", "blocked_address", "169.254.169.254"),
    ("/to-trap-name", "blocked_address", "127.0.0.1"),
    ("/to-trap-hex", "blocked_address", "127.0.0.1"),
    ("/to-trap-userinfo", "blocked_address", "127.0.0.1"),
    ("/to-gcp", "metadata_host", ""),
    ("/to-mapped", "blocked_address", "::ffff:169.254.169.254"),
    ("/to-file", "bad_redirect", ""),
    ("/to-gopher", "scheme", ""),
    ("/to-public-http", "plain_http", ""),
    ("/no-location", "bad_redirect", ""),
];

#[tokio::test]
async fn redirects_from_an_allowed_origin_into_the_internal_network_are_refused() {
    let world = World::start(GuardLimits::default()).await;
    let mut failures = Vec::new();
    for (path, code, address) in REDIRECTS {
        let url = world.origin_url(path);
        let req = EgressRequest::new(Method::GET, url.parse().unwrap());
        match world.follow(req).await {
            Ok(resp) => failures.push(format!("{path}: followed to {}", resp.status())),
            Err(err) => failures.extend(check_refusal(path, code, address, &err)),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // Each chain reached the allowed origin once, and nothing else.
    world.assert_untouched(REDIRECTS.len());
}

#[tokio::test]
async fn a_chain_through_two_allowed_origins_to_metadata_is_refused_at_the_last_hop() {
    let world = World::start(GuardLimits::default()).await;
    let req = EgressRequest::new(
        Method::GET,
        world
            .origin_url("/to-second-then-metadata")
            .parse()
            .unwrap(),
    );
    let err = world.follow(req).await.expect_err("refused");
    assert!(
        check_refusal("chain", "blocked_address", "169.254.169.254", &err).is_none(),
        "{err}"
    );
    world.assert_untouched(1);
    assert_eq!(world.second.requests().len(), 1);
    assert!(world.second.requests()[0].starts_with("GET /bounce "));
}

#[tokio::test]
async fn a_redirect_loop_ends_at_the_redirect_limit() {
    let limits = GuardLimits {
        max_redirects: 3,
        ..GuardLimits::default()
    };
    let world = World::start(limits).await;
    let req = EgressRequest::new(Method::GET, world.origin_url("/loop").parse().unwrap());
    let err = world.follow(req).await.expect_err("refused");
    assert!(
        check_refusal("loop", "too_many_redirects", "", &err).is_none(),
        "{err}"
    );
    world.assert_untouched(4);
}

#[tokio::test]
async fn redirects_are_not_followed_unless_the_caller_asks() {
    let world = World::start(GuardLimits::default()).await;
    let resp = world.get(&world.origin_url("/to-metadata")).await.unwrap();
    assert_eq!(resp.status(), StatusCode::FOUND);
    world.assert_untouched(1);
}

fn with_credentials(url: &str) -> EgressRequest {
    let mut req = EgressRequest::new(Method::POST, url.parse().unwrap());
    req.headers.insert(
        "authorization",
        HeaderValue::from_static("Bearer first-origin-token"),
    );
    req.headers
        .insert("cookie", HeaderValue::from_static("session=first-origin"));
    req.body = bytes::Bytes::from_static(b"{\"x\":1}");
    req
}

#[tokio::test]
async fn credentials_are_not_sent_to_another_origin_after_a_redirect() {
    let world = World::start(GuardLimits::default()).await;
    let resp = world
        .follow(with_credentials(&world.origin_url("/to-second")))
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let first = world.origin.requests();
    assert!(
        first[0]
            .to_ascii_lowercase()
            .contains("authorization: bearer")
    );
    let landed = world.second.requests();
    assert_eq!(landed.len(), 1);
    let head = landed[0].to_ascii_lowercase();
    assert!(
        head.starts_with("get /landing "),
        "302 after POST becomes GET: {head}"
    );
    assert!(
        !head.contains("authorization") && !head.contains("cookie"),
        "{head}"
    );
    assert!(!head.contains("first-origin"), "{head}");
}

#[tokio::test]
async fn a_307_keeps_the_method_but_still_drops_credentials_across_origins() {
    let world = World::start(GuardLimits::default()).await;
    world
        .follow(with_credentials(&world.origin_url("/to-second-post")))
        .await
        .unwrap();
    let head = world.second.requests()[0].to_ascii_lowercase();
    assert!(head.starts_with("post /landing "), "{head}");
    assert!(!head.contains("first-origin"), "{head}");
}

#[tokio::test]
async fn credentials_stay_on_a_same_origin_redirect() {
    let world = World::start(GuardLimits::default()).await;
    world
        .follow(with_credentials(&world.origin_url("/same-origin")))
        .await
        .unwrap();
    let seen = world.origin.requests();
    assert_eq!(seen.len(), 2);
    assert!(seen[1].starts_with("GET /landing "), "{}", seen[1]);
    assert!(seen[1].contains("Bearer first-origin-token"), "{}", seen[1]);
}
