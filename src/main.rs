//! The `datamill` command line: parses arguments, then calls the library.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::{Parser, Subcommand};

use datamill::download::{download, DownloadOptions, RetryPolicy};
use datamill::run::runner::{rank_and_world, Step};
use datamill::run::{run_pipeline, RunOptions};
use datamill::stats::MergedStats;
use datamill::tokenizer;

/// Build a LLaMA-style pretraining corpus: read, clean, deduplicate, filter, tokenize, pack.
#[derive(Parser)]
#[command(name = "datamill", version, about, long_about = None)]
#[command(
    after_help = "Commands are listed main commands first (recipe, run, slurm, report), then model\ntraining, then tools. Reference: docs/ in the source tree."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a pipeline TOML over its inputs; one output shard per input file, resumable.
    #[command(display_order = 2)]
    Run {
        /// Read this pipeline file (see pipelines/).
        pipeline: PathBuf,
        /// Read these files, folders or globs instead of the pipeline's [input] paths.
        #[arg(long, num_args = 1..)]
        input: Vec<String>,
        /// Write here instead of the pipeline's [output] dir.
        #[arg(long)]
        output: Option<PathBuf>,
        /// Take every WORLD_SIZE-th input file from this rank [default: SLURM_ARRAY_TASK_ID, else 0].
        #[arg(long)]
        rank: Option<usize>,
        /// Share the inputs among this many tasks [default: SLURM_ARRAY_TASK_COUNT, else 1].
        #[arg(long)]
        world_size: Option<usize>,
        /// Run this many worker threads [default: one per core].
        #[arg(long, default_value_t = 0, hide_default_value = true)]
        threads: usize,
        /// Redo shards that are already complete.
        #[arg(long)]
        force: bool,
        /// Run one phase of a distributed run: `all`, `segment-K` (this rank's shards of segment K, then
        /// the map files of the next dedup stage), `reduce-K` (partition RANK of WORLD_SIZE) or
        /// `cluster-K` (MinHash only: joins the reduce's edges into clusters, one task).
        #[arg(long, default_value = "all")]
        step: Step,
        /// Split the dedup map files of a distributed run into this many hash partitions.
        #[arg(long = "dedup-partitions", default_value_t = 8)]
        partitions: usize,
    },
    /// Run a pipeline on a Slurm cluster as chained array jobs.
    #[command(display_order = 3)]
    Slurm {
        #[command(subcommand)]
        command: SlurmCommand,
    },
    /// Fetch every path of a (gzipped) path list from BASE_URL/PATH to DEST/PATH; resumable.
    #[command(display_order = 30)]
    Download {
        /// Read the relative paths to fetch from this list, plain or gzipped (e.g. wet.paths.gz).
        #[arg(long)]
        list: PathBuf,
        /// Fetch each path from this URL prefix (e.g. https://data.commoncrawl.org).
        #[arg(long)]
        base_url: String,
        /// Write each path under this folder.
        #[arg(long)]
        dest: PathBuf,
        /// Fetch this many files at the same time.
        #[arg(long, default_value_t = 4)]
        concurrency: usize,
        /// Cap all workers together at this many MB/s (1 MB = 10^6 bytes) [default: no limit].
        #[arg(long)]
        rate_limit: Option<f64>,
        /// Check each file against its digest in this sha256sum-format file (`SHA256  PATH` lines).
        #[arg(long)]
        checksums: Option<PathBuf>,
        /// Give a file up after this many failed requests in a row that brought no new bytes.
        #[arg(long, default_value_t = 6)]
        max_attempts: u32,
        /// Wait this many milliseconds before the first retry; doubles per retry (jittered).
        #[arg(long, default_value_t = 1000)]
        retry_delay_ms: u64,
        /// Retry a transfer that stalls this many seconds (also caps the connect timeout at 30 s).
        #[arg(long, default_value_t = 60)]
        timeout: u64,
    },
    /// Train a Kneser-Ney n-gram model on reference text (writes MODEL and MODEL.json).
    #[command(display_order = 11)]
    TrainLm {
        /// Train on these text, JSONL or MediaWiki XML files, folders or globs.
        #[arg(long, num_args = 1.., required = true)]
        input: Vec<PathBuf>,
        /// Read every input with this pipeline reader (e.g. `wikipedia`) [default: by file type].
        #[arg(long)]
        reader: Option<String>,
        /// Count n-grams up to this order (1..=5).
        #[arg(long, default_value_t = 5)]
        order: usize,
        /// Write the model to this file.
        #[arg(long)]
        output: PathBuf,
    },
    /// Compute a language's perplexity cutoffs from a sample into the model's sidecar.
    #[command(display_order = 12)]
    LmCutoffs {
        /// Score with this model trained by `train-lm`.
        #[arg(long)]
        model: PathBuf,
        /// Store the cutoffs for this language code.
        #[arg(long, default_value = "en")]
        lang: String,
        /// Score these sample documents (same formats as `train-lm`).
        #[arg(long, num_args = 1.., required = true)]
        input: Vec<PathBuf>,
        /// Read every input with this pipeline reader [default: by file type].
        #[arg(long)]
        reader: Option<String>,
        /// Skip JSONL documents whose metadata field (e.g. `language`) names another language.
        #[arg(long)]
        language_field: Option<String>,
        /// Put the head and middle cutoffs at these percentiles.
        #[arg(long, num_args = 2, default_values_t = [30.0, 60.0])]
        percentiles: Vec<f64>,
    },
    /// Train the Wikipedia-reference fastText classifier; prints held-out precision and recall.
    #[command(display_order = 13)]
    TrainClassifier {
        /// Read reference-like documents (Wikipedia, books) from these paths.
        #[arg(long, num_args = 1.., required = true)]
        positive: Vec<PathBuf>,
        /// Read random web documents from these paths.
        #[arg(long, num_args = 1.., required = true)]
        negative: Vec<PathBuf>,
        /// Read every input with this pipeline reader [default: by file type].
        #[arg(long)]
        reader: Option<String>,
        /// Write the model to this file.
        #[arg(long)]
        output: PathBuf,
        /// Train for this many epochs.
        #[arg(long, default_value_t = 20)]
        epoch: i32,
        /// Keep at most this many documents per class (a deterministic uniform sample): bounds memory.
        #[arg(long, default_value_t = datamill::quality::classifier::DEFAULT_MAX_PER_CLASS)]
        max_per_class: usize,
    },
    /// Measure single-thread MB/s of perplexity scoring and classification on a JSONL corpus.
    #[command(display_order = 32)]
    BenchQuality {
        /// Read the documents of this JSONL(.gz/.zst) file.
        #[arg(long)]
        corpus: PathBuf,
        /// Score with this n-gram model.
        #[arg(long)]
        lm: PathBuf,
        /// Also classify with this model.
        #[arg(long)]
        classifier: Option<PathBuf>,
        /// Stop after this many MB of text.
        #[arg(long, default_value_t = 30)]
        max_mb: u64,
    },
    /// Measure the language-ID model's accuracy per label on a `label<TAB>text` file.
    #[command(display_order = 31)]
    Langid {
        /// Evaluate on this `label<TAB>text` file (top-1 label of each line).
        #[arg(long)]
        eval: PathBuf,
        /// Load this fastText model.
        #[arg(long, default_value = datamill::filter::langid::DEFAULT_MODEL)]
        model: PathBuf,
        /// Show and pool only these labels (comma-separated, e.g. `bg,ca,cs`) [default: all].
        #[arg(long, value_delimiter = ',')]
        languages: Vec<String>,
    },
    /// Merge the per-shard stats of an output folder into one table.
    #[command(display_order = 22)]
    Stats {
        /// Read the stats of this run output folder.
        dir: PathBuf,
        /// Print JSON instead of the table.
        #[arg(long)]
        json: bool,
    },
    /// Train a LLaMA-style SentencePiece BPE tokenizer and write its `.model`.
    #[command(display_order = 10)]
    TrainTokenizer {
        /// Read the settings from this file (see pipelines/tokenizer.toml); flags override it.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Train on these datamill shards (*.jsonl[.zst|.gz]) or text files, folders, globs
        /// (instead of the sources of the settings file).
        #[arg(long, num_args = 1..)]
        input: Vec<String>,
        /// Learn this many pieces, the 259 meta pieces included [default: 32000].
        #[arg(long)]
        vocab_size: Option<usize>,
        /// Read at most this many bytes of text from --input [default: all].
        #[arg(long)]
        max_bytes: Option<u64>,
        /// Cover this share of character occurrences with the alphabet [default: 0.99995].
        #[arg(long)]
        character_coverage: Option<f64>,
        /// Count, build runs and merge on this many threads [default: one per core].
        #[arg(long)]
        threads: Option<usize>,
        /// Write the model to this file [default: the settings file's `output`].
        #[arg(long)]
        output: Option<PathBuf>,
    },
    /// Encode stdin lines into space-separated ids (or decode ids back into text).
    #[command(display_order = 25)]
    Encode {
        /// Load this tokenizer `.model` file.
        #[arg(long)]
        model: PathBuf,
        /// Read ids and write text.
        #[arg(long, conflicts_with = "stats")]
        decode: bool,
        /// Print only lines, bytes, tokens and bytes per token.
        #[arg(long)]
        stats: bool,
        /// Run this many worker threads [default: one per core].
        #[arg(long, default_value_t = 0, hide_default_value = true)]
        threads: usize,
    },
    /// Tokenise run outputs into Megatron .bin/.idx shards, one family per source; resumable.
    #[command(display_order = 21)]
    Pack {
        /// Encode with this SentencePiece tokenizer model.
        #[arg(long)]
        tokenizer: PathBuf,
        /// Pack the `datamill run` outputs under these folders (searched recursively), or these shards.
        #[arg(long, required = true, num_args = 1..)]
        input: Vec<PathBuf>,
        /// Write one subfolder per source here.
        #[arg(long)]
        output: PathBuf,
        /// Leave out <s> before each document.
        #[arg(long)]
        no_bos: bool,
        /// Leave out </s> after each document.
        #[arg(long)]
        no_eos: bool,
        /// Cap a shard's .bin at this many bytes.
        #[arg(long, default_value_t = 2_000_000_000)]
        max_shard_bytes: u64,
        /// Run this many worker threads [default: one per core].
        #[arg(long, default_value_t = 0, hide_default_value = true)]
        threads: usize,
        /// Redo parts and shards that are already complete.
        #[arg(long)]
        force: bool,
    },
    /// Check Megatron shards (header, sizes, pointers, checksums) and decode a sample.
    #[command(display_order = 24)]
    VerifyShards {
        /// Check the .bin/.idx files under this folder (searched recursively).
        dir: PathBuf,
        /// Decode and check ids with this tokenizer model [default: from pack.json].
        #[arg(long)]
        tokenizer: Option<PathBuf>,
        /// Decode this many documents per shard.
        #[arg(long, default_value_t = 2)]
        samples: usize,
    },
    /// Plan the mixture of a recipe: tokens, epochs, steps, disk, shards per rank, --data-path.
    #[command(display_order = 20)]
    Plan {
        /// Plan this recipe (e.g. pipelines/llama.toml).
        recipe: PathBuf,
        /// Read the token shard families from this folder [default: the recipe's OUTPUT/tokens].
        #[arg(long)]
        tokens: Option<PathBuf>,
        /// Print JSON instead of the table.
        #[arg(long)]
        json: bool,
    },
    /// Write the Table 1 report of an output folder: Markdown on stdout, report.{md,json,html}.
    #[command(display_order = 4)]
    Report {
        /// Report on this folder (a recipe's OUTPUT, or any folder with run outputs and token shards).
        dir: PathBuf,
        /// Take the weights and training run from this recipe [default: LLaMA's Table 1].
        #[arg(long)]
        recipe: Option<PathBuf>,
        /// Write the report files here [default: DIR/report].
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// List every stage type with its parameters, defaults and drop reasons.
    #[command(display_order = 23)]
    Stages {
        /// Print the Markdown tables of docs/stages.md instead.
        #[arg(long)]
        markdown: bool,
    },
    /// List every reader with its inputs, options, defaults and quarantine reasons.
    #[command(display_order = 23)]
    Readers {
        /// Print the Markdown tables of docs/readers.md instead.
        #[arg(long)]
        markdown: bool,
    },
    /// Run a recipe end to end: source pipelines, tokenizer, pack, plan, report.
    #[command(display_order = 1)]
    Recipe {
        /// Run this recipe (e.g. pipelines/llama.toml).
        recipe: PathBuf,
        /// Run this many worker threads [default: one per core].
        #[arg(long, default_value_t = 0, hide_default_value = true)]
        threads: usize,
        /// Redo complete work.
        #[arg(long)]
        force: bool,
    },
}

