//! The central case records in the store. A case is personal data: it is kept sealed under
//! the store's secrets key, bound to its own key, and found only through keyed hashes of its
//! recipient number (受給者番号) and application number (申請整理番号), never by plaintext.

use super::Hozon;
use crate::audit::Event;
use crate::auth::{Actor, Function, Level};
use crate::cases::import::{self, FileError, Mapping, RowError};
use crate::cases::{Case, CaseFields};
use crate::error::{Error, Result};

pub(crate) const CASE: &str = "case";
const BY_APPLICATION: &str = "case_app";
/// My Number keyed hash → case key.
pub(crate) const BY_MY_NUMBER: &str = "case_mn";
/// Blocks for candidate search: `case_dob/<hash of birth date>/<case key>` and
/// `case_kana/<hash of folded reading>/<case key>` (empty values; stale entries are harmless,
/// candidates are always scored on the case as it is now).
pub(crate) const BY_BIRTH: &str = "case_dob";
pub(crate) const BY_KANA: &str = "case_kana";

/// What an import did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ImportReport {
    pub created: usize,
    pub updated: usize,
    pub unchanged: usize,
    pub errors: Vec<RowError>,
}

fn corrupt(e: impl std::fmt::Display) -> Error {
    Error::Corrupt(format!("case: {e}"))
}

impl Hozon {
    pub(crate) fn case_key(&self, recipient_no: &str) -> String {
        self.store.lookup_hash(CASE, recipient_no)
    }

    pub(crate) fn my_number_key(&self, digits: &str) -> String {
        self.store.lookup_hash(BY_MY_NUMBER, digits)
    }

    pub(crate) fn birth_block(&self, birth: chrono::NaiveDate) -> String {
        self.store.lookup_hash(BY_BIRTH, &birth.to_string())
    }

    pub(crate) fn kana_block(&self, kana: &str) -> String {
        self.store.lookup_hash(BY_KANA, &crate::cases::matching::fold(kana))
    }

    /// The sealed case document and its lookup entries, ready for one `put_docs`.
    /// The case is sealed in the key epoch of its retention (class `case_record` × the fiscal
    /// year it falls due, counted from its last 異動), with a fresh key per version, so that
    /// disposing of it leaves no version readable anywhere.
    pub(crate) fn case_docs(&self, key: &str, case: &Case) -> Result<Vec<(String, String, Vec<u8>)>> {
        let json = serde_json::to_vec(case).map_err(corrupt)?;
        let label = match self.case_due(case)? {
            Some(due) => format!("case_record/FY{}", crate::jp::fiscal_year(due)),
            None => "case_record/open".to_owned(),
        };
        let mut items = vec![(CASE.to_owned(), key.to_owned(), self.store.seal_doc(CASE, key, &label, &json)?)];
        // A provisional case merged into the subsidy system's number is no candidate any more.
        if case.merged_into.is_some() {
            return Ok(items);
        }
        if !case.current.application_no.is_empty() {
            let app = self.store.lookup_hash(BY_APPLICATION, &case.current.application_no);
            items.push((BY_APPLICATION.to_owned(), app, key.as_bytes().to_vec()));
        }
        items.push((BY_BIRTH.to_owned(), format!("{}/{key}", self.birth_block(case.current.birth_date)), Vec::new()));
        if !case.current.kana.trim().is_empty() {
            items.push((BY_KANA.to_owned(), format!("{}/{key}", self.kana_block(&case.current.kana)), Vec::new()));
        }
        Ok(items)
    }

    /// Re-seals case records kept from before epoch sealing (sealed with the store's secrets
    /// key) in their epochs; `hozon key rotate` runs this before retiring the master key, so
    /// that no earlier copy of them opens with the key material that remains. Returns how many.
    pub fn migrate_legacy_cases(&self) -> Result<usize> {
        let _epochs = self.store.epoch_write_guard();
        let mut items = Vec::new();
        let mut n = 0;
        for k in self.store.doc_keys(&format!("{CASE}/"))? {
            let key = &k[CASE.len() + 1..];
            if self.store.doc_epochs(CASE, key)?.is_empty()
                && let Some(case) = self.load_case(key)?
            {
                items.extend(self.case_docs(key, &case)?);
                n += 1;
            }
        }
        if n > 0 {
            self.store.put_docs(&items, Event::system("case.migrate_keys", &format!("{n} cases")))?;
        }
        Ok(n)
    }

    pub(crate) fn load_case(&self, key: &str) -> Result<Option<Case>> {
        let Some(json) = self.store.open_doc(CASE, key)? else { return Ok(None) };
        serde_json::from_slice(&json).map(Some).map_err(corrupt)
    }

