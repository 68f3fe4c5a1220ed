//! The chunk map: where the last snapshot cut each tree, so the next backup re-cuts only the
//! parts that changed.
//!
//! A full walk of the metadata reads every entry of every tree: minutes at a million records,
//! most of an incremental backup's time although a day changes a fraction of a percent.
//! Chunk boundaries depend only on the entries since the chunk began ([`chunks::Chunker`]), so
//! a chunk whose key range holds no changed key comes out the same, and so does everything
//! after a point where the new cut reaches an old boundary that starts an unchanged chunk.
//! [`recut`] therefore reads from the start of each chunk a changed key falls in, until the cut
//! lines up with the old one again, and keeps the old chunks in between.
//!
//! The changed keys come from the store ([`crate::store::changes`]); the map is
//! trusted only when the store vouches that every change since it was saved was seen.

use std::collections::{BTreeMap, BTreeSet};

use serde::Deserialize;

use super::chunks::Chunker;
use crate::store::BlobRef;

/// One chunk of the map (keyed by its first key in [`TreeMap`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Info {
    /// The chunk's id (hex), as the manifest names it.
    pub id: String,
    /// Its last key, to read it again for a destination that lacks it.
    pub last: Vec<u8>,
    pub entries: u64,
    pub bytes: u64,
    /// Page blobs its records name, and their bytes (records tree only).
    pub blobs: u64,
    pub blob_bytes: u64,
}

const FIXED: usize = 32 + 4 * 8;

impl Info {
    pub fn encode(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(FIXED + self.last.len());
        v.extend_from_slice(&hex::decode(&self.id).expect("chunk ids are hex"));
        for n in [self.entries, self.bytes, self.blobs, self.blob_bytes] {
            v.extend_from_slice(&n.to_be_bytes());
        }
        v.extend_from_slice(&self.last);
        v
    }

    pub fn decode(v: &[u8]) -> Option<Info> {
        if v.len() < FIXED {
            return None;
        }
        let n = |i: usize| u64::from_be_bytes(v[32 + 8 * i..40 + 8 * i].try_into().expect("8 bytes"));
        Some(Info {
            id: hex::encode(&v[..32]),
            entries: n(0),
            bytes: n(1),
            blobs: n(2),
            blob_bytes: n(3),
            last: v[FIXED..].to_vec(),
        })
    }
}

/// A tree's chunks by first key.
pub type TreeMap = BTreeMap<Vec<u8>, Info>;

/// A chunk cut from the live tree.
#[derive(Debug)]
pub struct Cut {
    pub first: Vec<u8>,
    pub last: Vec<u8>,
    pub entries: u64,
    /// The entries as [`super::chunks`] lays them out.
    pub data: Vec<u8>,
}

/// What [`recut`] hands on, in key order.
#[derive(Debug)]
pub enum Piece<'a> {
    /// A chunk cut now (it may equal an old one: a changed key may have changed back).
    New(Cut),
    /// An old chunk, unchanged.
    Kept(&'a [u8], &'a Info),
}

/// Cuts the entries of `read(from)` (a tree read in key order from `from`, or from its start
/// for `None`) into chunks, reading only around `changed` when `old` is the cut of the tree
/// before those changes. With an empty `old` the whole tree is cut.
pub fn recut<'a, K, V, E, I>(
    old: &'a TreeMap,
    changed: &BTreeSet<Vec<u8>>,
    mut read: impl FnMut(Option<&[u8]>) -> I,
    mut out: impl FnMut(Piece<'a>) -> Result<(), E>,
) -> Result<(), E>
where
    K: AsRef<[u8]>,
    V: AsRef<[u8]>,
    I: Iterator<Item = Result<(K, V), E>>,
{
    // The first keys of the chunks a changed key falls in (a key before every chunk falls in
    // the first, read from the top of the tree).
    let mut starts: BTreeSet<&'a [u8]> = BTreeSet::new();
    let mut from_top = old.is_empty();
    for k in changed {
        match old.range::<[u8], _>((std::ops::Bound::Unbounded, std::ops::Bound::Included(k.as_slice()))).next_back() {
            Some((f, _)) => starts.insert(f.as_slice()),
            None => {
                from_top = true;
                continue;
            }
        };
    }
    let first_old = old.keys().next().map(Vec::as_slice);
    if from_top && let Some(f) = first_old {
        starts.insert(f);
    }
    // Where the cut stands: everything before it is handed on.
    let mut cursor: Option<Vec<u8>> = None;
    for (i, s) in starts.iter().copied().enumerate() {
        if cursor.as_deref().is_some_and(|c| s < c) {
            continue;
        }
        for (f, info) in kept(old, cursor.as_deref(), Some(s)) {
            out(Piece::Kept(f, info))?;
        }
        let from = if from_top && i == 0 { None } else { Some(s) };
        match cut_run(old, &starts, read(from), &mut out)? {
            Some(realigned) => cursor = Some(realigned),
            None => return Ok(()),
        }
    }
    if old.is_empty() {
        // No old cut at all: one run over the whole tree.
        cut_run(old, &starts, read(None), &mut out)?;
        return Ok(());
    }
    for (f, info) in kept(old, cursor.as_deref(), None) {
        out(Piece::Kept(f, info))?;
    }
    Ok(())
}

