//! Runs a pipeline: builds the input list ([`crate::inputs`]: files, URLs, ranges of big
//! files), picks this rank's items, runs the stages over each item in parallel (one input item
//! gives one output shard), and makes every output atomic and resumable.
//!
//! A pipeline whose stages include group stages (deduplication) is cut into segments, each
//! starting at a group stage. Every segment but the last writes its shards to
//! `OUTPUT/.work/sK/`; before a group stage's segment runs, the stage scans all shards of the
//! previous segment, so its decisions never depend on thread timing.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::config::PipelineConfig;
use super::progress::Progress;
pub use super::quarantine::QuarantineRecord;
use super::quarantine::QuarantineWriter;
use super::registry::build_stage;
use crate::dedup::{partitioned, FirstSeenMap};
use crate::doc::{write_atomic, JsonlReader, RecordError, ShardFile, ShardWriter};
use crate::download::stream::{RemoteOptions, StreamReport, Validators};
pub use crate::inputs::expand_inputs;
use crate::inputs::open::{read_item, remote_options, RemoteFreshness};
use crate::inputs::{input_list, items_for_rank, ByteRange, InputItem, Location};
use crate::sources::{build_reader, Reader, Records};
use crate::stage::{DocPos, Stage};
use crate::stats::profile::Profile;
use crate::stats::{peak_rss_bytes, MergedStats, ShardStats, StageStats};

/// How to run: overrides of the pipeline file and the execution settings.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Replace `[input] paths` (and `path_list`).
    pub inputs: Vec<String>,
    /// Replace `[output] dir`.
    pub output: Option<PathBuf>,
    /// This process's rank among `world_size`.
    pub rank: usize,
    /// Number of ranks sharing the input files (1 = all files here).
    pub world_size: usize,
    /// Worker threads (0 = one per core).
    pub threads: usize,
    /// Redo shards that are already complete.
    pub force: bool,
    /// Show a progress bar (when stderr is a terminal) or periodic log lines.
    pub progress: bool,
    /// Which part of the pipeline to run (all of it, or one step of a distributed run).
    pub step: Step,
    /// Hash partitions of a distributed run's dedup map files.
    pub partitions: usize,
}

/// A part of a pipeline run; `All` runs everything in this process.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Step {
    /// Every segment, group stages scanning in memory (one rank).
    #[default]
    All,
    /// Segment K of this rank's files; then, if a dedup stage follows, its map files.
    Segment(usize),
    /// Reduce of the dedup stage starting segment K: partition `rank` of `world_size`.
    Reduce(usize),
    /// Cluster step of the near-duplicate stage starting segment K (one task): joins the
    /// reduce's edges of every partition and writes each shard's decisions.
    Cluster(usize),
    /// Last step of a distributed run (one task): once every shard of the last segment is
    /// complete, removes the intermediate `.work/` folder, as a one-process run does.
    Finish,
}

impl std::str::FromStr for Step {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> Result<Step> {
        let num = |rest: &str| {
            rest.parse::<usize>().with_context(|| {
                format!("bad step `{s}`: expected all, segment-K, reduce-K, cluster-K or finish")
            })
        };
        match s {
            "all" => Ok(Step::All),
            "finish" => Ok(Step::Finish),
            _ if s.starts_with("segment-") => Ok(Step::Segment(num(&s[8..])?)),
            _ if s.starts_with("reduce-") => Ok(Step::Reduce(num(&s[7..])?)),
            _ if s.starts_with("cluster-") => Ok(Step::Cluster(num(&s[8..])?)),
            _ => bail!("bad step `{s}`: expected all, segment-K, reduce-K, cluster-K or finish"),
        }
    }
}

/// What a run did.
#[derive(Debug, Clone, Default)]
pub struct RunSummary {
    /// Stats merged over this run's output shards (including skipped complete ones).
    pub stats: MergedStats,
    /// Shards processed now.
    pub shards_done: usize,
    /// Shards found complete and skipped.
    pub shards_skipped: usize,
    /// Shards that failed (I/O errors writing outputs, a URL that could not be read) and
    /// path-list lines refused, with the error.
    pub failures: Vec<String>,
    /// Input bytes of this rank's items (URLs: the bytes read now).
    pub input_bytes: u64,
    /// Wall time in seconds.
    pub seconds: f64,
    /// Peak resident memory in bytes.
    pub peak_rss: Option<u64>,
    /// Threads used.
    pub threads: usize,
    /// Output folder.
    pub output: PathBuf,
}

/// The manifest beside each output shard; its presence marks the shard complete.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// Input file path or URL as given.
    pub input: String,
    /// The part of the input the shard was made from (`None`: all of it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub range: Option<ByteRange>,
    /// A URL input's ETag, Last-Modified and size as its response gave them; a rerun makes
    /// the shard again when the remote file no longer matches.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote: Option<Validators>,
    /// The input's name in document ids (path relative to the input root); a shard whose ids
    /// were made under another name is redone.
    #[serde(default)]
    pub input_name: String,
    /// Input size in bytes (of the range, for a range; as read, for a URL).
    pub input_bytes: u64,
    /// Hash of the reader and stage configuration that produced the shard.
    pub config_hash: String,
    /// The output shard.
    pub output: ShardFile,
    /// The rejected-documents shards (one, or one per `split_rejected_by` value), with paths
    /// relative to the output folder.
    pub rejected: Vec<ShardFile>,
    /// Records set aside by the reader.
    pub quarantined: u64,
}

