//! A consistent copy of the metadata, for backups.
//!
//! Every transaction that writes the audit chain (that is, every audited change) holds the
//! store's snapshot gate shared; [`Store::snapshot`] holds it exclusively while it reads every
//! sled tree. The copy therefore holds each change whole together with its audit entry, and an
//! audit head that matches the log, without stopping the server: writers wait only while the
//! trees are read (the figure is in the backup's report), then carry on.
//!
//! Blobs and index files need no gate: a blob is written (durably) before any record points at
//! it and never changes, so every blob a copied record names exists when the backup copies
//! blobs afterwards; one deleted meanwhile belonged to a record that was being destroyed.
//! Records still `Pending` in the copy are what a crash leaves, and are handled the same way.

use std::path::Path;
use std::time::{Duration, Instant};

use sled::Transactional;

use super::changes::{self, Drained, SavedMap};
use super::{Error, Result, Store};

/// Trees that are not part of a data backup: the backup's own bookkeeping of what each
/// destination already holds (it describes the destinations, not the records).
pub const NOT_BACKED_UP: &[&str] = &[BACKUP_KNOWN];

/// `destination id ‖ object id` → empty: objects a destination is known to hold.
pub const BACKUP_KNOWN: &str = "backup_known";

/// Blob deletions held back while backups copy blobs: a blob a snapshot names must still be
/// there when the backup reaches it (a review save replaces a draft blob, disposal and
/// `gc_orphans` delete some). Deferred deletions run when the last backup ends; a crash
/// meanwhile leaves them as orphans, which `gc_orphans` removes.
#[derive(Debug, Default)]
pub(crate) struct BlobHolds {
    state: std::sync::Mutex<(usize, Vec<String>)>,
}

/// While alive, blob deletions are deferred.
pub struct BlobHold<'a> {
    store: &'a Store,
}

impl Drop for BlobHold<'_> {
    fn drop(&mut self) {
        let deferred = {
            let mut st = self.store.blob_holds.state.lock().unwrap_or_else(|p| p.into_inner());
            st.0 -= 1;
            if st.0 == 0 { std::mem::take(&mut st.1) } else { Vec::new() }
        };
        for addr in deferred {
            if let Err(e) = self.store.blobs.remove_unsynced(&addr) {
                eprintln!("hozon: deferred blob deletion: {e}");
            }
        }
        let _ = self.store.blobs.sync_all();
    }
}

impl Store {
    /// Defers blob deletions until the returned hold (and every other) is dropped.
    pub fn hold_blob_deletions(&self) -> BlobHold<'_> {
        self.blob_holds.state.lock().unwrap_or_else(|p| p.into_inner()).0 += 1;
        BlobHold { store: self }
    }

    /// Deletes a blob now, or when the running backups end.
    pub(crate) fn remove_blob(&self, addr: &str, sync: bool) -> Result<()> {
        {
            let mut st = self.blob_holds.state.lock().unwrap_or_else(|p| p.into_inner());
            if st.0 > 0 {
                st.1.push(addr.to_owned());
                return Ok(());
            }
        }
        if sync { self.blobs.remove(addr) } else { self.blobs.remove_unsynced(addr) }
    }
}

/// The metadata held still for a backup: audited writes wait while this lives.
pub struct Frozen<'a> {
    store: &'a Store,
    _gate: parking_lot::RwLockWriteGuard<'a, ()>,
    started: Instant,
}

