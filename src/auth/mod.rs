//! auth/: "who is this, and what may they do?" Personal accounts, argon2id password hashes,
//! lockout, password and account expiry, TOTP second factor, and the [`Actor`] every domain
//! function takes. Time is always passed in (`now`), so the rules are testable without a clock.
//!
//! Account rules (from the PIA's safeguards): personal IDs only; a rights matrix per user,
//! edited by the security officer and never by the user themself; lockout after
//! `lockout_threshold` failures in a row for a growing while (never for good, and answered like a
//! wrong password so nobody learns which names exist); passwords expire after
//! `password_max_age_days` (forced change at the next login); accounts expire at the end of the
//! fiscal year (31 March) unless renewed; TOTP secrets are sealed at rest.

mod accounts;
pub mod rights;
pub mod totp;

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use chrono::{DateTime, Datelike, NaiveDate, Utc};
use rand::Rng;
use serde::{Deserialize, Serialize};

pub use accounts::Accounts;
pub use rights::{Function, Level, Rights, Role};

use crate::audit::Event;
use crate::config::Security;
use crate::store::Store;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("user {0} already exists")]
    Exists(String),
    #[error("user {0} does not exist")]
    NoUser(String),
    #[error("invalid user name {0:?}: use 3-32 letters, digits, '.', '_' or '-'")]
    BadName(String),
    #[error("password must be at least {0} characters and must not contain the user name")]
    WeakPassword(usize),
    #[error("the new password must differ from the current one")]
    SamePassword,
    #[error("not allowed: {0}")]
    Forbidden(String),
    #[error("a second-factor check (TOTP) is required first")]
    SecondFactorRequired,
    #[error("the one-time code is wrong, expired or already used")]
    BadCode,
    #[error("too many wrong one-time codes: try again after {0}")]
    TooManyCodes(DateTime<Utc>),
    #[error("user store")]
    Store(#[from] crate::store::Error),
    #[error("user record {0} is corrupt")]
    Corrupt(String),
}

impl From<sled::Error> for Error {
    fn from(e: sled::Error) -> Self {
        Error::Store(e.into())
    }
}

/// An authenticated person, or hozon itself. Domain functions take `&Actor` and check it.
///
/// The fields are private and every constructor lives here, in `auth`: the web gets its actors
/// from a login (and the session that remembers it), API clients from their token, the command
/// line from the key file (`operator`) or an officer's own login, and hozon's own jobs from
/// `system`. Code elsewhere can narrow an actor (drop a right, forget a second factor), never
/// widen one. Tests mint actors with chosen rights through `internals`-only doors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    name: String,
    role: Option<Role>,
    rights: Rights,
    /// The session passed a TOTP check recently enough for exports and user administration.
    second_factor: bool,
}

impl Actor {
    /// hozon itself (ingest from a hot folder, scheduled jobs).
    pub fn system() -> Actor {
        Actor::operator("system")
    }

    /// One of hozon's own jobs, named so the audit log tells them apart (`system:hotfolder`).
    pub fn job(name: &str) -> Actor {
        Actor::operator(&format!("system:{name}"))
    }

    /// Someone at the server's command line: holding the key file is the strongest factor
    /// there is, so the operator has every right.
    pub fn operator(name: &str) -> Actor {
        let mut rights = Rights::default();
        for f in Function::ALL {
            rights.set(f, Level::Update);
        }
        rights.my_number = true;
        Actor { name: name.to_owned(), role: None, rights, second_factor: true }
    }

    /// Someone holding a role's preset rights, no recent second factor (jobs, benches, tests).
    pub fn with_role(name: &str, role: Role) -> Actor {
        Actor { name: name.to_owned(), role: Some(role), rights: role.preset(), second_factor: false }
    }

    /// An API client: a token grants the case interface and nothing else.
    pub(crate) fn api_client(name: &str) -> Actor {
        let mut rights = Rights::default();
        rights.set(Function::Cases, Level::Update);
        Actor { name: format!("api:{name}"), role: None, rights, second_factor: false }
    }

