//! Paper in storage: document boxes (文書箱) with codes, their hand-over to the storage
//! contractor, retrieval requests (入出庫), and paper disposal runs, which end when the
//! contractor's destruction certificate comes back: the officer records it (its scan is kept
//! sealed, the boxes it covers ticked), hozon issues its own certificate for the run and flags
//! boxes that were due but are missing from the contractor's certificate.

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use serde::{Deserialize, Serialize};

use super::run::{self, ItemStatus, Run, RunKind, RunState};
use crate::app::Hozon;
use crate::audit::Event;
use crate::auth::{Actor, Function, Level};
use crate::error::{Error, Result};
use crate::store::{BlobRole, Record, RecordId, RecordKind, RecordState};

const BOXES: &str = "box";
pub const CLASS: &str = "paper_box";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BoxStatus {
    InOffice,
    AtContractor,
    /// Taken out of storage on a retrieval request.
    Out,
    Destroyed,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Handover {
    pub on: NaiveDate,
    /// The contractor's confirmation number (its list of box codes and date).
    pub confirmation: String,
    pub by: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Retrieval {
    pub requested_on: NaiveDate,
    pub by: String,
    pub reason: String,
    pub out_on: Option<NaiveDate>,
    pub returned_on: Option<NaiveDate>,
}

/// A document box. Contents are described by batch and application numbers, never names.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DocBox {
    pub code: String,
    pub contents: String,
    pub sealed_on: NaiveDate,
    pub location: String,
    pub status: BoxStatus,
    pub handovers: Vec<Handover>,
    pub retrievals: Vec<Retrieval>,
    pub destroyed_by_run: Option<String>,
}

fn valid_code(code: &str) -> bool {
    (3..=32).contains(&code.len()) && code.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

/// A box, for someone allowed to see boxes.
pub fn get(h: &Hozon, actor: &Actor, code: &str) -> Result<DocBox> {
    actor.require(Function::Boxes, Level::View)?;
    load(h, code)
}

pub(crate) fn load(h: &Hozon, code: &str) -> Result<DocBox> {
    let v = h.store.get_doc(BOXES, code)?.ok_or_else(|| Error::NotFound(format!("box {code}")))?;
    serde_json::from_slice(&v).map_err(|e| Error::Corrupt(format!("box {code}: {e}")))
}

fn save(h: &Hozon, b: &DocBox, event: Event) -> Result<()> {
    h.store.put_doc(BOXES, &b.code, &serde_json::to_vec(b).expect("box serialises"), event)?;
    Ok(())
}

pub fn list(h: &Hozon, actor: &Actor) -> Result<Vec<DocBox>> {
    actor.require(Function::Boxes, Level::View)?;
    h.store
        .docs(BOXES)?
        .into_iter()
        .map(|(c, v)| serde_json::from_slice(&v).map_err(|e| Error::Corrupt(format!("box {c}: {e}"))))
        .collect()
}

pub fn register(
    h: &Hozon,
    actor: &Actor,
    code: &str,
    contents: &str,
    sealed_on: NaiveDate,
    location: &str,
) -> Result<DocBox> {
    actor.require(Function::Boxes, Level::Update)?;
    if !valid_code(code) {
        return Err(Error::Corrupt(format!("box code {code:?}: use 3-32 letters, digits or '-'")));
    }
    if h.store.get_doc(BOXES, code)?.is_some() {
        return Err(Error::Corrupt(format!("box {code} is already registered")));
    }
    let b = DocBox {
        code: code.into(),
        contents: contents.into(),
        sealed_on,
        location: location.into(),
        status: BoxStatus::InOffice,
        handovers: Vec::new(),
        retrievals: Vec::new(),
        destroyed_by_run: None,
    };
    save(h, &b, Event::new(actor.name(), "box.register", code, "ok"))?;
    Ok(b)
}

fn change(
    h: &Hozon,
    actor: &Actor,
    code: &str,
    action: &str,
    f: impl FnOnce(&mut DocBox) -> Result<()>,
) -> Result<DocBox> {
    actor.require(Function::Boxes, Level::Update)?;
    let mut b = load(h, code)?;
    if b.status == BoxStatus::Destroyed {
        return Err(Error::Corrupt(format!("box {code} was destroyed")));
    }
    f(&mut b)?;
    save(h, &b, Event::new(actor.name(), action, code, "ok"))?;
    Ok(b)
}

/// Hands boxes to the storage contractor under one confirmation (box codes and date).
pub fn hand_over(h: &Hozon, actor: &Actor, codes: &[String], on: NaiveDate, confirmation: &str) -> Result<()> {
    for code in codes {
        change(h, actor, code, "box.handover", |b| {
            b.status = BoxStatus::AtContractor;
            b.location = "保管業者".into();
            b.handovers.push(Handover { on, confirmation: confirmation.into(), by: actor.name().to_owned() });
            Ok(())
        })?;
    }
    Ok(())
}

pub fn request_retrieval(h: &Hozon, actor: &Actor, code: &str, reason: &str, on: NaiveDate) -> Result<DocBox> {
    change(h, actor, code, "box.retrieval_request", |b| {
        b.retrievals.push(Retrieval {
            requested_on: on,
            by: actor.name().to_owned(),
            reason: reason.into(),
            out_on: None,
            returned_on: None,
        });
        Ok(())
    })
}

pub fn mark_out(h: &Hozon, actor: &Actor, code: &str, on: NaiveDate) -> Result<DocBox> {
    change(h, actor, code, "box.out", |b| {
        let r = b
            .retrievals
            .iter_mut()
            .rev()
            .find(|r| r.out_on.is_none())
            .ok_or_else(|| Error::Corrupt(format!("box {}: no open retrieval request", b.code)))?;
        r.out_on = Some(on);
        b.status = BoxStatus::Out;
        Ok(())
    })
}

pub fn mark_returned(h: &Hozon, actor: &Actor, code: &str, on: NaiveDate) -> Result<DocBox> {
    change(h, actor, code, "box.return", |b| {
        let r = b
            .retrievals
            .iter_mut()
            .rev()
            .find(|r| r.out_on.is_some() && r.returned_on.is_none())
            .ok_or_else(|| Error::Corrupt(format!("box {}: not out", b.code)))?;
        r.returned_on = Some(on);
        b.status = if b.handovers.is_empty() { BoxStatus::InOffice } else { BoxStatus::AtContractor };
        Ok(())
    })
}

/// Lists the boxes due on `as_of` in a new paper run (held boxes listed as held).
pub fn plan(h: &Hozon, actor: &Actor, as_of: NaiveDate) -> Result<Run> {
    actor.require(Function::Retention, Level::Update)?;
    crate::retention::run::refuse_future(as_of)?;
    let applied = h.applied_policies();
    let policy = applied.get(CLASS)?;
    let holds = run::active_holds(h)?;
    let mut items = Vec::new();
    for b in list(h, &Actor::system())? {
        if b.status == BoxStatus::Destroyed {
            continue;
        }
        let dates =
            crate::retention::policy::RecordDates { received: b.sealed_on, last_change: b.sealed_on, decided: None };
        items.extend(run::due_item(&b.code, CLASS, policy, &dates, as_of, &holds));
    }
    run::new_run("P", RunKind::Paper, as_of, actor, items, h)
}

/// What recording the contractor's certificate led to.
#[derive(Debug)]
pub struct PaperResult {
    pub destroyed: Vec<String>,
    /// Due and approved, but not on the contractor's certificate.
    pub missing: Vec<String>,
    pub certificate: std::path::PathBuf,
}

/// Records the contractor's destruction certificate for an approved paper run: keeps its scan
/// sealed, ticks the boxes it covers, flags the due boxes it does not mention, and issues
/// hozon's certificate for the run.
pub fn record_contractor_certificate(
    h: &Hozon,
    actor: &Actor,
    run_id: &str,
    scan: &[u8],
    certified: &[String],
    processed_on: NaiveDate,
) -> Result<PaperResult> {
    actor.require(Function::Retention, Level::Update)?;
    let mut r = run::load(h, run_id)?;
    let (preparer, approver) = match (&r.kind, &r.state) {
        (RunKind::Paper, RunState::Approved { preparer, approver, .. }) => (preparer.clone(), approver.clone()),
        _ => return Err(Error::Corrupt(format!("run {run_id} is not an approved paper run"))),
    };
    run::verify_approval(h, actor, &r, &preparer, &approver)?;
    if scan.is_empty() {
        return Err(Error::Corrupt("the contractor's certificate scan is empty".into()));
    }
    // Keep the scan sealed as an attachment record.
    let fp = h.store.scan_fingerprint(scan);
    let id = RecordId::from_fingerprint(&fp);
    let key = h.store.new_data_key();
    let blob = h.store.put_blob(&id, &key, BlobRole::Original, scan)?;
    let now = Utc::now();
    let mut rec = Record {
        wrapped_key: Vec::new(),
        key_epoch: None,
        past_epochs: Vec::new(),
        doc_type: None,
        received_on: None,
        id: id.clone(),
        state: RecordState::Pending,
        kind: RecordKind::Attachment { what: format!("contractor certificate for {run_id}") },
        received_at: now,
        blobs: vec![blob],
        class: "proof".into(),
        last_changed_at: None,
        decided_on: None,
        retention: None,
        batch: None,
    };
    rec.retention = Some(h.retention_for(&rec)?);
    h.store.seal_record_key(&mut rec, &key)?;
    h.store.put_pending(&rec)?;
    rec.state = RecordState::Stored;
    h.store.commit_stored(
        &rec,
        &fp,
        Event::new(actor.name(), "dispose.contractor_certificate", &format!("{run_id} record {id}"), "ok"),
    )?;

    let mut destroyed = Vec::new();
    let mut missing = Vec::new();
    let processed_at: DateTime<Utc> = Utc.from_utc_datetime(&processed_on.and_hms_opt(0, 0, 0).expect("midnight"));
    for item in r.items.iter_mut().filter(|i| i.status == ItemStatus::Due) {
        if certified.contains(&item.id) {
            item.status = ItemStatus::Destroyed;
            let mut b = load(h, &item.id)?;
            b.status = BoxStatus::Destroyed;
            b.destroyed_by_run = Some(run_id.to_owned());
            save(
                h,
                &b,
                Event::new(
                    actor.name(),
                    "box.destroyed",
                    &format!("{} {run_id} {}", b.code, processed_at.date_naive()),
                    "ok",
                ),
            )?;
            destroyed.push(item.id.clone());
        } else {
            item.status = ItemStatus::Missing;
            missing.push(item.id.clone());
        }
    }
    let cert = super::certificate::issue(h, &r, &preparer, &approver, actor.name())?;
    r.state = RunState::Completed { preparer, approver, at: now, certificate_sha256: cert.pdf_sha256 };
    run::save_run(
        h,
        &r,
        Event::new(
            actor.name(),
            "dispose.complete",
            &format!("{run_id} {} boxes, {} missing", destroyed.len(), missing.len()),
            "ok",
        ),
    )?;
    Ok(PaperResult { destroyed, missing, certificate: cert.path })
}
