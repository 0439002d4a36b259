//! The `[slurm]` table of a recipe: task counts per source and resources per phase.
//!
//! ```toml
//! [slurm]
//! max_tasks = 256            # cap on every array (flag --tasks)
//! dedup_partitions = 8       # hash partitions of every dedup step (flag --dedup-partitions)
//! [slurm.defaults]           # every phase: partition, cpus_per_task, mem, time
//! [slurm.pipeline]           # the source pipelines' jobs
//! [slurm.tokenizer]
//! [slurm.pack]               # both packing arrays; `tasks` = tasks of the tokenising array
//! [slurm.report]
//! [slurm.sources.commoncrawl]
//! tasks = 64                 # array tasks of this source (default: one per input, capped)
//! ```

use std::collections::BTreeMap;

use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};

/// `[slurm]` of a recipe.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct SlurmSettings {
    /// Largest array of any phase (overridden by `--tasks`).
    pub max_tasks: Option<usize>,
    /// Hash partitions of the dedup steps (overridden by `--dedup-partitions`).
    pub dedup_partitions: Option<usize>,
    /// Resources of every phase unless a phase table says otherwise.
    pub defaults: Resources,
    /// Resources of the source pipelines' jobs.
    pub pipeline: Resources,
    /// Resources of the tokenizer-training job.
    pub tokenizer: Resources,
    /// Resources of the two packing arrays; `tasks` sizes the tokenising array.
    pub pack: Resources,
    /// Resources of the plan-and-report job.
    pub report: Resources,
    /// Per source: its array size and resources (over `pipeline`).
    pub sources: BTreeMap<String, Resources>,
}

/// What one job asks Slurm for; unset fields fall back to the broader table.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Resources {
    /// Array tasks (only in `[slurm.pack]` and `[slurm.sources.NAME]`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tasks: Option<usize>,
    /// Slurm partition (queue).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub partition: Option<String>,
    /// CPUs per task, also the worker threads of the task.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpus_per_task: Option<usize>,
    /// Memory per task as sbatch takes it (`16G`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mem: Option<String>,
    /// Time limit per task as sbatch takes it (`04:00:00`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub time: Option<String>,
}

impl Resources {
    /// These resources with every unset field taken from `base`.
    pub fn over(&self, base: &Resources) -> Resources {
        Resources {
            tasks: self.tasks.or(base.tasks),
            partition: self.partition.clone().or_else(|| base.partition.clone()),
            cpus_per_task: self.cpus_per_task.or(base.cpus_per_task),
            mem: self.mem.clone().or_else(|| base.mem.clone()),
            time: self.time.clone().or_else(|| base.time.clone()),
        }
    }
}

/// A phase of a recipe on Slurm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// A source pipeline's steps.
    Pipeline,
    /// Tokenizer training.
    Tokenizer,
    /// Both packing arrays.
    Pack,
    /// Plan and report.
    Report,
}

impl SlurmSettings {
    /// Checks the table: counts positive, `tasks` only where an array is sized.
    pub fn check(&self) -> Result<()> {
        if self.max_tasks == Some(0) || self.dedup_partitions == Some(0) {
            bail!("[slurm]: max_tasks and dedup_partitions must be at least 1");
        }
        for (name, r) in [
            ("defaults", &self.defaults),
            ("pipeline", &self.pipeline),
            ("tokenizer", &self.tokenizer),
            ("report", &self.report),
        ] {
            if r.tasks.is_some() {
                bail!(
                    "[slurm.{name}]: `tasks` sizes an array and is only read in [slurm.pack] \
                     and [slurm.sources.NAME]"
                );
            }
        }
        let sized = self
            .sources
            .iter()
            .map(|(n, r)| (format!("sources.{n}"), r))
            .chain([("pack".to_string(), &self.pack)]);
        for (name, r) in sized {
            if r.tasks == Some(0) || r.cpus_per_task == Some(0) {
                bail!("[slurm.{name}]: tasks and cpus_per_task must be at least 1");
            }
        }
        Ok(())
    }

    /// Resources of `phase` (for `source` in the pipeline phase), with `flags` over all.
    pub fn resources(&self, phase: Phase, source: Option<&str>, flags: &Resources) -> Resources {
        let table = match phase {
            Phase::Pipeline => {
                let own = source
                    .and_then(|s| self.sources.get(s))
                    .cloned()
                    .unwrap_or_default();
                own.over(&self.pipeline)
            }
            Phase::Tokenizer => self.tokenizer.clone(),
            Phase::Pack => self.pack.clone(),
            Phase::Report => self.report.clone(),
        };
        let mut flags = flags.clone();
        flags.tasks = None;
        flags.over(&table.over(&self.defaults))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_source_table_overrides_the_phase_and_flags_override_both() {
        let s: SlurmSettings = toml::from_str(
            "max_tasks = 8\n[defaults]\npartition = \"cpu\"\nmem = \"4G\"\n\
             [pipeline]\nmem = \"8G\"\ntime = \"01:00:00\"\n\
             [sources.commoncrawl]\ntasks = 6\nmem = \"32G\"\n",
        )
        .expect("parse");
        s.check().expect("valid");
        let none = Resources::default();
        let cc = s.resources(Phase::Pipeline, Some("commoncrawl"), &none);
        assert_eq!(cc.tasks, Some(6));
        assert_eq!(cc.mem.as_deref(), Some("32G"));
        assert_eq!(cc.time.as_deref(), Some("01:00:00"));
        assert_eq!(cc.partition.as_deref(), Some("cpu"));
        let books = s.resources(Phase::Pipeline, Some("books"), &none);
        assert_eq!((books.tasks, books.mem.as_deref()), (None, Some("8G")));
        assert_eq!(
            s.resources(Phase::Report, None, &none).mem.as_deref(),
            Some("4G")
        );
        let flags = Resources {
            partition: Some("big".into()),
            ..Default::default()
        };
        let cc = s.resources(Phase::Pipeline, Some("commoncrawl"), &flags);
        assert_eq!((cc.partition.as_deref(), cc.tasks), (Some("big"), Some(6)));
    }

    #[test]
    fn tasks_where_no_array_is_sized_is_an_error() {
        let s: SlurmSettings = toml::from_str("[tokenizer]\ntasks = 3\n").expect("parse");
        let err = s.check().unwrap_err().to_string();
        assert!(err.contains("[slurm.tokenizer]"), "{err}");
        assert!(toml::from_str::<SlurmSettings>("[report]\ncpu = 3\n").is_err());
    }
}
