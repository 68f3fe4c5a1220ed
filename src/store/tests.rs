use super::*;

fn pending_record(store: &Store, bytes: &[u8]) -> (Record, [u8; 32]) {
    let fp = store.scan_fingerprint(bytes);
    let id = RecordId::from_fingerprint(&fp);
    let dk = store.new_data_key();
    let blob = store.put_blob(&id, &dk, BlobRole::Original, bytes).unwrap();
    let rec = Record {
        wrapped_key: store.wrap_data_key(&id, &dk),
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
    store.put_blob(&id2, &Key::generate(), BlobRole::Original, b"orphan").unwrap();
    assert_eq!(store.gc_orphans().unwrap(), 1);
    assert!(path.exists());
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
    let queued = |s: &Store| s.queue().map(|e| e.unwrap()).map(|(id, e)| (id, e.second_look)).collect::<Vec<_>>();
    // The older page first; the page without a draft is not review work.
    assert_eq!(queued(&store), [(ids[1].id.clone(), false), (ids[0].id.clone(), false)]);
    store.queue_mark(&ids[1], Some(true)).unwrap();
    store.queue_mark(&ids[0], None).unwrap();
    assert_eq!(queued(&store), [(ids[1].id.clone(), true)]);
    assert!(store.queue_built().unwrap(), "a new store starts with its queue");
}
