//! JSONL documents (`.jsonl`, `.jsonl.gz`, `.jsonl.zst`): datamill shards, dolma/C4-style
//! exports, BigQuery file dumps. Every field other than `text`, `id`, `source` and `metadata`
//! lands in metadata.
//!
//! This module owns the parsing of one JSONL line, in two forms that accept and refuse the
//! same lines: [`document_of_line`] (the whole document, for the reader) and [`text_of_line`]
//! (only the borrowed `text`, for tokenizer training). Blank lines are skipped; a line that is
//! not JSON, not an object, or whose `text` is not a string is a `bad_json` record; an object
//! without `text` is a `missing_text` record.

use std::borrow::Cow;
use std::fmt;
use std::path::Path;

use anyhow::Result;
use serde::de::{Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::{Map, Value};

use super::{record_id, stop_after_fatal, InputStream, Reader, Records};
use crate::doc::{Document, JsonlReader, RecordError, RecordResult};
use crate::run::config::parse_params;

/// Options of the `jsonl` reader.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JsonlOptions {
    /// Keep a document's own `source` field instead of the pipeline's source name.
    #[serde(default)]
    pub keep_source: bool,
    /// Keep a document's own `id` (default); otherwise ids are `file:line`, `file` the path
    /// relative to the input root.
    #[serde(default = "yes")]
    pub keep_id: bool,
}

fn yes() -> bool {
    true
}

/// Reads JSONL documents.
#[derive(Debug, Clone)]
pub struct JsonlSource {
    options: JsonlOptions,
}

impl JsonlSource {
    /// Builds the reader from `[input.options]`.
    pub fn from_options(options: &toml::Table) -> Result<Self> {
        Ok(JsonlSource {
            options: parse_params("reader jsonl", options)?,
        })
    }
}

impl Reader for JsonlSource {
    fn read(&self, path: &Path, source: &str) -> Result<Records> {
        self.read_named(path, &crate::doc::file_name(path), source)
    }

    fn read_named(&self, path: &Path, name: &str, source: &str) -> Result<Records> {
        Ok(self.documents(JsonlReader::open(path)?, name, source))
    }

    fn reads_streams(&self) -> bool {
        true
    }

    fn read_stream(&self, input: InputStream, source: &str) -> Result<Records> {
        let reader = JsonlReader::from_stream(
            Path::new(&input.name),
            input.data,
            input.lines_before,
            input.offset,
        );
        Ok(self.documents(reader, &input.name, source))
    }
}

impl JsonlSource {
    /// The documents of `reader`, ids and sources set as the options say.
    fn documents(&self, reader: JsonlReader, name: &str, source: &str) -> Records {
        let name = name.to_string();
        let source = source.to_string();
        let opts = self.options.clone();
        stop_after_fatal(reader.map(move |(line, r)| {
            r.map(|mut d| {
                if !opts.keep_id || d.id.is_empty() {
                    d.id = record_id(&name, line);
                }
                if !opts.keep_source || d.source.is_empty() {
                    d.source = source.clone();
                }
                d
            })
        }))
    }
}

/// The line without its line end, or `None` when it is blank (skipped).
fn content(line: &[u8]) -> Option<&[u8]> {
    let mut line = line;
    while let [rest @ .., b'\n' | b'\r'] = line {
        line = rest;
    }
    (!is_blank(line)).then_some(line)
}

/// True for a blank line (only ASCII whitespace), which holds no record.
pub fn is_blank(line: &[u8]) -> bool {
    line.iter().all(u8::is_ascii_whitespace)
}

/// The document of JSONL line `line_no` (from 1), which starts at byte `offset` of its input;
/// `None` for a blank line (see the module docs for the records set aside).
pub fn document_of_line(line: &[u8], offset: u64, line_no: u64) -> Option<RecordResult> {
    let line = content(line)?;
    Some(
        serde_json::from_slice::<Value>(line)
            .map_err(|e| bad_json(offset, line_no, e))
            .and_then(|v| document_from_json(v, offset, line_no)),
    )
}

/// Only the `text` of JSONL line `line_no` (borrowed from the line unless it has escapes):
/// the same lines give a text, a record error or nothing as with [`document_of_line`], but
/// no other field is kept.
pub fn text_of_line(
    line: &[u8],
    offset: u64,
    line_no: u64,
) -> Option<std::result::Result<Cow<'_, str>, RecordError>> {
    let line = content(line)?;
    Some(
        match serde_json::from_slice::<Walked>(line).map_err(|e| bad_json(offset, line_no, e)) {
            Ok(Walked::Object(Some(Some(text)))) => Ok(text),
            Ok(Walked::Object(Some(None))) => Err(text_not_string(offset, line_no)),
            Ok(Walked::Object(None)) => Err(missing_text(offset, line_no)),
            Ok(Walked::Str(_) | Walked::Other) => Err(not_object(offset, line_no)),
            Err(e) => Err(e),
        },
    )
}

