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
        /// Part of a distributed run: `all`, `segment-K` (this rank's shards of segment K, then
        /// the map files of the next dedup stage), `reduce-K` (partition RANK of WORLD_SIZE) or
        /// `cluster-K` (MinHash only: joins the reduce's edges into clusters, one task).
        #[arg(long, default_value = "all")]
        step: Step,
        /// Hash partitions of the dedup map files in a distributed run.
        #[arg(long = "dedup-partitions", default_value_t = 8)]
        partitions: usize,
    },
    /// Run a pipeline on a Slurm cluster as chained array jobs.
    Slurm {
        #[command(subcommand)]
        command: SlurmCommand,
    },
    /// Fetch every path of a (gzipped) path list from BASE_URL/PATH to DEST/PATH; resumable.
    Download {
        /// Path list, one relative path per line, plain or gzipped (e.g. wet.paths.gz).
        #[arg(long)]
        list: PathBuf,
        /// URL prefix of every path (e.g. https://data.commoncrawl.org).
        #[arg(long)]
        base_url: String,
        /// Destination folder.
        #[arg(long)]
        dest: PathBuf,
        /// Files fetched at the same time.
        #[arg(long, default_value_t = 4)]
        concurrency: usize,
        /// Global rate limit over all workers in MB/s (1 MB = 10^6 bytes).
        #[arg(long)]
        rate_limit: Option<f64>,
        /// sha256sum-format file (`SHA256  PATH` lines) with expected digests.
        #[arg(long)]
        checksums: Option<PathBuf>,
        /// Failed requests in a row that brought no new bytes before a file counts as failed.
        #[arg(long, default_value_t = 6)]
        max_attempts: u32,
        /// Backoff before the first retry in milliseconds; doubles per retry (jittered).
        #[arg(long, default_value_t = 1000)]
        retry_delay_ms: u64,
        /// Connect and read timeout in seconds.
        #[arg(long, default_value_t = 60)]
        timeout: u64,
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
        /// At most this many documents per class (a deterministic uniform sample): bounds memory.
        #[arg(long, default_value_t = datamill::quality::classifier::DEFAULT_MAX_PER_CLASS)]
        max_per_class: usize,
        /// Write a quantized model (fastText's product quantizer with quantized norms; rows
        /// pruned to the 100,000 of largest norm): about a tenth of the size.
        #[arg(long)]
        quantize: bool,
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
    /// Train a LLaMA-style SentencePiece BPE tokenizer and write its `.model`.
    TrainTokenizer {
        /// Settings file (see pipelines/tokenizer.toml); the flags below override it.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Training input: datamill shards (*.jsonl[.zst|.gz]) or text files, folders, globs
        /// (replaces the sources of the settings file).
        #[arg(long, num_args = 1..)]
        input: Vec<String>,
        /// Number of pieces (default 32000).
        #[arg(long)]
        vocab_size: Option<usize>,
        /// Read at most this many bytes of text from --input (0 = all).
        #[arg(long)]
        max_bytes: Option<u64>,
        /// Share of characters the alphabet covers (default 0.99995).
        #[arg(long)]
        character_coverage: Option<f64>,
        /// Counting, run-building and merge threads (default: one per core).
        #[arg(long)]
        threads: Option<usize>,
        /// Where to write the model.
        #[arg(long)]
        output: Option<PathBuf>,
    },
    /// Encode stdin lines into space-separated ids (or decode ids back into text).
    Encode {
        /// The `.model` file.
        #[arg(long)]
        model: PathBuf,
        /// Read ids, write text.
        #[arg(long, conflicts_with = "stats")]
        decode: bool,
        /// Print only lines, bytes, tokens and bytes per token.
        #[arg(long)]
        stats: bool,
        /// Worker threads (default: one per core).
        #[arg(long, default_value_t = 0)]
        threads: usize,
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
    },
}

#[derive(Subcommand)]
enum SlurmCommand {
    /// Write sbatch scripts for every unfinished step and submit them, chained with afterok.
    Submit {
        /// The pipeline file.
        pipeline: PathBuf,
        /// Array tasks per step (each takes every N-th input file).
        #[arg(long)]
        tasks: usize,
        /// Hash partitions (reduce tasks) of each dedup step.
        #[arg(long, default_value_t = 8)]
        dedup_partitions: usize,
        /// Slurm partition (queue) to submit to.
        #[arg(long)]
        partition: Option<String>,
        /// CPUs per task (also the worker threads of each task).
        #[arg(long)]
        cpus_per_task: Option<usize>,
        /// Memory per task, as sbatch takes it (`16G`).
        #[arg(long)]
        mem: Option<String>,
        /// Time limit per task, as sbatch takes it (`04:00:00`).
        #[arg(long)]
        time: Option<String>,
        /// Output folder (replaces the pipeline's [output] dir).
        #[arg(long)]
        output: Option<PathBuf>,
        /// Write the scripts to OUTPUT/.slurm but do not submit.
        #[arg(long)]
        dry_run: bool,
        /// Wait up to this many seconds for the jobs to finish, then print the status.
        #[arg(long)]
        wait: Option<u64>,
        /// After the last step, pack the output into Megatron token shards with this
        /// SentencePiece model (one more job, chained with afterok).
        #[arg(long, requires = "pack_output")]
        pack_tokenizer: Option<PathBuf>,
        /// Folder of the token shards written by the chained packing job.
        #[arg(long, requires = "pack_tokenizer")]
        pack_output: Option<PathBuf>,
    },
    /// Show per-step and per-task progress of a run from its manifests.
    Status {
        /// The pipeline file.
        pipeline: PathBuf,
        /// Array tasks the run was submitted with.
        #[arg(long, default_value_t = 1)]
        tasks: usize,
        /// Output folder (replaces the pipeline's [output] dir).
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
            quantize,
        } => {
            let settings = datamill::quality::classifier::TrainSettings {
                epoch,
                max_per_class,
                quantize,
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
