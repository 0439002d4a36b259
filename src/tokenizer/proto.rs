//! SentencePiece's `ModelProto` (`sentencepiece_model.proto`, proto2) as hand-written prost
//! messages: only the fields datamill reads or writes, with their field numbers.
//!
//! Fields not declared here are dropped when a model is decoded and written back.

/// The whole `.model` file.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ModelProto {
    /// The vocabulary in id order (id = index).
    #[prost(message, repeated, tag = "1")]
    pub pieces: Vec<SentencePiece>,
    /// Training settings (the encoder reads `model_type`, `byte_fallback` and the special pieces).
    #[prost(message, optional, tag = "2")]
    pub trainer_spec: Option<TrainerSpec>,
    /// Normalisation applied before encoding.
    #[prost(message, optional, tag = "3")]
    pub normalizer_spec: Option<NormalizerSpec>,
    /// Optional de-normalisation after decoding (datamill requires it to be absent or empty).
    #[prost(message, optional, tag = "5")]
    pub denormalizer_spec: Option<NormalizerSpec>,
}

/// One vocabulary entry.
#[derive(Clone, PartialEq, prost::Message)]
pub struct SentencePiece {
    /// The piece's text (`▁` for a space); never empty.
    #[prost(string, optional, tag = "1")]
    pub piece: Option<String>,
    /// Merge priority for BPE: larger merges first.
    #[prost(float, optional, tag = "2")]
    pub score: Option<f32>,
    /// Piece type (see [`PieceType`]); NORMAL when absent.
    #[prost(enumeration = "PieceType", optional, tag = "3")]
    pub r#type: Option<i32>,
}

/// `ModelProto.SentencePiece.Type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum PieceType {
    /// A piece that merges and is produced by encoding.
    Normal = 1,
    /// `<unk>`.
    Unknown = 2,
    /// `<s>`, `</s>`: never produced from text.
    Control = 3,
    /// Matched literally in the input (not supported by datamill's encoder).
    UserDefined = 4,
    /// In the vocabulary but re-split when produced (not supported by datamill's encoder).
    Unused = 5,
    /// `<0x00>`…`<0xFF>`: byte fallback.
    Byte = 6,
}

/// `TrainerSpec`: the training configuration, stored in the model.
#[derive(Clone, PartialEq, prost::Message)]
pub struct TrainerSpec {
    /// Training inputs (informational).
    #[prost(string, repeated, tag = "1")]
    pub input: Vec<String>,
    /// Output prefix (informational).
    #[prost(string, optional, tag = "2")]
    pub model_prefix: Option<String>,
    /// 1 = UNIGRAM, 2 = BPE, 3 = WORD, 4 = CHAR.
    #[prost(int32, optional, tag = "3")]
    pub model_type: Option<i32>,
    /// Vocabulary size.
    #[prost(int32, optional, tag = "4")]
    pub vocab_size: Option<i32>,
    /// `text` or `tsv`.
    #[prost(string, optional, tag = "7")]
    pub input_format: Option<String>,
    /// Share of characters covered by the alphabet.
    #[prost(float, optional, tag = "10")]
    pub character_coverage: Option<f32>,
    /// Lines sampled for training.
    #[prost(uint64, optional, tag = "11")]
    pub input_sentence_size: Option<u64>,
    /// Training threads.
    #[prost(int32, optional, tag = "16")]
    pub num_threads: Option<i32>,
    /// Longer lines are skipped in training.
    #[prost(int32, optional, tag = "18")]
    pub max_sentence_length: Option<i32>,
    /// Lines were sampled at random.
    #[prost(bool, optional, tag = "19")]
    pub shuffle_input_sentence: Option<bool>,
    /// Longest piece in characters.
    #[prost(int32, optional, tag = "20")]
    pub max_sentencepiece_length: Option<i32>,
    /// No piece spans two Unicode scripts.
    #[prost(bool, optional, tag = "21")]
    pub split_by_unicode_script: Option<bool>,
    /// Pieces start at whitespace.
    #[prost(bool, optional, tag = "22")]
    pub split_by_whitespace: Option<bool>,
    /// Numbers are their own script.
    #[prost(bool, optional, tag = "23")]
    pub split_by_number: Option<bool>,
    /// `▁` ends pieces instead of starting them.
    #[prost(bool, optional, tag = "24")]
    pub treat_whitespace_as_suffix: Option<bool>,
    /// Every digit is its own piece.
    #[prost(bool, optional, tag = "25")]
    pub split_digits: Option<bool>,
    /// Pieces made only of `▁` are allowed.
    #[prost(bool, optional, tag = "26")]
    pub allow_whitespace_only_pieces: Option<bool>,
    /// Scores are written.
    #[prost(bool, optional, tag = "32")]
    pub vocabulary_output_piece_score: Option<bool>,
    /// The vocabulary size is exact.
    #[prost(bool, optional, tag = "33")]
    pub hard_vocab_limit: Option<bool>,
    /// Unknown characters fall back to their UTF-8 bytes.
    #[prost(bool, optional, tag = "35")]
    pub byte_fallback: Option<bool>,
    /// Id of `<unk>`.
    #[prost(int32, optional, tag = "40")]
    pub unk_id: Option<i32>,
    /// Id of `<s>`.
    #[prost(int32, optional, tag = "41")]
    pub bos_id: Option<i32>,
    /// Id of `</s>`.
    #[prost(int32, optional, tag = "42")]
    pub eos_id: Option<i32>,
    /// Id of `<pad>` (-1: none).
    #[prost(int32, optional, tag = "43")]
    pub pad_id: Option<i32>,
    /// What `<unk>` decodes to.
    #[prost(string, optional, tag = "44")]
    pub unk_surface: Option<String>,
    /// Text of the unknown piece.
    #[prost(string, optional, tag = "45")]
    pub unk_piece: Option<String>,
    /// Text of the begin-of-sentence piece.
    #[prost(string, optional, tag = "46")]
    pub bos_piece: Option<String>,
    /// Text of the end-of-sentence piece.
    #[prost(string, optional, tag = "47")]
    pub eos_piece: Option<String>,
    /// Text of the padding piece.
    #[prost(string, optional, tag = "48")]
    pub pad_piece: Option<String>,
}

/// `NormalizerSpec`: what the encoder does to text before splitting it.
#[derive(Clone, PartialEq, prost::Message)]
pub struct NormalizerSpec {
    /// Rule name (`identity`, `nmt_nfkc`, ...).
    #[prost(string, optional, tag = "1")]
    pub name: Option<String>,
    /// Compiled normalisation table; empty for `identity`.
    #[prost(bytes = "vec", optional, tag = "2")]
    pub precompiled_charsmap: Option<Vec<u8>>,
    /// Prepend `▁` to every encoded text (default true).
    #[prost(bool, optional, tag = "3")]
    pub add_dummy_prefix: Option<bool>,
    /// Drop leading/trailing spaces and collapse runs (default true).
    #[prost(bool, optional, tag = "4")]
    pub remove_extra_whitespaces: Option<bool>,
    /// Replace spaces with `▁` (default true).
    #[prost(bool, optional, tag = "5")]
    pub escape_whitespaces: Option<bool>,
}

/// `ModelProto.TrainerSpec.ModelType::BPE`.
pub const MODEL_TYPE_BPE: i32 = 2;
