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
pub mod index_dir;
pub(crate) mod keyfile;
mod records;

use std::path::{Path, PathBuf};

use sled::Transactional;

pub use records::{
    BatchCounts, BlobRef, BlobRole, PageOutcome, Record, RecordId, RecordKind, RecordState, Retention, Tombstone,
};

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
    blobs: blobs::BlobStore,
    dedupe_key: Key,
    index_key: Key,
    /// Seals small secrets kept in metadata (TOTP seeds).
    secrets_key: Key,
    /// Seals audit entries.
    audit_key: Key,
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
        meta.insert("review_queue_v1", b"1")?;
        db.flush()?;
        drop(meta);
        Store::from_db(root, key_file, db, master)
    }

    pub fn open(root: &Path, key_file: &Path) -> Result<Store> {
        if !root.join("meta").exists() {
            return Err(Error::NotInitialised(root.display().to_string()));
        }
        let db = open_db(root)?;
        let meta = db.open_tree("meta")?;
        let check = meta.get("key_check")?.ok_or_else(|| Error::Corrupt("missing key check".into()))?;
        let master = open_master_key(key_file, &check)?;
        Store::from_db(root, key_file, db, master)
    }

    fn from_db(root: &Path, key_file: &Path, db: sled::Db, master: MasterKey) -> Result<Store> {
        let meta = db.open_tree("meta")?;
        let [dedupe_key, index_key, secrets_key, audit_key] = STORE_KEYS.map(|name| meta_key(&meta, &master, name));
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
            meta,
            db,
            blobs: blobs::BlobStore::open(root.join("blobs"))?,
            dedupe_key: dedupe_key?,
            index_key: index_key?,
            secrets_key: secrets_key?,
            audit_key: audit_key?,
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Opens the encrypted directory that holds the search index.
    pub fn index_directory(&self) -> Result<index_dir::EncryptedDirectory> {
        let p = self.root.join("index");
        index_dir::EncryptedDirectory::open(p.clone(), self.index_key.clone()).map_err(|e| Error::io(&p, e))
    }

    /// Keyed hash used for duplicate detection of incoming files.
    pub fn scan_fingerprint(&self, bytes: &[u8]) -> [u8; 32] {
        self.dedupe_key.keyed_hash(bytes)
    }

    pub fn new_data_key(&self) -> DataKey {
        Key::generate()
    }

    pub fn wrap_data_key(&self, id: &RecordId, key: &DataKey) -> Vec<u8> {
        self.master.wrap(&record_key_context(id), key)
    }

    pub fn data_key(&self, rec: &Record) -> Result<DataKey> {
        Ok(self.master.unwrap_key(&record_key_context(&rec.id), &rec.wrapped_key)?)
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
        self.records.insert(rec.id.as_str(), rec.encode())?;
        self.db.flush()?;
        Ok(())
    }

    /// Step 4: makes the record visible, with its dedupe entry and audit entry, atomically.
    pub fn commit_stored(&self, rec: &Record, fp: &[u8; 32], event: audit::Event) -> Result<()> {
        let encoded = rec.encode();
        let now = chrono::Utc::now();
        let waiting = (rec.kind == RecordKind::Page && rec.blob(BlobRole::Draft).is_some())
            .then(|| (queue_key(rec), QueueEntry::of(rec, false).encode()));
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
        Ok(audit::verify(self.audit_raw()?, &self.audit_key, self.audit_head_seq()?, checkpoints, base.as_ref()))
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
        let mut batch = sled::Batch::default();
        for (kind, id, value) in items {
            batch.insert(format!("{kind}/{id}").as_bytes(), value.as_slice());
        }
        self.apply_audited(&self.docs, &batch, &event)
    }

    /// Applies `batch` to `tree` together with `event`'s audit entry in one transaction, then
    /// flushes: the shared write path of record and document batches.
    fn apply_audited(&self, tree: &sled::Tree, batch: &sled::Batch, event: &audit::Event) -> Result<()> {
        let now = chrono::Utc::now();
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
        let mut batch = sled::Batch::default();
        for r in recs {
            batch.insert(r.id.as_str(), r.encode());
        }
        self.apply_audited(&self.records, &batch, &event)
    }

    /// Disposal step 1 (crypto-shredding): forgets each record's wrapped data key and marks it
    /// `Shredding`. Once this returns, the records' blobs can never be decrypted again.
    pub fn shred_keys(&self, approval: &crate::retention::run::ApprovedDisposal, recs: &[Record]) -> Result<()> {
        let shredded = recs.iter().map(|r| {
            let mut r = r.clone();
            r.wrapped_key.clear();
            r.state = RecordState::Shredding { run: approval.run_id().to_owned() };
            r
        });
        let event = audit::Event::new(
            approval.executor(),
            "dispose.shred_keys",
            &format!("run {} records {}", approval.run_id(), recs.len()),
            "ok",
        );
        self.write_records(shredded, event)
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
                self.blobs.remove_unsynced(&b.addr)?;
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
            self.blobs.remove(&addr)?;
        }
        Ok(updated)
    }

    /// Notes that a page of `batch` was stored with `outcome` (idempotent: a re-run of the same
    /// file overwrites its own entry). Batch ids and outcomes are not personal data.
    pub fn mark_batch_page(&self, batch: &str, id: &RecordId, outcome: PageOutcome) -> Result<()> {
        let mut key = batch.as_bytes().to_vec();
        key.push(0);
        key.extend_from_slice(id.as_str().as_bytes());
        self.batch_pages.insert(key, &[outcome as u8])?;
        Ok(())
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
                _ => c.failed += 1,
            }
        }
        Ok(c)
    }

    /// Puts `rec` in the review queue (marked for a second look or not), or takes it out
    /// (`None`: verified). Called after the draft itself was replaced: a crash in between
    /// leaves a verified draft listed, which the review screen shows as verified.
    pub fn queue_mark(&self, rec: &Record, second_look: Option<bool>) -> Result<()> {
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

    /// Whether the queue was built (stores made before it existed build it once on open).
    pub fn queue_built(&self) -> Result<bool> {
        Ok(self.meta.get("review_queue_v1")?.is_some())
    }

    pub fn set_queue_built(&self) -> Result<()> {
        self.meta.insert("review_queue_v1", b"1")?;
        self.db.flush()?;
        Ok(())
    }

    /// Removes blobs that no record references (crash leftovers). Returns how many.
    pub fn gc_orphans(&self) -> Result<usize> {
        let mut referenced = std::collections::HashSet::new();
        for rec in self.records() {
            for b in rec?.blobs {
                referenced.insert(b.addr);
            }
        }
        let mut removed = 0;
        for addr in self.blobs.list()? {
            if !referenced.contains(&addr) {
                self.blobs.remove(&addr)?;
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
        let mut batch_meta = sled::Batch::default();
        batch_meta.insert("key_check", new.seal(b"key-check", KEY_CHECK_PLAINTEXT));
        batch_meta.insert("key_fingerprint", new.fingerprint().as_bytes());
        for (name, key) in
            STORE_KEYS.iter().zip([&self.dedupe_key, &self.index_key, &self.secrets_key, &self.audit_key])
        {
            batch_meta.insert(*name, new.wrap(&key_context(name), key));
        }
        let mut batch_records = sled::Batch::default();
        let mut count = 0usize;
        for rec in self.records() {
            let mut rec = rec?;
            let dk = self.data_key(&rec)?;
            rec.wrapped_key = new.wrap(&record_key_context(&rec.id), &dk);
            batch_records.insert(rec.id.as_str(), rec.encode());
            count += 1;
        }
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
        self.master = new;
        self.audit(audit::Event::system("key.rotate", &format!("{count} data keys re-wrapped")))?;
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
const STORE_KEYS: [&str; 4] = ["dedupe_key", "index_key", "secrets_key", "audit_key"];

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

fn queue_key(rec: &Record) -> Vec<u8> {
    let ns = rec.received_at.timestamp_nanos_opt().unwrap_or(i64::MAX);
    let mut k = ns.to_be_bytes().to_vec();
    k.extend_from_slice(rec.id.as_str().as_bytes());
    k
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