impl Frozen<'_> {
    /// The trees a backup copies, in name order.
    pub fn trees(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .store
            .db
            .tree_names()
            .iter()
            .map(|n| String::from_utf8_lossy(n).into_owned())
            .filter(|n| changes::backed_up(n))
            .collect();
        names.sort();
        names
    }

    /// A tree's entries in key order, from `from` (or its start).
    pub fn read(
        &self,
        tree: &str,
        from: Option<&[u8]>,
    ) -> Result<impl Iterator<Item = Result<(sled::IVec, sled::IVec)>> + use<>> {
        let t = self.store.db.open_tree(tree)?;
        let it = match from {
            Some(f) => t.range(f.to_vec()..),
            None => t.iter(),
        };
        Ok(it.map(|kv| kv.map_err(Error::from)))
    }

    pub fn get(&self, tree: &str, key: &[u8]) -> Result<Option<sled::IVec>> {
        Ok(self.store.db.open_tree(tree)?.get(key)?)
    }

    /// The keys changed since the last snapshot (see [`changes`]).
    pub fn take_changes(&self) -> Result<Drained> {
        self.store.changes.take(&self.store.db)
    }

    /// How long audited writes have waited so far.
    pub fn paused(&self) -> Duration {
        self.started.elapsed()
    }
}

impl Store {
    /// Holds audited writes until the returned view is dropped (see the module comment).
    pub fn freeze(&self) -> Frozen<'_> {
        let gate = self.snapshot_gate.write();
        Frozen { store: self, _gate: gate, started: Instant::now() }
    }

    /// Serialises backups from taking the changes to saving their chunk map.
    pub fn backup_sequence(&self) -> std::sync::MutexGuard<'_, ()> {
        self.changes.sequence.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Returns changes taken by a backup that failed before it saved its map.
    pub fn give_back_changes(&self, taken: Drained) {
        self.changes.give_back(taken)
    }

    /// The chunk map of the last snapshot, if every change since is known.
    pub fn chunk_map(&self) -> Result<Option<SavedMap>> {
        self.changes.map(&self.db)
    }

    /// Saves the chunk map of the snapshot just taken (see [`changes::Changes::save_map`]).
    pub fn save_chunk_map(
        &self,
        replace: bool,
        edits: impl IntoIterator<Item = (String, Vec<u8>, Option<Vec<u8>>)>,
    ) -> Result<()> {
        self.changes.save_map(&self.db, replace, edits)
    }

    /// Whether destination `dest` is known to hold object `name`.
    pub fn backup_is_known(&self, dest: &str, name: &str) -> Result<bool> {
        Ok(self.db.open_tree(BACKUP_KNOWN)?.contains_key(known_key(dest, name))?)
    }

    /// What destination `dest` is known to hold under `prefix` (`blobs/`, `chunks/`…), in
    /// name order, each with its size when that was noted.
    pub fn backup_known_under(
        &self,
        dest: &str,
        prefix: &str,
    ) -> Result<impl Iterator<Item = Result<(String, Option<u64>)>> + use<>> {
        let start = known_key(dest, prefix);
        let skip = dest.len() + 1;
        Ok(self.db.open_tree(BACKUP_KNOWN)?.scan_prefix(start).map(move |kv| {
            let (k, v) = kv?;
            let name = String::from_utf8_lossy(&k[skip..]).into_owned();
            Ok((name, <[u8; 8]>::try_from(v.as_ref()).ok().map(u64::from_be_bytes)))
        }))
    }

    /// Notes objects a destination now holds (after they were written there), with their
    /// sizes where known.
    pub fn backup_mark_known<'a>(&self, dest: &str, ids: impl Iterator<Item = (&'a str, Option<u64>)>) -> Result<()> {
        let mut batch = sled::Batch::default();
        for (id, size) in ids {
            match size {
                Some(n) => batch.insert(known_key(dest, id), &n.to_be_bytes()),
                None => batch.insert(known_key(dest, id), &[]),
            }
        }
        self.db.open_tree(BACKUP_KNOWN)?.apply_batch(batch)?;
        Ok(())
    }

    /// Forgets what a destination holds (after objects there were deleted or found bad).
    pub fn backup_forget<'a>(&self, dest: &str, ids: impl Iterator<Item = &'a str>) -> Result<()> {
        let mut batch = sled::Batch::default();
        for id in ids {
            batch.remove(known_key(dest, id));
        }
        self.db.open_tree(BACKUP_KNOWN)?.apply_batch(batch)?;
        Ok(())
    }

    /// Every blob address (for a backup; orphans included, they are harmless).
    pub fn blob_addresses(&self) -> Result<Vec<String>> {
        self.blobs.addresses()
    }

    /// A blob's size on disk (0 if it is gone).
    pub fn blob_size(&self, addr: &str) -> u64 {
        self.blobs.size(addr)
    }

    /// A blob's sealed bytes as stored.
    pub fn blob_bytes(&self, addr: &str) -> Result<Vec<u8>> {
        self.blobs.get(addr)
    }
}

