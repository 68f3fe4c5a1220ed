//! The metadata part of a backup: the sled trees as chunks, cut again only where keys changed
//! since the last snapshot ([`chunkmap`]), new chunks sealed into a staging directory.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::path::Path;

use super::chunkmap::{self, Info, Piece, TreeMap, blob_totals};
use super::{Error, RECORDS_TREE, Result, chunks, io};
use crate::crypto::Key;
use crate::store::changes::{Drained, SavedMap};
use crate::store::snapshot::Frozen;

/// What the metadata copy found and staged.
#[derive(Debug, Default)]
pub struct Copied {
    /// Chunk ids of each tree, in key order (the manifest's `trees`).
    pub trees: BTreeMap<String, Vec<String>>,
    /// Chunks sealed into the staging directory (the destination lacks them).
    pub staged: Vec<String>,
    /// Page blobs named by the records of staged chunks: the destination may lack them.
    pub blobs_to_check: Vec<String>,
    pub records: u64,
    pub entries: u64,
    pub bytes: u64,
    /// Blobs named by every record, and their bytes.
    pub blobs: u64,
    pub blob_bytes: u64,
    /// Records whose key is wrapped the old way (by the master key alone).
    pub legacy: u64,
    /// Entries read from sled to take the copy (all of them in a full cut).
    pub entries_read: u64,
    pub audit_head: Option<Vec<u8>>,
    /// The new chunk map, as edits over the saved one (or the whole of it when `replace`).
    pub map_edits: Vec<(String, Vec<u8>, Option<Vec<u8>>)>,
    pub replace_map: bool,
}

/// How to copy: the backup key, what the destination holds, where to stage.
pub struct How<'a> {
    pub key: &'a Key,
    /// Whether the destination holds an object (by name).
    pub known: &'a dyn Fn(&str) -> bool,
    pub staging: &'a Path,
    /// Name every record's blobs for checking, not only those of chunks being written: a full
    /// backup checks the destination itself (a blob may be lost while its chunk is there).
    pub all_blobs: bool,
}

/// Copies the metadata held by `frozen`. `saved` is the chunk map of the last snapshot (when
/// it can be trusted) and `changed` the keys changed since; without a map every tree is cut
/// whole.
pub fn copy(frozen: &Frozen<'_>, saved: Option<&SavedMap>, changed: &Drained, how: &How<'_>) -> Result<Copied> {
    let mut out = Copied { replace_map: saved.is_none(), ..Copied::default() };
    let no_changes = BTreeSet::new();
    let key = how.key;
    let mut stager = Stager { seen: HashSet::new(), known: how.known, key, staging: how.staging };
    let trees = frozen.trees();
    for tree in &trees {
        let old: TreeMap = match saved.and_then(|s| s.get(tree)) {
            Some(m) if !changed.untracked.contains(tree) => m
                .iter()
                .map(|(f, v)| {
                    let info = Info::decode(v).ok_or_else(|| Error::Store(corrupt_map(tree)))?;
                    Ok((f.clone(), info))
                })
                .collect::<Result<_>>()?,
            _ => TreeMap::new(),
        };
        let keys = changed.keys.get(tree).unwrap_or(&no_changes);
        let mut new_map = TreeMap::new();
        let records = tree == RECORDS_TREE;
        let read = |from: Option<&[u8]>| -> Box<dyn Iterator<Item = Result<(sled::IVec, sled::IVec)>>> {
            match frozen.read(tree, from) {
                Ok(it) => Box::new(it.map(|r| r.map_err(Error::Store))),
                Err(e) => Box::new(std::iter::once(Err(Error::Store(e)))),
            }
        };
        let mut pieces = |piece: Piece<'_>| -> Result<()> {
            match piece {
                Piece::New(cut) => {
                    out.entries_read += cut.entries;
                    let cid = chunks::id(key, &cut.data);
                    let (blobs, blob_bytes, addrs) = match records {
                        true => {
                            out.legacy += legacy_keys(&cut.data);
                            blob_totals(&cut.data)
                        }
                        false => (0, 0, Vec::new()),
                    };
                    let staged = stager.wants(&cid);
                    if staged {
                        stager.put(&mut out, &cid, &cut.data)?;
                    }
                    if staged || how.all_blobs {
                        out.blobs_to_check.extend(addrs);
                    }
                    let bytes = cut.data.len() as u64 - 8 * cut.entries;
                    let info = Info { id: cid, last: cut.last, entries: cut.entries, bytes, blobs, blob_bytes };
                    new_map.insert(cut.first, info);
                }
                Piece::Kept(first, info) => {
                    if stager.wants(&info.id) {
                        // The destination lacks an unchanged chunk (a new destination, or a
                        // backup that failed): read it again.
                        let data = read_again(frozen, tree, first, info, key)?;
                        out.entries_read += info.entries;
                        stager.put(&mut out, &info.id, &data)?;
                        if records {
                            out.blobs_to_check.extend(blob_totals(&data).2);
                        }
                    }
                    new_map.insert(first.to_vec(), info.clone());
                }
            }
            Ok(())
        };
        chunkmap::recut(&old, keys, read, &mut pieces)?;
        for info in new_map.values() {
            out.entries += info.entries;
            out.bytes += info.bytes;
            out.blobs += info.blobs;
            out.blob_bytes += info.blob_bytes;
            if tree == RECORDS_TREE {
                out.records += info.entries;
            }
        }
        out.trees.insert(tree.clone(), new_map.values().map(|i| i.id.clone()).collect());
        for (f, info) in &new_map {
            if out.replace_map || old.get(f) != Some(info) {
                out.map_edits.push((tree.clone(), f.clone(), Some(info.encode())));
            }
        }
        if !out.replace_map {
            let gone = old.keys().filter(|f| !new_map.contains_key(*f));
            out.map_edits.extend(gone.map(|f| (tree.clone(), f.clone(), None)));
        }
    }
    // Trees that are gone.
    if let Some(saved) = saved {
        for (tree, m) in saved.iter().filter(|(t, _)| !trees.contains(t)) {
            out.map_edits.extend(m.keys().map(|f| (tree.clone(), f.clone(), None)));
        }
    }
    out.audit_head = frozen.get("meta", b"audit_head")?.map(|v| v.to_vec());
    Ok(out)
}

