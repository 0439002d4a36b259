//! The Megatron-LM indexed dataset (`.bin` + `.idx`, "MMIDIDX" version 1): a streaming writer
//! with bounded memory and a reader of the index.
//!
//! Layout (all little-endian), from Megatron-Core `indexed_dataset.py`:
//! `.bin` is the token ids of every sequence back to back in the index dtype, no header.
//! `.idx` is the 9-byte magic `MMIDIDX\0\0`, version `u64 = 1`, dtype code `u8`,
//! `sequence_count u64` (S), `document_count u64` (D = documents + 1), then
//! `int32 sequence_lengths[S]`, `int64 sequence_pointers[S]` (byte offsets into `.bin`) and
//! `int64 document_indices[D]` (sequence index where each document starts, then S).
//! datamill writes one sequence per document, so `document_indices = 0, 1, ..., S`.

use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, ensure, Context, Result};
use serde::{Deserialize, Serialize};

use crate::doc::temp_path;

/// The 9 bytes every `.idx` file starts with.
pub const INDEX_MAGIC: &[u8; 9] = b"MMIDIDX\x00\x00";
/// The only index version Megatron reads.
pub const INDEX_VERSION: u64 = 1;
/// Size of the fixed header: magic 9 + version 8 + dtype 1 + sequence count 8 + document count 8.
pub const HEADER_BYTES: u64 = 34;
/// Megatron's `DType.optimal_dtype`: uint16 below this vocabulary size, else int32.
pub const UINT16_VOCAB_LIMIT: usize = 65_500;

/// Token dtype of a dataset, with Megatron's codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenDtype {
    /// `numpy.uint16`, code 8: vocabularies under 65,500.
    Uint16,
    /// `numpy.int32`, code 4: larger vocabularies.
    Int32,
}

impl TokenDtype {
    /// The dtype Megatron's `optimal_dtype` picks for a vocabulary of `vocab_size` ids.
    pub fn for_vocab(vocab_size: usize) -> Self {
        if vocab_size < UINT16_VOCAB_LIMIT {
            TokenDtype::Uint16
        } else {
            TokenDtype::Int32
        }
    }

    /// Megatron's dtype code.
    pub fn code(self) -> u8 {
        match self {
            TokenDtype::Uint16 => 8,
            TokenDtype::Int32 => 4,
        }
    }

    /// The dtype of a code, if it is a token dtype datamill reads.
    pub fn from_code(code: u8) -> Option<Self> {
        match code {
            8 => Some(TokenDtype::Uint16),
            4 => Some(TokenDtype::Int32),
            _ => None,
        }
    }

    /// Bytes per token.
    pub fn size(self) -> u64 {
        match self {
            TokenDtype::Uint16 => 2,
            TokenDtype::Int32 => 4,
        }
    }
}

/// The `.bin` and `.idx` paths of a dataset prefix (`dir/name` gives `dir/name.bin`, `.idx`).
pub fn dataset_paths(prefix: &Path) -> (PathBuf, PathBuf) {
    let mut bin = prefix.as_os_str().to_os_string();
    bin.push(".bin");
    let mut idx = prefix.as_os_str().to_os_string();
    idx.push(".idx");
    (PathBuf::from(bin), PathBuf::from(idx))
}

/// Sizes and checksums of a finished dataset.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DatasetFiles {
    /// Documents (= sequences) in the dataset.
    pub docs: u64,
    /// Tokens in the `.bin`.
    pub tokens: u64,
    /// Size of the `.bin` in bytes.
    pub bin_bytes: u64,
    /// Size of the `.idx` in bytes.
    pub idx_bytes: u64,
    /// xxh3-64 of the `.bin`, 16 hex digits.
    pub bin_xxh3: String,
    /// xxh3-64 of the `.idx`, 16 hex digits.
    pub idx_xxh3: String,
}

/// Writes a dataset document by document in bounded memory: tokens stream to `.bin`, lengths
/// to the `.idx` and pointers to a side file, joined at [`DatasetWriter::finish`]. Everything is
/// written under temporary names, fsynced and renamed, `.idx` last.
pub struct DatasetWriter {
    dtype: TokenDtype,
    bin_path: PathBuf,
    idx_path: PathBuf,
    ptr_path: PathBuf,
    bin: Option<Hashing<BufWriter<File>>>,
    idx: Option<BufWriter<File>>,
    ptr: Option<BufWriter<File>>,
    docs: u64,
    bin_bytes: u64,
    scratch: Vec<u8>,
}

