//! `datamill slurm submit RECIPE.toml`: the whole recipe as chained jobs. Every source
//! pipeline is its own chain ([`crate::run::slurm`]); the tokenizer job waits for all of them,
//! the tokenising packing array for the tokenizer, the shard-writing array for that, and the
//! plan-and-report job for the shards. A resubmission sends only what is unfinished.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context, Result};

use super::queue::{refuse_while_queued, summary, task_state, Queue};
use super::record::{
    load_record, save_record, JobRecord, PipelineRecord, RecipeRecord, SourceRecord, RECORD_FILE,
};
use super::sbatch::{absolute, shell_quote, submit_job, JobSpec};
use super::settings::{Phase, Resources};
use super::steps::RecipeStep;
use crate::inputs::input_list;
use crate::mixture::RecipeConfig;
use crate::recipe::{pack_options, runnable_sources, RecipeOptions};
use crate::run::slurm::{pipeline_status, submit, wait_for, SubmitOptions, DEFAULT_PARTITIONS};
use crate::shards::{load_encoder, pack::pack_pending};

/// What `datamill slurm submit RECIPE.toml` needs.
#[derive(Debug, Clone, Default)]
pub struct RecipeSubmitOptions {
    /// The recipe file.
    pub recipe: PathBuf,
    /// Cap on every array (`--tasks`; default `[slurm] max_tasks`, else none).
    pub max_tasks: Option<usize>,
    /// Hash partitions of every dedup step (default `[slurm] dedup_partitions`, else 8).
    pub dedup_partitions: Option<usize>,
    /// Resources given as flags: they override the `[slurm]` table in every phase.
    pub resources: Resources,
    /// Write the scripts but do not call sbatch.
    pub dry_run: bool,
    /// Wait until every submitted job has left the queue.
    pub wait: Option<Duration>,
}

/// What a recipe submission sent.
#[derive(Debug, Clone, Default)]
pub struct RecipeSubmission {
    /// Jobs submitted, as (source, or `recipe` for the later phases, job), in order.
    pub jobs: Vec<(String, JobRecord)>,
    /// Sources skipped, with the reason.
    pub skipped: Vec<(String, String)>,
    /// The record written.
    pub record: PathBuf,
}

/// Fails unless `dir` can be created and written to (before anything is submitted).
fn check_writable(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| {
        format!(
            "output folder {} cannot be created; nothing was submitted",
            dir.display()
        )
    })?;
    let probe = dir.join(format!(".datamill-write-test-{}", std::process::id()));
    std::fs::write(&probe, b"").with_context(|| {
        format!(
            "output folder {} is not writable; nothing was submitted",
            dir.display()
        )
    })?;
    let _ = std::fs::remove_file(&probe);
    Ok(())
}

/// One source ready to submit.
struct PlannedSource {
    name: String,
    pipeline: PathBuf,
    run_dir: PathBuf,
    inputs: usize,
}

