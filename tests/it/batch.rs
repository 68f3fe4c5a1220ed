//! Mailroom capture: batches (進達), the receipt ledger, hot folders, uploads, multi-page TIFF.

use std::time::Duration;

use axum::http::StatusCode;
use hozon::auth::{Actor, Role};
use hozon::capture::batch::{CsvEncoding, Filter, NewBatch, Status};
use hozon::capture::hotfolder;
use hozon::capture::ingest::{IngestOptions, Source, ingest_sources};
use hozon::web::{AppState, router};

use crate::util::{Browser, TestEnv, synth};

fn new_batch(municipality: &str, pages: u32) -> NewBatch {
    NewBatch {
        municipality: municipality.into(),
        received_on: chrono::Utc::now().date_naive().to_string(),
        channel: "exchange_bag".into(),
        expected_pages: pages.to_string(),
        note: String::new(),
    }
}

fn page_bytes(n: usize) -> Vec<(String, Vec<u8>)> {
    synth()
        .truth
        .iter()
        .take(n)
        .map(|t| {
            let f = t["file"].as_str().unwrap();
            (f.to_owned(), std::fs::read(synth().path.join(f)).unwrap())
        })
        .collect()
}

#[test]
fn a_batch_counts_its_pages_flags_a_mismatch_and_exports_the_ledger() {
    let env = TestEnv::new();
    let h = env.open();
    let op = Actor::operator("test");
    let b = h.create_batch(&op, &new_batch("世田谷区", 5)).unwrap();
    let other = h.create_batch(&op, &new_batch("八王子市", 2)).unwrap();
    assert_ne!(b.id, other.id);
    // Four good pages and one that is not an image: 5 received, 4 read, 1 failed.
    let mut files: Vec<Source> =
        page_bytes(4).into_iter().map(|(name, bytes)| Source::Upload { name, bytes }).collect();
    files.push(Source::Upload { name: "broken.png".into(), bytes: b"not an image".to_vec() });
    let opts = IngestOptions { batch: Some(b.id.clone()), ..Default::default() };
    let report = ingest_sources(&h, &crate::util::mailroom(), files, &opts).unwrap();
    assert_eq!((report.stored(), report.quarantined()), (4, 1));
    let (_, c) = h.batch(&op, &b.id).unwrap();
    assert_eq!((c.received(), c.read(), c.forms, c.failed), (5, 4, 4, 1));
    // Records know their batch.
    let in_batch = h.store().records().filter(|r| r.as_ref().unwrap().batch.as_deref() == Some(b.id.as_str())).count();
    assert_eq!(in_batch, 5);

    // One more page than expected: mismatch; closing it needs a reason.
    let extra = page_bytes(5).pop().unwrap();
    ingest_sources(&h, &crate::util::mailroom(), vec![Source::Upload { name: extra.0, bytes: extra.1 }], &opts)
        .unwrap();
    let (bb, c) = h.batch(&op, &b.id).unwrap();
    assert_eq!(Status::of(&bb, &c), Status::Mismatch);
    let e = h.close_batch(&op, &b.id, " ").unwrap_err().to_string();
    assert!(e.contains("備考") && e.contains("予定枚数 5"), "{e}");
    h.close_batch(&op, &b.id, "送付書の記載誤り（6枚）").unwrap();

    // An unknown batch is refused before anything is stored.
    let bad = IngestOptions { batch: Some("B20990101-001".into()), ..Default::default() };
    assert!(ingest_sources(&h, &crate::util::mailroom(), vec![], &bad).is_err());

    // Ledger: filtered, and as CSV in both encodings.
    let only = Filter { municipality: Some("八王子市".into()), ..Default::default() };
    let rows = h.batches(&op, &only).unwrap();
    assert_eq!(rows.iter().map(|(b, _)| b.id.as_str()).collect::<Vec<_>>(), [other.id.as_str()]);
    let mismatched = Filter { status: Some("mismatch".into()), ..Default::default() };
    assert_eq!(h.batches(&op, &mismatched).unwrap().len(), 1);
    let utf8 = h.ledger_csv(&op, &Filter::default(), CsvEncoding::Utf8Bom).unwrap();
    let text = String::from_utf8(utf8[3..].to_vec()).unwrap();
    assert!(utf8.starts_with(b"\xEF\xBB\xBF") && text.contains("世田谷区,交換便,5,6,5,5,1,枚数不一致"), "{text}");
    let sjis = h.ledger_csv(&op, &Filter::default(), CsvEncoding::Cp932).unwrap();
    assert_eq!(encoding_rs::SHIFT_JIS.decode(&sjis).0, text);
    let actions: Vec<String> = h.store().audit_entries().unwrap().into_iter().map(|e| e.action).collect();
    for a in ["batch.create", "batch.close", "batch.export"] {
        assert!(actions.iter().any(|x| x == a), "{a} audited");
    }
}

