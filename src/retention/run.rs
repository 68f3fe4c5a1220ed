//! Disposal runs: the PIA's "scheduled job; staff confirm the target data beforehand", with the
//! two-person rule.
//!
//! Life of a run: `plan` lists every record due on the as-of date (held records are listed as
//! held, with the hold's reason) → a records officer reviews it and may `exclude` records with
//! a reason → `submit` (the preparer) → a *different* officer `approve`s, which is the only way
//! to obtain an [`ApprovedDisposal`] → `execute` destroys, in batches:
//! 1. forget each record's data key (crypto-shredding; from here the record is unreadable),
//! 2. delete its index documents (after the last batch the affected segments are merged, so
//!    the text leaves the disk),
//! 3. delete its blobs and replace its metadata by a tombstone.
//!
//! Each step is idempotent and the record's state says which step it reached, so a killed
//! execution resumes where it stopped and no record is left half-destroyed. When every item is
//! done the run is completed and its certificate issued (`certificate.rs`).

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::app::Hozon;
use crate::audit::Event;
use crate::auth::{Actor, Function, Level};
use crate::error::{Error, Result};
use crate::store::{Record, RecordState, Tombstone};

const RUNS: &str = "run";
const HOLDS: &str = "hold";
/// Records destroyed per batch (one key-shredding commit, one purge, one burial each).
const BATCH: usize = 2000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunKind {
    Electronic,
    Paper,
    /// Audit log entries past their own (7-year) retention.
    AuditLog,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum RunState {
    Draft,
    Submitted {
        by: String,
        at: DateTime<Utc>,
    },
    Approved {
        preparer: String,
        approver: String,
        at: DateTime<Utc>,
    },
    Executing {
        preparer: String,
        approver: String,
        #[serde(default = "first_step")]
        step: ExecStep,
    },
    Completed {
        preparer: String,
        approver: String,
        at: DateTime<Utc>,
        certificate_sha256: String,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum ItemStatus {
    Due,
    Held {
        reason: String,
    },
    Excluded {
        reason: String,
        by: String,
    },
    Destroyed,
    /// Paper: due, but not on the contractor's certificate.
    Missing,
    /// Approved, but the re-check at execution kept it (a hold placed since, a policy now
    /// 移管, a due date that moved, a change since planning).
    Skipped {
        reason: String,
    },
    /// A class whose policy says `review` (受給者台帳): a records officer decides (destroy,
    /// extend with a new date, transfer) before the run can be submitted.
    AwaitingDecision,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Item {
    /// Record id, or document-box code for paper.
    pub id: String,
    pub class: String,
    pub due_on: Option<NaiveDate>,
    pub policy_version: u32,
    #[serde(flatten)]
    pub status: ItemStatus,
    /// Who decided it, for items whose policy asks for a decision (`review`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decided_by: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Run {
    pub id: String,
    pub kind: RunKind,
    pub as_of: NaiveDate,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    #[serde(flatten)]
    pub state: RunState,
    pub items: Vec<Item>,
    /// Audit-log runs: the last entry (sequence number) to dispose of.
    #[serde(default)]
    pub audit_upto: Option<u64>,
    /// Key epochs the run's records are (or were) in, noted when execution starts: all are
    /// retired once the records are destroyed.
    #[serde(default)]
    pub epochs: Vec<String>,
    /// Set by `approve`: a keyed hash over the run, the two officers and the approved items.
    /// Execution proceeds only when it matches, so a run document written by anything but
    /// `approve` (or changed after it) cannot destroy.
    #[serde(default)]
    pub approval_seal: Option<String>,
    /// When the run was approved (holds released after this keep their records).
    #[serde(default)]
    pub approved_at: Option<DateTime<Utc>>,
}

/// Refuses a run whose approval seal does not match what `approve` sealed.
pub(crate) fn verify_approval(h: &Hozon, actor: &Actor, run: &Run, preparer: &str, approver: &str) -> Result<()> {
    if run.approval_seal.as_deref() == Some(run.seal(h, preparer, approver).as_str()) {
        return Ok(());
    }
    h.store.audit(Event::new(actor.name(), "dispose.execute", &run.id, "denied_bad_approval"))?;
    Err(Error::Invalid(format!(
        "廃棄実行 {} の承認記録が承認時の内容と一致しません（承認後に変更されたか、承認を経ていません）。実行できません",
        run.id
    )))
}

impl Run {
    /// The items an approval covers, as one string: ids of the items then to be destroyed.
    fn approved_items(&self) -> String {
        let mut ids: Vec<&str> = self
            .items
            .iter()
            .filter(|i| matches!(i.status, ItemStatus::Due | ItemStatus::Destroyed | ItemStatus::Skipped { .. }))
            .map(|i| i.id.as_str())
            .collect();
        ids.sort_unstable();
        ids.join(",")
    }

    fn seal(&self, h: &Hozon, preparer: &str, approver: &str) -> String {
        let payload = format!(
            "{}\n{}\n{preparer}\n{approver}\n{:?}\n{}",
            self.id,
            self.as_of,
            self.audit_upto,
            self.approved_items()
        );
        h.store.lookup_hash("disposal-approval", &payload)
    }
}

fn first_step() -> ExecStep {
    ExecStep::Destroy
}

impl Run {
    pub fn count(&self, f: impl Fn(&ItemStatus) -> bool) -> usize {
        self.items.iter().filter(|i| f(&i.status)).count()
    }
}

/// Proof that two different authorised people prepared and approved this run. Only
/// [`approve`] (and resuming an approved run) can build one; the store's destructive
/// functions require it.
#[derive(Debug)]
pub struct ApprovedDisposal {
    run_id: String,
    preparer: String,
    approver: String,
    executor: String,
}

impl ApprovedDisposal {
    pub fn run_id(&self) -> &str {
        &self.run_id
    }
    pub fn preparer(&self) -> &str {
        &self.preparer
    }
    pub fn approver(&self) -> &str {
        &self.approver
    }
    pub fn executor(&self) -> &str {
        &self.executor
    }
}

#[cfg(test)]
impl ApprovedDisposal {
    /// An approval for the store's own unit tests.
    pub(crate) fn for_tests(run_id: &str) -> ApprovedDisposal {
        ApprovedDisposal { run_id: run_id.into(), preparer: "a".into(), approver: "b".into(), executor: "b".into() }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("disposal run {0} not found")]
    NoRun(String),
    #[error("disposal run {run} is {state}; {wanted}")]
    WrongState { run: String, state: String, wanted: String },
    #[error("the two-person rule: {0} prepared this run and cannot also approve it")]
    SamePerson(String),
    #[error("item {0} is not in run {1}")]
    NoItem(String, String),
    #[error("an exclusion needs a reason")]
    NoReason,
}

fn state_name(s: &RunState) -> &'static str {
    match s {
        RunState::Draft => "draft",
        RunState::Submitted { .. } => "submitted",
        RunState::Approved { .. } => "approved",
        RunState::Executing { .. } => "executing",
        RunState::Completed { .. } => "completed",
    }
}

fn wrong(run: &Run, wanted: &str) -> Error {
    Error::Run(RunError::WrongState {
        run: run.id.clone(),
        state: state_name(&run.state).into(),
        wanted: wanted.into(),
    })
}

/// A run, for someone allowed to see runs.
pub fn get(h: &Hozon, actor: &Actor, id: &str) -> Result<Run> {
    actor.require(Function::Retention, Level::View)?;
    load(h, id)
}

pub(crate) fn load(h: &Hozon, id: &str) -> Result<Run> {
    let v = h.store.get_doc(RUNS, id)?.ok_or_else(|| Error::Run(RunError::NoRun(id.to_owned())))?;
    serde_json::from_slice(&v).map_err(|e| Error::Corrupt(format!("run {id}: {e}")))
}

pub(crate) fn save_run(h: &Hozon, run: &Run, event: Event) -> Result<()> {
    save(h, run, event)
}

fn save(h: &Hozon, run: &Run, event: Event) -> Result<()> {
    h.store.put_doc(RUNS, &run.id, &serde_json::to_vec(run).expect("run serialises"), event)?;
    Ok(())
}

pub fn list(h: &Hozon, actor: &Actor) -> Result<Vec<Run>> {
    actor.require(Function::Retention, Level::View)?;
    h.store
        .docs(RUNS)?
        .into_iter()
        .map(|(id, v)| serde_json::from_slice(&v).map_err(|e| Error::Corrupt(format!("run {id}: {e}"))))
        .collect()
}

/// What a hold covers: one record, or every page of a case (受給者番号), present and future.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", content = "key", rename_all = "snake_case")]
pub enum HoldTarget {
    Record(String),
    /// The case's keyed-hash id (never the recipient number itself).
    Case(String),
}

impl HoldTarget {
    /// The key of this target in the store's hold index.
    pub(crate) fn index_key(&self) -> String {
        match self {
            HoldTarget::Record(id) => format!("r:{id}"),
            HoldTarget::Case(key) => format!("c:{key}"),
        }
    }
}

/// A hold (litigation, audit, disclosure request, open case) on records or cases.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Hold {
    pub id: String,
    pub kind: String,
    pub reason: String,
    #[serde(default)]
    pub targets: Vec<HoldTarget>,
    /// Holds written before targets existed listed record ids only.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub record_ids: Vec<String>,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub released_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub released_by: Option<String>,
    #[serde(default)]
    pub released_reason: Option<String>,
}

impl Hold {
    pub fn all_targets(&self) -> Vec<HoldTarget> {
        let mut t = self.targets.clone();
        t.extend(self.record_ids.iter().cloned().map(HoldTarget::Record));
        t
    }

    fn label(&self) -> String {
        format!("{}（{}）: {}", self.kind, self.id, self.reason)
    }
}

/// What a hold is asked for, as given at the terminal or in the form: record ids and
/// recipient numbers (受給者番号), each checked to exist.
#[derive(Debug, Clone, Default)]
pub struct HoldRequest {
    pub kind: String,
    pub reason: String,
    pub records: Vec<String>,
    pub recipient_numbers: Vec<String>,
}

pub fn place_hold(h: &Hozon, actor: &Actor, req: &HoldRequest) -> Result<Hold> {
    actor.require(Function::Retention, Level::Update)?;
    if req.reason.trim().is_empty() {
        return Err(Error::Run(RunError::NoReason));
    }
    if req.kind.trim().is_empty() {
        return Err(Error::Invalid("保留の種別（訴訟・監査・開示請求など）を指定してください".into()));
    }
    let mut targets = Vec::new();
    for id in &req.records {
        let rid = crate::store::RecordId::parse(id.trim())
            .ok_or_else(|| Error::Invalid(format!("「{id}」は記録IDではありません（32桁の英数字）")))?;
        if h.store.record(&rid)?.is_none() {
            return Err(match h.store.tombstone(rid.as_str())? {
                Some(_) => Error::Invalid(format!("記録 {rid} は既に廃棄されています")),
                None => Error::Invalid(format!("記録 {rid} はありません")),
            });
        }
        targets.push(HoldTarget::Record(rid.to_string()));
    }
    for no in &req.recipient_numbers {
        let key = h.case_key_of(no.trim());
        if h.load_case(&key)?.is_none() {
            return Err(Error::Invalid(format!("受給者番号「{no}」の台帳記録はありません")));
        }
        targets.push(HoldTarget::Case(key));
    }
    if targets.is_empty() {
        return Err(Error::Invalid("保留する記録IDまたは受給者番号を指定してください".into()));
    }
    let now = Utc::now();
    let hold = Hold {
        id: format!("H{}", now.format("%Y%m%d%H%M%S%f")),
        kind: req.kind.trim().to_owned(),
        reason: req.reason.trim().to_owned(),
        targets,
        record_ids: Vec::new(),
        created_by: actor.name().to_owned(),
        created_at: now,
        released_at: None,
        released_by: None,
        released_reason: None,
    };
    let event = Event::new(actor.name(), "hold.place", &format!("{} {} targets", hold.id, hold.targets.len()), "ok");
    let keys: Vec<String> = hold.targets.iter().map(HoldTarget::index_key).collect();
    h.store.put_hold(&hold.id, &serde_json::to_vec(&hold).expect("hold serialises"), &keys, true, event)?;
    Ok(hold)
}

pub fn release_hold(h: &Hozon, actor: &Actor, id: &str, reason: &str) -> Result<()> {
    actor.require(Function::Retention, Level::Update)?;
    if reason.trim().is_empty() {
        return Err(Error::Run(RunError::NoReason));
    }
    let mut hold = load_hold(h, id)?;
    if hold.released_at.is_some() {
        return Err(Error::Invalid(format!("保留 {id} は既に解除されています")));
    }
    hold.released_at = Some(Utc::now());
    hold.released_by = Some(actor.name().to_owned());
    hold.released_reason = Some(reason.trim().to_owned());
    let keys: Vec<String> = hold.all_targets().iter().map(HoldTarget::index_key).collect();
    h.store.put_hold(
        id,
        &serde_json::to_vec(&hold).expect("hold serialises"),
        &keys,
        false,
        Event::new(actor.name(), "hold.release", id, "ok"),
    )?;
    Ok(())
}

fn load_hold(h: &Hozon, id: &str) -> Result<Hold> {
    let v = h.store.get_doc(HOLDS, id)?.ok_or_else(|| Error::NotFound(id.to_owned()))?;
    serde_json::from_slice(&v).map_err(|e| Error::Corrupt(format!("hold {id}: {e}")))
}

/// Every hold, newest first.
pub fn holds(h: &Hozon, actor: &Actor) -> Result<Vec<Hold>> {
    actor.require(Function::Retention, Level::View)?;
    let mut out: Vec<Hold> = h
        .store
        .docs(HOLDS)?
        .into_iter()
        .map(|(id, v)| serde_json::from_slice(&v).map_err(|e| Error::Corrupt(format!("hold {id}: {e}"))))
        .collect::<Result<_>>()?;
    out.sort_by_key(|h| std::cmp::Reverse(h.created_at));
    Ok(out)
}

/// Active holds by hold-index key (`r:<record>`, `c:<case>`), with the first hold's label.
pub fn active_holds(h: &Hozon) -> Result<HashMap<String, String>> {
    let mut out = HashMap::new();
    for (_, v) in h.store.docs(HOLDS)? {
        let hold: Hold = serde_json::from_slice(&v).map_err(|e| Error::Corrupt(e.to_string()))?;
        if hold.released_at.is_none() {
            for t in hold.all_targets() {
                out.entry(t.index_key()).or_insert_with(|| hold.label());
            }
        }
    }
    Ok(out)
}

/// Holds released after `since` (the run's approval), by hold-index key: what they covered
/// was approved while held, so it is not destroyed by that run.
fn released_holds_since(h: &Hozon, since: Option<DateTime<Utc>>) -> Result<HashMap<String, String>> {
    let mut out = HashMap::new();
    let Some(since) = since else { return Ok(out) };
    for (_, v) in h.store.docs(HOLDS)? {
        let hold: Hold = serde_json::from_slice(&v).map_err(|e| Error::Corrupt(e.to_string()))?;
        if hold.released_at.is_some_and(|t| t > since) {
            for t in hold.all_targets() {
                out.entry(t.index_key()).or_insert_with(|| hold.label());
            }
        }
    }
    Ok(out)
}

/// Record id → the keys of every case its page was ever linked to (a page re-linked stays
/// under its earlier case too, so a hold on either covers it).
fn case_of_records(h: &Hozon) -> Result<HashMap<String, Vec<String>>> {
    let mut out: HashMap<String, Vec<String>> = HashMap::new();
    for k in h.store.doc_keys(&format!("{}/", crate::app::CASE_PAGES))? {
        let rest = &k[crate::app::CASE_PAGES.len() + 1..];
        if let Some((case, record)) = rest.split_once('/') {
            out.entry(record.to_owned()).or_default().push(case.to_owned());
        }
    }
    Ok(out)
}

/// The hold-index keys that would hold record `id`.
fn hold_keys(id: &str, cases: &HashMap<String, Vec<String>>) -> Vec<String> {
    let mut keys = vec![HoldTarget::Record(id.to_owned()).index_key()];
    for c in cases.get(id).into_iter().flatten() {
        keys.push(HoldTarget::Case(c.clone()).index_key());
    }
    keys
}

/// Why a stored record may not be destroyed today, judged on what is *applied* (the
/// record's retention as last applied, recomputed from its dates under the applied policy,
/// the later of the two) and Japan's date; `None` when it may.
fn not_destroyable(h: &Hozon, rec: &Record, today: NaiveDate) -> Result<Option<String>> {
    if rec.key_epoch.is_none() {
        // Its key is wrapped by the master key in every copy of sled: destroying it would not
        // be final until `hozon key rotate` moves it into an epoch and retires that key.
        return Ok(Some("旧版の鍵で保護された記録（先に `hozon key rotate` で鍵を移行）".into()));
    }
    let applied = h.applied_policies();
    let policy = applied.get(&rec.class)?;
    match policy.action {
        crate::retention::policy::Action::Transfer => return Ok(Some("移管対象（廃棄しない）".into())),
        crate::retention::policy::Action::Review => {
            return Ok(Some("保存期間満了時に判断が必要な分類（廃棄・延長・移管の決定待ち）".into()));
        }
        crate::retention::policy::Action::Destroy => {}
    }
    let stored = rec.retention.as_ref().and_then(|r| r.due_on);
    let recomputed = policy.due_on(&rec.dates());
    let due = match (stored, recomputed) {
        (Some(a), Some(b)) => Some(a.max(b)),
        _ => None,
    };
    Ok(match due {
        None => Some("保存期間の起算日が未到来".into()),
        Some(d) if d > today => Some(format!("保存期間満了前（廃棄可能日 {d}）")),
        Some(_) => None,
    })
}

/// Lists the records due on `as_of` (never after today, a Japan date) in a new draft run.
/// Records in an open run are skipped; held records are listed as held.
pub fn plan(h: &Hozon, actor: &Actor, as_of: NaiveDate) -> Result<Run> {
    actor.require(Function::Retention, Level::Update)?;
    refuse_future(as_of)?;
    let holds = active_holds(h)?;
    let cases = case_of_records(h)?;
    let mut in_open_run = std::collections::HashSet::new();
    for r in list(h, actor)? {
        if !matches!(r.state, RunState::Completed { .. }) && r.kind == RunKind::Electronic {
            in_open_run.extend(r.items.into_iter().map(|i| i.id));
        }
    }
    let applied = h.applied_policies();
    let mut items = Vec::new();
    for rec in h.store.records() {
        let rec = rec?;
        if rec.state != RecordState::Stored || in_open_run.contains(rec.id.as_str()) {
            continue;
        }
        if not_destroyable(h, &rec, as_of)?.is_some() {
            continue;
        }
        let policy = applied.get(&rec.class)?;
        let held = hold_keys(rec.id.as_str(), &cases).into_iter().find_map(|k| holds.get(&k).cloned());
        let due = policy.due_on(&rec.dates()).max(rec.retention.as_ref().and_then(|r| r.due_on));
        items.push(Item {
            id: rec.id.to_string(),
            class: rec.class.clone(),
            due_on: due,
            policy_version: policy.version,
            status: match held {
                Some(reason) => ItemStatus::Held { reason },
                None => ItemStatus::Due,
            },
            decided_by: None,
        });
    }
    items.extend(due_cases(h, as_of, &holds, &in_open_run)?);
    new_run("D", RunKind::Electronic, as_of, actor, items, h)
}

/// Run items of case records (受給者台帳) are `case:<case key>`.
const CASE_ITEM: &str = "case:";

/// The case records whose last 異動 is more than their policy's period back on `as_of`, with
/// the decision their policy asks for (`review`: a person decides each one).
fn due_cases(
    h: &Hozon,
    as_of: NaiveDate,
    holds: &HashMap<String, String>,
    in_open_run: &std::collections::HashSet<String>,
) -> Result<Vec<Item>> {
    let applied = h.applied_policies();
    let policy = applied.get("case_record")?;
    if policy.action == crate::retention::policy::Action::Transfer {
        return Ok(Vec::new());
    }
    let mut out = Vec::new();
    for k in h.store.doc_keys("case/")? {
        let key = &k["case/".len()..];
        let id = format!("{CASE_ITEM}{key}");
        if in_open_run.contains(&id) {
            continue;
        }
        let Some(case) = h.load_case(key)? else { continue };
        let Some(due) = h.case_due(&case)? else { continue };
        if due > as_of {
            continue;
        }
        let status = match holds.get(&HoldTarget::Case(key.to_owned()).index_key()) {
            Some(reason) => ItemStatus::Held { reason: reason.clone() },
            None if policy.action == crate::retention::policy::Action::Review => ItemStatus::AwaitingDecision,
            None => ItemStatus::Due,
        };
        out.push(Item {
            id,
            class: "case_record".into(),
            due_on: Some(due),
            policy_version: policy.version,
            status,
            decided_by: None,
        });
    }
    Ok(out)
}

/// A records officer's decision on an item whose policy says `review`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// 廃棄: destroy it in this run.
    Destroy,
    /// 延長: keep it until `until` (a day after today), for `reason`.
    Extend { until: NaiveDate, reason: String },
    /// 移管: keep it for transfer to the archives.
    Transfer { reason: String },
}

/// Records the decision on a `review` item of a draft run (audited). An extension is written
/// on the case record at once: a later plan respects it.
pub fn decide(h: &Hozon, actor: &Actor, run_id: &str, item_id: &str, decision: &Decision) -> Result<()> {
    actor.require(Function::Retention, Level::Update)?;
    let (mut run, i) = draft_item(h, run_id, item_id)?;
    if !matches!(run.items[i].status, ItemStatus::AwaitingDecision | ItemStatus::Due) || !item_id.starts_with(CASE_ITEM)
    {
        return Err(Error::Invalid(format!("{item_id} は判断の対象ではありません")));
    }
    let key = &item_id[CASE_ITEM.len()..];
    let (status, what) = match decision {
        Decision::Destroy => (ItemStatus::Due, "destroy".to_owned()),
        Decision::Extend { until, reason } => {
            if reason.trim().is_empty() {
                return Err(Error::Run(RunError::NoReason));
            }
            if *until <= crate::jp::today() {
                return Err(Error::Invalid(format!("延長後の保存期限 {until} は今日より後の日付にしてください")));
            }
            let mut case = h.load_case(key)?.ok_or_else(|| Error::NotFound(item_id.to_owned()))?;
            case.extended = Some(crate::cases::Extension {
                until: *until,
                reason: reason.trim().to_owned(),
                by: actor.name().to_owned(),
                run: run_id.to_owned(),
            });
            let _epochs = h.store.epoch_write_guard();
            h.store.put_docs(
                &h.case_docs(key, &case)?,
                Event::new(actor.name(), "case.retention_extend", &format!("{key} until {until}"), "ok"),
            )?;
            (
                ItemStatus::Excluded {
                    reason: format!("延長（{until} まで）: {}", reason.trim()),
                    by: actor.name().to_owned(),
                },
                format!("extend {until}"),
            )
        }
        Decision::Transfer { reason } => {
            if reason.trim().is_empty() {
                return Err(Error::Run(RunError::NoReason));
            }
            (
                ItemStatus::Excluded { reason: format!("移管: {}", reason.trim()), by: actor.name().to_owned() },
                "transfer".into(),
            )
        }
    };
    run.items[i].status = status;
    run.items[i].decided_by = Some(actor.name().to_owned());
    save(h, &run, Event::new(actor.name(), "dispose.decide", &format!("{run_id} {item_id} {what}"), "ok"))
}

/// Destroys one case record of an approved run: re-checked (still due on today's date from
/// its last 異動, not extended, not held), then the case, its history, its lookups and its
/// page links go, in one transaction that re-reads the hold index; a tombstone with ids only
/// remains. `Ok(None)` when destroyed (or already), `Ok(Some(reason))` when kept.
fn destroy_case(
    h: &Hozon,
    approval: &ApprovedDisposal,
    key: &str,
    decided: bool,
    today: NaiveDate,
) -> Result<Option<String>> {
    let Some(raw) = h.store.get_doc("case", key)? else {
        return match h.store.get_doc(CASE_TOMBSTONES, key)? {
            Some(_) => Ok(None),
            None => Err(Error::Corrupt(format!("case {key} vanished without a tombstone"))),
        };
    };
    let Some(case) = h.load_case(key)? else { return Ok(Some("台帳記録が見つからない".into())) };
    if h.store.doc_epochs("case", key)?.is_empty() {
        return Ok(Some("旧版の鍵で保護された記録（先に `hozon key rotate` で鍵を移行）".into()));
    }
    match h.applied_policies().get("case_record")?.action {
        crate::retention::policy::Action::Transfer => return Ok(Some("移管対象（廃棄しない）".into())),
        crate::retention::policy::Action::Review if !decided => {
            return Ok(Some("方針が「確認のうえ廃棄」に変わり、廃棄の判断が記録されていない".into()));
        }
        crate::retention::policy::Action::Review | crate::retention::policy::Action::Destroy => {}
    }
    match h.case_due(&case)? {
        Some(d) if d <= today => {}
        Some(d) => return Ok(Some(format!("最終異動から保存期間満了前（廃棄可能日 {d}）"))),
        None => return Ok(Some("保存期間の起算日が未到来".into())),
    }
    let mut remove = vec![format!("case/{key}")];
    if !case.current.application_no.is_empty() {
        remove.push(format!("case_app/{}", h.store.lookup_hash("case_app", &case.current.application_no)));
    }
    remove.push(format!("case_dob/{}/{key}", h.birth_block(case.current.birth_date)));
    if !case.current.kana.trim().is_empty() {
        remove.push(format!("case_kana/{}/{key}", h.kana_block(&case.current.kana)));
    }
    remove.extend(h.store.doc_keys(&format!("{}/{key}/", crate::app::CASE_PAGES))?);
    for (k, v) in h.store.docs("case_mn")? {
        if v == key.as_bytes() {
            remove.push(format!("case_mn/{k}"));
        }
    }
    let tomb = serde_json::json!({
        "case": key,
        "run": approval.run_id(),
        "last_change_on": crate::jp::date_of(case.last_change()),
        "destroyed_at": Utc::now(),
    });
    let tombstone = (format!("{CASE_TOMBSTONES}/{key}"), tomb.to_string().into_bytes());
    let held = [HoldTarget::Case(key.to_owned()).index_key()];
    let expect = (format!("case/{key}"), raw);
    let skipped = h.store.destroy_docs(approval, &held, &expect, &remove, &[tombstone], &format!("case {key}"))?;
    Ok(skipped.map(|why| match why {
        crate::store::ShredSkip::Held(_) => "保留中（事案全体）".to_owned(),
        crate::store::ShredSkip::Changed => "計画後に台帳記録が変更された".to_owned(),
    }))
}

/// Where a destroyed case's tombstone is kept: `case_tomb/<case key>` (ids and dates only).
const CASE_TOMBSTONES: &str = "case_tomb";

/// A run may be planned for today or an earlier day, never for a day that has not come.
pub(crate) fn refuse_future(as_of: NaiveDate) -> Result<()> {
    let today = crate::jp::today();
    if as_of > today {
        return Err(Error::Invalid(format!(
            "基準日 {as_of} は未来の日付です（今日は {today}）。廃棄は期限の到来した記録についてのみ計画できます"
        )));
    }
    Ok(())
}

/// The run item for something due by `as_of` under `policy` (held if a hold covers it), or
/// `None` while it is not due.
pub(crate) fn due_item(
    id: &str,
    class: &str,
    policy: &crate::retention::policy::Policy,
    dates: &crate::retention::policy::RecordDates,
    as_of: NaiveDate,
    holds: &HashMap<String, String>,
) -> Option<Item> {
    let due = policy.due_on(dates).filter(|d| *d <= as_of)?;
    let status = match holds.get(&HoldTarget::Record(id.to_owned()).index_key()) {
        Some(reason) => ItemStatus::Held { reason: reason.clone() },
        None => ItemStatus::Due,
    };
    Some(Item {
        id: id.to_owned(),
        class: class.to_owned(),
        due_on: Some(due),
        policy_version: policy.version,
        status,
        decided_by: None,
    })
}

/// A new run id from the time: two runs planned in the same millisecond must not share one
/// (the second would overwrite the first).
fn unique_run_id(h: &Hozon, prefix: &str) -> Result<String> {
    let base = format!("{prefix}{}", Utc::now().format("%Y%m%d-%H%M%S%3f"));
    let mut id = base.clone();
    let mut n = 1;
    while h.store.get_doc(RUNS, &id)?.is_some() {
        n += 1;
        id = format!("{base}-{n}");
    }
    Ok(id)
}

/// Saves a new draft run of `items`.
pub(crate) fn new_run(
    prefix: &str,
    kind: RunKind,
    as_of: NaiveDate,
    actor: &Actor,
    items: Vec<Item>,
    h: &Hozon,
) -> Result<Run> {
    let run = Run {
        id: unique_run_id(h, prefix)?,
        kind,
        as_of,
        created_by: actor.name().to_owned(),
        created_at: Utc::now(),
        state: RunState::Draft,
        items,
        audit_upto: None,
        epochs: Vec::new(),
        approval_seal: None,
        approved_at: None,
    };
    save(
        h,
        &run,
        Event::new(actor.name(), "dispose.plan", &format!("{} {:?} {} items", run.id, kind, run.items.len()), "ok"),
    )?;
    Ok(run)
}

/// A draft run and the position of one of its items (only a draft's items change).
fn draft_item(h: &Hozon, run_id: &str, item_id: &str) -> Result<(Run, usize)> {
    let run = load(h, run_id)?;
    if run.state != RunState::Draft {
        return Err(wrong(&run, "only a draft can be changed"));
    }
    let i = run
        .items
        .iter()
        .position(|i| i.id == item_id)
        .ok_or_else(|| Error::Run(RunError::NoItem(item_id.into(), run_id.into())))?;
    Ok((run, i))
}

/// Takes a record out of a draft run, with a reason (it stays until the next plan).
pub fn exclude(h: &Hozon, actor: &Actor, run_id: &str, item_id: &str, reason: &str) -> Result<()> {
    actor.require(Function::Retention, Level::Update)?;
    if reason.trim().is_empty() {
        return Err(Error::Run(RunError::NoReason));
    }
    let (mut run, i) = draft_item(h, run_id, item_id)?;
    run.items[i].status = ItemStatus::Excluded { reason: reason.to_owned(), by: actor.name().to_owned() };
    save(h, &run, Event::new(actor.name(), "dispose.exclude", &format!("{run_id} {item_id}"), "ok"))
}

/// Days after someone else reset an officer's password or second factor during which that
/// officer cannot confirm or approve disposal: an administrator who reset both officers'
/// credentials cannot then act as them at once.
const RESET_COOLDOWN_DAYS: i64 = 7;

/// The two-person rule needs two *people*: each acts with their own password (not a one-time
/// password someone else set), with a recent second factor when they have one, in a role the
/// run's policies name for that step.
fn check_officer(h: &Hozon, actor: &Actor, run: &Run, step: usize) -> Result<()> {
    let refuse = |why: String| -> Result<()> {
        h.store.audit(Event::new(actor.name(), "dispose.officer", &run.id, "denied"))?;
        Err(Error::Invalid(why))
    };
    let Some(user) = crate::auth::load(&h.store, actor.name())? else {
        return refuse(format!(
            "{} は利用者として登録されていません（廃棄の確認・承認は本人のアカウントで行います）",
            actor.name()
        ));
    };
    if user.locked || crate::jp::today() > user.expires_on {
        return refuse(format!("{} のアカウントはロック中または有効期限切れです", actor.name()));
    }
    if user.must_change_password {
        return refuse(format!(
            "{} のパスワードは他の人が設定した仮パスワードです。本人が変更するまで廃棄の確認・承認はできません",
            actor.name()
        ));
    }
    if let Some(at) = user.credentials_reset_at
        && Utc::now() - at < chrono::Duration::days(RESET_COOLDOWN_DAYS)
    {
        return refuse(format!(
            "{} のパスワードまたは二要素認証は {} に他の人によって再設定されました。本人確認のため、{RESET_COOLDOWN_DAYS} 日間は廃棄の確認・承認ができません",
            actor.name(),
            crate::jp::date_of(at)
        ));
    }
    if user.totp_enrolled() && !actor.second_factor() {
        return refuse(format!(
            "{} は二要素認証を登録しています。確認コードの入力（/account/totp）を済ませてから操作してください",
            actor.name()
        ));
    }
    let applied = h.applied_policies();
    let classes: std::collections::BTreeSet<&str> = run.items.iter().map(|i| i.class.as_str()).collect();
    for class in classes {
        let Ok(p) = applied.get(class) else { continue };
        let wanted = &p.approvers[step];
        if crate::auth::Role::parse(wanted) != Some(user.role) {
            return refuse(format!(
                "{class} の廃棄の{}は {wanted} の役割が必要です（{} は {}）",
                if step == 0 { "確認" } else { "承認" },
                actor.name(),
                user.role.label_ja()
            ));
        }
    }
    Ok(())
}

/// The preparer confirms the list.
pub fn submit(h: &Hozon, actor: &Actor, run_id: &str) -> Result<()> {
    actor.require(Function::Retention, Level::Update)?;
    let mut run = load(h, run_id)?;
    if run.state != RunState::Draft {
        return Err(wrong(&run, "only a draft can be submitted"));
    }
    let undecided = run.count(|s| *s == ItemStatus::AwaitingDecision);
    if undecided > 0 {
        return Err(Error::Invalid(format!(
            "判断待ちの台帳記録が {undecided} 件あります。廃棄・延長・移管のいずれかを決めてから提出してください"
        )));
    }
    let empty = match run.kind {
        RunKind::AuditLog => run.audit_upto.is_none(),
        _ => run.count(|s| *s == ItemStatus::Due) == 0,
    };
    if empty {
        return Err(Error::Invalid(format!("廃棄実行 {run_id} に廃棄対象がありません（空の実行は提出できません）")));
    }
    check_officer(h, actor, &run, 0)?;
    run.state = RunState::Submitted { by: actor.name().to_owned(), at: Utc::now() };
    save(h, &run, Event::new(actor.name(), "dispose.submit", run_id, "ok"))
}

/// A second officer approves: the two-person rule is enforced here.
pub fn approve(h: &Hozon, actor: &Actor, run_id: &str) -> Result<ApprovedDisposal> {
    actor.require(Function::Retention, Level::Update)?;
    let mut run = load(h, run_id)?;
    let RunState::Submitted { by, .. } = &run.state else {
        return Err(wrong(&run, "only a submitted run can be approved"));
    };
    if *by == actor.name() {
        h.store.audit(Event::new(actor.name(), "dispose.approve", run_id, "denied_same_person"))?;
        return Err(Error::Run(RunError::SamePerson(actor.name().to_owned())));
    }
    check_officer(h, actor, &run, 1)?;
    let preparer = by.clone();
    run.approval_seal = Some(run.seal(h, &preparer, actor.name()));
    run.approved_at = Some(Utc::now());
    run.state = RunState::Approved { preparer: preparer.clone(), approver: actor.name().to_owned(), at: Utc::now() };
    save(h, &run, Event::new(actor.name(), "dispose.approve", run_id, "ok"))?;
    Ok(ApprovedDisposal {
        run_id: run_id.to_owned(),
        preparer,
        approver: actor.name().to_owned(),
        executor: actor.name().to_owned(),
    })
}

/// Aborts the process at a named point when `HOZON_FAILPOINT` names it: lets tests crash an
/// execution deterministically between two steps.
pub(crate) fn failpoint(name: &str) {
    if std::env::var("HOZON_FAILPOINT").is_ok_and(|v| v == name) {
        eprintln!("hozon: failpoint {name}: aborting");
        std::process::abort();
    }
}

/// What an execution did.
#[derive(Debug, Clone)]
pub struct Executed {
    pub run: Run,
    pub destroyed: usize,
    pub certificate: std::path::PathBuf,
    /// Records re-wrapped under fresh epoch keys, and index files re-sealed.
    pub rewrapped: usize,
    pub resealed: usize,
    /// Seconds spent retiring epoch keys and re-sealing the index.
    pub key_seconds: f64,
    pub index_seconds: f64,
}

/// The steps of an execution, in order; the run records the one it is in, so a killed
/// execution resumes there (each step is idempotent).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExecStep {
    /// Re-check, shred keys, delete index documents, bury; batch by batch.
    Destroy,
    /// Merge the index segments that held deleted documents.
    Compact,
    /// New keys for the destroyed records' epochs; survivors re-wrapped; old keys forgotten.
    RetireKeys,
    /// Every index file re-sealed under a new index key; the old one forgotten.
    RotateIndexKey,
    /// Certificate issued, run completed.
    Certify,
}

