//! store/: "here is a record id, give me its pages". The only module that opens files holding
//! personal data, and it only ever writes ciphertext.
//!
//! Layout of a data directory:
//! - `meta/`   sled database: trees `meta` (key check, wrapped index and dedupe keys, audit head),
//!   `records` (record metadata, no personal data in the clear), `dedupe` (keyed scan hash →
//!   record id), `audit` (append-only), `users`.
//! - `blobs/`  content-addressed ciphertext (see [`blobs`]).
//! - `index/`  tantivy index, every file sealed (see [`index_dir`]).
//!
//! Write protocol for one ingested page (each step durable before the next):
//! 1. seal the image and text blobs with the record's data key; write each to `blobs/tmp`,
//!    fsync, rename to its address, fsync the directory;
//! 2. commit the record as `Pending` (wrapped data key + blob addresses) and flush sled;
//! 3. delete any index document with the record id, add the new one, commit the index;
//! 4. commit the record as `Stored` together with its dedupe entry and audit entry in one sled
//!    transaction, and flush.
//!
//! Crash points: before 2, the blobs are orphans sealed under a key that was never persisted
//! (`gc_orphans` removes them); between 2 and 4, the record is `Pending`, invisible to search
//! and listings, and re-ingesting the same file finds it and redoes 3–4 (the delete in 3 makes
//! the index entry unique); after 4, re-ingest is a no-op. The record id is derived from the
//! keyed hash of the file, so the same file always maps to the same record.
//!
//! Assumptions: `rename` within one directory is atomic and, with the directory fsynced,
//! durable (ext4/xfs with default mount options); sled is durable only after `flush`, which is
//! why every step above flushes before the next begins.

pub mod blobs;
pub mod changes;
pub mod index_dir;
pub(crate) mod keyfile;
pub(crate) mod keystore;
mod records;
pub mod snapshot;

use std::path::{Path, PathBuf};

use sled::Transactional;

pub(crate) use keystore::try_lock;
pub use keystore::{KeyEpoch, path_for as keystore_path};
pub use records::{
    BatchCounts, BlobRef, BlobRole, PageOutcome, Record, RecordId, RecordKind, RecordState, Retention, Tombstone,
    UNCLASSIFIED,
};
pub use snapshot::admin_answer;

