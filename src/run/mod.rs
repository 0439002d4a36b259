//! The pipeline runner: config to stages, rank/world sharding, resume, progress.

pub mod catalogue;
pub mod config;
pub mod input_names;
pub mod params;
pub mod pipeline_keys;
pub mod prefix;
pub mod progress;
pub mod quarantine;
pub mod registry;
pub mod runner;
pub mod slurm;

pub use config::PipelineConfig;
pub use runner::{run_config, run_pipeline, RunOptions, RunSummary};
