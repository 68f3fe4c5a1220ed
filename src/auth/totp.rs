//! Time-based one-time passwords (RFC 6238) through the `totp-rs` crate: SHA-1, 6 digits,
//! 30-second steps, one step of clock skew either way, as authenticator apps expect.

use totp_rs::{Algorithm, Builder, Secret, Totp};

pub const ISSUER: &str = "hozon";

fn build(secret: &[u8], account: &str, digits: u8, algorithm: Algorithm) -> Option<Totp> {
    Builder::new()
        .with_algorithm(algorithm)
        .with_digits(digits)
        .with_secret(secret.to_vec())
        .with_issuer(Some(ISSUER))
        .with_account_name(account)
        .build()
        .ok()
}

/// A fresh 160-bit secret.
pub fn new_secret() -> Vec<u8> {
    let mut s = vec![0u8; 20];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut s);
    s
}

/// Length of one TOTP step in seconds.
pub const STEP: u64 = 30;

/// The time step (`unix_time / 30`) whose code `code` is, among the previous, current and next
/// step; `None` if it is none of them. Callers store the step to accept each code once.
pub fn matching_step(secret: &[u8], code: &str, unix_time: u64) -> Option<u64> {
    let code = code.trim();
    if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let t = build(secret, "x", 6, Algorithm::SHA1)?;
    let now = unix_time / STEP;
    // Every candidate is compared (no early exit), in constant time.
    let mut found = None;
    for step in [now.saturating_sub(1), now, now + 1] {
        let expected = t.generate(step * STEP).to_string();
        let same = expected.len() == code.len()
            && expected.bytes().zip(code.bytes()).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0;
        if same && found.is_none() {
            found = Some(step);
        }
    }
    found
}

/// Checks a 6-digit code at `unix_time`; accepts the previous and next step too.
pub fn verify(secret: &[u8], code: &str, unix_time: u64) -> bool {
    matching_step(secret, code, unix_time).is_some()
}

/// The current code (for tests and the bench client, which play the authenticator app).
pub fn code_at(secret: &[u8], unix_time: u64) -> String {
    build(secret, "x", 6, Algorithm::SHA1).map(|t| t.generate(unix_time).to_string()).unwrap_or_default()
}

/// What the enrolment page shows: a QR code (PNG, base64) and the secret in base32 for manual
/// entry.
pub fn enrolment(secret: &[u8], account: &str) -> Option<(String, String)> {
    let t = build(secret, account, 6, Algorithm::SHA1)?;
    let qr = t.to_qr_base64().ok()?;
    Some((qr, Secret::from(secret.to_vec()).to_base32()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 appendix B: 8-digit codes for the SHA-1 seed "12345678901234567890".
    #[test]
    fn rfc6238_sha1_vectors() {
        let t = build(b"12345678901234567890", "x", 8, Algorithm::SHA1).unwrap();
        for (time, code) in [
            (59, "94287082"),
            (1111111109, "07081804"),
            (1111111111, "14050471"),
            (1234567890, "89005924"),
            (2000000000, "69279037"),
            (20000000000, "65353130"),
        ] {
            assert_eq!(t.generate(time).to_string(), code, "T={time}");
        }
    }

    #[test]
    fn rfc6238_sha256_and_sha512_vectors() {
        let s256 = b"12345678901234567890123456789012";
        let s512 = b"1234567890123456789012345678901234567890123456789012345678901234";
        let t256 = build(s256, "x", 8, Algorithm::SHA256).unwrap();
        let t512 = build(s512, "x", 8, Algorithm::SHA512).unwrap();
        assert_eq!(t256.generate(59).to_string(), "46119246");
        assert_eq!(t512.generate(59).to_string(), "90693936");
        assert_eq!(t256.generate(1111111109).to_string(), "68084774");
        assert_eq!(t512.generate(1111111109).to_string(), "25091201");
    }

    #[test]
    fn verify_accepts_one_step_of_skew_only() {
        let s = new_secret();
        let now = 1_800_000_000;
        assert!(verify(&s, &code_at(&s, now), now));
        assert!(verify(&s, &code_at(&s, now - 30), now));
        assert!(!verify(&s, &code_at(&s, now - 90), now));
        assert!(!verify(&s, "12345", now));
        assert!(!verify(&s, "abcdef", now));
        assert_eq!(matching_step(&s, &code_at(&s, now + 30), now), Some(now / STEP + 1));
        assert_eq!(matching_step(&s, &code_at(&s, now - 30), now), Some(now / STEP - 1));
        let (qr, b32) = enrolment(&s, "reviewer1").unwrap();
        assert!(!qr.is_empty() && b32.len() == 32);
    }
}