    /// Any rights at all: only for tests (the `internals` feature), never in a release build.
    #[cfg(any(test, feature = "internals"))]
    pub fn with_rights(name: &str, role: Option<Role>, rights: Rights, second_factor: bool) -> Actor {
        Actor { name: name.to_owned(), role, rights, second_factor }
    }

    /// The same actor after a checked second factor: only `check_totp` and tests make one.
    #[cfg(any(test, feature = "internals"))]
    pub fn stepped_up(self) -> Actor {
        Actor { second_factor: true, ..self }
    }

    /// The same actor without the My Number right.
    pub fn without_my_number(mut self) -> Actor {
        self.rights.my_number = false;
        self
    }

    /// The same actor once the second factor is no longer recent.
    pub fn without_second_factor(mut self) -> Actor {
        self.second_factor = false;
        self
    }

    /// The same person with the rights their account holds now (a session re-reading them):
    /// rights, role and the second factor come from `fresh`, which `auth` made.
    pub(crate) fn refreshed(self, fresh: &Actor) -> Actor {
        Actor { role: fresh.role, rights: fresh.rights.clone(), ..self }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn role(&self) -> Option<Role> {
        self.role
    }

    pub fn rights(&self) -> &Rights {
        &self.rights
    }

    /// A TOTP check passed recently enough for exports and user administration.
    pub fn second_factor(&self) -> bool {
        self.second_factor
    }

    pub fn require(&self, f: Function, level: Level) -> Result<(), Error> {
        if self.rights.allows(f, level) {
            Ok(())
        } else {
            Err(Error::Forbidden(format!("{} needs {}={}", self.name, f.key(), level.key())))
        }
    }

    pub fn require_second_factor(&self) -> Result<(), Error> {
        if self.second_factor { Ok(()) } else { Err(Error::SecondFactorRequired) }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UserRecord {
    pub name: String,
    pub role: Role,
    pub rights: Rights,
    password_phc: String,
    pub password_changed_at: DateTime<Utc>,
    /// Set for a password someone else chose (first login, reset).
    pub must_change_password: bool,
    pub failed_logins: u32,
    /// Locked by hand (older stores; cleared by unlock). Failures only lock until `locked_until`.
    pub locked: bool,
    /// Temporary lockout after too many failed logins (older stores; new locks are per
    /// client address, in `lockouts`).
    #[serde(default)]
    pub locked_until: Option<DateTime<Utc>>,
    /// Failed logins per client address: a lock holds for the address the failures came from,
    /// so nobody locks the real user out from elsewhere (and the audit log shows who tried).
    #[serde(default)]
    lockouts: Vec<AddressLock>,
    /// Last day the account may log in (a fiscal-year end).
    pub expires_on: NaiveDate,
    #[serde(default, with = "opt_hex")]
    totp_sealed: Option<Vec<u8>>,
    pub created_at: DateTime<Utc>,
    pub last_login_at: Option<DateTime<Utc>>,
    /// When someone else last reset this account's password or second factor: for a while
    /// after that, steps that need the person themselves (disposal) are refused.
    #[serde(default)]
    pub credentials_reset_at: Option<DateTime<Utc>>,
    /// The last TOTP time step accepted: a code is good once, never replayed.
    #[serde(default)]
    totp_last_step: u64,
    /// Wrong codes in a row, and until when codes are refused after too many.
    #[serde(default)]
    totp_failures: u32,
    #[serde(default)]
    totp_blocked_until: Option<DateTime<Utc>>,
    /// Keyed hashes of unused recovery codes (issued by the security officer for a lost
    /// authenticator); each works once.
    #[serde(default)]
    recovery_codes: Vec<String>,
    /// Bumped by every change to the account (rights, password, lock, expiry, second factor):
    /// sessions opened under an older generation end at their next request.
    #[serde(default)]
    pub generation: u64,
}

impl UserRecord {
    pub fn totp_enrolled(&self) -> bool {
        self.totp_sealed.is_some()
    }

    fn actor(&self) -> Actor {
        Actor { name: self.name.clone(), role: Some(self.role), rights: self.rights.clone(), second_factor: false }
    }
}

/// Failed logins from one client address and the lock they earned.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct AddressLock {
    from: String,
    failures: u32,
    until: Option<DateTime<Utc>>,
    last: DateTime<Utc>,
}

/// Addresses remembered per account (the oldest are forgotten first).
const MAX_ADDRESS_LOCKS: usize = 32;

/// Every read-modify-write of a user record holds this, so a login's failure count, a code's
/// step and an administrator's change never overwrite one another (sled's lock keeps other
/// processes out of the data directory).
static USER_WRITES: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Loads `name` afresh under [`USER_WRITES`], lets `f` change it, and saves it with the event
/// `f` returns (nothing is saved when it returns `None`).
fn with_user<R>(
    store: &Store,
    name: &str,
    f: impl FnOnce(&mut UserRecord) -> Result<(R, Option<Event>), Error>,
) -> Result<R, Error> {
    let _one = USER_WRITES.lock().unwrap_or_else(|p| p.into_inner());
    let mut rec = load(store, name)?.ok_or_else(|| Error::NoUser(name.to_owned()))?;
    let (out, event) = f(&mut rec)?;
    if let Some(event) = event {
        save(store, &rec, event)?;
    }
    Ok(out)
}

mod opt_hex {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &Option<Vec<u8>>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(b) => s.serialize_some(&hex::encode(b)),
            None => s.serialize_none(),
        }
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<u8>>, D::Error> {
        Option::<String>::deserialize(d)?.map(|s| hex::decode(s).map_err(serde::de::Error::custom)).transpose()
    }
}

/// 31 March ending the fiscal year (1 April – 31 March) that contains `day`.
pub fn fiscal_year_end(day: NaiveDate) -> NaiveDate {
    let year = if day.month() >= 4 { day.year() + 1 } else { day.year() };
    NaiveDate::from_ymd_opt(year, 3, 31).expect("31 March exists")
}

fn valid_name(name: &str) -> bool {
    (3..=32).contains(&name.len()) && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
}

fn check_password(name: &str, password: &str, policy: &Security) -> Result<(), Error> {
    let n = password.chars().count();
    if n < policy.password_min_length || n > 256 || password.to_lowercase().contains(&name.to_lowercase()) {
        return Err(Error::WeakPassword(policy.password_min_length));
    }
    Ok(())
}

/// Each argon2id hash takes 19 MiB for its duration; a burst of logins must not multiply that
/// by the number of requests in flight. At most one hash per core runs at a time; the rest
/// wait their turn (they would wait for a core anyway).
static HASH_PERMITS: std::sync::LazyLock<crate::permits::Permits> = std::sync::LazyLock::new(|| {
    crate::permits::Permits::new(std::thread::available_parallelism().map_or(2, |n| n.get()))
});

fn with_hash_permit<T>(f: impl FnOnce() -> T) -> T {
    let _permit = HASH_PERMITS.acquire();
    f()
}

fn hash_password(password: &str) -> String {
    let salt = SaltString::generate(&mut rand::rngs::OsRng);
    with_hash_permit(|| {
        Argon2::default().hash_password(password.as_bytes(), &salt).expect("argon2 hashes any input").to_string()
    })
}

fn password_matches(phc: &str, password: &str) -> bool {
    with_hash_permit(|| {
        PasswordHash::new(phc).is_ok_and(|h| Argon2::default().verify_password(password.as_bytes(), &h).is_ok())
    })
}

/// A random password that is easy to read out and type: 4 groups of 4 from an alphabet
/// without look-alikes (95 bits).
pub fn generate_password() -> String {
    const ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut rng = rand::rngs::OsRng;
    (0..4)
        .map(|_| (0..4).map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char).collect::<String>())
        .collect::<Vec<_>>()
        .join("-")
}

