//! Where backups are written: a local directory or an S3-compatible object store, both
//! through `object_store`, so there is one code path and the local case tests the same calls.

use std::sync::Arc;

use futures::{StreamExt, TryStreamExt};
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, PutPayload};

use super::Error;
use crate::config;

/// How many objects move at once (an S3 store's latency, not its bandwidth, limits one-by-one
/// transfers).
const PARALLEL: usize = 16;

pub struct Destination {
    store: Arc<dyn ObjectStore>,
    /// The directory, for a local destination (synced before a manifest is written).
    local: Option<std::path::PathBuf>,
    /// As the operator wrote it (`/mnt/backup`, `s3://bucket/prefix`); credentials never.
    label: String,
    rt: tokio::runtime::Runtime,
}

impl std::fmt::Debug for Destination {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Destination({})", self.label)
    }
}

impl Destination {
    /// `s3://bucket/prefix` (endpoint, region and credentials from `cfg` or the environment's
    /// `AWS_*` variables) or a local directory (created if missing).
    pub fn open(spec: &str, cfg: &config::Backup) -> Result<Destination, Error> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| Error::Destination { dest: spec.to_owned(), why: e.to_string() })?;
        let bad = |why: String| Error::Destination { dest: spec.to_owned(), why };
        let mut local = None;
        let store: Arc<dyn ObjectStore> = if let Some(rest) = spec.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            if bucket.is_empty() {
                return Err(bad("バケット名がありません（s3://バケット/接頭辞）".into()));
            }
            let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
            let pick = |own: &str, var: &str| if own.is_empty() { env(var) } else { Some(own.to_owned()) };
            let mut b = object_store::aws::AmazonS3Builder::new()
                .with_bucket_name(bucket)
                .with_region(pick(&cfg.s3_region, "AWS_REGION").unwrap_or_else(|| "us-east-1".into()));
            if let Some(e) = pick(&cfg.s3_endpoint, "AWS_ENDPOINT_URL") {
                b = b.with_allow_http(e.starts_with("http://")).with_endpoint(e);
            }
            let key = pick(&cfg.s3_access_key_id, "AWS_ACCESS_KEY_ID")
                .ok_or_else(|| bad("認証情報がありません（AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY）".into()))?;
            let secret = pick(&cfg.s3_secret_access_key, "AWS_SECRET_ACCESS_KEY")
                .ok_or_else(|| bad("認証情報がありません（AWS_SECRET_ACCESS_KEY）".into()))?;
            let s3 =
                b.with_access_key_id(key).with_secret_access_key(secret).build().map_err(|e| bad(e.to_string()))?;
            if prefix.trim_matches('/').is_empty() {
                Arc::new(s3)
            } else {
                Arc::new(object_store::prefix::PrefixStore::new(s3, prefix.trim_matches('/')))
            }
        } else {
            if spec.trim().is_empty() {
                return Err(bad("保存先がありません（--to、または config.toml の [backup] destination）".into()));
            }
            std::fs::create_dir_all(spec).map_err(|e| bad(e.to_string()))?;
            let fs = object_store::local::LocalFileSystem::new_with_prefix(spec).map_err(|e| bad(e.to_string()))?;
            local = Some(std::path::PathBuf::from(spec));
            Arc::new(fs)
        };
        Ok(Destination { store, local, label: spec.to_owned(), rt })
    }

    pub fn label(&self) -> &str {
        &self.label
    }

    /// The destination's own identity: a random id kept in `hozon-destination` there, made on
    /// first use. The store's memory of what a destination holds is keyed by it, so another
    /// disk mounted at the same path, or an emptied bucket, is a new destination.
    pub fn identity(&self) -> Result<String, Error> {
        const NAME: &str = "hozon-destination";
        if let Some(b) = self.get(NAME)? {
            let id = String::from_utf8_lossy(&b).trim().to_owned();
            if id.len() == 32 && id.bytes().all(|c| c.is_ascii_hexdigit()) {
                return Ok(id);
            }
            return Err(self.err(
                NAME,
                object_store::Error::Generic { store: "hozon", source: "malformed destination id".into() },
            ));
        }
        let id = hex::encode(&crate::crypto::Key::generate().expose()[..16]);
        self.put_new(NAME, id.clone().into_bytes())?;
        Ok(self.get(NAME)?.map(|b| String::from_utf8_lossy(&b).trim().to_owned()).unwrap_or(id))
    }

    /// Writes an object that must not exist yet (a manifest): an existing one is an error.
    pub fn put_new(&self, name: &str, bytes: Vec<u8>) -> Result<(), Error> {
        let opts = object_store::PutOptions { mode: object_store::PutMode::Create, ..Default::default() };
        match self.rt.block_on(self.store.put_opts(&ObjectPath::from(name), PutPayload::from(bytes.clone()), opts)) {
            Ok(_) => Ok(()),
            // A store without conditional writes: check, then write (backups of one
            // installation are serialised by their ids, so the gap is harmless).
            Err(object_store::Error::NotImplemented | object_store::Error::NotSupported { .. }) => {
                if self.get(name)?.is_some() {
                    return Err(self.err(
                        name,
                        object_store::Error::AlreadyExists { path: name.to_owned(), source: "exists".into() },
                    ));
                }
                self.put(name, bytes)
            }
            Err(e) => Err(self.err(name, e)),
        }
    }

    /// Makes what was written durable: a local destination's filesystem is synced (the object
    /// store writes files without fsync); an S3 store acknowledges writes durably.
    pub fn sync(&self) -> Result<(), Error> {
        use std::os::fd::AsRawFd;
        let Some(dir) = &self.local else { return Ok(()) };
        let f = std::fs::File::open(dir)
            .map_err(|e| Error::Destination { dest: self.label.clone(), why: e.to_string() })?;
        // SAFETY: syncfs on a descriptor we own.
        if unsafe { libc::syncfs(f.as_raw_fd()) } != 0 {
            return Err(Error::Destination {
                dest: self.label.clone(),
                why: std::io::Error::last_os_error().to_string(),
            });
        }
        Ok(())
    }

    fn err(&self, name: &str, e: object_store::Error) -> Error {
        Error::Object { dest: self.label.clone(), name: name.to_owned(), why: e.to_string() }
    }

    pub fn put(&self, name: &str, bytes: Vec<u8>) -> Result<(), Error> {
        self.rt
            .block_on(self.store.put(&ObjectPath::from(name), PutPayload::from(bytes)))
            .map(drop)
            .map_err(|e| self.err(name, e))
    }

    /// Writes many objects, `PARALLEL` at a time; `load` gives each one's bytes when its turn
    /// comes (so only a few are in memory at once). Returns the names written.
    pub fn put_many(
        &self,
        names: Vec<String>,
        load: impl Fn(&str) -> Result<Vec<u8>, Error> + Sync,
        progress: &(dyn Fn(usize) + Sync),
    ) -> Result<Vec<String>, Error> {
        let load = &load;
        self.rt.block_on(async {
            futures::stream::iter(names.into_iter().map(|name| async move {
                let bytes = load(&name)?;
                self.store
                    .put(&ObjectPath::from(name.as_str()), PutPayload::from(bytes))
                    .await
                    .map_err(|e| self.err(&name, e))?;
                progress(1);
                Ok::<_, Error>(name)
            }))
            .buffer_unordered(PARALLEL)
            .try_collect()
            .await
        })
    }

    /// An object's bytes; `None` if there is no such object.
    pub fn get(&self, name: &str) -> Result<Option<Vec<u8>>, Error> {
        self.rt.block_on(async {
            match self.store.get(&ObjectPath::from(name)).await {
                Ok(r) => Ok(Some(r.bytes().await.map_err(|e| self.err(name, e))?.to_vec())),
                Err(object_store::Error::NotFound { .. }) => Ok(None),
                Err(e) => Err(self.err(name, e)),
            }
        })
    }

    /// Fetches many objects, `PARALLEL` at a time, handing each to `each` (name, bytes or
    /// `None` when missing) as it arrives.
    pub fn get_many(
        &self,
        names: &[String],
        mut each: impl FnMut(&str, Option<Vec<u8>>) -> Result<(), Error>,
    ) -> Result<(), Error> {
        self.rt.block_on(async {
            let mut s = futures::stream::iter(names.iter().map(|name| async move {
                match self.store.get(&ObjectPath::from(name.as_str())).await {
                    Ok(r) => Ok((name, Some(r.bytes().await.map_err(|e| self.err(name, e))?.to_vec()))),
                    Err(object_store::Error::NotFound { .. }) => Ok((name, None)),
                    Err(e) => Err(self.err(name, e)),
                }
            }))
            .buffer_unordered(PARALLEL);
            while let Some(r) = s.next().await {
                let (name, bytes) = r?;
                each(name, bytes)?;
            }
            Ok(())
        })
    }

    pub fn delete(&self, name: &str) -> Result<(), Error> {
        match self.rt.block_on(self.store.delete(&ObjectPath::from(name))) {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(self.err(name, e)),
        }
    }

    /// Every object name under `prefix`.
    pub fn list(&self, prefix: &str) -> Result<Vec<String>, Error> {
        self.rt.block_on(async {
            self.store
                .list(Some(&ObjectPath::from(prefix)))
                .map_ok(|m| m.location.to_string())
                .try_collect::<Vec<_>>()
                .await
                .map_err(|e| self.err(prefix, e))
        })
    }
}
