//! The one integration test binary: a module per stage, sharing `util`.

mod crash;
mod ingest;
mod plaintext;
mod util;
mod web;
