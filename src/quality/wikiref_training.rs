//! `datamill train-classifier`: trains the Wikipedia-reference classifier as RedPajama did for
//! LLaMA. Positives are pages that Wikipedia articles cite, negatives random Common Crawl pages;
//! both sides are first run through the stages of the CommonCrawl pipeline that come before the
//! classifier (line dedup, language ID, perplexity buckets: [`crate::run::prefix`]), so the two
//! classes differ in quality, not in language or boilerplate.
//!
//! - Positives: every record of `--positive` that passes those stages; or, with a cited-URL list
//!   (`wiki-refs` output), only the records whose normalised URL is cited (`url`; the scheme
//!   is ignored, so `http://` and `https://` match), or whose URL or, failing that, host is
//!   cited (`url_or_host`, `www.` ignored). Without `--positive`, the
//!   positives are taken from the negative inputs by the list.
//! - Negatives: as many records of `--negative` as there are positives, a seeded uniform sample
//!   of the head/middle pages that pass the stages (and are not positives).
//! - At most `max_per_class` documents per class are held in memory (a seeded reservoir).
//! - Held out: the documents of a seeded tenth of the hosts (`holdout`), so no site is on both
//!   sides of the split; the report gives precision, recall and accuracy, the median p(ref) of
//!   each held-out class and the share of each kept at 0.25.
//!
//! The rule is recorded in the model's sidecar ([`TrainingRule`]).

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, ensure, Context, Result};
use fasttext::{Args, FastText, LossName, ModelName};
use xxhash_rust::xxh3::xxh3_64_with_seed;

use super::classifier::{
    normalise_doc, positive_prob, sidecar_path, ClassifierReport, ClassifierSidecar, TrainSettings,
    TrainingRule, KEEP_THRESHOLD, NEGATIVE, POSITIVE,
};
use super::reservoir::Reservoir;
use super::wikirefs::url;
use crate::doc::{write_atomic, Document};
use crate::lm::tokenize::WordTokenizer;
use crate::run::prefix::{run_prefix, PipelinePrefix};
use crate::sources::training::for_each_training_document;
use crate::sources::url_list::UrlListReader;

/// Which records of the positive side are positives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PositiveMatch {
    /// Every record that passes the stages.
    All,
    /// Records whose normalised URL is in the cited-URL list.
    Url,
    /// Records whose normalised URL is cited, or failing that whose host is.
    UrlOrHost,
}

impl PositiveMatch {
    fn name(self) -> &'static str {
        match self {
            PositiveMatch::All => "all",
            PositiveMatch::Url => "url",
            PositiveMatch::UrlOrHost => "url_or_host",
        }
    }
}

/// What `train-classifier` reads.
#[derive(Debug, Clone)]
pub struct ClassifierInputs {
    /// Pages of the positive kind (a WARC of cited pages); empty: taken from `negative` by
    /// `refs`.
    pub positive: Vec<PathBuf>,
    /// Random Common Crawl pages (WARC, WET, JSONL).
    pub negative: Vec<PathBuf>,
    /// The cited-URL list (`wiki-refs` output) that `matching` looks URLs up in.
    pub refs: Option<PathBuf>,
    /// Which positive-side records are positives.
    pub matching: PositiveMatch,
    /// The pipeline whose stages before `classifier` both sides run through (None: none).
    pub pipeline: Option<PathBuf>,
    /// Read every input with this pipeline reader instead of the one its name calls for.
    pub reader: Option<String>,
    /// Where the pipeline runs write, kept so a rerun resumes (None: a scratch folder beside
    /// the model, removed at the end).
    pub work_dir: Option<PathBuf>,
    /// Worker threads of the pipeline runs (0 = one per core).
    pub threads: usize,
}

/// The cited URLs and hosts, as sorted xxh3 hashes (8 bytes per URL, whatever its length).
struct CitedSet {
    urls: Vec<u64>,
    hosts: Vec<u64>,
    /// URLs listed.
    distinct: u64,
    /// Lines of the list set aside as not URLs.
    bad_lines: u64,
}

/// Bad lines of the cited-URL list logged one by one; the rest are only counted.
const LOGGED_BAD_LINES: u64 = 5;

/// How a record matched the cited set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Matched {
    Url,
    Host,
}

fn hash(s: &str) -> u64 {
    xxh3_64_with_seed(s.as_bytes(), 0)
}

