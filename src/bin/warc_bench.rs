//! Throughput of the WARC reader: reads one WARC file N times on one thread and prints MB/s
//! and docs/s for gzip alone, record parsing, and the full reader (HTTP, charset, HTML to
//! text), plus peak RSS.
//!
//! `cargo run --release --bin warc_bench -- [FILE] [REPEATS]`
//! (default: the 50-record Common Crawl sample, 40 times).

use std::io::BufReader;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result};
use datamill::doc::open_decompressed;
use datamill::sources::warc::record::{StreamKind, WarcRecordReader};
use datamill::sources::warc::WarcSource;

/// Peak resident set size of this process in MB (Linux `VmHWM`), if known.
fn peak_rss_mb() -> Option<f64> {
    datamill::stats::peak_rss_bytes().map(|b| b as f64 / 1048576.0)
}

fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let path = PathBuf::from(
        args.next()
            .unwrap_or_else(|| "samples/commoncrawl/chatnoir-resiliparse/warcfile.warc.gz".into()),
    );
    let repeats: usize = match args.next() {
        Some(n) => n.parse().context("REPEATS must be a number")?,
        None => 40,
    };
    let file_bytes = std::fs::metadata(&path)
        .with_context(|| format!("cannot open {}", path.display()))?
        .len();

    let t = Instant::now();
    let mut plain_bytes = 0u64;
    for _ in 0..repeats {
        plain_bytes = std::io::copy(&mut open_decompressed(&path)?, &mut std::io::sink())?;
    }
    let gunzip_secs = t.elapsed().as_secs_f64();

    let wanted = vec!["response".to_string(), "conversion".to_string()];
    let t = Instant::now();
    let mut records = 0u64;
    for _ in 0..repeats {
        let input = BufReader::with_capacity(1 << 16, open_decompressed(&path)?);
        let kind = if path.to_string_lossy().ends_with(".gz") {
            StreamKind::Gzip
        } else {
            StreamKind::Plain
        };
        for r in WarcRecordReader::new(input, kind, 64 << 20, &wanted) {
            records += u64::from(r.is_ok());
        }
    }
    let parse_secs = t.elapsed().as_secs_f64();

    let reader = WarcSource::warc_from_options(&toml::Table::new())?;
    let t = Instant::now();
    let (mut docs, mut text_bytes, mut errors) = (0u64, 0u64, 0u64);
    for _ in 0..repeats {
        for r in reader.documents(&path, "bench")? {
            match r {
                Ok(d) => {
                    docs += 1;
                    text_bytes += d.text.len() as u64;
                }
                Err(_) => errors += 1,
            }
        }
    }
    let full_secs = t.elapsed().as_secs_f64();

    let mb = |b: u64| b as f64 / 1e6;
    let total_plain = plain_bytes * repeats as u64;
    println!(
        "input: {} ({:.3} MB gzip, {:.3} MB WARC) x {repeats}",
        path.display(),
        mb(file_bytes),
        mb(plain_bytes)
    );
    println!(
        "gunzip only:        {:8.1} MB/s of WARC ({:.2} s)",
        mb(total_plain) / gunzip_secs,
        gunzip_secs
    );
    println!(
        "record parsing:     {:8.1} MB/s of WARC, {:8.0} records/s ({} response/conversion records, {:.2} s)",
        mb(total_plain) / parse_secs,
        records as f64 / parse_secs,
        records,
        parse_secs
    );
    println!(
        "full reader:        {:8.1} MB/s of WARC, {:6.2} MB/s of .gz, {:8.0} docs/s ({docs} docs, {:.1} MB text, {errors} errors, {:.2} s)",
        mb(total_plain) / full_secs,
        mb(file_bytes * repeats as u64) / full_secs,
        docs as f64 / full_secs,
        mb(text_bytes),
        full_secs
    );
    if let Some(rss) = peak_rss_mb() {
        println!("peak RSS:           {rss:8.1} MB");
    }
    Ok(())
}