pub fn load(store: &Store, name: &str) -> Result<Option<UserRecord>, Error> {
    match store.users_tree().get(name)? {
        Some(v) => serde_json::from_slice(&v).map(Some).map_err(|_| Error::Corrupt(name.to_owned())),
        None => Ok(None),
    }
}

fn save(store: &Store, rec: &UserRecord, event: Event) -> Result<(), Error> {
    store.put_user(&rec.name, &serde_json::to_vec(rec).expect("user serialises"), event)?;
    Ok(())
}

fn totp_context(name: &str) -> Vec<u8> {
    format!("totp:{name}").into_bytes()
}

/// Creates the first administrator (security officer) at init, outside any session.
pub fn bootstrap_admin(store: &Store, now: DateTime<Utc>) -> Result<String, Error> {
    let password = generate_password();
    let rec = new_record("admin", Role::SecurityOfficer, &password, now);
    if load(store, "admin")?.is_some() {
        return Err(Error::Exists("admin".into()));
    }
    save(store, &rec, Event::new("system", "user.create", "admin", "ok"))?;
    Ok(password)
}

fn new_record(name: &str, role: Role, password: &str, now: DateTime<Utc>) -> UserRecord {
    UserRecord {
        name: name.to_owned(),
        role,
        rights: role.preset(),
        password_phc: hash_password(password),
        password_changed_at: now,
        must_change_password: true,
        failed_logins: 0,
        locked: false,
        expires_on: fiscal_year_end(crate::jp::date_of(now)),
        totp_sealed: None,
        created_at: now,
        last_login_at: None,
        credentials_reset_at: None,
        locked_until: None,
        lockouts: Vec::new(),
        totp_last_step: 0,
        totp_failures: 0,
        totp_blocked_until: None,
        recovery_codes: Vec::new(),
        generation: 0,
    }
}

