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
    Submitted { by: String, at: DateTime<Utc> },
    Approved { preparer: String, approver: String, at: DateTime<Utc> },
    Executing { preparer: String, approver: String },
    Completed { preparer: String, approver: String, at: DateTime<Utc>, certificate_sha256: String },
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

/// A hold (legal/audit hold, pending disclosure request, open case) on records.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Hold {
    pub id: String,
    pub kind: String,
    pub reason: String,
    pub record_ids: Vec<String>,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub released_at: Option<DateTime<Utc>>,
}

pub fn load(h: &Hozon, id: &str) -> Result<Run> {
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

pub fn place_hold(h: &Hozon, actor: &Actor, kind: &str, reason: &str, record_ids: &[String]) -> Result<Hold> {
    actor.require(Function::Retention, Level::Update)?;
    if reason.trim().is_empty() {
        return Err(Error::Run(RunError::NoReason));
    }
    let hold = Hold {
        id: format!("H{}", Utc::now().format("%Y%m%d%H%M%S%f")),
        kind: kind.to_owned(),
        reason: reason.to_owned(),
        record_ids: record_ids.to_vec(),
        created_by: actor.name.clone(),
        created_at: Utc::now(),
        released_at: None,
    };
    let event = Event::new(&actor.name, "hold.place", &format!("{} {} records", hold.id, record_ids.len()), "ok");
    h.store.put_doc(HOLDS, &hold.id, &serde_json::to_vec(&hold).expect("hold serialises"), event)?;
    Ok(hold)
}

pub fn release_hold(h: &Hozon, actor: &Actor, id: &str) -> Result<()> {
    actor.require(Function::Retention, Level::Update)?;
    let v = h.store.get_doc(HOLDS, id)?.ok_or_else(|| Error::NotFound(id.to_owned()))?;
    let mut hold: Hold = serde_json::from_slice(&v).map_err(|e| Error::Corrupt(e.to_string()))?;
    hold.released_at = Some(Utc::now());
    h.store.put_doc(
        HOLDS,
        id,
        &serde_json::to_vec(&hold).expect("hold serialises"),
        Event::new(&actor.name, "hold.release", id, "ok"),
    )?;
    Ok(())
}

/// Active holds by record id (the reason of the first hold found).
pub fn active_holds(h: &Hozon) -> Result<HashMap<String, String>> {
    let mut out = HashMap::new();
    for (_, v) in h.store.docs(HOLDS)? {
        let hold: Hold = serde_json::from_slice(&v).map_err(|e| Error::Corrupt(e.to_string()))?;
        if hold.released_at.is_none() {
            for id in hold.record_ids {
                out.entry(id).or_insert_with(|| format!("{}（{}）: {}", hold.kind, hold.id, hold.reason));
            }
        }
    }
    Ok(out)
}

/// Lists the records due on `as_of` in a new draft run. Records in an open run are skipped.
pub fn plan(h: &Hozon, actor: &Actor, as_of: NaiveDate) -> Result<Run> {
    actor.require(Function::Retention, Level::Update)?;
    let holds = active_holds(h)?;
    let mut in_open_run = std::collections::HashSet::new();
    for r in list(h, actor)? {
        if !matches!(r.state, RunState::Completed { .. }) && r.kind == RunKind::Electronic {
            in_open_run.extend(r.items.into_iter().map(|i| i.id));
        }
    }
    let mut items = Vec::new();
    for rec in h.store.records() {
        let rec = rec?;
        if rec.state != RecordState::Stored || in_open_run.contains(rec.id.as_str()) {
            continue;
        }
        let policy = h.policies.get(&rec.class)?;
        // Records bound for the archives (移管) are never destroyed by a disposal run.
        if policy.action == crate::retention::policy::Action::Transfer {
            continue;
        }
        items.extend(due_item(rec.id.as_str(), &rec.class, policy, &rec.dates(), as_of, &holds));
    }
    new_run("D", RunKind::Electronic, as_of, actor, items, h)
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
    let status = match holds.get(id) {
        Some(reason) => ItemStatus::Held { reason: reason.clone() },
        None => ItemStatus::Due,
    };
    Some(Item { id: id.to_owned(), class: class.to_owned(), due_on: Some(due), policy_version: policy.version, status })
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
        id: format!("{prefix}{}", Utc::now().format("%Y%m%d-%H%M%S%3f")),
        kind,
        as_of,
        created_by: actor.name.clone(),
        created_at: Utc::now(),
        state: RunState::Draft,
        items,
        audit_upto: None,
    };
    save(
        h,
        &run,
        Event::new(&actor.name, "dispose.plan", &format!("{} {:?} {} items", run.id, kind, run.items.len()), "ok"),
    )?;
    Ok(run)
}

