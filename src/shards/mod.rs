//! Packed token shards: the Megatron-LM indexed dataset format, the tokenizer seam, the
//! packer (`datamill pack`) and the verifier (`datamill verify-shards`).

pub mod encoder;
pub mod megatron;
pub mod pack;
pub mod verify;

pub use encoder::{load_encoder, TokenEncoder};
pub use pack::{pack, PackOptions, PackSettings, PackSummary, PackedSource};
