//! URL constraints: the host is the one a WHATWG client will connect to.

use portcullis_policy::{HostPattern, UrlRejection, check_url};

fn hosts() -> Vec<HostPattern> {
    [
        "api.example.com",
        "*.internal.example",
        "10.0.0.5",
        "[::1]",
        "bücher.example",
    ]
    .iter()
    .map(|h| HostPattern::parse(h).expect("valid host"))
    .collect()
}

fn check(url: &str) -> Result<String, UrlRejection> {
    check_url(url, &hosts())
}

#[test]
fn listed_hosts_pass_in_any_spelling_a_client_accepts() {
    for ok in [
        "https://api.example.com/v1/x",
        "HTTPS://API.EXAMPLE.COM",
        "https://api.example.com./",
        "https://api.example.com:8443/x",
        "http://api.example.com?q=1",
        "  https://api.example.com/  ",
        "https://api.exa\tmple.com/",
        "https://x.internal.example/",
        "https://a.b.internal.example/",
        "http://10.0.0.5/",
        "http://0x0a.0.0.5/",
        "http://167772165/",
        "http://[::ffff:10.0.0.5]/",
        "http://[::1]:8080/",
        "https://BÜCHER.example/",
        "https://xn--bcher-kva.example/",
    ] {
        assert!(check(ok).is_ok(), "{ok}: {:?}", check(ok));
    }
    assert_eq!(check("http://0x0a.0.0.5/"), Ok("10.0.0.5".into()));
}

#[test]
fn other_hosts_fail_however_they_hide() {
    for bad in [
        "https://api.example.com@evil.com/",
        "https://api.example.com:pw@evil.com/",
        "https://evil.com\\@api.example.com/",
        "https://evil.com#@api.example.com",
        "https://evil.com?@api.example.com",
        "https://api.example.com.evil.com/",
        "https://evil.com/api.example.com",
        "https://internal.example/",
        "https://xinternal.example/",
        "http://127.0.0.1/",
        "http://10.0.0.6/",
        "http://[::2]/",
    ] {
        assert_eq!(
            check(bad),
            Err(UrlRejection::HostNotAllowed(
                url::Url::parse(bad)
                    .ok()
                    .and_then(|u| u.host_str().map(str::to_owned))
                    .unwrap_or_default()
            )),
            "{bad}"
        );
    }
}

#[test]
fn non_http_and_malformed_urls_cannot_be_judged() {
    assert_eq!(
        check("ftp://api.example.com/"),
        Err(UrlRejection::Scheme("ftp".into()))
    );
    assert_eq!(
        check("file:///etc/passwd"),
        Err(UrlRejection::Scheme("file".into()))
    );
    assert_eq!(
        check("javascript:alert(1)"),
        Err(UrlRejection::Scheme("javascript".into()))
    );
    assert!(matches!(
        check("api.example.com/x"),
        Err(UrlRejection::Invalid(_))
    ));
    assert!(matches!(check("https://"), Err(UrlRejection::Invalid(_))));
    assert!(matches!(check(""), Err(UrlRejection::Invalid(_))));
    for r in [check("ftp://x/"), check("nope")] {
        assert!(!r.unwrap_err().is_outside());
    }
    assert!(check("https://evil.com/").unwrap_err().is_outside());
}

#[test]
fn host_patterns_are_checked() {
    for bad in [
        "*",
        "*.",
        "a.*.com",
        "*example.com",
        "https://example.com",
        "example.com/path",
        "example.com:443",
        "*.10.0.0.1",
        "0x7f.1",
        "127.1",
        "",
        "exa mple.com",
    ] {
        assert!(HostPattern::parse(bad).is_err(), "{bad} should be refused");
    }
    let e = HostPattern::parse("a.*.com").unwrap_err().to_string();
    assert_eq!(
        e,
        "bad host \"a.*.com\": `*` is only allowed as a leading `*.` (e.g. *.example.com)"
    );
    assert_eq!(
        HostPattern::parse("API.Example.COM").expect("ok").as_str(),
        "API.Example.COM"
    );
    assert!(
        check_url(
            "https://api.example.com",
            &[HostPattern::parse("API.Example.COM").expect("ok")]
        )
        .is_ok()
    );
    assert!(HostPattern::parse("::1").is_ok());
}
