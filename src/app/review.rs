//! The review desk: the queue of drafts to verify (oldest first), one draft with its fields in
//! review order and each field's image, and the reviewer's submission, which becomes the
//! record (sealed draft and index text replaced, corrections kept, the page linked to its
//! case). Without the My Number right the number is masked in the value and in its image.

use super::Hozon;
use super::linking::CaseMatch;
use crate::audit::Event;
use crate::auth::{Actor, Function, Level};
use crate::drafts::Draft;
use crate::drafts::review::{self, Applied, ReviewError, ReviewStatus, Submission};
use crate::error::{Error, Result};
use crate::forms::template::FieldType;
use crate::store::{BlobRole, Record, RecordId, RecordKind, RecordState};

/// Which drafts the queue shows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueueFilter {
    pub batch: Option<String>,
    pub form: Option<String>,
    /// Only drafts marked for a second look.
    pub second_look: bool,
}

/// One draft waiting in the queue.
#[derive(Debug, Clone, PartialEq)]
pub struct QueueItem {
    pub id: RecordId,
    pub received_at: chrono::DateTime<chrono::Utc>,
    pub form: String,
    pub batch: Option<String>,
    pub second_look: bool,
}

/// What the reviewer's screen needs for one draft.
#[derive(Debug, Clone)]
pub struct ReviewView {
    pub id: RecordId,
    pub record: Record,
    /// My Numbers already masked when the reviewer may not see them.
    pub draft: Draft,
    /// Field indices in the order the reviewer meets them.
    pub order: Vec<usize>,
    pub masked: bool,
    pub case_match: CaseMatch,
}

/// How the reviewer settles the page's case on submit.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum CaseChoice {
    /// Link automatically if the match is exact or unambiguous; otherwise leave unlinked.
    #[default]
    Automatic,
    /// This recipient number (a candidate the reviewer confirmed).
    Case(String),
    /// A provisional case for a new applicant.
    Provisional,
}

/// Decoded scans by record id, with the skew to straighten them by.
pub(crate) type PageCache = quick_cache::sync::Cache<RecordId, std::sync::Arc<(image::GrayImage, f32)>>;
/// A few reviewers' current pages (a 300 dpi A4 page is ~9 MB decoded).
pub(crate) const CACHED_PAGES: usize = 8;

fn corrupt(e: impl std::fmt::Display) -> Error {
    Error::Corrupt(format!("review: {e}"))
}

impl Hozon {
    /// A stored, recognised page a reviewer may open (review=view). Unlike a page view, a My
    /// Number form is open to a reviewer without the My Number right: they get it masked.
    pub(crate) fn review_record(&self, actor: &Actor, id: &RecordId) -> Result<Record> {
        actor.require(Function::Review, Level::View)?;
        match self.store.record(id)? {
            Some(r)
                if r.state == RecordState::Stored
                    && r.kind == RecordKind::Page
                    && r.blobs.iter().any(|b| b.role == BlobRole::Draft) =>
            {
                self.check_page_access(actor, &r, true)?;
                Ok(r)
            }
            _ => Err(Error::NotFound(id.to_string())),
        }
    }

    /// Drafts not yet verified, oldest first (review=view): a walk of the review queue, which
    /// holds only the backlog. Returns the number matching and the first `limit` of them.
    pub fn review_queue(&self, actor: &Actor, filter: &QueueFilter, limit: usize) -> Result<(usize, Vec<QueueItem>)> {
        actor.require(Function::Review, Level::View)?;
        let mut items = Vec::new();
        let mut total = 0;
        let hidden = self.hidden_markers(actor)?;
        for entry in self.store.queue() {
            let (id, e) = entry?;
            // Pages waiting to be filed are the classification queue's (`app::sorting`).
            if e.form == crate::store::UNCLASSIFIED
                || filter.batch.as_ref().is_some_and(|b| e.batch.as_ref() != Some(b))
                || filter.form.as_ref().is_some_and(|f| &e.form != f)
                || (filter.second_look && !e.second_look)
            {
                continue;
            }
            // A page disposed of since (or being disposed of) is not work.
            if items.len() < limit && !self.store.record(&id)?.is_some_and(|r| r.state == RecordState::Stored) {
                continue;
            }
            // A suspended person's drafts are nobody's work but the security officer's.
            if !hidden.is_empty()
                && let Some(r) = self.store.record(&id)?
                && self.suspended_for(&r, &hidden)?
            {
                continue;
            }
            total += 1;
            if items.len() < limit {
                items.push(QueueItem {
                    id,
                    received_at: e.received_at,
                    form: e.form,
                    batch: e.batch,
                    second_look: e.second_look,
                });
            }
        }
        self.store.audit_unflushed(Event::new(actor.name(), "review.queue", &format!("{total} drafts"), "ok"))?;
        Ok((total, items))
    }

