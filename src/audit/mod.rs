//! audit/: "who did what to which record, and has anyone touched the log since?"
//!
//! The only code that builds [`Entry`] values. Entries carry user ids, record ids, counts and
//! outcomes, never names, numbers or OCR text. Each entry holds the hash of its predecessor (a
//! hash chain) and is sealed with the audit key, bound to its sequence number; so changing a
//! byte, deleting an entry or reordering two breaks [`verify`], which names the first bad one.
//! Every [`CHECKPOINT_EVERY`] entries a checkpoint entry records the chain head; exported
//! checkpoints, kept elsewhere, reveal a truncated log. Entries are appended in the same sled
//! transaction as the state change they describe (see `store`). hozon has no operation that
//! edits or deletes an entry.

pub mod report;

use serde::{Deserialize, Serialize};
use sled::transaction::{ConflictableTransactionError, TransactionalTree};

use crate::crypto::Key;

/// A checkpoint entry is appended after every this many entries.
pub const CHECKPOINT_EVERY: u64 = 1000;

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
        Event { actor: actor.into(), action: action.into(), target: target.into(), outcome: outcome.into() }
    }

    /// An event done by hozon itself (ingest, key rotation).
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

/// The chain head at one point, as exported for safekeeping elsewhere.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Checkpoint {
    pub seq: u64,
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
    blake3::hash(body.to_string().as_bytes()).to_hex().to_string()
}

fn aad(seq: u64) -> Vec<u8> {
    format!("audit:{seq}").into_bytes()
}

fn push(
    meta: &TransactionalTree,
    log: &TransactionalTree,
    key: &Key,
    head: &mut Head,
    event: &Event,
    at: chrono::DateTime<chrono::Utc>,
) -> Result<(), ConflictableTransactionError<TxAbort>> {
    let mut entry = Entry {
        seq: head.seq + 1,
        at,
        actor: event.actor.clone(),
        action: event.action.clone(),
        target: event.target.clone(),
        outcome: event.outcome.clone(),
        prev: head.hash.clone(),
        hash: String::new(),
    };
    entry.hash = entry_hash(&entry);
    let sealed = key.seal(&aad(entry.seq), &serde_json::to_vec(&entry).expect("entry serialises"));
    log.insert(&entry.seq.to_be_bytes(), sealed)?;
    *head = Head { seq: entry.seq, hash: entry.hash };
    meta.insert("audit_head", serde_json::to_vec(&*head).expect("head serialises"))?;
    Ok(())
}

/// Appends `event` to the chain inside a sled transaction spanning `meta` (the chain head) and
/// `log` (sealed entries keyed by big-endian sequence number), adding a checkpoint entry when
/// one is due.
pub(crate) fn append_in_tx(
    meta: &TransactionalTree,
    log: &TransactionalTree,
    key: &Key,
    event: &Event,
    at: chrono::DateTime<chrono::Utc>,
) -> Result<(), ConflictableTransactionError<TxAbort>> {
    let mut head = match meta.get("audit_head")? {
        Some(v) => serde_json::from_slice::<Head>(&v)
            .map_err(|e| ConflictableTransactionError::Abort(TxAbort(format!("audit head: {e}"))))?,
        None => Head { seq: 0, hash: GENESIS.into() },
    };
    push(meta, log, key, &mut head, event, at)?;
    if (head.seq + 1) % CHECKPOINT_EVERY == 0 {
        let target = format!("seq={} hash={}", head.seq, head.hash);
        push(meta, log, key, &mut head, &Event::new("system", "audit.checkpoint", &target, "ok"), at)?;
    }
    Ok(())
}

/// Opens one stored entry; `None` if it does not decrypt under its own sequence number.
pub(crate) fn open_entry(key: &Key, seq: u64, sealed: &[u8]) -> Option<Entry> {
    let plain = key.open(&aad(seq), sealed).ok()?;
    serde_json::from_slice(&plain).ok()
}

/// The first problem found in a log, by sequence number.
#[derive(Debug, Clone, PartialEq)]
pub struct Broken {
    pub seq: u64,
    pub why: String,
}

