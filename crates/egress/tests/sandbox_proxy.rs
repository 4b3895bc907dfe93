//! The sandbox's CONNECT proxy, end to end on loopback: real sockets, a real listener per
//! destination, and a table resolver standing in for DNS (so a name can point at a metadata
//! or private address without the test ever sending a packet there).

#![allow(clippy::unwrap_used)]

mod support;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use portcullis_egress::Uri;
use portcullis_egress::address::Range;
use portcullis_egress::guard::{Denial, EgressGuard, EgressPolicy, GuardLimits, Rule};
use portcullis_egress::proxy::{Destination, ProxyConfig, Reason, RequestKind};
use support::{Echo, HttpOrigin, Proxy, read_head, read_to_close};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The server's list `entries`, with `open` as the gateway's `egress.allow`.
fn listed(entries: &[String], open: &[&str]) -> ProxyConfig {
    ProxyConfig::new(
        entries
            .iter()
            .map(|e| Destination::parse(e).unwrap())
            .collect(),
        Arc::new(EgressPolicy::new(open, &[] as &[&str]).unwrap()),
    )
}

/// The server's list `entries`, with an `[egress]` that opens nothing (the default).
fn allow(entries: &[String]) -> ProxyConfig {
    listed(entries, &[])
}

/// The server's list of loopback `addresses`, each also opened in `egress.allow` (the
/// listeners that stand in for destinations here are on loopback, which the rules block).
fn allow_opened(addresses: &[SocketAddr]) -> ProxyConfig {
    let entries: Vec<String> = addresses.iter().map(ToString::to_string).collect();
    let open: Vec<&str> = entries.iter().map(String::as_str).collect();
    listed(&entries, &open)
}

fn connect_request(target: &str) -> Vec<u8> {
    format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n").into_bytes()
}

#[tokio::test]
async fn connect_to_an_allowed_ip_entry_tunnels_both_ways() {
    let echo = Echo::start().await;
    let proxy = Proxy::start(allow_opened(&[echo.addr]), &[]).await;
    // The client's first bytes arrive right behind its request, as an eager TLS hello would.
    echoes_through_a_tunnel(&proxy, &echo.addr.to_string(), b"early ").await;
    let events = proxy.events();
    assert_eq!(events.len(), 1);
    assert!(events[0].allowed);
    assert_eq!(events[0].kind, RequestKind::Connect);
    assert_eq!(events[0].reason, Reason::Connected(echo.addr));
    assert_eq!(
        proxy
            .resolver_calls
            .load(std::sync::atomic::Ordering::SeqCst),
        0
    );
}

#[tokio::test]
async fn a_host_not_on_the_list_is_refused_and_never_resolved() {
    let echo = Echo::start().await;
    let proxy = Proxy::start(
        allow(&[echo.addr.to_string()]),
        &[("elsewhere.test", &["127.0.0.1"])],
    )
    .await;
    let answer = proxy
        .exchange(&connect_request(&format!(
            "elsewhere.test:{}",
            echo.addr.port()
        )))
        .await;
    assert!(answer.starts_with("HTTP/1.1 403 "), "{answer}");
    assert!(
        answer.contains("not on this server's network allow list"),
        "{answer}"
    );
    assert_eq!(
        proxy
            .resolver_calls
            .load(std::sync::atomic::Ordering::SeqCst),
        0
    );
    assert_eq!(echo.accepted(), 0);
    let events = proxy.events();
    assert_eq!(events[0].reason, Reason::NotOnAllowList);
    assert!(!events[0].allowed);
}

#[tokio::test]
async fn the_right_host_on_the_wrong_port_is_refused_without_connecting() {
    let allowed = Echo::start().await;
    let other = Echo::start().await;
    // `egress.allow` opens all of loopback: the server's list still narrows it.
    let proxy = Proxy::start(listed(&[allowed.addr.to_string()], &["127.0.0.0/8"]), &[]).await;
    let answer = proxy
        .exchange(&connect_request(&format!(
            "127.0.0.1:{}",
            other.addr.port()
        )))
        .await;
    assert!(answer.starts_with("HTTP/1.1 403 "), "{answer}");
    assert_eq!(
        other.accepted(),
        0,
        "a refused destination must not be contacted"
    );
}