    /// Builds the review queue of a store made before it existed: every recognised page
    /// whose draft is not verified, and every page waiting to be filed. Runs once, on open.
    pub(crate) fn build_review_queue(&self) -> Result<()> {
        if self.store.queue_built()? {
            return Ok(());
        }
        for rec in self.store.records() {
            let rec = rec?;
            if rec.state != RecordState::Stored || rec.kind != RecordKind::Page {
                continue;
            }
            let Some(d) = self.draft_of(&rec)? else {
                if rec.class == crate::store::UNCLASSIFIED {
                    self.store.queue_mark(&rec, Some(false))?;
                }
                continue;
            };
            match d.review.map(|r| r.status) {
                Some(ReviewStatus::Verified) => {}
                Some(ReviewStatus::SecondLook) => self.store.queue_mark(&rec, Some(true))?,
                None => self.store.queue_mark(&rec, Some(false))?,
            }
        }
        self.store.set_queue_built()?;
        Ok(())
    }

    /// The next draft in the queue after `after` (or the first), with the same filter.
    pub fn review_next(
        &self,
        actor: &Actor,
        filter: &QueueFilter,
        after: Option<&RecordId>,
    ) -> Result<Option<RecordId>> {
        let (_, items) = self.review_queue(actor, filter, 2)?;
        Ok(items.into_iter().map(|i| i.id).find(|id| Some(id) != after))
    }

    /// One draft for review, audited as a view.
    pub fn review_view(&self, actor: &Actor, id: &RecordId) -> Result<ReviewView> {
        let record = self.review_record(actor, id)?;
        let mut draft = self.draft_of(&record)?.ok_or_else(|| Error::NotFound(id.to_string()))?;
        let case_match =
            if draft.case.is_some() { CaseMatch::default() } else { self.match_for(actor, self.match_draft(&draft)?)? };
        let masked = !actor.rights().my_number;
        if masked {
            draft.mask_my_numbers();
            for c in draft.review.iter_mut().flat_map(|r| r.corrections.iter_mut()) {
                if draft.fields.iter().any(|f| f.name == c.field && f.kind == FieldType::MyNumber) {
                    c.old = crate::drafts::mask(&c.old);
                    c.new = crate::drafts::mask(&c.new);
                }
            }
        }
        let order = review::review_order(&draft);
        self.store.audit(Event::new(actor.name(), "draft.view", id.as_str(), "review"))?;
        Ok(ReviewView { id: id.clone(), record, draft, order, masked, case_match })
    }

