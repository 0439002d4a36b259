//! The `datamill` command line: parses arguments, then calls the library.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::{Parser, Subcommand};

use datamill::run::runner::rank_and_world;
use datamill::run::{run_pipeline, RunOptions};
use datamill::stats::MergedStats;

/// Builds a LLaMA-style pretraining corpus: download, read, clean, deduplicate, filter.
#[derive(Parser)]
#[command(name = "datamill", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a pipeline TOML over its inputs; one output shard per input file, resumable.
    Run {
        /// The pipeline file (see pipelines/).
        pipeline: PathBuf,
        /// Input files, folders or globs (replace the pipeline's [input] paths).
        #[arg(long, num_args = 1..)]
        input: Vec<String>,
        /// Output folder (replaces the pipeline's [output] dir).
        #[arg(long)]
        output: Option<PathBuf>,
        /// This task's rank (default: SLURM_ARRAY_TASK_ID, else 0).
        #[arg(long)]
        rank: Option<usize>,
        /// Number of tasks sharing the inputs (default: SLURM_ARRAY_TASK_COUNT, else 1).
        #[arg(long)]
        world_size: Option<usize>,
        /// Worker threads (default: one per core).
        #[arg(long, default_value_t = 0)]
        threads: usize,
        /// Redo shards that are already complete.
        #[arg(long)]
        force: bool,
    },
    /// Merge the per-shard stats of an output folder into one table.
    Stats {
        /// Output folder of a run.
        dir: PathBuf,
        /// Print JSON instead of the table.
        #[arg(long)]
        json: bool,
    },
    /// Tokenise run outputs into Megatron .bin/.idx shards, one family per source; resumable.
    Pack {
        /// SentencePiece tokenizer model.
        #[arg(long)]
        tokenizer: PathBuf,
        /// Folders with `datamill run` outputs (searched recursively) or single shards.
        #[arg(long, required = true, num_args = 1..)]
        input: Vec<PathBuf>,
        /// Output folder (one subfolder per source).
        #[arg(long)]
        output: PathBuf,
        /// Do not put <s> before each document.
        #[arg(long)]
        no_bos: bool,
        /// Do not put </s> after each document.
        #[arg(long)]
        no_eos: bool,
        /// Largest .bin of a shard, in bytes.
        #[arg(long, default_value_t = 2_000_000_000)]
        max_shard_bytes: u64,
        /// Worker threads (default: one per core).
        #[arg(long, default_value_t = 0)]
        threads: usize,
        /// Redo parts and shards that are already complete.
        #[arg(long)]
        force: bool,
    },
    /// Check Megatron shards (header, sizes, pointers, checksums) and decode a sample.
    VerifyShards {
        /// Folder with .bin/.idx files (searched recursively).
        dir: PathBuf,
        /// Tokenizer model for decoding and the vocabulary check (default: from pack.json).
        #[arg(long)]
        tokenizer: Option<PathBuf>,
        /// Documents decoded per shard.
        #[arg(long, default_value_t = 2)]
        samples: usize,
    },
    /// Plan the mixture of a recipe: tokens, epochs, steps, disk, shards per rank, --data-path.
    Plan {
        /// The recipe (pipelines/llama.toml).
        recipe: PathBuf,
        /// Folder of the token shard families (default: the recipe's OUTPUT/tokens).
        #[arg(long)]
        tokens: Option<PathBuf>,
        /// Print JSON instead of the table.
        #[arg(long)]
        json: bool,
    },
    /// Table 1 report of an output folder: Markdown on stdout, report.{md,json,html} written.
    Report {
        /// Output folder (a recipe's OUTPUT, or any folder with run outputs and token shards).
        dir: PathBuf,
        /// The recipe whose weights and training run to use (default: LLaMA Table 1).
        #[arg(long)]
        recipe: Option<PathBuf>,
        /// Where to write the report files (default: DIR/report).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Run a recipe end to end: source pipelines, tokenizer, pack, plan, report.
    Recipe {
        /// The recipe (pipelines/llama.toml).
        recipe: PathBuf,
        /// Worker threads (default: one per core).
        #[arg(long, default_value_t = 0)]
        threads: usize,
        /// Redo complete work.
        #[arg(long)]
        force: bool,
        /// Python with sentencepiece, to train the tokenizer (default: .venv/bin/python).
        #[arg(long)]
        python: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    match run(Cli::parse()) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Run {
            pipeline,
            input,
            output,
            rank,
            world_size,
            threads,
            force,
        } => {
            let (rank, world_size) = rank_and_world(rank, world_size)?;
            let opts = RunOptions {
                inputs: input,
                output,
                rank,
                world_size,
                threads,
                force,
                progress: true,
            };
            let summary = run_pipeline(&pipeline, &opts)?;
            print!("{}", summary.report());
            Ok(if summary.failures.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        Command::Stats { dir, json } => {
            let merged = MergedStats::from_dir(&dir)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&merged)?);
            } else {
                print!("{}", merged.table());
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Pack {
            tokenizer,
            input,
            output,
            no_bos,
            no_eos,
            max_shard_bytes,
            threads,
            force,
        } => {
            let encoder = datamill::shards::load_encoder(&tokenizer)?;
            let opts = datamill::shards::PackOptions {
                tokenizer,
                inputs: input,
                output,
                settings: datamill::shards::PackSettings {
                    bos: !no_bos,
                    eos: !no_eos,
                    max_shard_bytes,
                },
                threads,
                force,
            };
            let summary = datamill::shards::pack(&opts, encoder.as_ref())?;
            print!("{}", summary.report());
            Ok(ExitCode::SUCCESS)
        }
        Command::VerifyShards {
            dir,
            tokenizer,
            samples,
        } => {
            let model = tokenizer.or_else(|| datamill::shards::verify::tokenizer_from_pack(&dir));
            let encoder = model
                .as_deref()
                .map(datamill::shards::load_encoder)
                .transpose()?;
            let report = datamill::shards::verify::verify_dir(&dir, encoder.as_deref(), samples)?;
            print!("{}", report.render());
            Ok(if report.ok() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        Command::Plan {
            recipe,
            tokens,
            json,
        } => {
            let recipe = datamill::mixture::RecipeConfig::load(&recipe)?;
            let tokens = tokens.unwrap_or_else(|| recipe.tokens_dir());
            let supplies = datamill::mixture::recipe_supplies(&recipe, &tokens)?;
            let plan =
                datamill::mixture::plan(&recipe.mixture, &supplies, recipe.pack.max_shard_bytes);
            if json {
                println!("{}", serde_json::to_string_pretty(&plan)?);
            } else {
                print!("{}", plan.render());
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Report { dir, recipe, out } => {
            let recipe = recipe
                .as_deref()
                .map(datamill::mixture::RecipeConfig::load)
                .transpose()?;
            let report = datamill::report::build_report(&dir, recipe.as_ref())?;
            print!("{}", report.markdown());
            let html = report.write(&out.unwrap_or_else(|| dir.join("report")))?;
            println!("\nreport written: {}", html.display());
            Ok(ExitCode::SUCCESS)
        }
        Command::Recipe {
            recipe,
            threads,
            force,
            python,
        } => {
            let opts = datamill::recipe::RecipeOptions {
                threads,
                force,
                python,
            };
            let done = datamill::recipe::run_recipe(&recipe, &opts)?;
            for (name, why) in &done.skipped {
                println!("skipped {name}: {why}");
            }
            println!(
                "tokenizer: {}{}",
                done.tokenizer.display(),
                if done.trained_tokenizer {
                    " (trained now)"
                } else {
                    ""
                }
            );
            print!(
                "\n{}\n{}\n{}",
                done.pack_report,
                done.plan.render(),
                done.report_markdown
            );
            println!(
                "\nreport: {}",
                done.report_dir.join("report.html").display()
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}
