//! synth → ingest → search, bad files, duplicates, reindex.

use hozon::app::SearchOptions;
use hozon::auth::{Actor, Role};
use hozon::capture::ingest::Outcome;
use hozon::store::{RecordId, RecordKind, RecordState};

use crate::util::{TestEnv, synth};

fn reviewer() -> Actor {
    Actor::with_role("tester", Role::Reviewer)
}

/// Drops the full-width space forms put between surname and given name; OCR text has none.
fn compact(s: &str) -> String {
    s.replace('　', "")
}

#[test]
fn synth_ingest_search_finds_planted_names_and_diseases() {
    let env = TestEnv::new();
    let h = env.open();
    let inbox = env.inbox();
    let report = env.ingest(&h, &inbox);
    let pages = synth().truth.len();
    assert_eq!(report.stored(), pages, "{:?}", report.files);
    assert_eq!(h.index().num_docs(), pages as u64);
    // The inbox keeps only truth.jsonl: every scan was stored and removed.
    let left: Vec<_> = std::fs::read_dir(&inbox).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(left, vec![std::ffi::OsString::from("truth.jsonl")]);

    // Every applicant is found by name, and each hit is one of their pages.
    let mut names_found = 0;
    for sub in 1..=crate::util::SUBMISSIONS {
        let page = synth().truth.iter().find(|t| t["submission"] == sub).unwrap();
        let name = compact(page["fields"]["name"].as_str().unwrap());
        let hits = h.search(&reviewer(), &SearchOptions::new(&name, 50)).unwrap().results;
        if !hits.is_empty() {
            names_found += 1;
        }
        assert!(hits.len() <= 4, "{name}: {} hits for a 4-page submission", hits.len());
    }
    assert_eq!(names_found, crate::util::SUBMISSIONS, "every planted name must be findable");

    // A partial disease name finds the full one (bigram phrase, not a whole-word match).
    let uc_pages = synth().truth.iter().filter(|t| t["fields"]["disease"] == "潰瘍性大腸炎").count();
    assert!(uc_pages >= 3, "seed 1 must plant 潰瘍性大腸炎; synth changed?");
    let hits = h.search(&reviewer(), &SearchOptions::new("大腸炎", 50)).unwrap().results;
    assert!(hits.len() >= uc_pages - 1, "大腸炎 found {} of {uc_pages} pages", hits.len());
    assert!(hits.iter().all(|r| r.snippet_html.contains("<b>")));

    // Rebuilding the index from the store gives the same results.
    let mut before: Vec<_> = hits.iter().map(|r| r.record_id.clone()).collect();
    assert_eq!(h.reindex(&Actor::operator("test"), |_, _| {}).unwrap(), pages);
    let mut after: Vec<_> = h
        .search(&reviewer(), &SearchOptions::new("大腸炎", 50))
        .unwrap()
        .results
        .into_iter()
        .map(|r| r.record_id)
        .collect();
    before.sort();
    after.sort();
    assert_eq!(before, after);
}

#[test]
fn reingesting_the_same_files_is_a_no_op() {
    let env = TestEnv::new();
    let h = env.open();
    let first = env.ingest(&h, &env.inbox());
    let second = env.ingest(&h, &env.inbox());
    assert_eq!(second.stored(), 0);
    assert_eq!(second.duplicates(), first.stored());
    assert_eq!(h.index().num_docs(), first.stored() as u64);
    assert_eq!(h.store().records().count(), first.stored());
}

