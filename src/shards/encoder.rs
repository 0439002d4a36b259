//! The tokenizer seen by the packer: a tiny trait, so that switching from the `sentencepiece`
//! library binding to datamill's own SentencePiece-exact encoder is one line in [`load_encoder`].

use std::path::Path;

use anyhow::{Context, Result};

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

/// Loads the tokenizer model at `path` (a SentencePiece `.model` file).
pub fn load_encoder(path: &Path) -> Result<Box<dyn TokenEncoder>> {
    Ok(Box::new(SentencePieceLibrary::open(path)?))
}

/// The reference SentencePiece library (C++), through the `sentencepiece` crate.
pub struct SentencePieceLibrary {
    processor: sentencepiece::SentencePieceProcessor,
}

impl SentencePieceLibrary {
    /// Opens a `.model` file.
    pub fn open(path: &Path) -> Result<Self> {
        let processor = sentencepiece::SentencePieceProcessor::open(path)
            .with_context(|| format!("cannot load tokenizer model {}", path.display()))?;
        Ok(SentencePieceLibrary { processor })
    }
}

impl TokenEncoder for SentencePieceLibrary {
    fn encode_into(&self, text: &str, out: &mut Vec<u32>) -> Result<()> {
        let pieces = self
            .processor
            .encode(text)
            .context("sentencepiece cannot encode the text")?;
        out.extend(pieces.iter().map(|p| p.id));
        Ok(())
    }

    fn decode(&self, ids: &[u32]) -> Result<String> {
        let n = self.vocab_size();
        if let Some(bad) = ids.iter().find(|&&i| i as usize >= n) {
            anyhow::bail!("token id {bad} is outside the vocabulary of {n}");
        }
        self.processor
            .decode_piece_ids(ids)
            .context("sentencepiece cannot decode the ids")
    }

    fn vocab_size(&self) -> usize {
        self.processor.len()
    }

    fn bos_id(&self) -> Option<u32> {
        self.processor.bos_id()
    }

    fn eos_id(&self) -> Option<u32> {
        self.processor.eos_id()
    }
}
