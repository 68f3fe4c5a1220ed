//! Searching the archive as a user: the user's rights become the index [`Scope`] (so what they
//! may not see is missing from hits, totals and facets alike), suspensions (閲覧停止) hide a
//! person from everyone but the security officer, and every search is audited without its
//! query text (it may be a name).

use serde::{Deserialize, Serialize};

use super::Hozon;
use crate::audit::Event;
use crate::auth::{Actor, Function, Level, Role};
use crate::error::{Error, Result};
use crate::index::{Doc, FacetCounts, Hit, Request, Scope, Sort};
use crate::store::{BlobRole, Record, RecordId, RecordKind, RecordState};

/// Document kind under which suspensions are stored (id = the person's lookup hash).
const SUSPENSION: &str = "suspension";

#[derive(Debug, Clone)]
pub struct SearchOptions {
    pub query: String,
    pub sort: Sort,
    pub limit: usize,
    pub offset: usize,
    pub facets: bool,
}

impl SearchOptions {
    pub fn new(query: &str, limit: usize) -> SearchOptions {
        SearchOptions { query: query.to_owned(), sort: Sort::Relevance, limit, offset: 0, facets: false }
    }
}

#[derive(Debug, Clone)]
pub struct SearchOutcome {
    /// Matching documents the user may see (not just the ones on this page).
    pub total: usize,
    /// Stored pages only; each `record_id` is a valid [`RecordId`].
    pub results: Vec<Hit>,
    pub facets: Vec<FacetCounts>,
}

/// Results of one case together (documents without a case each form their own group).
#[derive(Debug, Clone)]
pub struct CaseGroup {
    pub case_no: Option<String>,
    pub name: Option<String>,
    pub results: Vec<Hit>,
}

/// Groups results by case, keeping the order of each case's best result.
pub fn group_by_case(results: Vec<Hit>) -> Vec<CaseGroup> {
    let mut groups: Vec<CaseGroup> = Vec::new();
    for r in results {
        match groups.iter_mut().find(|g| g.case_no.is_some() && g.case_no == r.case_no) {
            Some(g) => g.results.push(r),
            None => groups.push(CaseGroup { case_no: r.case_no.clone(), name: r.name.clone(), results: vec![r] }),
        }
    }
    groups
}

/// A suspension of one person (閲覧停止／不開示): who set it, when and why (the reason is sealed).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Suspension {
    case_no: String,
    by: String,
    at: chrono::DateTime<chrono::Utc>,
    reason: String,
}

impl Hozon {
    /// The lookup hash that identifies a person in the index: their recipient number.
    pub fn person_key(&self, case_no: &str) -> String {
        self.store.lookup_hash("person", &crate::index::normalise(case_no))
    }

    fn my_number_hash(&self, digits: &str) -> String {
        self.store.lookup_hash("my_number", digits)
    }

    /// What `actor` may see in the index.
    fn scope_of(&self, actor: &Actor) -> Result<Scope> {
        let hidden_persons = if actor.role == Some(Role::SecurityOfficer) {
            Vec::new()
        } else {
            self.store.docs(SUSPENSION)?.into_iter().map(|(person, _)| person).collect()
        };
        Ok(Scope { my_number: actor.rights.my_number, hidden_persons })
    }

    /// Full-text search over stored pages, within what `actor` may see.
    pub fn search(&self, actor: &Actor, opts: &SearchOptions) -> Result<SearchOutcome> {
        actor.require(Function::Search, Level::View)?;
        let scope = self.scope_of(actor)?;
        let hash = |d: &str| self.my_number_hash(d);
        let found = self.index.search(&Request {
            query: &opts.query,
            scope: &scope,
            sort: opts.sort,
            limit: opts.limit,
            offset: opts.offset,
            facets: opts.facets,
            snippets: true,
            count: true,
            hash_my_number: &hash,
        })?;
        let mut results = Vec::with_capacity(found.hits.len());
        for h in found.hits {
            let Some(id) = RecordId::parse(&h.record_id) else {
                continue;
            };
            // A page being written (pending) or disposed of (shredding) is not shown.
            match self.store.record(&id)? {
                Some(rec) if rec.state == RecordState::Stored && rec.kind == RecordKind::Page => {}
                _ => continue,
            }
            results.push(h);
        }
        let summary = format!("{} of {} results", results.len(), found.total);
        self.store.audit(Event::new(&actor.name, "search", &summary, "ok"))?;
        Ok(SearchOutcome { total: found.total, results, facets: found.facets })
    }

