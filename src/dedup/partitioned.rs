//! First-seen deduplication across ranks, as map, reduce and apply over files.
//!
//! - **map**: each rank writes, per shard, the shard's first position of every hash into a map
//!   file, its records grouped into P partitions by hash.
//! - **reduce**: task `p` of P reads partition `p` of every shard's map file, finds for every
//!   hash (within its dedup group) the first position over the whole run, and writes a drop
//!   file: per shard, the hashes whose first occurrence lies in an earlier shard.
//! - **apply**: a rank rebuilds, for each of its shards, the shard's own first-seen map minus
//!   that shard's drop hashes; the stage then keeps exactly what a single process keeps.
//!
//! MinHash near-dup dedup ([`crate::stage::ClusterDedup`]) uses the same map files (band key,
//! position; several positions per key allowed) and adds per-shard signature files, one edge
//! file per partition (the verified duplicate pairs) and one cluster file per shard (the
//! decisions of the cluster step).
//!
//! All files are little-endian and written atomically.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use anyhow::{bail, ensure, Context, Result};

use super::FirstSeenMap;
use crate::doc::write_atomic;

const MAP_MAGIC: &[u8; 8] = b"DMMAP001";
const DROP_MAGIC: &[u8; 8] = b"DMDROP01";
const EDGE_MAGIC: &[u8; 8] = b"DMEDGE01";

/// The map file of shard `shard` in folder `dir`.
pub fn map_path(dir: &Path, shard: u32) -> PathBuf {
    dir.join("map").join(format!("{shard:05}.map"))
}

/// The drop file of partition `partition` in folder `dir`.
pub fn drop_path(dir: &Path, partition: usize) -> PathBuf {
    dir.join("drop").join(format!("p{partition:05}.drop"))
}

/// The edge file (verified near-duplicate pairs) of partition `partition` in folder `dir`.
pub fn edges_path(dir: &Path, partition: usize) -> PathBuf {
    dir.join("edges").join(format!("p{partition:05}.edges"))
}

/// The MinHash signature file of shard `shard` in folder `dir` (its ids: extension `ids`).
pub fn signature_path(dir: &Path, shard: u32) -> PathBuf {
    dir.join("sig").join(format!("{shard:05}.sig"))
}

/// The cluster decisions of shard `shard` in folder `dir`.
pub fn cluster_path(dir: &Path, shard: u32) -> PathBuf {
    dir.join("cluster").join(format!("{shard:05}.json"))
}

/// True when the reduce of `partition` has written its output (drop or edge file).
pub fn reduced(dir: &Path, partition: usize) -> bool {
    drop_path(dir, partition).exists() || edges_path(dir, partition).exists()
}

/// The partition count recorded in the map files already in `dir` (read from the first one's
/// header), if any.
pub fn recorded_partitions(dir: &Path) -> Option<usize> {
    let mut names: Vec<PathBuf> = std::fs::read_dir(dir.join("map"))
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "map"))
        .collect();
    names.sort();
    let mut header = [0u8; 16];
    for name in names {
        let Ok(mut f) = std::fs::File::open(&name) else {
            continue;
        };
        if std::io::Read::read_exact(&mut f, &mut header).is_ok() && &header[..8] == MAP_MAGIC {
            return Some(u64_at(&header, 8) as usize);
        }
    }
    None
}

/// Partition of a hash among `partitions`.
pub fn partition_of(hash: u64, partitions: usize) -> usize {
    ((hash >> 32) % partitions as u64) as usize
}

/// Writes one shard's first-seen map as a map file with `partitions` partitions.
pub fn write_map(path: &Path, map: &FirstSeenMap, partitions: usize) -> Result<()> {
    write_records(path, map.iter().map(|(&h, &at)| (h, at)), partitions)
}

/// Writes `(hash, packed position)` records (a hash may repeat) as a map file with
/// `partitions` partitions, each sorted.
pub fn write_records(
    path: &Path,
    records: impl IntoIterator<Item = (u64, u64)>,
    partitions: usize,
) -> Result<()> {
    ensure!(partitions > 0, "the partition count must be at least 1");
    let mut parts: Vec<Vec<(u64, u64)>> = vec![Vec::new(); partitions];
    for (h, at) in records {
        parts[partition_of(h, partitions)].push((h, at));
    }
    let total: usize = parts.iter().map(Vec::len).sum();
    let mut out = Vec::with_capacity(16 + 8 * (partitions + 1) + 16 * total);
    out.extend_from_slice(MAP_MAGIC);
    out.extend_from_slice(&(partitions as u64).to_le_bytes());
    let mut offset = 0u64;
    for p in &parts {
        out.extend_from_slice(&offset.to_le_bytes());
        offset += p.len() as u64;
    }
    out.extend_from_slice(&offset.to_le_bytes());
    for mut p in parts {
        p.sort_unstable();
        for (h, at) in p {
            out.extend_from_slice(&h.to_le_bytes());
            out.extend_from_slice(&at.to_le_bytes());
        }
    }
    write_atomic(path, &out)
}

