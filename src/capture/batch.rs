//! Incoming batches (進達): what a municipality sent, when, how, and how many pages it said it
//! sent. The batch list is the receipt ledger (収受簿) that used to be an Excel sheet: listed,
//! filtered and exported as CSV that Excel opens (UTF-8 with BOM, or Shift_JIS/CP932 for older
//! installations). A batch whose received pages differ from the expected count is flagged and
//! cannot be closed without a note saying why.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::store::BatchCounts;

/// How the batch reached the office.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    /// 交換便: the inter-office exchange bag.
    ExchangeBag,
    /// 簡易書留: recorded mail.
    RecordedMail,
    /// 郵送: ordinary post.
    Post,
    /// 窓口: handed in at the counter.
    Counter,
}

impl Channel {
    pub const ALL: [Channel; 4] = [Channel::ExchangeBag, Channel::RecordedMail, Channel::Post, Channel::Counter];

    pub fn label_ja(self) -> &'static str {
        match self {
            Channel::ExchangeBag => "交換便",
            Channel::RecordedMail => "簡易書留",
            Channel::Post => "郵送",
            Channel::Counter => "窓口",
        }
    }

    pub fn key(self) -> &'static str {
        match self {
            Channel::ExchangeBag => "exchange_bag",
            Channel::RecordedMail => "recorded_mail",
            Channel::Post => "post",
            Channel::Counter => "counter",
        }
    }

    /// From its key or its Japanese label.
    pub fn parse(s: &str) -> Option<Channel> {
        Channel::ALL.into_iter().find(|c| c.key() == s || c.label_ja() == s)
    }
}

/// A closed batch: every page is in, and any difference from the expected count explained.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Closed {
    pub by: String,
    pub at: DateTime<Utc>,
    /// Why the counts differ (required when they do).
    pub note: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Batch {
    /// `B20261125-001`: receipt date and the day's sequence number.
    pub id: String,
    /// Sending municipality (区市町村), one of the Tokyo list.
    pub municipality: String,
    pub received_on: NaiveDate,
    pub channel: Channel,
    /// Pages the covering letter (送付書) says are enclosed.
    pub expected_pages: u32,
    pub logged_by: String,
    pub logged_at: DateTime<Utc>,
    #[serde(default)]
    pub note: String,
    #[serde(default)]
    pub closed: Option<Closed>,
}

/// What staff type when logging a batch.
#[derive(Debug, Clone, Deserialize)]
pub struct NewBatch {
    pub municipality: String,
    pub received_on: String,
    pub channel: String,
    pub expected_pages: String,
    #[serde(default)]
    pub note: String,
}

/// A field of a new batch that is wrong, named, in Japanese.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct Invalid {
    pub field: &'static str,
    pub message: String,
}

/// Tokyo's municipalities (区市町村), from the postal list.
pub fn municipalities() -> &'static [String] {
    static LIST: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
    LIST.get_or_init(|| {
        let mut v: Vec<String> = include_str!("../../reference-data/tokyo-postal-codes.tsv")
            .lines()
            .skip(1)
            .filter_map(|l| l.split('\t').nth(2).map(str::to_owned))
            .collect();
        v.sort();
        v.dedup();
        v
    })
}

impl NewBatch {
    /// Checks every field; the first wrong one is named.
    pub fn validate(&self, today: NaiveDate) -> Result<(String, NaiveDate, Channel, u32), Invalid> {
        let bad = |field, message: String| Invalid { field, message };
        let municipality = self.municipality.trim().to_owned();
        if !municipalities().contains(&municipality) {
            return Err(bad("送付元区市町村", format!("「{municipality}」は東京都の区市町村ではありません")));
        }
        let received_on = NaiveDate::parse_from_str(self.received_on.trim(), "%Y-%m-%d")
            .map_err(|_| bad("受付日", format!("「{}」は日付ではありません（例: 2026-11-25）", self.received_on)))?;
        if received_on > today {
            return Err(bad("受付日", format!("{received_on} は未来の日付です")));
        }
        let channel = Channel::parse(self.channel.trim()).ok_or_else(|| {
            bad("送付方法", format!("「{}」は送付方法ではありません（交換便・簡易書留・郵送・窓口）", self.channel))
        })?;
        let expected: u32 = self
            .expected_pages
            .trim()
            .parse()
            .ok()
            .filter(|n| (1..=100_000).contains(n))
            .ok_or_else(|| bad("予定枚数", format!("「{}」は 1 以上の枚数ではありません", self.expected_pages)))?;
        Ok((municipality, received_on, channel, expected))
    }
}

