//! Two-sheet forms in the store: the original (sheet 1) and its carbon copy (sheet 2) of one
//! application are stored as two pages; once both are in, their drafts are reconciled field by
//! field (agreeing readings confirm each other, disagreeing ones are flagged on both and both
//! carry the better reading), linked to each other, and re-indexed.

use super::Hozon;
use crate::audit::Event;
use crate::drafts;
use crate::error::Result;
use crate::store::{BlobRole, RecordId};

impl Hozon {
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