/// One input item of the run with its shard number.
#[derive(Debug, Clone)]
struct InputFile {
    index: u32,
    item: InputItem,
}

/// A run of consecutive stages; every segment but the first starts with a group stage.
struct Segment {
    index: usize,
    stages: std::ops::Range<usize>,
    last: bool,
    config_hash: String,
}

/// Rank and world size from the options, else from Slurm's array variables, else 0 of 1.
pub fn rank_and_world(rank: Option<usize>, world: Option<usize>) -> Result<(usize, usize)> {
    let env = |k: &str| std::env::var(k).ok().and_then(|v| v.parse::<usize>().ok());
    let world = world.or_else(|| env("SLURM_ARRAY_TASK_COUNT")).unwrap_or(1);
    let rank = rank
        .or_else(|| {
            let id = env("SLURM_ARRAY_TASK_ID")?;
            let min = env("SLURM_ARRAY_TASK_MIN").unwrap_or(0);
            Some(id - min.min(id))
        })
        .unwrap_or(0);
    if world == 0 || rank >= world {
        bail!("rank {rank} is not below world size {world}");
    }
    Ok((rank, world))
}

/// The file name of shard `index` (`00042.jsonl.zst`).
pub fn shard_name(index: u32) -> String {
    format!("{index:05}")
}

/// Runs the pipeline in `config_path` with `opts`.
pub fn run_pipeline(config_path: &Path, opts: &RunOptions) -> Result<RunSummary> {
    let mut config = PipelineConfig::load(config_path)?;
    if !opts.inputs.is_empty() {
        config.input.paths = opts.inputs.clone();
        config.input.path_list = None;
    }
    if let Some(out) = &opts.output {
        config.output.dir = out.clone();
    }
    run_config(&config, opts).with_context(|| format!("pipeline {}", config_path.display()))
}

