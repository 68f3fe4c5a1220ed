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
pub(crate) const SUSPENSION: &str = "suspension";

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
    /// Near spellings found by the fuzzy tier (listed after the exact hits, marked).
    pub near: usize,
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
    /// Every keyed hash that marks this person's pages (see [`Hozon::person_markers`]),
    /// taken when the suspension was set.
    #[serde(default)]
    markers: Vec<String>,
}

impl Hozon {
    /// The lookup hash that identifies a person in the index: their recipient number.
    pub fn person_key(&self, case_no: &str) -> String {
        self.store.lookup_hash("person", &crate::index::normalise(case_no))
    }

    fn my_number_hash(&self, digits: &str) -> String {
        self.store.lookup_hash("my_number", digits)
    }

    /// The keyed hashes that tie a page (or a case) to a person, whether or not it is linked
    /// yet: the recipient number of its case, the name with the birth date, and each My
    /// Number. A suspension stores the person's set; a page is the person's if the sets meet.
    pub(crate) fn person_markers(
        &self,
        case_no: Option<&str>,
        name_birth: Option<(&str, &str)>,
        my_numbers: &[String],
    ) -> Vec<String> {
        let mut out: Vec<String> = case_no.map(|c| self.person_key(c)).into_iter().collect();
        if let Some((name, birth)) = name_birth {
            let name: String = crate::index::normalise(name).chars().filter(|c| !c.is_whitespace()).collect();
            if !name.is_empty() && !birth.is_empty() {
                out.push(self.store.lookup_hash("person_name_birth", &format!("{name}\u{0}{birth}")));
            }
        }
        // The same keyed hash the case register uses for its My Number lookups (`case_mn`).
        out.extend(my_numbers.iter().map(|n| self.my_number_key(n)));
        out
    }

    /// A page's markers, from its draft (case link, name and birth date, My Number) and the
    /// My Numbers found in its text.
    fn page_markers(&self, draft: Option<&crate::drafts::Draft>, text_numbers: &[String]) -> Vec<String> {
        let value = |name: &str| {
            draft.and_then(|d| d.field(name)).map(|f| f.value_or_raw().to_owned()).filter(|v| !v.is_empty())
        };
        let mut numbers = text_numbers.to_vec();
        numbers.extend(value("my_number").filter(|n| crate::jp::my_number_valid(n)));
        let case_no = draft.and_then(|d| d.case.as_ref()).map(|c| c.recipient_no.clone());
        // Name and birth date only speak for a page not linked yet: once linked, the link says
        // whose it is (a namesake born the same day is someone else).
        let (name, birth) = (value("name"), value("birth_date"));
        let name_birth = name.as_deref().zip(birth.as_deref()).filter(|_| case_no.is_none());
        self.person_markers(case_no.as_deref(), name_birth, &numbers)
    }

    /// The markers of every suspended person (empty for the security officer, who alone
    /// still sees them).
    pub(crate) fn hidden_markers(&self, actor: &Actor) -> Result<Vec<String>> {
        if actor.role() == Some(Role::SecurityOfficer) {
            return Ok(Vec::new());
        }
        let mut out = Vec::new();
        for (person, sealed) in self.store.docs(SUSPENSION)? {
            out.push(person);
            let json = self.store.open_secret(SUSPENSION.as_bytes(), &sealed)?;
            let s: Suspension = serde_json::from_slice(&json).map_err(|e| Error::Corrupt(e.to_string()))?;
            out.extend(s.markers);
        }
        Ok(out)
    }

    /// The one check for page content, used by every route that returns any of it (page view,
    /// image, text, draft, review screen, field images): a suspended person's page is
    /// invisible to all but the security officer, linked or not; a page showing a My Number
    /// (the 個人番号調書, or any page whose text or draft carries a valid number) only to
    /// users with the My Number right, unless `masked_ok` (the review screen, which masks).
    pub(crate) fn check_page_access(&self, actor: &Actor, rec: &Record, masked_ok: bool) -> Result<()> {
        let hidden = self.hidden_markers(actor)?;
        let p = self.page_person(rec, &hidden)?;
        let not_found = || Error::NotFound(rec.id.to_string());
        if p.suspended {
            return Err(not_found());
        }
        let draft_number = p
            .draft
            .as_ref()
            .and_then(|d| d.field("my_number"))
            .is_some_and(|f| crate::jp::my_number_valid(f.value_or_raw()));
        let shows_my_number = !p.text_numbers.is_empty() || draft_number || self.kind_shows_my_number(rec, &p.text);
        if shows_my_number && !actor.rights().my_number && !masked_ok {
            return Err(not_found());
        }
        Ok(())
    }

