//! The master key file: created once by `hozon init`, mode 0600, hex-encoded 32 bytes.
//!
//! Rotation is crash-safe by writing the new key beside the old one first
//! (`<key>.new`), re-wrapping every data key in one atomic sled batch, and only then renaming
//! the new file over the old one. A crash before the rename leaves both files; opening the store
//! picks whichever file matches the key check stored in sled and finishes the rename.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::crypto::Key;
use crate::store::Error;

pub(crate) fn pending_path(path: &Path) -> PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(".new");
    PathBuf::from(p)
}

/// Writes a fresh key file; refuses to overwrite an existing one.
pub(crate) fn create(path: &Path, key: &Key) -> Result<(), Error> {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    }
    let mut f =
        fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path).map_err(|e| Error::io(path, e))?;
    f.write_all(hex::encode(key.expose()).as_bytes())
        .and_then(|_| f.write_all(b"\n"))
        .and_then(|_| f.sync_all())
        .map_err(|e| Error::io(path, e))?;
    sync_parent(path)
}

pub(crate) fn read(path: &Path) -> Result<Key, Error> {
    let meta = fs::metadata(path).map_err(|e| Error::KeyFile {
        path: path.to_owned(),
        reason: format!("cannot read it ({e}); run `hozon init` or set HOZON_KEY_FILE"),
    })?;
    if meta.permissions().mode() & 0o077 != 0 {
        return Err(Error::KeyFile {
            path: path.to_owned(),
            reason: format!(
                "permissions {:o} let other users read it; chmod 600 it",
                meta.permissions().mode() & 0o777
            ),
        });
    }
    let text = fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    let raw = hex::decode(text.trim())
        .map_err(|_| Error::KeyFile { path: path.to_owned(), reason: "not a hex-encoded key".into() })?;
    Key::from_bytes(&raw).map_err(|e| Error::KeyFile { path: path.to_owned(), reason: e.to_string() })
}

pub(crate) fn sync_parent(path: &Path) -> Result<(), Error> {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    fs::File::open(dir).and_then(|d| d.sync_all()).map_err(|e| Error::io(dir, e))
}