#[test]
fn bad_files_are_quarantined_and_the_batch_goes_on() {
    let env = TestEnv::new();
    let h = env.open();
    let inbox = env.tmp.path().join("bad");
    std::fs::create_dir_all(&inbox).unwrap();
    let good: Vec<_> = synth().truth.iter().take(4).map(|t| t["file"].as_str().unwrap().to_owned()).collect();
    for f in &good {
        std::fs::copy(synth().path.join(f), inbox.join(f)).unwrap();
    }
    let png = std::fs::read(synth().path.join(&good[0])).unwrap();
    std::fs::write(inbox.join("zero.png"), b"").unwrap();
    std::fs::write(inbox.join("truncated.png"), &png[..png.len() / 3]).unwrap();
    std::fs::write(inbox.join("text.png"), "申請書の写しではありません".as_bytes()).unwrap();
    std::fs::write(inbox.join("huge.png"), png_header(30_000, 30_000)).unwrap();

    let report = env.ingest(&h, &inbox);
    assert_eq!(report.stored(), 4);
    assert_eq!(report.quarantined(), 4);
    let reason = |name: &str| -> String {
        report
            .files
            .iter()
            .find(|(p, _)| p.file_name().unwrap() == name)
            .map(|(_, o)| match o {
                Outcome::Quarantined(_, why) => why.to_string(),
                other => panic!("{name}: {other:?}"),
            })
            .unwrap()
    };
    assert!(reason("zero.png").contains("empty file"));
    assert!(reason("truncated.png").contains("truncated"));
    assert!(reason("text.png").contains("not an image"));
    assert!(reason("huge.png").contains("30000×30000"), "{}", reason("huge.png"));
    // Quarantined files are kept (sealed) but never indexed or listed as pages.
    let quarantined: Vec<_> =
        h.store().records().map(Result::unwrap).filter(|r| matches!(r.kind, RecordKind::Quarantined { .. })).collect();
    assert_eq!(quarantined.len(), 4);
    assert!(quarantined.iter().all(|r| r.state == RecordState::Stored));
    assert_eq!(h.index().num_docs(), 4);
}

/// A PNG claiming `w`×`h` pixels with a tiny data chunk: the shape of a decompression bomb.
fn png_header(w: u32, h: u32) -> Vec<u8> {
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&w.to_be_bytes());
    ihdr.extend_from_slice(&h.to_be_bytes());
    ihdr.extend_from_slice(&[8, 0, 0, 0, 0]);
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    for (kind, data) in [(b"IHDR", ihdr.as_slice()), (b"IDAT", &[0x78, 0x9c, 0x03, 0x00][..]), (b"IEND", &[][..])] {
        let mut chunk = kind.to_vec();
        chunk.extend_from_slice(data);
        let mut crc = 0xFFFF_FFFFu32;
        for &b in &chunk {
            crc ^= u32::from(b);
            for _ in 0..8 {
                crc = if crc & 1 != 0 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
            }
        }
        out.extend_from_slice(&(data.len() as u32).to_be_bytes());
        out.extend_from_slice(&chunk);
        out.extend_from_slice(&(!crc).to_be_bytes());
    }
    out
}

