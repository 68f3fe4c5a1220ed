use super::*;

fn pending_record(store: &Store, bytes: &[u8]) -> (Record, [u8; 32]) {
    let fp = store.scan_fingerprint(bytes);
    let id = RecordId::from_fingerprint(&fp);
    let dk = store.new_data_key();
    let blob = store.put_blob(&id, &dk, BlobRole::Original, bytes).unwrap();
    let mut rec = Record {
        wrapped_key: Vec::new(),
        key_epoch: None,
        past_epochs: Vec::new(),
        doc_type: None,
        received_on: None,
        id,
        state: RecordState::Pending,
        kind: RecordKind::Page,
        received_at: chrono::Utc::now(),
        blobs: vec![blob],
        class: "scan".into(),
        last_changed_at: None,
        decided_on: None,
        retention: None,
        batch: None,
    };
    store.seal_record_key(&mut rec, &dk).unwrap();
    (rec, fp)
}

#[test]
fn init_open_and_wrong_key() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let key = tmp.path().join("k");
    drop(Store::init(&data, &key).unwrap());
    assert!(matches!(Store::init(&data, &key), Err(Error::AlreadyInitialised(_))));
    drop(Store::open(&data, &key).unwrap());
    let other = tmp.path().join("other");
    keyfile::create(&other, &Key::generate()).unwrap();
    assert!(matches!(Store::open(&data, &other), Err(Error::WrongKey)));
    assert!(matches!(Store::open(&tmp.path().join("nope"), &key), Err(Error::NotInitialised(_))));
}

#[test]
fn key_file_with_loose_permissions_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    let key = tmp.path().join("k");
    drop(Store::init(&tmp.path().join("d"), &key).unwrap());
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let err = Store::open(&tmp.path().join("d"), &key).unwrap_err();
    assert!(err.to_string().contains("chmod 600"), "{err}");
}

#[test]
fn blobs_roundtrip_and_rotation_keeps_them_readable() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let key = tmp.path().join("k");
    let mut store = Store::init(&data, &key).unwrap();
    let (rec, fp) = pending_record(&store, "山田太郎の申請書".as_bytes());
    store.put_pending(&rec).unwrap();
    let mut stored = rec.clone();
    stored.state = RecordState::Stored;
    store.commit_stored(&stored, &fp, audit::Event::system("test", "x")).unwrap();
    let old_fp = store.master.fingerprint();
    let new_fp = store.rotate_master_key().unwrap();
    assert_ne!(old_fp, new_fp);
    drop(store);
    // The key file now holds the new key, and every blob still opens.
    let store = Store::open(&data, &key).unwrap();
    let rec = store.record(&rec.id).unwrap().unwrap();
    assert_eq!(store.read_blob(&rec, BlobRole::Original).unwrap(), "山田太郎の申請書".as_bytes());
    assert_eq!(store.dedupe_lookup(&fp).unwrap(), Some(rec.id.clone()));
}

#[test]
fn interrupted_rotation_is_finished_on_open() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let key = tmp.path().join("k");
    let mut store = Store::init(&data, &key).unwrap();
    store.rotate_master_key().unwrap();
    let rotated = keyfile::read(&key).unwrap();
    drop(store);
    // Simulate a crash after the sled commit but before the rename: the new key sits in .new
    // and the old path holds a stale key.
    std::fs::rename(&key, keyfile::pending_path(&key)).unwrap();
    keyfile::create(&key, &Key::generate()).unwrap();
    drop(Store::open(&data, &key).unwrap());
    assert_eq!(keyfile::read(&key).unwrap().expose(), rotated.expose());
    assert!(!keyfile::pending_path(&key).exists());
}

#[test]
fn tampered_blob_is_detected_and_orphans_are_collected() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::init(&tmp.path().join("d"), &tmp.path().join("k")).unwrap();
    let (rec, _) = pending_record(&store, b"page");
    store.put_pending(&rec).unwrap();
    let addr = &rec.blobs[0].addr;
    let path = tmp.path().join("d/blobs").join(&addr[..2]).join(addr);
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[30] ^= 0xff;
    std::fs::write(&path, &bytes).unwrap();
    assert!(store.read_blob(&rec, BlobRole::Original).is_err());
    // An unreferenced blob is removed by gc; the referenced one stays.
    let id2 = RecordId::from_fingerprint(&[7u8; 32]);
    let orphan = store.put_blob(&id2, &Key::generate(), BlobRole::Original, b"orphan").unwrap();
    // Fresh: it may be a writer's blob whose record is about to commit, so it stays.
    assert_eq!(store.gc_orphans().unwrap(), 0, "a blob younger than the grace period is never collected");
    let orphan_path = tmp.path().join("d/blobs").join(&orphan.addr[..2]).join(&orphan.addr);
    let old = std::time::SystemTime::now() - GC_GRACE - std::time::Duration::from_secs(60);
    std::fs::File::options().write(true).open(&orphan_path).unwrap().set_modified(old).unwrap();
    std::fs::File::options().write(true).open(&path).unwrap().set_modified(old).unwrap();
    assert_eq!(store.gc_orphans().unwrap(), 1);
    assert!(path.exists());
    assert!(!orphan_path.exists());
}