impl ExecStep {
    pub fn next(self) -> Option<ExecStep> {
        match self {
            ExecStep::Destroy => Some(ExecStep::Compact),
            ExecStep::Compact => Some(ExecStep::RetireKeys),
            ExecStep::RetireKeys => Some(ExecStep::RotateIndexKey),
            ExecStep::RotateIndexKey => Some(ExecStep::Certify),
            ExecStep::Certify => None,
        }
    }
}

/// Executes an approved run (or resumes one that was interrupted), then issues its certificate.
pub fn execute(h: &Hozon, actor: &Actor, run_id: &str, progress: impl FnMut(usize, usize)) -> Result<Executed> {
    actor.require(Function::Retention, Level::Update)?;
    // One execution of a run at a time (a double click, two officers): the data directory
    // belongs to one process, so an in-process set is enough.
    static EXECUTING: std::sync::Mutex<std::collections::BTreeSet<String>> =
        std::sync::Mutex::new(std::collections::BTreeSet::new());
    if !EXECUTING.lock().expect("executing runs").insert(run_id.to_owned()) {
        return Err(Error::Invalid(format!("廃棄実行 {run_id} は既に実行中です")));
    }
    /// Takes the run out of the set however execution ends (a panic included).
    struct Leave<'a>(&'a str);
    impl Drop for Leave<'_> {
        fn drop(&mut self) {
            if let Ok(mut set) = EXECUTING.lock() {
                set.remove(self.0);
            }
        }
    }
    let _leave = Leave(run_id);
    execute_once(h, actor, run_id, progress)
}

