//! Input data for the subsidy system (入力データ作成), replacing the punch contractor: the pool
//! of verified, not yet exported applications, export runs (exactly once per application; a
//! later correction goes out as a 訂正 row), the protected hand-over file, the check lists,
//! and the subsidy system's result taken back (accepted rows linked to their case under the
//! number it assigned, refused rows back in the review queue with its reason).
//!
//! The pool is found without opening every draft: an application's last export keeps the
//! blob hashes of its pages (`export_state/<application>`), so only batches where some page
//! changed or was never exported are opened (`dirty` below).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{NaiveDate, Utc};
use sha2::{Digest, Sha256};

use super::Hozon;
use crate::audit::Event;
use crate::auth::{Actor, Function, Level};
use crate::cases::{Case, CaseLink, LinkMethod};
use crate::drafts::Draft;
use crate::drafts::review::ReviewStatus;
use crate::error::{Error, Result};
use crate::export::layout::Layout;
use crate::export::rows::{self, Application, Problem};
use crate::export::{
    ExportError, ExportRun, ExportState, FileInfo, HeldRow, ResultImport, RowOutcome, RunRow, RunStatus, Stamp, format,
    lists, result,
};
use crate::store::{BlobRole, Record, RecordId, RecordKind, RecordState};

const RUN: &str = "export_run";
const STATE: &str = "export_state";
const FILE: &str = "export_file";
/// `export_merge/<case key>` → the provisional case being merged into it (see `accept_row`).
const MERGE: &str = "export_merge";
const APPLICATION: &str = "application";
const MY_NUMBER_FORM: &str = "my_number_form";

fn corrupt(e: impl std::fmt::Display) -> Error {
    Error::Corrupt(format!("export: {e}"))
}

/// A page of the pool with its draft opened.
struct Page {
    rec: Record,
    draft: Draft,
}

/// One application found in the pool, before it is written.
struct Planned {
    application: RecordId,
    pages: Vec<RecordId>,
    drafts: Vec<(String, String)>,
    kind: String,
    municipality: String,
    values: BTreeMap<String, String>,
    problems: Vec<Problem>,
    prior: Option<ExportState>,
    /// For a 訂正 row: its reason (field labels) and the key of the row it corrects.
    correction: Option<(String, String)>,
    fingerprint: String,
}

/// A preview or a run about to be made: the run's record and each row's values.
pub struct Plan {
    pub run: ExportRun,
    cells: Vec<Vec<String>>,
    fingerprints: Vec<String>,
    drafts: Vec<Vec<(String, String)>>,
}

/// What the exporting user gets once: the run, and the ZIP's password (shown, never stored).
pub struct Created {
    pub run: ExportRun,
    pub password: String,
}

