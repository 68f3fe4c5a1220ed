use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Subcommand;

use crate::forms::template::Template;
use crate::ocr::ppocr::{PpOcr, default_model};

#[derive(Subcommand)]
pub enum FormCommand {
    /// Propose a template from a scan of a blank form: table rules → cells → labels read by
    /// OCR → field names, types and checks guessed; fields it cannot name are marked 要確認
    New {
        /// A scan of the blank form
        blank: PathBuf,
        /// The form key (lower-case letters, digits and _), also its record class
        #[arg(long)]
        form: String,
        /// Where to write the template (default: print it)
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Lay a template over a scan: print where its table was found, the title read, every
    /// field as read; draw its zones over the scan into a PNG (fields red, tick boxes purple,
    /// table blue, title green when its keywords were read, orange when not)
    Check {
        /// The template file (any path: a draft of a new template need not be installed yet)
        template: PathBuf,
        /// A scan of a filled (or blank) form
        scan: PathBuf,
        /// Where to write the picture (default: SCAN's name with `.zones.png`)
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

fn decode(scan: &std::path::Path) -> anyhow::Result<crate::capture::DecodedPage> {
    let bytes = std::fs::read(scan).with_context(|| format!("reading {}", scan.display()))?;
    crate::capture::decode_page(&bytes).map_err(|e| anyhow::anyhow!("{}: {e}", scan.display()))
}

fn new(blank: &std::path::Path, form: &str, out: Option<&std::path::Path>) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(crate::forms::doctypes::valid_key(form), "--form {form:?}: lower-case letters, digits and _ only");
    let page = decode(blank)?;
    let mut ocr = PpOcr::load(&default_model())?;
    let p = crate::forms::propose::propose(&page.gray, page.dpi, form, &mut ocr)
        .with_context(|| format!("{}: no template could be proposed", blank.display()))?;
    match out {
        Some(path) => {
            std::fs::write(path, &p.text).with_context(|| format!("writing {}", path.display()))?;
            outln!("{}: {} 項目（うち要確認 {}）", path.display(), p.fields, p.unnamed);
        }
        None => outln!("{}", p.text.trim_end()),
    }
    Ok(ExitCode::SUCCESS)
}

pub fn run(c: &FormCommand) -> anyhow::Result<ExitCode> {
    let (template, scan, out) = match c {
        FormCommand::New { blank, form, out } => return new(blank, form, out.as_deref()),
        FormCommand::Check { template, scan, out } => (template, scan, out),
    };
    let text = std::fs::read_to_string(template).with_context(|| format!("reading {}", template.display()))?;
    let t = Template::parse(template, &text)?;
    let page = decode(scan)?;
    let mut ocr = PpOcr::load(&default_model())?;
    let fit = crate::forms::fit(&page.gray, page.dpi, &t, &mut ocr)?;
    outln!(
        "{}: 向き {}°, 倍率 {:.3}（{}）",
        scan.display(),
        u32::from(fit.frame.turns) * 90,
        fit.frame.scale,
        page.dpi.map_or_else(|| "解像度の記載なし".to_owned(), |d| format!("{d:.0} dpi"))
    );
    let found = match &fit.map {
        Ok(m) => {
            outln!("表の罫線: 見つかりました（倍率 {:.3} × {:.3}、ずれ {:.0}, {:.0} px）", m.sx, m.sy, m.tx, m.ty);
            let verdict =
                if fit.keywords_match { "一致" } else { "不一致（この様式として判別されません）" };
            outln!("表題: 「{}」 キーワード {:?} と{verdict}", fit.title, t.classify.keywords);
            true
        }
        Err(e) => {
            outln!("表の罫線: 見つかりません: {e}（template の table を確認してください）");
            false
        }
    };
    if let Some(r) = &fit.reading {
        let mut draft = crate::drafts::from_reading(r, &t);
        // Printed on a terminal: a My Number only masked.
        draft.mask_my_numbers();
        super::draft::print_fields(&draft, |f| &f.name);
    }
    let font = std::fs::read(crate::synth::render::GOTHIC).ok().and_then(|b| ab_glyph::FontVec::try_from_vec(b).ok());
    let picture = crate::forms::check::overlay(&fit, &t, font.as_ref());
    let out = out.clone().unwrap_or_else(|| scan.with_extension("zones.png"));
    picture.save(&out).with_context(|| format!("writing {}", out.display()))?;
    outln!("ゾーンの図: {}", out.display());
    Ok(if found && fit.keywords_match { ExitCode::SUCCESS } else { ExitCode::from(1) })
}