#[test]
fn a_second_process_gets_a_clear_message_while_the_data_directory_is_in_use() {
    let env = TestEnv::new();
    let h = env.open();
    let out = std::process::Command::new(crate::util::hozon_bin())
        .arg("--data")
        .arg(env.data())
        .args(["search", "山田"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("in use by another hozon process"), "{err}");
    drop(h);
}

/// Recognised pages become drafts: the form and sheet known, fields read and normalised,
/// stored sealed; the My Number masked for a user without the right, and the page itself
/// closed to them.
#[test]
fn recognised_pages_become_drafts() {
    let env = TestEnv::new();
    let h = env.open();
    env.ingest_first(&h, 4);
    let reviewer = Actor::with_role("rev", hozon::auth::Role::Reviewer);
    let auditor = Actor::with_role("aud", hozon::auth::Role::Auditor);
    let truth = &synth().truth;
    let mut recs: Vec<_> = h.store().records().map(Result::unwrap).collect();
    recs.sort_by_key(|r| r.class.clone());
    let classes: Vec<&str> = recs.iter().map(|r| r.class.as_str()).collect();
    assert_eq!(classes, ["application", "application", "clinical_survey", "my_number_form"]);
    let (mut fields, mut exact) = (0, 0);
    for rec in &recs {
        let d = h.draft(&reviewer, &rec.id).unwrap().expect("a draft");
        let t = truth.iter().find(|t| t["form"].as_str().unwrap().starts_with(&d.form[..4])).unwrap();
        for f in &d.fields {
            let want = t["fields"][&f.name].as_str().unwrap().replace('\u{3000}', "");
            fields += 1;
            let got = match f.name.as_str() {
                "birth_date" | "application_date" => hozon::jp::format_era(f.value.parse().unwrap()).unwrap(),
                _ => f.raw.replace([' ', '\u{3000}'], ""),
            };
            exact += usize::from(got == want.replace(' ', ""));
        }
    }
    assert!(exact * 100 >= fields * 90, "{exact}/{fields} fields read exactly");
    // The My Number page: full number for the reviewer, masked for a user without the right.
    let mn = recs.iter().find(|r| r.class == "my_number_form").unwrap();
    let number = truth.iter().find_map(|t| t["fields"].get("my_number")).unwrap().as_str().unwrap();
    let full = h.draft(&reviewer, &mn.id).unwrap().unwrap();
    assert_eq!(full.field("my_number").unwrap().value, number);
    assert!(matches!(h.draft(&auditor, &mn.id), Err(hozon::Error::NotFound(_))), "page closed without the right");
    assert!(matches!(h.page_original(&auditor, &mn.id), Err(hozon::Error::NotFound(_))));
    let app = recs.iter().find(|r| r.class == "application").unwrap();
    assert!(h.draft(&auditor, &app.id).unwrap().is_some(), "auditors may view drafts");
    // The index text of a recognised page is its labels and values, never the My Number.
    let text = h.page_text(&reviewer, &mn.id).unwrap();
    assert!(text.contains("個人番号に係る調書") && !text.contains(number), "{text}");
    // CLI: the stored draft by record id.
    drop(h);
    let out = std::process::Command::new(crate::util::hozon_bin())
        .arg("--data")
        .arg(env.data())
        .args(["draft", "show", app.id.as_str()])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && stdout.contains("受診者氏名"), "{stdout}");
}

