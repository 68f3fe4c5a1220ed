//! `hozon doctor`: checks an installation and says, in Japanese, what is wrong and how to fix
//! it: resources and their checksums, fonts, the key file's mode, disk space, the last
//! backup's age, the audit chain.

use std::path::Path;

use serde::Serialize;
use sha2::{Digest, Sha256};

/// One finding.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub what: String,
    pub ok: bool,
    /// What was found (OK) or what is wrong.
    pub detail: String,
    /// How to fix it (empty when OK).
    pub fix: String,
}

fn ok(what: &str, detail: String) -> Check {
    Check { what: what.into(), ok: true, detail, fix: String::new() }
}

fn ng(what: &str, detail: String, fix: &str) -> Check {
    Check { what: what.into(), ok: false, detail, fix: fix.into() }
}

fn sha256_file(path: &Path) -> Option<String> {
    let mut f = std::fs::File::open(path).ok()?;
    let mut h = Sha256::new();
    std::io::copy(&mut f, &mut h).ok()?;
    Some(hex::encode(h.finalize()))
}

/// Every `sha256  name` line of `list` checked against the files beside it.
fn checksums(what: &str, list: &Path, dir: &Path, fix: &str) -> Vec<Check> {
    let Ok(text) = std::fs::read_to_string(list) else {
        return vec![ng(what, format!("{} がありません", list.display()), fix)];
    };
    text.lines()
        .filter_map(|l| l.split_once("  "))
        .map(|(sum, name)| {
            let path = dir.join(name.trim());
            match sha256_file(&path) {
                Some(s) if s == sum => ok(what, format!("{} (sha256 一致)", path.display())),
                Some(_) => ng(what, format!("{} の sha256 が一致しません", path.display()), fix),
                None => ng(what, format!("{} がありません", path.display()), fix),
            }
        })
        .collect()
}

/// Every record class a template or document type files pages as has a policy file: the
/// number of classes, or the first problem.
fn classes_covered(forms: &Path, policies: &Path) -> Result<usize, String> {
    let set = crate::retention::policy::PolicySet::load_dir(policies).map_err(|e| e.to_string())?;
    let templates = crate::forms::template::load_dir(forms).map_err(|e| e.to_string())?;
    let types = crate::forms::doctypes::load(forms).map_err(|e| e.to_string())?;
    let mut classes = std::collections::BTreeSet::new();
    for (class, by) in crate::forms::doctypes::named_classes(&templates, &types, forms) {
        set.require(class, &by).map_err(|e| e.to_string())?;
        classes.insert(class);
    }
    Ok(classes.len())
}

/// Checks that need no open store (resources, fonts, key file, disk).
pub fn installation(data: &Path, key_file: &Path) -> Vec<Check> {
    let mut out = Vec::new();
    let root = crate::resources::root();
    let setup = "scripts/setup.sh を実行するか、`hozon --resources DIR`（または HOZON_HOME）で資源ディレクトリを指定してください";
    let policies = crate::retention::policy::default_dir();
    out.push(match crate::retention::policy::PolicySet::load_dir(&policies) {
        Ok(p) => ok("保存期間ポリシー", format!("{}（{} 件）", policies.display(), p.all().count())),
        Err(e) => ng("保存期間ポリシー", e.to_string(), setup),
    });
    out.push(match crate::backup::policy::BackupPolicy::load(&policies) {
        Ok(p) => ok("バックアップの保存期間", format!("{} 年（最新 {} 件は常に保持）", p.years, p.keep_at_least)),
        Err(e) => ng("バックアップの保存期間", e.to_string(), "retention-policies/backup.toml を確認してください"),
    });
    let layout = crate::config::Config::load(data).map(|c| crate::export::layout::path_for(&c));
    out.push(match layout.as_ref().map(|p| (p, crate::export::layout::Layout::load(p))) {
        Ok((p, Ok(l))) => ok("取込レイアウト", format!("{}（{}、{} 列）", p.display(), l.name, l.columns.len())),
        Ok((_, Err(e))) => ng("取込レイアウト", e.to_string(), "レイアウトファイルの指摘された箇所を直してください"),
        Err(e) => ng("取込レイアウト", e.to_string(), "DATA/config.toml を確認してください"),
    });
    let forms = crate::forms::template::default_dir();
    out.push(match crate::forms::template::load_dir(&forms) {
        Ok(t) => ok("様式テンプレート", format!("{}（{} 件）", forms.display(), t.len())),
        Err(e) => ng("様式テンプレート", e.to_string(), setup),
    });
    out.push(match classes_covered(&forms, &policies) {
        Ok(n) => ok("様式・書類の種類の保存期間", format!("{n} 分類すべてにポリシーがあります")),
        Err(e) => ng(
            "様式・書類の種類の保存期間",
            e,
            "retention-policies/ に分類のポリシーを追加するか、テンプレートの class で既存の分類を指定してください",
        ),
    });
    let tessdata = crate::ocr::default_tessdata();
    if tessdata.starts_with(&root) {
        out.extend(checksums("Tesseract モデル", &root.join("ocr-models/tessdata.sha256"), &tessdata, setup));
    } else {
        out.push(match tessdata.join("jpn.traineddata").exists() {
            true => ok("Tesseract モデル", format!("{}", tessdata.display())),
            false => ng("Tesseract モデル", format!("{} に jpn.traineddata がありません", tessdata.display()), setup),
        });
    }
    let model = crate::ocr::ppocr::default_model();
    out.extend(checksums(
        "PP-OCR モデル",
        &root.join("ocr-models/ppocr/model.sha256"),
        model.parent().unwrap_or(Path::new(".")),
        setup,
    ));
    let font = Path::new(crate::synth::render::GOTHIC);
    out.push(match font.exists() {
        true => ok("証明書のフォント", font.display().to_string()),
        false => ng(
            "証明書のフォント",
            format!("{} がありません", font.display()),
            "apt-get install fonts-ipaexfont-gothic を実行してください",
        ),
    });
    out.push(key_mode(key_file));
    let ks = crate::store::keystore_path(key_file);
    out.push(match ks.exists() {
        true => ok("鍵ストア", ks.display().to_string()),
        false => ng(
            "鍵ストア",
            format!("{} がありません", ks.display()),
            "鍵ファイルと同じ場所に鍵ストアを戻してください（`hozon key escrow` の預託から）",
        ),
    });
    if key_file.starts_with(data) {
        out.push(ng(
            "鍵ファイルの置き場所",
            format!("{} はデータディレクトリの中にあります", key_file.display()),
            "鍵ファイルはデータと別の場所（別ディスク・別権限）に置き、--key-file または HOZON_KEY_FILE で指定してください",
        ));
    }
    out.push(disk_space(data));
    out
}

