//! The key store: the keys whose destruction makes disposal final, kept *outside* sled.
//!
//! sled is log-structured: a value removed or overwritten stays in its segment files until they
//! are rewritten, and any earlier copy of the data directory (a backup) holds it for good. So a
//! key that must be destroyable cannot live there. The key store is one small file beside the
//! master key file (`<key file>.keystore`), sealed with the master key and replaced atomically
//! (write, fsync, rename, fsync the directory) on every change; it is never part of a data
//! backup.
//!
//! It holds:
//! - **epoch keys**: a record's data key is wrapped by the key of its epoch, its record class ×
//!   the fiscal year its retention ends (`application/FY2031`, `scan/open` while no date is
//!   known). Records that fall due together share an epoch, so a disposal run destroys few
//!   epochs and re-wraps only their survivors (held, excluded, not yet due).
//! - **index keys**: the search index's files are sealed with the current one; rotated when a
//!   disposal purges documents, after every surviving file was re-sealed.
//! - **survivors**: when an epoch is retired, the data key of every record that was in it (or
//!   ever was) and is still kept, wrapped under the epoch it is in now. A record restored from
//!   an earlier copy of the data directory still carries its old wrapping; this table is how
//!   it opens again, while a destroyed record has no entry and stays unreadable.
//!
//! Each epoch and the index have a list of generations: normally one, two while a rotation is
//! under way (a crash then leaves both, and the rotation is finished on the next attempt).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use super::{Error, Result, keyfile};
use crate::crypto::{Key, MasterKey};

const FILE_AAD: &[u8] = b"hozon-keystore-v1";

/// Where an epoch-wrapped data key can be opened: the epoch's label and generation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyEpoch {
    pub label: String,
    pub generation: u32,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Generation {
    generation: u32,
    /// The key, wrapped by the master key (context names the label and generation).
    #[serde(with = "super::records::hex_bytes")]
    wrapped: Vec<u8>,
}

/// A kept record's data key, wrapped under the epoch generation it is in now.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Survivor {
    pub epoch: KeyEpoch,
    #[serde(with = "super::records::hex_bytes")]
    pub wrapped: Vec<u8>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct State {
    epochs: BTreeMap<String, Vec<Generation>>,
    index: Vec<Generation>,
    survivors: BTreeMap<String, Survivor>,
    /// Which run retired each epoch generation (`label#generation`), and when: a record
    /// restored from an earlier backup whose key no longer opens is shown as destroyed by it.
    #[serde(default)]
    retired: BTreeMap<String, Retired>,
}

/// What a key store knows of an epoch generation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EpochStatus {
    Live,
    /// Retired by a disposal run: what it wrapped is destroyed (unless a survivor).
    Retired,
    /// Not known: the key store is older than whatever carries this epoch.
    Unknown,
}

/// The disposal run that retired an epoch generation.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Retired {
    pub run_id: String,
    pub at: chrono::DateTime<chrono::Utc>,
}

pub(crate) struct KeyStore {
    /// An exclusive lock on `<key store>.lock` for as long as this key store is open: a key
    /// store belongs to one data directory at a time (a restored copy opened beside the live
    /// one with the same key file would overwrite each other's keys).
    _lock: std::fs::File,
    path: PathBuf,
    master: MasterKey,
    state: Mutex<State>,
}

impl std::fmt::Debug for KeyStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "KeyStore({})", self.path.display())
    }
}

/// An exclusive advisory lock on `path` (created if missing), held while the file lives;
/// `None` when another open file holds it.
pub(crate) fn try_lock(path: &Path) -> Option<std::fs::File> {
    use std::os::fd::AsRawFd;
    let f = std::fs::OpenOptions::new().create(true).truncate(false).write(true).open(path).ok()?;
    // SAFETY: flock on a file descriptor we own; no memory is involved.
    (unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0).then_some(f)
}

fn lock_exclusive(path: &Path) -> Result<std::fs::File> {
    let mut name = path.as_os_str().to_owned();
    name.push(".lock");
    match try_lock(Path::new(&name)) {
        Some(f) => Ok(f),
        None => Err(Error::KeyFile {
            path: path.to_owned(),
            reason: "the key store is in use by another data directory or process (a restored copy needs its own copy of the key file and key store)".into(),
        }),
    }
}

/// The key store that belongs to a master key file.
pub fn path_for(key_file: &Path) -> PathBuf {
    let mut p = key_file.as_os_str().to_owned();
    p.push(".keystore");
    PathBuf::from(p)
}

fn epoch_context(label: &str, generation: u32) -> Vec<u8> {
    format!("epoch-key:{label}:{generation}").into_bytes()
}

fn index_context(generation: u32) -> Vec<u8> {
    format!("index-key:{generation}").into_bytes()
}

