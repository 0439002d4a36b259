//! Runs a pipeline on a Slurm cluster: one array job per segment step, the dedup reduce steps
//! (and, for MinHash, the one-task cluster step) between them, then a one-task `finish` step
//! that removes the intermediate `.work/` folder, chained with `--dependency=afterok`.
//! Resubmitting sends only unfinished work. What was submitted is recorded in
//! `OUTPUT/.slurm/submitted.json`, which `slurm status` reads.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use super::config::PipelineConfig;
use super::runner::{run_state, RunState};
use crate::slurm::queue::{refuse_while_queued, summary, task_state, Queue};
use crate::slurm::record::{load_record, save_record, JobRecord, PipelineRecord, RECORD_FILE};
use crate::slurm::sbatch::{absolute, shell_quote, shell_word, submit_job, JobSpec};
use crate::slurm::settings::Resources;

/// What `datamill slurm submit` needs.
#[derive(Debug, Clone, Default)]
pub struct SubmitOptions {
    /// Pipeline file.
    pub pipeline: PathBuf,
    /// Output folder override.
    pub output: Option<PathBuf>,
    /// Input files, folders or globs replacing the pipeline's `[input] paths`.
    pub inputs: Vec<String>,
    /// Array tasks per segment step (the world size); 0: one per input file.
    pub tasks: usize,
    /// Hash partitions of the dedup steps (reduce tasks); 0: the earlier submission's, else
    /// [`DEFAULT_PARTITIONS`].
    pub dedup_partitions: usize,
    /// Partition, CPUs per task (also the worker threads), memory, time limit.
    pub resources: Resources,
    /// Write the scripts but do not call sbatch.
    pub dry_run: bool,
    /// Wait until the submitted jobs have left the queue.
    pub wait: Option<Duration>,
    /// Pack the run's output into Megatron token shards after the last step.
    pub pack: Option<PackStep>,
    /// Folder of the scripts and the record (default `OUTPUT/.slurm`).
    pub slurm_dir: Option<PathBuf>,
    /// Folder of the logs (default `SLURM_DIR/logs`).
    pub log_dir: Option<PathBuf>,
    /// Job name prefix (default `datamill-NAME`, NAME the pipeline's).
    pub job_prefix: Option<String>,
}

/// The packing job chained after filtering: `datamill pack --tokenizer T --input OUTPUT
/// --output DIR` as one task.
#[derive(Debug, Clone)]
pub struct PackStep {
    /// SentencePiece model to encode with.
    pub tokenizer: PathBuf,
    /// Folder of the token shards (one subfolder per source).
    pub output: PathBuf,
}

/// The pipeline at `pipeline` with the output folder (made absolute) and inputs replaced.
pub fn load_pipeline(
    pipeline: &Path,
    output: &Option<PathBuf>,
    inputs: &[String],
) -> Result<PipelineConfig> {
    let mut config = PipelineConfig::load(pipeline)?;
    if let Some(out) = output {
        config.output.dir = out.clone();
    }
    if !inputs.is_empty() {
        config.input.paths = inputs.to_vec();
    }
    let cwd = std::env::current_dir()?;
    config.output.dir = absolute(&cwd, &config.output.dir);
    Ok(config)
}

/// True when every shard of the last segment is complete: the run is done (its `.work/`
/// may be gone, so earlier segments are not looked at).
pub fn run_finished(state: &RunState) -> bool {
    state
        .segments
        .last()
        .is_some_and(|s| !s.complete.is_empty() && s.complete.iter().all(|c| *c))
}

/// Ranks of `world` whose shards of segment `k` are incomplete or whose map files for the
/// next dedup step are missing.
fn unfinished_ranks(state: &RunState, k: usize, world: usize) -> Vec<usize> {
    if run_finished(state) {
        return Vec::new();
    }
    let seg = &state.segments[k];
    let next = state.segments.get(k + 1);
    (0..world)
        .filter(|&r| {
            (r..state.inputs.len())
                .step_by(world)
                .any(|i| !seg.complete[i] || next.is_some_and(|n| n.dedup && !n.mapped[i]))
        })
        .collect()
}