/// The ledger's status column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Nothing received yet.
    Waiting,
    /// Pages are coming in, fewer than expected so far.
    Receiving,
    /// As many pages as expected, not yet closed.
    Complete,
    /// More pages than expected, or closed with a different count: a mismatch to look at.
    Mismatch,
    Closed,
}

impl Status {
    pub fn of(b: &Batch, c: &BatchCounts) -> Status {
        let received = c.received() as u64;
        let expected = u64::from(b.expected_pages);
        match (&b.closed, received.cmp(&expected)) {
            (Some(_), std::cmp::Ordering::Equal) => Status::Closed,
            (Some(_), _) | (None, std::cmp::Ordering::Greater) => Status::Mismatch,
            (None, std::cmp::Ordering::Equal) => Status::Complete,
            (None, std::cmp::Ordering::Less) if received == 0 => Status::Waiting,
            (None, std::cmp::Ordering::Less) => Status::Receiving,
        }
    }

    pub fn label_ja(self) -> &'static str {
        match self {
            Status::Waiting => "未着",
            Status::Receiving => "取込中",
            Status::Complete => "枚数一致",
            Status::Mismatch => "枚数不一致",
            Status::Closed => "完了",
        }
    }

    pub fn key(self) -> &'static str {
        match self {
            Status::Waiting => "waiting",
            Status::Receiving => "receiving",
            Status::Complete => "complete",
            Status::Mismatch => "mismatch",
            Status::Closed => "closed",
        }
    }
}

/// Ledger filter: all given conditions must hold.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Filter {
    #[serde(default)]
    pub municipality: Option<String>,
    #[serde(default)]
    pub from: Option<NaiveDate>,
    #[serde(default)]
    pub to: Option<NaiveDate>,
    #[serde(default)]
    pub status: Option<String>,
}

impl Filter {
    pub fn matches(&self, b: &Batch, status: Status) -> bool {
        self.municipality.as_deref().is_none_or(|m| m.is_empty() || b.municipality == m)
            && self.from.is_none_or(|d| b.received_on >= d)
            && self.to.is_none_or(|d| b.received_on <= d)
            && self.status.as_deref().is_none_or(|s| s.is_empty() || s == status.key())
    }
}

/// The next id for a receipt date, given the ids already used.
pub fn next_id<'a>(received_on: NaiveDate, existing: impl Iterator<Item = &'a str>) -> String {
    let prefix = format!("B{}-", received_on.format("%Y%m%d"));
    let n = existing.filter_map(|id| id.strip_prefix(&prefix)?.parse::<u32>().ok()).max().unwrap_or(0);
    format!("{prefix}{:03}", n + 1)
}

/// Is `s` shaped like a batch id (the hot folder's subfolder names)?
pub fn looks_like_id(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 13 && b[0] == b'B' && b[9] == b'-' && s[1..9].bytes().chain(s[10..].bytes()).all(|c| c.is_ascii_digit())
}

pub use crate::csvout::Encoding as CsvEncoding;

/// The receipt ledger as CSV.
pub fn ledger_csv(rows: &[(Batch, BatchCounts)], enc: CsvEncoding) -> Result<Vec<u8>, crate::csvout::Error> {
    let mut w = crate::csvout::Csv::new();
    w.row([
        "受付番号",
        "受付日",
        "送付元区市町村",
        "送付方法",
        "予定枚数",
        "受領枚数",
        "読取済",
        "様式判別",
        "取込失敗",
        "状態",
        "登録者",
        "登録日時",
        "備考",
    ])?;
    for (b, c) in rows {
        let note = match &b.closed {
            Some(cl) if !cl.note.is_empty() => format!("{} / 完了時: {}", b.note, cl.note),
            _ => b.note.clone(),
        };
        w.row([
            b.id.as_str(),
            &b.received_on.to_string(),
            &b.municipality,
            b.channel.label_ja(),
            &b.expected_pages.to_string(),
            &c.received().to_string(),
            &c.read().to_string(),
            &c.forms.to_string(),
            &c.failed.to_string(),
            Status::of(b, c).label_ja(),
            &b.logged_by,
            &b.logged_at.with_timezone(&chrono_tz_tokyo()).format("%Y-%m-%d %H:%M").to_string(),
            note.trim_matches([' ', '/']),
        ])?;
    }
    w.finish(enc)
}

