//! Absolute-form requests (`GET http://host:port/path HTTP/1.1`): checked like a CONNECT,
//! then forwarded in origin form on a fresh connection with `Connection: close`, and the
//! answer relayed until the destination closes.
//!
//! The request is rewritten only where a proxy must: the target becomes origin form, `Host` is
//! set from the URL (so a forged `Host` cannot pick another site behind a shared front end),
//! and hop-by-hop and `Proxy-*` headers are dropped. The body is relayed exactly as framed:
//! `Content-Length` bytes, or a chunked stream; a request with both framings, or conflicting
//! lengths, is refused, because two parsers reading it differently is how requests are
//! smuggled.

use std::sync::Arc;

use http::Uri;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use super::destination::{Destination, Host};
use super::event::RequestKind;
use super::head::RequestHead;
use super::reply::{self, Status};
use super::splice::{self, Activity};
use super::{Inner, destination};

/// Headers that describe the client's connection to the proxy, not the request.
const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authorization",
    "proxy-authenticate",
    "te",
    "trailer",
    "upgrade",
    "host",
];

/// Headers that frame the body: never dropped, even if `Connection` names them (dropping
/// one would make the destination read the body differently from the proxy).
const FRAMING: &[&str] = &["content-length", "transfer-encoding"];

/// Why an absolute-form request cannot be forwarded (answered `400`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
enum RequestError {
    #[error("{0:?} is not a URL")]
    NotAUrl(String),
    #[error("send https through CONNECT host:443")]
    HttpsNeedsConnect,
    #[error("only http URLs are forwarded")]
    SchemeNotForwarded,
    #[error("the URL has no host")]
    NoHost,
    #[error("credentials in the URL are not forwarded")]
    Credentials,
    #[error("the port must be 1 to 65535")]
    BadPort,
    #[error(transparent)]
    BadHost(#[from] destination::DestinationError),
    #[error("both Content-Length and Transfer-Encoding")]
    BothFramings,
    #[error("a Transfer-Encoding must end in chunked")]
    NotChunked,
    #[error("a malformed Content-Length")]
    BadLength,
    #[error("conflicting Content-Length values")]
    ConflictingLengths,
}

/// How the request body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Body {
    None,
    Length(u64),
    Chunked,
}

/// What an absolute-form request asks for.
struct Target {
    dest: Destination,
    /// The `Host` header to send.
    host_header: String,
    /// Path and query, in origin form.
    path: String,
}

pub(super) async fn handle(inner: &Arc<Inner>, client: TcpStream, head: RequestHead) {
    let wait = inner.reply_wait();
    let prepared = target(&head.target).and_then(|t| Ok((t, framing(&head)?)));
    let (target, body) = match prepared {
        Ok(p) => p,
        Err(e) => return reply::send(client, Status::BadRequest, &e.to_string(), wait).await,
    };
    let kind = RequestKind::Forward {
        method: head.method.clone(),
    };
    let Some((client, upstream)) = inner.open(client, &target.dest, kind).await else {
        return;
    };
    relay(
        client,
        upstream,
        &head,
        &target,
        body,
        inner.config.idle_timeout,
    )
    .await;
}

fn target(text: &str) -> Result<Target, RequestError> {
    let uri: Uri = text
        .parse()
        .map_err(|_| RequestError::NotAUrl(text.to_owned()))?;
    match uri.scheme_str() {
        Some(s) if s.eq_ignore_ascii_case("http") => {}
        Some(s) if s.eq_ignore_ascii_case("https") => return Err(RequestError::HttpsNeedsConnect),
        _ => return Err(RequestError::SchemeNotForwarded),
    }
    let authority = uri.authority().ok_or(RequestError::NoHost)?;
    if authority.as_str().contains('@') {
        return Err(RequestError::Credentials);
    }
    // `Authority::port` reads an out-of-range port as none at all (so as 80): read it here.
    let after_host = authority
        .as_str()
        .get(authority.host().len()..)
        .unwrap_or_default();
    let port = match after_host.strip_prefix(':') {
        Some(p) => destination::parse_port(p).ok_or(RequestError::BadPort)?,
        None if after_host.is_empty() => 80,
        None => return Err(RequestError::BadPort),
    };
    let host = Host::parse(authority.host())?;
    let dest = Destination { host, port };
    let host_header = if port == 80 {
        dest.host.to_string()
    } else {
        dest.to_string()
    };
    let path = match uri.path_and_query().map(|p| p.as_str()) {
        None | Some("") => "/".to_owned(),
        Some(p) if p.starts_with('/') => p.to_owned(),
        Some(p) => format!("/{p}"),
    };
    Ok(Target {
        dest,
        host_header,
        path,
    })
}