/// Runs an already loaded pipeline.
pub fn run_config(config: &PipelineConfig, opts: &RunOptions) -> Result<RunSummary> {
    let started = Instant::now();
    let mut reader = build_reader(&config.input.reader, &config.input.options)?;
    let mut stages: Vec<Box<dyn Stage>> = config
        .stages
        .iter()
        .enumerate()
        .map(|(i, t)| build_stage(t).with_context(|| format!("stage #{}", i + 1)))
        .collect::<Result<_>>()?;
    let list = input_list(&config.input)?;
    for refused in &list.refused {
        tracing::error!("path list entry refused: {refused}");
    }
    let all = list.items;
    if all.is_empty() {
        bail!(
            "no input matches {:?}{}",
            config.input.paths,
            config
                .input
                .path_list
                .as_ref()
                .map(|l| format!(" or path list {l}"))
                .unwrap_or_default()
        );
    }
    let world = opts.world_size.max(1);
    let remote = remote_options(&config.input.remote, world)?;
    let freshness = RemoteFreshness::new(Some(remote.clone()));
    let files: Vec<InputFile> = items_for_rank(&all, opts.rank, world)
        .into_iter()
        .map(|(index, item)| InputFile {
            index,
            item: item.clone(),
        })
        .collect();
    let segments = plan_segments(config, &stages)?;
    let out_dir = config.output.dir.clone();
    std::fs::create_dir_all(&out_dir)
        .with_context(|| format!("cannot create output folder {}", out_dir.display()))?;
    // Each rank its own scratch folder (readers unlink their files there once opened); it is
    // removed when the rank's run ends, and `.work` with it once nothing else is in it.
    let scratch = out_dir
        .join(".work")
        .join("scratch")
        .join(format!("rank-{}", opts.rank));
    reader.use_scratch_dir(&scratch);

    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(opts.threads)
        .build()
        .context("cannot start worker threads")?;
    let threads = pool.current_num_threads();
    let input_bytes = files.iter().filter_map(|f| f.item.bytes).sum();
    let mut summary = RunSummary {
        input_bytes,
        threads,
        output: out_dir.clone(),
        failures: list
            .refused
            .iter()
            .map(|r| format!("path list entry refused: {r}"))
            .collect(),
        ..Default::default()
    };
    let refused = summary.failures.len();

    let steps = match opts.step {
        Step::All => segments.len(),
        Step::Segment(_) => 1,
        Step::Reduce(_) | Step::Cluster(_) | Step::Finish => 0,
    };
    let progress = Progress::start(opts.progress, files.len() * steps, 0);
    let ctx = RunContext {
        config,
        reader: reader.as_ref(),
        out_dir: &out_dir,
        progress: &progress,
        files: &files,
        opts,
        remote: &remote,
        freshness: &freshness,
    };
    match opts.step {
        Step::All => {
            if world > 1 && segments.len() > 1 {
                bail!(
                    "this pipeline has deduplication stages, which must see every rank's \
                     documents: run it step by step (`--step segment-K` / `--step reduce-K`) \
                     or with `datamill slurm submit`"
                );
            }
            let last = segments.last().context("pipeline has no segment")?;
            let todo = files
                .iter()
                .filter(|f| opts.force || !is_complete(&out_dir, last, f, &freshness))
                .count();
            summary.shards_skipped = files.len() - todo;
            if todo > 0 {
                for seg in &segments {
                    if seg.index > 0 {
                        let stage = &mut stages[seg.stages.start];
                        if stage.scanner().is_some() {
                            let scans =
                                pool.install(|| scan_segment_input(&ctx, seg, stage.as_ref()))?;
                            stage.absorb(scans)?;
                        }
                    }
                    pool.install(|| process_segment(&ctx, seg, &stages, &mut summary));
                    if summary.failures.len() > refused {
                        break;
                    }
                }
                summary.shards_done = todo.saturating_sub(summary.failures.len() - refused);
                if summary.failures.len() == refused && world == 1 && segments.len() > 1 {
                    let _ = std::fs::remove_dir_all(out_dir.join(".work"));
                }
            }
        }
        Step::Segment(k) => {
            let seg = segments.get(k).with_context(|| {
                format!(
                    "segment {k} does not exist: the pipeline has {}",
                    segments.len()
                )
            })?;
            if k > 0 {
                let stage = &mut stages[seg.stages.start];
                let scans = pool.install(|| load_partitioned_scans(&ctx, seg, stage.as_ref()))?;
                stage.absorb(scans)?;
            }
            let todo = files
                .iter()
                .filter(|f| opts.force || !is_complete(&out_dir, seg, f, &freshness))
                .count();
            pool.install(|| process_segment(&ctx, seg, &stages, &mut summary));
            if seg.last {
                summary.shards_skipped = files.len() - todo;
                summary.shards_done = todo.saturating_sub(summary.failures.len() - refused);
            } else if summary.failures.len() == refused {
                let next = &segments[k + 1];
                let stage = stages[next.stages.start].as_ref();
                pool.install(|| write_partitioned_scans(&ctx, next, stage))?;
            }
        }
        Step::Reduce(k) => {
            let seg = segments.get(k).filter(|s| s.index > 0).with_context(|| {
                format!("segment {k} does not start with a deduplication stage")
            })?;
            let stage = stages[seg.stages.start].as_ref();
            let shards: Vec<u32> = (0..all.len() as u32).collect();
            let dir = work_dir(&out_dir, k);
            if let Some(near) = stage.cluster_dedup() {
                let edges = near.reduce(&dir, &shards, opts.rank, world)?;
                tracing::info!(
                    "reduce {k}: partition {} of {world}: {edges} verified near-duplicate edges",
                    opts.rank
                );
            } else {
                let group = stage
                    .dedup_group_size()
                    .with_context(|| format!("stage `{}` cannot run across ranks", stage.name()))?;
                let dropped = partitioned::reduce(&dir, &shards, opts.rank, world, |s| {
                    s.checked_div(group).unwrap_or(0)
                })?;
                tracing::info!(
                    "reduce {k}: partition {} of {world}: {dropped} duplicate hashes",
                    opts.rank
                );
            }
        }
        Step::Cluster(k) => {
            let seg = segments.get(k).filter(|s| s.index > 0).with_context(|| {
                format!("segment {k} does not start with a deduplication stage")
            })?;
            let stage = stages[seg.stages.start].as_ref();
            let near = stage.cluster_dedup().with_context(|| {
                format!(
                    "stage `{}` has no cluster step (only near-duplicate dedup has)",
                    stage.name()
                )
            })?;
            let shards: Vec<u32> = (0..all.len() as u32).collect();
            let clusters = near.cluster(&work_dir(&out_dir, k), &shards, opts.partitions.max(1))?;
            tracing::info!("cluster {k}: {clusters} clusters of near-duplicates");
        }
        Step::Finish => {
            let last = segments.last().context("pipeline has no segment")?;
            let left = all
                .iter()
                .enumerate()
                .filter(|(i, item)| {
                    let f = InputFile {
                        index: *i as u32,
                        item: (*item).clone(),
                    };
                    !is_complete(&out_dir, last, &f, &freshness)
                })
                .count();
            if left > 0 {
                bail!(
                    "{left} of {} shards of the last segment are not complete: run the steps \
                     before `finish` first",
                    all.len()
                );
            }
            let work = out_dir.join(".work");
            if work.exists() {
                std::fs::remove_dir_all(&work)
                    .with_context(|| format!("cannot remove {}", work.display()))?;
            }
        }
    }
    let _ = std::fs::remove_dir_all(&scratch);
    for dir in [out_dir.join(".work").join("scratch"), out_dir.join(".work")] {
        let _ = std::fs::remove_dir(dir);
    }
    let wrote_shards = match opts.step {
        // Every rank of the last segment writes it from the shards there so far; the one-task
        // finish step writes it again once all are there.
        Step::All | Step::Finish => true,
        Step::Segment(k) => segments.get(k).is_some_and(|s| s.last),
        Step::Reduce(_) | Step::Cluster(_) => false,
    };
    if wrote_shards && summary.failures.is_empty() {
        MergedStats::from_dir(&out_dir)?.write_features(&out_dir)?;
    }
    finish_summary(summary, &files, &out_dir, &progress, started)
}

