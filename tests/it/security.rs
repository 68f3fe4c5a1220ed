//! What an attacker or a bad scan does (issue: security and robustness): a suspended
//! person's pages on every route, linked or not; a My Number on a page no template knows;
//! files with more pages than allowed, a TIFF bomb, cut and padded images.

use hozon::app::{QueueFilter, SearchOptions};
use hozon::auth::{Actor, Role};
use hozon::capture::ingest::{IngestOptions, Outcome, Source, ingest_dir, ingest_sources};

use crate::util::{Browser, TestEnv, synth_page as page};

const NEW_PW: &str = "a-long-new-passphrase-1";

/// Finding 2: after 利用停止 the page view, image, text, draft, review screen and field images
/// of the person's pages answer "not found" to everyone but the security officer — for pages
/// not yet linked to the case too (matched by name and birth date, or by My Number) — and the
/// pages leave search and the review queue.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_suspended_persons_pages_are_closed_on_every_route_linked_or_not() {
    let env = TestEnv::new();
    let h = env.open();
    env.ingest_first(&h, 4);
    let rev = Actor::with_role("rev", Role::Reviewer);
    let (app1, t1) = page(&h, 0); // application sheet 1
    let (mn1, tmn) = page(&h, 2); // My Number form
    let csv = format!(
        "受給者番号,申請整理番号,氏名,フリガナ,生年月日,住所,病名,有効期間開始,有効期間終了,状態,個人番号\n\
         1300001,R8-1300001,{},{},{},{},{},,,審査中,{}\n",
        t1["name"], t1["kana"], t1["birth_date"], t1["address"], t1["disease"], tmn["my_number"]
    );
    h.import_cases(&rev, csv.as_bytes(), "export.csv").unwrap();
    // Nothing is linked: the pages are only the person's by what they say.
    let ids = [app1.clone(), mn1.clone()];
    for id in &ids {
        assert!(h.page_text(&rev, id).is_ok());
        assert!(h.review_view(&rev, id).is_ok());
    }
    let name_query = SearchOptions::new(&t1["name"].replace('　', " "), 20);
    let before = h.search(&rev, &name_query).unwrap().total;
    assert!(before >= 1, "the applicant is found before");
    let queued = h.review_queue(&rev, &QueueFilter::default(), 100).unwrap().0;

    h.suspend(&rev, "1300001", "利用停止請求").unwrap();
    for id in &ids {
        assert!(h.page_text(&rev, id).is_err(), "{id}: text");
        assert!(h.page_original(&rev, id).is_err(), "{id}: image");
        assert!(h.draft(&rev, id).is_err(), "{id}: draft");
        assert!(h.review_view(&rev, id).is_err(), "{id}: review screen");
        assert!(h.field_image(&rev, id, "name").is_err(), "{id}: field image");
    }
    assert_eq!(h.search(&rev, &name_query).unwrap().total, 0, "gone from search, unlinked pages too");
    let (left, items) = h.review_queue(&rev, &QueueFilter::default(), 100).unwrap();
    assert!(left <= queued - 2 && !items.iter().any(|i| ids.contains(&i.id)), "and from the review queue");
    // The security officer alone still sees them (the My Number form with that right too).
    let sec = Actor::with_role("sec", Role::SecurityOfficer);
    assert!(h.page_text(&sec, &app1).is_ok() && h.page_original(&sec, &mn1).is_err());
    let mut rights = sec.rights().clone();
    rights.my_number = true;
    let sec = Actor::with_rights("sec", sec.role(), rights, false);
    assert!(h.page_original(&sec, &mn1).is_ok());
    // A disposal run still lists their pages (every record is accounted for) but nameless,
    // numberless and closed for the records officer; the security officer sees them.
    crate::util::backdate(&h, 6);
    let officer = Actor::with_role("ro", Role::RecordsOfficer);
    let plan = hozon::retention::run::plan(&h, &officer, hozon::jp::today()).unwrap();
    let listed: Vec<_> = plan.items.iter().filter(|i| ids.iter().any(|id| id.as_str() == i.id)).collect();
    assert_eq!(listed.len(), 2, "both pages are due");
    for v in hozon::retention::run::item_views(&h, &officer, &listed).unwrap() {
        assert!(v.name == "（利用停止中）" && v.recipient_no.is_empty() && !v.openable, "{v:?}");
    }
    let csv =
        hozon::retention::run::items_csv(&h, &officer.clone().stepped_up(), &plan.id, hozon::csvout::Encoding::Utf8Bom)
            .unwrap();
    let csv = String::from_utf8_lossy(&csv).replace(" ", "　");
    assert!(!csv.contains(&t1["name"].replace(" ", "　")) && csv.contains("（利用停止中）"), "nor in the CSV");
    let mut rights = sec.rights().clone();
    rights.set(hozon::auth::Function::Retention, hozon::auth::Level::View);
    let sec = Actor::with_rights("sec", sec.role(), rights, false);
    let shown = hozon::retention::run::item_views(&h, &sec, &listed).unwrap();
    assert!(shown.iter().all(|v| v.name != "（利用停止中）" && !v.name.is_empty()), "{shown:?}");

    // The same through the web, for a reviewer with every page id in hand (from the audit page).
    let temp = env.add_user(&h, "rev01", Role::Reviewer);
    let mut b = Browser::new(hozon::web::router(hozon::web::AppState::new(h)));
    b.login("rev01", &temp, NEW_PW).await;
    for id in &ids {
        for path in [
            format!("/pages/{id}"),
            format!("/pages/{id}/image"),
            format!("/pages/{id}/thumb"),
            format!("/review/{id}"),
            format!("/review/{id}/field/name"),
        ] {
            let p = b.get(&path).await;
            assert_eq!(p.status.as_u16(), 404, "{path}: {}", p.status);
        }
    }
}