impl CitedSet {
    /// Reads the cited-URL list through the URL-list reader; bad lines are logged with their
    /// line number, counted and set aside.
    fn load(path: &Path) -> Result<Self> {
        let (mut urls, mut hosts) = (Vec::new(), Vec::new());
        let (mut listed, mut bad) = (0u64, 0u64);
        for item in UrlListReader::open(path)? {
            match item? {
                Ok(line) => {
                    listed += 1;
                    if let Some(k) = url::match_key(line.url.as_str()) {
                        urls.push(hash(&k));
                    }
                    if let Some(h) = url::host_key(line.url.as_str()) {
                        hosts.push(hash(&h));
                    }
                }
                Err(b) => {
                    bad += 1;
                    if bad <= LOGGED_BAD_LINES {
                        tracing::warn!(
                            "{}: line {} set aside ({}): {:?}",
                            path.display(),
                            b.line,
                            b.reason,
                            b.text
                        );
                    }
                }
            }
        }
        if bad > 0 {
            tracing::warn!("{}: {bad} bad line(s) set aside", path.display());
        }
        ensure!(
            listed > 0,
            "{}: no cited URL in it ({bad} bad line(s))",
            path.display()
        );
        urls.sort_unstable();
        urls.dedup();
        hosts.sort_unstable();
        hosts.dedup();
        Ok(CitedSet {
            urls,
            hosts,
            distinct: listed,
            bad_lines: bad,
        })
    }

    /// How a document matches: by its served `url` or the `requested_url` a crawl asked for
    /// (`WARC-Refers-To-Target-URI`), else (with `UrlOrHost`) by the host of either.
    fn lookup_doc(&self, doc: &Document, matching: PositiveMatch) -> Option<Matched> {
        let urls = [doc.meta_str("url"), doc.meta_str("requested_url")];
        let cited = |set: &[u64], key: Option<String>| {
            key.is_some_and(|k| set.binary_search(&hash(&k)).is_ok())
        };
        if urls
            .iter()
            .flatten()
            .any(|u| cited(&self.urls, url::match_key(u)))
        {
            return Some(Matched::Url);
        }
        let by_host = matching == PositiveMatch::UrlOrHost
            && urls
                .iter()
                .flatten()
                .any(|u| cited(&self.hosts, url::host_key(u)));
        by_host.then_some(Matched::Host)
    }
}

/// The site of a document (its URL's host without `www.`), else its id.
fn site_of(doc: &Document) -> String {
    doc.meta_str("url")
        .and_then(url::host_key)
        .unwrap_or_else(|| doc.id.clone())
}