#[test]
fn the_two_sheets_of_an_application_are_reconciled_in_the_store() {
    use hozon::capture::ingest::{IngestOptions, Source, ingest_sources};
    let page =
        |file: &str| Source::Upload { name: file.to_owned(), bytes: std::fs::read(synth().path.join(file)).unwrap() };
    let file = |sub: usize, p: usize| {
        synth()
            .truth
            .iter()
            .find(|t| t["submission"] == sub && t["file"].as_str().unwrap().contains(&format!("-p{p}-")))
            .unwrap()["file"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let reviewer = Actor::with_role("rev", hozon::auth::Role::Reviewer);
    // Sheet 1 of one applicant followed by sheet 2 of another: not one application.
    let env = TestEnv::new();
    let h = env.open();
    let r = ingest_sources(
        &h,
        &crate::util::mailroom(),
        vec![page(&file(1, 1)), page(&file(2, 2))],
        &IngestOptions::default(),
    )
    .unwrap();
    assert_eq!(r.stored(), 2);
    for rec in h.store().records() {
        assert_eq!(h.draft(&reviewer, &rec.unwrap().id).unwrap().unwrap().pair, None);
    }
    // Sheet 1 then its own carbon copy: paired, one value per field on both, re-indexed.
    let env = TestEnv::new();
    let h = env.open();
    let r = ingest_sources(
        &h,
        &crate::util::mailroom(),
        vec![page(&file(1, 1)), page(&file(1, 2))],
        &IngestOptions::default(),
    )
    .unwrap();
    let ids: Vec<RecordId> = r
        .files
        .iter()
        .map(|(_, o)| match o {
            Outcome::Stored(id) => id.clone(),
            other => panic!("{other:?}"),
        })
        .collect();
    let a = h.draft(&reviewer, &ids[0]).unwrap().unwrap();
    let b = h.draft(&reviewer, &ids[1]).unwrap().unwrap();
    assert_eq!((a.pair.as_deref(), b.pair.as_deref()), (Some(ids[1].as_str()), Some(ids[0].as_str())));
    for (x, y) in a.fields.iter().zip(&b.fields) {
        assert_eq!(x.value, y.value, "{}: one application, one value", x.name);
    }
    let actions: Vec<String> = h.store().audit_entries().unwrap().into_iter().map(|e| e.action).collect();
    assert_eq!(actions.iter().filter(|a| *a == "draft.reconcile").count(), 2);
    // The replaced draft and text blobs of both pages are gone: nothing for gc.
    assert_eq!(h.store().gc_orphans().unwrap(), 0);
    for id in &ids {
        assert!(h.draft(&reviewer, id).unwrap().is_some(), "still readable after gc");
    }
}

/// Pages scanned as offices scan them (fed sideways or upside down, 200 or 400 dpi, 1-bit or
/// colour) are stored as received and read in the templates' frame: each classified, its
/// draft keeping the frame, the reviewer's field image and the page view upright.
#[test]
fn sideways_low_resolution_and_bilevel_scans_are_read_upright() {
    let env = TestEnv::new();
    let h = env.open();
    let scans = env.tmp.path().join("offices");
    let opts =
        hozon::synth::SynthOptions { conditions: true, ..hozon::synth::SynthOptions::easy(scans.clone(), 2, 5, 1.5) };
    let truth = hozon::synth::generate(&opts, &indicatif::ProgressBar::hidden()).unwrap();
    let turned = truth.iter().filter(|t| t.scan.is_some_and(|c| c.quarter_turns != 0)).count();
    assert!(turned >= 3, "the set has pages fed other ways round: {turned}");
    std::fs::remove_file(scans.join("truth.jsonl")).unwrap();
    let report = env.ingest(&h, &scans);
    assert_eq!(report.stored(), 8, "{:?}", report.files);
    let reviewer = Actor::with_role("rev", hozon::auth::Role::Reviewer);
    let recs: Vec<_> = h.store().records().map(Result::unwrap).collect();
    let mut sideways_checked = false;
    for rec in &recs {
        let d = h.draft(&reviewer, &rec.id).unwrap().expect("every page classified into a draft");
        let info: serde_json::Value =
            serde_json::from_slice(&h.store().read_blob(rec, hozon::store::BlobRole::Info).unwrap()).unwrap();
        let t = truth.iter().find(|t| t.file == info["file_name"].as_str().unwrap()).unwrap();
        let cond = t.scan.unwrap();
        assert_eq!(d.form, if t.form == "my_number" { "my_number_form" } else { t.form }, "{}", t.file);
        // The frame turns the page back and brings it to 300 dpi.
        assert_eq!((d.frame.turns + cond.quarter_turns) % 4, 0, "{} {cond:?}", t.file);
        assert!((d.frame.scale * cond.dpi as f32 / 300.0 - 1.0).abs() < 0.03, "{} {cond:?} {:?}", t.file, d.frame);
        // The field image is cut from the same frame: wider than tall, like the field.
        let name = d.fields.iter().find(|f| f.name == "name").expect("a name field");
        let png = h.field_image(&reviewer, &rec.id, &name.name).unwrap();
        let img = image::load_from_memory(&png).unwrap();
        assert!(img.width() > 3 * img.height(), "{}: field image {}×{}", t.file, img.width(), img.height());
        // The page view is upright: portrait whatever way the page was fed.
        let view = image::load_from_memory(&h.page_thumbnail(&reviewer, &rec.id, 240).unwrap()).unwrap();
        assert!(view.height() > view.width(), "{}: page view {}×{}", t.file, view.width(), view.height());
        sideways_checked |= cond.quarter_turns % 2 == 1;
    }
    assert!(sideways_checked);
}