/// The checks every user-administration call makes: the right, a recent second factor, and
/// never on one's own account.
fn admin_check(by: &Actor, target: &str) -> Result<(), Error> {
    by.require(Function::Users, Level::Update)?;
    by.require_second_factor()?;
    if by.name == target {
        return Err(Error::Forbidden("nobody administers their own account".into()));
    }
    Ok(())
}

/// Creates a personal account with the role's preset rights; returns its one-time password.
pub fn create_user(store: &Store, by: &Actor, name: &str, role: Role, now: DateTime<Utc>) -> Result<String, Error> {
    admin_check(by, name)?;
    if !valid_name(name) {
        return Err(Error::BadName(name.into()));
    }
    if load(store, name)?.is_some() {
        return Err(Error::Exists(name.into()));
    }
    let password = generate_password();
    save(store, &new_record(name, role, &password, now), Event::new(&by.name, "user.create", name, role.key()))?;
    Ok(password)
}

fn update(
    store: &Store,
    by: &Actor,
    name: &str,
    action: &str,
    f: impl FnOnce(&mut UserRecord),
) -> Result<UserRecord, Error> {
    admin_check(by, name)?;
    with_user(store, name, |rec| {
        f(rec);
        rec.generation += 1;
        Ok((rec.clone(), Some(Event::new(&by.name, action, name, "ok"))))
    })
}

pub fn set_rights(store: &Store, by: &Actor, name: &str, role: Role, rights: Rights) -> Result<(), Error> {
    update(store, by, name, "user.rights", |r| {
        r.role = role;
        r.rights = rights;
    })
    .map(drop)
}

pub fn unlock(store: &Store, by: &Actor, name: &str) -> Result<(), Error> {
    update(store, by, name, "user.unlock", |r| {
        r.locked = false;
        r.locked_until = None;
        r.lockouts.clear();
        r.failed_logins = 0;
        r.totp_failures = 0;
        r.totp_blocked_until = None;
    })
    .map(drop)
}

/// Extends an account to the end of the next fiscal year after its current expiry (or after
/// today, if it has already expired).
pub fn renew(store: &Store, by: &Actor, name: &str, today: NaiveDate) -> Result<NaiveDate, Error> {
    update(store, by, name, "user.renew", |r| {
        let from = r.expires_on.max(today) + chrono::Duration::days(1);
        r.expires_on = fiscal_year_end(from);
    })
    .map(|r| r.expires_on)
}

/// Sets a new one-time password, clears the lock, and forces a change at the next login.
pub fn reset_password(store: &Store, by: &Actor, name: &str, now: DateTime<Utc>) -> Result<String, Error> {
    let password = generate_password();
    let phc = hash_password(&password);
    update(store, by, name, "user.reset_password", |r| {
        r.password_phc = phc;
        r.password_changed_at = now;
        r.must_change_password = true;
        r.locked = false;
        r.locked_until = None;
        r.lockouts.clear();
        r.failed_logins = 0;
        r.credentials_reset_at = Some(now);
    })?;
    Ok(password)
}

