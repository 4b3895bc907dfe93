//! The calls waiting for a decision on the approvals page or from `portcullis approvals`:
//! in the gateway's memory, bounded, each gone at its deadline.
//!
//! A held call awaits [`ApprovalQueue::wait`]; a person's decision ([`ApprovalQueue::decide`])
//! reaches exactly that call, once. What makes this safe to share between principals and
//! sessions: a request is found only by its id (256 random bits), a decision is taken out of
//! the queue with the request (so a second decision, or one after the deadline, finds
//! nothing), and a call that stops waiting (its client went away, its deadline passed) takes
//! its request out with it — nothing stays to be approved later.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::oneshot;

use crate::consent::request::{ConsentAnswer, ConsentRequest};

/// A person's decision on one request, and who made it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub answer: ConsentAnswer,
    /// Who decided, for the audit record: `approvals page (admin session 3f9a…)`,
    /// `portcullis approvals (admin token)`.
    pub by: String,
    pub at: SystemTime,
}

/// Why a decision was not delivered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecideError {
    #[error(
        "no call is waiting under this id: it was decided already, its time ran out, its caller went away, or the id is wrong"
    )]
    NotPending,
}

/// One waiting call: what it is about, and where its decision goes.
struct Waiting {
    request: ConsentRequest,
    answer: oneshot::Sender<Decision>,
}

/// The calls waiting for a person, by request id.
pub struct ApprovalQueue {
    limit: usize,
    waiting: Mutex<HashMap<String, Waiting>>,
    /// Where the approvals page is (`https://gw.example.com`), once the gateway serves it.
    base: OnceLock<String>,
    /// The page could not be served (`stdio` without a loopback port of its own).
    unserved: AtomicBool,
}

impl ApprovalQueue {
    /// A queue holding at most `limit` calls at once (`approvals.max_pending`).
    pub fn new(limit: usize) -> Self {
        ApprovalQueue {
            limit,
            waiting: Mutex::new(HashMap::new()),
            base: OnceLock::new(),
            unserved: AtomicBool::new(false),
        }
    }

    /// A queue nobody can answer (no `[approvals]`: no page, no admin): every wait ends at
    /// once, unanswered.
    pub fn closed() -> Self {
        Self::new(0)
    }

    /// Whether a person can decide here (the gateway has `[approvals]`, and serves the page).
    pub fn is_open(&self) -> bool {
        self.limit > 0 && !self.unserved.load(Ordering::Relaxed)
    }

    /// The page and its API cannot be served: from now on nothing waits here (the consent
    /// engine asks the next channel instead of holding a call nobody can decide).
    pub fn unserved(&self) {
        self.unserved.store(true, Ordering::Relaxed);
    }

    /// Holds `req` until a person decides, or its deadline passes (`None`), or at once
    /// (`None`) when the queue is closed or full or already holds this id. Dropping the
    /// future (the caller gave up) takes the request out of the queue.
    pub async fn wait(&self, req: &ConsentRequest) -> Option<ConsentAnswer> {
        self.wait_for_decision(req).await.map(|d| d.answer)
    }

    /// [`wait`](Self::wait), with who decided and when.
    pub async fn wait_for_decision(&self, req: &ConsentRequest) -> Option<Decision> {
        let rx = self.enqueue(req)?;
        let _leave = Leave {
            queue: self,
            id: &req.id,
        };
        match tokio::time::timeout_at(req.deadline.into(), rx).await {
            Ok(Ok(decision)) => Some(decision),
            // The deadline passed, or the sender went without a word (not expected).
            _ => None,
        }
    }

    fn enqueue(&self, req: &ConsentRequest) -> Option<oneshot::Receiver<Decision>> {
        let mut waiting = self.lock();
        let now = Instant::now();
        waiting.retain(|_, w| w.request.deadline > now && !w.answer.is_closed());
        if !self.is_open()
            || waiting.len() >= self.limit
            || waiting.contains_key(&req.id)
            || req.deadline <= now
        {
            if self.is_open() && waiting.len() >= self.limit {
                tracing::warn!(
                    limit = self.limit,
                    server = %req.server,
                    tool = %req.tool,
                    "the approvals queue is full (approvals.max_pending): the call is denied without asking"
                );
            }
            return None;
        }
        let (tx, rx) = oneshot::channel();
        waiting.insert(
            req.id.clone(),
            Waiting {
                request: req.clone(),
                answer: tx,
            },
        );
        Some(rx)
    }

