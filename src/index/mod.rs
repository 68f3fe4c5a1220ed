//! index/: "which pages mention this?" The tantivy schema, Japanese tokenisers, query building
//! and snippets. The index lives in the store's encrypted directory, so its terms and stored
//! text never reach the disk in the clear.
//!
//! Fields: `record_id` (exact), `text` (bigrams with positions, stored for snippets),
//! `text_uni` (unigrams, for one-character queries), `received` (date).

pub mod query;
pub mod tokenizer;

use std::sync::Mutex;

use tantivy::collector::TopDocs;
use tantivy::query::{BooleanQuery, Occur, PhraseQuery, Query, TermQuery};
use tantivy::schema::{Field, IndexRecordOption, STORED, STRING, Schema, TextFieldIndexing, TextOptions, Value};
use tantivy::snippet::SnippetGenerator;
use tantivy::{DateTime, Index, IndexReader, IndexWriter, ReloadPolicy, TantivyDocument, Term};
use unicode_normalization::UnicodeNormalization;

use crate::store::index_dir::EncryptedDirectory;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("search index")]
    Tantivy(#[from] tantivy::TantivyError),
    #[error("the query has no searchable words")]
    EmptyQuery,
    #[error("the query only excludes words; say what to find as well")]
    OnlyExclusions,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Clone, Copy)]
struct Fields {
    record_id: Field,
    text: Field,
    text_uni: Field,
    received: Field,
}

pub struct SearchIndex {
    index: Index,
    reader: IndexReader,
    writer: Mutex<IndexWriter>,
    f: Fields,
}

/// One search result: a record and an HTML snippet (text escaped, matches in `<b>`).
#[derive(Debug, Clone)]
pub struct Hit {
    pub record_id: String,
    pub score: f32,
    pub snippet_html: String,
}

/// Normalises text the way both indexing and querying see it: NFKC (full-width digits and
/// letters to ASCII, half-width kana to full-width), and OCR's spaces between CJK characters
/// removed (Tesseract's `jpn` model emits `山 田 太 郎`).
pub fn normalise(text: &str) -> String {
    let nfkc: String = text.nfkc().collect();
    let chars: Vec<char> = nfkc.chars().collect();
    let mut out = String::with_capacity(nfkc.len());
    for (i, &c) in chars.iter().enumerate() {
        if c == ' ' || c == '\u{3000}' {
            let prev = out.chars().last();
            let next = chars[i + 1..].iter().find(|c| **c != ' ');
            if prev.is_some_and(tokenizer::is_cjk) && next.is_some_and(|c| tokenizer::is_cjk(*c)) {
                continue;
            }
            if prev == Some(' ') {
                continue;
            }
        }
        out.push(c);
    }
    out
}

fn schema() -> (Schema, Fields) {
    let mut b = Schema::builder();
    let record_id = b.add_text_field("record_id", STRING | STORED);
    let text_opts = TextOptions::default()
        .set_indexing_options(
            TextFieldIndexing::default()
                .set_tokenizer(tokenizer::BIGRAM)
                .set_index_option(IndexRecordOption::WithFreqsAndPositions),
        )
        .set_stored();
    let text = b.add_text_field("text", text_opts);
    let uni_opts = TextOptions::default().set_indexing_options(
        TextFieldIndexing::default().set_tokenizer(tokenizer::UNIGRAM).set_index_option(IndexRecordOption::WithFreqs),
    );
    let text_uni = b.add_text_field("text_uni", uni_opts);
    let received = b.add_date_field("received", tantivy::schema::INDEXED | STORED);
    (b.build(), Fields { record_id, text, text_uni, received })
}

impl SearchIndex {
    pub fn open(dir: EncryptedDirectory) -> Result<SearchIndex> {
        let (schema, f) = schema();
        let index = Index::open_or_create(dir, schema)?;
        index.tokenizers().register(tokenizer::BIGRAM, tokenizer::BigramTokenizer);
        index.tokenizers().register(tokenizer::UNIGRAM, tokenizer::UnigramTokenizer);
        let writer = index.writer_with_num_threads(1, 50_000_000)?;
        let reader = index.reader_builder().reload_policy(ReloadPolicy::Manual).try_into()?;
        Ok(SearchIndex { index, reader, writer: Mutex::new(writer), f })
    }

    /// The document of one page: its id, its text in both tokenisations, its receipt date.
    fn doc(&self, record_id: &str, text: &str, received: chrono::DateTime<chrono::Utc>) -> TantivyDocument {
        let mut doc = TantivyDocument::default();
        doc.add_text(self.f.record_id, record_id);
        doc.add_text(self.f.text, text);
        doc.add_text(self.f.text_uni, text);
        doc.add_date(self.f.received, DateTime::from_timestamp_secs(received.timestamp()));
        doc
    }

