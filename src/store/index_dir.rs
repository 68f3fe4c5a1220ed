//! An encrypted tantivy [`Directory`]: the search index holds names, addresses and OCR text,
//! so every index file is sealed with the index key before it touches the disk.
//!
//! Format: a file is a sequence of blocks of [`BLOCK`] plaintext bytes, each sealed on its own
//! (XChaCha20-Poly1305, fresh nonce) with the file name, the block number and a "last block"
//! flag as associated data. So a block cannot be moved to another file or position, and a
//! file cut short at a block boundary fails to open (its new last block lacks the flag).
//! Readers decrypt only the blocks a query touches, through a bounded cache of plaintext
//! blocks (memory only, never disk): the index can be far larger than RAM, as it must be at
//! five years of archive.
//!
//! Contract (tantivy's, kept here):
//! - Files written through `open_write` are immutable once terminated; blocks are sealed as
//!   they fill into a temp file, which is fsynced and renamed at `terminate`, so a reader
//!   never sees a partial file.
//! - `atomic_write` (used for `meta.json`) is atomic the same way and fires the watchers.
//! - Durability: after `sync_directory` returns, renamed files survive a crash.
//! - Locks are OS advisory locks (`File::try_lock`), so a killed process never leaves a stale
//!   lock behind.

use std::fs;
use std::io::{self, Write};
use std::ops::Range;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rand::RngCore;
use tantivy::HasLen;
use tantivy::directory::error::{DeleteError, LockError, OpenReadError, OpenWriteError};
use tantivy::directory::{
    AntiCallToken, Directory, DirectoryLock, FileHandle, Lock, OwnedBytes, TerminatingWrite, WatchCallback,
    WatchCallbackList, WatchHandle, WritePtr,
};

use crate::crypto::{Key, SEAL_OVERHEAD};

/// Plaintext bytes per sealed block.
pub const BLOCK: usize = 64 * 1024;
const SEALED_BLOCK: usize = BLOCK + SEAL_OVERHEAD;

/// Default size of the plaintext block cache (`HOZON_INDEX_CACHE_MB` overrides).
const DEFAULT_CACHE_MB: u64 = 512;

/// Identifies one block of one file on disk: (inode, mtime in ns, block number). Index files
/// are immutable and never renamed over, so inode + mtime name exactly one content.
type BlockKey = (u64, i64, u32);

#[derive(Clone)]
struct BlockWeighter;

impl quick_cache::Weighter<BlockKey, Arc<[u8]>> for BlockWeighter {
    fn weight(&self, _key: &BlockKey, val: &Arc<[u8]>) -> u64 {
        val.len().max(1) as u64
    }
}

type BlockCache = quick_cache::sync::Cache<BlockKey, Arc<[u8]>, BlockWeighter>;

#[derive(Clone)]
pub struct EncryptedDirectory {
    inner: Arc<Inner>,
}

struct Inner {
    root: PathBuf,
    /// Newest first: files are written with the first; readers try each (two only while a
    /// rotation re-seals the files, and an old key stays in memory for files still open).
    keys: std::sync::RwLock<Vec<Key>>,
    cache: BlockCache,
    watchers: WatchCallbackList,
}

impl std::fmt::Debug for EncryptedDirectory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "EncryptedDirectory({})", self.inner.root.display())
    }
}

fn aad(path: &Path, block: u64, last: bool) -> Vec<u8> {
    let mut a = b"index-file:".to_vec();
    a.extend_from_slice(path.as_os_str().as_encoded_bytes());
    a.push(0);
    a.extend_from_slice(&block.to_le_bytes());
    a.push(u8::from(last));
    a
}

fn invalid(path: &Path, what: impl std::fmt::Display) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("index file {}: {what}", path.display()))
}

