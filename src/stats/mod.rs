//! Counters per stage and per shard, their merge across shards, and the per-stage table.

pub mod profile;

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

/// File name of the Hugging Face features a run writes beside its shards.
pub const FEATURES_FILE: &str = "features.json";

/// Documents and bytes in and out of one stage, and drops by reason.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StageStats {
    /// Stage type name (`read` for the input reader).
    pub name: String,
    /// Documents that entered the stage.
    pub docs_in: u64,
    /// Documents the stage kept.
    pub docs_out: u64,
    /// Text bytes that entered the stage (for `read`: bytes of the input file).
    pub bytes_in: u64,
    /// Text bytes of the kept documents after the stage.
    pub bytes_out: u64,
    /// Dropped documents by reason.
    pub drops: BTreeMap<String, u64>,
    /// Wall time spent inside the stage, in seconds (summed over threads).
    pub seconds: f64,
}

impl StageStats {
    /// Empty counters for a stage.
    pub fn new(name: &str) -> Self {
        StageStats {
            name: name.to_string(),
            ..Default::default()
        }
    }

    /// Counts one drop.
    pub fn add_drop(&mut self, reason: &str) {
        *self.drops.entry(reason.to_string()).or_default() += 1;
    }

    /// Adds another shard's counters of the same stage.
    pub fn merge(&mut self, other: &StageStats) {
        self.docs_in += other.docs_in;
        self.docs_out += other.docs_out;
        self.bytes_in += other.bytes_in;
        self.bytes_out += other.bytes_out;
        self.seconds += other.seconds;
        for (k, v) in &other.drops {
            *self.drops.entry(k.clone()).or_default() += v;
        }
    }
}

/// The stats JSON written beside each output shard.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ShardStats {
    /// Pipeline name.
    pub pipeline: String,
    /// Corpus source (`commoncrawl`, ...).
    pub source: String,
    /// Input file the shard came from.
    pub input: String,
    /// One entry per stage, `read` first.
    pub stages: Vec<StageStats>,
    /// True when the reader gave no document at all for this input (a silent zero must show).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub no_documents: bool,
    /// Histograms, language mix, sampled drops and metadata types of the shard.
    #[serde(default)]
    pub profile: profile::Profile,
}

/// Stats merged over many shards: stages matched by position and name.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MergedStats {
    /// Pipeline names seen.
    pub pipelines: Vec<String>,
    /// Sources seen.
    pub sources: Vec<String>,
    /// Number of shard stats merged.
    pub shards: u64,
    /// Per stage totals.
    pub stages: Vec<StageStats>,
    /// Inputs from which the reader gave no document at all.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub empty_inputs: Vec<String>,
    /// The shards' profiles merged.
    #[serde(default)]
    pub profile: profile::Profile,
}

impl MergedStats {
    /// Adds one shard's stats.
    pub fn add(&mut self, shard: &ShardStats) {
        self.shards += 1;
        if shard.no_documents {
            self.empty_inputs.push(shard.input.clone());
        }
        self.profile.merge(&shard.profile);
        if !self.pipelines.contains(&shard.pipeline) {
            self.pipelines.push(shard.pipeline.clone());
        }
        if !self.sources.contains(&shard.source) {
            self.sources.push(shard.source.clone());
        }
        for (i, s) in shard.stages.iter().enumerate() {
            match self.stages.get_mut(i) {
                Some(m) if m.name == s.name => m.merge(s),
                _ => match self.stages.iter_mut().find(|m| m.name == s.name) {
                    Some(m) => m.merge(s),
                    None => self.stages.push(s.clone()),
                },
            }
        }
    }

