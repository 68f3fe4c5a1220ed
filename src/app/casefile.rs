//! A case's file (the case page): the case, its pages, its history, the inquiries log and its
//! status; and the data subject's requests (開示・訂正・利用停止): find everything held on one
//! person, export it as an AES-256 encrypted ZIP, correct a value with a reason, suspend. A
//! suspended person's case is hidden from everyone but the security officer. Every step is
//! audited (ids and counts, never values).

use super::Hozon;
use crate::audit::Event;
use crate::auth::{Actor, Function, Level, Role};
use crate::cases::{Case, CaseStatus, Inquiry};
use crate::drafts::review::{self, ReviewStatus};
use crate::error::{Error, Result};
use crate::store::{BlobRole, Record, RecordId, RecordState};

/// One page of a case.
#[derive(Debug, Clone)]
pub struct CasePage {
    pub id: RecordId,
    pub form: String,
    pub received_at: chrono::DateTime<chrono::Utc>,
    pub review: Option<ReviewStatus>,
    pub link: Option<crate::cases::CaseLink>,
}

/// A case with its pages, for the case page.
#[derive(Debug, Clone)]
pub struct CaseFile {
    /// The case's keyed-hash id (what URLs carry; never the recipient number).
    pub key: String,
    pub case: Case,
    pub pages: Vec<CasePage>,
    pub suspended: bool,
}

/// How a data subject is looked up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PersonQuery {
    Recipient(String),
    NameBirth {
        name: String,
        birth: chrono::NaiveDate,
    },
    /// Needs the My Number right.
    MyNumber(String),
}

fn corrupt(e: impl std::fmt::Display) -> Error {
    Error::Corrupt(format!("case file: {e}"))
}

impl Hozon {
    pub(crate) fn suspended(&self, recipient_no: &str) -> Result<bool> {
        Ok(self.store.get_doc(super::search::SUSPENSION, &self.person_key(recipient_no))?.is_some())
    }

    /// The case `key` if `actor` may see it (cases=view; a suspended person only for the
    /// security officer).
    fn visible_case(&self, actor: &Actor, key: &str) -> Result<(Case, bool)> {
        actor.require(Function::Cases, Level::View)?;
        let case = self.load_case(key)?.ok_or_else(|| Error::NotFound(format!("case {key}")))?;
        let suspended = self.suspended(&case.current.recipient_no)?;
        if suspended && actor.role() != Some(Role::SecurityOfficer) {
            return Err(Error::NotFound(format!("case {key}")));
        }
        Ok((case, suspended))
    }

    /// The key of the case with recipient number `no` (for links from search results).
    pub fn case_key_of(&self, no: &str) -> String {
        self.case_key(no)
    }

    /// The case page's data, audited as a view.
    pub fn case_file(&self, actor: &Actor, key: &str) -> Result<CaseFile> {
        let (case, suspended) = self.visible_case(actor, key)?;
        let hidden = self.hidden_markers(actor)?;
        let mut pages = Vec::new();
        for id in self.case_page_ids(key)? {
            let Some(rec) = self.store.record(&id)? else { continue };
            if rec.state != RecordState::Stored {
                continue;
            }
            // A page that is a suspended person's (a namesake's case, say) stays hidden here too.
            if self.suspended_for(&rec, &hidden)? {
                continue;
            }
            let draft = self.draft_of(&rec)?;
            // A page relinked elsewhere since is not this case's.
            let link = draft.as_ref().and_then(|d| d.case.clone());
            if link.as_ref().is_some_and(|l| l.recipient_no != case.current.recipient_no) {
                continue;
            }
            pages.push(CasePage {
                id: rec.id.clone(),
                form: rec.class.clone(),
                received_at: rec.received_at,
                review: draft.as_ref().and_then(|d| d.review.as_ref()).map(|r| r.status),
                link,
            });
        }
        pages.sort_by_key(|p| p.received_at);
        self.store.audit(Event::new(actor.name(), "case.view", key, &format!("{} pages", pages.len())))?;
        Ok(CaseFile { key: key.to_owned(), case, pages, suspended })
    }

    fn save_case(&self, key: &str, case: &Case, event: Event) -> Result<()> {
        let _epochs = self.store.epoch_write_guard();
        self.store.put_docs(&self.case_docs(key, case)?, event)?;
        Ok(())
    }