/// Submits the recipe at `opts.recipe` as chained Slurm jobs; see the module doc.
pub fn submit_recipe(opts: &RecipeSubmitOptions) -> Result<RecipeSubmission> {
    let recipe = RecipeConfig::load(&opts.recipe)?;
    let cwd = std::env::current_dir()?;
    let output = absolute(&cwd, &recipe.output);
    check_writable(&output)?;
    let slurm_dir = output.join(".slurm");
    let log_dir = slurm_dir.join("logs");
    let record_path = slurm_dir.join(RECORD_FILE);
    let old = load_record::<RecipeRecord>(&record_path)?;
    if let Some(old) = &old {
        refuse_while_queued(&recorded_job_ids(old)?)?;
    }
    let cap = opts
        .max_tasks
        .or(recipe.slurm.max_tasks)
        .unwrap_or(usize::MAX);
    if cap == 0 {
        bail!("--tasks must be at least 1");
    }

    let (runnable, mut skipped) = runnable_sources(&recipe);
    let mut planned = Vec::new();
    for s in runnable {
        let paths = &s.config.input.paths;
        // Inputs as a run lists them: files, URLs, path-list entries and ranges of big files.
        match input_list(&s.config.input) {
            Ok(list) if !list.items.is_empty() => planned.push(PlannedSource {
                run_dir: absolute(&cwd, &s.config.output.dir),
                name: s.name,
                pipeline: s.pipeline,
                inputs: list.items.len(),
            }),
            Ok(_) => skipped.push((s.name, format!("no input matches {paths:?}"))),
            Err(e) => skipped.push((s.name, format!("{e:#}"))),
        }
    }
    for (name, why) in &skipped {
        tracing::warn!("source {name}: skipped: {why}");
    }
    if planned.is_empty() {
        let why: Vec<String> = skipped.iter().map(|(n, r)| format!("{n}: {r}")).collect();
        bail!(
            "no source of {} can run ({}); nothing was submitted",
            opts.recipe.display(),
            why.join("; ")
        );
    }

    let mut submission = RecipeSubmission {
        skipped: skipped.clone(),
        record: record_path.clone(),
        ..Default::default()
    };
    // The source pipelines, each its own chain.
    let mut sources = Vec::new();
    let mut after: Vec<String> = Vec::new();
    for p in &planned {
        let res = recipe
            .slurm
            .resources(Phase::Pipeline, Some(&p.name), &opts.resources);
        let source_dir = slurm_dir.join(&p.name);
        let recorded = load_record::<PipelineRecord>(&source_dir.join(RECORD_FILE))?;
        let partitions = opts
            .dedup_partitions
            .or(recorded.map(|r| r.dedup_partitions))
            .or(recipe.slurm.dedup_partitions)
            .unwrap_or(DEFAULT_PARTITIONS);
        let sopts = SubmitOptions {
            pipeline: p.pipeline.clone(),
            output: Some(p.run_dir.clone()),
            tasks: res.tasks.unwrap_or(p.inputs).min(cap).max(1),
            dedup_partitions: partitions,
            resources: Resources { tasks: None, ..res },
            dry_run: opts.dry_run,
            slurm_dir: Some(source_dir.clone()),
            log_dir: Some(log_dir.clone()),
            job_prefix: Some(format!("datamill-{}-{}", recipe.name, p.name)),
            ..Default::default()
        };
        let jobs = submit(&sopts).with_context(|| format!("source {}", p.name))?;
        after.extend(jobs.last().map(|j| j.job_id.clone()));
        submission
            .jobs
            .extend(jobs.into_iter().map(|j| (p.name.clone(), j)));
        sources.push(SourceRecord {
            name: p.name.clone(),
            pipeline: p.pipeline.clone(),
            slurm_dir: source_dir,
        });
    }
    let mut upstream = !after.is_empty();

    // Tokenizer, packing, report.
    let exe = std::env::current_exe().context("cannot find the datamill binary")?;
    let recipe_path = std::fs::canonicalize(&opts.recipe)
        .with_context(|| format!("cannot resolve {}", opts.recipe.display()))?;
    let inputs_total: usize = planned.iter().map(|p| p.inputs).sum();
    let pack_res = recipe.slurm.resources(Phase::Pack, None, &opts.resources);
    let pack_tasks = pack_res.tasks.unwrap_or(inputs_total).min(cap).max(1);
    let shard_tasks = planned.len().min(cap).max(1);
    let mut jobs = Vec::new();
    let mut phase_job = |step: RecipeStep, array: Vec<usize>, world: usize, phase: Phase| {
        let res = Resources {
            tasks: None,
            ..recipe.slurm.resources(phase, None, &opts.resources)
        };
        let threads = res
            .cpus_per_task
            .map(|c| format!(" --threads {c}"))
            .unwrap_or_default();
        let spec = JobSpec {
            step: step.name().to_string(),
            name: format!("datamill-{}-{}", recipe.name, step.name()),
            array,
            world,
            cwd: &cwd,
            script_dir: &slurm_dir,
            log_dir: &log_dir,
            resources: &res,
            command: format!(
                "{} recipe {} --step {} --rank \"$SLURM_ARRAY_TASK_ID\" --world-size {world}{threads}",
                shell_quote(&exe),
                shell_quote(&recipe_path),
                step.name(),
            ),
            after: std::mem::take(&mut after),
        };
        let job = submit_job(&spec, opts.dry_run)?;
        after = vec![job.job_id.clone()];
        jobs.push(job);
        anyhow::Ok(())
    };
    let model = recipe.tokenizer_model();
    if !model.exists() {
        phase_job(RecipeStep::Tokenizer, vec![0], 1, Phase::Tokenizer)?;
        upstream = true;
    }
    let (parts, shards) = if upstream {
        ((0..pack_tasks).collect(), (0..shard_tasks).collect())
    } else {
        let encoder = load_encoder(&model)?;
        let pack = pack_options(&recipe, &RecipeOptions::default());
        pack_pending(&pack, encoder.as_ref(), pack_tasks, shard_tasks)?
    };
    if !parts.is_empty() {
        phase_job(RecipeStep::PackParts, parts, pack_tasks, Phase::Pack)?;
        upstream = true;
    }
    if !shards.is_empty() {
        phase_job(RecipeStep::PackShards, shards, shard_tasks, Phase::Pack)?;
        upstream = true;
    }
    if upstream || !reported(&output) {
        phase_job(RecipeStep::Report, vec![0], 1, Phase::Report)?;
    }
    let mut record = old.unwrap_or(RecipeRecord {
        recipe: recipe_path.clone(),
        output: output.clone(),
        sources: Vec::new(),
        skipped: Vec::new(),
        pack_tasks,
        shard_tasks,
        jobs: Vec::new(),
    });
    record.recipe = recipe_path;
    record.sources = sources;
    record.skipped = skipped;
    record.pack_tasks = pack_tasks;
    record.shard_tasks = shard_tasks;
    record.jobs.extend(jobs.iter().cloned());
    save_record(&record_path, &record)?;
    submission
        .jobs
        .extend(jobs.into_iter().map(|j| ("recipe".to_string(), j)));
    if let (Some(limit), false) = (opts.wait, opts.dry_run) {
        let ids: Vec<&str> = submission
            .jobs
            .iter()
            .map(|(_, j)| j.job_id.as_str())
            .collect();
        wait_for(&ids, limit)?;
    }
    Ok(submission)
}

