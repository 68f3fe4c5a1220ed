//! The classification queue (未分類の仕分け): pages no template fitted wait here, oldest
//! first, until a reviewer files each one, either as a form (the page is then read as that
//! form's template and its draft joins the review queue) or as a document type from
//! `document-types.toml` (an attachment, which takes its type's record class and retention).
//! Nothing stored falls through: the ingest summary and the batch page count what waits.
//!
//! The queue shares the review queue's tree (entries whose form is `UNCLASSIFIED`), so
//! disposal and restore keep both the same way.

use super::Hozon;
use crate::audit::Event;
use crate::auth::{Actor, Function, Level};
use crate::error::{Error, Result};
use crate::store::{BlobRole, PageOutcome, Record, RecordId, RecordKind, RecordState, UNCLASSIFIED};

/// One page waiting to be filed.
#[derive(Debug, Clone, PartialEq)]
pub struct SortItem {
    pub id: RecordId,
    pub received_at: chrono::DateTime<chrono::Utc>,
    pub batch: Option<String>,
    /// The document type its text suggests (key), if any.
    pub suggestion: Option<String>,
    /// Its text carries a My Number (shown masked; the page opens only with the right).
    pub my_number: bool,
}

/// What a reviewer files a page as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Filing {
    /// A form template, by id (`application#1`, `my_number_form`).
    Form(String),
    /// A document type, by key (`resident_record`).
    DocType(String),
}

impl Filing {
    /// `form:ID` or `type:KEY` (the web form's and the CLI's value).
    pub fn parse(s: &str) -> Option<Filing> {
        match s.split_once(':') {
            Some(("form", id)) if !id.is_empty() => Some(Filing::Form(id.to_owned())),
            Some(("type", key)) if !key.is_empty() => Some(Filing::DocType(key.to_owned())),
            _ => None,
        }
    }
}

impl Hozon {
    /// Pages waiting to be filed, oldest first (review=view): how many, and the first `limit`
    /// with the document type their text suggests. Suspended persons' pages are left out.
    pub fn sorting_queue(&self, actor: &Actor, limit: usize) -> Result<(usize, Vec<SortItem>)> {
        actor.require(Function::Review, Level::View)?;
        let hidden = self.hidden_markers(actor)?;
        let (mut total, mut items) = (0, Vec::new());
        for entry in self.store.queue() {
            let (id, e) = entry?;
            if e.form != UNCLASSIFIED {
                continue;
            }
            let Some(rec) = self.store.record(&id)?.filter(|r| r.state == RecordState::Stored) else { continue };
            if rec.class != UNCLASSIFIED {
                // Filed, then interrupted before the queue followed: finish it now.
                self.settle_filing(&rec)?;
                continue;
            }
            // A page that cannot be checked is not shown (and says why in the log), the rest are.
            match self.suspended_for(&rec, &hidden) {
                Ok(false) => {}
                Ok(true) => continue,
                Err(e) => {
                    eprintln!("hozon: page {}: not listed: {}", rec.id, crate::error::chain(&e));
                    continue;
                }
            }
            total += 1;
            if items.len() < limit {
                // One unreadable page costs its suggestion, never the list.
                let text = self.stored_text(&rec).unwrap_or_else(|e| {
                    eprintln!("hozon: page {}: text not read: {}", rec.id, crate::error::chain(&e));
                    String::new()
                });
                let (_, numbers) = crate::index::scrub_my_numbers(&crate::index::normalise(&text));
                let suggestion = crate::forms::doctypes::suggest(&self.doc_types, &text);
                items.push(SortItem {
                    id,
                    received_at: e.received_at,
                    batch: e.batch,
                    suggestion: suggestion.map(|t| t.key.clone()),
                    my_number: !numbers.is_empty() || suggestion.is_some_and(|t| t.my_number),
                });
            }
        }
        self.store.audit_unflushed(Event::new(actor.name(), "sorting.queue", &format!("{total} pages"), "ok"))?;
        Ok((total, items))
    }

    /// A page's stored text (decrypted; empty if it has none), unaudited: for the callers
    /// that check access and audit themselves.
    pub(crate) fn stored_text(&self, rec: &Record) -> Result<String> {
        Ok(match rec.blob(BlobRole::Text) {
            Some(_) => String::from_utf8_lossy(&self.store.read_blob(rec, BlobRole::Text)?).into_owned(),
            None => String::new(),
        })
    }

