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
fn lockout_is_temporary_growing_and_silent_about_names() {
    let (_t, store, pw) = setup();
    let policy = Security::default();
    let admin = admin_with_2fa();
    let temp = create_user(&store, &admin, "rev01", Role::Reviewer, at(2026, 11, 25)).unwrap();
    let t0 = at(2026, 11, 26);
    let try_at = |pw: &str, t: DateTime<Utc>| login(&store, &policy, "rev01", pw, "t", t).unwrap();
    for i in 1..policy.lockout_threshold {
        assert!(matches!(try_at("wrong-password!", t0), Login::BadCredentials), "try {i}");
    }
    assert!(matches!(try_at("wrong-password!", t0), Login::Locked));
    // Locked even with the right password, for the lockout time only; attempts during the
    // lock do not count (nobody can stretch it forever).
    let mins = |m: i64| chrono::Duration::minutes(m);
    for _ in 0..10 {
        assert!(matches!(try_at(&temp, t0 + mins(4)), Login::Locked));
    }
    // The lock holds for the address the failures came from: the user at their own desk logs
    // in, and their open sessions live on.
    let Login::Ok { generation, .. } = login(&store, &policy, "rev01", &temp, "desk", t0 + mins(1)).unwrap() else {
        panic!("locked out from another address")
    };
    assert!(session_actor(&store, "rev01", generation, t0 + mins(2)).unwrap().is_some());
    assert!(matches!(try_at(&temp, t0 + mins(4)), Login::Locked));
    let l = try_at(&temp, t0 + mins(5) + chrono::Duration::seconds(1));
    assert!(matches!(l, Login::Ok { must_change_password: true, .. }), "unlocked by time alone: {l:?}");
    assert_eq!(load(&store, "rev01").unwrap().unwrap().failed_logins, 0);
    // Each further failure past the threshold doubles the wait: 5, then 10 minutes.
    let t1 = t0 + mins(10);
    for _ in 0..policy.lockout_threshold {
        try_at("wrong-password!", t1);
    }
    let t2 = t1 + mins(6);
    assert!(matches!(try_at("wrong-password!", t2), Login::Locked), "one more failure after the first lock");
    assert!(matches!(try_at(&temp, t2 + mins(9)), Login::Locked));
    assert!(matches!(try_at(&temp, t2 + mins(11)), Login::Ok { .. }));
    // The security officer can end a lock early.
    for _ in 0..policy.lockout_threshold {
        try_at("wrong-password!", t2 + mins(12));
    }
    unlock(&store, &admin, "rev01").unwrap();
    assert!(matches!(try_at(&temp, t2 + mins(12)), Login::Ok { .. }));
    // However many failures, a lock lasts at most an hour, and a day later the count is gone.
    assert_eq!(backoff(5, 30), mins(60));
    let t3 = t2 + mins(20);
    for _ in 0..policy.lockout_threshold {
        try_at("wrong-password!", t3);
    }
    assert!(matches!(try_at(&temp, t3 + mins(4)), Login::Locked));
    let next_day = t3 + chrono::Duration::hours(25);
    assert!(matches!(try_at("wrong-password!", next_day), Login::BadCredentials), "the count starts again");
    assert!(matches!(login(&store, &policy, "admin", &pw, "t", t0).unwrap(), Login::Ok { .. }));
    assert!(matches!(login(&store, &policy, "nobody", &pw, "t", t0).unwrap(), Login::BadCredentials));
}

#[test]
fn sessions_follow_the_account_generation() {
    let (_t, store, _) = setup();
    let policy = Security::default();
    let admin = admin_with_2fa();
    let temp = create_user(&store, &admin, "rev01", Role::Reviewer, at(2026, 11, 25)).unwrap();
    let Login::Ok { generation, .. } = login(&store, &policy, "rev01", &temp, "t", at(2026, 11, 26)).unwrap() else {
        panic!("login")
    };
    let now = at(2026, 11, 26);
    assert_eq!(session_actor(&store, "rev01", generation, now).unwrap().unwrap().rights, Role::Reviewer.preset());
    // Rights removed: the session opened before ends.
    set_rights(&store, &admin, "rev01", Role::Reviewer, Rights::default()).unwrap();
    assert!(session_actor(&store, "rev01", generation, now).unwrap().is_none());
    let g = load(&store, "rev01").unwrap().unwrap().generation;
    assert!(session_actor(&store, "rev01", g, now).unwrap().is_some());
    // A password reset ends it too; so does the fiscal year's end.
    reset_password(&store, &admin, "rev01", now).unwrap();
    assert!(session_actor(&store, "rev01", g, now).unwrap().is_none());
    let g = load(&store, "rev01").unwrap().unwrap().generation;
    assert!(session_actor(&store, "rev01", g, at(2027, 4, 1)).unwrap().is_none());
    assert!(session_actor(&store, "ghost", 0, now).unwrap().is_none());
}

