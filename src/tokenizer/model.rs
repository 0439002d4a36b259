//! [`Tokenizer`]: a loaded SentencePiece BPE model, with an encoder and decoder that give
//! exactly the ids Google's `sentencepiece` library gives for the same model.
//!
//! The rules (sentencepiece `normalizer.cc`, `bpe_model.cc`, `sentencepiece_processor.cc`):
//! the text gets a `▁` prefix and every space becomes `▁`; it is split into characters; the
//! adjacent pair whose concatenation is a vocabulary piece with the highest score is merged
//! first (leftmost on ties), until no pair is a piece; a character that is not a piece becomes
//! its UTF-8 byte pieces (byte fallback) or one `<unk>` per run of unknown characters.

use std::path::Path;

use anyhow::{bail, Context, Result};
use prost::Message;
use rustc_hash::FxHashMap;

use super::encode::{Chunker, EncodeScratch};
use super::proto::{ModelProto, PieceType, MODEL_TYPE_BPE};
use super::word_cache::{WordCache, WordKey};

/// `▁` (U+2581), SentencePiece's whitespace marker.
pub const WS: char = '\u{2581}';
/// `▁` as UTF-8 bytes.
pub const WS_STR: &str = "\u{2581}";

/// No merge for this pair.
pub(crate) const NO_RANK: u32 = u32::MAX;
/// Symbol id of a character that is in no piece at all.
pub(crate) const UNKNOWN_SYM: u32 = u32::MAX;

/// A SentencePiece BPE model ready to encode and decode (pure Rust, `Send + Sync`).
pub struct Tokenizer {
    pub(crate) proto: ModelProto,
    pub(crate) pieces: Vec<String>,
    pub(crate) kinds: Vec<PieceType>,
    /// Mergeable pieces (NORMAL) by text.
    pub(crate) piece_ids: FxHashMap<String, u32>,
    /// Reserved pieces (UNKNOWN, CONTROL, BYTE) by text.
    reserved_ids: FxHashMap<String, u32>,
    /// Symbol of each ASCII character.
    pub(crate) ascii_sym: [u32; 128],
    /// Symbol of each other character that occurs in some piece.
    pub(crate) char_sym: FxHashMap<char, u32>,
    /// `(left symbol << 32 | right symbol)` -> `(merged piece id, rank)`; lower rank merges first.
    pub(crate) merges: FxHashMap<u64, (u32, u32)>,
    /// Id of the byte piece of each byte value (byte fallback).
    pub(crate) byte_ids: Option<Box<[u32; 256]>>,
    pub(crate) unk_id: u32,
    bos_id: Option<u32>,
    eos_id: Option<u32>,
    pad_id: Option<u32>,
    pub(crate) add_dummy_prefix: bool,
    pub(crate) remove_extra_whitespaces: bool,
    /// No piece has `▁` after another character, so the text can be cut before each word.
    pub(crate) chunkable: bool,
    unk_surface: String,
}

impl Tokenizer {
    /// Loads a `.model` file.
    pub fn load(path: &Path) -> Result<Self> {
        let bytes =
            std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
        Self::from_bytes(&bytes).with_context(|| format!("{}: not a usable model", path.display()))
    }

