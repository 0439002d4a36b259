//! Checks that a file is a complete fastText model before the C++ loader sees it.
//!
//! fastText's loader trusts the file: a truncated dictionary makes it loop forever, and wrong
//! sizes make it allocate at random. This walks the documented layout (magic, version, args,
//! dictionary, input matrix, output matrix; quantized matrices included) with bounds checks and
//! requires the file to end exactly where the layout ends.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;

use anyhow::{bail, ensure, Context, Result};

/// fastText's file magic.
const MAGIC: i32 = 793_712_314;
/// Newest fastText file version.
const VERSION: i32 = 12;
/// Centroids per sub-quantizer (fastText's `ksub_ = 1 << 8`).
const KSUB: i64 = 256;

struct Walker {
    input: BufReader<File>,
    pos: u64,
    len: u64,
}

impl Walker {
    fn bytes<const N: usize>(&mut self, what: &str) -> Result<[u8; N]> {
        let mut b = [0u8; N];
        self.input
            .read_exact(&mut b)
            .with_context(|| format!("file ends inside {what} at byte {}", self.pos))?;
        self.pos += N as u64;
        Ok(b)
    }
    fn i32(&mut self, what: &str) -> Result<i32> {
        Ok(i32::from_le_bytes(self.bytes(what)?))
    }
    fn i64(&mut self, what: &str) -> Result<i64> {
        Ok(i64::from_le_bytes(self.bytes(what)?))
    }
    fn bool(&mut self, what: &str) -> Result<bool> {
        Ok(self.bytes::<1>(what)?[0] != 0)
    }
    fn skip(&mut self, n: i64, what: &str) -> Result<()> {
        ensure!(n >= 0, "negative size of {what} at byte {}", self.pos);
        let n = n as u64;
        ensure!(
            self.pos.checked_add(n).is_some_and(|end| end <= self.len),
            "file ends inside {what} (needs {n} bytes at byte {}, file has {})",
            self.pos,
            self.len
        );
        self.input.seek_relative(n as i64)?;
        self.pos += n;
        Ok(())
    }
    /// Skips a NUL-terminated string.
    fn cstr(&mut self, what: &str) -> Result<()> {
        let mut buf = Vec::new();
        let n = self.input.read_until(0, &mut buf)?;
        ensure!(
            buf.last() == Some(&0),
            "file ends inside {what} at byte {}",
            self.pos
        );
        self.pos += n as u64;
        Ok(())
    }
    fn product_quantizer(&mut self) -> Result<()> {
        let dim = self.i32("quantizer")?;
        self.skip(12, "quantizer")?;
        ensure!(dim >= 0, "negative quantizer dimension");
        self.skip(dim as i64 * KSUB * 4, "quantizer centroids")
    }
    fn matrix(&mut self, quantized: bool) -> Result<()> {
        if !quantized {
            let m = self.i64("matrix size")?;
            let n = self.i64("matrix size")?;
            ensure!(m >= 0 && n >= 0, "negative matrix size {m}x{n}");
            let bytes = m
                .checked_mul(n)
                .and_then(|x| x.checked_mul(4))
                .context("matrix size overflows")?;
            return self.skip(bytes, "matrix data");
        }
        let qnorm = self.bool("quantized matrix")?;
        let m = self.i64("quantized matrix")?;
        let _n = self.i64("quantized matrix")?;
        let codesize = self.i32("quantized matrix")?;
        self.skip(codesize as i64, "quantized codes")?;
        self.product_quantizer()?;
        if qnorm {
            self.skip(m, "norm codes")?;
            self.product_quantizer()?;
        }
        Ok(())
    }
}

/// Returns an error when `path` is not a complete fastText model file.
pub fn check(path: &Path) -> Result<()> {
    let file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let len = file.metadata()?.len();
    let mut w = Walker {
        input: BufReader::new(file),
        pos: 0,
        len,
    };
    let magic = w.i32("header")?;
    let version = w.i32("header")?;
    if magic != MAGIC || !(1..=VERSION).contains(&version) {
        bail!("not a fastText model (magic {magic}, version {version})");
    }
    w.skip(12 * 4 + 8, "arguments")?;
    let size = w.i32("dictionary")?;
    w.skip(8, "dictionary")?;
    let _ntokens = w.i64("dictionary")?;
    let pruned = w.i64("dictionary")?;
    ensure!(size >= 0, "negative dictionary size {size}");
    for _ in 0..size {
        w.cstr("dictionary entry")?;
        w.skip(9, "dictionary entry")?;
    }
    if pruned > 0 {
        w.skip(pruned * 8, "pruning index")?;
    }
    let quant_input = w.bool("input matrix flag")?;
    w.matrix(quant_input)?;
    let qout = w.bool("output matrix flag")?;
    w.matrix(quant_input && qout)?;
    ensure!(
        w.pos == len,
        "{} unexpected bytes after the model's end at byte {}",
        len - w.pos,
        w.pos
    );
    Ok(())
}