/// Plaintext length of a sealed file of `sealed_len` bytes, and its number of blocks.
fn plain_layout(path: &Path, sealed_len: u64) -> io::Result<(usize, u64)> {
    let sealed_len = usize::try_from(sealed_len).map_err(|_| invalid(path, "too large"))?;
    if sealed_len < SEAL_OVERHEAD {
        return Err(invalid(path, "shorter than one sealed block"));
    }
    let blocks = sealed_len.div_ceil(SEALED_BLOCK);
    let last_sealed = sealed_len - (blocks - 1) * SEALED_BLOCK;
    if last_sealed < SEAL_OVERHEAD {
        return Err(invalid(path, "last block cut short"));
    }
    Ok(((blocks - 1) * BLOCK + last_sealed - SEAL_OVERHEAD, blocks as u64))
}

impl EncryptedDirectory {
    pub(crate) fn open(root: PathBuf, keys: Vec<Key>) -> io::Result<EncryptedDirectory> {
        let cache_mb =
            std::env::var("HOZON_INDEX_CACHE_MB").ok().and_then(|v| v.parse().ok()).unwrap_or(DEFAULT_CACHE_MB);
        EncryptedDirectory::with_cache(root, keys, cache_mb << 20)
    }

    pub(crate) fn with_cache(root: PathBuf, keys: Vec<Key>, cache_bytes: u64) -> io::Result<EncryptedDirectory> {
        if keys.is_empty() {
            return Err(invalid(&root, "no index key"));
        }
        fs::create_dir_all(&root)?;
        for e in fs::read_dir(&root)?.flatten() {
            if e.file_name().to_string_lossy().ends_with(".tmp") {
                let _ = fs::remove_file(e.path());
            }
        }
        let blocks = (cache_bytes / BLOCK as u64).max(16) as usize;
        let cache = BlockCache::with_weighter(blocks, cache_bytes.max(16 * BLOCK as u64), BlockWeighter);
        Ok(EncryptedDirectory {
            inner: Arc::new(Inner {
                root,
                keys: std::sync::RwLock::new(keys),
                cache,
                watchers: WatchCallbackList::default(),
            }),
        })
    }

    fn temp_path(&self) -> PathBuf {
        let mut rnd = [0u8; 8];
        rand::rngs::OsRng.fill_bytes(&mut rnd);
        self.inner.root.join(format!("{}.tmp", hex::encode(rnd)))
    }

    fn open_sealed(&self, path: &Path) -> Result<SealedFile, OpenReadError> {
        let full = self.inner.root.join(path);
        let file = match fs::File::open(&full) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(OpenReadError::FileDoesNotExist(path.to_owned()));
            }
            Err(e) => return Err(OpenReadError::wrap_io_error(e, path.to_owned())),
        };
        let meta = file.metadata().map_err(|e| OpenReadError::wrap_io_error(e, path.to_owned()))?;
        let (len, blocks) =
            plain_layout(path, meta.len()).map_err(|e| OpenReadError::wrap_io_error(e, path.to_owned()))?;
        Ok(SealedFile {
            inner: self.inner.clone(),
            path: path.to_owned(),
            file,
            id: (meta.ino(), meta.mtime() * 1_000_000_000 + meta.mtime_nsec()),
            len,
            blocks,
        })
    }
}

/// A sealed index file opened for reading.
struct SealedFile {
    inner: Arc<Inner>,
    path: PathBuf,
    file: fs::File,
    id: (u64, i64),
    len: usize,
    blocks: u64,
}

impl std::fmt::Debug for SealedFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SealedFile({}, {} bytes)", self.path.display(), self.len)
    }
}

impl SealedFile {
    /// The plaintext of block `n`, decrypted from disk.
    fn decrypt_block(&self, n: u64) -> io::Result<Vec<u8>> {
        let last = n + 1 == self.blocks;
        let size = if last { self.len - n as usize * BLOCK + SEAL_OVERHEAD } else { SEALED_BLOCK };
        let mut sealed = vec![0u8; size];
        self.file.read_exact_at(&mut sealed, n * SEALED_BLOCK as u64)?;
        self.inner.open_block(&self.path, n, last, &sealed)
    }

    /// The plaintext of block `n`, from the cache or decrypted from disk.
    fn block(&self, n: u64) -> io::Result<Arc<[u8]>> {
        let key = (self.id.0, self.id.1, n as u32);
        self.inner.cache.get_or_insert_with(&key, || self.decrypt_block(n).map(Arc::from))
    }
}