/// True when `plan.json` and the report are written.
fn reported(output: &Path) -> bool {
    output.join("plan.json").is_file() && output.join("report").join("report.json").is_file()
}

/// Every job id of a recipe's record and of its sources' records.
fn recorded_job_ids(record: &RecipeRecord) -> Result<Vec<String>> {
    let mut ids: Vec<String> = record.jobs.iter().map(|j| j.job_id.clone()).collect();
    for s in &record.sources {
        if let Some(r) = load_record::<PipelineRecord>(&s.slurm_dir.join(RECORD_FILE))? {
            ids.extend(r.jobs.into_iter().map(|j| j.job_id));
        }
    }
    ids.retain(|i| !i.is_empty());
    Ok(ids)
}

/// `datamill slurm status RECIPE.toml`: per source and step, then tokenizer, packing and
/// report, what is done, running, waiting and failed (with its log).
pub fn recipe_status(path: &Path) -> Result<String> {
    let recipe = RecipeConfig::load(path)?;
    let cwd = std::env::current_dir()?;
    let output = absolute(&cwd, &recipe.output);
    let record_path = output.join(".slurm").join(RECORD_FILE);
    let record = load_record::<RecipeRecord>(&record_path)?;
    let queue = Queue::read();
    let mut out = format!("recipe {}: output {}\n", recipe.name, output.display());
    let Some(record) = record else {
        out.push_str(&format!(
            "nothing submitted yet (no {}): `datamill slurm submit {}`\n",
            record_path.display(),
            path.display()
        ));
        return Ok(out);
    };
    for (name, why) in &record.skipped {
        out.push_str(&format!("skipped {name}: {why}\n"));
    }
    let (runnable, _) = runnable_sources(&recipe);
    for s in &record.sources {
        let Some(source) = runnable.iter().find(|r| r.name == s.name) else {
            out.push_str(&format!(
                "\nsource {}: its pipeline no longer loads\n",
                s.name
            ));
            continue;
        };
        let mut config = source.config.clone();
        config.output.dir = absolute(&cwd, &config.output.dir);
        let pipeline_record = load_record::<PipelineRecord>(&s.slurm_dir.join(RECORD_FILE))?;
        out.push_str(&format!(
            "\nsource {} ({}):\n",
            s.name,
            s.pipeline.display()
        ));
        match pipeline_status(&config, pipeline_record.as_ref(), None, &queue) {
            Ok(text) => {
                for line in text.lines() {
                    out.push_str(&format!("  {line}\n"));
                }
            }
            Err(e) => out.push_str(&format!("  cannot read its state: {e:#}\n")),
        }
    }
    out.push('\n');
    let jobs = &record.jobs;
    let line = |step: RecipeStep, world: usize, done: &dyn Fn(usize) -> bool| {
        let states: Vec<_> = (0..world)
            .map(|t| task_state(done(t), jobs, step.name(), t, &queue))
            .collect();
        format!("{}: {}\n", step.name(), summary(&states))
    };
    let model = recipe.tokenizer_model();
    let trained = model.exists();
    out.push_str(&line(RecipeStep::Tokenizer, 1, &|_| trained));
    let pending = if trained {
        load_encoder(&model).ok().and_then(|encoder| {
            let pack = pack_options(&recipe, &RecipeOptions::default());
            pack_pending(
                &pack,
                encoder.as_ref(),
                record.pack_tasks,
                record.shard_tasks,
            )
            .ok()
        })
    } else {
        None
    };
    let (parts, shards) = match &pending {
        Some((p, s)) => (Some(p), Some(s)),
        None => (None, None),
    };
    out.push_str(&line(RecipeStep::PackParts, record.pack_tasks, &|t| {
        parts.is_some_and(|p| !p.contains(&t))
    }));
    out.push_str(&line(RecipeStep::PackShards, record.shard_tasks, &|t| {
        shards.is_some_and(|s| !s.contains(&t))
    }));
    let reported = reported(&output);
    out.push_str(&line(RecipeStep::Report, 1, &|_| reported));
    Ok(out)
}

/// True when the TOML file at `path` is a recipe (it has `[[sources]]`), not a pipeline.
pub fn is_recipe(path: &Path) -> Result<bool> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let table: toml::Table =
        toml::from_str(&text).with_context(|| format!("in {}", path.display()))?;
    Ok(table.contains_key("sources"))
}
