//! The catalogue of stage types: for each, a line of doc, its parameters (type, default, doc)
//! and the reasons it drops documents for.
//!
//! [`crate::run::registry::build_stage`] checks every stage table against this catalogue before
//! building it, `datamill stages` prints it and `docs/stages.md` holds its `--markdown` form.
//! The tests below check each entry against the stage's own configuration type (same keys, same
//! defaults), so the catalogue and the code cannot disagree.

use anyhow::Result;

use super::params::{
    markdown_reasons, markdown_rows, param as p, parsed_debug, reason as d, text_reasons,
    text_rows, Param, ParamDefault as D, ParamType as T, Reason,
};

/// One stage type.
#[derive(Debug, Clone, Copy)]
pub struct StageSpec {
    /// The `type` of the stage table.
    pub name: &'static str,
    /// One line: what it does.
    pub doc: &'static str,
    /// Whether it must see every document of its group before deciding (a dedup stage).
    pub group: bool,
    /// Its parameters.
    pub params: &'static [Param],
    /// Its drop reasons.
    pub drops: &'static [Reason],
    /// Parses a parameter table into the stage's configuration and prints it (`{:?}`): the
    /// tests compare the catalogue's defaults with the code's through it.
    pub parse: fn(&toml::Table) -> Result<String>,
}

const GROUP_SIZE: Param = p(
    "group_size",
    T::Count,
    D::Value("0"),
    "Shards per dedup group; 0 puts every shard of the run in one group.",
);
const LANGUAGE_FIELD: Param = p(
    "language_field",
    T::Text,
    D::Value("\"language\""),
    "Reads the document's language from this metadata key.",
);
const DEFAULT_LANGUAGE: Param = p(
    "default_language",
    T::Text,
    D::Value("\"en\""),
    "Assumes this language when the key is missing (`\"\"`: none).",
);