/// A writer that hashes (xxh3-64) and counts what goes through it.
struct Hashing<W> {
    inner: W,
    hasher: xxhash_rust::xxh3::Xxh3,
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

fn create(path: &Path) -> Result<BufWriter<File>> {
    let f = File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
    Ok(BufWriter::with_capacity(1 << 20, f))
}

impl DatasetWriter {
    /// Starts the dataset `prefix.bin` / `prefix.idx`.
    pub fn create(prefix: &Path, dtype: TokenDtype) -> Result<Self> {
        if let Some(dir) = prefix.parent() {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
        }
        let (bin_path, idx_path) = dataset_paths(prefix);
        let mut ptr_name = idx_path.as_os_str().to_os_string();
        ptr_name.push(".pointers");
        let ptr_path = temp_path(Path::new(&ptr_name));
        let bin = Hashing {
            inner: create(&temp_path(&bin_path))?,
            hasher: xxhash_rust::xxh3::Xxh3::new(),
        };
        let mut idx = create(&temp_path(&idx_path))?;
        idx.write_all(INDEX_MAGIC)?;
        idx.write_all(&INDEX_VERSION.to_le_bytes())?;
        idx.write_all(&[dtype.code()])?;
        // Counts are patched in by `finish`.
        idx.write_all(&[0u8; 16])?;
        Ok(DatasetWriter {
            dtype,
            bin_path,
            idx_path,
            ptr_path: ptr_path.clone(),
            bin: Some(bin),
            idx: Some(idx),
            ptr: Some(create(&ptr_path)?),
            docs: 0,
            bin_bytes: 0,
            scratch: Vec::new(),
        })
    }

    /// The dtype tokens are stored in.
    pub fn dtype(&self) -> TokenDtype {
        self.dtype
    }

    /// Appends one document given as token ids; an id that does not fit the dtype is an error.
    pub fn add_document(&mut self, tokens: &[u32]) -> Result<()> {
        self.scratch.clear();
        match self.dtype {
            TokenDtype::Uint16 => {
                for &t in tokens {
                    let v = u16::try_from(t)
                        .with_context(|| format!("token id {t} does not fit uint16"))?;
                    self.scratch.extend_from_slice(&v.to_le_bytes());
                }
            }
            TokenDtype::Int32 => {
                for &t in tokens {
                    let v = i32::try_from(t)
                        .with_context(|| format!("token id {t} does not fit int32"))?;
                    self.scratch.extend_from_slice(&v.to_le_bytes());
                }
            }
        }
        let bytes = std::mem::take(&mut self.scratch);
        let r = self.add_raw(&bytes, tokens.len() as u64);
        self.scratch = bytes;
        r
    }

    /// Appends one document given as its encoded bytes (`len` tokens in this dtype).
    pub fn add_raw(&mut self, bytes: &[u8], len: u64) -> Result<()> {
        ensure!(
            bytes.len() as u64 == len * self.dtype.size(),
            "document of {len} tokens has {} bytes",
            bytes.len()
        );
        let len32 = i32::try_from(len).context("document longer than 2^31 tokens")?;
        let (Some(bin), Some(idx), Some(ptr)) =
            (self.bin.as_mut(), self.idx.as_mut(), self.ptr.as_mut())
        else {
            bail!("dataset writer already finished");
        };
        bin.write_all(bytes)
            .with_context(|| format!("cannot write {}", self.bin_path.display()))?;
        idx.write_all(&len32.to_le_bytes())?;
        ptr.write_all(&(self.bin_bytes as i64).to_le_bytes())?;
        self.bin_bytes += bytes.len() as u64;
        self.docs += 1;
        Ok(())
    }

    /// Copies `len` tokens of one document from a reader positioned at its first byte.
    pub fn copy_document(&mut self, from: &mut impl Read, len: u64) -> Result<()> {
        let n = (len * self.dtype.size()) as usize;
        self.scratch.resize(n, 0);
        let mut bytes = std::mem::take(&mut self.scratch);
        let r = from
            .read_exact(&mut bytes)
            .context("token data ends early")
            .and_then(|_| self.add_raw(&bytes, len));
        self.scratch = bytes;
        r
    }

