//! The authorization matrix: every route of the route table × every role (and anonymous) →
//! the status the route's rule promises. Generated from `web::route_table()`, so a new route is
//! covered the moment it is declared.

use axum::http::{Method, StatusCode};
use hozon::auth::{Rights, Role};
use hozon::web::{AppState, Rule, route_table, router};

use crate::util::{Browser, Page, TestEnv};

const NEW_PW: &str = "matrix-passphrase-2026";

#[derive(Debug, Clone, Copy, PartialEq)]
enum Expect {
    Allowed,
    Forbidden,
    LoginWall,
}

fn expected(rule: Rule, rights: Option<&Rights>) -> Expect {
    match (rule, rights) {
        (Rule::Public, _) => Expect::Allowed,
        // Machine routes take a bearer token, never a session: 401 for every browser.
        (Rule::Api(..), _) | (_, None) => Expect::LoginWall,
        (Rule::Account | Rule::LoggedIn, Some(_)) => Expect::Allowed,
        (Rule::Need(f, l) | Rule::Need2fa(f, l), Some(r)) => {
            if r.allows(f, l) {
                Expect::Allowed
            } else {
                Expect::Forbidden
            }
        }
    }
}

fn judge(method: &Method, p: &Page) -> Expect {
    let loc = p.location();
    match p.status {
        StatusCode::FORBIDDEN => Expect::Forbidden,
        StatusCode::UNAUTHORIZED => Expect::LoginWall,
        StatusCode::SEE_OTHER if loc == "/login" && method == Method::GET => Expect::LoginWall,
        StatusCode::SEE_OTHER if loc.starts_with("/account/") && !loc.starts_with("/account/password") => {
            Expect::Forbidden // sent to a second-factor check: not (yet) allowed
        }
        s if s.is_server_error() => panic!("{method} answered {s}: {}", p.body),
        _ => Expect::Allowed,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_for_every_role() {
    let env = TestEnv::new();
    env.configure("[security]\nlogin_attempts_per_minute = 1000\n");
    let h = env.open();
    env.ingest_first(&h, 1);
    let record_id = h.store().records().next().unwrap().unwrap().id.to_string();
    env.add_user(&h, "target01", Role::Mailroom);
    let passwords: Vec<(Role, String, String)> = Role::ALL
        .iter()
        .map(|r| {
            let name = format!("u_{}", r.key());
            let pw = env.add_user(&h, &name, *r);
            (*r, name, pw)
        })
        .collect();
    let app = router(AppState::new(h));

    let mut table = route_table();
    assert!(table.len() >= 20, "route table shrank to {}", table.len());
    // Logging out ends the session, so it goes last.
    table.sort_by_key(|s| s.path == "/logout");

    let mut checked = 0;
    let mut seen = std::collections::HashMap::new();
    let mut failures = Vec::new();
    /// (who, their rights, their login) for each subject of the matrix.
    type Subject = (String, Option<Rights>, Option<(String, String)>);
    let mut subjects: Vec<Subject> = vec![("anonymous".into(), None, None)];
    for (role, name, pw) in &passwords {
        subjects.push((role.key().into(), Some(role.preset()), Some((name.clone(), pw.clone()))));
    }
    for (who, rights, login) in subjects {
        let mut b = Browser::new(app.clone());
        if let Some((name, pw)) = &login {
            b.login(name, pw, NEW_PW).await;
            b.second_factor(None).await;
        }
        for spec in &table {
            let path = spec
                .path
                .replace("{id}", &record_id)
                .replace("{name}", "target01")
                .replace("{action}", "unlock")
                .replace("{step}", "submit");
            let page = if spec.method == Method::GET {
                b.get(&path).await
            } else {
                if login.is_none() {
                    b.get("/login").await; // the pre-login CSRF token
                } else {
                    b.get("/search").await;
                }
                b.post(&path, &[]).await
            };
            let want = expected(spec.rule, rights.as_ref());
            let got = judge(&spec.method, &page);
            checked += 1;
            *seen.entry(format!("{got:?}")).or_insert(0) += 1;
            if want != got {
                failures.push(format!(
                    "{who:>16} {} {path}: expected {want:?}, got {got:?} ({})",
                    spec.method, page.status
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{} of {checked} checks failed:\n{}", failures.len(), failures.join("\n"));
    assert_eq!(checked, table.len() * (Role::ALL.len() + 1));
    // The matrix exercises all three outcomes, many times each.
    for outcome in ["Allowed", "Forbidden", "LoginWall"] {
        assert!(seen.get(outcome).copied().unwrap_or(0) >= 10, "{seen:?}");
    }
}

/// The table itself, checked against the policy in plain words, so a loosened rule is caught too.
#[test]
fn sensitive_routes_keep_their_policy() {
    let allowed = |path: &str, method: Method| -> Vec<&'static str> {
        let spec = route_table().into_iter().find(|s| s.path == path && s.method == method).expect(path);
        Role::ALL
            .iter()
            .filter(|r| expected(spec.rule, Some(&r.preset())) == Expect::Allowed)
            .map(|r| r.key())
            .collect()
    };
    assert_eq!(allowed("/admin/users", Method::GET), vec!["security_officer"]);
    assert_eq!(allowed("/admin/users/{name}/rights", Method::POST), vec!["security_officer"]);
    assert_eq!(allowed("/audit", Method::GET), vec!["records_officer", "security_officer", "auditor"]);
    assert_eq!(allowed("/search", Method::GET).len(), Role::ALL.len());
    assert_eq!(allowed("/retention/runs/{id}/{step}", Method::POST), vec!["records_officer"]);
    assert_eq!(allowed("/retention", Method::GET), vec!["records_officer", "auditor"]);
    for s in route_table() {
        if s.path.starts_with("/admin") || s.path.ends_with(".csv") {
            assert!(matches!(s.rule, Rule::Need2fa(..)), "{} must need a second factor", s.path);
        }
    }
}

/// The command line's commands that act as a named person (`--user`, their own password) under
/// every role: the person's rights decide, as on the web. The list comes from clap's command
/// tree, so a new command taking `--user` fails here until it is covered. (Every other command
/// acts as the operator, who holds the key file: see README, "Command line and rights".)
#[test]
fn cli_commands_acting_as_a_person_for_every_role() {
    use clap::CommandFactory;
    fn walk(c: &clap::Command, path: &str, out: &mut Vec<String>) {
        for s in c.get_subcommands() {
            let p = format!("{path} {}", s.get_name()).trim().to_owned();
            if s.get_arguments().any(|a| a.get_id() == "user") {
                out.push(p.clone());
            }
            walk(s, &p, out);
        }
    }
    let mut acting = Vec::new();
    walk(&hozon::cli::Cli::command(), "", &mut acting);
    acting.sort();
    assert_eq!(
        acting,
        [
            "dispose approve",
            "dispose decide",
            "dispose exclude",
            "dispose submit",
            "export cancel",
            "export create",
            "export download",
            "export handover",
            "export lists",
            "export preview",
            "export result"
        ]
    );

    let env = TestEnv::new();
    let h = env.open();
    env.ingest_first(&h, 1);
    crate::util::backdate(&h, 6);
    for r in Role::ALL {
        env.person(&h, &format!("u_{}", r.key()), r);
    }
    let plan = hozon::retention::run::plan(&h, &hozon::auth::Actor::operator("t"), hozon::jp::today()).unwrap();
    assert!(!plan.items.is_empty(), "the backdated page is due");
    drop(h);
    let run_in = |group: &str, args: &[&str], user: &str| {
        std::process::Command::new(crate::util::hozon_bin())
            .arg("--data")
            .arg(env.data())
            .args([group])
            .args(args)
            .args(["--user", user])
            .env("HOZON_PASSWORD", crate::util::OWN_PASSWORD)
            .output()
            .unwrap()
    };
    let run_as = |args: &[&str], user: &str| run_in("dispose", args, user);
    // Input data: the pool is seen with input_data=view; a run needs input_data=update and a
    // recent second factor (a reviewer who has not enrolled one is refused too).
    for r in Role::ALL {
        let user = format!("u_{}", r.key());
        let out = run_in("export", &["preview"], &user);
        let err = String::from_utf8_lossy(&out.stderr);
        let may_view = r.preset().allows(hozon::auth::Function::InputData, hozon::auth::Level::View);
        assert_eq!(out.status.success(), may_view, "export preview as {r:?}: {err}");
        if !may_view {
            assert!(err.contains("input_data=view"), "{r:?}: {err}");
        }
        let out = run_in("export", &["create"], &user);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "export create as {r:?} without a second factor");
        if !r.preset().allows(hozon::auth::Function::InputData, hozon::auth::Level::Update) {
            assert!(err.contains("input_data=update"), "{r:?}: {err}");
        }
    }
    // Each step that changes the run, tried by every role that lacks retention=update first:
    // all refused, naming the missing right, and the run unchanged for the one who has it.
    let steps: [Vec<&str>; 3] = [
        vec!["exclude", &plan.id, "no-such-record", "--reason", "x"],
        vec!["decide", &plan.id, "case:none", "destroy", "--reason", "x"],
        vec!["submit", &plan.id],
    ];
    for step in &steps {
        for r in Role::ALL.into_iter().filter(|r| *r != Role::RecordsOfficer) {
            let out = run_as(step, &format!("u_{}", r.key()));
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(!out.status.success() && err.contains("retention=update"), "{step:?} as {r:?}: {err}");
        }
    }
    let out = run_as(&["submit", &plan.id], "u_records_officer");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // Approval: every other role refused, and the preparer may not approve their own run.
    for r in Role::ALL {
        let out = run_as(&["approve", &plan.id], &format!("u_{}", r.key()));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "approve as {r:?} must fail: {err}");
    }
}