#[test]
fn recognised_pages_wait_in_the_review_queue_oldest_first_until_verified() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::init(&tmp.path().join("data"), &tmp.path().join("k")).unwrap();
    let mut ids = Vec::new();
    for (i, text) in ["新しい", "古い", "未分類"].iter().enumerate() {
        let (mut rec, fp) = pending_record(&store, text.as_bytes());
        rec.received_at = chrono::Utc::now() - chrono::Duration::minutes(10 * i as i64);
        if i < 2 {
            let dk = store.data_key(&rec).unwrap();
            rec.blobs.push(store.put_blob(&rec.id, &dk, BlobRole::Draft, b"{}").unwrap());
            rec.class = "application".into();
        }
        rec.state = RecordState::Stored;
        store.commit_stored(&rec, &fp, audit::Event::system("test", "x")).unwrap();
        ids.push(rec);
    }
    let queued =
        |s: &Store| s.queue().map(|e| e.unwrap()).map(|(id, e)| (id, e.form, e.second_look)).collect::<Vec<_>>();
    // The oldest first; the page without a draft waits to be filed (class `scan`: the
    // classification queue), the others for review.
    let entry = |i: usize, form: &str, look| (ids[i].id.clone(), form.to_owned(), look);
    assert_eq!(
        queued(&store),
        [entry(2, UNCLASSIFIED, false), entry(1, "application", false), entry(0, "application", false)]
    );
    store.queue_mark(&ids[1], Some(true)).unwrap();
    store.queue_mark(&ids[0], None).unwrap();
    assert_eq!(queued(&store), [entry(2, UNCLASSIFIED, false), entry(1, "application", true)]);
    assert!(store.queue_built().unwrap(), "a new store starts with its queue");
}

#[test]
fn retiring_an_epoch_leaves_destroyed_keys_unusable_in_old_versions_and_survivors_readable() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::init(&tmp.path().join("d"), &tmp.path().join("k")).unwrap();
    let approval = crate::retention::run::ApprovedDisposal::for_tests("D1");
    let due = chrono::NaiveDate::from_ymd_opt(2030, 4, 1);
    let mut recs = Vec::new();
    for page in [b"destroyed".as_slice(), b"survivor", b"elsewhere"] {
        let (mut rec, _) = pending_record(&store, page);
        if page != b"elsewhere" {
            rec.retention = Some(Retention { policy_version: 1, due_on: due });
        }
        store.put_pending(&rec).unwrap();
        recs.push(store.record(&rec.id).unwrap().unwrap());
    }
    let label = "scan/FY2030".to_owned();
    assert_eq!(recs[0].key_epoch.as_ref().unwrap().label, label, "the store put it in its epoch");
    // The versions an earlier copy of the data directory would hold.
    let old: Vec<Record> = recs.clone();
    store.shred_keys(&approval, &[(recs[0].clone(), vec![])]).unwrap();
    let mut shredded = store.record(&recs[0].id).unwrap().unwrap();
    assert!(store.data_key(&shredded).is_err());
    shredded.state = RecordState::Shredding { run: "D1".into() };
    store.bury(&approval, &[shredded], &[]).unwrap();
    // Before retirement the old version still opens: this is the hole retirement closes.
    assert!(store.data_key(&old[0]).is_ok());
    let rewrapped = store.retire_epochs(&approval, std::slice::from_ref(&label)).unwrap();
    assert_eq!(rewrapped, 1, "only the survivor of the epoch is re-wrapped");
    assert!(matches!(store.data_key(&old[0]), Err(Error::KeyDestroyed(_))), "destroyed: no copy opens");
    for k in store.key_material_for_audit().unwrap() {
        assert!(k.unwrap_key(format!("record-key:{}", old[0].id).as_bytes(), &old[0].wrapped_key).is_err());
    }
    assert!(store.read_blob(&old[1], BlobRole::Original).is_ok(), "an old copy of a survivor opens (survivors table)");
    let now = store.record(&recs[1].id).unwrap().unwrap();
    assert_eq!(now.key_epoch.as_ref().unwrap().generation, 2);
    assert!(store.read_blob(&now, BlobRole::Original).is_ok());
    assert!(store.read_blob(&old[2], BlobRole::Original).is_ok(), "another epoch is untouched");
    // Retiring again (a resumed run) is harmless.
    store.retire_epochs(&approval, std::slice::from_ref(&label)).unwrap();
    assert!(store.read_blob(&old[1], BlobRole::Original).is_ok());
    // Reopened from disk, the same holds.
    drop(store);
    let store = Store::open(&tmp.path().join("d"), &tmp.path().join("k")).unwrap();
    assert!(store.data_key(&old[0]).is_err());
    assert!(store.read_blob(&old[1], BlobRole::Original).is_ok());
}