    /// Loads a serialized `ModelProto`.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let proto = ModelProto::decode(bytes)
            .context("not a SentencePiece model (protobuf does not parse)")?;
        Self::from_proto(proto)
    }

    /// Builds the encoder tables from a decoded model, with the checks sentencepiece makes
    /// when it loads one, plus a refusal of the features datamill's encoder does not implement.
    pub fn from_proto(proto: ModelProto) -> Result<Self> {
        let trainer = proto.trainer_spec.clone().unwrap_or_default();
        let norm = proto.normalizer_spec.clone().unwrap_or_default();
        if proto.pieces.is_empty() {
            bail!("the model has no pieces");
        }
        let model_type = trainer.model_type.unwrap_or(1);
        if model_type != MODEL_TYPE_BPE {
            bail!("model_type {model_type} is not BPE (2); only BPE models are supported");
        }
        if norm
            .precompiled_charsmap
            .as_ref()
            .is_some_and(|m| !m.is_empty())
        {
            bail!(
                "normalizer `{}` has a character map; only the `identity` normalizer is supported",
                norm.name.as_deref().unwrap_or("?")
            );
        }
        if !norm.escape_whitespaces.unwrap_or(true) {
            bail!("escape_whitespaces=false is not supported");
        }
        if trainer.treat_whitespace_as_suffix.unwrap_or(false) {
            bail!("treat_whitespace_as_suffix=true is not supported");
        }
        if proto.denormalizer_spec.as_ref().is_some_and(|d| {
            d.precompiled_charsmap
                .as_ref()
                .is_some_and(|m| !m.is_empty())
        }) {
            bail!("a denormalizer is not supported");
        }
        let byte_fallback = trainer.byte_fallback.unwrap_or(false);

        let n = proto.pieces.len();
        let mut pieces = Vec::with_capacity(n);
        let mut kinds = Vec::with_capacity(n);
        let mut scores = Vec::with_capacity(n);
        let mut piece_ids = FxHashMap::default();
        let mut reserved_ids = FxHashMap::default();
        let mut unk_id = None;
        let mut byte_ids = [u32::MAX; 256];
        for (i, p) in proto.pieces.iter().enumerate() {
            let id = i as u32;
            let text = p.piece.clone().unwrap_or_default();
            if text.is_empty() {
                bail!("piece {i} is empty");
            }
            let kind = PieceType::try_from(p.r#type.unwrap_or(1))
                .map_err(|_| anyhow::anyhow!("piece {i} has an unknown type"))?;
            match kind {
                PieceType::Normal => {
                    if piece_ids.insert(text.clone(), id).is_some() {
                        bail!("piece `{text}` is defined twice");
                    }
                }
                PieceType::UserDefined | PieceType::Unused => {
                    bail!("piece `{text}` is {kind:?}; such pieces are not supported")
                }
                PieceType::Unknown | PieceType::Control | PieceType::Byte => {
                    if reserved_ids.insert(text.clone(), id).is_some() {
                        bail!("piece `{text}` is defined twice");
                    }
                    if kind == PieceType::Unknown {
                        if unk_id.is_some() {
                            bail!("more than one unknown piece");
                        }
                        unk_id = Some(id);
                    }
                    if kind == PieceType::Byte {
                        if !byte_fallback {
                            bail!("byte piece `{text}` although byte_fallback is false");
                        }
                        let b = byte_of_piece(&text)
                            .with_context(|| format!("byte piece `{text}` is invalid"))?;
                        byte_ids[b as usize] = id;
                    }
                    if text.chars().count() == 1 {
                        bail!("reserved piece `{text}` is one character; not supported");
                    }
                }
            }
            pieces.push(text);
            kinds.push(kind);
            scores.push(p.score.unwrap_or(0.0));
        }
        let unk_id = unk_id.context("the model has no unknown piece")?;
        if byte_fallback && byte_ids.contains(&u32::MAX) {
            bail!("byte_fallback is true but not all 256 byte pieces exist");
        }
        if let Some(dup) = piece_ids.keys().find(|k| reserved_ids.contains_key(*k)) {
            bail!("piece `{dup}` is both a normal and a reserved piece; not supported");
        }

        // Rank of each distinct score, best (largest) first.
        let mut distinct: Vec<f32> = piece_ids.values().map(|&id| scores[id as usize]).collect();
        if distinct.iter().any(|s| s.is_nan()) {
            bail!("a piece score is NaN");
        }
        distinct.sort_by(|a, b| b.total_cmp(a));
        distinct.dedup();
        let rank_of = |s: f32| distinct.partition_point(|&d| d > s) as u32;

        // Symbols: every mergeable piece is its own symbol; a character that occurs inside a
        // piece without being one gets an id after the vocabulary (it decodes as unknown).
        let mut ascii_sym = [UNKNOWN_SYM; 128];
        let mut char_sym: FxHashMap<char, u32> = FxHashMap::default();
        let mut next_virtual = n as u32;
        let mut sym_of_char = |c: char, piece_ids: &FxHashMap<String, u32>| -> u32 {
            if let Some(&s) = char_sym.get(&c) {
                return s;
            }
            let mut buf = [0u8; 4];
            let s = match piece_ids.get(&*c.encode_utf8(&mut buf)) {
                Some(&id) => id,
                None => {
                    next_virtual += 1;
                    next_virtual - 1
                }
            };
            char_sym.insert(c, s);
            s
        };
        for text in piece_ids.keys() {
            for c in text.chars() {
                sym_of_char(c, &piece_ids);
            }
        }
        let mut merges = FxHashMap::default();
        let mut chunkable = true;
        for (text, &id) in &piece_ids {
            let mut prev_ws = true;
            for c in text.chars() {
                if c == WS && !prev_ws {
                    chunkable = false;
                }
                prev_ws = c == WS;
            }
            let rank = rank_of(scores[id as usize]);
            for (k, _) in text.char_indices().skip(1) {
                let (l, r) = text.split_at(k);
                let ls = symbol_of_str(l, &piece_ids, &char_sym);
                let rs = symbol_of_str(r, &piece_ids, &char_sym);
                if let (Some(ls), Some(rs)) = (ls, rs) {
                    merges.insert(((ls as u64) << 32) | rs as u64, (id, rank));
                }
            }
        }
        for (&c, &s) in &char_sym {
            if c.is_ascii() {
                ascii_sym[c as usize] = s;
            }
        }
        let special = |name: Option<&String>, default: &str| {
            reserved_ids
                .get(name.map(|s| s.as_str()).unwrap_or(default))
                .copied()
        };
        let bos_id = special(trainer.bos_piece.as_ref(), "<s>");
        let eos_id = special(trainer.eos_piece.as_ref(), "</s>");
        let pad_id = special(trainer.pad_piece.as_ref(), "<pad>");
        Ok(Tokenizer {
            pieces,
            kinds,
            piece_ids,
            reserved_ids,
            ascii_sym,
            char_sym,
            merges,
            byte_ids: byte_fallback.then(|| Box::new(byte_ids)),
            unk_id,
            bos_id,
            eos_id,
            pad_id,
            add_dummy_prefix: norm.add_dummy_prefix.unwrap_or(true),
            remove_extra_whitespaces: norm.remove_extra_whitespaces.unwrap_or(true),
            chunkable,
            unk_surface: trainer
                .unk_surface
                .clone()
                .unwrap_or_else(|| " \u{2047} ".to_string()),
            proto,
        })
    }

    /// The model as protobuf messages.
    pub fn proto(&self) -> &ModelProto {
        &self.proto
    }

    /// Number of pieces (ids are `0..vocab_size`).
    pub fn vocab_size(&self) -> usize {
        self.pieces.len()
    }

    /// Id of `<s>`, if the model has it.
    pub fn bos_id(&self) -> Option<u32> {
        self.bos_id
    }

    /// Id of `</s>`, if the model has it.
    pub fn eos_id(&self) -> Option<u32> {
        self.eos_id
    }

    /// Id of `<pad>`, if the model has it.
    pub fn pad_id(&self) -> Option<u32> {
        self.pad_id
    }

    /// Id of `<unk>`.
    pub fn unk_id(&self) -> u32 {
        self.unk_id
    }

    /// The text of piece `id` (`▁` for spaces, `<0x41>` for byte pieces).
    pub fn piece(&self, id: u32) -> Option<&str> {
        self.pieces.get(id as usize).map(|s| s.as_str())
    }

    /// The id of a piece's text, as sentencepiece's `PieceToId` (unknown id if absent).
    pub fn piece_to_id(&self, piece: &str) -> u32 {
        self.reserved_ids
            .get(piece)
            .or_else(|| self.piece_ids.get(piece))
            .copied()
            .unwrap_or(self.unk_id)
    }

    /// Encodes one text (a document or a line) into ids, without BOS/EOS.
    pub fn encode(&self, text: &str) -> Vec<u32> {
        let mut out = Vec::with_capacity(text.len() / 3 + 2);
        let mut enc = self.encoder();
        enc.use_cache = false;
        enc.encode_into(text, &mut out);
        out
    }

    /// Encodes raw bytes as sentencepiece does: each byte that is not part of valid UTF-8
    /// becomes U+FFFD first (one replacement character per invalid byte).
    pub fn encode_bytes(&self, bytes: &[u8]) -> Vec<u32> {
        self.encode(&spm_lossy_utf8(bytes))
    }

    /// A reusable encoder with a per-word cache: the fast way to encode many texts on one
    /// thread (make one per thread).
    pub fn encoder(&self) -> Encoder<'_> {
        Encoder {
            tok: self,
            scratch: EncodeScratch::default(),
            normalized: String::new(),
            cache: WordCache::default(),
            use_cache: true,
            raw_words: true,
        }
    }

    /// Decodes ids back into text as sentencepiece's `DecodeIds` does: `▁` becomes a space,
    /// the dummy prefix is dropped, byte pieces are joined into UTF-8 (an invalid byte becomes
    /// U+FFFD), control pieces vanish. Fails on an id outside the vocabulary.
    pub fn decode(&self, ids: &[u32]) -> Result<String> {
        let mut text = String::new();
        let mut bytes: Vec<u8> = Vec::new();
        let mut is_bos_ws = true;
        let mut bos_ws_seen = false;
        for &id in ids {
            let kind = *self.kinds.get(id as usize).with_context(|| {
                format!("id {id} is outside the vocabulary of {}", self.pieces.len())
            })?;
            if kind == PieceType::Byte {
                let b = byte_of_piece(&self.pieces[id as usize]).unwrap_or(0);
                bytes.push(b);
                continue;
            }
            flush_bytes(&mut bytes, &mut text);
            if bos_ws_seen || !text.is_empty() {
                is_bos_ws = false;
            }
            bos_ws_seen = false;
            let piece = self.pieces[id as usize].as_str();
            match kind {
                PieceType::Control => {}
                PieceType::Unknown => text.push_str(&self.unk_surface),
                _ => {
                    let mut p = piece;
                    if is_bos_ws && (self.add_dummy_prefix || self.remove_extra_whitespaces) {
                        if let Some(rest) = p.strip_prefix(WS) {
                            p = rest;
                            bos_ws_seen = !self.remove_extra_whitespaces;
                        }
                    }
                    for c in p.chars() {
                        text.push(if c == WS { ' ' } else { c });
                    }
                }
            }
        }
        flush_bytes(&mut bytes, &mut text);
        Ok(text)
    }
}

