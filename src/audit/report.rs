//! Reading the log for people: filters for the review page and the monthly report with the
//! patterns a security officer looks for (heavy viewing, access outside office hours, failed
//! logins). Pure functions over decrypted entries; times are judged in JST.

use std::collections::BTreeMap;

use chrono::{Datelike, FixedOffset, NaiveDate, Timelike, Weekday};

use super::Entry;

fn jst() -> FixedOffset {
    FixedOffset::east_opt(9 * 3600).expect("JST offset")
}

#[derive(Debug, Default, Clone)]
pub struct Filter {
    pub user: Option<String>,
    pub target: Option<String>,
    pub action: Option<String>,
    pub from: Option<NaiveDate>,
    pub to: Option<NaiveDate>,
}

impl Filter {
    pub fn matches(&self, e: &Entry) -> bool {
        let day = e.at.with_timezone(&jst()).date_naive();
        self.user.as_ref().is_none_or(|u| &e.actor == u)
            && self.target.as_ref().is_none_or(|t| e.target.contains(t.as_str()))
            && self.action.as_ref().is_none_or(|a| e.action.starts_with(a.as_str()))
            && self.from.is_none_or(|f| day >= f)
            && self.to.is_none_or(|t| day <= t)
    }
}

/// Views are record reads and searches: what the "many views" pattern counts.
fn is_view(e: &Entry) -> bool {
    e.action == "record.view" || e.action == "search"
}

/// Outside 07:00–22:00 JST on weekdays.
pub fn outside_hours(e: &Entry) -> bool {
    let t = e.at.with_timezone(&jst());
    t.hour() < 7 || t.hour() >= 22 || matches!(t.weekday(), Weekday::Sat | Weekday::Sun)
}

#[derive(Debug, Default, Clone)]
pub struct Monthly {
    pub year: i32,
    pub month: u32,
    pub total: usize,
    pub by_action: BTreeMap<String, usize>,
    pub by_user: BTreeMap<String, usize>,
    /// (user, day, views) where views exceeded the threshold.
    pub heavy_viewers: Vec<(String, NaiveDate, usize)>,
    /// (user, entries outside office hours).
    pub outside_hours: Vec<(String, usize)>,
    /// (user or attempted name, failed logins).
    pub failed_logins: Vec<(String, usize)>,
    /// (user, wrong or replayed one-time codes, refused while blocked included).
    pub failed_codes: Vec<(String, usize)>,
}

pub fn monthly(entries: &[Entry], year: i32, month: u32, views_per_day: usize) -> Monthly {
    let mut r = Monthly { year, month, ..Monthly::default() };
    let mut views: BTreeMap<(String, NaiveDate), usize> = BTreeMap::new();
    let mut late: BTreeMap<String, usize> = BTreeMap::new();
    let mut failed: BTreeMap<String, usize> = BTreeMap::new();
    let mut codes: BTreeMap<String, usize> = BTreeMap::new();
    for e in entries {
        let t = e.at.with_timezone(&jst());
        if t.year() != year || t.month() != month {
            continue;
        }
        r.total += 1;
        *r.by_action.entry(e.action.clone()).or_default() += 1;
        *r.by_user.entry(e.actor.clone()).or_default() += 1;
        if is_view(e) {
            *views.entry((e.actor.clone(), t.date_naive())).or_default() += 1;
        }
        if e.actor != "system" && outside_hours(e) {
            *late.entry(e.actor.clone()).or_default() += 1;
        }
        if e.action == "login" && e.outcome != "ok" {
            *failed.entry(e.actor.clone()).or_default() += 1;
        }
        if matches!(e.action.as_str(), "totp.check" | "totp.enrol") && e.outcome != "ok" {
            *codes.entry(e.actor.clone()).or_default() += 1;
        }
    }
    r.heavy_viewers = views.into_iter().filter(|(_, n)| *n > views_per_day).map(|((u, d), n)| (u, d, n)).collect();
    r.outside_hours = late.into_iter().collect();
    r.failed_logins = failed.into_iter().collect();
    r.failed_codes = codes.into_iter().collect();
    r
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn e(actor: &str, action: &str, outcome: &str, y: i32, m: u32, d: u32, h: u32) -> Entry {
        Entry {
            seq: 0,
            at: jst().with_ymd_and_hms(y, m, d, h, 0, 0).unwrap().with_timezone(&chrono::Utc),
            actor: actor.into(),
            action: action.into(),
            target: "t".into(),
            outcome: outcome.into(),
            prev: String::new(),
            hash: String::new(),
        }
    }

    #[test]
    fn monthly_report_finds_the_patterns() {
        let mut log = Vec::new();
        for _ in 0..5 {
            log.push(e("heavy", "record.view", "ok", 2026, 11, 24, 10)); // a Tuesday
        }
        log.push(e("quiet", "record.view", "ok", 2026, 11, 24, 10));
        log.push(e("night", "search", "ok", 2026, 11, 24, 23));
        log.push(e("weekend", "search", "ok", 2026, 11, 22, 11)); // a Sunday
        log.push(e("anonymous", "login", "denied", 2026, 11, 24, 9));
        log.push(e("quiet", "login", "denied_and_locked", 2026, 11, 24, 9));
        log.push(e("heavy", "record.view", "ok", 2026, 10, 31, 10)); // other month
        log.push(e("quiet", "totp.check", "denied", 2026, 11, 24, 9));
        log.push(e("quiet", "totp.check", "blocked", 2026, 11, 24, 9));
        log.push(e("quiet", "totp.check", "ok", 2026, 11, 24, 9));
        let r = monthly(&log, 2026, 11, 3);
        assert_eq!(r.total, 13);
        assert_eq!(r.failed_codes, vec![("quiet".into(), 2)]);
        assert_eq!(r.heavy_viewers, vec![("heavy".into(), NaiveDate::from_ymd_opt(2026, 11, 24).unwrap(), 5)]);
        assert_eq!(r.outside_hours, vec![("night".into(), 1), ("weekend".into(), 1)]);
        assert_eq!(r.failed_logins, vec![("anonymous".into(), 1), ("quiet".into(), 1)]);
        let f = Filter { user: Some("heavy".into()), from: NaiveDate::from_ymd_opt(2026, 11, 1), ..Filter::default() };
        assert_eq!(log.iter().filter(|x| f.matches(x)).count(), 5);
    }
}