fn draft_hash(rec: &Record) -> String {
    rec.blobs.iter().find(|b| b.role == BlobRole::Draft).map(|b| b.addr.clone()).unwrap_or_default()
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

impl Hozon {
    /// The import layout: `[export] layout` in the config, else the shipped one.
    pub fn export_layout(&self) -> Result<Layout> {
        let path = crate::export::layout::path_for(&self.config);
        Ok(Layout::load(&path).map_err(ExportError::from)?)
    }

    fn load_states(&self) -> Result<HashMap<String, ExportState>> {
        self.store
            .docs(STATE)?
            .into_iter()
            .map(|(id, v)| Ok((id, serde_json::from_slice(&v).map_err(corrupt)?)))
            .collect()
    }

    /// Every verified application (or one held back, with why) not yet exported as it is now.
    fn plan(&self, from: Option<NaiveDate>, to: Option<NaiveDate>, layout: &Layout) -> Result<Vec<Planned>> {
        let states = self.load_states()?;
        // Pages already exported as they are now, by id → the application they went with.
        let mut covered: HashMap<String, &str> = HashMap::new();
        let mut exported_hash: HashMap<&str, &str> = HashMap::new();
        for (app, st) in &states {
            for (page, hash) in &st.drafts {
                covered.insert(page.clone(), app.as_str());
                exported_hash.insert(page.as_str(), hash.as_str());
            }
        }
        // Batches with a page that is new or changed since its export.
        let mut by_batch: BTreeMap<String, Vec<Record>> = BTreeMap::new();
        let mut dirty: BTreeSet<String> = BTreeSet::new();
        for rec in self.store.records() {
            let rec = rec?;
            if rec.state != RecordState::Stored
                || rec.kind != RecordKind::Page
                || !(rec.class == APPLICATION || rec.class == MY_NUMBER_FORM)
            {
                continue;
            }
            let batch = rec.batch.clone().unwrap_or_default();
            if exported_hash.get(rec.id.as_str()) != Some(&draft_hash(&rec).as_str()) {
                dirty.insert(batch.clone());
            }
            by_batch.entry(batch).or_default().push(rec);
        }
        let mut out = Vec::new();
        for batch in dirty {
            let recs = by_batch.remove(&batch).unwrap_or_default();
            let municipality = match batch.as_str() {
                "" => String::new(),
                b => self.batch_by_id(b)?.map(|b| b.municipality).unwrap_or_default(),
            };
            let mut pages = Vec::with_capacity(recs.len());
            for rec in recs {
                if let Some(draft) = self.draft_of(&rec)? {
                    pages.push(Page { rec, draft });
                }
            }
            pages.sort_by_key(|p| p.rec.received_at);
            for group in group_applications(&pages) {
                let planned = self.plan_one(&pages, &group, &municipality, &states, &covered, layout)?;
                if let Some(p) = planned {
                    let d = crate::jp::date_of(pages[group.main].rec.received_at);
                    if from.is_none_or(|f| d >= f) && to.is_none_or(|t| d <= t) {
                        out.push(p);
                    }
                }
            }
        }
        Ok(out)
    }

    /// The row of one application, or `None` when it went out before exactly as it is now.
    fn plan_one(
        &self,
        pages: &[Page],
        g: &Group,
        municipality: &str,
        states: &HashMap<String, ExportState>,
        covered: &HashMap<String, &str>,
        layout: &Layout,
    ) -> Result<Option<Planned>> {
        let main = &pages[g.main];
        let ids: Vec<RecordId> = g.members().map(|i| pages[i].rec.id.clone()).collect();
        let drafts: Vec<(String, String)> =
            g.members().map(|i| (pages[i].rec.id.to_string(), draft_hash(&pages[i].rec))).collect();
        // The application's id in the export states: the page it went out under before, if that
        // page is one of this group (a sheet 2 sent alone, its sheet 1 come since), else the
        // main page. A correction then goes out under the old row's key, never a second row.
        let state_id: RecordId = ids
            .iter()
            .find(|id| covered.get(id.as_str()).is_some_and(|app| ids.iter().any(|m| m.as_str() == *app)))
            .and_then(|id| RecordId::parse(covered[id.as_str()]))
            .unwrap_or_else(|| main.rec.id.clone());
        let prior = states.get(state_id.as_str()).cloned();
        if prior.as_ref().is_some_and(|p| p.drafts == drafts) {
            return Ok(None);
        }
        // A page that went out with an application outside this group (a pair mended since):
        // never sent twice under two keys; staff look at it.
        let elsewhere: BTreeSet<&str> = ids
            .iter()
            .filter_map(|id| covered.get(id.as_str()).copied())
            .filter(|app| *app != state_id.as_str())
            .collect();
        // The case the subsidy system knows (a provisional one has no number there yet).
        let mut case = None;
        if let Some(link) = g.members().find_map(|i| pages[i].draft.case.as_ref())
            && let Some(c) = self.load_case(&self.case_key(&link.recipient_no))?
            && !c.provisional
        {
            case = Some(c);
        }
        let app = Application {
            first: g.first.map(|i| &pages[i].draft),
            second: g.second.map(|i| &pages[i].draft),
            my_number: g.my_number.map(|i| &pages[i].draft),
            recipient_no: case.as_ref().map(|c| c.current.recipient_no.as_str()),
            application_no: case.as_ref().map(|c| c.current.application_no.as_str()).filter(|n| !n.is_empty()),
            received_on: crate::jp::date_of(main.rec.received_at),
            municipality,
        };
        let mut built = if g.first.is_none() && g.second.is_none() {
            let mut r = rows::RowValues::default();
            r.problems.push(Problem::hold("申請書が見つかりません（個人番号に係る調書のみ）"));
            r
        } else {
            rows::build(&app)
        };
        for app in &elsewhere {
            built.problems.push(Problem::hold(format!(
                "書類の組合せが前回の書き出しと変わりました（前回は記録 {app} の申請として出力）。内容を確認してください"
            )));
        }
        // The same verified content as exported last time (a page linked since, say, or the
        // number the subsidy system assigned): nothing to send.
        let fingerprint = self.content_fingerprint(g.members().map(|i| &pages[i].draft));
        // Refused by the subsidy system: its result says so, or (if the result's bookkeeping
        // was cut short) a page carries the refusal of that very row.
        let refused = prior.as_ref().is_some_and(|p| {
            p.outcome == RowOutcome::Rejected
                || (p.outcome == RowOutcome::Pending
                    && g.members().any(|i| pages[i].draft.returned.as_ref().is_some_and(|r| r.key == p.key)))
        });
        if let Some(p) = &prior
            && p.fingerprint == fingerprint
            && !refused
        {
            return Ok(None);
        }
        let correction = match &prior {
            Some(p) if !refused => {
                // A correction goes only after the row it corrects has reached the subsidy system.
                if let Some(r) =
                    self.store.get_doc(RUN, &p.run)?.and_then(|v| serde_json::from_slice::<ExportRun>(&v).ok())
                    && r.status != RunStatus::HandedOver
                {
                    built.problems.push(Problem::hold(format!(
                        "前回の書き出し {} がまだ引渡し前です（取り消して作り直すか、引渡し後に訂正を送ってください）",
                        p.run
                    )));
                }
                let mut labels: Vec<&str> = Vec::new();
                for i in g.members() {
                    let d = &pages[i].draft;
                    for c in d.review.iter().flat_map(|r| &r.corrections).filter(|c| c.at > p.at) {
                        let label = d.field(&c.field).map_or(c.field.as_str(), |f| f.label.as_str());
                        if !labels.contains(&label) {
                            labels.push(label);
                        }
                    }
                }
                // Labels only (never the staff's free text): it goes into the file and the run.
                let reason = match labels.len() {
                    0 => "内容の訂正".to_owned(),
                    1..=3 => format!("{}の訂正", labels.join("・")),
                    n => format!("{n}項目の訂正"),
                };
                Some((reason, p.key.clone()))
            }
            _ => None,
        };
        if g.my_number.is_none() && layout.column_of("my_number.my_number").is_some_and(|c| layout.columns[c].required)
        {
            built.problems.push(Problem::hold("個人番号に係る調書がありません"));
        }
        let kind = built.get("application.application_type").to_owned();
        Ok(Some(Planned {
            application: state_id,
            pages: ids,
            drafts,
            kind,
            municipality: municipality.to_owned(),
            values: built.values,
            problems: built.problems,
            prior,
            correction,
            fingerprint,
        }))
    }

    /// A keyed hash of what the application's pages say as verified (their field values):
    /// what a correction changes, and a link or an assigned number does not.
    fn content_fingerprint<'d>(&self, drafts: impl Iterator<Item = &'d Draft>) -> String {
        let mut s = String::new();
        for d in drafts {
            for f in &d.fields {
                s.push_str(&format!("{}#{:?}.{}\u{1f}{}\u{1e}", d.form, d.sheet, f.name, f.value));
            }
        }
        self.store.lookup_hash("export-row", &s)
    }

    /// The pool as a run would take it now (input_data=view): rows, held applications, counts.
    /// Nothing is written; the run id is a placeholder.
    pub fn export_preview(&self, actor: &Actor, from: Option<NaiveDate>, to: Option<NaiveDate>) -> Result<Plan> {
        actor.require(Function::InputData, Level::View)?;
        let layout = self.export_layout()?;
        // A placeholder id as wide as a real one (row keys must fit their column).
        let plan = self.make_plan(actor, &crate::export::run_id(crate::jp::today(), 0), from, to, &layout)?;
        self.store.audit(Event::new(
            actor.name(),
            "export.preview",
            &format!("rows {} held {}", plan.run.rows.len(), plan.run.held.len()),
            "ok",
        ))?;
        Ok(plan)
    }

    fn make_plan(
        &self,
        actor: &Actor,
        id: &str,
        from: Option<NaiveDate>,
        to: Option<NaiveDate>,
        layout: &Layout,
    ) -> Result<Plan> {
        let mut run = ExportRun::new(id, actor.name(), &layout.name, from, to);
        let (mut cells, mut fingerprints, mut drafts) = (Vec::new(), Vec::new(), Vec::new());
        for mut p in self.plan(from, to, layout)? {
            let seq = run.rows.len() + 1;
            let key = crate::export::row_key(id, seq);
            let (kind, reason, original) = match &p.correction {
                Some((reason, original)) => ("訂正", reason.clone(), original.clone()),
                None => ("通常", String::new(), String::new()),
            };
            p.values.insert("row.key".into(), key.clone());
            p.values.insert("row.seq".into(), seq.to_string());
            p.values.insert("row.kind".into(), kind.into());
            p.values.insert("row.correction_reason".into(), reason);
            p.values.insert("row.original_key".into(), original);
            let line = match format::cells(layout, &p.values) {
                Ok(line) => Some(line),
                Err(problems) => {
                    p.problems.extend(problems);
                    None
                }
            };
            let page_ids = p.pages.iter().map(|i| i.to_string()).collect();
            match line.filter(|_| !p.problems.iter().any(|x| x.hold)) {
                None => run.held.push(HeldRow {
                    application: p.application.to_string(),
                    pages: page_ids,
                    kind: p.kind,
                    municipality: p.municipality,
                    reasons: p.problems.into_iter().map(|x| x.message).collect(),
                }),
                Some(line) => {
                    run.rows.push(RunRow {
                        seq,
                        key,
                        application: p.application.to_string(),
                        pages: page_ids,
                        kind: p.kind,
                        correction: p.correction.is_some(),
                        municipality: p.municipality,
                        warnings: p.problems.into_iter().map(|x| x.message).collect(),
                        prior: p.prior,
                        outcome: RowOutcome::Pending,
                    });
                    cells.push(line);
                    fingerprints.push(p.fingerprint);
                    drafts.push(p.drafts);
                }
            }
        }
        Ok(Plan { run, cells, fingerprints, drafts })
    }

    /// Makes an export run (input_data=update, the My Number right, a recent second factor):
    /// every row of the pool written in the layout into an AES-256 ZIP sealed in the store,
    /// each application marked exported, all in one audited write. The password is returned
    /// once and kept nowhere.
    pub fn export_create(&self, actor: &Actor, from: Option<NaiveDate>, to: Option<NaiveDate>) -> Result<Created> {
        Self::require_file_rights(actor)?;
        actor.require_second_factor()?;
        let layout = self.export_layout()?;
        let _one = self.exporting.lock().unwrap_or_else(|p| p.into_inner());
        let today = crate::jp::today();
        let prefix = format!("{RUN}/EX{}-", today.format("%Y%m%d"));
        let n = self.store.doc_keys(&prefix)?.len() + 1;
        let id = crate::export::run_id(today, n);
        let Plan { mut run, cells, fingerprints, drafts } = self.make_plan(actor, &id, from, to, &layout)?;
        if run.rows.is_empty() {
            return Err(ExportError::Nothing.into());
        }
        let data = format::render(&layout, &cells).map_err(ExportError::Write)?;
        let data_name = format!("{}_{id}.{}", layout.file_stem, layout.extension());
        let manifest = manifest_text(&run, &data_name, &data);
        let password = crate::export::new_password();
        let zip = seal_zip(&[(&data_name, &data), ("MANIFEST.txt", manifest.as_bytes())], &password)?;
        run.file = FileInfo {
            name: format!("{}_{id}.zip", layout.file_stem),
            data_name,
            bytes: zip.len() as u64,
            sha256: sha256_hex(&zip),
            data_sha256: sha256_hex(&data),
        };
        let now = Utc::now();
        let mut items = Vec::new();
        for ((row, fp), d) in run.rows.iter().zip(&fingerprints).zip(drafts) {
            let st = ExportState {
                run: id.clone(),
                key: row.key.clone(),
                fingerprint: fp.clone(),
                drafts: d,
                at: now,
                outcome: RowOutcome::Pending,
            };
            items.push((STATE.to_owned(), row.application.clone(), serde_json::to_vec(&st).map_err(corrupt)?));
        }
        items.push((RUN.to_owned(), id.clone(), serde_json::to_vec(&run).map_err(corrupt)?));
        let label = self.file_epoch(&run)?;
        let guard = self.store.epoch_write_guard();
        items.push((FILE.to_owned(), id.clone(), self.store.seal_doc(FILE, &id, &label, &zip)?));
        self.store.put_docs(
            &items,
            Event::new(actor.name(), "export.create", &id, &format!("rows {} held {}", run.rows.len(), run.held.len())),
        )?;
        drop(guard);
        Ok(Created { run, password })
    }

    /// The epoch the file is sealed in: the latest-due one of its pages, so that in any copy
    /// of the store it becomes unreadable no later than the last of them.
    fn file_epoch(&self, run: &ExportRun) -> Result<String> {
        let mut best: Option<(Option<NaiveDate>, String)> = None;
        for row in &run.rows {
            if let Some(id) = RecordId::parse(&row.application)
                && let Some(rec) = self.store.record(&id)?
            {
                let due = rec.retention.as_ref().and_then(|r| r.due_on);
                let later = match &best {
                    None => true,
                    Some((b, _)) => due.is_none() || b.is_some_and(|b| due.is_some_and(|d| d > b)),
                };
                if later {
                    best = Some((due, rec.epoch_label()));
                }
            }
        }
        Ok(best.map_or_else(|| "application/open".to_owned(), |(_, l)| l))
    }

    fn load_run(&self, id: &str) -> Result<ExportRun> {
        let v = self.store.get_doc(RUN, id)?.ok_or_else(|| ExportError::NoRun(id.to_owned()))?;
        serde_json::from_slice(&v).map_err(corrupt)
    }

    /// Every run, newest first (input_data=view).
    pub fn export_runs(&self, actor: &Actor) -> Result<Vec<ExportRun>> {
        actor.require(Function::InputData, Level::View)?;
        let mut runs: Vec<ExportRun> = self
            .store
            .docs(RUN)?
            .into_iter()
            .map(|(_, v)| serde_json::from_slice(&v).map_err(corrupt))
            .collect::<Result<_>>()?;
        runs.sort_by_key(|r| std::cmp::Reverse(r.created.at));
        Ok(runs)
    }

    /// One run (input_data=view).
    pub fn export_run(&self, actor: &Actor, id: &str) -> Result<ExportRun> {
        actor.require(Function::InputData, Level::View)?;
        self.load_run(id)
    }

    /// Refuses `actor` unless they may handle the file: input_data=update and the My Number
    /// right (the file carries My Numbers).
    fn require_file_rights(actor: &Actor) -> Result<()> {
        actor.require(Function::InputData, Level::Update)?;
        if !actor.rights().my_number {
            return Err(crate::auth::Error::Forbidden(format!(
                "{} needs my_number (the file carries My Numbers)",
                actor.name()
            ))
            .into());
        }
        Ok(())
    }

    /// The hand-over file, once (input_data=update, the My Number right): the run is marked
    /// downloaded first.
    pub fn export_download(&self, actor: &Actor, id: &str) -> Result<(FileInfo, Vec<u8>)> {
        Self::require_file_rights(actor)?;
        let _one = self.exporting.lock().unwrap_or_else(|p| p.into_inner());
        let mut run = self.load_run(id)?;
        run.download(actor.name())?;
        let zip = self.store.open_doc(FILE, id)?.ok_or_else(|| Error::NotFound(format!("書き出し {id} のファイル")))?;
        if sha256_hex(&zip) != run.file.sha256 {
            return Err(corrupt(format!("{id}: the sealed file does not match its SHA-256")));
        }
        let json = serde_json::to_vec(&run).map_err(corrupt)?;
        self.store.put_doc(RUN, id, &json, Event::new(actor.name(), "export.download", id, &run.file.sha256))?;
        Ok((run.file, zip))
    }

    /// Hand-over confirmed (input_data=update): the file is erased from the store and the
    /// erasure logged (消去履歴: who, when, why) with the run's new state, in one write.
    pub fn export_hand_over(&self, actor: &Actor, id: &str, to: &str) -> Result<ExportRun> {
        actor.require(Function::InputData, Level::Update)?;
        let _one = self.exporting.lock().unwrap_or_else(|p| p.into_inner());
        let mut run = self.load_run(id)?;
        run.hand_over(actor.name(), to)?;
        let json = serde_json::to_vec(&run).map_err(corrupt)?;
        self.store.write_docs(
            &[(RUN.to_owned(), id.to_owned(), json)],
            &[(FILE.to_owned(), id.to_owned())],
            Event::new(actor.name(), "export.erase", id, "handed over; file erased"),
        )?;
        Ok(run)
    }

    /// Cancelled before hand-over (input_data=update; once downloaded, only when the copy
    /// taken was destroyed): every row's application returns to the pool as it was before
    /// this run, and the file is erased, in one write. Refused while a later run holds one of
    /// its applications (that run must be cancelled first).
    pub fn export_cancel(&self, actor: &Actor, id: &str, reason: &str, copy_destroyed: bool) -> Result<ExportRun> {
        actor.require(Function::InputData, Level::Update)?;
        let _one = self.exporting.lock().unwrap_or_else(|p| p.into_inner());
        let mut run = self.load_run(id)?;
        for row in &run.rows {
            if let Some(v) = self.store.get_doc(STATE, &row.application)? {
                let st: ExportState = serde_json::from_slice(&v).map_err(corrupt)?;
                if st.run != id {
                    return Err(ExportError::Step {
                        run: id.to_owned(),
                        message: format!(
                            "後の書き出し {} に同じ申請が含まれています。先にそちらを取り消してください",
                            st.run
                        ),
                    }
                    .into());
                }
            }
        }
        run.cancel(actor.name(), reason, copy_destroyed)?;
        let mut puts = vec![(RUN.to_owned(), id.to_owned(), serde_json::to_vec(&run).map_err(corrupt)?)];
        let mut removes = vec![(FILE.to_owned(), id.to_owned())];
        for row in &run.rows {
            match &row.prior {
                Some(p) => {
                    puts.push((STATE.to_owned(), row.application.clone(), serde_json::to_vec(p).map_err(corrupt)?))
                }
                None => removes.push((STATE.to_owned(), row.application.clone())),
            }
        }
        self.store.write_docs(
            &puts,
            &removes,
            Event::new(actor.name(), "export.cancel", id, "rows returned; file erased"),
        )?;
        Ok(run)
    }

    /// The subsidy system's result for a handed-over run (input_data=update, cases=update).
    /// Each row is settled on its own: its effect (links, or the drafts reopened) first, then
    /// its outcome in the run and the application's state in one write, so a crash leaves
    /// every row either settled or still pending (importing the file again finishes it).
    pub fn export_result(&self, actor: &Actor, id: &str, bytes: &[u8]) -> Result<ResultImport> {
        actor.require(Function::InputData, Level::Update)?;
        actor.require(Function::Cases, Level::Update)?;
        let layout = self.export_layout()?;
        let _one = self.exporting.lock().unwrap_or_else(|p| p.into_inner());
        let mut run = self.load_run(id)?;
        run.check_result_allowed()?;
        let (lines, mut errors) = result::parse(&layout.result, bytes)?;
        let mut import = ResultImport {
            stamp: Stamp::now(actor.name()),
            file_sha256: sha256_hex(bytes),
            accepted: 0,
            rejected: 0,
            unchanged: 0,
            errors: Vec::new(),
        };
        for line in lines {
            let Some(row) = run.row_by_key(&line.key).cloned() else {
                errors.push(format!("{} 行目: 整理番号 {} はこの書き出し（{id}）にありません", line.line, line.key));
                continue;
            };
            let want = if line.accepted { RowOutcome::Accepted } else { RowOutcome::Rejected };
            if row.outcome == want {
                import.unchanged += 1;
                continue;
            }
            if row.outcome != RowOutcome::Pending {
                errors.push(format!(
                    "{} 行目: 整理番号 {} は既に「{}」で登録済みです",
                    line.line,
                    line.key,
                    row.outcome.label_ja()
                ));
                continue;
            }
            let done = if line.accepted {
                self.accept_row(actor, &row, &line.recipient_no, id)
            } else {
                let reason =
                    if line.reason.is_empty() { "（理由の記載なし）".to_owned() } else { line.reason.clone() };
                self.return_row(actor, &row, &reason, id)
            };
            if let Err(e) = done {
                errors.push(format!("{} 行目: 整理番号 {}: {}", line.line, line.key, crate::error::chain(&e)));
                continue;
            }
            if let Some(r) = run.row_by_key(&line.key) {
                r.outcome = want;
            }
            if line.accepted {
                import.accepted += 1;
            } else {
                import.rejected += 1;
            }
            let mut puts = vec![(RUN.to_owned(), id.to_owned(), serde_json::to_vec(&run).map_err(corrupt)?)];
            puts.extend(self.state_with_outcome(&row, want)?);
            self.store.put_docs(&puts, Event::new(actor.name(), "export.row_result", &row.key, want.label_ja()))?;
        }
        import.errors = errors;
        run.results.push(import.clone());
        let json = serde_json::to_vec(&run).map_err(corrupt)?;
        let outcome = format!(
            "accepted {} rejected {} unchanged {} errors {}",
            import.accepted,
            import.rejected,
            import.unchanged,
            import.errors.len()
        );
        self.store.put_doc(RUN, id, &json, Event::new(actor.name(), "export.result", id, &outcome))?;
        Ok(import)
    }

    /// The application's state with the row's outcome (none if a later run took it over).
    /// Linking rewrote the drafts of an accepted row: their new hashes are kept (so the pool
    /// need not open them again) only when what they say is still what was exported; a
    /// correction made meanwhile still goes out.
    fn state_with_outcome(&self, row: &RunRow, outcome: RowOutcome) -> Result<Vec<(String, String, Vec<u8>)>> {
        let Some(v) = self.store.get_doc(STATE, &row.application)? else { return Ok(Vec::new()) };
        let mut st: ExportState = serde_json::from_slice(&v).map_err(corrupt)?;
        if st.key != row.key {
            return Ok(Vec::new());
        }
        st.outcome = outcome;
        if outcome == RowOutcome::Accepted {
            let mut now = Vec::new();
            let mut drafts = Vec::new();
            for (page, _) in &st.drafts {
                if let Some(rec) = RecordId::parse(page).map(|id| self.store.record(&id)).transpose()?.flatten()
                    && let Some(d) = self.draft_of(&rec)?
                {
                    now.push((page.clone(), draft_hash(&rec)));
                    drafts.push(d);
                }
            }
            if now.len() == st.drafts.len() && self.content_fingerprint(drafts.iter()) == st.fingerprint {
                st.drafts = now;
            }
        }
        Ok(vec![(STATE.to_owned(), row.application.clone(), serde_json::to_vec(&st).map_err(corrupt)?)])
    }

    fn row_pages(&self, row: &RunRow) -> Result<Vec<(Record, Draft)>> {
        let mut out = Vec::new();
        for id in row.pages.iter().filter_map(|p| RecordId::parse(p)) {
            if let Some(rec) = self.store.record(&id)?.filter(|r| r.state == RecordState::Stored)
                && let Some(d) = self.draft_of(&rec)?
            {
                out.push((rec, d));
            }
        }
        if out.is_empty() {
            return Err(Error::NotFound(format!("{} の記録（廃棄済み）", row.key)));
        }
        Ok(out)
    }

    /// Accepted: the row's pages go to the case `recipient_no` (made from the provisional case
    /// or the application if the office's register does not have it yet). A number that
    /// contradicts the one on the form or the case it was exported under is refused. A
    /// provisional case the pages were on is merged: its other pages follow, a suspension
    /// carries over, it leaves the candidate lookups, and it is kept (history, holds, its
    /// page list) marked as merged. A marker (`export_merge/<case>`) makes an interrupted
    /// merge finish when the file is imported again.
    fn accept_row(&self, actor: &Actor, row: &RunRow, recipient_no: &str, run: &str) -> Result<()> {
        let pages = self.row_pages(row)?;
        let now = Utc::now();
        let target = self.case_key(recipient_no);
        let mut provisional: Option<(String, Case)> = None;
        if let Some(v) = self.store.get_doc(MERGE, &target)? {
            let key = String::from_utf8(v).map_err(corrupt)?;
            provisional = self.load_case(&key)?.map(|c| (key, c));
        }
        for (_, d) in &pages {
            let written = d.field("recipient_no").map(|f| f.value.as_str()).filter(|v| !v.is_empty());
            if written.is_some_and(|w| w != recipient_no) {
                return Err(Error::Invalid("受給者番号が申請書の記載と異なります".into()));
            }
            if let Some(link) = &d.case {
                let key = self.case_key(&link.recipient_no);
                match self.load_case(&key)? {
                    Some(c) if c.provisional && c.merged_into.is_none() && key != target => {
                        if provisional.as_ref().is_some_and(|(k, _)| *k != key) {
                            return Err(Error::Invalid("書類が別々の仮登録に紐付いています".into()));
                        }
                        provisional = Some((key, c));
                    }
                    Some(_) if key != target => {
                        return Err(Error::Invalid("書類が別の受給者番号の台帳に紐付いています".into()));
                    }
                    _ => {}
                }
            }
        }
        let source = format!("取込結果 {run}");
        let _epochs = self.store.epoch_write_guard();
        if self.load_case(&target)?.is_none() {
            let fields = match &provisional {
                Some((_, p)) => p.current.clone(),
                None => {
                    let main = &pages[0].1;
                    let p = super::linking::probe(main);
                    let birth_date = p.birth_date.ok_or_else(|| Error::Invalid("生年月日がありません".into()))?;
                    crate::cases::CaseFields {
                        recipient_no: String::new(),
                        application_no: String::new(),
                        name: p.name,
                        kana: p.kana,
                        birth_date,
                        address: p.address,
                        disease: main.field("disease").map(|f| f.value_or_raw().to_owned()).unwrap_or_default(),
                        valid_from: None,
                        valid_to: None,
                        status: crate::cases::CaseStatus::UnderReview,
                        my_number: None,
                    }
                }
            };
            let case = Case::new(
                crate::cases::CaseFields { recipient_no: recipient_no.to_owned(), ..fields },
                &source,
                now,
                false,
            );
            let mut items = self.case_docs(&target, &case)?;
            if let Some((key, _)) = &provisional {
                items.push((MERGE.to_owned(), target.clone(), key.as_bytes().to_vec()));
            }
            self.store.put_docs(&items, Event::new(actor.name(), "case.from_result", &target, run))?;
        } else if let Some((key, _)) = &provisional {
            self.store.put_doc(
                MERGE,
                &target,
                key.as_bytes(),
                Event::new(actor.name(), "case.merge_begin", key, &target),
            )?;
        }
        drop(_epochs);
        let link = CaseLink {
            recipient_no: recipient_no.to_owned(),
            how: LinkMethod::SubsidySystem,
            by: actor.name().to_owned(),
            at: now,
        };
        // A suspension goes first: no page of the person is visible while links move.
        if let Some((_, case)) = &provisional {
            self.carry_suspension(actor, &case.current.recipient_no, recipient_no)?;
        }
        let from = provisional.as_ref().map(|(_, c)| c.current.recipient_no.clone());
        let mut relink: Vec<RecordId> = pages.iter().map(|(r, _)| r.id.clone()).collect();
        if let Some((key, _)) = &provisional {
            relink.extend(self.case_page_ids(key)?);
        }
        relink.sort();
        relink.dedup();
        let row_pages: BTreeSet<RecordId> = pages.iter().map(|(r, _)| r.id.clone()).collect();
        for id in relink {
            if let Some(rec) = self.store.record(&id)?.filter(|r| r.state == RecordState::Stored)
                && let Some(d) = self.draft_of(&rec)?
                && d.case.as_ref().is_none_or(|c| c.recipient_no != recipient_no)
                // The provisional case's other pages only while they are still on it (a page a
                // reviewer moved to someone else stays there).
                && (row_pages.contains(&id) || d.case.as_ref().map(|c| &c.recipient_no) == from.as_ref())
            {
                self.write_link(&rec, d, link.clone())?;
            }
        }
        if let Some((key, mut case)) = provisional {
            // Out of the candidate lookups; kept with its history, holds and page list.
            let lookups: Vec<(String, String)> = self
                .case_docs(&key, &case)?
                .into_iter()
                .filter(|(kind, _, _)| kind != super::cases::CASE)
                .map(|(kind, id, _)| (kind, id))
                .collect();
            case.merged_into = Some(recipient_no.to_owned());
            case.touch(now);
            let _epochs = self.store.epoch_write_guard();
            let mut puts = vec![];
            for (kind, id, v) in self.case_docs(&key, &case)? {
                if kind == super::cases::CASE {
                    puts.push((kind, id, v));
                }
            }
            let mut removes = lookups;
            removes.push((MERGE.to_owned(), target.clone()));
            self.store.write_docs(
                &puts,
                &removes,
                Event::new(actor.name(), "case.merge_provisional", &key, &target),
            )?;
        }
        Ok(())
    }

    /// Refused: every page of the row goes back to the review queue with the system's reason.
    fn return_row(&self, actor: &Actor, row: &RunRow, reason: &str, run: &str) -> Result<()> {
        for (rec, mut d) in self.row_pages(row)? {
            // Already returned for this row (an import cut short and run again).
            if d.returned.as_ref().is_some_and(|r| r.key == row.key) {
                continue;
            }
            d.returned = Some(crate::drafts::Returned {
                run: run.to_owned(),
                key: row.key.clone(),
                reason: reason.to_owned(),
                by: actor.name().to_owned(),
                at: Utc::now(),
            });
            if let Some(r) = d.review.as_mut() {
                r.status = ReviewStatus::SecondLook;
            }
            let json = serde_json::to_vec(&d).map_err(corrupt)?;
            let updated = self.store.replace_blobs(
                &rec,
                &[(BlobRole::Draft, &json)],
                Event::new(actor.name(), "draft.returned", rec.id.as_str(), &row.key),
            )?;
            self.store.queue_mark(&updated, Some(true))?;
            let text = self.store.read_blob(&updated, BlobRole::Text)?;
            self.index.put(&self.index_doc(&updated, &String::from_utf8_lossy(&text), Some(&d)))?;
        }
        Ok(())
    }

    /// The error check list of a run or preview, names drawn from the drafts now
    /// (input_data=view); a suspended person (any page of the row) is listed nameless for all
    /// but the security officer.
    pub fn export_error_list(&self, actor: &Actor, run: &ExportRun) -> Result<Vec<lists::ListEntry>> {
        actor.require(Function::InputData, Level::View)?;
        let hidden = self.hidden_markers(actor)?;
        let mut names: HashMap<String, String> = HashMap::new();
        let groups = run
            .held
            .iter()
            .map(|h| (&h.application, &h.pages))
            .chain(run.rows.iter().filter(|r| !r.warnings.is_empty()).map(|r| (&r.application, &r.pages)));
        for (app, pages) in groups {
            let mut name = "（廃棄済み）".to_owned();
            for id in pages.iter().filter_map(|p| RecordId::parse(p)) {
                let Some(rec) = self.store.record(&id)?.filter(|r| r.state == RecordState::Stored) else { continue };
                if self.suspended_for(&rec, &hidden)? {
                    name = "（利用停止中）".to_owned();
                    break;
                }
                if id.as_str() == app.as_str() {
                    name = self
                        .draft_of(&rec)?
                        .and_then(|d| d.field("name").map(|f| f.value_or_raw().to_owned()))
                        .unwrap_or_default();
                }
            }
            names.insert(app.clone(), name);
        }
        self.store.audit(Event::new(actor.name(), "export.checklist", &run.id, "ok"))?;
        Ok(lists::error_entries(run, &|id| names.get(id).cloned().unwrap_or_default()))
    }
}

