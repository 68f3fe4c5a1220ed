//! `Hozon`: the opened instance (store, search index, OCR settings) that cli and web share.
//! Domain operations that span modules live here and take an [`Actor`], so the web and the
//! CLI cannot drift apart in what they check and audit.

mod api;
mod batches;
mod casefile;
mod cases;
mod export;
mod linking;
mod review;
mod search;
mod sheets;
mod sorting;

use std::path::{Path, PathBuf};

pub use casefile::{CaseFile, CasePage, PersonQuery};
pub use cases::ImportReport;
pub use export::{Created, Plan};
pub(crate) use linking::CASE_PAGES;
pub use linking::{CaseMatch, probe};
pub use review::{CaseChoice, QueueFilter, QueueItem, ReviewView};
pub use search::{CaseGroup, SearchOptions, SearchOutcome, group_by_case};
pub use sorting::{Filing, SortItem};

use crate::audit::Event;
use crate::auth::{Actor, Function, Level};
use crate::error::{Error, Result};
use crate::index::SearchIndex;
use crate::store::{BlobRole, Record, RecordId, RecordKind, RecordState, Store};

pub struct Hozon {
    /// Private to the crate: the web and the command line reach records only through
    /// `Hozon`'s methods, which take an `Actor` and check it (a source test keeps `web/` and
    /// `cli/` off these two fields).
    pub(crate) store: Store,
    pub(crate) index: SearchIndex,
    pub tessdata: PathBuf,
    pub config: crate::config::Config,
    /// The policy *files* as found now: what `policy check` compares and `policy apply`
    /// applies. Nothing is dated or destroyed by them until applied.
    pub policies: crate::retention::policy::PolicySet,
    /// The policies last applied (kept in the store): every due date, plan and execution
    /// uses these, so an edited file changes nothing until an officer applies it.
    applied: std::sync::RwLock<std::sync::Arc<crate::retention::policy::PolicySet>>,
    /// Form templates (`ocr-models/forms`); pages matching none are kept unclassified.
    pub forms: Vec<crate::forms::template::Template>,
    /// What a page no template fits can be filed as (`document-types.toml` beside the
    /// templates), each with its record class.
    pub doc_types: Vec<crate::forms::doctypes::DocType>,
    /// The PP-OCR field recognizer's model file (each ingest worker loads its own).
    pub ppocr_model: PathBuf,
    /// Scans decoded for the review screen's field images (its dozen image requests per form
    /// share one decode); in memory only.
    pub(crate) review_pages: review::PageCache,
    /// Ingest workers running at once in this process (`capture.concurrent_decodes`): each
    /// holds OCR engines and one decoded page, so this bounds capture's memory however many
    /// uploads and hot-folder files arrive together.
    pub(crate) capture_permits: crate::permits::Permits,
    /// Serialises two-sheet pairing (see `sheets`).
    pub(crate) pairing: std::sync::Mutex<()>,
    /// One filing from the classification queue at a time (`app::sorting`).
    pub(crate) filing: std::sync::Mutex<()>,
    /// Serialises export runs and their steps (exactly once per application).
    pub(crate) exporting: std::sync::Mutex<()>,
}

/// The key file used when none is given: `HOZON_KEY_FILE`, else `<data>/master.key`.
pub fn default_key_file(data: &Path) -> PathBuf {
    std::env::var_os("HOZON_KEY_FILE").map_or_else(|| data.join("master.key"), PathBuf::from)
}

