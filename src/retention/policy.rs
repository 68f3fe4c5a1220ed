//! Retention policies as files (`retention-policies/*.toml`), one per record class, and the pure
//! due-date arithmetic. Nothing here reads the clock: `today` and record dates are passed in.
//!
//! A record is kept for `years` full years after its trigger date. With
//! `from_fiscal_year_end = true` the years count from the end of the fiscal year (31 March)
//! that contains the trigger date, as Tokyo's rules count them: a record changed on 2021-03-31
//! is kept until 2026-03-31 and due on 2026-04-01; one changed on 2021-04-01 is kept until
//! 2027-03-31.

use std::collections::BTreeMap;
use std::path::Path;

use chrono::{Datelike, NaiveDate};
use serde::{Deserialize, Serialize};

use crate::auth::{Role, fiscal_year_end};

/// Record classes hozon's own code files records under; every one needs a policy. Forms and
/// document types add their own classes (checked with [`PolicySet::require`]).
pub const CLASSES: &[&str] = &[
    "application",
    "my_number_form",
    "clinical_survey",
    "consent",
    "proof",
    "case_record",
    "scan",
    "audit_log",
    "paper_box",
];

/// Classes hozon's own code gives records (unfiled pages, case records, the audit log, paper
/// boxes): no form or document type may file pages under them.
pub const RESERVED: &[&str] = &["scan", "case_record", "audit_log", "paper_box"];

/// Retention periods Tokyo's file rules allow (years).
const ALLOWED_YEARS: &[u32] = &[1, 3, 5, 7, 10, 30];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Trigger {
    /// The last change (異動) of the record.
    LastChange,
    /// The decision date (認定・不認定) of the case the record belongs to.
    Decision,
    /// The day the record was received.
    Received,
    /// A fixed date given in the policy.
    FixedDate,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Destroy (廃棄) after approval.
    Destroy,
    /// Put before a records officer for a decision (extend or destroy).
    Review,
    /// Transfer to the archives (移管).
    Transfer,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    pub class: String,
    pub title: String,
    pub version: u32,
    pub trigger: Trigger,
    pub years: u32,
    #[serde(default)]
    pub from_fiscal_year_end: bool,
    #[serde(default)]
    pub fixed_date: Option<NaiveDate>,
    pub action: Action,
    pub legal_basis: String,
    /// Roles of the preparer and the approver (two different people).
    pub approvers: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{file}: {message}")]
    Invalid { file: String, message: String },
    #[error("no policy for record class {0:?} (add retention-policies/{0}.toml)")]
    Missing(String),
    #[error(
        "{by} files its pages as record class {class:?}, which has no retention policy (add retention-policies/{class}.toml, or name an existing class)"
    )]
    MissingFor { class: String, by: String },
    #[error("{0}: cannot read the policy folder: {1}")]
    Folder(String, String),
}

/// The dates a due date can depend on.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RecordDates {
    pub received: NaiveDate,
    pub last_change: NaiveDate,
    pub decided: Option<NaiveDate>,
}

fn add_years(d: NaiveDate, years: u32) -> NaiveDate {
    let y = d.year() + years as i32;
    NaiveDate::from_ymd_opt(y, d.month(), d.day())
        .unwrap_or_else(|| NaiveDate::from_ymd_opt(y, 2, 28).expect("28 February exists"))
}

impl Policy {
    pub fn parse(text: &str, file: &str) -> Result<Policy, Error> {
        let invalid = |message: String| Error::Invalid { file: file.to_owned(), message };
        let p: Policy = toml::from_str(text).map_err(|e| invalid(e.message().to_owned()))?;
        if !crate::forms::doctypes::valid_key(&p.class) {
            return Err(invalid(format!(
                "record class {:?}: lower-case letters, digits and _ only (e.g. {})",
                p.class,
                CLASSES.join(", ")
            )));
        }
        if !ALLOWED_YEARS.contains(&p.years) {
            return Err(invalid(format!(
                "years = {} is not a retention period of the rules ({ALLOWED_YEARS:?})",
                p.years
            )));
        }
        if p.version == 0 {
            return Err(invalid("version must be 1 or more".into()));
        }
        if (p.trigger == Trigger::FixedDate) != p.fixed_date.is_some() {
            return Err(invalid("fixed_date is required with trigger = \"fixed_date\" and only then".into()));
        }
        if p.legal_basis.trim().is_empty() {
            return Err(invalid("legal_basis must say why the period applies".into()));
        }
        if p.approvers.len() != 2 || p.approvers.iter().any(|r| Role::parse(r).is_none()) {
            return Err(invalid(
                "approvers must name two roles (preparer, approver), e.g. [\"records_officer\", \"records_officer\"]"
                    .into(),
            ));
        }
        Ok(p)
    }

