//! The daily backup `serve` takes: at `[backup] daily_at` (Japan time) to `[backup]
//! destination`, then the policy's pruning. Failures are logged and audited; the next day
//! tries again.

use std::time::Duration;

use chrono::{NaiveTime, Utc};

use crate::app::Hozon;
use crate::auth::Actor;

/// Runs until `stop` (on its own thread); returns at once when no schedule is configured.
pub fn daily(h: &Hozon, stop: &crate::web::stop::Stop) {
    let cfg = h.config.backup.clone();
    let Ok(at) = NaiveTime::parse_from_str(&cfg.daily_at, "%H:%M") else { return };
    if cfg.destination.is_empty() {
        eprintln!("hozon: [backup] daily_at is set but destination is empty: no scheduled backup");
        return;
    }
    let job = Actor::job("backup");
    loop {
        let now = Utc::now().with_timezone(&crate::jp::jst());
        let mut next = now.date_naive().and_time(at);
        if next <= now.naive_local() {
            next += chrono::Duration::days(1);
        }
        let wait = (next - now.naive_local()).to_std().unwrap_or(Duration::from_secs(60));
        if stop.wait(wait) {
            return;
        }
        if let Err(e) = once(h, &job, &cfg) {
            let why = e.to_string();
            eprintln!("hozon: scheduled backup failed: {why}");
            let _ = h.audit_event(&job, "backup.failed", &why, "failed");
        }
    }
}

fn once(h: &Hozon, job: &Actor, cfg: &crate::config::Backup) -> Result<(), super::Error> {
    let dest = super::Destination::open(&cfg.destination, cfg)?;
    let m = super::create(h, job, &dest, false, &|_| {})?.manifest;
    eprintln!("hozon: backup {} taken ({} objects written)", m.id, m.objects_written);
    let policy = super::policy::BackupPolicy::load(&crate::retention::policy::default_dir())
        .map_err(|e| super::Error::Manifest { id: m.id.clone(), why: e.to_string() })?;
    let p = super::prune(h, job, &dest, &policy, crate::jp::today())?;
    if !p.expired.is_empty() {
        eprintln!("hozon: {} expired backups pruned", p.expired.len());
    }
    Ok(())
}