/// Each rank of `world` with work left in segment `k`, with its progress from the manifests and
/// map files: `2 (shards 1/3)` or `2 (shards 3/3, map files 2/3)` before a dedup step.
fn tasks_with_work_left(state: &RunState, k: usize, world: usize) -> Vec<String> {
    let seg = &state.segments[k];
    let next = state.segments.get(k + 1).filter(|n| n.dedup);
    unfinished_ranks(state, k, world)
        .into_iter()
        .map(|r| {
            let mine: Vec<usize> = (r..state.inputs.len()).step_by(world).collect();
            let count = |done: &[bool]| mine.iter().filter(|&&i| done[i]).count();
            let shards = format!("shards {}/{}", count(&seg.complete), mine.len());
            match next {
                Some(n) => format!(
                    "{r} ({shards}, map files {}/{})",
                    count(&n.mapped),
                    mine.len()
                ),
                None => format!("{r} ({shards})"),
            }
        })
        .collect()
}

/// The step name of the one-task job that removes a finished run's `.work/`.
pub const FINISH_STEP: &str = "finish";

/// Hash partitions of the dedup steps when neither the options nor an earlier submission say.
pub const DEFAULT_PARTITIONS: usize = 8;

/// The step name of the packing job.
const PACK_STEP: &str = "pack";

/// Writes the sbatch scripts for every unfinished step and submits them as a chain; the jobs
/// submitted, in order (the last is the one to wait for).
pub fn submit(opts: &SubmitOptions) -> Result<Vec<JobRecord>> {
    submit_after(opts, &[])
}