    /// The last day the record must be kept, or `None` while its trigger has not happened
    /// (e.g. no decision yet).
    pub fn retained_until(&self, d: &RecordDates) -> Option<NaiveDate> {
        let base = match self.trigger {
            Trigger::LastChange => d.last_change,
            Trigger::Decision => d.decided?,
            Trigger::Received => d.received,
            Trigger::FixedDate => return self.fixed_date,
        };
        if self.from_fiscal_year_end {
            Some(add_years(fiscal_year_end(base), self.years))
        } else {
            Some(add_years(base, self.years) - chrono::Duration::days(1))
        }
    }

    /// The first day the record may be disposed of.
    pub fn due_on(&self, d: &RecordDates) -> Option<NaiveDate> {
        self.retained_until(d).map(|u| u + chrono::Duration::days(1))
    }
}

/// Every policy, by class.
#[derive(Debug, Clone, PartialEq)]
pub struct PolicySet {
    by_class: BTreeMap<String, Policy>,
}

impl PolicySet {
    /// Loads and validates every `*.toml` in `dir`; every known class must have exactly one.
    pub fn load_dir(dir: &Path) -> Result<PolicySet, Error> {
        let folder = dir.display().to_string();
        let entries = std::fs::read_dir(dir).map_err(|e| Error::Folder(folder.clone(), e.to_string()))?;
        let mut files: Vec<_> = entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "toml"))
            // The backups' own policy lives here too; `backup::policy` reads it.
            .filter(|p| p.file_name().is_none_or(|n| n != BACKUP_POLICY_FILE))
            .collect();
        files.sort();
        let mut texts = Vec::new();
        for f in files {
            let text =
                std::fs::read_to_string(&f).map_err(|e| Error::Folder(f.display().to_string(), e.to_string()))?;
            texts.push((f.display().to_string(), text));
        }
        PolicySet::from_texts(&texts)
    }

    pub fn from_texts(texts: &[(String, String)]) -> Result<PolicySet, Error> {
        let mut by_class = BTreeMap::new();
        for (file, text) in texts {
            let p = Policy::parse(text, file)?;
            if by_class.contains_key(&p.class) {
                return Err(Error::Invalid {
                    file: file.clone(),
                    message: format!("a second policy for class {:?}", p.class),
                });
            }
            by_class.insert(p.class.clone(), p);
        }
        if let Some(missing) = CLASSES.iter().find(|c| !by_class.contains_key(**c)) {
            return Err(Error::Missing((*missing).to_owned()));
        }
        Ok(PolicySet { by_class })
    }

    /// A set kept in the store; classes it lacks come from `files`.
    pub fn from_policies(stored: Vec<Policy>, files: &PolicySet) -> Result<PolicySet, Error> {
        let mut by_class: BTreeMap<String, Policy> = stored.into_iter().map(|p| (p.class.clone(), p)).collect();
        for p in files.all() {
            by_class.entry(p.class.clone()).or_insert_with(|| p.clone());
        }
        if let Some(missing) = CLASSES.iter().find(|c| !by_class.contains_key(**c)) {
            return Err(Error::Missing((*missing).to_owned()));
        }
        Ok(PolicySet { by_class })
    }

    /// Checks that `class`, which `by` (a template, a document type) files pages as, has a
    /// policy.
    pub fn require(&self, class: &str, by: &str) -> Result<(), Error> {
        match self.by_class.contains_key(class) {
            true => Ok(()),
            false => Err(Error::MissingFor { class: class.to_owned(), by: by.to_owned() }),
        }
    }

    pub fn get(&self, class: &str) -> Result<&Policy, Error> {
        self.by_class.get(class).ok_or_else(|| Error::Missing(class.to_owned()))
    }

    pub fn all(&self) -> impl Iterator<Item = &Policy> {
        self.by_class.values()
    }
}

/// The backups' retention policy, kept in the policy folder beside the record policies.
pub const BACKUP_POLICY_FILE: &str = "backup.toml";

