//! Sessions, cookies, CSRF tokens and the login rate limiter. Sessions live in memory (a
//! restart logs everyone out) and end after the configured idle time (renewed by every
//! request) or the absolute lifetime, whichever comes first; the gate also ends a session when
//! its account changed since login (`auth::session_actor`). The cookie is HttpOnly,
//! SameSite=Strict and (by default) Secure; each session has its own CSRF token that every
//! state-changing request must carry.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, header};
use rand::RngCore;

use crate::auth::Actor;

pub const COOKIE: &str = "hozon_session";
/// Pre-login double-submit CSRF cookie for the login form.
pub const PRE_COOKIE: &str = "hozon_pre";

pub fn random_token() -> String {
    let mut raw = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut raw);
    hex::encode(raw)
}

#[derive(Debug, Clone)]
pub struct Session {
    pub actor: Actor,
    pub csrf: String,
    /// The account's generation at login: any change to the account ends the session.
    pub generation: u64,
    started: Instant,
    last_seen: Instant,
    second_factor_at: Option<Instant>,
    /// Password expired or temporary: only the change-password page is allowed.
    pub must_change_password: bool,
    /// Password accepted, the second factor still owed (when required at login).
    pub pending_second_factor: bool,
    pub totp_enrolled: bool,
    /// A TOTP secret shown on the enrolment page, waiting for its first code.
    pub enrolling_secret: Option<Vec<u8>>,
}

impl Session {
    /// Seconds until the session ends if nothing happens (for the expiry warning).
    pub fn remaining(&self, idle: Duration, absolute: Duration) -> u64 {
        let by_idle = idle.saturating_sub(self.last_seen.elapsed());
        let by_age = absolute.saturating_sub(self.started.elapsed());
        by_idle.min(by_age).as_secs()
    }

    /// The actor with `second_factor` set if a TOTP check happened within `step_up`.
    pub fn actor_now(&self, step_up: Duration) -> Actor {
        let a = self.actor.clone();
        if self.second_factor_at.is_some_and(|t| t.elapsed() < step_up) { a } else { a.without_second_factor() }
    }
}

pub struct Sessions {
    map: Mutex<HashMap<String, Session>>,
    pub idle: Duration,
    pub absolute: Duration,
}

impl Sessions {
    pub fn new(idle: Duration, absolute: Duration) -> Sessions {
        Sessions { map: Mutex::new(HashMap::new()), idle, absolute }
    }

    pub fn create(
        &self,
        actor: Actor,
        must_change_password: bool,
        pending_second_factor: bool,
        totp_enrolled: bool,
        generation: u64,
    ) -> String {
        let token = random_token();
        let s = Session {
            actor,
            csrf: random_token(),
            generation,
            started: Instant::now(),
            last_seen: Instant::now(),
            second_factor_at: None,
            must_change_password,
            pending_second_factor,
            totp_enrolled,
            enrolling_secret: None,
        };
        self.map.lock().expect("sessions").insert(token.clone(), s);
        token
    }

    /// The live session for `token`, refreshing its idle timer; sessions idle too long or
    /// past their absolute lifetime are dropped.
    pub fn touch(&self, token: &str) -> Option<Session> {
        let mut map = self.map.lock().expect("sessions");
        let (idle, absolute) = (self.idle, self.absolute);
        map.retain(|_, s| s.last_seen.elapsed() < idle && s.started.elapsed() < absolute);
        let s = map.get_mut(token)?;
        s.last_seen = Instant::now();
        Some(s.clone())
    }

    pub fn update(&self, token: &str, f: impl FnOnce(&mut Session)) {
        if let Some(s) = self.map.lock().expect("sessions").get_mut(token) {
            f(s);
        }
    }

    /// `actor` is the one `auth` returned for the passed check (holding the second factor).
    pub fn mark_second_factor(&self, token: &str, actor: Actor) {
        self.update(token, |s| {
            s.actor = actor;
            s.second_factor_at = Some(Instant::now());
            s.pending_second_factor = false;
            s.totp_enrolled = true;
            s.enrolling_secret = None;
        });
    }

    pub fn remove(&self, token: &str) {
        self.map.lock().expect("sessions").remove(token);
    }
}

pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
}

pub fn set_cookie(name: &str, value: &str, max_age: Option<u64>, secure: bool) -> String {
    let mut c = format!("{name}={value}; HttpOnly; SameSite=Strict; Path=/");
    if let Some(a) = max_age {
        c.push_str(&format!("; Max-Age={a}"));
    }
    if secure {
        c.push_str("; Secure");
    }
    c
}

/// Sliding one-minute window of login attempts per client address.
pub struct LoginLimiter {
    per_minute: usize,
    seen: Mutex<HashMap<String, VecDeque<Instant>>>,
}

impl LoginLimiter {
    pub fn new(per_minute: u32) -> LoginLimiter {
        LoginLimiter { per_minute: per_minute as usize, seen: Mutex::new(HashMap::new()) }
    }

    /// Records an attempt; false when the address is over its limit.
    pub fn allow(&self, client: &str) -> bool {
        let mut seen = self.seen.lock().expect("limiter");
        let q = seen.entry(client.to_owned()).or_default();
        let window = Duration::from_secs(60);
        while q.front().is_some_and(|t| t.elapsed() > window) {
            q.pop_front();
        }
        if q.len() >= self.per_minute {
            return false;
        }
        q.push_back(Instant::now());
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idle_sessions_expire() {
        let s = Sessions::new(Duration::from_millis(50), Duration::from_secs(60));
        let t = s.create(Actor::system(), false, false, false, 0);
        assert!(s.touch(&t).is_some());
        std::thread::sleep(Duration::from_millis(80));
        assert!(s.touch(&t).is_none());
    }

    #[test]
    fn activity_renews_the_idle_timer_but_not_the_lifetime() {
        let s = Sessions::new(Duration::from_millis(120), Duration::from_millis(400));
        let t = s.create(Actor::system(), false, false, false, 0);
        // Active every 60 ms: alive well past the idle time...
        for _ in 0..4 {
            std::thread::sleep(Duration::from_millis(60));
            assert!(s.touch(&t).is_some());
        }
        // ...until the absolute lifetime ends it, however active.
        std::thread::sleep(Duration::from_millis(200));
        let _ = s.touch(&t);
        std::thread::sleep(Duration::from_millis(60));
        assert!(s.touch(&t).is_none());
    }

    #[test]
    fn limiter_counts_per_client() {
        let l = LoginLimiter::new(3);
        assert!(l.allow("a") && l.allow("a") && l.allow("a"));
        assert!(!l.allow("a"));
        assert!(l.allow("b"));
    }
}
