use super::*;

#[test]
fn seal_open_roundtrip_and_binding() {
    let k = Key::generate();
    let s = k.seal(b"record-a", b"secret text");
    assert_eq!(k.open(b"record-a", &s).unwrap(), b"secret text");
    assert!(matches!(k.open(b"record-b", &s), Err(Error::Decrypt)));
    let other = Key::generate();
    assert!(matches!(other.open(b"record-a", &s), Err(Error::Decrypt)));
}

#[test]
fn tampered_byte_is_rejected() {
    let k = Key::generate();
    let mut s = k.seal(b"", b"payload");
    let last = s.len() - 1;
    s[last] ^= 1;
    assert!(k.open(b"", &s).is_err());
    assert!(matches!(k.open(b"", &s[..10]), Err(Error::Format)));
}

#[test]
fn wrap_unwrap_and_redacted_debug() {
    let master = Key::generate();
    let dk = Key::generate();
    let w = master.wrap(b"ctx", &dk);
    let back = master.unwrap_key(b"ctx", &w).unwrap();
    assert_eq!(back.expose(), dk.expose());
    assert!(!format!("{dk:?}").contains(&hex::encode(dk.expose())[..6]));
    assert_eq!(format!("{dk:?}"), "Key(<redacted>)");
}

#[test]
fn keyed_hash_depends_on_key() {
    let a = Key::generate();
    let b = Key::generate();
    assert_eq!(a.keyed_hash(b"x"), a.keyed_hash(b"x"));
    assert_ne!(a.keyed_hash(b"x"), b.keyed_hash(b"x"));
}

#[test]
fn convergent_sealing_is_deterministic_per_key_and_opens_like_seal() {
    let k = Key::generate();
    let a = k.seal_convergent(b"ctx", b"same chunk");
    assert_eq!(a, k.seal_convergent(b"ctx", b"same chunk"), "same input, same bytes");
    assert_ne!(a, k.seal_convergent(b"ctx", b"other chunk"));
    assert_ne!(a, k.seal_convergent(b"other ctx", b"same chunk"), "the context changes the nonce");
    assert_ne!(a, Key::generate().seal_convergent(b"ctx", b"same chunk"), "another key, other bytes");
    assert_eq!(k.open(b"ctx", &a).unwrap(), b"same chunk");
    assert!(k.open(b"other ctx", &a).is_err());
}
