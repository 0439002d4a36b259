//! WARC and WET readers (`warc`, `wet`): Common Crawl and other WARC/1.0–1.1 files, and the
//! WARC/0.17–0.18 drafts of older crawls (ClueWeb09), plain or gzip (one member per record),
//! streamed record by record. `metadata.warc_version` keeps the version (`1.0`, `0.18`).
//!
//! WET `conversion` records give their text directly; WARC `response` records holding HTML
//! are de-chunked, content-decoded, charset-decoded and turned into main-content text;
//! `resource` records (opt-in) are treated like a response body without the HTTP header.
//! Other record types (`request`, `metadata`, `warcinfo`, `revisit`, ...) are read past.

pub mod charset;
pub mod html_text;
pub mod http;
pub mod record;

use std::borrow::Cow;
use std::io::BufReader;
use std::path::Path;

use anyhow::{bail, Context, Result};
use serde::Deserialize;

use super::{record_id, stop_after_fatal, InputStream, Reader, Records};
use crate::doc::{compression_of, open_decompressed, Compression, Document, RecordError};
use crate::run::config::parse_params;
use record::{StreamKind, WarcRecord, WarcRecordReader};

/// Record types the readers can turn into documents.
pub const TEXT_RECORD_TYPES: &[&str] = &["response", "conversion", "resource"];

/// Default of `max_record_bytes`: 64 MiB.
pub const DEFAULT_MAX_RECORD_BYTES: u64 = 64 << 20;

/// Options of the `warc` and `wet` readers (`[input.options]`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WarcOptions {
    /// Record types to turn into documents, from `response`, `conversion`, `resource`.
    /// Default: `["response", "conversion"]` for `warc`, `["conversion"]` for `wet`.
    #[serde(default)]
    pub record_types: Option<Vec<String>>,
    /// Largest record block held in memory; a larger wanted record is read past and reported
    /// as `warc_record_too_large`. Default 64 MiB. Also caps a decoded `Content-Encoding`.
    #[serde(default = "default_max_record_bytes")]
    pub max_record_bytes: u64,
    /// Documents whose text has fewer bytes are skipped. Default 1 (skip empty texts); 0
    /// acts as 1, a document without text is never made.
    #[serde(default = "default_min_text_bytes")]
    pub min_text_bytes: usize,
    /// Only HTTP 2xx responses become documents (redirects and error pages are skipped).
    /// Default true.
    #[serde(default = "default_true")]
    pub only_success: bool,
}

fn default_max_record_bytes() -> u64 {
    DEFAULT_MAX_RECORD_BYTES
}

fn default_min_text_bytes() -> usize {
    1
}

fn default_true() -> bool {
    true
}

/// Reads WARC/WET files into documents; see the module documentation.
#[derive(Debug, Clone)]
pub struct WarcSource {
    options: WarcOptions,
    record_types: Vec<String>,
}

impl WarcSource {
    /// The `warc` reader: `response` and `conversion` records by default.
    pub fn warc_from_options(options: &toml::Table) -> Result<Self> {
        Self::from_options("reader warc", options, &["response", "conversion"])
    }

    /// The `wet` reader: `conversion` records by default.
    pub fn wet_from_options(options: &toml::Table) -> Result<Self> {
        Self::from_options("reader wet", options, &["conversion"])
    }

    fn from_options(what: &str, options: &toml::Table, default_types: &[&str]) -> Result<Self> {
        let options: WarcOptions = parse_params(what, options)?;
        let record_types: Vec<String> = match &options.record_types {
            Some(types) => types
                .iter()
                .map(|t| t.trim().to_ascii_lowercase())
                .collect(),
            None => default_types.iter().map(|t| t.to_string()).collect(),
        };
        for t in &record_types {
            if !TEXT_RECORD_TYPES.contains(&t.as_str()) {
                bail!(
                    "{what}: record type `{t}` gives no text (known: {})",
                    TEXT_RECORD_TYPES.join(", ")
                );
            }
        }
        if record_types.is_empty() {
            bail!("{what}: `record_types` is empty");
        }
        Ok(WarcSource {
            options,
            record_types,
        })
    }

