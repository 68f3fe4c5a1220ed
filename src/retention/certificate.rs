//! Destruction certificates (廃棄証明書): a PDF in Japanese with an embedded subset of IPAex
//! Gothic (Type0/CIDFontType2 with a ToUnicode map, so `pdftotext` extracts the text), listing
//! the run, the processing time and method, the result per record class, every tombstone id
//! (or document-box code), the preparer and approver, and the SHA-256 of the run's manifest.
//!
//! Every certificate is entered in the certificate register (the PDF's own SHA-256, the
//! manifest digest) and the audit log. [`verify`] takes a file and says whether it is a
//! certificate hozon issued, unchanged: a changed byte or a regenerated list gives a different
//! digest and is rejected, naming the run it claims to be.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::run::{ItemStatus, Run, RunKind};
use crate::app::Hozon;
use crate::audit::Event;
use crate::auth::{Actor, Function, Level};
use crate::error::{Error, Result};
use crate::pdf::{self, Line};

const REGISTER: &str = "certificate";
const MANIFEST: &str = "manifest";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    pub run_id: String,
    pub kind: RunKind,
    pub as_of: chrono::NaiveDate,
    pub issued_at: DateTime<Utc>,
    pub method: String,
    pub preparer: String,
    pub approver: String,
    pub executor: String,
    /// Destroyed items per record class.
    pub counts: BTreeMap<String, usize>,
    /// Title and legal basis of each class's policy, as applied.
    pub policies: BTreeMap<String, (String, String)>,
    pub excluded: usize,
    pub held: usize,
    /// Approved, but kept by the re-check at execution.
    #[serde(default)]
    pub skipped: usize,
    pub missing: Vec<String>,
    /// Items not destroyed, each with its reason: held or excluded at planning, or kept by the
    /// re-check at execution (a hold since, a policy now 移管, a due date moved).
    #[serde(default)]
    pub not_destroyed: Vec<(String, String)>,
    /// The certificate's document number (文書番号) and the issuing office.
    #[serde(default)]
    pub document_number: String,
    #[serde(default)]
    pub office: String,
    /// Tombstone ids (electronic) or box codes (paper), sorted.
    pub ids: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RegisterEntry {
    pub run_id: String,
    pub pdf_sha256: String,
    pub manifest_sha256: String,
    pub issued_at: DateTime<Utc>,
    pub file: String,
    /// Position in the register (1, 2, …) and the chain: `mac` is a keyed hash over this
    /// entry and the previous entry's `mac`, so the register is tamper-evident on its own,
    /// for as long as certificates are kept, whatever the audit log's own disposal removes.
    #[serde(default)]
    pub seq: u64,
    #[serde(default)]
    pub prev: String,
    #[serde(default)]
    pub mac: String,
}

impl RegisterEntry {
    fn compute_mac(&self, h: &Hozon) -> String {
        let payload = format!(
            "{}\n{}\n{}\n{}\n{}\n{}",
            self.seq,
            self.prev,
            self.run_id,
            self.pdf_sha256,
            self.manifest_sha256,
            self.issued_at.to_rfc3339()
        );
        h.store.lookup_hash("certificate-register", &payload)
    }
}

/// The register's head (`certificate_head`): the last entry's sequence number and mac, so a
/// removed last entry is noticed too.
const HEAD: (&str, &str) = ("certificate_head", "head");

pub struct Issued {
    pub path: std::path::PathBuf,
    pub pdf_sha256: String,
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

pub fn method_for(kind: RunKind) -> &'static str {
    match kind {
        RunKind::Electronic => "暗号消去（データ鍵の破棄）＋削除（本体・索引・一時ファイル）",
        RunKind::Paper => "溶解処理（委託業者による）",
        RunKind::AuditLog => "監査ログ記録の削除（保存期間経過分。ハッシュ連鎖の起点を記録）",
    }
}

