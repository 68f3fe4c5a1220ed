//! `DATA/config.toml`: settings an office changes without a rebuild (security policy today).
//! Written with defaults by `hozon init`; unknown keys and out-of-range values are errors that
//! name the key, so a typo never silently weakens a safeguard.

use std::path::Path;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Security {
    /// Failed logins in a row after which the account is locked for a while (never for good:
    /// anyone could lock anyone out).
    pub lockout_threshold: u32,
    /// The first lockout's length in minutes; each further failure doubles it (up to a day).
    pub lockout_minutes: u64,
    /// Wrong one-time codes in a row after which codes are refused for a while (doubling).
    pub totp_attempts: u32,
    /// Days before a password must be changed.
    pub password_max_age_days: u32,
    pub password_min_length: usize,
    /// Minutes of inactivity that end a session (each request renews it).
    pub session_idle_minutes: u64,
    /// Hours after login that end a session however active it is.
    pub session_absolute_hours: u64,
    /// Require the second factor at every login (it is always required for exports of personal
    /// data and for user administration).
    pub totp_for_login: bool,
    /// How long a second-factor check counts for exports and user administration.
    pub step_up_minutes: u64,
    /// Mark cookies `Secure` (browsers still send them to http://localhost).
    pub secure_cookies: bool,
    /// Login attempts allowed per client address per minute.
    pub login_attempts_per_minute: u32,
    /// Record views by one user in one day above which the monthly report flags the user.
    pub report_views_per_day: usize,
}

impl Default for Security {
    fn default() -> Self {
        Security {
            lockout_threshold: 5,
            lockout_minutes: 5,
            totp_attempts: 5,
            password_max_age_days: 90,
            password_min_length: 12,
            session_idle_minutes: 30,
            session_absolute_hours: 10,
            totp_for_login: false,
            step_up_minutes: 15,
            secure_cookies: true,
            login_attempts_per_minute: 10,
            report_views_per_day: 100,
        }
    }
}

/// The issuing office, as printed on certificates.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Office {
    /// 発行機関: the office that issues certificates.
    pub name: String,
    /// The prefix of certificate document numbers (文書番号), e.g. `〇〇福保疾` → `〇〇福保疾第D2026…号`.
    pub document_prefix: String,
}

impl Default for Office {
    fn default() -> Self {
        Office {
            name: "東京都 保健医療局 保健政策部 疾病対策課".into(), document_prefix: "疾対".into()
        }
    }
}

/// What one scan file may cost to read. Multi-page files are read a page at a time, so these
/// bound time and the memory of one page, not the file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Capture {
    /// Pages read from one multi-page file; the rest are refused and the file kept.
    pub max_pages_per_file: usize,
    /// Pixels of one page (A3 at 400 dpi is 31 Mpx).
    pub max_page_pixels: u64,
    /// Decoded megabytes (one byte a pixel) of all pages of one file together.
    pub max_decoded_mb_per_file: u64,
    /// Pages being decoded and read at once in this process (each holds an OCR engine and
    /// one decoded page): the server's memory bound, whatever number of uploads arrive.
    pub concurrent_decodes: usize,
}

impl Default for Capture {
    fn default() -> Self {
        Capture {
            max_pages_per_file: 1000,
            max_page_pixels: 60_000_000,
            max_decoded_mb_per_file: 4096,
            concurrent_decodes: 2,
        }
    }
}

/// Where backups go and when `serve` takes them. Credentials for an S3 destination come from
/// here or, better, from the environment (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`), so
/// that the data directory's own backup never carries them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Backup {
    /// A local directory (another disk, a mounted share) or `s3://bucket/prefix`; empty: no
    /// default destination (`--to` is then required) and no scheduled backup.
    pub destination: String,
    /// Japan time of the daily backup `serve` takes (and prunes after), `HH:MM`; empty: none.
    pub daily_at: String,
    /// The S3 endpoint (`http://host:port` for an on-premises store); empty: AWS.
    pub s3_endpoint: String,
    pub s3_region: String,
    pub s3_access_key_id: String,
    pub s3_secret_access_key: String,
}