    /// A field's image as PNG: cut from the scan and straightened; a My Number's first eight
    /// digits covered for a reviewer without the right.
    pub fn field_image(&self, actor: &Actor, id: &RecordId, field: &str) -> Result<Vec<u8>> {
        let rec = self.review_record(actor, id)?;
        let draft = self.draft_of(&rec)?.ok_or_else(|| Error::NotFound(id.to_string()))?;
        let f = draft.field(field).ok_or_else(|| Error::NotFound(format!("{id}/{field}")))?;
        // Concurrent requests for one page wait for the first one's decode.
        let page = self.review_pages.get_or_insert_with(id, || -> Result<_> {
            let original = self.store.read_blob(&rec, BlobRole::Original)?;
            let page = crate::capture::decode_page(&original).map_err(|e| corrupt(format!("stored page {id}: {e}")))?;
            // The fields' rectangles are in the frame the page was read in.
            let gray = crate::forms::upright::apply(&page.gray, draft.frame).into_owned();
            let skew = match draft.skew_deg {
                Some(s) => s,
                None => crate::forms::register::deskew(&gray).1,
            };
            Ok(std::sync::Arc::new((gray, skew)))
        })?;
        let mut img = crate::forms::crop::field_image(&page.0, page.1, f.rect);
        if f.kind == FieldType::MyNumber && !actor.rights().my_number {
            crate::forms::crop::cover_cells(&mut img, 8, 12);
        }
        let mut out = Vec::new();
        img.write_to(&mut std::io::Cursor::new(&mut out), image::ImageFormat::Png).map_err(corrupt)?;
        self.store.audit_unflushed(Event::new(actor.name(), "draft.field_image", id.as_str(), field))?;
        Ok(out)
    }

    /// Applies a reviewer's submission (review=update): checked in full first, then the draft
    /// and index text are replaced under the record's key with one audit entry
    /// (`draft.review`: counts only), the index is updated, and a verified page is linked to
    /// its case as `choice` says.
    pub fn submit_review(
        &self,
        actor: &Actor,
        id: &RecordId,
        sub: &Submission,
        choice: &CaseChoice,
    ) -> Result<Applied> {
        actor.require(Function::Review, Level::Update)?;
        let rec = self.review_record(actor, id)?;
        let mut draft = self.draft_of(&rec)?.ok_or_else(|| Error::NotFound(id.to_string()))?;
        let template = self.forms.iter().find(|t| t.id() == draft.template);
        let now = chrono::Utc::now();
        let applied = review::apply(&mut draft, sub, actor.name(), now, !actor.rights().my_number, template)?;
        if let CaseChoice::Case(no) = choice
            && self.load_case(&self.case_key(no))?.is_none()
        {
            return Err(ReviewError::Refused(format!("受給者番号 {no} は台帳にありません")).into());
        }
        let json = serde_json::to_vec(&draft).map_err(corrupt)?;
        let text = crate::index::normalise(&draft.index_text());
        let status = match applied.status {
            ReviewStatus::Verified => "verified",
            ReviewStatus::SecondLook => "second_look",
        };
        let mut changed = rec.clone();
        if applied.status == ReviewStatus::Verified {
            // Verification makes the record: its last change is now (the retention clock of
            // "no change for 5 years" starts here).
            changed.last_changed_at = Some(now);
            changed.retention = Some(self.retention_for(&changed)?);
        }
        let outcome = format!("{status} corrections {}", applied.corrections);
        let updated = self.store.replace_blobs(
            &changed,
            &[(BlobRole::Draft, &json), (BlobRole::Text, text.as_bytes())],
            Event::new(actor.name(), "draft.review", id.as_str(), &outcome),
        )?;
        self.store.queue_mark(&updated, (applied.status == ReviewStatus::SecondLook).then_some(true))?;
        self.index.put(&self.index_doc(&updated, &text, Some(&draft)))?;
        if applied.status == ReviewStatus::Verified && draft.case.is_none() {
            self.settle_case(actor, &updated, draft, choice)?;
        }
        Ok(applied)
    }

    fn settle_case(&self, actor: &Actor, rec: &Record, draft: Draft, choice: &CaseChoice) -> Result<()> {
        use crate::cases::{CaseLink, LinkMethod};
        let now = chrono::Utc::now();
        let link = |recipient_no: String, how: LinkMethod| CaseLink {
            recipient_no,
            how,
            by: actor.name().to_owned(),
            at: now,
        };
        match choice {
            CaseChoice::Case(no) => {
                self.write_link(rec, draft, link(no.clone(), LinkMethod::Reviewer))?;
            }
            CaseChoice::Provisional => {
                self.provisional_case(actor, &rec.id)?;
            }
            CaseChoice::Automatic => {
                if let Some((no, how)) = self.match_draft(&draft)?.automatic() {
                    self.write_link(rec, draft, link(no, how))?;
                }
            }
        }
        Ok(())
    }
}
