//! Source-specific cleaning stages: licences, source files (GitHub) and LaTeX (arXiv).

pub mod arxiv;
pub mod github;
pub mod license;