/// Builds the manifest, the PDF, and enters both in the register and the audit log.
pub fn issue(h: &Hozon, run: &Run, preparer: &str, approver: &str, executor: &str) -> Result<Issued> {
    // Issued already (a run killed after issuing, before completing): the same certificate.
    if let Some(e) = entries(h)?.into_iter().find(|e| e.run_id == run.id) {
        return Ok(Issued { path: e.file.into(), pdf_sha256: e.pdf_sha256 });
    }
    let mut counts = BTreeMap::new();
    let mut ids = Vec::new();
    let mut not_destroyed = Vec::new();
    for i in &run.items {
        match &i.status {
            ItemStatus::Destroyed => {
                *counts.entry(i.class.clone()).or_insert(0) += 1;
                ids.push(i.id.clone());
            }
            ItemStatus::Held { reason } => not_destroyed.push((i.id.clone(), format!("保留（計画時）: {reason}"))),
            ItemStatus::Excluded { reason, by } => {
                not_destroyed.push((i.id.clone(), format!("除外（{by}）: {reason}")))
            }
            ItemStatus::Skipped { reason } => not_destroyed.push((i.id.clone(), format!("実行時の再確認: {reason}"))),
            ItemStatus::Due | ItemStatus::Missing | ItemStatus::AwaitingDecision => {}
        }
    }
    ids.sort();
    let applied = h.applied_policies();
    let policies = counts
        .keys()
        .filter_map(|c| applied.get(c).ok().map(|p| (c.clone(), (p.title.clone(), p.legal_basis.clone()))))
        .collect();
    let manifest = Manifest {
        run_id: run.id.clone(),
        kind: run.kind,
        as_of: run.as_of,
        issued_at: Utc::now(),
        method: method_for(run.kind).into(),
        preparer: preparer.into(),
        approver: approver.into(),
        executor: executor.into(),
        counts,
        policies,
        excluded: run.count(|s| matches!(s, ItemStatus::Excluded { .. })),
        held: run.count(|s| matches!(s, ItemStatus::Held { .. })),
        skipped: run.count(|s| matches!(s, ItemStatus::Skipped { .. })),
        missing: run.items.iter().filter(|i| i.status == ItemStatus::Missing).map(|i| i.id.clone()).collect(),
        not_destroyed,
        document_number: format!("{}第{}号", h.config.office.document_prefix, run.id),
        office: h.config.office.name.clone(),
        ids,
    };
    let manifest_bytes = serde_json::to_vec(&manifest).expect("manifest serialises");
    let manifest_sha256 = sha256_hex(&manifest_bytes);
    let pdf = render(&manifest, &manifest_sha256)?;
    let pdf_sha256 = sha256_hex(&pdf);
    let path = h.store.write_certificate(&run.id, &pdf)?;
    h.store.put_doc(
        MANIFEST,
        &run.id,
        &manifest_bytes,
        Event::new(executor, "dispose.manifest", &format!("{} sha256 {manifest_sha256}", run.id), "ok"),
    )?;
    let (seq, prev) = register_head(h)?;
    let mut entry = RegisterEntry {
        run_id: run.id.clone(),
        pdf_sha256: pdf_sha256.clone(),
        manifest_sha256,
        issued_at: manifest.issued_at,
        file: path.display().to_string(),
        seq: seq + 1,
        prev,
        mac: String::new(),
    };
    entry.mac = entry.compute_mac(h);
    let head = serde_json::to_vec(&(entry.seq, &entry.mac)).expect("head serialises");
    h.store.put_docs(
        &[
            (REGISTER.to_owned(), run.id.clone(), serde_json::to_vec(&entry).expect("entry serialises")),
            (HEAD.0.to_owned(), HEAD.1.to_owned(), head),
        ],
        Event::new(executor, "dispose.certificate", &format!("{} sha256 {pdf_sha256}", run.id), "ok"),
    )?;
    Ok(Issued { path, pdf_sha256 })
}

/// Who may read the certificate register: records officers and auditors.
fn require_reader(actor: &Actor) -> Result<()> {
    if actor.rights().allows(Function::Audit, Level::View) {
        return Ok(());
    }
    Ok(actor.require(Function::Retention, Level::View)?)
}

/// The register of issued certificates, in issue order.
pub fn register(h: &Hozon, actor: &Actor) -> Result<Vec<RegisterEntry>> {
    require_reader(actor)?;
    entries(h)
}

fn entries(h: &Hozon) -> Result<Vec<RegisterEntry>> {
    let mut out: Vec<RegisterEntry> = h
        .store
        .docs(REGISTER)?
        .into_iter()
        .map(|(_, v)| serde_json::from_slice(&v).map_err(|e| Error::Corrupt(e.to_string())))
        .collect::<Result<_>>()?;
    out.sort_by_key(|e| (e.seq, e.issued_at));
    Ok(out)
}

/// The register's last sequence number and mac (0 and "" for an empty one).
fn register_head(h: &Hozon) -> Result<(u64, String)> {
    match h.store.get_doc(HEAD.0, HEAD.1)? {
        Some(v) => serde_json::from_slice(&v).map_err(|e| Error::Corrupt(format!("certificate register head: {e}"))),
        None => Ok((0, String::new())),
    }
}

/// Whether the register's chain is intact from its first entry to the recorded head; names
/// the first entry that is not.
pub fn verify_register(h: &Hozon, actor: &Actor) -> Result<std::result::Result<usize, String>> {
    require_reader(actor)?;
    register_chain(h)
}

