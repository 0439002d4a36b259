//! Runs a pipeline on a Slurm cluster: one array job per segment step, the dedup reduce steps
//! (and, for MinHash, the one-task cluster step) between them, chained with
//! `--dependency=afterok`. Resubmitting sends only unfinished work.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use super::config::PipelineConfig;
use super::runner::{run_state, RunState};
use crate::doc::write_atomic;

/// What `datamill slurm submit` needs.
#[derive(Debug, Clone)]
pub struct SubmitOptions {
    /// Pipeline file.
    pub pipeline: PathBuf,
    /// Output folder override.
    pub output: Option<PathBuf>,
    /// Array tasks per segment step (the world size).
    pub tasks: usize,
    /// Hash partitions of the dedup steps (reduce tasks).
    pub dedup_partitions: usize,
    /// Slurm partition (queue).
    pub partition: Option<String>,
    /// CPUs per task.
    pub cpus_per_task: Option<usize>,
    /// Memory per task (`16G`).
    pub mem: Option<String>,
    /// Time limit per task (`04:00:00`).
    pub time: Option<String>,
    /// Write the scripts but do not call sbatch.
    pub dry_run: bool,
    /// Wait until the submitted jobs have left the queue.
    pub wait: Option<Duration>,
    /// Pack the run's output into Megatron token shards after the last step.
    pub pack: Option<PackStep>,
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

/// One submitted (or planned) job.
#[derive(Debug, Clone)]
pub struct SubmittedJob {
    /// Step name (`segment-0`, `reduce-1`).
    pub step: String,
    /// Array indices.
    pub array: Vec<usize>,
    /// Slurm job id (empty on a dry run).
    pub job_id: String,
    /// The sbatch script.
    pub script: PathBuf,
}

fn load(pipeline: &Path, output: &Option<PathBuf>) -> Result<PipelineConfig> {
    let mut config = PipelineConfig::load(pipeline)?;
    if let Some(out) = output {
        config.output.dir = out.clone();
    }
    let cwd = std::env::current_dir()?;
    if config.output.dir.is_relative() {
        config.output.dir = cwd.join(&config.output.dir);
    }
    Ok(config)
}

/// Ranks of `world` whose shards of segment `k` are incomplete or whose map files for the
/// next dedup step are missing.
fn unfinished_ranks(state: &RunState, k: usize, world: usize) -> Vec<usize> {
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

/// Writes the sbatch scripts for every unfinished step and submits them as a chain.
pub fn submit(opts: &SubmitOptions) -> Result<Vec<SubmittedJob>> {
    if opts.tasks == 0 || opts.dedup_partitions == 0 {
        bail!("--tasks and --dedup-partitions must be at least 1");
    }
    let config = load(&opts.pipeline, &opts.output)?;
    let state = run_state(&config)?;
    if state.inputs.is_empty() {
        bail!("no input file matches {:?}", config.input.paths);
    }
    for seg in &state.segments {
        if let Some(p) = seg.partitions {
            if p != opts.dedup_partitions {
                bail!(
                    "partition count changed between phases: earlier steps of this run used {p} \
                     dedup partitions, this submission asks for {}",
                    opts.dedup_partitions
                );
            }
        }
    }
    let exe = std::env::current_exe().context("cannot find the datamill binary")?;
    let pipeline = std::fs::canonicalize(&opts.pipeline)
        .with_context(|| format!("cannot resolve {}", opts.pipeline.display()))?;
    let cwd = std::env::current_dir()?;
    let slurm_dir = config.output.dir.join(".slurm");
    std::fs::create_dir_all(slurm_dir.join("logs"))
        .with_context(|| format!("cannot create {}", slurm_dir.display()))?;

    // One sbatch script and submission per step: its name, array indices, world size and the
    // job it waits for.
    let step_job = |step: &str, array: &[usize], world: usize, after: Option<&str>| {
        submit_step(
            opts, &exe, &pipeline, &cwd, &config, &slurm_dir, step, array, world, after,
        )
    };
    let mut jobs: Vec<SubmittedJob> = Vec::new();
    let mut previous: Option<String> = None;
    let mut resubmitting = false;
    for k in 0..state.segments.len() {
        if k > 0 {
            let reduced = &state.segments[k].reduced;
            let parts: Vec<usize> = (0..opts.dedup_partitions)
                .filter(|&p| resubmitting || !reduced.get(p).copied().unwrap_or(false))
                .collect();
            if !parts.is_empty() {
                let step = format!("reduce-{k}");
                let job = step_job(&step, &parts, opts.dedup_partitions, previous.as_deref())?;
                previous = Some(job.job_id.clone());
                jobs.push(job);
                resubmitting = true;
            }
            // Near-duplicate dedup: one task joins every partition's edges into clusters.
            if let Some(done) = state.segments[k].clustered {
                if resubmitting || !done {
                    let step = format!("cluster-{k}");
                    let job = step_job(&step, &[0], 1, previous.as_deref())?;
                    previous = Some(job.job_id.clone());
                    jobs.push(job);
                    resubmitting = true;
                }
            }
        }
        let ranks = if resubmitting {
            (0..opts.tasks).collect()
        } else {
            unfinished_ranks(&state, k, opts.tasks)
        };
        if !ranks.is_empty() {
            let step = format!("segment-{k}");
            let job = step_job(&step, &ranks, opts.tasks, previous.as_deref())?;
            previous = Some(job.job_id.clone());
            jobs.push(job);
            resubmitting = true;
        }
    }
    // Packing after filtering: one task once every step before it is done.
    if let Some(pack) = &opts.pack {
        let pack_output = absolute(&cwd, &pack.output);
        if resubmitting || !packed(&config.output.dir, &pack_output)? {
            let job = step_job(PACK_STEP, &[0], 1, previous.as_deref())?;
            jobs.push(job);
        }
    }
    if let (Some(limit), false) = (opts.wait, opts.dry_run) {
        let ids: Vec<&str> = jobs.iter().map(|j| j.job_id.as_str()).collect();
        wait_for(&ids, limit)?;
    }
    Ok(jobs)
}

/// The step name of the packing job.
const PACK_STEP: &str = "pack";

/// `path` made absolute against `cwd` (the jobs run in `cwd`, but a path stays unambiguous in
/// the script).
fn absolute(cwd: &Path, path: &Path) -> PathBuf {
    if path.is_absolute() {
        path.to_path_buf()
    } else {
        cwd.join(path)
    }
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

/// A path for an `#SBATCH` line, to be put in double quotes (sbatch reads a quoted value
/// whole, spaces included). A path that is not UTF-8 or holds a double quote, a backslash (sbatch reads it
/// as an escape) or a line break cannot be written there. With `pattern`, a `%` is doubled
/// so sbatch does not read it as a file-name pattern.
fn directive_path(path: &Path, pattern: bool) -> Result<String> {
    let Some(text) = path.to_str() else {
        bail!(
            "{}: an #SBATCH line cannot hold a path that is not UTF-8; use another folder",
            path.display()
        );
    };
    if text.contains(['"', '\\', '\n', '\r']) {
        bail!(
            "{}: an #SBATCH line cannot hold a path with a double quote, a backslash or a \
             line break; use another folder",
            path.display()
        );
    }
    Ok(if pattern {
        text.replace('%', "%%")
    } else {
        text.to_string()
    })
}

/// `path` as one shell word: single-quoted, so spaces, `$` or quotes in it stay literal.
fn shell_quote(path: &Path) -> String {
    format!("'{}'", path.to_string_lossy().replace('\'', "'\\''"))
}

#[allow(clippy::too_many_arguments)]
fn submit_step(
    opts: &SubmitOptions,
    exe: &Path,
    pipeline: &Path,
    cwd: &Path,
    config: &PipelineConfig,
    slurm_dir: &Path,
    step: &str,
    array: &[usize],
    world: usize,
    after: Option<&str>,
) -> Result<SubmittedJob> {
    let name = format!("datamill-{}-{step}", config.name);
    let list = array
        .iter()
        .map(usize::to_string)
        .collect::<Vec<_>>()
        .join(",");
    let mut script = String::from("#!/usr/bin/env bash\n");
    script.push_str(&format!(
        "#SBATCH --job-name={name}\n#SBATCH --array={list}\n"
    ));
    script.push_str(&format!(
        "#SBATCH --chdir=\"{}\"\n",
        directive_path(cwd, false)?
    ));
    // The log folder's own `%` are doubled; the file name is sbatch's pattern.
    script.push_str(&format!(
        "#SBATCH --output=\"{}/%x-%A_%a.out\"\n",
        directive_path(&slurm_dir.join("logs"), true)?
    ));
    if let Some(p) = &opts.partition {
        script.push_str(&format!("#SBATCH --partition={p}\n"));
    }
    if let Some(c) = opts.cpus_per_task {
        script.push_str(&format!("#SBATCH --cpus-per-task={c}\n"));
    }
    if let Some(m) = &opts.mem {
        script.push_str(&format!("#SBATCH --mem={m}\n"));
    }
    if let Some(t) = &opts.time {
        script.push_str(&format!("#SBATCH --time={t}\n"));
    }
    let threads = opts
        .cpus_per_task
        .map(|c| format!(" --threads {c}"))
        .unwrap_or_default();
    let command = match (&opts.pack, step) {
        (Some(pack), PACK_STEP) => format!(
            "{} pack --tokenizer {} --input {} --output {}{threads}",
            shell_quote(exe),
            shell_quote(&absolute(cwd, &pack.tokenizer)),
            shell_quote(&config.output.dir),
            shell_quote(&absolute(cwd, &pack.output)),
        ),
        _ => format!(
            "{} run {} --output {} --step {step} --rank \"$SLURM_ARRAY_TASK_ID\" \
             --world-size {world} --dedup-partitions {}{threads}",
            shell_quote(exe),
            shell_quote(pipeline),
            shell_quote(&config.output.dir),
            opts.dedup_partitions,
        ),
    };
    script.push_str(&format!("set -euo pipefail\nexec {command}\n"));
    let path = slurm_dir.join(format!("{step}.sbatch"));
    write_atomic(&path, script.as_bytes())?;
    let mut job_id = String::new();
    if !opts.dry_run {
        let mut cmd = Command::new("sbatch");
        cmd.arg("--parsable");
        if let Some(a) = after {
            cmd.arg(format!("--dependency=afterok:{a}"));
        }
        let out = cmd
            .arg(&path)
            .output()
            .context("cannot run sbatch: is Slurm installed and running?")?;
        if !out.status.success() {
            bail!(
                "sbatch {} failed: {}",
                path.display(),
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        job_id = String::from_utf8_lossy(&out.stdout)
            .trim()
            .split(';')
            .next()
            .unwrap_or_default()
            .to_string();
    }
    Ok(SubmittedJob {
        step: step.to_string(),
        array: array.to_vec(),
        job_id,
        script: path,
    })
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

/// Per-step progress of a run, from its manifests and dedup files.
pub fn status(
    pipeline: &Path,
    output: &Option<PathBuf>,
    tasks: usize,
    pack_output: Option<&Path>,
) -> Result<String> {
    let config = load(pipeline, output)?;
    let state = run_state(&config)?;
    let mut out = format!(
        "{}: {} input files, output {}\n",
        config.name,
        state.inputs.len(),
        config.output.dir.display()
    );
    for (k, seg) in state.segments.iter().enumerate() {
        if seg.dedup {
            let done = seg.reduced.iter().filter(|d| **d).count();
            let mapped = seg.mapped.iter().filter(|d| **d).count();
            out.push_str(&format!(
                "reduce-{k}: map files {mapped}/{}, partitions reduced {done}/{}\n",
                seg.mapped.len(),
                seg.partitions
                    .map(|p| p.to_string())
                    .unwrap_or_else(|| "?".into())
            ));
        }
        if let Some(done) = seg.clustered {
            let state = if done { "done" } else { "pending" };
            out.push_str(&format!("cluster-{k}: {state}\n"));
        }
        let done = seg.complete.iter().filter(|d| **d).count();
        out.push_str(&format!(
            "segment-{k}: shards {done}/{}",
            seg.complete.len()
        ));
        let pending = tasks_with_work_left(&state, k, tasks.max(1));
        if pending.is_empty() {
            out.push_str(" (done)\n");
        } else {
            out.push_str(&format!(
                "; tasks with work left (of {tasks}): {}\n",
                pending.join(", ")
            ));
        }
    }
    if let Some(dir) = pack_output {
        out.push_str(&pack_status(&config.output.dir, dir)?);
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
    fn paths_in_the_sbatch_script_are_single_shell_words() {
        let path = Path::new("/data/my run/it's $HOME/a b.toml");
        let out = Command::new("bash")
            .arg("-c")
            .arg(format!("printf '%s|' {}", shell_quote(path)))
            .output()
            .unwrap();
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "/data/my run/it's $HOME/a b.toml|"
        );
    }

    #[test]
    fn sbatch_directive_paths_are_quoted_and_quotes_refused() {
        assert_eq!(
            directive_path(Path::new("/data/my run"), false).expect("path"),
            "/data/my run"
        );
        assert_eq!(
            directive_path(Path::new("/data/100% run"), true).expect("path"),
            "/data/100%% run"
        );
        for bad in ["/data/a\"b", "/data/a\\b", "/data/a\nb"] {
            let err = directive_path(Path::new(bad), false).unwrap_err();
            assert!(err.to_string().contains("cannot hold"), "{err}");
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
