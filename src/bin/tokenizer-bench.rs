//! Encoding benchmark for datamill's tokenizer (used by `scripts/bench-tokenizer.sh`).
//!
//! `tokenizer-bench --dump-text IN OUT` writes the `text` of every document of a JSONL shard
//! as plain lines (the training text for both trainers).
//! `tokenizer-bench --model M --text LINES [--threads N]` encodes every line on one thread and
//! on N threads and prints MB/s, tokens and bytes per token.

use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Context, Result};

use datamill::doc::JsonlReader;
use datamill::tokenizer::Tokenizer;

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(|s| s.as_str()) {
        Some("--dump-text") if args.len() == 3 => dump_text(&args[1], &args[2]),
        Some("--model") if args.len() >= 4 && args[2] == "--text" => {
            let threads = match args.get(4).map(|s| s.as_str()) {
                Some("--threads") => args.get(5).context("--threads N")?.parse()?,
                _ => std::thread::available_parallelism().map_or(1, |n| n.get()),
            };
            bench(&args[1], &args[3], threads)
        }
        _ => bail!(
            "usage: tokenizer-bench --dump-text SHARD OUT | --model M --text LINES [--threads N]"
        ),
    }
}

fn dump_text(input: &str, output: &str) -> Result<()> {
    let mut out = BufWriter::new(std::fs::File::create(output)?);
    let (mut docs, mut bytes) = (0u64, 0u64);
    for (_, rec) in JsonlReader::open(&PathBuf::from(input))? {
        let doc = rec.map_err(|e| anyhow::anyhow!("{input}: {e}"))?;
        out.write_all(doc.text.as_bytes())?;
        out.write_all(b"\n")?;
        docs += 1;
        bytes += doc.text.len() as u64;
    }
    out.flush()?;
    println!(
        "{docs} documents, {:.1} MB of text -> {output}",
        bytes as f64 / 1e6
    );
    Ok(())
}

fn bench(model: &str, text: &str, threads: usize) -> Result<()> {
    let tok = Tokenizer::load(&PathBuf::from(model))?;
    let mut lines = Vec::new();
    for line in BufReader::new(std::fs::File::open(text)?).lines() {
        lines.push(line?);
    }
    let bytes: usize = lines.iter().map(|l| l.len()).sum();
    let mb = bytes as f64 / 1e6;

    let t = Instant::now();
    let mut enc = tok.encoder();
    let mut ids = Vec::new();
    let mut tokens = 0usize;
    for l in &lines {
        ids.clear();
        enc.encode_into(l, &mut ids);
        tokens += ids.len();
    }
    let one = t.elapsed().as_secs_f64();

    let t = Instant::now();
    let uncached: usize = lines
        .iter()
        .take(lines.len() / 10)
        .map(|l| tok.encode(l).len())
        .sum();
    let uncached_secs = t.elapsed().as_secs_f64();
    let uncached_mb: usize = lines.iter().take(lines.len() / 10).map(|l| l.len()).sum();

    // One encoder (and word cache) per thread, each on a contiguous share of the lines.
    let t = Instant::now();
    let share = lines.len().div_ceil(threads.max(1)).max(1);
    let tokens_n: usize = std::thread::scope(|scope| {
        let handles: Vec<_> = lines
            .chunks(share)
            .map(|part| {
                let tok = &tok;
                scope.spawn(move || {
                    let mut enc = tok.encoder();
                    let mut ids = Vec::new();
                    let mut n = 0;
                    for l in part {
                        ids.clear();
                        enc.encode_into(l, &mut ids);
                        n += ids.len();
                    }
                    n
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap_or(0)).sum()
    });
    let many = t.elapsed().as_secs_f64();
    assert_eq!(tokens, tokens_n);
    println!(
        "datamill encode ({model}): {mb:.1} MB, {} lines, {tokens} tokens, {:.4} bytes/token",
        lines.len(),
        bytes as f64 / tokens as f64
    );
    println!("  1 thread (word cache):    {:.2} MB/s", mb / one);
    println!(
        "  1 thread (no cache):      {:.2} MB/s ({uncached} tokens on the first tenth)",
        uncached_mb as f64 / 1e6 / uncached_secs
    );
    println!("  {threads} threads (word cache):   {:.2} MB/s", mb / many);
    Ok(())
}