impl Hozon {
    /// User accounts: login, second factor, administration (each checks its actor).
    pub fn accounts(&self) -> crate::auth::Accounts<'_> {
        crate::auth::Accounts::new(&self.store, &self.config.security)
    }

    /// Records an operation done outside the store (a key escrow copy, a backup destination
    /// pruned) in the audit chain, under `actor`.
    pub fn audit_event(&self, actor: &Actor, action: &str, target: &str, outcome: &str) -> Result<()> {
        Ok(self.store.audit(Event::new(actor.name(), action, target, outcome))?)
    }

    /// The data directory and key file this instance was opened with.
    pub fn paths(&self) -> (&Path, &Path) {
        (self.store.root(), self.store.key_file())
    }

    /// Whether an admin socket caller proved it holds this store's key file.
    pub fn admin_proof_ok(&self, message: &str, proof: &str) -> bool {
        self.store.admin_proof_ok(message, proof)
    }

    /// This store's answer to an admin socket caller's nonce (the server proving itself).
    pub fn admin_answer(&self, message: &str) -> String {
        self.store.admin_answer(message)
    }

    /// Logs one HTTP request (who, method and path, status) in the audit chain. Not flushed
    /// per request: the chain is flushed with the next durable write.
    pub fn audit_request(&self, who: &str, target: &str, status: &str) -> Result<()> {
        Ok(self.store.audit_unflushed(Event::new(who, "http", target, status))?)
    }

    /// A new master key: case records kept from before epoch sealing move into their epochs
    /// first, then every data key is re-wrapped and the old master key is gone. Returns the
    /// new key's fingerprint and the number of case records moved. Only the operator (who
    /// holds the key file) does this.
    pub fn rotate_master_key(&mut self, actor: &Actor) -> Result<(String, usize)> {
        actor.require(Function::Users, Level::Update)?;
        actor.require_second_factor()?;
        let cases = self.migrate_legacy_cases()?;
        Ok((self.store.rotate_master_key()?, cases))
    }

    /// The store itself, for integration tests that plant or inspect raw state.
    #[cfg(feature = "internals")]
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The search index itself, for integration tests.
    #[cfg(feature = "internals")]
    pub fn index(&self) -> &SearchIndex {
        &self.index
    }

    fn assemble(
        store: Store,
        index: SearchIndex,
        config: crate::config::Config,
        policies: crate::retention::policy::PolicySet,
    ) -> Result<Hozon> {
        let forms_dir = crate::forms::template::default_dir();
        let forms = crate::forms::template::load_dir(&forms_dir)?;
        let doc_types = crate::forms::doctypes::load(&forms_dir)?;
        let applied = applied_or_adopt(&store, &policies)?;
        // Every class a form or document type files pages as has a policy: a page is never
        // stored without a retention period.
        for (class, by) in crate::forms::doctypes::named_classes(&forms, &doc_types, &forms_dir) {
            applied.require(class, &by)?;
        }
        for t in &forms {
            crate::index::vocab::define(&t.form, &t.title);
        }
        for d in &doc_types {
            crate::index::vocab::define(&d.key, &d.label);
        }
        let applied = std::sync::RwLock::new(std::sync::Arc::new(applied));
        Ok(Hozon {
            capture_permits: crate::permits::Permits::new(config.capture.concurrent_decodes),
            pairing: std::sync::Mutex::new(()),
            filing: std::sync::Mutex::new(()),
            exporting: std::sync::Mutex::new(()),
            store,
            index,
            tessdata: crate::ocr::default_tessdata(),
            config,
            policies,
            applied,
            forms,
            doc_types,
            ppocr_model: crate::ocr::ppocr::default_model(),
            review_pages: review::PageCache::new(review::CACHED_PAGES),
        })
    }

    pub fn open(data: &Path, key_file: &Path) -> Result<Hozon> {
        let config = crate::config::Config::load(data)?;
        let policies = crate::retention::policy::PolicySet::load_dir(&crate::retention::policy::default_dir())?;
        let store = Store::open(data, key_file)?;
        let index = SearchIndex::open(store.index_directory()?)?;
        let h = Hozon::assemble(store, index, config, policies)?;
        h.build_review_queue()?;
        Ok(h)
    }

    /// Creates a data directory with its key file and the first administrator; returns the
    /// administrator's one-time password.
    pub fn init(data: &Path, key_file: &Path) -> Result<(Hozon, String)> {
        let store = Store::init(data, key_file)?;
        let config_path = data.join("config.toml");
        if !config_path.exists() {
            std::fs::write(&config_path, crate::config::Config::default_text())
                .map_err(|e| Error::Io { path: config_path.clone(), source: e })?;
        }
        store.audit(Event::system("init", "data directory created"))?;
        let password = crate::auth::bootstrap_admin(&store, chrono::Utc::now())?;
        let config = crate::config::Config::load(data)?;
        let policies = crate::retention::policy::PolicySet::load_dir(&crate::retention::policy::default_dir())?;
        let index = SearchIndex::open(store.index_directory()?)?;
        Ok((Hozon::assemble(store, index, config, policies)?, password))
    }

    /// A stored page `actor` may open ([`Hozon::check_page_access`]: the same rules search
    /// applies, so a URL cannot get round them).
    pub(crate) fn visible_page(&self, actor: &Actor, id: &RecordId) -> Result<Record> {
        actor.require(Function::Search, Level::View)?;
        match self.store.record(id)? {
            Some(r) if r.state == RecordState::Stored && r.kind == RecordKind::Page => {
                self.check_page_access(actor, &r, false)?;
                Ok(r)
            }
            _ => Err(Error::NotFound(id.to_string())),
        }
    }

    /// The page image as received (decrypted), audited as a view.
    pub fn page_original(&self, actor: &Actor, id: &RecordId) -> Result<Vec<u8>> {
        let rec = self.visible_page(actor, id)?;
        let bytes = self.store.read_blob(&rec, BlobRole::Original)?;
        self.store.audit(Event::new(actor.name(), "record.view", id.as_str(), "ok"))?;
        Ok(bytes)
    }

    /// A PNG thumbnail `width` pixels wide, made in memory, upright (turned as it was for
    /// reading: a page fed sideways is shown the right way up).
    pub fn page_thumbnail(&self, actor: &Actor, id: &RecordId, width: u32) -> Result<Vec<u8>> {
        let rec = self.visible_page(actor, id)?;
        let original = self.store.read_blob(&rec, BlobRole::Original)?;
        self.store.audit(Event::new(actor.name(), "record.view", id.as_str(), "ok"))?;
        let page =
            crate::capture::decode_page(&original).map_err(|e| Error::Corrupt(format!("stored page {id}: {e}")))?;
        // Pages stored before frames were recorded have none: as scanned.
        let turns = self
            .store
            .read_blob(&rec, BlobRole::Info)
            .ok()
            .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
            .and_then(|v| v.pointer("/frame/turns").and_then(serde_json::Value::as_u64))
            .unwrap_or(0) as u8;
        let gray = crate::forms::upright::apply(&page.gray, crate::forms::upright::Frame { turns, scale: 1.0 });
        let h = (u64::from(gray.height()) * u64::from(width) / u64::from(gray.width().max(1))) as u32;
        let thumb = image::imageops::thumbnail(gray.as_ref(), width, h.max(1));
        let mut out = Vec::new();
        thumb
            .write_to(&mut std::io::Cursor::new(&mut out), image::ImageFormat::Png)
            .map_err(|e| Error::Corrupt(e.to_string()))?;
        Ok(out)
    }

    /// The OCR text of a page (decrypted), audited as a view.
    pub fn page_text(&self, actor: &Actor, id: &RecordId) -> Result<String> {
        let rec = self.visible_page(actor, id)?;
        let text = self.store.read_blob(&rec, BlobRole::Text)?;
        self.store.audit(Event::new(actor.name(), "record.view", id.as_str(), "ok"))?;
        Ok(String::from_utf8_lossy(&text).into_owned())
    }
}

