//! ZIP files that leave hozon (a data subject's disclosure, the subsidy system's input data):
//! every entry AES-256 encrypted (WinZip AE-2, which 7-Zip and the usual Windows tools open)
//! with a password the caller shows once and never stores.

use std::io::Write;

/// An in-memory AES-256 ZIP being written.
pub struct AesZip<'p> {
    zip: zip::ZipWriter<std::io::Cursor<Vec<u8>>>,
    password: &'p str,
}

impl<'p> AesZip<'p> {
    pub fn new(password: &'p str) -> AesZip<'p> {
        AesZip { zip: zip::ZipWriter::new(std::io::Cursor::new(Vec::new())), password }
    }

    pub fn put(&mut self, name: &str, bytes: &[u8]) -> Result<(), zip::result::ZipError> {
        let opts = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated)
            .with_aes_encryption(zip::AesMode::Aes256, self.password);
        self.zip.start_file(name, opts)?;
        self.zip.write_all(bytes)?;
        Ok(())
    }

    pub fn finish(self) -> Result<Vec<u8>, zip::result::ZipError> {
        Ok(self.zip.finish()?.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_open_only_with_the_password() {
        let mut z = AesZip::new("correct horse battery");
        z.put("a.txt", "山田 太郎".as_bytes()).unwrap();
        let bytes = z.finish().unwrap();
        assert!(!bytes.windows("山田".len()).any(|w| w == "山田".as_bytes()), "plaintext in the archive");
        let mut archive = zip::ZipArchive::new(std::io::Cursor::new(&bytes)).unwrap();
        assert!(archive.by_name_decrypt("a.txt", b"wrong").is_err());
        let mut f = archive.by_name_decrypt("a.txt", b"correct horse battery").unwrap();
        let mut s = String::new();
        std::io::Read::read_to_string(&mut f, &mut s).unwrap();
        assert_eq!(s, "山田 太郎");
    }
}