/// Ends the progress display and adds this rank's shard stats, time and memory to `summary`.
fn finish_summary(
    mut summary: RunSummary,
    files: &[InputFile],
    out_dir: &Path,
    progress: &Progress,
    started: Instant,
) -> Result<RunSummary> {
    progress.finish();
    for f in files {
        let path = out_dir.join(format!("{}.stats.json", shard_name(f.index)));
        if let Ok(bytes) = std::fs::read(&path) {
            let s: ShardStats = serde_json::from_slice(&bytes)
                .with_context(|| format!("{} is not a shard stats file", path.display()))?;
            summary.stats.add(&s);
        }
    }
    summary.seconds = started.elapsed().as_secs_f64();
    summary.peak_rss = peak_rss_bytes();
    Ok(summary)
}

/// How far a run has come, read from its manifests and dedup files (for `slurm status` and
/// for resubmitting only unfinished work).
#[derive(Debug, Clone)]
pub struct RunState {
    /// Every input item of the run, in shard order.
    pub inputs: Vec<InputItem>,
    /// One entry per segment.
    pub segments: Vec<SegmentState>,
}

/// Progress of one segment.
#[derive(Debug, Clone)]
pub struct SegmentState {
    /// Per input file: its shard of this segment is complete.
    pub complete: Vec<bool>,
    /// Whether this segment starts with a dedup stage (needs map and reduce steps first).
    pub dedup: bool,
    /// Per input file: its map file for this segment's dedup stage exists.
    pub mapped: Vec<bool>,
    /// Partition count recorded by the map step, if any.
    pub partitions: Option<usize>,
    /// Per partition: its reduce (drop or edge file) is done.
    pub reduced: Vec<bool>,
    /// For a near-duplicate stage: whether its cluster step has written every shard's
    /// decisions (`None` for other stages).
    pub clustered: Option<bool>,
}

/// Reads the state of the run of `config` from its output folder.
pub fn run_state(config: &PipelineConfig) -> Result<RunState> {
    let stages: Vec<Box<dyn Stage>> = config
        .stages
        .iter()
        .enumerate()
        .map(|(i, t)| build_stage(t).with_context(|| format!("stage #{}", i + 1)))
        .collect::<Result<_>>()?;
    let inputs = input_list(&config.input)?.items;
    let files: Vec<InputFile> = inputs
        .iter()
        .enumerate()
        .map(|(i, item)| InputFile {
            index: i as u32,
            item: item.clone(),
        })
        .collect();
    // Status only: URL inputs are not asked whether they changed.
    let fresh = RemoteFreshness::new(None);
    let out_dir = &config.output.dir;
    let mut segments = Vec::new();
    for seg in plan_segments(config, &stages)? {
        let dir = work_dir(out_dir, seg.index);
        let partitions = partitioned::recorded_partitions(&dir);
        let near = seg.index > 0 && stages[seg.stages.start].cluster_dedup().is_some();
        segments.push(SegmentState {
            complete: files
                .iter()
                .map(|f| is_complete(out_dir, &seg, f, &fresh))
                .collect(),
            dedup: seg.index > 0,
            mapped: files
                .iter()
                .map(|f| seg.index > 0 && partitioned::map_path(&dir, f.index).exists())
                .collect(),
            partitions,
            reduced: (0..partitions.unwrap_or(0))
                .map(|p| partitioned::reduced(&dir, p))
                .collect(),
            clustered: near.then(|| {
                files
                    .iter()
                    .all(|f| partitioned::cluster_path(&dir, f.index).exists())
            }),
        });
    }
    Ok(RunState { inputs, segments })
}

struct RunContext<'a> {
    config: &'a PipelineConfig,
    reader: &'a dyn Reader,
    out_dir: &'a Path,
    progress: &'a Progress,
    /// This rank's input files.
    files: &'a [InputFile],
    opts: &'a RunOptions,
    /// How URL inputs are fetched.
    remote: &'a RemoteOptions,
    /// Whether URL inputs changed since their shards were made.
    freshness: &'a RemoteFreshness,
}

