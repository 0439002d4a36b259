//! The C4 source's own filters that are not line/document quality rules: the bad-words filter
//! and the three-sentence-span deduplication.

pub mod badwords;
pub mod span_dedup;
