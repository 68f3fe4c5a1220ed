//! The user accounts as the web and the command line reach them: `auth`'s operations bound
//! to the store and the security policy, so that callers outside the domain never hold the
//! store itself (`Hozon::accounts`).

use chrono::{DateTime, NaiveDate, Utc};

use super::{Actor, Error, Login, Passed, Rights, Role, UserRecord};
use crate::config::Security;
use crate::store::Store;

pub struct Accounts<'a> {
    store: &'a Store,
    policy: &'a Security,
}

impl<'a> Accounts<'a> {
    pub(crate) fn new(store: &'a Store, policy: &'a Security) -> Accounts<'a> {
        Accounts { store, policy }
    }

    pub fn login(&self, name: &str, password: &str, from: &str, now: DateTime<Utc>) -> Result<Login, Error> {
        super::login(self.store, self.policy, name, password, from, now)
    }

    pub fn session_actor(&self, name: &str, generation: u64, now: DateTime<Utc>) -> Result<Option<Actor>, Error> {
        super::session_actor(self.store, name, generation, now)
    }

    pub fn change_password(&self, actor: &Actor, current: &str, new: &str, now: DateTime<Utc>) -> Result<u64, Error> {
        super::change_password(self.store, self.policy, actor, current, new, now)
    }

    pub fn confirm_totp(&self, actor: &Actor, secret: &[u8], code: &str, unix_time: u64) -> Result<Actor, Error> {
        super::confirm_totp(self.store, self.policy, actor, secret, code, unix_time)
    }

    pub fn check_totp(&self, actor: &Actor, code: &str, unix_time: u64) -> Result<Passed, Error> {
        super::check_totp(self.store, self.policy, actor, code, unix_time)
    }

    pub fn list(&self, by: &Actor) -> Result<Vec<UserRecord>, Error> {
        super::list_users(self.store, by)
    }

    pub fn create(&self, by: &Actor, name: &str, role: Role, now: DateTime<Utc>) -> Result<String, Error> {
        super::create_user(self.store, by, name, role, now)
    }

    pub fn set_rights(&self, by: &Actor, name: &str, role: Role, rights: Rights) -> Result<(), Error> {
        super::set_rights(self.store, by, name, role, rights)
    }

    pub fn unlock(&self, by: &Actor, name: &str) -> Result<(), Error> {
        super::unlock(self.store, by, name)
    }

    pub fn renew(&self, by: &Actor, name: &str, today: NaiveDate) -> Result<NaiveDate, Error> {
        super::renew(self.store, by, name, today)
    }

    pub fn reset_password(&self, by: &Actor, name: &str, now: DateTime<Utc>) -> Result<String, Error> {
        super::reset_password(self.store, by, name, now)
    }

    pub fn reset_totp(&self, by: &Actor, name: &str) -> Result<(), Error> {
        super::reset_totp(self.store, by, name)
    }

    pub fn issue_recovery_codes(&self, by: &Actor, name: &str) -> Result<Vec<String>, Error> {
        super::issue_recovery_codes(self.store, by, name)
    }

    /// A reset by the operator at the server (who holds the key file), named in the audit log.
    pub fn operator_reset_password(&self, operator: &str, name: &str, now: DateTime<Utc>) -> Result<String, Error> {
        super::operator_reset_password(self.store, operator, name, now)
    }
}
