//! index/: "which documents mention this?" The tantivy schema, Japanese tokenisers, the query
//! language, filters, facets and snippets. The index lives in the store's encrypted directory,
//! so its terms and stored text never reach the disk in the clear.
//!
//! One tantivy document per stored page ([`Doc`]). Fields: `text` (bigrams with positions,
//! stored for snippets), `name` (name + kana), `city`, `disease` (bigram fields for
//! `field:value`), exact keys `record_id`, `case_no`, `form`, `status`, the receipt time and
//! birth date as numbers for ranges and sorting, a facet field for the side panel, and two
//! fields that hold only keyed hashes: `person` (for suspension) and `mn` (My Numbers; the
//! number itself is scrubbed from the text, so it is found by exact match only, by users
//! with the right).
//!
//! Permission filtering happens inside the query ([`Scope`]), so hidden documents are
//! missing from the hits, the total and the facet counts alike.

pub mod dates;
mod exclude;
pub mod fold;
pub mod near;
pub mod query;
pub mod tokenizer;
pub mod vocab;

use std::ops::Bound;
use std::sync::Mutex;

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use tantivy::collector::{Count, FacetCollector, TopDocs};
use tantivy::query::{AllQuery, BooleanQuery, Occur, PhraseQuery, Query, RangeQuery, TermQuery, TermSetQuery};
use tantivy::schema::{
    FAST, Facet, FacetOptions, Field, INDEXED, IndexRecordOption, STORED, STRING, Schema, TextFieldIndexing,
    TextOptions, Value,
};
use tantivy::snippet::SnippetGenerator;
use tantivy::{DocAddress, Index, IndexReader, IndexWriter, Order, ReloadPolicy, Searcher, TantivyDocument, Term};
use unicode_normalization::UnicodeNormalization;