    /// Files a page no template fitted (review=update; the page must be one the reviewer may
    /// open unmasked), audited as `page.file` with the old and new class. As a form: the page
    /// is read as that template (refused, naming it, when the template's table is not on the
    /// page) and its draft goes to the review queue. As a document type: it takes the type's
    /// class. Filing is the record's change (異動): its retention counts from now under the new
    /// class, so it never comes due earlier for being filed. An attachment may be filed again
    /// (a wrong pick); a page with a draft may not. One filing at a time: the record is read
    /// again under the lock, so two reviewers cannot both file it.
    pub fn file_page(&self, actor: &Actor, id: &RecordId, filing: &Filing) -> Result<Record> {
        actor.require(Function::Review, Level::Update)?;
        let _one = self.filing.lock().unwrap_or_else(|p| p.into_inner());
        let rec = match self.store.record(id)? {
            Some(r) if r.state == RecordState::Stored && r.kind == RecordKind::Page => r,
            _ => return Err(Error::NotFound(id.to_string())),
        };
        self.check_page_access(actor, &rec, false)?;
        if rec.blob(BlobRole::Draft).is_some() || (rec.class != UNCLASSIFIED && rec.doc_type.is_none()) {
            return Err(Error::Invalid("このページは様式として読み取り済みです（仕分けできません）".into()));
        }
        let mut changed = rec.clone();
        changed.last_changed_at = Some(chrono::Utc::now());
        let (blobs, what) = match filing {
            Filing::Form(template_id) => {
                let (draft, class) = self.read_as_form(&rec, template_id)?;
                changed.class = class;
                changed.doc_type = None;
                let json = serde_json::to_vec(&draft).map_err(|e| Error::Corrupt(e.to_string()))?;
                let text = crate::index::normalise(&draft.index_text());
                (Some((json, text)), format!("form {template_id}"))
            }
            Filing::DocType(key) => {
                let t = self
                    .doc_types
                    .iter()
                    .find(|t| &t.key == key)
                    .ok_or_else(|| Error::Invalid(format!("書類の種類 {key} はありません")))?;
                changed.class = t.class.clone();
                changed.doc_type = Some(t.key.clone());
                (None, format!("type {key}"))
            }
        };
        changed.retention = Some(self.retention_for(&changed)?);
        let due = changed.retention.as_ref().and_then(|r| r.due_on).map_or_else(|| "-".to_owned(), |d| d.to_string());
        let outcome = format!("{} → {} ({what}), due {due}", rec.class, changed.class);
        let event = Event::new(actor.name(), "page.file", rec.id.as_str(), &outcome);
        let updated = match &blobs {
            Some((json, text)) => self.store.replace_blobs(
                &changed,
                &[(BlobRole::Draft, json), (BlobRole::Text, text.as_bytes())],
                event,
            )?,
            None => {
                self.store.update_records(std::slice::from_ref(&changed), event)?;
                changed
            }
        };
        self.settle_filing(&updated)?;
        Ok(updated)
    }

    /// Reads a stored page as the template `template_id`: its draft and record class.
    fn read_as_form(&self, rec: &Record, template_id: &str) -> Result<(crate::drafts::Draft, String)> {
        let template = self
            .forms
            .iter()
            .find(|t| t.id() == template_id)
            .ok_or_else(|| Error::Invalid(format!("様式 {template_id} はありません")))?;
        let original = self.store.read_blob(rec, BlobRole::Original)?;
        let page = crate::capture::decode_page(&original)
            .map_err(|e| Error::Corrupt(format!("stored page {}: {e}", rec.id)))?;
        let mut ocr = crate::ocr::ppocr::PpOcr::load(&self.ppocr_model)?;
        let reading = crate::forms::read_as(&page.gray, page.dpi, template, &mut ocr)
            .map_err(|e| Error::Invalid(format!("このページに「{}」の表が見つかりません（{e}）", template.title)))?;
        Ok((crate::drafts::from_reading(&reading, template), template.class().to_owned()))
    }

    /// What follows a filed record, each step idempotent (redone from the classification
    /// queue if a crash came between): its queue entry (a draft to review, or none), its index
    /// document, its batch's count, its other sheet.
    fn settle_filing(&self, rec: &Record) -> Result<()> {
        let draft = self.draft_of(rec)?;
        self.store.queue_mark(rec, draft.is_some().then_some(false))?;
        let text = self.stored_text(rec)?;
        self.index.put(&self.index_doc(rec, &text, draft.as_ref()))?;
        if let Some(batch) = &rec.batch {
            let outcome = if draft.is_some() { PageOutcome::Form } else { PageOutcome::Attachment };
            self.store.mark_batch_page(batch, &rec.id, outcome)?;
        }
        if draft.is_some()
            && let Err(e) = self.pair_sheet(rec)
        {
            eprintln!("hozon: {}: sheets not paired: {}", rec.id, crate::error::chain(&e));
        }
        Ok(())
    }

    /// Whether the page's document type carries a My Number whatever its text shows.
    pub(crate) fn type_shows_my_number(&self, rec: &Record) -> bool {
        rec.doc_type.as_deref().is_some_and(|k| self.doc_types.iter().any(|t| t.key == k && t.my_number))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filings_parse_from_their_form_values() {
        assert_eq!(Filing::parse("form:application#1"), Some(Filing::Form("application#1".into())));
        assert_eq!(Filing::parse("type:resident_record"), Some(Filing::DocType("resident_record".into())));
        for bad in ["", "form:", "resident_record", "kind:x"] {
            assert_eq!(Filing::parse(bad), None, "{bad}");
        }
    }
}
