//! The ingest pipeline: file → checks → form recognition (or full-page OCR) → sealed blobs →
//! index → visible record.
//!
//! A page that matches a form template is read field by field (PP-OCR) into a draft, stored
//! sealed beside the image; its index text is the form's labels and values, so no full-page
//! OCR is needed. A page no template matches is read whole by Tesseract and kept unclassified.
//!
//! Workers (one Tesseract engine and one PP-OCR model each) pull files from a shared cursor; a bad file is
//! quarantined (kept sealed, never indexed) and the batch goes on. The storage steps and their
//! crash safety are described in `store`; this module only orders the calls. A source file is
//! removed from the inbox after its record is durably stored, unless `keep_files` is set.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use crate::app::Hozon;
use crate::audit::Event;
use crate::auth::{Actor, Function, Level};
use crate::capture::{DecodedPage, Pages, Rejection, scan_files};
use crate::error::{Error, Result};
use crate::index::normalise;
use crate::ocr::TesseractEngine;
use crate::ocr::ppocr::PpOcr;
use crate::store::{BlobRef, BlobRole, PageOutcome, Record, RecordId, RecordKind, RecordState};

#[derive(Debug, Clone)]
pub struct IngestOptions {
    /// Parallel OCR workers (each holds a Tesseract engine, ~90 MB).
    pub jobs: usize,
    /// Leave source files in place after storing them.
    pub keep_files: bool,
    /// Draw a progress bar on stderr.
    pub progress: bool,
    /// The logged batch (進達) the pages belong to; counted in its progress.
    pub batch: Option<String>,
}

impl Default for IngestOptions {
    fn default() -> Self {
        IngestOptions { jobs: 2, keep_files: false, progress: false, batch: None }
    }
}

/// Where pages come from: a file in a folder (removed once stored) or an upload held in
/// memory (never written to disk in plaintext).
#[derive(Debug)]
pub enum Source {
    File(PathBuf),
    Upload { name: String, bytes: Vec<u8> },
}

impl Source {
    fn label(&self) -> PathBuf {
        match self {
            Source::File(p) => p.clone(),
            Source::Upload { name, .. } => PathBuf::from(name),
        }
    }
}

/// What happened to each file.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Stored(RecordId),
    /// The same bytes were stored before: nothing was written.
    Duplicate(RecordId),
    Quarantined(RecordId, Rejection),
    /// Pages a limit stopped (too many, too much decoded): not stored; the file is kept (left
    /// in a `.refused` folder beside it, or for an upload sealed whole as a quarantined record)
    /// and the batch counts them as failed.
    Refused(Rejection),
    /// The file could not even be read (permissions, vanished); nothing was stored.
    Failed(String),
}

#[derive(Debug, Default)]
pub struct IngestReport {
    pub files: Vec<(PathBuf, Outcome)>,
    pub seconds: f64,
    /// Pages stored that no form template fitted: waiting in the classification queue.
    pub unfiled: usize,
}

impl IngestReport {
    pub fn count(&self, f: impl Fn(&Outcome) -> bool) -> usize {
        self.files.iter().filter(|(_, o)| f(o)).count()
    }
    pub fn stored(&self) -> usize {
        self.count(|o| matches!(o, Outcome::Stored(_)))
    }
    pub fn duplicates(&self) -> usize {
        self.count(|o| matches!(o, Outcome::Duplicate(_)))
    }
    pub fn quarantined(&self) -> usize {
        self.count(|o| matches!(o, Outcome::Quarantined(..)))
    }
    pub fn failed(&self) -> usize {
        self.count(|o| matches!(o, Outcome::Failed(_)))
    }
    pub fn refused(&self) -> usize {
        self.count(|o| matches!(o, Outcome::Refused(_)))
    }
}

#[derive(serde::Serialize)]
struct PageInfo<'a> {
    file_name: &'a str,
    width: u32,
    height: u32,
    format: &'a str,
    /// Tesseract's mean word confidence, for pages read whole (unclassified).
    ocr_mean_confidence: Option<i32>,
    /// Page number and page count, for a page of a multi-page file.
    page_of: Option<(usize, usize)>,
    /// How the page was turned and scaled to be read (a page fed sideways is shown upright).
    #[serde(skip_serializing_if = "crate::forms::upright::Frame::is_identity")]
    frame: crate::forms::upright::Frame,
}