fn bad_json(offset: u64, line_no: u64, e: serde_json::Error) -> RecordError {
    RecordError::record(offset, "bad_json", format!("line {line_no}: {e}"))
}

fn not_object(offset: u64, line_no: u64) -> RecordError {
    RecordError::record(
        offset,
        "bad_json",
        format!("line {line_no}: not a JSON object"),
    )
}

fn text_not_string(offset: u64, line_no: u64) -> RecordError {
    RecordError::record(
        offset,
        "bad_json",
        format!("line {line_no}: `text` is not a string"),
    )
}

fn missing_text(offset: u64, line_no: u64) -> RecordError {
    RecordError::record(
        offset,
        "missing_text",
        format!("line {line_no}: no `text` field"),
    )
}

/// Turns one JSON object into a document: `text` is required; `id`, `source` and `metadata` are
/// taken when present, and every other top-level field goes into metadata (C4's `url`,
/// `timestamp`, BigQuery's `repo`, ...).
pub fn document_from_json(value: Value, offset: u64, line_no: u64) -> RecordResult {
    let Value::Object(mut obj) = value else {
        return Err(not_object(offset, line_no));
    };
    let text = match obj.remove("text") {
        Some(Value::String(s)) => s,
        Some(_) => return Err(text_not_string(offset, line_no)),
        None => return Err(missing_text(offset, line_no)),
    };
    let id = match obj.remove("id") {
        Some(Value::String(s)) => s,
        Some(Value::Number(n)) => n.to_string(),
        _ => String::new(),
    };
    let source = match obj.remove("source") {
        Some(Value::String(s)) => s,
        _ => String::new(),
    };
    let mut metadata = match obj.remove("metadata") {
        Some(Value::Object(m)) => m,
        _ => Map::new(),
    };
    for (k, v) in obj {
        metadata.entry(k).or_insert(v);
    }
    Ok(Document {
        id,
        text,
        source,
        metadata,
    })
}

/// A JSON value as [`text_of_line`] needs it. Every value is walked as a [`Value`] would be
/// (numbers parsed, strings checked), so the same lines are refused, but only strings are kept
/// (borrowed from the line unless they have escapes).
enum Walked<'a> {
    Str(Cow<'a, str>),
    /// An object, with what its last `text` key holds (as a JSON map keeps the last of
    /// repeated keys): no `text`, a `text` that is not a string (`Some(None)`), or the text.
    Object(Option<Option<Cow<'a, str>>>),
    Other,
}

/// A map key: `text` or another.
struct IsText(bool);

impl<'de> Deserialize<'de> for IsText {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = IsText;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a key")
            }
            fn visit_str<E>(self, key: &str) -> std::result::Result<IsText, E> {
                Ok(IsText(key == "text"))
            }
        }
        d.deserialize_str(KeyVisitor)
    }
}

