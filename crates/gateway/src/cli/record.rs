//! The audit record of something a person did on the command line (`trust`, `connections
//! forget`, …): written and made durable before the action, so that an action the audit
//! log cannot hold does not happen.

use portcullis_store::{AuditRecord, Store};

use super::{runtime, time};

/// Most things a record's reason names one by one; an audit record is bounded
/// (`portcullis_store::MAX_RECORD_BYTES`), and one too large is refused with its action.
pub const MAX_NAMED: usize = 20;

/// `a, b, c` — at most [`MAX_NAMED`] of `items`, then `and N more`.
pub fn named(items: &[String]) -> String {
    let mut text = items
        .iter()
        .take(MAX_NAMED)
        .map(String::as_str)
        .collect::<Vec<_>>()
        .join(", ");
    if items.len() > MAX_NAMED {
        text.push_str(&format!(" and {} more", items.len() - MAX_NAMED));
    }
    text
}

/// One command-line action.
pub struct CliAction<'a> {
    pub event: &'a str,
    pub principal: &'a str,
    pub server: &'a str,
    pub method: &'a str,
    pub name: &'a str,
    pub decision: &'a str,
    pub reason: String,
}

/// Writes `action`'s record and waits until it is durable; the error says that `what`
/// (the action) was therefore not done.
pub fn audit(store: &dyn Store, action: CliAction<'_>, what: &str) -> anyhow::Result<()> {
    let record = AuditRecord {
        time_ms: time::now_ms(),
        event: action.event.to_owned(),
        principal: action.principal.to_owned(),
        session: String::new(),
        transport: "cli".to_owned(),
        server: action.server.to_owned(),
        method: action.method.to_owned(),
        name: action.name.to_owned(),
        args_digest: None,
        args: None,
        decision: action.decision.to_owned(),
        rule: None,
        reason: action.reason,
        latency_us: None,
        trace: None,
    };
    runtime(None)?
        .block_on(store.append_audit(record))
        .map_err(|e| anyhow::anyhow!("the audit record could not be written, so {what}: {e}"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_list_is_cut_with_a_count() {
        let few: Vec<String> = vec!["a".into(), "b".into()];
        assert_eq!(named(&few), "a, b");
        let many: Vec<String> = (0..MAX_NAMED + 3).map(|i| i.to_string()).collect();
        let text = named(&many);
        assert!(
            text.ends_with(&format!("{} and 3 more", MAX_NAMED - 1)),
            "{text}"
        );
        assert!(!text.contains(&MAX_NAMED.to_string()), "{text}");
    }
}