    /// Whether a page shows a My Number by what it is, whatever was read on it: its class is
    /// a My Number form's (the 個人番号調書, or any template with a My Number field), its
    /// document type carries one, or, not filed yet, its text suggests such a type.
    pub(crate) fn kind_shows_my_number(&self, rec: &Record, text: &str) -> bool {
        use crate::forms::template::FieldType;
        rec.class == "my_number_form"
            || self
                .forms
                .iter()
                .any(|t| t.class() == rec.class && t.fields.iter().any(|f| f.kind == FieldType::MyNumber))
            || self.type_shows_my_number(rec)
            || (rec.class == crate::store::UNCLASSIFIED
                && crate::forms::doctypes::suggest(&self.doc_types, text).is_some_and(|t| t.my_number))
    }

    /// A page's draft, text, the My Numbers in its text, and whether it belongs to a person
    /// whose markers are in `hidden`.
    fn page_person(&self, rec: &Record, hidden: &[String]) -> Result<PagePerson> {
        let text = self.stored_text(rec)?;
        let (_, text_numbers) = crate::index::scrub_my_numbers(&crate::index::normalise(&text));
        let draft = self.draft_of(rec)?;
        let suspended = self.page_markers(draft.as_ref(), &text_numbers).iter().any(|m| hidden.contains(m));
        Ok(PagePerson { draft, text, text_numbers, suspended })
    }

    /// Whether `actor` is kept from the page by a suspension (for lists such as the review
    /// queue; `hidden` from one [`Hozon::hidden_markers`] call for the whole list).
    pub(crate) fn suspended_for(&self, rec: &Record, hidden: &[String]) -> Result<bool> {
        if hidden.is_empty() {
            return Ok(false);
        }
        Ok(self.page_person(rec, hidden)?.suspended)
    }