    /// Replaces the index entry of `record_id` and commits (durable on return).
    pub fn put(&self, record_id: &str, text: &str, received: chrono::DateTime<chrono::Utc>) -> Result<()> {
        let doc = self.doc(record_id, text, received);
        let mut w = self.writer.lock().expect("index writer lock poisoned");
        w.delete_term(Term::from_field_text(self.f.record_id, record_id));
        w.add_document(doc)?;
        w.commit()?;
        drop(w);
        self.reader.reload()?;
        Ok(())
    }

    pub fn num_docs(&self) -> u64 {
        self.reader.searcher().num_docs()
    }

    /// Builds the query: every whitespace-separated word must occur; a word of several tokens
    /// is a phrase (its bigrams adjacent, in order); a single CJK character searches the unigram
    /// field.
    fn build_query(&self, query: &str) -> Result<Box<dyn Query>> {
        let mut clauses: Vec<(Occur, Box<dyn Query>)> = Vec::new();
        for clause in query::parse(query) {
            let toks = tokenizer::bigram_tokens(&clause.text);
            let sub: Box<dyn Query> = match toks.as_slice() {
                [] => continue,
                [t] if t.text.chars().count() == 1 && t.text.chars().all(tokenizer::is_cjk) => Box::new(
                    TermQuery::new(Term::from_field_text(self.f.text_uni, &t.text), IndexRecordOption::WithFreqs),
                ),
                [t] => Box::new(TermQuery::new(
                    Term::from_field_text(self.f.text, &t.text),
                    IndexRecordOption::WithFreqsAndPositions,
                )),
                many => Box::new(PhraseQuery::new_with_offset(
                    many.iter().map(|t| (t.position, Term::from_field_text(self.f.text, &t.text))).collect(),
                )),
            };
            clauses.push((if clause.negated { Occur::MustNot } else { Occur::Must }, sub));
        }
        if clauses.is_empty() {
            return Err(Error::EmptyQuery);
        }
        if clauses.iter().all(|(o, _)| *o == Occur::MustNot) {
            return Err(Error::OnlyExclusions);
        }
        Ok(Box::new(BooleanQuery::new(clauses)))
    }

    pub fn search(&self, query: &str, limit: usize) -> Result<Vec<Hit>> {
        let q = self.build_query(query)?;
        let searcher = self.reader.searcher();
        let top = searcher.search(&q, &TopDocs::with_limit(limit).order_by_score())?;
        let mut snippets = SnippetGenerator::create(&searcher, &*q, self.f.text)?;
        snippets.set_max_num_chars(120);
        let mut hits = Vec::with_capacity(top.len());
        for (score, addr) in top {
            let doc: TantivyDocument = searcher.doc(addr)?;
            let record_id = doc.get_first(self.f.record_id).and_then(|v| v.as_str()).unwrap_or_default().to_owned();
            let snippet_html = snippets.snippet_from_doc(&doc).to_html();
            hits.push(Hit { record_id, score, snippet_html });
        }
        // Equal scores in a stable order (by id), so the same query gives the same list.
        hits.sort_by(|a, b| b.score.total_cmp(&a.score).then_with(|| a.record_id.cmp(&b.record_id)));
        Ok(hits)
    }

    /// Deletes the documents of `record_ids` and commits. They no longer match any search,
    /// but their terms and stored text stay in the (encrypted) segment files until
    /// [`SearchIndex::compact`] merges those segments away.
    pub fn delete(&self, record_ids: &[String]) -> Result<()> {
        let mut w = self.writer.lock().expect("index writer lock poisoned");
        for id in record_ids {
            w.delete_term(Term::from_field_text(self.f.record_id, id));
        }
        w.commit()?;
        drop(w);
        self.reader.reload()?;
        Ok(())
    }

    /// Merges every segment that holds deleted documents and deletes the old segment files,
    /// so deleted text is gone from disk, not just marked dead.
    pub fn compact(&self) -> Result<()> {
        let mut w = self.writer.lock().expect("index writer lock poisoned");
        let dirty: Vec<tantivy::index::SegmentId> = self
            .reader
            .searcher()
            .segment_readers()
            .iter()
            .filter(|r| r.num_deleted_docs() > 0)
            .map(|r| r.segment_id())
            .collect();
        if !dirty.is_empty() {
            w.merge(&dirty).wait()?;
        }
        w.garbage_collect_files().wait()?;
        drop(w);
        self.reader.reload()?;
        Ok(())
    }

    /// `delete` then `compact`.
    pub fn purge(&self, record_ids: &[String]) -> Result<()> {
        self.delete(record_ids)?;
        self.compact()
    }

    /// How many documents (alive or deleted but not yet merged away) carry this record id.
    pub fn postings_for(&self, record_id: &str) -> Result<u64> {
        let searcher = self.reader.searcher();
        Ok(searcher.doc_freq(&Term::from_field_text(self.f.record_id, record_id))?)
    }