impl HasLen for SealedFile {
    fn len(&self) -> usize {
        self.len
    }
}

impl FileHandle for SealedFile {
    fn read_bytes(&self, range: Range<usize>) -> io::Result<OwnedBytes> {
        if range.end > self.len || range.start > range.end {
            return Err(invalid(&self.path, format_args!("read {range:?} beyond {} bytes", self.len)));
        }
        if range.is_empty() {
            return Ok(OwnedBytes::empty());
        }
        let first = (range.start / BLOCK) as u64;
        let last = ((range.end - 1) / BLOCK) as u64;
        let base = first as usize * BLOCK;
        if first == last {
            let block = self.block(first)?;
            return Ok(OwnedBytes::new(block).slice(range.start - base..range.end - base));
        }
        let mut out = Vec::with_capacity(range.len());
        for n in first..=last {
            let block = self.block(n)?;
            let from = range.start.saturating_sub(n as usize * BLOCK).min(block.len());
            let to = (range.end - n as usize * BLOCK).min(block.len());
            out.extend_from_slice(&block[from..to]);
        }
        Ok(OwnedBytes::new(out))
    }
}

/// Seals blocks as they fill and writes them to a temp file; `terminate` seals the last block,
/// fsyncs and renames into place.
struct SealingWriter {
    key: Key,
    path: PathBuf,
    target: PathBuf,
    tmp: PathBuf,
    file: Option<io::BufWriter<fs::File>>,
    buf: Vec<u8>,
    block: u64,
}

impl SealingWriter {
    fn seal_block(&mut self, last: bool) -> io::Result<()> {
        let sealed = self.key.seal(&aad(&self.path, self.block, last), &self.buf);
        self.buf.clear();
        self.block += 1;
        self.file.as_mut().ok_or_else(|| invalid(&self.path, "written after terminate"))?.write_all(&sealed)
    }
}