fn execute_once(h: &Hozon, actor: &Actor, run_id: &str, mut progress: impl FnMut(usize, usize)) -> Result<Executed> {
    let mut run = load(h, run_id)?;
    let (preparer, approver, mut step) = match &run.state {
        RunState::Approved { preparer, approver, .. } => (preparer.clone(), approver.clone(), ExecStep::Destroy),
        RunState::Executing { preparer, approver, step } => (preparer.clone(), approver.clone(), *step),
        _ => return Err(wrong(&run, "only an approved run can be executed")),
    };
    if run.kind == RunKind::Paper {
        return Err(wrong(&run, "paper runs are completed with the contractor's certificate"));
    }
    refuse_future(run.as_of)?;
    verify_approval(h, actor, &run, &preparer, &approver)?;
    let approval = ApprovedDisposal {
        run_id: run_id.to_owned(),
        preparer: preparer.clone(),
        approver: approver.clone(),
        executor: actor.name().to_owned(),
    };
    if run.kind == RunKind::AuditLog {
        return execute_audit(h, actor, run, &approval);
    }
    let set_step = |run: &mut Run, step: ExecStep, what: &str| -> Result<()> {
        run.state = RunState::Executing { preparer: preparer.clone(), approver: approver.clone(), step };
        save(h, run, Event::new(actor.name(), "dispose.execute", &format!("{run_id} {what}"), "ok"))
    };
    if matches!(run.state, RunState::Approved { .. }) {
        // Every epoch the run's records are in, or ever were, is retired at the end: noted
        // before any key is destroyed, since a destroyed record's metadata goes with it.
        let mut recs = Vec::new();
        for i in run.items.iter().filter(|i| i.status == ItemStatus::Due) {
            if let Some(id) = crate::store::RecordId::parse(&i.id)
                && let Some(r) = h.store.record(&id)?
            {
                recs.push(r);
            }
        }
        let mut epochs = crate::store::Store::epochs_of(&recs);
        for i in run.items.iter().filter(|i| i.status == ItemStatus::Due) {
            if let Some(key) = i.id.strip_prefix(CASE_ITEM) {
                epochs.extend(h.store.doc_epochs("case", key)?);
            }
        }
        run.epochs = epochs.into_iter().collect();
        set_step(&mut run, ExecStep::Destroy, "started")?;
    }
    let today = crate::jp::today();
    let mut out = Executed {
        run: run.clone(),
        destroyed: 0,
        certificate: Default::default(),
        rewrapped: 0,
        resealed: 0,
        key_seconds: 0.0,
        index_seconds: 0.0,
    };
    loop {
        match step {
            ExecStep::Destroy => {
                destroy_items(h, &mut run, &approval, today, &mut progress)?;
                // Statuses (destroyed, skipped with reasons) are kept before the next step.
                save(h, &run, Event::new(actor.name(), "dispose.execute", &format!("{run_id} destroyed"), "ok"))?;
            }
            ExecStep::Compact => {
                // The deleted documents' text leaves the disk only when their segments merge.
                h.index.compact()?;
            }
            ExecStep::RetireKeys => {
                let t = std::time::Instant::now();
                let mut labels: std::collections::BTreeSet<String> = run.epochs.iter().cloned().collect();
                // Epochs whose fiscal year has ended hold nothing that is not due: retiring them
                // too leaves no key alive for records that left them earlier.
                let fy_now = crate::jp::fiscal_year(today);
                for label in h.store.epoch_labels() {
                    if let Some(fy) = label.rsplit_once("/FY").and_then(|(_, y)| y.parse::<i32>().ok())
                        && fy < fy_now
                    {
                        labels.insert(label);
                    }
                }
                let labels: Vec<String> = labels.into_iter().collect();
                out.rewrapped = h.store.retire_epochs(&approval, &labels)?;
                out.key_seconds = t.elapsed().as_secs_f64();
            }
            ExecStep::RotateIndexKey => {
                let t = std::time::Instant::now();
                let new = h.store.begin_index_rotation(&approval)?;
                failpoint("dispose.index_key_new");
                out.resealed = h.index.reseal(new)?;
                failpoint("dispose.index_resealed");
                h.store.finish_index_rotation(&approval)?;
                out.index_seconds = t.elapsed().as_secs_f64();
            }
            ExecStep::Certify => break,
        }
        step = step.next().expect("certify ends the loop");
        set_step(&mut run, step, &format!("{step:?}"))?;
    }
    let total = run.count(|s| *s == ItemStatus::Destroyed);
    let cert = super::certificate::issue(h, &run, &preparer, &approver, actor.name())?;
    run.state = RunState::Completed { preparer, approver, at: Utc::now(), certificate_sha256: cert.pdf_sha256.clone() };
    save(h, &run, Event::new(actor.name(), "dispose.complete", &format!("{run_id} {total} destroyed"), "ok"))?;
    out.run = run;
    out.destroyed = total;
    out.certificate = cert.path;
    Ok(out)
}