    /// Documents written so far.
    pub fn docs(&self) -> u64 {
        self.docs
    }

    /// Size of the `.bin` so far.
    pub fn bin_bytes(&self) -> u64 {
        self.bin_bytes
    }

    /// Writes the index, fsyncs both files and renames them into place (`.bin` first).
    pub fn finish(mut self) -> Result<DatasetFiles> {
        let (Some(bin), Some(idx), Some(ptr)) = (self.bin.take(), self.idx.take(), self.ptr.take())
        else {
            bail!("dataset writer already finished");
        };
        let bin_xxh3 = format!("{:016x}", bin.hasher.digest());
        let bin_file = bin
            .inner
            .into_inner()
            .map_err(|e| anyhow::anyhow!("cannot flush {}: {}", self.bin_path.display(), e))?;
        bin_file
            .sync_all()
            .with_context(|| format!("cannot fsync {}", self.bin_path.display()))?;
        drop(bin_file);
        drop(
            ptr.into_inner()
                .map_err(|e| anyhow::anyhow!("cannot flush pointers: {e}"))?,
        );

        let mut idx = idx;
        let mut pointers = BufReader::with_capacity(
            1 << 20,
            File::open(&self.ptr_path)
                .with_context(|| format!("cannot reopen {}", self.ptr_path.display()))?,
        );
        std::io::copy(&mut pointers, &mut idx)?;
        drop(pointers);
        let _ = std::fs::remove_file(&self.ptr_path);
        for i in 0..=self.docs {
            idx.write_all(&(i as i64).to_le_bytes())?;
        }
        let mut idx_file = idx
            .into_inner()
            .map_err(|e| anyhow::anyhow!("cannot flush {}: {}", self.idx_path.display(), e))?;
        idx_file.seek(SeekFrom::Start(18))?;
        idx_file.write_all(&self.docs.to_le_bytes())?;
        idx_file.write_all(&(self.docs + 1).to_le_bytes())?;
        idx_file
            .sync_all()
            .with_context(|| format!("cannot fsync {}", self.idx_path.display()))?;
        drop(idx_file);

        let tmp_bin = temp_path(&self.bin_path);
        std::fs::rename(&tmp_bin, &self.bin_path)
            .with_context(|| format!("cannot rename {}", tmp_bin.display()))?;
        let tmp_idx = temp_path(&self.idx_path);
        let idx_xxh3 = crate::doc::file_xxh3(&tmp_idx)?;
        let idx_bytes = std::fs::metadata(&tmp_idx)?.len();
        std::fs::rename(&tmp_idx, &self.idx_path)
            .with_context(|| format!("cannot rename {}", tmp_idx.display()))?;
        Ok(DatasetFiles {
            docs: self.docs,
            tokens: self.bin_bytes / self.dtype.size(),
            bin_bytes: self.bin_bytes,
            idx_bytes,
            bin_xxh3,
            idx_xxh3,
        })
    }
}

impl Drop for DatasetWriter {
    fn drop(&mut self) {
        if self.bin.is_some() {
            let _ = std::fs::remove_file(temp_path(&self.bin_path));
            let _ = std::fs::remove_file(temp_path(&self.idx_path));
            let _ = std::fs::remove_file(&self.ptr_path);
        }
    }
}

/// The header of an `.idx` file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IndexHeader {
    /// Token dtype.
    pub dtype: TokenDtype,
    /// Number of sequences (S).
    pub sequences: u64,
    /// Length of `document_indices` (D = documents + 1).
    pub document_count: u64,
}

impl IndexHeader {
    /// Byte offset of `sequence_lengths`.
    pub fn lengths_offset(&self) -> u64 {
        HEADER_BYTES
    }
    /// Byte offset of `sequence_pointers`.
    pub fn pointers_offset(&self) -> u64 {
        HEADER_BYTES + 4 * self.sequences
    }
    /// Byte offset of `document_indices`.
    pub fn documents_offset(&self) -> u64 {
        HEADER_BYTES + 12 * self.sequences
    }
    /// The size an index of this shape has (without multimodal `sequence_modes`).
    pub fn expected_idx_bytes(&self) -> u64 {
        self.documents_offset() + 8 * self.document_count
    }
}

