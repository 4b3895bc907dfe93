//! Loopback stand-ins for the proxy's clients and destinations, and a resolver that answers
//! from a table so a name can "resolve" anywhere without DNS.

#![allow(dead_code, clippy::unwrap_used)]

pub mod guarded;

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::BoxFuture;
use portcullis_egress::proxy::{ProxyConfig, ProxyEvent, Resolve, SandboxProxy};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// Every wait in these tests is bounded by this.
pub const WAIT: Duration = Duration::from_secs(5);

/// Answers names from a table, and counts how often it was asked.
pub struct TableResolver {
    names: HashMap<String, Vec<IpAddr>>,
    pub calls: Arc<AtomicUsize>,
}

impl TableResolver {
    /// Answers each name with its addresses; any other name is not found.
    pub fn new(names: &[(&str, &[&str])]) -> TableResolver {
        let names = names
            .iter()
            .map(|(n, ips)| {
                (
                    (*n).to_owned(),
                    ips.iter().map(|i| i.parse().unwrap()).collect(),
                )
            })
            .collect();
        TableResolver {
            names,
            calls: Arc::new(AtomicUsize::new(0)),
        }
    }

    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}

impl Resolve for TableResolver {
    fn resolve<'a>(&'a self, host: &'a str, _port: u16) -> BoxFuture<'a, io::Result<Vec<IpAddr>>> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let found = self.names.get(host).cloned();
        Box::pin(async move {
            found.ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no such name"))
        })
    }
}

/// A running proxy on loopback, with the events it reported and its resolver's call count.
pub struct Proxy {
    pub addr: SocketAddr,
    pub events: Arc<Mutex<Vec<ProxyEvent>>>,
    pub resolver_calls: Arc<AtomicUsize>,
    task: JoinHandle<()>,
}