fn framing(head: &RequestHead) -> Result<Body, RequestError> {
    let encodings: Vec<&[u8]> = head.values("transfer-encoding").collect();
    let lengths: Vec<&[u8]> = head.values("content-length").collect();
    if !encodings.is_empty() && !lengths.is_empty() {
        return Err(RequestError::BothFramings);
    }
    if !encodings.is_empty() {
        let joined = encodings
            .iter()
            .map(|v| String::from_utf8_lossy(v).into_owned())
            .collect::<Vec<_>>()
            .join(",");
        let last = joined.rsplit(',').next().unwrap_or_default().trim();
        if !last.eq_ignore_ascii_case("chunked") {
            return Err(RequestError::NotChunked);
        }
        return Ok(Body::Chunked);
    }
    let mut length: Option<u64> = None;
    for value in lengths.iter().flat_map(|v| v.split(|b| *b == b',')) {
        let text = std::str::from_utf8(value).unwrap_or("").trim();
        let parsed = (!text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()))
            .then(|| text.parse::<u64>().ok())
            .flatten()
            .ok_or(RequestError::BadLength)?;
        if length.is_some_and(|l| l != parsed) {
            return Err(RequestError::ConflictingLengths);
        }
        length = Some(parsed);
    }
    Ok(length.map_or(Body::None, Body::Length))
}

/// The request head as sent to the destination.
fn origin_head(head: &RequestHead, target: &Target) -> Vec<u8> {
    let named_by_connection: Vec<String> = head
        .values("connection")
        .flat_map(|v| v.split(|b| *b == b','))
        .map(|t| String::from_utf8_lossy(t).trim().to_ascii_lowercase())
        .collect();
    let dropped = |name: &str| {
        let name = name.to_ascii_lowercase();
        !FRAMING.contains(&name.as_str())
            && (HOP_BY_HOP.contains(&name.as_str()) || named_by_connection.contains(&name))
    };
    let mut out = Vec::with_capacity(512);
    out.extend_from_slice(
        format!(
            "{} {} HTTP/1.1\r\nHost: {}\r\n",
            head.method, target.path, target.host_header
        )
        .as_bytes(),
    );
    for (name, value) in &head.headers {
        if dropped(name) {
            continue;
        }
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"Connection: close\r\n\r\n");
    out
}