fn register_chain(h: &Hozon) -> Result<std::result::Result<usize, String>> {
    let entries: Vec<RegisterEntry> = entries(h)?.into_iter().filter(|e| e.seq > 0).collect();
    let mut prev = String::new();
    for (i, e) in entries.iter().enumerate() {
        if e.seq != i as u64 + 1 || e.prev != prev || e.compute_mac(h) != e.mac {
            return Ok(Err(format!("証明書登録簿の {} 番目（{}）が改ざんされています", i + 1, e.run_id)));
        }
        prev = e.mac.clone();
    }
    let (seq, mac) = register_head(h)?;
    if seq != entries.len() as u64 || mac != prev {
        return Ok(Err(format!("証明書登録簿の末尾が記録と一致しません（登録 {} 件、記録 {seq} 件）", entries.len())));
    }
    Ok(Ok(entries.len()))
}

/// What `verify` found.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// Issued by hozon for this run, unchanged, and recorded in the audit log.
    Genuine { run_id: String, issued_at: DateTime<Utc> },
    /// Claims to be the certificate of `run_id`, but differs from the one issued.
    Altered { run_id: String },
    /// Not a certificate hozon issued.
    Unknown,
}

/// Checks a certificate file against the register, the stored manifest and the audit log.
pub fn verify(h: &Hozon, actor: &Actor, pdf: &[u8]) -> Result<Verdict> {
    require_reader(actor)?;
    let digest = sha256_hex(pdf);
    let entries = entries(h)?;
    if let Some(e) = entries.iter().find(|e| e.pdf_sha256 == digest) {
        let manifest = h.store.get_doc(MANIFEST, &e.run_id)?.unwrap_or_default();
        let manifest_ok = sha256_hex(&manifest) == e.manifest_sha256;
        // The register's own chain vouches for the entry; only entries made before it had one
        // fall back to the audit log.
        let vouched = if e.seq > 0 {
            register_chain(h)?.is_ok() && e.compute_mac(h) == e.mac
        } else {
            let target = format!("{} sha256 {}", e.run_id, e.pdf_sha256);
            h.store.audit_entries()?.iter().any(|a| a.action == "dispose.certificate" && a.target == target)
        };
        if manifest_ok && vouched {
            return Ok(Verdict::Genuine { run_id: e.run_id.clone(), issued_at: e.issued_at });
        }
        return Ok(Verdict::Altered { run_id: e.run_id.clone() });
    }
    let claimed = find_run_id(pdf);
    Ok(match claimed {
        Some(run) if entries.iter().any(|e| e.run_id == run) => Verdict::Altered { run_id: run },
        _ => Verdict::Unknown,
    })
}

/// The run id a PDF claims, from its document information (`/Subject`).
fn find_run_id(pdf: &[u8]) -> Option<String> {
    let needle = b"hozon-run:";
    let at = pdf.windows(needle.len()).position(|w| w == needle)? + needle.len();
    let id: String =
        pdf[at..].iter().take_while(|b| b.is_ascii_alphanumeric() || **b == b'-').map(|b| *b as char).collect();
    (!id.is_empty()).then_some(id)
}

fn title_of(kind: RunKind) -> &'static str {
    match kind {
        RunKind::Electronic => "廃棄証明書（電子記録）",
        RunKind::Paper => "廃棄証明書（紙文書）",
        RunKind::AuditLog => "廃棄証明書（監査ログ）",
    }
}

