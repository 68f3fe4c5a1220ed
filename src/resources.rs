//! Where hozon's own files are (OCR models, form templates, retention policies): found when the
//! program runs, never through paths compiled in, so an installed or copied binary works
//! anywhere its resources are.
//!
//! The resource directory is the first of: `hozon --resources DIR`; `HOZON_HOME`;
//! `<binary's directory>/../share/hozon` (what `make install PREFIX=…` lays out); the nearest
//! directory above the binary holding `ocr-models/` and `retention-policies/` (a build tree,
//! `target/release/hozon`). One file or folder may still be pointed elsewhere on its own
//! (`HOZON_POLICIES`, `HOZON_FORMS`, `HOZON_TESSDATA`, `HOZON_PPOCR_MODEL`,
//! `HOZON_EXPORT_LAYOUT`).

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

static CHOSEN: OnceLock<PathBuf> = OnceLock::new();

/// Sets the resource directory for this process (`--resources`); the first call wins.
pub fn set_root(dir: &Path) {
    let _ = CHOSEN.set(dir.to_owned());
}

fn looks_like_resources(dir: &Path) -> bool {
    dir.join("ocr-models").is_dir() && dir.join("retention-policies").is_dir()
}

/// The places searched, in order (for `doctor` and error messages).
pub fn candidates() -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Some(c) = CHOSEN.get() {
        out.push(c.clone());
    }
    if let Some(h) = std::env::var_os("HOZON_HOME").filter(|h| !h.is_empty()) {
        out.push(PathBuf::from(h));
    }
    if let Some(exe_dir) =
        std::env::current_exe().ok().and_then(|e| e.canonicalize().ok()).and_then(|e| e.parent().map(Path::to_owned))
    {
        let installed = exe_dir.join("../share/hozon");
        out.push(installed.canonicalize().unwrap_or(installed));
        out.extend(exe_dir.ancestors().map(Path::to_owned));
    }
    out
}

/// The resource directory: the first candidate that holds `ocr-models/` and
/// `retention-policies/`. An explicit choice (`--resources`, `HOZON_HOME`) is used even when
/// it lacks them, so that the error names the directory the operator chose.
pub fn root() -> PathBuf {
    if let Some(c) = CHOSEN.get() {
        return c.clone();
    }
    if let Some(h) = std::env::var_os("HOZON_HOME").filter(|h| !h.is_empty()) {
        return PathBuf::from(h);
    }
    candidates()
        .into_iter()
        .find(|d| looks_like_resources(d))
        .unwrap_or_else(|| PathBuf::from("/usr/local/share/hozon"))
}

/// A resource path: `var` if set, else `relative` under [`root`].
pub fn path(var: &str, relative: &str) -> PathBuf {
    std::env::var_os(var).filter(|v| !v.is_empty()).map_or_else(|| root().join(relative), PathBuf::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_build_tree_is_found_from_the_test_binary() {
        // target/debug/deps/hozon-… → the checkout, which holds both folders.
        let r = root();
        assert!(looks_like_resources(&r), "{}", r.display());
        assert!(path("HOZON_NO_SUCH_VAR", "retention-policies").ends_with("retention-policies"));
    }
}