#[test]
fn the_hot_folder_takes_settled_scans_into_their_batch_only() {
    let env = TestEnv::new();
    let h = env.open();
    let op = Actor::operator("test");
    let b = h.create_batch(&op, &new_batch("新宿区", 2)).unwrap();
    let root = env.tmp.path().join("hot");
    let dir = hotfolder::batch_folder(&root, &b.id).unwrap();
    for (name, bytes) in page_bytes(2) {
        std::fs::write(dir.join(name), bytes).unwrap();
    }
    // A folder no batch owns is reported, not ingested.
    let stray = root.join("B20990101-001");
    std::fs::create_dir_all(&stray).unwrap();
    std::fs::write(stray.join("x.png"), &page_bytes(1)[0].1).unwrap();
    // Files younger than the settle time wait (the scanner may still be writing).
    let waiting =
        hotfolder::poll(&h, &crate::util::mailroom(), &root, Duration::from_secs(3600), &IngestOptions::default())
            .unwrap();
    assert_eq!((waiting.unsettled, waiting.ingested.len()), (2, 0));
    let p = hotfolder::poll(&h, &crate::util::mailroom(), &root, Duration::ZERO, &IngestOptions::default()).unwrap();
    assert_eq!(p.ingested.len(), 1);
    assert_eq!((p.ingested[0].0.as_str(), p.ingested[0].1.stored()), (b.id.as_str(), 2));
    assert_eq!(p.strays, vec![stray.clone()]);
    assert!(stray.join("x.png").exists(), "a stray file is left alone");
    assert_eq!(hotfolder::waiting(&root, &b.id), 0, "stored scans leave the hot folder");
    let (bb, c) = h.batch(&op, &b.id).unwrap();
    assert_eq!(Status::of(&bb, &c), Status::Complete);
}