    /// Moves the case along 受付 → 審査中 → 認定/非認定 → 通知済 (cases=update); the old
    /// version goes into the history.
    pub fn set_case_status(&self, actor: &Actor, key: &str, status: CaseStatus) -> Result<bool> {
        actor.require(Function::Cases, Level::Update)?;
        let (mut case, _) = self.visible_case(actor, key)?;
        if !case.set_status(status, actor.name(), chrono::Utc::now()) {
            return Ok(false);
        }
        self.save_case(key, &case, Event::new(actor.name(), "case.status", key, status.key()))?;
        Ok(true)
    }

    /// Adds an entry to the inquiries log (問合せ経過) (cases=update).
    pub fn add_inquiry(
        &self,
        actor: &Actor,
        key: &str,
        on: chrono::NaiveDate,
        channel: &str,
        note: &str,
    ) -> Result<()> {
        actor.require(Function::Cases, Level::Update)?;
        if note.trim().is_empty() || channel.trim().is_empty() {
            return Err(review::ReviewError::Refused("問合せの方法と内容を入力してください".into()).into());
        }
        let (mut case, _) = self.visible_case(actor, key)?;
        case.inquiries.push(Inquiry {
            on,
            channel: channel.trim().to_owned(),
            by: actor.name().to_owned(),
            note: note.trim().to_owned(),
        });
        case.touch(chrono::Utc::now());
        self.save_case(key, &case, Event::new(actor.name(), "case.inquiry", key, "ok"))
    }

    /// 閲覧停止 of the person of case `key` (see `suspend`).
    pub fn suspend_case(&self, actor: &Actor, key: &str, reason: &str) -> Result<()> {
        let (case, _) = self.visible_case(actor, key)?;
        self.suspend(actor, &case.current.recipient_no, reason)
    }

    /// Lifts the suspension of the person of case `key` (see `lift_suspension`).
    pub fn lift_case_suspension(&self, actor: &Actor, key: &str) -> Result<bool> {
        let (case, _) = self.visible_case(actor, key)?;
        self.lift_suspension(actor, &case.current.recipient_no)
    }

    /// Finds the cases held on one person (cases=view; by My Number only with the right).
    /// Returns case keys with the recipient number and name.
    pub fn find_person(&self, actor: &Actor, q: &PersonQuery) -> Result<Vec<(String, String, String)>> {
        actor.require(Function::Cases, Level::View)?;
        let keys: Vec<String> = match q {
            PersonQuery::Recipient(no) => vec![self.case_key(no.trim())],
            PersonQuery::MyNumber(n) => {
                if !actor.rights().my_number {
                    return Err(crate::auth::Error::Forbidden(format!("{} needs my_number", actor.name())).into());
                }
                let digits: String = n.chars().filter(char::is_ascii_digit).collect();
                self.store
                    .get_doc(super::cases::BY_MY_NUMBER, &self.my_number_key(&digits))?
                    .map(|k| String::from_utf8_lossy(&k).into_owned())
                    .into_iter()
                    .collect()
            }
            PersonQuery::NameBirth { birth, .. } => self
                .store
                .docs(&format!("{}/{}", super::cases::BY_BIRTH, self.birth_block(*birth)))?
                .into_iter()
                .map(|(k, _)| k)
                .collect(),
        };
        let mut found = Vec::new();
        for key in keys {
            let Ok((case, _)) = self.visible_case(actor, &key) else { continue };
            if let PersonQuery::NameBirth { name, birth } = q
                && (crate::cases::matching::fold(name) != crate::cases::matching::fold(&case.current.name)
                    || case.current.birth_date != *birth)
            {
                continue;
            }
            found.push((key, case.current.recipient_no, case.current.name));
        }
        let how = match q {
            PersonQuery::Recipient(_) => "recipient",
            PersonQuery::NameBirth { .. } => "name_birth",
            PersonQuery::MyNumber(_) => "my_number",
        };
        self.store.audit(Event::new(actor.name(), "person.find", how, &format!("{} found", found.len())))?;
        Ok(found)
    }

