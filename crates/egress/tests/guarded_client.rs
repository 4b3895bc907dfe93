//! The guarded client still reaches what is allowed, within its bounds: loopback listeners
//! opened by explicit `egress.allow` entries stand in for the internet.

#![allow(clippy::unwrap_used)]

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use portcullis_egress::guard::{EgressGuard, EgressPolicy, GuardLimits, Rule};
use portcullis_egress::proxy::Resolve;
use portcullis_egress::{EgressClient, EgressConfig, EgressError, EgressRequest, Method};
use support::guarded::{NAMES, World};
use support::{Echo, Silent, Site, TableResolver};

fn client_for(allow: &[String], http_hosts: &[&str], limits: GuardLimits) -> EgressClient {
    let policy = EgressPolicy::new(allow, http_hosts).unwrap();
    let resolver: Arc<dyn Resolve> = Arc::new(TableResolver::new(NAMES));
    let guard = EgressGuard::with_resolver(policy, limits, resolver);
    EgressClient::guarded(&EgressConfig::default(), guard).unwrap()
}

async fn get(client: &EgressClient, url: &str) -> Result<String, EgressError> {
    let resp = client
        .send(EgressRequest::new(Method::GET, url.parse().unwrap()))
        .await?;
    let body = resp.bytes_limited(1 << 20).await?;
    Ok(String::from_utf8_lossy(&body).into_owned())
}

#[tokio::test]
async fn an_allowed_address_is_reached() {
    let world = World::start(GuardLimits::default()).await;
    let body = get(&world.client, &world.origin_url("/hello"))
        .await
        .unwrap();
    assert_eq!(body, "hello from /hello");
}

#[tokio::test]
async fn an_allowed_name_is_resolved_once_and_connected_at_the_checked_address() {
    let world = World::start(GuardLimits::default()).await;
    let url = format!("http://api.example.test:{}/named", world.origin.port());
    assert_eq!(get(&world.client, &url).await.unwrap(), "hello from /named");
    assert_eq!(
        world.resolver.calls(),
        1,
        "one resolution, no second lookup"
    );
    assert_eq!(world.origin.requests().len(), 1);
    assert!(
        world.origin.requests()[0].contains("api.example.test"),
        "Host is the name"
    );
}

#[tokio::test]
async fn a_redirect_to_another_allowed_origin_is_followed_when_asked() {
    let world = World::start(GuardLimits::default()).await;
    let req = EgressRequest::new(Method::GET, world.origin_url("/to-second").parse().unwrap());
    let resp = world.follow(req).await.unwrap();
    let body = resp.bytes_limited(1024).await.unwrap();
    assert_eq!(&body[..], b"hello from /landing");
}

#[tokio::test]
async fn response_bodies_are_bounded_by_the_guard_whatever_the_caller_asks() {
    let limits = GuardLimits {
        max_response_bytes: 1024,
        ..GuardLimits::default()
    };
    let world = World::start(limits).await;
    let err = get(&world.client, &world.origin_url("/big"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, EgressError::BodyTooLarge { limit: 1024, .. }),
        "{err}"
    );
}

#[tokio::test]
async fn a_destination_that_never_answers_ends_at_the_total_timeout() {
    let silent = Silent::start().await;
    let limits = GuardLimits {
        total_timeout: Duration::from_millis(300),
        ..GuardLimits::default()
    };
    let client = client_for(
        &[format!("127.0.0.1:{}", silent.addr.port())],
        &["127.0.0.1"],
        limits,
    );
    let started = Instant::now();
    let mut req = EgressRequest::new(
        Method::GET,
        format!("http://{}/", silent.addr).parse().unwrap(),
    );
    // A longer per-request timeout does not lift the guard's bound.
    req.timeout = Some(Duration::from_secs(60));
    let err = client.send(req).await.unwrap_err();
    assert!(matches!(err, EgressError::Timeout { .. }), "{err}");
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn a_network_entry_opens_every_spelling_of_its_addresses() {
    let site = Site::start(&[]).await;
    let client = client_for(
        &["127.0.0.0/8".to_owned()],
        &["127.0.0.1", "0x7f.1"],
        GuardLimits::default(),
    );
    let port = site.port();
    assert_eq!(
        get(&client, &format!("http://127.0.0.1:{port}/a"))
            .await
            .unwrap(),
        "hello from /a"
    );
    assert_eq!(
        get(&client, &format!("http://0x7f.1:{port}/b"))
            .await
            .unwrap(),
        "hello from /b"
    );
    // The network is IPv4; the mapped IPv6 form stays blocked.
    let err = get(&client, &format!("http://[::ffff:127.0.0.1]:{port}/"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, EgressError::Refused(ref r) if matches!(r.rule, Rule::BlockedAddress(_))),
        "{err}"
    );
}

#[tokio::test]
async fn a_name_entry_opens_that_name_on_that_port_but_not_its_address() {
    let site = Site::start(&[]).await;
    let trap = Echo::start().await;
    let port = site.port();
    let client = client_for(
        &[format!("loopback.example.test:{port}")],
        &["loopback.example.test", "127.0.0.1"],
        GuardLimits::default(),
    );
    let named = format!("http://loopback.example.test:{port}/n");
    assert_eq!(get(&client, &named).await.unwrap(), "hello from /n");
    for refused in [
        format!("http://127.0.0.1:{port}/"),
        format!("http://loopback.example.test:{}/", trap.addr.port()),
    ] {
        let err = get(&client, &refused).await.unwrap_err();
        assert!(matches!(err, EgressError::Refused(_)), "{refused}: {err}");
    }
    assert_eq!(trap.accepted(), 0);
}

#[tokio::test]
async fn the_unguarded_client_does_not_follow_redirects_at_all() {
    let client = EgressClient::new(&EgressConfig::default()).unwrap();
    assert!(client.guard().is_none());
    let req = EgressRequest::new(Method::GET, "http://127.0.0.1:9/".parse().unwrap());
    let err = client.send_following(req).await.unwrap_err();
    assert!(matches!(err, EgressError::RedirectsNeedGuard), "{err}");
}