use crate::store::index_dir::EncryptedDirectory;
use query::{FieldName, Problem};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("search index")]
    Tantivy(#[from] tantivy::TantivyError),
    #[error(transparent)]
    Query(#[from] Problem),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Clone, Copy)]
struct Fields {
    record_id: Field,
    case_no: Field,
    person: Field,
    access: Field,
    form: Field,
    status: Field,
    mn: Field,
    text: Field,
    name: Field,
    city: Field,
    disease: Field,
    received: Field,
    birth: Field,
    facets: Field,
}

pub struct SearchIndex {
    /// The encrypted directory under the index (absent for the plain one benchmarks build),
    /// kept for re-sealing its files when the index key rotates.
    sealed: Option<crate::store::index_dir::EncryptedDirectory>,
    index: Index,
    reader: IndexReader,
    /// Absent only while the index key rotates (the writer is closed, its merges finished).
    writer: Mutex<Option<IndexWriter>>,
    /// The writer's threads and heap, to open it again.
    writer_setup: (usize, usize),
    /// The directory itself, not tantivy's managed view of it (whose garbage collection
    /// deletes every file it wrote that no segment refers to): where [`FORMAT_FILE`] lives.
    raw: Box<dyn tantivy::Directory>,
    f: Fields,
}

/// What one page contributes to the index. Only `record_id`, `received`, `text` and `form`
/// are known for every page; the rest comes from its draft and its case once linked.
#[derive(Debug, Clone, Default)]
pub struct Doc {
    pub record_id: String,
    pub received: DateTime<Utc>,
    /// Everything a bare word should find: the page's text, including the values of the
    /// fields below (bare words search this field only, which keeps them fast).
    pub text: String,
    /// Form key ([`vocab::FORMS`]); `scan` for an unclassified page.
    pub form: String,
    /// The page shows a My Number (the 個人番号調書): only users with the right see it at all.
    pub shows_my_number: bool,
    pub case_no: Option<String>,
    /// Keyed hash identifying the person (suspension filter).
    pub person: Option<String>,
    /// Further keyed hashes that tie the page to a person before or without a case link
    /// (name + birth date, My Numbers): indexed beside `person`, so a suspension hides pages
    /// not yet linked too.
    pub markers: Vec<String>,
    pub name: Option<String>,
    pub kana: Option<String>,
    pub birth: Option<NaiveDate>,
    pub city: Option<String>,
    pub disease: Option<String>,
    /// Status key ([`vocab::STATUSES`]).
    pub status: Option<String>,
    /// Keyed hashes of the My Numbers on the page.
    pub my_numbers: Vec<String>,
}

impl Doc {
    /// A page known only by its text.
    pub fn page(record_id: &str, text: &str, received: DateTime<Utc>) -> Doc {
        Doc {
            record_id: record_id.to_owned(),
            received,
            text: text.to_owned(),
            form: "scan".to_owned(),
            ..Doc::default()
        }
    }
}

/// What the searching user may see: decided by the caller from the user's rights.
#[derive(Debug, Clone, Default)]
pub struct Scope {
    /// May see pages showing My Numbers and search by My Number.
    pub my_number: bool,
    /// Person hashes under a suspension (閲覧停止) the user is subject to.
    pub hidden_persons: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Sort {
    #[default]
    Relevance,
    Newest,
    Oldest,
}

pub struct Request<'a> {
    pub query: &'a str,
    pub scope: &'a Scope,
    pub sort: Sort,
    pub limit: usize,
    pub offset: usize,
    pub facets: bool,
    pub snippets: bool,
    /// Count every match for `Results::total` (otherwise total is the hits returned, and the
    /// top hits can skip documents that cannot make the list).
    pub count: bool,
    /// Turns a typed My Number (12 digits) into the keyed hash stored in `mn`.
    pub hash_my_number: &'a dyn Fn(&str) -> String,
    /// Add near spellings ([`near`]) after the exact hits when these do not fill the page
    /// (relevance order only).
    pub near: bool,
}

/// One matching page.
#[derive(Debug, Clone)]
pub struct Hit {
    pub record_id: String,
    pub score: f32,
    pub received: DateTime<Utc>,
    pub form: String,
    pub case_no: Option<String>,
    pub name: Option<String>,
    pub status: Option<String>,
    /// HTML: text escaped, matches in `<b>`.
    pub snippet_html: String,
    /// Found by the fuzzy tier: the words occur only as near spellings (「近い表記」).
    pub near: bool,
}

/// A facet dimension and its top values with counts.
#[derive(Debug, Clone)]
pub struct FacetCounts {
    pub dimension: &'static str,
    pub values: Vec<(String, u64)>,
}

#[derive(Debug, Clone)]
pub struct Results {
    /// Exact matches (the near spellings are not counted here).
    pub total: usize,
    pub hits: Vec<Hit>,
    pub facets: Vec<FacetCounts>,
    /// Near spellings found (up to [`near::POOL`] checked), listed after the exact hits.
    pub near: usize,
}

/// How text is cut into terms (tokenizer, folding tables, schema). An index built with another
/// format would answer wrongly (a query's terms no longer meet the document's), so an index
/// of another format is rebuilt when the data directory is opened. Raise it with every such
/// change.
pub const FORMAT: u32 = 2;
/// The file in the index directory (sealed like the rest) that records its format.
const FORMAT_FILE: &str = "hozon-index-format";

/// Facet dimensions shown beside the results.
pub const FACET_DIMENSIONS: [&str; 5] = ["form", "city", "disease", "status", "year"];

/// Normalises text the way both indexing and querying see it: NFKC (full-width digits and
/// letters to ASCII, half-width kana to full-width), long-vowel look-alikes inside a katakana
/// word read as ー (OCR reads パーキンソン as パ一キンソン; 一 stays 一 in 一部 and 一覧), and
/// OCR's letter spacing removed (Tesseract's `jpn` model emits `山 田 太 郎`) while a space
/// between words stays a word boundary (`東京都 新宿区`).
pub fn normalise(text: &str) -> String {
    let nfkc: String = text.nfkc().collect();
    let chars: Vec<char> = nfkc.chars().collect();
    let mut out = String::with_capacity(nfkc.len());
    let katakana = |c: Option<&char>| c.is_some_and(|c| matches!(c, '\u{30A1}'..='\u{30FA}' | 'ー'));
    let cjk = |i: Option<usize>| i.and_then(|i| chars.get(i)).is_some_and(|c| tokenizer::is_cjk(*c));
    let space = |c: char| c == ' ' || c == '\u{3000}';
    for (i, &c) in chars.iter().enumerate() {
        if space(c) {
            if out.is_empty() || out.ends_with(' ') {
                continue;
            }
            // Letter spacing: a CJK character standing alone on either side of the space.
            let prev = i.checked_sub(1);
            let next = chars[i + 1..].iter().position(|c| !space(*c)).map(|n| i + 1 + n);
            let lone = |at: Option<usize>, outward: fn(usize) -> Option<usize>| {
                cjk(at) && at.and_then(outward).is_none_or(|o| !cjk(Some(o)))
            };
            if cjk(prev) && cjk(next) && (lone(prev, |p| p.checked_sub(1)) || lone(next, |n| Some(n + 1))) {
                continue;
            }
            out.push(' ');
            continue;
        }
        let long_vowel = matches!(c, '一' | '―' | '‐' | '-' | '−' | '—' | '～' | '~');
        if long_vowel
            && katakana(chars.get(i.wrapping_sub(1)))
            && !chars.get(i + 1).is_some_and(|n| tokenizer::is_cjk(*n) && !katakana(Some(n)))
        {
            out.push('ー');
            continue;
        }
        out.push(c);
    }
    if out.ends_with(' ') {
        out.pop();
    }
    out
}

/// `s` normalised, without spaces (a name: the space between family and given name is not a
/// word boundary).
fn without_spaces(s: &str) -> String {
    normalise(s).chars().filter(|c| !c.is_whitespace()).collect()
}

/// Removes My Numbers from page text: any 12 digits (spaces or hyphens allowed between them)
/// whose check digit is valid become `[個人番号]`. Returns the text and the numbers found, so
/// the caller can index their keyed hashes instead.
pub fn scrub_my_numbers(text: &str) -> (String, Vec<String>) {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut found = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let starts_number = chars[i].is_ascii_digit() && (i == 0 || !chars[i - 1].is_ascii_digit());
        if starts_number {
            let mut digits = String::new();
            let mut j = i;
            while j < chars.len() && digits.len() < 13 {
                if chars[j].is_ascii_digit() {
                    digits.push(chars[j]);
                    j += 1;
                } else if matches!(chars[j], ' ' | '-') && chars.get(j + 1).is_some_and(char::is_ascii_digit) {
                    j += 1;
                } else {
                    break;
                }
            }
            if digits.len() == 12 && crate::jp::my_number_valid(&digits) {
                out.push_str("[個人番号]");
                found.push(digits);
                i = j;
                continue;
            }
        }
        out.push(chars[i]);
        i += 1;
    }
    (out, found)
}

fn schema() -> (Schema, Fields) {
    let mut b = Schema::builder();
    let bigram = |stored: bool| {
        let o = TextOptions::default().set_indexing_options(
            TextFieldIndexing::default()
                .set_tokenizer(tokenizer::BIGRAM)
                .set_index_option(IndexRecordOption::WithFreqsAndPositions),
        );
        if stored { o.set_stored() } else { o }
    };
    let record_id = b.add_text_field("record_id", STRING | STORED);
    let case_no = b.add_text_field("case_no", STRING | STORED);
    let person = b.add_text_field("person", STRING);
    let access = b.add_text_field("access", STRING);
    let form = b.add_text_field("form", STRING | STORED);
    let status = b.add_text_field("status", STRING | STORED);
    let mn = b.add_text_field("mn", STRING);
    let text = b.add_text_field("text", bigram(true));
    let name = b.add_text_field("name", bigram(true));
    let city = b.add_text_field("city", bigram(false));
    let disease = b.add_text_field("disease", bigram(false));
    let received = b.add_i64_field("received", INDEXED | FAST | STORED);
    let birth = b.add_i64_field("birth", INDEXED | FAST);
    let facets = b.add_facet_field("facets", FacetOptions::default());
    let f = Fields {
        record_id,
        case_no,
        person,
        access,
        form,
        status,
        mn,
        text,
        name,
        city,
        disease,
        received,
        birth,
        facets,
    };
    (b.build(), f)
}

/// Days as `yyyymmdd` numbers, so ranges over birth dates are integer ranges.
fn day_number(d: NaiveDate) -> i64 {
    i64::from(d.year()) * 10_000 + i64::from(d.month()) * 100 + i64::from(d.day())
}

/// Midnight Japan time of `d`, in Unix seconds (receipt ranges are in the office's days).
fn jst_midnight(d: NaiveDate) -> i64 {
    d.and_hms_opt(0, 0, 0).expect("midnight exists").and_utc().timestamp() - 9 * 3600
}

/// How phrases are built: exact (positions) or loose (all bigrams somewhere), and whether
/// the query had any.
#[derive(Default)]
struct Mode {
    loose: bool,
    phrased: bool,
    /// Words of three or more characters become the fuzzy tier's candidate queries.
    near: bool,
    /// The words that did (filled in while building).
    fuzzed: Vec<String>,
}

/// Turns a [`Doc`] into the tantivy document of the schema.
struct DocBuilder {
    f: Fields,
}

impl DocBuilder {
    fn build(&self, d: &Doc) -> TantivyDocument {
        let f = &self.f;

        let mut doc = TantivyDocument::default();
        doc.add_text(f.record_id, &d.record_id);
        doc.add_text(f.text, normalise(&d.text));
        doc.add_text(f.form, &d.form);
        doc.add_text(f.access, if d.shows_my_number { "my_number" } else { "general" });
        doc.add_i64(f.received, d.received.timestamp());
        doc.add_facet(f.facets, Facet::from_path(["form", d.form.as_str()]));
        let jst = d.received.with_timezone(&chrono::FixedOffset::east_opt(9 * 3600).expect("JST"));
        doc.add_facet(f.facets, Facet::from_path(["year", jst.year().to_string().as_str()]));
        if let Some(c) = &d.case_no {
            doc.add_text(f.case_no, normalise(c));
        }
        for p in d.person.iter().chain(&d.markers) {
            doc.add_text(f.person, p);
        }
        // Name and reading each without the space between family and given name, so that
        // 山田太郎 and 山田 太郎 meet.
        let name: Vec<String> =
            [d.name.as_deref(), d.kana.as_deref()].into_iter().flatten().map(without_spaces).collect();
        if !name.is_empty() {
            doc.add_text(f.name, name.join(" "));
        }
        if let Some(b) = d.birth {
            doc.add_i64(f.birth, day_number(b));
        }
        for (field, dim, value) in [(f.city, "city", &d.city), (f.disease, "disease", &d.disease)] {
            if let Some(v) = value {
                let v = normalise(v);
                doc.add_facet(f.facets, Facet::from_path([dim, v.as_str()]));
                doc.add_text(field, v);
            }
        }
        if let Some(s) = &d.status {
            doc.add_text(f.status, s);
            doc.add_facet(f.facets, Facet::from_path(["status", s.as_str()]));
        }
        for h in &d.my_numbers {
            doc.add_text(f.mn, h);
        }
        doc
    }
}

impl SearchIndex {
    pub fn open(dir: EncryptedDirectory) -> Result<SearchIndex> {
        let mut si = SearchIndex::open_in(dir.clone())?;
        si.sealed = Some(dir);
        // Files a crashed commit wrote but never referenced (a `.del` of an interrupted
        // disposal) would block the same commit when it is redone: remove them first.
        si.with_writer(|w| Ok(w.garbage_collect_files().wait()?))?;
        Ok(si)
    }

    /// Runs `f` with the writer, under its lock.
    fn with_writer<T>(&self, f: impl FnOnce(&mut IndexWriter) -> Result<T>) -> Result<T> {
        let mut g = self.writer.lock().expect("index writer lock poisoned");
        match g.as_mut() {
            Some(w) => f(w),
            None => Err(tantivy::TantivyError::InternalError(
                "the index writer could not be reopened after a key rotation; restart hozon".into(),
            )
            .into()),
        }
    }

    /// Re-seals every index file under `new` while holding the writer (nothing is committed
    /// meanwhile). Returns how many files were re-sealed.
    ///
    /// Background merges write files with the key they started with, so the writer is closed
    /// first (waiting for its merges), and no writer exists while files are re-sealed: no file
    /// can appear under the old key once this returns.
    pub fn reseal(&self, new: crate::crypto::Key) -> Result<usize> {
        let Some(dir) = &self.sealed else { return Ok(0) };
        let mut g = self.writer.lock().expect("index writer lock poisoned");
        let merged = match g.take() {
            Some(w) => w.wait_merging_threads(),
            None => Ok(()),
        };
        // Re-sealing only once every merge has ended; a writer is opened again whatever
        // happened, so the index goes on working.
        let resealed = merged.and_then(|()| dir.reseal_all(new).map_err(tantivy::TantivyError::from));
        let (threads, heap) = self.writer_setup;
        *g = Some(self.index.writer_with_num_threads(threads, heap)?);
        drop(g);
        let n = resealed?;
        self.reader.reload()?;
        Ok(n)
    }

    /// Opens an index in any tantivy directory (the benchmark compares encrypted and plain).
    pub fn open_in<D: tantivy::Directory>(dir: D) -> Result<SearchIndex> {
        SearchIndex::open_with_memory(dir, 50_000_000, 1)
    }

    /// As [`SearchIndex::open_in`] with a writer of `threads` threads sharing `heap` bytes (bulk
    /// builds want more of both).
    pub fn open_with_memory<D: tantivy::Directory>(dir: D, heap: usize, threads: usize) -> Result<SearchIndex> {
        let (schema, f) = schema();
        let raw = dir.box_clone();
        let mut index = Index::open_or_create(dir, schema)?;
        index.tokenizers().register(tokenizer::BIGRAM, tokenizer::BigramTokenizer);
        // Segments are searched in parallel (one thread per core): a heavy query over a large
        // archive finishes in a fraction of the time.
        index.set_default_multithread_executor()?;
        let writer = index.writer_with_num_threads(threads, heap)?;
        let reader: IndexReader = index.reader_builder().reload_policy(ReloadPolicy::Manual).try_into()?;
        let si = SearchIndex {
            sealed: None,
            index,
            reader,
            writer: Mutex::new(Some(writer)),
            writer_setup: (threads, heap),
            raw,
            f,
        };
        // A new, empty index is in the current format from the start.
        if si.stored_format().is_none() && si.num_docs() == 0 {
            si.mark_current()?;
        }
        Ok(si)
    }

    fn stored_format(&self) -> Option<String> {
        let bytes = self.raw.atomic_read(std::path::Path::new(FORMAT_FILE)).ok()?;
        Some(String::from_utf8_lossy(&bytes).trim().to_owned())
    }

    /// Whether the index was built in another [`FORMAT`] (or before formats were recorded).
    pub fn outdated(&self) -> bool {
        self.stored_format().is_none_or(|f| f != FORMAT.to_string())
    }

    /// Records that the index is in the current [`FORMAT`] (after a rebuild).
    pub fn mark_current(&self) -> Result<()> {
        self.raw
            .atomic_write(std::path::Path::new(FORMAT_FILE), FORMAT.to_string().as_bytes())
            .map_err(tantivy::TantivyError::from)?;
        Ok(())
    }

    fn tantivy_doc(&self, d: &Doc) -> TantivyDocument {
        DocBuilder { f: self.f }.build(d)
    }

    /// Replaces the index entry of `doc.record_id` and commits (durable on return).
    pub fn put(&self, doc: &Doc) -> Result<()> {
        self.put_many(std::slice::from_ref(doc))
    }

    /// Adds or replaces many documents with one commit (bulk import, reindex).
    pub fn put_many(&self, docs: &[Doc]) -> Result<()> {
        self.with_writer(|w| {
            for d in docs {
                w.delete_term(Term::from_field_text(self.f.record_id, &d.record_id));
                w.add_document(self.tantivy_doc(d))?;
            }
            w.commit()?;
            Ok(())
        })?;
        self.reader.reload()?;
        Ok(())
    }

    /// Builds a new index in `dir` from `docs` with one commit, and waits for the merges to
    /// finish (benchmarks: a settled index, as after a night's merging).
    pub fn bulk_build<D: tantivy::Directory>(
        dir: D,
        docs: impl Iterator<Item = Doc>,
        heap: usize,
        threads: usize,
        mut progress: impl FnMut(usize),
    ) -> Result<()> {
        let (schema, f) = schema();
        let index = Index::create(dir, schema, tantivy::IndexSettings::default())?;
        index.tokenizers().register(tokenizer::BIGRAM, tokenizer::BigramTokenizer);
        let mut writer: IndexWriter = index.writer_with_num_threads(threads, heap)?;
        let builder = DocBuilder { f };
        for (n, d) in docs.enumerate() {
            writer.add_document(builder.build(&d))?;
            progress(n + 1);
        }
        writer.commit()?;
        writer.wait_merging_threads()?;
        Ok(())
    }

    pub fn num_docs(&self) -> u64 {
        self.reader.searcher().num_docs()
    }

    /// The query for one text value in a bigram field: a term, a phrase of adjacent bigrams,
    /// or for a single CJK character a prefix search over the terms. With `mode.loose`, a
    /// phrase becomes "all its bigrams somewhere" (no positions): the cheap first pass of
    /// [`SearchIndex::top_verified`].
    fn text_query(&self, field: Field, value: &str, mode: &mut Mode) -> Option<Box<dyn Query>> {
        let toks = tokenizer::cover_tokens(&normalise(value));
        match toks.as_slice() {
            [] => None,
            [t] if t.text.chars().count() == 1 && t.text.chars().all(tokenizer::is_cjk) => {
                let c = t.text.chars().next()?;
                let next = char::from_u32(c as u32 + 1).unwrap_or(char::MAX);
                Some(Box::new(RangeQuery::new(
                    Bound::Included(Term::from_field_text(field, &t.text)),
                    Bound::Excluded(Term::from_field_text(field, &next.to_string())),
                )))
            }
            [t] => Some(Box::new(TermQuery::new(
                Term::from_field_text(field, &t.text),
                IndexRecordOption::WithFreqsAndPositions,
            ))),
            many if mode.loose => {
                mode.phrased = true;
                let terms = many.iter().map(|t| {
                    let q = TermQuery::new(Term::from_field_text(field, &t.text), IndexRecordOption::WithFreqs);
                    (Occur::Must, Box::new(q) as Box<dyn Query>)
                });
                Some(Box::new(BooleanQuery::new(terms.collect())))
            }
            many => {
                mode.phrased = true;
                Some(Box::new(PhraseQuery::new_with_offset(
                    many.iter().map(|t| (t.position, Term::from_field_text(field, &t.text))).collect(),
                )))
            }
        }
    }

    /// The fuzzy tier's candidates for a word ([`near::candidates`]): a bare word in the text
    /// and the name, a name in the name.
    fn near_candidates(&self, c: &query::Clause) -> Option<Box<dyn Query>> {
        match c.field {
            FieldName::Text => near::candidates(&[self.f.text, self.f.name], &c.text),
            FieldName::Name => near::candidates(&[self.f.name], &c.text),
            _ => None,
        }
    }

    fn exact(field: Field, value: &str) -> Box<dyn Query> {
        Box::new(TermQuery::new(Term::from_field_text(field, value), IndexRecordOption::Basic))
    }

    fn clause_query(
        &self,
        c: &query::Clause,
        req: &Request<'_>,
        mode: &mut Mode,
    ) -> Result<Option<Box<dyn Query>>, Problem> {
        let f = &self.f;
        let bad_date = |field: FieldName| Problem::BadDate { field: field.label(), value: c.text.clone() };
        Ok(match c.field {
            FieldName::Text | FieldName::Name
                if mode.near
                    && let Some(q) = self.near_candidates(c) =>
            {
                mode.fuzzed.push(c.text.clone());
                Some(q)
            }
            FieldName::Text => self.text_query(f.text, &c.text, mode),
            FieldName::Name => self.text_query(f.name, &without_spaces(&c.text), mode),
            FieldName::City => self.text_query(f.city, &c.text, mode),
            FieldName::Disease => self.text_query(f.disease, &c.text, mode),
            FieldName::Form => {
                let key = vocab::form_key(&c.text)
                    .ok_or_else(|| Problem::BadValue { field: c.field.label(), value: c.text.clone() })?;
                Some(Self::exact(f.form, &key))
            }
            FieldName::Status => {
                let key = vocab::key_of(vocab::STATUSES, &c.text)
                    .ok_or_else(|| Problem::BadValue { field: c.field.label(), value: c.text.clone() })?;
                Some(Self::exact(f.status, key))
            }
            FieldName::Case => Some(Self::exact(f.case_no, &normalise(&c.text))),
            FieldName::MyNumber => {
                if !req.scope.my_number {
                    return Err(Problem::MyNumberNotAllowed);
                }
                let digits: String = c.text.chars().filter(|c| !matches!(c, '-' | ' ')).collect();
                if digits.len() != 12 || !crate::jp::my_number_valid(&digits) {
                    return Err(Problem::BadMyNumber);
                }
                Some(Self::exact(f.mn, &(req.hash_my_number)(&digits)))
            }
            FieldName::Birth => {
                let r = query::parse_days(&c.text).ok_or_else(|| bad_date(c.field))?;
                Some(Box::new(RangeQuery::new(
                    r.from.map_or(Bound::Unbounded, |d| Bound::Included(Term::from_field_i64(f.birth, day_number(d)))),
                    r.to.map_or(Bound::Unbounded, |d| Bound::Included(Term::from_field_i64(f.birth, day_number(d)))),
                )))
            }
            FieldName::Received => {
                let r = query::parse_days(&c.text).ok_or_else(|| bad_date(c.field))?;
                let lower = r
                    .from
                    .map_or(Bound::Unbounded, |d| Bound::Included(Term::from_field_i64(f.received, jst_midnight(d))));
                let upper = r.to.map_or(Bound::Unbounded, |d| {
                    Bound::Excluded(Term::from_field_i64(f.received, jst_midnight(d) + 86_400))
                });
                Some(Box::new(RangeQuery::new(lower, upper)))
            }
        })
    }

    /// The whole query: the user's expression, then what the scope hides.
    fn build_query(&self, req: &Request<'_>, mode: &mut Mode) -> Result<Box<dyn Query>> {
        let expr = query::parse_expr(req.query)?.ok_or(Problem::Empty)?;
        if !expr.positive() {
            return Err(Problem::OnlyExclusions.into());
        }
        let q = self.expr_query(&expr, req, mode, false)?.ok_or(Problem::Empty)?;
        self.restrict(vec![(Occur::Must, q)], req.scope)
    }

    /// The query of one expression (`None`: it has no searchable words). `negated`: it sits
    /// under an exclusion, where phrases are always exact ("all bigrams somewhere" would
    /// exclude too much).
    fn expr_query(
        &self,
        e: &query::Expr,
        req: &Request<'_>,
        mode: &mut Mode,
        negated: bool,
    ) -> Result<Option<Box<dyn Query>>, Problem> {
        use query::Expr;
        match e {
            Expr::Clause(c) => {
                let mut clause_mode =
                    Mode { loose: mode.loose && !negated, near: mode.near && !negated, ..Mode::default() };
                let q = self.clause_query(c, req, &mut clause_mode)?;
                mode.phrased |= clause_mode.phrased;
                mode.fuzzed.append(&mut clause_mode.fuzzed);
                Ok(q)
            }
            // A NOT on its own matches nothing; inside a group it is placed as MustNot below.
            Expr::Not(_) => Err(Problem::OnlyExclusions),
            Expr::All(parts) => {
                let mut clauses: Vec<(Occur, Box<dyn Query>)> = Vec::new();
                for part in parts {
                    let (inner, excluded) = match part {
                        Expr::Not(inner) => (&**inner, true),
                        other => (other, false),
                    };
                    if let Some(q) = self.expr_query(inner, req, mode, negated ^ excluded)? {
                        clauses.push(if excluded {
                            (Occur::MustNot, Box::new(exclude::Exclusion(q)) as Box<dyn Query>)
                        } else {
                            (Occur::Must, q)
                        });
                    }
                }
                if clauses.is_empty() {
                    return Ok(None);
                }
                if clauses.iter().all(|(o, _)| *o == Occur::MustNot) {
                    return Err(Problem::OnlyExclusions);
                }
                Ok(Some(Box::new(BooleanQuery::new(clauses))))
            }
            Expr::Any(parts) => {
                let mut clauses: Vec<(Occur, Box<dyn Query>)> = Vec::new();
                for part in parts {
                    if !part.positive() {
                        return Err(Problem::OnlyExclusions);
                    }
                    clauses.extend(self.expr_query(part, req, mode, negated)?.map(|q| (Occur::Should, q)));
                }
                Ok((!clauses.is_empty()).then(|| Box::new(BooleanQuery::new(clauses)) as Box<dyn Query>))
            }
        }
    }

    /// Adds the scope's exclusions to `clauses`.
    fn restrict(&self, mut clauses: Vec<(Occur, Box<dyn Query>)>, scope: &Scope) -> Result<Box<dyn Query>> {
        if !scope.my_number {
            clauses.push((Occur::MustNot, Self::exact(self.f.access, "my_number")));
        }
        if !scope.hidden_persons.is_empty() {
            let terms = scope.hidden_persons.iter().map(|p| Term::from_field_text(self.f.person, p));
            clauses.push((Occur::MustNot, Box::new(TermSetQuery::new(terms))));
        }
        Ok(Box::new(BooleanQuery::new(clauses)))
    }

    pub fn search(&self, req: &Request<'_>) -> Result<Results> {
        let mut mode = Mode::default();
        let q = self.build_query(req, &mut mode)?;
        let searcher = self.reader.searcher();
        let top = TopDocs::with_limit(req.limit.max(1)).and_offset(req.offset);
        let verified = if req.sort == Sort::Relevance && mode.phrased {
            let loose = self.build_query(req, &mut Mode { loose: true, ..Mode::default() })?;
            self.top_verified(&searcher, &*loose, &*q, req.offset, req.limit.max(1))?
        } else {
            None
        };
        let addrs: Vec<(f32, DocAddress)> = match req.sort {
            _ if verified.is_some() => verified.unwrap_or_default(),
            Sort::Relevance => searcher.search(&q, &top.order_by_score())?,
            Sort::Newest | Sort::Oldest => {
                let order = if req.sort == Sort::Newest { Order::Desc } else { Order::Asc };
                let v = searcher.search(&q, &top.order_by_fast_field::<i64>("received", order))?;
                v.into_iter().map(|(_, a)| (0.0, a)).collect()
            }
        };
        let total = if req.count { searcher.search(&q, &Count)? } else { req.offset + addrs.len() };
        let facets = if req.facets { self.facet_counts(&searcher, &*q)? } else { Vec::new() };
        let snippets = if req.snippets { Some(self.snippets(&searcher, &*q)?) } else { None };
        let mut hits = Vec::with_capacity(addrs.len());
        for (score, addr) in addrs {
            hits.push(self.hit(&searcher, addr, score, snippets.as_ref(), false)?);
        }
        if req.sort == Sort::Relevance {
            // Equal scores in a stable order (by id), so the same query gives the same list.
            hits.sort_by(|a, b| b.score.total_cmp(&a.score).then_with(|| a.record_id.cmp(&b.record_id)));
        }
        let mut near = 0;
        if req.near && req.sort == Sort::Relevance && hits.len() < req.limit {
            let exact_total = if req.count { total } else { searcher.search(&q, &Count)? };
            if let Some((near_q, found)) = self.near_hits(req, &searcher, &*q, exact_total)? {
                near = found.len();
                let g = if req.snippets { Some(self.snippets(&searcher, &*near_q)?) } else { None };
                let skip = req.offset.saturating_sub(exact_total);
                for (score, addr, near) in found.into_iter().skip(skip).take(req.limit - hits.len()) {
                    hits.push(self.hit(&searcher, addr, score, g.as_ref(), near)?);
                }
            }
        }
        Ok(Results { total, hits, facets, near })
    }

    /// Snippets of the text around what `q` matches.
    fn snippets(&self, searcher: &Searcher, q: &dyn Query) -> Result<SnippetGenerator> {
        let mut g = SnippetGenerator::create(searcher, q, self.f.text)?;
        g.set_max_num_chars(120);
        Ok(g)
    }

    /// One hit's display fields and snippet.
    fn hit(
        &self,
        searcher: &Searcher,
        addr: DocAddress,
        score: f32,
        snippets: Option<&SnippetGenerator>,
        near: bool,
    ) -> Result<Hit> {
        let doc: TantivyDocument = searcher.doc(addr)?;
        let text = |field: Field| doc.get_first(field).and_then(|v| v.as_str()).map(str::to_owned);
        let snippet_html = match snippets {
            Some(g) => {
                let s = g.snippet_from_doc(&doc);
                if s.fragment().is_empty() { lead_html(&text(self.f.text).unwrap_or_default()) } else { s.to_html() }
            }
            None => String::new(),
        };
        let received = doc.get_first(self.f.received).and_then(|v| v.as_i64()).unwrap_or_default();
        Ok(Hit {
            record_id: text(self.f.record_id).unwrap_or_default(),
            score,
            received: DateTime::from_timestamp(received, 0).unwrap_or_default(),
            form: text(self.f.form).unwrap_or_default(),
            case_no: text(self.f.case_no),
            name: text(self.f.name),
            status: text(self.f.status),
            snippet_html,
            near,
        })
    }

    /// The fuzzy tier ([`near`]): candidates holding enough bigrams of the query's longer
    /// words, the exact hits excluded, each checked on its stored text and kept when every
    /// fuzzed word (any, if the query has alternatives) occurs within [`near::allowed`] edits.
    /// Ordered by edits, then score, each with whether it is near (a page that holds the words
    /// once spaces are ignored, 山田 太郎 for 山田太郎, is listed here but not marked). With the
    /// candidate query (for snippets).
    #[allow(clippy::type_complexity)]
    fn near_hits(
        &self,
        req: &Request<'_>,
        searcher: &Searcher,
        exact: &dyn Query,
        exact_total: usize,
    ) -> Result<Option<(Box<dyn Query>, Vec<(f32, DocAddress, bool)>)>> {
        let Some(expr) = query::parse_expr(req.query)? else { return Ok(None) };
        let mut mode = Mode { near: true, ..Mode::default() };
        let Some(candidates) = self.expr_query(&expr, req, &mut mode, false)? else { return Ok(None) };
        if mode.fuzzed.is_empty() {
            return Ok(None);
        }
        let words: Vec<Vec<char>> = mode.fuzzed.iter().map(|w| near::comparable(w)).collect();
        let any = expr.has_alternatives();
        // The exact hits are among the candidates (they hold every bigram): dropped by
        // checking the exact query on the pool, room for them added to it.
        let q = self.restrict(vec![(Occur::Must, candidates.box_clone())], req.scope)?;
        let pool = near::POOL + exact_total.min(near::POOL * 16);
        let top = searcher.search(&q, &TopDocs::with_limit(pool).order_by_score())?;
        let exact_hits = Self::matching(searcher, exact, &top)?;
        let mut kept: Vec<(usize, f32, DocAddress)> = Vec::new();
        for ((score, addr), _) in top.into_iter().zip(exact_hits).filter(|(_, exact)| !exact).take(near::POOL) {
            let doc: TantivyDocument = searcher.doc(addr)?;
            let stored: String = [self.f.text, self.f.name]
                .iter()
                .filter_map(|f| doc.get_first(*f).and_then(|v| v.as_str()))
                .collect::<Vec<_>>()
                .join(" ");
            let text = near::comparable(&stored);
            let edits: Vec<Option<usize>> = words
                .iter()
                .map(|w| {
                    let cap = near::allowed(w.len());
                    Some(near::distance_in(w, &text, cap)).filter(|d| *d <= cap)
                })
                .collect();
            let pass = if any { edits.iter().any(Option::is_some) } else { edits.iter().all(Option::is_some) };
            if pass {
                kept.push((edits.iter().flatten().sum(), score, addr));
            }
        }
        kept.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| b.1.total_cmp(&a.1)));
        Ok(Some((candidates, kept.into_iter().map(|(edits, s, a)| (s, a, edits > 0)).collect())))
    }

    /// Top hits of a query with phrases, in two passes: the best candidates of `loose` (its
    /// phrases as bag-of-bigrams, which skips through posting lists without reading
    /// positions), each then checked against `exact`. Every returned hit truly matches; they
    /// are ranked by the loose score. `None` when too few candidates pass and the list might
    /// be incomplete: the caller then runs `exact` in full.
    fn top_verified(
        &self,
        searcher: &Searcher,
        loose: &dyn Query,
        exact: &dyn Query,
        offset: usize,
        limit: usize,
    ) -> Result<Option<Vec<(f32, DocAddress)>>> {
        let want = offset + limit;
        let pool = (want * 4).max(100);
        let candidates = searcher.search(loose, &TopDocs::with_limit(pool).order_by_score())?;
        let matches = Self::matching(searcher, exact, &candidates)?;
        let hits: Vec<(f32, DocAddress)> =
            candidates.iter().zip(&matches).filter(|(_, m)| **m).map(|(c, _)| *c).collect();
        // Complete if enough passed, or if the loose pass returned everything it matched.
        if hits.len() >= want || candidates.len() < pool {
            Ok(Some(hits.into_iter().skip(offset).take(limit).collect()))
        } else {
            Ok(None)
        }
    }

    /// Which of `docs` match `q`: its scorer walked forward through them, segment by segment
    /// in doc order (positions read only for these documents).
    fn matching(searcher: &Searcher, q: &dyn Query, docs: &[(f32, DocAddress)]) -> Result<Vec<bool>> {
        let weight = q.weight(tantivy::query::EnableScoring::disabled_from_searcher(searcher))?;
        let mut matches = vec![false; docs.len()];
        let mut by_segment: std::collections::BTreeMap<u32, Vec<(u32, usize)>> = Default::default();
        for (rank, (_, a)) in docs.iter().enumerate() {
            by_segment.entry(a.segment_ord).or_default().push((a.doc_id, rank));
        }
        for (segment, mut docs) in by_segment {
            docs.sort_unstable();
            let mut scorer = weight.scorer(searcher.segment_reader(segment), 1.0)?;
            for (doc, rank) in docs {
                if scorer.doc() < doc {
                    scorer.seek(doc);
                }
                matches[rank] = scorer.doc() == doc;
            }
        }
        Ok(matches)
    }

    fn facet_counts(&self, searcher: &Searcher, q: &dyn Query) -> Result<Vec<FacetCounts>> {
        let mut fc = FacetCollector::for_field("facets");
        for d in FACET_DIMENSIONS {
            fc.add_facet(Facet::from_path([d]));
        }
        let counts = searcher.search(q, &fc)?;
        Ok(FACET_DIMENSIONS
            .iter()
            .map(|d| {
                let root = Facet::from_path([*d]);
                let mut values: Vec<(String, u64)> = counts
                    .top_k(root, 12)
                    .into_iter()
                    .filter_map(|(f, n)| f.to_path().last().map(|v| ((*v).to_owned(), n)))
                    .collect();
                if *d == "year" {
                    values.sort_by(|a, b| b.0.cmp(&a.0));
                }
                FacetCounts { dimension: d, values }
            })
            .filter(|f| !f.values.is_empty())
            .collect())
    }

    /// Documents the scope lets a user see (the count shown beside the search box).
    pub fn visible_docs(&self, scope: &Scope) -> Result<usize> {
        let q = self.restrict(vec![(Occur::Must, Box::new(AllQuery))], scope)?;
        Ok(self.reader.searcher().search(&q, &Count)?)
    }

    /// Record ids of every document of a person (a case's pages), hidden or not.
    pub fn records_of_person(&self, person: &str) -> Result<Vec<String>> {
        let searcher = self.reader.searcher();
        let q = Self::exact(self.f.person, person);
        let n = searcher.search(&q, &Count)?.max(1);
        let top = searcher.search(&q, &TopDocs::with_limit(n).order_by_score())?;
        top.into_iter()
            .map(|(_, a)| {
                let doc: TantivyDocument = searcher.doc(a)?;
                Ok(doc.get_first(self.f.record_id).and_then(|v| v.as_str()).unwrap_or_default().to_owned())
            })
            .collect()
    }

    /// Deletes the documents of `record_ids` and commits. They no longer match any search,
    /// but their terms and stored text stay in the (encrypted) segment files until
    /// [`SearchIndex::compact`] merges those segments away.
    pub fn delete(&self, _approval: &crate::retention::run::ApprovedDisposal, record_ids: &[String]) -> Result<()> {
        self.delete_ids(record_ids)
    }

    /// Removes the documents of records a restore found no longer stored (destroyed by the
    /// run that retired their keys, or never committed): the index then matches the store.
    pub(crate) fn forget(&self, record_ids: &[String]) -> Result<()> {
        self.delete_ids(record_ids)
    }

    /// The record id of every live document.
    pub fn record_ids(&self) -> Result<Vec<String>> {
        let searcher = self.reader.searcher();
        let mut out = Vec::new();
        for segment in searcher.segment_readers() {
            let store = segment.get_store_reader(64).map_err(tantivy::TantivyError::from)?;
            for doc in segment.doc_ids_alive() {
                let d: TantivyDocument = store.get(doc)?;
                out.extend(d.get_first(self.f.record_id).and_then(|v| v.as_str()).map(str::to_owned));
            }
        }
        Ok(out)
    }

    fn delete_ids(&self, record_ids: &[String]) -> Result<()> {
        self.with_writer(|w| {
            for id in record_ids {
                w.delete_term(Term::from_field_text(self.f.record_id, id));
            }
            w.commit()?;
            Ok(())
        })?;
        self.reader.reload()?;
        Ok(())
    }

    /// Merges every segment that holds deleted documents and deletes the old segment files,
    /// so deleted text is gone from disk, not just marked dead.
    ///
    /// A background merge already under way may carry deleted documents into its output, so
    /// this repeats until no segment holds one (each round reloads what the merges made).
    pub fn compact(&self) -> Result<()> {
        // The writer is held throughout, so no other write adds deletions meanwhile.
        self.with_writer(|w| {
            let dirty = || -> Result<Vec<tantivy::index::SegmentId>> {
                self.reader.reload()?;
                Ok(self
                    .reader
                    .searcher()
                    .segment_readers()
                    .iter()
                    .filter(|r| r.num_deleted_docs() > 0)
                    .map(|r| r.segment_id())
                    .collect())
            };
            let mut last_error = None;
            for _ in 0..8 {
                let segments = dirty()?;
                if segments.is_empty() {
                    break;
                }
                // A segment a background merge took meanwhile makes this merge fail: the
                // next round sees the merged result.
                last_error = w.merge(&segments).wait().err();
            }
            if !dirty()?.is_empty() {
                return Err(last_error
                    .unwrap_or_else(|| {
                        tantivy::TantivyError::InternalError("deleted documents remain after merging".into())
                    })
                    .into());
            }
            w.garbage_collect_files().wait()?;
            Ok(())
        })?;
        self.reader.reload()?;
        Ok(())
    }

    /// How many documents (alive or deleted but not yet merged away) carry this record id.
    pub fn postings_for(&self, record_id: &str) -> Result<u64> {
        let searcher = self.reader.searcher();
        Ok(searcher.doc_freq(&Term::from_field_text(self.f.record_id, record_id))?)
    }

    /// Deletes every document (used by reindex).
    pub fn clear(&self) -> Result<()> {
        self.with_writer(|w| {
            w.delete_all_documents()?;
            w.commit()?;
            Ok(())
        })?;
        self.reader.reload()?;
        Ok(())
    }

    pub fn schema(&self) -> Schema {
        self.index.schema()
    }
}

