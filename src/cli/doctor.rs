//! `hozon doctor`: what is wrong with this installation, in Japanese, with the fix.

use std::process::ExitCode;

use super::Cli;

pub fn run(cli: &Cli) -> anyhow::Result<ExitCode> {
    let mut checks = crate::doctor::installation(&cli.data, &cli.key_file());
    match cli.open() {
        Ok(h) => checks.extend(crate::doctor::store(&h)),
        Err(e) if super::in_use(&e) => return Err(e),
        Err(e) => checks.push(crate::doctor::Check {
            what: "データディレクトリ".into(),
            ok: false,
            detail: format!("{e:#}"),
            fix: "`hozon init` で作成するか、--data で正しいディレクトリを指定してください".into(),
        }),
    }
    for c in &checks {
        if c.ok {
            outln!("[OK] {}: {}", c.what, c.detail);
        } else {
            outln!("[NG] {}: {}", c.what, c.detail);
            outln!("     → {}", c.fix);
        }
    }
    let problems = checks.iter().filter(|c| !c.ok).count();
    outln!("{}", serde_json::json!({ "ok": problems == 0, "problems": problems, "checks": checks.len() }));
    Ok(if problems == 0 { ExitCode::SUCCESS } else { ExitCode::from(1) })
}