impl Proxy {
    pub async fn start(config: ProxyConfig, names: &[(&str, &[&str])]) -> Proxy {
        let resolver = TableResolver::new(names);
        let calls = Arc::clone(&resolver.calls);
        let events = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&events);
        let proxy = SandboxProxy::new(config, Arc::new(resolver), move |e| {
            sink.lock().unwrap().push(e);
        });
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(proxy.serve(listener));
        Proxy {
            addr,
            events,
            resolver_calls: calls,
            task,
        }
    }

    pub fn events(&self) -> Vec<ProxyEvent> {
        self.events.lock().unwrap().clone()
    }

    /// Sends `request` on a new connection and reads until the proxy closes it.
    pub async fn exchange(&self, request: &[u8]) -> String {
        let mut conn = TcpStream::connect(self.addr).await.unwrap();
        conn.write_all(request).await.unwrap();
        read_to_close(&mut conn).await
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Reads until the peer closes (or resets), bounded by [`WAIT`].
pub async fn read_to_close(conn: &mut TcpStream) -> String {
    let mut out = Vec::new();
    let read = tokio::time::timeout(WAIT, async {
        let mut buf = [0u8; 4096];
        loop {
            match conn.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => out.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    assert!(read.is_ok(), "the proxy did not close the connection");
    String::from_utf8_lossy(&out).into_owned()
}

/// Reads a response head (up to the blank line), bounded by [`WAIT`].
pub async fn read_head(conn: &mut TcpStream) -> String {
    let mut out = Vec::new();
    tokio::time::timeout(WAIT, async {
        let mut byte = [0u8; 1];
        while !out.ends_with(b"\r\n\r\n") {
            if conn.read(&mut byte).await.unwrap() == 0 {
                break;
            }
            out.push(byte[0]);
        }
    })
    .await
    .expect("a response head");
    String::from_utf8_lossy(&out).into_owned()
}

/// A TCP listener that counts the connections it accepts and echoes what they send.
pub struct Echo {
    pub addr: SocketAddr,
    pub accepted: Arc<AtomicUsize>,
    task: JoinHandle<()>,
}

impl Echo {
    pub async fn start() -> Echo {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let accepted = Arc::new(AtomicUsize::new(0));
        let count = Arc::clone(&accepted);
        let task = tokio::spawn(async move {
            while let Ok((mut sock, _)) = listener.accept().await {
                count.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(async move {
                    let (mut r, mut w) = sock.split();
                    let _ = tokio::io::copy(&mut r, &mut w).await;
                });
            }
        });
        Echo {
            addr,
            accepted,
            task,
        }
    }

    pub fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }
}

impl Drop for Echo {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A one-request-per-connection HTTP server: records each request (head and body) and
/// answers `upstream saw: <body>`.
pub struct HttpOrigin {
    pub addr: SocketAddr,
    pub requests: Arc<Mutex<Vec<String>>>,
    task: JoinHandle<()>,
}

impl HttpOrigin {
    pub async fn start() -> HttpOrigin {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::clone(&requests);
        let task = tokio::spawn(async move {
            while let Ok((mut sock, _)) = listener.accept().await {
                let seen = Arc::clone(&seen);
                tokio::spawn(async move {
                    let head = read_head(&mut sock).await;
                    let length = head
                        .lines()
                        .find_map(|l| {
                            let (n, v) = l.split_once(':')?;
                            n.eq_ignore_ascii_case("content-length")
                                .then(|| v.trim().parse::<usize>().ok())?
                        })
                        .unwrap_or(0);
                    let mut body = vec![0u8; length];
                    sock.read_exact(&mut body).await.unwrap();
                    let body = String::from_utf8_lossy(&body).into_owned();
                    seen.lock().unwrap().push(format!("{head}{body}"));
                    let answer = format!("upstream saw: {body}");
                    let response = format!(
                        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{answer}",
                        answer.len()
                    );
                    let _ = sock.write_all(response.as_bytes()).await;
                });
            }
        });
        HttpOrigin {
            addr,
            requests,
            task,
        }
    }

    pub fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }
}

impl Drop for HttpOrigin {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// An HTTP origin with routes: each listed path answers its status with a `Location`; `/big`
/// answers 4096 bytes; any other path answers `200 hello from <path>`. Records every request
/// head, one request per connection.
pub struct Site {
    pub addr: SocketAddr,
    pub requests: Arc<Mutex<Vec<String>>>,
    task: JoinHandle<()>,
}

impl Site {
    pub async fn start(routes: &[(&str, u16, &str)]) -> Site {
        let routes: Vec<(String, u16, String)> = routes
            .iter()
            .map(|(p, s, l)| ((*p).to_owned(), *s, (*l).to_owned()))
            .collect();
        let routes = Arc::new(routes);
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::clone(&requests);
        let task = tokio::spawn(async move {
            while let Ok((mut sock, _)) = listener.accept().await {
                let seen = Arc::clone(&seen);
                let routes = Arc::clone(&routes);
                tokio::spawn(async move {
                    let head = read_head(&mut sock).await;
                    let path = head.split(' ').nth(1).unwrap_or("/").to_owned();
                    seen.lock().unwrap().push(head);
                    let response = match routes.iter().find(|(p, _, _)| *p == path) {
                        Some((_, status, location)) => format!(
                            "HTTP/1.1 {status} Redirect\r\nLocation: {location}\r\n\
                             Content-Length: 0\r\nConnection: close\r\n\r\n"
                        ),
                        None => {
                            let body = if path == "/big" {
                                "x".repeat(4096)
                            } else {
                                format!("hello from {path}")
                            };
                            format!(
                                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                                body.len()
                            )
                        }
                    };
                    let _ = sock.write_all(response.as_bytes()).await;
                });
            }
        });
        Site {
            addr,
            requests,
            task,
        }
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    pub fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }
}

impl Drop for Site {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A listener that accepts connections and never answers (for timeouts).
pub struct Silent {
    pub addr: SocketAddr,
    task: JoinHandle<()>,
}

impl Silent {
    pub async fn start() -> Silent {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((sock, _)) = listener.accept().await {
                held.push(sock);
            }
        });
        Silent { addr, task }
    }
}

impl Drop for Silent {
    fn drop(&mut self) {
        self.task.abort();
    }
}
