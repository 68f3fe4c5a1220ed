//! Linking pages to their central case (受給者台帳). In order of trust: a recipient or
//! application number read from the page; the page's My Number, through its keyed hash; the
//! other sheet of the same application; else candidates found through keyed-hash blocks on the
//! birth date and reading, scored on name, reading, birth date and address
//! (`cases::matching`). Only an exact or unambiguous match links without a person; otherwise
//! a reviewer picks a candidate or makes a provisional case for a new applicant.

use super::Hozon;
use super::cases::{BY_BIRTH, BY_KANA, BY_MY_NUMBER};
use crate::audit::Event;
use crate::auth::{Actor, Function, Level, Role};
use crate::cases::matching::{self, Candidate, Probe};
use crate::cases::{Case, CaseFields, CaseLink, CaseStatus, LinkMethod};
use crate::drafts::Draft;
use crate::error::{Error, Result};
use crate::store::{BlobRole, Record, RecordId};

/// Case key → record ids of its pages: `case_pages/<case key>/<record id>`.
pub(crate) const CASE_PAGES: &str = "case_pages";

/// What the store knows about a page's case.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CaseMatch {
    /// A number on the page (or its other sheet) names the case.
    pub exact: Option<(String, LinkMethod)>,
    /// Otherwise: cases that may be the page's, best first, with reasons.
    pub candidates: Vec<Candidate>,
}

impl CaseMatch {
    /// The link to make without asking, if there is one.
    pub fn automatic(&self) -> Option<(String, LinkMethod)> {
        if let Some(e) = &self.exact {
            return Some(e.clone());
        }
        matching::unambiguous(&self.candidates)
            .map(|c| (c.recipient_no.clone(), LinkMethod::Matched { score: c.score }))
    }
}

fn corrupt(e: impl std::fmt::Display) -> Error {
    Error::Corrupt(format!("case link: {e}"))
}

/// What a page says about its person, for scoring.
pub fn probe(d: &Draft) -> Probe {
    let v = |n: &str| d.field(n).map(|f| f.value_or_raw().to_owned()).unwrap_or_default();
    Probe { name: v("name"), kana: v("kana"), birth_date: v("birth_date").parse().ok(), address: v("address") }
}

impl Hozon {
    fn case_by_key(&self, key: &str) -> Result<Option<String>> {
        Ok(self.load_case(key)?.map(|c| c.current.recipient_no))
    }

    /// Finds the page's case (no rights check: callers check theirs).
    pub(crate) fn match_draft(&self, d: &Draft) -> Result<CaseMatch> {
        let v = |n: &str| d.field(n).map(|f| f.value.clone()).filter(|v| !v.is_empty());
        if let Some(no) = v("recipient_no")
            && self.load_case(&self.case_key(&no))?.is_some()
        {
            return Ok(CaseMatch { exact: Some((no, LinkMethod::RecipientNumber)), candidates: Vec::new() });
        }
        if let Some(app) = v("application_no")
            && let Some(key) = self.store.get_doc("case_app", &self.store.lookup_hash("case_app", &app))?
            && let Some(no) = self.case_by_key(&String::from_utf8_lossy(&key))?
        {
            return Ok(CaseMatch { exact: Some((no, LinkMethod::ApplicationNumber)), candidates: Vec::new() });
        }
        if let Some(n) = v("my_number").filter(|n| crate::jp::my_number_valid(n))
            && let Some(key) = self.store.get_doc(BY_MY_NUMBER, &self.my_number_key(&n))?
            && let Some(no) = self.case_by_key(&String::from_utf8_lossy(&key))?
        {
            return Ok(CaseMatch { exact: Some((no, LinkMethod::MyNumber)), candidates: Vec::new() });
        }
        if let Some(other) = d.pair.as_deref().and_then(RecordId::parse)
            && let Some(rec) = self.store.record(&other)?
            && let Some(link) = self.draft_of(&rec)?.and_then(|o| o.case)
        {
            return Ok(CaseMatch { exact: Some((link.recipient_no, LinkMethod::OtherSheet)), candidates: Vec::new() });
        }
        let p = probe(d);
        let mut keys = std::collections::BTreeSet::new();
        if let Some(b) = p.birth_date {
            keys.extend(self.store.docs(&format!("{BY_BIRTH}/{}", self.birth_block(b)))?.into_iter().map(|(k, _)| k));
        }
        if !p.kana.trim().is_empty() {
            keys.extend(
                self.store.docs(&format!("{BY_KANA}/{}", self.kana_block(&p.kana)))?.into_iter().map(|(k, _)| k),
            );
        }
        let mut cands = Vec::new();
        for key in keys {
            if let Some(c) = self.load_case(&key)? {
                cands.push(matching::score(&p, &c.current));
            }
        }
        Ok(CaseMatch { exact: None, candidates: matching::rank(cands) })
    }

    /// The case match of a page, for the reviewer (review=view).
    pub fn case_match(&self, actor: &Actor, id: &RecordId) -> Result<CaseMatch> {
        actor.require(Function::Review, Level::View)?;
        let rec = self.review_record(actor, id)?;
        let d = self.draft_of(&rec)?.ok_or_else(|| Error::NotFound(id.to_string()))?;
        self.match_for(actor, self.match_draft(&d)?)
    }

    /// `m` as `actor` may see it. The link saving will make is decided first, on every case
    /// (so hiding a person never steers a page to someone else), and kept as `exact`; then the
    /// candidates of suspended persons are dropped (hidden from every list but the security
    /// officer's), and a suspended person's number is not shown (empty).
    pub(crate) fn match_for(&self, actor: &Actor, m: CaseMatch) -> Result<CaseMatch> {
        if actor.role() == Some(Role::SecurityOfficer) {
            return Ok(m);
        }
        let exact = match m.automatic() {
            Some((no, how)) if self.suspended(&no)? => Some((String::new(), how)),
            other => other,
        };
        let mut candidates = Vec::new();
        for c in m.candidates {
            if !self.suspended(&c.recipient_no)? {
                candidates.push(c);
            }
        }
        Ok(CaseMatch { exact, candidates })
    }