/// Reads an index header; errors say what is wrong and name the file.
pub fn read_header(idx_path: &Path) -> Result<IndexHeader> {
    let mut f =
        File::open(idx_path).with_context(|| format!("cannot open {}", idx_path.display()))?;
    let mut h = [0u8; HEADER_BYTES as usize];
    f.read_exact(&mut h)
        .with_context(|| format!("{}: shorter than the 34-byte header", idx_path.display()))?;
    parse_header(&h).with_context(|| format!("{}: bad index header", idx_path.display()))
}

fn parse_header(h: &[u8; HEADER_BYTES as usize]) -> Result<IndexHeader> {
    ensure!(&h[..9] == INDEX_MAGIC, "magic is not MMIDIDX");
    let u64_at = |o: usize| {
        let mut b = [0u8; 8];
        b.copy_from_slice(&h[o..o + 8]);
        u64::from_le_bytes(b)
    };
    let version = u64_at(9);
    ensure!(version == INDEX_VERSION, "version {version}, expected 1");
    let dtype = TokenDtype::from_code(h[17])
        .with_context(|| format!("dtype code {} is not a token dtype (4 or 8)", h[17]))?;
    Ok(IndexHeader {
        dtype,
        sequences: u64_at(18),
        document_count: u64_at(26),
    })
}

/// A whole index in memory (for verification and small tools; a part's index is read by
/// streaming with [`LengthStream`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Index {
    /// The header.
    pub header: IndexHeader,
    /// Tokens per sequence.
    pub lengths: Vec<i32>,
    /// Byte offset of each sequence in `.bin`.
    pub pointers: Vec<i64>,
    /// Sequence index where each document starts, then the sequence count.
    pub documents: Vec<i64>,
}

/// Reads a whole `.idx` file.
pub fn read_index(idx_path: &Path) -> Result<Index> {
    let header = read_header(idx_path)?;
    let size = std::fs::metadata(idx_path)?.len();
    ensure!(
        size >= header.expected_idx_bytes(),
        "{}: {} bytes, but {} sequences and {} document entries need {}",
        idx_path.display(),
        size,
        header.sequences,
        header.document_count,
        header.expected_idx_bytes()
    );
    let mut r = BufReader::new(File::open(idx_path)?);
    r.seek(SeekFrom::Start(HEADER_BYTES))?;
    let mut lengths = Vec::with_capacity(header.sequences as usize);
    let mut b4 = [0u8; 4];
    for _ in 0..header.sequences {
        r.read_exact(&mut b4)?;
        lengths.push(i32::from_le_bytes(b4));
    }
    let mut b8 = [0u8; 8];
    let mut read_i64s = |n: u64| -> Result<Vec<i64>> {
        let mut v = Vec::with_capacity(n as usize);
        for _ in 0..n {
            r.read_exact(&mut b8)?;
            v.push(i64::from_le_bytes(b8));
        }
        Ok(v)
    };
    let pointers = read_i64s(header.sequences)?;
    let documents = read_i64s(header.document_count)?;
    Ok(Index {
        header,
        lengths,
        pointers,
        documents,
    })
}

/// Streams the sequence lengths of an index from sequence `first` on.
pub struct LengthStream {
    reader: BufReader<File>,
    left: u64,
}

impl LengthStream {
    /// Opens `idx_path` and positions it at sequence `first`.
    pub fn open(idx_path: &Path, first: u64) -> Result<Self> {
        let header = read_header(idx_path)?;
        ensure!(first <= header.sequences, "sequence {first} out of range");
        let mut reader = BufReader::with_capacity(1 << 16, File::open(idx_path)?);
        reader.seek(SeekFrom::Start(HEADER_BYTES + 4 * first))?;
        Ok(LengthStream {
            reader,
            left: header.sequences - first,
        })
    }
}

