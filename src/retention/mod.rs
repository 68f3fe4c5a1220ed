//! retention/: "what may be destroyed, when, and who said so?" Policies and due dates
//! (`policy.rs`), disposal runs with the two-person rule (`run.rs`), paper boxes (`boxes.rs`)
//! and destruction certificates (`certificate.rs`).

pub mod boxes;
pub mod certificate;
pub mod policy;
pub mod run;
