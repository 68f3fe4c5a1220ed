//! Two-sheet forms in the store: the original (sheet 1) and its carbon copy (sheet 2) of one
//! application are stored as two pages; once both are in, their drafts are reconciled field by
//! field (agreeing readings confirm each other, disagreeing ones are flagged on both and both
//! carry the better reading), linked to each other, and re-indexed.
//!
//! Pairing does not depend on one run seeing both sheets: each stored sheet (or a sheet met
//! again as a duplicate) is tried against the sheets of its batch still waiting for a partner
//! (`Store::unpaired_*`), and waits there itself if none matches. So a crash between the two
//! sheets, or sheets scanned in different runs, still ends paired.

use super::Hozon;
use crate::audit::Event;
use crate::drafts;
use crate::error::Result;
use crate::store::{BlobRole, RecordId};

impl Hozon {
    /// Pairs a freshly stored (or re-met) sheet with its partner if one is waiting in the same
    /// batch; otherwise leaves it waiting. Returns the partner's id when paired.
    pub(crate) fn pair_sheet(&self, rec: &crate::store::Record) -> Result<Option<RecordId>> {
        let Some(d) = self.draft_of(rec)? else { return Ok(None) };
        let (Some(sheet @ (1 | 2)), None) = (d.sheet, &d.pair) else { return Ok(None) };
        let batch = rec.batch.as_deref();
        // One pairing at a time: two workers storing the two sheets at once must not both
        // find nothing and both wait.
        let _one = self.pairing.lock().unwrap_or_else(|p| p.into_inner());
        for (other, other_sheet) in self.store.unpaired_in(batch)? {
            if other_sheet == sheet || other == rec.id {
                continue;
            }
            let (first, second) = if sheet == 1 { (&rec.id, &other) } else { (&other, &rec.id) };
            if self.reconcile_sheets(first, second)? {
                self.store.unpaired_remove(batch, &other)?;
                self.store.unpaired_remove(batch, &rec.id)?;
                return Ok(Some(other));
            }
        }
        self.store.unpaired_put(batch, &rec.id, sheet)?;
        Ok(None)
    }

    /// Reconciles the drafts of `first` (sheet 1) and `second` (sheet 2) if they are the two
    /// sheets of one application; returns whether they were. Already-paired drafts are left.
    pub fn reconcile_sheets(&self, first: &RecordId, second: &RecordId) -> Result<bool> {
        let (Some(ra), Some(rb)) = (self.store.record(first)?, self.store.record(second)?) else {
            return Ok(false);
        };
        let (Some(mut a), Some(mut b)) = (self.draft_of(&ra)?, self.draft_of(&rb)?) else {
            return Ok(false);
        };
        if a.sheet != Some(1) || b.sheet != Some(2) || a.pair.is_some() || b.pair.is_some() {
            return Ok(false);
        }
        if !drafts::same_application(&a, &b) {
            return Ok(false);
        }
        for r in [&ra, &rb] {
            self.store.unpaired_remove(r.batch.as_deref(), &r.id)?;
        }
        drafts::reconcile(&mut a, &mut b);
        a.pair = Some(second.as_str().to_owned());
        b.pair = Some(first.as_str().to_owned());
        for (rec, d, other) in [(&ra, &a, second), (&rb, &b, first)] {
            let json = serde_json::to_vec(d).map_err(|e| crate::error::Error::Corrupt(e.to_string()))?;
            let text = crate::index::normalise(&d.index_text());
            let event = Event::new("system", "draft.reconcile", rec.id.as_str(), other.as_str());
            let updated =
                self.store.replace_blobs(rec, &[(BlobRole::Draft, &json), (BlobRole::Text, text.as_bytes())], event)?;
            self.index.put(&self.index_doc(&updated, &text, Some(d)))?;
        }
        Ok(true)
    }
}
