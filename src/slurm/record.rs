//! What was submitted: `OUTPUT/.slurm/submitted.json`, one per pipeline and one per recipe,
//! so that `slurm status` and a resubmission know the task counts, partitions and jobs.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::settings::Resources;
use crate::doc::write_atomic;

/// File name of a record inside its `.slurm` folder.
pub const RECORD_FILE: &str = "submitted.json";

/// One submitted (or, on a dry run, planned) array job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobRecord {
    /// Step name (`segment-0`, `reduce-1`, `finish`, `tokenizer`, `pack-parts`, ...).
    pub step: String,
    /// Slurm job name; the logs are `LOG_DIR/NAME-JOB_TASK.out`.
    pub name: String,
    /// Slurm job id (empty on a dry run).
    pub job_id: String,
    /// Array indices submitted.
    pub array: Vec<usize>,
    /// World size the indices are ranks of.
    pub world: usize,
    /// The sbatch script.
    pub script: PathBuf,
    /// Folder of the logs.
    pub log_dir: PathBuf,
}

impl JobRecord {
    /// The log file of array task `task`.
    pub fn log_file(&self, task: usize) -> PathBuf {
        self.log_dir
            .join(format!("{}-{}_{task}.out", self.name, self.job_id))
    }
}

/// The record of one pipeline's submissions (`datamill slurm submit PIPELINE.toml`, or a
/// source of a recipe).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PipelineRecord {
    /// The pipeline file.
    pub pipeline: PathBuf,
    /// Its output folder.
    pub output: PathBuf,
    /// `--input` given instead of the pipeline's `[input] paths` (empty: the pipeline's).
    pub inputs: Vec<String>,
    /// Array tasks of the segment steps.
    pub tasks: usize,
    /// Hash partitions of the dedup steps.
    pub dedup_partitions: usize,
    /// Partition, CPUs, memory and time limit asked for.
    pub resources: Resources,
    /// Every job submitted, oldest first.
    pub jobs: Vec<JobRecord>,
}

/// One source of a recipe submission.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SourceRecord {
    /// Source name.
    pub name: String,
    /// Its pipeline file.
    pub pipeline: PathBuf,
    /// The folder holding its scripts and its [`PipelineRecord`].
    pub slurm_dir: PathBuf,
}

/// The record of a recipe's submissions (`datamill slurm submit RECIPE.toml`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecipeRecord {
    /// The recipe file.
    pub recipe: PathBuf,
    /// Its output folder.
    pub output: PathBuf,
    /// Sources submitted.
    pub sources: Vec<SourceRecord>,
    /// Sources skipped, with the reason.
    pub skipped: Vec<(String, String)>,
    /// Tasks of the tokenising packing array.
    pub pack_tasks: usize,
    /// Tasks of the shard-writing packing array.
    pub shard_tasks: usize,
    /// Jobs after the source pipelines (tokenizer, packing, report), oldest first.
    pub jobs: Vec<JobRecord>,
}

/// The latest job of `step` that ran task `task`, if any.
pub fn latest_job<'a>(jobs: &'a [JobRecord], step: &str, task: usize) -> Option<&'a JobRecord> {
    jobs.iter()
        .rev()
        .find(|j| j.step == step && j.array.contains(&task))
}

/// Reads the record at `path`; `None` when there is none.
pub fn load_record<T: DeserializeOwned>(path: &Path) -> Result<Option<T>> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .with_context(|| format!("{} is not a submission record", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}

/// Writes `record` to `path` (atomically).
pub fn save_record<T: Serialize>(path: &Path, record: &T) -> Result<()> {
    write_atomic(path, &serde_json::to_vec_pretty(record)?)
}
