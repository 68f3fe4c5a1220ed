//! The one integration test binary: a module per stage, sharing `util`.

mod audit;
mod authz;
mod backup;
mod batch;
mod bench;
mod browser;
mod cases;
mod crash;
mod export;
mod fuzz;
mod ingest;
mod ops;
mod plaintext;
mod retention;
mod review;
mod search;
mod security;
mod sorting;
mod util;
mod web;