    /// The options in effect.
    pub fn options(&self) -> &WarcOptions {
        &self.options
    }

    /// Streams the documents (and record errors) of one file; ids use its file name.
    pub fn documents(
        &self,
        path: &Path,
        source: &str,
    ) -> Result<impl Iterator<Item = Result<Document, RecordError>> + Send + 'static> {
        self.documents_named(path, &crate::doc::file_name(path), source)
    }

    /// Like [`WarcSource::documents`], with `name` (the path relative to the input root) in ids.
    pub fn documents_named(
        &self,
        path: &Path,
        name: &str,
        source: &str,
    ) -> Result<impl Iterator<Item = Result<Document, RecordError>> + Send + 'static> {
        let size = std::fs::metadata(path)
            .with_context(|| format!("cannot open {}", path.display()))?
            .len();
        // An empty file (even named `.gz`, which holds no gzip header then) has no records.
        let input: Box<dyn std::io::Read + Send> = if size == 0 {
            Box::new(std::io::empty())
        } else {
            open_decompressed(path)?
        };
        Ok(self.documents_from(input, compression_of(path), name, source))
    }

    /// The documents of decompressed WARC bytes stored with `compression`, `name` in ids.
    pub fn documents_from(
        &self,
        input: Box<dyn std::io::Read + Send>,
        compression: Option<Compression>,
        name: &str,
        source: &str,
    ) -> impl Iterator<Item = Result<Document, RecordError>> + Send + 'static {
        let kind = match compression {
            Some(Compression::Gzip) => StreamKind::Gzip,
            Some(_) => StreamKind::OtherCompression,
            None => StreamKind::Plain,
        };
        let records = WarcRecordReader::new(
            BufReader::with_capacity(1 << 16, input),
            kind,
            self.options.max_record_bytes,
            &self.record_types,
        );
        let builder = DocumentBuilder {
            name: name.to_string(),
            source: source.to_string(),
            options: self.options.clone(),
        };
        records.filter_map(move |r| match r {
            Ok(rec) => builder.build(rec).transpose(),
            Err(e) => Some(Err(e)),
        })
    }
}

impl Reader for WarcSource {
    fn read(&self, path: &Path, source: &str) -> Result<Records> {
        Ok(stop_after_fatal(self.documents(path, source)?))
    }

    fn read_named(&self, path: &Path, name: &str, source: &str) -> Result<Records> {
        Ok(stop_after_fatal(self.documents_named(path, name, source)?))
    }

    fn reads_streams(&self) -> bool {
        true
    }

    fn read_stream(&self, input: InputStream, source: &str) -> Result<Records> {
        Ok(stop_after_fatal(self.documents_from(
            input.data,
            input.compression,
            &input.name,
            source,
        )))
    }
}

/// Turns held WARC records into documents.
struct DocumentBuilder {
    /// The input's name in ids.
    name: String,
    source: String,
    options: WarcOptions,
}

/// The `WARC-Target-URI` without the `<...>` that WARC/1.0 writers such as wget put around it.
pub fn target_uri(value: &str) -> &str {
    let v = value.trim();
    v.strip_prefix('<')
        .and_then(|r| r.strip_suffix('>'))
        .unwrap_or(v)
}

/// The text a record's payload gave, with what was learnt on the way.
struct PageText {
    text: String,
    content_type: String,
    /// Encoding name and where it came from (HTML and resource payloads).
    charset: Option<(&'static str, &'static str)>,
    title: Option<String>,
}

/// An HTTP or resource payload ready for text extraction.
struct Payload<'a> {
    status: u16,
    /// The `Content-Type` value that applies to the body, if known.
    declared_type: Option<String>,
    body: Cow<'a, [u8]>,
}