pub fn ingest_dir(h: &Hozon, actor: &Actor, dir: &Path, opts: &IngestOptions) -> Result<IngestReport> {
    actor.require(Function::Capture, Level::Update)?;
    let files = scan_files(dir).map_err(|e| Error::Io { path: dir.to_owned(), source: e })?;
    ingest_sources(h, actor, files.into_iter().map(Source::File).collect(), opts)
}

/// Files uploaded into a batch by a person: the upload is audited under their name, then
/// ingested like a folder.
pub fn ingest_upload(h: &Hozon, actor: &Actor, batch: &str, files: Vec<Source>) -> Result<IngestReport> {
    actor.require(Function::Capture, Level::Update)?;
    let n = files.len();
    h.store.audit(Event::new(actor.name(), "batch.upload", batch, &format!("{n} files")))?;
    let opts = IngestOptions { batch: Some(batch.to_owned()), ..Default::default() };
    ingest_sources(h, actor, files, &opts)
}

/// A source's index in the run and what became of each of its pages.
type SourceOutcomes = (usize, Vec<(PathBuf, Outcome)>);

/// Ingests files or uploads; a multi-page file gives one record per page (reported as
/// `name#2`, `name#3`, …).
/// Every page stored is audited under `actor` (a mailroom user, the CLI operator, or the hot
/// folder's system job), who needs `capture=update`.
pub fn ingest_sources(h: &Hozon, actor: &Actor, files: Vec<Source>, opts: &IngestOptions) -> Result<IngestReport> {
    actor.require(Function::Capture, Level::Update)?;
    if let Some(b) = &opts.batch
        && h.batch_by_id(b)?.is_none()
    {
        return Err(Error::NotFound(format!("batch {b}")));
    }
    let started = Instant::now();
    // Blobs left by an earlier crash (sealed under keys that were never saved) go first. Safe
    // here: sled's lock means no other process is writing to this data directory.
    h.store.gc_orphans()?;
    let bar = if opts.progress {
        let b = indicatif::ProgressBar::new(files.len() as u64);
        b.set_style(
            indicatif::ProgressStyle::with_template(
                "{spinner} 取込中 [{bar:40}] {pos}/{len} ページ {per_sec} 残り {eta}",
            )
            .expect("valid template")
            .progress_chars("=> "),
        );
        b
    } else {
        indicatif::ProgressBar::hidden()
    };
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<SourceOutcomes>> = Mutex::new(Vec::with_capacity(files.len()));
    let jobs = opts.jobs.clamp(1, 16).min(files.len().max(1));
    let engine_error: Mutex<Option<Error>> = Mutex::new(None);
    std::thread::scope(|s| {
        for _ in 0..jobs {
            s.spawn(|| {
                // Engines and pages take memory: only so many workers run in the process.
                let _permit = h.capture_permits.acquire();
                let engines = TesseractEngine::new(&h.tessdata, "jpn")
                    .map_err(Error::from)
                    .and_then(|t| Ok((t, PpOcr::load(&h.ppocr_model).map_err(crate::ocr::Error::from)?)));
                let (mut engine, mut ppocr) = match engines {
                    Ok(e) => e,
                    Err(e) => {
                        *engine_error.lock().expect("lock") = Some(e);
                        return;
                    }
                };
                loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    let Some(source) = files.get(i) else { break };
                    let path = source.label();
                    // A bug tripped by one hostile page (a panic) fails that file, not the batch.
                    let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        ingest_source(h, actor.name(), &mut engine, &mut ppocr, source, opts)
                    }));
                    let outcomes = match run {
                        Ok(r) => r.unwrap_or_else(|e| vec![(path.clone(), Outcome::Failed(crate::error::chain(&e)))]),
                        Err(panic) => {
                            let why = panic
                                .downcast_ref::<String>()
                                .cloned()
                                .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                                .unwrap_or_default();
                            vec![(
                                path.clone(),
                                Outcome::Failed(format!("内部エラーで読めませんでした (internal error: {why})")),
                            )]
                        }
                    };
                    for (path, outcome) in &outcomes {
                        if let Outcome::Quarantined(_, why) = outcome {
                            bar.println(format!("隔離 (quarantined): {}: {why}", path.display()));
                        }
                        if let Outcome::Failed(why) = outcome {
                            bar.println(format!("失敗 (failed): {}: {why}", path.display()));
                        }
                        if let Outcome::Refused(why) = outcome {
                            bar.println(format!("受付不可 (refused): {}: {why}", path.display()));
                        }
                    }
                    results.lock().expect("lock").push((i, outcomes));
                    bar.inc(1);
                }
            });
        }
    });
    bar.finish_and_clear();
    if let Some(e) = engine_error.into_inner().expect("lock") {
        return Err(e);
    }
    let mut by_source = results.into_inner().expect("lock");
    // Scan order (file order, then page order within a file): a carbon-copy set is scanned
    // sheet 1 then sheet 2, so each page is tried as the partner of the one before it.
    by_source.sort_by_key(|(i, _)| *i);
    let files: Vec<(PathBuf, Outcome)> = by_source.into_iter().flat_map(|(_, o)| o).collect();
    for pair in files.windows(2) {
        // Both pages are stored already: a failure here costs the pairing, never a page.
        if let [(_, Outcome::Stored(a)), (pb, Outcome::Stored(b))] = pair
            && let Err(e) = h.reconcile_sheets(a, b)
        {
            eprintln!("hozon: {}: sheets not reconciled: {}", pb.display(), crate::error::chain(&e));
        }
    }
    let mut unfiled = 0;
    for (_, o) in &files {
        if let Outcome::Stored(id) = o {
            unfiled += usize::from(h.store.record(id)?.is_some_and(|r| r.class == crate::store::UNCLASSIFIED));
        }
    }
    Ok(IngestReport { files, seconds: started.elapsed().as_secs_f64(), unfiled })
}

