//! Raw HTTP to an MCP endpoint: requests with the session and version headers, answers
//! with the JSON-RPC messages they carried, and SSE streams read event by event.

use std::time::Duration;

use super::WAIT;

/// One HTTP answer from an MCP endpoint, with the JSON-RPC messages it carried (a JSON body,
/// or every `data:` of an SSE body).
#[derive(Debug)]
pub struct HttpAnswer {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: String,
    pub messages: Vec<serde_json::Value>,
}

impl HttpAnswer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The JSON-RPC response (the message with an id and a result or error).
    pub fn response(&self) -> &serde_json::Value {
        self.messages
            .iter()
            .find(|m| {
                m.get("id").is_some() && (m.get("result").is_some() || m.get("error").is_some())
            })
            .unwrap_or_else(|| panic!("no JSON-RPC response in: {}", self.body))
    }
}

/// A raw Streamable HTTP client: it sends exactly the bytes and headers a test gives it.
pub struct RawHttp {
    pub client: reqwest::Client,
    pub url: String,
    pub session: Option<String>,
    pub version: Option<String>,
}

impl RawHttp {
    pub fn new(url: &str) -> RawHttp {
        let client = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(30))
            .build()
            .expect("client");
        RawHttp {
            client,
            url: url.to_owned(),
            session: None,
            version: None,
        }
    }

    /// POSTs `body` with the usual headers; `extra` adds headers and replaces any usual one
    /// of the same name.
    pub async fn post_with(&self, body: impl Into<String>, extra: &[(&str, &str)]) -> HttpAnswer {
        use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
        let mut headers = HeaderMap::new();
        headers.insert("content-type", HeaderValue::from_static("application/json"));
        headers.insert(
            "accept",
            HeaderValue::from_static("application/json, text/event-stream"),
        );
        if let Some(s) = &self.session {
            headers.insert(
                "mcp-session-id",
                HeaderValue::from_str(s).expect("session id"),
            );
        }
        if let Some(v) = &self.version {
            headers.insert(
                "mcp-protocol-version",
                HeaderValue::from_str(v).expect("version"),
            );
        }
        for (k, v) in extra {
            let name = HeaderName::from_bytes(k.as_bytes()).expect("header name");
            headers.insert(name, HeaderValue::from_str(v).expect("header value"));
        }
        let resp = self
            .client
            .post(&self.url)
            .headers(headers)
            .body(body.into())
            .send()
            .await
            .expect("POST");
        answer(resp).await
    }

    pub async fn post(&self, body: impl Into<String>) -> HttpAnswer {
        self.post_with(body, &[]).await
    }

    /// initialize + notifications/initialized; remembers the session id and version.
    pub async fn initialize(&mut self, capabilities: serde_json::Value) -> serde_json::Value {
        let body = serde_json::json!({
            "jsonrpc": "2.0", "id": 0, "method": "initialize",
            "params": { "protocolVersion": "2025-11-25", "capabilities": capabilities,
                        "clientInfo": { "name": "portcullis-tests", "version": "0" } }
        });
        let a = self.post(body.to_string()).await;
        assert_eq!(a.status, 200, "initialize failed: {}", a.body);
        self.session = a.header("mcp-session-id").map(str::to_owned);
        assert!(self.session.is_some(), "no session id in {:?}", a.headers);
        let result = a.response()["result"].clone();
        self.version = result["protocolVersion"].as_str().map(str::to_owned);
        let n = self
            .post(r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#)
            .await;
        assert_eq!(n.status, 202, "initialized: {}", n.body);
        result
    }

    /// Sends a request and returns its JSON-RPC response message.
    pub async fn request(
        &self,
        id: i64,
        method: &str,
        params: serde_json::Value,
    ) -> serde_json::Value {
        let body =
            serde_json::json!({ "jsonrpc": "2.0", "id": id, "method": method, "params": params });
        let a = self.post(body.to_string()).await;
        assert_eq!(a.status, 200, "{method} failed: {}", a.body);
        a.response().clone()
    }
}