async fn relay(
    mut client: TcpStream,
    mut upstream: TcpStream,
    head: &RequestHead,
    target: &Target,
    body: Body,
    idle: std::time::Duration,
) {
    let activity = Activity::new();
    let (mut client_r, mut client_w) = client.split();
    let (mut up_r, mut up_w) = upstream.split();
    let request = async {
        up_w.write_all(&origin_head(head, target)).await?;
        match body {
            Body::None => {}
            Body::Length(len) => {
                let early =
                    usize::try_from(len).map_or(head.rest.len(), |l| l.min(head.rest.len()));
                up_w.write_all(&head.rest[..early]).await?;
                let remaining = len - early as u64;
                splice::copy(&mut client_r, &mut up_w, Some(remaining), &activity).await?;
            }
            Body::Chunked => {
                up_w.write_all(&head.rest).await?;
                splice::copy(&mut client_r, &mut up_w, None, &activity).await?;
            }
        }
        std::io::Result::Ok(())
    };
    let request = async {
        // Once the request is sent (or failed), only the answer matters.
        let _ = request.await;
        std::future::pending::<()>().await;
    };
    let response = async {
        let _ = splice::copy(&mut up_r, &mut client_w, None, &activity).await;
        let _ = client_w.shutdown().await;
    };
    tokio::select! {
        _ = response => {}
        _ = request => {}
        _ = activity.idle_for(idle) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(method: &str, target: &str, headers: &[(&str, &str)]) -> RequestHead {
        RequestHead {
            method: method.to_owned(),
            target: target.to_owned(),
            headers: headers
                .iter()
                .map(|(n, v)| ((*n).to_owned(), v.as_bytes().to_vec()))
                .collect(),
            rest: Vec::new(),
        }
    }

    #[test]
    fn the_target_becomes_origin_form_with_host_from_the_url() {
        let t = target("http://Example.com:8080/a/b?q=1").unwrap();
        assert_eq!(t.dest.to_string(), "example.com:8080");
        assert_eq!(t.host_header, "example.com:8080");
        assert_eq!(t.path, "/a/b?q=1");
        let t = target("http://example.com").unwrap();
        assert_eq!(
            (t.dest.port, t.host_header.as_str(), t.path.as_str()),
            (80, "example.com", "/")
        );
    }

    #[test]
    fn https_ftp_userinfo_and_bad_ports_are_not_forwarded() {
        for bad in [
            "https://example.com/",
            "ftp://example.com/",
            "http://user:pw@example.com/",
            "http://example.com:0/",
            "http://example.com:99999/",
            "http://example.com:/",
            "http://[::1]:70000/",
        ] {
            assert!(target(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn proxy_and_hop_headers_are_stripped_and_a_forged_host_replaced() {
        let h = head(
            "POST",
            "http://a.test/x",
            &[
                ("Host", "internal.example"),
                ("Proxy-Authorization", "Basic c2VjcmV0"),
                ("Proxy-Connection", "keep-alive"),
                ("Connection", "keep-alive, X-Secret, Content-Length"),
                ("X-Secret", "1"),
                ("Content-Length", "2"),
                ("Accept", "*/*"),
            ],
        );
        let t = target(&h.target).unwrap();
        let out = String::from_utf8(origin_head(&h, &t)).unwrap();
        assert!(
            out.starts_with("POST /x HTTP/1.1\r\nHost: a.test\r\n"),
            "{out}"
        );
        for gone in ["internal.example", "Proxy-", "X-Secret", "keep-alive"] {
            assert!(!out.contains(gone), "{gone} in {out}");
        }
        assert!(out.contains("Content-Length: 2\r\n"), "{out}");
        assert!(out.contains("Accept: */*\r\n"), "{out}");
        assert!(out.ends_with("Connection: close\r\n\r\n"), "{out}");
    }

    #[test]
    fn ambiguous_body_framing_is_refused() {
        let both = head(
            "POST",
            "http://a/",
            &[("Content-Length", "3"), ("Transfer-Encoding", "chunked")],
        );
        assert!(framing(&both).is_err());
        let conflicting = head(
            "POST",
            "http://a/",
            &[("Content-Length", "3"), ("Content-Length", "4")],
        );
        assert!(framing(&conflicting).is_err());
        let not_chunked_last = head(
            "POST",
            "http://a/",
            &[("Transfer-Encoding", "chunked, gzip")],
        );
        assert!(framing(&not_chunked_last).is_err());
        let signed = head("POST", "http://a/", &[("Content-Length", "+3")]);
        assert!(framing(&signed).is_err());
        let same_twice = head("POST", "http://a/", &[("Content-Length", "3, 3")]);
        assert_eq!(framing(&same_twice), Ok(Body::Length(3)));
        assert_eq!(framing(&head("GET", "http://a/", &[])), Ok(Body::None));
    }
}