    /// Adds many documents with one commit (bulk import).
    pub fn put_many(&self, docs: &[(String, String, chrono::DateTime<chrono::Utc>)]) -> Result<()> {
        let mut w = self.writer.lock().expect("index writer lock poisoned");
        for (id, text, received) in docs {
            let doc = self.doc(id, text, *received);
            w.delete_term(Term::from_field_text(self.f.record_id, id));
            w.add_document(doc)?;
        }
        w.commit()?;
        drop(w);
        self.reader.reload()?;
        Ok(())
    }

    /// Deletes every document (used by reindex).
    pub fn clear(&self) -> Result<()> {
        let mut w = self.writer.lock().expect("index writer lock poisoned");
        w.delete_all_documents()?;
        w.commit()?;
        drop(w);
        self.reader.reload()?;
        Ok(())
    }

    pub fn schema(&self) -> Schema {
        self.index.schema()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::Key;

    fn index() -> (tempfile::TempDir, SearchIndex) {
        let tmp = tempfile::tempdir().unwrap();
        let dir = EncryptedDirectory::open(tmp.path().to_owned(), Key::generate()).unwrap();
        (tmp, SearchIndex::open(dir).unwrap())
    }

    #[test]
    fn normalise_folds_width_and_ocr_spaces() {
        assert_eq!(normalise("山 田　太 郎 ＴＥＬ０３"), "山田太郎 TEL03");
        assert_eq!(normalise("ﾔﾏﾀﾞ"), "ヤマダ");
        assert_eq!(normalise("Tokyo  Japan"), "Tokyo Japan");
    }

    #[test]
    fn phrase_semantics_and_single_char() {
        let (_t, idx) = index();
        let now = chrono::Utc::now();
        idx.put("a", &normalise("病名 潰瘍性大腸炎"), now).unwrap();
        idx.put("b", &normalise("東京に行って京都へ"), now).unwrap();
        idx.put("c", &normalise("住所 東京都新宿区 氏名 山田 太郎"), now).unwrap();
        let ids = |q: &str| -> Vec<String> {
            let mut v: Vec<_> = idx.search(q, 10).unwrap().into_iter().map(|h| h.record_id).collect();
            v.sort();
            v
        };
        assert_eq!(ids("大腸炎"), vec!["a"]);
        assert_eq!(ids("腸炎"), vec!["a"]);
        assert_eq!(ids("東京都"), vec!["c"], "bigrams must be adjacent, not just present");
        assert_eq!(ids("田"), vec!["c"]);
        assert_eq!(ids("山田太郎"), vec!["c"]);
        assert_eq!(ids("東京 新宿"), vec!["c"]);
        assert!(ids("大阪").is_empty());
        assert!(matches!(idx.search("  、。 ", 10), Err(Error::EmptyQuery)));
        assert!(matches!(idx.search("-山田", 10), Err(Error::OnlyExclusions)));
        assert_eq!(ids("東京 -大腸炎"), vec!["b", "c"]);
        assert_eq!(ids("東京 -新宿"), vec!["b"]);
        assert_eq!(ids("\"東京都新宿区\""), vec!["c"]);
        let hit = &idx.search("大腸炎", 10).unwrap()[0];
        assert!(hit.snippet_html.contains("<b>"), "{}", hit.snippet_html);
    }

    #[test]
    fn kana_width_and_phone_variants_meet() {
        let (_t, idx) = index();
        let now = chrono::Utc::now();
        idx.put("k", &normalise("氏名 ヤマダ タロウ 電話 03-5320-4472"), now).unwrap();
        idx.put("h", &normalise("よみ やまだ はなこ 電話 0353204473"), now).unwrap();
        let ids = |q: &str| -> Vec<String> {
            let mut v: Vec<_> = idx.search(q, 10).unwrap().into_iter().map(|h| h.record_id).collect();
            v.sort();
            v
        };
        assert_eq!(ids("ヤマダ"), vec!["h", "k"], "katakana finds hiragana and itself");
        assert_eq!(ids("ﾔﾏﾀﾞ"), vec!["h", "k"], "half-width kana too");
        assert_eq!(ids("0353204472"), vec!["k"]);
        assert_eq!(ids("03-5320-4473"), vec!["h"]);
        assert_eq!(ids("０３－５３２０－４４７２"), vec!["k"]);
        let hit = &idx.search("ヤマダ", 10).unwrap()[0];
        assert!(hit.snippet_html.contains("<b>"), "{}", hit.snippet_html);
    }

    #[test]
    fn put_replaces_the_same_record() {
        let (_t, idx) = index();
        let now = chrono::Utc::now();
        idx.put("a", "山田", now).unwrap();
        idx.put("a", "山田", now).unwrap();
        assert_eq!(idx.num_docs(), 1);
        assert_eq!(idx.search("山田", 10).unwrap().len(), 1);
    }
}
