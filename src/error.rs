//! The crate error: one variant per subsystem, so callers can tell a missing record from a
//! broken disk. Messages name the thing that failed and never carry personal data.

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Store(#[from] crate::store::Error),
    #[error(transparent)]
    Index(#[from] crate::index::Error),
    #[error(transparent)]
    Ocr(#[from] crate::ocr::Error),
    #[error(transparent)]
    Recognizer(#[from] crate::ocr::ppocr::Error),
    #[error(transparent)]
    Forms(#[from] crate::forms::Error),
    #[error(transparent)]
    Templates(#[from] crate::forms::template::Error),
    #[error(transparent)]
    Auth(#[from] crate::auth::Error),
    #[error(transparent)]
    Config(#[from] crate::config::Error),
    #[error(transparent)]
    Policy(#[from] crate::retention::policy::Error),
    #[error(transparent)]
    Run(#[from] crate::retention::run::RunError),
    #[error(transparent)]
    Batch(#[from] crate::capture::batch::Invalid),
    #[error(transparent)]
    Cases(#[from] crate::cases::import::FileError),
    #[error(transparent)]
    Review(#[from] crate::drafts::review::ReviewError),
    #[error(transparent)]
    Export(#[from] crate::export::ExportError),
    #[error("record {0} not found")]
    NotFound(String),
    /// A request that cannot be carried out as asked; the message (Japanese, for staff) says
    /// what is wrong with which value.
    #[error("{0}")]
    Invalid(String),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    #[error("{path}")]
    Io {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl From<crate::csvout::Error> for Error {
    fn from(e: crate::csvout::Error) -> Self {
        match e {
            // The office chose CP932 and the data holds a character it lacks: say which.
            crate::csvout::Error::Unmappable { .. } => Error::Invalid(e.to_string()),
            crate::csvout::Error::Write(m) => Error::Corrupt(format!("csv: {m}")),
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The error and its causes on one line (`a: b: c`), for logs and reports.
pub fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        out.push_str(": ");
        out.push_str(&c.to_string());
        cur = c.source();
    }
    out
}