#[test]
fn a_record_whose_due_date_moves_is_re_wrapped_and_remembers_its_old_epoch() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::init(&tmp.path().join("d"), &tmp.path().join("k")).unwrap();
    let (mut rec, _) = pending_record(&store, b"moving");
    rec.retention = Some(Retention { policy_version: 1, due_on: chrono::NaiveDate::from_ymd_opt(2031, 4, 1) });
    store.put_pending(&rec).unwrap();
    let mut rec = store.record(&rec.id).unwrap().unwrap();
    rec.retention = Some(Retention { policy_version: 1, due_on: chrono::NaiveDate::from_ymd_opt(2033, 4, 1) });
    store.update_records(std::slice::from_ref(&rec), audit::Event::system("t", "")).unwrap();
    let rec = store.record(&rec.id).unwrap().unwrap();
    assert_eq!(rec.key_epoch.as_ref().unwrap().label, "scan/FY2033");
    assert_eq!(rec.past_epochs, vec!["scan/open".to_owned(), "scan/FY2031".to_owned()]);
    assert!(store.read_blob(&rec, BlobRole::Original).is_ok());
    assert_eq!(Store::epochs_of(std::slice::from_ref(&rec)).len(), 3);
}

#[test]
fn a_restored_record_that_opens_only_through_the_survivors_table_survives_the_next_retirement() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::init(&tmp.path().join("d"), &tmp.path().join("k")).unwrap();
    let approval = crate::retention::run::ApprovedDisposal::for_tests("D1");
    let (mut rec, _) = pending_record(&store, b"restored later");
    rec.retention = Some(Retention { policy_version: 1, due_on: chrono::NaiveDate::from_ymd_opt(2030, 4, 1) });
    store.put_pending(&rec).unwrap();
    let in_a = store.record(&rec.id).unwrap().unwrap();
    // Its due date moves: now in epoch B, remembering A.
    let mut moved = in_a.clone();
    moved.retention = Some(Retention { policy_version: 1, due_on: chrono::NaiveDate::from_ymd_opt(2032, 4, 1) });
    store.update_records(std::slice::from_ref(&moved), audit::Event::system("t", "")).unwrap();
    store.retire_epochs(&approval, &["scan/FY2030".to_owned()]).unwrap();
    // A backup taken before the move is restored: the record is back in A (retired).
    store.records.insert(in_a.id.as_str(), in_a.encode()).unwrap();
    assert!(store.read_blob(&in_a, BlobRole::Original).is_ok(), "opens through the survivors table");
    // Epoch B retires next: the restored record must still open.
    store.retire_epochs(&approval, &["scan/FY2032".to_owned()]).unwrap();
    assert!(store.read_blob(&in_a, BlobRole::Original).is_ok());
}

#[test]
fn master_key_rotation_moves_records_from_before_the_key_store_into_epochs() {
    let tmp = tempfile::tempdir().unwrap();
    let (data, key) = (tmp.path().join("d"), tmp.path().join("k"));
    let mut store = Store::init(&data, &key).unwrap();
    // A record as a store made before the key store kept it: its key wrapped by the master key.
    let (mut rec, _) = pending_record(&store, b"legacy");
    let dk = store.data_key(&rec).unwrap();
    rec.wrapped_key = store.master.wrap(&record_key_context(&rec.id), &dk);
    rec.key_epoch = None;
    rec.retention = Some(Retention { policy_version: 1, due_on: chrono::NaiveDate::from_ymd_opt(2035, 4, 1) });
    store.records.insert(rec.id.as_str(), rec.encode()).unwrap();
    store.flush().unwrap();
    assert!(store.read_blob(&rec, BlobRole::Original).is_ok());
    store.rotate_master_key().unwrap();
    drop(store);
    let store = Store::open(&data, &key).unwrap();
    let now = store.record(&rec.id).unwrap().unwrap();
    assert_eq!(now.key_epoch.as_ref().map(|e| e.label.as_str()), Some("scan/FY2035"), "moved into its epoch");
    assert!(store.read_blob(&now, BlobRole::Original).is_ok(), "and readable after the rotation");
    assert!(store.read_blob(&rec, BlobRole::Original).is_err(), "the legacy wrapping is useless without the old key");
}

#[test]
fn garbage_collection_running_beside_writers_never_takes_a_blob_a_record_points_at() {
    let tmp = tempfile::tempdir().unwrap();
    let store = std::sync::Arc::new(Store::init(&tmp.path().join("d"), &tmp.path().join("k")).unwrap());
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let gc = {
        let (store, stop) = (store.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut runs = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                store.gc_orphans().unwrap();
                runs += 1;
            }
            runs
        })
    };
    // A writer as ingest, uploads and review saves are: blobs first, the record after.
    for i in 0..60u32 {
        let (mut rec, fp) = pending_record(&store, format!("page {i}").as_bytes());
        store.put_pending(&rec).unwrap();
        rec.state = RecordState::Stored;
        store.commit_stored(&rec, &fp, audit::Event::system("t", "")).unwrap();
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    assert!(gc.join().unwrap() > 0, "collection ran while records were written");
    for rec in store.records() {
        let rec = rec.unwrap();
        assert!(store.read_blob(&rec, BlobRole::Original).is_ok(), "record {} lost its blob", rec.id);
    }
}
