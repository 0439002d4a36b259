//! The catalogue of readers: for each, a line of doc, the inputs it reads, its options (type,
//! default, doc) and the reasons it sets records aside for (quarantine).
//!
//! [`super::build_reader`] checks `[input.options]` against this catalogue before building the
//! reader, `datamill readers` prints it and `docs/readers.md` holds its `--markdown` form. The
//! tests below check each entry against the reader's own options type (same keys, same
//! defaults).

use anyhow::Result;

use crate::run::params::{
    markdown_reasons, markdown_rows, param as p, parsed_debug, reason as r, text_reasons,
    text_rows, Param, ParamDefault as D, ParamType as T, Reason,
};

/// One reader.
#[derive(Debug, Clone, Copy)]
pub struct ReaderSpec {
    /// The name in `[input] reader = "..."`.
    pub name: &'static str,
    /// One line: what one document is.
    pub doc: &'static str,
    /// The input files it reads.
    pub inputs: &'static str,
    /// Its options (`[input.options]`).
    pub params: &'static [Param],
    /// Quarantine reasons: `(reason, when)`.
    pub sets_aside: &'static [Reason],
    /// Parses an options table into the reader's options type and prints it (`{:?}`).
    pub parse: fn(&toml::Table) -> Result<String>,
}

const WARC_PARAMS: &[Param] = &[
    p(
        "max_record_bytes",
        T::Count,
        D::Value("67108864"),
        "Reads past a larger wanted record (64 MiB; also caps a decoded `Content-Encoding`).",
    ),
    p(
        "min_text_bytes",
        T::Count,
        D::Value("1"),
        "Skips pages with less text.",
    ),
    p(
        "only_success",
        T::Bool,
        D::Value("true"),
        "Keeps HTTP 2xx responses only (redirects and error pages are skipped).",
    ),
];
const UNSAFE_PATH: Reason = r(
    "unsafe_path",
    "an archive member with an absolute path or `..`",
);
const LINK: Reason = r("link", "a symlink or hard link member (never followed)");
const SPECIAL_FILE: Reason = r("special_file", "a device, FIFO or other special member");
const BAD_ARCHIVE: Reason = r("bad_archive", "a corrupt archive (fatal)");
const READ_ERROR: Reason = r(
    "read_error",
    "the file cannot be read or decompressed (fatal)",
);
const BAD_JSON: Reason = r("bad_json", "a line that is not a JSON object");

const WARC_ASIDE: &[Reason] = &[
    r(
        "warc_bad_header",
        "a malformed record header (reading resyncs on the next `WARC/1.` line)",
    ),
    r("warc_truncated", "the file ends inside a record"),
    r(
        "warc_record_too_large",
        "a wanted record over `max_record_bytes`",
    ),
    r(
        "http_bad_header",
        "a malformed HTTP header in a `response` record",
    ),
    r(
        "http_bad_content_encoding",
        "an unsupported or broken `Content-Encoding`",
    ),
    r("html_too_deep", "HTML nested deeper than 4096 elements"),
    r(
        "gzip_truncated",
        "the gzip stream ends early (fatal: ends the file)",
    ),
    r(
        "gzip_corrupt",
        "the gzip stream is corrupt (fatal: ends the file)",
    ),
];