    /// Writes `link` into the page's draft (sealed), notes the page under its case, lets the
    /// case be found by the page's My Number from now on, and re-indexes the page under the
    /// case's recipient number (so a suspension of the person hides it).
    pub(crate) fn write_link(&self, rec: &Record, mut d: Draft, link: CaseLink) -> Result<Record> {
        let key = self.case_key(&link.recipient_no);
        let mut case = self.load_case(&key)?.ok_or_else(|| Error::NotFound(format!("case {key}")))?;
        if let Some(no) = &case.merged_into {
            return Err(Error::Invalid(format!(
                "この仮登録は受給者番号 {no} に統合済みです。統合先に紐付けてください"
            )));
        }
        // A page linked is an 異動 of the case: its retention clock starts again.
        case.touch(chrono::Utc::now());
        let guard = self.store.epoch_write_guard();
        let mut items = self.case_docs(&key, &case)?;
        items.push((CASE_PAGES.to_owned(), format!("{key}/{}", rec.id), Vec::new()));
        if let Some(n) = d.field("my_number").map(|f| f.value.clone()).filter(|n| crate::jp::my_number_valid(n)) {
            items.push((BY_MY_NUMBER.to_owned(), self.my_number_key(&n), key.as_bytes().to_vec()));
        }
        let who = link.by.clone();
        let how = serde_json::to_string(&link.how).map_err(corrupt)?;
        self.store.put_docs(&items, Event::new(&who, "case.link", rec.id.as_str(), &how))?;
        drop(guard);
        d.case = Some(link);
        let json = serde_json::to_vec(&d).map_err(corrupt)?;
        let updated = self.store.replace_blobs(
            rec,
            &[(BlobRole::Draft, &json)],
            Event::new(&who, "draft.link", rec.id.as_str(), "ok"),
        )?;
        let text = self.store.read_blob(&updated, BlobRole::Text)?;
        self.index.put(&self.index_doc(&updated, &String::from_utf8_lossy(&text), Some(&d)))?;
        Ok(updated)
    }

    /// A reviewer links a page to the case `recipient_no` (review=update).
    pub fn link_page(&self, actor: &Actor, id: &RecordId, recipient_no: &str) -> Result<()> {
        actor.require(Function::Review, Level::Update)?;
        let rec = self.review_record(actor, id)?;
        let d = self.draft_of(&rec)?.ok_or_else(|| Error::NotFound(id.to_string()))?;
        let link = CaseLink {
            recipient_no: recipient_no.to_owned(),
            how: LinkMethod::Reviewer,
            by: actor.name().to_owned(),
            at: chrono::Utc::now(),
        };
        self.write_link(&rec, d, link)?;
        Ok(())
    }

    /// A new applicant: a provisional case (仮登録, recipient number `9` + date + sequence, so it
    /// never collides with the subsidy system's) made from the page, and the page linked to it.
    /// The subsidy system's record replaces it when imported under the real number.
    pub fn provisional_case(&self, actor: &Actor, id: &RecordId) -> Result<String> {
        actor.require(Function::Review, Level::Update)?;
        actor.require(Function::Cases, Level::Update)?;
        let rec = self.review_record(actor, id)?;
        let d = self.draft_of(&rec)?.ok_or_else(|| Error::NotFound(id.to_string()))?;
        if d.case.is_some() {
            return Err(Error::Review(crate::drafts::review::ReviewError::AlreadyLinked));
        }
        let p = probe(&d);
        let birth_date = p.birth_date.ok_or_else(|| {
            Error::Review(crate::drafts::review::ReviewError::Required { label: "生年月日".into() })
        })?;
        let now = chrono::Utc::now();
        let prefix = format!("9{}", now.format("%Y%m%d"));
        let mut seq = 1;
        let recipient_no = loop {
            let no = format!("{prefix}{seq:04}");
            if self.load_case(&self.case_key(&no))?.is_none() {
                break no;
            }
            seq += 1;
        };
        let v = |n: &str| d.field(n).map(|f| f.value_or_raw().to_owned()).unwrap_or_default();
        let case = Case::new(
            CaseFields {
                recipient_no: recipient_no.clone(),
                application_no: String::new(),
                name: p.name,
                kana: p.kana,
                birth_date,
                address: p.address,
                disease: v("disease"),
                valid_from: None,
                valid_to: None,
                status: CaseStatus::Received,
                my_number: None,
            },
            &format!("仮登録 {}", actor.name()),
            now,
            true,
        );
        let key = self.case_key(&recipient_no);
        {
            let _epochs = self.store.epoch_write_guard();
            self.store
                .put_docs(&self.case_docs(&key, &case)?, Event::new(actor.name(), "case.provisional", &key, "ok"))?;
        }
        let link = CaseLink {
            recipient_no: recipient_no.clone(),
            how: LinkMethod::Provisional,
            by: actor.name().to_owned(),
            at: now,
        };
        self.write_link(&rec, d, link)?;
        Ok(recipient_no)
    }

    /// The record ids of a case's pages.
    pub(crate) fn case_page_ids(&self, key: &str) -> Result<Vec<RecordId>> {
        Ok(self
            .store
            .docs(&format!("{CASE_PAGES}/{key}"))?
            .into_iter()
            .filter_map(|(id, _)| RecordId::parse(&id))
            .collect())
    }
}