fn u64_at(bytes: &[u8], i: usize) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&bytes[i..i + 8]);
    u64::from_le_bytes(b)
}

/// A map file read into memory.
pub struct MapFile {
    bytes: Vec<u8>,
    partitions: usize,
}

impl MapFile {
    /// Reads and checks a map file.
    pub fn read(path: &Path) -> Result<MapFile> {
        let bytes = std::fs::read(path).with_context(|| {
            format!(
                "map file {} is missing: the previous step has not finished for this shard",
                path.display()
            )
        })?;
        ensure!(
            bytes.len() >= 24 && &bytes[..8] == MAP_MAGIC,
            "{} is not a datamill map file",
            path.display()
        );
        let partitions = u64_at(&bytes, 8) as usize;
        ensure!(
            partitions <= bytes.len() / 8,
            "{} is not a datamill map file",
            path.display()
        );
        let header = 16 + 8 * (partitions + 1);
        ensure!(
            partitions > 0 && bytes.len() >= header,
            "{} is truncated",
            path.display()
        );
        let total = u64_at(&bytes, 16 + 8 * partitions) as usize;
        ensure!(
            bytes.len() == header + 16 * total,
            "{} is truncated",
            path.display()
        );
        let mut prev = 0;
        for p in 0..=partitions {
            let at = u64_at(&bytes, 16 + 8 * p) as usize;
            ensure!(at >= prev && at <= total, "{} is corrupt", path.display());
            prev = at;
        }
        Ok(MapFile { bytes, partitions })
    }

    /// Number of partitions the file was written with.
    pub fn partitions(&self) -> usize {
        self.partitions
    }

    /// The `(hash, packed position)` records of partition `p`.
    pub fn partition(&self, p: usize) -> impl Iterator<Item = (u64, u64)> + '_ {
        let header = 16 + 8 * (self.partitions + 1);
        let start = u64_at(&self.bytes, 16 + 8 * p) as usize;
        let end = u64_at(&self.bytes, 16 + 8 * (p + 1)) as usize;
        (start..end).map(move |i| {
            let at = header + 16 * i;
            (u64_at(&self.bytes, at), u64_at(&self.bytes, at + 8))
        })
    }

    /// Every record, as a first-seen map.
    pub fn to_map(&self) -> FirstSeenMap {
        let mut map = FirstSeenMap::default();
        for p in 0..self.partitions {
            map.extend(self.partition(p));
        }
        map
    }
}

/// The `(shard, hash, packed position)` records of partition `partition` of every shard's map
/// file; an error when a map file is missing or was written with another partition count.
pub fn read_partition(
    dir: &Path,
    shards: &[u32],
    partition: usize,
    partitions: usize,
) -> Result<Vec<(u32, u64, u64)>> {
    // Only partition `partition` of each map file is kept in memory, so a reduce task holds
    // about 1/P of the run's records.
    let mut records: Vec<(u32, u64, u64)> = Vec::new();
    for &shard in shards {
        let m = MapFile::read(&map_path(dir, shard))?;
        if m.partitions() != partitions {
            bail!(
                "partition count changed between phases: {} was written with {} partitions, \
                 the reduce runs with {}",
                map_path(dir, shard).display(),
                m.partitions(),
                partitions
            );
        }
        records.extend(m.partition(partition).map(|(h, at)| (shard, h, at)));
    }
    Ok(records)
}

/// Writes the verified near-duplicate pairs of one partition (sorted).
pub fn write_edges(path: &Path, edges: &[(u64, u64)]) -> Result<()> {
    let mut out = Vec::with_capacity(16 + 16 * edges.len());
    out.extend_from_slice(EDGE_MAGIC);
    out.extend_from_slice(&(edges.len() as u64).to_le_bytes());
    for (a, b) in edges {
        out.extend_from_slice(&a.to_le_bytes());
        out.extend_from_slice(&b.to_le_bytes());
    }
    write_atomic(path, &out)
}

/// Reads the edge file of partition `partition`.
pub fn read_edges(dir: &Path, partition: usize) -> Result<Vec<(u64, u64)>> {
    let path = edges_path(dir, partition);
    let bytes = std::fs::read(&path).with_context(|| {
        format!(
            "edge file {} is missing: the reduce step has not finished for partition {partition}",
            path.display()
        )
    })?;
    ensure!(
        bytes.len() >= 16 && &bytes[..8] == EDGE_MAGIC,
        "{} is not a datamill edge file",
        path.display()
    );
    let n = u64_at(&bytes, 8) as usize;
    ensure!(
        n.checked_mul(16).and_then(|b| b.checked_add(16)) == Some(bytes.len()),
        "{} is truncated",
        path.display()
    );
    Ok((0..n)
        .map(|i| (u64_at(&bytes, 16 + 16 * i), u64_at(&bytes, 24 + 16 * i)))
        .collect())
}

