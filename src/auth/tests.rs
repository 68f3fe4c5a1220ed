use chrono::{NaiveDate, TimeZone};

use super::*;

fn at(y: i32, m: u32, d: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, m, d, 10, 0, 0).unwrap()
}

fn setup() -> (tempfile::TempDir, Store, String) {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::init(&tmp.path().join("d"), &tmp.path().join("k")).unwrap();
    let pw = bootstrap_admin(&store, at(2026, 11, 25)).unwrap();
    (tmp, store, pw)
}

fn admin_with_2fa() -> Actor {
    let mut a = Role::SecurityOfficer.preset();
    a.my_number = false;
    Actor { name: "admin".into(), role: Some(Role::SecurityOfficer), rights: a, second_factor: true }
}

fn ok_actor(l: Login) -> Actor {
    match l {
        Login::Ok { actor, .. } => actor,
        other => panic!("expected a login, got {other:?}"),
    }
}

#[test]
fn fiscal_year_end_boundaries() {
    let d = |y, m, dd| NaiveDate::from_ymd_opt(y, m, dd).unwrap();
    assert_eq!(fiscal_year_end(d(2027, 3, 31)), d(2027, 3, 31));
    assert_eq!(fiscal_year_end(d(2027, 4, 1)), d(2028, 3, 31));
    assert_eq!(fiscal_year_end(d(2026, 11, 25)), d(2027, 3, 31));
    assert_eq!(fiscal_year_end(d(2027, 1, 1)), d(2027, 3, 31));
}

#[test]
fn lockout_after_threshold_and_unlock() {
    let (_t, store, pw) = setup();
    let policy = Security::default();
    let admin = admin_with_2fa();
    let temp = create_user(&store, &admin, "rev01", Role::Reviewer, at(2026, 11, 25)).unwrap();
    for i in 1..policy.lockout_threshold {
        assert!(
            matches!(
                login(&store, &policy, "rev01", "wrong-password!", "t", at(2026, 11, 26)).unwrap(),
                Login::BadCredentials
            ),
            "try {i}"
        );
    }
    assert!(matches!(
        login(&store, &policy, "rev01", "wrong-password!", "t", at(2026, 11, 26)).unwrap(),
        Login::Locked
    ));
    // Locked even with the right password, until the security officer unlocks.
    assert!(matches!(login(&store, &policy, "rev01", &temp, "t", at(2026, 11, 26)).unwrap(), Login::Locked));
    unlock(&store, &admin, "rev01").unwrap();
    let l = login(&store, &policy, "rev01", &temp, "t", at(2026, 11, 26)).unwrap();
    assert!(matches!(l, Login::Ok { must_change_password: true, .. }), "a temporary password must be changed");
    // A success resets the failure count.
    assert_eq!(load(&store, "rev01").unwrap().unwrap().failed_logins, 0);
    assert!(matches!(login(&store, &policy, "admin", &pw, "t", at(2026, 11, 26)).unwrap(), Login::Ok { .. }));
    assert!(matches!(login(&store, &policy, "nobody", &pw, "t", at(2026, 11, 26)).unwrap(), Login::BadCredentials));
}

#[test]
fn accounts_expire_at_fiscal_year_end_unless_renewed() {
    let (_t, store, pw) = setup();
    let policy = Security { password_max_age_days: 400, ..Security::default() };
    assert!(matches!(login(&store, &policy, "admin", &pw, "t", at(2027, 3, 31)).unwrap(), Login::Ok { .. }));
    assert!(matches!(login(&store, &policy, "admin", &pw, "t", at(2027, 4, 1)).unwrap(), Login::AccountExpired));
    // The security officer renews another officer's account (never their own).
    let mut other = admin_with_2fa();
    other.name = "sec02".into();
    assert!(matches!(
        renew(&store, &admin_with_2fa(), "admin", NaiveDate::from_ymd_opt(2027, 4, 2).unwrap()),
        Err(Error::Forbidden(_))
    ));
    let until = renew(&store, &other, "admin", NaiveDate::from_ymd_opt(2027, 4, 2).unwrap()).unwrap();
    assert_eq!(until, NaiveDate::from_ymd_opt(2028, 3, 31).unwrap());
    assert!(matches!(login(&store, &policy, "admin", &pw, "t", at(2027, 4, 2)).unwrap(), Login::Ok { .. }));
}