/// Every stage type, in the order the reference lists them.
pub const STAGES: &[StageSpec] = &[
    StageSpec {
        name: "line_dedup",
        doc: "Removes lines seen earlier in the group (CCNet: lowercased, accents stripped, digits to 0, punctuation removed, whitespace collapsed, xxh3-64).",
        group: true,
        params: &[GROUP_SIZE],
        drops: &[
            d("all_lines_duplicate", "every line of the document was seen earlier"),
            d("no_text", "the document has no non-blank line"),
        ],
        parse: |t| parsed_debug::<crate::dedup::line::LineDedupConfig>("line_dedup", t),
    },
    StageSpec {
        name: "exact_dedup",
        doc: "Drops a document whose exact text occurred earlier in the group (first in input order kept).",
        group: true,
        params: &[GROUP_SIZE],
        drops: &[d("duplicate_document", "the same text was seen earlier")],
        parse: |t| parsed_debug::<crate::dedup::exact::ExactDedupConfig>("exact_dedup", t),
    },
    StageSpec {
        name: "minhash_dedup",
        doc: "Removes near-duplicates: MinHash signatures of word shingles, LSH bands, candidate pairs verified, one document kept per cluster.",
        group: true,
        params: &[
            p("shingle_size", T::Count, D::Value("5"), "Words per shingle."),
            p("permutations", T::Count, D::Value("128"), "Hash functions in a signature."),
            p("bands", T::Count, D::Value("16"), "LSH bands; `permutations` must be a multiple."),
            p("jaccard_threshold", T::Number, D::Value("0.9"), "Counts a candidate pair with at least this estimated Jaccard similarity as duplicates."),
            p("containment_threshold", T::Number, D::Value("0.9"), "Also counts a pair whose smaller shingle set is contained in the larger at least this much (1 or more turns it off)."),
            p("keep", T::Choice(&["first", "longest"]), D::Value("\"first\""), "Keeps this document of each cluster (`longest`: ties to the first)."),
            p("seed", T::Count, D::Value("1"), "Seeds the hash functions."),
            p("memory_mb", T::Count, D::Value("64"), "Holds at most this many MB of band records per scanning thread before spilling a sorted run."),
            p("spill_dir", T::Path, D::Unset("the system temporary folder"), "Writes spill files here (removed at the end)."),
        ],
        drops: &[d("near_duplicate", "another member of its cluster is kept")],
        parse: |t| parsed_debug::<crate::dedup::minhash::MinHashConfig>("minhash_dedup", t),
    },
    StageSpec {
        name: "c4_span_dedup",
        doc: "Removes every three-sentence span seen earlier in the group (C4's dedup); writes `metadata.c4_sentences_removed`.",
        group: true,
        params: &[GROUP_SIZE],
        drops: &[d("c4_duplicate_spans", "no sentence is left")],
        parse: |t| parsed_debug::<crate::dedup::span::SpanDedupConfig>("c4_span_dedup", t),
    },
    StageSpec {
        name: "langid",
        doc: "Identifies the language with fastText lid.176; writes `metadata.language` and `language_score`.",
        group: false,
        params: &[
            p("model", T::Path, D::Value("\"models/lid.176.ftz\""), "Loads this fastText model."),
            p("languages", T::TextList, D::Value("[]"), "Keeps these languages (`[]` keeps all)."),
            p("threshold", T::Number, D::Value("0.5"), "Keeps documents whose top-1 probability is at least this."),
        ],
        drops: &[
            d("lang_not_kept", "the top language is not in `languages`"),
            d("lang_low_score", "the top probability is below `threshold`"),
            d("lang_unknown", "the model gives no prediction"),
        ],
        parse: |t| parsed_debug::<crate::filter::langid::LangIdConfig>("langid", t),
    },
    StageSpec {
        name: "gopher_repetition",
        doc: "Applies Gopher's repetition rules (table A1) to lines, paragraphs and word n-grams; a fraction of 0 turns its rule off.",
        group: false,
        params: &[
            p("dup_line_frac", T::Number, D::Value("0.3"), "Drops above this fraction of lines repeating an earlier line."),
            p("dup_para_frac", T::Number, D::Value("0.3"), "Drops above this fraction of paragraphs repeating an earlier one."),
            p("dup_line_char_frac", T::Number, D::Value("0.2"), "Drops above this share of characters in repeated lines."),
            p("dup_para_char_frac", T::Number, D::Value("0.2"), "Drops above this share of characters in repeated paragraphs."),
            p("top_n_grams", T::PairList, D::Value("[[2, 0.2], [3, 0.18], [4, 0.16]]"), "Drops above this character share of the most frequent n-gram."),
            p("dup_n_grams", T::PairList, D::Value("[[5, 0.15], [6, 0.14], [7, 0.13], [8, 0.12], [9, 0.11], [10, 0.1]]"), "Drops above this character share of repeated n-grams."),
        ],
        drops: &[
            d("gopher_dup_para_frac", "`dup_para_frac`"),
            d("gopher_dup_para_char_frac", "`dup_para_char_frac`"),
            d("gopher_dup_line_frac", "`dup_line_frac`"),
            d("gopher_dup_line_char_frac", "`dup_line_char_frac`"),
            d("gopher_top_{n}gram", "`top_n_grams` for that n"),
            d("gopher_dup_{n}gram", "`dup_n_grams` for that n"),
        ],
        parse: |t| parsed_debug::<crate::filter::gopher_repetition::GopherRepetitionConfig>("gopher_repetition", t),
    },
    StageSpec {
        name: "gopher_quality",
        doc: "Applies Gopher's quality rules: word count, word length, symbols, bullets, ellipses, alphabetic words, stop words; 0 turns a rule off.",
        group: false,
        params: &[
            p("min_doc_words", T::Count, D::Value("50"), "Drops documents with fewer words."),
            p("max_doc_words", T::Count, D::Value("100000"), "Drops documents with more words."),
            p("min_avg_word_length", T::Number, D::Value("3.0"), "Drops below this mean word length in characters."),
            p("max_avg_word_length", T::Number, D::Value("10.0"), "Drops above this mean word length."),
            p("max_symbol_word_ratio", T::Number, D::Value("0.1"), "Drops above this ratio of `#`, or of `...`/`…`, to words."),
            p("max_bullet_lines_ratio", T::Number, D::Value("0.9"), "Drops above this fraction of lines starting with `•` or `-`."),
            p("max_ellipsis_lines_ratio", T::Number, D::Value("0.3"), "Drops above this fraction of lines ending with `...` or `…`."),
            p("max_non_alpha_words_ratio", T::Number, D::Value("0.8"), "Drops when fewer than this fraction of words hold a letter."),
            p("min_stop_words", T::Count, D::Value("2"), "Drops documents with fewer stop words."),
            p("stop_words", T::TextList, D::Value("[\"the\", \"be\", \"to\", \"of\", \"and\", \"that\", \"have\", \"with\"]"), "Counts these words (case-sensitive) as stop words."),
        ],
        drops: &[
            d("gopher_short_doc", "`min_doc_words`"),
            d("gopher_long_doc", "`max_doc_words`"),
            d("gopher_word_len_low", "`min_avg_word_length`"),
            d("gopher_word_len_high", "`max_avg_word_length`"),
            d("gopher_too_many_hashes", "`max_symbol_word_ratio` (`#`)"),
            d("gopher_too_many_ellipsis", "`max_symbol_word_ratio` (`...`, `…`)"),
            d("gopher_too_many_bullets", "`max_bullet_lines_ratio`"),
            d("gopher_too_many_end_ellipsis", "`max_ellipsis_lines_ratio`"),
            d("gopher_below_alpha_threshold", "`max_non_alpha_words_ratio`"),
            d("gopher_few_stop_words", "`min_stop_words`"),
        ],
        parse: |t| parsed_debug::<crate::filter::gopher_quality::GopherQualityConfig>("gopher_quality", t),
    },
    StageSpec {
        name: "c4_quality",
        doc: "Applies C4's line rules (remove lines; `metadata.c4_lines_removed`) and document rules (drop); 0 turns a count rule off.",
        group: false,
        params: &[
            p("remove_citations", T::Bool, D::Value("true"), "Removes `[1]`, `[edit]`, `[citation needed]` before the other line rules."),
            p("filter_no_terminal_punct", T::Bool, D::Value("true"), "Removes lines not ending in `.`, `?`, `!`, `\"` or `'` (or ending in `...`)."),
            p("min_num_sentences", T::Count, D::Value("5"), "Drops documents with fewer sentences in the kept lines."),
            p("min_words_per_line", T::Count, D::Value("3"), "Removes lines with fewer words."),
            p("max_word_length", T::Count, D::Value("1000"), "Removes lines holding a longer word (characters)."),
            p("filter_lorem_ipsum", T::Bool, D::Value("true"), "Drops documents containing \"lorem ipsum\"."),
            p("filter_javascript", T::Bool, D::Value("true"), "Removes lines containing \"javascript\"."),
            p("filter_curly_bracket", T::Bool, D::Value("true"), "Drops documents containing `{`."),
            p("filter_policy", T::Bool, D::Value("true"), "Removes lines about terms of use, privacy or cookie policies."),
        ],
        drops: &[
            d("c4_lorem_ipsum", "`filter_lorem_ipsum`"),
            d("c4_curly_bracket", "`filter_curly_bracket`"),
            d("c4_too_few_sentences", "`min_num_sentences`"),
        ],
        parse: |t| parsed_debug::<crate::filter::c4::C4QualityConfig>("c4_quality", t),
    },
    StageSpec {
        name: "c4_badwords",
        doc: "Drops a page containing a listed word or phrase as whole words in its lowercased text (C4's bad-words rule).",
        group: false,
        params: &[p("words_file", T::Path, D::Value("\"models/badwords/en.txt\""), "Reads the list from this file, one entry a line, `#` comments.")],
        drops: &[d("c4_badwords", "a listed entry occurs")],
        parse: |t| parsed_debug::<crate::filter::badwords::BadWordsConfig>("c4_badwords", t),
    },
    StageSpec {
        name: "perplexity",
        doc: "Scores each document with a CCNet-style n-gram model; writes `metadata.perplexity` (documents whose language has no model pass unscored).",
        group: false,
        params: &[
            p("models", T::PathPerLanguage, D::Required, "Loads one n-gram model per language, e.g. `{ en = \"models/cc_lm.bin\" }`: a `datamill train-lm` binary or an ARPA file, its sidecar `MODEL.json` naming the SentencePiece model."),
            LANGUAGE_FIELD,
            DEFAULT_LANGUAGE,
        ],
        drops: &[d("no_tokens", "the document has no token to score")],
        parse: |t| parsed_debug::<crate::quality::perplexity::PerplexityConfig>("perplexity", t),
    },
    StageSpec {
        name: "perplexity_bucket",
        doc: "Writes `metadata.bucket` (`head`, `middle`, `tail`; `all` when unscored) from the perplexity cutoffs and keeps the listed buckets.",
        group: false,
        params: &[
            p("models", T::PathPerLanguage, D::Value("{}"), "Takes each language's cutoffs from this model's sidecar (`MODEL.json`)."),
            p("cutoffs", T::CutoffsPerLanguage, D::Value("{}"), "Sets `[head, middle]` cutoffs per language; they override the sidecar's."),
            p("keep", T::TextList, D::Value("[\"head\", \"middle\"]"), "Keeps these buckets."),
            p("keep_unscored", T::Bool, D::Value("true"), "Keeps documents without a perplexity or without cutoffs (bucket `all`)."),
            LANGUAGE_FIELD,
            DEFAULT_LANGUAGE,
        ],
        drops: &[
            d("bucket_head", "`head` is not in `keep`"),
            d("bucket_middle", "`middle` is not in `keep`"),
            d("bucket_tail", "`tail` is not in `keep`"),
            d("bucket_unscored", "unscored and `keep_unscored = false`"),
        ],
        parse: |t| parsed_debug::<crate::quality::perplexity::PerplexityBucketConfig>("perplexity_bucket", t),
    },
    StageSpec {
        name: "classifier",
        doc: "Scores p(Wikipedia reference) with the fastText classifier; writes `metadata.wiki_ref_prob`.",
        group: false,
        params: &[
            p("model", T::Path, D::Value("\"models/wikiref.bin\""), "Loads this `datamill train-classifier` model."),
            p("threshold", T::Number, D::Value("0.25"), "Drops documents scoring below this (RedPajama's value)."),
        ],
        drops: &[d("wiki_ref_prob_low", "`wiki_ref_prob` is below `threshold`")],
        parse: |t| parsed_debug::<crate::quality::classifier::ClassifierConfig>("classifier", t),
    },
    StageSpec {
        name: "license_filter",
        doc: "Keeps a code file whose `metadata.license` SPDX expression can be satisfied with allowed licences only.",
        group: false,
        params: &[p("allow", T::TextList, D::Value("[\"MIT\", \"Apache-2.0\", \"BSD-*\"]"), "Allows these SPDX ids (a trailing `*` matches a prefix).")],
        drops: &[
            d("license_not_allowed", "the licence is not allowed"),
            d("license_missing", "no licence was found"),
            d("license_unrecognized", "a licence file matches no known text and there is no manifest licence"),
        ],
        parse: |t| parsed_debug::<crate::clean::license::LicenseFilterConfig>("license_filter", t),
    },
    StageSpec {
        name: "code_file_filter",
        doc: "Drops files that are not source code worth training on (RedPajama's extension list, lock files, minified, generated, binary).",
        group: false,
        params: &[
            p("shebang_scripts", T::Bool, D::Value("true"), "Keeps extension-less scripts whose shebang names a known interpreter."),
            p("generated_marker_bytes", T::Count, D::Value("1024"), "Searches this many bytes at the top for \"generated\" markers."),
        ],
        drops: &[
            d("license_file", "a licence text (`LICENSE`, `COPYING`, ...)"),
            d("lock_file", "a lock file (`package-lock.json`, `Cargo.lock`, `go.sum`, ...)"),
            d("minified_file", "a `.min.`, `-min.` or `.bundle.` name"),
            d("file_too_large", "larger than the reader's `max_file_bytes`"),
            d("binary_file", "a NUL byte or not UTF-8"),
            d("extension_not_allowed", "the extension is not on the list"),
            d("generated_file", "a generated marker (`@generated`, `DO NOT EDIT`, ...) near the top"),
            d("empty_file", "no text"),
        ],
        parse: |t| parsed_debug::<crate::clean::github::CodeFileFilterConfig>("code_file_filter", t),
    },
    StageSpec {
        name: "code_license_header",
        doc: "Removes leading comment blocks that mention a copyright or licence (never drops).",
        group: false,
        params: &[],
        drops: &[],
        parse: |t| parsed_debug::<crate::clean::github::CodeLicenseHeaderConfig>("code_license_header", t),
    },
    StageSpec {
        name: "code_quality",
        doc: "Applies RedPajama's GitHub quality thresholds.",
        group: false,
        params: &[
            p("max_line_length", T::Count, D::Value("1000"), "Drops when the longest line has more characters."),
            p("max_avg_line_length", T::Number, D::Value("100.0"), "Drops when characters per line exceed this."),
            p("min_alnum_fraction", T::Number, D::Value("0.25"), "Drops when fewer characters are alphanumeric."),
            p("min_alpha_per_token", T::Number, D::Value("1.5"), "Drops when letters per token (GPT-2-style pre-tokens) are fewer."),
        ],
        drops: &[
            d("max_line_length", "`max_line_length`"),
            d("avg_line_length", "`max_avg_line_length`"),
            d("alnum_fraction", "`min_alnum_fraction`"),
            d("alpha_per_token", "`min_alpha_per_token`"),
        ],
        parse: |t| parsed_debug::<crate::clean::github::CodeQualityConfig>("code_quality", t),
    },
    StageSpec {
        name: "latex_clean",
        doc: "Cleans a flattened arXiv paper: comments, user macros expanded, preamble, bibliography and what follows `\\end{document}` removed.",
        group: false,
        params: &[
            p("keep_appendix", T::Bool, D::Value("true"), "Keeps appendices (false cuts at `\\appendix` as RedPajama did)."),
            p("expand_macros", T::Bool, D::Value("true"), "Expands user macros."),
            p("max_expansion_growth", T::Count, D::Value("4"), "Caps macro expansion output at this multiple of the input size."),
        ],
        drops: &[
            d("no_section", "the paper has no sectioning command"),
            d("empty_after_cleaning", "no text is left"),
        ],
        parse: |t| parsed_debug::<crate::clean::arxiv::LatexCleanConfig>("latex_clean", t),
    },
    StageSpec {
        name: "gutenberg_strip",
        doc: "Removes Project Gutenberg headers, licence footers and credit paragraphs; writes `title`, `author`, `language`, `language_name`.",
        group: false,
        params: &[p("require_markers", T::Bool, D::Value("false"), "Drops texts without a Gutenberg marker instead of passing them on.")],
        drops: &[
            d("empty_after_strip", "no text is left"),
            d("not_gutenberg", "no marker and `require_markers = true`"),
        ],
        parse: |t| parsed_debug::<crate::clean::books::GutenbergStripConfig>("gutenberg_strip", t),
    },
    StageSpec {
        name: "wiki_filter",
        doc: "Drops what the `wikipedia` reader marked (redirects, other namespaces), pages in other languages and empty articles.",
        group: false,
        params: &[p("languages", T::TextList, D::Value("[\"bg\", \"ca\", \"cs\", \"da\", \"de\", \"en\", \"es\", \"fr\", \"hr\", \"hu\", \"it\", \"nl\", \"pl\", \"pt\", \"ro\", \"ru\", \"sl\", \"sr\", \"sv\", \"uk\"]"), "Keeps these languages (LLaMA's 20; `[]` keeps all).")],
        drops: &[
            d("redirect", "a redirect page"),
            d("namespace", "a page outside the article namespace"),
            d("language_not_kept", "`metadata.language` is not listed"),
            d("empty_article", "no text is left"),
        ],
        parse: |t| parsed_debug::<crate::clean::wiki::WikiFilterConfig>("wiki_filter", t),
    },
];