pub async fn answer(resp: reqwest::Response) -> HttpAnswer {
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body = resp.text().await.unwrap_or_default();
    let is_sse = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/event-stream"));
    let messages = if is_sse {
        body.split("\n\n")
            .filter_map(|event| {
                let data: Vec<&str> = event
                    .lines()
                    .filter_map(|l| l.strip_prefix("data:").map(str::trim_start))
                    .collect();
                (!data.is_empty()).then(|| data.join("\n"))
            })
            .filter(|d| !d.is_empty())
            .filter_map(|d| serde_json::from_str(&d).ok())
            .collect()
    } else {
        serde_json::from_str::<serde_json::Value>(&body)
            .map(|v| vec![v])
            .unwrap_or_default()
    };
    HttpAnswer {
        status,
        headers,
        body,
        messages,
    }
}

/// One event of an SSE response.
#[derive(Debug, Clone)]
pub struct Event {
    pub id: Option<String>,
    pub data: String,
}

impl Event {
    pub fn json(&self) -> Option<serde_json::Value> {
        serde_json::from_str(&self.data).ok()
    }
}

/// An SSE response read incrementally, each wait bounded (for streams that stay open).
pub struct SseReader {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    resp: reqwest::Response,
    buf: String,
    ended: bool,
}

impl SseReader {
    pub fn new(resp: reqwest::Response) -> SseReader {
        SseReader {
            status: resp.status().as_u16(),
            headers: resp.headers().clone(),
            resp,
            buf: String::new(),
            ended: false,
        }
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The next event with data or an id (comments and keep-alives skipped): Ok(None) at the
    /// end of the stream, Err(()) if nothing came within `wait`. A JSON (not SSE) answer is
    /// returned as one event holding the whole body.
    pub async fn next_within(&mut self, wait: Duration) -> Result<Option<Event>, ()> {
        let deadline = tokio::time::Instant::now() + wait;
        let is_sse = self
            .header("content-type")
            .is_some_and(|v| v.starts_with("text/event-stream"));
        if !is_sse {
            while !self.ended {
                match tokio::time::timeout_at(deadline, self.resp.chunk()).await {
                    Err(_) => return Err(()),
                    Ok(Ok(Some(chunk))) => self.buf.push_str(&String::from_utf8_lossy(&chunk)),
                    Ok(Ok(None)) | Ok(Err(_)) => self.ended = true,
                }
            }
            let body = std::mem::take(&mut self.buf);
            return Ok((!body.is_empty()).then_some(Event {
                id: None,
                data: body,
            }));
        }
        loop {
            let normalized = self.buf.replace("\r\n", "\n");
            if let Some(end) = normalized.find("\n\n") {
                let block = normalized[..end].to_owned();
                self.buf = normalized[end + 2..].to_owned();
                let mut id = None;
                let mut data: Vec<&str> = Vec::new();
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("id:") {
                        id = Some(v.trim_start().to_owned());
                    } else if let Some(v) = line.strip_prefix("data:") {
                        data.push(v.strip_prefix(' ').unwrap_or(v));
                    }
                }
                if id.is_none() && data.is_empty() {
                    continue;
                }
                return Ok(Some(Event {
                    id,
                    data: data.join("\n"),
                }));
            }
            if self.ended {
                return Ok(None);
            }
            match tokio::time::timeout_at(deadline, self.resp.chunk()).await {
                Err(_) => return Err(()),
                Ok(Ok(Some(chunk))) => self.buf.push_str(&String::from_utf8_lossy(&chunk)),
                Ok(Ok(None)) | Ok(Err(_)) => self.ended = true,
            }
        }
    }

    /// The next event; fails the test if none comes within [`WAIT`].
    pub async fn next(&mut self) -> Option<Event> {
        self.next_within(WAIT)
            .await
            .unwrap_or_else(|()| panic!("no SSE event within {WAIT:?}"))
    }

    /// The next JSON-RPC message (events without data are skipped).
    pub async fn next_message(&mut self) -> Option<serde_json::Value> {
        loop {
            let event = self.next().await?;
            if event.data.is_empty() {
                continue;
            }
            return Some(
                event
                    .json()
                    .unwrap_or_else(|| panic!("SSE data is not JSON: {}", event.data)),
            );
        }
    }

