//! The subsidy system's import result (取込結果): a CSV (UTF-8 or CP932, a header line) with,
//! per row hozon exported, its key, accepted or rejected, the recipient number the system
//! assigned and the reason for a refusal. Which header holds what is the layout's `[result]`.
//! Bad lines are named by number and skipped; the good ones still count.

use super::ExportError;
use super::layout::ResultLayout;

/// One line of the result file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResultLine {
    pub line: usize,
    pub key: String,
    pub accepted: bool,
    pub recipient_no: String,
    pub reason: String,
}

/// The lines read and, by line number, the ones refused.
pub fn parse(layout: &ResultLayout, bytes: &[u8]) -> Result<(Vec<ResultLine>, Vec<String>), ExportError> {
    let text = crate::cases::import::decode(bytes).map_err(|e| ExportError::ResultFile(e.0))?;
    let mut r = csv::ReaderBuilder::new().flexible(true).from_reader(text.as_bytes());
    let headers: Vec<String> = r
        .headers()
        .map_err(|e| ExportError::ResultFile(format!("見出し行を読めません: {e}")))?
        .iter()
        .map(|h| h.trim().to_owned())
        .collect();
    let col = |name: &str| -> Result<usize, ExportError> {
        headers.iter().position(|h| h == name).ok_or_else(|| {
            ExportError::ResultFile(format!("取込結果に列「{name}」がありません（見出し: {}）", headers.join(",")))
        })
    };
    let (k, o, n, why) = (col(&layout.key)?, col(&layout.outcome)?, col(&layout.recipient_no)?, col(&layout.reason)?);
    let mut lines = Vec::new();
    let mut errors = Vec::new();
    for (i, rec) in r.records().enumerate() {
        let line = i + 2;
        let rec = match rec {
            Ok(rec) => rec,
            Err(e) => {
                errors.push(format!("{line} 行目: 読めません（{e}）"));
                continue;
            }
        };
        let get = |c: usize| rec.get(c).unwrap_or("").trim().to_owned();
        let (key, outcome, recipient_no, reason) = (get(k), get(o), get(n), get(why));
        if key.is_empty() {
            errors.push(format!("{line} 行目: {} が空です", layout.key));
            continue;
        }
        let accepted = if layout.accepted.contains(&outcome) {
            true
        } else if layout.rejected.contains(&outcome) {
            false
        } else {
            errors.push(format!("{line} 行目: {}「{outcome}」は受理・不受理のどちらでもありません", layout.outcome));
            continue;
        };
        if accepted && (recipient_no.is_empty() || !recipient_no.chars().all(|c| c.is_ascii_digit())) {
            errors.push(format!("{line} 行目: 受理なのに {} が数字でありません", layout.recipient_no));
            continue;
        }
        if accepted && recipient_no.starts_with('9') && recipient_no.len() > 8 {
            errors.push(format!("{line} 行目: {} が hozon の仮番号の形です", layout.recipient_no));
            continue;
        }
        lines.push(ResultLine { line, key, accepted, recipient_no, reason });
    }
    Ok((lines, errors))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout() -> ResultLayout {
        ResultLayout {
            key: "整理番号".into(),
            outcome: "結果".into(),
            accepted: vec!["1".into()],
            rejected: vec!["2".into()],
            recipient_no: "受給者番号".into(),
            reason: "エラー内容".into(),
        }
    }

    #[test]
    fn lines_and_named_errors() {
        let text = "整理番号,結果,受給者番号,エラー内容\nEX-1,1,12345678,\nEX-2,2,,保険者番号誤り\nEX-3,1,,\nEX-4,9,1,\n,1,1,\n";
        let cp932 = crate::csvout::to_cp932(text).unwrap();
        let (lines, errors) = parse(&layout(), &cp932).unwrap();
        assert_eq!(lines.len(), 2);
        assert!(lines[0].accepted && lines[0].recipient_no == "12345678");
        assert!(!lines[1].accepted && lines[1].reason == "保険者番号誤り");
        assert_eq!(errors.len(), 3, "{errors:?}");
        assert!(errors[0].starts_with("4 行目"), "{errors:?}");
        let e = parse(&layout(), "番号,結果\n".as_bytes()).unwrap_err().to_string();
        assert!(e.contains("列「整理番号」がありません"), "{e}");
    }
}
