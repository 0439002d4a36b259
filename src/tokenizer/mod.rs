//! LLaMA's tokenizer: a SentencePiece BPE trainer, the `.model` writer, and an encoder that
//! gives exactly sentencepiece's ids.
//!
//! - [`Tokenizer`]: load a `.model`, `encode`, `decode`, special ids (pure Rust).
//! - [`train`]: learn a vocabulary from documents under LLaMA's rules and write a `.model`.
//! - [`proto`]: the `ModelProto` messages (hand-written prost structs, no protoc).

pub mod corpus;
pub mod encode;
pub mod model;
mod pair_map;
pub mod proto;
pub mod stream;
pub mod train;
mod word_cache;

pub use model::{spm_lossy_utf8, Encoder, Tokenizer};
pub use train::{train_tokenizer, TrainConfig, TrainReport};

/// Hints the CPU to load the cache line of `x` (no effect on other targets).
#[inline(always)]
pub(crate) fn prefetch<T>(x: &T) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        // SAFETY: SSE is part of the x86_64 baseline, and a prefetch is only a hint: it
        // never faults and changes no memory, whatever the address.
        unsafe { _mm_prefetch::<_MM_HINT_T0>((x as *const T).cast::<i8>()) };
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = x;
}

/// `n` zero slots, written once now: `vec![0; n]` maps the pages to the kernel's shared zero
/// page, so every first write to a page after a read (a lookup of an empty slot) costs a
/// copy-on-write fault and a TLB flush on every core.
#[allow(clippy::slow_vector_initialization)] // the writing is the point
pub(crate) fn written_zeros(n: usize) -> Vec<u64> {
    let mut slots = Vec::with_capacity(n);
    slots.resize(n, 0);
    slots
}
