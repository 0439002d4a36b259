//! `datamill recipe`: runs a recipe (`pipelines/llama.toml`) end to end — every source
//! pipeline that exists and whose reader and stages are built, the tokenizer (trained when
//! missing), packing, the mixture plan and the report. Sources that cannot run are skipped
//! with a note instead of failing the whole recipe.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use crate::doc::write_atomic;
use crate::mixture::{plan, recipe_supplies, MixturePlan, RecipeConfig};
use crate::report::build_report;
use crate::run::{run_config, PipelineConfig, RunOptions};
use crate::shards::{load_encoder, pack, PackOptions};

/// How to run a recipe.
#[derive(Debug, Clone, Default)]
pub struct RecipeOptions {
    /// Worker threads (0 = one per core).
    pub threads: usize,
    /// Redo complete work.
    pub force: bool,
}

/// What a recipe run did.
#[derive(Debug, Clone)]
pub struct RecipeOutcome {
    /// Sources run (or found complete).
    pub ran: Vec<String>,
    /// Sources skipped, with the reason.
    pub skipped: Vec<(String, String)>,
    /// The tokenizer model used.
    pub tokenizer: PathBuf,
    /// True when the tokenizer was trained now.
    pub trained_tokenizer: bool,
    /// The packing summary table.
    pub pack_report: String,
    /// The plan.
    pub plan: MixturePlan,
    /// The report folder.
    pub report_dir: PathBuf,
    /// The report as Markdown.
    pub report_markdown: String,
}

/// Why a source's pipeline cannot run here, if it cannot.
fn cannot_run(pipeline: Option<&Path>) -> Option<String> {
    let Some(path) = pipeline else {
        return Some("no pipeline named".into());
    };
    if !path.exists() {
        return Some(format!("pipeline file {} is absent", path.display()));
    }
    let config = match PipelineConfig::load(path) {
        Ok(c) => c,
        Err(e) => return Some(format!("{e:#}")),
    };
    if let Err(e) = crate::sources::build_reader(&config.input.reader, &config.input.options) {
        return Some(format!("reader not built: {e:#}"));
    }
    for (i, t) in config.stages.iter().enumerate() {
        if let Err(e) = crate::run::registry::build_stage(t) {
            return Some(format!("stage #{} cannot be built: {e:#}", i + 1));
        }
    }
    None
}

/// The sources of `recipe` that can run here, each with its pipeline file and its pipeline
/// loaded (output set to the recipe's run folder), and those skipped, with the reason.
pub fn runnable_sources(recipe: &RecipeConfig) -> (Vec<RunnableSource>, Vec<(String, String)>) {
    let mut ran = Vec::new();
    let mut skipped = Vec::new();
    for s in &recipe.sources {
        if let Some(reason) = cannot_run(s.pipeline.as_deref()) {
            tracing::warn!("source {}: skipped: {reason}", s.name);
            skipped.push((s.name.clone(), reason));
            continue;
        }
        let Some(pipeline) = s.pipeline.as_deref() else {
            continue;
        };
        let mut config = match PipelineConfig::load(pipeline) {
            Ok(c) => c,
            Err(e) => {
                skipped.push((s.name.clone(), format!("{e:#}")));
                continue;
            }
        };
        if config.source != s.name {
            skipped.push((
                s.name.clone(),
                format!(
                    "pipeline {} writes source `{}`, not `{}`",
                    pipeline.display(),
                    config.source,
                    s.name
                ),
            ));
            continue;
        }
        config.output.dir = recipe.run_dir(&s.name);
        ran.push(RunnableSource {
            name: s.name.clone(),
            pipeline: pipeline.to_path_buf(),
            config,
        });
    }
    (ran, skipped)
}

/// A source of a recipe whose pipeline can run.
#[derive(Debug, Clone)]
pub struct RunnableSource {
    /// Source name.
    pub name: String,
    /// Its pipeline file.
    pub pipeline: PathBuf,
    /// The pipeline, writing to the recipe's `runs/<name>/`.
    pub config: PipelineConfig,
}

