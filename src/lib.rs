//! datamill builds a LLaMA-style pretraining corpus: it reads each source's real format,
//! cleans, deduplicates and filters the documents, and writes `*.jsonl.zst` shards with stats.
//!
//! The library is split by concern; `main.rs` only parses the command line and calls in here.

pub mod clean;
pub mod dedup;
pub mod doc;
pub mod download;
pub mod filter;
pub mod inputs;
pub mod lm;
pub mod mixture;
pub mod quality;
pub mod recipe;
pub mod report;
pub mod run;
pub mod shards;
pub mod slurm;
pub mod sources;
pub mod stage;
pub mod stats;
pub mod tokenizer;

pub use doc::Document;
pub use stage::{DocPos, Stage, Verdict};
