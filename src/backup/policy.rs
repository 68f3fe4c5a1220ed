//! The backups' retention policy (`retention-policies/backup.toml`): how many years a backup
//! is kept, how many of the newest are kept whatever their age, and how long key-store escrow
//! copies may live. Validated on load with the file and key named.

use std::path::Path;

use chrono::NaiveDate;
use serde::Deserialize;

use super::Manifest;

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackupPolicy {
    pub kind: String,
    pub title: String,
    pub years: u32,
    pub keep_at_least: usize,
    pub key_escrow_days: u32,
    pub legal_basis: String,
}

#[derive(Debug, thiserror::Error)]
#[error("{file}: {message}")]
pub struct Error {
    pub file: String,
    pub message: String,
}

impl BackupPolicy {
    pub fn parse(text: &str, file: &str) -> Result<BackupPolicy, Error> {
        let bad = |message: String| Error { file: file.to_owned(), message };
        let p: BackupPolicy = toml::from_str(text).map_err(|e| bad(e.message().to_owned()))?;
        if p.kind != "backup" {
            return Err(bad(format!("kind must be \"backup\", not {:?}", p.kind)));
        }
        if !(1..=30).contains(&p.years) {
            return Err(bad("years must be 1..=30".into()));
        }
        if p.keep_at_least == 0 {
            return Err(bad("keep_at_least must be at least 1 (never prune the last backup)".into()));
        }
        if !(1..=365).contains(&p.key_escrow_days) {
            return Err(bad("key_escrow_days must be 1..=365".into()));
        }
        Ok(p)
    }

    /// `backup.toml` in the policy folder.
    pub fn load(dir: &Path) -> Result<BackupPolicy, Error> {
        let path = dir.join(crate::retention::policy::BACKUP_POLICY_FILE);
        let text = std::fs::read_to_string(&path)
            .map_err(|e| Error { file: path.display().to_string(), message: e.to_string() })?;
        BackupPolicy::parse(&text, &path.display().to_string())
    }

    /// The last Japan date a backup taken on `taken` is kept: the same date `years` later (the
    /// day it was taken is not counted, 民法第140条; 29 February maps to 28 February).
    pub fn kept_until(&self, taken: NaiveDate) -> NaiveDate {
        taken.checked_add_months(chrono::Months::new(12 * self.years)).unwrap_or(NaiveDate::MAX)
    }

    /// The backups (of `all`, any order) past their retention on `today`, oldest first,
    /// never one of the `keep_at_least` newest.
    pub fn expired<'a>(&self, all: &'a [Manifest], today: NaiveDate) -> Vec<&'a Manifest> {
        let mut sorted: Vec<&Manifest> = all.iter().collect();
        sorted.sort_by_key(|m| m.created_at);
        let protected = sorted.len().saturating_sub(self.keep_at_least);
        sorted.into_iter().take(protected).filter(|m| self.kept_until(m.taken_on()) < today).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(y: i32, m: u32, dd: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, dd).unwrap()
    }

    #[test]
    fn the_shipped_policy_keeps_seven_years_and_errors_name_the_key() {
        let p = BackupPolicy::load(&crate::retention::policy::default_dir()).unwrap();
        assert_eq!((p.years, p.kind.as_str()), (7, "backup"));
        assert_eq!(p.kept_until(d(2026, 4, 1)), d(2033, 4, 1));
        assert_eq!(p.kept_until(d(2024, 2, 29)), d(2031, 2, 28));
        let e = BackupPolicy::parse(
            "kind='backup'\ntitle='x'\nyears=0\nkeep_at_least=1\nkey_escrow_days=1\nlegal_basis=''",
            "b.toml",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("b.toml") && e.contains("years"), "{e}");
        let e = BackupPolicy::parse("kind='backup'\nyeers=7", "b.toml").unwrap_err().to_string();
        assert!(e.contains("yeers"), "{e}");
    }
}