/// The subsidy system's input data (see `export/`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Export {
    /// The import layout file the office uses; empty: the shipped
    /// `export-layouts/subsidy-system.toml`.
    pub layout: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub security: Security,
    pub office: Office,
    pub capture: Capture,
    pub backup: Backup,
    pub export: Export,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{path}: {message}")]
    Invalid { path: String, message: String },
}

impl Config {
    pub fn parse(text: &str, origin: &str) -> Result<Config, Error> {
        let invalid = |message: String| Error::Invalid { path: origin.to_owned(), message };
        let c: Config = toml::from_str(text).map_err(|e| invalid(e.message().to_owned()))?;
        let s = &c.security;
        let checks: [(&str, bool); 8] = [
            ("security.lockout_threshold must be 1..=20", (1..=20).contains(&s.lockout_threshold)),
            ("security.password_min_length must be 8..=128", (8..=128).contains(&s.password_min_length)),
            ("security.password_max_age_days must be 1..=400", (1..=400).contains(&s.password_max_age_days)),
            ("security.session_idle_minutes must be 1..=480", (1..=480).contains(&s.session_idle_minutes)),
            ("security.login_attempts_per_minute must be 1..=1000", (1..=1000).contains(&s.login_attempts_per_minute)),
            ("security.lockout_minutes must be 1..=1440", (1..=1440).contains(&s.lockout_minutes)),
            ("security.totp_attempts must be 1..=20", (1..=20).contains(&s.totp_attempts)),
            ("security.session_absolute_hours must be 1..=24", (1..=24).contains(&s.session_absolute_hours)),
        ];
        let cap = &c.capture;
        let checks = checks.into_iter().chain([
            ("capture.max_pages_per_file must be 1..=10000", (1..=10_000).contains(&cap.max_pages_per_file)),
            (
                "capture.max_page_pixels must be 1000000..=200000000",
                (1_000_000..=200_000_000).contains(&cap.max_page_pixels),
            ),
            ("capture.max_decoded_mb_per_file must be 1..=65536", (1..=65_536).contains(&cap.max_decoded_mb_per_file)),
            ("capture.concurrent_decodes must be 1..=64", (1..=64).contains(&cap.concurrent_decodes)),
        ]);
        let b = &c.backup;
        let daily_ok = b.daily_at.is_empty() || chrono::NaiveTime::parse_from_str(&b.daily_at, "%H:%M").is_ok();
        let checks = checks.chain([("backup.daily_at must be HH:MM (Japan time) or empty", daily_ok)]);
        if let Some((msg, _)) = checks.into_iter().find(|(_, ok)| !ok) {
            return Err(invalid((*msg).to_owned()));
        }
        Ok(c)
    }

    /// Reads `DATA/config.toml`; a missing file means the defaults.
    pub fn load(data: &Path) -> Result<Config, Error> {
        let path = data.join("config.toml");
        match std::fs::read_to_string(&path) {
            Ok(text) => Config::parse(&text, &path.display().to_string()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Config::default()),
            Err(e) => Err(Error::Invalid { path: path.display().to_string(), message: e.to_string() }),
        }
    }

    pub fn default_text() -> String {
        format!(
            "# hozon settings. Unknown keys are errors. Restart `hozon serve` after a change.\n{}",
            toml::to_string_pretty(&Config::default()).expect("config serialises")
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_roundtrip_and_errors_name_the_key() {
        assert_eq!(Config::parse(&Config::default_text(), "c").unwrap(), Config::default());
        assert_eq!(Config::parse("", "c").unwrap(), Config::default());
        let e = Config::parse("[security]\nlockout_treshold = 3\n", "c.toml").unwrap_err().to_string();
        assert!(e.contains("c.toml") && e.contains("lockout_treshold"), "{e}");
        let e = Config::parse("[security]\nlockout_threshold = 0\n", "c.toml").unwrap_err().to_string();
        assert!(e.contains("security.lockout_threshold"), "{e}");
        let e = Config::parse("[security]\nsession_idle_minutes = \"ten\"\n", "c.toml").unwrap_err().to_string();
        assert!(e.contains("c.toml"), "{e}");
    }
}