/// Finding 3: a photocopy of a number card stored as an unknown page. Its text carries a
/// valid My Number, so it is shown (and found) only with the My Number right.
#[test]
fn a_my_number_on_an_unclassified_page_needs_the_right() {
    use imageproc::drawing::draw_text_mut;
    let env = TestEnv::new();
    let h = env.open();
    let fonts = hozon::synth::render::Fonts::load().unwrap();
    let mut img = image::GrayImage::from_pixel(1654, 1169, image::Luma([255]));
    for (i, line) in ["通知カード 写し", "個人番号 1234 5678 9018", "氏名 山田 太郎"].iter().enumerate()
    {
        draw_text_mut(&mut img, image::Luma([0]), 120, 200 + i as i32 * 180, 90.0, &fonts.gothic, line);
    }
    let inbox = env.tmp.path().join("card");
    std::fs::create_dir_all(&inbox).unwrap();
    img.save(inbox.join("card.png")).unwrap();
    let report = env.ingest(&h, &inbox);
    let Outcome::Stored(id) = &report.files[0].1 else { panic!("{:?}", report.files) };
    let rec = h.store().record(id).unwrap().unwrap();
    assert_eq!(rec.class, "scan", "no template knows the page");
    let with = Actor::with_role("rev", Role::Reviewer);
    let without = with.clone().without_my_number();
    let text = h.page_text(&with, id).unwrap();
    assert!(text.contains("1234"), "read: {text}");
    for role in [Role::Mailroom, Role::RecordsOfficer, Role::Auditor] {
        let mut rights = role.preset();
        rights.set(hozon::auth::Function::Search, hozon::auth::Level::View);
        rights.my_number = false;
        let a = Actor::with_rights("x", Some(role), rights, false);
        assert!(h.page_text(&a, id).is_err() && h.page_original(&a, id).is_err(), "{role:?}");
    }
    assert!(h.page_text(&without, id).is_err());
    let q = SearchOptions::new("通知カード", 10);
    assert_eq!(h.search(&with, &q).unwrap().total, 1);
    assert_eq!(h.search(&without, &q).unwrap().total, 0);
}

fn small_tiff(pages: usize) -> Vec<u8> {
    hozon::bench::hostile::many_pages(pages)
}