/// Takes a record out of a draft run, with a reason (it stays until the next plan).
pub fn exclude(h: &Hozon, actor: &Actor, run_id: &str, item_id: &str, reason: &str) -> Result<()> {
    actor.require(Function::Retention, Level::Update)?;
    if reason.trim().is_empty() {
        return Err(Error::Run(RunError::NoReason));
    }
    let mut run = load(h, run_id)?;
    if run.state != RunState::Draft {
        return Err(wrong(&run, "only a draft can be changed"));
    }
    let item = run
        .items
        .iter_mut()
        .find(|i| i.id == item_id)
        .ok_or_else(|| Error::Run(RunError::NoItem(item_id.into(), run_id.into())))?;
    item.status = ItemStatus::Excluded { reason: reason.to_owned(), by: actor.name.clone() };
    save(h, &run, Event::new(&actor.name, "dispose.exclude", &format!("{run_id} {item_id}"), "ok"))
}

/// The preparer confirms the list.
pub fn submit(h: &Hozon, actor: &Actor, run_id: &str) -> Result<()> {
    actor.require(Function::Retention, Level::Update)?;
    let mut run = load(h, run_id)?;
    if run.state != RunState::Draft {
        return Err(wrong(&run, "only a draft can be submitted"));
    }
    run.state = RunState::Submitted { by: actor.name.clone(), at: Utc::now() };
    save(h, &run, Event::new(&actor.name, "dispose.submit", run_id, "ok"))
}

/// A second officer approves: the two-person rule is enforced here.
pub fn approve(h: &Hozon, actor: &Actor, run_id: &str) -> Result<ApprovedDisposal> {
    actor.require(Function::Retention, Level::Update)?;
    let mut run = load(h, run_id)?;
    let RunState::Submitted { by, .. } = &run.state else {
        return Err(wrong(&run, "only a submitted run can be approved"));
    };
    if *by == actor.name {
        h.store.audit(Event::new(&actor.name, "dispose.approve", run_id, "denied_same_person"))?;
        return Err(Error::Run(RunError::SamePerson(actor.name.clone())));
    }
    let preparer = by.clone();
    run.state = RunState::Approved { preparer: preparer.clone(), approver: actor.name.clone(), at: Utc::now() };
    save(h, &run, Event::new(&actor.name, "dispose.approve", run_id, "ok"))?;
    Ok(ApprovedDisposal {
        run_id: run_id.to_owned(),
        preparer,
        approver: actor.name.clone(),
        executor: actor.name.clone(),
    })
}

/// Aborts the process at a named point when `HOZON_FAILPOINT` names it: lets tests crash an
/// execution deterministically between two steps.
fn failpoint(name: &str) {
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
}

