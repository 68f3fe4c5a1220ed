//! Content-addressed ciphertext blobs on disk.
//!
//! Contract: a blob is written once and never changed. Its address is the BLAKE3 hash of its
//! *ciphertext* (hashing plaintext would let anyone holding a copy of a scan confirm it is
//! stored). `put` returns only after the blob is durable: written to `tmp/`, fsynced, renamed
//! into place, and the directory fsynced. A crash leaves either no blob or a whole one; a whole
//! blob that no record points to is an orphan, unreadable without its (never persisted) key,
//! and `gc_orphans` removes it.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use rand::RngCore;

use crate::store::{Error, keyfile::sync_parent};

#[derive(Debug, Clone)]
pub struct BlobStore {
    root: PathBuf,
}

impl BlobStore {
    pub(crate) fn open(root: PathBuf) -> Result<BlobStore, Error> {
        let tmp = root.join("tmp");
        fs::create_dir_all(&tmp).map_err(|e| Error::io(&tmp, e))?;
        // Leftovers in tmp/ are from a crash mid-write: sealed, partial, and unreferenced.
        if let Ok(entries) = fs::read_dir(&tmp) {
            for e in entries.flatten() {
                let _ = fs::remove_file(e.path());
            }
        }
        Ok(BlobStore { root })
    }

    fn path_of(&self, addr: &str) -> PathBuf {
        self.root.join(&addr[..2]).join(addr)
    }

    /// Stores already-sealed bytes durably and returns their address.
    pub(crate) fn put(&self, sealed: &[u8]) -> Result<String, Error> {
        let addr = blake3::hash(sealed).to_hex().to_string();
        let dest = self.path_of(&addr);
        if dest.exists() {
            return Ok(addr);
        }
        let mut tmp_name = [0u8; 12];
        rand::rngs::OsRng.fill_bytes(&mut tmp_name);
        let tmp = self.root.join("tmp").join(hex::encode(tmp_name));
        let write = || -> std::io::Result<()> {
            let mut f = fs::File::create(&tmp)?;
            f.write_all(sealed)?;
            f.sync_all()
        };
        write().map_err(|e| Error::io(&tmp, e))?;
        let dir = dest.parent().expect("blob path has a parent");
        fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        fs::rename(&tmp, &dest).map_err(|e| Error::io(&dest, e))?;
        sync_parent(&dest)?;
        Ok(addr)
    }

    /// Like `put`, without the per-file fsync: the caller must call [`BlobStore::sync_all`]
    /// before anything refers to the blob.
    pub(crate) fn put_unsynced(&self, sealed: &[u8]) -> Result<String, Error> {
        let addr = blake3::hash(sealed).to_hex().to_string();
        let dest = self.path_of(&addr);
        let dir = dest.parent().expect("blob path has a parent");
        fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        // Still written under a temporary name and renamed, so a crash never leaves a partial
        // file at a content address.
        let mut tmp_name = [0u8; 12];
        rand::rngs::OsRng.fill_bytes(&mut tmp_name);
        let tmp = self.root.join("tmp").join(hex::encode(tmp_name));
        fs::write(&tmp, sealed).map_err(|e| Error::io(&tmp, e))?;
        fs::rename(&tmp, &dest).map_err(|e| Error::io(&dest, e))?;
        Ok(addr)
    }

    /// Flushes every pending write of the filesystem holding the blobs (`syncfs`).
    pub(crate) fn sync_all(&self) -> Result<(), Error> {
        let d = fs::File::open(&self.root).map_err(|e| Error::io(&self.root, e))?;
        use std::os::fd::AsRawFd;
        // SAFETY: syncfs takes a file descriptor we own for the duration of the call.
        let rc = unsafe { libc::syncfs(d.as_raw_fd()) };
        if rc != 0 {
            return Err(Error::io(&self.root, std::io::Error::last_os_error()));
        }
        Ok(())
    }

    pub(crate) fn get(&self, addr: &str) -> Result<Vec<u8>, Error> {
        if addr.len() < 3 || !addr.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(Error::Corrupt(format!("bad blob address {addr:?}")));
        }
        let p = self.path_of(addr);
        let bytes = fs::read(&p).map_err(|e| Error::io(&p, e))?;
        if blake3::hash(&bytes).to_hex().as_str() != addr {
            return Err(Error::Corrupt(format!("blob {addr} does not match its address")));
        }
        Ok(bytes)
    }

    pub(crate) fn remove(&self, addr: &str) -> Result<(), Error> {
        let p = self.path_of(addr);
        match fs::remove_file(&p) {
            Ok(()) => sync_parent(&p),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::io(&p, e)),
        }
    }

    /// Unlinks a blob without syncing its directory (see [`BlobStore::sync_all`]).
    pub(crate) fn remove_unsynced(&self, addr: &str) -> Result<(), Error> {
        let p = self.path_of(addr);
        match fs::remove_file(&p) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::io(&p, e)),
        }
    }

    /// Every blob address on disk.
    /// Every blob address with the time its file was last written.
    /// Every blob's address, without a `stat` each (a million-page store is listed by
    /// reading its directories only).
    pub(crate) fn addresses(&self) -> Result<Vec<String>, Error> {
        self.walk(|entry| Some(entry.file_name().to_string_lossy().into_owned()))
    }

    /// A blob's size on disk (0 if it is gone).
    pub(crate) fn size(&self, addr: &str) -> u64 {
        fs::metadata(self.path_of(addr)).map_or(0, |m| m.len())
    }

    fn walk<T>(&self, mut each: impl FnMut(&walkdir::DirEntry) -> Option<T>) -> Result<Vec<T>, Error> {
        let mut out = Vec::new();
        for entry in walkdir::WalkDir::new(&self.root).min_depth(2).max_depth(2) {
            let entry = entry.map_err(|e| Error::Corrupt(format!("walking blobs: {e}")))?;
            let parent_is_tmp = entry.path().parent().and_then(Path::file_name) == Some("tmp".as_ref());
            if entry.file_type().is_file() && !parent_is_tmp {
                out.extend(each(&entry));
            }
        }
        Ok(out)
    }

    pub(crate) fn list(&self) -> Result<Vec<(String, std::time::SystemTime)>, Error> {
        self.walk(|entry| {
            let modified =
                entry.metadata().ok().and_then(|m| m.modified().ok()).unwrap_or_else(std::time::SystemTime::now);
            Some((entry.file_name().to_string_lossy().into_owned(), modified))
        })
    }
}
