//! Nothing falls through: pages no form template fits wait in the classification queue until
//! a reviewer files them as a form or a document type; forms and their retention are data.

use std::process::Command;

use hozon::app::Filing;
use hozon::auth::{Actor, Role};
use hozon::capture::ingest::{IngestOptions, ingest_dir};
use hozon::store::RecordId;

use crate::util::{Browser, TestEnv, hozon_bin, log_batch, mailroom, synth};

/// Application sheet 1 of the shared set with its printed title painted over: the table is
/// there, the words that name the form are not (a stamp or a fold over the title).
fn untitled_application() -> Vec<u8> {
    let t = &synth().truth[0];
    assert_eq!(t["form"], "application");
    let mut img = image::open(synth().path.join(t["file"].as_str().unwrap())).unwrap().to_luma8();
    for y in 150..480 {
        for x in 0..img.width() {
            img.put_pixel(x, y, image::Luma([255]));
        }
    }
    let mut png = Vec::new();
    img.write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png).unwrap();
    png
}

fn id_of(h: &hozon::Hozon, bytes: &[u8]) -> RecordId {
    h.store().dedupe_lookup(&h.store().scan_fingerprint(bytes)).unwrap().expect("stored")
}

/// A 住民票の写し with the My Number printed, a 課税証明書, and an application whose title
/// cannot be read: all stored, counted as unfiled in the ingest report and the batch, listed
/// with the type their text suggests; the My Number on the attachment is found and masked and
/// the page shown only with the right. Filing as a type gives the type's class and retention;
/// filing as a form reads the page as that template into the review queue; a form whose table
/// is not on the page is refused and nothing changes; over HTTP a reviewer files and a
/// mailroom clerk cannot.
#[tokio::test]
async fn unrecognised_pages_wait_to_be_filed_as_a_form_or_document_type() {
    let env = TestEnv::new();
    let h = env.open();
    let scans = env.tmp.path().join("attachments");
    // Seed 2: submission 1's attachment is a 住民票 with the My Number, submission 2's a tax
    // certificate.
    let opts =
        hozon::synth::SynthOptions { attachments: true, ..hozon::synth::SynthOptions::easy(scans.clone(), 2, 2, 1.0) };
    let truth = hozon::synth::generate(&opts, &indicatif::ProgressBar::hidden()).unwrap();
    let inbox = env.tmp.path().join("inbox");
    std::fs::create_dir_all(&inbox).unwrap();
    let attachment = |kind: &str| truth.iter().find(|t| t.fields["doc_type"] == kind).unwrap();
    let (resident, tax) = (attachment("resident_record"), attachment("tax_certificate"));
    let number = resident.fields["my_number"].as_str().unwrap().to_owned();
    assert!(hozon::jp::my_number_valid(&number), "the 住民票 carries a My Number: {number}");
    let mut bytes = Vec::new();
    for t in [resident, tax] {
        let b = std::fs::read(scans.join(&t.file)).unwrap();
        std::fs::write(inbox.join(&t.file), &b).unwrap();
        bytes.push(b);
    }
    let untitled = untitled_application();
    std::fs::write(inbox.join("untitled.png"), &untitled).unwrap();
    let batch = log_batch(&h, 3);
    let opts = IngestOptions { jobs: 2, keep_files: false, progress: false, batch: Some(batch.clone()) };
    let report = ingest_dir(&h, &mailroom(), &inbox, &opts).unwrap();
    assert_eq!((report.stored(), report.unfiled), (3, 3), "{:?}", report.files);
    let (resident_id, tax_id, untitled_id) = (id_of(&h, &bytes[0]), id_of(&h, &bytes[1]), id_of(&h, &untitled));
    let op = Actor::operator("test");
    let counts = |h: &hozon::Hozon| h.batch(&op, &batch).unwrap().1;
    assert_eq!((counts(&h).unclassified, counts(&h).forms), (3, 0));

    let reviewer = Actor::with_role("rev01", Role::Reviewer);
    let (total, items) = h.sorting_queue(&reviewer, 10).unwrap();
    assert_eq!(total, 3);
    let item = |id: &RecordId| items.iter().find(|i| &i.id == id).unwrap().clone();
    assert_eq!(item(&resident_id).suggestion.as_deref(), Some("resident_record"));
    assert!(item(&resident_id).my_number, "the printed My Number is found");
    assert_eq!(item(&tax_id).suggestion.as_deref(), Some("tax_certificate"));
    assert!(!item(&tax_id).my_number);
    assert!(h.sorting_queue(&mailroom(), 10).is_err(), "the mailroom does not file pages");
    // The number is masked in the index, and the page opens only with the My Number right.
    let no_right = Actor::with_role("rev02", Role::Reviewer).without_my_number();
    assert!(h.page_thumbnail(&no_right, &resident_id, 200).is_err());
    assert!(reviewer.rights().my_number, "a reviewer's preset includes the My Number right");
    assert!(h.page_thumbnail(&reviewer, &resident_id, 200).is_ok());
    assert!(h.page_thumbnail(&no_right, &tax_id, 200).is_ok());

    // Only someone who may open the page unmasked files it.
    let e = h.file_page(&no_right, &resident_id, &Filing::DocType("resident_record".into())).unwrap_err();
    assert!(matches!(e, hozon::error::Error::NotFound(_)), "{e}");
    // A form whose table is not on the page: refused, nothing changed.
    let e = h.file_page(&reviewer, &resident_id, &Filing::Form("application#1".into())).unwrap_err().to_string();
    assert!(e.contains("表が見つかりません"), "{e}");
    assert_eq!(h.store().record(&resident_id).unwrap().unwrap().class, hozon::store::UNCLASSIFIED);
    let e = h.file_page(&reviewer, &tax_id, &Filing::DocType("no_such_type".into())).unwrap_err().to_string();
    assert!(e.contains("no_such_type"), "{e}");

    // As a document type: the type's class and its policy's retention; out of the queue.
    let filed = h.file_page(&reviewer, &tax_id, &Filing::DocType("tax_certificate".into())).unwrap();
    assert_eq!((filed.class.as_str(), filed.doc_type.as_deref()), ("proof", Some("tax_certificate")));
    let proof = h.applied_policies().get("proof").unwrap().clone();
    assert_eq!(filed.retention.as_ref().unwrap().policy_version, proof.version);
    assert_eq!(h.sorting_queue(&reviewer, 10).unwrap().0, 2);
    assert_eq!((counts(&h).unclassified, counts(&h).attachments), (2, 1));
    // Filed wrongly, filed again.
    let again = h.file_page(&reviewer, &tax_id, &Filing::DocType("other_attachment".into())).unwrap();
    assert_eq!(again.doc_type.as_deref(), Some("other_attachment"));

    // As a form: read as that template, its draft in the review queue.
    let filed = h.file_page(&reviewer, &untitled_id, &Filing::Form("application#1".into())).unwrap();
    assert_eq!(filed.class, "application");
    let draft = h.draft(&reviewer, &untitled_id).unwrap().expect("a draft");
    let want = synth().truth[0]["fields"]["name"].as_str().unwrap().replace('　', " ");
    assert_eq!(draft.field("name").unwrap().value, want);
    let (_, queue) = h.review_queue(&reviewer, &hozon::app::QueueFilter::default(), 10).unwrap();
    assert_eq!(queue.iter().map(|q| &q.id).collect::<Vec<_>>(), [&untitled_id], "only drafts in the review queue");
    assert!(h.file_page(&reviewer, &untitled_id, &Filing::DocType("other_attachment".into())).is_err());
    assert_eq!((counts(&h).forms, counts(&h).unclassified), (1, 1));

    // Over HTTP: the queue for a reviewer (the My Number page not shown without the right),
    // filing by form post; the mailroom is refused.
    let temp = env.add_user(&h, "rev03", Role::Reviewer);
    let mut rights = Role::Reviewer.preset();
    rights.my_number = false;
    hozon::auth::set_rights(h.store(), &op, "rev03", Role::Reviewer, rights).unwrap();
    let clerk = env.add_user(&h, "mail02", Role::Mailroom);
    let with_right = env.add_user(&h, "rev04", Role::Reviewer);
    let data = env.data();
    let app = hozon::web::router(hozon::web::AppState::new(h));
    let mut b = Browser::new(app.clone());
    b.login("rev03", &temp, "reviewer-pass-2026-x").await;
    let page = b.get("/sorting").await;
    assert_eq!(page.status, 200);
    assert!(
        page.body.contains("個人番号を含むため表示できません") && page.body.contains("住民票の写し"),
        "{}",
        page.body
    );
    assert!(!page.body.contains(&number));
    assert!(page.body.contains("個人番号の権限がある職員が仕分けます"));
    let refused = b.post(&format!("/sorting/{resident_id}"), &[("filing", "type:resident_record")]).await;
    assert_eq!(refused.status.as_u16(), 404, "a page the reviewer may not open is not filed by them");
    let mut r = Browser::new(app.clone());
    r.login("rev04", &with_right, "reviewer-pass-2026-y").await;
    let filed = r.post(&format!("/sorting/{resident_id}"), &[("filing", "type:resident_record")]).await;
    assert_eq!((filed.status.as_u16(), filed.location()), (303, "/sorting"), "{}", filed.body);
    let empty = b.get("/sorting").await;
    assert!(empty.body.contains("仕分け待ちのページはありません"), "{}", empty.body);
    let mut m = Browser::new(app);
    m.login("mail02", &clerk, "mailroom-pass-2026-x").await;
    assert_eq!(m.get("/sorting").await.status, 403);
    assert_eq!(m.post(&format!("/sorting/{tax_id}"), &[("filing", "type:resident_record")]).await.status, 403);

    // The printed My Number is nowhere in the data directory in plaintext.
    for f in walkdir::WalkDir::new(&data).into_iter().filter_map(Result::ok).filter(|e| e.file_type().is_file()) {
        let bytes = std::fs::read(f.path()).unwrap();
        assert!(!bytes.windows(number.len()).any(|w| w == number.as_bytes()), "{}", f.path().display());
    }
}

