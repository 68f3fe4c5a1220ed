//! Batches (進達) and the receipt ledger, with rights and audit: logging a batch needs
//! capture=update, reading the ledger capture=view; every change is audited.

use super::Hozon;
use crate::audit::Event;
use crate::auth::{Actor, Function, Level};
use crate::capture::batch::{self, Batch, Closed, CsvEncoding, Filter, NewBatch, Status};
use crate::error::{Error, Result};
use crate::store::BatchCounts;

const BATCH: &str = "batch";

fn corrupt(e: serde_json::Error) -> Error {
    Error::Corrupt(format!("batch: {e}"))
}

impl Hozon {
    /// Logs an incoming batch; returns it with its new id.
    pub fn create_batch(&self, actor: &Actor, new: &NewBatch) -> Result<Batch> {
        actor.require(Function::Capture, Level::Update)?;
        let today = crate::jp::today();
        let (municipality, received_on, channel, expected_pages) = new.validate(today)?;
        let existing = self.store.docs(BATCH)?;
        let id = batch::next_id(received_on, existing.iter().map(|(id, _)| id.as_str()));
        let b = Batch {
            id: id.clone(),
            municipality,
            received_on,
            channel,
            expected_pages,
            logged_by: actor.name().to_owned(),
            logged_at: chrono::Utc::now(),
            note: new.note.trim().to_owned(),
            closed: None,
        };
        let json = serde_json::to_vec(&b).map_err(corrupt)?;
        self.store.put_doc(BATCH, &id, &json, Event::new(actor.name(), "batch.create", &id, "ok"))?;
        Ok(b)
    }

    /// One batch, if it exists (no rights check: ingest uses it to validate a batch id).
    pub(crate) fn batch_by_id(&self, id: &str) -> Result<Option<Batch>> {
        self.store.get_doc(BATCH, id)?.map(|v| serde_json::from_slice(&v).map_err(corrupt)).transpose()
    }

    /// One batch with its page counts.
    pub fn batch(&self, actor: &Actor, id: &str) -> Result<(Batch, BatchCounts)> {
        actor.require(Function::Capture, Level::View)?;
        let b = self.batch_by_id(id)?.ok_or_else(|| Error::NotFound(id.to_owned()))?;
        let c = self.store.batch_counts(id)?;
        Ok((b, c))
    }

    /// The receipt ledger, newest first, filtered.
    pub fn batches(&self, actor: &Actor, filter: &Filter) -> Result<Vec<(Batch, BatchCounts)>> {
        actor.require(Function::Capture, Level::View)?;
        let mut out = Vec::new();
        for (_, v) in self.store.docs(BATCH)? {
            let b: Batch = serde_json::from_slice(&v).map_err(corrupt)?;
            let c = self.store.batch_counts(&b.id)?;
            if filter.matches(&b, Status::of(&b, &c)) {
                out.push((b, c));
            }
        }
        out.sort_by(|a, b| b.0.id.cmp(&a.0.id));
        Ok(out)
    }

    /// Closes a batch. When the received pages differ from the expected count a note saying
    /// why is required: a mismatch is never closed silently.
    pub fn close_batch(&self, actor: &Actor, id: &str, note: &str) -> Result<Batch> {
        let (mut b, c) = self.batch(actor, id)?;
        actor.require(Function::Capture, Level::Update)?;
        if b.closed.is_some() {
            return Err(batch::Invalid { field: "状態", message: format!("{id} は完了済みです") }.into());
        }
        if c.received() != b.expected_pages as usize && note.trim().is_empty() {
            return Err(batch::Invalid {
                field: "備考",
                message: format!(
                    "予定枚数 {} に対し受領 {} 枚です。差異の理由を入力してください",
                    b.expected_pages,
                    c.received()
                ),
            }
            .into());
        }
        b.closed = Some(Closed { by: actor.name().to_owned(), at: chrono::Utc::now(), note: note.trim().to_owned() });
        let outcome = if c.received() == b.expected_pages as usize { "ok" } else { "mismatch" };
        let json = serde_json::to_vec(&b).map_err(corrupt)?;
        self.store.put_doc(BATCH, id, &json, Event::new(actor.name(), "batch.close", id, outcome))?;
        Ok(b)
    }

    /// The ledger as CSV for Excel. Like every export, it needs a recent second factor.
    pub fn ledger_csv(&self, actor: &Actor, filter: &Filter, enc: CsvEncoding) -> Result<Vec<u8>> {
        actor.require_second_factor()?;
        let rows = self.batches(actor, filter)?;
        let bytes = batch::ledger_csv(&rows, enc)?;
        self.store.audit(Event::new(actor.name(), "batch.export", "csv", "ok"))?;
        Ok(bytes)
    }
}