/// Runs one segment's stages over this rank's files, skipping complete shards.
fn process_segment(
    ctx: &RunContext,
    seg: &Segment,
    stages: &[Box<dyn Stage>],
    summary: &mut RunSummary,
) {
    let stage_refs = &stages[seg.stages.clone()];
    let results: Vec<(&InputFile, Result<u64>)> = ctx
        .files
        .par_iter()
        .map(|f| {
            if !ctx.opts.force && is_complete(ctx.out_dir, seg, f, ctx.freshness) {
                return (f, Ok(0));
            }
            (f, process_shard(ctx, seg, stage_refs, f))
        })
        .collect();
    for (f, r) in results {
        match r {
            Ok(remote_bytes) => summary.input_bytes += remote_bytes,
            Err(e) => {
                let failure = format!(
                    "shard {} ({}, segment {}): {e:#}",
                    shard_name(f.index),
                    f.item.label(),
                    seg.index
                );
                tracing::error!("{failure}");
                summary.failures.push(failure);
            }
        }
    }
}

/// Map step: scans this rank's shards of the segment before `next` with the group stage that
/// starts `next`
/// and writes each shard's hashes, partitioned, for the reduce step.
fn write_partitioned_scans(ctx: &RunContext, next: &Segment, stage: &dyn Stage) -> Result<()> {
    let partitions = ctx.opts.partitions.max(1);
    let dir = work_dir(ctx.out_dir, next.index);
    if let Some(p) = partitioned::recorded_partitions(&dir) {
        if p != partitions {
            bail!(
                "partition count changed between phases: the map files in {} have {p} \
                 partitions, this step was given {partitions}",
                dir.display()
            );
        }
    }
    let scans = scan_segment_input(ctx, next, stage)?;
    if let Some(near) = stage.cluster_dedup() {
        return scans
            .into_par_iter()
            .try_for_each(|(shard, scan)| near.write_map(&dir, shard, scan, partitions));
    }
    scans.into_par_iter().try_for_each(|(shard, scan)| {
        let map = scan
            .downcast::<FirstSeenMap>()
            .ok()
            .with_context(|| format!("stage `{}` cannot run across ranks", stage.name()))?;
        partitioned::write_map(&partitioned::map_path(&dir, shard), &map, partitions)
    })
}

/// Apply step: each of this rank's shards' own first-seen hashes minus those the reduce step
/// found first in an earlier shard.
fn load_partitioned_scans(
    ctx: &RunContext,
    seg: &Segment,
    stage: &dyn Stage,
) -> Result<Vec<(u32, Box<dyn std::any::Any + Send>)>> {
    if stage.dedup_group_size().is_none() && stage.cluster_dedup().is_none() {
        bail!("stage `{}` cannot run across ranks", stage.name());
    }
    let dir = work_dir(ctx.out_dir, seg.index);
    let partitions = partitioned::recorded_partitions(&dir).with_context(|| {
        format!(
            "no map files in {}: run the previous step first",
            dir.join("map").display()
        )
    })?;
    if partitions != ctx.opts.partitions.max(1) {
        bail!(
            "partition count changed between phases: the map used {partitions}, this step was \
             given {}",
            ctx.opts.partitions
        );
    }
    if let Some(near) = stage.cluster_dedup() {
        return ctx
            .files
            .iter()
            .map(|f| Ok((f.index, near.load(&dir, f.index)?)))
            .collect();
    }
    let mut scans: Vec<(u32, Box<dyn std::any::Any + Send>)> = ctx
        .files
        .par_iter()
        .map(|f| {
            let mut map =
                partitioned::MapFile::read(&partitioned::map_path(&dir, f.index))?.to_map();
            let drops = partitioned::read_drops(&dir, f.index, partitions)?;
            map.retain(|h, _| !drops.contains(h));
            Ok((f.index, Box::new(map) as Box<dyn std::any::Any + Send>))
        })
        .collect::<Result<_>>()?;
    scans.sort_by_key(|(i, _)| *i);
    Ok(scans)
}

fn plan_segments(config: &PipelineConfig, stages: &[Box<dyn Stage>]) -> Result<Vec<Segment>> {
    let mut starts = vec![0usize];
    for (i, s) in stages.iter().enumerate() {
        if s.scanner().is_some() {
            starts.push(i);
        }
    }
    // A group stage first in the pipeline gives an empty segment 0 (read only), so that the
    // stage can scan what was read.
    let mut segments = Vec::new();
    for (k, &start) in starts.iter().enumerate() {
        let end = starts.get(k + 1).copied().unwrap_or(stages.len());
        let hashed = serde_json::json!({
            "reader": config.input.reader,
            "options": config.input.options,
            "stages": config.stages[..end],
            "keep_rejected": config.output.keep_rejected,
            "split_rejected_by": config.output.split_rejected_by,
        });
        let hash = xxhash_rust::xxh3::xxh3_64(hashed.to_string().as_bytes());
        segments.push(Segment {
            index: k,
            stages: start..end,
            last: k + 1 == starts.len(),
            config_hash: format!("{hash:016x}"),
        });
    }
    Ok(segments)
}

/// Folder of the intermediate shards of segment `index` (all segments but the last).
fn work_dir(out_dir: &Path, index: usize) -> PathBuf {
    out_dir.join(".work").join(format!("s{index}"))
}

/// Folder holding a segment's shards: the output folder for the last one.
fn segment_dir(out_dir: &Path, seg: &Segment) -> PathBuf {
    if seg.last {
        out_dir.to_path_buf()
    } else {
        work_dir(out_dir, seg.index)
    }
}