    /// Reads and merges every `*.stats.json` directly inside `dir`.
    pub fn from_dir(dir: &Path) -> Result<MergedStats> {
        let mut merged = MergedStats::default();
        let mut files: Vec<_> = std::fs::read_dir(dir)
            .with_context(|| format!("cannot list {}", dir.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.to_string_lossy().ends_with(".stats.json"))
            .collect();
        files.sort();
        for f in files {
            let bytes =
                std::fs::read(&f).with_context(|| format!("cannot read {}", f.display()))?;
            let s: ShardStats = serde_json::from_slice(&bytes)
                .with_context(|| format!("{} is not a shard stats file", f.display()))?;
            merged.add(&s);
        }
        Ok(merged)
    }

    /// Writes `dir/features.json`: the Hugging Face `datasets.Features` of the documents in
    /// `dir`'s shards (every metadata key with one type), for `load_dataset("json", ...)`.
    /// Ranks of a distributed run may write it at the same time: each writes its own
    /// temporary file, and the last rename wins.
    pub fn write_features(&self, dir: &Path) -> Result<()> {
        let json = serde_json::to_vec_pretty(&self.profile.features())?;
        let path = dir.join(FEATURES_FILE);
        let tmp = dir.join(format!(".{FEATURES_FILE}.{}.tmp", std::process::id()));
        std::fs::write(&tmp, &json).with_context(|| format!("cannot write {}", tmp.display()))?;
        std::fs::rename(&tmp, &path)
            .with_context(|| format!("cannot rename {} to {}", tmp.display(), path.display()))
    }

    /// The per-stage table: documents and bytes in and out, and drops by reason.
    pub fn table(&self) -> String {
        let mut out = String::new();
        out.push_str(&format!(
            "{:<20} {:>10} {:>10} {:>12} {:>12} {:>8}  drops by reason\n",
            "stage", "docs in", "docs out", "MB in", "MB out", "secs"
        ));
        for s in &self.stages {
            let drops = s
                .drops
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(" ");
            out.push_str(&format!(
                "{:<20} {:>10} {:>10} {:>12.3} {:>12.3} {:>8.2}  {}\n",
                s.name,
                s.docs_in,
                s.docs_out,
                s.bytes_in as f64 / 1e6,
                s.bytes_out as f64 / 1e6,
                s.seconds,
                drops
            ));
        }
        if !self.empty_inputs.is_empty() {
            out.push_str(&format!(
                "{} input(s) gave no document: {}\n",
                self.empty_inputs.len(),
                self.empty_inputs.join(", ")
            ));
        }
        out
    }
}

/// Peak resident set size of this process in bytes (Linux `VmHWM`), if known.
pub fn peak_rss_bytes() -> Option<u64> {
    proc_status_bytes("VmHWM:")
}

/// Resident memory of this process now in bytes (Linux `VmRSS`), if known.
pub fn resident_bytes() -> Option<u64> {
    proc_status_bytes("VmRSS:")
}

/// Hands memory freed by this process back to the system: glibc keeps freed chunks in its
/// arenas (one per thread that allocated), where later allocations of other threads would not
/// reuse them, so they would stay resident. Called between the steps of a command whose peak
/// memory must stay near a budget.
pub fn return_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        extern "C" {
            fn malloc_trim(pad: usize) -> std::ffi::c_int;
        }
        // SAFETY: malloc_trim only returns free heap pages to the kernel; it takes no
        // pointer and may be called from any thread at any time.
        unsafe {
            malloc_trim(0);
        }
    }
}

/// A size in kB from `/proc/self/status`, in bytes.
fn proc_status_bytes(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_adds_counts_by_stage_and_reason() {
        let mut a = StageStats::new("langid");
        a.docs_in = 3;
        a.docs_out = 2;
        a.add_drop("lang_not_kept");
        let shard = ShardStats {
            stages: vec![a.clone()],
            ..Default::default()
        };
        let mut m = MergedStats::default();
        m.add(&shard);
        m.add(&shard);
        assert_eq!(m.stages[0].docs_in, 6);
        assert_eq!(m.stages[0].drops["lang_not_kept"], 2);
        assert!(m.table().contains("lang_not_kept=2"));
    }
}