/// Ingests one source (every page of it); every outcome except an I/O failure on the source
/// is a normal result. Pages are decoded one at a time, each stored before the next is read.
/// The source file is removed only once all its pages are stored; if a limit refused any, the
/// file is kept (see [`Outcome::Refused`]).
fn ingest_source(
    h: &Hozon,
    by: &str,
    engine: &mut TesseractEngine,
    ppocr: &mut PpOcr,
    source: &Source,
    opts: &IngestOptions,
) -> Result<Vec<(PathBuf, Outcome)>> {
    let (path, bytes) = match source {
        Source::File(p) => (p.clone(), std::fs::read(p).map_err(|e| Error::Io { path: p.clone(), source: e })?),
        Source::Upload { name, bytes } => (PathBuf::from(name), bytes.clone()),
    };
    let file_name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let mut out = Vec::new();
    let mut pages = match Pages::open(&bytes, &h.config.capture) {
        Ok(p) => p,
        Err(why) => {
            let fp = h.store.scan_fingerprint(&bytes);
            out.push((path.clone(), ingest_page(h, by, engine, ppocr, &file_name, &bytes, fp, Err(why), opts, None)?));
            remove_source(source, opts)?;
            return Ok(out);
        }
    };
    if !pages.multi() {
        let page = pages.next_page().unwrap_or(Err(Rejection::Empty));
        let fp = h.store.scan_fingerprint(&bytes);
        out.push((path.clone(), ingest_page(h, by, engine, ppocr, &file_name, &bytes, fp, page, opts, None)?));
        remove_source(source, opts)?;
        return Ok(out);
    }
    // A TIFF or PDF: each page kept as a lossless PNG of its pixels (nothing else of the file).
    let n = pages.found();
    let mut i = 0;
    let mut bad_page = None;
    while let Some(page) = pages.next_page() {
        i += 1;
        let name = if n == 1 { file_name.clone() } else { format!("{file_name}#{i}") };
        if let Err(why) = &page {
            bad_page.get_or_insert_with(|| why.clone());
        }
        let mut png = Vec::new();
        if let Ok(p) = &page {
            p.gray
                .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
                .map_err(|e| Error::Corrupt(format!("{file_name} page {i}: {e}")))?;
        }
        let fp = h.store.scan_fingerprint(&[bytes.as_slice(), name.as_bytes()].concat());
        // A page bad on its own is quarantined with its reason (its record holds no pixels).
        let o = ingest_page(h, by, engine, ppocr, &name, &png, fp, page, opts, Some((i, n)))?;
        // Met again as the duplicate of a quarantined page (stored without pixels): the page
        // is still not stored, so the file must stay.
        if let Outcome::Duplicate(id) = &o
            && let Some(RecordKind::Quarantined { reason }) = h.store.record(id)?.map(|r| r.kind)
        {
            bad_page.get_or_insert(Rejection::Corrupt(reason));
        }
        out.push((PathBuf::from(format!("{}#{i}", path.display())), o));
    }
    // Nothing of a file is lost: if any page could not be stored, the file itself is kept.
    match (pages.refused(), bad_page) {
        (None, None) => remove_source(source, opts)?,
        (None, Some(why)) => {
            keep_refused(h, by, engine, ppocr, source, &bytes, &why, opts)?;
        }
        (Some((from, why)), _) => {
            let refused = n.saturating_sub(from - 1);
            if let Some(batch) = &opts.batch {
                h.store.mark_batch_refused(batch, &h.store.scan_fingerprint(&bytes), *from, refused)?;
            }
            let kept = keep_refused(h, by, engine, ppocr, source, &bytes, why, opts)?;
            let label = PathBuf::from(format!("{}#{from}-{n}", path.display()));
            out.push((label, Outcome::Refused(Rejection::PagesRefused(format!("{why} {kept}")))));
        }
    }
    Ok(out)
}