/// The destroy step: batch by batch, each record re-checked at the last moment (applied
/// policy, due date on Japan's today, holds inside the transaction that shreds), then its
/// key shredded, its index documents deleted, its blobs removed and a tombstone left.
fn destroy_items(
    h: &Hozon,
    run: &mut Run,
    approval: &ApprovedDisposal,
    today: NaiveDate,
    progress: &mut impl FnMut(usize, usize),
) -> Result<()> {
    let run_id = run.id.clone();
    let cases = case_of_records(h)?;
    let holds = active_holds(h)?;
    let released_since = released_holds_since(h, run.approved_at)?;
    let due: Vec<usize> = (0..run.items.len())
        .filter(|i| matches!(run.items[*i].status, ItemStatus::Due | ItemStatus::Destroyed))
        .filter(|i| !run.items[*i].id.starts_with(CASE_ITEM))
        .collect();
    // Case records first: a case's pages are items of their own.
    for i in 0..run.items.len() {
        if let Some(key) = run.items[i].id.strip_prefix(CASE_ITEM).map(str::to_owned)
            && matches!(run.items[i].status, ItemStatus::Due | ItemStatus::Destroyed)
        {
            if let Some(label) = released_since.get(&HoldTarget::Case(key.clone()).index_key()) {
                run.items[i].status = ItemStatus::Skipped {
                    reason: format!("承認後に保留が解除された（改めて計画・承認が必要）: {label}"),
                };
                continue;
            }
            // Its epochs as they are now are noted before its keys can go.
            let labels: Vec<String> =
                h.store.doc_epochs("case", &key)?.into_iter().filter(|l| !run.epochs.contains(l)).collect();
            if !labels.is_empty() {
                run.epochs.extend(labels);
                save(h, run, Event::new(approval.executor(), "dispose.execute", &format!("{run_id} epochs"), "ok"))?;
            }
            let decided = run.items[i].decided_by.is_some();
            run.items[i].status = match destroy_case(h, approval, &key, decided, today)? {
                None => ItemStatus::Destroyed,
                Some(reason) => ItemStatus::Skipped { reason },
            };
        }
    }
    let total = due.len();
    let mut done = 0;
    for chunk in due.chunks(BATCH) {
        let mut shredding: Vec<Record> = Vec::with_capacity(chunk.len());
        let mut intact: Vec<(Record, Vec<String>)> = Vec::new();
        let mut index_of: HashMap<String, usize> = HashMap::new();
        for &i in chunk {
            let id = crate::store::RecordId::parse(&run.items[i].id)
                .ok_or_else(|| Error::Corrupt(format!("bad id in run: {}", run.items[i].id)))?;
            index_of.insert(id.to_string(), i);
            match h.store.record(&id)? {
                Some(r) if matches!(r.state, RecordState::Shredding { .. }) => shredding.push(r),
                Some(r) => {
                    let keys = hold_keys(id.as_str(), &cases);
                    let released = keys.iter().find_map(|k| released_since.get(k));
                    match (not_destroyable(h, &r, today)?, released) {
                        (Some(reason), _) => run.items[i].status = ItemStatus::Skipped { reason },
                        (None, Some(label)) => {
                            run.items[i].status = ItemStatus::Skipped {
                                reason: format!("承認後に保留が解除された（改めて計画・承認が必要）: {label}"),
                            }
                        }
                        (None, None) => intact.push((r, keys)),
                    }
                }
                None if h.store.tombstone(id.as_str())?.is_some() => run.items[i].status = ItemStatus::Destroyed,
                None => {
                    return Err(Error::Corrupt(format!("record {id} of run {run_id} vanished without a tombstone")));
                }
            }
        }
        // The epochs of what is about to be destroyed, as it is now (a label may have changed
        // since execution started), are noted before any key goes.
        let recs_now: Vec<Record> = intact.iter().map(|(r, _)| r.clone()).collect();
        let new_labels: Vec<String> =
            crate::store::Store::epochs_of(&recs_now).into_iter().filter(|l| !run.epochs.contains(l)).collect();
        if !new_labels.is_empty() {
            run.epochs.extend(new_labels);
            save(h, run, Event::new(approval.executor(), "dispose.execute", &format!("{run_id} epochs"), "ok"))?;
        }
        // Step 1: crypto-shredding, re-checking holds and that nothing changed in the same
        // transaction.
        if !intact.is_empty() {
            let skipped = h.store.shred_keys(approval, &intact)?;
            for (id, why) in &skipped {
                let reason = match why {
                    crate::store::ShredSkip::Held(key) => {
                        holds.get(key).cloned().map_or_else(|| "保留中".to_owned(), |l| format!("保留中: {l}"))
                    }
                    crate::store::ShredSkip::Changed => "計画後に記録が変更された".to_owned(),
                };
                run.items[index_of[id.as_str()]].status = ItemStatus::Skipped { reason };
            }
            let skipped: std::collections::HashSet<&str> = skipped.iter().map(|(id, _)| id.as_str()).collect();
            for (mut r, _) in intact {
                if !skipped.contains(r.id.as_str()) {
                    r.wrapped_key.clear();
                    r.state = RecordState::Shredding { run: run_id.clone() };
                    shredding.push(r);
                }
            }
        }
        failpoint("dispose.after_shred");
        // Step 2: out of the index (merged away from disk in the compact step).
        let ids: Vec<String> = shredding.iter().map(|r| r.id.to_string()).collect();
        h.index.delete(approval, &ids)?;
        failpoint("dispose.after_purge");
        // Step 3: blobs and metadata; tombstones remain.
        let now = Utc::now();
        let tombstones: Vec<Tombstone> = shredding
            .iter()
            .map(|r| {
                let d = r.dates();
                Tombstone {
                    record_id: r.id.to_string(),
                    class: r.class.clone(),
                    received_on: d.received,
                    last_change_on: d.last_change,
                    due_on: r.retention.as_ref().and_then(|x| x.due_on),
                    policy_version: r.retention.as_ref().map_or(0, |x| x.policy_version),
                    run_id: run_id.clone(),
                    destroyed_at: now,
                }
            })
            .collect();
        h.store.bury(approval, &shredding, &tombstones)?;
        for r in &shredding {
            run.items[index_of[r.id.as_str()]].status = ItemStatus::Destroyed;
        }
        done += chunk.len();
        progress(done, total);
    }
    Ok(())
}