/// Reduces partition `partition`: reads that partition of every shard's map file and writes the
/// drop file. `group_of` maps a shard to its dedup group. Returns the number of dropped hashes.
pub fn reduce(
    dir: &Path,
    shards: &[u32],
    partition: usize,
    partitions: usize,
    group_of: impl Fn(u32) -> u32,
) -> Result<u64> {
    let records = read_partition(dir, shards, partition, partitions)?;
    let mut first: HashMap<(u32, u64), u64> = HashMap::with_capacity(records.len());
    for &(shard, h, at) in &records {
        first
            .entry((group_of(shard), h))
            .and_modify(|f| *f = (*f).min(at))
            .or_insert(at);
    }
    let n = shards.iter().map(|&s| s as usize + 1).max().unwrap_or(0);
    let mut per_shard: Vec<Vec<u64>> = vec![Vec::new(); n];
    let mut dropped = 0;
    for &(shard, h, at) in &records {
        if first.get(&(group_of(shard), h)) != Some(&at) {
            per_shard[shard as usize].push(h);
            dropped += 1;
        }
    }
    let mut out = Vec::new();
    out.extend_from_slice(DROP_MAGIC);
    out.extend_from_slice(&(n as u64).to_le_bytes());
    let mut offset = 0u64;
    for s in &per_shard {
        out.extend_from_slice(&offset.to_le_bytes());
        offset += s.len() as u64;
    }
    out.extend_from_slice(&offset.to_le_bytes());
    for mut s in per_shard {
        s.sort_unstable();
        for h in s {
            out.extend_from_slice(&h.to_le_bytes());
        }
    }
    write_atomic(&drop_path(dir, partition), &out)?;
    Ok(dropped)
}

/// The hashes shard `shard` must not keep, from every partition's drop file.
pub fn read_drops(dir: &Path, shard: u32, partitions: usize) -> Result<HashSet<u64>> {
    let mut drops = HashSet::new();
    for p in 0..partitions {
        let path = drop_path(dir, p);
        let bytes = std::fs::read(&path).with_context(|| {
            format!(
                "drop file {} is missing: the reduce step has not finished for partition {p}",
                path.display()
            )
        })?;
        ensure!(
            bytes.len() >= 24 && &bytes[..8] == DROP_MAGIC,
            "{} is not a datamill drop file",
            path.display()
        );
        let n = u64_at(&bytes, 8) as usize;
        let header = 16 + 8 * (n + 1);
        ensure!(bytes.len() >= header, "{} is truncated", path.display());
        if shard as usize >= n {
            continue;
        }
        let start = u64_at(&bytes, 16 + 8 * shard as usize) as usize;
        let end = u64_at(&bytes, 16 + 8 * (shard as usize + 1)) as usize;
        ensure!(
            bytes.len() >= header + 8 * end,
            "{} is truncated",
            path.display()
        );
        for i in start..end {
            drops.insert(u64_at(&bytes, header + 8 * i));
        }
    }
    Ok(drops)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn map_reduce_apply_finds_the_global_first() {
        let dir = tempfile::tempdir().unwrap();
        let pos = |shard: u64, i: u64| (shard << 40) | i;
        let mut a = FirstSeenMap::default();
        a.insert(1, pos(0, 5));
        a.insert(2, pos(0, 1));
        let mut b = FirstSeenMap::default();
        b.insert(1 << 33, pos(1, 0));
        b.insert(2, pos(1, 3));
        b.insert(1, pos(1, 9));
        write_map(&map_path(dir.path(), 0), &a, 3).unwrap();
        write_map(&map_path(dir.path(), 1), &b, 3).unwrap();
        let mut dropped = 0;
        for p in 0..3 {
            dropped += reduce(dir.path(), &[0, 1], p, 3, |_| 0).unwrap();
        }
        assert_eq!(dropped, 2);
        assert!(read_drops(dir.path(), 0, 3).unwrap().is_empty());
        let d1 = read_drops(dir.path(), 1, 3).unwrap();
        assert_eq!(d1, HashSet::from([1, 2]));
        assert_eq!(MapFile::read(&map_path(dir.path(), 1)).unwrap().to_map(), b);
        let err = reduce(dir.path(), &[0, 1], 0, 4, |_| 0).unwrap_err();
        assert!(err.to_string().contains("partition count changed"), "{err}");
    }
}