/// Appends pending byte-piece bytes as text: valid UTF-8 as is, each invalid byte as U+FFFD.
fn flush_bytes(bytes: &mut Vec<u8>, text: &mut String) {
    if !bytes.is_empty() {
        text.push_str(&spm_lossy_utf8(bytes));
        bytes.clear();
    }
}

/// Bytes to text the way sentencepiece does it: every byte that does not start a valid UTF-8
/// character becomes one U+FFFD (Rust's `from_utf8_lossy` would fold a run into one).
pub fn spm_lossy_utf8(mut bytes: &[u8]) -> std::borrow::Cow<'_, str> {
    match std::str::from_utf8(bytes) {
        Ok(s) => std::borrow::Cow::Borrowed(s),
        Err(_) => {
            let mut out = String::with_capacity(bytes.len() + 8);
            loop {
                match std::str::from_utf8(bytes) {
                    Ok(s) => {
                        out.push_str(s);
                        break;
                    }
                    Err(e) => {
                        let good = e.valid_up_to();
                        // SAFETY-free: from_utf8 said the prefix is valid.
                        out.push_str(std::str::from_utf8(&bytes[..good]).unwrap_or_default());
                        out.push('\u{FFFD}');
                        bytes = &bytes[good + 1..];
                    }
                }
            }
            std::borrow::Cow::Owned(out)
        }
    }
}