    /// What `actor` may see in the index.
    fn scope_of(&self, actor: &Actor) -> Result<Scope> {
        Ok(Scope { my_number: actor.rights().my_number, hidden_persons: self.hidden_markers(actor)? })
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
            near: opts.sort == crate::index::Sort::Relevance,
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
        self.store.audit(Event::new(actor.name(), "search", &summary, "ok"))?;
        Ok(SearchOutcome { total: found.total, results, facets: found.facets, near: found.near })
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
            by: actor.name().to_owned(),
            at: chrono::Utc::now(),
            reason: reason.to_owned(),
            markers: self.case_markers(case_no)?,
        };
        let json = serde_json::to_vec(&s).map_err(|e| Error::Corrupt(e.to_string()))?;
        let sealed = self.store.seal_secret(SUSPENSION.as_bytes(), &json);
        self.store.put_doc(SUSPENSION, &person, &sealed, Event::new(actor.name(), "person.suspend", &person, "ok"))?;
        Ok(())
    }

    /// A suspension of the person of case `from` also holds for case `to` (a provisional case
    /// merged into the number the subsidy system assigned): the same reason, the markers of
    /// both. Nothing if `from` is not suspended.
    pub(crate) fn carry_suspension(&self, actor: &Actor, from: &str, to: &str) -> Result<()> {
        let Some(sealed) = self.store.get_doc(SUSPENSION, &self.person_key(from))? else { return Ok(()) };
        let json = self.store.open_secret(SUSPENSION.as_bytes(), &sealed)?;
        let old: Suspension = serde_json::from_slice(&json).map_err(|e| Error::Corrupt(e.to_string()))?;
        let mut markers = old.markers;
        markers.extend(self.case_markers(to)?);
        markers.sort();
        markers.dedup();
        let s = Suspension {
            case_no: to.to_owned(),
            by: actor.name().to_owned(),
            at: chrono::Utc::now(),
            reason: format!("{}（仮登録 {from} から引継ぎ）", old.reason),
            markers,
        };
        let json = serde_json::to_vec(&s).map_err(|e| Error::Corrupt(e.to_string()))?;
        let person = self.person_key(to);
        let sealed = self.store.seal_secret(SUSPENSION.as_bytes(), &json);
        self.store.put_doc(
            SUSPENSION,
            &person,
            &sealed,
            Event::new(actor.name(), "person.suspend", &person, "carried"),
        )?;
        Ok(())
    }

    /// The markers of the person of case `case_no`: from the case record (name, birth date,
    /// My Number) and from the drafts of the pages linked to it (their My Numbers).
    fn case_markers(&self, case_no: &str) -> Result<Vec<String>> {
        let key = self.case_key(case_no);
        let Some(case) = self.load_case(&key)? else {
            return Ok(self.person_markers(Some(case_no), None, &[]));
        };
        let c = &case.current;
        let mut numbers: Vec<String> = c.my_number.iter().cloned().collect();
        for id in self.case_page_ids(&key)? {
            let Some(rec) = self.store.record(&id)? else { continue };
            if let Ok(Some(d)) = self.draft_of(&rec)
                && let Some(n) = d.field("my_number").map(|f| f.value_or_raw().to_owned())
                && crate::jp::my_number_valid(&n)
            {
                numbers.push(n);
            }
        }
        let birth = c.birth_date.to_string();
        // Name and birth date mark the person only if no other case has both (a namesake
        // born the same day would otherwise vanish from the reviewers' work with them).
        let fold = |n: &str| crate::index::normalise(n).chars().filter(|ch| !ch.is_whitespace()).collect::<String>();
        let mut namesake = false;
        let block = format!("{}/{}", super::cases::BY_BIRTH, self.birth_block(c.birth_date));
        for (other, _) in self.store.docs(&block)? {
            if other != key && self.load_case(&other)?.is_some_and(|o| fold(&o.current.name) == fold(&c.name)) {
                namesake = true;
            }
        }
        let name_birth = (!namesake).then_some((c.name.as_str(), birth.as_str()));
        let mut markers = self.person_markers(Some(case_no), name_birth, &numbers);
        // The register's own My Number (kept only as its lookup hash) marks the person too.
        for (mn_key, case) in self.store.docs(crate::app::cases::BY_MY_NUMBER)? {
            if case == key.as_bytes() {
                markers.push(mn_key);
            }
        }
        Ok(markers)
    }

    /// Lifts a suspension; false if the person was not suspended. Needs cases=update, or the
    /// security officer (the one person who still sees a suspended case).
    pub fn lift_suspension(&self, actor: &Actor, case_no: &str) -> Result<bool> {
        if actor.role() != Some(Role::SecurityOfficer) {
            actor.require(Function::Cases, Level::Update)?;
        }
        let person = self.person_key(case_no);
        Ok(self.store.delete_doc(SUSPENSION, &person, Event::new(actor.name(), "person.unsuspend", &person, "ok"))?)
    }

    /// The index document of a stored page: its text with My Numbers replaced by their keyed
    /// hashes, its form from the record's class, and from its draft (if the page was
    /// recognised) the name, reading, birth date, municipality, disease and My Number.
    pub fn index_doc(&self, rec: &Record, text: &str, draft: Option<&crate::drafts::Draft>) -> Doc {
        let (text, mut numbers) = crate::index::scrub_my_numbers(&crate::index::normalise(text));
        let value = |name: &str| {
            draft.and_then(|d| d.field(name)).map(|f| f.value_or_raw().to_owned()).filter(|v| !v.is_empty())
        };
        if let Some(n) = value("my_number").filter(|n| crate::jp::my_number_valid(n)) {
            numbers.push(n);
        }
        let markers = self.page_markers(draft, &numbers);
        Doc {
            markers,
            shows_my_number: !numbers.is_empty() || self.kind_shows_my_number(rec, &text),
            my_numbers: numbers.iter().map(|n| self.my_number_hash(n)).collect(),
            // A filed attachment is found by its type (様式:住民票の写し).
            form: rec.doc_type.clone().unwrap_or_else(|| rec.class.clone()),
            name: value("name"),
            kana: value("kana"),
            birth: value("birth_date").and_then(|b| b.parse().ok()),
            city: value("address").and_then(|a| municipality(&a)),
            disease: value("disease"),
            case_no: draft.and_then(|d| d.case.as_ref()).map(|c| c.recipient_no.clone()),
            person: draft.and_then(|d| d.case.as_ref()).map(|c| self.person_key(&c.recipient_no)),
            ..Doc::page(rec.id.as_str(), &text, rec.received_at)
        }
    }

    /// The index document of a stored page, from its sealed text and draft.
    pub fn index_doc_of(&self, rec: &Record) -> Result<Doc> {
        let text = self.store.read_blob(rec, BlobRole::Text)?;
        let draft = self.draft_of(rec)?;
        Ok(self.index_doc(rec, &String::from_utf8_lossy(&text), draft.as_ref()))
    }

    /// The draft of a recognised page (`None` for an unclassified one).
    pub(crate) fn draft_of(&self, rec: &Record) -> Result<Option<crate::drafts::Draft>> {
        if !rec.blobs.iter().any(|b| b.role == BlobRole::Draft) {
            return Ok(None);
        }
        let json = self.store.read_blob(rec, BlobRole::Draft)?;
        serde_json::from_slice(&json).map(Some).map_err(|e| Error::Corrupt(format!("draft of {}: {e}", rec.id)))
    }

    /// A recognised page's draft, audited as a view. Needs drafts=view; without the My Number
    /// right the My Number is masked (`****-****-1234`) before it leaves here.
    pub fn draft(&self, actor: &Actor, id: &RecordId) -> Result<Option<crate::drafts::Draft>> {
        actor.require(Function::Drafts, Level::View)?;
        let rec = self.visible_page(actor, id)?;
        let mut draft = self.draft_of(&rec)?;
        if !actor.rights().my_number
            && let Some(d) = &mut draft
        {
            d.mask_my_numbers();
        }
        self.store.audit(Event::new(actor.name(), "draft.view", id.as_str(), "ok"))?;
        Ok(draft)
    }

    /// Rebuilds the search index from the stored text. `progress` is called per record.
    /// Makes the index match the stored pages (after a restore): documents of records that
    /// are not stored pages go, stored pages without a document are indexed. Returns (removed,
    /// added).
    pub fn repair_index(&self, actor: &Actor) -> Result<(usize, usize)> {
        actor.require(Function::Search, Level::Update)?;
        let stored: std::collections::HashMap<String, Record> = self
            .store
            .records()
            .filter(|r| r.as_ref().map_or(true, |r| r.state == RecordState::Stored && r.kind == RecordKind::Page))
            .map(|r| r.map(|r| (r.id.to_string(), r)))
            .collect::<std::result::Result<_, _>>()?;
        let indexed: std::collections::HashSet<String> = self.index.record_ids()?.into_iter().collect();
        let extra: Vec<String> = indexed.iter().filter(|id| !stored.contains_key(*id)).cloned().collect();
        if !extra.is_empty() {
            self.index.forget(&extra)?;
            // Their text leaves the segment files too, not just the results.
            self.index.compact()?;
        }
        let missing: Vec<&Record> = stored.iter().filter(|(id, _)| !indexed.contains(*id)).map(|(_, r)| r).collect();
        for chunk in missing.chunks(500) {
            let docs = chunk.iter().map(|r| self.index_doc_of(r)).collect::<Result<Vec<_>>>()?;
            self.index.put_many(&docs)?;
        }
        self.store.audit(Event::new(
            actor.name(),
            "index.repair",
            &format!("{} removed, {} added", extra.len(), missing.len()),
            "ok",
        ))?;
        Ok((extra.len(), missing.len()))
    }

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
                docs.push(self.index_doc_of(rec)?);
            }
            self.index.put_many(&docs)?;
            progress(n * BATCH + chunk.len(), pages.len());
        }
        self.index.mark_current()?;
        self.store.audit(Event::system("index.rebuild", &format!("{} records", pages.len())))?;
        Ok(pages.len())
    }

    /// The index was built in an older format (see [`crate::index::FORMAT`]) and must be
    /// rebuilt ([`Hozon::reindex`]) before its answers can be trusted.
    pub fn index_outdated(&self) -> bool {
        self.index.outdated()
    }
}

