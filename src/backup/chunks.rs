//! The metadata snapshot as content-addressed chunks.
//!
//! Each sled tree is cut into chunks of whole entries (`u32 key length ‖ key ‖ u32 value
//! length ‖ value`, repeated). A chunk ends after an entry whose key hashes to a boundary (one
//! key in 16, once the chunk holds 4 KiB), or at 256 KiB. Boundaries depend on the keys alone,
//! so a new record changes only the chunk it falls in: an incremental backup writes the few
//! chunks that changed, and every unchanged one is already at the destination.
//!
//! A chunk's id is the backup key's keyed hash of its plaintext (equal chunks, one object;
//! nothing about the content shows); it is sealed convergently with its id as context, so
//! an object swapped for another fails to open.

use crate::crypto::Key;

const MIN: usize = 4 * 1024;
const MAX: usize = 256 * 1024;

/// Cuts one tree's entries into chunks.
#[derive(Default)]
pub struct Chunker {
    buf: Vec<u8>,
}

impl Chunker {
    /// Adds an entry; returns a finished chunk when this entry ends one.
    pub fn push(&mut self, key: &[u8], value: &[u8]) -> Option<Vec<u8>> {
        self.buf.extend_from_slice(&(key.len() as u32).to_be_bytes());
        self.buf.extend_from_slice(key);
        self.buf.extend_from_slice(&(value.len() as u32).to_be_bytes());
        self.buf.extend_from_slice(value);
        let boundary = blake3::hash(key).as_bytes()[0] < 16;
        if (self.buf.len() >= MIN && boundary) || self.buf.len() >= MAX {
            Some(std::mem::take(&mut self.buf))
        } else {
            None
        }
    }

    /// The last, partial chunk (if any).
    pub fn finish(self) -> Option<Vec<u8>> {
        (!self.buf.is_empty()).then_some(self.buf)
    }
}

/// The entries of a chunk; `None` if it is malformed.
pub fn entries(chunk: &[u8]) -> Option<Vec<(&[u8], &[u8])>> {
    fn take<'a>(rest: &mut &'a [u8]) -> Option<&'a [u8]> {
        let n = u32::from_be_bytes(rest.get(..4)?.try_into().ok()?) as usize;
        let part = rest.get(4..4 + n)?;
        *rest = &rest[4 + n..];
        Some(part)
    }
    let mut out = Vec::new();
    let mut rest = chunk;
    while !rest.is_empty() {
        let k = take(&mut rest)?;
        let v = take(&mut rest)?;
        out.push((k, v));
    }
    Some(out)
}

/// A chunk's id: the backup key's keyed hash of its plaintext.
pub fn id(key: &Key, chunk: &[u8]) -> String {
    hex::encode(key.keyed_hash(chunk))
}

pub fn seal(key: &Key, id: &str, chunk: &[u8]) -> Vec<u8> {
    key.seal_convergent(id.as_bytes(), chunk)
}

/// Opens a fetched chunk and checks it is the one its id names.
pub fn open(key: &Key, id: &str, sealed: &[u8]) -> Option<Vec<u8>> {
    let plain = key.open(id.as_bytes(), sealed).ok()?;
    (self::id(key, &plain) == id).then_some(plain)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunk_all(keys: &[Vec<u8>]) -> Vec<Vec<u8>> {
        let mut c = Chunker::default();
        let mut out: Vec<Vec<u8>> = keys.iter().filter_map(|k| c.push(k, &[7u8; 300])).collect();
        out.extend(c.finish());
        out
    }

    #[test]
    fn an_insert_changes_few_chunks_and_entries_roundtrip() {
        let mut keys: Vec<Vec<u8>> =
            (0..20_000u32).map(|i| blake3::hash(&i.to_be_bytes()).as_bytes().to_vec()).collect();
        keys.sort();
        let before = chunk_all(&keys);
        assert!(before.len() > 100, "{} chunks", before.len());
        let total: usize = before.iter().map(|c| entries(c).unwrap().len()).sum();
        assert_eq!(total, keys.len());
        // Ten new keys spread through the tree.
        let mut more = keys.clone();
        more.extend((0..10u32).map(|i| blake3::hash(format!("new {i}").as_bytes()).as_bytes().to_vec()));
        more.sort();
        let after = chunk_all(&more);
        let old: std::collections::HashSet<&Vec<u8>> = before.iter().collect();
        let changed = after.iter().filter(|c| !old.contains(c)).count();
        assert!(changed <= 30, "{changed} of {} chunks changed for 10 inserts", after.len());
    }

    #[test]
    fn a_chunk_opens_only_under_its_own_id() {
        let k = Key::generate();
        let chunk = b"\0\0\0\x01k\0\0\0\x01v".to_vec();
        let id = id(&k, &chunk);
        let sealed = seal(&k, &id, &chunk);
        assert_eq!(open(&k, &id, &sealed).unwrap(), chunk);
        let other = super::id(&k, b"x");
        assert!(open(&k, &other, &sealed).is_none());
        let mut bad = sealed.clone();
        bad[40] ^= 1;
        assert!(open(&k, &id, &bad).is_none());
        assert_eq!(entries(&chunk).unwrap(), vec![(&b"k"[..], &b"v"[..])]);
        assert!(entries(b"\0\0\0\x09k").is_none());
    }
}
