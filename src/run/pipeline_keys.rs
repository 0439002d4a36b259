//! The catalogue of a pipeline file's keys: the top level, `[input]`, `[input.remote]` and
//! `[output]` (stage tables are in [`super::catalogue`], reader options in
//! [`crate::sources::catalogue`]).
//!
//! `datamill pipeline-keys` prints it and `docs/recipe.md` holds its `--markdown` form. The
//! tests below check each table against its configuration type in [`super::config`] (same
//! keys, same defaults), so the catalogue and the code cannot disagree.

use anyhow::Result;

use super::config::{InputConfig, OutputConfig, PipelineConfig, RemoteConfig};
use super::params::{
    markdown_table, param as p, parsed_debug, text_rows, Param, ParamDefault as D, ParamType as T,
};

/// One table of a pipeline file.
#[derive(Debug, Clone, Copy)]
pub struct KeyTable {
    /// The table as written in TOML (`[input]`), or `top level`.
    pub name: &'static str,
    /// One line: what it holds.
    pub doc: &'static str,
    /// Its keys.
    pub keys: &'static [Param],
    /// Parses a table into its configuration and prints it (`{:?}`), for the tests.
    pub parse: fn(&toml::Table) -> Result<String>,
}

/// The tables of a pipeline file, in the order they are written.
pub const PIPELINE_TABLES: &[KeyTable] = &[
    KeyTable {
        name: "top level",
        doc: "Names the pipeline and holds the other tables.",
        keys: &[
            p("name", T::Text, D::Required, "Names the pipeline in the stats."),
            p("source", T::Text, D::Required, "Sets every document's `source` (and, in a recipe, names `tokens/<source>/`)."),
            p("input", T::Table, D::Required, "Says what to read: the `[input]` table."),
            p("output", T::Table, D::Required, "Says where to write: the `[output]` table."),
            p("stages", T::TableList, D::Value("[]"), "Runs these stages in order, each a `[[stages]]` table with its `type` and parameters ([stages.md](stages.md))."),
        ],
        parse: parse_top,
    },
    KeyTable {
        name: "[input]",
        doc: "What to read and with which reader.",
        keys: &[
            p("paths", T::TextList, D::Value("[]"), "Reads these files, folders (recursively), globs or `http(s)://` URLs."),
            p("path_list", T::Text, D::Unset("none"), "Reads every path of this Common Crawl style list (local file or URL, plain or gzipped) from `base_url`."),
            p("base_url", T::Text, D::Unset("none"), "Prefixes the path list's entries (a URL or a local mirror folder); names URL inputs in ids."),
            p("split_bytes", T::Text, D::Unset("none: files are read whole"), "Cuts big plain JSONL files and multistream dumps into ranges of about this size (`\"1GB\"`), one shard each ([inputs.md](inputs.md))."),
            p("reader", T::Text, D::Required, "Reads the inputs with this reader ([readers.md](readers.md))."),
            p("options", T::Table, D::Value("{}"), "Passes these options to the reader."),
            p("remote", T::Table, D::Value("{}"), "Sets how URL inputs are fetched: the `[input.remote]` table."),
        ],
        parse: |t| parsed_debug::<InputConfig>("[input]", t),
    },
    KeyTable {
        name: "[input.remote]",
        doc: "Limits and retries of URL inputs; the rate and connection limits are shared by all tasks of a run.",
        keys: &[
            p("rate_limit_mb", T::Number, D::Unset("none: no limit"), "Reads at most this many MB/s (10^6 bytes) over all tasks together."),
            p("max_connections", T::Count, D::Value("16"), "Keeps at most this many connections open over all tasks together."),
            p("timeout_secs", T::Number, D::Value("60.0"), "Gives up a connect, or a read that stalls, after this many seconds."),
            p("max_attempts", T::Count, D::Value("6"), "Fails an input after this many requests in a row that bring no new bytes."),
            p("retry_base_secs", T::Number, D::Value("1.0"), "Waits this many seconds before the second attempt, doubling per attempt."),
            p("retry_max_secs", T::Number, D::Value("60.0"), "Waits at most this many seconds between attempts (and for a `Retry-After`)."),
        ],
        parse: |t| parsed_debug::<RemoteConfig>("[input.remote]", t),
    },
    KeyTable {
        name: "[output]",
        doc: "Where the shards go and what else is kept.",
        keys: &[
            p("dir", T::Path, D::Required, "Writes the shards here ([layout](design.md#run-output-layout))."),
            p("keep_rejected", T::Bool, D::Value("false"), "Writes dropped documents to `rejected/` with `metadata.rejected_by` and `reject_reason`."),
            p("split_rejected_by", T::Text, D::Unset("none"), "Writes one rejected shard per value of this metadata key (e.g. `\"language\"`)."),
            p("sample_seed", T::Count, D::Value("0"), "Seeds the few dropped documents sampled per stage and reason into the stats."),
        ],
        parse: |t| parsed_debug::<OutputConfig>("[output]", t),
    },
];

/// The top level parsed; empty `input`/`output` tables get their required keys so the tests
/// can compare the top level's own keys and defaults.
fn parse_top(table: &toml::Table) -> Result<String> {
    let mut t = table.clone();
    for (key, inner, value) in [("input", "reader", "jsonl"), ("output", "dir", "out")] {
        if let Some(toml::Value::Table(sub)) = t.get_mut(key) {
            sub.entry(inner)
                .or_insert_with(|| toml::Value::String(value.into()));
        }
    }
    parsed_debug::<PipelineConfig>("pipeline", &t)
}

/// The key reference as Markdown (what `docs/recipe.md` holds).
pub fn pipeline_keys_markdown() -> String {
    let mut out = String::new();
    for (i, t) in PIPELINE_TABLES.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        let name = if t.name.starts_with('[') {
            format!("`{}`", t.name)
        } else {
            t.name.to_string()
        };
        out.push_str(&format!("**{name}**: {}\n\n", t.doc));
        out.push_str(&markdown_table("key", t.keys));
    }
    out
}

/// The key reference as plain text for a terminal.
pub fn pipeline_keys_text() -> String {
    let mut out = String::new();
    for t in PIPELINE_TABLES {
        out.push_str(&format!("{}\n  {}\n", t.name, t.doc));
        out.push_str(&text_rows(t.keys));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run::params::check_declarations;

    #[test]
    fn catalogue_matches_the_code() {
        for t in PIPELINE_TABLES {
            check_declarations(t.name, t.keys, t.parse).unwrap();
        }
    }
}