fn key_mode(key_file: &Path) -> Check {
    use std::os::unix::fs::PermissionsExt;
    match std::fs::metadata(key_file) {
        Err(e) => {
            ng("鍵ファイル", format!("{}: {e}", key_file.display()), "正しい鍵ファイルを --key-file で指定してください")
        }
        Ok(m) if m.permissions().mode() & 0o077 != 0 => ng(
            "鍵ファイル",
            format!(
                "{} の権限が {:o} です（他の利用者が読めます）",
                key_file.display(),
                m.permissions().mode() & 0o777
            ),
            &format!("chmod 600 {}", key_file.display()),
        ),
        Ok(_) => ok("鍵ファイル", format!("{}（権限 600）", key_file.display())),
    }
}

fn disk_space(data: &Path) -> Check {
    let c = std::ffi::CString::new(data.as_os_str().as_encoded_bytes()).unwrap_or_default();
    let mut s: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c` is a valid NUL-terminated path and `s` a zeroed statvfs we own.
    if unsafe { libc::statvfs(c.as_ptr(), &mut s) } != 0 {
        return ng(
            "空き容量",
            format!("{} の空き容量を調べられません", data.display()),
            "データディレクトリを確認してください",
        );
    }
    let free = s.f_bavail as u64 * s.f_frsize as u64;
    let total = s.f_blocks as u64 * s.f_frsize as u64;
    let gib = |b: u64| b as f64 / (1u64 << 30) as f64;
    let detail = format!("{:.1} GiB 空き（全体 {:.1} GiB）", gib(free), gib(total));
    if free < 5 << 30 || (total > 0 && free * 10 < total) {
        ng("空き容量", detail, "ディスクを増やすか、不要なファイルを移してください（1日約 1 GB の取り込みに備えて）")
    } else {
        ok("空き容量", detail)
    }
}

/// Checks on the open store: the audit chain and the last backup's age.
pub fn store(h: &crate::Hozon) -> Vec<Check> {
    let mut out = Vec::new();
    let op = crate::auth::Actor::job("doctor");
    out.push(match h.audit_verify(&op, &[]) {
        Ok(Ok(n)) => ok("監査ログ", format!("{n} 件、改ざんなし")),
        Ok(Err(b)) => ng(
            "監査ログ",
            format!("改ざんを検出: {b}"),
            "情報セキュリティ責任者に連絡し、`hozon audit verify --checkpoints` で範囲を特定してください",
        ),
        Err(e) => ng("監査ログ", e.to_string(), "データディレクトリを確認してください"),
    });
    let cfg = &h.config.backup;
    if cfg.destination.is_empty() {
        out.push(ng(
            "バックアップ",
            "保存先が設定されていません".into(),
            "config.toml の [backup] destination と daily_at を設定してください",
        ));
        return out;
    }
    let last = crate::backup::Destination::open(&cfg.destination, cfg).and_then(|d| crate::backup::list(&d));
    out.push(match last {
        Err(e) => ng("バックアップ", e.to_string(), "保存先と認証情報を確認してください"),
        Ok(list) => match list.last() {
            None => {
                ng("バックアップ", "まだ一度も取得されていません".into(), "`hozon backup create` を実行してください")
            }
            Some(m) => {
                let age = chrono::Utc::now() - m.created_at;
                let detail = format!("最新 {}（{} 時間前）", m.id, age.num_hours());
                if age > chrono::Duration::hours(36) {
                    ng(
                        "バックアップ",
                        detail,
                        "定時バックアップ（[backup] daily_at）の失敗を監査ログ（backup.failed）で確認してください",
                    )
                } else {
                    ok("バックアップ", detail)
                }
            }
        },
    });
    out
}
