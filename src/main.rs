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
    /// Language ID tools: `--eval FILE.tsv` prints the model's accuracy per label.
    Langid {
        /// A `label<TAB>text` file to evaluate on (top-1 label of each line).
        #[arg(long)]
        eval: PathBuf,
        /// fastText model.
        #[arg(long, default_value = datamill::filter::langid::DEFAULT_MODEL)]
        model: PathBuf,
        /// Labels to show and pool (comma-separated, e.g. `bg,ca,cs`); default: all.
        #[arg(long, value_delimiter = ',')]
        languages: Vec<String>,
    },
    /// Merge the per-shard stats of an output folder into one table.
    Stats {
        /// Output folder of a run.
        dir: PathBuf,
        /// Print JSON instead of the table.
        #[arg(long)]
        json: bool,
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
        Command::Langid {
            eval,
            model,
            languages,
        } => {
            let model = datamill::filter::langid::LidModel::load(&model)?;
            let result = datamill::filter::langid::evaluate_tsv(&model, &eval, &languages)?;
            print!("{}", result.report());
            Ok(ExitCode::SUCCESS)
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
    }
}
