//! The parts of a recipe that run as their own jobs after the source pipelines (`datamill
//! recipe RECIPE --step STEP`): tokenizer training, the two packing phases, plan and report.
//! Each does what `datamill recipe` does at that point, so the files are the same.

use std::path::Path;

use anyhow::{bail, Result};

use crate::mixture::RecipeConfig;
use crate::recipe::{pack_options, train_recipe_tokenizer, write_plan_and_report, RecipeOptions};
use crate::shards::{load_encoder, pack::pack_parts, pack::pack_shards};

/// One step of a recipe.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum RecipeStep {
    /// The whole recipe in this process (`datamill recipe`).
    #[default]
    All,
    /// Train the tokenizer when its model is missing (one task).
    Tokenizer,
    /// Packing phase 1: tokenise this rank's share of the document shards into parts.
    PackParts,
    /// Packing phase 2: cut and write this rank's share of the source families.
    PackShards,
    /// Write `plan.json` and the report (one task).
    Report,
}

impl RecipeStep {
    /// The step's name on the command line and in job names.
    pub fn name(self) -> &'static str {
        match self {
            RecipeStep::All => "all",
            RecipeStep::Tokenizer => "tokenizer",
            RecipeStep::PackParts => "pack-parts",
            RecipeStep::PackShards => "pack-shards",
            RecipeStep::Report => "report",
        }
    }
}

impl std::str::FromStr for RecipeStep {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> Result<RecipeStep> {
        let all = [
            RecipeStep::All,
            RecipeStep::Tokenizer,
            RecipeStep::PackParts,
            RecipeStep::PackShards,
            RecipeStep::Report,
        ];
        match all.into_iter().find(|step| step.name() == s) {
            Some(step) => Ok(step),
            None => {
                bail!("bad step `{s}`: expected all, tokenizer, pack-parts, pack-shards or report")
            }
        }
    }
}

/// Runs `step` (not `All`) of the recipe at `path` as task `rank` of `world`; returns the
/// text to print.
pub fn run_recipe_step(
    path: &Path,
    step: RecipeStep,
    rank: usize,
    world: usize,
    opts: &RecipeOptions,
) -> Result<String> {
    let recipe = RecipeConfig::load(path)?;
    let model = recipe.tokenizer_model();
    match step {
        RecipeStep::All => bail!("run the whole recipe with `datamill recipe` (no --step)"),
        RecipeStep::Tokenizer => {
            if model.exists() {
                return Ok(format!("tokenizer: {} (exists, kept)\n", model.display()));
            }
            train_recipe_tokenizer(&recipe, opts.threads)?;
            Ok(format!("tokenizer: {} (trained now)\n", model.display()))
        }
        RecipeStep::PackParts => {
            let encoder = load_encoder(&model)?;
            let done = pack_parts(&pack_options(&recipe, opts), encoder.as_ref(), rank, world)?;
            Ok(done.report())
        }
        RecipeStep::PackShards => {
            let encoder = load_encoder(&model)?;
            let done = pack_shards(&pack_options(&recipe, opts), encoder.as_ref(), rank, world)?;
            Ok(done.report())
        }
        RecipeStep::Report => {
            let (plan, dir, markdown) = write_plan_and_report(&recipe)?;
            Ok(format!(
                "{}\n{markdown}\nreport: {}\n",
                plan.render(),
                dir.join("report.html").display()
            ))
        }
    }
}
