//! Which metadata keys changed since the last backup's snapshot, and that snapshot's chunk
//! map (see `backup::chunkmap`), so an incremental backup reads only what changed.
//!
//! sled tells a subscriber of every write to a tree (insert, remove, batch, transaction) before
//! the write returns. Every tree is subscribed when the store opens, before anything is
//! written; a pump thread moves the notices into a set of changed keys per tree, and a backup
//! takes the set under the snapshot gate (where every audited write has returned, so its notice
//! has been sent).
//!
//! The set lives in memory, so the map is trusted only while it is certain that no change went
//! unseen: the map carries the token of the process that saved it and is used only by that
//! process, or by the next one when the set was carried over on a clean close (written beside
//! the map and durably flushed). After a crash the tokens differ and the next backup cuts the
//! whole metadata again, which is slow but never wrong.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use rand::RngCore;

use super::{Result, snapshot::NOT_BACKED_UP};

/// The backup's own state: `t` → token of the process whose map is current, `c` → token of a
/// carried-over change set, `m‖tree‖0‖first key` → a chunk of the map, `d‖tree‖0‖key` → a
/// carried-over changed key. Not part of a backup.
pub const STATE: &str = "backup_state";

const TOKEN: &[u8] = b"t";
const CARRIED: &[u8] = b"c";
const MAP: u8 = b'm';
const DIRTY: u8 = b'd';

/// The changed keys taken for one snapshot.
#[derive(Debug, Default)]
pub struct Drained {
    pub keys: HashMap<String, BTreeSet<Vec<u8>>>,
    /// Trees nobody watched until now (made since the store opened): read whole.
    pub untracked: BTreeSet<String>,
}

/// A tree's chunks as saved (first key → encoded chunk info).
pub type SavedMap = BTreeMap<String, BTreeMap<Vec<u8>, Vec<u8>>>;

/// Changed keys per tree, and trees with too many to keep (read whole by the next backup).
#[derive(Default)]
struct Dirty {
    keys: HashMap<String, BTreeSet<Vec<u8>>>,
    overflowed: BTreeSet<String>,
}

/// Beyond this many changed keys in one tree (a bulk import), the tree is read whole.
const MAX_KEYS_PER_TREE: usize = 200_000;

#[derive(Default)]
struct Shared {
    subs: Mutex<Vec<(String, sled::Subscriber)>>,
    dirty: Mutex<Dirty>,
    stop: AtomicBool,
    /// Off while no map can be trusted: the next backup reads everything anyway, so the keys
    /// are not kept (a first import of a million records would hold them all in memory).
    tracking: AtomicBool,
}

impl Shared {
    fn lock_dirty(&self) -> MutexGuard<'_, Dirty> {
        self.dirty.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Moves every notice already sent into the change set.
    ///
    /// Polled as a future, not with `next_timeout`: sled drops the notice of a write that
    /// changed nothing (a remove of a missing key, a value set to itself), and `next_timeout`
    /// stops at such a notice for good, after which the tree's channel fills and its writers
    /// block. The future skips it.
    fn pump(&self) {
        let mut subs = self.subs.lock().unwrap_or_else(|p| p.into_inner());
        let mut cx = Context::from_waker(Waker::noop());
        let mut seen: Vec<(usize, Vec<u8>)> = Vec::new();
        for (i, (_, sub)) in subs.iter_mut().enumerate() {
            while let Poll::Ready(Some(ev)) = Pin::new(&mut *sub).poll(&mut cx) {
                seen.push((i, ev.key().to_vec()));
            }
        }
        if seen.is_empty() || !self.tracking.load(Ordering::SeqCst) {
            return;
        }
        let mut dirty = self.lock_dirty();
        for (i, k) in seen {
            let name = &subs[i].0;
            if dirty.overflowed.contains(name) {
                continue;
            }
            let keys = dirty.keys.entry(name.clone()).or_default();
            keys.insert(k);
            if keys.len() > MAX_KEYS_PER_TREE {
                // Cheaper to read the tree whole next time than to hold this many keys.
                dirty.keys.remove(name);
                dirty.overflowed.insert(name.clone());
            }
        }
    }

