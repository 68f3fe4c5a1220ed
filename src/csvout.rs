//! CSV for staff's spreadsheets: every CSV hozon writes goes through here.
//!
//! Two things go wrong when a CSV is opened in Excel or LibreOffice. A cell starting with `=`,
//! `+`, `-`, `@`, a tab or a carriage return is read as a formula (`=HYPERLINK(…)` in a batch
//! note becomes a live link): such cells get a leading `'`, which spreadsheets show as text and
//! do not display. And CP932 (Shift_JIS as Windows writes it) maps some characters differently
//! from Unicode's JIS tables: `〜` (U+301C WAVE DASH) is 0x8160 in Windows, which decodes to
//! U+FF5E, so an encoder following Unicode has no code for U+301C. Those are mapped the way
//! Windows does; a character CP932 still lacks is refused by name (line and character), never
//! written as `〓`.

/// A cell as a spreadsheet will take it: text, never a formula. Leading spaces (half or full
/// width) and line breaks are looked through, and the full-width ＝＋－＠ count too (Japanese
/// Excel takes them as the ASCII ones).
pub fn neutralise(cell: &str) -> std::borrow::Cow<'_, str> {
    let first = cell.chars().find(|c| !matches!(c, ' ' | '\u{3000}' | '\n'));
    let starts_like_formula = matches!(cell.chars().next(), Some('\t' | '\r'))
        || matches!(first, Some('=' | '+' | '-' | '@' | '＝' | '＋' | '－' | '＠'));
    if starts_like_formula { format!("'{cell}").into() } else { cell.into() }
}

/// Builds a CSV whose every cell is neutralised.
pub struct Csv {
    w: csv::Writer<Vec<u8>>,
}

impl Default for Csv {
    fn default() -> Self {
        Csv::new()
    }
}

impl Csv {
    pub fn new() -> Csv {
        Csv { w: csv::Writer::from_writer(Vec::new()) }
    }

    pub fn row<I, S>(&mut self, cells: I) -> Result<(), Error>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let cells: Vec<String> = cells.into_iter().map(|c| neutralise(c.as_ref()).into_owned()).collect();
        self.w.write_record(&cells).map_err(|e| Error::Write(e.to_string()))
    }

    /// The file in `enc`: UTF-8 with a byte-order mark, or CP932.
    pub fn finish(self, enc: Encoding) -> Result<Vec<u8>, Error> {
        let utf8 = self.w.into_inner().map_err(|e| Error::Write(e.to_string()))?;
        let text = String::from_utf8(utf8).map_err(|e| Error::Write(e.to_string()))?;
        match enc {
            Encoding::Utf8Bom => Ok([b"\xEF\xBB\xBF".as_slice(), text.as_bytes()].concat()),
            Encoding::Cp932 => to_cp932(&text),
        }
    }
}

/// CSV encodings Excel opens without a wizard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// UTF-8 with a byte-order mark.
    Utf8Bom,
    /// Shift_JIS as Windows writes it (CP932).
    Cp932,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error("{line} 行目の「{ch}」(U+{code:04X}) は CP932 (Shift_JIS) で表せません。UTF-8 で出力してください。")]
    Unmappable { line: usize, ch: char, code: u32 },
    #[error("CSV を書けません: {0}")]
    Write(String),
}

/// Unicode's JIS mapping → the code point Windows' CP932 table uses for the same character.
const WINDOWS_FORMS: &[(char, char)] = &[
    ('\u{301C}', '\u{FF5E}'), // 〜 WAVE DASH → FULLWIDTH TILDE
    ('\u{2016}', '\u{2225}'), // ‖ DOUBLE VERTICAL LINE → PARALLEL TO
    ('\u{2212}', '\u{FF0D}'), // − MINUS SIGN → FULLWIDTH HYPHEN-MINUS
    ('\u{00A2}', '\u{FFE0}'), // ¢
    ('\u{00A3}', '\u{FFE1}'), // £
    ('\u{00AC}', '\u{FFE2}'), // ¬
    ('\u{2014}', '\u{2015}'), // — EM DASH → HORIZONTAL BAR
    ('\u{00A6}', '\u{FFE4}'), // ¦
];

/// Text in CP932, Windows' mappings applied; the first character it cannot hold is an error.
pub fn to_cp932(s: &str) -> Result<Vec<u8>, Error> {
    let mut out = Vec::with_capacity(s.len());
    let mut buf = [0u8; 4];
    let mut line = 1;
    for ch in s.chars() {
        let mapped = WINDOWS_FORMS.iter().find(|(from, _)| *from == ch).map_or(ch, |(_, to)| *to);
        let (bytes, _, unmappable) = encoding_rs::SHIFT_JIS.encode(mapped.encode_utf8(&mut buf));
        if unmappable {
            return Err(Error::Unmappable { line, ch, code: u32::from(ch) });
        }
        out.extend_from_slice(&bytes);
        if ch == '\n' {
            line += 1;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formulas_become_text() {
        let mut c = Csv::new();
        c.row(["=HYPERLINK(\"http://x\",\"y\")", "+81", "-1", "@SUM(A1)", "\tx", "安全", "a=b"]).unwrap();
        let text = String::from_utf8(c.finish(Encoding::Utf8Bom).unwrap()).unwrap();
        assert!(text.starts_with('\u{feff}'));
        let line = text.trim_start_matches('\u{feff}').trim_end();
        assert_eq!(line, "\"'=HYPERLINK(\"\"http://x\"\",\"\"y\"\")\",'+81,'-1,'@SUM(A1),'\tx,安全,a=b");
        for sneaky in ["  =1+1", "\u{3000}=1", "＝SUM(A1)", "＋81", "\n=cmd"] {
            assert!(neutralise(sneaky).starts_with('\''), "{sneaky:?}");
        }
    }

    #[test]
    fn cp932_maps_like_windows_and_names_what_it_cannot_hold() {
        for (from, _) in WINDOWS_FORMS {
            let bytes = to_cp932(&from.to_string()).unwrap_or_else(|e| panic!("{e}"));
            assert_ne!(encoding_rs::SHIFT_JIS.decode(&bytes).0, "〓");
        }
        assert_eq!(to_cp932("〜").unwrap(), [0x81, 0x60]);
        assert_eq!(encoding_rs::SHIFT_JIS.decode(&to_cp932("髙橋 ①").unwrap()).0, "髙橋 ①");
        let err = to_cp932("a,b\n髙橋😀,c\n").unwrap_err();
        assert_eq!(err, Error::Unmappable { line: 2, ch: '😀', code: 0x1F600 });
        assert!(err.to_string().contains("2 行目"));
    }
}
