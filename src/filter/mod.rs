//! Document filters: fastText language ID and the heuristic quality rules of Gopher
//! (quality and repetition) and C4 (line and document rules, bad words).
//!
//! Every filter is a [`crate::Stage`]: it returns `Keep` or `Drop(reason)` with a short
//! snake_case reason (`lang_not_kept`, `gopher_short_doc`, `c4_curly_bracket`); the runner counts
//! and routes the drops. The word-based rules share one tokenizer, [`words::split_words`].

pub mod badwords;
pub mod c4;
mod fasttext_file;
pub mod fasttext_model;
pub mod fasttext_tokens;
pub mod gopher_quality;
pub mod gopher_repetition;
pub mod langid;
pub mod sentences;
pub mod words;