    fn stop_pump(&self, pump: Option<std::thread::JoinHandle<()>>) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = pump {
            let _ = t.join();
        }
    }
}

pub(crate) struct Changes {
    shared: Arc<Shared>,
    pump: Option<std::thread::JoinHandle<()>>,
    token: [u8; 16],
    /// Held from taking the changes to saving the map, so two backups never interleave.
    pub(crate) sequence: Mutex<()>,
}

/// The trees a backup copies, and so the ones watched. The default tree is copied but read
/// whole every time: `db.open_tree` of its name is not the handle sled writes it through.
pub fn backed_up(name: &str) -> bool {
    name != STATE && !NOT_BACKED_UP.contains(&name)
}

const DEFAULT_TREE: &str = "__sled__default";

fn watched(name: &str) -> bool {
    backed_up(name) && name != DEFAULT_TREE
}

fn split(k: &[u8]) -> Option<(String, Vec<u8>)> {
    let zero = k.iter().position(|b| *b == 0)?;
    Some((String::from_utf8(k[1..zero].to_vec()).ok()?, k[zero + 1..].to_vec()))
}

fn joined(kind: u8, tree: &str, key: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(2 + tree.len() + key.len());
    k.push(kind);
    k.extend_from_slice(tree.as_bytes());
    k.push(0);
    k.extend_from_slice(key);
    k
}

impl Changes {
    /// Watches every tree of `db` and takes over a change set carried from a clean close.
    /// Must run before anything is written.
    pub(crate) fn start(db: &sled::Db) -> Result<Changes> {
        let shared = Arc::new(Shared::default());
        let mut token = [0u8; 16];
        rand::rngs::OsRng.fill_bytes(&mut token);
        let changes = Changes { shared, pump: None, token, sequence: Mutex::new(()) };
        for name in db.tree_names() {
            let name = String::from_utf8_lossy(&name).into_owned();
            changes.watch(db, &name)?;
        }
        let state = db.open_tree(STATE)?;
        if let Some(carried) = state.get(CARRIED)? {
            // The map's token, and the audit head as it was at the close: a version of hozon
            // that does not keep changes may have written meanwhile (it moves the head).
            let expected = carried_value(&state.get(TOKEN)?.unwrap_or_default(), db)?;
            let valid = carried == expected;
            let mut batch = sled::Batch::default();
            let mut dirty = changes.shared.lock_dirty();
            for kv in state.scan_prefix([DIRTY]) {
                let (k, _) = kv?;
                if valid && let Some((tree, key)) = split(&k) {
                    dirty.keys.entry(tree).or_default().insert(key);
                }
                batch.remove(k);
            }
            drop(dirty);
            batch.remove(CARRIED);
            if valid {
                batch.insert(TOKEN, &token);
            }
            state.apply_batch(batch)?;
            changes.shared.tracking.store(valid, Ordering::SeqCst);
            // Durable before any write of this process: a crash now must not find the old
            // change set again, with this process's changes missing from it.
            state.flush()?;
        }
        let mut changes = changes;
        let shared = changes.shared.clone();
        changes.pump = Some(
            std::thread::Builder::new()
                .name("hozon-changes".into())
                .spawn(move || {
                    // sled holds up to 1024 notices per subscriber, then makes writers
                    // wait: pumping every 10 ms keeps a bulk batch's wait short.
                    while !shared.stop.load(Ordering::Relaxed) {
                        shared.pump();
                        std::thread::sleep(Duration::from_millis(10));
                    }
                })
                .map_err(|e| super::Error::Corrupt(format!("change watcher: {e}")))?,
        );
        Ok(changes)
    }

    fn watch(&self, db: &sled::Db, name: &str) -> Result<bool> {
        if !watched(name) {
            return Ok(false);
        }
        let mut subs = self.shared.subs.lock().unwrap_or_else(|p| p.into_inner());
        if subs.iter().any(|(n, _)| n == name) {
            return Ok(false);
        }
        subs.push((name.to_owned(), db.open_tree(name)?.watch_prefix(vec![])));
        Ok(true)
    }

