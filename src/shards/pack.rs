//! `datamill pack`: tokenises the `*.jsonl.zst` document shards of `datamill run` outputs into
//! one family of Megatron datasets per source, `OUT/<source>/<source>_NNNNN.{bin,idx}`.
//!
//! Two phases, both parallel and both resumable:
//! 1. every input shard is tokenised on its own into a part, `OUT/<source>/.work/NNNNN`
//!    (a Megatron dataset plus a manifest), in parallel over input shards;
//! 2. the parts' documents, in sorted input order, are cut into output shards of at most
//!    `max_shard_bytes` (a shard is closed before a document that would overflow it), and the
//!    output shards are written in parallel.
//!
//! Where a document lands depends only on the sorted input list and the token counts, never on
//! the thread count. Every file is written under a temporary name and renamed; a manifest
//! beside each part and each output shard marks it complete, and `OUT/<source>/pack.json` marks
//! the family complete; a rerun redoes only what is missing or stale.

use std::fs::File;
use std::io::{BufReader, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::encoder::TokenEncoder;
use super::megatron::{dataset_paths, DatasetFiles, DatasetWriter, LengthStream, TokenDtype};
use crate::doc::{file_name, file_xxh3, write_atomic, JsonlReader};
use crate::stats::ShardStats;

/// How documents are turned into token sequences and cut into shards (`[pack]` in a recipe).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct PackSettings {
    /// Put `<s>` before every document (LLaMA: yes).
    pub bos: bool,
    /// Put `</s>` after every document (Megatron `--append-eod`; LLaMA: yes).
    pub eos: bool,
    /// Largest `.bin` of an output shard in bytes (default 2 GB, i.e. 1G uint16 tokens).
    pub max_shard_bytes: u64,
}

impl Default for PackSettings {
    fn default() -> Self {
        PackSettings {
            bos: true,
            eos: true,
            max_shard_bytes: 2_000_000_000,
        }
    }
}

/// Everything `datamill pack` needs.
#[derive(Debug, Clone)]
pub struct PackOptions {
    /// The SentencePiece `.model` file.
    pub tokenizer: PathBuf,
    /// Folders holding `datamill run` outputs (searched recursively) or single shards.
    pub inputs: Vec<PathBuf>,
    /// Output folder; one subfolder per source.
    pub output: PathBuf,
    /// Sequence settings and shard size.
    pub settings: PackSettings,
    /// Worker threads (0 = one per core).
    pub threads: usize,
    /// Redo everything, even complete parts and shards.
    pub force: bool,
}

/// One input document shard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputShard {
    /// Path of the `*.jsonl.zst` file.
    pub path: PathBuf,
    /// Its size in bytes.
    pub bytes: u64,
}

/// The input shards of one source, sorted by path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceInputs {
    /// Source name (`commoncrawl`, `c4`, ...), from the run's stats or the folder name.
    pub source: String,
    /// Its shards in sorted order.
    pub shards: Vec<InputShard>,
}

/// Finds the document shards under `inputs` and groups them by source. Rejected documents,
/// quarantine files, hidden folders (`.work`) and `exclude` (the pack output) are skipped.
pub fn find_document_shards(inputs: &[PathBuf], exclude: &Path) -> Result<Vec<SourceInputs>> {
    let mut found: Vec<(String, PathBuf)> = Vec::new();
    for input in inputs {
        if input.is_file() {
            found.push((source_of(input), input.clone()));
        } else if input.is_dir() {
            walk(input, exclude, &mut found)?;
        } else {
            bail!("input {} does not exist", input.display());
        }
    }
    found.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.cmp(&b.1)));
    found.dedup();
    let mut groups: Vec<SourceInputs> = Vec::new();
    for (source, path) in found {
        let bytes = std::fs::metadata(&path)
            .with_context(|| format!("cannot stat {}", path.display()))?
            .len();
        let shard = InputShard { path, bytes };
        match groups.last_mut() {
            Some(g) if g.source == source => g.shards.push(shard),
            _ => groups.push(SourceInputs {
                source,
                shards: vec![shard],
            }),
        }
    }
    Ok(groups)
}