fn known_key(dest: &str, id: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(dest.len() + 1 + id.len());
    k.extend_from_slice(dest.as_bytes());
    k.push(0);
    k.extend_from_slice(id.as_bytes());
    k
}

/// Writes snapshot entries into a new data directory's metadata (`root/meta`, which must not
/// exist yet), in batches.
pub struct Importer {
    db: sled::Db,
    tree: Option<(String, sled::Tree)>,
    batch: sled::Batch,
    pending: usize,
}

impl Importer {
    pub fn create(root: &Path) -> Result<Importer> {
        let meta = root.join("meta");
        if meta.exists() {
            return Err(Error::AlreadyInitialised(root.display().to_string()));
        }
        let db = sled::Config::new().path(&meta).cache_capacity(128 * 1024 * 1024).open()?;
        Ok(Importer { db, tree: None, batch: sled::Batch::default(), pending: 0 })
    }

    pub fn put(&mut self, tree: &str, key: &[u8], value: &[u8]) -> Result<()> {
        if self.tree.as_ref().is_none_or(|(n, _)| n != tree) {
            self.flush_batch()?;
            self.tree = Some((tree.to_owned(), self.db.open_tree(tree)?));
        }
        self.batch.insert(key, value);
        self.pending += 1;
        if self.pending >= 10_000 {
            self.flush_batch()?;
        }
        Ok(())
    }

    fn flush_batch(&mut self) -> Result<()> {
        if let Some((_, t)) = &self.tree
            && self.pending > 0
        {
            t.apply_batch(std::mem::take(&mut self.batch))?;
        }
        self.pending = 0;
        Ok(())
    }

    pub fn finish(mut self) -> Result<()> {
        self.flush_batch()?;
        self.db.flush()?;
        Ok(())
    }
}

/// What a restore found destroyed since the backup was taken.
#[derive(Debug, Clone, Default)]
pub struct Reconciled {
    /// Records whose key no longer opens: now tombstones.
    pub records: Vec<String>,
    /// Case records whose key no longer opens: removed with their lookups and page links.
    pub cases: Vec<String>,
}

