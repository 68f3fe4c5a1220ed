//! auth/: "who is this, and what may they do?" Users, password hashing (argon2id) and the
//! [`Actor`] that domain functions take. Roles and the full rights matrix come with the
//! users-and-rights work; today there is the first-run administrator and personal accounts.

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::store::Store;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("user {0} already exists")]
    Exists(String),
    #[error("user {0} does not exist")]
    NoUser(String),
    #[error("invalid user name {0:?}: use 3-32 letters, digits, '.', '_' or '-'")]
    BadName(String),
    #[error("password must be at least 12 characters")]
    WeakPassword,
    #[error("user store: {0}")]
    Store(String),
}

impl From<sled::Error> for Error {
    fn from(e: sled::Error) -> Self {
        Error::Store(e.to_string())
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct UserRecord {
    name: String,
    role: String,
    password_phc: String,
    created_at: chrono::DateTime<chrono::Utc>,
}

/// An authenticated person (or the system itself). Domain functions take `&Actor`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    pub name: String,
    pub role: String,
}

impl Actor {
    pub fn system() -> Actor {
        Actor {
            name: "system".into(),
            role: "system".into(),
        }
    }
}

fn valid_name(name: &str) -> bool {
    (3..=32).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
}

fn hash_password(password: &str) -> Result<String, Error> {
    if password.chars().count() < 12 {
        return Err(Error::WeakPassword);
    }
    let salt = SaltString::generate(&mut rand::rngs::OsRng);
    Ok(Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map_err(|e| Error::Store(e.to_string()))?
        .to_string())
}

/// A random password that is easy to read out and type: 4 groups of 4 from an alphabet
/// without look-alikes.
pub fn generate_password() -> String {
    const ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut rng = rand::rngs::OsRng;
    (0..4)
        .map(|_| {
            (0..4)
                .map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char)
                .collect::<String>()
        })
        .collect::<Vec<_>>()
        .join("-")
}

pub fn create_user(store: &Store, name: &str, role: &str, password: &str) -> Result<(), Error> {
    if !valid_name(name) {
        return Err(Error::BadName(name.into()));
    }
    let rec = UserRecord {
        name: name.into(),
        role: role.into(),
        password_phc: hash_password(password)?,
        created_at: chrono::Utc::now(),
    };
    let tree = store.users_tree();
    let res = tree.compare_and_swap(
        name,
        None as Option<&[u8]>,
        Some(serde_json::to_vec(&rec).expect("user serialises")),
    )?;
    if res.is_err() {
        return Err(Error::Exists(name.into()));
    }
    store.flush().map_err(|e| Error::Store(e.to_string()))?;
    Ok(())
}

pub fn set_password(store: &Store, name: &str, password: &str) -> Result<(), Error> {
    let tree = store.users_tree();
    let mut rec = load(tree, name)?.ok_or_else(|| Error::NoUser(name.into()))?;
    rec.password_phc = hash_password(password)?;
    tree.insert(name, serde_json::to_vec(&rec).expect("user serialises"))?;
    store.flush().map_err(|e| Error::Store(e.to_string()))?;
    Ok(())
}

fn load(tree: &sled::Tree, name: &str) -> Result<Option<UserRecord>, Error> {
    match tree.get(name)? {
        Some(v) => Ok(Some(
            serde_json::from_slice(&v).map_err(|e| Error::Store(e.to_string()))?,
        )),
        None => Ok(None),
    }
}

/// Checks a login. Unknown users cost the same hashing time as known ones, so timing does not
/// reveal which names exist.
pub fn authenticate(store: &Store, name: &str, password: &str) -> Result<Option<Actor>, Error> {
    let rec = if valid_name(name) {
        load(store.users_tree(), name)?
    } else {
        None
    };
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let dummy = DUMMY.get_or_init(|| hash_password("dummy-password-for-timing").expect("hashes"));
    let phc = rec
        .as_ref()
        .map_or(dummy.as_str(), |r| r.password_phc.as_str());
    let parsed = PasswordHash::new(phc).map_err(|e| Error::Store(e.to_string()))?;
    let ok = Argon2::default()
        .verify_password(password.as_bytes(), &parsed)
        .is_ok();
    Ok(match (ok, rec) {
        (true, Some(r)) => Some(Actor {
            name: r.name,
            role: r.role,
        }),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_authenticate_reset() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::init(&tmp.path().join("d"), &tmp.path().join("k")).unwrap();
        let pw = generate_password();
        assert_eq!(pw.len(), 19);
        create_user(&store, "admin", "security_officer", &pw).unwrap();
        assert!(matches!(
            create_user(&store, "admin", "x", &pw),
            Err(Error::Exists(_))
        ));
        assert!(matches!(
            create_user(&store, "a", "x", &pw),
            Err(Error::BadName(_))
        ));
        assert!(matches!(
            create_user(&store, "bob", "x", "short"),
            Err(Error::WeakPassword)
        ));
        assert_eq!(
            authenticate(&store, "admin", &pw).unwrap().unwrap().name,
            "admin"
        );
        assert!(
            authenticate(&store, "admin", "wrong-password-1")
                .unwrap()
                .is_none()
        );
        assert!(authenticate(&store, "nobody", &pw).unwrap().is_none());
        set_password(&store, "admin", "a-new-password-123").unwrap();
        assert!(authenticate(&store, "admin", &pw).unwrap().is_none());
        assert!(
            authenticate(&store, "admin", "a-new-password-123")
                .unwrap()
                .is_some()
        );
        // The stored record holds a PHC hash, not the password.
        let raw = store.users_tree().get("admin").unwrap().unwrap();
        assert!(!String::from_utf8_lossy(&raw).contains("a-new-password-123"));
    }
}
