//! The ARPA back-off model format (the text format of SRILM and KenLM's `lmplz`): written by
//! `train-lm --arpa`, and read into datamill's in-memory model so a KenLM-built model scores
//! as it is.
//!
//! ```text
//! \data\
//! ngram 1=COUNT
//! ...
//!
//! \1-grams:
//! LOG10_PROB<TAB>WORD[<TAB>LOG10_BACKOFF]
//! ...
//! \N-grams:
//! LOG10_PROB<TAB>W1 .. WN
//! \end\
//! ```
//!
//! Reading checks the counts against the sections: a section with fewer or more entries than
//! its count, a missing section or a missing `\end\` is an error naming the file and line.

use std::io::{BufRead, Write};
use std::path::Path;

use anyhow::{bail, ensure, Context, Result};

use super::model::{encode, ngram_key, token_hash, Entry, MAX_ORDER};

/// log10 probability KenLM gives `<unk>` when an ARPA file has none.
pub const DEFAULT_UNK: f32 = -100.0;

/// Writes an ARPA file section by section.
pub struct ArpaWriter<W: Write> {
    out: W,
    order: usize,
    section: usize,
}

impl<W: Write> ArpaWriter<W> {
    /// Writes the `\data\` header with the number of n-grams of each order.
    pub fn new(mut out: W, counts: &[u64]) -> Result<Self> {
        writeln!(out, "\\data\\")?;
        for (k, c) in counts.iter().enumerate() {
            writeln!(out, "ngram {}={c}", k + 1)?;
        }
        Ok(ArpaWriter {
            out,
            order: counts.len(),
            section: 0,
        })
    }

    /// Starts the section of order `n` (1, 2, ... in turn).
    pub fn section(&mut self, n: usize) -> Result<()> {
        ensure!(
            n == self.section + 1 && n <= self.order,
            "ARPA sections out of order"
        );
        self.section = n;
        writeln!(self.out, "\n\\{n}-grams:")?;
        Ok(())
    }

    /// Writes one n-gram of the current section (the back-off is left out at the top order).
    pub fn entry(&mut self, words: &[&str], prob: f32, backoff: f32) -> Result<()> {
        write!(self.out, "{prob}\t")?;
        for (i, w) in words.iter().enumerate() {
            if i > 0 {
                self.out.write_all(b" ")?;
            }
            self.out.write_all(w.as_bytes())?;
        }
        if self.section < self.order {
            write!(self.out, "\t{backoff}")?;
        }
        self.out.write_all(b"\n")?;
        Ok(())
    }

    /// Writes `\end\` and returns the output.
    pub fn finish(mut self) -> Result<W> {
        ensure!(
            self.section == self.order,
            "ARPA file ended before its last section"
        );
        writeln!(self.out, "\n\\end\\")?;
        self.out.flush()?;
        Ok(self.out)
    }
}

fn parse_f32(s: &str, what: &str) -> Result<f32> {
    let v: f32 = s.parse().with_context(|| format!("bad {what} `{s}`"))?;
    ensure!(!v.is_nan(), "bad {what} `{s}`");
    Ok(v)
}

