use std::process::ExitCode;

use super::Cli;

#[derive(clap::Args)]
pub struct Args {
    /// Succeed quietly when the data directory already exists
    #[arg(long)]
    if_missing: bool,
}

pub fn run(cli: &Cli, args: &Args) -> anyhow::Result<ExitCode> {
    if args.if_missing && cli.data.join("meta").exists() {
        println!("データディレクトリは作成済みです: {}", cli.data.display());
        return Ok(ExitCode::SUCCESS);
    }
    let key_file = cli.key_file();
    let (_hozon, password) = crate::Hozon::init(&cli.data, &key_file)?;
    println!("データディレクトリを作成しました: {}", cli.data.display());
    println!("マスター鍵ファイル (mode 0600): {}", key_file.display());
    println!("鍵ストア（世代鍵・索引鍵）: {}", crate::store::keystore_path(&key_file).display());
    if key_file.starts_with(&cli.data) {
        println!(
            "注意: 鍵ファイルと鍵ストアがデータディレクトリ内にあります。本番ではデータのバックアップに含めないよう、別の場所（--key-file / HOZON_KEY_FILE）に置いてください。含めると廃棄した記録がバックアップから復元できてしまいます。"
        );
    }
    println!("初回管理者ログイン: ユーザーID admin / パスワード {password}");
    println!("(this password is shown once; `hozon user reset-password admin` sets a new one)");
    Ok(ExitCode::SUCCESS)
}