    /// The calls waiting now, the one whose time runs out first first.
    pub fn pending(&self) -> Vec<ConsentRequest> {
        let now = Instant::now();
        let mut list: Vec<ConsentRequest> = self
            .lock()
            .values()
            .filter(|w| w.request.deadline > now && !w.answer.is_closed())
            .map(|w| w.request.clone())
            .collect();
        list.sort_by_key(|r| r.deadline);
        list
    }

    /// One waiting call.
    pub fn get(&self, id: &str) -> Option<ConsentRequest> {
        let now = Instant::now();
        self.lock()
            .get(id)
            .filter(|w| w.request.deadline > now && !w.answer.is_closed())
            .map(|w| w.request.clone())
    }

    /// Delivers a person's decision to the call waiting under `id`; `by` says who, for the
    /// audit record. A request is decided once: it leaves the queue here.
    pub fn decide(
        &self,
        id: &str,
        answer: ConsentAnswer,
        by: &str,
    ) -> Result<ConsentRequest, DecideError> {
        let waiting = self.lock().remove(id).ok_or(DecideError::NotPending)?;
        if waiting.request.deadline <= Instant::now() {
            return Err(DecideError::NotPending);
        }
        let decision = Decision {
            answer,
            by: by.to_owned(),
            at: SystemTime::now(),
        };
        waiting
            .answer
            .send(decision)
            .map_err(|_| DecideError::NotPending)?;
        Ok(waiting.request)
    }

    /// Where the approvals page is served (set once, when the listener is bound; the first
    /// value stays: `gateway.public_url` wins over the bound address).
    pub fn set_base(&self, base: &str) {
        let _ = self.base.set(base.trim_end_matches('/').to_owned());
    }