#[derive(Subcommand)]
enum SlurmCommand {
    /// Write sbatch scripts for every unfinished step and submit them, chained with afterok.
    Submit {
        /// Submit this pipeline file.
        pipeline: PathBuf,
        /// Run this many array tasks per step (each takes every N-th input file).
        #[arg(long)]
        tasks: usize,
        /// Split each dedup step into this many hash partitions (reduce tasks).
        #[arg(long, default_value_t = 8)]
        dedup_partitions: usize,
        /// Submit to this Slurm partition (queue) [default: Slurm's].
        #[arg(long)]
        partition: Option<String>,
        /// Ask for this many CPUs per task, also each task's worker threads [default: Slurm's].
        #[arg(long)]
        cpus_per_task: Option<usize>,
        /// Ask for this much memory per task, as sbatch takes it (`16G`) [default: Slurm's].
        #[arg(long)]
        mem: Option<String>,
        /// Set this time limit per task, as sbatch takes it (`04:00:00`) [default: Slurm's].
        #[arg(long)]
        time: Option<String>,
        /// Use this output folder instead of the pipeline's [output] dir.
        #[arg(long)]
        output: Option<PathBuf>,
        /// Write the scripts to OUTPUT/.slurm without submitting them.
        #[arg(long)]
        dry_run: bool,
        /// Wait up to this many seconds for the jobs to finish, then print the status.
        #[arg(long)]
        wait: Option<u64>,
        /// Pack the output into Megatron token shards with this SentencePiece model after the
        /// last step (one more job, chained with afterok).
        #[arg(long, requires = "pack_output")]
        pack_tokenizer: Option<PathBuf>,
        /// Write the chained packing job's token shards here.
        #[arg(long, requires = "pack_tokenizer")]
        pack_output: Option<PathBuf>,
    },
    /// Show per-step and per-task progress of a run from its manifests.
    Status {
        /// Show the run of this pipeline file.
        pipeline: PathBuf,
        /// Use the number of array tasks the run was submitted with.
        #[arg(long, default_value_t = 1)]
        tasks: usize,
        /// Use this output folder instead of the pipeline's [output] dir.
        #[arg(long)]
        output: Option<PathBuf>,
        /// Also show which sources the chained packing job has packed into this folder.
        #[arg(long)]
        pack_output: Option<PathBuf>,
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
            step,
            partitions,
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
                step,
                partitions,
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
            max_per_class,
        } => {
            let settings = datamill::quality::classifier::TrainSettings {
                epoch,
                max_per_class,
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
                "{}: {} of {} positive, {} of {} negative documents; trained on {}, held out {}: \
                 precision {:.3} recall {:.3} accuracy {:.3}",
                output.display(),
                r.positives,
                r.positives_read,
                r.negatives,
                r.negatives_read,
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
        Command::Download {
            list,
            base_url,
            dest,
            concurrency,
            rate_limit,
            checksums,
            max_attempts,
            retry_delay_ms,
            timeout,
        } => {
            let opts = DownloadOptions {
                concurrency,
                rate_limit_mb_per_sec: rate_limit,
                checksums,
                retry: RetryPolicy {
                    max_attempts,
                    base_delay: std::time::Duration::from_millis(retry_delay_ms),
                    ..RetryPolicy::default()
                },
                timeout: std::time::Duration::from_secs(timeout),
                ..DownloadOptions::new(list, &base_url, dest)
            };
            let summary = download(&opts)?;
            print!("{}", summary.report());
            Ok(if summary.failed.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        Command::Slurm { command } => slurm(command),
        Command::Stats { dir, json } => {
            let merged = MergedStats::from_dir(&dir)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&merged)?);
            } else {
                print!("{}", merged.table());
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::TrainTokenizer {
            config,
            input,
            vocab_size,
            max_bytes,
            character_coverage,
            threads,
            output,
        } => {
            let mut cfg = match config {
                Some(path) => tokenizer::TrainConfig::load(&path)?,
                None => tokenizer::TrainConfig::default(),
            };
            if !input.is_empty() {
                cfg.sources = vec![tokenizer::corpus::SourceConfig {
                    name: "input".into(),
                    paths: input,
                    weight: 1,
                    max_bytes: max_bytes.unwrap_or(0),
                }];
            }
            cfg.vocab_size = vocab_size.unwrap_or(cfg.vocab_size);
            cfg.character_coverage = character_coverage.unwrap_or(cfg.character_coverage);
            cfg.threads = threads.unwrap_or(cfg.threads);
            let output = output
                .or(cfg.output.clone())
                .ok_or_else(|| anyhow::anyhow!("no --output (and no `output` in the settings)"))?;
            let (model, report) = tokenizer::train_tokenizer(&cfg)?;
            tokenizer::train::write_model(&model, &output)?;
            println!("{}", report.summary(&output));
            Ok(ExitCode::SUCCESS)
        }
        Command::Encode {
            model,
            decode,
            stats,
            threads,
        } => {
            let tok = tokenizer::Tokenizer::load(&model)?;
            let mode = if decode {
                tokenizer::stream::StreamMode::Decode
            } else if stats {
                tokenizer::stream::StreamMode::Stats
            } else {
                tokenizer::stream::StreamMode::Encode
            };
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()?;
            let mut input = std::io::BufReader::with_capacity(1 << 16, std::io::stdin());
            let mut out = std::io::BufWriter::with_capacity(1 << 16, std::io::stdout());
            let totals =
                pool.install(|| tokenizer::stream::run_stream(&tok, &mut input, &mut out, mode))?;
            if stats {
                println!(
                    "lines {}  bytes {}  tokens {}  bytes/token {:.4}",
                    totals.lines,
                    totals.bytes,
                    totals.tokens,
                    totals.bytes_per_token()
                );
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
        Command::Stages { markdown } => {
            use datamill::run::catalogue::{stages_markdown, stages_text};
            Ok(print_reference(markdown, stages_markdown, stages_text))
        }
        Command::Readers { markdown } => {
            use datamill::sources::catalogue::{readers_markdown, readers_text};
            Ok(print_reference(markdown, readers_markdown, readers_text))
        }
        Command::Recipe {
            recipe,
            threads,
            force,
        } => {
            let opts = datamill::recipe::RecipeOptions { threads, force };
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

/// Prints a catalogue as Markdown or as plain text.
fn print_reference(
    markdown: bool,
    as_markdown: fn() -> String,
    as_text: fn() -> String,
) -> ExitCode {
    print!("{}", if markdown { as_markdown() } else { as_text() });
    ExitCode::SUCCESS
}

fn slurm(command: SlurmCommand) -> Result<ExitCode> {
    use datamill::run::slurm;
    match command {
        SlurmCommand::Submit {
            pipeline,
            tasks,
            dedup_partitions,
            partition,
            cpus_per_task,
            mem,
            time,
            output,
            dry_run,
            wait,
            pack_tokenizer,
            pack_output,
        } => {
            let pack = match (pack_tokenizer, pack_output) {
                (Some(tokenizer), Some(output)) => Some(slurm::PackStep { tokenizer, output }),
                _ => None,
            };
            let opts = slurm::SubmitOptions {
                pipeline: pipeline.clone(),
                output: output.clone(),
                tasks,
                dedup_partitions,
                partition,
                cpus_per_task,
                mem,
                time,
                dry_run,
                wait: wait.map(std::time::Duration::from_secs),
                pack,
            };
            let jobs = slurm::submit(&opts)?;
            if jobs.is_empty() {
                println!("nothing to submit: every step is complete");
            }
            for j in &jobs {
                println!(
                    "{:<12} job {:<10} array {:?}  {}",
                    j.step,
                    if j.job_id.is_empty() {
                        "(dry run)"
                    } else {
                        &j.job_id
                    },
                    j.array,
                    j.script.display()
                );
            }
            if wait.is_some() {
                let pack_output = opts.pack.as_ref().map(|p| p.output.as_path());
                print!("{}", slurm::status(&pipeline, &output, tasks, pack_output)?);
            }
            Ok(ExitCode::SUCCESS)
        }
        SlurmCommand::Status {
            pipeline,
            tasks,
            output,
            pack_output,
        } => {
            print!(
                "{}",
                slurm::status(&pipeline, &output, tasks, pack_output.as_deref())?
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}