/// Executes an approved run (or resumes one that was interrupted), then issues its certificate.
pub fn execute(h: &Hozon, actor: &Actor, run_id: &str, mut progress: impl FnMut(usize, usize)) -> Result<Executed> {
    actor.require(Function::Retention, Level::Update)?;
    let mut run = load(h, run_id)?;
    let (preparer, approver) = match &run.state {
        RunState::Approved { preparer, approver, .. } | RunState::Executing { preparer, approver } => {
            (preparer.clone(), approver.clone())
        }
        _ => return Err(wrong(&run, "only an approved run can be executed")),
    };
    if run.kind == RunKind::Paper {
        return Err(wrong(&run, "paper runs are completed with the contractor's certificate"));
    }
    let approval = ApprovedDisposal {
        run_id: run_id.to_owned(),
        preparer: preparer.clone(),
        approver: approver.clone(),
        executor: actor.name.clone(),
    };
    if run.kind == RunKind::AuditLog {
        return execute_audit(h, actor, run, &approval);
    }
    if matches!(run.state, RunState::Approved { .. }) {
        run.state = RunState::Executing { preparer: preparer.clone(), approver: approver.clone() };
        save(h, &run, Event::new(&actor.name, "dispose.execute", run_id, "started"))?;
    }
    let due: Vec<usize> = (0..run.items.len())
        .filter(|i| matches!(run.items[*i].status, ItemStatus::Due | ItemStatus::Destroyed))
        .collect();
    let total = due.len();
    let mut done = 0;
    for chunk in due.chunks(BATCH) {
        let mut recs: Vec<Record> = Vec::with_capacity(chunk.len());
        for &i in chunk {
            let id = crate::store::RecordId::parse(&run.items[i].id)
                .ok_or_else(|| Error::Corrupt(format!("bad id in run: {}", run.items[i].id)))?;
            match h.store.record(&id)? {
                Some(r) => recs.push(r),
                None if h.store.tombstone(id.as_str())?.is_some() => {} // finished before a crash
                None => {
                    return Err(Error::Corrupt(format!("record {id} of run {run_id} vanished without a tombstone")));
                }
            }
        }
        // Step 1: crypto-shredding of what is still intact.
        let intact: Vec<Record> = recs.iter().filter(|r| r.state == RecordState::Stored).cloned().collect();
        if !intact.is_empty() {
            h.store.shred_keys(&approval, &intact)?;
        }
        failpoint("dispose.after_shred");
        let shredding: Vec<Record> = recs
            .into_iter()
            .map(|mut r| {
                if r.state == RecordState::Stored {
                    r.wrapped_key.clear();
                    r.state = RecordState::Shredding { run: run_id.to_owned() };
                }
                r
            })
            .collect();
        // Step 2: out of the index (merged away from disk after the last batch, below).
        let ids: Vec<String> = shredding.iter().map(|r| r.id.to_string()).collect();
        h.index.delete(&ids)?;
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
                    run_id: run_id.to_owned(),
                    destroyed_at: now,
                }
            })
            .collect();
        h.store.bury(&approval, &shredding, &tombstones)?;
        done += chunk.len();
        progress(done, total);
    }
    // The deleted documents' text leaves the disk only when their segments are merged; a
    // resumed run always ends here too.
    h.index.compact()?;
    for &i in &due {
        run.items[i].status = ItemStatus::Destroyed;
    }
    let cert = super::certificate::issue(h, &run, &preparer, &approver, &actor.name)?;
    run.state = RunState::Completed { preparer, approver, at: Utc::now(), certificate_sha256: cert.pdf_sha256.clone() };
    save(h, &run, Event::new(&actor.name, "dispose.complete", &format!("{run_id} {} destroyed", total), "ok"))?;
    Ok(Executed { run, destroyed: total, certificate: cert.path })
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
    for rec in h.store.records() {
        let rec = rec?;
        if rec.state != RecordState::Stored {
            continue;
        }
        let Some(due) = h.policies.get(&rec.class)?.due_on(&rec.dates()) else { continue };
        if due > end {
            continue;
        }
        let month = if due <= today { "期限到来済".to_owned() } else { due.format("%Y-%m").to_string() };
        *out.entry(month).or_default().entry(rec.class.clone()).or_default() += 1;
    }
    // Paper boxes become due under the same policies.
    let paper = h.policies.get(crate::retention::boxes::CLASS)?;
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
    let mut changed = Vec::new();
    for mut r in recs {
        let new = h.retention_for(&r)?;
        if r.retention.as_ref() != Some(&new) {
            r.retention = Some(new);
            changed.push(r);
        }
    }
    let event = Event::new(
        &actor.name,
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
    let policy = h.policies.get("audit_log")?;
    let jst = chrono::FixedOffset::east_opt(9 * 3600).expect("JST");
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
        })
        .collect();
    let run = Run {
        id: format!("A{}", Utc::now().format("%Y%m%d-%H%M%S%3f")),
        kind: RunKind::AuditLog,
        as_of,
        created_by: actor.name.clone(),
        created_at: Utc::now(),
        state: RunState::Draft,
        items,
        audit_upto: upto,
    };
    save(h, &run, Event::new(&actor.name, "dispose.plan_audit", &format!("{} up to entry {:?}", run.id, upto), "ok"))?;
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
    let cert = super::certificate::issue(h, &run, approval.preparer(), approval.approver(), &actor.name)?;
    run.state = RunState::Completed {
        preparer: approval.preparer().to_owned(),
        approver: approval.approver().to_owned(),
        at: Utc::now(),
        certificate_sha256: cert.pdf_sha256,
    };
    save(h, &run, Event::new(&actor.name, "dispose.complete", &format!("{} {removed} audit entries", run.id), "ok"))?;
    Ok(Executed { run, destroyed: removed, certificate: cert.path })
}
