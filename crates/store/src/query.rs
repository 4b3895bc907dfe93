//! Reading the audit log back: `audit tail`, `audit query`.

use crate::error::StoreError;
use crate::record::{AuditQuery, MAX_QUERY_LIMIT, StoredRecord};
use rusqlite::Connection;
use rusqlite::types::Value;

/// The records matching `q`, in ascending `seq` order.
pub(crate) fn query(conn: &Connection, q: &AuditQuery) -> Result<Vec<StoredRecord>, StoreError> {
    if q.limit > MAX_QUERY_LIMIT {
        return Err(StoreError::InvalidQuery(format!(
            "limit {} is above the maximum of {MAX_QUERY_LIMIT}",
            q.limit
        )));
    }
    if q.limit == 0 {
        return Ok(Vec::new());
    }
    let mut sql = String::from("SELECT seq, prev_hash, hash, body FROM audit WHERE 1");
    let mut args: Vec<Value> = Vec::new();
    let mut filter = |column: &str, op: &str, value: Value| {
        sql.push_str(&format!(" AND {column} {op} ?{}", args.len() + 1));
        args.push(value);
    };
    for (column, wanted) in [
        ("principal", &q.principal),
        ("server", &q.server),
        ("decision", &q.decision),
    ] {
        if let Some(wanted) = wanted {
            filter(column, "=", Value::Text(wanted.clone()));
        }
    }
    if let Some(since) = q.since_ms {
        filter("time_ms", ">=", Value::Integer(since));
    }
    if let Some(until) = q.until_ms {
        filter("time_ms", "<", Value::Integer(until));
    }
    if let Some(after) = q.after_seq {
        // Above i64::MAX nothing can match; clamp rather than fail.
        filter(
            "seq",
            ">",
            Value::Integer(i64::try_from(after).unwrap_or(i64::MAX)),
        );
    }
    let order = if q.latest { "DESC" } else { "ASC" };
    sql.push_str(&format!(" ORDER BY seq {order} LIMIT {}", q.limit));

    let mut stmt = conn
        .prepare_cached(&sql)
        .map_err(StoreError::sqlite("query audit"))?;
    let rows = stmt
        .query_map(rusqlite::params_from_iter(args), |row| {
            Ok((
                row.get::<_, i64>(0)?,
                row.get::<_, String>(1)?,
                row.get::<_, String>(2)?,
                row.get::<_, String>(3)?,
            ))
        })
        .map_err(StoreError::sqlite("query audit"))?;
    let mut out = Vec::new();
    for row in rows {
        let (seq, prev_hash, hash, body) = row.map_err(StoreError::sqlite("query audit"))?;
        let seq = u64::try_from(seq).unwrap_or(0);
        let record = serde_json::from_str(&body).map_err(|e| StoreError::corrupt(seq, &e))?;
        out.push(StoredRecord {
            seq,
            prev_hash,
            hash,
            record,
        });
    }
    if q.latest {
        out.reverse();
    }
    Ok(out)
}