/// Records that become due in each of the next `months` months, per class.
pub fn forecast(
    h: &Hozon,
    actor: &Actor,
    today: NaiveDate,
    months: u32,
) -> Result<BTreeMap<String, BTreeMap<String, usize>>> {
    actor.require(Function::Retention, Level::View)?;
    let end = today.checked_add_months(chrono::Months::new(months)).unwrap_or(today);
    let mut out: BTreeMap<String, BTreeMap<String, usize>> = BTreeMap::new();
    let applied = h.applied_policies();
    for rec in h.store.records() {
        let rec = rec?;
        if rec.state != RecordState::Stored {
            continue;
        }
        // As plans judge it: the applied date, or a later one its dates give now.
        let recomputed = applied.get(&rec.class)?.due_on(&rec.dates());
        let Some(due) = rec.retention.as_ref().and_then(|r| r.due_on).zip(recomputed).map(|(a, b)| a.max(b)) else {
            continue;
        };
        if due > end {
            continue;
        }
        let month = if due <= today { "期限到来済".to_owned() } else { due.format("%Y-%m").to_string() };
        *out.entry(month).or_default().entry(rec.class.clone()).or_default() += 1;
    }
    // Paper boxes become due under the same policies.
    let paper = applied.get(crate::retention::boxes::CLASS)?;
    for b in crate::retention::boxes::list(h, &Actor::system())? {
        if b.status == crate::retention::boxes::BoxStatus::Destroyed {
            continue;
        }
        let dates =
            crate::retention::policy::RecordDates { received: b.sealed_on, last_change: b.sealed_on, decided: None };
        let Some(due) = paper.due_on(&dates) else { continue };
        if due > end {
            continue;
        }
        let month = if due <= today { "期限到来済".to_owned() } else { due.format("%Y-%m").to_string() };
        *out.entry(month).or_default().entry(crate::retention::boxes::CLASS.to_owned()).or_default() += 1;
    }
    Ok(out)
}

