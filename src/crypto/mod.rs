//! Keys and authenticated encryption. Pure: no I/O, no logging, no clock.
//!
//! Every byte of personal data that reaches the disk is sealed here with XChaCha20-Poly1305
//! (random 24-byte nonces, so nonce reuse is not a concern even with many writers). Each record
//! has its own [`DataKey`]; data keys are wrapped by the [`MasterKey`] read from the key file.
//! Destroying a record's wrapped data key makes every blob of that record unreadable
//! (crypto-shredding), which is what disposal relies on.
//!
//! Every sealed value is bound to its context by the associated data (`aad`): a blob sealed for
//! record A cannot be swapped in for record B without failing authentication.

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand::RngCore;
use zeroize::{Zeroize, ZeroizeOnDrop};

#[cfg(test)]
mod tests;

/// Format version byte at the start of every sealed value.
const SEAL_VERSION: u8 = 1;
const NONCE_LEN: usize = 24;
const TAG_LEN: usize = 16;
/// Bytes a sealed value adds to its plaintext.
pub const SEAL_OVERHEAD: usize = 1 + NONCE_LEN + TAG_LEN;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("decryption failed (wrong key, or the data was changed or swapped)")]
    Decrypt,
    #[error("sealed value is too short or has an unknown format version")]
    Format,
    #[error("key material has the wrong length: {0} bytes, expected 32")]
    KeyLength(usize),
}

/// A 256-bit symmetric key. `Debug` is redacted and the bytes are zeroed on drop.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct Key([u8; 32]);

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Key(<redacted>)")
    }
}

impl Key {
    pub fn generate() -> Key {
        let mut k = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut k);
        Key(k)
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Key, Error> {
        let arr: [u8; 32] = bytes.try_into().map_err(|_| Error::KeyLength(bytes.len()))?;
        Ok(Key(arr))
    }

    /// Raw bytes, for writing the key file only.
    pub fn expose(&self) -> &[u8; 32] {
        &self.0
    }

    /// Short public identifier of a key (not secret): lets the store tell which master key
    /// wrapped a data key without trying to decrypt.
    pub fn fingerprint(&self) -> String {
        let h = blake3::derive_key("hozon key fingerprint v1", &self.0);
        hex::encode(&h[..8])
    }

    /// Encrypts `plaintext`, binding it to `aad`. Output: version ‖ nonce ‖ ciphertext+tag.
    pub fn seal(&self, aad: &[u8], plaintext: &[u8]) -> Vec<u8> {
        let mut nonce = [0u8; NONCE_LEN];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        self.seal_with(nonce, aad, plaintext)
    }

    fn seal_with(&self, nonce: [u8; NONCE_LEN], aad: &[u8], plaintext: &[u8]) -> Vec<u8> {
        let cipher = XChaCha20Poly1305::new((&self.0).into());
        let ct = cipher
            .encrypt(XNonce::from_slice(&nonce), Payload { msg: plaintext, aad })
            .expect("XChaCha20-Poly1305 encryption cannot fail for in-memory buffers");
        let mut out = Vec::with_capacity(SEAL_OVERHEAD + plaintext.len());
        out.push(SEAL_VERSION);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ct);
        out
    }

    /// Like [`Key::seal`], but the same plaintext always gives the same bytes: the nonce is a
    /// keyed hash of the plaintext (SIV-style), so identical backup chunks are stored once.
    /// Reveals only whether two sealed chunks are equal. Opens with [`Key::open`].
    pub fn seal_convergent(&self, aad: &[u8], plaintext: &[u8]) -> Vec<u8> {
        let mut h = blake3::Hasher::new_keyed(&self.0);
        h.update(b"hozon convergent nonce v1\0");
        h.update(aad);
        h.update(plaintext);
        let mut nonce = [0u8; NONCE_LEN];
        nonce.copy_from_slice(&h.finalize().as_bytes()[..NONCE_LEN]);
        self.seal_with(nonce, aad, plaintext)
    }

    /// Reverses [`Key::seal`]; fails if the key, the aad or any byte differs.
    pub fn open(&self, aad: &[u8], sealed: &[u8]) -> Result<Vec<u8>, Error> {
        if sealed.len() < SEAL_OVERHEAD || sealed[0] != SEAL_VERSION {
            return Err(Error::Format);
        }
        let cipher = XChaCha20Poly1305::new((&self.0).into());
        let nonce = XNonce::from_slice(&sealed[1..1 + NONCE_LEN]);
        cipher.decrypt(nonce, Payload { msg: &sealed[1 + NONCE_LEN..], aad }).map_err(|_| Error::Decrypt)
    }

    /// Wraps another key under this one (key-encryption-key use).
    pub fn wrap(&self, context: &[u8], key: &Key) -> Vec<u8> {
        self.seal(context, &key.0)
    }

    pub fn unwrap_key(&self, context: &[u8], wrapped: &[u8]) -> Result<Key, Error> {
        let mut raw = self.open(context, wrapped)?;
        let key = Key::from_bytes(&raw);
        raw.zeroize();
        key
    }

    /// Keyed hash (BLAKE3 keyed mode). Used where equality must be testable without revealing
    /// the input: duplicate detection of scans, later My Number matching.
    pub fn keyed_hash(&self, data: &[u8]) -> [u8; 32] {
        *blake3::keyed_hash(&self.0, data).as_bytes()
    }
}

/// The key-encryption key read from the key file. Wraps data keys; never encrypts data itself.
pub type MasterKey = Key;
/// A per-record (or per-purpose) key that encrypts data.
pub type DataKey = Key;