/// A listed name that resolves to a blocked range is refused. The proof that nothing was even
/// tried: `loopback.test` points at a live listener on this machine, which accepts nothing.
#[tokio::test]
async fn a_listed_name_resolving_to_a_blocked_address_is_refused_without_connecting() {
    let trap = Echo::start().await;
    let port = trap.addr.port();
    let names: &[(&str, &[&str])] = &[
        ("metadata-alias.test", &["169.254.169.254"]),
        ("intranet.test", &["10.0.0.1"]),
        ("loopback.test", &["127.0.0.1"]),
        ("mapped.test", &["::ffff:127.0.0.1"]),
        // A rebinding setup: one public answer next to a loopback one.
        ("rebind.test", &["93.184.216.34", "127.0.0.1"]),
    ];
    let entries: Vec<String> = names.iter().map(|(n, _)| format!("{n}:{port}")).collect();
    let proxy = Proxy::start(allow(&entries), names).await;
    let expected = [
        Range::LinkLocal,
        Range::Private,
        Range::Loopback,
        Range::Loopback,
        Range::Loopback,
    ];
    for ((name, _), range) in names.iter().zip(expected) {
        let started = Instant::now();
        let answer = proxy
            .exchange(&connect_request(&format!("{name}:{port}")))
            .await;
        assert!(answer.starts_with("HTTP/1.1 403 "), "{name}: {answer}");
        assert!(answer.contains("blocked address"), "{name}: {answer}");
        assert!(
            !answer.contains("169.254") && !answer.contains("10.0.0.1"),
            "the client is not told the resolved address: {answer}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{name}: refused at once"
        );
        let event = proxy.events().pop().unwrap();
        assert!(!event.allowed, "{name}");
        match event.reason {
            Reason::Refused(Denial {
                rule: Rule::BlockedAddress(why),
                address: Some(_),
            }) => assert_eq!(why.range, range, "{name}"),
            other => panic!("{name}: {other:?}"),
        }
    }
    let rebind = proxy.events().pop().unwrap();
    assert_eq!(
        rebind.resolved,
        vec![
            "93.184.216.34".parse::<IpAddr>().unwrap(),
            "127.0.0.1".parse().unwrap()
        ]
    );
    assert_eq!(trap.accepted(), 0, "a refused check must never connect");
}

/// Opens a tunnel to `target` (an echo listener), with `early` sent right behind the request,
/// and checks that `early` and then `ping` come back through it.
async fn echoes_through_a_tunnel(proxy: &Proxy, target: &str, early: &[u8]) {
    let mut conn = TcpStream::connect(proxy.addr).await.unwrap();
    let mut first = connect_request(target);
    first.extend_from_slice(early);
    conn.write_all(&first).await.unwrap();
    let head = read_head(&mut conn).await;
    assert!(head.starts_with("HTTP/1.1 200 "), "{target}: {head}");
    conn.write_all(b"ping").await.unwrap();
    let mut echoed = vec![0u8; early.len() + 4];
    tokio::time::timeout(support::WAIT, conn.read_exact(&mut echoed))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(echoed, [early, b"ping"].concat());
}

/// What the gateway's own guarded client decides for `https://{dest}/`, with the same policy
/// and the same names: the proxy must refuse with exactly this rule and address.
async fn guard_verdict(open: &[&str], names: &[(&str, &[&str])], dest: &str) -> Denial {
    let policy = EgressPolicy::new(open, &[] as &[&str]).unwrap();
    let guard = EgressGuard::with_resolver(
        policy,
        GuardLimits::default(),
        Arc::new(support::TableResolver::new(names)),
    );
    let uri: Uri = format!("https://{dest}/").parse().unwrap();
    let refusal = guard.approve(&uri).await.expect_err("the guard refuses it");
    Denial {
        rule: refusal.rule,
        address: refusal.address,
    }
}