/// Re-computes every record's disposal date under the policies now loaded. Refuses when any
/// date would move earlier unless `accept_earlier` is set (a shortened retention is a decision,
/// never a side effect of editing a file). Returns the impact that was applied.
/// What applying the policy files now would change: records due earlier, later, unchanged.
pub fn policy_impact(h: &Hozon, actor: &Actor) -> Result<crate::retention::policy::Impact> {
    actor.require(Function::Retention, Level::View)?;
    let recs: Vec<Record> = h.store.records().collect::<std::result::Result<_, _>>()?;
    Ok(crate::retention::policy::impact(&h.policies, recs.iter())?)
}

pub fn apply_policies(h: &Hozon, actor: &Actor, accept_earlier: bool) -> Result<crate::retention::policy::Impact> {
    actor.require(Function::Retention, Level::Update)?;
    let recs: Vec<Record> = h.store.records().collect::<std::result::Result<_, _>>()?;
    let impact = crate::retention::policy::impact(&h.policies, recs.iter())?;
    if !impact.earlier.is_empty() && !accept_earlier {
        return Err(Error::Run(RunError::WrongState {
            run: "policy".into(),
            state: format!("{} records would become due earlier", impact.earlier.len()),
            wanted: "review them (`hozon policy check`) and apply with --accept-earlier".into(),
        }));
    }
    // The new set first, so the records' new dates are computed from it.
    h.set_applied_policies(Event::new(actor.name(), "policy.set_applied", "files", "ok"))?;
    let mut changed = Vec::new();
    for mut r in recs {
        let new = h.retention_for(&r)?;
        if r.retention.as_ref() != Some(&new) {
            r.retention = Some(new);
            changed.push(r);
        }
    }
    let event = Event::new(
        actor.name(),
        "policy.apply",
        &format!("{} records re-dated, {} earlier", changed.len(), impact.earlier.len()),
        "ok",
    );
    h.store.update_records(&changed, event)?;
    Ok(impact)
}