/// The policy folder shipped with hozon (`HOZON_POLICIES` overrides).
pub fn default_dir() -> std::path::PathBuf {
    crate::resources::path("HOZON_POLICIES", "retention-policies")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(y: i32, m: u32, dd: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, dd).unwrap()
    }

    fn policy(trigger: &str, fy: bool) -> Policy {
        Policy::parse(
            &format!(
                "class = \"application\"\ntitle = \"t\"\nversion = 1\ntrigger = \"{trigger}\"\nyears = 5\nfrom_fiscal_year_end = {fy}\naction = \"destroy\"\nlegal_basis = \"公債権の消滅時効\"\napprovers = [\"records_officer\", \"records_officer\"]\n"
            ),
            "t.toml",
        )
        .unwrap()
    }

    fn dates(change: NaiveDate) -> RecordDates {
        RecordDates { received: d(2020, 1, 1), last_change: change, decided: None }
    }

    #[test]
    fn fiscal_year_counting_splits_at_1_april() {
        let p = policy("last_change", true);
        assert_eq!(p.retained_until(&dates(d(2021, 3, 31))), Some(d(2026, 3, 31)));
        assert_eq!(p.due_on(&dates(d(2021, 3, 31))), Some(d(2026, 4, 1)));
        assert_eq!(p.retained_until(&dates(d(2021, 4, 1))), Some(d(2027, 3, 31)));
        assert_eq!(p.due_on(&dates(d(2021, 4, 1))), Some(d(2027, 4, 1)));
    }

    #[test]
    fn plain_years_and_leap_days() {
        let p = policy("last_change", false);
        assert_eq!(p.due_on(&dates(d(2021, 6, 15))), Some(d(2026, 6, 15)));
        assert_eq!(p.retained_until(&dates(d(2020, 2, 29))), Some(d(2025, 2, 27)));
        let by_decision = policy("decision", true);
        assert_eq!(by_decision.due_on(&dates(d(2021, 6, 15))), None, "no decision yet: never due");
        let decided = RecordDates { decided: Some(d(2022, 10, 1)), ..dates(d(2021, 6, 15)) };
        assert_eq!(by_decision.due_on(&decided), Some(d(2028, 4, 1)));
    }

    #[test]
    fn bad_policies_are_named() {
        let base = "class = \"application\"\ntitle = \"t\"\nversion = 1\ntrigger = \"last_change\"\nyears = 5\naction = \"destroy\"\nlegal_basis = \"x\"\napprovers = [\"records_officer\", \"records_officer\"]\n";
        let err = |text: &str| Policy::parse(text, "p.toml").unwrap_err().to_string();
        assert!(err(&base.replace("application", "Application")).contains("lower-case letters"));
        // A policy for a class no code knows (a new form's) is accepted.
        assert!(Policy::parse(&base.replace("application", "facility_use"), "p.toml").is_ok());
        assert!(err(&base.replace("years = 5", "years = 4")).contains("years = 4"));
        assert!(err(&base.replace("years = 5", "years = \"five\"")).contains("p.toml"));
        assert!(err(&format!("{base}colour = 1\n")).contains("colour"));
        assert!(
            err(&base.replace("[\"records_officer\", \"records_officer\"]", "[\"records_officer\"]"))
                .contains("two roles")
        );
        assert!(err(&base.replace("trigger = \"last_change\"", "trigger = \"fixed_date\"")).contains("fixed_date"));
        let missing = PolicySet::from_texts(&[("p.toml".into(), base.into())]).unwrap_err();
        assert!(matches!(missing, Error::Missing(_)), "{missing}");
    }

    #[test]
    fn shipped_policies_load() {
        let set = PolicySet::load_dir(&default_dir()).unwrap();
        for class in CLASSES {
            assert!(set.get(class).is_ok(), "{class}");
        }
        assert_eq!(set.get("audit_log").unwrap().years, 7);
        assert_eq!(set.get("application").unwrap().years, 5);
        // Sample records: an application changed in FY2020 is due on 1 April 2026.
        let p = set.get("application").unwrap();
        assert_eq!(p.due_on(&dates(d(2020, 12, 1))), Some(d(2026, 4, 1)));
    }
}

/// How a candidate policy set would move existing records' disposal dates.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Impact {
    /// (record id, class, current due date, new due date), for records whose date moves earlier.
    pub earlier: Vec<(String, String, Option<NaiveDate>, Option<NaiveDate>)>,
    /// Records whose date moves later.
    pub later: usize,
    pub unchanged: usize,
}

/// Compares each record's stored retention with what `candidate` would give it.
pub fn impact<'a>(
    candidate: &PolicySet,
    records: impl Iterator<Item = &'a crate::store::Record>,
) -> Result<Impact, Error> {
    let mut out = Impact::default();
    for r in records {
        let p = candidate.get(&r.class)?;
        let new = p.due_on(&r.dates());
        let old = r.retention.as_ref().and_then(|x| x.due_on);
        // `None` means "not yet due at all", which is later than any date.
        let key = |d: Option<NaiveDate>| d.unwrap_or(NaiveDate::MAX);
        match key(new).cmp(&key(old)) {
            std::cmp::Ordering::Less => out.earlier.push((r.id.to_string(), r.class.clone(), old, new)),
            std::cmp::Ordering::Greater => out.later += 1,
            std::cmp::Ordering::Equal => out.unchanged += 1,
        }
    }
    Ok(out)
}
