//! `hozon bench dispose --records N`: a data directory with N due records (sealed blob, index
//! entry, metadata each), then a whole disposal run timed: plan, submit, approve (two
//! officers), execute (crypto-shredding, index purge and merge, blob deletion, tombstones) and
//! the certificate.

use std::time::Instant;

use chrono::{TimeZone, Utc};
use rand::{Rng, SeedableRng};

use crate::app::Hozon;
use crate::auth::{Actor, Role};
use crate::store::{BlobRole, Record, RecordId, RecordKind, RecordState};

#[derive(Debug, serde::Serialize)]
pub struct Figures {
    pub records: usize,
    pub setup_seconds: f64,
    pub plan_seconds: f64,
    pub execute_seconds: f64,
    pub seconds: f64,
    pub records_per_s: f64,
    /// Retiring the epoch keys (survivors re-wrapped) and re-sealing the index under a new
    /// key, both inside `execute_seconds`.
    pub epoch_key_seconds: f64,
    pub index_reencrypt_seconds: f64,
    pub index_files_resealed: usize,
    pub certificate: String,
    pub certificate_bytes: u64,
    pub peak_rss_mb: f64,
}

/// A records officer with their own password, as the two-person rule wants.
fn officer(h: &Hozon, name: &str) -> anyhow::Result<Actor> {
    let op = Actor::operator("bench");
    let temp = h.accounts().create(&op, name, Role::RecordsOfficer, Utc::now())?;
    let own = "a-bench-officers-passphrase".to_owned();
    let crate::auth::Login::Ok { actor, .. } = h.accounts().login(name, &temp, "bench", Utc::now())? else {
        anyhow::bail!("login {name}")
    };
    h.accounts().change_password(&actor, &temp, &own, Utc::now())?;
    Ok(actor)
}

/// Creates `n` stored records changed in 2019 (due since April 2025), in chunks.
fn populate(h: &Hozon, n: usize, progress: &indicatif::ProgressBar) -> anyhow::Result<()> {
    let changed = Utc.with_ymd_and_hms(2019, 6, 1, 9, 0, 0).single().expect("valid date");
    populate_pages(h, n, 5, changed, 0, progress)
}

/// Creates `n` stored pages changed at `changed` (seeded by `seed`, so another seed gives
/// other pages), each with a text blob and, when `image_bytes` > 0, an image-sized blob.
pub(crate) fn populate_pages(
    h: &Hozon,
    n: usize,
    seed: u64,
    changed: chrono::DateTime<Utc>,
    image_bytes: usize,
    progress: &indicatif::ProgressBar,
) -> anyhow::Result<()> {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    const CHUNK: usize = 5000;
    for start in (0..n).step_by(CHUNK) {
        let count = CHUNK.min(n - start);
        let mut pages = Vec::with_capacity(count);
        for i in start..start + count {
            let mut fp = [0u8; 32];
            rng.fill(&mut fp);
            let text = format!(
                "特定医療費（指定難病）支給認定申請書 受付番号 {i:08} 病名 潰瘍性大腸炎 住所 東京都新宿区西新宿二丁目 {}",
                rng.gen_range(1000..9999)
            );
            let mut blobs = Vec::new();
            if image_bytes > 0 {
                let mut img = vec![0u8; image_bytes];
                rng.fill(&mut img[..]);
                blobs.push((BlobRole::Original, img));
            }
            pages.push(BulkPage { id: RecordId::from_fingerprint(&fp), class: "application".into(), blobs, text });
        }
        store_bulk(h, &pages, changed, None)?;
        progress.inc(count as u64);
    }
    Ok(())
}

/// A page for [`store_bulk`]: its blobs besides the text, which is indexed.
pub(crate) struct BulkPage {
    pub id: RecordId,
    pub class: String,
    pub blobs: Vec<(BlobRole, Vec<u8>)>,
    pub text: String,
}