/// The byte value of a byte piece `<0xAB>`.
pub fn byte_of_piece(piece: &str) -> Option<u8> {
    let hex = piece.strip_prefix("<0x")?.strip_suffix('>')?;
    if hex.len() != 2 {
        return None;
    }
    u8::from_str_radix(hex, 16).ok()
}

/// The byte piece text of a byte value.
pub fn piece_of_byte(b: u8) -> String {
    format!("<0x{b:02X}>")
}

fn symbol_of_str(
    s: &str,
    piece_ids: &FxHashMap<String, u32>,
    char_sym: &FxHashMap<char, u32>,
) -> Option<u32> {
    if let Some(&id) = piece_ids.get(s) {
        return Some(id);
    }
    let mut it = s.chars();
    match (it.next(), it.next()) {
        (Some(c), None) => char_sym.get(&c).copied(),
        _ => None,
    }
}

/// A per-thread encoder: reuses its buffers and caches the ids of frequent words.
pub struct Encoder<'a> {
    tok: &'a Tokenizer,
    scratch: EncodeScratch,
    normalized: String,
    /// Ids of recently encoded words.
    cache: WordCache,
    /// Cache words (false for one-off encodes).
    use_cache: bool,
    /// Cut words from the raw text when possible (false only to test the general path).
    raw_words: bool,
}