    /// Takes the keys changed so far. Trees that nobody watched yet are watched from now on
    /// and named as untracked. Called with writes held (the snapshot gate): every change from
    /// here on is kept, for the map the caller is about to save.
    pub(crate) fn take(&self, db: &sled::Db) -> Result<Drained> {
        // A notice pumped before this was of a write the caller's snapshot sees.
        self.shared.tracking.store(true, Ordering::SeqCst);
        let mut out = Drained::default();
        for name in db.tree_names() {
            let name = String::from_utf8_lossy(&name).into_owned();
            if self.watch(db, &name)? || (backed_up(&name) && !watched(&name)) {
                out.untracked.insert(name);
            }
        }
        self.shared.pump();
        let dirty = std::mem::take(&mut *self.shared.lock_dirty());
        out.keys = dirty.keys;
        out.untracked.extend(dirty.overflowed);
        Ok(out)
    }

    /// Puts taken keys back (the backup that took them failed before saving its map).
    pub(crate) fn give_back(&self, taken: Drained) {
        let mut dirty = self.shared.lock_dirty();
        for (tree, keys) in taken.keys {
            dirty.keys.entry(tree).or_default().extend(keys);
        }
        dirty.overflowed.extend(taken.untracked);
    }

    /// The map saved by this process (or carried over to it); `None` when it cannot be trusted.
    pub(crate) fn map(&self, db: &sled::Db) -> Result<Option<SavedMap>> {
        let state = db.open_tree(STATE)?;
        if state.get(TOKEN)?.is_none_or(|t| t != self.token) {
            return Ok(None);
        }
        let mut out = SavedMap::new();
        for kv in state.scan_prefix([MAP]) {
            let (k, v) = kv?;
            if let Some((tree, first)) = split(&k) {
                out.entry(tree).or_default().insert(first, v.to_vec());
            }
        }
        Ok(Some(out))
    }

    /// Saves the map of the snapshot just taken: `edits` (tree, first key, new value or
    /// removal) over the saved one, or over nothing when `replace`.
    pub(crate) fn save_map(
        &self,
        db: &sled::Db,
        replace: bool,
        edits: impl IntoIterator<Item = (String, Vec<u8>, Option<Vec<u8>>)>,
    ) -> Result<()> {
        let state = db.open_tree(STATE)?;
        let mut batch = sled::Batch::default();
        if replace {
            for kv in state.scan_prefix([MAP]) {
                batch.remove(kv?.0);
            }
        }
        for (tree, first, value) in edits {
            let k = joined(MAP, &tree, &first);
            match value {
                Some(v) => batch.insert(k, v),
                None => batch.remove(k),
            }
        }
        batch.insert(TOKEN, &self.token);
        state.apply_batch(batch)?;
        Ok(())
    }

    /// Stops watching; when the map is current, carries the change set over to the next
    /// process (durably).
    pub(crate) fn close(&mut self, db: &sled::Db) -> Result<()> {
        self.shared.stop_pump(self.pump.take());
        self.shared.pump();
        let state = db.open_tree(STATE)?;
        let token = state.get(TOKEN)?.unwrap_or_default();
        let dirty = self.shared.lock_dirty();
        if token != self.token[..] || !dirty.overflowed.is_empty() {
            return Ok(());
        }
        let mut batch = sled::Batch::default();
        for (tree, keys) in dirty.keys.iter() {
            for k in keys {
                batch.insert(joined(DIRTY, tree, k), &[]);
            }
        }
        batch.insert(CARRIED, carried_value(&token, db)?);
        state.apply_batch(batch)?;
        state.flush()?;
        Ok(())
    }
}

/// What a clean close leaves for the next start to check: the map's token and the audit head.
fn carried_value(token: &[u8], db: &sled::Db) -> Result<Vec<u8>> {
    let mut v = token.to_vec();
    v.extend_from_slice(&db.open_tree("meta")?.get("audit_head")?.unwrap_or_default());
    Ok(v)
}

impl Drop for Changes {
    fn drop(&mut self) {
        self.shared.stop_pump(self.pump.take());
    }
}