    /// Everything held on the person of case `key` (開示請求), as a ZIP whose entries are each
    /// AES-256 encrypted with `password` (WinZip AE-2: opens in 7-Zip, Windows with 7-Zip or
    /// Explorer add-ons, macOS Archive Utility alternatives, `7z x`). Contents: the case and its
    /// history as JSON, each page's scan, its draft (values, corrections) and text. Needs
    /// export=update and a recent second factor; the password is never stored.
    pub fn export_person(&self, actor: &Actor, key: &str, password: &str) -> Result<Vec<u8>> {
        actor.require(Function::Export, Level::Update)?;
        actor.require_second_factor()?;
        if password.chars().count() < 12 {
            return Err(review::ReviewError::Refused("パスワードは12文字以上にしてください".into()).into());
        }
        let file = self.case_file(actor, key)?;
        // The package holds the scans and values as they are: every page must pass the page
        // check as it is (a page showing a My Number only for an officer with that right).
        for p in &file.pages {
            let Some(rec) = self.store.record(&p.id)? else { continue };
            if self.check_page_access(actor, &rec, false).is_err() {
                return Err(crate::auth::Error::Forbidden(format!(
                    "{} needs my_number to export a page showing a My Number",
                    actor.name()
                ))
                .into());
            }
        }
        let mut zip = crate::archive::AesZip::new(password);
        let mut put = |name: &str, bytes: &[u8]| -> Result<()> { zip.put(name, bytes).map_err(corrupt) };
        put("case.json", &serde_json::to_vec_pretty(&file.case).map_err(corrupt)?)?;
        let mut readme = format!(
            "保有個人情報の開示\n受給者番号: {}\n作成: {}\n作成者: {}\n含まれるもの: 受給者台帳の記録と履歴（case.json）、書類ごとのスキャン画像（.png）、読取・確認結果と訂正履歴（.json）、本文（.txt）\n",
            file.case.current.recipient_no,
            chrono::Utc::now().with_timezone(&crate::jp::jst()).format("%Y-%m-%d %H:%M（日本時間）"),
            actor.name()
        );
        for (n, p) in file.pages.iter().enumerate() {
            let Some(rec) = self.store.record(&p.id)? else { continue };
            let stem = format!("{:03}-{}", n + 1, rec.class);
            put(&format!("{stem}.png"), &self.store.read_blob(&rec, BlobRole::Original)?)?;
            if let Some(d) = self.draft_of(&rec)? {
                put(&format!("{stem}.json"), &serde_json::to_vec_pretty(&d).map_err(corrupt)?)?;
            }
            put(&format!("{stem}.txt"), &self.store.read_blob(&rec, BlobRole::Text)?)?;
            readme.push_str(&format!("{stem}: 受付 {}\n", rec.received_at.format("%Y-%m-%d")));
        }
        put("README.txt", readme.as_bytes())?;
        let bytes = zip.finish().map_err(corrupt)?;
        self.store.audit(Event::new(actor.name(), "person.export", key, &format!("{} pages", file.pages.len())))?;
        Ok(bytes)
    }

    /// Corrects one value of a page with a reason (訂正請求; review=update): kept in the page's
    /// correction history, re-indexed.
    pub fn correct_value(&self, actor: &Actor, id: &RecordId, field: &str, value: &str, reason: &str) -> Result<()> {
        actor.require(Function::Review, Level::Update)?;
        if reason.trim().is_empty() {
            return Err(review::ReviewError::Refused("訂正の理由を入力してください".into()).into());
        }
        let rec: Record = self.review_record(actor, id)?;
        let mut d = self.draft_of(&rec)?.ok_or_else(|| Error::NotFound(id.to_string()))?;
        if let Some(link) = &d.case {
            self.visible_case(actor, &self.case_key(&link.recipient_no))?;
        }
        let now = chrono::Utc::now();
        review::correct(&mut d, field, value, reason.trim(), actor.name(), now)?;
        let json = serde_json::to_vec(&d).map_err(corrupt)?;
        let text = crate::index::normalise(&d.index_text());
        let mut changed = rec.clone();
        changed.last_changed_at = Some(now);
        changed.retention = Some(self.retention_for(&changed)?);
        let updated = self.store.replace_blobs(
            &changed,
            &[(BlobRole::Draft, &json), (BlobRole::Text, text.as_bytes())],
            Event::new(actor.name(), "draft.correct", id.as_str(), field),
        )?;
        self.index.put(&self.index_doc(&updated, &text, Some(&d)))?;
        Ok(())
    }
}
