//! Source-specific cleaners: Project Gutenberg header and footer removal, wikitext to text,
//! licences and source files (GitHub), LaTeX (arXiv).

pub mod arxiv;
pub mod books;
pub mod github;
pub mod license;
pub mod wiki;