impl Iterator for LengthStream {
    type Item = Result<u64>;
    fn next(&mut self) -> Option<Result<u64>> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        let mut b = [0u8; 4];
        Some(match self.reader.read_exact(&mut b) {
            Ok(()) => {
                let v = i32::from_le_bytes(b);
                u64::try_from(v).map_err(|_| anyhow::anyhow!("negative sequence length {v}"))
            }
            Err(e) => Err(anyhow::Error::new(e).context("index ends early")),
        })
    }
}

/// Reads the tokens of sequence `i` from an open `.bin`.
pub fn read_sequence(bin: &mut File, index: &Index, i: usize) -> Result<Vec<u32>> {
    let len = *index.lengths.get(i).context("sequence out of range")?;
    let ptr = *index.pointers.get(i).context("sequence out of range")?;
    let size = index.header.dtype.size() as usize;
    let mut bytes = vec![0u8; len.max(0) as usize * size];
    bin.seek(SeekFrom::Start(ptr.max(0) as u64))?;
    bin.read_exact(&mut bytes)
        .with_context(|| format!("sequence {i} runs past the end of the .bin"))?;
    Ok(match index.header.dtype {
        TokenDtype::Uint16 => bytes
            .chunks_exact(2)
            .map(|c| u16::from_le_bytes([c[0], c[1]]) as u32)
            .collect(),
        TokenDtype::Int32 => bytes
            .chunks_exact(4)
            .map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]) as u32)
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_bytes_follow_the_published_layout() {
        let dir = tempfile::tempdir().unwrap();
        let prefix = dir.path().join("t");
        let mut w = DatasetWriter::create(&prefix, TokenDtype::Uint16).unwrap();
        w.add_document(&[1, 500, 2]).unwrap();
        w.add_document(&[1, 65535, 7, 2]).unwrap();
        assert!(w.add_document(&[70000]).is_err());
        let files = w.finish().unwrap();
        assert_eq!((files.docs, files.tokens, files.bin_bytes), (2, 7, 14));
        let (bin, idx) = dataset_paths(&prefix);
        let idx_bytes = std::fs::read(&idx).unwrap();
        let mut expect = b"MMIDIDX\x00\x00".to_vec();
        expect.extend(1u64.to_le_bytes());
        expect.push(8);
        expect.extend(2u64.to_le_bytes());
        expect.extend(3u64.to_le_bytes());
        expect.extend(3i32.to_le_bytes());
        expect.extend(4i32.to_le_bytes());
        expect.extend(0i64.to_le_bytes());
        expect.extend(6i64.to_le_bytes());
        for d in 0i64..3 {
            expect.extend(d.to_le_bytes());
        }
        assert_eq!(idx_bytes, expect);
        assert_eq!(
            std::fs::read(&bin).unwrap(),
            [1u16, 500, 2, 1, 65535, 7, 2]
                .iter()
                .flat_map(|t| t.to_le_bytes())
                .collect::<Vec<_>>()
        );
        let index = read_index(&idx).unwrap();
        let mut f = File::open(&bin).unwrap();
        assert_eq!(
            read_sequence(&mut f, &index, 1).unwrap(),
            vec![1, 65535, 7, 2]
        );
        let lens: Vec<u64> = LengthStream::open(&idx, 1)
            .unwrap()
            .collect::<Result<_>>()
            .unwrap();
        assert_eq!(lens, vec![4]);
        assert!(!temp_path(&bin).exists() && !temp_path(&idx).exists());
    }

    #[test]
    fn int32_for_large_vocabularies_and_bad_headers_are_refused() {
        assert_eq!(TokenDtype::for_vocab(32_000), TokenDtype::Uint16);
        assert_eq!(TokenDtype::for_vocab(65_500), TokenDtype::Int32);
        let dir = tempfile::tempdir().unwrap();
        let prefix = dir.path().join("w");
        let mut w = DatasetWriter::create(&prefix, TokenDtype::Int32).unwrap();
        w.add_document(&[100_000, 2]).unwrap();
        w.finish().unwrap();
        let (_, idx) = dataset_paths(&prefix);
        assert_eq!(read_header(&idx).unwrap().dtype.code(), 4);
        let mut bytes = std::fs::read(&idx).unwrap();
        bytes[0] = b'X';
        std::fs::write(&idx, &bytes).unwrap();
        let err = format!("{:#}", read_header(&idx).unwrap_err());
        assert!(err.contains("magic"), "{err}");
    }
}
