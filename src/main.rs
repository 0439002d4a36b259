//! The `datamill` command line: parses arguments, then calls the library.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};

use datamill::download::{download, fetch_pages, DownloadOptions, PageFetchOptions, RetryPolicy};
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
    /// Run a pipeline TOML over its inputs; one output shard per input (file, URL or range of
    /// a big file), resumable.
    #[command(display_order = 2)]
    Run {
        /// Read this pipeline file (see pipelines/).
        pipeline: PathBuf,
        /// Read these files, folders, globs or http(s) URLs instead of the pipeline's [input]
        /// paths and path_list.
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
    /// Fetch files or pages; resumable. `--list L --base-url U --dest D` fetches every path of
    /// a (gzipped) path list from U/PATH to D/PATH; `--urls LIST --warc DIR` fetches every URL
    /// of a list (`url<TAB>count` lines from `wiki-refs`, or one URL per line) into WARC files.
    #[command(group(clap::ArgGroup::new("mode").required(true).args(["list", "urls"])))]
    #[command(display_order = 30)]
    Download {
        /// Fetch the paths of this list, one relative path per line, plain or gzipped (e.g.
        /// wet.paths.gz).
        #[arg(long, requires_all = ["base_url", "dest"])]
        list: Option<PathBuf>,
        /// Prefix every path with this URL (e.g. https://data.commoncrawl.org).
        #[arg(long, requires = "list")]
        base_url: Option<String>,
        /// Write the files of `--list` into this folder.
        #[arg(long, requires = "list")]
        dest: Option<PathBuf>,
        /// Fetch the URLs of this list (plain, .gz or .zst): `url<TAB>count` lines or one URL
        /// per line.
        #[arg(long, requires = "warc", conflicts_with = "list")]
        urls: Option<PathBuf>,
        /// Write the WARC files and the fetch log of `--urls` into this folder.
        #[arg(long, requires = "urls")]
        warc: Option<PathBuf>,
        /// Run this many transfers at the same time (default 4 files with --list, 16 pages with
        /// --urls; never two pages from one host).
        #[arg(long)]
        concurrency: Option<usize>,
        /// Limit all workers together to this many MB/s (1 MB = 10^6 bytes).
        #[arg(long)]
        rate_limit: Option<f64>,
        /// Check each file against the digests of this sha256sum-format file (`SHA256  PATH`
        /// lines; --list).
        #[arg(long, requires = "list")]
        checksums: Option<PathBuf>,
        /// Fail a file or page after this many failed requests in a row that brought no new
        /// bytes.
        #[arg(long, default_value_t = 6)]
        max_attempts: u32,
        /// Wait this many milliseconds before the first retry; doubles per retry (jittered).
        #[arg(long, default_value_t = 1000)]
        retry_delay_ms: u64,
        /// Give up a request after this many seconds: with --list, for connecting and for any
        /// stalled read; with --urls, for a whole request (default 60 and 30).
        #[arg(long)]
        timeout: Option<u64>,
        /// Keep page bodies up to this many bytes (--urls); a larger response fails as
        /// too_large.
        #[arg(long, default_value_t = 10 << 20)]
        max_page_bytes: u64,
        /// Follow at most this many redirects per URL (--urls).
        #[arg(long, default_value_t = 10)]
        max_redirects: u32,
        /// Close a WARC file when it reaches this many MB (--urls).
        #[arg(long, default_value_t = 1000)]
        warc_file_mb: u64,
        /// Hold at most this many URLs in memory at once (--urls).
        #[arg(long, default_value_t = 100_000)]
        window: usize,
        /// Queue at most this many URLs per host; more go to a second pass (--urls).
        #[arg(long, default_value_t = 256)]
        host_queue: usize,
        /// Wait this many milliseconds between two requests to one host (--urls); a host's
        /// robots.txt Crawl-delay, up to 30 s, when longer.
        #[arg(long, default_value_t = 0)]
        host_delay_ms: u64,
        /// Run as this task's rank (--urls; default: SLURM_ARRAY_TASK_ID, else 0): it fetches
        /// the hosts that hash to it, into WARC/rank-NNNNN when there are several tasks.
        #[arg(long, requires = "urls")]
        rank: Option<usize>,
        /// Share the URL list among this many tasks (default: SLURM_ARRAY_TASK_COUNT, else 1).
        #[arg(long, requires = "urls")]
        world_size: Option<usize>,
    },
    #[command(display_order = 11)]
    /// Train CCNet's perplexity model: normalise the text, train its SentencePiece model,
    /// then a modified Kneser-Ney n-gram model over the pieces with bounded memory (writes
    /// MODEL, MODEL.json naming the SentencePiece model, and the `.sp.model` beside it).
    TrainLm(datamill::lm::TrainLmOptions),
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
        /// Run fastText language ID (e.g. models/lid.176.ftz) and keep only the documents
        /// it gives `--lang`, as the CommonCrawl pipeline does before the perplexity stages.
        #[arg(long)]
        lid_model: Option<PathBuf>,
        /// Lowest language-ID probability kept with `--lid-model`.
        #[arg(long, default_value_t = 0.5)]
        lid_threshold: f32,
        /// Put the head and middle cutoffs at these percentiles.
        #[arg(long, num_args = 2, default_values_t = [30.0, 60.0])]
        percentiles: Vec<f64>,
    },
    /// List the external URLs Wikipedia articles cite (refs.tsv.zst: URL, citing articles).
    #[command(display_order = 14)]
    WikiRefs {
        /// Read these MediaWiki XML dumps (`pages-articles*.xml[.bz2]`), one per thread.
        #[arg(required = true)]
        dumps: Vec<PathBuf>,
        /// Write `URL<TAB>articles` lines sorted by URL to this file (zstd when it ends in
        /// .zst).
        #[arg(long)]
        output: PathBuf,
        /// Keep a seeded uniform sample of at most this many URLs.
        #[arg(long)]
        max_urls: Option<usize>,
        /// Seed the sample.
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Buffer this many MB of URLs before they spill to sorted runs on disk.
        #[arg(long, default_value_t = 1024)]
        memory_mb: usize,
        /// Read this many dumps at the same time [default: one per core].
        #[arg(long, default_value_t = 0, hide_default_value = true)]
        threads: usize,
    },
    /// Train the Wikipedia-reference fastText classifier; prints held-out precision and recall.
    #[command(display_order = 13)]
    TrainClassifier {
        /// Take positives from these pages of the kind Wikipedia cites: WARC of cited pages
        /// (files, folders, globs).
        #[arg(long, num_args = 1..)]
        positive: Vec<PathBuf>,
        /// Take negatives from these random Common Crawl pages (WARC, WET, JSONL; files,
        /// folders, globs).
        #[arg(long, num_args = 1.., required = true)]
        negative: Vec<PathBuf>,
        /// Take as positives the pages whose normalised URL (served, or requested as a WARC's
        /// WARC-Refers-To-Target-URI says) is in this wiki-refs list (of --positive when
        /// given, else of --negative).
        #[arg(long, conflicts_with = "positive_hosts")]
        positive_urls: Option<PathBuf>,
        /// Select positives as --positive-urls does, also taking a page whose host (`www.`
        /// ignored) is cited.
        #[arg(long)]
        positive_hosts: Option<PathBuf>,
        /// Run both sides through this pipeline's stages before `classifier`.
        #[arg(long, default_value = "pipelines/commoncrawl.toml")]
        pipeline: PathBuf,
        /// Run no pipeline stage: train on the pages as the readers give them.
        #[arg(long)]
        no_stages: bool,
        /// Read every input with this pipeline reader instead.
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
        /// Hold out the pages of this share of the hosts for the report.
        #[arg(long, default_value_t = 0.1)]
        holdout: f64,
        /// Seed the samples and the choice of held-out hosts.
        #[arg(long, default_value_t = datamill::quality::classifier::SAMPLE_SEED)]
        seed: u64,
        /// Keep the pipeline runs here (a rerun resumes) instead of a scratch folder.
        #[arg(long)]
        work_dir: Option<PathBuf>,
        /// Run the pipeline runs on this many worker threads [default: one per core].
        #[arg(long, default_value_t = 0, hide_default_value = true)]
        threads: usize,
        /// Write a quantized model (fastText's product quantizer with quantized norms; rows
        /// pruned to the 100,000 of largest norm): about a tenth of the size.
        #[arg(long)]
        quantize: bool,
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
    /// List every key of a pipeline file's tables with its type, default and what it does.
    #[command(display_order = 23)]
    PipelineKeys {
        /// Print the Markdown tables of docs/recipe.md instead.
        #[arg(long)]
        markdown: bool,
    },
    /// Show a seeded sample of a run's kept or dropped documents (paged on a terminal).
    #[command(display_order = 5)]
    Inspect {
        /// A run's output folder, or a recipe's OUTPUT (every run under it).
        dir: PathBuf,
        /// Show only this source's documents.
        #[arg(long)]
        source: Option<String>,
        /// Show documents this stage dropped (from rejected/, else the stats' samples).
        #[arg(long)]
        stage: Option<String>,
        /// Show documents dropped for this reason.
        #[arg(long)]
        reason: Option<String>,
        /// Show dropped documents of any stage instead of kept ones.
        #[arg(long)]
        dropped: bool,
        /// Show this many documents.
        #[arg(long, default_value_t = 5)]
        sample: usize,
        /// Seed the sample (another seed, other documents).
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Keep only documents whose text matches this regular expression.
        #[arg(long)]
        grep: Option<String>,
        /// Print this many lines of each document's text.
        #[arg(long, default_value_t = 12)]
        lines: usize,
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
        /// Run one part of a cluster run (`slurm submit` writes these): `all`, `tokenizer`,
        /// `pack-parts` (this rank's document shards into parts), `pack-shards` (this rank's
        /// source families into shards) or `report` (plan.json and the report).
        #[arg(long, default_value = "all")]
        step: datamill::slurm::RecipeStep,
        /// Run as this task's rank (default: SLURM_ARRAY_TASK_ID, else 0).
        #[arg(long)]
        rank: Option<usize>,
        /// Share the step among this many tasks (default: SLURM_ARRAY_TASK_COUNT, else 1).
        #[arg(long)]
        world_size: Option<usize>,
    },
}

