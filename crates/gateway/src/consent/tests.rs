//! The consent engine against scripted channels: what counts as an approval, how far one
//! reaches, and that every way of not deciding ends in a denial. (The channels themselves,
//! through the real binary and the official SDK client, are in `tests/consent.rs`.)

use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use serde_json::{Value, json};
use tokio::sync::oneshot;

use super::*;
use crate::config::{ConsentChannel as Channel, ConsentSettings, RememberChoice};

/// A client that answers each elicitation with the next scripted result (or never).
#[derive(Default)]
struct ScriptedClient {
    answers: Mutex<Vec<Option<Value>>>,
    /// Senders of elicitations left unanswered, so they stay open.
    open: Mutex<Vec<oneshot::Sender<Reply>>>,
    asked: Mutex<Vec<Value>>,
    withdrawn: Mutex<Vec<i64>>,
    notes: Mutex<Vec<(String, Value)>>,
}

impl ScriptedClient {
    fn answering(answers: Vec<Option<Value>>) -> Self {
        ScriptedClient {
            answers: Mutex::new(answers),
            ..Default::default()
        }
    }
}

impl ClientSide for ScriptedClient {
    fn can_elicit(&self) -> Result<bool, String> {
        Ok(true)
    }

    fn elicit(&self, params: Value) -> (i64, oneshot::Receiver<Reply>) {
        self.asked.lock().unwrap().push(params);
        let (tx, rx) = oneshot::channel();
        let next = {
            let mut a = self.answers.lock().unwrap();
            if a.is_empty() { None } else { a.remove(0) }
        };
        match next {
            Some(v) => {
                let _ = tx.send(Reply::Result(crate::mcp::raw(&v)));
            }
            None => self.open.lock().unwrap().push(tx),
        }
        (7, rx)
    }

    fn withdraw(&self, id: i64, _reason: &str) {
        self.withdrawn.lock().unwrap().push(id);
    }

    fn notify(&self, method: &str, params: Value) {
        self.notes.lock().unwrap().push((method.to_owned(), params));
    }
}

/// An approvals queue with one scripted decision (or none: it waits out the deadline).
struct ScriptedQueue(Option<ConsentAnswer>);

impl ApprovalsChannel for ScriptedQueue {
    fn is_open(&self) -> bool {
        true
    }

    fn wait<'a>(&'a self, req: &'a ConsentRequest) -> QueueWait<'a> {
        Box::pin(async move {
            match &self.0 {
                Some(a) => {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    Some((a.clone(), "tester".to_owned()))
                }
                None => {
                    tokio::time::sleep_until(req.deadline.into()).await;
                    None
                }
            }
        })
    }

    fn location(&self, id: &str) -> String {
        format!("http://127.0.0.1:8440/approvals#{id}")
    }
}

#[derive(Default)]
struct Records(Mutex<Vec<(&'static str, String)>>);

impl Records {
    fn decisions(&self) -> Vec<&'static str> {
        self.0.lock().unwrap().iter().map(|(d, _)| *d).collect()
    }
}

fn settings(channels: &[Channel], trust: bool) -> ConsentSettings {
    ConsentSettings {
        channels: channels.to_vec(),
        timeout: Duration::from_secs(5),
        trust_elicitation: trust,
        remember: vec![RememberChoice::Once, RememberChoice::Session],
        ..ConsentSettings::default()
    }
}

fn approve(remember: &str) -> Option<Value> {
    Some(json!({ "action": "accept", "content": { "decision": "approve", "remember": remember } }))
}

struct Call<'a> {
    client: &'a ScriptedClient,
    queue: Option<&'a ScriptedQueue>,
    records: &'a Records,
    settings: ConsentSettings,
    identity: &'a str,
    session: &'a str,
    args: Value,
    stateless: bool,
    retry: input::Retry,
    progress: Option<Value>,
}

impl<'a> Call<'a> {
    fn new(client: &'a ScriptedClient, records: &'a Records, settings: ConsentSettings) -> Self {
        Call {
            client,
            queue: None,
            records,
            settings,
            identity: "alice",
            session: "s1",
            args: json!({ "path": "/tmp/a" }),
            stateless: false,
            retry: input::Retry::default(),
            progress: None,
        }
    }

    async fn hold(&self, consent: &Consent) -> Verdict {
        let audit = |d: &'static str, r: String| self.records.0.lock().unwrap().push((d, r));
        let held = Held {
            request: ConsentRequest {
                id: crate::ids::random_token(8),
                principal: self.identity.to_owned(),
                session: if self.stateless {
                    String::new()
                } else {
                    self.session.to_owned()
                },
                server: "files".into(),
                tool: "write_file".into(),
                arguments_digest: portcullis_guard::digest(&self.args),
                arguments: self.args.clone(),
                rule: "rule 1 (t.toml:1)".into(),
                created: SystemTime::now(),
                deadline: Instant::now() + self.settings.timeout,
            },
            identity: self.identity.to_owned(),
            method: "tools/call",
            upstream_name: "write_file",
            rule_index: Some(0),
            rule_key: "rule 1 sha256:00".into(),
            settings: self.settings.clone(),
            stateless: self.stateless,
            inline_elicitation: self.stateless,
            retry: self.retry.clone(),
            progress_token: self.progress.clone(),
            client: self.client,
            approvals: self.queue.map(|q| q as &dyn ApprovalsChannel),
            stdio: false,
            session_ttl: Duration::from_secs(3600),
            audit: &audit,
        };
        consent.hold(held).await
    }
}