fn walk(dir: &Path, exclude: &Path, out: &mut Vec<(String, PathBuf)>) -> Result<()> {
    if same_path(dir, exclude) {
        return Ok(());
    }
    for p in crate::doc::sorted_entries(dir)? {
        let name = file_name(&p);
        if p.is_dir() {
            if name != "rejected" && name != "quarantine" {
                walk(&p, exclude, out)?;
            }
        } else if name.ends_with(".jsonl.zst") {
            out.push((source_of(&p), p));
        }
    }
    Ok(())
}

fn same_path(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(x), Ok(y)) => x == y,
        _ => false,
    }
}

/// The source of a run output shard: the `source` of its `NNNNN.stats.json`, else the name of
/// its folder. Only letters, digits, `-` and `_` are kept (it names a folder).
pub fn source_of(shard: &Path) -> String {
    let name = file_name(shard);
    let stem = name.strip_suffix(".jsonl.zst").unwrap_or(&name);
    let stats = shard.with_file_name(format!("{stem}.stats.json"));
    let from_stats = std::fs::read(&stats)
        .ok()
        .and_then(|b| serde_json::from_slice::<ShardStats>(&b).ok())
        .map(|s| s.source)
        .filter(|s| !s.is_empty());
    let raw = from_stats.unwrap_or_else(|| {
        shard
            .parent()
            .map(file_name)
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "documents".to_string())
    });
    let clean: String = raw
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    clean
}

/// The manifest of a part (one tokenised input shard).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PartManifest {
    /// Input shard path.
    pub input: String,
    /// Input shard size.
    pub input_bytes: u64,
    /// Hash of the tokenizer and sequence settings.
    pub config_hash: String,
    /// UTF-8 bytes of the documents' text.
    pub text_bytes: u64,
    /// Documents with empty text, left out.
    pub empty_docs: u64,
    /// Lines that were not documents, left out (logged).
    pub bad_records: u64,
    /// The part dataset.
    pub files: DatasetFiles,
}

/// Which documents of which input an output shard holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardPiece {
    /// Input shard path.
    pub input: String,
    /// Input shard size.
    pub input_bytes: u64,
    /// First document (index among the input's packed documents).
    pub first_doc: u64,
    /// Number of documents.
    pub docs: u64,
}

/// The manifest beside each output shard (`<prefix>.manifest.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShardManifest {
    /// Source name.
    pub source: String,
    /// Hash of the tokenizer, sequence settings and shard size.
    pub config_hash: String,
    /// Where the documents come from, in order.
    pub pieces: Vec<ShardPiece>,
    /// The dataset files.
    pub files: DatasetFiles,
}

/// Per input shard totals, as recorded in `pack.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PackedInput {
    /// Input shard path.
    pub input: String,
    /// Input shard size.
    pub input_bytes: u64,
    /// Packed documents.
    pub docs: u64,
    /// Tokens (with BOS/EOS).
    pub tokens: u64,
    /// UTF-8 text bytes of the packed documents.
    pub text_bytes: u64,
    /// Documents with empty text, left out.
    pub empty_docs: u64,
    /// Lines that were not documents, left out.
    pub bad_records: u64,
}

/// Per output shard totals, as recorded in `pack.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PackedShard {
    /// Megatron prefix, relative to the family folder (`c4_00000`).
    pub prefix: String,
    /// Documents.
    pub docs: u64,
    /// Tokens.
    pub tokens: u64,
    /// `.bin` size.
    pub bin_bytes: u64,
    /// `.idx` size.
    pub idx_bytes: u64,
}

