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
    /// Train a Kneser-Ney n-gram model on reference text (writes MODEL and MODEL.json).
    TrainLm {
        /// Text, JSONL or MediaWiki XML files, folders or globs.
        #[arg(long, num_args = 1.., required = true)]
        input: Vec<PathBuf>,
        /// Read every input with this pipeline reader instead (e.g. `wikipedia`).
        #[arg(long)]
        reader: Option<String>,
        /// Model order (1..=5).
        #[arg(long, default_value_t = 5)]
        order: usize,
        /// Model file to write.
        #[arg(long)]
        output: PathBuf,
    },
    /// Compute a language's perplexity cutoffs from a sample into the model's sidecar.
    LmCutoffs {
        /// Model trained by `train-lm`.
        #[arg(long)]
        model: PathBuf,
        /// Language code the cutoffs are for.
        #[arg(long, default_value = "en")]
        lang: String,
        /// Sample documents (same formats as `train-lm`).
        #[arg(long, num_args = 1.., required = true)]
        input: Vec<PathBuf>,
        /// Read every input with this pipeline reader instead.
        #[arg(long)]
        reader: Option<String>,
        /// Skip JSONL documents whose metadata field (e.g. `language`) names another language.
        #[arg(long)]
        language_field: Option<String>,
        /// Percentiles for the head and middle cutoffs.
        #[arg(long, num_args = 2, default_values_t = [30.0, 60.0])]
        percentiles: Vec<f64>,
    },
    /// Train the Wikipedia-reference fastText classifier; prints held-out precision and recall.
    TrainClassifier {
        /// Reference-like documents (Wikipedia, books).
        #[arg(long, num_args = 1.., required = true)]
        positive: Vec<PathBuf>,
        /// Random web documents.
        #[arg(long, num_args = 1.., required = true)]
        negative: Vec<PathBuf>,
        /// Read every input with this pipeline reader instead.
        #[arg(long)]
        reader: Option<String>,
        /// Model file to write.
        #[arg(long)]
        output: PathBuf,
        /// Training epochs.
        #[arg(long, default_value_t = 20)]
        epoch: i32,
    },
    /// Single-thread MB/s of perplexity scoring and reference classification on a JSONL corpus.
    BenchQuality {
        /// JSONL(.gz/.zst) corpus.
        #[arg(long)]
        corpus: PathBuf,
        /// n-gram model.
        #[arg(long)]
        lm: PathBuf,
        /// Classifier model.
        #[arg(long)]
        classifier: Option<PathBuf>,
        /// Stop reading the corpus after this many MB of text.
        #[arg(long, default_value_t = 30)]
        max_mb: u64,
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
        Command::TrainLm {
            input,
            reader,
            order,
            output,
        } => {
            let s = datamill::lm::train_lm(&input, reader.as_deref(), order, &output)?;
            println!(
                "{}: order {}, {} sentences, {} tokens, vocabulary {}, n-grams {:?}",
                output.display(),
                s.order,
                s.sentences,
                s.tokens,
                s.vocabulary,
                s.ngrams
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::LmCutoffs {
            model,
            lang,
            input,
            reader,
            language_field,
            percentiles,
        } => {
            let p = [percentiles[0], percentiles[1]];
            let c = datamill::lm::compute_cutoffs(
                &model,
                &lang,
                &input,
                reader.as_deref(),
                language_field.as_deref(),
                p,
            )?;
            println!(
                "{lang}: head < {:.1} (p{}), middle < {:.1} (p{}) from {} documents",
                c.head, p[0], c.middle, p[1], c.docs
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::TrainClassifier {
            positive,
            negative,
            reader,
            output,
            epoch,
        } => {
            let settings = datamill::quality::classifier::TrainSettings {
                epoch,
                ..Default::default()
            };
            let r = datamill::quality::classifier::train_classifier(
                &positive,
                &negative,
                reader.as_deref(),
                &output,
                &settings,
            )?;
            println!(
                "{}: {} positive, {} negative documents; trained on {}, held out {}: \
                 precision {:.3} recall {:.3} accuracy {:.3}",
                output.display(),
                r.positives,
                r.negatives,
                r.trained,
                r.held_out,
                r.precision,
                r.recall,
                r.accuracy
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::BenchQuality {
            corpus,
            lm,
            classifier,
            max_mb,
        } => {
            let b = datamill::quality::bench::bench_quality(
                &corpus,
                &lm,
                classifier.as_deref(),
                max_mb << 20,
            )?;
            println!(
                "quality bench: {} docs, {:.1} MB: perplexity {:.2} MB/s per core, classifier {} MB/s per core",
                b.docs,
                b.bytes as f64 / 1e6,
                b.perplexity_mb_s,
                b.classifier_mb_s
                    .map_or("-".to_string(), |v| format!("{v:.2}"))
            );
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