impl Encoder<'_> {
    /// Appends the ids of `text` to `out` (nothing for an empty text).
    pub fn encode_into(&mut self, text: &str, out: &mut Vec<u32>) {
        let tok = self.tok;
        let start = out.len();
        if self.raw_words
            && tok.chunkable
            && tok.add_dummy_prefix
            && !tok.remove_extra_whitespaces
            && tok.byte_ids.is_some()
            && !text.is_empty()
            && memchr::memmem::find(text.as_bytes(), WS_STR.as_bytes()).is_none()
        {
            self.encode_raw_words(text, out, start);
            return;
        }
        if !normalize(tok, text, &mut self.normalized) {
            return;
        }
        let norm = std::mem::take(&mut self.normalized);
        if tok.chunkable {
            for word in Chunker::new(&norm) {
                let key = self
                    .use_cache
                    .then(|| WordKey::new(&[], word.as_bytes()))
                    .flatten();
                if let Some(key) = key {
                    if let Some(ids) = self.cache.get(&key) {
                        push_ids(tok, ids, out, start);
                        continue;
                    }
                    let before = out.len();
                    self.scratch.encode_word(tok, word, out, start);
                    // A cached word must not depend on what precedes it: without byte
                    // fallback a leading <unk> may have been fused with the previous one.
                    if tok.byte_ids.is_some() {
                        self.cache.put(&key, &out[before..]);
                    }
                } else {
                    self.scratch.encode_word(tok, word, out, start);
                }
            }
        } else {
            self.scratch.encode_word(tok, &norm, out, start);
        }
        self.normalized = norm;
    }
}

impl Encoder<'_> {
    /// The fast path for the usual model and a text without a literal `▁`: words are cut
    /// from the raw text (a run of spaces plus the characters up to the next space, the first
    /// one with the dummy prefix), looked up in the cache by their raw bytes, and normalized
    /// only on a miss. Same cuts as normalizing first and running [`Chunker`].
    fn encode_raw_words(&mut self, text: &str, out: &mut Vec<u32>, start: usize) {
        let bytes = text.as_bytes();
        let mut from = 0;
        let mut first = true;
        for p in memchr::memchr_iter(b' ', bytes) {
            if p == 0 || bytes[p - 1] == b' ' {
                continue;
            }
            self.raw_word(&text[from..p], first, out, start);
            first = false;
            from = p;
        }
        self.raw_word(&text[from..], first, out, start);
    }

    fn raw_word(&mut self, raw: &str, first: bool, out: &mut Vec<u32>, start: usize) {
        let Encoder {
            tok,
            scratch,
            normalized,
            cache,
            use_cache,
            ..
        } = self;
        let prefix: &[u8] = if first { b" " } else { b"" };
        let key = use_cache
            .then(|| WordKey::new(prefix, raw.as_bytes()))
            .flatten();
        if let Some(key) = &key {
            if let Some(ids) = cache.get(key) {
                out.extend_from_slice(ids);
                return;
            }
        }
        normalized.clear();
        if first {
            normalized.push(WS);
        }
        for c in raw.chars() {
            normalized.push(if c == ' ' { WS } else { c });
        }
        let before = out.len();
        scratch.encode_word(tok, normalized, out, start);
        if let Some(key) = key {
            cache.put(&key, &out[before..]);
        }
    }
}