/// A new form is a template file plus a policy file for its class: hozon starts with both
/// (the form's title becomes its label); a template whose class has no policy stops start-up
/// with an error naming the template and the policy file to add.
#[test]
fn a_new_form_with_its_policy_is_data_not_code() {
    let env = TestEnv::new();
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let (forms, policies) = (env.tmp.path().join("forms"), env.tmp.path().join("policies"));
    crate::util::copy_dir(&root.join("ocr-models/forms"), &forms);
    crate::util::copy_dir(&root.join("retention-policies"), &policies);
    let template = std::fs::read_to_string(forms.join("clinical-survey.toml"))
        .unwrap()
        .replace("form = \"clinical_survey\"", "form = \"facility_use\"")
        .replace("title = \"臨床調査個人票\"", "title = \"施設利用申込書\"")
        .replace("\"臨床調査個人票\"", "\"施設利用申込書\"");
    std::fs::write(forms.join("facility.toml"), template).unwrap();
    let run = || {
        let out = Command::new(hozon_bin())
            .arg("--data")
            .arg(env.data())
            .args(["draft", "unfiled"])
            .env("HOZON_FORMS", &forms)
            .env("HOZON_POLICIES", &policies)
            .output()
            .unwrap();
        (
            out.status.success(),
            format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)),
        )
    };
    let (ok, out) = run();
    assert!(!ok);
    assert!(
        out.contains("facility.toml")
            && out.contains("facility_use")
            && out.contains("retention-policies/facility_use.toml"),
        "{out}"
    );
    let policy = std::fs::read_to_string(policies.join("proof.toml"))
        .unwrap()
        .replace("class = \"proof\"", "class = \"facility_use\"")
        .replace("title = \"住民票・保険証・課税証明等の写し\"", "title = \"施設利用申込書\"");
    std::fs::write(policies.join("facility_use.toml"), policy).unwrap();
    let (ok, out) = run();
    assert!(ok, "{out}");
    assert!(out.contains("未分類 0 件"), "{out}");
}
