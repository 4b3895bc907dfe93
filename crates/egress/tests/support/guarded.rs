//! A small "internet" on loopback for the guarded client: two allowed origins, a trap that
//! must never be reached, and a table resolver that maps test names anywhere.

use std::sync::Arc;

use portcullis_egress::guard::{EgressGuard, EgressPolicy, GuardLimits};
use portcullis_egress::proxy::Resolve;
use portcullis_egress::{EgressClient, EgressConfig, EgressError, EgressRequest, Method, Uri};

use super::{Echo, Site, TableResolver};

/// Names the table resolver answers, and where they point.
pub const NAMES: &[(&str, &[&str])] = &[
    ("api.example.test", &["127.0.0.1"]),
    ("loopback.example.test", &["127.0.0.1"]),
    ("localhost", &["127.0.0.1", "::1"]),
    ("public.example.test", &["93.184.216.34"]),
    ("private.example.test", &["10.0.0.7"]),
    ("metadata-alias.example.test", &["169.254.169.254"]),
    ("v6-loopback.example.test", &["::1"]),
    ("mapped.example.test", &["::ffff:127.0.0.1"]),
    ("rebind.example.test", &["93.184.216.34", "127.0.0.1"]),
    ("cgnat.example.test", &["100.100.100.200"]),
    ("ula.example.test", &["fd00:ec2::254"]),
    ("nat64.example.test", &["64:ff9b::a9fe:a9fe"]),
    ("sixtofour.example.test", &["2002:a9fe:a9fe::1"]),
    // Teredo: public server 65.54.227.120, client 127.0.0.1 (stored inverted).
    (
        "teredo.example.test",
        &["2001:0:4136:e378:8000:63bf:80ff:fffe"],
    ),
    ("link-local-v6.example.test", &["fe80::1"]),
    ("empty.example.test", &[]),
];

/// The hosts allowed over plain http in these tests (the dev allowlist).
pub const HTTP_HOSTS: &[&str] = &[
    "127.0.0.1",
    "api.example.test",
    "loopback.example.test",
    "localhost",
    "private.example.test",
    "metadata-alias.example.test",
];

pub struct World {
    /// Stands in for an allowed internet origin (`127.0.0.1:<port>` is opened).
    pub origin: Site,
    /// A second allowed origin, for cross-origin redirects.
    pub second: Site,
    /// A loopback listener nothing may reach: it stands in for the internal network.
    pub trap: Echo,
    pub resolver: Arc<TableResolver>,
    pub guard: EgressGuard,
    pub client: EgressClient,
}

impl World {
    pub async fn start(limits: GuardLimits) -> World {
        let trap = Echo::start().await;
        let t = trap.addr.port();
        let second = Site::start(&[("/bounce", 302, "http://169.254.169.254/latest/")]).await;
        let s = second.port();
        let to_second_name = format!("http://api.example.test:{s}/bounce");
        let to_second = format!("http://127.0.0.1:{s}/landing");
        let to_trap_name = format!("http://loopback.example.test:{t}/");
        let to_trap_hex = format!("http://0x7f.1:{t}/");
        let to_trap_userinfo = format!("http://allowed@127.0.0.1:{t}/");
        let origin = Site::start(&[
            (
                "/to-metadata",
                302,
                "http://169.254.169.254/latest/meta-data/",
            ),
            ("/to-metadata-303", 303, "http://169.254.169.254/"),
            ("/to-metadata-decimal", 301, "http://2852039166/"),
            ("/to-private", 307, "http://10.0.0.5/admin"),
            ("/to-private-scheme-relative", 302, "//10.0.0.5/"),
            ("/to-private-name", 302, "http://private.example.test/"),
            ("/to-alias", 302, "http://metadata-alias.example.test/"),
            ("/to-trap-name", 302, &to_trap_name),
            ("/to-trap-hex", 308, &to_trap_hex),
            ("/to-trap-userinfo", 302, &to_trap_userinfo),
            (
                "/to-gcp",
                302,
                "http://metadata.google.internal/computeMetadata/v1/",
            ),
            ("/to-mapped", 302, "http://[::ffff:169.254.169.254]/"),
            ("/to-file", 302, "file:///etc/passwd"),
            ("/to-gopher", 302, "gopher://127.0.0.1:6379/_INFO"),
            ("/to-public-http", 302, "http://public.example.test/"),
            ("/no-location", 302, ""),
            ("/to-second", 302, &to_second),
            ("/to-second-post", 307, &to_second),
            ("/to-second-then-metadata", 302, &to_second_name),
            ("/same-origin", 302, "/landing"),
            ("/loop", 302, "/loop"),
        ])
        .await;
        let allow = [
            format!("127.0.0.1:{}", origin.port()),
            format!("127.0.0.1:{s}"),
        ];
        let policy = EgressPolicy::new(&allow, HTTP_HOSTS).unwrap();
        let resolver = Arc::new(TableResolver::new(NAMES));
        let dyn_resolver: Arc<dyn Resolve> = resolver.clone();
        let guard = EgressGuard::with_resolver(policy, limits, dyn_resolver);
        let client = EgressClient::guarded(&EgressConfig::default(), guard.clone()).unwrap();
        World {
            origin,
            second,
            trap,
            resolver,
            guard,
            client,
        }
    }

    /// `http://127.0.0.1:<origin>` + `path`.
    pub fn origin_url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.origin.port())
    }

    pub async fn get(&self, url: &str) -> Result<portcullis_egress::EgressResponse, EgressError> {
        let uri: Uri = url.parse().unwrap();
        self.client.send(EgressRequest::new(Method::GET, uri)).await
    }

    pub async fn follow(
        &self,
        req: EgressRequest,
    ) -> Result<portcullis_egress::EgressResponse, EgressError> {
        self.client.send_following(req).await
    }

    /// Nothing reached the trap, and the allowed origins saw only `expected` requests.
    pub fn assert_untouched(&self, origin_requests: usize) {
        assert_eq!(self.trap.accepted(), 0, "the trap was connected to");
        assert_eq!(
            self.origin.requests().len(),
            origin_requests,
            "origin requests"
        );
    }
}