#[tokio::test]
async fn a_trusted_elicitation_approval_approves_and_a_session_approval_covers_only_identical_calls()
 {
    let consent = Consent::default();
    let client = ScriptedClient::answering(vec![approve("session"), None]);
    let records = Records::default();
    let mut call = Call::new(&client, &records, settings(&[Channel::Elicitation], true));
    assert!(matches!(call.hold(&consent).await, Verdict::Approved(_)));
    // The same call again: remembered, nobody is asked.
    assert!(
        matches!(call.hold(&consent).await, Verdict::Approved(how) if how.contains("approved earlier"))
    );
    assert_eq!(client.asked.lock().unwrap().len(), 1);
    // Other arguments, another session, another principal: asked again (and, unanswered
    // within the timeout, denied).
    call.settings.timeout = Duration::from_millis(100);
    call.args = json!({ "path": "/etc/passwd" });
    assert!(matches!(call.hold(&consent).await, Verdict::Denied(_)));
    assert_eq!(client.asked.lock().unwrap().len(), 2);
    assert_eq!(*client.withdrawn.lock().unwrap(), [7]);
    call.args = json!({ "path": "/tmp/a" });
    call.session = "s2";
    assert!(matches!(call.hold(&consent).await, Verdict::Denied(_)));
    call.session = "s1";
    call.identity = "mallory";
    assert!(matches!(call.hold(&consent).await, Verdict::Denied(_)));
    assert_eq!(client.asked.lock().unwrap().len(), 4);
    let d = records.decisions();
    assert_eq!(&d[..3], ["requested", "asked", "approved"]);
    assert!(d.contains(&"remembered") && d.contains(&"timeout"), "{d:?}");
}

#[tokio::test]
async fn an_untrusted_elicitation_approval_does_not_count_and_the_next_channel_decides() {
    let consent = Consent::default();
    let client = ScriptedClient::answering(vec![approve("once")]);
    let queue = ScriptedQueue(Some(ConsentAnswer::Deny {
        reason: "not today".into(),
    }));
    let records = Records::default();
    let mut call = Call::new(
        &client,
        &records,
        settings(&[Channel::Elicitation, Channel::Approvals], false),
    );
    call.queue = Some(&queue);
    match call.hold(&consent).await {
        Verdict::Denied(why) => assert!(why.contains("not today"), "{why}"),
        other => panic!("{other:?}"),
    }
    let d = records.decisions();
    assert!(d.windows(2).any(|w| w == ["asked", "untrusted"]), "{d:?}");
    assert!(
        d.contains(&"decided") && d.last() == Some(&"denied"),
        "{d:?}"
    );
    // Alone, an untrusted elicitation can only refuse.
    let records = Records::default();
    let client = ScriptedClient::answering(vec![approve("once")]);
    let call = Call::new(&client, &records, settings(&[Channel::Elicitation], false));
    assert!(matches!(call.hold(&consent).await, Verdict::Denied(_)));
}

