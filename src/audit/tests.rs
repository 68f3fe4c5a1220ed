use sled::Transactional;

use super::*;

struct Log {
    _db: sled::Db,
    meta: sled::Tree,
    log: sled::Tree,
    key: Key,
}

fn log(n: usize) -> Log {
    let db = sled::Config::new().temporary(true).open().unwrap();
    let meta = db.open_tree("m").unwrap();
    let log = db.open_tree("l").unwrap();
    let key = Key::generate();
    for i in 0..n {
        (&meta, &log)
            .transaction(|(m, l)| append_in_tx(m, l, &key, &Event::system("test", &i.to_string()), chrono::Utc::now()))
            .unwrap();
    }
    Log { _db: db, meta, log, key }
}

impl Log {
    fn raw(&self) -> Vec<(u64, Vec<u8>)> {
        self.log
            .iter()
            .map(|kv| {
                let (k, v) = kv.unwrap();
                (u64::from_be_bytes(k.as_ref().try_into().unwrap()), v.to_vec())
            })
            .collect()
    }
    fn head(&self) -> Checkpoint {
        let h: Head = serde_json::from_slice(&self.meta.get("audit_head").unwrap().unwrap()).unwrap();
        Checkpoint { seq: h.seq, hash: h.hash }
    }
    fn verify(&self) -> Result<u64, Broken> {
        verify(self.raw(), &self.key, &self.head(), &[], None)
    }
}

#[test]
fn intact_chain_verifies() {
    let l = log(5);
    assert_eq!(l.verify(), Ok(5));
}

#[test]
fn a_changed_byte_is_named() {
    let l = log(5);
    let mut v = l.log.get(3u64.to_be_bytes()).unwrap().unwrap().to_vec();
    v[40] ^= 1;
    l.log.insert(3u64.to_be_bytes(), v).unwrap();
    assert_eq!(l.verify().unwrap_err().seq, 3);
}

#[test]
fn a_deleted_entry_is_named() {
    let l = log(5);
    l.log.remove(2u64.to_be_bytes()).unwrap();
    let e = l.verify().unwrap_err();
    assert_eq!(e.seq, 2);
    assert!(e.why.contains("missing"));
    // Deleting the tail is caught by the head.
    let l = log(5);
    l.log.remove(5u64.to_be_bytes()).unwrap();
    assert!(l.verify().unwrap_err().why.contains("truncated"));
}

#[test]
fn two_reordered_entries_are_named() {
    let l = log(5);
    let a = l.log.get(2u64.to_be_bytes()).unwrap().unwrap();
    let b = l.log.get(4u64.to_be_bytes()).unwrap().unwrap();
    l.log.insert(2u64.to_be_bytes(), b).unwrap();
    l.log.insert(4u64.to_be_bytes(), a).unwrap();
    assert_eq!(l.verify().unwrap_err().seq, 2);
}

#[test]
fn checkpoints_are_written_and_detect_truncation_with_a_rewritten_head() {
    let l = log(CHECKPOINT_EVERY as usize + 5);
    let entries: Vec<Entry> = l.raw().iter().map(|(s, v)| open_entry(&l.key, *s, v).unwrap()).collect();
    let cps = checkpoints(&entries);
    assert_eq!(cps.len(), 1);
    assert_eq!(cps[0].seq, CHECKPOINT_EVERY - 1);
    assert!(verify(l.raw(), &l.key, &l.head(), &cps, None).is_ok());
    // Someone truncates the log to 900 entries and rewrites the head to match: only the
    // exported checkpoint can tell.
    let cut: Vec<_> = l.raw().into_iter().take(900).collect();
    let at = |seq: u64| Checkpoint { seq, hash: entries[seq as usize - 1].hash.clone() };
    assert!(verify(cut.clone(), &l.key, &at(900), &[], None).is_ok());
    assert!(verify(cut.clone(), &l.key, &at(900), &cps, None).unwrap_err().why.contains("truncated"));
    // A head whose number was rewritten but not its hash (or the other way round) is caught
    // without any export: the last entry must be the recorded head.
    let stale = Checkpoint { seq: 900, hash: l.head().hash };
    assert!(verify(cut, &l.key, &stale, &[], None).unwrap_err().why.contains("chain head"));
    let mut longer = l.head();
    longer.seq -= 1;
    assert!(verify(l.raw(), &l.key, &longer, &[], None).unwrap_err().why.contains("after the recorded head"));
}

#[test]
fn a_checkpoint_entry_must_name_the_entry_before_it() {
    let l = log(CHECKPOINT_EVERY as usize + 2);
    let entries: Vec<Entry> = l.raw().iter().map(|(s, v)| open_entry(&l.key, *s, v).unwrap()).collect();
    let cp = entries.iter().find(|e| e.action == "audit.checkpoint").unwrap();
    // Re-seal the checkpoint entry naming another hash, its own hash recomputed, the chain
    // after it re-linked: only the checkpoint's content betrays it.
    let mut forged = cp.clone();
    forged.target = format!("seq={} hash={}", cp.seq - 1, "0".repeat(64));
    forged.hash = entry_hash(&forged);
    let mut raw = l.raw();
    let i = raw.iter().position(|(s, _)| *s == cp.seq).unwrap();
    raw[i].1 = l.key.seal(&aad(cp.seq), &serde_json::to_vec(&forged).unwrap());
    raw.truncate(i + 1);
    let head = Checkpoint { seq: cp.seq, hash: forged.hash.clone() };
    let e = verify(raw, &l.key, &head, &[], None).unwrap_err();
    assert_eq!(e.seq, cp.seq);
    assert!(e.why.contains("checkpoint"), "{e}");
}

#[test]
fn entries_are_sealed() {
    let l = log(3);
    for (_, v) in l.raw() {
        assert!(!String::from_utf8_lossy(&v).contains("test"));
    }
}

#[test]
fn a_disposed_prefix_verifies_from_its_base_and_nothing_else_does() {
    let l = log(10);
    let entries: Vec<Entry> = l.raw().iter().map(|(s, v)| open_entry(&l.key, *s, v).unwrap()).collect();
    let base = base_at(&entries, 4).unwrap();
    let rest: Vec<_> = l.raw().into_iter().skip(4).collect();
    let head = l.head();
    assert_eq!(verify(rest.clone(), &l.key, &head, &[], Some(&base)), Ok(10));
    assert_eq!(
        verify(rest.clone(), &l.key, &head, &[], None).unwrap_err().seq,
        1,
        "without the base it is a truncation"
    );
    let wrong = Checkpoint { seq: 4, hash: "0".repeat(64) };
    assert_eq!(verify(rest, &l.key, &head, &[], Some(&wrong)).unwrap_err().seq, 5);
}