/// Keeps a file some of whose pages a limit refused: an inbox file moves to `.refused/`
/// beside it (the hot folder and `ingest` skip hidden folders, so it is not read again); an
/// upload, which exists only in memory, is sealed whole as one quarantined record. Returns
/// where it went, for the message.
#[allow(clippy::too_many_arguments)]
fn keep_refused(
    h: &Hozon,
    by: &str,
    engine: &mut TesseractEngine,
    ppocr: &mut PpOcr,
    source: &Source,
    bytes: &[u8],
    why: &Rejection,
    opts: &IngestOptions,
) -> Result<String> {
    match source {
        Source::File(p) => {
            let dir = p.parent().unwrap_or(Path::new(".")).join(".refused");
            std::fs::create_dir_all(&dir).map_err(|e| Error::Io { path: dir.clone(), source: e })?;
            let to = dir.join(p.file_name().unwrap_or_default());
            std::fs::rename(p, &to).map_err(|e| Error::Io { path: to.clone(), source: e })?;
            Ok(format!("(ファイルは {} に保管しました)", to.display()))
        }
        Source::Upload { name, .. } => {
            let fp = h.store.scan_fingerprint(&[bytes, b"#refused"].concat());
            let reason = Rejection::PagesRefused(why.to_string());
            match ingest_page(h, by, engine, ppocr, name, bytes, fp, Err(reason), opts, None)? {
                Outcome::Quarantined(id, _) | Outcome::Duplicate(id) => {
                    Ok(format!("(ファイル全体を隔離記録 {id} として保管しました)"))
                }
                other => Err(Error::Corrupt(format!("{name}: keeping the refused upload gave {other:?}"))),
            }
        }
    }
}