/// The pages of one application within a batch (indices into the batch's pages).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Group {
    main: usize,
    first: Option<usize>,
    second: Option<usize>,
    my_number: Option<usize>,
}

impl Group {
    fn members(&self) -> impl Iterator<Item = usize> {
        [self.first, self.second, self.my_number].into_iter().flatten()
    }
}

fn comparable_field(d: &Draft, name: &str) -> String {
    d.field(name).map(crate::drafts::comparable).unwrap_or_default()
}

/// Groups a batch's pages into applications: the two sheets of a pair (or one alone), and the
/// My Number form of the same person (same case, or same birth date and reading), the nearest
/// in the batch. A My Number form with no application is a group of its own (held back).
fn group_applications(pages: &[Page]) -> Vec<Group> {
    let index: HashMap<&str, usize> = pages.iter().enumerate().map(|(i, p)| (p.rec.id.as_str(), i)).collect();
    // A pair only when each sheet names the other (a sheet 1 and a sheet 2).
    let partner = |i: usize| -> Option<usize> {
        let d = &pages[i].draft;
        let j = d.pair.as_deref().and_then(|id| index.get(id).copied())?;
        let o = &pages[j].draft;
        (o.pair.as_deref() == Some(pages[i].rec.id.as_str()) && o.form == APPLICATION && o.sheet != d.sheet)
            .then_some(j)
    };
    let mut groups = Vec::new();
    for (i, p) in pages.iter().enumerate() {
        if p.draft.form != APPLICATION {
            continue;
        }
        match (p.draft.sheet, partner(i)) {
            (Some(2), Some(_)) => {}
            (_, Some(j)) => groups.push(Group { main: i, first: Some(i), second: Some(j), my_number: None }),
            (Some(2), None) => groups.push(Group { main: i, first: None, second: Some(i), my_number: None }),
            _ => groups.push(Group { main: i, first: Some(i), second: None, my_number: None }),
        }
    }
    let mut taken = BTreeSet::new();
    for g in &mut groups {
        let d = &pages[g.main].draft;
        let case = d.case.as_ref().map(|c| c.recipient_no.as_str());
        let (birth, kana) = (comparable_field(d, "birth_date"), comparable_field(d, "kana"));
        // Linked both: the same case decides. Otherwise the same birth date and reading (both
        // present); a form linked to another case is never taken.
        let same_person = |m: &Draft| match (case, m.case.as_ref().map(|c| c.recipient_no.as_str())) {
            (Some(a), Some(b)) => a == b,
            _ => {
                !birth.is_empty()
                    && !kana.is_empty()
                    && comparable_field(m, "birth_date") == birth
                    && comparable_field(m, "kana") == kana
            }
        };
        let at = pages[g.main].rec.received_at;
        let best = pages
            .iter()
            .enumerate()
            .filter(|(j, m)| m.draft.form == MY_NUMBER_FORM && !taken.contains(j) && same_person(&m.draft))
            .min_by_key(|(_, m)| (m.rec.received_at - at).num_milliseconds().abs())
            .map(|(j, _)| j);
        if let Some(j) = best {
            taken.insert(j);
            g.my_number = Some(j);
        }
    }
    for (j, p) in pages.iter().enumerate() {
        if p.draft.form == MY_NUMBER_FORM && !taken.contains(&j) {
            groups.push(Group { main: j, first: None, second: None, my_number: Some(j) });
        }
    }
    groups
}

/// The manifest inside the ZIP (and shown on the run's page): counts and the data's SHA-256.
fn manifest_text(run: &ExportRun, data_name: &str, data: &[u8]) -> String {
    let mut s = format!(
        "hozon 入力データ\r\n書き出し番号: {}\r\nレイアウト: {}\r\n作成: {}（日本時間）\r\nファイル: {data_name}\r\n件数: {}\r\n",
        run.id,
        run.layout,
        run.created.label_ja(),
        run.rows.len()
    );
    for line in lists::count_table(run) {
        s.push_str(&line.join("\t"));
        s.push_str("\r\n");
    }
    s.push_str(&format!("SHA-256: {}\r\n", sha256_hex(data)));
    s
}

/// An AES-256 encrypted ZIP of `files`.
fn seal_zip(files: &[(&str, &[u8])], password: &str) -> Result<Vec<u8>> {
    let mut zip = crate::archive::AesZip::new(password);
    for (name, bytes) in files {
        zip.put(name, bytes).map_err(corrupt)?;
    }
    zip.finish().map_err(corrupt)
}