/// Removes the TOTP enrolment (lost phone); the user enrols again at the next step-up.
pub fn reset_totp(store: &Store, by: &Actor, name: &str) -> Result<(), Error> {
    update(store, by, name, "user.reset_totp", |r| {
        r.totp_sealed = None;
        r.credentials_reset_at = Some(Utc::now());
    })
    .map(drop)
}

/// Every account, for the account review page.
pub fn list_users(store: &Store, by: &Actor) -> Result<Vec<UserRecord>, Error> {
    by.require(Function::Users, Level::View)?;
    by.require_second_factor()?;
    store
        .users_tree()
        .iter()
        .values()
        .map(|v| {
            let v = v?;
            serde_json::from_slice(&v).map_err(|_| Error::Corrupt("?".into()))
        })
        .collect()
}

/// What a password login led to.
#[derive(Debug)]
pub enum Login {
    Ok {
        actor: Actor,
        /// The password is expired or was set by someone else: change it before anything else.
        must_change_password: bool,
        totp_enrolled: bool,
        /// The account's generation at login; see [`session_actor`].
        generation: u64,
    },
    BadCredentials,
    Locked,
    AccountExpired,
}

/// Checks a password login and records the outcome (failure count, lock, audit entry).
/// Unknown users cost the same hashing time as known ones. While an account is locked its
/// attempts are refused without counting (so the lock cannot be stretched forever), and
/// whether the account has expired is told only to someone who knows its password.
pub fn login(
    store: &Store,
    policy: &Security,
    name: &str,
    password: &str,
    from: &str,
    now: DateTime<Utc>,
) -> Result<Login, Error> {
    let rec = if valid_name(name) { load(store, name)? } else { None };
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let dummy = DUMMY.get_or_init(|| hash_password("dummy-password-for-timing"));
    let ok = password_matches(rec.as_ref().map_or(dummy.as_str(), |r| r.password_phc.as_str()), password);
    if rec.is_none() {
        store.audit(Event::new("anonymous", "login", &format!("unknown user from {from}"), "denied"))?;
        return Ok(Login::BadCredentials);
    }
    // The hash was checked outside the lock; the record is re-read under it for the counts.
    with_user(store, name, |rec| {
        let event = |outcome: &str| Some(Event::new(&rec.name, "login", from, outcome));
        // A lock from 24 hours ago and more is forgotten, so the wait cannot grow for ever.
        rec.lockouts.retain(|l| now - l.last < chrono::Duration::hours(24));
        let lock = rec.lockouts.iter().find(|l| l.from == from);
        if rec.locked
            || rec.locked_until.is_some_and(|until| now < until)
            || lock.and_then(|l| l.until).is_some_and(|until| now < until)
        {
            return Ok((Login::Locked, event("locked")));
        }
        if !ok {
            rec.failed_logins += 1;
            if !rec.lockouts.iter().any(|l| l.from == from) {
                if rec.lockouts.len() >= MAX_ADDRESS_LOCKS {
                    rec.lockouts.remove(0);
                }
                rec.lockouts.push(AddressLock { from: from.to_owned(), failures: 0, until: None, last: now });
            }
            let lock = rec.lockouts.iter_mut().find(|l| l.from == from).expect("just added");
            lock.failures += 1;
            lock.last = now;
            let locked_now = lock.failures >= policy.lockout_threshold;
            if locked_now {
                lock.until = Some(now + backoff(policy.lockout_minutes, lock.failures - policy.lockout_threshold));
            }
            let outcome = if locked_now { "denied_and_locked" } else { "denied" };
            return Ok((if locked_now { Login::Locked } else { Login::BadCredentials }, event(outcome)));
        }
        if crate::jp::date_of(now) > rec.expires_on {
            return Ok((Login::AccountExpired, event("account_expired")));
        }
        let expired = now - rec.password_changed_at > chrono::Duration::days(i64::from(policy.password_max_age_days));
        rec.failed_logins = 0;
        rec.locked_until = None;
        rec.lockouts.retain(|l| l.from != from);
        rec.last_login_at = Some(now);
        let login = Login::Ok {
            actor: rec.actor(),
            must_change_password: rec.must_change_password || expired,
            totp_enrolled: rec.totp_enrolled(),
            generation: rec.generation,
        };
        Ok((login, event("ok")))
    })
}