impl Store {
    /// After a restore: everything destroyed since the backup was taken is destroyed here too.
    /// A record or case record whose data key no longer opens with today's key store (its
    /// epoch was retired by a disposal run and it is not among the survivors) becomes a
    /// tombstone naming that run; its blobs are deleted; a dead case's lookups and page links
    /// go with it. Records that were being shredded when the backup was taken count as
    /// destroyed. One audit entry (`backup.reconcile`) records the counts.
    pub fn reconcile_restored(&self, who: &str) -> Result<Reconciled> {
        use super::{RecordState, Tombstone};
        // A key store older than the backup cannot tell destroyed from new: refuse before
        // anything is changed, rather than destroy what it does not know.
        let unknown = |epoch: &super::KeyEpoch| self.keys.status(epoch) == super::keystore::EpochStatus::Unknown;
        for rec in self.records() {
            let rec = rec?;
            if let Some(e) = rec.key_epoch.as_ref().filter(|e| unknown(e)) {
                return Err(Error::Corrupt(format!(
                    "鍵ストアがバックアップより古いため照合できません（記録 {} の鍵世代 {}#{} を知りません）。最新の鍵ストア（`hozon key escrow` の預託のうち新しいもの）を鍵ファイルの隣に置いてやり直してください",
                    rec.id, e.label, e.generation
                )));
            }
        }
        for (k, v) in self.docs.scan_prefix("case/").filter_map(std::result::Result::ok) {
            if let Ok(doc) = serde_json::from_slice::<super::SealedDoc>(&v)
                && unknown(&doc.epoch)
            {
                return Err(Error::Corrupt(format!(
                    "鍵ストアがバックアップより古いため照合できません（{} の鍵世代を知りません）",
                    String::from_utf8_lossy(&k)
                )));
            }
        }
        let mut out = Reconciled::default();
        let mut dead = Vec::new();
        let mut tombs = Vec::new();
        for rec in self.records() {
            let rec = rec?;
            let shredding = matches!(rec.state, RecordState::Shredding { .. });
            let live = matches!(rec.state, RecordState::Stored | RecordState::Pending) && !rec.wrapped_key.is_empty();
            if !shredding && !live {
                continue;
            }
            if live {
                let retired = |e: &super::KeyEpoch| self.keys.status(e) == super::keystore::EpochStatus::Retired;
                match self.data_key(&rec) {
                    Ok(_) => continue,
                    // Destroyed only when a disposal run retired its key generation.
                    Err(Error::KeyDestroyed(_)) if rec.key_epoch.as_ref().is_some_and(retired) => {}
                    Err(Error::KeyDestroyed(id)) => {
                        return Err(Error::Corrupt(format!("記録 {id} の鍵を開けません（廃棄の記録もありません）")));
                    }
                    Err(e) => return Err(e),
                }
            }
            let retired = rec.key_epoch.as_ref().and_then(|e| self.keys.retired_by(e));
            let d = rec.dates();
            tombs.push(Tombstone {
                record_id: rec.id.to_string(),
                class: rec.class.clone(),
                received_on: d.received,
                last_change_on: d.last_change,
                due_on: rec.retention.as_ref().and_then(|r| r.due_on),
                policy_version: rec.retention.as_ref().map_or(0, |r| r.policy_version),
                run_id: retired.as_ref().map_or_else(|| "（バックアップ後に廃棄）".to_owned(), |r| r.run_id.clone()),
                destroyed_at: retired.map_or_else(chrono::Utc::now, |r| r.at),
            });
            dead.push(rec);
        }
        for r in &dead {
            for b in &r.blobs {
                self.remove_blob(&b.addr, false)?;
            }
        }
        self.blobs.sync_all()?;
        // Case records: the sealed case whose key is gone, and every entry naming its key.
        let mut dead_cases = Vec::new();
        for k in self.docs.scan_prefix("case/").keys() {
            let k = k?;
            let key = String::from_utf8_lossy(&k["case/".len()..]).into_owned();
            let retired = self
                .docs
                .get(&k)?
                .and_then(|v| serde_json::from_slice::<super::SealedDoc>(&v).ok())
                .is_some_and(|d| self.keys.status(&d.epoch) == super::keystore::EpochStatus::Retired);
            match self.open_doc("case", &key) {
                Err(Error::KeyDestroyed(_)) if retired => dead_cases.push(key),
                Err(e) => return Err(e),
                Ok(_) => {}
            }
        }
        let mut doc_batch = sled::Batch::default();
        if !dead_cases.is_empty() {
            for kv in self.docs.iter() {
                let (k, v) = kv?;
                let key = String::from_utf8_lossy(&k);
                let names_dead = dead_cases.iter().any(|c| {
                    key == format!("case/{c}")
                        || key.ends_with(&format!("/{c}"))
                        || key.contains(&format!("/{c}/"))
                        || v.as_ref() == c.as_bytes()
                });
                if names_dead && !key.starts_with("case_tomb/") {
                    doc_batch.remove(k);
                }
            }
            for c in &dead_cases {
                let tomb = serde_json::json!({ "case": c, "run": "（バックアップ後に廃棄）", "destroyed_at": chrono::Utc::now() });
                doc_batch.insert(format!("case_tomb/{c}").as_bytes(), tomb.to_string().into_bytes());
            }
        }
        let mut del = sled::Batch::default();
        let mut tomb_batch = sled::Batch::default();
        let mut queue_batch = sled::Batch::default();
        let dead_ids: std::collections::HashSet<&str> = dead.iter().map(|r| r.id.as_str()).collect();
        for r in &dead {
            del.remove(r.id.as_str());
        }
        for k in self.queue.iter().keys() {
            let k = k?;
            if k.len() > 8 && dead_ids.contains(String::from_utf8_lossy(&k[8..]).as_ref()) {
                queue_batch.remove(k);
            }
        }
        for t in &tombs {
            tomb_batch.insert(t.record_id.as_bytes(), serde_json::to_vec(t).expect("tombstone serialises"));
        }
        let event = crate::audit::Event::new(
            who,
            "backup.reconcile",
            &format!("{} records, {} case records destroyed since the backup", dead.len(), dead_cases.len()),
            "ok",
        );
        let now = chrono::Utc::now();
        let _gate = self.snapshot_gate.read();
        (&self.records, &self.tombstones, &self.docs, &self.meta, &self.audit)
            .transaction(|(records, tombstones, docs, meta, log)| {
                records.apply_batch(&del)?;
                tombstones.apply_batch(&tomb_batch)?;
                docs.apply_batch(&doc_batch)?;
                crate::audit::append_in_tx(meta, log, &self.audit_key, &event, now)?;
                Ok(())
            })
            .map_err(super::tx_error)?;
        // The review queue is derived (rebuilt from records on demand): its entries go after.
        self.queue.apply_batch(queue_batch)?;
        self.db.flush()?;
        out.records = dead.into_iter().map(|r| r.id.to_string()).collect();
        out.cases = dead_cases;
        Ok(out)
    }
}

