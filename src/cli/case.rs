//! `hozon case …`: the central case records (受給者台帳).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;

use super::Cli;

#[derive(Subcommand)]
pub enum CaseCommand {
    /// Import the subsidy system's CSV export (UTF-8 or Shift_JIS; headers mapped by
    /// DATA/case-import.toml or the built-in mapping). Bad rows are listed by line; the rest import
    Import { file: PathBuf },
    /// A bearer token for a system that pushes cases to POST /api/cases (printed once)
    ApiToken { client: String },
    /// Show a case by 受給者番号 (or --application 申請整理番号)
    Show {
        number: String,
        #[arg(long)]
        application: bool,
    },
}

pub fn run(cli: &Cli, c: &CaseCommand) -> anyhow::Result<ExitCode> {
    let h = cli.open()?;
    let actor = super::operator();
    match c {
        CaseCommand::Import { file } => {
            let bytes = std::fs::read(file).map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
            let name = file.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            let r = h.import_cases(&actor, &bytes, &name)?;
            for e in &r.errors {
                outln!("取込不可 {}: {e}", file.display());
            }
            outln!(
                "台帳取込: 新規 {} / 更新 {} / 変更なし {} / 取込不可 {}",
                r.created,
                r.updated,
                r.unchanged,
                r.errors.len()
            );
            Ok(if r.errors.is_empty() { ExitCode::SUCCESS } else { ExitCode::from(1) })
        }
        CaseCommand::ApiToken { client } => {
            outln!("{}", h.create_api_token(&actor, client)?);
            errln!("このトークンは再表示できません。{client} の設定に Authorization: Bearer として登録してください。");
            Ok(ExitCode::SUCCESS)
        }
        CaseCommand::Show { number, application } => {
            let case = if *application {
                h.case_by_application(&actor, number)?
            } else {
                h.case_by_recipient(&actor, number)?
            };
            let Some(c) = case else {
                outln!("該当する受給者はありません");
                return Ok(ExitCode::from(1));
            };
            let f = &c.current;
            outln!("受給者番号 {}  申請整理番号 {}  状態 {}", f.recipient_no, f.application_no, f.status.label_ja());
            outln!("{}（{}） 生年月日 {}  {}", f.name, f.kana, f.birth_date, f.address);
            let valid = |d: Option<chrono::NaiveDate>| d.map(|d| d.to_string()).unwrap_or_default();
            outln!("病名 {}  有効期間 {}〜{}", f.disease, valid(f.valid_from), valid(f.valid_to));
            outln!("更新 {}（{}）、履歴 {} 件", c.updated_at.format("%Y-%m-%d %H:%M"), c.source, c.history.len());
            Ok(ExitCode::SUCCESS)
        }
    }
}