fn manifest_path(out_dir: &Path, seg: &Segment, index: u32) -> PathBuf {
    segment_dir(out_dir, seg).join(format!("{}.manifest.json", shard_name(index)))
}

fn is_complete(out_dir: &Path, seg: &Segment, f: &InputFile, fresh: &RemoteFreshness) -> bool {
    let Ok(bytes) = std::fs::read(manifest_path(out_dir, seg, f.index)) else {
        return false;
    };
    let Ok(m) = serde_json::from_slice::<Manifest>(&bytes) else {
        return false;
    };
    let out = segment_dir(out_dir, seg).join(&m.output.file);
    let same_local = m.input == f.item.location.as_string()
        && m.input_name == f.item.name
        && m.range == f.item.range
        && f.item.bytes.is_none_or(|b| b == m.input_bytes)
        && m.config_hash == seg.config_hash
        && std::fs::metadata(out).map(|md| md.len()).ok() == Some(m.output.bytes);
    // A URL is asked last, once everything local matches.
    same_local
        && match (&f.item.location, &m.remote) {
            (Location::Url(url), Some(v)) => fresh.unchanged(url, v),
            (Location::Url(_), None) => false,
            (Location::File(_), _) => true,
        }
}

/// The documents entering segment `seg` for file `f`: the reader for the first segment (with
/// the report of a URL input's stream), the previous segment's shard otherwise.
fn segment_input(
    ctx: &RunContext,
    seg: &Segment,
    f: &InputFile,
) -> Result<(Records, Option<std::sync::Arc<StreamReport>>)> {
    if seg.index == 0 {
        let opened = read_item(
            ctx.reader,
            &f.item,
            &ctx.config.source,
            ctx.remote,
            ctx.out_dir,
        )?;
        return Ok((opened.records, opened.remote));
    }
    let path =
        work_dir(ctx.out_dir, seg.index - 1).join(format!("{}.jsonl.zst", shard_name(f.index)));
    let reader = JsonlReader::open(&path)?;
    Ok((
        crate::sources::stop_after_fatal(reader.map(|(_, r)| r)),
        None,
    ))
}

fn scan_segment_input(
    ctx: &RunContext,
    seg: &Segment,
    stage: &dyn Stage,
) -> Result<Vec<(u32, Box<dyn std::any::Any + Send>)>> {
    let mut scans: Vec<(u32, Box<dyn std::any::Any + Send>)> = ctx
        .files
        .par_iter()
        .map(|f| {
            let mut scanner = stage.scanner().context("group stage lost its scanner")?;
            // Only later segments scan, from the shards of the one before: never a URL.
            let (records, _) = segment_input(ctx, seg, f)?;
            for (index, rec) in records.enumerate() {
                let doc = rec.map_err(|e| anyhow::anyhow!("{}: {e}", f.item.label()))?;
                let pos = DocPos {
                    shard: f.index,
                    index: index as u64,
                };
                scanner.observe(&doc, pos);
            }
            Ok((f.index, scanner.finish()))
        })
        .collect::<Result<_>>()
        .with_context(|| format!("scanning for stage `{}`", stage.name()))?;
    scans.sort_by_key(|(i, _)| *i);
    Ok(scans)
}

/// The writers of one shard's rejected documents: `rejected/NNNNN.sK.jsonl.zst`, or with
/// `split_rejected_by = "KEY"` one shard per value of `metadata.KEY`
/// (`rejected/<value>/NNNNN.sK.jsonl.zst`, `none` when absent), e.g. one per language.
struct RejectWriters<'a> {
    out_dir: &'a Path,
    file: String,
    split_by: Option<&'a str>,
    writers: BTreeMap<String, ShardWriter>,
}

impl<'a> RejectWriters<'a> {
    fn new(ctx: &'a RunContext, name: &str, segment: usize) -> Self {
        RejectWriters {
            out_dir: ctx.out_dir,
            file: format!("{name}.s{segment}.jsonl.zst"),
            split_by: ctx.config.output.split_rejected_by.as_deref(),
            writers: BTreeMap::new(),
        }
    }

    fn write(&mut self, doc: &crate::doc::Document) -> Result<()> {
        let folder = match self.split_by {
            None => String::new(),
            Some(key) => {
                let value = doc.meta_str(key).unwrap_or("none");
                // Keep the value a single, safe path component.
                let safe: String = value
                    .chars()
                    .map(|c| {
                        if c.is_alphanumeric() || c == '-' || c == '_' {
                            c
                        } else {
                            '_'
                        }
                    })
                    .take(64)
                    .collect();
                if safe.is_empty() {
                    "none".into()
                } else {
                    safe
                }
            }
        };
        if !self.writers.contains_key(&folder) {
            let path = self.out_dir.join("rejected").join(&folder).join(&self.file);
            self.writers
                .insert(folder.clone(), ShardWriter::create_small(&path)?);
        }
        match self.writers.get_mut(&folder) {
            Some(w) => w.write(doc),
            None => bail!("rejected writer for `{folder}` vanished"),
        }
    }

