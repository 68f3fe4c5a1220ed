//! `Hozon`: the opened instance (store, search index, OCR settings) that cli and web share.
//! Domain operations that span modules live here and take an [`Actor`], so the web and the
//! CLI cannot drift apart in what they check and audit.

use std::path::{Path, PathBuf};

use crate::audit::Event;
use crate::auth::Actor;
use crate::error::{Error, Result};
use crate::index::SearchIndex;
use crate::store::{BlobRole, Record, RecordId, RecordKind, RecordState, Store};

pub struct Hozon {
    pub store: Store,
    pub index: SearchIndex,
    pub tessdata: PathBuf,
}

/// One search result as users see it.
#[derive(Debug, Clone)]
pub struct SearchResult {
    pub record_id: RecordId,
    pub received_at: chrono::DateTime<chrono::Utc>,
    pub snippet_html: String,
}

/// The key file used when none is given: `HOZON_KEY_FILE`, else `<data>/master.key`.
pub fn default_key_file(data: &Path) -> PathBuf {
    std::env::var_os("HOZON_KEY_FILE").map_or_else(|| data.join("master.key"), PathBuf::from)
}

impl Hozon {
    pub fn open(data: &Path, key_file: &Path) -> Result<Hozon> {
        let store = Store::open(data, key_file)?;
        let index = SearchIndex::open(store.index_directory()?)?;
        Ok(Hozon {
            store,
            index,
            tessdata: crate::ocr::default_tessdata(),
        })
    }

    /// Creates a data directory with its key file and the first administrator; returns the
    /// administrator's one-time password.
    pub fn init(data: &Path, key_file: &Path) -> Result<(Hozon, String)> {
        let store = Store::init(data, key_file)?;
        let password = crate::auth::generate_password();
        crate::auth::create_user(&store, "admin", "security_officer", &password)?;
        store.audit(Event::system("init", "data directory created"))?;
        drop(store);
        Ok((Hozon::open(data, key_file)?, password))
    }

    /// Full-text search over stored pages. Only fully stored pages are returned; the audit
    /// entry records who searched and how many results came back, never the query text
    /// (it may be a name).
    pub fn search(&self, actor: &Actor, query: &str, limit: usize) -> Result<Vec<SearchResult>> {
        let hits = self.index.search(query, limit)?;
        let mut out = Vec::with_capacity(hits.len());
        for h in hits {
            let Some(id) = RecordId::parse(&h.record_id) else {
                continue;
            };
            let Some(rec) = self.store.record(&id)? else {
                continue;
            };
            if rec.state != RecordState::Stored || rec.kind != RecordKind::Page {
                continue;
            }
            out.push(SearchResult {
                record_id: id,
                received_at: rec.received_at,
                snippet_html: h.snippet_html,
            });
        }
        self.store.audit(Event::new(
            &actor.name,
            "search",
            &format!("{} results", out.len()),
            "ok",
        ))?;
        Ok(out)
    }

    fn visible_page(&self, id: &RecordId) -> Result<Record> {
        match self.store.record(id)? {
            Some(r) if r.state == RecordState::Stored && r.kind == RecordKind::Page => Ok(r),
            _ => Err(Error::NotFound(id.to_string())),
        }
    }

    /// The page image as received (decrypted), audited as a view.
    pub fn page_original(&self, actor: &Actor, id: &RecordId) -> Result<Vec<u8>> {
        let rec = self.visible_page(id)?;
        let bytes = self.store.read_blob(&rec, BlobRole::Original)?;
        self.store
            .audit(Event::new(&actor.name, "record.view", id.as_str(), "ok"))?;
        Ok(bytes)
    }

    /// A PNG thumbnail `width` pixels wide, made in memory.
    pub fn page_thumbnail(&self, actor: &Actor, id: &RecordId, width: u32) -> Result<Vec<u8>> {
        let original = self.page_original(actor, id)?;
        let page = crate::capture::decode_page(&original)
            .map_err(|e| Error::Corrupt(format!("stored page {id}: {e}")))?;
        let h = (u64::from(page.gray.height()) * u64::from(width)
            / u64::from(page.gray.width().max(1))) as u32;
        let thumb = image::imageops::thumbnail(&page.gray, width, h.max(1));
        let mut out = Vec::new();
        thumb
            .write_to(&mut std::io::Cursor::new(&mut out), image::ImageFormat::Png)
            .map_err(|e| Error::Corrupt(e.to_string()))?;
        Ok(out)
    }

    /// The OCR text of a page (decrypted), audited as a view.
    pub fn page_text(&self, actor: &Actor, id: &RecordId) -> Result<String> {
        let rec = self.visible_page(id)?;
        let text = self.store.read_blob(&rec, BlobRole::Text)?;
        self.store
            .audit(Event::new(&actor.name, "record.view", id.as_str(), "ok"))?;
        Ok(String::from_utf8_lossy(&text).into_owned())
    }

    /// Rebuilds the search index from the stored OCR text. `progress` is called per record.
    pub fn reindex(&self, mut progress: impl FnMut(usize, usize)) -> Result<usize> {
        let pages: Vec<Record> = self
            .store
            .records()
            .filter(|r| {
                r.as_ref().map_or(true, |r| {
                    r.state == RecordState::Stored && r.kind == RecordKind::Page
                })
            })
            .collect::<std::result::Result<_, _>>()?;
        self.index.clear()?;
        for (i, rec) in pages.iter().enumerate() {
            let text = self.store.read_blob(rec, BlobRole::Text)?;
            self.index.put(
                rec.id.as_str(),
                &String::from_utf8_lossy(&text),
                rec.received_at,
            )?;
            progress(i + 1, pages.len());
        }
        self.store.audit(Event::system(
            "index.rebuild",
            &format!("{} records", pages.len()),
        ))?;
        Ok(pages.len())
    }
}
