//! audit/: "who did what to which record, and has anyone tampered with the log since?"
//!
//! The only code that builds [`Entry`] values. Entries carry ids and counts, never names,
//! numbers or OCR text. Each entry holds the hash of its predecessor (a hash chain), so
//! editing, deleting or reordering an entry breaks [`verify`]. Entries are appended inside the
//! same sled transaction as the state change they describe (see `store`).

use serde::{Deserialize, Serialize};
use sled::transaction::{ConflictableTransactionError, TransactionalTree};

/// What happened, before it gets a sequence number and a place in the chain.
#[derive(Debug, Clone)]
pub struct Event {
    actor: String,
    action: String,
    target: String,
    outcome: String,
}

impl Event {
    pub fn new(actor: &str, action: &str, target: &str, outcome: &str) -> Event {
        Event {
            actor: actor.into(),
            action: action.into(),
            target: target.into(),
            outcome: outcome.into(),
        }
    }

    /// An event done by hozon itself (ingest from the hot folder, key rotation).
    pub fn system(action: &str, target: &str) -> Event {
        Event::new("system", action, target, "ok")
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Entry {
    pub seq: u64,
    pub at: chrono::DateTime<chrono::Utc>,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub outcome: String,
    pub prev: String,
    pub hash: String,
}

#[derive(Serialize, Deserialize)]
struct Head {
    seq: u64,
    hash: String,
}

/// Transaction abort reason (a corrupt head).
#[derive(Debug)]
pub struct TxAbort(pub String);

const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

fn entry_hash(e: &Entry) -> String {
    let body = serde_json::json!([e.seq, e.at, e.actor, e.action, e.target, e.outcome, e.prev]);
    blake3::hash(body.to_string().as_bytes())
        .to_hex()
        .to_string()
}

/// Appends `event` to the chain inside a sled transaction spanning `meta` (the chain head) and
/// `log` (the entries, keyed by big-endian sequence number).
pub(crate) fn append_in_tx(
    meta: &TransactionalTree,
    log: &TransactionalTree,
    event: &Event,
    at: chrono::DateTime<chrono::Utc>,
) -> Result<(), ConflictableTransactionError<TxAbort>> {
    let head = match meta.get("audit_head")? {
        Some(v) => serde_json::from_slice::<Head>(&v).map_err(|e| {
            ConflictableTransactionError::Abort(TxAbort(format!("audit head: {e}")))
        })?,
        None => Head {
            seq: 0,
            hash: GENESIS.into(),
        },
    };
    let mut entry = Entry {
        seq: head.seq + 1,
        at,
        actor: event.actor.clone(),
        action: event.action.clone(),
        target: event.target.clone(),
        outcome: event.outcome.clone(),
        prev: head.hash,
        hash: String::new(),
    };
    entry.hash = entry_hash(&entry);
    let new_head = Head {
        seq: entry.seq,
        hash: entry.hash.clone(),
    };
    log.insert(
        &entry.seq.to_be_bytes(),
        serde_json::to_vec(&entry).expect("entry serialises"),
    )?;
    meta.insert(
        "audit_head",
        serde_json::to_vec(&new_head).expect("head serialises"),
    )?;
    Ok(())
}

/// Checks the chain; returns the number of entries, or the first bad sequence number and why.
pub fn verify(entries: &[Entry]) -> Result<usize, (u64, String)> {
    let mut prev = GENESIS.to_string();
    for (i, e) in entries.iter().enumerate() {
        let expected_seq = i as u64 + 1;
        if e.seq != expected_seq {
            return Err((
                expected_seq,
                format!(
                    "entry {expected_seq} missing or out of order (found {})",
                    e.seq
                ),
            ));
        }
        if e.prev != prev {
            return Err((e.seq, "does not link to the previous entry".into()));
        }
        if entry_hash(e) != e.hash {
            return Err((e.seq, "content does not match its hash".into()));
        }
        prev = e.hash.clone();
    }
    Ok(entries.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain(n: usize) -> Vec<Entry> {
        let db = sled::Config::new().temporary(true).open().unwrap();
        let meta = db.open_tree("m").unwrap();
        let log = db.open_tree("l").unwrap();
        use sled::Transactional;
        for i in 0..n {
            (&meta, &log)
                .transaction(|(m, l)| {
                    append_in_tx(
                        m,
                        l,
                        &Event::system("test", &i.to_string()),
                        chrono::Utc::now(),
                    )
                })
                .unwrap();
        }
        log.iter()
            .values()
            .map(|v| serde_json::from_slice(&v.unwrap()).unwrap())
            .collect()
    }

    #[test]
    fn chain_verifies_and_detects_tampering() {
        let entries = chain(4);
        assert_eq!(verify(&entries), Ok(4));
        let mut changed = entries.clone();
        changed[2].target = "other".into();
        assert_eq!(verify(&changed).unwrap_err().0, 3);
        let mut deleted = entries.clone();
        deleted.remove(1);
        assert_eq!(verify(&deleted).unwrap_err().0, 2);
        let mut swapped = entries;
        swapped.swap(0, 1);
        assert_eq!(verify(&swapped).unwrap_err().0, 1);
    }
}