/// A server allowed `intranet.test:443`, which resolves to a private address: refused while
/// `[egress]` opens nothing, and while it opens only some other address, with the rule and
/// code the gateway's own client refuses the same destination with.
#[tokio::test]
async fn a_listed_name_resolving_to_a_private_address_is_refused_as_the_guard_refuses_it() {
    let names: &[(&str, &[&str])] = &[("intranet.test", &["10.0.0.1"])];
    let entry = "intranet.test:443".to_owned();
    for open in [
        &[][..],
        &["10.0.0.2/32"],
        &["10.0.0.1:444"],
        &["intranet.test:444"],
    ] {
        let proxy = Proxy::start(listed(std::slice::from_ref(&entry), open), names).await;
        let answer = proxy.exchange(&connect_request(&entry)).await;
        assert!(answer.starts_with("HTTP/1.1 403 "), "{open:?}: {answer}");
        assert!(answer.contains("[blocked_address]"), "{open:?}: {answer}");
        assert!(
            !answer.contains("10.0.0.1"),
            "the client is not told the resolved address: {answer}"
        );
        let event = proxy.events().pop().unwrap();
        assert!(!event.allowed);
        assert_eq!(event.reason.code(), "blocked_address", "{open:?}");
        assert_eq!(event.resolved, vec!["10.0.0.1".parse::<IpAddr>().unwrap()]);
        let expected = guard_verdict(open, names, &entry).await;
        assert_eq!(event.reason, Reason::Refused(expected), "{open:?}");
        let resolutions = proxy.resolver_calls.load(Ordering::SeqCst);
        assert_eq!(
            resolutions, 1,
            "resolved once, for the check and the connection"
        );
    }
}

/// The same listed name, resolving to a live listener on an internal (here loopback)
/// address: unreachable until `egress.allow` opens that address (or the name on that port),
/// and then reached at exactly the checked address.
#[tokio::test]
async fn a_listed_name_reaches_an_internal_address_only_when_egress_allow_opens_it() {
    let inside = Echo::start().await;
    let port = inside.addr.port();
    let names: &[(&str, &[&str])] = &[("internal.test", &["127.0.0.1"])];
    let entry = format!("internal.test:{port}");
    let other_port = format!("127.0.0.1:{}", port.wrapping_add(1).max(1));
    for open in [&[][..], &["127.0.0.2/32"], &[other_port.as_str()]] {
        let proxy = Proxy::start(listed(std::slice::from_ref(&entry), open), names).await;
        let answer = proxy.exchange(&connect_request(&entry)).await;
        assert!(answer.starts_with("HTTP/1.1 403 "), "{open:?}: {answer}");
        assert_eq!(proxy.events()[0].reason.code(), "blocked_address");
    }
    assert_eq!(
        inside.accepted(),
        0,
        "a refused destination was connected to"
    );
    let opened_name = format!("internal.test:{port}");
    for open in ["127.0.0.1/32", opened_name.as_str()] {
        let proxy = Proxy::start(listed(std::slice::from_ref(&entry), &[open]), names).await;
        echoes_through_a_tunnel(&proxy, &entry, b"").await;
        assert_eq!(proxy.events()[0].reason, Reason::Connected(inside.addr));
    }
}

/// An IP literal on the server's list is judged by the same policy: writing the address
/// instead of a name does not get around `[egress]`.
#[tokio::test]
async fn an_ip_literal_entry_to_a_blocked_address_is_refused_unless_egress_allow_opens_it() {
    let echo = Echo::start().await;
    let entry = echo.addr.to_string();
    let proxy = Proxy::start(allow(std::slice::from_ref(&entry)), &[]).await;
    let answer = proxy.exchange(&connect_request(&entry)).await;
    assert!(answer.starts_with("HTTP/1.1 403 "), "{answer}");
    assert!(answer.contains("[blocked_address]"), "{answer}");
    let event = proxy.events().pop().unwrap();
    let expected = guard_verdict(&[], &[], &entry).await;
    assert_eq!(event.reason, Reason::Refused(expected));
    assert_eq!(echo.accepted(), 0, "a refused literal was connected to");

    let proxy = Proxy::start(allow_opened(&[echo.addr]), &[]).await;
    echoes_through_a_tunnel(&proxy, &entry, b"").await;
    assert_eq!(proxy.events()[0].reason, Reason::Connected(echo.addr));
}