/// A scratch folder removed when dropped (unless kept).
struct WorkDir {
    path: PathBuf,
    keep: bool,
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        if !self.keep {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

/// A sampled document: stream position, site, normalised text.
type Sampled = (u64, String, String);

/// Streams one side: through the pipeline prefix when there is one, else straight from the
/// readers; `f` gets every prepared document.
fn read_side(
    inputs: &ClassifierInputs,
    prefix: Option<&PipelinePrefix>,
    label: &str,
    paths: &[PathBuf],
    work: &Path,
    f: &mut dyn FnMut(Document),
) -> Result<()> {
    let reader = inputs.reader.as_deref();
    let Some(prefix) = prefix else {
        for_each_training_document(paths, reader, None, &mut |d| {
            f(d);
            Ok(true)
        })?;
        return Ok(());
    };
    let out = run_prefix(prefix, label, paths, reader, work, inputs.threads)?;
    tracing::info!(
        "{label}: {} records read, {} kept by the stages of {}",
        out.read,
        out.kept,
        prefix.path.display()
    );
    if out.kept == 0 {
        let drops: Vec<String> = out.drops.iter().map(|(r, n)| format!("{r} {n}")).collect();
        bail!(
            "none of the {} {label} records passed the stages {:?} of {} (dropped: {})",
            out.read,
            prefix.stage_names(),
            prefix.path.display(),
            drops.join(", ")
        );
    }
    for_each_training_document(&out.shards, Some("jsonl"), None, &mut |d| {
        f(d);
        Ok(true)
    })?;
    Ok(())
}

/// `datamill train-classifier` (see the module docs): writes the model and its sidecar and
/// returns the held-out report.
pub fn train_classifier(
    inputs: &ClassifierInputs,
    output: &Path,
    settings: &TrainSettings,
) -> Result<ClassifierReport> {
    ensure!(
        (0.0..1.0).contains(&settings.holdout),
        "holdout must be in [0, 1)"
    );
    ensure!(
        settings.max_per_class > 0,
        "max_per_class must be at least 1"
    );
    ensure!(!inputs.negative.is_empty(), "no negative input given");
    let cited = inputs.refs.as_deref().map(CitedSet::load).transpose()?;
    if inputs.matching != PositiveMatch::All && cited.is_none() {
        bail!("matching positives by URL needs the cited-URL list (wiki-refs output)");
    }
    if inputs.positive.is_empty() && inputs.matching == PositiveMatch::All {
        bail!("no positive input: give --positive, or --positive-urls with the CC inputs");
    }
    let prefix = inputs
        .pipeline
        .as_deref()
        .map(|p| PipelinePrefix::load(p, "classifier"))
        .transpose()?;
    let dir = output
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let work = match &inputs.work_dir {
        Some(w) => WorkDir {
            path: w.clone(),
            keep: true,
        },
        None => WorkDir {
            path: dir.join(format!(".train-classifier-{}", std::process::id())),
            keep: false,
        },
    };
    std::fs::create_dir_all(&work.path)
        .with_context(|| format!("cannot create {}", work.path.display()))?;

    let mut tok = WordTokenizer::new();
    let mut line = String::new();
    let seed = settings.seed;
    let mut pos: Reservoir<Sampled> = Reservoir::new(settings.max_per_class, seed);
    let mut neg: Reservoir<Sampled> = Reservoir::new(settings.max_per_class, seed ^ 0x9e37);
    let (mut by_url, mut by_host, mut looked_at) = (0u64, 0u64, 0u64);
    let mut not_head_middle = 0u64;
    let mut offer = |sample: &mut Reservoir<Sampled>, doc: &Document, tok: &mut WordTokenizer| {
        normalise_doc(tok, &doc.text, &mut line);
        if !line.is_empty() {
            let at = sample.seen();
            sample.offer_with(|| (at, site_of(doc), line.clone()));
        }
    };
    let mut classify = |doc: &Document| -> bool {
        looked_at += 1;
        match cited
            .as_ref()
            .and_then(|c| c.lookup_doc(doc, inputs.matching))
        {
            Some(Matched::Url) => {
                by_url += 1;
                true
            }
            Some(Matched::Host) => {
                by_host += 1;
                true
            }
            None => inputs.matching == PositiveMatch::All,
        }
    };
    let positives_from_negatives = inputs.positive.is_empty();
    if !positives_from_negatives {
        read_side(
            inputs,
            prefix.as_ref(),
            "positive",
            &inputs.positive,
            &work.path,
            &mut |doc| {
                if classify(&doc) {
                    offer(&mut pos, &doc, &mut tok);
                }
            },
        )?;
    }
    read_side(
        inputs,
        prefix.as_ref(),
        "negative",
        &inputs.negative,
        &work.path,
        &mut |doc| {
            if positives_from_negatives && classify(&doc) {
                offer(&mut pos, &doc, &mut tok);
                return;
            }
            if doc
                .meta_str("bucket")
                .is_some_and(|b| b != "head" && b != "middle")
            {
                not_head_middle += 1;
                return;
            }
            offer(&mut neg, &doc, &mut tok);
        },
    )?;
    let refs_name = inputs.refs.as_ref().map(|p| p.display().to_string());
    if pos.is_empty() {
        let side = if positives_from_negatives {
            &inputs.negative
        } else {
            &inputs.positive
        };
        match (&cited, &refs_name) {
            (Some(c), Some(r)) => bail!(
                "no record of {side:?} ({looked_at} looked at after the stages) has a URL{} \
                 cited in {r} ({} cited URLs, {} bad line(s) set aside)",
                if inputs.matching == PositiveMatch::UrlOrHost {
                    " or host"
                } else {
                    ""
                },
                c.distinct,
                c.bad_lines
            ),
            _ => bail!("no positive document with text in {side:?}"),
        }
    }
    let positives_read = pos.seen();
    let negatives_read = neg.seen();
    let positives = pos.into_stream_order();
    // As many negatives as positives: the smallest seeded hashes of their stream positions.
    let mut negatives = neg.into_stream_order();
    ensure!(
        !negatives.is_empty(),
        "no negative head/middle page with text in {:?} ({not_head_middle} of other buckets)",
        inputs.negative
    );
    negatives.sort_by_key(|(at, _, _)| xxh3_64_with_seed(&at.to_le_bytes(), seed));
    negatives.truncate(positives.len());
    negatives.sort_by_key(|(at, _, _)| *at);

    let held = |site: &str| {
        let h = xxh3_64_with_seed(site.as_bytes(), seed);
        (h as f64 / u64::MAX as f64) < settings.holdout
    };
    // (label, held out, text), in a deterministic shuffled order.
    let mut docs: Vec<(bool, bool, String)> = positives
        .into_iter()
        .map(|(_, site, text)| (true, held(&site), text))
        .chain(
            negatives
                .into_iter()
                .map(|(_, site, text)| (false, held(&site), text)),
        )
        .collect();
    let n_pos = docs.iter().filter(|d| d.0).count();
    let n_neg = docs.len() - n_pos;
    let mut order: Vec<usize> = (0..docs.len()).collect();
    order.sort_by_key(|&i| xxh3_64_with_seed(&(i as u64).to_le_bytes(), seed));
    docs = order
        .into_iter()
        .map(|i| std::mem::take(&mut docs[i]))
        .collect();
    let train: Vec<&(bool, bool, String)> = docs.iter().filter(|d| !d.1).collect();
    ensure!(
        train.iter().any(|d| d.0) && train.iter().any(|d| !d.0),
        "after holding out a {} share of the hosts, the training set lacks a class \
         ({n_pos} positives, {n_neg} negatives in all): lower the holdout or add pages",
        settings.holdout
    );

    let train_file = work.path.join("train.txt");
    {
        let mut w = BufWriter::new(
            File::create(&train_file)
                .with_context(|| format!("cannot create {}", train_file.display()))?,
        );
        for (label, _, text) in &train {
            writeln!(w, "{} {}", if *label { POSITIVE } else { NEGATIVE }, text)?;
        }
        w.flush()?;
    }
    let mut ft = train_fasttext(&train_file, settings)?;
    let mut report = held_out_report(&ft, &docs, settings)?;
    report.positives = n_pos;
    report.negatives = n_neg;
    report.positives_read = positives_read;
    report.negatives_read = negatives_read;
    report.trained = train.len();

    let tmp_model = work.path.join("model.bin");
    ft.save_model(&tmp_model.to_string_lossy())
        .map_err(|e| anyhow::anyhow!("cannot save fastText model: {e}"))?;
    let bytes = std::fs::read(&tmp_model)?;
    let _ = std::fs::remove_file(&tmp_model);
    let _ = std::fs::remove_file(&train_file);
    let rule = training_rule(
        inputs,
        prefix.as_ref(),
        refs_name,
        cited.as_ref().map_or(0, |c| c.distinct),
        (by_url, by_host),
        settings,
    );
    write_atomic(output, &bytes)?;
    let side = ClassifierSidecar {
        format: "datamill-wikiref-fasttext".into(),
        bytes: bytes.len() as u64,
        xxh3: format!("{:016x}", xxhash_rust::xxh3::xxh3_64(&bytes)),
        settings: settings.clone(),
        report: report.clone(),
        rule: Some(rule),
    };
    let mut json = serde_json::to_vec_pretty(&side)?;
    json.push(b'\n');
    write_atomic(&sidecar_path(output), &json)?;
    Ok(report)
}

fn train_fasttext(train_file: &Path, settings: &TrainSettings) -> Result<FastText> {
    let mut args = Args::new();
    args.set_input(&train_file.to_string_lossy())
        .map_err(|e| anyhow::anyhow!("fastText args: {e}"))?;
    args.set_model(ModelName::SUP);
    args.set_loss(LossName::SOFTMAX);
    args.set_word_ngrams(settings.word_ngrams);
    args.set_bucket(settings.bucket);
    args.set_min_count(1);
    args.set_minn(0);
    args.set_maxn(0);
    args.set_lr(settings.lr);
    args.set_dim(settings.dim);
    args.set_epoch(settings.epoch);
    args.set_thread(1); // one thread: the same inputs give the same model
    args.set_verbose(0);
    let mut ft = FastText::new();
    ft.train(&args)
        .map_err(|e| anyhow::anyhow!("fastText training failed: {e}"))?;
    if settings.quantize {
        args.set_qnorm(true);
        args.set_cutoff(super::classifier::QUANTIZE_CUTOFF);
        args.set_retrain(false);
        ft.quantize(&args)
            .map_err(|e| anyhow::anyhow!("fastText quantization failed: {e}"))?;
    }
    Ok(ft)
}

fn median(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let m = v.len() / 2;
    if v.len() % 2 == 1 {
        v[m]
    } else {
        (v[m - 1] + v[m]) / 2.0
    }
}

/// Precision, recall and accuracy at the report threshold, and per-class medians and kept
/// shares, over the held-out documents.
fn held_out_report(
    ft: &FastText,
    docs: &[(bool, bool, String)],
    settings: &TrainSettings,
) -> Result<ClassifierReport> {
    let (mut tp, mut fp, mut fneg, mut correct) = (0usize, 0usize, 0usize, 0usize);
    let (mut pos_p, mut neg_p) = (Vec::new(), Vec::new());
    for (label, _, text) in docs.iter().filter(|d| d.1) {
        let p = positive_prob(ft, text)?;
        let predicted = p >= settings.threshold;
        match (predicted, *label) {
            (true, true) => tp += 1,
            (true, false) => fp += 1,
            (false, true) => fneg += 1,
            (false, false) => {}
        }
        correct += usize::from(predicted == *label);
        if *label {
            pos_p.push(f64::from(p));
        } else {
            neg_p.push(f64::from(p));
        }
    }
    let ratio = |a: usize, b: usize| if b == 0 { 0.0 } else { a as f64 / b as f64 };
    let kept = |v: &[f64]| {
        ratio(
            v.iter()
                .filter(|&&p| p >= f64::from(KEEP_THRESHOLD))
                .count(),
            v.len(),
        )
    };
    let held_out = pos_p.len() + neg_p.len();
    Ok(ClassifierReport {
        positives: 0,
        negatives: 0,
        positives_read: 0,
        negatives_read: 0,
        trained: 0,
        held_out,
        precision: ratio(tp, tp + fp),
        recall: ratio(tp, tp + fneg),
        accuracy: ratio(correct, held_out),
        held_out_positives: pos_p.len(),
        held_out_negatives: neg_p.len(),
        held_out_positive_kept: kept(&pos_p),
        held_out_negative_kept: kept(&neg_p),
        held_out_positive_median: median(pos_p),
        held_out_negative_median: median(neg_p),
    })
}

fn training_rule(
    inputs: &ClassifierInputs,
    prefix: Option<&PipelinePrefix>,
    refs: Option<String>,
    refs_urls: u64,
    (by_url, by_host): (u64, u64),
    settings: &TrainSettings,
) -> TrainingRule {
    let shown = |v: &[PathBuf]| {
        v.iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
    };
    let stages = prefix.map(PipelinePrefix::stage_names).unwrap_or_default();
    let side = if inputs.positive.is_empty() {
        "the negative inputs"
    } else {
        "the positive inputs"
    };
    let which = match inputs.matching {
        PositiveMatch::All => format!("every page of {side}"),
        PositiveMatch::Url => {
            format!(
                "the pages of {side} whose normalised URL (scheme ignored) Wikipedia articles cite"
            )
        }
        PositiveMatch::UrlOrHost => format!(
            "the pages of {side} whose normalised URL, or failing that whose host (`www.` \
             ignored), Wikipedia articles cite"
        ),
    };
    let through = match prefix {
        Some(p) => format!(" that pass the stages {:?} of {}", stages, p.path.display()),
        None => String::new(),
    };
    TrainingRule {
        summary: format!(
            "positives: {which}{through}; negatives: as many random head/middle pages of the \
             negative inputs{through}"
        ),
        positive_inputs: shown(&inputs.positive),
        negative_inputs: shown(&inputs.negative),
        positive_match: inputs.matching.name().to_string(),
        refs,
        refs_urls,
        matched_by_url: by_url,
        matched_by_host: by_host,
        pipeline: prefix.map(|p| p.path.display().to_string()),
        stages,
        negatives: format!(
            "seeded uniform sample (seed {}) of the negative pages whose bucket, when set, is \
             head or middle; as many as positives",
            settings.seed
        ),
        holdout: format!(
            "the documents of a {} share of the hosts (xxh3 of the host with seed {})",
            settings.holdout, settings.seed
        ),
    }
}
