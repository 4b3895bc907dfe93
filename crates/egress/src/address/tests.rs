use super::*;

fn class(text: &str) -> AddressClass {
    classify(text.parse().expect("test address"))
}

fn range_of(text: &str) -> Range {
    match class(text) {
        AddressClass::Blocked(r) => r.range,
        AddressClass::Public => panic!("{text} should be blocked"),
    }
}

fn embedding_of(text: &str) -> Option<Embedding> {
    match class(text) {
        AddressClass::Blocked(r) => r.embedded_in,
        AddressClass::Public => panic!("{text} should be blocked"),
    }
}

fn assert_range(range: Range, addrs: &[&str]) {
    for a in addrs {
        assert_eq!(range_of(a), range, "{a}");
    }
}

#[test]
fn loopback_is_blocked() {
    assert_range(
        Range::Loopback,
        &["127.0.0.1", "127.255.255.254", "127.1.2.3", "::1"],
    );
}

#[test]
fn unspecified_and_this_network_are_blocked() {
    assert_range(Range::Unspecified, &["0.0.0.0", "::"]);
    assert_range(Range::ThisNetwork, &["0.0.0.1", "0.255.255.255"]);
}

#[test]
fn rfc1918_private_networks_are_blocked() {
    assert_range(
        Range::Private,
        &[
            "10.0.0.1",
            "10.255.255.255",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.0.1",
            "192.168.255.255",
        ],
    );
    // The edges just outside stay public.
    for a in [
        "172.15.255.255",
        "172.32.0.0",
        "192.167.255.255",
        "11.0.0.0",
    ] {
        assert_eq!(class(a), AddressClass::Public, "{a}");
    }
}

#[test]
fn cgnat_shared_space_is_blocked() {
    assert_range(
        Range::SharedAddressSpace,
        &["100.64.0.0", "100.100.100.200", "100.127.255.255"],
    );
    assert_eq!(class("100.63.255.255"), AddressClass::Public);
    assert_eq!(class("100.128.0.0"), AddressClass::Public);
}

#[test]
fn link_local_and_cloud_metadata_are_blocked() {
    assert_range(
        Range::LinkLocal,
        &["169.254.169.254", "169.254.0.1", "fe80::1", "febf::1"],
    );
}

#[test]
fn ipv6_unique_local_and_site_local_are_blocked() {
    assert_range(
        Range::UniqueLocal,
        &["fc00::1", "fd00:ec2::254", "fdff:ffff::1"],
    );
    assert_range(Range::SiteLocal, &["fec0::1"]);
}

#[test]
fn multicast_and_broadcast_are_blocked() {
    assert_range(
        Range::Multicast,
        &["224.0.0.1", "239.255.255.250", "ff02::1", "ff0e::1"],
    );
    assert_range(Range::Broadcast, &["255.255.255.255"]);
}

#[test]
fn documentation_benchmarking_and_reserved_ranges_are_blocked() {
    assert_range(
        Range::Documentation,
        &[
            "192.0.2.1",
            "198.51.100.7",
            "203.0.113.9",
            "2001:db8::1",
            "3fff::1",
        ],
    );
    assert_range(
        Range::Benchmarking,
        &["198.18.0.1", "198.19.255.255", "2001:2::1"],
    );
    assert_range(Range::ProtocolAssignments, &["192.0.0.8"]);
    assert_range(Range::RelayAnycast, &["192.88.99.1"]);
    assert_range(
        Range::Reserved,
        &["240.0.0.1", "254.1.2.3", "100::1", "5f00::1", "4000::1"],
    );
    assert_range(Range::Orchid, &["2001:10::1", "2001:20::1"]);
}

#[test]
fn ipv4_mapped_and_compatible_ipv6_are_judged_by_the_ipv4_inside() {
    assert_eq!(range_of("::ffff:127.0.0.1"), Range::Loopback);
    assert_eq!(
        embedding_of("::ffff:127.0.0.1"),
        Some(Embedding::Ipv4Mapped)
    );
    assert_eq!(range_of("::ffff:169.254.169.254"), Range::LinkLocal);
    assert_eq!(range_of("::10.0.0.1"), Range::Private);
    assert_eq!(embedding_of("::10.0.0.1"), Some(Embedding::Ipv4Compatible));
    assert_eq!(class("::ffff:8.8.8.8"), AddressClass::Public);
}

#[test]
fn nat64_wrapping_a_blocked_ipv4_is_blocked() {
    assert_eq!(range_of("64:ff9b::a9fe:a9fe"), Range::LinkLocal);
    assert_eq!(embedding_of("64:ff9b::127.0.0.1"), Some(Embedding::Nat64));
    assert_eq!(class("64:ff9b::8.8.8.8"), AddressClass::Public);
    assert_eq!(range_of("64:ff9b:1::1"), Range::LocalNat64);
}

#[test]
fn six_to_four_wrapping_a_blocked_ipv4_is_blocked() {
    // 2002:7f00:0001::/48 carries 127.0.0.1; 2002:a9fe:a9fe::/48 carries the metadata address.
    assert_eq!(range_of("2002:7f00:1::1"), Range::Loopback);
    assert_eq!(range_of("2002:a9fe:a9fe::"), Range::LinkLocal);
    assert_eq!(embedding_of("2002:a00:1::"), Some(Embedding::SixToFour));
    assert_eq!(class("2002:808:808::1"), AddressClass::Public);
}

#[test]
fn teredo_wrapping_a_blocked_ipv4_is_blocked() {
    // Server 10.0.0.1 in the clear.
    assert_eq!(range_of("2001:0:a00:1::1"), Range::Private);
    // Client 127.0.0.1, stored inverted: !0x7f000001 = 0x80fffffe.
    assert_eq!(range_of("2001:0:808:808:0:0:80ff:fffe"), Range::Loopback);
    assert_eq!(
        embedding_of("2001:0:808:808:0:0:80ff:fffe"),
        Some(Embedding::Teredo)
    );
    // Both public: server 8.8.8.8, client 8.8.4.4 (inverted f7f7:fbfb).
    assert_eq!(class("2001:0:808:808:0:0:f7f7:fbfb"), AddressClass::Public);
}

#[test]
fn ordinary_public_addresses_are_public() {
    for a in [
        "8.8.8.8",
        "1.1.1.1",
        "93.184.216.34",
        "192.0.1.1",
        "223.255.255.255",
        "2606:4700:4700::1111",
        "2a00:1450:4001::1",
    ] {
        assert_eq!(class(a), AddressClass::Public, "{a}");
    }
}

#[test]
fn metadata_host_names_are_recognised_without_case_or_trailing_dot() {
    for name in [
        "metadata.google.internal",
        "METADATA.google.internal.",
        "metadata",
        "metadata.goog",
        "instance-data.ec2.internal",
    ] {
        assert!(is_metadata_host(name), "{name}");
    }
    for name in ["example.com", "metadata.example.com", "google.internal"] {
        assert!(!is_metadata_host(name), "{name}");
    }
}

#[test]
fn a_block_reason_names_the_range_and_the_wrapping() {
    let AddressClass::Blocked(reason) = class("::ffff:169.254.169.254") else {
        panic!("blocked");
    };
    let text = reason.to_string();
    assert!(text.contains("link-local"), "{text}");
    assert!(text.contains("IPv4-mapped"), "{text}");
}