/// Seals chunks the destination lacks into the staging directory, each once.
struct Stager<'a> {
    seen: HashSet<String>,
    known: &'a dyn Fn(&str) -> bool,
    key: &'a Key,
    staging: &'a Path,
}

impl Stager<'_> {
    fn wants(&self, cid: &str) -> bool {
        !self.seen.contains(cid) && !(self.known)(&super::chunk_name(cid))
    }

    fn put(&mut self, out: &mut Copied, cid: &str, data: &[u8]) -> Result<()> {
        self.seen.insert(cid.to_owned());
        let file = self.staging.join(cid);
        std::fs::write(&file, chunks::seal(self.key, cid, data)).map_err(io(&file))?;
        out.staged.push(cid.to_owned());
        Ok(())
    }
}

fn corrupt_map(tree: &str) -> crate::store::Error {
    crate::store::Error::Corrupt(format!("backup chunk map of tree {tree}"))
}

/// An unchanged chunk's entries, cut again (they must give the same chunk).
fn read_again(frozen: &Frozen<'_>, tree: &str, first: &[u8], info: &Info, key: &Key) -> Result<Vec<u8>> {
    let mut c = chunks::Chunker::default();
    let mut whole = None;
    for kv in frozen.read(tree, Some(first))? {
        let (k, v) = kv?;
        if k.as_ref() > info.last.as_slice() {
            break;
        }
        if let Some(done) = c.push(&k, &v) {
            whole = Some(done);
            break;
        }
    }
    match whole.or_else(|| c.finish()) {
        Some(data) if chunks::id(key, &data) == info.id => Ok(data),
        _ => Err(Error::Store(corrupt_map(tree))),
    }
}