fn layout(m: &Manifest, digest: &str) -> (Vec<Line>, usize) {
    let jst = crate::jp::jst();
    let mut lines = Vec::new();
    let mut y = 780.0;
    let push = |lines: &mut Vec<Line>, y: &mut f32, size: f32, x: f32, text: String| {
        lines.push(Line { page: 0, x, y: *y, size, text });
        *y -= size * 1.7;
    };
    let title = title_of(m.kind);
    push(&mut lines, &mut y, 20.0, 200.0, title.into());
    y -= 10.0;
    if !m.document_number.is_empty() {
        push(&mut lines, &mut y, 9.0, 300.0, m.document_number.clone());
        push(&mut lines, &mut y, 9.0, 300.0, format!("発行：{}", m.office));
    }
    push(&mut lines, &mut y, 10.5, 60.0, format!("廃棄実行番号：{}", m.run_id));
    let local = m.issued_at.with_timezone(&jst);
    push(
        &mut lines,
        &mut y,
        10.5,
        60.0,
        format!(
            "処理日時：{} {}（日本時間）",
            crate::jp::era_and_iso(local.date_naive()),
            local.format("%H時%M分%S秒")
        ),
    );
    push(&mut lines, &mut y, 10.5, 60.0, format!("基準日：{}", crate::jp::era_and_iso(m.as_of)));
    push(&mut lines, &mut y, 10.5, 60.0, format!("処理方法：{}", m.method));
    push(
        &mut lines,
        &mut y,
        10.5,
        60.0,
        format!("準備者：{}　承認者：{}　実行者：{}", m.preparer, m.approver, m.executor),
    );
    y -= 6.0;
    push(&mut lines, &mut y, 12.0, 60.0, "処理結果（文書種別ごとの件数）".into());
    for (class, n) in &m.counts {
        let title = m.policies.get(class).map_or(class.as_str(), |(t, _)| t.as_str());
        push(&mut lines, &mut y, 10.5, 80.0, format!("{title}（{class}）：{n} 件　廃棄済"));
        if let Some((_, basis)) = m.policies.get(class) {
            for (n, chunk) in basis.chars().collect::<Vec<_>>().chunks(44).enumerate() {
                let prefix = if n == 0 { "根拠：" } else { "　　　" };
                push(&mut lines, &mut y, 8.0, 95.0, format!("{prefix}{}", chunk.iter().collect::<String>()));
            }
        }
    }
    push(
        &mut lines,
        &mut y,
        10.5,
        80.0,
        format!("保留（ホールド）：{} 件　除外：{} 件　実行時の再確認で見送り：{} 件", m.held, m.excluded, m.skipped),
    );
    for (id, reason) in m.not_destroyed.iter().take(12) {
        push(&mut lines, &mut y, 7.5, 95.0, id.clone());
        for chunk in reason.chars().collect::<Vec<_>>().chunks(56) {
            push(&mut lines, &mut y, 7.5, 110.0, chunk.iter().collect());
        }
    }
    if m.not_destroyed.len() > 12 {
        push(
            &mut lines,
            &mut y,
            7.5,
            95.0,
            format!("ほか {} 件（理由は廃棄実行の記録に保存）", m.not_destroyed.len() - 12),
        );
    }
    y -= 4.0;
    push(&mut lines, &mut y, 9.0, 60.0, "確認者印　　　　　　　　承認者印　　　　　　　　所属長印".into());
    push(&mut lines, &mut y, 9.0, 60.0, "［　　　　　　］　　　　［　　　　　　］　　　　［　　　　　　］".into());
    if !m.missing.is_empty() {
        push(
            &mut lines,
            &mut y,
            10.5,
            80.0,
            format!("期限到来済だが業者証明書に記載のない文書箱：{}", m.missing.join("、")),
        );
    }
    y -= 6.0;
    push(&mut lines, &mut y, 9.0, 60.0, "マニフェストの SHA-256：".into());
    push(&mut lines, &mut y, 9.0, 70.0, digest.into());
    push(&mut lines, &mut y, 9.0, 60.0, "真正性の確認：hozon certificate verify <このファイル>".into());
    y -= 6.0;
    let list_title = match m.kind {
        RunKind::Electronic => format!("廃棄した記録の識別子（トゥームストーンID、{} 件）", m.ids.len()),
        RunKind::Paper => format!("廃棄した文書箱コード（{} 箱）", m.ids.len()),
        RunKind::AuditLog => format!("削除した監査ログ（年月:件数、{} か月分）", m.ids.len()),
    };
    push(&mut lines, &mut y, 12.0, 60.0, list_title);
    // The id list: three columns of 7.5 pt, continuing on further pages.
    let (col_w, line_h, top, bottom) = (160.0, 10.0, y, 50.0);
    let mut page = 0;
    let (mut col, mut cy) = (0, top);
    for id in &m.ids {
        if cy < bottom {
            col += 1;
            cy = if page == 0 { top } else { 790.0 };
            if col == 3 {
                col = 0;
                page += 1;
                cy = 790.0;
            }
        }
        lines.push(Line { page, x: 50.0 + col as f32 * col_w, y: cy, size: 7.5, text: id.clone() });
        cy -= line_h;
    }
    let pages = page + 1;
    for p in 0..pages {
        lines.push(Line {
            page: p,
            x: 260.0,
            y: 25.0,
            size: 8.0,
            text: format!("{} / {} ページ　{}", p + 1, pages, m.run_id),
        });
    }
    (lines, pages)
}

/// The certificate PDF for a manifest (pure apart from reading the font file).
pub fn render(m: &Manifest, digest: &str) -> Result<Vec<u8>> {
    let (lines, pages) = layout(m, digest);
    let info = pdf::Info {
        title: title_of(m.kind).to_owned(),
        subject: format!("hozon-run:{}", m.run_id),
        keywords: format!("manifest-sha256:{digest}"),
    };
    pdf::render(&lines, pages, &info)
}