impl DocumentBuilder {
    /// The text of a WET `conversion` record (UTF-8, bad sequences replaced).
    fn conversion_text(rec: &WarcRecord) -> PageText {
        let content_type = rec
            .headers
            .get("Content-Type")
            .map(http::media_type)
            .unwrap_or_else(|| "text/plain".to_string());
        let text = String::from_utf8_lossy(&rec.block);
        PageText {
            text: text
                .trim_matches(|c: char| c == '\n' || c == '\r')
                .to_string(),
            content_type,
            charset: None,
            title: None,
        }
    }

    /// The body of a `response` record's HTTP message, de-chunked and content-decoded;
    /// `None` for a capture that is not HTTP (`dns:`, `ftp:`).
    fn http_payload<'a>(&self, rec: &'a WarcRecord) -> Result<Option<Payload<'a>>, RecordError> {
        let bad = |reason: &str, message: String| RecordError::record(rec.offset, reason, message);
        let warc_ct = rec.headers.get("Content-Type").unwrap_or_default();
        let is_http = warc_ct.to_ascii_lowercase().starts_with("application/http")
            || rec.block.starts_with(b"HTTP/");
        if !is_http {
            return Ok(None);
        }
        let resp = http::parse_response(&rec.block).map_err(|why| bad("http_bad_header", why))?;
        let mut body = Cow::Borrowed(resp.body);
        if resp
            .transfer_encoding
            .as_deref()
            .is_some_and(|t| t.contains("chunked"))
        {
            if let Some(plain) = http::dechunk(resp.body) {
                body = Cow::Owned(plain);
            }
        }
        if resp.content_encoding.is_some() {
            match http::decode_content(
                &body,
                resp.content_encoding.as_deref(),
                self.options.max_record_bytes,
            ) {
                Ok(Cow::Owned(decoded)) => body = Cow::Owned(decoded),
                Ok(Cow::Borrowed(_)) => {}
                // Servers that label a plain page as compressed: keep it if it is HTML.
                Err(_) if http::sniff_html(&body) => {}
                Err(why) => return Err(bad("http_bad_content_encoding", why)),
            }
        }
        let declared_type = resp.content_type.or_else(|| {
            rec.headers
                .get("WARC-Identified-Payload-Type")
                .map(String::from)
        });
        Ok(Some(Payload {
            status: resp.status,
            declared_type,
            body,
        }))
    }

    /// The text of an HTML payload (or, for a `resource` record, a plain-text one); `None`
    /// when the payload is neither or the response is not a success.
    fn payload_text(
        &self,
        rec: &WarcRecord,
        payload: Payload<'_>,
        url: &str,
    ) -> Result<Option<PageText>, RecordError> {
        if self.options.only_success && !(200..300).contains(&payload.status) {
            return Ok(None);
        }
        let declared = payload.declared_type.as_deref();
        let media = declared.map(http::media_type);
        let html = match media.as_deref() {
            Some(m) if !m.is_empty() && m != "application/octet-stream" => http::is_html_type(m),
            _ => http::sniff_html(&payload.body),
        };
        // A `resource` record of plain text (wget's log, a stored .txt) is text as is.
        let plain = rec.warc_type().eq_ignore_ascii_case("resource")
            && media.as_deref() == Some("text/plain");
        if !html && !plain {
            return Ok(None);
        }
        let decoded = charset::decode_html(
            &payload.body,
            declared.and_then(charset::charset_param),
            url,
        );
        let charset = Some((decoded.encoding.name(), decoded.source.as_str()));
        let content_type = media.unwrap_or_else(|| "text/html".to_string());
        if plain {
            return Ok(Some(PageText {
                text: decoded.text.trim().to_string(),
                content_type,
                charset,
                title: None,
            }));
        }
        let depth = html_text::nesting_depth_estimate(&decoded.text);
        if depth > html_text::MAX_NESTING_DEPTH {
            return Err(RecordError::record(
                rec.offset,
                "html_too_deep",
                format!(
                    "elements nest about {depth} deep (more than {})",
                    html_text::MAX_NESTING_DEPTH
                ),
            ));
        }
        let extracted = html_text::html_to_text(&decoded.text);
        Ok(Some(PageText {
            text: extracted.text,
            content_type,
            charset,
            title: extracted.title,
        }))
    }

    /// A document for the record, `None` when the record is skipped by design (not HTML,
    /// not 2xx, too little text), or the reason it is unusable.
    fn build(&self, rec: WarcRecord) -> Result<Option<Document>, RecordError> {
        let url = target_uri(rec.headers.get("WARC-Target-URI").unwrap_or_default()).to_string();
        let warc_type = rec.warc_type().to_ascii_lowercase();
        let page = match warc_type.as_str() {
            "conversion" => Self::conversion_text(&rec),
            "response" => match self.http_payload(&rec)? {
                Some(payload) => match self.payload_text(&rec, payload, &url)? {
                    Some(page) => page,
                    None => return Ok(None),
                },
                None => return Ok(None),
            },
            "resource" => {
                let payload = Payload {
                    status: 200,
                    declared_type: rec.headers.get("Content-Type").map(String::from),
                    body: Cow::Borrowed(&rec.block),
                };
                match self.payload_text(&rec, payload, &url)? {
                    Some(page) => page,
                    None => return Ok(None),
                }
            }
            _ => return Ok(None),
        };
        let PageText {
            text,
            content_type,
            charset,
            title,
        } = page;
        if text.len() < self.options.min_text_bytes.max(1) {
            return Ok(None);
        }
        let mut doc = Document::new(record_id(&self.name, rec.offset), text, self.source.clone());
        doc.set("url", url);
        if let Some(asked) = rec.headers.get("WARC-Refers-To-Target-URI") {
            doc.set("requested_url", target_uri(asked));
        }
        if let Some(date) = rec.headers.get("WARC-Date") {
            doc.set("date", date);
        }
        if let Some(id) = rec.headers.get("WARC-Record-ID") {
            doc.set("warc_record_id", id);
        }
        doc.set("warc_type", warc_type);
        doc.set(
            "warc_version",
            rec.version.strip_prefix("WARC/").unwrap_or(&rec.version),
        );
        doc.set("content_type", content_type);
        if let Some((name, source)) = charset {
            doc.set("charset", name);
            doc.set("charset_source", source);
        }
        if let Some(title) = title {
            doc.set("title", title);
        }
        if let Some(cut) = rec.headers.get("WARC-Truncated") {
            doc.set("payload_truncated", cut);
        }
        if rec.length_repaired {
            doc.set("warc_length_repaired", true);
        }
        if let Some(lang) = rec.headers.get("WARC-Identified-Content-Language") {
            doc.set("warc_language", lang);
        }
        Ok(Some(doc))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_angle_brackets() {
        assert_eq!(target_uri("<http://a.b/>"), "http://a.b/");
        assert_eq!(target_uri(" http://a.b/ "), "http://a.b/");
        assert_eq!(target_uri("<http://a.b/"), "<http://a.b/");
    }

    #[test]
    fn options_are_checked() {
        let t: toml::Table = toml::from_str("record_types = [\"request\"]").unwrap();
        assert!(WarcSource::warc_from_options(&t).is_err());
        let t: toml::Table = toml::from_str("max_records = 3").unwrap();
        let e = WarcSource::warc_from_options(&t).unwrap_err().to_string();
        assert!(e.contains("max_records"), "{e}");
        let wet = WarcSource::wet_from_options(&toml::Table::new()).unwrap();
        assert_eq!(wet.record_types, vec!["conversion"]);
        assert_eq!(wet.options().max_record_bytes, DEFAULT_MAX_RECORD_BYTES);
    }
}