impl std::fmt::Display for Broken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "entry {}: {}", self.seq, self.why)
    }
}

/// Checks the whole log: `raw` is every stored (sequence key, sealed bytes) pair in key order,
/// `head` the chain head recorded in the metadata (its sequence number and hash, both
/// compared with the last entry), `checkpoints` any exported earlier. The checkpoint entries
/// inside the log are checked against the entries they name too. Returns the entry count, or
/// the first bad entry.
pub fn verify(
    raw: impl IntoIterator<Item = (u64, Vec<u8>)>,
    key: &Key,
    head: &Checkpoint,
    checkpoints: &[Checkpoint],
    base: Option<&Checkpoint>,
) -> Result<u64, Broken> {
    let head_seq = head.seq;
    // After a disposal of entries past their retention, the chain starts at the recorded base.
    let mut prev = base.map_or(GENESIS.to_string(), |b| b.hash.clone());
    let mut expected = base.map_or(1, |b| b.seq + 1);
    let mut hashes = std::collections::HashMap::new();
    for (seq, sealed) in raw {
        if seq != expected {
            return Err(Broken { seq: expected, why: format!("missing (the next stored entry is {seq})") });
        }
        let e = open_entry(key, seq, &sealed).ok_or_else(|| Broken {
            seq,
            why: "cannot be decrypted: changed, or moved from another position".into(),
        })?;
        if e.seq != seq {
            return Err(Broken { seq, why: format!("holds sequence number {}", e.seq) });
        }
        if e.prev != prev {
            return Err(Broken { seq, why: "does not link to the previous entry".into() });
        }
        if entry_hash(&e) != e.hash {
            return Err(Broken { seq, why: "content does not match its hash".into() });
        }
        if e.action == "audit.checkpoint" {
            let named = checkpoints_in(std::slice::from_ref(&e));
            if !named.first().is_some_and(|c| c.seq + 1 == seq && c.hash == prev) {
                return Err(Broken { seq, why: "a checkpoint that does not name the entry before it".into() });
            }
        }
        if !checkpoints.is_empty() {
            hashes.insert(seq, e.hash.clone());
        }
        prev = e.hash;
        expected += 1;
    }
    let count = expected - 1;
    if count < head_seq {
        return Err(Broken {
            seq: count + 1,
            why: format!("missing: the log ends at {count} but its head says {head_seq} (truncated)"),
        });
    }
    if count > head_seq {
        return Err(Broken {
            seq: head_seq + 1,
            why: format!("entries after the recorded head {head_seq} (appended)"),
        });
    }
    if count > 0 && prev != head.hash {
        return Err(Broken {
            seq: count,
            why: "the last entry is not the chain head recorded in the metadata (rewritten)".into(),
        });
    }
    for c in checkpoints {
        match hashes.get(&c.seq) {
            None => {
                return Err(Broken {
                    seq: c.seq,
                    why: "an exported checkpoint is beyond the end of the log (truncated)".into(),
                });
            }
            Some(h) if *h != c.hash => {
                return Err(Broken { seq: c.seq, why: "differs from the exported checkpoint (rewritten)".into() });
            }
            Some(_) => {}
        }
    }
    Ok(count)
}

/// The chain head as of `seq`, for a disposal that removes entries up to it.
pub fn base_at(entries: &[Entry], seq: u64) -> Option<Checkpoint> {
    entries.iter().find(|e| e.seq == seq).map(|e| Checkpoint { seq, hash: e.hash.clone() })
}

/// Checkpoints recorded in the log, for export.
pub fn checkpoints(entries: &[Entry]) -> Vec<Checkpoint> {
    checkpoints_in(entries)
}

fn checkpoints_in(entries: &[Entry]) -> Vec<Checkpoint> {
    entries
        .iter()
        .filter(|e| e.action == "audit.checkpoint")
        .filter_map(|e| {
            let (s, h) = e.target.strip_prefix("seq=")?.split_once(" hash=")?;
            Some(Checkpoint { seq: s.parse().ok()?, hash: h.to_owned() })
        })
        .collect()
}

#[cfg(test)]
mod tests;
