//! export/: "the subsidy system's input data, instead of the punch contractor's CD-RW." Verified
//! applications (with their My Number form) become rows in the subsidy system's import layout
//! (`layout.rs`, a file the office edits; `rows.rs` builds a row's values and finds what holds
//! it back; `format.rs` writes and reads fixed-width or CSV, CP932 or UTF-8). One export run
//! takes every verified, not yet exported application of a period exactly once, writes an
//! AES-256 ZIP for the hand-over, and keeps the run's record here: ids, counts and reasons,
//! never a name or a number (the check lists draw names from the sealed drafts when shown).
//! `result.rs` reads the subsidy system's import result back.
//!
//! A run moves created → downloaded → handed over (the file is then erased, 消去履歴), or is
//! cancelled before hand-over (its rows return to the pool). Never backwards.

pub mod format;
pub mod layout;
pub mod lists;
pub mod result;
pub mod rows;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

/// Who did something, and when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stamp {
    pub by: String,
    pub at: DateTime<Utc>,
}

impl Stamp {
    pub fn now(by: &str) -> Stamp {
        Stamp { by: by.to_owned(), at: Utc::now() }
    }

    /// `2026-11-30 09:15 担当者`, in Japan time.
    pub fn label_ja(&self) -> String {
        format!("{} {}", self.at.with_timezone(&crate::jp::jst()).format("%Y-%m-%d %H:%M"), self.by)
    }
}

/// Where a run stands. Each later state keeps the earlier stamps in the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// The file is sealed in the store; the password was shown once.
    Created,
    /// Taken once by a user (it cannot be taken again).
    Downloaded,
    /// Handed to the subsidy system's terminal; the file is erased.
    HandedOver,
    /// Withdrawn before hand-over: the rows went back to the pool; the file is erased.
    Cancelled,
}

impl RunStatus {
    pub fn label_ja(self) -> &'static str {
        match self {
            RunStatus::Created => "作成済（未ダウンロード）",
            RunStatus::Downloaded => "ダウンロード済（引渡し待ち）",
            RunStatus::HandedOver => "引渡し済（ファイル消去済）",
            RunStatus::Cancelled => "取消（ファイル消去済）",
        }
    }
}

/// What the subsidy system said about a row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum RowOutcome {
    #[default]
    Pending,
    Accepted,
    Rejected,
}

impl RowOutcome {
    pub fn label_ja(self) -> &'static str {
        match self {
            RowOutcome::Pending => "結果待ち",
            RowOutcome::Accepted => "受理",
            RowOutcome::Rejected => "不受理（差戻し）",
        }
    }
}

/// What an application's last export was: which run and row, and the drafts as they were
/// (their blob hashes: a later change shows without opening them) and the row's keyed hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExportState {
    pub run: String,
    pub key: String,
    pub fingerprint: String,
    pub drafts: Vec<(String, String)>,
    pub at: DateTime<Utc>,
    #[serde(default)]
    pub outcome: RowOutcome,
}

/// One exported row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunRow {
    pub seq: usize,
    /// 整理番号: the key the result file refers back to.
    pub key: String,
    /// The application's record (sheet 1, or the one sheet there is).
    pub application: String,
    /// Every page exported with it (both sheets and the My Number form).
    pub pages: Vec<String>,
    /// 新規 / 更新 / 変更.
    pub kind: String,
    /// A correction (訂正) of an application exported before.
    pub correction: bool,
    pub municipality: String,
    pub warnings: Vec<String>,
    /// The application's export state before this run (restored if the run is cancelled).
    pub prior: Option<ExportState>,
    #[serde(default)]
    pub outcome: RowOutcome,
}

/// An application not exported, and why (it stays in the pool for the next run).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeldRow {
    pub application: String,
    pub pages: Vec<String>,
    pub kind: String,
    pub municipality: String,
    pub reasons: Vec<String>,
}

