//! Record metadata as kept in sled. Nothing here is personal data: ids, states, dates, blob
//! addresses and the wrapped (encrypted) data key. Personal content lives only in sealed blobs.

use serde::{Deserialize, Serialize};

use super::Error;

/// Record id: 32 hex characters derived from the keyed hash of the scanned file.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RecordId(String);

impl RecordId {
    pub fn from_fingerprint(fp: &[u8; 32]) -> RecordId {
        RecordId(hex::encode(&fp[..16]))
    }

    /// Parses user input (CLI argument, URL segment).
    pub fn parse(s: &str) -> Option<RecordId> {
        (s.len() == 32 && s.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()))
            .then(|| RecordId(s.to_owned()))
    }

    pub(crate) fn from_stored(v: &[u8]) -> RecordId {
        RecordId(String::from_utf8_lossy(v).into_owned())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for RecordId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum RecordState {
    /// Blobs are durable, the index entry may or may not exist; invisible to users.
    Pending,
    /// Fully stored: blobs, index entry, dedupe entry, audit entry.
    Stored,
    /// An approved disposal destroyed the data key (the record is unreadable from here on);
    /// removal of its blobs, index entry and metadata is under way.
    Shredding { run: String },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum RecordKind {
    /// A scanned page that decoded and was read.
    Page,
    /// A file that could not be accepted; kept sealed so staff can inspect it, never indexed.
    Quarantined { reason: String },
    /// A file kept as evidence (a contractor's destruction certificate scan); never indexed.
    Attachment { what: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum BlobRole {
    /// The file exactly as received.
    Original,
    /// Full-page OCR text (UTF-8).
    Text,
    /// JSON with the original file name and page facts.
    Info,
    /// The form draft (JSON, `drafts::Draft`) of a recognised page.
    Draft,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlobRef {
    pub role: BlobRole,
    pub addr: String,
    pub len: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    pub id: RecordId,
    pub state: RecordState,
    pub kind: RecordKind,
    pub received_at: chrono::DateTime<chrono::Utc>,
    #[serde(with = "hex_bytes")]
    pub wrapped_key: Vec<u8>,
    pub blobs: Vec<BlobRef>,
    /// Record class, which picks the retention policy ([`UNCLASSIFIED`] until a form is
    /// recognised or a reviewer files the page).
    #[serde(default = "default_class")]
    pub class: String,
    /// The document type a reviewer filed an unrecognised page as (`forms::doctypes`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub doc_type: Option<String>,
    /// Last change (異動) of the record; `None` means never changed since receipt.
    #[serde(default)]
    pub last_changed_at: Option<chrono::DateTime<chrono::Utc>>,
    /// Decision date of the case the record belongs to, once there is one.
    #[serde(default)]
    pub decided_on: Option<chrono::NaiveDate>,
    /// The disposal date and the policy version that set it.
    #[serde(default)]
    pub retention: Option<Retention>,
    /// The incoming batch (進達) the page came in, if it was logged.
    #[serde(default)]
    pub batch: Option<String>,
    /// The civil receipt date (受付日, a Japan date): the batch's when it was logged, else the
    /// Japan date of `received_at`.
    #[serde(default)]
    pub received_on: Option<chrono::NaiveDate>,
    /// The key-store epoch whose key wraps `wrapped_key` (`None`: wrapped by the master key, as
    /// stores made before the key store did). Set by the store only.
    #[serde(default)]
    pub(crate) key_epoch: Option<super::keystore::KeyEpoch>,
    /// Epochs this record's key was wrapped under before (its due date moved): destroying the
    /// record retires them too, so no earlier wrapping survives.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) past_epochs: Vec<String>,
}

/// How a page of a batch ended, as counted for the batch's progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum PageOutcome {
    /// Recognised as a form: a draft was made.
    Form = 1,
    /// Stored with full-page text, no form recognised.
    Unclassified = 2,
    /// Quarantined (not an image, corrupt, too large).
    Failed = 3,
    /// Not recognised, then filed by a reviewer as a document type (an attachment).
    Attachment = 4,
}

/// A batch's pages by outcome.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct BatchCounts {
    pub forms: usize,
    pub unclassified: usize,
    pub failed: usize,
    /// Filed as a document type from the classification queue.
    #[serde(default)]
    pub attachments: usize,
}

impl BatchCounts {
    /// Every page received, whatever became of it.
    pub fn received(&self) -> usize {
        self.forms + self.unclassified + self.failed + self.attachments
    }
    /// Pages read (a draft or full-page text).
    pub fn read(&self) -> usize {
        self.forms + self.unclassified + self.attachments
    }
}

/// The class of a page no template fits, until a reviewer files it.
pub const UNCLASSIFIED: &str = "scan";

fn default_class() -> String {
    UNCLASSIFIED.into()
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Retention {
    pub policy_version: u32,
    /// `None` while the policy's trigger has not happened (no decision yet).
    pub due_on: Option<chrono::NaiveDate>,
}

/// What remains of a destroyed record: ids, class, dates, policy and run; no personal data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tombstone {
    pub record_id: String,
    pub class: String,
    pub received_on: chrono::NaiveDate,
    pub last_change_on: chrono::NaiveDate,
    pub due_on: Option<chrono::NaiveDate>,
    pub policy_version: u32,
    pub run_id: String,
    pub destroyed_at: chrono::DateTime<chrono::Utc>,
}

impl Record {
    /// The dates retention counts from, as Japan dates (a page received at 08:30 JST on
    /// 1 April belongs to the new fiscal year).
    pub fn dates(&self) -> crate::retention::policy::RecordDates {
        crate::retention::policy::RecordDates {
            received: self.received_on.unwrap_or_else(|| crate::jp::date_of(self.received_at)),
            last_change: self.last_changed_at.map_or_else(
                || self.received_on.unwrap_or_else(|| crate::jp::date_of(self.received_at)),
                crate::jp::date_of,
            ),
            decided: self.decided_on,
        }
    }

    /// The key epoch this record belongs in: its class × the fiscal year its retention ends.
    pub fn epoch_label(&self) -> String {
        match self.retention.as_ref().and_then(|r| r.due_on) {
            Some(due) => format!("{}/FY{}", self.class, crate::jp::fiscal_year(due)),
            None => format!("{}/open", self.class),
        }
    }

    /// The data key as wrapped (by its epoch key): for audits that try keys against it.
    pub fn wrapped_key(&self) -> &[u8] {
        &self.wrapped_key
    }

    pub fn blob(&self, role: BlobRole) -> Option<&BlobRef> {
        self.blobs.iter().find(|b| b.role == role)
    }

    pub(crate) fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("record serialises")
    }

    pub(crate) fn decode(v: &[u8]) -> Result<Record, Error> {
        serde_json::from_slice(v).map_err(|e| Error::Corrupt(format!("record metadata: {e}")))
    }
}

pub(crate) mod hex_bytes {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(v))
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let s = String::deserialize(d)?;
        hex::decode(s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn rec(received_at: chrono::DateTime<chrono::Utc>) -> Record {
        Record {
            id: RecordId::from_fingerprint(&[1; 32]),
            state: RecordState::Stored,
            kind: RecordKind::Page,
            received_at,
            wrapped_key: Vec::new(),
            blobs: Vec::new(),
            class: "application".into(),
            last_changed_at: None,
            decided_on: None,
            retention: None,
            batch: None,
            received_on: None,
            key_epoch: None,
            past_epochs: Vec::new(),
            doc_type: None,
        }
    }

    #[test]
    fn receipt_is_the_japan_date_or_the_batch_date() {
        // Received 08:30 JST on 1 April 2027: fiscal year 2027, not 2026.
        let r = rec(chrono::Utc.with_ymd_and_hms(2027, 3, 31, 23, 30, 0).unwrap());
        let d = r.dates();
        assert_eq!(d.received, chrono::NaiveDate::from_ymd_opt(2027, 4, 1).unwrap());
        assert_eq!(d.last_change, d.received);
        // The batch's 受付日 wins when the page came in a logged batch.
        let batch_day = chrono::NaiveDate::from_ymd_opt(2027, 3, 30).unwrap();
        let r = Record { received_on: Some(batch_day), ..r };
        assert_eq!(r.dates().received, batch_day);
        assert_eq!(r.epoch_label(), "application/open");
        let r = Record {
            retention: Some(Retention { policy_version: 1, due_on: chrono::NaiveDate::from_ymd_opt(2032, 4, 1) }),
            ..r
        };
        assert_eq!(r.epoch_label(), "application/FY2032");
    }
}
