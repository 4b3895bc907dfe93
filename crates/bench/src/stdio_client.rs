//! An MCP client on a child's stdin/stdout (newline-delimited JSON-RPC).
//!
//! Latency: one call at a time. Throughput: `concurrency` calls kept in flight on the one
//! pipe, each with its own id; a new call is written as soon as an answer comes back.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, BufWriter};
use tokio::process::{ChildStdin, ChildStdout};

use crate::protocol::{self, Incoming};
use crate::stats::Samples;

pub struct StdioClient {
    name: String,
    writer: BufWriter<ChildStdin>,
    reader: BufReader<ChildStdout>,
    line: Vec<u8>,
    next_id: u64,
    timeout: Duration,
    /// The measured request, for an id: `echo` unless [`StdioClient::calling`] says otherwise.
    call: fn(u64) -> Vec<u8>,
}

impl StdioClient {
    /// A client on `name`'s pipes; `timeout` bounds every wait for an answer.
    pub fn new(name: &str, stdin: ChildStdin, stdout: ChildStdout, timeout: Duration) -> Self {
        StdioClient {
            name: name.to_owned(),
            writer: BufWriter::new(stdin),
            reader: BufReader::with_capacity(64 * 1024, stdout),
            line: Vec::with_capacity(4096),
            next_id: 1,
            timeout,
            call: protocol::echo_call,
        }
    }

    /// The same client measuring `call` instead of `echo`.
    pub fn calling(self, call: fn(u64) -> Vec<u8>) -> Self {
        StdioClient { call, ..self }
    }

    fn next_id(&mut self) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    /// `initialize`, `notifications/initialized`, then `tools/list`.
    pub async fn handshake(&mut self) -> anyhow::Result<()> {
        self.initialize().await?;
        self.write(&protocol::initialized()).await?;
        let id = self.next_id();
        self.write(&protocol::list_tools(id)).await?;
        self.flush().await?;
        self.wait_for(id)
            .await?
            .check_success()
            .with_context(|| format!("{}: tools/list", self.name))
    }

    /// `initialize`, until its answer: the moment a server is ready to be used.
    pub async fn initialize(&mut self) -> anyhow::Result<()> {
        let id = self.next_id();
        self.write(&protocol::initialize(id)).await?;
        self.flush().await?;
        self.wait_for(id)
            .await?
            .check_success()
            .with_context(|| format!("{}: initialize", self.name))
    }

    /// `calls` sequential calls (`echo`, or the client's own); the time of each.
    pub async fn sequential(&mut self, calls: usize) -> anyhow::Result<Samples> {
        let begin = Instant::now();
        let mut samples = Vec::with_capacity(calls);
        for _ in 0..calls {
            let id = self.next_id();
            let start = Instant::now();
            self.write(&(self.call)(id)).await?;
            self.flush().await?;
            self.wait_for(id).await?.check_success()?;
            samples.push(start.elapsed());
        }
        Ok(Samples {
            times: samples,
            elapsed: begin.elapsed(),
        })
    }

    /// `calls` calls with `concurrency` of them in flight at all times.
    pub async fn concurrent(
        &mut self,
        calls: usize,
        concurrency: usize,
    ) -> anyhow::Result<Samples> {
        let mut in_flight: HashMap<u64, Instant> = HashMap::with_capacity(concurrency);
        let mut samples = Vec::with_capacity(calls);
        let start = Instant::now();
        let mut sent = 0;
        while sent < calls.min(concurrency) {
            self.send_call(&mut in_flight).await?;
            sent += 1;
        }
        self.flush().await?;
        while samples.len() < calls {
            let msg = self.read().await?;
            let Some(id) = msg.response_id() else {
                continue;
            };
            let began = in_flight.remove(&id).with_context(|| {
                format!("{}: answer to id {id}, which is not in flight", self.name)
            })?;
            msg.check_success()
                .with_context(|| format!("{}: call {id}", self.name))?;
            samples.push(began.elapsed());
            if sent < calls {
                self.send_call(&mut in_flight).await?;
                self.flush().await?;
                sent += 1;
            }
        }
        Ok(Samples {
            times: samples,
            elapsed: start.elapsed(),
        })
    }

    async fn send_call(&mut self, in_flight: &mut HashMap<u64, Instant>) -> anyhow::Result<()> {
        let id = self.next_id();
        in_flight.insert(id, Instant::now());
        self.write(&(self.call)(id)).await
    }

    async fn write(&mut self, msg: &[u8]) -> anyhow::Result<()> {
        self.writer.write_all(msg).await?;
        self.writer
            .write_all(b"\n")
            .await
            .with_context(|| format!("writing to {}", self.name))
    }

    async fn flush(&mut self) -> anyhow::Result<()> {
        tokio::time::timeout(self.timeout, self.writer.flush())
            .await
            .with_context(|| {
                format!(
                    "{} did not read its input within {:?}",
                    self.name, self.timeout
                )
            })?
            .with_context(|| format!("writing to {}", self.name))
    }

    /// Reads messages until the response to `id` (notifications are skipped).
    async fn wait_for(&mut self, id: u64) -> anyhow::Result<Incoming> {
        loop {
            let msg = self.read().await?;
            match msg.response_id() {
                Some(got) if got == id => return Ok(msg),
                Some(got) => bail!("{}: answer to id {got} while waiting for {id}", self.name),
                None => {}
            }
        }
    }

    /// The next message, within the timeout.
    async fn read(&mut self) -> anyhow::Result<Incoming> {
        self.line.clear();
        let read =
            tokio::time::timeout(self.timeout, self.reader.read_until(b'\n', &mut self.line))
                .await
                .with_context(|| format!("{} sent no answer within {:?}", self.name, self.timeout))?
                .with_context(|| format!("reading from {}", self.name))?;
        if read == 0 {
            bail!("{} closed its output", self.name);
        }
        Incoming::parse(&self.line).with_context(|| format!("from {}", self.name))
    }

    /// Closes stdin: the server's signal to end.
    pub async fn close(mut self) -> anyhow::Result<()> {
        self.flush().await?;
        self.writer.shutdown().await.ok();
        Ok(())
    }
}