/// Stores pages in one go (sealed blobs, index documents, records with their retention), as
/// a benchmark's setup: not the ingest path.
pub(crate) fn store_bulk(
    h: &Hozon,
    pages: &[BulkPage],
    changed: chrono::DateTime<Utc>,
    batch: Option<&str>,
) -> anyhow::Result<()> {
    let mut blobs = Vec::new();
    let mut keys = Vec::with_capacity(pages.len());
    for p in pages {
        let key = h.store.new_data_key();
        for (role, bytes) in &p.blobs {
            blobs.push((p.id.clone(), key.clone(), *role, bytes.clone()));
        }
        blobs.push((p.id.clone(), key.clone(), BlobRole::Text, p.text.clone().into_bytes()));
        keys.push(key);
    }
    let refs = h.store.put_blobs_bulk(&blobs)?;
    let mut refs = refs.into_iter();
    let mut recs = Vec::with_capacity(pages.len());
    for (p, key) in pages.iter().zip(&keys) {
        let mine: Vec<crate::store::BlobRef> = refs.by_ref().take(p.blobs.len() + 1).collect();
        let mut rec = Record {
            wrapped_key: Vec::new(),
            key_epoch: None,
            past_epochs: Vec::new(),
            doc_type: None,
            received_on: None,
            id: p.id.clone(),
            state: RecordState::Stored,
            kind: RecordKind::Page,
            received_at: changed,
            blobs: mine,
            class: p.class.clone(),
            last_changed_at: Some(changed),
            decided_on: None,
            retention: None,
            batch: batch.map(str::to_owned),
        };
        rec.retention = Some(h.retention_for(&rec)?);
        h.store.seal_record_key(&mut rec, key)?;
        recs.push(rec);
    }
    let docs: Vec<_> = pages.iter().map(|p| crate::index::Doc::page(p.id.as_str(), &p.text, changed)).collect();
    h.index.put_many(&docs)?;
    h.store
        .insert_stored_bulk(&recs, crate::audit::Event::system("bench.import", &format!("{} records", recs.len())))?;
    Ok(())
}

pub fn run(n: usize, show_progress: bool) -> anyhow::Result<Figures> {
    let tmp = tempfile::tempdir()?;
    let data = tmp.path().join("data");
    let (h, _) = Hozon::init(&data, &data.join("master.key"))?;
    let bar = if show_progress { indicatif::ProgressBar::new(n as u64) } else { indicatif::ProgressBar::hidden() };
    let t0 = Instant::now();
    populate(&h, n, &bar)?;
    bar.finish_and_clear();
    let setup_seconds = t0.elapsed().as_secs_f64();

    let (a, b) = (officer(&h, "officer-a")?, officer(&h, "officer-b")?);
    let t1 = Instant::now();
    let today = crate::jp::today();
    let plan = crate::retention::run::plan(&h, &a, today)?;
    anyhow::ensure!(plan.items.len() == n, "planned {} of {n} records", plan.items.len());
    crate::retention::run::submit(&h, &a, &plan.id)?;
    crate::retention::run::approve(&h, &b, &plan.id)?;
    let plan_seconds = t1.elapsed().as_secs_f64();
    let t2 = Instant::now();
    let done = crate::retention::run::execute(&h, &b, &plan.id, |_, _| {})?;
    let execute_seconds = t2.elapsed().as_secs_f64();
    anyhow::ensure!(done.destroyed == n && h.store.records().count() == 0, "not every record was destroyed");
    let seconds = t1.elapsed().as_secs_f64();
    // Keep the certificate where the caller can open it after the temporary data is gone.
    let keep = std::env::temp_dir().join(format!("hozon-bench-certificate-{}.pdf", plan.id));
    std::fs::copy(&done.certificate, &keep)?;
    Ok(Figures {
        records: n,
        setup_seconds,
        plan_seconds,
        execute_seconds,
        seconds,
        records_per_s: n as f64 / seconds,
        epoch_key_seconds: done.key_seconds,
        index_reencrypt_seconds: done.index_seconds,
        index_files_resealed: done.resealed,
        certificate_bytes: std::fs::metadata(&keep)?.len(),
        certificate: keep.display().to_string(),
        peak_rss_mb: super::peak_rss_mb(),
    })
}