/// Records (in a records-tree chunk) whose key is wrapped by the master key alone (a store
/// older than epochs): such a key would outlive disposal in the backup.
fn legacy_keys(chunk: &[u8]) -> u64 {
    let find = |hay: &[u8], needle: &[u8]| hay.windows(needle.len()).any(|w| w == needle);
    chunks::entries(chunk)
        .unwrap_or_default()
        .iter()
        .filter(|(_, v)| find(v, br#""key_epoch":null"#) && !find(v, br#""wrapped_key":"""#))
        .count() as u64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::Event;
    use crate::store::Store;

    fn ev() -> Event {
        Event::new("t", "test.write", "x", "ok")
    }

    fn put(store: &Store, i: u32, fill: u8) {
        let items: Vec<(String, String, Vec<u8>)> =
            vec![("case".into(), format!("{:08x}", i.wrapping_mul(2654435761)), vec![fill; 60 + (i % 90) as usize])];
        store.put_docs(&items, ev()).unwrap();
    }

    /// An incremental copy (map + changed keys) and a full cut of the same frozen state.
    fn both(store: &Store, staging: &Path, known: &dyn Fn(&str) -> bool) -> (Copied, Copied) {
        let key = Key::from_bytes(&[3; 32]).unwrap();
        let frozen = store.freeze();
        let changed = frozen.take_changes().unwrap();
        let saved = store.chunk_map().unwrap();
        let how = How { key: &key, known, staging, all_blobs: false };
        let inc = copy(&frozen, saved.as_ref(), &changed, &how).unwrap();
        let full = copy(&frozen, None, &Drained::default(), &how).unwrap();
        drop(frozen);
        store.save_chunk_map(inc.replace_map, inc.map_edits.clone()).unwrap();
        (inc, full)
    }

    #[test]
    fn an_incremental_copy_equals_a_full_cut_across_a_clean_close_but_not_after_a_crash() {
        let tmp = tempfile::tempdir().unwrap();
        let (data, key_file, staging) = (tmp.path().join("d"), tmp.path().join("k"), tmp.path().join("s"));
        std::fs::create_dir_all(&staging).unwrap();
        let all = |_: &str| true;
        let store = Store::init(&data, &key_file).unwrap();
        for i in 0..3000 {
            put(&store, i, 1);
        }
        let (first, _) = both(&store, &staging, &all);
        assert!(first.replace_map, "no map yet: a full cut");
        // A day's changes: updates, new keys, deletions.
        for i in (0..3000).step_by(211) {
            put(&store, i, 2);
        }
        for i in 5000..5010 {
            put(&store, i, 3);
        }
        store.delete_doc("case", &format!("{:08x}", 17u32.wrapping_mul(2654435761)), ev()).unwrap();
        let (inc, full) = both(&store, &staging, &all);
        assert!(!inc.replace_map);
        assert_eq!(inc.trees, full.trees);
        assert_eq!((inc.entries, inc.bytes), (full.entries, full.bytes));
        assert!(inc.entries_read * 3 < full.entries_read, "read {} of {}", inc.entries_read, full.entries_read);
        // A destination that holds nothing: unchanged chunks are read again and staged as well.
        let (inc, full) = both(&store, &staging, &|_| false);
        assert_eq!(inc.trees, full.trees);
        assert_eq!(inc.staged.len(), full.staged.len());

        // A map that does not match the trees is caught, not trusted (the caller cuts all).
        let mut wrong = store.chunk_map().unwrap().unwrap();
        let first = wrong.get_mut("docs").unwrap().values_mut().nth(3).unwrap();
        let mut info = Info::decode(first).unwrap();
        info.id = "00".repeat(32);
        *first = info.encode();
        let key = Key::from_bytes(&[3; 32]).unwrap();
        let frozen = store.freeze();
        let how = How { key: &key, known: &|_| false, staging: &staging, all_blobs: false };
        let got = copy(&frozen, Some(&wrong), &Drained::default(), &how);
        assert!(matches!(got, Err(Error::Store(crate::store::Error::Corrupt(_)))), "{got:?}");
        drop(frozen);

        // A clean close carries the changed keys over to the next process.
        put(&store, 9000, 4);
        drop(store);
        let store = Store::open(&data, &key_file).unwrap();
        assert!(store.chunk_map().unwrap().is_some(), "the map survives a clean close");
        put(&store, 9001, 4);
        let (inc, full) = both(&store, &staging, &all);
        assert_eq!(inc.trees, full.trees);
        assert!(inc.entries_read * 3 < full.entries_read);
        // Writes that change nothing (sled drops their notice) neither stall the watcher nor
        // hide later changes: more of them than sled's channel holds, then real ones.
        let nobody = crate::store::RecordId::from_fingerprint(&[7; 32]);
        for _ in 0..1500 {
            store.unpaired_remove(None, &nobody).unwrap();
        }
        put(&store, 9001, 4); // the same value again: only the audit entry and head change
        store.unpaired_put(None, &nobody, 1).unwrap();
        let (inc, full) = both(&store, &staging, &all);
        assert_eq!(inc.trees, full.trees, "a change after no-op writes was missed");
        assert!(inc.entries_read * 3 < full.entries_read);

        // A crash (the files as they are while the store runs): the map is not trusted.
        put(&store, 9002, 5);
        store.flush().unwrap();
        let copy_dir = tmp.path().join("crashed");
        for e in walkdir::WalkDir::new(&data) {
            let e = e.unwrap();
            let to = copy_dir.join(e.path().strip_prefix(&data).unwrap());
            if e.file_type().is_dir() {
                std::fs::create_dir_all(&to).unwrap();
            } else {
                std::fs::copy(e.path(), &to).unwrap();
            }
        }
        drop(store);
        let crashed = Store::open(&copy_dir, &key_file).unwrap();
        assert!(crashed.chunk_map().unwrap().is_none(), "a map whose changes were not all seen is used");
        let (inc, full) = both(&crashed, &staging, &all);
        assert!(inc.replace_map);
        assert_eq!(inc.trees, full.trees);
    }
}