#[test]
fn a_multi_page_tiff_becomes_one_record_per_page() {
    use tiff::encoder::{TiffEncoder, colortype};
    let env = TestEnv::new();
    let h = env.open();
    let mut buf = std::io::Cursor::new(Vec::new());
    let mut enc = TiffEncoder::new(&mut buf).unwrap();
    for (_, png) in page_bytes(3) {
        let g = image::load_from_memory(&png).unwrap().to_luma8();
        enc.write_image::<colortype::Gray8>(g.width(), g.height(), g.as_raw()).unwrap();
    }
    let report = ingest_sources(
        &h,
        &crate::util::mailroom(),
        vec![Source::Upload { name: "batch.tif".into(), bytes: buf.into_inner() }],
        &IngestOptions::default(),
    )
    .unwrap();
    let names: Vec<String> = report.files.iter().map(|(p, _)| p.display().to_string()).collect();
    assert_eq!(names, ["batch.tif#1", "batch.tif#2", "batch.tif#3"]);
    assert_eq!(report.stored(), 3);
    // Each page was recognised as its form.
    let classes: std::collections::BTreeSet<String> = h.store().records().map(|r| r.unwrap().class).collect();
    assert!(classes.contains("application"), "{classes:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mailroom_logs_a_batch_uploads_and_watches_progress_in_the_browser() {
    let env = TestEnv::new();
    let h = env.open();
    let temp = env.add_user(&h, "mail01", Role::Mailroom);
    let temp_rev = env.add_user(&h, "rev01", Role::Reviewer);
    let app = router(AppState::new(h));
    let mut b = Browser::new(app.clone());
    b.login("mail01", &temp, "mailroom-pass-2026-x").await;
    let p = b.get("/batches").await;
    assert!(p.status.is_success() && p.body.contains("収受簿") && p.body.contains("受付を登録"), "{}", p.body);
    // A wrong municipality is named.
    let p = b
        .post(
            "/batches",
            &[("municipality", "横浜市"), ("received_on", "2026-11-01"), ("channel", "post"), ("expected_pages", "2")],
        )
        .await;
    assert_eq!(p.status, StatusCode::BAD_REQUEST);
    assert!(p.body.contains("送付元区市町村") && p.body.contains("横浜市"));
    b.get("/batches").await;
    let p = b
        .post(
            "/batches",
            &[
                ("municipality", "練馬区"),
                ("received_on", "2026-11-01"),
                ("channel", "recorded_mail"),
                ("expected_pages", "2"),
            ],
        )
        .await;
    assert_eq!(p.status, StatusCode::SEE_OTHER);
    let batch_url = p.location().to_owned();
    let id = batch_url.trim_start_matches("/batches/").to_owned();
    let page = b.get(&batch_url).await;
    assert!(page.body.contains("練馬区") && page.body.contains("アップロード"));
    // Upload two scans: accepted at once, then the progress shows them read.
    let files: Vec<(String, Vec<u8>)> = page_bytes(2);
    let refs: Vec<(&str, Vec<u8>)> = files.iter().map(|(n, v)| (n.as_str(), v.clone())).collect();
    let p = b.post_files(&format!("{batch_url}/upload"), &refs).await;
    assert_eq!(p.status, StatusCode::ACCEPTED, "{}", p.body);
    let mut progress = serde_json::Value::Null;
    for _ in 0..240 {
        let p = b.get(&format!("{batch_url}/progress")).await;
        progress = serde_json::from_str(&p.body).unwrap();
        if progress["read"] == 2 && progress["queued"] == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert_eq!(progress["read"], 2, "{progress}");
    assert_eq!(progress["status"], "complete");
    // An upload without files is refused with a message.
    let p = b.post_files(&format!("{batch_url}/upload"), &[]).await;
    assert_eq!(p.status, StatusCode::BAD_REQUEST);
    // The ledger lists it; CSV downloads (after a second-factor check, as every export) with a
    // BOM, and in Shift_JIS on request.
    let p = b.get("/batches?municipality=%E7%B7%B4%E9%A6%AC%E5%8C%BA").await;
    assert!(p.body.contains(&id));
    assert_eq!(b.get("/batches.csv").await.status, StatusCode::SEE_OTHER, "second factor first");
    b.second_factor(None).await;
    let p = b.get("/batches.csv").await;
    assert!(p.body.starts_with('\u{feff}') && p.body.contains("練馬区,簡易書留,2,2,2"), "{}", p.body);
    let p = b.get("/batches.csv?encoding=cp932").await;
    assert!(p.headers[axum::http::header::CONTENT_TYPE].to_str().unwrap().contains("Shift_JIS"));

    // A reviewer may read the ledger but not log or upload.
    let mut r = Browser::new(app);
    r.login("rev01", &temp_rev, "reviewer-pass-2026-x").await;
    assert!(r.get("/batches").await.status.is_success());
    let p = r
        .post(
            "/batches",
            &[("municipality", "練馬区"), ("received_on", "2026-11-01"), ("channel", "post"), ("expected_pages", "1")],
        )
        .await;
    assert_eq!(p.status, StatusCode::FORBIDDEN);
    let p = r.post_files(&format!("{batch_url}/upload"), &refs).await;
    assert_eq!(p.status, StatusCode::FORBIDDEN);
}

#[test]
fn an_image_only_pdf_is_read_page_by_page() {
    let env = TestEnv::new();
    let h = env.open();
    // Two scanned pages as JPEG inside a PDF, as a scanner's "scan to PDF" writes them.
    let mut pdf = pdf_writer::Pdf::new();
    let tree = pdf_writer::Ref::new(2);
    pdf.catalog(pdf_writer::Ref::new(1)).pages(tree);
    let pngs = page_bytes(2);
    let ids: Vec<i32> = vec![10, 20];
    pdf.pages(tree).kids(ids.iter().map(|i| pdf_writer::Ref::new(*i))).count(2);
    for ((_, png), id) in pngs.iter().zip(&ids) {
        let g = image::load_from_memory(png).unwrap().to_luma8();
        let mut jpeg = Vec::new();
        image::DynamicImage::ImageLuma8(g.clone())
            .write_to(&mut std::io::Cursor::new(&mut jpeg), image::ImageFormat::Jpeg)
            .unwrap();
        let (page, img, content) =
            (pdf_writer::Ref::new(*id), pdf_writer::Ref::new(id + 1), pdf_writer::Ref::new(id + 2));
        let mut p = pdf.page(page);
        p.media_box(pdf_writer::Rect::new(0.0, 0.0, 595.0, 842.0)).parent(tree).contents(content);
        p.resources().x_objects().pair(pdf_writer::Name(b"Im0"), img);
        drop(p);
        let mut x = pdf.image_xobject(img, &jpeg);
        x.filter(pdf_writer::Filter::DctDecode);
        x.width(g.width() as i32).height(g.height() as i32).bits_per_component(8);
        x.color_space().device_gray();
        drop(x);
        let mut c = pdf_writer::Content::new();
        c.transform([595.0, 0.0, 0.0, 842.0, 0.0, 0.0]).x_object(pdf_writer::Name(b"Im0"));
        pdf.stream(content, &c.finish());
    }
    let report = ingest_sources(
        &h,
        &crate::util::mailroom(),
        vec![Source::Upload { name: "scan.pdf".into(), bytes: pdf.finish() }],
        &IngestOptions::default(),
    )
    .unwrap();
    assert_eq!(report.stored(), 2, "{:?}", report.files);
    let classes: Vec<String> = h.store().records().map(|r| r.unwrap().class).collect();
    assert!(classes.iter().all(|c| c == "application"), "both pages recognised: {classes:?}");
}