#[tokio::test]
async fn a_denial_through_an_untrusted_client_still_denies() {
    let consent = Consent::default();
    let client = ScriptedClient::answering(vec![Some(json!({ "action": "decline" }))]);
    let records = Records::default();
    let call = Call::new(
        &client,
        &records,
        settings(&[Channel::Elicitation, Channel::Approvals], false),
    );
    match call.hold(&consent).await {
        Verdict::Denied(why) => assert!(why.contains("declined"), "{why}"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn no_channel_that_can_ask_is_a_denial_that_says_why() {
    let consent = Consent::default();
    let client = ScriptedClient::default();
    let records = Records::default();
    let call = Call::new(
        &client,
        &records,
        settings(
            &[Channel::InputRequired, Channel::Approvals, Channel::Tty],
            true,
        ),
    );
    match call.hold(&consent).await {
        Verdict::Denied(why) => {
            assert!(why.contains("input_required: only 2026-07-28"), "{why}");
            assert!(
                why.contains("approvals: [approvals] is not configured"),
                "{why}"
            );
            assert!(why.contains("tty: only under portcullis stdio"), "{why}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(records.decisions().last(), Some(&"unavailable"));
}

#[tokio::test]
async fn a_stateless_call_is_asked_with_a_signed_state_that_binds_the_call_and_is_used_once() {
    let consent = Consent::default();
    let client = ScriptedClient::default();
    let records = Records::default();
    let mut call = Call::new(&client, &records, settings(&[Channel::InputRequired], true));
    call.stateless = true;
    let Verdict::Ask(result) = call.hold(&consent).await else {
        panic!("expected input_required");
    };
    assert_eq!(result["resultType"], "input_required");
    let form = &result["inputRequests"][input::INPUT_KEY];
    assert_eq!(form["method"], "elicitation/create");
    // No session: nothing to remember for one.
    assert!(
        form["params"]["requestedSchema"]["properties"]
            .get("remember")
            .is_none()
    );
    let state = result["requestState"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    // Other arguments with this state: refused (and the state is not used up by it).
    call.retry = input::Retry {
        state: Some(state.clone()),
        answer: Some(json!({ "action": "accept", "content": { "decision": "approve" } })),
    };
    call.args = json!({ "path": "/etc/shadow" });
    assert!(matches!(
        call.hold(&consent).await,
        Verdict::BadState(input::StateError::Mismatch)
    ));
    call.identity = "mallory";
    call.args = json!({ "path": "/tmp/a" });
    assert!(matches!(
        call.hold(&consent).await,
        Verdict::BadState(input::StateError::Mismatch)
    ));
    call.identity = "alice";
    assert!(matches!(call.hold(&consent).await, Verdict::Approved(_)));
    assert!(matches!(
        call.hold(&consent).await,
        Verdict::BadState(input::StateError::Replayed)
    ));
    // A stateless approval is never remembered: the next call is asked again.
    call.retry = input::Retry::default();
    assert!(matches!(call.hold(&consent).await, Verdict::Ask(_)));
}

#[tokio::test]
async fn a_call_waiting_for_the_approvals_page_hears_where_and_that_it_still_waits() {
    let consent = Consent::default();
    let client = ScriptedClient::default();
    let queue = ScriptedQueue(None);
    let records = Records::default();
    let mut call = Call::new(&client, &records, settings(&[Channel::Approvals], false));
    call.queue = Some(&queue);
    call.progress = Some(json!("tok-1"));
    call.settings.timeout = Duration::from_millis(300);
    assert!(
        matches!(call.hold(&consent).await, Verdict::Denied(why) if why.contains("no decision within"))
    );
    let notes = client.notes.lock().unwrap();
    let message = notes
        .iter()
        .find(|(m, _)| m == "notifications/message")
        .expect("told where");
    assert!(
        message.1["data"]
            .as_str()
            .is_some_and(|d| d.contains("http://127.0.0.1:8440/approvals#")),
        "{message:?}"
    );
    let progress = notes
        .iter()
        .find(|(m, _)| m == "notifications/progress")
        .expect("progress");
    assert_eq!(progress.1["progressToken"], "tok-1");
    assert_eq!(records.decisions().last(), Some(&"timeout"));
}

/// "always" approvals are kept in the state store: a gateway started again on the same file
/// does not ask again, another principal or other arguments still are asked, and removing
/// the approval from the store (what `portcullis approvals forget` does) revokes it at once.
#[tokio::test]
async fn an_always_approval_survives_a_restart_in_the_store_and_forgetting_it_revokes_it() {
    use portcullis_store::{SqliteOptions, SqliteStore, Store};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let always = settings_always();
    let records = Records::default();
    {
        let store = SqliteStore::open(&path, SqliteOptions::default()).unwrap();
        let consent = Consent::with_store(store.clone());
        let client = ScriptedClient::answering(vec![approve("always")]);
        let call = Call::new(&client, &records, always.clone());
        assert!(matches!(call.hold(&consent).await, Verdict::Approved(_)));
        let stored = store.list_approvals(0).unwrap();
        assert_eq!(stored.len(), 1, "{stored:?}");
        assert_eq!(stored[0].key.identity, "alice");
        assert!(stored[0].key.digest.starts_with("sha256:"));
    }
    let store = SqliteStore::open(&path, SqliteOptions::default()).unwrap();
    let consent = Consent::with_store(store.clone());
    // No answer scripted: a call that is asked times out into a denial.
    let client = ScriptedClient::default();
    let mut quick = always.clone();
    quick.timeout = Duration::from_millis(200);
    let call = Call::new(&client, &records, quick.clone());
    match call.hold(&consent).await {
        Verdict::Approved(how) => assert!(how.contains("approved earlier"), "{how}"),
        other => panic!("{other:?}"),
    }
    assert!(client.asked.lock().unwrap().is_empty(), "asked again");
    let mut bob = Call::new(&client, &records, quick.clone());
    bob.identity = "bob";
    assert!(matches!(bob.hold(&consent).await, Verdict::Denied(_)));
    let mut other_args = Call::new(&client, &records, quick.clone());
    other_args.args = json!({ "path": "/etc/passwd" });
    assert!(matches!(
        other_args.hold(&consent).await,
        Verdict::Denied(_)
    ));
    assert_eq!(store.remove_approvals(Some("files"), None, 0).unwrap(), 1);
    let again = Call::new(&client, &records, quick);
    assert!(matches!(again.hold(&consent).await, Verdict::Denied(_)));
}

fn settings_always() -> ConsentSettings {
    let mut s = settings(&[Channel::Elicitation], true);
    s.remember = vec![
        RememberChoice::Once,
        RememberChoice::Session,
        RememberChoice::Always,
    ];
    s
}
