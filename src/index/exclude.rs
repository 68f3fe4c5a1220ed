//! A wrapper for queries used as exclusions (`-"a phrase"`, the fuzzy tier's "not an exact
//! hit").
//!
//! tantivy 0.27 checks an exclusion by `seek_danger(doc)` on its scorer with the first
//! candidate of the including side, which may lie before the exclusion's own first match; the
//! phrase scorer (also inside an intersection, which forwards the look-back) asserts that a
//! target never lies behind it, so a phrase used as an exclusion panics in builds with debug
//! assertions. The wrapper answers `seek_danger` with plain forward seeks (a document before
//! the scorer's current one cannot match it).

use tantivy::query::{EnableScoring, Explanation, Query, Scorer, Weight};
use tantivy::{DocId, DocSet, Score, SeekDangerResult, SegmentReader, Term};

#[derive(Debug)]
pub struct Exclusion(pub Box<dyn Query>);

impl Clone for Exclusion {
    fn clone(&self) -> Exclusion {
        Exclusion(self.0.box_clone())
    }
}

impl Query for Exclusion {
    fn weight(&self, scoring: EnableScoring<'_>) -> tantivy::Result<Box<dyn Weight>> {
        Ok(Box::new(ExclusionWeight(self.0.weight(scoring)?)))
    }

    fn query_terms<'a>(&'a self, visitor: &mut dyn FnMut(&'a Term, bool)) {
        self.0.query_terms(visitor);
    }
}

struct ExclusionWeight(Box<dyn Weight>);

impl Weight for ExclusionWeight {
    fn scorer(&self, reader: &SegmentReader, boost: Score) -> tantivy::Result<Box<dyn Scorer>> {
        Ok(Box::new(LookBack(self.0.scorer(reader, boost)?)))
    }

    fn explain(&self, reader: &SegmentReader, doc: DocId) -> tantivy::Result<Explanation> {
        self.0.explain(reader, doc)
    }
}

struct LookBack(Box<dyn Scorer>);

impl DocSet for LookBack {
    fn advance(&mut self) -> DocId {
        self.0.advance()
    }

    fn seek(&mut self, target: DocId) -> DocId {
        self.0.seek(target)
    }

    /// By plain seeks only: never the inner scorer's own `seek_danger`, whose intersections
    /// pass a look-back on to their phrase scorers.
    fn seek_danger(&mut self, target: DocId) -> SeekDangerResult {
        let mut doc = self.0.doc();
        if doc < target {
            doc = self.0.seek(target);
        }
        if doc == target { SeekDangerResult::Found } else { SeekDangerResult::SeekLowerBound(doc) }
    }

    fn doc(&self) -> DocId {
        self.0.doc()
    }

    fn size_hint(&self) -> u32 {
        self.0.size_hint()
    }

    fn cost(&self) -> u64 {
        self.0.cost()
    }
}

impl Scorer for LookBack {
    fn score(&mut self) -> Score {
        self.0.score()
    }
}
