//! Source-specific cleaners: Project Gutenberg header and footer removal, wikitext to text.

pub mod books;
pub mod wiki;
