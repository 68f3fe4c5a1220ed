//! `hozon bench ocr DIR`: pages per second of the draft pipeline (classify, register, read
//! every field with PP-OCR, normalise, check) against plain full-page `tesseract -l jpn` (the
//! command-line program) on the same pages, both with one worker per core, in the same run.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use anyhow::Context;
use serde::Serialize;

#[derive(Debug, Serialize)]
pub struct Figures {
    pub pages: usize,
    pub workers: usize,
    pub pages_per_s: f64,
    pub tesseract_pages_per_s: f64,
    pub ratio: f64,
    pub classified: usize,
    pub peak_rss_mb: f64,
}

fn pages_of(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "png" || x == "tif" || x == "tiff" || x == "jpg"))
        .collect();
    v.sort();
    anyhow::ensure!(!v.is_empty(), "no scans in {}", dir.display());
    Ok(v)
}

/// Runs `work` over `pages` with `workers` threads; returns seconds.
fn timed<S: Send>(
    pages: &[PathBuf],
    workers: usize,
    init: impl Fn() -> anyhow::Result<S> + Sync,
    work: impl Fn(&mut S, &Path) -> anyhow::Result<()> + Sync,
) -> anyhow::Result<f64> {
    let next = AtomicUsize::new(0);
    let started = Instant::now();
    std::thread::scope(|s| -> anyhow::Result<()> {
        let handles: Vec<_> = (0..workers)
            .map(|_| {
                s.spawn(|| -> anyhow::Result<()> {
                    let mut state = init()?;
                    while let Some(p) = pages.get(next.fetch_add(1, Ordering::SeqCst)) {
                        work(&mut state, p)?;
                    }
                    Ok(())
                })
            })
            .collect();
        for h in handles {
            h.join().map_err(|_| anyhow::anyhow!("worker panicked"))??;
        }
        Ok(())
    })?;
    Ok(started.elapsed().as_secs_f64())
}

pub fn run(dir: &Path, workers: usize) -> anyhow::Result<Figures> {
    let pages = pages_of(dir)?;
    let templates = crate::forms::template::load_dir(&crate::forms::template::default_dir())?;
    let classified = AtomicUsize::new(0);
    let model = crate::ocr::ppocr::default_model();
    let tessdata = crate::ocr::default_tessdata();
    let pipeline = timed(
        &pages,
        workers,
        // Tesseract is loaded when a page needs it (as ingest's workers keep it), not before.
        || Ok((crate::ocr::ppocr::PpOcr::load(&model)?, None)),
        |(ppocr, tess), p| {
            let bytes = std::fs::read(p)?;
            let page = crate::capture::decode_page(&bytes).map_err(|e| anyhow::anyhow!("{}: {e}", p.display()))?;
            let scan = crate::forms::read_scan(&page.gray, page.dpi, &templates, ppocr)?;
            match &scan.reading {
                Some(r) => {
                    let t = templates.iter().find(|t| t.id() == r.template).expect("template");
                    std::hint::black_box(crate::drafts::from_reading(r, t));
                    classified.fetch_add(1, Ordering::SeqCst);
                }
                // Unclassified pages are read whole, as ingest does.
                None => {
                    let tess = match tess {
                        Some(t) => t,
                        None => tess.insert(crate::ocr::TesseractEngine::new(&tessdata, "jpn")?),
                    };
                    drop(std::hint::black_box(tess.read_page(&scan.image, 300)?))
                }
            }
            Ok(())
        },
    )?;
    let peak = super::peak_rss_mb();
    let tesseract = timed(
        &pages,
        workers,
        || Ok(()),
        |_, p| {
            let out = std::process::Command::new("tesseract")
                .arg(p)
                .arg("stdout")
                .args(["-l", "jpn", "--psm", "3"])
                .env("OMP_THREAD_LIMIT", "1")
                .output()
                .context("running the tesseract command (apt package tesseract-ocr)")?;
            anyhow::ensure!(out.status.success(), "tesseract failed on {}", p.display());
            Ok(())
        },
    )?;
    let n = pages.len() as f64;
    Ok(Figures {
        pages: pages.len(),
        workers,
        pages_per_s: n / pipeline,
        tesseract_pages_per_s: n / tesseract,
        ratio: tesseract / pipeline,
        classified: classified.into_inner(),
        peak_rss_mb: peak,
    })
}
