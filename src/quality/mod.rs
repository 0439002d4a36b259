//! CommonCrawl quality filtering as LLaMA did it: CCNet perplexity buckets from an n-gram model
//! trained on reference text, and a fastText classifier telling reference-like pages from
//! random web pages.

pub mod bench;
pub mod classifier;
pub mod perplexity;
pub mod reservoir;
pub mod wikiref_training;
pub mod wikirefs;
