//! LLaMA's tokenizer: a SentencePiece BPE trainer, the `.model` writer, and an encoder that
//! gives exactly sentencepiece's ids.
//!
//! - [`Tokenizer`]: load a `.model`, `encode`, `decode`, special ids (pure Rust).
//! - [`train`]: learn a vocabulary from documents under LLaMA's rules and write a `.model`.
//! - [`proto`]: the `ModelProto` messages (hand-written prost structs, no protoc).

pub mod corpus;
pub mod encode;
pub mod model;
pub mod proto;
pub mod stream;
pub mod train;

pub use model::{spm_lossy_utf8, Encoder, Tokenizer};
pub use train::{train_tokenizer, TrainConfig, TrainReport};