/// Japan time (UTC+9, no daylight saving), for the ledger's dates.
fn chrono_tz_tokyo() -> chrono::FixedOffset {
    chrono::FixedOffset::east_opt(9 * 3600).expect("valid offset")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn new(m: &str, d: &str, ch: &str, n: &str) -> NewBatch {
        NewBatch {
            municipality: m.into(),
            received_on: d.into(),
            channel: ch.into(),
            expected_pages: n.into(),
            note: String::new(),
        }
    }

    #[test]
    fn new_batches_are_checked_field_by_field() {
        let today = NaiveDate::from_ymd_opt(2026, 11, 25).unwrap();
        let ok = new("新宿区", "2026-11-24", "交換便", "120").validate(today).unwrap();
        assert_eq!(ok.2, Channel::ExchangeBag);
        assert_eq!(ok.3, 120);
        for (b, field) in [
            (new("大阪市", "2026-11-24", "交換便", "1"), "送付元区市町村"),
            (new("新宿区", "2026/13/01", "交換便", "1"), "受付日"),
            (new("新宿区", "2026-12-01", "交換便", "1"), "受付日"),
            (new("新宿区", "2026-11-24", "伝書鳩", "1"), "送付方法"),
            (new("新宿区", "2026-11-24", "post", "0"), "予定枚数"),
            (new("新宿区", "2026-11-24", "post", "十"), "予定枚数"),
        ] {
            assert_eq!(b.validate(today).unwrap_err().field, field);
        }
    }

    #[test]
    fn ids_count_up_per_day() {
        let d = NaiveDate::from_ymd_opt(2026, 11, 25).unwrap();
        assert_eq!(next_id(d, std::iter::empty()), "B20261125-001");
        assert_eq!(next_id(d, ["B20261125-001", "B20261125-007", "B20261124-009"].into_iter()), "B20261125-008");
        assert!(looks_like_id("B20261125-008") && !looks_like_id("B2026112-0081") && !looks_like_id("inbox"));
    }

    fn batch(expected: u32) -> Batch {
        Batch {
            id: "B20261125-001".into(),
            municipality: "八王子市".into(),
            received_on: NaiveDate::from_ymd_opt(2026, 11, 25).unwrap(),
            channel: Channel::RecordedMail,
            expected_pages: expected,
            logged_by: "mailroom1".into(),
            logged_at: Utc::now(),
            note: "送付書あり".into(),
            closed: None,
        }
    }

    #[test]
    fn status_flags_a_count_mismatch() {
        let c = |n| BatchCounts { forms: n, ..Default::default() };
        assert_eq!(Status::of(&batch(4), &c(0)), Status::Waiting);
        assert_eq!(Status::of(&batch(4), &c(3)), Status::Receiving);
        assert_eq!(Status::of(&batch(4), &c(4)), Status::Complete);
        assert_eq!(Status::of(&batch(4), &c(5)), Status::Mismatch);
        let mut closed = batch(4);
        closed.closed = Some(Closed { by: "a".into(), at: Utc::now(), note: "1枚不足、照会済".into() });
        assert_eq!(Status::of(&closed, &c(3)), Status::Mismatch);
        assert_eq!(Status::of(&closed, &c(4)), Status::Closed);
    }

    #[test]
    fn ledger_opens_in_excel_in_both_encodings() {
        let rows = vec![(batch(4), BatchCounts { forms: 3, unclassified: 1, failed: 1, attachments: 0 })];
        let utf8 = ledger_csv(&rows, CsvEncoding::Utf8Bom).unwrap();
        assert!(utf8.starts_with(b"\xEF\xBB\xBF"));
        let text = std::str::from_utf8(&utf8[3..]).unwrap();
        assert!(text.contains("B20261125-001,2026-11-25,八王子市,簡易書留,4,5,4,3,1,枚数不一致,mailroom1"), "{text}");
        let sjis = ledger_csv(&rows, CsvEncoding::Cp932).unwrap();
        let (decoded, _, bad) = encoding_rs::SHIFT_JIS.decode(&sjis);
        assert!(!bad && decoded == text, "{decoded}");
        // A note written as a formula stays text; a character CP932 lacks is refused by name.
        let mut hostile = batch(4);
        hostile.note = "=HYPERLINK(\"http://evil.example\",\"開く\") 〜".into();
        let rows = vec![(hostile, BatchCounts::default())];
        let text = String::from_utf8(ledger_csv(&rows, CsvEncoding::Utf8Bom).unwrap()).unwrap();
        assert!(text.contains(",'=HYPERLINK(") || text.contains(",\"'=HYPERLINK("), "{text}");
        let sjis = ledger_csv(&rows, CsvEncoding::Cp932).unwrap();
        assert!(
            encoding_rs::SHIFT_JIS.decode(&sjis).0.contains("開く")
                && !encoding_rs::SHIFT_JIS.decode(&sjis).0.contains('〓')
        );
        let mut emoji = batch(4);
        emoji.note = "😀".into();
        assert!(ledger_csv(&[(emoji, BatchCounts::default())], CsvEncoding::Cp932).is_err());
    }
}