    fn finish(self) -> Result<Vec<ShardFile>> {
        self.writers
            .into_iter()
            .map(|(folder, w)| {
                let mut f = w.finish()?;
                f.file = Path::new("rejected")
                    .join(folder)
                    .join(&f.file)
                    .to_string_lossy()
                    .into_owned();
                Ok(f)
            })
            .collect()
    }
}

/// Most reader errors logged per file; the rest are only counted and quarantined.
const LOGGED_ERRORS_PER_FILE: u64 = 5;

/// Makes one shard; returns the bytes read from a URL input (0 for other inputs).
fn process_shard(
    ctx: &RunContext,
    seg: &Segment,
    stages: &[Box<dyn Stage>],
    f: &InputFile,
) -> Result<u64> {
    let dir = segment_dir(ctx.out_dir, seg);
    let name = shard_name(f.index);
    let keep_rejected = ctx.config.output.keep_rejected;
    let mut writer = ShardWriter::create(&dir.join(format!("{name}.jsonl.zst")))?;
    let mut rejected = RejectWriters::new(ctx, &name, seg.index);
    let mut read_stats = StageStats::new("read");
    read_stats.bytes_in = f.item.bytes.unwrap_or(0);
    let mut stats: Vec<StageStats> = stages.iter().map(|s| StageStats::new(s.name())).collect();
    // Only the first segment reads the inputs; later ones count their (fatal) errors only.
    let qpath = ctx.out_dir.join("quarantine").join(format!("{name}.jsonl"));
    let mut quarantine = QuarantineWriter::create((seg.index == 0).then_some(qpath.as_path()));
    let shown = f.item.label();
    let seed = ctx.config.output.sample_seed;
    let mut profile = Profile::default();
    for stage in stages {
        for (metric, label, value) in stage.marks() {
            profile
                .marks
                .entry(metric.to_string())
                .or_default()
                .push((label, value));
        }
    }

    let (records, remote) = match segment_input(ctx, seg, f) {
        Ok(r) => r,
        // A URL that cannot be fetched fails its shard (a rerun tries again); a local file
        // that cannot be opened is a bad input, set aside.
        Err(e) if seg.index == 0 && f.item.is_remote() => return Err(e),
        Err(e) => {
            let err = RecordError::fatal(0, "unreadable_file", format!("{e:#}"));
            (Box::new(std::iter::once(Err(err))) as Records, None)
        }
    };
    let mut index = 0u64;
    for rec in records {
        let mut doc = match rec {
            Ok(d) => d,
            Err(e) => {
                if quarantine.records() < LOGGED_ERRORS_PER_FILE {
                    tracing::warn!("{shown}: {e}");
                }
                read_stats.add_drop(&e.reason);
                quarantine.write(&QuarantineRecord {
                    file: shown.clone(),
                    offset: e.offset,
                    reason: e.reason,
                    message: e.message,
                })?;
                continue;
            }
        };
        read_stats.docs_in += 1;
        read_stats.docs_out += 1;
        read_stats.bytes_out += doc.text.len() as u64;
        ctx.progress.add_doc(doc.text.len() as u64);
        let pos = DocPos {
            shard: f.index,
            index,
        };
        index += 1;
        let read_bytes = doc.text.len() as u64;
        let mut dropped = None;
        for (stage, st) in stages.iter().zip(stats.iter_mut()) {
            st.docs_in += 1;
            st.bytes_in += doc.text.len() as u64;
            let t = Instant::now();
            let verdict = stage.process(&mut doc, pos);
            st.seconds += t.elapsed().as_secs_f64();
            match verdict {
                crate::stage::Verdict::Keep => {
                    st.docs_out += 1;
                    st.bytes_out += doc.text.len() as u64;
                }
                crate::stage::Verdict::Drop(reason) => {
                    st.add_drop(&reason);
                    dropped = Some((stage.name(), reason));
                    break;
                }
            }
        }
        let drop = dropped.as_ref().map(|(s, r)| (*s, r.as_ref()));
        // Documents kept by an earlier segment are counted where they end.
        if seg.last || drop.is_some() {
            profile.observe(&doc, read_bytes, drop, seed);
        }
        match drop {
            None => writer.write(&doc)?,
            Some((stage, reason)) if keep_rejected => {
                doc.set("rejected_by", stage);
                doc.set("reject_reason", reason);
                rejected.write(&doc)?;
            }
            Some(_) => {}
        }
    }
    if quarantine.records() > LOGGED_ERRORS_PER_FILE {
        tracing::warn!(
            "{shown}: {} more records set aside (see quarantine/{name}.jsonl)",
            quarantine.records() - LOGGED_ERRORS_PER_FILE
        );
    }
    read_stats.docs_in += quarantine.records();
    if let Some(report) = &remote {
        if let Some(failure) = report.failure() {
            bail!("{failure}");
        }
        read_stats.bytes_in = report.bytes.load(std::sync::atomic::Ordering::Relaxed);
    }
    // An input that gave no document is reported, never a silent zero.
    let mut no_documents = seg.index == 0 && read_stats.docs_out == 0;
    if no_documents {
        tracing::warn!(
            "{shown}: no document read ({} records set aside)",
            quarantine.records()
        );
    }

    let output = writer.finish()?;
    // From here on the shard is visible under its final name; if its stats or manifest cannot
    // be written (a full disk), it is removed again, so no shard is left without its manifest.
    let mut placed = Uncommitted(vec![dir.join(&output.file)]);
    let rejected = rejected.finish()?;
    placed
        .0
        .extend(rejected.iter().map(|r| ctx.out_dir.join(&r.file)));
    let mut quarantined = quarantine.finish()?;

    let mut all_stats = Vec::new();
    if seg.index == 0 {
        all_stats.push(read_stats);
    } else {
        // Earlier segments' counters come first, so the final stats cover the whole pipeline.
        let p = work_dir(ctx.out_dir, seg.index - 1).join(format!("{name}.stats.json"));
        let bytes = std::fs::read(&p).with_context(|| format!("cannot read {}", p.display()))?;
        let prev_stats: ShardStats = serde_json::from_slice(&bytes)
            .with_context(|| format!("{} is not a shard stats file", p.display()))?;
        // The first segment's `read` drops are the records it quarantined.
        quarantined += prev_stats
            .stages
            .first()
            .map_or(0, |r| r.drops.values().sum());
        all_stats.extend(prev_stats.stages);
        no_documents = prev_stats.no_documents;
        profile.merge(&prev_stats.profile);
    }
    all_stats.extend(stats);
    let shard_stats = ShardStats {
        pipeline: ctx.config.name.clone(),
        source: ctx.config.source.clone(),
        input: shown.clone(),
        stages: all_stats,
        no_documents,
        profile,
    };
    let stats_path = dir.join(format!("{name}.stats.json"));
    placed.0.push(stats_path.clone());
    write_atomic(&stats_path, &serde_json::to_vec_pretty(&shard_stats)?)?;
    let remote_bytes = remote
        .as_ref()
        .map_or(0, |r| r.bytes.load(std::sync::atomic::Ordering::Relaxed));
    // A URL's validators and size come from its stream in the first segment, and are carried
    // over from the previous segment's manifest in later ones.
    let (validators, read_bytes) = match &remote {
        Some(r) => (
            Some(
                r.validators
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .clone(),
            ),
            remote_bytes,
        ),
        None if seg.index > 0 && f.item.is_remote() => {
            let p = work_dir(ctx.out_dir, seg.index - 1).join(format!("{name}.manifest.json"));
            let bytes =
                std::fs::read(&p).with_context(|| format!("cannot read {}", p.display()))?;
            let prev: Manifest = serde_json::from_slice(&bytes)
                .with_context(|| format!("{} is not a shard manifest", p.display()))?;
            (prev.remote, prev.input_bytes)
        }
        None => (None, 0),
    };
    let manifest = Manifest {
        input: f.item.location.as_string(),
        range: f.item.range.clone(),
        remote: validators,
        input_name: f.item.name.clone(),
        input_bytes: f.item.bytes.unwrap_or(read_bytes),
        config_hash: seg.config_hash.clone(),
        output,
        rejected,
        quarantined,
    };
    write_atomic(
        &manifest_path(ctx.out_dir, seg, f.index),
        &serde_json::to_vec_pretty(&manifest)?,
    )?;
    placed.0.clear();
    ctx.progress.file_done();
    Ok(remote_bytes)
}