fn kept<'a>(old: &'a TreeMap, from: Option<&[u8]>, to: Option<&[u8]>) -> impl Iterator<Item = (&'a [u8], &'a Info)> {
    use std::ops::Bound::{Excluded, Included, Unbounded};
    let lo = from.map_or(Unbounded, Included);
    let hi = to.map_or(Unbounded, Excluded);
    old.range::<[u8], _>((lo, hi)).map(|(f, i)| (f.as_slice(), i))
}

/// Cuts from the start of `entries` until a chunk ends right before an old, unchanged chunk
/// (returns that chunk's first key) or the tree ends (returns `None`).
fn cut_run<'a, K, V, E>(
    old: &TreeMap,
    starts: &BTreeSet<&[u8]>,
    entries: impl Iterator<Item = Result<(K, V), E>>,
    out: &mut impl FnMut(Piece<'a>) -> Result<(), E>,
) -> Result<Option<Vec<u8>>, E>
where
    K: AsRef<[u8]>,
    V: AsRef<[u8]>,
{
    let mut chunker = Chunker::default();
    let mut first: Option<Vec<u8>> = None;
    let mut last: Vec<u8> = Vec::new();
    let mut n = 0u64;
    for kv in entries {
        let (k, v) = kv?;
        let k = k.as_ref();
        if first.is_none() {
            if old.contains_key(k) && !starts.contains(k) {
                return Ok(Some(k.to_vec()));
            }
            first = Some(k.to_vec());
        }
        n += 1;
        if let Some(data) = chunker.push(k, v.as_ref()) {
            let first = first.take().expect("set above");
            out(Piece::New(Cut { first, last: k.to_vec(), entries: std::mem::take(&mut n), data }))?;
        } else {
            last.clear();
            last.extend_from_slice(k);
        }
    }
    if let (Some(first), Some(data)) = (first, chunker.finish()) {
        out(Piece::New(Cut { first, last, entries: n, data }))?;
    }
    Ok(None)
}