    /// The first day a case record may be disposed of under the applied `case_record`
    /// policy: counted from its last 異動, or from an officer's extension (延長) if later.
    pub(crate) fn case_due(&self, case: &Case) -> Result<Option<chrono::NaiveDate>> {
        let applied = self.applied_policies();
        let p = applied.get("case_record")?;
        let last = crate::jp::date_of(case.last_change());
        let due = p.due_on(&crate::retention::policy::RecordDates { received: last, last_change: last, decided: None });
        Ok(match (&case.extended, due) {
            (Some(x), Some(d)) => Some(d.max(x.until + chrono::Duration::days(1))),
            (_, d) => d,
        })
    }

    /// Imports the subsidy system's CSV export (UTF-8 or Shift_JIS). Rows are keyed by
    /// recipient number: a new number creates a case, a known one is updated with its old
    /// version kept in the history, an identical one is left alone. Bad rows are reported with
    /// their line; the rest import in one transaction with one audit entry.
    pub fn import_cases(&self, actor: &Actor, bytes: &[u8], source: &str) -> Result<ImportReport> {
        actor.require(Function::Cases, Level::Update)?;
        let mapping = Mapping::load(self.store.root()).map_err(|e| Error::Cases(FileError(e)))?;
        let text = import::decode(bytes)?;
        let parsed = import::parse(&text, &mapping)?;
        self.upsert_cases(actor, parsed.rows.into_iter().map(|(_, r)| r).collect(), source, parsed.errors)
    }

    /// Creates or updates cases (the CSV import and, later, the API share this).
    pub fn upsert_cases(
        &self,
        actor: &Actor,
        rows: Vec<CaseFields>,
        source: &str,
        errors: Vec<RowError>,
    ) -> Result<ImportReport> {
        actor.require(Function::Cases, Level::Update)?;
        let now = chrono::Utc::now();
        let mut report = ImportReport { errors, ..Default::default() };
        let mut pending: std::collections::BTreeMap<String, Case> = std::collections::BTreeMap::new();
        let mut my_numbers = Vec::new();
        for mut row in rows {
            let key = self.case_key(&row.recipient_no);
            if let Some(n) = row.my_number.take() {
                my_numbers.push((BY_MY_NUMBER.to_owned(), self.my_number_key(&n), key.as_bytes().to_vec()));
            }
            let existing = match pending.remove(&key) {
                Some(c) => Some(c),
                None => self.load_case(&key)?,
            };
            let case = match existing {
                None => {
                    report.created += 1;
                    Case::new(row, source, now, false)
                }
                Some(mut c) => {
                    if c.update(row, source, now) {
                        report.updated += 1;
                    } else {
                        report.unchanged += 1;
                    }
                    c
                }
            };
            pending.insert(key, case);
        }
        let _epochs = self.store.epoch_write_guard();
        let mut items = my_numbers;
        for (key, case) in &mut pending {
            // The subsidy system's record replaces a reviewer's provisional one.
            case.provisional = false;
            items.extend(self.case_docs(key, case)?);
        }
        let outcome = format!(
            "created {} updated {} unchanged {} rejected {}",
            report.created,
            report.updated,
            report.unchanged,
            report.errors.len()
        );
        self.store.put_docs(&items, Event::new(actor.name(), "case.import", source, &outcome))?;
        Ok(report)
    }

    /// A case by recipient number (cases=view; audited as a view).
    pub fn case_by_recipient(&self, actor: &Actor, recipient_no: &str) -> Result<Option<Case>> {
        actor.require(Function::Cases, Level::View)?;
        let key = self.case_key(recipient_no);
        let case = self.load_case(&key)?;
        if case.is_some() {
            self.store.audit(Event::new(actor.name(), "case.view", &key, "ok"))?;
        }
        Ok(case)
    }

    /// A case by application number (申請整理番号).
    pub fn case_by_application(&self, actor: &Actor, application_no: &str) -> Result<Option<Case>> {
        actor.require(Function::Cases, Level::View)?;
        let app = self.store.lookup_hash(BY_APPLICATION, application_no);
        let Some(key) = self.store.get_doc(BY_APPLICATION, &app)? else { return Ok(None) };
        let key = String::from_utf8(key).map_err(corrupt)?;
        let case = self.load_case(&key)?;
        if case.is_some() {
            self.store.audit(Event::new(actor.name(), "case.view", &key, "ok"))?;
        }
        Ok(case)
    }
}