impl Write for SealingWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let mut rest = data;
        while !rest.is_empty() {
            if self.buf.len() == BLOCK {
                self.seal_block(false)?;
            }
            let n = (BLOCK - self.buf.len()).min(rest.len());
            self.buf.extend_from_slice(&rest[..n]);
            rest = &rest[n..];
        }
        Ok(data.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl TerminatingWrite for SealingWriter {
    fn terminate_ref(&mut self, _: AntiCallToken) -> io::Result<()> {
        self.seal_block(true)?;
        let file = self.file.take().ok_or_else(|| invalid(&self.path, "terminated twice"))?;
        let file = file.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        fs::rename(&self.tmp, &self.target)?;
        // Lets a test kill a disposal between writing a deletion file and committing it.
        if self.path.extension().is_some_and(|e| e == "del") {
            crate::retention::run::failpoint("index.del_written");
        }
        Ok(())
    }
}

impl Drop for SealingWriter {
    fn drop(&mut self) {
        if self.file.is_some() {
            let _ = fs::remove_file(&self.tmp);
        }
    }
}

impl Inner {
    fn current_key(&self) -> Key {
        self.keys.read().expect("index keys lock")[0].clone()
    }

    /// Opens one sealed block with whichever key it was sealed under.
    fn open_block(&self, path: &Path, n: u64, last: bool, sealed: &[u8]) -> io::Result<Vec<u8>> {
        let ad = aad(path, n, last);
        let keys = self.keys.read().expect("index keys lock");
        let mut err = None;
        for k in keys.iter() {
            match k.open(&ad, sealed) {
                Ok(p) => return Ok(p),
                Err(e) => err = Some(e),
            }
        }
        Err(invalid(path, format_args!("block {n}: {}", err.expect("at least one key"))))
    }
}

impl EncryptedDirectory {
    /// Re-seals every index file under `new` (which becomes the key new files are written
    /// with), each through a temp file renamed over the old one. The caller holds the index
    /// writer, so no file is written meanwhile; readers keep working (files still open on the
    /// old inode are read with the old key, kept in memory only). Returns the files re-sealed.
    pub(crate) fn reseal_all(&self, new: Key) -> io::Result<usize> {
        {
            let mut keys = self.inner.keys.write().expect("index keys lock");
            if keys[0].expose() != new.expose() {
                keys.insert(0, new.clone());
            }
        }
        let mut n = 0;
        let mut names: Vec<PathBuf> = Vec::new();
        for e in fs::read_dir(&self.inner.root)? {
            let e = e?;
            let name = PathBuf::from(e.file_name());
            let s = name.to_string_lossy();
            // Lock files are empty and never sealed; temp files are a crashed writer's.
            if e.file_type()?.is_file() && !s.ends_with(".tmp") && !s.ends_with(".lock") && e.metadata()?.len() > 0 {
                names.push(name);
            }
        }
        for name in names {
            let f = match self.open_sealed(&name) {
                Ok(f) => f,
                Err(OpenReadError::FileDoesNotExist(_)) => continue,
                Err(e) => return Err(io::Error::other(e.to_string())),
            };
            // Already under the new key (a resumed rotation): nothing to do.
            let last = f.blocks == 1;
            let mut first = vec![0u8; if last { f.len + SEAL_OVERHEAD } else { SEALED_BLOCK }];
            f.file.read_exact_at(&mut first, 0)?;
            if new.open(&aad(&name, 0, last), &first).is_ok() {
                continue;
            }
            let mut w = self.writer(&name)?;
            for b in 0..f.blocks {
                w.write_all(&f.decrypt_block(b)?)?;
            }
            w.terminate()?;
            n += 1;
        }
        self.sync_directory()?;
        Ok(n)
    }

    /// Forgets every key but the newest (tests: the running process keeps an old key in memory
    /// for files tantivy still has open; only the key store forgets it).
    #[cfg(test)]
    pub(crate) fn drop_old_keys(&self) {
        self.inner.keys.write().expect("index keys lock").truncate(1);
    }

    fn writer(&self, path: &Path) -> io::Result<SealingWriter> {
        let tmp = self.temp_path();
        let file = io::BufWriter::with_capacity(SEALED_BLOCK, fs::File::create(&tmp)?);
        Ok(SealingWriter {
            key: self.inner.current_key(),
            path: path.to_owned(),
            target: self.inner.root.join(path),
            tmp,
            file: Some(file),
            buf: Vec::with_capacity(BLOCK),
            block: 0,
        })
    }
}

impl Directory for EncryptedDirectory {
    fn get_file_handle(&self, path: &Path) -> Result<Arc<dyn FileHandle>, OpenReadError> {
        Ok(Arc::new(self.open_sealed(path)?))
    }

    fn delete(&self, path: &Path) -> Result<(), DeleteError> {
        match fs::remove_file(self.inner.root.join(path)) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Err(DeleteError::FileDoesNotExist(path.to_owned())),
            Err(e) => Err(DeleteError::IoError { io_error: Arc::new(e), filepath: path.to_owned() }),
        }
    }

    fn exists(&self, path: &Path) -> Result<bool, OpenReadError> {
        Ok(self.inner.root.join(path).exists())
    }

    fn open_write(&self, path: &Path) -> Result<WritePtr, OpenWriteError> {
        let full = self.inner.root.join(path);
        if full.exists() {
            return Err(OpenWriteError::FileAlreadyExists(path.to_owned()));
        }
        // Reserve the name now, as tantivy expects `open_write` to create the file.
        fs::File::create(&full).map_err(|e| OpenWriteError::wrap_io_error(e, path.to_owned()))?;
        let w = self.writer(path).map_err(|e| OpenWriteError::wrap_io_error(e, path.to_owned()))?;
        Ok(io::BufWriter::new(Box::new(w)))
    }

    fn atomic_read(&self, path: &Path) -> Result<Vec<u8>, OpenReadError> {
        // Small files rewritten in place (meta.json): read around the cache, whose key assumes
        // immutable files.
        let f = self.open_sealed(path)?;
        let mut out = Vec::with_capacity(f.len);
        for n in 0..f.blocks {
            out.extend(f.decrypt_block(n).map_err(|e| OpenReadError::wrap_io_error(e, path.to_owned()))?);
        }
        Ok(out)
    }

    fn atomic_write(&self, path: &Path, data: &[u8]) -> io::Result<()> {
        let mut w = self.writer(path)?;
        w.write_all(data)?;
        w.terminate()?;
        self.sync_directory()?;
        if path == Path::new("meta.json") {
            drop(self.inner.watchers.broadcast());
        }
        Ok(())
    }

    fn sync_directory(&self) -> io::Result<()> {
        fs::File::open(&self.inner.root)?.sync_all()
    }

    fn acquire_lock(&self, lock: &Lock) -> Result<DirectoryLock, LockError> {
        let path = self.inner.root.join(&lock.filepath);
        let file = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| LockError::IoError(Arc::new(e)))?;
        let attempts = if lock.is_blocking { 100 } else { 1 };
        for i in 0..attempts {
            match file.try_lock() {
                Ok(()) => return Ok(DirectoryLock::from(Box::new(file))),
                Err(fs::TryLockError::WouldBlock) if i + 1 < attempts => {
                    std::thread::sleep(std::time::Duration::from_millis(100));
                }
                Err(fs::TryLockError::WouldBlock) => return Err(LockError::LockBusy),
                Err(fs::TryLockError::Error(e)) => return Err(LockError::IoError(Arc::new(e))),
            }
        }
        Err(LockError::LockBusy)
    }

    fn watch(&self, cb: WatchCallback) -> tantivy::Result<WatchHandle> {
        Ok(self.inner.watchers.subscribe(cb))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_on_disk_are_ciphertext_and_read_back() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = EncryptedDirectory::open(tmp.path().to_owned(), vec![Key::generate()]).unwrap();
        let mut w = dir.open_write(Path::new("seg.idx")).unwrap();
        w.write_all("潰瘍性大腸炎 plaintext-marker".as_bytes()).unwrap();
        w.terminate().unwrap();
        dir.atomic_write(Path::new("meta.json"), b"{\"marker\":1}").unwrap();
        for e in fs::read_dir(tmp.path()).unwrap() {
            let bytes = fs::read(e.unwrap().path()).unwrap();
            assert!(!bytes.windows(6).any(|w| w == b"marker"));
        }
        // A fresh handle (empty cache) decrypts from disk.
        let key2 = dir.inner.current_key();
        let dir2 = EncryptedDirectory::open(tmp.path().to_owned(), vec![key2]).unwrap();
        let bytes = dir2.open_read(Path::new("seg.idx")).unwrap().read_bytes().unwrap();
        assert_eq!(bytes.as_slice(), "潰瘍性大腸炎 plaintext-marker".as_bytes());
        assert_eq!(dir2.atomic_read(Path::new("meta.json")).unwrap(), b"{\"marker\":1}");
        assert!(matches!(dir2.open_write(Path::new("seg.idx")), Err(OpenWriteError::FileAlreadyExists(_))));
        dir2.delete(Path::new("seg.idx")).unwrap();
        assert!(!dir2.exists(Path::new("seg.idx")).unwrap());
    }

    #[test]
    fn wrong_key_fails_to_read() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = EncryptedDirectory::open(tmp.path().to_owned(), vec![Key::generate()]).unwrap();
        dir.atomic_write(Path::new("meta.json"), b"{}").unwrap();
        let other = EncryptedDirectory::open(tmp.path().to_owned(), vec![Key::generate()]).unwrap();
        assert!(other.atomic_read(Path::new("meta.json")).is_err());
    }

    #[test]
    fn multi_block_ranges_and_tampering() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = EncryptedDirectory::with_cache(tmp.path().to_owned(), vec![Key::generate()], 1 << 20).unwrap();
        let data: Vec<u8> = (0..(BLOCK * 3 + 123)).map(|i| (i % 251) as u8).collect();
        let mut w = dir.open_write(Path::new("big.pos")).unwrap();
        w.write_all(&data).unwrap();
        w.terminate().unwrap();
        let h = dir.get_file_handle(Path::new("big.pos")).unwrap();
        assert_eq!(h.len(), data.len());
        for r in [0..10, BLOCK - 5..BLOCK + 5, 10..BLOCK * 3 + 100, BLOCK * 3..data.len(), 0..data.len()] {
            assert_eq!(h.read_bytes(r.clone()).unwrap().as_slice(), &data[r.clone()], "{r:?}");
        }
        assert!(h.read_bytes(0..data.len() + 1).is_err());
        // Cut at a block boundary: the new last block lacks the "last" flag and fails.
        let file = tmp.path().join("big.pos");
        let sealed = fs::read(&file).unwrap();
        let other = tempfile::tempdir().unwrap();
        let dir2 =
            EncryptedDirectory::with_cache(other.path().to_owned(), vec![dir.inner.current_key()], 1 << 20).unwrap();
        fs::write(other.path().join("big.pos"), &sealed[..SEALED_BLOCK * 2]).unwrap();
        let cut = dir2.get_file_handle(Path::new("big.pos")).unwrap();
        assert!(cut.read_bytes(0..1).is_ok(), "an intact first block still opens");
        assert!(cut.read_bytes(BLOCK..BLOCK + 1).is_err(), "truncated file must not open");
        // Two blocks swapped: both fail (block number is bound).
        let mut swapped = sealed.clone();
        swapped[..SEALED_BLOCK].copy_from_slice(&sealed[SEALED_BLOCK..SEALED_BLOCK * 2]);
        swapped[SEALED_BLOCK..SEALED_BLOCK * 2].copy_from_slice(&sealed[..SEALED_BLOCK]);
        fs::write(other.path().join("swap.pos"), &swapped).unwrap();
        fs::rename(other.path().join("swap.pos"), other.path().join("big.pos")).unwrap();
        let dir3 =
            EncryptedDirectory::with_cache(other.path().to_owned(), vec![dir.inner.current_key()], 1 << 20).unwrap();
        let sw = dir3.get_file_handle(Path::new("big.pos")).unwrap();
        assert!(sw.read_bytes(0..1).is_err());
    }

    #[test]
    fn resealing_makes_the_old_key_useless_on_disk() {
        let tmp = tempfile::tempdir().unwrap();
        let old = Key::generate();
        let dir = EncryptedDirectory::with_cache(tmp.path().to_owned(), vec![old.clone()], 1 << 20).unwrap();
        let data: Vec<u8> = (0..(BLOCK + 77)).map(|i| (i % 253) as u8).collect();
        let mut w = dir.open_write(Path::new("seg.store")).unwrap();
        w.write_all(&data).unwrap();
        w.terminate().unwrap();
        dir.atomic_write(Path::new("meta.json"), b"{}").unwrap();
        let open_before = dir.get_file_handle(Path::new("seg.store")).unwrap();
        let new = Key::generate();
        assert_eq!(dir.reseal_all(new.clone()).unwrap(), 2);
        assert_eq!(dir.reseal_all(new.clone()).unwrap(), 0, "a resumed rotation skips re-sealed files");
        // A handle opened before still reads (old inode, old key in memory) ...
        assert_eq!(open_before.read_bytes(0..data.len()).unwrap().as_slice(), &data[..]);
        dir.drop_old_keys();
        // ... and on disk only the new key opens the files.
        let with_old = EncryptedDirectory::with_cache(tmp.path().to_owned(), vec![old], 1 << 20).unwrap();
        assert!(with_old.get_file_handle(Path::new("seg.store")).unwrap().read_bytes(0..1).is_err());
        assert!(with_old.atomic_read(Path::new("meta.json")).is_err());
        let with_new = EncryptedDirectory::with_cache(tmp.path().to_owned(), vec![new], 1 << 20).unwrap();
        assert_eq!(
            with_new.get_file_handle(Path::new("seg.store")).unwrap().read_bytes(0..data.len()).unwrap().as_slice(),
            &data[..]
        );
    }
}