/// Finding 1: a file with more pages than allowed stores the allowed ones, refuses the rest by
/// number, keeps the file (moved aside, never deleted) and counts the refused pages in the
/// batch; the TIFF bomb and the cut or padded images are refused with their reasons, while
/// everything good in the same run is stored.
#[test]
fn limits_refuse_pages_by_number_and_keep_the_file() {
    let env = TestEnv::new();
    env.configure("[capture]\nmax_pages_per_file = 10\nmax_decoded_mb_per_file = 80\n");
    let h = env.open();
    let batch = crate::util::log_batch(&h, 13);
    let inbox = env.tmp.path().join("inbox13");
    std::fs::create_dir_all(&inbox).unwrap();
    std::fs::write(inbox.join("scan13.tif"), small_tiff(13)).unwrap();
    let opts = IngestOptions { jobs: 1, keep_files: false, progress: false, batch: Some(batch.clone()) };
    let report = ingest_dir(&h, &crate::util::mailroom(), &inbox, &opts).unwrap();
    assert_eq!(report.stored(), 10);
    assert_eq!(report.refused(), 1);
    let (label, refused) = report.files.iter().find(|(_, o)| matches!(o, Outcome::Refused(_))).unwrap();
    let message = match refused {
        Outcome::Refused(why) => why.to_string(),
        _ => unreachable!(),
    };
    assert!(label.to_string_lossy().ends_with("scan13.tif#11-13"), "{label:?}");
    assert!(message.contains("11 ページ目以降") && message.contains(".refused"), "{message}");
    assert!(!inbox.join("scan13.tif").exists() && inbox.join(".refused/scan13.tif").exists(), "kept aside");
    let counts = h.store().batch_counts(&batch).unwrap();
    assert_eq!((counts.forms + counts.unclassified, counts.failed), (10, 3));
    // Ingesting the folder again reads nothing new (the kept file is out of the way).
    assert_eq!(ingest_dir(&h, &crate::util::mailroom(), &inbox, &opts).unwrap().files.len(), 0);

    // Uploads held in memory: the bomb is read two 36 MB pages in (80 MB budget), the rest
    // refused and the whole file sealed as one quarantined record; a cut JPEG and a PNG with a
    // ZIP behind it are quarantined with their reasons; a good page in the same run is stored.
    let good =
        std::fs::read(crate::util::synth().path.join(crate::util::synth().truth[3]["file"].as_str().unwrap())).unwrap();
    let mut sources: Vec<Source> = hozon::bench::hostile::files(10)
        .into_iter()
        .filter(|(n, _)| n != "many.tif")
        .map(|(name, bytes)| Source::Upload { name, bytes })
        .collect();
    sources.push(Source::Upload { name: "good.png".into(), bytes: good });
    let report = ingest_sources(&h, &crate::util::mailroom(), sources, &opts).unwrap();
    let line = |name: &str| {
        report
            .files
            .iter()
            .filter(|(p, _)| p.to_string_lossy().starts_with(name))
            .map(|(_, o)| format!("{o:?}"))
            .collect::<Vec<_>>()
            .join(" | ")
    };
    assert!(
        line("bomb.tif#3-120").contains("OverBudget") || line("bomb.tif#3-120").contains("80 MB"),
        "{}",
        line("bomb")
    );
    assert_eq!(
        report
            .files
            .iter()
            .filter(|(p, o)| p.to_string_lossy().starts_with("bomb") && matches!(o, Outcome::Stored(_)))
            .count(),
        2
    );
    assert!(line("cut.jpg").contains("Quarantined"), "{}", line("cut.jpg"));
    assert!(line("zip.png").contains("Trailing"), "{}", line("zip.png"));
    assert!(line("huge.png").contains("TooLarge"), "{}", line("huge.png"));
    assert!(line("good.png").contains("Stored"), "{}", line("good.png"));
    let quarantined_bomb = h
        .store()
        .records()
        .map(Result::unwrap)
        .filter(
            |r| matches!(&r.kind, hozon::store::RecordKind::Quarantined { reason } if reason.contains("ファイル全体")),
        )
        .count();
    assert_eq!(quarantined_bomb, 1, "the bomb itself is kept, sealed");
}
