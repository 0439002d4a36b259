//! Deduplication: CCNet line dedup, exact document dedup, C4's three-sentence span dedup and
//! MinHash near-duplicate removal.
//!
//! Line and document dedup share one mechanism: a scan pass records, for every hash, the
//! first position ([`DocPos`]) where it occurs in the group; the filter pass keeps an item only
//! at that position. "First" follows shard order and then stream order, so the result does not
//! depend on thread timing.

pub mod exact;
pub mod line;
pub mod minhash;
pub mod partitioned;
pub mod span;

use std::any::Any;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use anyhow::{Context, Result};

use crate::doc::Document;
use crate::stage::{DocPos, Scanner};

/// Hasher for keys that are already uniform 64-bit hashes: passes them through.
#[derive(Default, Clone, Copy)]
pub struct PassThroughHasher(u64);

impl Hasher for PassThroughHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 << 8) | b as u64;
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

/// Map from a 64-bit content hash to the packed position of its first occurrence.
pub type FirstSeenMap = HashMap<u64, u64, BuildHasherDefault<PassThroughHasher>>;

/// Extracts the hashes of one document (its lines, or the whole text).
pub type HashFn = fn(&Document, &mut Vec<u64>);

/// Scans one shard: records the first position of every hash.
pub struct FirstSeenScanner {
    hash: HashFn,
    map: FirstSeenMap,
    buf: Vec<u64>,
}

impl FirstSeenScanner {
    /// A scanner using `hash` to find a document's hashes.
    pub fn new(hash: HashFn) -> Self {
        FirstSeenScanner {
            hash,
            map: FirstSeenMap::default(),
            buf: Vec::new(),
        }
    }
}

impl Scanner for FirstSeenScanner {
    fn observe(&mut self, doc: &Document, pos: DocPos) {
        self.buf.clear();
        (self.hash)(doc, &mut self.buf);
        let at = pos.packed();
        for &h in &self.buf {
            self.map.entry(h).or_insert(at);
        }
    }

    fn finish(self: Box<Self>) -> Box<dyn Any + Send> {
        Box::new(self.map)
    }
}

/// The merged first-seen index of a run, one map per dedup group of shards.
#[derive(Default)]
pub struct FirstSeenIndex {
    group_size: u32,
    groups: HashMap<u32, FirstSeenMap>,
}

impl FirstSeenIndex {
    /// An empty index; `group_size` shards per group, 0 for one group over the whole run.
    pub fn new(group_size: u32) -> Self {
        FirstSeenIndex {
            group_size,
            groups: HashMap::new(),
        }
    }

    fn group(&self, shard: u32) -> u32 {
        shard.checked_div(self.group_size).unwrap_or(0)
    }

    /// Merges per-shard scans given in shard order: earlier shards win.
    pub fn absorb(&mut self, scans: Vec<(u32, Box<dyn Any + Send>)>) -> Result<()> {
        self.groups.clear();
        for (shard, scan) in scans {
            let map = scan
                .downcast::<FirstSeenMap>()
                .ok()
                .context("scan of the wrong type")?;
            let group = self.groups.entry(self.group(shard)).or_default();
            if group.is_empty() {
                *group = *map;
                continue;
            }
            group.reserve(map.len());
            for (h, at) in *map {
                group.entry(h).or_insert(at);
            }
        }
        Ok(())
    }

    /// True when `pos` is where `hash` first occurs in its group. A hash the scan did not
    /// record here (in a distributed run: first seen in another rank's shard) is not first.
    pub fn is_first(&self, hash: u64, pos: DocPos) -> bool {
        self.groups
            .get(&self.group(pos.shard))
            .and_then(|m| m.get(&hash))
            .is_some_and(|&at| at == pos.packed())
    }

    /// Shards per dedup group (0 = the whole run).
    pub fn group_size(&self) -> u32 {
        self.group_size
    }

    /// Number of distinct hashes held.
    pub fn len(&self) -> usize {
        self.groups.values().map(HashMap::len).sum()
    }

    /// True when no hash is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