#[test]
fn password_expiry_forces_a_change_with_rules() {
    let (_t, store, pw) = setup();
    let policy = Security::default();
    let admin = ok_actor(login(&store, &policy, "admin", &pw, "t", at(2026, 11, 25)).unwrap());
    assert!(matches!(
        change_password(&store, &policy, &admin, &pw, "short", at(2026, 11, 25)),
        Err(Error::WeakPassword(12))
    ));
    assert!(matches!(
        change_password(&store, &policy, &admin, &pw, "my-admin-password", at(2026, 11, 25)),
        Err(Error::WeakPassword(_))
    ));
    assert!(matches!(
        change_password(&store, &policy, &admin, "not-it-at-all", "a-fine-new-passphrase", at(2026, 11, 25)),
        Err(Error::Forbidden(_))
    ));
    change_password(&store, &policy, &admin, &pw, "a-fine-new-passphrase", at(2026, 11, 25)).unwrap();
    let fresh = login(&store, &policy, "admin", "a-fine-new-passphrase", "t", at(2027, 1, 10)).unwrap();
    assert!(matches!(fresh, Login::Ok { must_change_password: false, .. }));
    // 90 days later the password has expired.
    let stale = login(&store, &policy, "admin", "a-fine-new-passphrase", "t", at(2027, 2, 24)).unwrap();
    assert!(matches!(stale, Login::Ok { must_change_password: true, .. }));
}

#[test]
fn administration_needs_the_right_a_second_factor_and_another_person() {
    let (_t, store, _) = setup();
    let mut no_2fa = admin_with_2fa();
    no_2fa.second_factor = false;
    assert!(matches!(
        create_user(&store, &no_2fa, "bob01", Role::Mailroom, at(2026, 11, 25)),
        Err(Error::SecondFactorRequired)
    ));
    let reviewer =
        Actor { name: "rev".into(), role: Some(Role::Reviewer), rights: Role::Reviewer.preset(), second_factor: true };
    assert!(matches!(
        create_user(&store, &reviewer, "bob01", Role::Mailroom, at(2026, 11, 25)),
        Err(Error::Forbidden(_))
    ));
    let admin = admin_with_2fa();
    create_user(&store, &admin, "bob01", Role::Mailroom, at(2026, 11, 25)).unwrap();
    assert!(matches!(create_user(&store, &admin, "bob01", Role::Mailroom, at(2026, 11, 25)), Err(Error::Exists(_))));
    assert!(matches!(create_user(&store, &admin, "x", Role::Mailroom, at(2026, 11, 25)), Err(Error::BadName(_))));
    assert!(matches!(
        set_rights(&store, &admin, "admin", Role::SecurityOfficer, Rights::default()),
        Err(Error::Forbidden(_))
    ));
    let mut r = Role::Mailroom.preset();
    r.set(Function::Audit, Level::View);
    set_rights(&store, &admin, "bob01", Role::Mailroom, r.clone()).unwrap();
    assert_eq!(load(&store, "bob01").unwrap().unwrap().rights, r);
    assert_eq!(list_users(&store, &admin).unwrap().len(), 2);
    // Every change is in the audit log, with ids only.
    let actions: Vec<String> = store.audit_entries().unwrap().into_iter().map(|e| e.action).collect();
    assert!(actions.contains(&"user.create".to_string()) && actions.contains(&"user.rights".to_string()));
}

#[test]
fn totp_enrolment_and_check() {
    let (tmp, store, pw) = setup();
    let policy = Security::default();
    let admin = ok_actor(login(&store, &policy, "admin", &pw, "t", at(2026, 11, 25)).unwrap());
    let (secret, shown) = begin_totp(&admin);
    assert!(shown.is_some());
    let now = 1_800_000_000;
    assert!(
        matches!(confirm_totp(&store, &admin, &secret, "000000", now), Err(Error::BadCode))
            || totp::code_at(&secret, now) == "000000"
    );
    confirm_totp(&store, &admin, &secret, &totp::code_at(&secret, now), now).unwrap();
    check_totp(&store, &admin, &totp::code_at(&secret, now + 30), now + 30).unwrap();
    assert!(matches!(check_totp(&store, &admin, &totp::code_at(&secret, now - 600), now), Err(Error::BadCode)));
    // The secret is sealed at rest.
    drop(store);
    let b32 = totp_rs::Secret::from(secret.clone()).to_base32();
    for e in walkdir::WalkDir::new(tmp.path()).into_iter().map(Result::unwrap).filter(|e| e.file_type().is_file()) {
        let bytes = std::fs::read(e.path()).unwrap();
        assert!(!bytes.windows(secret.len()).any(|w| w == secret.as_slice()));
        assert!(!bytes.windows(b32.len()).any(|w| w == b32.as_bytes()));
        assert!(!bytes.windows(hex::encode(&secret).len()).any(|w| w == hex::encode(&secret).as_bytes()));
    }
}