/// Appends ids, fusing a run of `<unk>` (only possible without byte fallback).
pub(crate) fn push_ids(tok: &Tokenizer, ids: &[u32], out: &mut Vec<u32>, start: usize) {
    for &id in ids {
        push_id(tok, id, out, start);
    }
}

/// Appends one id, fusing it into a preceding `<unk>` of the same text.
#[inline]
pub(crate) fn push_id(tok: &Tokenizer, id: u32, out: &mut Vec<u32>, start: usize) {
    if id == tok.unk_id && out.len() > start && out[out.len() - 1] == tok.unk_id {
        return;
    }
    out.push(id);
}

/// sentencepiece's identity normalisation into `out`: optional removal of extra spaces, the
/// dummy `▁` prefix, spaces to `▁`. Returns false when nothing is left to encode.
fn normalize(tok: &Tokenizer, text: &str, out: &mut String) -> bool {
    out.clear();
    let mut text = text;
    if tok.remove_extra_whitespaces {
        text = text.trim_start_matches(' ');
    }
    if text.is_empty() {
        return false;
    }
    out.reserve(text.len() + text.len() / 4 + 3);
    if tok.add_dummy_prefix {
        out.push(WS);
    }
    let bytes = text.as_bytes();
    let mut last = 0;
    let mut prev_space = tok.remove_extra_whitespaces;
    for pos in memchr::memchr_iter(b' ', bytes) {
        out.push_str(&text[last..pos]);
        if pos > last {
            prev_space = false;
        }
        if !(tok.remove_extra_whitespaces && prev_space) {
            out.push(WS);
        }
        prev_space = true;
        last = pos + 1;
    }
    out.push_str(&text[last..]);
    if tok.remove_extra_whitespaces {
        while out.ends_with(WS_STR) {
            out.truncate(out.len() - WS_STR.len());
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tokenizer::corpus::SourceConfig;
    use crate::tokenizer::{train_tokenizer, TrainConfig};

    /// The raw-text fast path cuts and encodes words exactly as normalizing first does.
    #[test]
    fn raw_word_path_equals_normalized_path() {
        let book = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/samples/books/Pride-and-Prejudice_1342/1342.txt"
        );
        let config = TrainConfig {
            vocab_size: 1500,
            sources: vec![SourceConfig {
                name: "b".into(),
                paths: vec![book.into()],
                weight: 1,
                max_bytes: 300_000,
            }],
            ..TrainConfig::default()
        };
        let tok = Tokenizer::from_proto(train_tokenizer(&config).unwrap().0).unwrap();
        let text = std::fs::read_to_string(book).unwrap();
        let mut fast = tok.encoder();
        let mut general = tok.encoder();
        general.raw_words = false;
        let extra = [
            "",
            " ",
            "   ",
            "  two  spaces  ",
            "x",
            "tab\there ",
            " 12 345 ",
        ];
        for line in text.lines().take(3000).chain(extra) {
            let (mut a, mut b) = (Vec::new(), Vec::new());
            fast.encode_into(line, &mut a);
            general.encode_into(line, &mut b);
            assert_eq!(a, b, "{line:?}");
            assert_eq!(a, tok.encode(line), "{line:?}");
        }
    }
}
