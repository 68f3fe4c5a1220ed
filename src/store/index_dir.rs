//! An encrypted tantivy [`Directory`]: the search index holds names, addresses and OCR text,
//! so every index file is sealed with the index key before it touches the disk.
//!
//! Contract (tantivy's, kept here):
//! - Files written through `open_write` are immutable once terminated; the whole file is sealed
//!   at `terminate` and written to a temp name, fsynced and renamed, so a reader never sees a
//!   partial file.
//! - `atomic_write` (used for `meta.json`) is atomic the same way and fires the watchers.
//! - Durability: after `sync_directory` returns, renamed files survive a crash.
//! - Locks are OS advisory locks (`File::try_lock`), so a killed process never leaves a stale
//!   lock behind.
//!
//! Each file is sealed as one unit with the file name as associated data (a file cannot be
//! swapped for another). Reads decrypt the whole file once and cache the plaintext in memory
//! (never on disk); deleted files drop out of the cache.

use std::collections::HashMap;
use std::fs;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use rand::RngCore;
use tantivy::directory::error::{DeleteError, LockError, OpenReadError, OpenWriteError};
use tantivy::directory::{
    AntiCallToken, Directory, DirectoryLock, FileHandle, Lock, OwnedBytes, TerminatingWrite, WatchCallback,
    WatchCallbackList, WatchHandle, WritePtr,
};

use crate::crypto::Key;

#[derive(Clone)]
pub struct EncryptedDirectory {
    inner: Arc<Inner>,
}

struct Inner {
    root: PathBuf,
    key: Key,
    cache: RwLock<HashMap<PathBuf, OwnedBytes>>,
    watchers: WatchCallbackList,
}

impl std::fmt::Debug for EncryptedDirectory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "EncryptedDirectory({})", self.inner.root.display())
    }
}

fn aad(path: &Path) -> Vec<u8> {
    let mut a = b"index-file:".to_vec();
    a.extend_from_slice(path.as_os_str().as_encoded_bytes());
    a
}

impl EncryptedDirectory {
    pub(crate) fn open(root: PathBuf, key: Key) -> io::Result<EncryptedDirectory> {
        fs::create_dir_all(&root)?;
        for e in fs::read_dir(&root)?.flatten() {
            if e.file_name().to_string_lossy().ends_with(".tmp") {
                let _ = fs::remove_file(e.path());
            }
        }
        Ok(EncryptedDirectory {
            inner: Arc::new(Inner {
                root,
                key,
                cache: RwLock::new(HashMap::new()),
                watchers: WatchCallbackList::default(),
            }),
        })
    }

    /// Seals `data` and stores it under `path` atomically and durably (file fsynced).
    fn write_sealed(&self, path: &Path, data: &[u8]) -> io::Result<()> {
        let sealed = self.inner.key.seal(&aad(path), data);
        let mut rnd = [0u8; 8];
        rand::rngs::OsRng.fill_bytes(&mut rnd);
        let tmp = self.inner.root.join(format!("{}.tmp", hex::encode(rnd)));
        let mut f = fs::File::create(&tmp)?;
        f.write_all(&sealed)?;
        f.sync_all()?;
        fs::rename(&tmp, self.inner.root.join(path))?;
        self.inner
            .cache
            .write()
            .expect("index cache lock poisoned")
            .insert(path.to_owned(), OwnedBytes::new(data.to_vec()));
        Ok(())
    }

    fn read_plain(&self, path: &Path) -> Result<OwnedBytes, OpenReadError> {
        if let Some(b) = self.inner.cache.read().expect("index cache lock poisoned").get(path) {
            return Ok(b.clone());
        }
        let full = self.inner.root.join(path);
        let sealed = match fs::read(&full) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(OpenReadError::FileDoesNotExist(path.to_owned()));
            }
            Err(e) => return Err(OpenReadError::wrap_io_error(e, path.to_owned())),
        };
        let plain = self.inner.key.open(&aad(path), &sealed).map_err(|e| {
            OpenReadError::wrap_io_error(
                io::Error::new(io::ErrorKind::InvalidData, format!("index file: {e}")),
                path.to_owned(),
            )
        })?;
        let bytes = OwnedBytes::new(plain);
        self.inner.cache.write().expect("index cache lock poisoned").insert(path.to_owned(), bytes.clone());
        Ok(bytes)
    }
}

struct SealingWriter {
    dir: EncryptedDirectory,
    path: PathBuf,
    buf: Vec<u8>,
}

impl Write for SealingWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(data);
        Ok(data.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl TerminatingWrite for SealingWriter {
    fn terminate_ref(&mut self, _: AntiCallToken) -> io::Result<()> {
        let data = std::mem::take(&mut self.buf);
        self.dir.write_sealed(&self.path, &data)
    }
}

impl Directory for EncryptedDirectory {
    fn get_file_handle(&self, path: &Path) -> Result<Arc<dyn FileHandle>, OpenReadError> {
        Ok(Arc::new(self.read_plain(path)?))
    }

    fn delete(&self, path: &Path) -> Result<(), DeleteError> {
        self.inner.cache.write().expect("index cache lock poisoned").remove(path);
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
        let w = SealingWriter { dir: self.clone(), path: path.to_owned(), buf: Vec::new() };
        Ok(BufWriter::new(Box::new(w)))
    }

    fn atomic_read(&self, path: &Path) -> Result<Vec<u8>, OpenReadError> {
        Ok(self.read_plain(path)?.as_slice().to_vec())
    }

    fn atomic_write(&self, path: &Path, data: &[u8]) -> io::Result<()> {
        self.write_sealed(path, data)?;
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
        let dir = EncryptedDirectory::open(tmp.path().to_owned(), Key::generate()).unwrap();
        let mut w = dir.open_write(Path::new("seg.idx")).unwrap();
        w.write_all("潰瘍性大腸炎 plaintext-marker".as_bytes()).unwrap();
        w.terminate().unwrap();
        dir.atomic_write(Path::new("meta.json"), b"{\"marker\":1}").unwrap();
        for e in fs::read_dir(tmp.path()).unwrap() {
            let bytes = fs::read(e.unwrap().path()).unwrap();
            assert!(!bytes.windows(6).any(|w| w == b"marker"));
        }
        // A fresh handle (empty cache) decrypts from disk.
        let key2 = dir.inner.key.clone();
        let dir2 = EncryptedDirectory::open(tmp.path().to_owned(), key2).unwrap();
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
        let dir = EncryptedDirectory::open(tmp.path().to_owned(), Key::generate()).unwrap();
        dir.atomic_write(Path::new("meta.json"), b"{}").unwrap();
        let other = EncryptedDirectory::open(tmp.path().to_owned(), Key::generate()).unwrap();
        assert!(other.atomic_read(Path::new("meta.json")).is_err());
    }
}
