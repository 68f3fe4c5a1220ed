//! backup/: "if this machine burns down tonight, what do we have?" Copies of the data
//! directory kept elsewhere (another disk, an S3-compatible store far away), incremental,
//! ciphertext only, and lawful for seven years because they honour disposal.
//!
//! A backup is a manifest plus content-addressed objects at the destination:
//! - `chunks/<id>`: the sled metadata, tree by tree, cut into chunks of whole entries
//!   ([`chunks`]) and sealed with the backup key; taken under the store's snapshot gate, so
//!   consistent (every change whole, with its audit entry) while `serve` keeps running;
//! - `blobs/<address>`: the sealed page blobs exactly as stored (their address is the BLAKE3
//!   hash of their ciphertext, so they are checked by hashing);
//! - `index/<hash>`: the sealed search index files; `chunks/…` also holds `config.toml`;
//! - `manifests/<id>.json`: what the backup consists of, with the backup key wrapped by the
//!   master key and a keyed MAC over the whole.
//!
//! Objects already at the destination are not written again (the store remembers what each
//! destination holds), so an incremental backup writes the day's new blobs and the few
//! chunks that changed. Key material is never written: not the master key file, not the key
//! store (`hozon key escrow` copies those, on their own short retention).
//!
//! Why this honours disposal: every destroyed record's data key, in every backup ever taken,
//! is wrapped under an epoch key that disposal removed from the key store. A restore opens the
//! copy with today's key store, and [`Store::reconcile_restored`] turns every record whose key
//! no longer opens into a tombstone naming the run that destroyed it; the index is repaired to
//! match. The backup's bytes stay unreadable wherever they are.

pub mod chunkmap;
mod chunks;
pub mod dest;
mod metadata;
pub mod policy;
pub mod schedule;

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::path::{Path, PathBuf};
use std::time::Instant;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub use dest::Destination;

use crate::app::Hozon;
use crate::audit::{Checkpoint, Event};
use crate::auth::{Actor, Function, Level};
use crate::crypto::Key;
use crate::store::{Record, Store};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("バックアップ先 {dest}: {why}")]
    Destination { dest: String, why: String },
    #[error("バックアップ先 {dest} のオブジェクト {name}: {why}")]
    Object { dest: String, name: String, why: String },
    #[error("バックアップ {0} はありません")]
    NoSuchBackup(String),
    #[error("バックアップ {id}: {why}")]
    Manifest { id: String, why: String },
    #[error("バックアップ {id} のオブジェクト {name} が壊れています（{why}）")]
    Corrupt { id: String, name: String, why: String },
    #[error("復元先 {0} にはすでにデータがあります（空のディレクトリを指定してください）")]
    NotEmpty(String),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Store(#[from] crate::store::Error),
    #[error(transparent)]
    Hozon(#[from] Box<crate::error::Error>),
}

impl From<crate::error::Error> for Error {
    fn from(e: crate::error::Error) -> Self {
        Error::Hozon(Box::new(e))
    }
}

type Result<T, E = Error> = std::result::Result<T, E>;

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Io { path: path.to_owned(), source }
}

const FORMAT: u32 = 1;
/// The tree whose values are records (each names its blobs).
pub(crate) const RECORDS_TREE: &str = "records";

/// One index file of the backup.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct IndexFile {
    pub name: String,
    pub id: String,
    pub size: u64,
}

/// What a backup consists of. No personal data: ids, counts, hashes.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    pub format: u32,
    pub id: String,
    pub created_at: DateTime<Utc>,
    pub hozon_version: String,
    /// The master key that wraps `backup_key` (its public fingerprint).
    pub key_fingerprint: String,
    #[serde(with = "hex::serde")]
    pub backup_key: Vec<u8>,
    /// Chunk ids of each sled tree, in key order.
    pub trees: BTreeMap<String, Vec<String>>,
    pub config: Option<String>,
    pub index_files: Vec<IndexFile>,
    pub blobs: u64,
    pub records: u64,
    pub entries: u64,
    pub metadata_bytes: u64,
    /// Metadata entries read to take it (all of them unless only changes were cut again).
    /// Left out when 0, so manifests written before it existed keep their MAC.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub entries_read: u64,
    /// How long audited writes waited for the metadata copy.
    pub paused_ms: u64,
    pub audit_head: Checkpoint,
    /// Bytes and objects this backup wrote (the rest were at the destination already).
    pub bytes_written: u64,
    pub objects_written: u64,
    /// Bytes of everything the backup consists of.
    pub bytes_total: u64,
    pub seconds: f64,
    /// Keyed hash (backup key) over the manifest with this field empty.
    pub mac: String,
}