    /// Every remaining event until the stream ends (bounded by [`WAIT`] per event).
    pub async fn rest(&mut self) -> Vec<Event> {
        let mut out = Vec::new();
        while let Some(e) = self.next().await {
            out.push(e);
        }
        out
    }
}

impl RawHttp {
    /// A request with the session and version headers (when set), then `extra`, each of
    /// which *replaces* any header of the same name (reqwest's `header` would append a
    /// second one instead).
    fn with_headers(
        &self,
        mut req: reqwest::RequestBuilder,
        extra: &[(&str, &str)],
    ) -> reqwest::RequestBuilder {
        if let Some(s) = &self.session {
            req = req.header("mcp-session-id", s);
        }
        if let Some(v) = &self.version {
            req = req.header("mcp-protocol-version", v);
        }
        let mut map = reqwest::header::HeaderMap::new();
        for (k, v) in extra {
            let name = reqwest::header::HeaderName::from_bytes(k.as_bytes()).expect("header name");
            let value = reqwest::header::HeaderValue::from_str(v).expect("header value");
            map.insert(name, value);
        }
        req.headers(map)
    }

    /// POSTs `body` with the usual headers, each header of `extra` replacing the usual one
    /// of its name (unlike [`RawHttp::post_with`], which sends both).
    pub async fn post_exact(&self, body: impl Into<String>, extra: &[(&str, &str)]) -> HttpAnswer {
        self.post_bytes(body.into().into_bytes(), extra).await
    }

    /// POSTs raw bytes (which need not be UTF-8) with the usual headers, `extra` replacing.
    pub async fn post_bytes(&self, body: Vec<u8>, extra: &[(&str, &str)]) -> HttpAnswer {
        let req = self
            .client
            .post(&self.url)
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream");
        let resp = self
            .with_headers(req, extra)
            .body(body)
            .send()
            .await
            .expect("POST");
        answer(resp).await
    }

    /// POSTs `body` and returns the answer unread, for streams read event by event.
    pub async fn post_stream(&self, body: impl Into<String>, extra: &[(&str, &str)]) -> SseReader {
        let req = self
            .client
            .post(&self.url)
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream");
        let resp = self
            .with_headers(req, extra)
            .body(body.into())
            .send()
            .await
            .expect("POST");
        SseReader::new(resp)
    }

    /// GET with `Accept: text/event-stream` (unless `extra` overrides it), unread.
    pub async fn get_stream(&self, extra: &[(&str, &str)]) -> SseReader {
        let req = self
            .client
            .get(&self.url)
            .header("accept", "text/event-stream");
        let resp = self.with_headers(req, extra).send().await.expect("GET");
        SseReader::new(resp)
    }

    /// GET, read to the end (for answers that end: errors, resumption of finished streams).
    pub async fn get_with(&self, extra: &[(&str, &str)]) -> HttpAnswer {
        let req = self
            .client
            .get(&self.url)
            .header("accept", "text/event-stream");
        let resp = self.with_headers(req, extra).send().await.expect("GET");
        answer(resp).await
    }

    pub async fn delete_with(&self, extra: &[(&str, &str)]) -> HttpAnswer {
        let req = self.client.delete(&self.url);
        let resp = self.with_headers(req, extra).send().await.expect("DELETE");
        answer(resp).await
    }

    /// Sends a request and returns the whole HTTP answer (status not checked).
    pub async fn request_answer(
        &self,
        id: i64,
        method: &str,
        params: serde_json::Value,
    ) -> HttpAnswer {
        let body =
            serde_json::json!({ "jsonrpc": "2.0", "id": id, "method": method, "params": params });
        self.post(body.to_string()).await
    }

    /// `tools/call` and its JSON-RPC response.
    pub async fn call_tool(
        &self,
        id: i64,
        name: &str,
        args: serde_json::Value,
    ) -> serde_json::Value {
        self.request(
            id,
            "tools/call",
            serde_json::json!({ "name": name, "arguments": args }),
        )
        .await
    }
}