/// Retention dates.
impl Hozon {
    /// The retention a record gets under the applied policies.
    pub fn retention_for(&self, rec: &Record) -> Result<crate::store::Retention> {
        let applied = self.applied_policies();
        let p = applied.get(&rec.class)?;
        Ok(crate::store::Retention { policy_version: p.version, due_on: p.due_on(&rec.dates()) })
    }

    /// The policies in force (last applied), whatever the files say now.
    pub fn applied_policies(&self) -> std::sync::Arc<crate::retention::policy::PolicySet> {
        self.applied.read().expect("applied policies lock").clone()
    }

    /// Makes the policy files the applied set (after `apply_policies` re-dated the records).
    pub(crate) fn set_applied_policies(&self, event: Event) -> Result<()> {
        let all: Vec<&crate::retention::policy::Policy> = self.policies.all().collect();
        self.store.put_doc(APPLIED.0, APPLIED.1, &serde_json::to_vec(&all).expect("policies serialise"), event)?;
        *self.applied.write().expect("applied policies lock") = std::sync::Arc::new(self.policies.clone());
        Ok(())
    }
}

/// Where the applied policy set is kept (`docs` tree, `policy/applied`).
const APPLIED: (&str, &str) = ("policy", "applied");

/// The applied policy set from the store; a store that has none (new, or made before the
/// distinction) adopts the files as they are, audited. A class the store's set lacks (added
/// by a new release) is taken from the files.
fn applied_or_adopt(
    store: &Store,
    files: &crate::retention::policy::PolicySet,
) -> Result<crate::retention::policy::PolicySet> {
    match store.get_doc(APPLIED.0, APPLIED.1)? {
        Some(v) => {
            let stored: Vec<crate::retention::policy::Policy> =
                serde_json::from_slice(&v).map_err(|e| Error::Corrupt(format!("applied policies: {e}")))?;
            let known: std::collections::BTreeSet<String> = stored.iter().map(|p| p.class.clone()).collect();
            let set = crate::retention::policy::PolicySet::from_policies(stored, files)?;
            let all: Vec<&crate::retention::policy::Policy> = set.all().collect();
            let new: Vec<&str> = all.iter().map(|p| p.class.as_str()).filter(|c| !known.contains(*c)).collect();
            if !new.is_empty() {
                // A class this release added: adopted once, audited, and from then on applied
                // like the rest (a later edit of its file changes nothing until applied).
                store.put_doc(
                    APPLIED.0,
                    APPLIED.1,
                    &serde_json::to_vec(&all).expect("policies serialise"),
                    Event::system("policy.adopt", &format!("new classes: {}", new.join(", "))),
                )?;
            }
            Ok(set)
        }
        None => {
            let all: Vec<&crate::retention::policy::Policy> = files.all().collect();
            store.put_doc(
                APPLIED.0,
                APPLIED.1,
                &serde_json::to_vec(&all).expect("policies serialise"),
                Event::system("policy.adopt", &format!("{} policies", all.len())),
            )?;
            Ok(files.clone())
        }
    }
}