/// `base_minutes` doubled `over` times, at most an hour (longer would hand a weapon to anyone
/// on the same network address as the victim).
fn backoff(base_minutes: u64, over: u32) -> chrono::Duration {
    let minutes = base_minutes.saturating_mul(1u64 << over.min(20)).min(60).max(base_minutes.min(60));
    chrono::Duration::minutes(minutes as i64)
}

/// The actor a session of `name` opened at `generation` acts as now: the account's current
/// rights, or `None` once the account is gone, locked, expired or changed since (a password
/// reset, new rights, a second factor removed), which ends the session.
pub fn session_actor(store: &Store, name: &str, generation: u64, now: DateTime<Utc>) -> Result<Option<Actor>, Error> {
    let Some(rec) = load(store, name)? else { return Ok(None) };
    // A temporary lockout (failed logins from somewhere) does not end the user's sessions:
    // otherwise anyone could log anyone out.
    let live = rec.generation == generation && !rec.locked && crate::jp::date_of(now) <= rec.expires_on;
    Ok(live.then(|| rec.actor()))
}

/// A user changes their own password (knowing the current one). Returns the account's new
/// generation: the session that made the change carries on under it, every other one ends.
pub fn change_password(
    store: &Store,
    policy: &Security,
    actor: &Actor,
    current: &str,
    new: &str,
    now: DateTime<Utc>,
) -> Result<u64, Error> {
    let rec = load(store, &actor.name)?.ok_or_else(|| Error::NoUser(actor.name.clone()))?;
    if !password_matches(&rec.password_phc, current) {
        return Err(Error::Forbidden("current password is wrong".into()));
    }
    check_password(&rec.name, new, policy)?;
    if current == new {
        return Err(Error::SamePassword);
    }
    let phc = hash_password(new);
    with_user(store, &rec.name, |rec| {
        rec.password_phc = phc;
        rec.password_changed_at = now;
        rec.must_change_password = false;
        rec.generation += 1;
        Ok((rec.generation, Some(Event::new(&actor.name, "user.change_password", &actor.name, "ok"))))
    })
}

/// Starts TOTP enrolment: a new secret, returned to show once (QR); it is stored only when
/// [`confirm_totp`] sees a valid code from it.
pub fn begin_totp(actor: &Actor) -> (Vec<u8>, Option<(String, String)>) {
    let secret = totp::new_secret();
    let shown = totp::enrolment(&secret, &actor.name);
    (secret, shown)
}

pub fn confirm_totp(
    store: &Store,
    policy: &Security,
    actor: &Actor,
    secret: &[u8],
    code: &str,
    unix_time: u64,
) -> Result<Actor, Error> {
    guarded_code(store, policy, &actor.name, "totp.enrol", unix_time, |rec| {
        // An enrolment is never replaced from a session: a lost device goes through the
        // security officer (reset or recovery codes).
        if rec.totp_sealed.is_some() {
            return None;
        }
        let step = totp::matching_step(secret, code, unix_time).filter(|s| *s > rec.totp_last_step)?;
        rec.totp_sealed = Some(store.seal_secret(&totp_context(&rec.name), secret));
        Some(step)
    })
    .map(|_| Actor { second_factor: true, ..actor.clone() })
}

/// A passed second-factor check: how, and the actor now holding a recent second factor.
#[derive(Debug, Clone)]
pub struct Passed {
    pub how: SecondFactor,
    pub actor: Actor,
}

/// How a second-factor check passed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecondFactor {
    /// A code from the enrolled authenticator.
    Code,
    /// One of the recovery codes: the lost authenticator's enrolment is removed, the user
    /// enrols a new one next.
    Recovery,
}