/// `OUT/<source>/pack.json`: one finished shard family.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PackedSource {
    /// Source name.
    pub source: String,
    /// Tokenizer model path as given.
    pub tokenizer: String,
    /// xxh3-64 of the tokenizer model file.
    pub tokenizer_xxh3: String,
    /// Vocabulary size.
    pub vocab_size: usize,
    /// Token dtype of every shard.
    pub dtype: TokenDtype,
    /// `<s>` id put before each document, if any.
    pub bos_id: Option<u32>,
    /// `</s>` id put after each document, if any.
    pub eos_id: Option<u32>,
    /// Settings used.
    pub settings: PackSettings,
    /// Hash of all of the above that shapes the output.
    pub config_hash: String,
    /// Input shards in order.
    pub inputs: Vec<PackedInput>,
    /// Output shards in order.
    pub shards: Vec<PackedShard>,
    /// Total documents.
    pub docs: u64,
    /// Total tokens.
    pub tokens: u64,
    /// Total UTF-8 text bytes.
    pub text_bytes: u64,
    /// Total `.bin` + `.idx` bytes.
    pub disk_bytes: u64,
}

/// What `datamill pack` did.
#[derive(Debug, Clone, Default)]
pub struct PackSummary {
    /// One entry per source family.
    pub sources: Vec<PackedSource>,
    /// Input shards tokenised now (the others were complete).
    pub parts_done: usize,
    /// Output shards written now.
    pub shards_written: usize,
    /// Sources found complete and skipped.
    pub sources_skipped: usize,
    /// Text bytes tokenised now.
    pub text_bytes_done: u64,
    /// Tokens produced now.
    pub tokens_done: u64,
    /// Seconds spent tokenising.
    pub tokenize_seconds: f64,
    /// Wall time.
    pub seconds: f64,
    /// Threads used.
    pub threads: usize,
    /// Peak resident memory.
    pub peak_rss: Option<u64>,
}

/// File name of output shard `index` of `source` (without extension).
pub fn shard_prefix(source: &str, index: usize) -> String {
    format!("{source}_{index:05}")
}

#[derive(Clone)]
struct Family {
    source: String,
    dir: PathBuf,
    inputs: Vec<InputShard>,
}

struct Setup<'a> {
    encoder: &'a dyn TokenEncoder,
    dtype: TokenDtype,
    bos: Option<u32>,
    eos: Option<u32>,
    part_hash: String,
    shard_hash: String,
}

/// Runs `datamill pack`: both phases, every family, in this process.
pub fn pack(opts: &PackOptions, encoder: &dyn TokenEncoder) -> Result<PackSummary> {
    // Phase 2 as the only task tokenises every missing part first.
    pack_shards(opts, encoder, 0, 1)
}

/// Phase 1 of `datamill pack` as task `rank` of `world` (a cluster array): tokenises every
/// `world`-th input shard (counted over all families, in sorted order) into its part.
pub fn pack_parts(
    opts: &PackOptions,
    encoder: &dyn TokenEncoder,
    rank: usize,
    world: usize,
) -> Result<PackSummary> {
    let started = Instant::now();
    let prepared = prepare(opts, encoder)?;
    Ok(tokenize_parts(opts, &prepared, rank, world)?.timed(started))
}

/// Phase 2 of `datamill pack` as task `rank` of `world`: for every `world`-th family, checks
/// that each part is there (tokenising any that is not), cuts and writes the shards and
/// `pack.json`, then removes the parts. With phase 1 before it, the files equal `pack`'s.
pub fn pack_shards(
    opts: &PackOptions,
    encoder: &dyn TokenEncoder,
    rank: usize,
    world: usize,
) -> Result<PackSummary> {
    let started = Instant::now();
    let mut prepared = prepare(opts, encoder)?;
    // Family k of the sorted list (finished or not) falls to rank k % world, so a task's
    // share does not depend on what other tasks have finished.
    let mine: Vec<String> = prepared
        .families
        .iter()
        .enumerate()
        .filter(|(k, _)| k % world.max(1) == rank)
        .map(|(_, f)| f.source.clone())
        .collect();
    prepared.todo.retain(|f| mine.contains(&f.source));
    let mut summary = tokenize_parts(opts, &prepared, 0, 1)?;
    write_families(opts, &prepared, &mut summary)?;
    Ok(summary.timed(started))
}

