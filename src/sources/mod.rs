//! Readers that turn each source's real input format into [`Document`]s.
//!
//! A reader opens one input file and streams its records; a bad record becomes a
//! [`RecordError`] with the byte offset, and reading goes on with the next one.

pub mod archive;
pub mod arxiv;
pub mod books;
pub mod github;
pub mod jsonl;
pub mod stackexchange;
pub mod warc;
pub mod wiki;

use std::path::Path;

use anyhow::{bail, Result};

use crate::doc::{RecordError, RecordResult};

/// A stream of records read from one input file.
pub type Records = Box<dyn Iterator<Item = RecordResult> + Send>;

/// Reads one input format.
pub trait Reader: Send + Sync {
    /// Opens `path` and streams its records; `source` goes into every document's `source`.
    fn read(&self, path: &Path, source: &str) -> Result<Records>;
}

/// Builds the reader named in a pipeline's `[input] reader = "..."`, with its options table.
pub fn build_reader(name: &str, options: &toml::Table) -> Result<Box<dyn Reader>> {
    match name {
        "jsonl" => Ok(Box::new(jsonl::JsonlSource::from_options(options)?)),
        "github" => Ok(Box::new(github::GithubSource::from_options(options)?)),
        "arxiv" => Ok(Box::new(arxiv::ArxivSource::from_options(options)?)),
        "books" => Ok(Box::new(books::BooksSource::from_options(options)?)),
        "stackexchange" => Ok(Box::new(stackexchange::StackExchangeSource::from_options(
            options,
        )?)),
        "wikipedia" => Ok(Box::new(wiki::WikiSource::from_options(options)?)),
        "warc" => Ok(Box::new(warc::WarcSource::warc_from_options(options)?)),
        "wet" => Ok(Box::new(warc::WarcSource::wet_from_options(options)?)),
        other => bail!("unknown reader `{other}` (known: {})", READERS.join(", ")),
    }
}

/// Names accepted by [`build_reader`].
pub const READERS: &[&str] = &[
    "jsonl",
    "warc",
    "wet",
    "books",
    "wikipedia",
    "stackexchange",
    "github",
    "arxiv",
];

/// A stable document id from the input file's name and the record's position.
pub fn record_id(path: &Path, position: u64) -> String {
    format!("{}:{}", crate::doc::file_name(path), position)
}

/// Wraps a fallible iterator so that the first fatal error is the last item.
pub fn stop_after_fatal(it: impl Iterator<Item = RecordResult> + Send + 'static) -> Records {
    let mut stopped = false;
    Box::new(it.take_while(move |r| {
        if stopped {
            return false;
        }
        if let Err(RecordError { fatal: true, .. }) = r {
            stopped = true;
        }
        true
    }))
}