/// Runs the recipe at `path`.
pub fn run_recipe(path: &Path, opts: &RecipeOptions) -> Result<RecipeOutcome> {
    let recipe = RecipeConfig::load(path)?;
    let mut ran = Vec::new();
    let (runnable, mut skipped) = runnable_sources(&recipe);
    for s in runnable {
        let run_opts = RunOptions {
            world_size: 1,
            threads: opts.threads,
            force: opts.force,
            progress: true,
            ..Default::default()
        };
        tracing::info!("source {}: running {}", s.name, s.pipeline.display());
        match run_config(&s.config, &run_opts) {
            Ok(summary) if summary.failures.is_empty() => ran.push(s.name.clone()),
            Ok(summary) => skipped.push((
                s.name.clone(),
                format!("run failed: {}", summary.failures.join("; ")),
            )),
            Err(e) => skipped.push((s.name.clone(), format!("run failed: {e:#}"))),
        }
    }
    if ran.is_empty() {
        let why: Vec<String> = skipped.iter().map(|(n, r)| format!("{n}: {r}")).collect();
        bail!(
            "no source of {} could run ({})",
            path.display(),
            why.join("; ")
        );
    }

    let model = recipe.tokenizer_model();
    let trained_tokenizer = !model.exists();
    if trained_tokenizer {
        train_recipe_tokenizer(&recipe, opts.threads)?;
    }
    let encoder = load_encoder(&model)?;
    let packed = pack(&pack_options(&recipe, opts), encoder.as_ref())?;
    let (plan, report_dir, report_markdown) = write_plan_and_report(&recipe)?;
    Ok(RecipeOutcome {
        ran,
        skipped,
        tokenizer: model,
        trained_tokenizer,
        pack_report: packed.report(),
        plan,
        report_dir,
        report_markdown,
    })
}

/// How `datamill recipe` packs: the recipe's run outputs into `OUTPUT/tokens`.
pub fn pack_options(recipe: &RecipeConfig, opts: &RecipeOptions) -> PackOptions {
    PackOptions {
        tokenizer: recipe.tokenizer_model(),
        inputs: vec![recipe.output.join("runs")],
        output: recipe.tokens_dir(),
        settings: recipe.pack.clone(),
        threads: opts.threads,
        force: opts.force,
    }
}

/// Writes `OUTPUT/plan.json` and the report under `OUTPUT/report/`; returns the plan, the
/// report folder and the report as Markdown.
pub fn write_plan_and_report(recipe: &RecipeConfig) -> Result<(MixturePlan, PathBuf, String)> {
    let supplies = recipe_supplies(recipe, &recipe.tokens_dir())?;
    let plan = plan(&recipe.mixture, &supplies, recipe.pack.max_shard_bytes);
    write_atomic(
        &recipe.output.join("plan.json"),
        &serde_json::to_vec_pretty(&plan)?,
    )?;
    let report = build_report(&recipe.output, Some(recipe))?;
    let report_dir = recipe.output.join("report");
    report.write(&report_dir)?;
    Ok((plan, report_dir, report.markdown()))
}

/// Trains the recipe's tokenizer into its model path (see [`RecipeConfig::tokenizer_model`]).
pub fn train_recipe_tokenizer(recipe: &RecipeConfig, threads: usize) -> Result<()> {
    train_tokenizer(
        recipe,
        &recipe.output.join("runs"),
        &recipe.tokenizer_model(),
        threads,
    )
}

/// Trains the tokenizer with datamill's own BPE trainer (LLaMA's rules) on a sample of the
/// run outputs: up to `sample_bytes` of text, split evenly over the sources.
fn train_tokenizer(
    recipe: &RecipeConfig,
    runs_dir: &Path,
    model: &Path,
    threads: usize,
) -> Result<()> {
    let dir = model.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let groups = crate::shards::pack::find_document_shards(&[runs_dir.to_path_buf()], dir)?;
    if groups.is_empty() {
        bail!(
            "no document shards under {} to train a tokenizer on",
            runs_dir.display()
        );
    }
    let quota = recipe.tokenizer.sample_bytes / groups.len() as u64;
    let config = crate::tokenizer::train::TrainConfig {
        vocab_size: recipe.tokenizer.vocab_size as usize,
        character_coverage: recipe.tokenizer.character_coverage,
        threads,
        sources: groups
            .iter()
            .map(|g| crate::tokenizer::corpus::SourceConfig {
                name: g.source.clone(),
                paths: g
                    .shards
                    .iter()
                    .map(|s| s.path.to_string_lossy().into_owned())
                    .collect(),
                weight: 1,
                max_bytes: quota,
            })
            .collect(),
        ..Default::default()
    };
    let (proto, report) = crate::tokenizer::train::train_tokenizer(&config)?;
    crate::tokenizer::train::write_model(&proto, model)?;
    tracing::info!("{}", report.summary(model));
    Ok(())
}