impl KeyStore {
    /// Opens the key store, or starts an empty one when `create` (a new data directory, or one
    /// made before the key store existed).
    pub(crate) fn open(path: PathBuf, master: MasterKey, create: bool) -> Result<KeyStore> {
        let lock = lock_exclusive(&path)?;
        KeyStore::open_locked(path, master, create, lock)
    }

    /// The same key store file under another master key (after a rotation), keeping the lock.
    pub(crate) fn reopen(&self, master: MasterKey) -> Result<KeyStore> {
        // A duplicate of the locked descriptor shares its lock, which outlives `self`.
        let lock = self._lock.try_clone().map_err(|e| Error::io(&self.path, e))?;
        KeyStore::open_locked(self.path.clone(), master, false, lock)
    }

    fn open_locked(path: PathBuf, master: MasterKey, create: bool, lock: std::fs::File) -> Result<KeyStore> {
        let state = match std::fs::read(&path) {
            Ok(sealed) => {
                let plain = master.open(FILE_AAD, &sealed).map_err(|_| Error::KeyFile {
                    path: path.clone(),
                    reason: "the key store does not open with this master key (changed or from another installation)"
                        .into(),
                })?;
                serde_json::from_slice(&plain)
                    .map_err(|e| Error::KeyFile { path: path.clone(), reason: e.to_string() })?
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && create => State::default(),
            Err(e) => {
                return Err(Error::KeyFile {
                    path: path.clone(),
                    reason: format!(
                        "cannot read the key store ({e}); it holds the keys of every record and is kept beside the master key file"
                    ),
                });
            }
        };
        let ks = KeyStore { _lock: lock, path, master, state: Mutex::new(state) };
        if create && !ks.path.exists() {
            ks.save(&ks.state.lock().expect("key store lock"))?;
        }
        Ok(ks)
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Writes the whole state atomically and durably.
    fn save(&self, state: &State) -> Result<()> {
        let json = serde_json::to_vec(state).expect("key store serialises");
        let sealed = self.master.seal(FILE_AAD, &json);
        let tmp = {
            let mut p = self.path.as_os_str().to_owned();
            p.push(".tmp");
            PathBuf::from(p)
        };
        let write = || -> std::io::Result<()> {
            use std::os::unix::fs::OpenOptionsExt;
            let mut f = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&tmp)?;
            f.write_all(&sealed)?;
            f.sync_all()?;
            std::fs::rename(&tmp, &self.path)
        };
        write().map_err(|e| Error::io(&self.path, e))?;
        keyfile::sync_parent(&self.path)
    }

    fn unwrap(&self, context: &[u8], g: &Generation) -> Result<Key> {
        Ok(self.master.unwrap_key(context, &g.wrapped)?)
    }

    fn new_generation(&self, context: impl Fn(u32) -> Vec<u8>, generation: u32) -> Generation {
        let key = Key::generate();
        Generation { generation, wrapped: self.master.wrap(&context(generation), &key) }
    }

    /// The current generation of `label`'s key, created (durably) if the epoch is new.
    pub(crate) fn current(&self, label: &str) -> Result<(KeyEpoch, Key)> {
        let mut st = self.state.lock().expect("key store lock");
        if !st.epochs.contains_key(label) {
            let g = self.new_generation(|n| epoch_context(label, n), 1);
            let mut next = st.clone();
            next.epochs.insert(label.to_owned(), vec![g]);
            self.save(&next)?;
            *st = next;
        }
        let g = st.epochs[label].last().expect("an epoch has a generation");
        let key = self.unwrap(&epoch_context(label, g.generation), g)?;
        Ok((KeyEpoch { label: label.to_owned(), generation: g.generation }, key))
    }

    /// The key of one epoch generation, if it still exists.
    pub(crate) fn epoch_key(&self, epoch: &KeyEpoch) -> Result<Option<Key>> {
        let st = self.state.lock().expect("key store lock");
        match st.epochs.get(&epoch.label).and_then(|gs| gs.iter().find(|g| g.generation == epoch.generation)) {
            Some(g) => Ok(Some(self.unwrap(&epoch_context(&epoch.label, g.generation), g)?)),
            None => Ok(None),
        }
    }

    /// Whether `epoch` is the newest generation of its label.
    pub(crate) fn is_current(&self, epoch: &KeyEpoch) -> bool {
        let st = self.state.lock().expect("key store lock");
        st.epochs.get(&epoch.label).and_then(|gs| gs.last()).is_some_and(|g| g.generation == epoch.generation)
    }

    pub(crate) fn survivor(&self, record_id: &str) -> Option<Survivor> {
        self.state.lock().expect("key store lock").survivors.get(record_id).cloned()
    }

    /// Every epoch label with its generations (for the attack test and `doctor`).
    pub(crate) fn epochs(&self) -> BTreeMap<String, Vec<u32>> {
        let st = self.state.lock().expect("key store lock");
        st.epochs.iter().map(|(l, gs)| (l.clone(), gs.iter().map(|g| g.generation).collect())).collect()
    }

    /// Every key the store holds now, unwrapped: what an attacker who also has the master key
    /// file can get from it.
    pub(crate) fn all_keys(&self) -> Result<Vec<Key>> {
        let st = self.state.lock().expect("key store lock");
        let mut out = Vec::new();
        for (label, gs) in &st.epochs {
            for g in gs {
                out.push(self.unwrap(&epoch_context(label, g.generation), g)?);
            }
        }
        for g in &st.index {
            out.push(self.unwrap(&index_context(g.generation), g)?);
        }
        Ok(out)
    }

    /// Step 1 of retiring epochs: a new generation beside the current one of each label.
    /// Idempotent: a label that already has two generations keeps them.
    pub(crate) fn begin_retire(&self, labels: &[String]) -> Result<BTreeMap<String, (KeyEpoch, Key)>> {
        let mut st = self.state.lock().expect("key store lock");
        let mut next = st.clone();
        let mut changed = false;
        for label in labels {
            let gens = next.epochs.entry(label.clone()).or_default();
            if gens.len() < 2 {
                let n = gens.last().map_or(1, |g| g.generation + 1);
                gens.push(self.new_generation(|x| epoch_context(label, x), n));
                changed = true;
            }
        }
        if changed {
            self.save(&next)?;
            *st = next;
        }
        let mut out = BTreeMap::new();
        for label in labels {
            let g = st.epochs[label].last().expect("just made");
            out.insert(
                label.clone(),
                (
                    KeyEpoch { label: label.clone(), generation: g.generation },
                    self.unwrap(&epoch_context(label, g.generation), g)?,
                ),
            );
        }
        Ok(out)
    }

    /// Last step of retiring epochs: only the newest generation of each label remains, and the
    /// survivors table is replaced. From here no earlier copy of a retired epoch's records
    /// opens, except through `survivors`.
    pub(crate) fn finish_retire(
        &self,
        run_id: &str,
        labels: &[String],
        survivors: BTreeMap<String, Survivor>,
    ) -> Result<()> {
        let mut st = self.state.lock().expect("key store lock");
        let mut next = st.clone();
        let at = chrono::Utc::now();
        for label in labels {
            if let Some(gens) = next.epochs.get_mut(label) {
                let keep = gens.pop();
                for g in gens.iter() {
                    next.retired.insert(format!("{label}#{}", g.generation), Retired { run_id: run_id.to_owned(), at });
                }
                gens.clear();
                gens.extend(keep);
            }
        }
        next.survivors = survivors;
        self.save(&next)?;
        *st = next;
        Ok(())
    }

    /// Whether this key store can judge `epoch`: its key exists, was retired, or is newer than
    /// anything this key store knows (a key store older than the data it is asked about).
    pub(crate) fn status(&self, epoch: &KeyEpoch) -> EpochStatus {
        let st = self.state.lock().expect("key store lock");
        let Some(gens) = st.epochs.get(&epoch.label) else { return EpochStatus::Unknown };
        if gens.iter().any(|g| g.generation == epoch.generation) {
            return EpochStatus::Live;
        }
        let newest = gens.iter().map(|g| g.generation).max().unwrap_or(0);
        if epoch.generation < newest || st.retired.contains_key(&format!("{}#{}", epoch.label, epoch.generation)) {
            EpochStatus::Retired
        } else {
            EpochStatus::Unknown
        }
    }

    /// The run that retired `epoch`, if the key store recorded one.
    pub(crate) fn retired_by(&self, epoch: &KeyEpoch) -> Option<Retired> {
        let st = self.state.lock().expect("key store lock");
        st.retired.get(&format!("{}#{}", epoch.label, epoch.generation)).cloned()
    }

    /// The whole survivors table (the caller replaces it on retirement).
    pub(crate) fn survivors(&self) -> BTreeMap<String, Survivor> {
        self.state.lock().expect("key store lock").survivors.clone()
    }

    /// The index keys, newest first (two while a rotation is under way).
    pub(crate) fn index_keys(&self) -> Result<Vec<Key>> {
        let st = self.state.lock().expect("key store lock");
        st.index.iter().rev().map(|g| self.unwrap(&index_context(g.generation), g)).collect()
    }

    /// Sets the first index key (a new store, or the one a store kept before the key store).
    pub(crate) fn adopt_index_key(&self, key: &Key) -> Result<()> {
        let mut st = self.state.lock().expect("key store lock");
        if !st.index.is_empty() {
            return Ok(());
        }
        let mut next = st.clone();
        next.index.push(Generation { generation: 1, wrapped: self.master.wrap(&index_context(1), key) });
        self.save(&next)?;
        *st = next;
        Ok(())
    }

    /// Adds a new index key generation (idempotent while a rotation is under way) and returns
    /// it.
    pub(crate) fn begin_index_rotation(&self) -> Result<Key> {
        let mut st = self.state.lock().expect("key store lock");
        if st.index.len() < 2 {
            let mut next = st.clone();
            let n = next.index.last().map_or(1, |g| g.generation + 1);
            next.index.push(self.new_generation(index_context, n));
            self.save(&next)?;
            *st = next;
        }
        let g = st.index.last().expect("just made");
        self.unwrap(&index_context(g.generation), g)
    }

    /// Forgets every index key but the newest.
    pub(crate) fn finish_index_rotation(&self) -> Result<()> {
        let mut st = self.state.lock().expect("key store lock");
        if st.index.len() < 2 {
            return Ok(());
        }
        let mut next = st.clone();
        let keep = next.index.pop();
        next.index.clear();
        next.index.extend(keep);
        self.save(&next)?;
        *st = next;
        Ok(())
    }

    /// Re-seals the file under a new master key (master key rotation).
    pub(crate) fn rewrap_master(&self, new: &MasterKey, path: &Path) -> Result<()> {
        let st = self.state.lock().expect("key store lock");
        let mut next = State { survivors: st.survivors.clone(), ..State::default() };
        for (label, gs) in &st.epochs {
            let mut out = Vec::new();
            for g in gs {
                let k = self.unwrap(&epoch_context(label, g.generation), g)?;
                out.push(Generation {
                    generation: g.generation,
                    wrapped: new.wrap(&epoch_context(label, g.generation), &k),
                });
            }
            next.epochs.insert(label.clone(), out);
        }
        for g in &st.index {
            let k = self.unwrap(&index_context(g.generation), g)?;
            next.index
                .push(Generation { generation: g.generation, wrapped: new.wrap(&index_context(g.generation), &k) });
        }
        let other = KeyStore {
            _lock: lock_exclusive(path)?,
            path: path.to_owned(),
            master: new.clone(),
            state: Mutex::new(State::default()),
        };
        other.save(&next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epochs_rotate_and_old_generations_vanish_from_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let master = Key::generate();
        let path = dir.path().join("master.key.keystore");
        let ks = KeyStore::open(path.clone(), master.clone(), true).unwrap();
        let (e1, k1) = ks.current("application/FY2031").unwrap();
        assert_eq!(e1.generation, 1);
        let (again, k1b) = ks.current("application/FY2031").unwrap();
        assert_eq!((again, k1b.expose()), (e1.clone(), k1.expose()));
        let new = ks.begin_retire(&["application/FY2031".into()]).unwrap();
        let (e2, k2) = &new["application/FY2031"];
        assert_eq!(e2.generation, 2);
        // During the rotation both open; a second begin is idempotent.
        assert!(ks.epoch_key(&e1).unwrap().is_some());
        assert_eq!(ks.begin_retire(&["application/FY2031".into()]).unwrap()["application/FY2031"].0, *e2);
        ks.finish_retire("D1", &["application/FY2031".into()], BTreeMap::new()).unwrap();
        assert!(ks.epoch_key(&e1).unwrap().is_none());
        assert_eq!(ks.epoch_key(e2).unwrap().unwrap().expose(), k2.expose());
        // Reopened from disk: the same, and the old key's bytes are not in the file in any form
        // the master key opens.
        drop(ks);
        let re = KeyStore::open(path.clone(), master.clone(), false).unwrap();
        assert!(re.epoch_key(&e1).unwrap().is_none());
        assert!(re.all_keys().unwrap().iter().all(|k| k.expose() != k1.expose()));
        // While open, nobody else opens it; a wrong master key is refused, naming the file.
        assert!(KeyStore::open(path.clone(), master.clone(), false).unwrap_err().to_string().contains("in use"));
        drop(re);
        let err = KeyStore::open(path, Key::generate(), false).unwrap_err().to_string();
        assert!(err.contains("keystore"), "{err}");
    }

    #[test]
    fn index_keys_rotate() {
        let dir = tempfile::tempdir().unwrap();
        let ks = KeyStore::open(dir.path().join("k.keystore"), Key::generate(), true).unwrap();
        let first = Key::generate();
        ks.adopt_index_key(&first).unwrap();
        let second = ks.begin_index_rotation().unwrap();
        assert_eq!(ks.index_keys().unwrap().len(), 2);
        assert_eq!(ks.index_keys().unwrap()[0].expose(), second.expose(), "newest first");
        ks.finish_index_rotation().unwrap();
        let keys = ks.index_keys().unwrap();
        assert_eq!(keys.len(), 1);
        assert_eq!(keys[0].expose(), second.expose());
    }
}