/// The municipality (区市町村) of a Tokyo address: `東京都新宿区西新宿…` → 新宿区.
fn municipality(address: &str) -> Option<String> {
    let rest = address.trim().strip_prefix("東京都").unwrap_or(address.trim());
    // 西多摩郡瑞穂町: a county's town or village; 町田市, 武蔵村山市: the first 区 or 市 wins over
    // a 町 or 村 inside the name; 大島町: a town.
    let end = if rest.contains('郡') {
        rest.find(['町', '村'])
    } else {
        rest.find(['区', '市']).or_else(|| rest.find(['町', '村']))
    }? + '区'.len_utf8();
    Some(rest[..end].to_owned())
}

/// What [`Hozon::check_page_access`] needs to know about a page.
struct PagePerson {
    draft: Option<crate::drafts::Draft>,
    text: String,
    text_numbers: Vec<String>,
    suspended: bool,
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
            near: false,
        }
    }

    #[test]
    fn municipality_of_an_address() {
        assert_eq!(municipality("東京都新宿区西新宿2丁目8番1号").as_deref(), Some("新宿区"));
        assert_eq!(municipality("東京都八王子市元本郷町3丁目").as_deref(), Some("八王子市"));
        assert_eq!(municipality("東京都西多摩郡瑞穂町箱根ケ崎").as_deref(), Some("西多摩郡瑞穂町"));
        assert_eq!(municipality("東京都町田市原町田1丁目").as_deref(), Some("町田市"));
        assert_eq!(municipality("東京都武蔵村山市本町").as_deref(), Some("武蔵村山市"));
        assert_eq!(municipality("東京都大島町元町").as_deref(), Some("大島町"));
        assert_eq!(municipality("住所不明"), None);
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