#[test]
fn totp_codes_work_once_wrong_ones_are_limited_and_recovery_codes_replace_a_lost_device() {
    let (_t, store, pw) = setup();
    let policy = Security::default();
    let admin = ok_actor(login(&store, &policy, "admin", &pw, "t", at(2026, 11, 25)).unwrap());
    let secret = totp::new_secret();
    let now = 1_800_000_000;
    confirm_totp(&store, &policy, &admin, &secret, &totp::code_at(&secret, now), now).unwrap();
    // An enrolment is never replaced from a session (an old session cannot slip its own
    // authenticator in).
    let other = totp::new_secret();
    let later_code = totp::code_at(&other, now + 60);
    assert!(confirm_totp(&store, &policy, &admin, &other, &later_code, now + 60).is_err());
    // The enrolment code cannot be replayed as a check, nor can a check's code.
    let code = totp::code_at(&secret, now);
    assert!(matches!(check_totp(&store, &policy, &admin, &code, now), Err(Error::BadCode)));
    let next = totp::code_at(&secret, now + 30);
    assert_eq!(check_totp(&store, &policy, &admin, &next, now + 30).unwrap().how, SecondFactor::Code);
    for _ in 0..3 {
        assert!(matches!(check_totp(&store, &policy, &admin, &next, now + 30), Err(Error::BadCode)));
    }
    // An earlier code, still within the skew, is refused too once a later one was used.
    assert!(matches!(check_totp(&store, &policy, &admin, &code, now + 30), Err(Error::BadCode)));
    // Five wrong codes in a row: codes are refused for a minute, even the right one.
    let later = now + 300;
    // A right code resets the count of wrong ones.
    check_totp(&store, &policy, &admin, &totp::code_at(&secret, later - 60), later - 60).unwrap();
    let wrong = if totp::code_at(&secret, later) == "000000" { "111111" } else { "000000" };
    let mut last = None;
    for _ in 0..policy.totp_attempts {
        last = Some(check_totp(&store, &policy, &admin, wrong, later));
    }
    assert!(matches!(last, Some(Err(Error::BadCode))));
    let right = totp::code_at(&secret, later);
    assert!(matches!(check_totp(&store, &policy, &admin, &right, later), Err(Error::TooManyCodes(_))));
    assert!(check_totp(&store, &policy, &admin, &totp::code_at(&secret, later + 90), later + 90).is_ok());
    let denied =
        store.audit_entries().unwrap().iter().filter(|e| e.action == "totp.check" && e.outcome != "ok").count();
    assert!(denied >= 9, "every failure is audited: {denied}");
    // Lost phone: the security officer issues recovery codes; one works once, and the old
    // enrolment is gone so a new device is enrolled next.
    let mut sec2 = admin_with_2fa();
    sec2.name = "sec02".into();
    let codes = issue_recovery_codes(&store, &sec2, "admin").unwrap();
    assert_eq!(codes.len(), 10);
    assert_eq!(check_totp(&store, &policy, &admin, &codes[3], later + 120).unwrap().how, SecondFactor::Recovery);
    assert!(!load(&store, "admin").unwrap().unwrap().totp_enrolled());
    assert!(check_totp(&store, &policy, &admin, &codes[3], later + 150).is_err(), "used once");
    assert!(issue_recovery_codes(&store, &admin_with_2fa(), "admin").is_err(), "never for oneself");
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
        matches!(confirm_totp(&store, &policy, &admin, &secret, "000000", now), Err(Error::BadCode))
            || totp::code_at(&secret, now) == "000000"
    );
    confirm_totp(&store, &policy, &admin, &secret, &totp::code_at(&secret, now), now).unwrap();
    check_totp(&store, &policy, &admin, &totp::code_at(&secret, now + 30), now + 30).unwrap();
    assert!(matches!(
        check_totp(&store, &policy, &admin, &totp::code_at(&secret, now - 600), now),
        Err(Error::BadCode)
    ));
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
