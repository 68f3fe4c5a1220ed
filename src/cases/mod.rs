//! cases/: "whose application is this?" The central case record (受給者台帳) as the subsidy
//! system exports it: recipient number (受給者番号), application number (申請整理番号), the
//! person, the disease, the certificate's validity and the case status. Records come in as CSV
//! (`import.rs`); they are personal data and are only ever stored sealed (see `app::cases`).

pub mod import;
pub mod matching;

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
    /// The person's My Number as the export carried it: only ever used to write its keyed
    /// hash (the lookup a My Number form is matched through), never stored.
    #[serde(skip)]
    pub my_number: Option<String>,
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
    /// The inquiries log (問合せ経過), oldest first.
    #[serde(default)]
    pub inquiries: Vec<Inquiry>,
    /// Made by a reviewer for a new applicant, before the subsidy system knows them (仮登録).
    #[serde(default)]
    pub provisional: bool,
    /// The last 異動 that is not a change of the fields (an inquiry, a page linked); the
    /// retention clock ("no change for five years") runs from the later of this and
    /// `updated_at`.
    #[serde(default)]
    pub touched_at: Option<chrono::DateTime<chrono::Utc>>,
    /// A records officer's decision to keep the case past its due date (延長): until when and why.
    #[serde(default)]
    pub extended: Option<Extension>,
    /// A provisional case the subsidy system's result replaced: the recipient number its
    /// pages moved to (kept for its history, holds and page list).
    #[serde(default)]
    pub merged_into: Option<String>,
}

/// 延長: a decision to keep a case record past its retention, with a new date and a reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Extension {
    pub until: NaiveDate,
    pub reason: String,
    pub by: String,
    pub run: String,
}

/// One contact about the case (問合せ経過).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Inquiry {
    pub on: NaiveDate,
    pub channel: String,
    pub by: String,
    pub note: String,
}

/// How a page was linked to its case.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "by", rename_all = "snake_case")]
pub enum LinkMethod {
    RecipientNumber,
    ApplicationNumber,
    /// Through the keyed hash of the My Number on the page.
    MyNumber,
    /// The other sheet of the same application was linked.
    OtherSheet,
    /// Name, reading, birth date and address matched one case only.
    Matched {
        score: f32,
    },
    /// A reviewer chose the case.
    Reviewer,
    /// A reviewer made a provisional case for a new applicant.
    Provisional,
    /// The subsidy system accepted the application and assigned this recipient number
    /// (its import result, see `export/`).
    SubsidySystem,
}

impl LinkMethod {
    pub fn label_ja(self) -> String {
        match self {
            LinkMethod::RecipientNumber => "受給者番号が一致".into(),
            LinkMethod::ApplicationNumber => "申請整理番号が一致".into(),
            LinkMethod::MyNumber => "個人番号が一致".into(),
            LinkMethod::OtherSheet => "同じ申請のもう一方の用紙から".into(),
            LinkMethod::Matched { score } => format!("氏名・生年月日・住所が一致（{:.0}%）", score * 100.0),
            LinkMethod::Reviewer => "審査担当者が確認".into(),
            LinkMethod::Provisional => "新規申請者として仮登録".into(),
            LinkMethod::SubsidySystem => "医療費助成事務システムの取込結果".into(),
        }
    }

    /// Whether the link was made without a person confirming it.
    pub fn automatic(self) -> bool {
        !matches!(self, LinkMethod::Reviewer | LinkMethod::Provisional)
    }
}

/// A page's link to its case (kept in the page's sealed draft).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CaseLink {
    pub recipient_no: String,
    pub how: LinkMethod,
    pub by: String,
    pub at: chrono::DateTime<chrono::Utc>,
}

/// A version a later import replaced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaseVersion {
    pub fields: CaseFields,
    pub valid_until: chrono::DateTime<chrono::Utc>,
    pub source: String,
}

impl Case {
    /// A new case record from its first import (or a provisional registration).
    pub fn new(current: CaseFields, source: &str, now: chrono::DateTime<chrono::Utc>, provisional: bool) -> Case {
        Case {
            current,
            updated_at: now,
            source: source.to_owned(),
            history: Vec::new(),
            inquiries: Vec::new(),
            provisional,
            touched_at: None,
            extended: None,
            merged_into: None,
        }
    }

    /// The last 異動 of the case: a field changed, a status moved, an inquiry, a page linked.
    pub fn last_change(&self) -> chrono::DateTime<chrono::Utc> {
        self.touched_at.map_or(self.updated_at, |t| t.max(self.updated_at))
    }

    /// Notes an 異動 that changes no field (an inquiry logged, a page linked).
    pub fn touch(&mut self, now: chrono::DateTime<chrono::Utc>) {
        self.touched_at = Some(now);
    }

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

    /// Moves the case to `status` (受付 → 審査中 → 認定/非認定 → 通知済), keeping the old
    /// version in the history; `false` if it already was there.
    pub fn set_status(&mut self, status: CaseStatus, by: &str, now: chrono::DateTime<chrono::Utc>) -> bool {
        let fields = CaseFields { status, ..self.current.clone() };
        self.update(fields, &format!("状態変更 {by}"), now)
    }
}