impl Manifest {
    fn compute_mac(&self, key: &Key) -> String {
        let mut m = self.clone();
        m.mac.clear();
        hex::encode(key.keyed_hash(&serde_json::to_vec(&m).expect("manifest serialises")))
    }

    /// Every id it names is 64 hex digits (so object names are well formed).
    fn ids_valid(&self) -> bool {
        let ok = |s: &str| s.len() == 64 && s.bytes().all(|c| c.is_ascii_hexdigit());
        self.trees.values().flatten().all(|c| ok(c))
            && self.config.as_deref().is_none_or(ok)
            && self.index_files.iter().all(|f| ok(&f.id) && !f.name.contains('/') && f.name != "." && f.name != "..")
    }

    /// The Japan date the backup was taken.
    pub fn taken_on(&self) -> chrono::NaiveDate {
        crate::jp::date_of(self.created_at)
    }
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

fn manifest_name(id: &str) -> String {
    format!("manifests/{id}.json")
}

fn chunk_name(id: &str) -> String {
    format!("chunks/{}/{id}", &id[..2])
}

fn blob_name(addr: &str) -> String {
    format!("blobs/{}/{addr}", &addr[..2])
}

fn index_name(id: &str) -> String {
    format!("index/{id}")
}

/// A new backup id: `B` + the Japan time it was taken, to the second.
fn new_id(at: DateTime<Utc>) -> String {
    format!("B{}", at.with_timezone(&crate::jp::jst()).format("%Y%m%d-%H%M%S"))
}

/// Who may take, list, check and prune backups: a records officer (retention=update) or the
/// operator at the server.
fn require(actor: &Actor) -> crate::error::Result<()> {
    Ok(actor.require(Function::Retention, Level::Update)?)
}

/// What `create` did, for the report.
#[derive(Debug, Clone)]
pub struct Created {
    pub manifest: Manifest,
}

/// Takes a backup of `h` to `dest`: consistent, incremental, ciphertext only. `full` ignores
/// the store's memory of what `dest` holds and lists the destination instead (after objects
/// there were lost, or a first backup to a destination used before).
pub fn create(
    h: &Hozon,
    actor: &Actor,
    dest: &Destination,
    full: bool,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<Created> {
    require(actor)?;
    let started = Instant::now();
    let store = &h.store;
    let created_at = Utc::now();
    let id = new_id(created_at);
    if dest.get(&manifest_name(&id))?.is_some() {
        return Err(Error::Manifest {
            id,
            why: "同じ時刻のバックアップがすでにあります。1秒おいてやり直してください".into(),
        });
    }
    let (key, wrapped) = store.backup_key()?;
    let dkey = dest.identity()?;
    // Every blob the snapshot names stays on disk until this backup has copied it.
    let _hold = store.hold_blob_deletions();
    let listed: Option<HashSet<String>> = if full { Some(dest.list("")?.into_iter().collect()) } else { None };
    // The chunks and index files `dest` holds, read into memory before the gate: looking each
    // one up in sled while the snapshot walks the metadata would evict one with the other
    // (at a million records the copy took minutes instead of seconds).
    let known_small: HashSet<String> = match &listed {
        Some(_) => HashSet::new(),
        None => ["chunks/", "index/"]
            .iter()
            .map(|prefix| store.backup_known_under(&dkey, prefix))
            .collect::<crate::store::Result<Vec<_>>>()?
            .into_iter()
            .flatten()
            .map(|r| r.map(|(name, _)| name))
            .collect::<crate::store::Result<_>>()?,
    };
    let known = |name: &str| -> bool {
        match &listed {
            Some(set) => set.contains(name),
            None => known_small.contains(name),
        }
    };
    // 1. The metadata, under the snapshot gate; new chunks are staged (sealed) on local disk.
    //    Only the chunks around keys changed since the last snapshot are cut again.
    progress("メタデータを複製しています");
    let staging = store.root().join("backup-staging").join(&id);
    std::fs::create_dir_all(&staging).map_err(io(&staging))?;
    let sequence = store.backup_sequence();
    let mut mismatch = None;
    let frozen = store.freeze();
    let changed = frozen.take_changes()?;
    let copied = match full {
        true => Ok(None),
        false => store.chunk_map(),
    }
    .map_err(Error::Store)
    .and_then(|saved| {
        let how = metadata::How { key: &key, known: &known, staging: &staging, all_blobs: full };
        match metadata::copy(&frozen, saved.as_ref(), &changed, &how) {
            // A map that does not match the trees (it should not happen): cut everything,
            // and say so in the audit log below.
            Err(Error::Store(crate::store::Error::Corrupt(why))) if saved.is_some() => {
                mismatch = Some(why);
                metadata::copy(&frozen, None, &changed, &how)
            }
            copied => copied,
        }
    });
    let paused = frozen.paused();
    drop(frozen);
    let mut copied = match copied {
        Ok(c) if c.legacy == 0 => c,
        failed => {
            store.give_back_changes(changed);
            let _ = std::fs::remove_dir_all(&staging);
            return Err(match failed {
                Err(e) => e,
                Ok(c) => Error::Manifest {
                    id,
                    why: format!(
                        "記録 {} 件の鍵が古い方式（マスター鍵で直接包む）のままです。廃棄後も読めるバックアップになるため取得しません。先に `hozon key rotate` で鍵を世代別に移してください",
                        c.legacy
                    ),
                },
            });
        }
    };
    if let Err(e) = store.save_chunk_map(copied.replace_map, std::mem::take(&mut copied.map_edits)) {
        store.give_back_changes(changed);
        let _ = std::fs::remove_dir_all(&staging);
        return Err(e.into());
    }
    drop(sequence);
    if let Some(why) = mismatch {
        eprintln!("hozon: {why}: メタデータ全体を読み直しました");
        store.audit(Event::new(actor.name(), "backup.map_mismatch", &why, "recovered"))?;
    }
    let mut staged = std::mem::take(&mut copied.staged);
    // The head as copied (the live one may have moved on since the gate opened).
    let audit_head: Checkpoint = match &copied.audit_head {
        Some(v) => serde_json::from_slice(v)
            .map_err(|e| Error::Manifest { id: id.clone(), why: format!("audit head: {e}") })?,
        None => Checkpoint { seq: 0, hash: String::new() },
    };
    // The configuration (it may hold S3 credentials: sealed like the metadata).
    let config_path = store.root().join("config.toml");
    let config = match std::fs::read(&config_path) {
        Ok(bytes) => {
            let cid = chunks::id(&key, &bytes);
            if !known(&chunk_name(&cid)) && !staged.contains(&cid) {
                let file = staging.join(&cid);
                std::fs::write(&file, chunks::seal(&key, &cid, &bytes)).map_err(io(&file))?;
                staged.push(cid.clone());
            }
            Some(cid)
        }
        Err(_) => None,
    };
    let mut bytes_written = 0u64;
    let counter = std::sync::atomic::AtomicU64::new(0);
    let count = |n: usize| {
        counter.fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
    };
    // 2. Staged chunks to the destination.
    progress(&format!("メタデータ {} チャンクを書き込んでいます", staged.len()));
    let names: Vec<String> = staged.iter().map(|c| chunk_name(c)).collect();
    let written = dest.put_many(
        names,
        |name| {
            let cid = name.rsplit('/').next().unwrap_or_default();
            let file = staging.join(cid);
            let b = std::fs::read(&file).map_err(io(&file))?;
            Ok(b)
        },
        &count,
    )?;
    bytes_written += staged.iter().map(|c| std::fs::metadata(staging.join(c)).map_or(0, |m| m.len())).sum::<u64>();
    let mut now_known: Vec<String> = written;
    let _ = std::fs::remove_dir_all(&staging);
    // 3. Blobs the destination lacks, as stored: those named by the records of chunks it
    //    lacked (a chunk it holds came with its blobs).
    progress("ページの差分を調べています");
    let mut wanted = copied.blobs_to_check;
    wanted.sort_unstable();
    wanted.dedup();
    let mut new_blobs = Vec::new();
    for a in &wanted {
        let name = blob_name(a);
        let there = match &listed {
            Some(set) => set.contains(&name),
            None => store.backup_is_known(&dkey, &name)?,
        };
        if !there {
            new_blobs.push(name);
        }
    }
    progress(&format!("ページ {} 件中 {} 件を書き込んでいます", copied.blobs, new_blobs.len()));
    let blob_sizes = std::sync::Mutex::new(std::collections::HashMap::<String, u64>::new());
    let gone = std::sync::Mutex::new(Vec::new());
    let read = |name: &str| -> Result<Vec<u8>> {
        let addr = name.rsplit('/').next().unwrap_or_default();
        match store.blob_bytes(addr) {
            Ok(b) => {
                blob_sizes.lock().expect("lock").insert(name.to_owned(), b.len() as u64);
                Ok(b)
            }
            // Deleted since it was listed (a record being destroyed): nothing to keep.
            Err(e) => {
                gone.lock().expect("lock").push(name.to_owned());
                Err(Error::Store(e))
            }
        }
    };
    let written = match dest.put_many(new_blobs.clone(), read, &count) {
        Ok(w) => w,
        Err(e) if gone.lock().expect("lock").is_empty() => return Err(e),
        // Retry without the vanished ones.
        Err(_) => {
            let gone: HashSet<String> = std::mem::take(&mut *gone.lock().expect("lock")).into_iter().collect();
            let rest: Vec<String> = new_blobs.into_iter().filter(|n| !gone.contains(n)).collect();
            dest.put_many(rest, read, &count)?
        }
    };
    let blob_sizes = blob_sizes.into_inner().expect("lock");
    let written_bytes: u64 = written.iter().filter_map(|n| blob_sizes.get(n)).sum();
    bytes_written += written_bytes;
    now_known.extend(written);
    // 4. The index files: a consistent set (read until nothing changed meanwhile).
    progress("検索索引を書き込んでいます");
    let mut index_new = Vec::new();
    let index_meta = copy_index_files(&store.root().join("index"), |iid, bytes| {
        if known(&index_name(iid)) || index_new.contains(&index_name(iid)) {
            return Ok(());
        }
        bytes_written += bytes.len() as u64;
        dest.put(&index_name(iid), bytes)?;
        index_new.push(index_name(iid));
        Ok(())
    })?;
    progress("目録を書き込んでいます");
    let mut manifest = Manifest {
        format: FORMAT,
        id: id.clone(),
        created_at,
        hozon_version: env!("CARGO_PKG_VERSION").to_owned(),
        key_fingerprint: store.key_fingerprint(),
        backup_key: wrapped,
        trees: copied.trees,
        config,
        index_files: index_meta,
        blobs: copied.blobs,
        records: copied.records,
        entries: copied.entries,
        metadata_bytes: copied.bytes,
        entries_read: copied.entries_read,
        paused_ms: paused.as_millis() as u64,
        audit_head,
        bytes_written,
        objects_written: counter.into_inner() + index_new.len() as u64,
        bytes_total: copied.bytes + copied.blob_bytes,
        seconds: 0.0,
        mac: String::new(),
    };
    manifest.bytes_total += manifest.index_files.iter().map(|f| f.size).sum::<u64>();
    manifest.seconds = started.elapsed().as_secs_f64();
    manifest.mac = manifest.compute_mac(&key);
    // Everything the manifest names is durable at the destination before the manifest is.
    dest.sync()?;
    dest.put_new(&manifest_name(&id), serde_json::to_vec_pretty(&manifest).expect("manifest serialises"))?;
    dest.sync()?;
    now_known.extend(index_new);
    store.backup_mark_known(&dkey, now_known.iter().map(|n| (n.as_str(), blob_sizes.get(n).copied())))?;
    store.audit(Event::new(
        actor.name(),
        "backup.create",
        &format!("{id} to {dkey} ({} records, {} objects written)", manifest.records, manifest.objects_written),
        "ok",
    ))?;
    Ok(Created { manifest })
}

/// Hands every index file to `each` (its hash and bytes, one file in memory at a time) and
/// returns the list; repeats when the index changed while it was read (a commit or a merge),
/// so the list is a set of files the index really was.
fn copy_index_files(dir: &Path, mut each: impl FnMut(&str, Vec<u8>) -> Result<()>) -> Result<Vec<IndexFile>> {
    let list = || -> Result<BTreeMap<String, (u64, Option<std::time::SystemTime>)>> {
        let mut out = BTreeMap::new();
        for e in std::fs::read_dir(dir).map_err(io(dir))?.flatten() {
            let m = e.metadata().map_err(io(&e.path()))?;
            if m.is_file() && !e.file_name().to_string_lossy().ends_with(".lock") {
                out.insert(e.file_name().to_string_lossy().into_owned(), (m.len(), m.modified().ok()));
            }
        }
        Ok(out)
    };
    for _ in 0..20 {
        let before = list()?;
        let mut files = Vec::with_capacity(before.len());
        let mut vanished = false;
        for name in before.keys() {
            match std::fs::read(dir.join(name)) {
                Ok(b) => {
                    let id = blake3::hash(&b).to_hex().to_string();
                    files.push(IndexFile { name: name.clone(), id: id.clone(), size: b.len() as u64 });
                    each(&id, b)?;
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => vanished = true,
                Err(e) => return Err(Error::Io { path: dir.join(name), source: e }),
            }
        }
        if !vanished && list()? == before {
            return Ok(files);
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    Err(Error::Io {
        path: dir.to_owned(),
        source: std::io::Error::other("the search index kept changing while it was copied"),
    })
}

/// Every backup at `dest`, oldest first (manifests that do not parse are listed as errors).
pub fn list(dest: &Destination) -> Result<Vec<Manifest>> {
    let mut out = Vec::new();
    for name in dest.list("manifests")? {
        if !name.ends_with(".json") {
            continue;
        }
        let Some(bytes) = dest.get(&name)? else { continue };
        let m: Manifest = serde_json::from_slice(&bytes)
            .map_err(|e| Error::Manifest { id: name.clone(), why: format!("目録を読めません: {e}") })?;
        out.push(m);
    }
    out.sort_by_key(|m| m.created_at);
    Ok(out)
}

/// A backup's manifest, with its key opened by the master key in `key_file` and its MAC
/// checked.
pub fn open_manifest(dest: &Destination, id: &str, key_file: &Path) -> Result<(Manifest, Key)> {
    let bytes = dest.get(&manifest_name(id))?.ok_or_else(|| Error::NoSuchBackup(id.to_owned()))?;
    let m: Manifest = serde_json::from_slice(&bytes)
        .map_err(|e| Error::Manifest { id: id.to_owned(), why: format!("目録を読めません: {e}") })?;
    if m.format != FORMAT {
        return Err(Error::Manifest {
            id: id.to_owned(), why: format!("形式 {} には対応していません", m.format)
        });
    }
    let key = crate::store::snapshot::unwrap_backup_key(key_file, &m.backup_key).map_err(|_| Error::Manifest {
        id: id.to_owned(),
        why: format!(
            "鍵ファイル {} では開けません（このバックアップはマスター鍵 {} で作成されています）",
            key_file.display(),
            m.key_fingerprint
        ),
    })?;
    if m.compute_mac(&key) != m.mac {
        return Err(Error::Corrupt {
            id: id.to_owned(),
            name: manifest_name(id),
            why: "目録が改ざんされています".into(),
        });
    }
    Ok((m, key))
}

/// What a restore (or a drill) found.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Restored {
    pub backup: String,
    pub records: u64,
    pub blobs: u64,
    pub index_files: u64,
    /// Records and case records destroyed since the backup: tombstones now.
    pub destroyed_since: usize,
    pub cases_destroyed_since: usize,
    pub index_removed: usize,
    pub index_added: usize,
    /// Objects missing or failing their check (named).
    pub bad_objects: Vec<String>,
    pub seconds: f64,
}

/// Restores backup `id` from `dest` into the empty directory `data`, opened with `key_file`
/// (and the key store beside it: today's, or an escrowed copy). In `drill` mode bad objects
/// are collected and reported instead of stopping the restore.
pub fn restore(
    dest: &Destination,
    id: &str,
    data: &Path,
    key_file: &Path,
    drill: bool,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<(Restored, Hozon)> {
    let started = Instant::now();
    let final_dir = data;
    if final_dir.exists() && std::fs::read_dir(final_dir).map_err(io(final_dir))?.next().is_some() {
        return Err(Error::NotEmpty(final_dir.display().to_string()));
    }
    let (m, key) = open_manifest(dest, id, key_file)?;
    // Built beside the target and renamed into place only when whole: a restore that fails
    // half-way never leaves a data directory that opens as if it were fine.
    let work = if drill {
        final_dir.to_owned()
    } else {
        let name = final_dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "data".into());
        final_dir.with_file_name(format!(".{name}.restoring"))
    };
    if !drill && work.exists() {
        std::fs::remove_dir_all(&work).map_err(io(&work))?;
    }
    let data = work.as_path();
    std::fs::create_dir_all(data).map_err(io(data))?;
    let mut out = Restored { backup: id.to_owned(), ..Default::default() };
    let mut bad = |name: &str, why: &str| -> Result<()> {
        if drill {
            out.bad_objects.push(format!("{name}（{why}）"));
            Ok(())
        } else {
            Err(Error::Corrupt { id: id.to_owned(), name: name.to_owned(), why: why.to_owned() })
        }
    };
    // 1. Metadata.
    progress("メタデータを復元しています");
    let mut importer = crate::store::snapshot::Importer::create(data)?;
    let mut blob_addrs: BTreeSet<String> = BTreeSet::new();
    // A window of chunks at a time (fetched concurrently, imported in order): a million
    // records' metadata is gigabytes, and it need not all be in memory at once.
    const WINDOW: usize = 256;
    for (tree, all_ids) in &m.trees {
        for ids in all_ids.chunks(WINDOW) {
            let names: Vec<String> = ids.iter().map(|c| chunk_name(c)).collect();
            let mut fetched: BTreeMap<String, Option<Vec<u8>>> = BTreeMap::new();
            dest.get_many(&names, |name, bytes| {
                fetched.insert(name.to_owned(), bytes);
                Ok(())
            })?;
            for (cid, name) in ids.iter().zip(&names) {
                let Some(sealed) = fetched.remove(name).flatten() else {
                    bad(name, "ありません")?;
                    continue;
                };
                let Some(plain) = chunks::open(&key, cid, &sealed) else {
                    bad(name, "検証に失敗しました")?;
                    continue;
                };
                let Some(entries) = chunks::entries(&plain) else {
                    bad(name, "中身を読めません")?;
                    continue;
                };
                for (k, v) in entries {
                    importer.put(tree, k, v)?;
                    if tree == RECORDS_TREE {
                        out.records += 1;
                        if let Ok(r) = Record::decode(v) {
                            blob_addrs.extend(r.blobs.iter().map(|b| b.addr.clone()));
                        }
                    }
                }
            }
        }
    }
    importer.finish()?;
    if let Some(cid) = &m.config {
        let name = chunk_name(cid);
        match dest.get(&name)?.and_then(|s| chunks::open(&key, cid, &s)) {
            Some(plain) => write_private(&data.join("config.toml"), &plain)?,
            None => bad(&name, "設定ファイルを開けません")?,
        }
    }
    // 2. Blobs, each checked against its address.
    progress(&format!("ページ {} 件を復元しています", blob_addrs.len()));
    let blob_dir = data.join("blobs");
    let names: Vec<String> = blob_addrs.iter().map(|a| blob_name(a)).collect();
    let mut problems: Vec<(String, &str)> = Vec::new();
    dest.get_many(&names, |name, bytes| {
        let addr = name.rsplit('/').next().unwrap_or_default();
        match bytes {
            None => problems.push((name.to_owned(), "ありません")),
            Some(b) if blake3::hash(&b).to_hex().as_str() != addr => {
                problems.push((name.to_owned(), "ハッシュが一致しません"))
            }
            Some(b) => {
                let dir = blob_dir.join(&addr[..2]);
                std::fs::create_dir_all(&dir).map_err(io(&dir))?;
                std::fs::write(dir.join(addr), &b).map_err(io(&dir))?;
                out.blobs += 1;
            }
        }
        Ok(())
    })?;
    for (name, why) in problems {
        bad(&name, why)?;
    }
    // 3. Index files, checked against their hashes.
    progress("検索索引を復元しています");
    let index_dir = data.join("index");
    std::fs::create_dir_all(&index_dir).map_err(io(&index_dir))?;
    let mut index_ok = true;
    for f in &m.index_files {
        let name = index_name(&f.id);
        match dest.get(&name)? {
            Some(b) if blake3::hash(&b).to_hex().as_str() == f.id => {
                std::fs::write(index_dir.join(&f.name), &b).map_err(io(&index_dir))?;
                out.index_files += 1;
            }
            Some(_) => {
                index_ok = false;
                bad(&name, "ハッシュが一致しません")?;
            }
            None => {
                index_ok = false;
                bad(&name, "ありません")?;
            }
        }
    }
    sync_tree(data)?;
    // 4. Today's keys decide what still exists.
    progress("廃棄済みの記録を照合しています");
    let who = "system:restore";
    {
        let store = Store::open(data, key_file)?;
        let rec = store.reconcile_restored(who)?;
        out.destroyed_since = rec.records.len();
        out.cases_destroyed_since = rec.cases.len();
    }
    // 5. The index: the copy's if today's keys open it, else rebuilt; then made to match.
    progress("検索索引を照合しています");
    let h = match index_ok.then(|| Hozon::open(data, key_file)) {
        Some(Ok(h)) => h,
        _ => {
            // Sealed under an index key a disposal has since retired (or damaged): rebuild.
            std::fs::remove_dir_all(&index_dir).map_err(io(&index_dir))?;
            std::fs::create_dir_all(&index_dir).map_err(io(&index_dir))?;
            Hozon::open(data, key_file)?
        }
    };
    let (removed, added) = h.repair_index(&Actor::job("restore"))?;
    out.index_removed = removed;
    out.index_added = added;
    h.store.audit(Event::new(
        who,
        "backup.restore",
        &format!("{id}: {} records, {} destroyed since", out.records, out.destroyed_since),
        "ok",
    ))?;
    if drill {
        out.seconds = started.elapsed().as_secs_f64();
        return Ok((out, h));
    }
    drop(h);
    if final_dir.exists() {
        std::fs::remove_dir(final_dir).map_err(io(final_dir))?;
    }
    std::fs::rename(data, final_dir).map_err(io(final_dir))?;
    let h = Hozon::open(final_dir, key_file)?;
    out.seconds = started.elapsed().as_secs_f64();
    Ok((out, h))
}

fn write_private(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut f =
        std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(path).map_err(io(path))?;
    std::io::Write::write_all(&mut f, bytes).map_err(io(path))?;
    f.sync_all().map_err(io(path))
}

/// Makes everything written under `root` durable (one `syncfs`-like pass: each file, then
/// each directory).
fn sync_tree(root: &Path) -> Result<()> {
    for e in walkdir::WalkDir::new(root).into_iter().filter_map(std::result::Result::ok) {
        let p = e.path();
        if let Ok(f) = std::fs::File::open(p) {
            let _ = f.sync_all();
        }
    }
    Ok(())
}

/// The restore drill's findings.
#[derive(Debug, Clone, Serialize)]
pub struct Drill {
    pub restored: Restored,
    pub records_checked: u64,
    pub unreadable: Vec<String>,
    pub index_docs: u64,
    pub stored_pages: u64,
    pub search_answers: bool,
    pub audit_entries: u64,
    pub audit_ok: bool,
    pub ok: bool,
}

/// `backup verify`: restores `id` into a scratch directory (with copies of the key file and
/// key store, so nothing of the live installation is touched), then checks that every kept
/// record decrypts, every blob matched its hash, the index answers for every stored page, and
/// the audit chain verifies. The scratch directory is removed afterwards.
pub fn drill(dest: &Destination, id: &str, key_file: &Path, progress: &(dyn Fn(&str) + Sync)) -> Result<Drill> {
    // A drill killed before it cleaned up left key copies behind: remove them first (each
    // running drill holds a lock in its directory, so only abandoned ones go).
    let tmp = std::env::temp_dir();
    for e in std::fs::read_dir(&tmp).map_err(io(&tmp))?.flatten() {
        if e.file_name().to_string_lossy().starts_with("hozon-drill-")
            && crate::store::try_lock(&e.path().join("lock")).is_some()
        {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
    let scratch = tempfile::Builder::new().prefix("hozon-drill-").tempdir().map_err(io(&tmp))?;
    let _running = crate::store::try_lock(&scratch.path().join("lock"))
        .ok_or_else(|| Error::Io { path: scratch.path().to_owned(), source: std::io::Error::other("cannot lock") })?;
    let keys = scratch.path().join("keys");
    std::fs::create_dir_all(&keys).map_err(io(&keys))?;
    let scratch_key = keys.join("master.key");
    for (from, to) in [
        (key_file.to_owned(), scratch_key.clone()),
        (crate::store::keystore_path(key_file), crate::store::keystore_path(&scratch_key)),
    ] {
        if from.exists() {
            std::fs::copy(&from, &to).map_err(io(&from))?;
        }
    }
    let data = scratch.path().join("data");
    let (restored, h) = restore(dest, id, &data, &scratch_key, true, progress)?;
    progress("復元した記録を検査しています");
    let operator = Actor::job("drill");
    let mut unreadable = Vec::new();
    let mut checked = 0u64;
    let mut stored_pages = 0u64;
    for r in h.store.records() {
        let r = r.map_err(crate::error::Error::from)?;
        if r.state != crate::store::RecordState::Stored {
            continue;
        }
        checked += 1;
        if r.kind == crate::store::RecordKind::Page {
            stored_pages += 1;
        }
        for b in &r.blobs {
            if let Err(e) = h.store.read_blob(&r, b.role) {
                unreadable.push(format!("{} {:?}: {e}", r.id, b.role));
            }
        }
    }
    let index_docs = h.index.num_docs();
    let search_answers =
        index_docs == stored_pages && h.search(&operator, &crate::app::SearchOptions::new("申請", 1)).is_ok();
    let audit = h.store.verify_audit(&[])?;
    let audit_ok = audit.is_ok();
    let audit_entries = audit.unwrap_or(0);
    let ok = restored.bad_objects.is_empty() && unreadable.is_empty() && search_answers && audit_ok;
    Ok(Drill {
        restored,
        records_checked: checked,
        unreadable,
        index_docs,
        stored_pages,
        search_answers,
        audit_entries,
        audit_ok,
        ok,
    })
}

/// What `prune` removed.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Pruned {
    pub expired: Vec<String>,
    pub kept: usize,
    pub objects_deleted: usize,
    pub seconds: f64,
}

/// Marks a prune in progress at the destination: a prune that failed after deleting
/// manifests leaves it, and the next prune sweeps even with nothing newly expired.
const PRUNE_PENDING: &str = "prune-pending";

/// Removes the backups the policy says have expired, oldest first (each audited), then every
/// object no remaining backup refers to. Refuses when the destination holds a manifest this
/// installation cannot verify (another installation's, or altered): its objects cannot be
/// told apart, so nothing is deleted.
pub fn prune(
    h: &Hozon,
    actor: &Actor,
    dest: &Destination,
    policy: &policy::BackupPolicy,
    today: chrono::NaiveDate,
) -> Result<Pruned> {
    require(actor)?;
    let started = Instant::now();
    let key = h.store.backup_key()?.0;
    let all = list(dest)?;
    if let Some(foreign) = all.iter().find(|m| m.compute_mac(&key) != m.mac || !m.ids_valid()) {
        return Err(Error::Manifest {
            id: foreign.id.clone(),
            why: "この設置の鍵で検証できない目録があります（別の設置と保存先を共有しているか、改ざん）。保存先（接頭辞）を分けてください。何も削除していません".into(),
        });
    }
    let expired = policy.expired(&all, today);
    let pending = dest.get(PRUNE_PENDING)?.is_some();
    let mut out = Pruned::default();
    let gone: HashSet<&str> = expired.iter().map(|m| m.id.as_str()).collect();
    let remaining: Vec<&Manifest> = all.iter().filter(|m| !gone.contains(m.id.as_str())).collect();
    out.kept = remaining.len();
    if expired.is_empty() && !pending {
        out.seconds = started.elapsed().as_secs_f64();
        return Ok(out);
    }
    // What the remaining backups need, worked out before anything is deleted.
    let referenced = referenced_objects(dest, &key, &remaining)?;
    dest.put(PRUNE_PENDING, b"1".to_vec())?;
    for m in &expired {
        dest.delete(&manifest_name(&m.id))?;
        h.store.audit(Event::new(
            actor.name(),
            "backup.expire",
            &format!("{} taken {} (kept {} years)", m.id, m.taken_on(), policy.years),
            "ok",
        ))?;
        out.expired.push(m.id.clone());
    }
    let mut deleted = Vec::new();
    for prefix in ["chunks", "blobs", "index"] {
        for name in dest.list(prefix)? {
            if !referenced.contains(&name) {
                dest.delete(&name)?;
                deleted.push(name);
            }
        }
    }
    h.store.backup_forget(&dest.identity()?, deleted.iter().map(String::as_str))?;
    dest.delete(PRUNE_PENDING)?;
    out.objects_deleted = deleted.len();
    out.seconds = started.elapsed().as_secs_f64();
    Ok(out)
}

/// Every object the given backups need: their chunks, index files and config, and the blobs
/// their records name (read from each distinct records chunk once).
fn referenced_objects(dest: &Destination, key: &Key, manifests: &[&Manifest]) -> Result<HashSet<String>> {
    let mut out = HashSet::new();
    let mut record_chunks = BTreeSet::new();
    for m in manifests {
        for (tree, ids) in &m.trees {
            for c in ids {
                out.insert(chunk_name(c));
                if tree == RECORDS_TREE {
                    record_chunks.insert(c.clone());
                }
            }
        }
        out.extend(m.config.iter().map(|c| chunk_name(c)));
        out.extend(m.index_files.iter().map(|f| index_name(&f.id)));
    }
    let names: Vec<String> = record_chunks.iter().map(|c| chunk_name(c)).collect();
    dest.get_many(&names, |name, bytes| {
        let cid = name.rsplit('/').next().unwrap_or_default();
        // A missing or bad chunk cannot name blobs; keep everything rather than guess.
        let plain = bytes.and_then(|b| chunks::open(key, cid, &b)).ok_or_else(|| Error::Corrupt {
            id: "prune".into(),
            name: name.to_owned(),
            why: "参照を確かめられないため削除を中止しました".into(),
        })?;
        let bad = |why: &str| Error::Corrupt { id: "prune".into(), name: name.to_owned(), why: why.to_owned() };
        for (_, v) in chunks::entries(&plain).ok_or_else(|| bad("中身を読めないため削除を中止しました"))?
        {
            let r = Record::decode(v).map_err(|_| bad("記録を読めないため削除を中止しました"))?;
            out.extend(r.blobs.iter().map(|b| blob_name(&b.addr)));
        }
        Ok(())
    })?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A manifest written before a field was added keeps its MAC when read by this version.
    #[test]
    fn a_manifest_from_before_entries_read_still_verifies() {
        let key = Key::generate();
        let mut m = Manifest {
            format: FORMAT,
            id: "20260101-000000".into(),
            created_at: Utc::now(),
            hozon_version: "0.1.0".into(),
            key_fingerprint: "f".into(),
            backup_key: vec![1, 2],
            trees: BTreeMap::from([("records".into(), vec!["ab".repeat(32)])]),
            config: None,
            index_files: vec![],
            blobs: 1,
            records: 1,
            entries: 1,
            metadata_bytes: 10,
            entries_read: 0,
            paused_ms: 0,
            audit_head: Checkpoint { seq: 0, hash: String::new() },
            bytes_written: 0,
            objects_written: 0,
            bytes_total: 0,
            seconds: 0.0,
            mac: String::new(),
        };
        m.mac = m.compute_mac(&key);
        let old_json = serde_json::to_string(&m).unwrap();
        assert!(!old_json.contains("entries_read"), "{old_json}");
        let read: Manifest = serde_json::from_str(&old_json).unwrap();
        assert_eq!(read.compute_mac(&key), m.mac);
        // A new one names the figure and its MAC covers it.
        m.entries_read = 5;
        m.mac = m.compute_mac(&key);
        let mut read: Manifest = serde_json::from_str(&serde_json::to_string(&m).unwrap()).unwrap();
        assert_eq!(read.compute_mac(&key), m.mac);
        read.entries_read = 6;
        assert_ne!(read.compute_mac(&key), m.mac);
    }
}
