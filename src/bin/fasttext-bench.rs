//! fastText prediction speed, one thread: datamill's own inference against the C++ library
//! (the `fasttext` crate) on the same documents, alternating A B A B, for language ID
//! (lid.176.ftz, the `langid` stage's input) and optionally the reference classifier (the
//! `classifier` stage's input). Prints MB/s of document text per side and round, and the ratio
//! of the medians.
//!
//! `cargo run --release --bin fasttext-bench -- CORPUS.jsonl.zst [MB] [LID_MODEL] [CLASSIFIER]`
//! (default: 30 MB of text, models/lid.176.ftz, no classifier).

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{ensure, Context, Result};
use datamill::doc::JsonlReader;
use datamill::filter::langid::LidModel;
use datamill::lm::tokenize::WordTokenizer;
use datamill::quality::classifier::{ReferenceClassifier, MAX_CLASSIFIED_BYTES};

const ROUNDS: usize = 3;

/// CPU time of the calling thread in seconds (Linux `schedstat`), if known: the machine is shared,
/// so wall time alone over-counts.
fn thread_cpu_secs() -> Option<f64> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let ns: f64 = s.split_whitespace().next()?.parse().ok()?;
    Some(ns / 1e9)
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn cpp_model(path: &std::path::Path) -> Result<fasttext::FastText> {
    let mut ft = fasttext::FastText::new();
    ft.load_model(&path.to_string_lossy())
        .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    Ok(ft)
}

/// Times `own` and `cpp` over the texts ROUNDS times each, alternating; prints and returns
/// (own MB/s, C++ MB/s) medians.
fn duel(
    what: &str,
    texts: &[String],
    bytes: u64,
    mut own: impl FnMut(&str) -> f32,
    mut cpp: impl FnMut(&str) -> f32,
) -> (f64, f64) {
    let mb = bytes as f64 / 1e6;
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for round in 1..=ROUNDS {
        for side in 0..2 {
            let t = Instant::now();
            let cpu = thread_cpu_secs();
            let mut sink = 0f32;
            for text in texts {
                sink += if side == 0 { own(text) } else { cpp(text) };
            }
            std::hint::black_box(sink);
            let wall = t.elapsed().as_secs_f64();
            let cpu = cpu.zip(thread_cpu_secs()).map(|(a, b)| b - a);
            // Speed per CPU second when known (other jobs share the cores), else per wall second.
            let rate = mb / cpu.unwrap_or(wall);
            let name = if side == 0 {
                "datamill"
            } else {
                "C++ fastText"
            };
            let cpu = cpu.map_or("?".into(), |c| format!("{c:.2}"));
            println!(
                "{what} round {round}: {name} {rate:.2} MB/s per CPU second ({wall:.2} s wall, {cpu} s CPU)"
            );
            if side == 0 { &mut a } else { &mut b }.push(rate);
        }
    }
    let (ma, mb_) = (median(&mut a), median(&mut b));
    println!(
        "{what}: datamill {ma:.2} MB/s, C++ fastText {mb_:.2} MB/s per core (medians of {ROUNDS}): {:.1}x",
        ma / mb_
    );
    (ma, mb_)
}

fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let corpus = PathBuf::from(
        args.next()
            .context("usage: fasttext-bench CORPUS [MB] [LID] [CLASSIFIER]")?,
    );
    let max_mb: u64 = args
        .next()
        .map_or(Ok(30), |s| s.parse())
        .context("MB must be a number")?;
    let lid = PathBuf::from(args.next().unwrap_or_else(|| "models/lid.176.ftz".into()));
    let classifier = args.next().map(PathBuf::from);

    let mut texts = Vec::new();
    let mut bytes = 0u64;
    for (_, rec) in JsonlReader::open(&corpus)? {
        if let Ok(doc) = rec {
            bytes += doc.text.len() as u64;
            texts.push(doc.text);
            if bytes >= max_mb * 1_000_000 {
                break;
            }
        }
    }
    ensure!(bytes > 0, "no text in {}", corpus.display());
    println!(
        "{}: {} documents, {:.1} MB of text; one thread",
        corpus.display(),
        texts.len(),
        bytes as f64 / 1e6
    );

    let own = LidModel::load(&lid)?;
    let cpp = cpp_model(&lid)?;
    let mut line = String::new();
    duel(
        "langid",
        &texts,
        bytes,
        |t| own.predict_index(t).map_or(0.0, |p| p.prob),
        |t| {
            // The input the stage gave the C++ library: newlines and NULs as spaces, one final
            // newline.
            line.clear();
            line.extend(
                t.chars()
                    .map(|c| if c == '\n' || c == '\0' { ' ' } else { c }),
            );
            line.push('\n');
            cpp.predict(&line, 1, 0.0)
                .ok()
                .and_then(|p| p.first().map(|p| p.prob))
                .unwrap_or(0.0)
        },
    );

    if let Some(path) = classifier {
        let own = ReferenceClassifier::load(&path)?;
        let cpp = cpp_model(&path)?;
        let (mut tok, mut buf) = (WordTokenizer::new(), String::new());
        let mut tok2 = WordTokenizer::new();
        let mut norm = String::new();
        duel(
            "classifier",
            &texts,
            bytes,
            |t| own.score(t, &mut tok, &mut buf),
            |t| {
                let mut cut = MAX_CLASSIFIED_BYTES.min(t.len());
                while !t.is_char_boundary(cut) {
                    cut -= 1;
                }
                tok2.normalized(&t[..cut], &mut norm);
                if norm.is_empty() {
                    return 0.0;
                }
                cpp.predict(&norm, 2, 0.0)
                    .ok()
                    .and_then(|p| p.into_iter().find(|p| p.label == "__label__ref"))
                    .map_or(0.0, |p| p.prob)
            },
        );
    }
    if let Some(rss) = datamill::stats::peak_rss_bytes() {
        println!("peak RSS {:.0} MB", rss as f64 / 1048576.0);
    }
    Ok(())
}
