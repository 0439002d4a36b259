//! The tokenizer seen by the packer: a tiny trait over datamill's SentencePiece-exact encoder.

use std::path::Path;

use anyhow::{Context, Result};

use crate::tokenizer::Tokenizer;

/// Turns text into token ids and back; shared by all packing threads.
pub trait TokenEncoder: Send + Sync {
    /// Appends the ids of `text` (no BOS/EOS) to `out`.
    fn encode_into(&self, text: &str, out: &mut Vec<u32>) -> Result<()>;
    /// The text of a sequence of ids (BOS/EOS/control ids decode to nothing).
    fn decode(&self, ids: &[u32]) -> Result<String>;
    /// Number of ids in the vocabulary.
    fn vocab_size(&self) -> usize;
    /// Id of `<s>`, if the model has one.
    fn bos_id(&self) -> Option<u32>;
    /// Id of `</s>`, if the model has one.
    fn eos_id(&self) -> Option<u32>;
}

/// Loads the tokenizer model at `path` (a SentencePiece BPE `.model` file) with datamill's own
/// encoder, which gives the ids the sentencepiece library gives (tests/tokenizer.rs).
pub fn load_encoder(path: &Path) -> Result<Box<dyn TokenEncoder>> {
    let tok = Tokenizer::load(path)
        .with_context(|| format!("cannot load tokenizer model {}", path.display()))?;
    Ok(Box::new(tok))
}

impl TokenEncoder for Tokenizer {
    fn encode_into(&self, text: &str, out: &mut Vec<u32>) -> Result<()> {
        out.extend(self.encode(text));
        Ok(())
    }

    fn decode(&self, ids: &[u32]) -> Result<String> {
        Tokenizer::decode(self, ids)
    }

    fn vocab_size(&self) -> usize {
        Tokenizer::vocab_size(self)
    }

    fn bos_id(&self) -> Option<u32> {
        Tokenizer::bos_id(self)
    }

    fn eos_id(&self) -> Option<u32> {
        Tokenizer::eos_id(self)
    }
}