/// Every reader, in the order the reference lists them.
pub const READERS: &[ReaderSpec] = &[
    ReaderSpec {
        name: "jsonl",
        doc: "One document a JSON line: `text`, optional `id`, `source`, `metadata`; every other field goes into metadata (C4, dolma, datamill shards).",
        inputs: "`*.jsonl`, `*.json`, plain or `.gz`/`.zst`/`.bz2`",
        params: &[
            p("keep_id", T::Bool, D::Value("true"), "Keeps a record's own `id` (else, or when it has none, `FILE:LINE`)."),
            p("keep_source", T::Bool, D::Value("false"), "Keeps a record's own `source` instead of the pipeline's."),
        ],
        sets_aside: &[
            BAD_JSON,
            r("missing_text", "a record without a `text` string"),
            READ_ERROR,
        ],
        parse: |t| parsed_debug::<super::jsonl::JsonlOptions>("reader jsonl", t),
    },
    ReaderSpec {
        name: "warc",
        doc: "One document per HTML page of a WARC `response` record (HTTP decoded, charset detected, HTML to text) or WET `conversion` record.",
        inputs: "`*.warc`, `*.warc.gz`, `*.warc.wet.gz` (one gzip member per record or one stream; WARC/1.x, 0.17 and 0.18)",
        params: &[
            p("record_types", T::TextList, D::Unset("`[\"response\", \"conversion\"]`"), "Turns these record types into documents (of `response`, `conversion`, `resource`)."),
            WARC_PARAMS[0],
            WARC_PARAMS[1],
            WARC_PARAMS[2],
        ],
        sets_aside: WARC_ASIDE,
        parse: |t| parsed_debug::<super::warc::WarcOptions>("reader warc", t),
    },
    ReaderSpec {
        name: "wet",
        doc: "The `warc` reader with `conversion` records only by default: the extracted text of Common Crawl WET files.",
        inputs: "`*.warc.wet.gz`, `*.wet`, and any WARC file",
        params: &[
            p("record_types", T::TextList, D::Unset("`[\"conversion\"]`"), "Turns these record types into documents (of `response`, `conversion`, `resource`)."),
            WARC_PARAMS[0],
            WARC_PARAMS[1],
            WARC_PARAMS[2],
        ],
        sets_aside: WARC_ASIDE,
        parse: |t| parsed_debug::<super::warc::WarcOptions>("reader wet", t),
    },
    ReaderSpec {
        name: "books",
        doc: "One document per book: Project Gutenberg text in any encoding, Books3/PG19-style JSONL, or a tar of text files (its path as id).",
        inputs: "`*.txt` (also `.gz`/`.zst`/`.bz2`), `*.jsonl[.gz|.zst]` with `{\"text\", \"meta\"}`, Books3-style `*.tar`, `*.tar.gz`, `*.tgz`, `*.tar.zst`, `*.tar.bz2` (one book per member)",
        params: &[p("max_book_mb", T::Count, D::Value("256"), "Sets aside a larger book.")],
        sets_aside: &[
            r("book_too_large", "a book over `max_book_mb`"),
            r("unknown_encoding", "a NUL byte, or bytes no encoding guess decodes"),
            BAD_JSON,
            READ_ERROR,
        ],
        parse: |t| parsed_debug::<super::books::BooksOptions>("reader books", t),
    },
    ReaderSpec {
        name: "wikipedia",
        doc: "One document per page of a MediaWiki XML dump; articles become plain text, redirects and other namespaces are marked for `wiki_filter`.",
        inputs: "`*.xml`, `*.xml.bz2`, multistream `.bz2`",
        params: &[
            p("language", T::Text, D::Unset("from the dump"), "Sets every page's language."),
            p("language_from_folder", T::Bool, D::Value("false"), "Takes the language from the dump's folder name when it is a language code."),
            p("keep_wikitext", T::Bool, D::Value("false"), "Keeps the raw wikitext instead of plain text."),
            p("lead_only", T::Bool, D::Value("false"), "Keeps only each article's lead section, the text before its first heading (as CCNet trained its models)."),
            p("max_page_mb", T::Count, D::Value("64"), "Sets aside a larger page."),
        ],
        sets_aside: &[
            r("page_too_large", "a page over `max_page_mb`"),
            r("truncated_page", "the dump ends inside a page"),
            r("bad_xml", "malformed XML (fatal: the pages before it are kept)"),
            READ_ERROR,
        ],
        parse: |t| parsed_debug::<super::wiki::WikiOptions>("reader wikipedia", t),
    },
    ReaderSpec {
        name: "stackexchange",
        doc: "One document per question of a site's `Posts.xml`: `Q:` title and body, then `A:` answers by score.",
        inputs: "`Posts.xml` of one site per file (UTF-8, UTF-16 or a declared encoding), a site's `.7z` archive as the dump publishes it, or a dump folder of archives (one site each)",
        params: &[p("largest_sites", T::Count, D::Value("0"), "Reads only the N sites with the most posts among the sibling folders and `.7z` archives (0: all; LLaMA: 28).")],
        sets_aside: &[
            r("missing_parent", "an answer whose question is not in the file"),
            r("site_not_selected", "a site outside `largest_sites`"),
            r("bad_row", "a row without the fields a post needs"),
            r("bad_xml", "malformed XML (fatal: the questions before it are kept)"),
            r("read_error", "the file cannot be read (fatal)"),
        ],
        parse: |t| parsed_debug::<super::stackexchange::StackExchangeOptions>("reader stackexchange", t),
    },
    ReaderSpec {
        name: "github",
        doc: "One document per file of a repository, with its licence (licence files and manifests), language and size in metadata.",
        inputs: "`*.tar.gz`, `*.tgz`, `*.tar`, `*.tar.zst`, `*.tar.bz2`, `*.zip` (one repository each), `*.repos` (checked-out folders), `*.jsonl[.gz|.zst]` (BigQuery exports)",
        params: &[
            p("max_file_bytes", T::Count, D::Value("1048576"), "Does not read larger files (they reach the stages empty, marked `too_large`)."),
            p("max_repo_bytes", T::Count, D::Value("4294967296"), "Abandons a repository after this many decompressed bytes."),
        ],
        sets_aside: &[
            UNSAFE_PATH,
            LINK,
            SPECIAL_FILE,
            r("archive_too_large", "more than `max_repo_bytes` decompressed"),
            BAD_ARCHIVE,
            r("missing_repository", "a `.repos` line naming a missing folder"),
            r("missing_field", "a JSONL line without `repo`, `path` or `content`"),
            BAD_JSON,
        ],
        parse: |t| parsed_debug::<super::github::GithubOptions>("reader github", t),
    },
    ReaderSpec {
        name: "arxiv",
        doc: "One document per paper: the main `.tex` file with its `\\input`s inlined, from arXiv source archives.",
        inputs: "`*.tar.gz`, `*.tgz`, `*.gz` (one paper), `*.tar` (a bulk `arXiv_src_*.tar` or one paper), `*.tex`",
        params: &[
            p("max_paper_bytes", T::Count, D::Value("268435456"), "Gives up a paper after this many decompressed bytes (256 MiB)."),
            p("max_tex_bytes", T::Count, D::Value("33554432"), "Does not read a larger `.tex` file (32 MiB)."),
            p("max_input_depth", T::Count, D::Value("16"), "Follows at most this deep a chain of `\\input`s."),
        ],
        sets_aside: &[
            r("no_main_file", "no file with `\\documentclass` and `\\begin{document}`"),
            UNSAFE_PATH,
            LINK,
            SPECIAL_FILE,
            r("archive_too_large", "more than `max_paper_bytes` decompressed"),
            BAD_ARCHIVE,
        ],
        parse: |t| parsed_debug::<super::arxiv::ArxivOptions>("reader arxiv", t),
    },
];