/// [`submit`], the first job also waiting for the jobs `after` to succeed.
pub fn submit_after(opts: &SubmitOptions, after: &[String]) -> Result<Vec<JobRecord>> {
    let config = load_pipeline(&opts.pipeline, &opts.output, &opts.inputs)?;
    let state = run_state(&config)?;
    if state.inputs.is_empty() {
        bail!("no input file matches {:?}", config.input.paths);
    }
    // No task count: one task per input file.
    let tasks = if opts.tasks == 0 {
        state.inputs.len()
    } else {
        opts.tasks
    };
    let finished = run_finished(&state);
    let slurm_dir = opts
        .slurm_dir
        .clone()
        .unwrap_or_else(|| config.output.dir.join(".slurm"));
    let record_path = slurm_dir.join(RECORD_FILE);
    let old = load_record::<PipelineRecord>(&record_path)?;
    // No partition count: the earlier submission's, else the default.
    let partitions = match opts.dedup_partitions {
        0 => old
            .as_ref()
            .map_or(DEFAULT_PARTITIONS, |r| r.dedup_partitions),
        p => p,
    };
    for seg in state.segments.iter().filter(|_| !finished) {
        if let Some(p) = seg.partitions {
            if p != partitions {
                bail!(
                    "partition count changed between phases: earlier steps of this run used {p} \
                     dedup partitions, this submission asks for {partitions}"
                );
            }
        }
    }
    let exe = std::env::current_exe().context("cannot find the datamill binary")?;
    let pipeline = std::fs::canonicalize(&opts.pipeline)
        .with_context(|| format!("cannot resolve {}", opts.pipeline.display()))?;
    let cwd = std::env::current_dir()?;
    let log_dir = opts
        .log_dir
        .clone()
        .unwrap_or_else(|| slurm_dir.join("logs"));
    std::fs::create_dir_all(&log_dir)
        .with_context(|| format!("cannot create {}", log_dir.display()))?;
    if let Some(old) = &old {
        let ids: Vec<String> = old.jobs.iter().map(|j| j.job_id.clone()).collect();
        refuse_while_queued(&ids)?;
    }
    let prefix = opts
        .job_prefix
        .clone()
        .unwrap_or_else(|| format!("datamill-{}", config.name));
    let threads = opts
        .resources
        .cpus_per_task
        .map(|c| format!(" --threads {c}"))
        .unwrap_or_default();
    let inputs: String = if opts.inputs.is_empty() {
        String::new()
    } else {
        let words: Vec<String> = opts.inputs.iter().map(|i| shell_word(i)).collect();
        format!(" --input {}", words.join(" "))
    };
    let run_command = |step: &str, world: usize| {
        let rank = if step == FINISH_STEP {
            "0"
        } else {
            "\"$SLURM_ARRAY_TASK_ID\""
        };
        format!(
            "{} run {}{inputs} --output {} --step {step} --rank {rank} --world-size {world} \
             --dedup-partitions {}{threads}",
            shell_quote(&exe),
            shell_quote(&pipeline),
            shell_quote(&config.output.dir),
            partitions,
        )
    };

    let mut jobs: Vec<JobRecord> = Vec::new();
    let mut previous: Vec<String> = after.to_vec();
    // One sbatch script and submission per step: its name, array indices, world size and
    // command; it waits for the job before it.
    let mut step_job = |step: &str, array: Vec<usize>, world: usize, command: String| {
        let spec = JobSpec {
            step: step.to_string(),
            name: format!("{prefix}-{step}"),
            array,
            world,
            cwd: &cwd,
            script_dir: &slurm_dir,
            log_dir: &log_dir,
            resources: &opts.resources,
            command,
            after: std::mem::take(&mut previous),
        };
        let job = submit_job(&spec, opts.dry_run)?;
        previous = vec![job.job_id.clone()];
        jobs.push(job);
        anyhow::Ok(())
    };
    let mut resubmitting = false;
    for k in 0..state.segments.len() {
        if finished {
            break;
        }
        if k > 0 {
            let reduced = &state.segments[k].reduced;
            let parts: Vec<usize> = (0..partitions)
                .filter(|&p| resubmitting || !reduced.get(p).copied().unwrap_or(false))
                .collect();
            if !parts.is_empty() {
                let step = format!("reduce-{k}");
                step_job(&step, parts, partitions, run_command(&step, partitions))?;
                resubmitting = true;
            }
            // Near-duplicate dedup: one task joins every partition's edges into clusters.
            if let Some(done) = state.segments[k].clustered {
                if resubmitting || !done {
                    let step = format!("cluster-{k}");
                    step_job(&step, vec![0], 1, run_command(&step, 1))?;
                    resubmitting = true;
                }
            }
        }
        let ranks = if resubmitting {
            (0..tasks).collect()
        } else {
            unfinished_ranks(&state, k, tasks)
        };
        if !ranks.is_empty() {
            let step = format!("segment-{k}");
            step_job(&step, ranks, tasks, run_command(&step, tasks))?;
            resubmitting = true;
        }
    }
    // A finished multi-segment run leaves `.work/` behind until this one task removes it.
    let work = config.output.dir.join(".work");
    if state.segments.len() > 1 && (resubmitting || work.exists()) {
        step_job(FINISH_STEP, vec![0], 1, run_command(FINISH_STEP, 1))?;
        resubmitting = true;
    }
    // Packing after filtering: one task once every step before it is done.
    if let Some(pack) = &opts.pack {
        let pack_output = absolute(&cwd, &pack.output);
        if resubmitting || !packed(&config.output.dir, &pack_output)? {
            let command = format!(
                "{} pack --tokenizer {} --input {} --output {}{threads}",
                shell_quote(&exe),
                shell_quote(&absolute(&cwd, &pack.tokenizer)),
                shell_quote(&config.output.dir),
                shell_quote(&pack_output),
            );
            step_job(PACK_STEP, vec![0], 1, command)?;
        }
    }
    let mut record = old.unwrap_or(PipelineRecord {
        pipeline: pipeline.clone(),
        output: config.output.dir.clone(),
        inputs: Vec::new(),
        tasks,
        dedup_partitions: partitions,
        resources: Resources::default(),
        jobs: Vec::new(),
    });
    record.pipeline = pipeline;
    record.inputs = opts.inputs.clone();
    record.tasks = tasks;
    record.dedup_partitions = partitions;
    record.resources = opts.resources.clone();
    record.jobs.extend(jobs.iter().cloned());
    save_record(&record_path, &record)?;
    if let (Some(limit), false) = (opts.wait, opts.dry_run) {
        let ids: Vec<&str> = jobs.iter().map(|j| j.job_id.as_str()).collect();
        wait_for(&ids, limit)?;
    }
    Ok(jobs)
}

/// The source families of the run output (its document shards, by source) and those of
/// them without a `pack.json` under `pack_output` yet.
fn pack_progress(run_output: &Path, pack_output: &Path) -> Result<(usize, Vec<String>)> {
    let families =
        crate::shards::pack::find_document_shards(&[run_output.to_path_buf()], pack_output)?;
    let pending = families
        .iter()
        .filter(|f| !pack_output.join(&f.source).join("pack.json").is_file())
        .map(|f| f.source.clone())
        .collect();
    Ok((families.len(), pending))
}

/// True when every source family of the run output has its `pack.json` under `pack_output`
/// (`datamill pack` itself checks it is current when it runs).
fn packed(run_output: &Path, pack_output: &Path) -> Result<bool> {
    let (families, pending) = pack_progress(run_output, pack_output)?;
    Ok(families > 0 && pending.is_empty())
}