    /// How many pages `actor` may see in all.
    pub fn visible_pages(&self, actor: &Actor) -> Result<usize> {
        actor.require(Function::Search, Level::View)?;
        Ok(self.index.visible_docs(&self.scope_of(actor)?)?)
    }

    /// Hides the person of case `case_no` from search and lists for everyone but the security
    /// officer (閲覧停止). Needs cases=update; audited.
    pub fn suspend(&self, actor: &Actor, case_no: &str, reason: &str) -> Result<()> {
        actor.require(Function::Cases, Level::Update)?;
        if reason.trim().is_empty() {
            return Err(Error::Run(crate::retention::run::RunError::NoReason));
        }
        let person = self.person_key(case_no);
        let s = Suspension {
            case_no: case_no.to_owned(),
            by: actor.name.clone(),
            at: chrono::Utc::now(),
            reason: reason.to_owned(),
        };
        let json = serde_json::to_vec(&s).map_err(|e| Error::Corrupt(e.to_string()))?;
        let sealed = self.store.seal_secret(SUSPENSION.as_bytes(), &json);
        self.store.put_doc(SUSPENSION, &person, &sealed, Event::new(&actor.name, "person.suspend", &person, "ok"))?;
        Ok(())
    }

    /// Lifts a suspension; false if the person was not suspended.
    pub fn lift_suspension(&self, actor: &Actor, case_no: &str) -> Result<bool> {
        actor.require(Function::Cases, Level::Update)?;
        let person = self.person_key(case_no);
        Ok(self.store.delete_doc(SUSPENSION, &person, Event::new(&actor.name, "person.unsuspend", &person, "ok"))?)
    }

    /// The index document of a stored page: its text with My Numbers replaced by their keyed
    /// hashes, its form from the record's class.
    pub fn index_doc(&self, rec: &Record, text: &str) -> Doc {
        let (text, numbers) = crate::index::scrub_my_numbers(&crate::index::normalise(text));
        Doc {
            shows_my_number: rec.class == "my_number_form" || !numbers.is_empty(),
            my_numbers: numbers.iter().map(|n| self.my_number_hash(n)).collect(),
            form: rec.class.clone(),
            ..Doc::page(rec.id.as_str(), &text, rec.received_at)
        }
    }

    /// Rebuilds the search index from the stored text. `progress` is called per record.
    pub fn reindex(&self, actor: &Actor, mut progress: impl FnMut(usize, usize)) -> Result<usize> {
        actor.require(Function::Search, Level::Update)?;
        let pages: Vec<Record> = self
            .store
            .records()
            .filter(|r| r.as_ref().map_or(true, |r| r.state == RecordState::Stored && r.kind == RecordKind::Page))
            .collect::<std::result::Result<_, _>>()?;
        self.index.clear()?;
        const BATCH: usize = 500;
        for (n, chunk) in pages.chunks(BATCH).enumerate() {
            let mut docs = Vec::with_capacity(chunk.len());
            for rec in chunk {
                let text = self.store.read_blob(rec, BlobRole::Text)?;
                docs.push(self.index_doc(rec, &String::from_utf8_lossy(&text)));
            }
            self.index.put_many(&docs)?;
            progress(n * BATCH + chunk.len(), pages.len());
        }
        self.store.audit(Event::system("index.rebuild", &format!("{} records", pages.len())))?;
        Ok(pages.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(case: Option<&str>, id: u8) -> Hit {
        Hit {
            record_id: format!("{id:032x}"),
            score: 1.0,
            received: chrono::Utc::now(),
            form: "scan".into(),
            case_no: case.map(str::to_owned),
            name: None,
            status: None,
            snippet_html: String::new(),
        }
    }

    #[test]
    fn grouping_keeps_best_first_and_loose_pages_apart() {
        let groups = group_by_case(vec![
            result(Some("1"), 1),
            result(None, 2),
            result(Some("2"), 3),
            result(Some("1"), 4),
            result(None, 5),
        ]);
        let shape: Vec<(Option<&str>, usize)> =
            groups.iter().map(|g| (g.case_no.as_deref(), g.results.len())).collect();
        assert_eq!(shape, vec![(Some("1"), 2), (None, 1), (Some("2"), 1), (None, 1)]);
    }
}