/// Files of a shard already renamed into place whose manifest is not written yet; removed
/// when dropped (the shard failed) unless cleared first.
struct Uncommitted(Vec<PathBuf>);

impl Drop for Uncommitted {
    fn drop(&mut self) {
        for p in &self.0 {
            let _ = std::fs::remove_file(p);
        }
    }
}

impl RunSummary {
    /// The summary printed at the end of `datamill run`.
    pub fn report(&self) -> String {
        let mb = self.input_bytes as f64 / 1e6;
        let docs_in = self.stats.stages.first().map(|s| s.docs_out).unwrap_or(0);
        let secs = self.seconds.max(1e-9);
        let mut out = self.stats.table();
        out.push_str(&format!(
            "\n{} shards processed, {} already complete, {} failed; output in {}\n",
            self.shards_done,
            self.shards_skipped,
            self.failures.len(),
            self.output.display()
        ));
        if self.shards_done > 0 {
            out.push_str(&format!(
                "{:.1} MB in {:.2} s on {} threads: {:.2} MB/s ({:.2} MB/s per core), {:.0} docs/s",
                mb,
                self.seconds,
                self.threads,
                mb / secs,
                mb / secs / self.threads as f64,
                docs_in as f64 / secs,
            ));
            if let Some(rss) = self.peak_rss {
                out.push_str(&format!(", peak RSS {:.1} MB", rss as f64 / 1e6));
            }
            out.push('\n');
        }
        for f in &self.failures {
            out.push_str(&format!("FAILED {f}\n"));
        }
        out
    }
}
