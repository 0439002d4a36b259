//! JSONL documents (`.jsonl`, `.jsonl.gz`, `.jsonl.zst`): datamill shards, dolma/C4-style
//! exports, BigQuery file dumps. Every field other than `text`, `id`, `source` and `metadata`
//! lands in metadata.

use std::path::Path;

use anyhow::Result;
use serde::Deserialize;

use super::{record_id, stop_after_fatal, InputStream, Reader, Records};
use crate::doc::JsonlReader;
use crate::run::config::parse_params;

/// Options of the `jsonl` reader.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JsonlOptions {
    /// Keep a document's own `source` field instead of the pipeline's source name.
    #[serde(default)]
    pub keep_source: bool,
    /// Keep a document's own `id` (default); otherwise ids are `file:line`, `file` the path
    /// relative to the input root.
    #[serde(default = "yes")]
    pub keep_id: bool,
}

fn yes() -> bool {
    true
}

/// Reads JSONL documents.
#[derive(Debug, Clone)]
pub struct JsonlSource {
    options: JsonlOptions,
}

impl JsonlSource {
    /// Builds the reader from `[input.options]`.
    pub fn from_options(options: &toml::Table) -> Result<Self> {
        Ok(JsonlSource {
            options: parse_params("reader jsonl", options)?,
        })
    }
}

impl Reader for JsonlSource {
    fn read(&self, path: &Path, source: &str) -> Result<Records> {
        self.read_named(path, &crate::doc::file_name(path), source)
    }

    fn read_named(&self, path: &Path, name: &str, source: &str) -> Result<Records> {
        Ok(self.documents(JsonlReader::open(path)?, name, source))
    }

    fn reads_streams(&self) -> bool {
        true
    }

    fn read_stream(&self, input: InputStream, source: &str) -> Result<Records> {
        let reader = JsonlReader::from_stream(
            Path::new(&input.name),
            input.data,
            input.lines_before,
            input.offset,
        );
        Ok(self.documents(reader, &input.name, source))
    }
}

impl JsonlSource {
    /// The documents of `reader`, ids and sources set as the options say.
    fn documents(&self, reader: JsonlReader, name: &str, source: &str) -> Records {
        let name = name.to_string();
        let source = source.to_string();
        let opts = self.options.clone();
        stop_after_fatal(reader.map(move |(line, r)| {
            r.map(|mut d| {
                if !opts.keep_id || d.id.is_empty() {
                    d.id = record_id(&name, line);
                }
                if !opts.keep_source || d.source.is_empty() {
                    d.source = source.clone();
                }
                d
            })
        }))
    }
}