/// The stage type named `name`, or an error listing the known ones.
pub fn stage_spec(name: &str) -> Result<&'static StageSpec> {
    STAGES.iter().find(|s| s.name == name).ok_or_else(|| {
        let known: Vec<&str> = STAGES.iter().map(|s| s.name).collect();
        anyhow::anyhow!("unknown stage type `{name}` (known: {})", known.join(", "))
    })
}

/// The reference of every stage type as Markdown (what `docs/stages.md` holds).
pub fn stages_markdown() -> String {
    let mut out = String::from("| type | what it does | drops |\n|---|---|---|\n");
    for s in STAGES {
        let drops: Vec<String> = s.drops.iter().map(|d| format!("`{}`", d.reason)).collect();
        out.push_str(&format!(
            "| [`{}`](#{}) | {}{} | {} |\n",
            s.name,
            s.name,
            s.doc,
            if s.group { " Group stage." } else { "" },
            if drops.is_empty() {
                "never drops".into()
            } else {
                drops.join(", ")
            }
        ));
    }
    for s in STAGES {
        out.push_str(&format!("\n### `{}`\n\n{}\n", s.name, s.doc));
        if s.group {
            out.push_str(
                "\nA group stage: it sees every document of its group before deciding, \
                 so it cuts the pipeline into segments (see design.md).\n",
            );
        }
        if s.params.is_empty() {
            out.push_str("\nNo parameters.\n");
        } else {
            out.push('\n');
            out.push_str(&markdown_rows(s.params));
        }
        out.push_str(&markdown_reasons("drop reason", s.drops));
    }
    out
}

/// The reference of every stage type as plain text for a terminal.
pub fn stages_text() -> String {
    let mut out = String::new();
    for s in STAGES {
        out.push_str(&format!(
            "{}{}\n  {}\n",
            s.name,
            if s.group { " (group stage)" } else { "" },
            s.doc
        ));
        if !s.params.is_empty() {
            out.push_str("  parameters:\n");
            out.push_str(&text_rows(s.params));
        }
        out.push_str(&text_reasons("drops", s.drops));
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
        for s in STAGES {
            check_declarations(&format!("stage `{}`", s.name), s.params, s.parse).unwrap();
        }
    }

    #[test]
    fn names_are_unique() {
        let mut names: Vec<&str> = STAGES.iter().map(|s| s.name).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), STAGES.len());
    }
}