/// The blobs the records of a records-tree chunk name: how many and their bytes.
pub fn blob_totals(chunk: &[u8]) -> (u64, u64, Vec<String>) {
    #[derive(Deserialize)]
    struct Blobs {
        blobs: Vec<BlobRef>,
    }
    let mut n = 0;
    let mut bytes = 0;
    let mut addrs = Vec::new();
    for (_, v) in super::chunks::entries(chunk).unwrap_or_default() {
        if let Ok(r) = serde_json::from_slice::<Blobs>(v) {
            for b in r.blobs {
                n += 1;
                bytes += b.len;
                addrs.push(b.addr);
            }
        }
    }
    (n, bytes, addrs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::convert::Infallible;

    type Tree = BTreeMap<Vec<u8>, Vec<u8>>;

    /// The cut as (first key, chunk id), and how many entries were read.
    fn cut(old: &TreeMap, changed: &BTreeSet<Vec<u8>>, t: &Tree) -> (Vec<(Vec<u8>, String)>, usize) {
        let key = crate::crypto::Key::from_bytes(&[9; 32]).unwrap();
        let read = std::cell::Cell::new(0usize);
        let mut got = Vec::new();
        recut(
            old,
            changed,
            |from| {
                let lo = from.map_or(std::ops::Bound::Unbounded, |f| std::ops::Bound::Included(f.to_vec()));
                t.range((lo, std::ops::Bound::Unbounded))
                    .inspect(|_| read.set(read.get() + 1))
                    .map(|(k, v)| Ok::<_, Infallible>((k.clone(), v.clone())))
            },
            |p| {
                match p {
                    Piece::New(c) => got.push((c.first, super::super::chunks::id(&key, &c.data))),
                    Piece::Kept(f, i) => got.push((f.to_vec(), i.id.clone())),
                }
                Ok(())
            },
        )
        .unwrap();
        (got, read.get())
    }

    fn as_map(cut: &[(Vec<u8>, String)]) -> TreeMap {
        cut.iter()
            .map(|(f, id)| {
                (f.clone(), Info { id: id.clone(), last: vec![], entries: 0, bytes: 0, blobs: 0, blob_bytes: 0 })
            })
            .collect()
    }

    fn k(i: u32) -> Vec<u8> {
        blake3::hash(&i.to_be_bytes()).as_bytes()[..12].to_vec()
    }

    #[test]
    fn a_recut_equals_a_full_cut_whatever_changed() {
        let mut rng = 17u64;
        let mut next = move |m: u32| {
            rng = rng.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((rng >> 33) % m as u64) as u32
        };
        for round in 0..40 {
            let mut t: Tree = (0..3000).map(|i| (k(i), vec![(i % 251) as u8; 40 + (i % 97) as usize])).collect();
            let none = TreeMap::new();
            let (full, _) = cut(&none, &BTreeSet::new(), &t);
            let old = as_map(&full);
            assert!(old.len() > 20, "{} chunks", old.len());
            // Changes: inserts, updates, deletes (first keys included), keys before all others.
            let mut changed = BTreeSet::new();
            for _ in 0..(1 + round % 7) {
                let key = match next(4) {
                    0 => k(10_000 + next(100_000)),
                    1 => t.keys().nth(next(t.len() as u32) as usize).unwrap().clone(),
                    2 => old.keys().nth(next(old.len() as u32) as usize).unwrap().clone(),
                    _ => vec![0; 3],
                };
                match next(3) {
                    0 => {
                        t.remove(&key);
                    }
                    _ => {
                        t.insert(key.clone(), vec![next(255) as u8; 10 + next(3000) as usize]);
                    }
                }
                changed.insert(key);
            }
            let (again, read) = cut(&old, &changed, &t);
            let (fresh, _) = cut(&none, &BTreeSet::new(), &t);
            assert_eq!(again, fresh, "round {round}");
            assert!(read <= 250 * changed.len() && read < t.len(), "round {round}: read {read} of {}", t.len());
        }
    }

    #[test]
    fn nothing_changed_reads_nothing_and_keeps_every_chunk() {
        let t: Tree = (0..2000).map(|i| (k(i), vec![1; 100])).collect();
        let none = TreeMap::new();
        let (full, _) = cut(&none, &BTreeSet::new(), &t);
        let old = as_map(&full);
        let (again, read) = cut(&old, &BTreeSet::new(), &t);
        assert_eq!(again, full);
        assert_eq!(read, 0);
        // One change reads its chunk and stops where the cut lines up again.
        let mut t2 = t.clone();
        let key = t.keys().nth(1000).unwrap().clone();
        t2.insert(key.clone(), vec![2; 100]);
        let (again, read) = cut(&old, &BTreeSet::from([key]), &t2);
        assert_eq!(again, cut(&none, &BTreeSet::new(), &t2).0);
        assert_eq!(again.iter().filter(|c| !full.contains(c)).count(), 1);
        assert!(read > 0 && read < 200, "read {read}");
    }

    #[test]
    fn info_roundtrips() {
        let i = Info { id: "ab".repeat(32), last: b"last".to_vec(), entries: 3, bytes: 400, blobs: 2, blob_bytes: 9 };
        assert_eq!(Info::decode(&i.encode()), Some(i));
        assert_eq!(Info::decode(b"short"), None);
    }
}