#[tokio::test]
async fn a_listed_metadata_host_name_is_refused_before_resolution() {
    let proxy = Proxy::start(
        allow(&["metadata.google.internal:80".to_owned()]),
        &[("metadata.google.internal", &["8.8.8.8"])],
    )
    .await;
    let answer = proxy
        .exchange(b"GET http://metadata.google.internal/computeMetadata/v1/ HTTP/1.1\r\nMetadata-Flavor: Google\r\n\r\n")
        .await;
    assert!(answer.starts_with("HTTP/1.1 403 "), "{answer}");
    assert_eq!(
        proxy
            .resolver_calls
            .load(std::sync::atomic::Ordering::SeqCst),
        0
    );
    assert!(
        matches!(
            &proxy.events()[0].reason,
            Reason::Refused(Denial { rule: Rule::MetadataHost(name), .. }) if name == "metadata.google.internal"
        ),
        "{:?}",
        proxy.events()
    );
}

#[tokio::test]
async fn an_absolute_form_get_is_forwarded_in_origin_form_and_its_body_relayed() {
    let origin = HttpOrigin::start().await;
    let proxy = Proxy::start(allow_opened(&[origin.addr]), &[]).await;
    let request = format!(
        "POST http://{}/submit?x=1 HTTP/1.1\r\nHost: internal.example\r\nProxy-Authorization: Basic c2VjcmV0\r\nProxy-Connection: keep-alive\r\nContent-Length: 5\r\n\r\nhello",
        origin.addr
    );
    let answer = proxy.exchange(request.as_bytes()).await;
    assert!(answer.starts_with("HTTP/1.1 200 OK"), "{answer}");
    assert!(answer.ends_with("upstream saw: hello"), "{answer}");
    let seen = origin.requests();
    assert_eq!(seen.len(), 1);
    let seen = &seen[0];
    assert!(seen.starts_with("POST /submit?x=1 HTTP/1.1\r\n"), "{seen}");
    assert!(
        seen.contains(&format!("Host: {}\r\n", origin.addr)),
        "{seen}"
    );
    assert!(seen.contains("Connection: close\r\n"), "{seen}");
    assert!(!seen.contains("Proxy-"), "{seen}");
    assert!(!seen.contains("internal.example"), "{seen}");
    let event = &proxy.events()[0];
    assert_eq!(
        event.kind,
        RequestKind::Forward {
            method: "POST".into()
        }
    );
    assert_eq!(event.reason, Reason::Connected(origin.addr));
}

#[tokio::test]
async fn an_absolute_form_get_to_an_unlisted_host_is_refused() {
    let origin = HttpOrigin::start().await;
    let proxy = Proxy::start(allow(&["127.0.0.1:1".to_owned()]), &[]).await;
    let answer = proxy
        .exchange(format!("GET http://{}/ HTTP/1.1\r\n\r\n", origin.addr).as_bytes())
        .await;
    assert!(answer.starts_with("HTTP/1.1 403 "), "{answer}");
    assert!(origin.requests().is_empty());
}

#[tokio::test]
async fn an_allowed_but_closed_destination_is_answered_502() {
    let closed: SocketAddr = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let proxy = Proxy::start(allow_opened(&[closed]), &[]).await;
    let answer = proxy.exchange(&connect_request(&closed.to_string())).await;
    assert!(answer.starts_with("HTTP/1.1 502 "), "{answer}");
    let event = &proxy.events()[0];
    assert!(event.allowed);
    assert!(
        matches!(event.reason, Reason::Unreachable(_)),
        "{:?}",
        event.reason
    );
}

#[tokio::test]
async fn requests_that_are_not_proxy_requests_are_answered_400() {
    let proxy = Proxy::start(allow(&["127.0.0.1:1".to_owned()]), &[]).await;
    for request in [
        &b"GET / HTTP/1.1\r\nHost: 127.0.0.1:1\r\n\r\n"[..],
        b"CONNECT 127.0.0.1 HTTP/1.1\r\n\r\n",
        b"GET https://127.0.0.1:1/ HTTP/1.1\r\n\r\n",
        b"GET ftp://127.0.0.1:1/ HTTP/1.1\r\n\r\n",
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n",
    ] {
        let answer = proxy.exchange(request).await;
        assert!(answer.starts_with("HTTP/1.1 400 "), "{answer}");
    }
    assert!(proxy.events().is_empty(), "no destination, no decision");
}