/// Which tasks of a two-phase cluster pack have work left: the ranks of `parts_world` with a
/// part still to tokenise, and those of `shards_world` with a family still to write.
pub fn pack_pending(
    opts: &PackOptions,
    encoder: &dyn TokenEncoder,
    parts_world: usize,
    shards_world: usize,
) -> Result<(Vec<usize>, Vec<usize>)> {
    let prepared = prepare(opts, encoder)?;
    let mut parts = Vec::new();
    let mut shards = Vec::new();
    for (k, fam) in prepared.families.iter().enumerate() {
        if prepared.done_sources.contains(&fam.source) {
            continue;
        }
        let first = prepared.first_job[k];
        for i in 0..fam.inputs.len() {
            let rank = (first + i) % parts_world.max(1);
            if !parts.contains(&rank) && !part_current(fam, i, &prepared.setup) {
                parts.push(rank);
            }
        }
        let rank = k % shards_world.max(1);
        if !shards.contains(&rank) {
            shards.push(rank);
        }
    }
    parts.sort_unstable();
    shards.sort_unstable();
    Ok((parts, shards))
}

/// Every family and the settings of one pack, checked once for both phases.
struct Prepared<'a> {
    setup: Setup<'a>,
    tokenizer_xxh3: String,
    vocab_size: usize,
    /// Every family, in sorted order.
    families: Vec<Family>,
    /// Index of each family's first input in the global job order (over all families).
    first_job: Vec<usize>,
    /// Families whose `pack.json` is current, with it.
    done: Vec<PackedSource>,
    /// Their names.
    done_sources: Vec<String>,
    /// Families still to pack (clones of `families` entries), in order.
    todo: Vec<Family>,
}