    /// The page's address for one request, for the notification that tells the caller
    /// where approval is pending; `None` when the page is not served.
    pub fn page_url(&self, id: &str) -> Option<String> {
        if !self.is_open() {
            return None;
        }
        self.base.get().map(|b| format!("{b}/approvals#{id}"))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Waiting>> {
        self.waiting.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Takes a request out of the queue when its waiter stops waiting, however it stops.
struct Leave<'a> {
    queue: &'a ApprovalQueue,
    id: &'a str,
}

impl Drop for Leave<'_> {
    fn drop(&mut self) {
        self.queue.lock().remove(self.id);
    }
}

/// What is left of a request's time, for people (the page, the CLI).
pub fn time_left(req: &ConsentRequest) -> Duration {
    req.deadline.saturating_duration_since(Instant::now())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use serde_json::json;

    use super::*;
    use crate::consent::request::{Remember, Scope};

    fn request(id: &str, wait: Duration) -> ConsentRequest {
        ConsentRequest {
            id: id.to_owned(),
            principal: "sub:alice".into(),
            session: "s1".into(),
            server: "files".into(),
            tool: "write_file".into(),
            arguments: json!({"path": "/tmp/x"}),
            arguments_digest: "sha256:00".into(),
            rule: "rule 1 (portcullis.toml:10)".into(),
            created: SystemTime::now(),
            deadline: Instant::now() + wait,
        }
    }

    fn approve_once() -> ConsentAnswer {
        ConsentAnswer::Approve {
            remember: Remember::Once,
            scope: Scope::Arguments,
        }
    }

    /// Waits until `id` is in the queue (the waiter runs on another task).
    async fn until_pending(queue: &ApprovalQueue, id: &str) {
        for _ in 0..500 {
            if queue.get(id).is_some() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        panic!("{id} never became pending");
    }

    #[tokio::test]
    async fn a_decision_reaches_the_waiting_call_with_who_decided() {
        let queue = Arc::new(ApprovalQueue::new(4));
        let waiter = {
            let queue = queue.clone();
            tokio::spawn(async move {
                queue
                    .wait_for_decision(&request("a", Duration::from_secs(10)))
                    .await
            })
        };
        until_pending(&queue, "a").await;
        assert_eq!(queue.pending().len(), 1);
        let decided = queue.decide("a", approve_once(), "tester").unwrap();
        assert_eq!(decided.tool, "write_file");
        let decision = waiter.await.unwrap().expect("decided");
        assert_eq!(decision.answer, approve_once());
        assert_eq!(decision.by, "tester");
        assert!(
            queue.pending().is_empty(),
            "a decided request leaves the queue"
        );
    }

    #[tokio::test]
    async fn a_request_is_decided_only_once() {
        let queue = Arc::new(ApprovalQueue::new(4));
        let waiter = {
            let queue = queue.clone();
            tokio::spawn(async move { queue.wait(&request("a", Duration::from_secs(10))).await })
        };
        until_pending(&queue, "a").await;
        queue
            .decide(
                "a",
                ConsentAnswer::Deny {
                    reason: "no".into(),
                },
                "first",
            )
            .unwrap();
        assert_eq!(
            queue.decide("a", approve_once(), "second").err(),
            Some(DecideError::NotPending),
            "the second decision must not overturn the first"
        );
        assert!(matches!(
            waiter.await.unwrap(),
            Some(ConsentAnswer::Deny { .. })
        ));
    }

    #[tokio::test]
    async fn no_answer_by_the_deadline_is_none_and_the_request_is_gone() {
        let queue = ApprovalQueue::new(4);
        let started = Instant::now();
        let answer = queue.wait(&request("a", Duration::from_millis(80))).await;
        assert_eq!(answer, None);
        assert!(started.elapsed() >= Duration::from_millis(80));
        assert!(started.elapsed() < Duration::from_secs(5));
        assert!(queue.pending().is_empty());
        assert_eq!(
            queue.decide("a", approve_once(), "late").err(),
            Some(DecideError::NotPending),
            "an expired request cannot be approved"
        );
    }

    #[tokio::test]
    async fn a_full_queue_answers_none_at_once() {
        let queue = Arc::new(ApprovalQueue::new(2));
        let mut waiters = Vec::new();
        for id in ["a", "b"] {
            let queue = queue.clone();
            waiters.push(tokio::spawn(async move {
                queue.wait(&request(id, Duration::from_secs(10))).await
            }));
        }
        until_pending(&queue, "a").await;
        until_pending(&queue, "b").await;
        let started = Instant::now();
        assert_eq!(
            queue.wait(&request("c", Duration::from_secs(10))).await,
            None
        );
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "no waiting when full"
        );
        assert_eq!(queue.pending().len(), 2);
        for w in waiters {
            w.abort();
        }
    }

    #[tokio::test]
    async fn a_closed_queue_holds_nothing() {
        let queue = ApprovalQueue::closed();
        assert!(!queue.is_open());
        assert_eq!(
            queue.wait(&request("a", Duration::from_secs(10))).await,
            None
        );
        assert_eq!(queue.page_url("a"), None);
    }

    #[tokio::test]
    async fn a_caller_that_stops_waiting_takes_its_request_out() {
        let queue = Arc::new(ApprovalQueue::new(4));
        let waiter = {
            let queue = queue.clone();
            tokio::spawn(async move { queue.wait(&request("a", Duration::from_secs(10))).await })
        };
        until_pending(&queue, "a").await;
        waiter.abort();
        let _ = waiter.await;
        assert!(queue.pending().is_empty());
        assert_eq!(
            queue.decide("a", approve_once(), "too late").err(),
            Some(DecideError::NotPending)
        );
    }

    #[tokio::test]
    async fn the_same_id_cannot_wait_twice() {
        let queue = Arc::new(ApprovalQueue::new(4));
        let first = {
            let queue = queue.clone();
            tokio::spawn(async move { queue.wait(&request("a", Duration::from_secs(10))).await })
        };
        until_pending(&queue, "a").await;
        assert_eq!(
            queue.wait(&request("a", Duration::from_secs(10))).await,
            None
        );
        queue.decide("a", approve_once(), "t").unwrap();
        assert_eq!(first.await.unwrap(), Some(approve_once()));
    }

    #[tokio::test]
    async fn nothing_waits_when_the_page_cannot_be_served() {
        let queue = ApprovalQueue::new(4);
        queue.unserved();
        assert!(!queue.is_open());
        let started = Instant::now();
        assert_eq!(
            queue.wait(&request("a", Duration::from_secs(10))).await,
            None
        );
        assert!(started.elapsed() < Duration::from_secs(1));
    }

    #[test]
    fn the_page_url_names_the_request() {
        let queue = ApprovalQueue::new(1);
        assert_eq!(queue.page_url("abc"), None, "not served yet");
        queue.set_base("https://gw.example.com/");
        queue.set_base("http://127.0.0.1:1");
        assert_eq!(
            queue.page_url("abc").as_deref(),
            Some("https://gw.example.com/approvals#abc")
        );
    }
}