/// The start of a text as HTML, for hits matched only by a field (no words to highlight).
fn lead_html(text: &str) -> String {
    let lead: String = text.chars().take(120).collect();
    lead.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::Key;

    fn index() -> (tempfile::TempDir, SearchIndex) {
        let tmp = tempfile::tempdir().unwrap();
        let dir = EncryptedDirectory::open(tmp.path().to_owned(), vec![Key::generate()]).unwrap();
        (tmp, SearchIndex::open(dir).unwrap())
    }

    fn hash(s: &str) -> String {
        format!("h{s}")
    }

    fn run(idx: &SearchIndex, q: &str, scope: &Scope) -> Result<Results> {
        idx.search(&request(q, scope))
    }

    fn ids_in(idx: &SearchIndex, q: &str, scope: &Scope) -> Vec<String> {
        let mut v: Vec<_> = run(idx, q, scope).unwrap().hits.into_iter().map(|h| h.record_id).collect();
        v.sort();
        v
    }

    fn ids(idx: &SearchIndex, q: &str) -> Vec<String> {
        ids_in(idx, q, &Scope { my_number: true, hidden_persons: vec![] })
    }

    fn page(id: &str, text: &str) -> Doc {
        Doc::page(id, text, Utc::now())
    }

    #[test]
    fn normalise_folds_width_long_vowels_and_ocr_spaces() {
        assert_eq!(normalise("山 田　太 郎 ＴＥＬ０３"), "山田太郎 TEL03");
        assert_eq!(normalise("ﾔﾏﾀﾞ"), "ヤマダ");
        assert_eq!(normalise("Tokyo  Japan"), "Tokyo Japan");
        assert_eq!(
            normalise("パ一キンソン、ﾊﾟｰｷﾝｿﾝ、センタ一"),
            "パーキンソン、パーキンソン、センタ一".replace("タ一", "ター")
        );
        assert_eq!(normalise("03-5320 一般"), "03-5320 一般", "only inside a katakana word");
        assert_eq!(normalise("書類の一部 リスト一覧"), "書類の一部 リスト一覧", "一 before a kanji stays 一");
        assert_eq!(normalise("東京都 新宿区　西新宿 "), "東京都 新宿区 西新宿", "a space between words stays");
    }

    #[test]
    fn my_numbers_are_scrubbed_from_text() {
        let (text, found) = scrub_my_numbers("番号 1234 5678 9018 電話 03-5320-4472 別 123456789012");
        assert!(crate::jp::my_number_valid("123456789018"));
        assert_eq!(found, vec!["123456789018".to_owned()]);
        assert_eq!(text, "番号 [個人番号] 電話 03-5320-4472 別 123456789012", "invalid check digit stays");
    }

    #[test]
    fn phrase_semantics_and_single_char() {
        let (_t, idx) = index();
        idx.put(&page("a", "病名 潰瘍性大腸炎です")).unwrap();
        idx.put(&page("b", "東京に行って京都へ")).unwrap();
        idx.put(&page("c", "住所 東京都新宿区 氏名 山田 太郎")).unwrap();
        assert_eq!(ids(&idx, "大腸炎"), vec!["a"]);
        assert_eq!(ids(&idx, "腸炎"), vec!["a"]);
        assert_eq!(ids(&idx, "東京都"), vec!["c"], "bigrams must be adjacent, not just present");
        idx.put(&page("d", "東京。都庁 都庁前")).unwrap();
        idx.put(&page("e", "東京都庁")).unwrap();
        assert_eq!(ids(&idx, "東京都庁"), vec!["e"], "a gapped phrase must not bridge two runs");
        assert_eq!(ids(&idx, "\"東京都新宿区\""), vec!["c"]);
        idx.delete(&crate::retention::run::ApprovedDisposal::for_tests("t"), &["d".into(), "e".into()]).unwrap();
        assert_eq!(ids(&idx, "田"), vec!["c"]);
        assert_eq!(ids(&idx, "郎"), vec!["c"], "the last character of a run");
        assert_eq!(ids(&idx, "炎"), vec!["a"], "inside a run");
        assert!(ids(&idx, "山田太郎").is_empty(), "a space is a word boundary (the fuzzy tier finds it)");
        assert!(ids(&idx, "区氏").is_empty(), "no phrase across a space");
        assert_eq!(ids(&idx, "東京 新宿"), vec!["c"]);
        assert!(ids(&idx, "大阪").is_empty());
        assert!(matches!(run(&idx, "  、。 ", &Scope::default()), Err(Error::Query(Problem::Empty))));
        assert!(matches!(run(&idx, "-山田", &Scope::default()), Err(Error::Query(Problem::OnlyExclusions))));
        assert_eq!(ids(&idx, "東京 -大腸炎"), vec!["b", "c"]);
        assert_eq!(ids(&idx, "東京 -新宿"), vec!["b"]);
        assert_eq!(ids(&idx, "\"東京都新宿区\""), vec!["c"]);
        let hit = &run(&idx, "大腸炎", &Scope::default()).unwrap().hits[0];
        assert!(hit.snippet_html.contains("<b>"), "{}", hit.snippet_html);
    }

    #[test]
    fn kana_width_long_vowel_and_phone_variants_meet() {
        let (_t, idx) = index();
        idx.put(&page("k", "氏名 ヤマダ タロウ 電話 03-5320-4472 パーキンソン病")).unwrap();
        idx.put(&page("h", "よみ やまだ はなこ 電話 0353204473 パ一キンソン")).unwrap();
        assert_eq!(ids(&idx, "ヤマダ"), vec!["h", "k"], "katakana finds hiragana and itself");
        assert_eq!(ids(&idx, "ﾔﾏﾀﾞ"), vec!["h", "k"], "half-width kana too");
        assert_eq!(ids(&idx, "パーキンソン"), vec!["h", "k"], "OCR's 一 for ー");
        assert_eq!(ids(&idx, "0353204472"), vec!["k"]);
        assert_eq!(ids(&idx, "03-5320-4473"), vec!["h"]);
        assert_eq!(ids(&idx, "０３－５３２０－４４７２"), vec!["k"]);
        let hit = &run(&idx, "ヤマダ", &Scope::default()).unwrap().hits[0];
        assert!(hit.snippet_html.contains("<b>"), "{}", hit.snippet_html);
    }

    fn rich(id: &str, case: &str, person: &str, city: &str, disease: &str, received: &str) -> Doc {
        Doc {
            form: "application".into(),
            case_no: Some(case.into()),
            person: Some(person.into()),
            name: Some("山田 太郎".into()),
            kana: Some("ヤマダ タロウ".into()),
            birth: NaiveDate::from_ymd_opt(1960, 5, 1),
            city: Some(city.into()),
            disease: Some(disease.into()),
            status: Some("reviewing".into()),
            received: format!("{received}T01:00:00Z").parse().unwrap(),
            ..page(id, &format!("申請書 山田 太郎 ヤマダ タロウ {city} {disease}"))
        }
    }

    #[test]
    fn fields_filters_ranges_facets_and_sorting() {
        let (_t, idx) = index();
        idx.put(&rich("r1", "1000001", "p1", "新宿区", "潰瘍性大腸炎", "2024-04-01")).unwrap();
        idx.put(&rich("r2", "1000002", "p2", "渋谷区", "パーキンソン病", "2025-06-30")).unwrap();
        idx.put(&Doc {
            form: "clinical_survey".into(),
            ..rich("r3", "1000001", "p1", "新宿区", "潰瘍性大腸炎", "2025-01-10")
        })
        .unwrap();
        assert_eq!(ids(&idx, "市区町村:新宿"), vec!["r1", "r3"]);
        assert_eq!(ids(&idx, "病名:大腸炎 様式:申請書"), vec!["r1"]);
        assert_eq!(ids(&idx, "form:clinical_survey"), vec!["r3"]);
        assert_eq!(ids(&idx, "受給者番号:1000001"), vec!["r1", "r3"]);
        assert_eq!(ids(&idx, "かな:やまだ 受付日:2025"), vec!["r2", "r3"]);
        assert_eq!(ids(&idx, "受付日:2024-04-01"), vec!["r1"]);
        assert_eq!(ids(&idx, "受付日:2024-04-02..2025-06"), vec!["r2", "r3"]);
        assert_eq!(ids(&idx, "状態:審査中").len(), 3);
        assert_eq!(ids(&idx, "生年月日:1960-05-01").len(), 3);
        assert!(ids(&idx, "生年月日:..1959").is_empty());
        for (q, want) in [
            ("受付日:2024-13", Problem::BadDate { field: "受付日", value: "2024-13".into() }),
            ("様式:手紙", Problem::BadValue { field: "様式", value: "手紙".into() }),
            ("個人番号:123", Problem::BadMyNumber),
        ] {
            match run(&idx, q, &Scope { my_number: true, hidden_persons: vec![] }) {
                Err(Error::Query(p)) => assert_eq!(p, want, "{q}"),
                other => panic!("{q}: {other:?}"),
            }
        }
        let res = run(&idx, "山田", &Scope::default()).unwrap();
        assert_eq!(res.total, 3);
        let city = res.facets.iter().find(|f| f.dimension == "city").unwrap();
        assert_eq!(city.values[0], ("新宿区".to_owned(), 2));
        let newest = idx.search(&Request { sort: Sort::Newest, ..request("山田", &Scope::default()) }).unwrap();
        assert_eq!(newest.hits.iter().map(|h| h.record_id.as_str()).collect::<Vec<_>>(), ["r2", "r3", "r1"]);
        let oldest = idx.search(&Request { sort: Sort::Oldest, ..request("山田", &Scope::default()) }).unwrap();
        assert_eq!(oldest.hits[0].record_id, "r1");
        assert!(!oldest.hits[0].snippet_html.is_empty(), "field-only hits still show the text");
    }

    fn request<'a>(q: &'a str, scope: &'a Scope) -> Request<'a> {
        Request {
            query: q,
            scope,
            sort: Sort::Relevance,
            limit: 20,
            offset: 0,
            facets: true,
            snippets: true,
            count: true,
            hash_my_number: &hash,
            near: false,
        }
    }

    #[test]
    fn scope_hides_my_number_pages_and_suspended_persons_everywhere() {
        let (_t, idx) = index();
        idx.put(&rich("r1", "1000001", "p1", "新宿区", "潰瘍性大腸炎", "2024-04-01")).unwrap();
        idx.put(&rich("r2", "1000002", "p2", "新宿区", "潰瘍性大腸炎", "2024-04-01")).unwrap();
        idx.put(&Doc {
            shows_my_number: true,
            form: "my_number_form".into(),
            my_numbers: vec![hash("123456789018")],
            ..rich("r3", "1000001", "p1", "新宿区", "潰瘍性大腸炎", "2024-04-01")
        })
        .unwrap();
        let all = Scope { my_number: true, hidden_persons: vec![] };
        let no_mn = Scope { my_number: false, hidden_persons: vec![] };
        let suspended = Scope { my_number: true, hidden_persons: vec!["p1".into()] };
        assert_eq!(ids_in(&idx, "新宿区", &all), vec!["r1", "r2", "r3"]);
        assert_eq!(ids_in(&idx, "新宿区", &no_mn), vec!["r1", "r2"]);
        assert_eq!(ids_in(&idx, "新宿区", &suspended), vec!["r2"]);
        assert_eq!(ids_in(&idx, "個人番号:1234-5678-9018", &all), vec!["r3"]);
        assert!(matches!(run(&idx, "個人番号:123456789018", &no_mn), Err(Error::Query(Problem::MyNumberNotAllowed))));
        let res = run(&idx, "新宿区", &suspended).unwrap();
        assert_eq!(res.total, 1, "hidden documents are not counted");
        let city = res.facets.iter().find(|f| f.dimension == "city").unwrap();
        assert_eq!(city.values, vec![("新宿区".to_owned(), 1)]);
        assert_eq!(idx.visible_docs(&suspended).unwrap(), 1);
        assert_eq!(idx.visible_docs(&no_mn).unwrap(), 2);
        let mut of_p1 = idx.records_of_person("p1").unwrap();
        of_p1.sort();
        assert_eq!(of_p1, vec!["r1", "r3"]);
    }

    #[test]
    fn phrase_ranking_checks_loose_candidates_and_falls_back_when_short() {
        let (_t, idx) = index();
        // Many pages with both bigrams of 東京都 but never adjacent (and more of them, so they
        // score higher on bag-of-bigrams), a few with the phrase itself.
        let mut docs: Vec<Doc> =
            (0..150).map(|i| page(&format!("x{i:03}"), "東京 東京 東京 京都 京都 京都 東京に京都")).collect();
        docs.extend((0..3).map(|i| page(&format!("y{i}"), "東京都")));
        idx.put_many(&docs).unwrap();
        assert_eq!(ids(&idx, "東京都"), vec!["y0", "y1", "y2"], "only true phrase matches, found by the fallback");
        // When the phrase is common, the loose pass alone fills the page, every hit verified.
        let many: Vec<Doc> = (0..60).map(|i| page(&format!("z{i:02}"), "東京都 東京都")).collect();
        idx.put_many(&many).unwrap();
        let res = run(&idx, "東京都", &Scope::default()).unwrap();
        assert_eq!(res.hits.len(), 20);
        assert_eq!(res.total, 63);
        assert!(res.hits.iter().all(|h| !h.record_id.starts_with('x')), "no loose-only match");
        // Paging past the first 20 still returns only matches.
        let next = idx.search(&Request { offset: 60, ..request("東京都", &Scope::default()) }).unwrap();
        assert_eq!(next.hits.len(), 3);
        assert!(next.hits.iter().all(|h| !h.record_id.starts_with('x')));
    }

    #[test]
    fn an_index_knows_its_format_and_an_older_one_is_outdated() {
        let tmp = tempfile::tempdir().unwrap();
        let key = Key::generate();
        let open =
            || SearchIndex::open(EncryptedDirectory::open(tmp.path().to_owned(), vec![key.clone()]).unwrap()).unwrap();
        let idx = open();
        assert!(!idx.outdated(), "a new index is current");
        idx.put(&page("a", "山田")).unwrap();
        drop(idx);
        let idx = open();
        assert!(!idx.outdated(), "still current when opened again: {:?}", idx.stored_format());
        // An index from before formats were recorded (documents, no mark) is outdated.
        drop(idx);
        std::fs::remove_file(tmp.path().join(FORMAT_FILE)).unwrap();
        let idx = open();
        assert!(idx.outdated());
        idx.mark_current().unwrap();
        assert!(!idx.outdated());
    }

    #[test]
    fn or_groups_and_not() {
        let (_t, idx) = index();
        idx.put(&page("a", "潰瘍性大腸炎 新宿区")).unwrap();
        idx.put(&page("b", "クローン病 渋谷区")).unwrap();
        idx.put(&page("c", "パーキンソン病 新宿区")).unwrap();
        assert_eq!(ids(&idx, "大腸炎 OR クローン"), vec!["a", "b"]);
        assert_eq!(ids(&idx, "(大腸炎 | パーキンソン) -渋谷区"), vec!["a", "c"]);
        assert_eq!(ids(&idx, "新宿区 NOT (大腸炎 OR 渋谷)"), vec!["c"]);
        assert_eq!(ids(&idx, "区 -(クローン OR パーキンソン)"), vec!["a"]);
        assert_eq!(ids(&idx, "病 新宿区 OR 渋谷区"), vec!["b", "c"]);
        // A phrase excluded whose first match in a segment lies after the first candidate.
        let docs: Vec<Doc> = ["新宿区 一", "新宿区 二", "新宿区 潰瘍性大腸炎の疑い"]
            .iter()
            .enumerate()
            .map(|(i, t)| page(&format!("s{i}"), t))
            .collect();
        idx.put_many(&docs).unwrap();
        assert_eq!(ids(&idx, "新宿区 -\"潰瘍性大腸炎の疑い\""), vec!["a", "c", "s0", "s1"]);
        for q in ["大腸炎 OR -渋谷", "-(大腸炎 OR 渋谷)", "NOT 渋谷"] {
            assert!(matches!(run(&idx, q, &Scope::default()), Err(Error::Query(Problem::OnlyExclusions))), "{q}");
        }
    }

    #[test]
    fn near_spellings_follow_the_exact_hits_marked_and_never_flood() {
        let (_t, idx) = index();
        idx.put(&page("a", "申請者 東洋産業株式会社")).unwrap();
        idx.put(&page("b", "申請者 東洋産業株会社")).unwrap();
        idx.put(&page("c", "申請者 東洋產業株式会社")).unwrap();
        idx.put(&page("d", "申請者 西洋商事株式会社")).unwrap();
        idx.put(&page("e", "氏名 山田 太郎")).unwrap();
        let near = |q: &str, limit: usize| {
            let scope = Scope::default();
            let r = idx.search(&Request { near: true, limit, ..request(q, &scope) }).unwrap();
            (r.hits.iter().map(|h| (h.record_id.clone(), h.near)).collect::<Vec<_>>(), r.total, r.near)
        };
        let (hits, total, n) = near("東洋産業株式会社", 20);
        assert_eq!(hits[0], ("a".to_string(), false), "the exact hit first");
        let mut rest: Vec<_> = hits[1..].to_vec();
        rest.sort();
        assert_eq!(rest, vec![("b".to_string(), true), ("c".to_string(), true)], "three edits away (d) is not near");
        assert_eq!((total, n), (1, 2));
        assert_eq!(ids(&idx, "東洋産業株式会社"), vec!["a"], "without the tier, exact only");
        let (hits, _, n) = near("東洋産業株式会社", 1);
        assert_eq!((hits, n), (vec![("a".to_string(), false)], 0), "a page full of exact hits gets no near ones");
        assert_eq!(near("山田太郎", 20).0, vec![("e".to_string(), false)], "across a space: found, not marked");
        assert_eq!(near("山田", 20).2, 0);
        assert!(near("山由", 20).0.is_empty(), "two characters: no fuzzy tier");
        let (hits, ..) = near("東洋産業株式会社 -西洋", 20);
        assert_eq!(hits.len(), 3, "exclusions stay exact and apply to near hits");
    }

    #[test]
    fn put_replaces_the_same_record() {
        let (_t, idx) = index();
        idx.put(&page("a", "山田")).unwrap();
        idx.put(&page("a", "山田")).unwrap();
        assert_eq!(idx.num_docs(), 1);
        assert_eq!(ids(&idx, "山田").len(), 1);
    }
}