/// Reads an ARPA file into datamill's model bytes (see [`super::model`]).
pub fn read_arpa(input: impl BufRead, path: &Path) -> Result<Vec<u8>> {
    let at = |line: usize| format!("{} line {line}", path.display());
    let mut lines = input.lines().enumerate().map(|(i, l)| (i + 1, l));
    let mut next = move || -> Result<Option<(usize, String)>> {
        match lines.next() {
            Some((n, Ok(l))) => Ok(Some((n, l))),
            Some((n, Err(e))) => Err(e).with_context(|| format!("cannot read {}", at(n))),
            None => Ok(None),
        }
    };
    // Header: anything before `\data\`, then `ngram N=COUNT` lines.
    loop {
        match next()? {
            Some((_, l)) if l.trim() == "\\data\\" => break,
            Some(_) => {}
            None => bail!("{}: not an ARPA file (no `\\data\\` line)", path.display()),
        }
    }
    let mut counts: Vec<u64> = Vec::new();
    let mut pending: Option<(usize, String)> = None;
    while let Some((n, l)) = next()? {
        let t = l.trim();
        if t.is_empty() {
            if counts.is_empty() {
                continue;
            }
            break;
        }
        let Some(spec) = t.strip_prefix("ngram ") else {
            pending = Some((n, l));
            break;
        };
        let (order, count) = spec
            .split_once('=')
            .with_context(|| format!("{}: bad count line `{t}`", at(n)))?;
        let order: usize = order
            .trim()
            .parse()
            .with_context(|| format!("{}: bad order in `{t}`", at(n)))?;
        let count: u64 = count
            .trim()
            .parse()
            .with_context(|| format!("{}: bad count in `{t}`", at(n)))?;
        ensure!(
            order == counts.len() + 1,
            "{}: counts out of order (`{t}`)",
            at(n)
        );
        counts.push(count);
    }
    let order = counts.len();
    ensure!(
        (1..=MAX_ORDER).contains(&order),
        "{}: order {order} (1..={MAX_ORDER} supported)",
        path.display()
    );
    let mut tables: Vec<Vec<Entry>> = Vec::with_capacity(order);
    let mut unk = DEFAULT_UNK;
    let mut hashes: Vec<u64> = Vec::with_capacity(order);
    for n in 1..=order {
        let header = format!("\\{n}-grams:");
        loop {
            let line = match pending.take() {
                Some(p) => Some(p),
                None => next()?,
            };
            let Some((ln, l)) = line else {
                bail!(
                    "{}: truncated: the file ends before the {n}-gram section",
                    path.display()
                );
            };
            let t = l.trim();
            if t.is_empty() {
                continue;
            }
            ensure!(
                t == header,
                "{}: expected `{header}`, found `{}`",
                at(ln),
                t.chars().take(60).collect::<String>()
            );
            break;
        }
        let want = counts[n - 1];
        let mut table = Vec::with_capacity(want.min(1 << 24) as usize);
        loop {
            let Some((ln, l)) = next()? else {
                if table.len() as u64 == want {
                    break;
                }
                bail!(
                    "{}: truncated: the {n}-gram section has {} of its {want} entries and \
                     the file ends",
                    path.display(),
                    table.len()
                );
            };
            let t = l.trim();
            if t.is_empty() {
                continue;
            }
            if t.starts_with('\\') {
                ensure!(
                    table.len() as u64 == want,
                    "{}: the {n}-gram section has {} entries, its count says {want} \
                     (wrong count or truncated section)",
                    at(ln),
                    table.len()
                );
                pending = Some((ln, l));
                break;
            }
            ensure!(
                (table.len() as u64) < want,
                "{}: more {n}-grams than the count {want} in `\\data\\`",
                at(ln)
            );
            let mut fields = t.split_ascii_whitespace();
            let prob =
                parse_f32(fields.next().unwrap_or(""), "probability").with_context(|| at(ln))?;
            hashes.clear();
            let mut is_unk = false;
            for _ in 0..n {
                let w = fields
                    .next()
                    .with_context(|| format!("{}: fewer than {n} words", at(ln)))?;
                is_unk = n == 1 && w == "<unk>";
                hashes.push(token_hash(w));
            }
            let backoff = match fields.next() {
                Some(b) => parse_f32(b, "back-off").with_context(|| at(ln))?,
                None => 0.0,
            };
            ensure!(
                fields.next().is_none(),
                "{}: more fields than a {n}-gram has",
                at(ln)
            );
            if is_unk {
                unk = prob;
            }
            table.push(Entry {
                key: ngram_key(&hashes),
                prob,
                backoff,
            });
        }
        tables.push(table);
    }
    loop {
        match match pending.take() {
            Some(p) => Some(p),
            None => next()?,
        } {
            Some((_, l)) if l.trim().is_empty() => {}
            Some((_, l)) if l.trim() == "\\end\\" => break,
            Some((ln, l)) => bail!(
                "{}: expected `\\end\\`, found `{}`",
                at(ln),
                l.trim().chars().take(60).collect::<String>()
            ),
            None => bail!("{}: truncated: no `\\end\\` line", path.display()),
        }
    }
    encode(tables, unk).with_context(|| format!("cannot build a model from {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lm::model::NgramModel;

    const ARPA: &str =
        "\\data\\\nngram 1=4\nngram 2=2\n\n\\1-grams:\n-1.0\t<unk>\n-99\t<s>\t-0.5\n\
        -0.5\ta\t-0.3\n-0.7\t</s>\n\n\\2-grams:\n-0.2\t<s> a\n-0.1\ta </s>\n\n\\end\\\n";

    fn read(text: &str) -> Result<NgramModel> {
        let bytes = read_arpa(text.as_bytes(), Path::new("t.arpa"))?;
        NgramModel::from_bytes(bytes, Path::new("t.arpa"))
    }

    #[test]
    fn reads_counts_and_scores_with_backoff() {
        let m = read(ARPA).unwrap();
        assert_eq!(m.counts(), [4, 2]);
        assert_eq!(m.unk(), -1.0);
        let a = token_hash("a");
        let mut buf = Vec::new();
        // <s> a </s>: p(a|<s>) = -0.2, p(</s>|a) = -0.1.
        let s = m.score_tokens(&[a], &mut buf);
        assert!((s.log10_prob - -0.3).abs() < 1e-6, "{s:?}");
        // <s> a a </s>: -0.2, then p(a|a) backs off: bo(a) + p(a) = -0.3 - 0.5, then -0.1.
        let s = m.score_tokens(&[a, a], &mut buf);
        assert!((s.log10_prob - -1.1).abs() < 1e-6, "{s:?}");
    }

    #[test]
    fn wrong_counts_and_truncation_name_the_line() {
        let more = ARPA.replace("ngram 2=2", "ngram 2=3");
        let e = format!("{:#}", read(&more).err().unwrap());
        assert!(
            e.contains("t.arpa line 15") && e.contains("count says 3"),
            "{e}"
        );
        let fewer = ARPA.replace("ngram 1=4", "ngram 1=3");
        let e = format!("{:#}", read(&fewer).err().unwrap());
        assert!(e.contains("line 9") && e.contains("more 1-grams"), "{e}");
        let cut = &ARPA[..ARPA.find("-0.1\ta </s>").unwrap()];
        let e = format!("{:#}", read(cut).err().unwrap());
        assert!(
            e.contains("truncated") && e.contains("2-gram section has 1 of its 2"),
            "{e}"
        );
        let no_end = ARPA.replace("\\end\\\n", "");
        assert!(format!("{:#}", read(&no_end).err().unwrap()).contains("no `\\end\\`"));
        let e = format!("{:#}", read("hello\n").err().unwrap());
        assert!(e.contains("not an ARPA file"), "{e}");
    }
}