/// Checks a TOTP code (or a recovery code) for an enrolled user. Each code is accepted once;
/// after `totp_attempts` wrong codes in a row codes are refused for a doubling while; every
/// failure is audited (`totp.check` / `denied`) and counted in the monthly report.
pub fn check_totp(
    store: &Store,
    policy: &Security,
    actor: &Actor,
    code: &str,
    unix_time: u64,
) -> Result<Passed, Error> {
    let mut how = SecondFactor::Code;
    guarded_code(store, policy, &actor.name, "totp.check", unix_time, |rec| {
        if let Some(i) = recovery_index(store, rec, code) {
            rec.recovery_codes.remove(i);
            rec.totp_sealed = None;
            how = SecondFactor::Recovery;
            return Some(rec.totp_last_step);
        }
        let sealed = rec.totp_sealed.as_ref()?;
        let secret = store.open_secret(&totp_context(&rec.name), sealed).ok()?;
        totp::matching_step(&secret, code, unix_time).filter(|s| *s > rec.totp_last_step)
    })?;
    if how == SecondFactor::Recovery {
        store.audit(Event::new(&actor.name, "totp.recovery", &actor.name, "ok"))?;
    }
    Ok(Passed { how, actor: Actor { second_factor: true, ..actor.clone() } })
}

/// The attempt limit and replay guard shared by enrolment and checks: `accept` returns the
/// step the code belongs to (it may change the record), `None` for a wrong or used code.
fn guarded_code(
    store: &Store,
    policy: &Security,
    name: &str,
    action: &str,
    unix_time: u64,
    accept: impl FnOnce(&mut UserRecord) -> Option<u64>,
) -> Result<u64, Error> {
    let now = DateTime::<Utc>::from_timestamp(unix_time as i64, 0).unwrap_or_else(Utc::now);
    // Under the user lock: two requests with the same code cannot both pass.
    with_user(store, name, |rec| {
        if let Some(until) = rec.totp_blocked_until.filter(|u| now < *u) {
            return Ok((Err(Error::TooManyCodes(until)), Some(Event::new(name, action, name, "blocked"))));
        }
        Ok(match accept(rec) {
            Some(step) => {
                rec.totp_last_step = step;
                rec.totp_failures = 0;
                rec.totp_blocked_until = None;
                (Ok(step), Some(Event::new(name, action, name, "ok")))
            }
            None => {
                rec.totp_failures += 1;
                if let Some(over) = rec.totp_failures.checked_sub(policy.totp_attempts) {
                    rec.totp_blocked_until = Some(now + backoff(1, over));
                }
                (Err(Error::BadCode), Some(Event::new(name, action, name, "denied")))
            }
        })
    })?
}

fn recovery_hash(store: &Store, name: &str, code: &str) -> String {
    let normal: String = code.chars().filter(char::is_ascii_alphanumeric).collect::<String>().to_ascii_lowercase();
    store.lookup_hash("recovery", &format!("{name}\0{normal}"))
}

fn recovery_index(store: &Store, rec: &UserRecord, code: &str) -> Option<usize> {
    if !code.contains('-') {
        return None;
    }
    let h = recovery_hash(store, &rec.name, code);
    rec.recovery_codes.iter().position(|c| *c == h)
}

/// Issues ten new recovery codes for `name` (the old ones stop working) and returns them to
/// hand over once; stored only as keyed hashes.
pub fn issue_recovery_codes(store: &Store, by: &Actor, name: &str) -> Result<Vec<String>, Error> {
    let codes: Vec<String> =
        (0..10).map(|_| generate_password().split('-').take(2).collect::<Vec<_>>().join("-")).collect();
    let hashes = codes.iter().map(|c| recovery_hash(store, name, c)).collect();
    // Someone else saw the codes: steps that need the person themselves wait (as after a reset).
    update(store, by, name, "user.recovery_codes", |r| {
        r.recovery_codes = hashes;
        r.credentials_reset_at = Some(Utc::now());
    })?;
    Ok(codes)
}

/// For the command line: a new one-time password for any user, without a session.
pub fn operator_reset_password(store: &Store, operator: &str, name: &str, now: DateTime<Utc>) -> Result<String, Error> {
    let mut by = Actor::operator(operator);
    by.name = format!("cli:{operator}");
    reset_password(store, &by, name, now)
}

#[cfg(test)]
mod tests;