/// The name of the backup key in `meta` (wrapped by the master key, created on first use).
pub(crate) const BACKUP_KEY: &str = "backup_key";

impl Store {
    /// The key backup chunks and manifests are sealed and keyed with, and its wrapping under
    /// the master key (written into each manifest so a restore can open it before the
    /// metadata exists). Stable across backups so equal chunks keep one id.
    pub fn backup_key(&self) -> Result<(crate::crypto::Key, Vec<u8>)> {
        let key = super::meta_key(&self.meta, &self.master, BACKUP_KEY)?;
        self.db.flush()?;
        let wrapped = self.meta.get(BACKUP_KEY)?.map(|v| v.to_vec()).unwrap_or_default();
        Ok((key, wrapped))
    }

    /// The master key's public fingerprint.
    pub fn key_fingerprint(&self) -> String {
        self.master.fingerprint()
    }
}

/// Opens a manifest's wrapped backup key with the master key in `key_file`.
pub fn unwrap_backup_key(key_file: &Path, wrapped: &[u8]) -> Result<crate::crypto::Key> {
    let master = super::keyfile::read(key_file)?;
    Ok(master.unwrap_key(&super::key_context(BACKUP_KEY), wrapped)?)
}

/// The admin socket's key: derived from the master key, so only a holder of the key file can
/// answer the server's challenge.
fn admin_key(master: &crate::crypto::Key) -> crate::crypto::Key {
    crate::crypto::Key::from_bytes(&blake3::derive_key("hozon admin socket v1", master.expose())).expect("32 bytes")
}

/// The keyed answer to an admin socket message, from the key file at the terminal.
pub fn admin_answer(key_file: &Path, message: &str) -> Result<String> {
    let master = super::keyfile::read(key_file)?;
    Ok(hex::encode(admin_key(&master).keyed_hash(message.as_bytes())))
}

impl Store {
    /// This store's keyed answer to an admin socket message.
    pub fn admin_answer(&self, message: &str) -> String {
        hex::encode(admin_key(&self.master).keyed_hash(message.as_bytes()))
    }

    /// Whether `proof` answers `message` under this store's master key.
    pub fn admin_proof_ok(&self, message: &str, proof: &str) -> bool {
        let expected = self.admin_answer(message);
        // Both are hex of fixed length: compare without an early exit.
        expected.len() == proof.len() && expected.bytes().zip(proof.bytes()).fold(0u8, |a, (x, y)| a | (x ^ y)) == 0
    }
}