/// Stores one page: recognised into a draft, or read whole, or quarantined.
#[allow(clippy::too_many_arguments)]
fn ingest_page(
    h: &Hozon,
    by: &str,
    engine: &mut TesseractEngine,
    ppocr: &mut PpOcr,
    file_name: &str,
    bytes: &[u8],
    fp: [u8; 32],
    decoded: std::result::Result<DecodedPage, Rejection>,
    opts: &IngestOptions,
    page_of: Option<(usize, usize)>,
) -> Result<Outcome> {
    let store = &h.store;
    if let Some(id) = store.dedupe_lookup(&fp)?
        && let Some(r) = store.record(&id)?.filter(|r| r.state == RecordState::Stored)
    {
        // Met again after a crash that came before its pairing: pair it now.
        if let Err(e) = h.pair_sheet(&r) {
            eprintln!("hozon: {file_name}: sheets not paired: {}", crate::error::chain(&e));
        }
        return Ok(Outcome::Duplicate(id));
    }
    let id = RecordId::from_fingerprint(&fp);
    let key = store.new_data_key();
    let received_at = chrono::Utc::now();
    let (kind, blobs, text, draft) = match &decoded {
        Err(why) => {
            let info = serde_json::json!({ "file_name": file_name, "size": bytes.len() });
            let blobs = vec![
                store.put_blob(&id, &key, BlobRole::Original, bytes)?,
                store.put_blob(&id, &key, BlobRole::Info, info.to_string().as_bytes())?,
            ];
            (RecordKind::Quarantined { reason: why.to_string() }, blobs, None, None)
        }
        Ok(page) => {
            let scan = crate::forms::read_scan(&page.gray, page.dpi, &h.forms, ppocr)?;
            let draft = scan.reading.as_ref().map(|reading| {
                let template = h.forms.iter().find(|t| t.id() == reading.template).expect("template of a reading");
                crate::drafts::from_reading(reading, template)
            });
            let (text, ocr_mean_confidence) = match &draft {
                Some(d) => (normalise(&d.index_text()), None),
                None => {
                    let read = engine.read_page(&scan.image, 300)?;
                    (normalise(&read.text), Some(read.mean_confidence))
                }
            };
            let info = PageInfo {
                file_name,
                page_of,
                width: page.gray.width(),
                height: page.gray.height(),
                format: page.format.extensions_str().first().copied().unwrap_or("?"),
                ocr_mean_confidence,
                frame: scan.frame,
            };
            let mut blobs: Vec<BlobRef> = vec![
                store.put_blob(&id, &key, BlobRole::Original, bytes)?,
                store.put_blob(&id, &key, BlobRole::Text, text.as_bytes())?,
                store.put_blob(&id, &key, BlobRole::Info, &serde_json::to_vec(&info).expect("info serialises"))?,
            ];
            if let Some(d) = &draft {
                let json = serde_json::to_vec(d).expect("draft serialises");
                blobs.push(store.put_blob(&id, &key, BlobRole::Draft, &json)?);
            }
            (RecordKind::Page, blobs, Some(text), draft)
        }
    };
    let mut rec = Record {
        wrapped_key: Vec::new(),
        key_epoch: None,
        past_epochs: Vec::new(),
        doc_type: None,
        // The batch's 受付日 is the receipt date the law counts from.
        received_on: match &opts.batch {
            Some(b) => h.batch_by_id(b)?.map(|b| b.received_on),
            None => None,
        },
        id: id.clone(),
        state: RecordState::Pending,
        kind,
        received_at,
        blobs,
        class: match &draft {
            Some(d) => {
                h.forms.iter().find(|t| t.id() == d.template).map_or_else(|| d.form.clone(), |t| t.class().to_owned())
            }
            None => crate::store::UNCLASSIFIED.to_owned(),
        },
        last_changed_at: None,
        decided_on: None,
        retention: None,
        batch: opts.batch.clone(),
    };
    rec.retention = Some(h.retention_for(&rec)?);
    store.seal_record_key(&mut rec, &key)?;
    store.put_pending(&rec)?;
    if let Some(text) = &text {
        h.index.put(&h.index_doc(&rec, text, draft.as_ref()))?;
    }
    rec.state = RecordState::Stored;
    let (action, outcome) = match decoded {
        Ok(_) => ("capture.store", Outcome::Stored(id.clone())),
        Err(why) => ("capture.quarantine", Outcome::Quarantined(id.clone(), why)),
    };
    store.commit_stored(&rec, &fp, Event::new(by, action, id.as_str(), "ok"))?;
    // The page is stored: a failed pairing costs the pairing (retried when the page or its
    // partner is met again), never the page.
    if draft.is_some()
        && let Err(e) = h.pair_sheet(&rec)
    {
        eprintln!("hozon: {file_name}: sheets not paired: {}", crate::error::chain(&e));
    }
    if let Some(batch) = &opts.batch {
        let counted = match (&outcome, &draft) {
            (Outcome::Quarantined(..), _) => PageOutcome::Failed,
            (_, Some(_)) => PageOutcome::Form,
            (_, None) => PageOutcome::Unclassified,
        };
        store.mark_batch_page(batch, &id, counted)?;
    }
    Ok(outcome)
}

fn remove_source(source: &Source, opts: &IngestOptions) -> Result<()> {
    match source {
        Source::File(path) if !opts.keep_files => {
            std::fs::remove_file(path).map_err(|e| Error::Io { path: path.to_owned(), source: e })
        }
        _ => Ok(()),
    }
}
