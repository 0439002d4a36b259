//! Exact document deduplication: a document whose text (xxh3-64) occurred earlier in the run
//! is dropped; the first one in shard and stream order is kept.

use std::any::Any;

use anyhow::Result;
use serde::Deserialize;

use super::{FirstSeenIndex, FirstSeenScanner};
use crate::doc::Document;
use crate::run::config::parse_params;
use crate::stage::{DocPos, Scanner, Stage, Verdict};

/// Parameters of `type = "exact_dedup"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExactDedupConfig {
    /// Shards per dedup group; 0 = all shards of the run in one group.
    #[serde(default)]
    pub group_size: u32,
}

/// Drops documents whose exact text was seen earlier.
pub struct ExactDeduper {
    index: FirstSeenIndex,
}

impl ExactDeduper {
    /// Builds the stage from its TOML parameters.
    pub fn from_params(params: &toml::Table) -> Result<Self> {
        let c: ExactDedupConfig = parse_params("exact_dedup", params)?;
        Ok(ExactDeduper {
            index: FirstSeenIndex::new(c.group_size),
        })
    }
}

/// The document's content hash: xxh3-64 of its text.
pub fn text_hash(doc: &Document, out: &mut Vec<u64>) {
    out.push(xxhash_rust::xxh3::xxh3_64(doc.text.as_bytes()));
}

impl Stage for ExactDeduper {
    fn name(&self) -> &str {
        "exact_dedup"
    }

    fn scanner(&self) -> Option<Box<dyn Scanner>> {
        Some(Box::new(FirstSeenScanner::new(text_hash)))
    }

    fn dedup_group_size(&self) -> Option<u32> {
        Some(self.index.group_size())
    }

    fn absorb(&mut self, scans: Vec<(u32, Box<dyn Any + Send>)>) -> Result<()> {
        self.index.absorb(scans)
    }

    fn process(&self, doc: &mut Document, pos: DocPos) -> Verdict {
        let h = xxhash_rust::xxh3::xxh3_64(doc.text.as_bytes());
        if self.index.is_first(h, pos) {
            Verdict::Keep
        } else {
            Verdict::drop("duplicate_document")
        }
    }
}