/// Lists the audit log entries past their retention (a prefix of the chain) in a new run, one
/// item per month.
pub fn plan_audit(h: &Hozon, actor: &Actor, as_of: NaiveDate) -> Result<Run> {
    actor.require(Function::Retention, Level::Update)?;
    refuse_future(as_of)?;
    let applied = h.applied_policies();
    let policy = applied.get("audit_log")?;
    let jst = crate::jp::jst();
    let mut months: BTreeMap<String, usize> = BTreeMap::new();
    let mut upto = None;
    for e in h.store.audit_entries()? {
        let day = e.at.with_timezone(&jst).date_naive();
        let dates = crate::retention::policy::RecordDates { received: day, last_change: day, decided: None };
        // Entries are in time order: the first one not yet due ends the prefix.
        if policy.due_on(&dates).is_none_or(|d| d > as_of) {
            break;
        }
        *months.entry(day.format("%Y-%m").to_string()).or_default() += 1;
        upto = Some(e.seq);
    }
    let items = months
        .into_iter()
        .map(|(m, n)| Item {
            id: format!("{m}:{n}"),
            class: "audit_log".into(),
            due_on: None,
            policy_version: policy.version,
            status: ItemStatus::Due,
            decided_by: None,
        })
        .collect();
    let run = Run {
        id: unique_run_id(h, "A")?,
        kind: RunKind::AuditLog,
        as_of,
        created_by: actor.name().to_owned(),
        created_at: Utc::now(),
        state: RunState::Draft,
        items,
        audit_upto: upto,
        epochs: Vec::new(),
        approval_seal: None,
        approved_at: None,
    };
    save(h, &run, Event::new(actor.name(), "dispose.plan_audit", &format!("{} up to entry {:?}", run.id, upto), "ok"))?;
    Ok(run)
}