use crate::audit;
use crate::crypto::{DataKey, Key, MasterKey};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{path}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("key file {path}: {reason}")]
    KeyFile { path: PathBuf, reason: String },
    #[error("the key file does not match this data directory (key check failed); wrong HOZON_KEY_FILE?")]
    WrongKey,
    #[error("{0} is not a hozon data directory; run `hozon init --data {0}` first")]
    NotInitialised(String),
    #[error("{0} is already a hozon data directory")]
    AlreadyInitialised(String),
    #[error("metadata database")]
    Sled(#[from] sled::Error),
    #[error("crypto")]
    Crypto(#[from] crate::crypto::Error),
    #[error("data directory {0} is in use by another hozon process (stop `hozon serve` first)")]
    Locked(String),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    #[error("record {0} not found")]
    NoRecord(String),
    #[error("record {0}: its key was destroyed (disposed of)")]
    KeyDestroyed(String),
}

impl Error {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> Error {
        Error::Io { path: path.to_owned(), source }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

const KEY_CHECK_PLAINTEXT: &[u8] = b"hozon key check v1";

/// The opened data directory.
pub struct Store {
    root: PathBuf,
    key_file: PathBuf,
    master: MasterKey,
    db: sled::Db,
    meta: sled::Tree,
    records: sled::Tree,
    dedupe: sled::Tree,
    audit: sled::Tree,
    users: sled::Tree,
    /// Disposal runs, holds, paper boxes, certificates, tombstones: JSON values by id.
    docs: sled::Tree,
    tombstones: sled::Tree,
    /// `batch id \0 record id` → the page's outcome (see `PageOutcome`): a batch's progress
    /// is a prefix scan.
    batch_pages: sled::Tree,
    /// The review queue: `received_at (ns, big-endian) ++ record id` → [`QueueEntry`] for every
    /// recognised page not yet verified. Oldest first is key order, and the queue stays as
    /// small as the backlog, however large the archive grows.
    queue: sled::Tree,
    /// The hold index: `r:<record id>` / `c:<case key>` → active hold ids (JSON list). Read
    /// inside the transaction that shreds keys, so a hold placed at any moment before it wins.
    holds: sled::Tree,
    /// Sheets of two-sheet forms waiting for their other sheet: `batch \0 record id` → the
    /// sheet number. Ids and numbers only.
    unpaired: sled::Tree,
    blobs: blobs::BlobStore,
    /// Epoch and index keys, outside sled (see [`keystore`]).
    keys: keystore::KeyStore,
    /// Shared by every write that wraps a key under an epoch, from the wrapping to the commit;
    /// held exclusively while epochs are retired, so no write can land a wrapping under a
    /// generation that is about to be forgotten.
    epoch_guard: std::sync::RwLock<()>,
    /// Shared by every transaction that writes the audit chain (every audited change); held
    /// exclusively while a backup copies the metadata, so the copy sees each change whole,
    /// with its audit entry, and a head that matches the log (see [`snapshot`]).
    snapshot_gate: parking_lot::RwLock<()>,
    /// Blob deletions wait while a backup copies blobs (see [`snapshot`]).
    blob_holds: snapshot::BlobHolds,
    /// Keys changed since the last backup's snapshot (see [`changes`]).
    changes: changes::Changes,
    dedupe_key: Key,
    /// Seals small secrets kept in metadata (TOTP seeds).
    secrets_key: Key,
    /// Seals audit entries.
    audit_key: Key,
}

impl Drop for Store {
    fn drop(&mut self) {
        if let Err(e) = self.changes.close(&self.db) {
            eprintln!("hozon: keeping the change set for the next backup: {e}");
        }
    }
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Store({})", self.root.display())
    }
}

impl Store {
    /// Creates a new data directory and its master key file.
    pub fn init(root: &Path, key_file: &Path) -> Result<Store> {
        if root.join("meta").exists() {
            return Err(Error::AlreadyInitialised(root.display().to_string()));
        }
        std::fs::create_dir_all(root).map_err(|e| Error::io(root, e))?;
        let master = if key_file.exists() {
            // A key file without a data directory: reuse it (e.g. provisioned by an operator).
            keyfile::read(key_file)?
        } else {
            let k = Key::generate();
            keyfile::create(key_file, &k)?;
            k
        };
        let db = open_db(root)?;
        let meta = db.open_tree("meta")?;
        meta.insert("key_check", master.seal(b"key-check", KEY_CHECK_PLAINTEXT))?;
        meta.insert("key_fingerprint", master.fingerprint().as_bytes())?;
        meta.insert(QUEUE_VERSION, b"1")?;
        db.flush()?;
        drop(meta);
        let keys = keystore::KeyStore::open(keystore::path_for(key_file), master.clone(), true)?;
        Store::from_db(root, key_file, db, master, keys)
    }

    pub fn open(root: &Path, key_file: &Path) -> Result<Store> {
        if !root.join("meta").exists() {
            return Err(Error::NotInitialised(root.display().to_string()));
        }
        let db = open_db(root)?;
        let meta = db.open_tree("meta")?;
        let check = meta.get("key_check")?.ok_or_else(|| Error::Corrupt("missing key check".into()))?;
        let master = open_master_key(key_file, &check)?;
        let keys = open_key_store(key_file, &master, meta.get(KEYSTORE_FLAG)?.is_none())?;
        Store::from_db(root, key_file, db, master, keys)
    }

    fn from_db(
        root: &Path,
        key_file: &Path,
        db: sled::Db,
        master: MasterKey,
        keys: keystore::KeyStore,
    ) -> Result<Store> {
        // Before anything is written: every change must be seen.
        let changes = changes::Changes::start(&db)?;
        let meta = db.open_tree("meta")?;
        let [dedupe_key, secrets_key, audit_key] = STORE_KEYS.map(|name| meta_key(&meta, &master, name));
        if keys.index_keys()?.is_empty() {
            // A store made before the key store kept its index key in sled: adopt it (the first
            // disposal rotates it away); a new store's never touches sled.
            let legacy = match meta.get("index_key")? {
                Some(w) => master.unwrap_key(&key_context("index_key"), &w)?,
                None => Key::generate(),
            };
            keys.adopt_index_key(&legacy)?;
        }
        meta.insert(KEYSTORE_FLAG, b"1")?;
        db.flush()?;
        Ok(Store {
            root: root.to_owned(),
            key_file: key_file.to_owned(),
            master,
            records: db.open_tree("records")?,
            dedupe: db.open_tree("dedupe")?,
            audit: db.open_tree("audit")?,
            users: db.open_tree("users")?,
            docs: db.open_tree("docs")?,
            tombstones: db.open_tree("tombstones")?,
            batch_pages: db.open_tree("batch_pages")?,
            queue: db.open_tree("review_queue")?,
            holds: db.open_tree("hold_index")?,
            unpaired: db.open_tree("unpaired_sheets")?,
            meta,
            db,
            blobs: blobs::BlobStore::open(root.join("blobs"))?,
            keys,
            epoch_guard: std::sync::RwLock::new(()),
            snapshot_gate: parking_lot::RwLock::new(()),
            blob_holds: snapshot::BlobHolds::default(),
            changes,
            dedupe_key: dedupe_key?,
            secrets_key: secrets_key?,
            audit_key: audit_key?,
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn key_file(&self) -> &Path {
        &self.key_file
    }

    /// Opens the encrypted directory that holds the search index.
    pub fn index_directory(&self) -> Result<index_dir::EncryptedDirectory> {
        let p = self.root.join("index");
        index_dir::EncryptedDirectory::open(p.clone(), self.keys.index_keys()?).map_err(|e| Error::io(&p, e))
    }

    /// Where the key store lives (beside the master key file, never in a data backup).
    pub fn key_store_path(&self) -> &Path {
        self.keys.path()
    }

    /// Keyed hash used for duplicate detection of incoming files.
    pub fn scan_fingerprint(&self, bytes: &[u8]) -> [u8; 32] {
        self.dedupe_key.keyed_hash(bytes)
    }

    pub fn new_data_key(&self) -> DataKey {
        Key::generate()
    }

    /// Wraps `key` as `rec`'s data key under the epoch its class and due date put it in.
    pub fn seal_record_key(&self, rec: &mut Record, key: &DataKey) -> Result<()> {
        let (epoch, epoch_key) = self.keys.current(&rec.epoch_label())?;
        rec.wrapped_key = epoch_key.wrap(&record_key_context(&rec.id), key);
        rec.key_epoch = Some(epoch);
        Ok(())
    }

    /// A record's data key: through its epoch's key, else (a record from an earlier copy of
    /// the data directory whose epoch was retired since) through the survivors table, else it
    /// was destroyed.
    pub fn data_key(&self, rec: &Record) -> Result<DataKey> {
        let ctx = record_key_context(&rec.id);
        let Some(epoch) = &rec.key_epoch else {
            return Ok(self.master.unwrap_key(&ctx, &rec.wrapped_key)?);
        };
        if let Some(k) = self.keys.epoch_key(epoch)?
            && let Ok(dk) = k.unwrap_key(&ctx, &rec.wrapped_key)
        {
            return Ok(dk);
        }
        if let Some(s) = self.keys.survivor(rec.id.as_str())
            && let Some(k) = self.keys.epoch_key(&s.epoch)?
        {
            return Ok(k.unwrap_key(&ctx, &s.wrapped)?);
        }
        Err(Error::KeyDestroyed(rec.id.to_string()))
    }

    /// Puts `rec`'s key in the epoch its retention now says (a due date moved, a class was
    /// recognised, a record from before the key store): the old epoch is remembered so that
    /// destroying the record retires it too. Records without a key (shredding) are left alone.
    fn settle_epoch(&self, rec: &mut Record) -> Result<()> {
        if rec.wrapped_key.is_empty() || !matches!(rec.state, RecordState::Stored | RecordState::Pending) {
            return Ok(());
        }
        let label = rec.epoch_label();
        if let Some(e) = &rec.key_epoch
            && e.label == label
        {
            // Same epoch: re-wrap only if a retirement gave it a newer generation since this
            // copy of the record was read.
            if self.keys.is_current(e) {
                return Ok(());
            }
            let dk = self.data_key(rec)?;
            return self.seal_record_key(rec, &dk);
        }
        let dk = self.data_key(rec)?;
        if let Some(old) = rec.key_epoch.take()
            && !rec.past_epochs.contains(&old.label)
        {
            rec.past_epochs.push(old.label);
        }
        self.seal_record_key(rec, &dk)
    }

    /// Seals `plain` with the record's key and stores it durably.
    pub fn put_blob(&self, id: &RecordId, key: &DataKey, role: BlobRole, plain: &[u8]) -> Result<BlobRef> {
        let sealed = key.seal(&blob_context(id, role), plain);
        let addr = self.blobs.put(&sealed)?;
        Ok(BlobRef { role, addr, len: plain.len() as u64 })
    }

    /// Reads and decrypts one blob of a record.
    pub fn read_blob(&self, rec: &Record, role: BlobRole) -> Result<Vec<u8>> {
        let b = rec.blob(role).ok_or_else(|| Error::Corrupt(format!("record {} has no {role:?} blob", rec.id)))?;
        let sealed = self.blobs.get(&b.addr)?;
        let key = self.data_key(rec)?;
        Ok(key.open(&blob_context(&rec.id, role), &sealed)?)
    }

    pub fn record(&self, id: &RecordId) -> Result<Option<Record>> {
        match self.records.get(id.as_str())? {
            Some(v) => Ok(Some(Record::decode(&v)?)),
            None => Ok(None),
        }
    }

    /// Record id previously stored for this scan fingerprint, if any.
    pub fn dedupe_lookup(&self, fp: &[u8; 32]) -> Result<Option<RecordId>> {
        Ok(self.dedupe.get(fp)?.map(|v| RecordId::from_stored(&v)))
    }

    /// Step 2 of the write protocol: the record exists, not yet visible.
    pub fn put_pending(&self, rec: &Record) -> Result<()> {
        debug_assert_eq!(rec.state, RecordState::Pending);
        let _epochs = self.epoch_guard.read().expect("epoch guard");
        // Every write to a backed-up tree holds the gate (see `snapshot` and `changes`),
        // taken after the epoch guard as everywhere.
        let _gate = self.snapshot_gate.read_recursive();
        let mut rec = rec.clone();
        self.settle_epoch(&mut rec)?;
        self.records.insert(rec.id.as_str(), rec.encode())?;
        self.db.flush()?;
        Ok(())
    }

    /// Step 4: makes the record visible, with its dedupe entry and audit entry, atomically.
    pub fn commit_stored(&self, rec: &Record, fp: &[u8; 32], event: audit::Event) -> Result<()> {
        let _epochs = self.epoch_guard.read().expect("epoch guard");
        let mut rec = rec.clone();
        self.settle_epoch(&mut rec)?;
        let rec = &rec;
        let encoded = rec.encode();
        let now = chrono::Utc::now();
        // A recognised page waits for review; one no template fits waits to be filed (its
        // entry's form is `UNCLASSIFIED`: the classification queue).
        let waiting = (rec.kind == RecordKind::Page
            && (rec.blob(BlobRole::Draft).is_some() || rec.class == records::UNCLASSIFIED))
            .then(|| (queue_key(rec), QueueEntry::of(rec, false).encode()));
        let _gate = self.snapshot_gate.read();
        (&self.records, &self.dedupe, &self.meta, &self.audit, &self.queue)
            .transaction(|(records, dedupe, meta, log, queue)| {
                records.insert(rec.id.as_str(), encoded.as_slice())?;
                dedupe.insert(&fp[..], rec.id.as_str())?;
                if let Some((k, v)) = &waiting {
                    queue.insert(k.as_slice(), v.as_slice())?;
                }
                audit::append_in_tx(meta, log, &self.audit_key, &event, now)?;
                Ok(())
            })
            .map_err(tx_error)?;
        self.db.flush()?;
        Ok(())
    }

    /// Writes a user record and its audit entry atomically, durably.
    pub fn put_user(&self, name: &str, value: &[u8], event: audit::Event) -> Result<()> {
        let now = chrono::Utc::now();
        let _gate = self.snapshot_gate.read();
        (&self.users, &self.meta, &self.audit)
            .transaction(|(users, meta, log)| {
                users.insert(name, value)?;
                audit::append_in_tx(meta, log, &self.audit_key, &event, now)?;
                Ok(())
            })
            .map_err(tx_error)?;
        self.db.flush()?;
        Ok(())
    }

    /// Seals a small secret (a TOTP seed) for keeping in metadata.
    pub fn seal_secret(&self, context: &[u8], secret: &[u8]) -> Vec<u8> {
        self.secrets_key.seal(context, secret)
    }

    pub fn open_secret(&self, context: &[u8], sealed: &[u8]) -> Result<Vec<u8>> {
        Ok(self.secrets_key.open(context, sealed)?)
    }

    /// Appends an audit entry on its own (events with no state change: a login, a search) and
    /// flushes.
    pub fn audit(&self, event: audit::Event) -> Result<()> {
        self.audit_unflushed(event)?;
        self.db.flush()?;
        Ok(())
    }

    /// Appends an audit entry without waiting for the disk: sled writes it out within its
    /// flush interval (500 ms). Used for the per-request access log, where an fsync per page
    /// view would cap the server at the disk's sync rate.
    pub fn audit_unflushed(&self, event: audit::Event) -> Result<()> {
        let now = chrono::Utc::now();
        let _gate = self.snapshot_gate.read();
        (&self.meta, &self.audit)
            .transaction(|(meta, log)| {
                audit::append_in_tx(meta, log, &self.audit_key, &event, now)?;
                Ok(())
            })
            .map_err(tx_error)
    }

    /// Every stored audit entry as (sequence key, sealed bytes), for verification.
    pub fn audit_raw(&self) -> Result<Vec<(u64, Vec<u8>)>> {
        self.audit
            .iter()
            .map(|kv| {
                let (k, v) = kv?;
                let seq = <[u8; 8]>::try_from(k.as_ref())
                    .map(u64::from_be_bytes)
                    .map_err(|_| Error::Corrupt("audit key is not a sequence number".into()))?;
                Ok((seq, v.to_vec()))
            })
            .collect()
    }

    /// The chain head recorded in metadata (0 for an empty log).
    /// The chain head recorded in the metadata (sequence number and hash).
    pub fn audit_head(&self) -> Result<audit::Checkpoint> {
        match self.meta.get("audit_head")? {
            Some(v) => serde_json::from_slice(&v).map_err(|e| Error::Corrupt(format!("audit head: {e}"))),
            None => Ok(audit::Checkpoint { seq: 0, hash: String::new() }),
        }
    }

    pub fn audit_head_seq(&self) -> Result<u64> {
        #[derive(serde::Deserialize)]
        struct Head {
            seq: u64,
        }
        match self.meta.get("audit_head")? {
            Some(v) => {
                Ok(serde_json::from_slice::<Head>(&v).map_err(|e| Error::Corrupt(format!("audit head: {e}")))?.seq)
            }
            None => Ok(0),
        }
    }

    /// Checks the audit chain (see `audit::verify`).
    pub fn verify_audit(&self, checkpoints: &[audit::Checkpoint]) -> Result<Result<u64, audit::Broken>> {
        let base = self.audit_base()?;
        Ok(audit::verify(self.audit_raw()?, &self.audit_key, &self.audit_head()?, checkpoints, base.as_ref()))
    }

    /// Where the chain starts after audit entries past their retention were disposed of.
    pub fn audit_base(&self) -> Result<Option<audit::Checkpoint>> {
        match self.meta.get("audit_base")? {
            Some(v) => Ok(Some(serde_json::from_slice(&v).map_err(|e| Error::Corrupt(format!("audit base: {e}")))?)),
            None => Ok(None),
        }
    }

    /// Removes the audit entries up to `base.seq` (their retention has passed and an approved
    /// run says so) and records the new chain base, with an audit entry, atomically.
    pub fn prune_audit(
        &self,
        approval: &crate::retention::run::ApprovedDisposal,
        base: &audit::Checkpoint,
    ) -> Result<usize> {
        let mut batch = sled::Batch::default();
        let mut n = 0;
        for k in self.audit.range(..=base.seq.to_be_bytes()).keys() {
            batch.remove(k?);
            n += 1;
        }
        let event = audit::Event::new(
            approval.executor(),
            "audit.dispose",
            &format!("run {} entries up to {} (hash {})", approval.run_id(), base.seq, base.hash),
            "ok",
        );
        let base_json = serde_json::to_vec(base).expect("checkpoint serialises");
        let now = chrono::Utc::now();
        let _gate = self.snapshot_gate.read();
        (&self.meta, &self.audit)
            .transaction(|(meta, log)| {
                log.apply_batch(&batch)?;
                meta.insert("audit_base", base_json.as_slice())?;
                audit::append_in_tx(meta, log, &self.audit_key, &event, now)?;
                Ok(())
            })
            .map_err(tx_error)?;
        self.db.flush()?;
        Ok(n)
    }

    /// Decrypted audit entries in order; entries that do not open are skipped (`verify`
    /// reports them).
    pub fn audit_entries(&self) -> Result<Vec<audit::Entry>> {
        Ok(self.audit_raw()?.into_iter().filter_map(|(seq, v)| audit::open_entry(&self.audit_key, seq, &v)).collect())
    }

    /// All records, in id order.
    pub fn records(&self) -> impl Iterator<Item = Result<Record>> + '_ {
        self.records.iter().values().map(|v| Record::decode(&v?))
    }

    pub fn users_tree(&self) -> &sled::Tree {
        &self.users
    }

    pub fn flush(&self) -> Result<()> {
        self.db.flush()?;
        Ok(())
    }

    /// Stores a JSON document (a disposal run, a hold, a box, a certificate entry) under
    /// `kind/id`, with its audit entry, atomically and durably.
    pub fn put_doc(&self, kind: &str, id: &str, value: &[u8], event: audit::Event) -> Result<()> {
        let key = format!("{kind}/{id}");
        let now = chrono::Utc::now();
        let _gate = self.snapshot_gate.read();
        (&self.docs, &self.meta, &self.audit)
            .transaction(|(docs, meta, log)| {
                docs.insert(key.as_bytes(), value)?;
                audit::append_in_tx(meta, log, &self.audit_key, &event, now)?;
                Ok(())
            })
            .map_err(tx_error)?;
        self.db.flush()?;
        Ok(())
    }

    /// Stores many documents (`kind/id` → value) with one audit entry, atomically and durably.
    pub fn put_docs(&self, items: &[(String, String, Vec<u8>)], event: audit::Event) -> Result<()> {
        self.write_docs(items, &[], event)
    }

    /// Stores `puts` and removes `removes` (`kind`, `id`) with one audit entry, atomically and
    /// durably.
    pub fn write_docs(
        &self,
        puts: &[(String, String, Vec<u8>)],
        removes: &[(String, String)],
        event: audit::Event,
    ) -> Result<()> {
        let mut batch = sled::Batch::default();
        for (kind, id) in removes {
            batch.remove(format!("{kind}/{id}").as_bytes());
        }
        for (kind, id, value) in puts {
            batch.insert(format!("{kind}/{id}").as_bytes(), value.as_slice());
        }
        self.apply_audited(&self.docs, &batch, &event)
    }

    /// Applies `batch` to `tree` together with `event`'s audit entry in one transaction, then
    /// flushes: the shared write path of record and document batches.
    fn apply_audited(&self, tree: &sled::Tree, batch: &sled::Batch, event: &audit::Event) -> Result<()> {
        let now = chrono::Utc::now();
        let _gate = self.snapshot_gate.read();
        (tree, &self.meta, &self.audit)
            .transaction(|(t, meta, log)| {
                t.apply_batch(batch)?;
                audit::append_in_tx(meta, log, &self.audit_key, event, now)?;
                Ok(())
            })
            .map_err(tx_error)?;
        self.db.flush()?;
        Ok(())
    }

    /// Removes `kind/id` with its audit entry; false if there was none.
    pub fn delete_doc(&self, kind: &str, id: &str, event: audit::Event) -> Result<bool> {
        let key = format!("{kind}/{id}");
        let now = chrono::Utc::now();
        let _gate = self.snapshot_gate.read();
        let existed = (&self.docs, &self.meta, &self.audit)
            .transaction(|(docs, meta, log)| {
                let old = docs.remove(key.as_bytes())?;
                if old.is_some() {
                    audit::append_in_tx(meta, log, &self.audit_key, &event, now)?;
                }
                Ok(old.is_some())
            })
            .map_err(tx_error)?;
        self.db.flush()?;
        Ok(existed)
    }

    /// A shared hold on the epoch guard for a caller that seals documents (`seal_doc`) and
    /// then writes them (`put_docs`): retiring epochs waits until the write is committed.
    /// Hold it only around those two calls (the store's record writes take it themselves).
    pub fn epoch_write_guard(&self) -> std::sync::RwLockReadGuard<'_, ()> {
        self.epoch_guard.read().expect("epoch guard")
    }

    /// Seals `plain` as document `kind/id` in key epoch `label`: a fresh data key per version,
    /// wrapped by the epoch's key (see [`keystore`]), so that retiring the epochs of a destroyed
    /// document leaves none of its versions readable in any copy of sled. Returns the bytes
    /// to store (for `put_docs`); the epochs of the version it replaces are carried along.
    pub fn seal_doc(&self, kind: &str, id: &str, label: &str, plain: &[u8]) -> Result<Vec<u8>> {
        let mut past: Vec<String> = match self.docs.get(format!("{kind}/{id}"))? {
            Some(v) => match serde_json::from_slice::<SealedDoc>(&v) {
                Ok(old) => {
                    let mut p = old.past;
                    p.push(old.epoch.label);
                    p
                }
                Err(_) => Vec::new(),
            },
            None => Vec::new(),
        };
        past.retain(|l| l != label);
        past.sort();
        past.dedup();
        let dk = Key::generate();
        let (epoch, ek) = self.keys.current(label)?;
        let doc = SealedDoc {
            wrapped: ek.wrap(&doc_key_context(kind, id), &dk),
            sealed: dk.seal(&doc_context(kind, id), plain),
            epoch,
            past,
        };
        Ok(serde_json::to_vec(&doc).expect("sealed doc serialises"))
    }

    /// Opens document `kind/id` sealed by [`Store::seal_doc`]; `None` if absent. Documents
    /// stored before epoch sealing (sealed with the secrets key) open too.
    pub fn open_doc(&self, kind: &str, id: &str) -> Result<Option<Vec<u8>>> {
        let Some(v) = self.docs.get(format!("{kind}/{id}"))? else { return Ok(None) };
        match serde_json::from_slice::<SealedDoc>(&v) {
            Ok(doc) => Ok(Some(self.open_sealed_doc(kind, id, &doc)?)),
            Err(_) => Ok(Some(self.secrets_key.open(format!("{kind}:{id}").as_bytes(), &v)?)),
        }
    }

    fn open_sealed_doc(&self, kind: &str, id: &str, doc: &SealedDoc) -> Result<Vec<u8>> {
        let ctx = doc_key_context(kind, id);
        let dk = match self.keys.epoch_key(&doc.epoch)?.and_then(|k| k.unwrap_key(&ctx, &doc.wrapped).ok()) {
            Some(dk) => dk,
            None => {
                let s = self
                    .keys
                    .survivor(&format!("doc:{kind}/{id}"))
                    .ok_or_else(|| Error::KeyDestroyed(format!("{kind}/{id}")))?;
                let k = self.keys.epoch_key(&s.epoch)?.ok_or_else(|| Error::KeyDestroyed(format!("{kind}/{id}")))?;
                k.unwrap_key(&ctx, &s.wrapped)?
            }
        };
        Ok(dk.open(&doc_context(kind, id), &doc.sealed)?)
    }

    /// The epochs document `kind/id` is sealed in now and was sealed in before.
    pub fn doc_epochs(&self, kind: &str, id: &str) -> Result<Vec<String>> {
        let Some(v) = self.docs.get(format!("{kind}/{id}"))? else { return Ok(Vec::new()) };
        Ok(match serde_json::from_slice::<SealedDoc>(&v) {
            Ok(doc) => {
                let mut all = doc.past;
                all.push(doc.epoch.label);
                all
            }
            Err(_) => Vec::new(),
        })
    }

    /// Destroys documents with an approved run: in one transaction, checks that no hold
    /// covers them (the hold-index keys given) and that `expect` (key, bytes as judged) is
    /// unchanged, then removes every key listed and writes the tombstones. Returns why nothing
    /// was removed, if so.
    pub fn destroy_docs(
        &self,
        approval: &crate::retention::run::ApprovedDisposal,
        hold_keys: &[String],
        expect: &(String, Vec<u8>),
        remove: &[String],
        tombstones: &[(String, Vec<u8>)],
        what: &str,
    ) -> Result<Option<ShredSkip>> {
        let now = chrono::Utc::now();
        let event = audit::Event::new(
            approval.executor(),
            "dispose.destroy_docs",
            &format!("run {} {what}", approval.run_id()),
            "ok",
        );
        let _gate = self.snapshot_gate.read();
        let done = (&self.docs, &self.holds, &self.meta, &self.audit)
            .transaction(|(docs, holds, meta, log)| {
                for k in hold_keys {
                    if holds.get(k.as_bytes())?.is_some() {
                        return Ok(Some(ShredSkip::Held(k.clone())));
                    }
                }
                if docs.get(expect.0.as_bytes())?.as_deref() != Some(expect.1.as_slice()) {
                    return Ok(Some(ShredSkip::Changed));
                }
                for k in remove {
                    docs.remove(k.as_bytes())?;
                }
                for (k, v) in tombstones {
                    docs.insert(k.as_bytes(), v.as_slice())?;
                }
                audit::append_in_tx(meta, log, &self.audit_key, &event, now)?;
                Ok(None)
            })
            .map_err(tx_error)?;
        self.db.flush()?;
        Ok(done)
    }

    /// Every document key under `prefix` (ids only).
    pub fn doc_keys(&self, prefix: &str) -> Result<Vec<String>> {
        self.docs.scan_prefix(prefix.as_bytes()).keys().map(|k| Ok(String::from_utf8_lossy(&k?).into_owned())).collect()
    }

    /// A keyed hash for looking a value up without storing it (a My Number, a person):
    /// equal inputs meet, and without the store's key the hash cannot be brute-forced back.
    pub fn lookup_hash(&self, domain: &str, value: &str) -> String {
        let mut input = format!("lookup:{domain}").into_bytes();
        input.push(0);
        input.extend_from_slice(value.as_bytes());
        hex::encode(&self.dedupe_key.keyed_hash(&input)[..16])
    }

    pub fn get_doc(&self, kind: &str, id: &str) -> Result<Option<Vec<u8>>> {
        Ok(self.docs.get(format!("{kind}/{id}"))?.map(|v| v.to_vec()))
    }

    /// Every document of a kind, in id order.
    pub fn docs(&self, kind: &str) -> Result<Vec<(String, Vec<u8>)>> {
        let prefix = format!("{kind}/");
        self.docs
            .scan_prefix(prefix.as_bytes())
            .map(|kv| {
                let (k, v) = kv?;
                Ok((String::from_utf8_lossy(&k[prefix.len()..]).into_owned(), v.to_vec()))
            })
            .collect()
    }

    /// Updates record metadata in place (retention dates after a policy change, a
    /// decision date), with its audit entry.
    pub fn update_records(&self, recs: &[Record], event: audit::Event) -> Result<()> {
        self.write_records(recs.iter().cloned(), event)
    }

    /// Writes records in one batch together with `event`, atomically and durably.
    fn write_records(&self, recs: impl Iterator<Item = Record>, event: audit::Event) -> Result<()> {
        let _epochs = self.epoch_guard.read().expect("epoch guard");
        let mut batch = sled::Batch::default();
        for mut r in recs {
            self.settle_epoch(&mut r)?;
            batch.insert(r.id.as_str(), r.encode());
        }
        self.apply_audited(&self.records, &batch, &event)
    }

    /// Disposal step 1 (crypto-shredding): forgets each record's wrapped data key and marks it
    /// `Shredding`, in one transaction that first re-checks each record against the hold index
    /// (its keys given beside it) and against the version the caller judged (a record changed
    /// since is left alone). Returns the records left alone and why. Once this returns, the
    /// others' blobs can never be decrypted with the keys in this copy of sled.
    pub fn shred_keys(
        &self,
        approval: &crate::retention::run::ApprovedDisposal,
        recs: &[(Record, Vec<String>)],
    ) -> Result<Vec<(RecordId, ShredSkip)>> {
        let shredded: Vec<Vec<u8>> = recs
            .iter()
            .map(|(r, _)| {
                let mut r = r.clone();
                r.wrapped_key.clear();
                r.state = RecordState::Shredding { run: approval.run_id().to_owned() };
                r.encode()
            })
            .collect();
        let now = chrono::Utc::now();
        let _gate = self.snapshot_gate.read();
        let skipped = (&self.records, &self.holds, &self.meta, &self.audit)
            .transaction(|(records, holds, meta, log)| {
                let mut skipped = Vec::new();
                for (i, (r, keys)) in recs.iter().enumerate() {
                    let mut held = None;
                    for k in keys {
                        if holds.get(k.as_bytes())?.is_some() {
                            held = Some(k.clone());
                            break;
                        }
                    }
                    if let Some(k) = held {
                        skipped.push((r.id.clone(), ShredSkip::Held(k)));
                        continue;
                    }
                    // Compared as values: a record written by an older version decodes to the
                    // same value although its bytes lack newer fields.
                    let now_stored = records.get(r.id.as_str())?.and_then(|v| Record::decode(&v).ok());
                    if now_stored.as_ref() != Some(r) {
                        skipped.push((r.id.clone(), ShredSkip::Changed));
                        continue;
                    }
                    records.insert(r.id.as_str(), shredded[i].as_slice())?;
                }
                let event = audit::Event::new(
                    approval.executor(),
                    "dispose.shred_keys",
                    &format!(
                        "run {} records {} skipped {}",
                        approval.run_id(),
                        recs.len() - skipped.len(),
                        skipped.len()
                    ),
                    "ok",
                );
                audit::append_in_tx(meta, log, &self.audit_key, &event, now)?;
                Ok(skipped)
            })
            .map_err(tx_error)?;
        self.db.flush()?;
        Ok(skipped)
    }

    /// Writes a hold document and adds (`active`) or removes its targets in the hold index,
    /// with its audit entry, atomically.
    pub fn put_hold(
        &self,
        id: &str,
        value: &[u8],
        targets: &[String],
        active: bool,
        event: audit::Event,
    ) -> Result<()> {
        let key = format!("hold/{id}");
        let now = chrono::Utc::now();
        let _gate = self.snapshot_gate.read();
        (&self.docs, &self.holds, &self.meta, &self.audit)
            .transaction(|(docs, holds, meta, log)| {
                docs.insert(key.as_bytes(), value)?;
                for t in targets {
                    let mut ids: Vec<String> = match holds.get(t.as_bytes())? {
                        Some(v) => serde_json::from_slice(&v).unwrap_or_default(),
                        None => Vec::new(),
                    };
                    ids.retain(|x| x != id);
                    if active {
                        ids.push(id.to_owned());
                    }
                    if ids.is_empty() {
                        holds.remove(t.as_bytes())?;
                    } else {
                        holds.insert(t.as_bytes(), serde_json::to_vec(&ids).expect("ids serialise"))?;
                    }
                }
                audit::append_in_tx(meta, log, &self.audit_key, &event, now)?;
                Ok(())
            })
            .map_err(tx_error)?;
        self.db.flush()?;
        Ok(())
    }

    /// Every key epoch the key store knows.
    pub fn epoch_labels(&self) -> Vec<String> {
        self.keys.epochs().into_keys().collect()
    }

    /// Disposal step 3: deletes the (already unreadable) blobs, then replaces each record's
    /// metadata by its tombstone. Idempotent: a missing blob is not an error.
    pub fn bury(
        &self,
        approval: &crate::retention::run::ApprovedDisposal,
        recs: &[Record],
        tombstones: &[Tombstone],
    ) -> Result<()> {
        // Unlinks without a directory fsync each; one filesystem sync covers the batch. A crash
        // before it may bring a file back, which the resumed run deletes again (the record is
        // still `Shredding` until the commit below, and its key is already gone).
        for r in recs {
            debug_assert!(matches!(r.state, RecordState::Shredding { .. }));
            for b in &r.blobs {
                self.remove_blob(&b.addr, false)?;
            }
        }
        self.blobs.sync_all()?;
        let mut del = sled::Batch::default();
        let mut tomb = sled::Batch::default();
        for r in recs {
            del.remove(r.id.as_str());
        }
        for t in tombstones {
            tomb.insert(t.record_id.as_bytes(), serde_json::to_vec(t).expect("tombstone serialises"));
        }
        let event = audit::Event::new(
            approval.executor(),
            "dispose.bury",
            &format!("run {} records {}", approval.run_id(), recs.len()),
            "ok",
        );
        let now = chrono::Utc::now();
        let _gate = self.snapshot_gate.read();
        (&self.records, &self.tombstones, &self.meta, &self.audit)
            .transaction(|(records, tombs, meta, log)| {
                records.apply_batch(&del)?;
                tombs.apply_batch(&tomb)?;
                audit::append_in_tx(meta, log, &self.audit_key, &event, now)?;
                Ok(())
            })
            .map_err(tx_error)?;
        self.db.flush()?;
        Ok(())
    }

    /// The epochs destroying `recs` must retire: each one's epoch now and every epoch its
    /// key was wrapped under before.
    pub fn epochs_of(recs: &[Record]) -> std::collections::BTreeSet<String> {
        let mut out = std::collections::BTreeSet::new();
        for r in recs {
            out.extend(r.key_epoch.iter().map(|e| e.label.clone()));
            out.extend(r.past_epochs.iter().cloned());
        }
        out
    }

    /// Disposal's key step: gives each epoch in `labels` a new key, re-wraps every kept
    /// record of those epochs under it (and lists in the key store every kept record that
    /// ever was in one, so an earlier copy of the data directory still opens it), then
    /// forgets the old keys. From here the destroyed records' keys, in every copy of sled
    /// there ever was, are wrapped under keys that no longer exist. Idempotent; a crash
    /// anywhere leaves both generations and the next call finishes. Returns the number of
    /// records re-wrapped.
    pub fn retire_epochs(
        &self,
        approval: &crate::retention::run::ApprovedDisposal,
        labels: &[String],
    ) -> Result<usize> {
        if labels.is_empty() {
            return Ok(0);
        }
        let _exclusive = self.epoch_guard.write().expect("epoch guard");
        let fresh = self.keys.begin_retire(labels)?;
        let retiring = |l: &str| fresh.contains_key(l);
        let mut survivors = self.keys.survivors();
        let live: std::collections::HashSet<String> = self
            .records
            .iter()
            .keys()
            .map(|k| k.map(|k| String::from_utf8_lossy(&k).into_owned()))
            .collect::<std::result::Result<_, _>>()?;
        let live_doc =
            |tag: &str| tag.strip_prefix("doc:").is_some_and(|k| self.docs.contains_key(k.as_bytes()).unwrap_or(false));
        survivors.retain(|id, _| live.contains(id) || live_doc(id));
        // A kept record or case that opens only through its survivors entry (restored from an
        // earlier copy) keeps it, re-wrapped under the new generation when its epoch retires.
        let mut unusable = Vec::new();
        for (tag, s) in survivors.iter_mut() {
            if let Some((epoch, key)) = fresh.get(&s.epoch.label)
                && s.epoch != *epoch
            {
                let ctx = match tag.strip_prefix("doc:").and_then(|k| k.split_once('/')) {
                    Some((kind, id)) => doc_key_context(kind, id),
                    None => record_key_context(&RecordId::from_stored(tag.as_bytes())),
                };
                // An entry that no longer opens (its generation went before) helps no one.
                match self.keys.epoch_key(&s.epoch)?.and_then(|old| old.unwrap_key(&ctx, &s.wrapped).ok()) {
                    Some(dk) => {
                        s.wrapped = key.wrap(&ctx, &dk);
                        s.epoch = epoch.clone();
                    }
                    None => unusable.push(tag.clone()),
                }
            }
        }
        for tag in unusable {
            survivors.remove(&tag);
        }
        // A wrapping opens after retirement if it is under a new generation, or under the
        // current generation of an epoch that is not retiring.
        let wrapping_survives = |e: &KeyEpoch| match fresh.get(&e.label) {
            Some((f, _)) => f == e,
            None => self.keys.is_current(e),
        };
        let mut batch = sled::Batch::default();
        let mut rewrapped = 0;
        for rec in self.records() {
            let mut rec = rec?;
            if rec.wrapped_key.is_empty() || !matches!(rec.state, RecordState::Stored | RecordState::Pending) {
                continue;
            }
            let in_retiring = rec.key_epoch.as_ref().is_some_and(|e| retiring(&e.label));
            let was_in_retiring = rec.past_epochs.iter().any(|l| retiring(l));
            if in_retiring {
                let (epoch, key) = &fresh[&rec.key_epoch.as_ref().expect("checked").label];
                if rec.key_epoch.as_ref() != Some(epoch) {
                    // A record whose key is already gone (destroyed, then brought back by a
                    // restore of an earlier copy) has nothing to re-wrap.
                    let dk = match self.data_key(&rec) {
                        Ok(dk) => dk,
                        Err(Error::KeyDestroyed(_)) => continue,
                        Err(e) => return Err(e),
                    };
                    rec.wrapped_key = key.wrap(&record_key_context(&rec.id), &dk);
                    rec.key_epoch = Some(epoch.clone());
                    batch.insert(rec.id.as_str(), rec.encode());
                    rewrapped += 1;
                }
            }
            // Only a wrapping that opens after retirement goes into the survivors table (a
            // record restored from an earlier copy keeps the entry that opens it).
            if (in_retiring || was_in_retiring || survivors.contains_key(rec.id.as_str()))
                && let Some(epoch) = &rec.key_epoch
                && wrapping_survives(epoch)
            {
                survivors.insert(
                    rec.id.to_string(),
                    keystore::Survivor { epoch: epoch.clone(), wrapped: rec.wrapped_key.clone() },
                );
            }
        }
        // Documents sealed in epochs (cases): the same, keyed `doc:<kind>/<id>` in survivors.
        let mut doc_batch = sled::Batch::default();
        for kind in EPOCH_SEALED_KINDS {
            let prefix = format!("{kind}/");
            for kv in self.docs.scan_prefix(prefix.as_bytes()) {
                let (k, v) = kv?;
                let Ok(mut doc) = serde_json::from_slice::<SealedDoc>(&v) else { continue };
                let id = String::from_utf8_lossy(&k[prefix.len()..]).into_owned();
                let in_retiring = retiring(&doc.epoch.label);
                if in_retiring {
                    let (epoch, key) = &fresh[&doc.epoch.label];
                    if doc.epoch != *epoch {
                        let ctx = doc_key_context(kind, &id);
                        let direct =
                            self.keys.epoch_key(&doc.epoch)?.and_then(|ek| ek.unwrap_key(&ctx, &doc.wrapped).ok());
                        let dk = match direct {
                            Some(k) => Some(k),
                            None => match survivors.get(&format!("doc:{kind}/{id}")) {
                                Some(s) => {
                                    self.keys.epoch_key(&s.epoch)?.and_then(|ek| ek.unwrap_key(&ctx, &s.wrapped).ok())
                                }
                                None => None,
                            },
                        };
                        let Some(dk) = dk else { continue };
                        doc.wrapped = key.wrap(&doc_key_context(kind, &id), &dk);
                        doc.epoch = epoch.clone();
                        doc_batch.insert(k.clone(), serde_json::to_vec(&doc).expect("sealed doc serialises"));
                        rewrapped += 1;
                    }
                }
                let tag = format!("doc:{kind}/{id}");
                if (in_retiring || doc.past.iter().any(|l| retiring(l)) || survivors.contains_key(&tag))
                    && wrapping_survives(&doc.epoch)
                {
                    survivors
                        .insert(tag, keystore::Survivor { epoch: doc.epoch.clone(), wrapped: doc.wrapped.clone() });
                }
            }
        }
        let event = audit::Event::new(
            approval.executor(),
            "dispose.retire_keys",
            &format!("run {} epochs {} re-wrapped {rewrapped}", approval.run_id(), labels.len()),
            "ok",
        );
        let now = chrono::Utc::now();
        let _gate = self.snapshot_gate.read();
        (&self.records, &self.docs, &self.meta, &self.audit)
            .transaction(|(records, docs, meta, log)| {
                records.apply_batch(&batch)?;
                docs.apply_batch(&doc_batch)?;
                audit::append_in_tx(meta, log, &self.audit_key, &event, now)?;
                Ok(())
            })
            .map_err(tx_error)?;
        self.db.flush()?;
        crate::retention::run::failpoint("dispose.after_rewrap");
        self.keys.finish_retire(approval.run_id(), labels, survivors)?;
        Ok(rewrapped)
    }

    /// Index key rotation, step 1: a new index key beside the current one (durable), which
    /// the caller re-seals every index file under.
    pub fn begin_index_rotation(&self, _approval: &crate::retention::run::ApprovedDisposal) -> Result<Key> {
        self.keys.begin_index_rotation()
    }

    /// Index key rotation, last step: the old key is forgotten (every file was re-sealed).
    pub fn finish_index_rotation(&self, approval: &crate::retention::run::ApprovedDisposal) -> Result<()> {
        self.keys.finish_index_rotation()?;
        self.audit(audit::Event::new(approval.executor(), "dispose.rotate_index_key", approval.run_id(), "ok"))
    }

    /// Every key the key store holds, unwrapped with the master key: what someone holding
    /// today's key material has (the attack test tries each against an earlier copy).
    pub fn key_material_for_audit(&self) -> Result<Vec<Key>> {
        let mut keys = self.keys.all_keys()?;
        keys.extend([self.master.clone(), self.dedupe_key.clone(), self.secrets_key.clone(), self.audit_key.clone()]);
        Ok(keys)
    }

    /// Writes a destruction certificate (no personal data: ids, counts, digests) to
    /// `certificates/<run>.pdf`, durably.
    pub fn write_certificate(&self, run_id: &str, pdf: &[u8]) -> Result<PathBuf> {
        let dir = self.root.join("certificates");
        std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        let path = dir.join(format!("{run_id}.pdf"));
        let tmp = dir.join(format!("{run_id}.pdf.tmp"));
        let write = || -> std::io::Result<()> {
            use std::io::Write;
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(pdf)?;
            f.sync_all()?;
            std::fs::rename(&tmp, &path)
        };
        write().map_err(|e| Error::io(&path, e))?;
        keyfile::sync_parent(&path)?;
        Ok(path)
    }

    pub fn tombstone(&self, id: &str) -> Result<Option<Tombstone>> {
        match self.tombstones.get(id)? {
            Some(v) => Ok(Some(serde_json::from_slice(&v).map_err(|e| Error::Corrupt(format!("tombstone: {e}")))?)),
            None => Ok(None),
        }
    }

    pub fn tombstones(&self) -> Result<Vec<Tombstone>> {
        self.tombstones
            .iter()
            .values()
            .map(|v| serde_json::from_slice(&v?).map_err(|e| Error::Corrupt(format!("tombstone: {e}"))))
            .collect()
    }

    /// Writes many blobs for one import, with a single filesystem sync instead of one fsync
    /// per file; nothing may point at them until this returns.
    pub fn put_blobs_bulk(&self, items: &[(RecordId, DataKey, BlobRole, Vec<u8>)]) -> Result<Vec<BlobRef>> {
        let mut refs = Vec::with_capacity(items.len());
        for (id, key, role, plain) in items {
            let sealed = key.seal(&blob_context(id, *role), plain);
            let addr = self.blobs.put_unsynced(&sealed)?;
            refs.push(BlobRef { role: *role, addr, len: plain.len() as u64 });
        }
        self.blobs.sync_all()?;
        Ok(refs)
    }

    /// Inserts fully stored records in one batch (bulk import; the caller indexed them).
    pub fn insert_stored_bulk(&self, recs: &[Record], event: audit::Event) -> Result<()> {
        self.update_records(recs, event)
    }

    /// Replaces blobs of a stored record (a reconciled draft and its index text): the new
    /// blobs are sealed under the record's own key and made durable first, then the record is
    /// switched to them with its audit entry in one transaction, then the old blobs are
    /// removed. A crash before the switch leaves the record as it was; one after it leaves the
    /// old blobs as orphans for `gc_orphans`.
    pub fn replace_blobs(&self, rec: &Record, new: &[(BlobRole, &[u8])], event: audit::Event) -> Result<Record> {
        let key = self.data_key(rec)?;
        let mut updated = rec.clone();
        let mut old = Vec::new();
        for (role, plain) in new {
            let b = self.put_blob(&rec.id, &key, *role, plain)?;
            old.extend(updated.blobs.iter().filter(|x| x.role == *role).map(|x| x.addr.clone()));
            updated.blobs.retain(|x| x.role != *role);
            updated.blobs.push(b);
        }
        self.update_records(std::slice::from_ref(&updated), event)?;
        for addr in old {
            self.remove_blob(&addr, true)?;
        }
        Ok(updated)
    }

    /// Notes that a page of `batch` was stored with `outcome` (idempotent: a re-run of the same
    /// file overwrites its own entry). Batch ids and outcomes are not personal data.
    pub fn mark_batch_page(&self, batch: &str, id: &RecordId, outcome: PageOutcome) -> Result<()> {
        // Every write to a backed-up tree holds the gate (see `snapshot` and `changes`).
        let _gate = self.snapshot_gate.read_recursive();
        let mut key = batch.as_bytes().to_vec();
        key.push(0);
        key.extend_from_slice(id.as_str().as_bytes());
        self.batch_pages.insert(key, &[outcome as u8])?;
        Ok(())
    }

    /// Counts `pages` pages of a file (by its fingerprint), from page `from` on, as failed in
    /// `batch`: a limit refused them, nothing was stored for them.
    pub fn mark_batch_refused(&self, batch: &str, file: &[u8; 32], from: usize, pages: usize) -> Result<()> {
        // Every write to a backed-up tree holds the gate (see `snapshot` and `changes`).
        let _gate = self.snapshot_gate.read_recursive();
        for page in from..from + pages {
            let mut key = batch.as_bytes().to_vec();
            key.push(0);
            key.extend_from_slice(format!("refused/{}/{page}", hex::encode(&file[..8])).as_bytes());
            self.batch_pages.insert(key, &[PageOutcome::Failed as u8])?;
        }
        Ok(())
    }

    /// Notes `id` (sheet `sheet` of a two-sheet form, in `batch`) as waiting for its other sheet.
    pub fn unpaired_put(&self, batch: Option<&str>, id: &RecordId, sheet: u8) -> Result<()> {
        // Every write to a backed-up tree holds the gate (see `snapshot` and `changes`).
        let _gate = self.snapshot_gate.read_recursive();
        self.unpaired.insert(unpaired_key(batch, id), &[sheet])?;
        Ok(())
    }

    pub fn unpaired_remove(&self, batch: Option<&str>, id: &RecordId) -> Result<()> {
        // Every write to a backed-up tree holds the gate (see `snapshot` and `changes`).
        let _gate = self.snapshot_gate.read_recursive();
        self.unpaired.remove(unpaired_key(batch, id))?;
        Ok(())
    }

    /// The sheets of `batch` waiting for their other sheet, with their sheet numbers.
    pub fn unpaired_in(&self, batch: Option<&str>) -> Result<Vec<(RecordId, u8)>> {
        let mut prefix = batch.unwrap_or("").as_bytes().to_vec();
        prefix.push(0);
        let mut out = Vec::new();
        for kv in self.unpaired.scan_prefix(&prefix) {
            let (k, v) = kv?;
            let id = std::str::from_utf8(&k[prefix.len()..]).ok().and_then(RecordId::parse);
            if let (Some(id), Some(sheet)) = (id, v.first()) {
                out.push((id, *sheet));
            }
        }
        Ok(out)
    }

    /// How many pages of `batch` ended each way.
    pub fn batch_counts(&self, batch: &str) -> Result<BatchCounts> {
        let mut prefix = batch.as_bytes().to_vec();
        prefix.push(0);
        let mut c = BatchCounts::default();
        for kv in self.batch_pages.scan_prefix(prefix) {
            let (_, v) = kv?;
            match v.first().copied() {
                Some(x) if x == PageOutcome::Form as u8 => c.forms += 1,
                Some(x) if x == PageOutcome::Unclassified as u8 => c.unclassified += 1,
                Some(x) if x == PageOutcome::Attachment as u8 => c.attachments += 1,
                _ => c.failed += 1,
            }
        }
        Ok(c)
    }

    /// Puts `rec` in the review queue (marked for a second look or not), or takes it out
    /// (`None`: verified). Called after the draft itself was replaced: a crash in between
    /// leaves a verified draft listed, which the review screen shows as verified.
    pub fn queue_mark(&self, rec: &Record, second_look: Option<bool>) -> Result<()> {
        // Every write to a backed-up tree holds the gate (see `snapshot` and `changes`).
        let _gate = self.snapshot_gate.read_recursive();
        match second_look {
            Some(look) => self.queue.insert(queue_key(rec), QueueEntry::of(rec, look).encode())?,
            None => self.queue.remove(queue_key(rec))?,
        };
        self.db.flush()?;
        Ok(())
    }

    /// The review queue, oldest first.
    pub fn queue(&self) -> impl Iterator<Item = Result<(RecordId, QueueEntry)>> + '_ {
        self.queue.iter().map(|kv| {
            let (k, v) = kv?;
            let id = RecordId::from_stored(&k[8..]);
            let entry = serde_json::from_slice(&v).map_err(|e| Error::Corrupt(format!("review queue: {e}")))?;
            Ok((id, entry))
        })
    }

    /// Whether the queue was built (stores made before it existed build it once on open;
    /// before v2 it held no unclassified pages).
    pub fn queue_built(&self) -> Result<bool> {
        Ok(self.meta.get(QUEUE_VERSION)?.is_some())
    }

    pub fn set_queue_built(&self) -> Result<()> {
        // Every write to a backed-up tree holds the gate (see `snapshot` and `changes`).
        let _gate = self.snapshot_gate.read_recursive();
        self.meta.insert(QUEUE_VERSION, b"1")?;
        self.db.flush()?;
        Ok(())
    }

    /// Removes blobs that no record references (crash leftovers). Returns how many.
    ///
    /// Writers put a blob on disk before any record points at it (an ingest worker, an
    /// upload, a review save): such a blob is "orphaned" for the moments in between. So only
    /// blobs untouched for [`GC_GRACE`] are removed, and the blob list is taken *before* the
    /// records are read: a blob written after the list is never a candidate, and one listed
    /// and referenced by the time the records are read is kept.
    pub fn gc_orphans(&self) -> Result<usize> {
        let cutoff = std::time::SystemTime::now() - GC_GRACE;
        let candidates: Vec<String> =
            self.blobs.list()?.into_iter().filter(|(_, t)| *t < cutoff).map(|(a, _)| a).collect();
        let mut referenced = std::collections::HashSet::new();
        for rec in self.records() {
            for b in rec?.blobs {
                referenced.insert(b.addr);
            }
        }
        let mut removed = 0;
        for addr in candidates {
            if !referenced.contains(&addr) {
                self.remove_blob(&addr, true)?;
                removed += 1;
            }
        }
        Ok(removed)
    }

    /// Re-wraps every data key (and the store's own keys) under a new master key. Blobs are
    /// not touched. See `keyfile` for the crash-safety argument. Returns the new fingerprint.
    pub fn rotate_master_key(&mut self) -> Result<String> {
        let new = Key::generate();
        let pending = keyfile::pending_path(&self.key_file);
        if pending.exists() {
            std::fs::remove_file(&pending).map_err(|e| Error::io(&pending, e))?;
        }
        keyfile::create(&pending, &new)?;
        // Records from before the key store are still wrapped by the master key: they move into
        // their epochs now (creating the epochs first, so the re-sealed key store has them).
        let mut batch_records = sled::Batch::default();
        let mut count = 0usize;
        for rec in self.records() {
            let mut rec = rec?;
            if rec.key_epoch.is_none() && !rec.wrapped_key.is_empty() {
                self.settle_epoch(&mut rec)?;
                batch_records.insert(rec.id.as_str(), rec.encode());
                count += 1;
            }
        }
        let keystore_pending = keyfile::pending_path(self.keys.path());
        self.keys.rewrap_master(&new, &keystore_pending)?;
        let mut batch_meta = sled::Batch::default();
        batch_meta.insert("key_check", new.seal(b"key-check", KEY_CHECK_PLAINTEXT));
        batch_meta.insert("key_fingerprint", new.fingerprint().as_bytes());
        // The backup key too, so backups go on under the new master key (backups taken before
        // carry the old wrapping: restoring one needs the old key file).
        if let Some(w) = self.meta.get(snapshot::BACKUP_KEY)? {
            let k = self.master.unwrap_key(&key_context(snapshot::BACKUP_KEY), &w)?;
            batch_meta.insert(snapshot::BACKUP_KEY, new.wrap(&key_context(snapshot::BACKUP_KEY), &k));
        }
        for (name, key) in STORE_KEYS.iter().zip([&self.dedupe_key, &self.secrets_key, &self.audit_key]) {
            batch_meta.insert(*name, new.wrap(&key_context(name), key));
        }
        // The legacy copy of the index key (stores made before the key store) goes with the
        // old master key.
        batch_meta.remove("index_key");
        let _gate = self.snapshot_gate.read();
        (&self.meta, &self.records)
            .transaction(|(meta, records)| {
                meta.apply_batch(&batch_meta)?;
                records.apply_batch(&batch_records)?;
                Ok::<(), sled::transaction::ConflictableTransactionError<()>>(())
            })
            .map_err(|e| Error::Corrupt(format!("key rotation transaction: {e:?}")))?;
        self.db.flush()?;
        std::fs::rename(&pending, &self.key_file).map_err(|e| Error::io(&self.key_file, e))?;
        keyfile::sync_parent(&self.key_file)?;
        std::fs::rename(&keystore_pending, self.keys.path()).map_err(|e| Error::io(self.keys.path(), e))?;
        keyfile::sync_parent(self.keys.path())?;
        self.keys = self.keys.reopen(new.clone())?;
        self.master = new;
        self.audit(audit::Event::system("key.rotate", &format!("{count} legacy data keys moved into epochs")))?;
        Ok(self.master.fingerprint())
    }
}

/// Opens the sled database, naming the usual cause of a lock failure. sled releases its file
/// lock from a background thread after the last handle drops, so a reopen within the same
/// process may briefly see the lock still held: retry for up to two seconds before giving up.
fn open_db(root: &Path) -> Result<sled::Db> {
    let mut attempts = 0;
    loop {
        // sled's page cache defaults to 1 GiB; metadata needs far less, and the search index
        // and OCR engines want the memory more.
        let config = sled::Config::new().path(root.join("meta")).cache_capacity(128 * 1024 * 1024);
        match config.open() {
            Ok(db) => return Ok(db),
            // sled reports a held lock as a custom `Other` error carrying the OS error's text.
            Err(sled::Error::Io(io))
                if io.kind() == std::io::ErrorKind::WouldBlock || io.to_string().contains("could not acquire lock") =>
            {
                attempts += 1;
                if attempts >= 100 {
                    return Err(Error::Locked(root.display().to_string()));
                }
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            Err(other) => return Err(Error::Sled(other)),
        }
    }
}

fn tx_error(e: sled::transaction::TransactionError<audit::TxAbort>) -> Error {
    match e {
        sled::transaction::TransactionError::Storage(s) => Error::Sled(s),
        sled::transaction::TransactionError::Abort(a) => Error::Corrupt(a.0),
    }
}

fn record_key_context(id: &RecordId) -> Vec<u8> {
    format!("record-key:{id}").into_bytes()
}

fn blob_context(id: &RecordId, role: BlobRole) -> Vec<u8> {
    format!("blob:{id}:{role:?}").into_bytes()
}

/// The store's own keys, each wrapped by the master key under its name in `meta`.
const STORE_KEYS: [&str; 3] = ["dedupe_key", "secrets_key", "audit_key"];

/// Set in `meta` once the store has a key store: from then on a missing key store file is an
/// error, never a reason to start an empty one.
const KEYSTORE_FLAG: &str = "keystore_v1";

/// Opens the key store beside `key_file`, finishing an interrupted master key rotation (the
/// new key store is written as `<keystore>.new` first).
fn open_key_store(key_file: &Path, master: &MasterKey, legacy: bool) -> Result<keystore::KeyStore> {
    let path = keystore::path_for(key_file);
    let pending = keyfile::pending_path(&path);
    if pending.exists() {
        match keystore::KeyStore::open(pending.clone(), master.clone(), false) {
            Ok(_) => {
                std::fs::rename(&pending, &path).map_err(|e| Error::io(&path, e))?;
                keyfile::sync_parent(&path)?;
            }
            Err(_) => std::fs::remove_file(&pending).map_err(|e| Error::io(&pending, e))?,
        }
    }
    keystore::KeyStore::open(path, master.clone(), legacy)
}

fn key_context(name: &str) -> Vec<u8> {
    name.replace('_', "-").into_bytes()
}

/// Unwraps a store key, creating it first if this data directory predates it.
fn meta_key(meta: &sled::Tree, master: &MasterKey, name: &str) -> Result<Key> {
    match meta.get(name)? {
        Some(w) => Ok(master.unwrap_key(&key_context(name), &w)?),
        None => {
            let k = Key::generate();
            meta.insert(name, master.wrap(&key_context(name), &k))?;
            Ok(k)
        }
    }
}

/// Reads the key file, finishing an interrupted rotation if one is found.
fn open_master_key(key_file: &Path, check: &[u8]) -> Result<MasterKey> {
    let pending = keyfile::pending_path(key_file);
    let matches = |k: &Key| k.open(b"key-check", check).is_ok_and(|p| p == KEY_CHECK_PLAINTEXT);
    if pending.exists() {
        let new = keyfile::read(&pending)?;
        if matches(&new) {
            std::fs::rename(&pending, key_file).map_err(|e| Error::io(key_file, e))?;
            keyfile::sync_parent(key_file)?;
            return Ok(new);
        }
        // The rotation never reached sled: the pending key is unused.
        std::fs::remove_file(&pending).map_err(|e| Error::io(&pending, e))?;
    }
    let key = keyfile::read(key_file)?;
    if matches(&key) { Ok(key) } else { Err(Error::WrongKey) }
}

#[cfg(test)]
mod tests;

fn unpaired_key(batch: Option<&str>, id: &RecordId) -> Vec<u8> {
    let mut key = batch.unwrap_or("").as_bytes().to_vec();
    key.push(0);
    key.extend_from_slice(id.as_str().as_bytes());
    key
}

/// The `meta` flag of a built queue (v2: with the unclassified pages).
const QUEUE_VERSION: &str = "review_queue_v2";

fn queue_key(rec: &Record) -> Vec<u8> {
    let ns = rec.received_at.timestamp_nanos_opt().unwrap_or(i64::MAX);
    let mut k = ns.to_be_bytes().to_vec();
    k.extend_from_slice(rec.id.as_str().as_bytes());
    k
}

/// How old an unreferenced blob must be before `gc_orphans` removes it: far longer than any
/// writer takes between writing a blob and committing the record that points at it.
pub const GC_GRACE: std::time::Duration = std::time::Duration::from_secs(3600);

/// Document kinds sealed in key epochs (`seal_doc`); retiring an epoch re-wraps the kept ones.
const EPOCH_SEALED_KINDS: &[&str] = &["case"];

/// A document sealed in a key epoch: the version's data key wrapped by the epoch key.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct SealedDoc {
    epoch: KeyEpoch,
    #[serde(with = "records::hex_bytes")]
    wrapped: Vec<u8>,
    #[serde(with = "records::hex_bytes")]
    sealed: Vec<u8>,
    #[serde(default)]
    past: Vec<String>,
}

fn doc_key_context(kind: &str, id: &str) -> Vec<u8> {
    format!("doc-key:{kind}/{id}").into_bytes()
}

fn doc_context(kind: &str, id: &str) -> Vec<u8> {
    format!("doc:{kind}/{id}").into_bytes()
}

/// Why `shred_keys` left a record alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ShredSkip {
    /// A hold covers it (the hold-index key that matched).
    Held(String),
    /// It changed after it was judged (a review saved, a due date moved).
    Changed,
}

/// What the queue needs to filter without opening the record or its draft.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct QueueEntry {
    pub received_at: chrono::DateTime<chrono::Utc>,
    pub batch: Option<String>,
    pub form: String,
    pub second_look: bool,
}

impl QueueEntry {
    fn of(rec: &Record, second_look: bool) -> QueueEntry {
        QueueEntry { received_at: rec.received_at, batch: rec.batch.clone(), form: rec.class.clone(), second_look }
    }

    fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("queue entry serialises")
    }
}