/// Audit log reading: rights are checked here so the web and the CLI agree.
impl Hozon {
    /// Entries matching `filter`, newest first, at most `limit`.
    pub fn audit_search(
        &self,
        actor: &Actor,
        filter: &crate::audit::report::Filter,
        limit: usize,
    ) -> Result<Vec<crate::audit::Entry>> {
        actor.require(Function::Audit, Level::View)?;
        let mut out: Vec<_> = self.store.audit_entries()?.into_iter().filter(|e| filter.matches(e)).collect();
        out.reverse();
        out.truncate(limit);
        Ok(out)
    }

    /// Checks the audit chain end to end (and against `checkpoints` kept elsewhere).
    pub fn audit_verify(
        &self,
        actor: &Actor,
        checkpoints: &[crate::audit::Checkpoint],
    ) -> Result<std::result::Result<u64, crate::audit::Broken>> {
        actor.require(Function::Audit, Level::View)?;
        Ok(self.store.verify_audit(checkpoints)?)
    }

    /// The checkpoints in the chain (to be copied somewhere the log's writer cannot reach).
    pub fn audit_checkpoints(&self, actor: &Actor) -> Result<Vec<crate::audit::Checkpoint>> {
        actor.require(Function::Audit, Level::View)?;
        Ok(crate::audit::checkpoints(&self.store.audit_entries()?))
    }

    /// Deletes sealed blobs no record refers to (left by a crash before their record was
    /// saved); returns how many.
    pub fn gc_orphans(&self, actor: &Actor) -> Result<usize> {
        actor.require(Function::Capture, Level::Update)?;
        Ok(self.store.gc_orphans()?)
    }

    pub fn audit_report(&self, actor: &Actor, year: i32, month: u32) -> Result<crate::audit::report::Monthly> {
        actor.require(Function::Audit, Level::View)?;
        let entries = self.store.audit_entries()?;
        Ok(crate::audit::report::monthly(&entries, year, month, self.config.security.report_views_per_day))
    }

    /// CSV of matching entries (UTF-8 with BOM so Excel opens it); needs a recent second factor.
    pub fn audit_csv(&self, actor: &Actor, filter: &crate::audit::report::Filter) -> Result<Vec<u8>> {
        actor.require(Function::Audit, Level::View)?;
        actor.require_second_factor()?;
        let mut w = crate::csvout::Csv::new();
        w.row(["seq", "at", "actor", "action", "target", "outcome", "hash"])?;
        for e in self.store.audit_entries()?.iter().filter(|e| filter.matches(e)) {
            w.row([&e.seq.to_string(), &e.at.to_rfc3339(), &e.actor, &e.action, &e.target, &e.outcome, &e.hash])?;
        }
        self.store.audit(Event::new(actor.name(), "audit.export", "csv", "ok"))?;
        Ok(w.finish(crate::csvout::Encoding::Utf8Bom)?)
    }

    /// The account review list as CSV (UTF-8 with BOM).
    pub fn users_csv(&self, actor: &Actor) -> Result<Vec<u8>> {
        let users = crate::auth::list_users(&self.store, actor)?;
        let mut w = crate::csvout::Csv::new();
        w.row(["user", "role", "rights", "expires_on", "locked", "totp", "last_login", "password_changed"])?;
        for u in &users {
            w.row([
                u.name.as_str(),
                u.role.label_ja(),
                &u.rights.summary(),
                &u.expires_on.to_string(),
                if u.locked { "yes" } else { "no" },
                if u.totp_enrolled() { "yes" } else { "no" },
                &u.last_login_at.map(|t| t.to_rfc3339()).unwrap_or_default(),
                &u.password_changed_at.to_rfc3339(),
            ])?;
        }
        self.store.audit(Event::new(actor.name(), "users.export", "csv", "ok"))?;
        Ok(w.finish(crate::csvout::Encoding::Utf8Bom)?)
    }
}
