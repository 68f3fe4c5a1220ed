//! Structure checks for the files stored as they came (PNG, JPEG). Decoders are lenient: a
//! JPEG cut at 10% decodes with the rest of the page grey, and bytes after a PNG's end (a ZIP,
//! say) are ignored — then stored and exported with the page. So before a PNG or JPEG is
//! accepted its container is walked to the end marker: missing means truncated, anything after
//! it (other than zero padding some scanners add) means foreign data. Both are refused with the
//! reason. TIFF and PDF pages are never stored as they came (see `pages`), so they need no walk.

use image::ImageFormat;

use super::Rejection;

/// Zero bytes after the end marker that are tolerated (scanner padding to a block size).
const MAX_PADDING: usize = 4096;

pub fn check(bytes: &[u8], format: ImageFormat) -> Result<(), Rejection> {
    let end = match format {
        ImageFormat::Png => png_end(bytes)?,
        ImageFormat::Jpeg => jpeg_end(bytes)?,
        _ => return Ok(()),
    };
    let rest = &bytes[end..];
    if rest.is_empty() || (rest.len() <= MAX_PADDING && rest.iter().all(|b| *b == 0)) {
        Ok(())
    } else {
        Err(Rejection::Trailing(format!("{} bytes after the end of the {format:?} image", rest.len())))
    }
}

fn truncated(what: &str) -> Rejection {
    Rejection::Corrupt(format!("truncated: {what}"))
}

/// The offset just past a PNG's IEND chunk.
fn png_end(bytes: &[u8]) -> Result<usize, Rejection> {
    let mut at = 8; // signature
    loop {
        let header = bytes.get(at..at + 8).ok_or_else(|| truncated("PNG ends before its IEND chunk"))?;
        let len = u32::from_be_bytes(header[..4].try_into().expect("4 bytes")) as usize;
        let kind = &header[4..8];
        let end = at.checked_add(12).and_then(|x| x.checked_add(len)).ok_or_else(|| truncated("PNG chunk length"))?;
        if end > bytes.len() {
            return Err(truncated(&format!("PNG chunk {} is cut short", String::from_utf8_lossy(kind))));
        }
        at = end;
        if kind == b"IEND" {
            return Ok(at);
        }
    }
}

/// The offset just past a JPEG's EOI marker: marker segments by their lengths, entropy-coded
/// data scanned for the next marker (0xFF followed by neither 0x00 nor a restart marker).
fn jpeg_end(bytes: &[u8]) -> Result<usize, Rejection> {
    if !bytes.starts_with(&[0xFF, 0xD8]) {
        return Err(Rejection::Corrupt("JPEG does not start with SOI".into()));
    }
    let mut at = 2;
    loop {
        // Markers may be preceded by fill bytes 0xFF.
        if bytes.get(at) != Some(&0xFF) {
            return Err(truncated("JPEG marker expected"));
        }
        while bytes.get(at) == Some(&0xFF) {
            at += 1;
        }
        let marker = *bytes.get(at).ok_or_else(|| truncated("JPEG ends inside a marker"))?;
        at += 1;
        match marker {
            0xD9 => return Ok(at),
            0x01 | 0xD0..=0xD7 => continue,
            _ => {}
        }
        let len = bytes.get(at..at + 2).ok_or_else(|| truncated("JPEG segment length"))?;
        let len = usize::from(u16::from_be_bytes([len[0], len[1]]));
        if len < 2 || at + len > bytes.len() {
            return Err(truncated("JPEG segment is cut short"));
        }
        at += len;
        if marker == 0xDA {
            // Entropy-coded data until the next real marker.
            loop {
                let i = bytes[at..].iter().position(|b| *b == 0xFF).ok_or_else(|| truncated("JPEG image data"))?;
                at += i;
                match bytes.get(at + 1) {
                    None => return Err(truncated("JPEG image data")),
                    Some(0x00) | Some(0xD0..=0xD7) => at += 2,
                    Some(0xFF) => at += 1,
                    Some(_) => break,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode(format: ImageFormat) -> Vec<u8> {
        let img = image::GrayImage::from_fn(120, 80, |x, y| image::Luma([((x * 3) ^ (y * 5)) as u8]));
        let mut out = Vec::new();
        img.write_to(&mut std::io::Cursor::new(&mut out), format).unwrap();
        out
    }

    #[test]
    fn whole_files_pass_cut_or_padded_with_data_do_not() {
        for format in [ImageFormat::Png, ImageFormat::Jpeg] {
            let good = encode(format);
            check(&good, format).unwrap();
            let mut padded = good.clone();
            padded.extend_from_slice(&[0; 100]);
            check(&padded, format).unwrap();
            for cut in [good.len() / 10, good.len() / 2, good.len() - 1] {
                let r = check(&good[..cut], format);
                assert!(matches!(r, Err(Rejection::Corrupt(_))), "{format:?} cut at {cut}: {r:?}");
            }
            let mut zip = good.clone();
            zip.extend_from_slice(b"PK\x03\x04 a zip file riding along");
            assert!(matches!(check(&zip, format), Err(Rejection::Trailing(_))), "{format:?}");
            // Through the decoder too: refused with the reason, not stored.
            assert!(matches!(super::super::decode_page(&zip), Err(Rejection::Trailing(_))));
            assert!(super::super::decode_page(&good[..good.len() / 10]).is_err());
        }
    }
}
