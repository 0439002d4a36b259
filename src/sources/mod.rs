//! Readers that turn each source's real input format into [`Document`]s.
//!
//! A reader opens one input file and streams its records; a bad record becomes a
//! [`RecordError`] with the byte offset, and reading goes on with the next one.

pub mod archive;
pub mod arxiv;
pub mod books;
pub mod catalogue;
pub mod github;
pub mod jsonl;
pub mod stackexchange;
pub mod text;
pub mod training;
pub mod url_list;
pub mod warc;
pub mod wiki;
pub mod xml_encoding;

use std::io::Read;
use std::path::Path;

use anyhow::{bail, Result};

use crate::doc::{Compression, RecordError, RecordResult};
use crate::run::params::check_table;

/// A stream of records read from one input file.
pub type Records = Box<dyn Iterator<Item = RecordResult> + Send>;

/// Reads one input format.
pub trait Reader: Send + Sync {
    /// Opens `path` and streams its records; `source` goes into every document's `source`.
    /// Ids made from the file use its file name (see [`Reader::read_named`]).
    fn read(&self, path: &Path, source: &str) -> Result<Records>;

    /// Like [`Reader::read`], with `name`, the file's path relative to the run's input root
    /// (`a/x.warc.gz`), in place of the file name in document ids, so that same-named files
    /// in different folders give distinct ids and a moved tree gives the same ones. Readers
    /// whose ids come from the content (arXiv ids, repository paths, post ids) ignore it.
    fn read_named(&self, path: &Path, name: &str, source: &str) -> Result<Records> {
        let _ = name;
        self.read(path, source)
    }

    /// Gives the reader a folder for temporary files, next to the run's output (readers that
    /// unpack or re-encode an input before reading it use it; the others ignore it). Without
    /// it they use the system's temporary folder.
    fn use_scratch_dir(&mut self, dir: &Path) {
        let _ = dir;
    }

    /// Whether the reader can read an input as a byte stream ([`Reader::read_stream`]);
    /// readers that need random access are given a local file instead.
    fn reads_streams(&self) -> bool {
        false
    }

    /// Streams the records of an input given as bytes (a URL being fetched, a range of a big
    /// file); ids are made as [`Reader::read_named`] makes them from `input.name`.
    fn read_stream(&self, input: InputStream, source: &str) -> Result<Records> {
        let _ = source;
        bail!("{}: this reader needs a local file", input.name)
    }
}

/// An input given to a reader as a byte stream instead of a path.
pub struct InputStream {
    /// The input's name in document ids (see [`Reader::read_named`]).
    pub name: String,
    /// Name of the folder holding the input (a local file's folder, a URL's last folder).
    pub folder: Option<String>,
    /// The input's bytes, decompressed.
    pub data: Box<dyn Read + Send>,
    /// The compression `data` was stored with (for the names of read errors).
    pub compression: Option<Compression>,
    /// Lines of the whole input before `data` (a range of a JSONL file).
    pub lines_before: u64,
    /// Offset of `data`'s first byte in the whole (decompressed) input.
    pub offset: u64,
}

/// Builds the reader named in a pipeline's `[input] reader = "..."`, with its options table,
/// after checking the options against the reader's entry in the [catalogue](catalogue): an
/// unknown reader, an unknown option or a value of the wrong type is an error naming them.
pub fn build_reader(name: &str, options: &toml::Table) -> Result<Box<dyn Reader>> {
    let spec = catalogue::reader_spec(name)?;
    check_table(&format!("reader `{name}`"), spec.params, options)?;
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
        other => bail!("reader `{other}` is in the catalogue but not built here"),
    }
}

/// A stable document id from the input file's name (its path relative to the input root, see
/// [`Reader::read_named`]) and the record's position.
pub fn record_id(name: &str, position: u64) -> String {
    format!("{name}:{position}")
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
