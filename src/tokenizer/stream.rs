//! Line-by-line encoding and decoding for `datamill encode`: batches of lines are encoded in
//! parallel (one cached [`Encoder`](super::Encoder) per worker) and written in input order.

use std::fmt::Write as _;
use std::io::{BufRead, Write};

use anyhow::{Context, Result};
use rayon::prelude::*;

use super::model::{spm_lossy_utf8, Tokenizer};

/// What `encode` does with each input line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamMode {
    /// Text in, space-separated ids out.
    Encode,
    /// Space-separated ids in, text out.
    Decode,
    /// Text in, only the totals out.
    Stats,
}

/// Totals of a stream.
#[derive(Debug, Clone, Copy, Default)]
pub struct StreamStats {
    /// Lines read.
    pub lines: u64,
    /// Bytes of text (without line ends).
    pub bytes: u64,
    /// Tokens (ids).
    pub tokens: u64,
}

impl StreamStats {
    /// Bytes of text per token.
    pub fn bytes_per_token(&self) -> f64 {
        self.bytes as f64 / self.tokens.max(1) as f64
    }
}

const BATCH_LINES: usize = 8192;

/// Reads lines from `input` and writes one output line per input line.
/// A line's ending `\n` is removed; everything else (including `\r`) is text. A line that is
/// not valid UTF-8 is encoded as sentencepiece encodes it: each invalid byte becomes U+FFFD.
pub fn run_stream(
    tok: &Tokenizer,
    input: &mut dyn BufRead,
    output: &mut dyn Write,
    mode: StreamMode,
) -> Result<StreamStats> {
    let mut stats = StreamStats::default();
    let mut lines: Vec<Vec<u8>> = Vec::with_capacity(BATCH_LINES);
    let mut line_no = 0u64;
    let mut encoders: Vec<_> = (0..rayon::current_num_threads().max(1))
        .map(|_| tok.encoder())
        .collect();
    loop {
        lines.clear();
        for _ in 0..BATCH_LINES {
            let mut buf = Vec::new();
            let n = input
                .read_until(b'\n', &mut buf)
                .context("cannot read stdin")?;
            if n == 0 {
                break;
            }
            if buf.last() == Some(&b'\n') {
                buf.pop();
            }
            lines.push(buf);
        }
        if lines.is_empty() {
            break;
        }
        let first = line_no;
        line_no += lines.len() as u64;
        match mode {
            StreamMode::Encode | StreamMode::Stats => {
                // Contiguous shares, one long-lived encoder (word cache) per share.
                let share = lines.len().div_ceil(encoders.len()).max(1);
                let encoded: Vec<Vec<Vec<u32>>> = encoders
                    .par_iter_mut()
                    .zip(lines.par_chunks(share))
                    .map(|(enc, part)| {
                        part.iter()
                            .map(|line| {
                                let mut ids = Vec::new();
                                enc.encode_into(&spm_lossy_utf8(line), &mut ids);
                                ids
                            })
                            .collect()
                    })
                    .collect();
                let encoded: Vec<Vec<u32>> = encoded.into_iter().flatten().collect();
                for (line, ids) in lines.iter().zip(&encoded) {
                    stats.lines += 1;
                    stats.bytes += line.len() as u64;
                    stats.tokens += ids.len() as u64;
                    if mode == StreamMode::Encode {
                        write_ids(output, ids)?;
                    }
                }
            }
            StreamMode::Decode => {
                let decoded: Vec<Result<String>> = lines
                    .par_iter()
                    .enumerate()
                    .map(|(i, line)| {
                        let ids = parse_ids(line)
                            .with_context(|| format!("line {}", first + i as u64 + 1))?;
                        let text = tok
                            .decode(&ids)
                            .with_context(|| format!("line {}", first + i as u64 + 1))?;
                        Ok(text)
                    })
                    .collect();
                for text in decoded {
                    let text = text?;
                    stats.lines += 1;
                    stats.bytes += text.len() as u64;
                    output.write_all(text.as_bytes())?;
                    output.write_all(b"\n")?;
                }
            }
        }
    }
    output.flush()?;
    Ok(stats)
}

fn write_ids(out: &mut dyn Write, ids: &[u32]) -> Result<()> {
    let mut line = String::with_capacity(ids.len() * 6 + 1);
    for (i, id) in ids.iter().enumerate() {
        if i > 0 {
            line.push(' ');
        }
        let _ = write!(line, "{id}");
    }
    line.push('\n');
    out.write_all(line.as_bytes())?;
    Ok(())
}

/// Parses one line of space-separated ids.
pub fn parse_ids(line: &[u8]) -> Result<Vec<u32>> {
    let text = std::str::from_utf8(line).context("ids are not ASCII")?;
    text.split_ascii_whitespace()
        .map(|t| {
            t.parse::<u32>()
                .with_context(|| format!("`{t}` is not an id"))
        })
        .collect()
}