fn execute_audit(h: &Hozon, actor: &Actor, mut run: Run, approval: &ApprovedDisposal) -> Result<Executed> {
    if run.items.iter().any(|i| !matches!(i.status, ItemStatus::Due | ItemStatus::Destroyed)) {
        return Err(wrong(
            &run,
            "an audit-log run disposes of a whole prefix of the chain; exclusions are not possible",
        ));
    }
    let mut removed = 0;
    if let Some(upto) = run.audit_upto {
        // Already pruned by an interrupted execution: the base is at or past `upto`.
        let done = h.store.audit_base()?.is_some_and(|b| b.seq >= upto);
        if !done {
            let base = crate::audit::base_at(&h.store.audit_entries()?, upto)
                .ok_or_else(|| Error::Corrupt(format!("audit entry {upto} is missing")))?;
            removed = h.store.prune_audit(approval, &base)?;
        }
    }
    for i in &mut run.items {
        i.status = ItemStatus::Destroyed;
    }
    let cert = super::certificate::issue(h, &run, approval.preparer(), approval.approver(), actor.name())?;
    run.state = RunState::Completed {
        preparer: approval.preparer().to_owned(),
        approver: approval.approver().to_owned(),
        at: Utc::now(),
        certificate_sha256: cert.pdf_sha256,
    };
    save(h, &run, Event::new(actor.name(), "dispose.complete", &format!("{} {removed} audit entries", run.id), "ok"))?;
    Ok(Executed {
        run,
        destroyed: removed,
        certificate: cert.path,
        rewrapped: 0,
        resealed: 0,
        key_seconds: 0.0,
        index_seconds: 0.0,
    })
}

/// One run item as staff confirm it against the paper: who and what, in the office's words.
#[derive(Debug, Clone)]
pub struct ItemView {
    pub item: Item,
    /// The form's name in Japanese (申請書, 個人番号調書…) or the record class's policy title.
    pub form: String,
    /// 受給者番号 as read from the page, if it has one.
    pub recipient_no: String,
    /// The applicant's name; masked (`＊＊＊`) for users without the right to search.
    pub name: String,
    /// Received and due dates as 和暦 with the ISO date beside.
    pub received: String,
    pub due: String,
    /// The applied policy's title and period.
    pub policy: String,
    /// Whether the page can still be opened (`/pages/<id>`).
    pub openable: bool,
}

/// Labels an item by its status: (filter key, Japanese label, note).
pub fn status_ja(s: &ItemStatus) -> (&'static str, &'static str, String) {
    match s {
        ItemStatus::Due => ("due", "廃棄対象", String::new()),
        ItemStatus::Held { reason } => ("held", "保留", reason.clone()),
        ItemStatus::Excluded { reason, by } => ("excluded", "除外", format!("{reason}（{by}）")),
        ItemStatus::Destroyed => ("destroyed", "廃棄済", String::new()),
        ItemStatus::Missing => ("missing", "業者証明書に記載なし", String::new()),
        ItemStatus::Skipped { reason } => ("skipped", "実行時に見送り", reason.clone()),
        ItemStatus::AwaitingDecision => ("decision", "判断待ち（廃棄・延長・移管）", String::new()),
    }
}

/// The views of `items` of a run, read from each record's sealed draft (decrypted in memory,
/// nothing written); names masked unless `actor` may search.
pub fn item_views(h: &Hozon, actor: &Actor, items: &[&Item]) -> Result<Vec<ItemView>> {
    actor.require(Function::Retention, Level::View)?;
    let names_visible = actor.rights().allows(Function::Search, Level::View);
    // A suspended person (利用停止) stays listed (the run must account for every record) but
    // without name or number, and their pages do not open, for all but the security officer.
    let hidden = h.hidden_markers(actor)?;
    const SUSPENDED: &str = "（利用停止中）";
    let applied = h.applied_policies();
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        let (policy, title) = match applied.get(&item.class) {
            Ok(p) => (
                format!("{}（{}年{}）", p.title, p.years, if p.from_fiscal_year_end { "・年度末起算" } else { "" }),
                p.title.clone(),
            ),
            Err(_) => (item.class.clone(), item.class.clone()),
        };
        let form = match crate::index::vocab::form_label(&item.class) {
            l if l == item.class => title,
            l => l,
        };
        let mut view = ItemView {
            item: (*item).clone(),
            form,
            recipient_no: String::new(),
            name: String::new(),
            received: String::new(),
            due: item.due_on.map(crate::jp::era_and_iso).unwrap_or_default(),
            policy,
            openable: false,
        };
        if let Some(key) = item.id.strip_prefix(CASE_ITEM) {
            if let Some(case) = h.load_case(key)? {
                if hidden.contains(&h.person_key(&case.current.recipient_no)) {
                    view.name = SUSPENDED.into();
                } else {
                    view.recipient_no = case.current.recipient_no.clone();
                    view.name = if names_visible { case.current.name.clone() } else { "＊＊＊".into() };
                }
                view.received = format!("最終異動 {}", crate::jp::era_and_iso(crate::jp::date_of(case.last_change())));
            }
        } else if let Some(id) = crate::store::RecordId::parse(&item.id) {
            if let Some(rec) = h.store.record(&id)? {
                view.received = crate::jp::era_and_iso(rec.dates().received);
                view.openable = rec.state == RecordState::Stored && rec.kind == crate::store::RecordKind::Page;
                if rec.state == RecordState::Stored && h.suspended_for(&rec, &hidden)? {
                    view.name = SUSPENDED.into();
                    view.openable = false;
                } else if rec.state == RecordState::Stored
                    && rec.blob(crate::store::BlobRole::Draft).is_some()
                    && let Ok(json) = h.store.read_blob(&rec, crate::store::BlobRole::Draft)
                    && let Ok(draft) = serde_json::from_slice::<crate::drafts::Draft>(&json)
                {
                    let value = |k: &str| draft.field(k).map(|f| f.value_or_raw().to_owned()).unwrap_or_default();
                    view.recipient_no = value("recipient_no");
                    let name = value("name");
                    view.name = if names_visible || name.is_empty() { name } else { "＊＊＊".into() };
                }
            } else if let Some(t) = h.store.tombstone(id.as_str())? {
                view.received = crate::jp::era_and_iso(t.received_on);
            }
        }
        out.push(view);
    }
    Ok(out)
}

/// The run's list for the paper check, as CSV (UTF-8 with BOM, or CP932 for older Excel):
/// every item, its status and reason. Holds names, so it needs a recent second factor.
pub fn items_csv(h: &Hozon, actor: &Actor, run_id: &str, enc: crate::capture::batch::CsvEncoding) -> Result<Vec<u8>> {
    actor.require(Function::Retention, Level::View)?;
    actor.require_second_factor()?;
    let run = load(h, run_id)?;
    let items: Vec<&Item> = run.items.iter().collect();
    let views = item_views(h, actor, &items)?;
    let mut w = crate::csvout::Csv::new();
    w.row(["記録ID", "受給者番号", "氏名", "書類", "受付日", "廃棄可能日", "保存期間", "状態", "理由"])?;
    for v in &views {
        let (_, label, note) = status_ja(&v.item.status);
        w.row([v.item.id.as_str(), &v.recipient_no, &v.name, &v.form, &v.received, &v.due, &v.policy, label, &note])?;
    }
    let bytes = w.finish(enc)?;
    h.store.audit(Event::new(actor.name(), "dispose.list_csv", run_id, "ok"))?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn execution_steps_run_in_order_and_end_with_the_certificate() {
        let mut step = ExecStep::Destroy;
        let mut seen = vec![step];
        while let Some(next) = step.next() {
            seen.push(next);
            step = next;
        }
        assert_eq!(
            seen,
            [ExecStep::Destroy, ExecStep::Compact, ExecStep::RetireKeys, ExecStep::RotateIndexKey, ExecStep::Certify]
        );
        // A run saved mid-execution by an older version (no step) resumes from the start,
        // which is idempotent.
        let old: RunState = serde_json::from_str(r#"{"state":"executing","preparer":"a","approver":"b"}"#).unwrap();
        assert!(matches!(old, RunState::Executing { step: ExecStep::Destroy, .. }));
    }

    #[test]
    fn hold_targets_have_distinct_index_keys() {
        assert_eq!(HoldTarget::Record("ab".into()).index_key(), "r:ab");
        assert_eq!(HoldTarget::Case("ab".into()).index_key(), "c:ab");
        let cases: HashMap<String, Vec<String>> = [("rec".to_owned(), vec!["case1".to_owned()])].into();
        assert_eq!(hold_keys("rec", &cases), vec!["r:rec".to_owned(), "c:case1".to_owned()]);
        assert_eq!(hold_keys("other", &cases), vec!["r:other".to_owned()]);
    }
}