#[derive(Subcommand)]
enum SlurmCommand {
    /// Write sbatch scripts for every unfinished step of a pipeline or a whole recipe and
    /// submit them, chained with afterok; a record goes to OUTPUT/.slurm/submitted.json.
    Submit {
        /// Submit this pipeline file, or a recipe (pipelines/llama.toml): every source, the
        /// tokenizer, packing, plan and report.
        pipeline: PathBuf,
        /// Run this many array tasks per step (each takes every N-th input file); default one
        /// per input. For a recipe: the cap on every array.
        #[arg(long)]
        tasks: Option<usize>,
        /// Split each dedup step into this many hash partitions (reduce tasks) (default 8, or
        /// the recipe's [slurm] dedup_partitions, or what the run was first submitted with).
        #[arg(long)]
        dedup_partitions: Option<usize>,
        /// Read these input files, folders or globs instead of the pipeline's [input] paths.
        #[arg(long, num_args = 1..)]
        input: Vec<String>,
        /// Slurm partition (queue) to submit to.
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
    /// Show per-step and per-task progress of a submitted pipeline or recipe: done, running,
    /// waiting, failed (with the log to read).
    Status {
        /// Show the run of this pipeline or recipe file.
        pipeline: PathBuf,
        /// Count this many array tasks, as submitted (default: from the record).
        #[arg(long)]
        tasks: Option<usize>,
        /// Read the run in this folder instead of the pipeline's [output] dir.
        #[arg(long)]
        output: Option<PathBuf>,
        /// Check these input files, folders or globs [default: those the run was submitted with].
        #[arg(long, num_args = 1..)]
        input: Vec<String>,
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
        Command::TrainLm(opts) => {
            let r = datamill::lm::train_lm(&opts)?;
            let output = &opts.output;
            let s = &r.summary;
            println!(
                "{}: {} documents, {:.1} MB normalised; pieces {} (trained on {} lines, \
                 {:.1} MB); order {}, {} sentences, {} pieces, vocabulary {}, n-grams {:?} \
                 (of {:?} counted), {} sort runs spilled",
                output.display(),
                r.docs,
                r.bytes as f64 / 1e6,
                r.sentencepiece.display(),
                r.sp_sample.lines,
                r.sp_sample.bytes as f64 / 1e6,
                s.order,
                s.sentences,
                s.tokens,
                s.vocabulary,
                s.ngrams,
                s.counted,
                s.spilled_runs
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::LmCutoffs {
            model,
            lang,
            input,
            reader,
            language_field,
            lid_model,
            lid_threshold,
            percentiles,
        } => {
            let p = [percentiles[0], percentiles[1]];
            let gate = match lid_model {
                Some(path) => Some(datamill::lm::LanguageGate {
                    model: datamill::filter::langid::LidModel::load(&path)?,
                    threshold: lid_threshold,
                }),
                None => None,
            };
            let c = datamill::lm::compute_cutoffs(
                &model,
                &lang,
                &input,
                reader.as_deref(),
                language_field.as_deref(),
                gate.as_ref(),
                p,
            )?;
            println!(
                "{lang}: head < {:.1} (p{}), middle < {:.1} (p{}) from {} documents",
                c.head, p[0], c.middle, p[1], c.docs
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::WikiRefs {
            dumps,
            output,
            max_urls,
            seed,
            memory_mb,
            threads,
        } => {
            let opts = datamill::quality::wikirefs::WikiRefsOptions {
                max_urls,
                seed,
                memory: memory_mb << 20,
                threads,
            };
            let s = datamill::quality::wikirefs::wiki_refs(&dumps, &output, &opts)?;
            println!(
                "{}: {} URLs written of {} distinct, cited by {} of {} articles in {} dump(s) \
                 ({} citations; {} cited strings not http(s) URLs; {} pages set aside)",
                output.display(),
                s.written,
                s.distinct,
                s.citing_articles,
                s.articles,
                s.dumps,
                s.citations,
                s.invalid,
                s.bad_pages
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::TrainClassifier {
            positive,
            negative,
            positive_urls,
            positive_hosts,
            pipeline,
            no_stages,
            reader,
            output,
            epoch,
            max_per_class,
            holdout,
            seed,
            work_dir,
            threads,
            quantize,
        } => {
            use datamill::quality::wikiref_training::{ClassifierInputs, PositiveMatch};
            let (refs, matching) = match (positive_urls, positive_hosts) {
                (Some(r), _) => (Some(r), PositiveMatch::Url),
                (None, Some(r)) => (Some(r), PositiveMatch::UrlOrHost),
                (None, None) => (None, PositiveMatch::All),
            };
            let inputs = ClassifierInputs {
                positive,
                negative,
                refs,
                matching,
                pipeline: (!no_stages).then_some(pipeline),
                reader,
                work_dir,
                threads,
            };
            let settings = datamill::quality::classifier::TrainSettings {
                epoch,
                max_per_class,
                holdout,
                seed,
                quantize,
                ..Default::default()
            };
            let r =
                datamill::quality::wikiref_training::train_classifier(&inputs, &output, &settings)?;
            println!(
                "{}: {} of {} positive, {} of {} negative documents; trained on {}, held out {} \
                 ({} positive, {} negative): precision {:.3} recall {:.3} accuracy {:.3}; \
                 median p(ref) held-out positives {:.3}, negatives {:.3}; kept at {}: \
                 positives {:.3}, negatives {:.3}",
                output.display(),
                r.positives,
                r.positives_read,
                r.negatives,
                r.negatives_read,
                r.trained,
                r.held_out,
                r.held_out_positives,
                r.held_out_negatives,
                r.precision,
                r.recall,
                r.accuracy,
                r.held_out_positive_median,
                r.held_out_negative_median,
                datamill::quality::classifier::KEEP_THRESHOLD,
                r.held_out_positive_kept,
                r.held_out_negative_kept
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
            urls,
            warc,
            concurrency,
            rate_limit,
            checksums,
            max_attempts,
            retry_delay_ms,
            timeout,
            max_page_bytes,
            max_redirects,
            warc_file_mb,
            window,
            host_queue,
            host_delay_ms,
            rank,
            world_size,
        } => {
            let retry = RetryPolicy {
                max_attempts,
                base_delay: std::time::Duration::from_millis(retry_delay_ms),
                ..RetryPolicy::default()
            };
            let failed = if let (Some(urls), Some(warc)) = (urls, warc) {
                let (rank, world_size) = rank_and_world(rank, world_size)?;
                let defaults = PageFetchOptions::new(urls, warc);
                let opts = PageFetchOptions {
                    concurrency: concurrency.unwrap_or(defaults.concurrency),
                    rate_limit_mb_per_sec: rate_limit,
                    retry,
                    timeout: timeout.map_or(defaults.timeout, std::time::Duration::from_secs),
                    max_page_bytes,
                    max_redirects,
                    warc_file_bytes: warc_file_mb.saturating_mul(1_000_000),
                    window,
                    per_host_queue: host_queue,
                    host_delay: std::time::Duration::from_millis(host_delay_ms),
                    rank,
                    world_size,
                    ..defaults
                };
                let summary = fetch_pages(&opts)?;
                print!("{}", summary.report());
                summary.lines == 0
            } else {
                let (Some(list), Some(base_url), Some(dest)) = (list, base_url, dest) else {
                    anyhow::bail!("--list needs --base-url and --dest");
                };
                let opts = DownloadOptions {
                    concurrency: concurrency.unwrap_or(4),
                    rate_limit_mb_per_sec: rate_limit,
                    checksums,
                    retry,
                    timeout: std::time::Duration::from_secs(timeout.unwrap_or(60)),
                    ..DownloadOptions::new(list, &base_url, dest)
                };
                let summary = download(&opts)?;
                print!("{}", summary.report());
                !summary.failed.is_empty()
            };
            Ok(if failed {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
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
        Command::Inspect {
            dir,
            source,
            stage,
            reason,
            dropped,
            sample,
            seed,
            grep,
            lines,
        } => {
            let grep = grep
                .map(|g| regex::Regex::new(&g))
                .transpose()
                .context("--grep is not a valid regular expression")?;
            let opts = datamill::report::inspect::InspectOptions {
                source,
                stage,
                reason,
                dropped,
                sample,
                seed,
                grep,
                lines,
            };
            let mut pager = datamill::report::pager::Pager::start();
            datamill::report::inspect::inspect(&dir, &opts, pager.writer())?;
            pager.finish();
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
        Command::PipelineKeys { markdown } => {
            use datamill::run::pipeline_keys::{pipeline_keys_markdown, pipeline_keys_text};
            Ok(print_reference(
                markdown,
                pipeline_keys_markdown,
                pipeline_keys_text,
            ))
        }
        Command::Recipe {
            recipe,
            threads,
            force,
            step,
            rank,
            world_size,
        } => {
            let opts = datamill::recipe::RecipeOptions { threads, force };
            if step != datamill::slurm::RecipeStep::All {
                let (rank, world) = rank_and_world(rank, world_size)?;
                let text = datamill::slurm::run_recipe_step(&recipe, step, rank, world, &opts)?;
                print!("{text}");
                return Ok(ExitCode::SUCCESS);
            }
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
            input,
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
            let resources = datamill::slurm::Resources {
                tasks: None,
                partition,
                cpus_per_task,
                mem,
                time,
            };
            if datamill::slurm::chain::is_recipe(&pipeline)? {
                if output.is_some() || !input.is_empty() || pack_tokenizer.is_some() {
                    anyhow::bail!(
                        "{} is a recipe: its output, inputs and packing come from the recipe \
                         and its pipelines (--output, --input and --pack-* are for one pipeline)",
                        pipeline.display()
                    );
                }
                let opts = datamill::slurm::RecipeSubmitOptions {
                    recipe: pipeline.clone(),
                    max_tasks: tasks,
                    dedup_partitions,
                    resources,
                    dry_run,
                    wait: wait.map(std::time::Duration::from_secs),
                };
                let done = datamill::slurm::submit_recipe(&opts)?;
                for (name, why) in &done.skipped {
                    println!("skipped {name}: {why}");
                }
                if done.jobs.is_empty() {
                    println!("nothing to submit: every step is complete");
                }
                for (source, j) in &done.jobs {
                    print_job(&format!("{source} {}", j.step), j);
                }
                println!("record: {}", done.record.display());
                if wait.is_some() {
                    print!("{}", datamill::slurm::recipe_status(&pipeline)?);
                }
                return Ok(ExitCode::SUCCESS);
            }
            let pack = match (pack_tokenizer, pack_output) {
                (Some(tokenizer), Some(output)) => Some(slurm::PackStep { tokenizer, output }),
                _ => None,
            };
            let opts = slurm::SubmitOptions {
                pipeline: pipeline.clone(),
                output: output.clone(),
                inputs: input.clone(),
                tasks: tasks.unwrap_or(0),
                dedup_partitions: dedup_partitions.unwrap_or(0),
                resources,
                dry_run,
                wait: wait.map(std::time::Duration::from_secs),
                pack,
                ..Default::default()
            };
            let jobs = slurm::submit(&opts)?;
            if jobs.is_empty() {
                println!("nothing to submit: every step is complete");
            }
            for j in &jobs {
                print_job(&j.step, j);
            }
            if wait.is_some() {
                let pack_output = opts.pack.as_ref().map(|p| p.output.as_path());
                print!(
                    "{}",
                    slurm::status(&pipeline, &output, &input, tasks, pack_output)?
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        SlurmCommand::Status {
            pipeline,
            tasks,
            output,
            input,
            pack_output,
        } => {
            if datamill::slurm::chain::is_recipe(&pipeline)? {
                print!("{}", datamill::slurm::recipe_status(&pipeline)?);
            } else {
                print!(
                    "{}",
                    slurm::status(&pipeline, &output, &input, tasks, pack_output.as_deref())?
                );
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// One line per submitted job: step, job id, array indices, script.
fn print_job(step: &str, j: &datamill::slurm::record::JobRecord) {
    println!(
        "{:<12} job {:<10} array {:?}  {}",
        step,
        if j.job_id.is_empty() {
            "(dry run)"
        } else {
            &j.job_id
        },
        j.array,
        j.script.display()
    );
}
