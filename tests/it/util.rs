//! Shared fixtures: one synthetic set generated per test run (seed 1), copied per test, and a
//! `TestEnv` holding a fresh data directory.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use hozon::Hozon;
use hozon::capture::ingest::{IngestOptions, IngestReport, ingest_dir};

pub const SEED: u64 = 1;
pub const SUBMISSIONS: usize = 5;

pub struct Synth {
    _dir: tempfile::TempDir,
    pub path: PathBuf,
    pub truth: Vec<serde_json::Value>,
}

/// Synthetic scans made once for the whole test binary.
pub fn synth() -> &'static Synth {
    static SYNTH: OnceLock<Synth> = OnceLock::new();
    SYNTH.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("scans");
        let opts = hozon::synth::SynthOptions {
            out: path.clone(),
            count: SUBMISSIONS,
            seed: SEED,
            max_skew_deg: 2.0,
        };
        hozon::synth::generate(&opts, &indicatif::ProgressBar::hidden()).unwrap();
        let truth = std::fs::read_to_string(path.join("truth.jsonl"))
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        Synth {
            _dir: dir,
            path,
            truth,
        }
    })
}

pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}

pub struct TestEnv {
    pub tmp: tempfile::TempDir,
    pub admin_password: String,
}

impl TestEnv {
    pub fn new() -> TestEnv {
        let tmp = tempfile::tempdir().unwrap();
        let (_h, admin_password) = Hozon::init(
            &tmp.path().join("data"),
            &tmp.path().join("data/master.key"),
        )
        .unwrap();
        TestEnv {
            tmp,
            admin_password,
        }
    }

    pub fn data(&self) -> PathBuf {
        self.tmp.path().join("data")
    }

    pub fn key_file(&self) -> PathBuf {
        self.data().join("master.key")
    }

    pub fn open(&self) -> Hozon {
        Hozon::open(&self.data(), &self.key_file()).unwrap()
    }

    /// A private copy of the synthetic scans (ingest removes what it stores).
    pub fn inbox(&self) -> PathBuf {
        let inbox = self.tmp.path().join("inbox");
        copy_dir(&synth().path, &inbox);
        inbox
    }

    pub fn ingest(&self, h: &Hozon, dir: &Path) -> IngestReport {
        ingest_dir(
            h,
            dir,
            &IngestOptions {
                jobs: 2,
                keep_files: false,
                progress: false,
            },
        )
        .unwrap()
    }
}

pub fn hozon_bin() -> &'static str {
    env!("CARGO_BIN_EXE_hozon")
}
