//! cases/: "whose application is this?" The central case record (受給者台帳) as the subsidy
//! system exports it: recipient number (受給者番号), application number (申請整理番号), the
//! person, the disease, the certificate's validity and the case status. Records come in as CSV
//! (`import.rs`); they are personal data and are only ever stored sealed (see `app::cases`).

pub mod import;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

/// Where a case stands (受付 → 審査中 → 認定/非認定 → 通知済).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CaseStatus {
    Received,
    UnderReview,
    Approved,
    Rejected,
    Notified,
}

impl CaseStatus {
    pub const ALL: [CaseStatus; 5] = [
        CaseStatus::Received,
        CaseStatus::UnderReview,
        CaseStatus::Approved,
        CaseStatus::Rejected,
        CaseStatus::Notified,
    ];

    pub fn label_ja(self) -> &'static str {
        match self {
            CaseStatus::Received => "受付",
            CaseStatus::UnderReview => "審査中",
            CaseStatus::Approved => "認定",
            CaseStatus::Rejected => "非認定",
            CaseStatus::Notified => "通知済",
        }
    }

    pub fn key(self) -> &'static str {
        match self {
            CaseStatus::Received => "received",
            CaseStatus::UnderReview => "under_review",
            CaseStatus::Approved => "approved",
            CaseStatus::Rejected => "rejected",
            CaseStatus::Notified => "notified",
        }
    }

    /// From the Japanese label or the key.
    pub fn parse(s: &str) -> Option<CaseStatus> {
        CaseStatus::ALL.into_iter().find(|c| c.label_ja() == s || c.key() == s)
    }
}

/// One case as the subsidy system knows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaseFields {
    pub recipient_no: String,
    pub application_no: String,
    pub name: String,
    pub kana: String,
    pub birth_date: NaiveDate,
    pub address: String,
    pub disease: String,
    pub valid_from: Option<NaiveDate>,
    pub valid_to: Option<NaiveDate>,
    pub status: CaseStatus,
}

/// A stored case: its current fields and every earlier version, newest last.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Case {
    pub current: CaseFields,
    pub updated_at: chrono::DateTime<chrono::Utc>,
    /// Where the current version came from (file name or API client).
    pub source: String,
    #[serde(default)]
    pub history: Vec<CaseVersion>,
}

/// A version a later import replaced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaseVersion {
    pub fields: CaseFields,
    pub valid_until: chrono::DateTime<chrono::Utc>,
    pub source: String,
}

impl Case {
    /// Applies an imported version: `false` if nothing changed (re-importing the same export
    /// is a no-op), else the old version goes into the history.
    pub fn update(&mut self, fields: CaseFields, source: &str, now: chrono::DateTime<chrono::Utc>) -> bool {
        if self.current == fields {
            return false;
        }
        let old = std::mem::replace(&mut self.current, fields);
        self.history.push(CaseVersion { fields: old, valid_until: now, source: std::mem::take(&mut self.source) });
        self.source = source.to_owned();
        self.updated_at = now;
        true
    }
}