/// The hand-over file as written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileInfo {
    /// The ZIP's name (`NYURYOKU_EX20261130-01.zip`).
    pub name: String,
    /// The data file's name inside it.
    pub data_name: String,
    pub bytes: u64,
    pub sha256: String,
    pub data_sha256: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HandOver {
    pub stamp: Stamp,
    /// To whom or where (the subsidy system's terminal, the person who imported it).
    pub to: String,
}

/// One import of the subsidy system's result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResultImport {
    pub stamp: Stamp,
    pub file_sha256: String,
    pub accepted: usize,
    pub rejected: usize,
    pub unchanged: usize,
    pub errors: Vec<String>,
}

/// An export run's record (plain JSON in the store: ids, counts, reasons; no personal data).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExportRun {
    pub id: String,
    pub created: Stamp,
    pub layout: String,
    /// Received dates taken (Japan dates, inclusive); open ends take everything.
    pub from: Option<NaiveDate>,
    pub to: Option<NaiveDate>,
    pub status: RunStatus,
    pub rows: Vec<RunRow>,
    pub held: Vec<HeldRow>,
    pub file: FileInfo,
    pub downloaded: Option<Stamp>,
    pub handed_over: Option<HandOver>,
    pub cancelled: Option<(Stamp, String)>,
    /// 消去履歴: when the file left the store, and why (hand-over or cancellation).
    pub erased: Option<(Stamp, String)>,
    #[serde(default)]
    pub results: Vec<ResultImport>,
}

/// Why an export step is refused, in words the exporting user acts on.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error(transparent)]
    Layout(#[from] layout::LayoutError),
    #[error("書き出し {run}: {message}")]
    Step { run: String, message: String },
    #[error("書き出す申請がありません（確認済で未書き出しの申請がありません）")]
    Nothing,
    #[error("書き出し {0} はありません（hozon export list で番号を確認してください）")]
    NoRun(String),
    #[error("{0}")]
    ResultFile(String),
    #[error("入力データを作成できません: {0}")]
    Write(String),
}

impl ExportRun {
    /// A run not yet written: no rows, no file.
    pub fn new(id: &str, by: &str, layout: &str, from: Option<NaiveDate>, to: Option<NaiveDate>) -> ExportRun {
        ExportRun {
            id: id.to_owned(),
            created: Stamp::now(by),
            layout: layout.to_owned(),
            from,
            to,
            status: RunStatus::Created,
            rows: Vec::new(),
            held: Vec::new(),
            file: FileInfo {
                name: String::new(),
                data_name: String::new(),
                bytes: 0,
                sha256: String::new(),
                data_sha256: String::new(),
            },
            downloaded: None,
            handed_over: None,
            cancelled: None,
            erased: None,
            results: Vec::new(),
        }
    }

    fn refuse(&self, message: &str) -> ExportError {
        ExportError::Step { run: self.id.clone(), message: message.to_owned() }
    }

    /// The file may be taken once, before hand-over or cancellation.
    pub fn download(&mut self, by: &str) -> Result<(), ExportError> {
        match self.status {
            RunStatus::Created => {
                self.status = RunStatus::Downloaded;
                self.downloaded = Some(Stamp::now(by));
                Ok(())
            }
            RunStatus::Downloaded => Err(self.refuse(
                "ファイルはダウンロード済みです（一度だけ取り出せます）。紛失した場合は取り消して作り直してください",
            )),
            RunStatus::HandedOver | RunStatus::Cancelled => Err(self.refuse("ファイルは消去済みです")),
        }
    }

    /// Hand-over is confirmed after the download; the file is then erased.
    pub fn hand_over(&mut self, by: &str, to: &str) -> Result<(), ExportError> {
        if to.trim().is_empty() {
            return Err(self.refuse("引渡し先（取込を行った端末・担当者）を記入してください"));
        }
        match self.status {
            RunStatus::Downloaded => {
                let stamp = Stamp::now(by);
                self.status = RunStatus::HandedOver;
                self.handed_over = Some(HandOver { stamp: stamp.clone(), to: to.trim().to_owned() });
                self.erased = Some((stamp, "引渡し完了による消去".into()));
                Ok(())
            }
            RunStatus::Created => Err(self.refuse("まだダウンロードされていません")),
            RunStatus::HandedOver => Err(self.refuse("引渡し済みです")),
            RunStatus::Cancelled => Err(self.refuse("取り消された書き出しです")),
        }
    }