/// Waits until none of `job_ids` is in the queue any more.
pub fn wait_for(job_ids: &[&str], limit: Duration) -> Result<()> {
    let start = Instant::now();
    let ids: Vec<&str> = job_ids.iter().copied().filter(|j| !j.is_empty()).collect();
    if ids.is_empty() {
        return Ok(());
    }
    loop {
        let out = Command::new("squeue")
            .args(["-h", "-o", "%i %r", "-j", &ids.join(",")])
            .output()
            .context("cannot run squeue")?;
        let text = String::from_utf8_lossy(&out.stdout);
        if text.trim().is_empty() {
            return Ok(());
        }
        if text.contains("DependencyNeverSatisfied") {
            // An earlier step failed: what waits on it can never run.
            let _ = Command::new("scancel").args(&ids).output();
            bail!(
                "a step failed, so the steps after it were cancelled; see the task logs in \
                 OUTPUT/.slurm/logs, then submit again to redo only the unfinished work"
            );
        }
        if start.elapsed() > limit {
            bail!("jobs {} still queued after {:?}", ids.join(","), limit);
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// Per-step progress of a run, from its manifests and dedup files, and per array task from
/// the record of what was submitted (`OUTPUT/.slurm/submitted.json`) and the queue.
/// `tasks` defaults to the recorded task count, `inputs` to the recorded `--input`.
pub fn status(
    pipeline: &Path,
    output: &Option<PathBuf>,
    inputs: &[String],
    tasks: Option<usize>,
    pack_output: Option<&Path>,
) -> Result<String> {
    let config = load_pipeline(pipeline, output, &[])?;
    let record_path = config.output.dir.join(".slurm").join(RECORD_FILE);
    let record = load_record::<PipelineRecord>(&record_path)?;
    let inputs = match (&record, inputs.is_empty()) {
        (Some(r), true) => r.inputs.clone(),
        _ => inputs.to_vec(),
    };
    let config = load_pipeline(pipeline, output, &inputs)?;
    let mut out = pipeline_status(&config, record.as_ref(), tasks, &Queue::read())?;
    if let Some(dir) = pack_output {
        out.push_str(&pack_status(&config.output.dir, dir)?);
    }
    Ok(out)
}

/// [`status`] of a loaded pipeline with its record (if any) and the queue.
pub fn pipeline_status(
    config: &PipelineConfig,
    record: Option<&PipelineRecord>,
    tasks: Option<usize>,
    queue: &Queue,
) -> Result<String> {
    let state = run_state(config)?;
    let tasks = tasks.or(record.map(|r| r.tasks)).unwrap_or(1).max(1);
    let finished = run_finished(&state);
    let jobs: &[JobRecord] = record.map_or(&[], |r| &r.jobs);
    // Task states of a step, one per array index, when there is a record to read.
    let tasks_line = |step: &str, done: &dyn Fn(usize) -> bool, world: usize| {
        if record.is_none() {
            return String::new();
        }
        let states: Vec<_> = (0..world)
            .map(|t| task_state(done(t), jobs, step, t, queue))
            .collect();
        format!("  tasks: {}\n", summary(&states))
    };
    let mut out = format!(
        "{}: {} input files, output {}\n",
        config.name,
        state.inputs.len(),
        config.output.dir.display()
    );
    let n = state.inputs.len();
    for (k, seg) in state.segments.iter().enumerate() {
        if seg.dedup {
            let partitions = seg
                .partitions
                .or(record.map(|r| r.dedup_partitions))
                .unwrap_or(0);
            let reduced = |p: usize| finished || seg.reduced.get(p).copied().unwrap_or(false);
            let mapped = if finished {
                n
            } else {
                seg.mapped.iter().filter(|d| **d).count()
            };
            out.push_str(&format!(
                "reduce-{k}: map files {mapped}/{n}, partitions reduced {}/{}\n",
                (0..partitions).filter(|p| reduced(*p)).count(),
                if partitions > 0 {
                    partitions.to_string()
                } else {
                    "?".into()
                }
            ));
            out.push_str(&tasks_line(&format!("reduce-{k}"), &reduced, partitions));
        }
        if let Some(done) = seg.clustered {
            let done = done || finished;
            let state = if done { "done" } else { "pending" };
            out.push_str(&format!("cluster-{k}: {state}\n"));
            out.push_str(&tasks_line(&format!("cluster-{k}"), &|_| done, 1));
        }
        let done = if finished {
            n
        } else {
            seg.complete.iter().filter(|d| **d).count()
        };
        out.push_str(&format!("segment-{k}: shards {done}/{n}"));
        let pending = tasks_with_work_left(&state, k, tasks);
        if pending.is_empty() {
            out.push_str(" (done)\n");
        } else {
            out.push_str(&format!(
                "; tasks with work left (of {tasks}): {}\n",
                pending.join(", ")
            ));
        }
        let left = unfinished_ranks(&state, k, tasks);
        out.push_str(&tasks_line(
            &format!("segment-{k}"),
            &|t| !left.contains(&t),
            tasks,
        ));
    }
    if state.segments.len() > 1 {
        let done = finished && !config.output.dir.join(".work").exists();
        let text = if done {
            "done (intermediate .work/ removed)"
        } else {
            "pending"
        };
        out.push_str(&format!("{FINISH_STEP}: {text}\n"));
        out.push_str(&tasks_line(FINISH_STEP, &|_| done, 1));
    }
    Ok(out)
}

/// One line on the packing step: how many source families of the run output have their
/// `pack.json` under `pack_output`, and which have not.
fn pack_status(run_output: &Path, pack_output: &Path) -> Result<String> {
    if !run_output.is_dir() {
        return Ok("pack: no run output yet\n".into());
    }
    let (families, pending) = pack_progress(run_output, pack_output)?;
    if families == 0 {
        return Ok("pack: no document shards yet\n".into());
    }
    let done = families - pending.len();
    Ok(if pending.is_empty() {
        format!("pack: sources packed {done}/{families} (done)\n")
    } else {
        format!(
            "pack: sources packed {done}/{families}; not yet: {}\n",
            pending.join(", ")
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run::runner::SegmentState;

    fn segment(complete: &[bool], dedup: bool, mapped: &[bool]) -> SegmentState {
        SegmentState {
            complete: complete.to_vec(),
            dedup,
            mapped: mapped.to_vec(),
            partitions: None,
            reduced: Vec::new(),
            clustered: None,
        }
    }

    #[test]
    fn pack_status_names_the_sources_not_packed_yet() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let run = tmp.path().join("run");
        let tokens = tmp.path().join("tokens");
        assert_eq!(
            pack_status(&run, &tokens).expect("status"),
            "pack: no run output yet\n"
        );
        for source in ["books", "wiki"] {
            std::fs::create_dir_all(run.join(source)).expect("mkdir");
            std::fs::write(run.join(source).join("part-00000.jsonl.zst"), b"").expect("write");
        }
        assert_eq!(
            pack_status(&run, &tokens).expect("status"),
            "pack: sources packed 0/2; not yet: books, wiki\n"
        );
        std::fs::create_dir_all(tokens.join("wiki")).expect("mkdir");
        std::fs::write(tokens.join("wiki").join("pack.json"), b"{}").expect("write");
        assert_eq!(
            pack_status(&run, &tokens).expect("status"),
            "pack: sources packed 1/2; not yet: books\n"
        );
        std::fs::create_dir_all(tokens.join("books")).expect("mkdir");
        std::fs::write(tokens.join("books").join("pack.json"), b"{}").expect("write");
        assert_eq!(
            pack_status(&run, &tokens).expect("status"),
            "pack: sources packed 2/2 (done)\n"
        );
    }

    #[test]
    fn status_shows_the_progress_of_each_task_with_work_left() {
        // Five inputs over two tasks: task 0 has inputs 0, 2, 4; task 1 has 1, 3.
        let state = RunState {
            inputs: (0..5)
                .map(|i| crate::inputs::InputItem::file(format!("f{i}"), format!("f{i}")))
                .collect(),
            segments: vec![
                segment(&[true, true, false, true, true], false, &[]),
                segment(&[false; 5], true, &[true, true, false, false, true]),
            ],
        };
        assert_eq!(
            tasks_with_work_left(&state, 0, 2),
            [
                "0 (shards 2/3, map files 2/3)",
                "1 (shards 2/2, map files 1/2)"
            ]
        );
        assert_eq!(
            tasks_with_work_left(&state, 1, 2),
            ["0 (shards 0/3)", "1 (shards 0/2)"]
        );
        let done = RunState {
            inputs: state.inputs.clone(),
            segments: vec![segment(&[true; 5], false, &[])],
        };
        assert!(tasks_with_work_left(&done, 0, 2).is_empty());
    }
}