fn prepare<'a>(opts: &PackOptions, encoder: &'a dyn TokenEncoder) -> Result<Prepared<'a>> {
    let groups = find_document_shards(&opts.inputs, &opts.output)?;
    if groups.is_empty() {
        bail!(
            "no *.jsonl.zst document shard under {}",
            opts.inputs
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    let settings = &opts.settings;
    if settings.max_shard_bytes == 0 {
        bail!("max_shard_bytes must be positive");
    }
    let vocab_size = encoder.vocab_size();
    let dtype = TokenDtype::for_vocab(vocab_size);
    let bos = if settings.bos {
        Some(
            encoder
                .bos_id()
                .context("bos = true but the tokenizer has no <s>")?,
        )
    } else {
        None
    };
    let eos = if settings.eos {
        Some(
            encoder
                .eos_id()
                .context("eos = true but the tokenizer has no </s>")?,
        )
    } else {
        None
    };
    let tokenizer_xxh3 = file_xxh3(&opts.tokenizer)?;
    let part_hash = hash_of(&serde_json::json!({
        "tokenizer": tokenizer_xxh3, "bos": bos, "eos": eos, "dtype": dtype,
    }));
    let shard_hash = hash_of(&serde_json::json!({
        "part": part_hash, "max_shard_bytes": settings.max_shard_bytes,
    }));
    let setup = Setup {
        encoder,
        dtype,
        bos,
        eos,
        part_hash,
        shard_hash,
    };
    let families: Vec<Family> = groups
        .into_iter()
        .map(|g| Family {
            dir: opts.output.join(&g.source),
            source: g.source,
            inputs: g.shards,
        })
        .collect();
    let mut first_job = Vec::new();
    let mut jobs = 0;
    let mut done = Vec::new();
    let mut todo = Vec::new();
    for fam in &families {
        first_job.push(jobs);
        jobs += fam.inputs.len();
        match (!opts.force)
            .then(|| complete_family(fam, &setup))
            .flatten()
        {
            Some(d) => done.push(d),
            None => todo.push(fam.clone()),
        }
    }
    Ok(Prepared {
        setup,
        tokenizer_xxh3,
        vocab_size,
        first_job,
        done_sources: done.iter().map(|d| d.source.clone()).collect(),
        done,
        families,
        todo,
    })
}

/// Phase 1: tokenises the parts of the unfinished families that fall to `rank` of `world`
/// (global job `j` goes to rank `j % world`), in parallel.
fn tokenize_parts(
    opts: &PackOptions,
    prepared: &Prepared,
    rank: usize,
    world: usize,
) -> Result<PackSummary> {
    let pool = thread_pool(opts)?;
    let mut summary = PackSummary {
        threads: pool.current_num_threads(),
        sources_skipped: prepared.done.len(),
        sources: prepared.done.clone(),
        ..Default::default()
    };
    let jobs: Vec<(&Family, usize)> = prepared
        .families
        .iter()
        .zip(&prepared.first_job)
        .filter(|(f, _)| prepared.todo.iter().any(|t| t.source == f.source))
        .flat_map(|(f, &first)| {
            (0..f.inputs.len())
                .filter(move |i| (first + i) % world.max(1) == rank)
                .map(move |i| (f, i))
        })
        .collect();
    let t = Instant::now();
    let results: Vec<Result<Option<PartManifest>>> = pool.install(|| {
        jobs.par_iter()
            .map(|(fam, i)| tokenize_part(fam, *i, &prepared.setup, opts.force))
            .collect()
    });
    summary.tokenize_seconds = t.elapsed().as_secs_f64();
    for r in results {
        if let Some(m) = r? {
            summary.parts_done += 1;
            summary.text_bytes_done += m.text_bytes;
            summary.tokens_done += m.files.tokens;
        }
    }
    Ok(summary)
}

fn thread_pool(opts: &PackOptions) -> Result<rayon::ThreadPool> {
    rayon::ThreadPoolBuilder::new()
        .num_threads(opts.threads)
        .build()
        .context("cannot start worker threads")
}

/// Phase 2: cuts each unfinished family into shards, writes them in parallel, then its
/// `pack.json`, and removes its parts.
fn write_families(
    opts: &PackOptions,
    prepared: &Prepared,
    summary: &mut PackSummary,
) -> Result<()> {
    let pool = thread_pool(opts)?;
    let setup = &prepared.setup;
    let settings = &opts.settings;
    for fam in &prepared.todo {
        let parts: Vec<PartManifest> = (0..fam.inputs.len())
            .map(|i| {
                if !part_current(fam, i, setup) {
                    bail!(
                        "part {} of {} is missing or stale: tokenise it first",
                        i,
                        fam.source
                    );
                }
                read_part_manifest(&fam.dir, i)
            })
            .collect::<Result<_>>()?;
        let plans = plan_shards(fam, &parts, setup, settings.max_shard_bytes)?;
        let written: Vec<Result<(PackedShard, bool)>> = pool.install(|| {
            plans
                .par_iter()
                .enumerate()
                .map(|(i, plan)| write_shard(fam, i, plan, setup, opts.force))
                .collect()
        });
        let mut shards = Vec::new();
        for r in written {
            let (s, now) = r?;
            summary.shards_written += now as usize;
            shards.push(s);
        }
        remove_stale_shards(&fam.dir, &fam.source, plans.len())?;
        let packed = PackedSource {
            source: fam.source.clone(),
            tokenizer: opts.tokenizer.display().to_string(),
            tokenizer_xxh3: prepared.tokenizer_xxh3.clone(),
            vocab_size: prepared.vocab_size,
            dtype: setup.dtype,
            bos_id: setup.bos,
            eos_id: setup.eos,
            settings: settings.clone(),
            config_hash: setup.shard_hash.clone(),
            inputs: parts
                .iter()
                .map(|p| PackedInput {
                    input: p.input.clone(),
                    input_bytes: p.input_bytes,
                    docs: p.files.docs,
                    tokens: p.files.tokens,
                    text_bytes: p.text_bytes,
                    empty_docs: p.empty_docs,
                    bad_records: p.bad_records,
                })
                .collect(),
            docs: shards.iter().map(|s| s.docs).sum(),
            tokens: shards.iter().map(|s| s.tokens).sum(),
            text_bytes: parts.iter().map(|p| p.text_bytes).sum(),
            disk_bytes: shards.iter().map(|s| s.bin_bytes + s.idx_bytes).sum(),
            shards,
        };
        write_atomic(
            &fam.dir.join("pack.json"),
            &serde_json::to_vec_pretty(&packed)?,
        )?;
        let _ = std::fs::remove_dir_all(fam.dir.join(".work"));
        summary.sources.push(packed);
    }
    summary.sources.sort_by(|a, b| a.source.cmp(&b.source));
    Ok(())
}

fn hash_of(v: &serde_json::Value) -> String {
    format!(
        "{:016x}",
        xxhash_rust::xxh3::xxh3_64(v.to_string().as_bytes())
    )
}

fn part_prefix(dir: &Path, index: usize) -> PathBuf {
    dir.join(".work").join(format!("{index:05}"))
}

fn part_manifest_path(dir: &Path, index: usize) -> PathBuf {
    dir.join(".work").join(format!("{index:05}.manifest.json"))
}

fn read_part_manifest(dir: &Path, index: usize) -> Result<PartManifest> {
    let p = part_manifest_path(dir, index);
    let bytes = std::fs::read(&p).with_context(|| format!("cannot read {}", p.display()))?;
    serde_json::from_slice(&bytes)
        .with_context(|| format!("{} is not a part manifest", p.display()))
}

fn files_present(prefix: &Path, files: &DatasetFiles) -> bool {
    let (bin, idx) = dataset_paths(prefix);
    let size = |p: &Path| std::fs::metadata(p).map(|m| m.len()).ok();
    size(&bin) == Some(files.bin_bytes) && size(&idx) == Some(files.idx_bytes)
}

/// The family's `pack.json` if it matches the current inputs and settings and its files exist.
fn complete_family(fam: &Family, setup: &Setup) -> Option<PackedSource> {
    let bytes = std::fs::read(fam.dir.join("pack.json")).ok()?;
    let done: PackedSource = serde_json::from_slice(&bytes).ok()?;
    let same_inputs = done.inputs.len() == fam.inputs.len()
        && done
            .inputs
            .iter()
            .zip(&fam.inputs)
            .all(|(d, i)| d.input == i.path.to_string_lossy() && d.input_bytes == i.bytes);
    let files_ok = done.shards.iter().all(|s| {
        let (bin, idx) = dataset_paths(&fam.dir.join(&s.prefix));
        std::fs::metadata(bin).map(|m| m.len()).ok() == Some(s.bin_bytes)
            && std::fs::metadata(idx).map(|m| m.len()).ok() == Some(s.idx_bytes)
    });
    (same_inputs && files_ok && done.config_hash == setup.shard_hash).then_some(done)
}

/// True when the part of input `index` of `fam` is complete for these inputs and settings.
fn part_current(fam: &Family, index: usize, setup: &Setup) -> bool {
    let input = &fam.inputs[index];
    read_part_manifest(&fam.dir, index).is_ok_and(|m| {
        m.input == input.path.display().to_string()
            && m.input_bytes == input.bytes
            && m.config_hash == setup.part_hash
            && files_present(&part_prefix(&fam.dir, index), &m.files)
    })
}

/// Tokenises input `index` of `fam` into its part; `None` if the part was already complete.
fn tokenize_part(
    fam: &Family,
    index: usize,
    setup: &Setup,
    force: bool,
) -> Result<Option<PartManifest>> {
    let input = &fam.inputs[index];
    let shown = input.path.display().to_string();
    if !force && part_current(fam, index, setup) {
        return Ok(None);
    }
    let mut writer = DatasetWriter::create(&part_prefix(&fam.dir, index), setup.dtype)?;
    let mut ids: Vec<u32> = Vec::new();
    let (mut text_bytes, mut empty_docs, mut bad_records) = (0u64, 0u64, 0u64);
    for (_, rec) in JsonlReader::open(&input.path)? {
        let doc = match rec {
            Ok(d) => d,
            Err(e) => {
                if bad_records < 5 {
                    tracing::warn!("{shown}: {e}");
                }
                bad_records += 1;
                if e.fatal {
                    break;
                }
                continue;
            }
        };
        if doc.text.is_empty() {
            empty_docs += 1;
            continue;
        }
        ids.clear();
        ids.extend(setup.bos);
        setup
            .encoder
            .encode_into(&doc.text, &mut ids)
            .with_context(|| format!("{shown}: document {}", doc.id))?;
        ids.extend(setup.eos);
        writer
            .add_document(&ids)
            .with_context(|| format!("{shown}: document {}", doc.id))?;
        text_bytes += doc.text.len() as u64;
    }
    let files = writer.finish()?;
    let manifest = PartManifest {
        input: shown,
        input_bytes: input.bytes,
        config_hash: setup.part_hash.clone(),
        text_bytes,
        empty_docs,
        bad_records,
        files,
    };
    write_atomic(
        &part_manifest_path(&fam.dir, index),
        &serde_json::to_vec_pretty(&manifest)?,
    )?;
    tracing::info!(
        "{}: {} docs, {} tokens",
        manifest.input,
        manifest.files.docs,
        manifest.files.tokens
    );
    Ok(Some(manifest))
}

/// One output shard to write: pieces of parts, in order.
#[derive(Debug, Clone, Default)]
struct ShardPlan {
    /// (part index, first doc, docs, first byte in the part's .bin)
    pieces: Vec<(usize, u64, u64, u64)>,
    bytes: u64,
}

/// Cuts the family's documents, in input order, into shards of at most `max_bytes` (a single
/// larger document gets a shard of its own). Streams the parts' lengths: memory is per shard.
fn plan_shards(
    fam: &Family,
    parts: &[PartManifest],
    setup: &Setup,
    max_bytes: u64,
) -> Result<Vec<ShardPlan>> {
    let size = setup.dtype.size();
    let mut plans = Vec::new();
    let mut cur = ShardPlan::default();
    for (p, part) in parts.iter().enumerate() {
        let (_, idx) = dataset_paths(&part_prefix(&fam.dir, p));
        let mut byte = 0u64;
        for (d, len) in LengthStream::open(&idx, 0)?.enumerate() {
            let b = len.with_context(|| format!("{}", idx.display()))? * size;
            if cur.bytes > 0 && cur.bytes + b > max_bytes {
                plans.push(std::mem::take(&mut cur));
            }
            match cur.pieces.last_mut() {
                Some(piece) if piece.0 == p => piece.2 += 1,
                _ => cur.pieces.push((p, d as u64, 1, byte)),
            }
            cur.bytes += b;
            byte += b;
        }
        if byte != part.files.bin_bytes {
            bail!(
                "{}: lengths add up to {} bytes but the .bin has {}",
                idx.display(),
                byte,
                part.files.bin_bytes
            );
        }
    }
    if !cur.pieces.is_empty() {
        plans.push(cur);
    }
    Ok(plans)
}

fn write_shard(
    fam: &Family,
    index: usize,
    plan: &ShardPlan,
    setup: &Setup,
    force: bool,
) -> Result<(PackedShard, bool)> {
    let prefix_name = shard_prefix(&fam.source, index);
    let prefix = fam.dir.join(&prefix_name);
    let manifest_path = fam.dir.join(format!("{prefix_name}.manifest.json"));
    let pieces: Vec<ShardPiece> = plan
        .pieces
        .iter()
        .map(|&(p, first_doc, docs, _)| ShardPiece {
            input: fam.inputs[p].path.display().to_string(),
            input_bytes: fam.inputs[p].bytes,
            first_doc,
            docs,
        })
        .collect();
    let packed = |files: &DatasetFiles| PackedShard {
        prefix: prefix_name.clone(),
        docs: files.docs,
        tokens: files.tokens,
        bin_bytes: files.bin_bytes,
        idx_bytes: files.idx_bytes,
    };
    if !force {
        if let Some(m) = std::fs::read(&manifest_path)
            .ok()
            .and_then(|b| serde_json::from_slice::<ShardManifest>(&b).ok())
        {
            if m.config_hash == setup.shard_hash
                && m.pieces == pieces
                && files_present(&prefix, &m.files)
            {
                return Ok((packed(&m.files), false));
            }
        }
    }
    let mut writer = DatasetWriter::create(&prefix, setup.dtype)?;
    for &(p, first_doc, docs, first_byte) in &plan.pieces {
        let part = part_prefix(&fam.dir, p);
        let (bin_path, idx_path) = dataset_paths(&part);
        let mut bin =
            File::open(&bin_path).with_context(|| format!("cannot open {}", bin_path.display()))?;
        bin.seek(SeekFrom::Start(first_byte))?;
        let mut bin = BufReader::with_capacity(1 << 20, bin);
        for len in LengthStream::open(&idx_path, first_doc)?.take(docs as usize) {
            writer
                .copy_document(&mut bin, len?)
                .with_context(|| format!("copying from {}", bin_path.display()))?;
        }
    }
    let files = writer.finish()?;
    let manifest = ShardManifest {
        source: fam.source.clone(),
        config_hash: setup.shard_hash.clone(),
        pieces,
        files: files.clone(),
    };
    write_atomic(&manifest_path, &serde_json::to_vec_pretty(&manifest)?)?;
    Ok((packed(&files), true))
}

/// Removes shards numbered `count` and above left by an earlier run with more shards.
fn remove_stale_shards(dir: &Path, source: &str, count: usize) -> Result<()> {
    let mut index = count;
    loop {
        let name = shard_prefix(source, index);
        let (bin, idx) = dataset_paths(&dir.join(&name));
        let manifest = dir.join(format!("{name}.manifest.json"));
        if !bin.exists() && !idx.exists() && !manifest.exists() {
            return Ok(());
        }
        for p in [manifest, idx, bin] {
            if p.exists() {
                std::fs::remove_file(&p)
                    .with_context(|| format!("cannot remove stale {}", p.display()))?;
            }
        }
        index += 1;
    }
}

impl PackSummary {
    /// This summary with the wall time since `started` and the peak memory filled in.
    fn timed(mut self, started: Instant) -> PackSummary {
        self.seconds = started.elapsed().as_secs_f64();
        self.peak_rss = crate::stats::peak_rss_bytes();
        self
    }

    /// The table printed at the end of `datamill pack`.
    pub fn report(&self) -> String {
        let mut out = format!(
            "{:<16} {:>10} {:>14} {:>12} {:>8} {:>10} {:>7}\n",
            "source", "docs", "tokens", "text MB", "B/token", "disk MB", "shards"
        );
        for s in &self.sources {
            out.push_str(&format!(
                "{:<16} {:>10} {:>14} {:>12.2} {:>8.2} {:>10.2} {:>7}\n",
                s.source,
                s.docs,
                s.tokens,
                s.text_bytes as f64 / 1e6,
                s.text_bytes as f64 / s.tokens.max(1) as f64,
                s.disk_bytes as f64 / 1e6,
                s.shards.len()
            ));
        }
        out.push_str(&format!(
            "\n{} input shards tokenised, {} output shards written, {} sources already complete\n",
            self.parts_done, self.shards_written, self.sources_skipped
        ));
        if self.parts_done > 0 {
            let secs = self.tokenize_seconds.max(1e-9);
            let mb = self.text_bytes_done as f64 / 1e6;
            out.push_str(&format!(
                "tokenised {:.2} MB into {} tokens in {:.2} s on {} threads: {:.2} MB/s, {:.0} tokens/s ({:.0} tokens/s per core)",
                mb,
                self.tokens_done,
                self.tokenize_seconds,
                self.threads,
                mb / secs,
                self.tokens_done as f64 / secs,
                self.tokens_done as f64 / secs / self.threads as f64
            ));
            if let Some(rss) = self.peak_rss {
                out.push_str(&format!(", peak RSS {:.1} MB", rss as f64 / 1e6));
            }
            out.push('\n');
        }
        out
    }
}