    /// Cancelled before hand-over, never after; once downloaded, only with the statement that
    /// the copy taken was destroyed (else the subsidy system could import it and the rows
    /// would go out again).
    pub fn cancel(&mut self, by: &str, reason: &str, copy_destroyed: bool) -> Result<(), ExportError> {
        if reason.trim().is_empty() {
            return Err(self.refuse("取消の理由を記入してください"));
        }
        if self.status == RunStatus::Downloaded && !copy_destroyed {
            return Err(self.refuse("ダウンロードしたファイルを消去したことを確認してから取り消してください"));
        }
        match self.status {
            RunStatus::Created | RunStatus::Downloaded => {
                let stamp = Stamp::now(by);
                self.status = RunStatus::Cancelled;
                self.cancelled = Some((stamp.clone(), reason.trim().to_owned()));
                self.erased = Some((stamp, "取消による消去".into()));
                Ok(())
            }
            RunStatus::HandedOver => {
                Err(self.refuse("引渡し後は取り消せません（訂正は次回の書き出しで訂正データとして送ります）"))
            }
            RunStatus::Cancelled => Err(self.refuse("取消済みです")),
        }
    }

    /// A result is taken back only for a file the subsidy system has.
    pub fn check_result_allowed(&self) -> Result<(), ExportError> {
        match self.status {
            RunStatus::HandedOver => Ok(()),
            _ => Err(self.refuse("取込結果は引渡し済みの書き出しにだけ登録できます")),
        }
    }

    pub fn row_by_key(&mut self, key: &str) -> Option<&mut RunRow> {
        self.rows.iter_mut().find(|r| r.key == key)
    }
}

/// The run id for the `n`th run of a Japan date: `EX20261130-01`.
pub fn run_id(on: NaiveDate, n: usize) -> String {
    format!("EX{}-{n:02}", on.format("%Y%m%d"))
}

/// A row's key: `EX20261130-01-00001`.
pub fn row_key(run: &str, seq: usize) -> String {
    format!("{run}-{seq:05}")
}

/// A hand-over password: 20 characters from an alphabet of 56 without look-alikes (0/O, 1/l/I),
/// ~116 bits, easy to read out over the phone in groups of five.
pub fn new_password() -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"23456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnpqrstuvwxyz";
    let mut rng = rand::rngs::OsRng;
    let chars: Vec<char> = (0..20).map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char).collect();
    chars.chunks(5).map(|c| c.iter().collect::<String>()).collect::<Vec<_>>().join("-")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run() -> ExportRun {
        ExportRun::new("EX20261130-01", "a", "x", None, None)
    }

    #[test]
    fn a_run_only_moves_forward() {
        let mut r = run();
        assert!(r.hand_over("a", "端末1").is_err(), "not downloaded");
        assert!(r.check_result_allowed().is_err());
        r.download("a").unwrap();
        assert!(r.download("b").is_err(), "downloaded once");
        assert!(r.hand_over("a", " ").is_err(), "to whom");
        r.hand_over("a", "助成システム端末1").unwrap();
        assert!(r.erased.is_some());
        assert!(r.cancel("a", "間違い", true).is_err(), "never after hand-over");
        r.check_result_allowed().unwrap();
        let mut c = run();
        assert!(c.cancel("a", "", false).is_err(), "a reason");
        c.cancel("a", "期間の誤り", false).unwrap();
        assert!(c.download("a").is_err());
        let mut d = run();
        d.download("a").unwrap();
        assert!(d.cancel("a", "誤り", false).is_err(), "the copy taken must be destroyed first");
        d.cancel("a", "誤り", true).unwrap();
    }

    #[test]
    fn passwords_are_long_and_unambiguous() {
        let p = new_password();
        assert_eq!(p.len(), 23, "four groups of five");
        assert!(!p.contains(['0', 'O', '1', 'l', 'I']));
        assert_ne!(p, new_password());
    }
}