/// The reader named `name`, or an error listing the known ones.
pub fn reader_spec(name: &str) -> Result<&'static ReaderSpec> {
    READERS.iter().find(|r| r.name == name).ok_or_else(|| {
        let known: Vec<&str> = READERS.iter().map(|r| r.name).collect();
        anyhow::anyhow!("unknown reader `{name}` (known: {})", known.join(", "))
    })
}

/// The reference of every reader as Markdown (what `docs/readers.md` holds).
pub fn readers_markdown() -> String {
    let mut out = String::from("| reader | one document is | reads |\n|---|---|---|\n");
    for r in READERS {
        out.push_str(&format!(
            "| [`{}`](#{}) | {} | {} |\n",
            r.name, r.name, r.doc, r.inputs
        ));
    }
    for r in READERS {
        out.push_str(&format!(
            "\n### `{}`\n\n{}\n\nReads: {}.\n",
            r.name, r.doc, r.inputs
        ));
        out.push('\n');
        out.push_str(&markdown_rows(r.params));
        out.push_str(&markdown_reasons("set aside as", r.sets_aside));
    }
    out
}

/// The reference of every reader as plain text for a terminal.
pub fn readers_text() -> String {
    let mut out = String::new();
    for r in READERS {
        out.push_str(&format!(
            "{}\n  {}\n  reads: {}\n",
            r.name,
            r.doc,
            r.inputs.replace('`', "")
        ));
        out.push_str("  options:\n");
        out.push_str(&text_rows(r.params));
        out.push_str(&text_reasons("sets aside", r.sets_aside));
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run::params::check_declarations;

    #[test]
    fn catalogue_matches_the_code() {
        for r in READERS {
            check_declarations(&format!("reader `{}`", r.name), r.params, r.parse).unwrap();
        }
    }

    #[test]
    fn every_reader_is_built() {
        for r in READERS {
            super::super::build_reader(r.name, &toml::Table::new()).unwrap();
        }
    }
}