impl<'de> Deserialize<'de> for Walked<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct WalkVisitor;
        impl<'de> Visitor<'de> for WalkVisitor {
            type Value = Walked<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_borrowed_str<E>(self, s: &'de str) -> std::result::Result<Self::Value, E> {
                Ok(Walked::Str(Cow::Borrowed(s)))
            }
            fn visit_str<E>(self, s: &str) -> std::result::Result<Self::Value, E> {
                Ok(Walked::Str(Cow::Owned(s.to_string())))
            }
            fn visit_bool<E>(self, _: bool) -> std::result::Result<Self::Value, E> {
                Ok(Walked::Other)
            }
            fn visit_i64<E>(self, _: i64) -> std::result::Result<Self::Value, E> {
                Ok(Walked::Other)
            }
            fn visit_u64<E>(self, _: u64) -> std::result::Result<Self::Value, E> {
                Ok(Walked::Other)
            }
            fn visit_f64<E>(self, _: f64) -> std::result::Result<Self::Value, E> {
                Ok(Walked::Other)
            }
            fn visit_unit<E>(self) -> std::result::Result<Self::Value, E> {
                Ok(Walked::Other)
            }
            fn visit_seq<A: SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> std::result::Result<Self::Value, A::Error> {
                while seq.next_element::<Walked>()?.is_some() {}
                Ok(Walked::Other)
            }
            fn visit_map<A: MapAccess<'de>>(
                self,
                mut map: A,
            ) -> std::result::Result<Self::Value, A::Error> {
                let mut text = None;
                while let Some(IsText(is_text)) = map.next_key()? {
                    let value = map.next_value::<Walked>()?;
                    if is_text {
                        text = Some(match value {
                            Walked::Str(s) => Some(s),
                            _ => None,
                        });
                    }
                }
                Ok(Walked::Object(text))
            }
        }
        d.deserialize_any(WalkVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    /// What one form made of a line: the text, or the error's offset, reason and message.
    type Outcome = Option<std::result::Result<String, (u64, String, String)>>;

    fn outcome<T>(
        r: Option<std::result::Result<T, RecordError>>,
        text: impl Fn(T) -> String,
    ) -> Outcome {
        r.map(|r| r.map(text).map_err(|e| (e.offset, e.reason, e.message)))
    }

    #[test]
    fn the_text_only_form_agrees_with_the_reader_on_real_and_bad_lines() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut lines: Vec<Vec<u8>> = Vec::new();
        for sample in [
            "samples/c4/dolma/cc_en_head-0091.jsonl",
            "samples/c4/dolma/CC-MAIN-20190717121559-20190717143559-00140.jsonl.gz",
            "tests/fixtures/filters/mrwiki-maharashtra-day.jsonl",
        ] {
            let mut bytes = Vec::new();
            crate::doc::open_decompressed(&root.join(sample))
                .expect("open sample")
                .read_to_end(&mut bytes)
                .expect("read sample");
            lines.extend(bytes.split_inclusive(|&b| b == b'\n').map(<[u8]>::to_vec));
        }
        let real = lines.len();
        assert!(real > 100, "{real} sample lines");
        for bad in [
            "",
            "  \t\r\n",
            "not json\n",
            "{\"text\": \"cut short",
            "{\"id\": 1}\n",
            "{\"text\": 3}\r\n",
            "{\"text\": null}",
            "{\"text\": [\"a\"]}",
            "{\"text\": {\"a\": 1}}",
            "[\"text\", \"a list\"]",
            "\"a string\"",
            "42",
            "{\"text\": \"a\"} trailing",
            "{\"text\": \"first\", \"text\": \"last\"}",
            "{\"text\": \"first\", \"text\": 5}",
            "{\"text\": 5, \"text\": \"last\"}",
            "{\"text\": \"esc\\u00e9\\n\\\"aped\\\"\"}",
            "{\"text\": \"\\ud800 lone surrogate\"}",
            "{\"text\": \"ok\", \"n\": 1e400}",
            "{\"text\": \"ok\", \"deep\": [[[{\"a\": [1, 2.5, -3, true, null]}]]]}",
            "{\"meta\": {\"text\": \"nested only\"}}",
            "{\"text\": \"bad \\x escape\"}",
        ] {
            lines.push(bad.as_bytes().to_vec());
        }
        lines.push(b"{\"text\": \"not UTF-8 \xff\"}\n".to_vec());
        let mut texts = 0;
        let mut reasons = std::collections::BTreeMap::<String, usize>::new();
        let mut offset = 0u64;
        for (i, line) in lines.iter().enumerate() {
            let line_no = i as u64 + 1;
            let full = outcome(document_of_line(line, offset, line_no), |d| d.text);
            let fast = outcome(text_of_line(line, offset, line_no), Cow::into_owned);
            assert_eq!(
                fast,
                full,
                "line {line_no}: {}",
                String::from_utf8_lossy(line)
            );
            match &full {
                Some(Ok(_)) => texts += 1,
                Some(Err((_, reason, _))) => *reasons.entry(reason.clone()).or_default() += 1,
                None => {}
            }
            if i < real {
                assert!(matches!(full, Some(Ok(_))), "sample line {line_no}");
            }
            offset += line.len() as u64;
        }
        // Four good made-up lines (repeated keys, escapes, nested values), two without
        // `text`, the rest bad (numbers out of range and lone surrogates too).
        assert_eq!(texts, real + 4);
        assert_eq!(reasons.get("missing_text"), Some(&2));
        assert_eq!(reasons.get("bad_json"), Some(&15));
        let repeated = text_of_line(b"{\"text\": \"first\", \"text\": \"last\"}", 0, 1);
        assert_eq!(repeated.and_then(|r| r.ok()).as_deref(), Some("last"));
    }
}
