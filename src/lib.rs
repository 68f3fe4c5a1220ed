//! hozon (保存): document capture and records retention for the Tokyo designated intractable
//! disease medical-expense subsidy.
//!
//! Data flows capture → ocr → store (sealed blobs) → index → search; see ARCHITECTURE.md for
//! the map and the invariants (only `store` writes personal data, and only as ciphertext).

pub mod app;
pub mod audit;
pub mod auth;
pub mod bench;
pub mod capture;
pub mod cases;
pub mod cli;
pub mod config;
pub mod crypto;
pub mod csvout;
pub mod drafts;
pub mod error;
pub mod forms;
pub mod index;
pub mod jp;
pub mod ocr;
pub mod permits;
pub mod retention;
pub mod store;
pub mod synth;
pub mod web;

pub use app::Hozon;
pub use error::{Error, Result};