#[tokio::test]
async fn an_oversize_head_is_answered_400() {
    let mut config = allow(&["127.0.0.1:1".to_owned()]);
    config.max_head_bytes = 1024;
    let proxy = Proxy::start(config, &[]).await;
    let request = format!(
        "CONNECT 127.0.0.1:1 HTTP/1.1\r\nX-Padding: {}\r\n\r\n",
        "a".repeat(4096)
    );
    let answer = proxy.exchange(request.as_bytes()).await;
    assert!(answer.starts_with("HTTP/1.1 400 "), "{answer}");
    assert!(answer.contains("over 1024 bytes"), "{answer}");
}

#[tokio::test]
async fn a_slowloris_head_is_closed_after_the_head_timeout() {
    let mut config = allow(&["127.0.0.1:1".to_owned()]);
    config.head_timeout = Duration::from_millis(300);
    let proxy = Proxy::start(config, &[]).await;
    let mut conn = TcpStream::connect(proxy.addr).await.unwrap();
    conn.write_all(b"CONNECT 127.0.0.1:1 HTTP/1.1\r\n")
        .await
        .unwrap();
    let started = Instant::now();
    let (mut r, mut w) = conn.split();
    let trickle = async {
        // One header byte every 50 ms: never a complete head.
        for _ in 0..100 {
            if w.write_all(b"X").await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    let mut answer = Vec::new();
    let read = async {
        let mut buf = [0u8; 512];
        while let Ok(n) = r.read(&mut buf).await {
            if n == 0 {
                break;
            }
            answer.extend_from_slice(&buf[..n]);
        }
    };
    tokio::select! {
        _ = read => {}
        _ = trickle => panic!("the proxy kept waiting for the head"),
    }
    let elapsed = started.elapsed();
    assert!(elapsed >= Duration::from_millis(250), "{elapsed:?}");
    assert!(elapsed < Duration::from_secs(3), "{elapsed:?}");
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408 "), "{answer}");
}

#[tokio::test]
async fn connections_beyond_the_limit_are_answered_503_and_the_limit_frees_up() {
    let mut config = allow(&["127.0.0.1:1".to_owned()]);
    config.max_connections = 2;
    let proxy = Proxy::start(config, &[]).await;
    // Two silent clients hold both slots.
    let holders = [
        TcpStream::connect(proxy.addr).await.unwrap(),
        TcpStream::connect(proxy.addr).await.unwrap(),
    ];
    let mut third = TcpStream::connect(proxy.addr).await.unwrap();
    let answer = read_to_close(&mut third).await;
    assert!(answer.starts_with("HTTP/1.1 503 "), "{answer}");
    drop(holders);
    // Once the holders are gone their slots come back.
    let deadline = Instant::now() + support::WAIT;
    loop {
        let answer = proxy
            .exchange(&connect_request("not-listed.test:443"))
            .await;
        if answer.starts_with("HTTP/1.1 403 ") {
            break;
        }
        assert!(Instant::now() < deadline, "slots never freed: {answer}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn an_idle_tunnel_is_closed_after_the_idle_timeout() {
    let echo = Echo::start().await;
    let mut config = allow_opened(&[echo.addr]);
    config.idle_timeout = Duration::from_millis(300);
    let proxy = Proxy::start(config, &[]).await;
    let mut conn = TcpStream::connect(proxy.addr).await.unwrap();
    conn.write_all(&connect_request(&echo.addr.to_string()))
        .await
        .unwrap();
    let head = read_head(&mut conn).await;
    assert!(head.starts_with("HTTP/1.1 200 "), "{head}");
    let started = Instant::now();
    let rest = read_to_close(&mut conn).await;
    assert!(rest.is_empty(), "{rest}");
    let elapsed = started.elapsed();
    assert!(elapsed >= Duration::from_millis(250), "{elapsed:?}");
}
