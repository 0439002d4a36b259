//! The one interface every processing step implements.
//!
//! A stage author writes one predicate, [`Stage::process`], that may rewrite the document and
//! returns [`Verdict::Keep`] or [`Verdict::Drop`] with a reason. The runner does the counting,
//! the timing and the routing of rejects; no stage counts or writes rejects itself.
//!
//! Stages that can only decide after seeing every document of their group (deduplication)
//! also return a [`Scanner`] from [`Stage::scanner`]: the runner feeds it every document of
//! every shard first, hands the finished scans back to [`Stage::absorb`] in shard order, and
//! only then calls `process`. That makes the result independent of thread timing.

use std::any::Any;
use std::borrow::Cow;
use std::path::Path;

use anyhow::Result;

use crate::doc::Document;

/// What a stage decided about a document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Pass the (possibly rewritten) document on.
    Keep,
    /// Remove it; the reason is the drop counter key (`gopher_short_doc`, `lang_not_kept`).
    Drop(Cow<'static, str>),
}

impl Verdict {
    /// A drop with a fixed reason.
    pub const fn drop(reason: &'static str) -> Verdict {
        Verdict::Drop(Cow::Borrowed(reason))
    }
}

/// Where a document sits in the run: its shard (index of the input file in the sorted input
/// list) and its position in that shard's stream as the stage sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DocPos {
    /// Index of the input file in the sorted list of all inputs of the run.
    pub shard: u32,
    /// Position of the document in the stream entering the stage.
    pub index: u64,
}

impl DocPos {
    /// Packs the position into one `u64` that orders like the position (shard first).
    /// Holds shards below 2^24 and 2^40 documents per shard.
    pub fn packed(self) -> u64 {
        ((self.shard as u64) << 40) | (self.index & ((1 << 40) - 1))
    }
}

/// One processing step: documents in, documents out.
pub trait Stage: Send + Sync {
    /// The stage's type name as written in the pipeline TOML (`langid`, `line_dedup`).
    fn name(&self) -> &str;

    /// Decides about one document, possibly rewriting its text or metadata.
    fn process(&self, doc: &mut Document, pos: DocPos) -> Verdict;

    /// For stages that must see the whole group first: a fresh per-shard scanner.
    fn scanner(&self) -> Option<Box<dyn Scanner>> {
        None
    }

    /// For group stages whose scan is a first-seen index (`dedup::FirstSeenMap`): the shards per
    /// dedup group (0 = whole run). Such stages can run across ranks (map, reduce, apply).
    fn dedup_group_size(&self) -> Option<u32> {
        None
    }

    /// For group stages that find clusters of near-duplicates (MinHash): the hooks that run
    /// them across ranks (map, reduce, cluster, apply).
    fn cluster_dedup(&self) -> Option<&dyn ClusterDedup> {
        None
    }

    /// The thresholds this stage compares a metadata score with, as (metric key, label, value):
    /// the report draws them on the metric's histogram (`language_score`, `perplexity`, ...).
    fn marks(&self) -> Vec<(&'static str, String, f64)> {
        Vec::new()
    }

    /// Receives every shard's finished scan, sorted by shard, before the first `process` call.
    fn absorb(&mut self, _scans: Vec<(u32, Box<dyn Any + Send>)>) -> Result<()> {
        Ok(())
    }
}

/// A near-duplicate group stage run across ranks over the files of a work folder `dir`:
/// map (per shard), reduce (per partition), cluster (once), apply (per shard, via `absorb`).
pub trait ClusterDedup: Send + Sync {
    /// Map: writes one shard's finished scan as its partitioned map file and signature files.
    fn write_map(
        &self,
        dir: &Path,
        shard: u32,
        scan: Box<dyn Any + Send>,
        partitions: usize,
    ) -> Result<()>;
    /// Reduce: verifies the candidate pairs of one partition and writes its edge file; returns
    /// the number of edges.
    fn reduce(
        &self,
        dir: &Path,
        shards: &[u32],
        partition: usize,
        partitions: usize,
    ) -> Result<u64>;
    /// Cluster: joins every partition's edges, chooses each cluster's kept document and writes
    /// one decision file per shard; returns the number of clusters.
    fn cluster(&self, dir: &Path, shards: &[u32], partitions: usize) -> Result<u64>;
    /// Apply: the scan of shard `shard` to hand to `absorb`, read from its decision file.
    fn load(&self, dir: &Path, shard: u32) -> Result<Box<dyn Any + Send>>;
}

/// Collects what a group stage needs from one shard (hashes, signatures) before filtering.
pub trait Scanner: Send {
    /// Sees one document, in stream order.
    fn observe(&mut self, doc: &Document, pos: DocPos);
    /// Returns what was collected; the stage's `absorb` downcasts it.
    fn finish(self: Box<Self>) -> Box<dyn Any + Send>;
}
