//! MediaWiki XML dumps (`reader = "wikipedia"`): `pages-articles.xml`, `.bz2` (also
//! multistream: read whole, or with `split_bytes` as ranges of bz2 streams, each read after the
//! dump's first stream so it knows the `<siteinfo>`), streamed page by page with quick-xml.
//!
//! Every `<page>` becomes one document, so the runner counts everything: an article (namespace
//! 0, not a redirect) gets its wikitext converted to plain text ([`crate::clean::wiki`]); a
//! redirect or a page of another namespace is yielded with empty text and
//! `metadata.wiki_skip = "redirect" | "namespace"`, for the `wiki_filter` stage to drop and
//! count. Metadata: `title`, `url`, `language`, `page_id`, `namespace`, `timestamp`.
//!
//! Language: the reader option `language`, else (with `language_from_folder`) the name of the
//! dump's folder when it looks like a language code (the sample minidumps all claim `enwiki`),
//! else the siteinfo `dbname` without its `wiki` suffix, else the root's `xml:lang`.
//!
//! Encoding: UTF-8, or UTF-16 (LE/BE) with or without a byte-order mark, or the encoding named
//! in the XML declaration ([`super::xml_encoding`]); byte offsets in errors count in the text
//! as decoded to UTF-8.

use std::io::BufReader;
use std::path::Path;

use anyhow::{Context, Result};
use quick_xml::events::Event;
use serde::Deserialize;

use super::{stop_after_fatal, InputStream, Reader, Records};
use crate::clean::wiki::{wikitext_to_text, LinkPrefixes};
use crate::doc::{Document, RecordError, RecordResult};
use crate::run::config::parse_params;

/// Options of the `wikipedia` reader.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WikiOptions {
    /// Language of every page, overriding the dump's own (default: from the dump).
    #[serde(default)]
    pub language: Option<String>,
    /// Take the language from the dump's folder name when it is a language code (`de/`).
    #[serde(default)]
    pub language_from_folder: bool,
    /// Keep raw wikitext instead of converting it to plain text (default false).
    #[serde(default)]
    pub keep_wikitext: bool,
    /// Keep only each article's lead section, the text before its first heading, as CCNet
    /// trained its language models (default false).
    #[serde(default)]
    pub lead_only: bool,
    /// Largest page text kept, in MB (default 64); a larger page is set aside as
    /// `page_too_large`.
    #[serde(default = "default_max_page_mb")]
    pub max_page_mb: usize,
}

fn default_max_page_mb() -> usize {
    64
}

/// Reads MediaWiki XML dumps.
#[derive(Debug, Clone)]
pub struct WikiSource {
    options: WikiOptions,
}

impl WikiSource {
    /// Builds the reader from `[input.options]`.
    pub fn from_options(options: &toml::Table) -> Result<Self> {
        Ok(WikiSource {
            options: parse_params("reader wikipedia", options)?,
        })
    }
}

impl Reader for WikiSource {
    fn read(&self, path: &Path, source: &str) -> Result<Records> {
        self.read_named(path, &crate::doc::file_name(path), source)
    }

    fn read_named(&self, path: &Path, name: &str, source: &str) -> Result<Records> {
        let input = utf8_dump(
            crate::doc::open_decompressed(path)?,
            &path.display().to_string(),
        )?;
        let folder = path
            .parent()
            .and_then(|p| p.file_name())
            .map(|n| n.to_string_lossy().into_owned());
        Ok(self.pages(input, folder, name, source))
    }

    fn reads_streams(&self) -> bool {
        true
    }

    fn read_stream(&self, input: InputStream, source: &str) -> Result<Records> {
        let data = utf8_dump(input.data, &input.name)?;
        Ok(self.pages(data, input.folder, &input.name, source))
    }
}

/// The dump's bytes as UTF-8, whatever its byte-order mark or XML declaration says.
fn utf8_dump(
    input: Box<dyn std::io::Read + Send>,
    name: &str,
) -> Result<Box<dyn std::io::Read + Send>> {
    Ok(Box::new(
        super::xml_encoding::utf8_xml(input)
            .with_context(|| format!("cannot read {name}"))?
            .reader,
    ))
}

impl WikiSource {
    /// The pages of a decompressed dump held in folder `folder`, named `name` in errors.
    fn pages(
        &self,
        input: Box<dyn std::io::Read + Send>,
        folder: Option<String>,
        name: &str,
        source: &str,
    ) -> Records {
        let mut xml = quick_xml::Reader::from_reader(BufReader::with_capacity(1 << 16, input));
        xml.config_mut().trim_text(false);
        let folder_lang = folder.filter(|n| looks_like_language(n));
        let forced = self
            .options
            .language
            .clone()
            .or(if self.options.language_from_folder {
                folder_lang
            } else {
                None
            });
        stop_after_fatal(DumpPages {
            xml,
            buf: Vec::new(),
            source: source.to_string(),
            file: name.to_string(),
            options: self.options.clone(),
            forced_language: forced,
            site: SiteInfo::default(),
            prefixes: LinkPrefixes::default(),
            done: false,
        })
    }
}

/// The wikitext before the first section heading (a line starting with `==`).
fn lead_section(wikitext: &str) -> &str {
    let mut at = 0;
    for line in wikitext.split_inclusive('\n') {
        if line.trim_start().starts_with("==") {
            return &wikitext[..at];
        }
        at += line.len();
    }
    wikitext
}

/// `de`, `en`, `zh-yue`, `be-tarask`: a Wikipedia language code.
fn looks_like_language(name: &str) -> bool {
    let mut parts = name.split('-');
    let first = parts.next().unwrap_or("");
    (2..=3).contains(&first.len())
        && first.bytes().all(|b| b.is_ascii_lowercase())
        && parts.all(|p| (2..=8).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_lowercase()))
}

/// An attribute's value with its entities resolved.
fn attr_value(a: &quick_xml::events::attributes::Attribute) -> String {
    a.normalized_value(quick_xml::XmlVersion::Implicit1_0)
        .map(|v| v.into_owned())
        .unwrap_or_else(|_| a.value.to_string())
}

/// What the dump's `<siteinfo>` says.
#[derive(Debug, Clone, Default)]
struct SiteInfo {
    dbname: String,
    base: String,
    xml_lang: String,
    /// Namespace key → name, for the File/Media/Category names of this wiki.
    namespaces: Vec<(i64, String)>,
}

impl SiteInfo {
    fn language(&self) -> String {
        if let Some(l) = self.dbname.strip_suffix("wiki") {
            if !l.is_empty() {
                return l.replace('_', "-");
            }
        }
        self.xml_lang.clone()
    }

    /// `https://de.wikipedia.org/wiki/` from `<base>`.
    fn article_prefix(&self) -> Option<String> {
        let i = self.base.find("/wiki/")?;
        Some(self.base[..i + 6].to_string())
    }
}

/// The pages of one dump, as an iterator of documents.
struct DumpPages {
    xml: quick_xml::Reader<BufReader<Box<dyn std::io::Read + Send>>>,
    buf: Vec<u8>,
    source: String,
    file: String,
    options: WikiOptions,
    forced_language: Option<String>,
    site: SiteInfo,
    prefixes: LinkPrefixes,
    done: bool,
}

/// One page as read from the XML.
#[derive(Debug, Default)]
struct Page {
    title: String,
    ns: String,
    id: String,
    redirect: Option<String>,
    timestamp: String,
    text: String,
    too_large: bool,
    start: u64,
}

/// Which element's text is being collected.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Field {
    None,
    Title,
    Ns,
    PageId,
    Timestamp,
    Text,
    DbName,
    Base,
    Namespace(i64),
}

impl DumpPages {
    /// Reads events until a page is complete (or the dump ends).
    fn next_page(&mut self) -> Option<RecordResult> {
        let mut page: Option<Page> = None;
        let mut field = Field::None;
        let mut depth_in_page = 0usize;
        let mut in_revision = false;
        let max = self.options.max_page_mb << 20;
        loop {
            self.buf.clear();
            let event = match self.xml.read_event_into(&mut self.buf) {
                Ok(e) => e,
                Err(e) => {
                    let at = self.xml.error_position();
                    self.done = true;
                    let reason = match &e {
                        quick_xml::Error::Io(_) => "read_error",
                        _ => "bad_xml",
                    };
                    return Some(Err(RecordError::fatal(
                        at,
                        reason,
                        format!("{}: {e}", self.file),
                    )));
                }
            };
            match event {
                Event::Start(e) => {
                    let name = e.local_name();
                    let name = name.as_ref();
                    if page.is_some() {
                        depth_in_page += 1;
                        field = match name {
                            "title" if depth_in_page == 1 => Field::Title,
                            "ns" if depth_in_page == 1 => Field::Ns,
                            "id" if depth_in_page == 1 => Field::PageId,
                            "revision" => {
                                in_revision = true;
                                Field::None
                            }
                            "timestamp" if in_revision => Field::Timestamp,
                            "text" if in_revision => Field::Text,
                            _ => Field::None,
                        };
                    } else {
                        match name {
                            "page" => {
                                page = Some(Page {
                                    start: self.xml.buffer_position(),
                                    ..Default::default()
                                });
                                depth_in_page = 0;
                                in_revision = false;
                            }
                            "mediawiki" => {
                                for a in e.attributes().flatten() {
                                    if a.key.as_ref() == "xml:lang" {
                                        self.site.xml_lang = attr_value(&a);
                                    }
                                }
                            }
                            "dbname" => field = Field::DbName,
                            "base" => field = Field::Base,
                            "namespace" => {
                                let key = e
                                    .attributes()
                                    .flatten()
                                    .find(|a| a.key.as_ref() == "key")
                                    .and_then(|a| attr_value(&a).parse::<i64>().ok())
                                    .unwrap_or(0);
                                field = Field::Namespace(key);
                            }
                            _ => {}
                        }
                    }
                }
                Event::Empty(e) => {
                    if let Some(p) = page.as_mut() {
                        if e.local_name().as_ref() == "redirect" {
                            let target = e
                                .attributes()
                                .flatten()
                                .find(|a| a.key.as_ref() == "title")
                                .map(|a| attr_value(&a))
                                .unwrap_or_default();
                            p.redirect = Some(target);
                        }
                    }
                }
                Event::Text(t) => {
                    let s = t.xml10_content();
                    push_text(&mut self.site, page.as_mut(), field, &s, max);
                }
                Event::CData(t) => {
                    let s = t.xml10_content().into_owned();
                    push_text(&mut self.site, page.as_mut(), field, &s, max);
                }
                Event::GeneralRef(r) => {
                    let name = r.xml10_content();
                    let resolved = match r.resolve_char_ref() {
                        Ok(Some(c)) => Some(c.to_string()),
                        _ => {
                            quick_xml::escape::resolve_predefined_entity(&name).map(str::to_string)
                        }
                    };
                    match resolved {
                        Some(s) => push_text(&mut self.site, page.as_mut(), field, &s, max),
                        None => {
                            let raw = format!("&{name};");
                            push_text(&mut self.site, page.as_mut(), field, &raw, max);
                        }
                    }
                }
                Event::End(e) => {
                    if page.is_some() {
                        if depth_in_page == 0 && e.local_name().as_ref() == "page" {
                            let p = page.take()?;
                            return Some(self.finish_page(p));
                        }
                        if e.local_name().as_ref() == "revision" {
                            in_revision = false;
                        }
                        depth_in_page = depth_in_page.saturating_sub(1);
                    } else if e.local_name().as_ref() == "siteinfo" {
                        let names = self
                            .site
                            .namespaces
                            .iter()
                            .filter(|(k, _)| matches!(k, -2 | 6 | 14))
                            .map(|(_, n)| n.as_str());
                        self.prefixes = LinkPrefixes::with_names(names);
                    }
                    field = Field::None;
                }
                Event::Eof => {
                    self.done = true;
                    if let Some(p) = page {
                        return Some(Err(RecordError::record(
                            p.start,
                            "truncated_page",
                            format!(
                                "{}: dump ends inside page `{}` (cut in the middle?)",
                                self.file, p.title
                            ),
                        )));
                    }
                    return None;
                }
                _ => {}
            }
        }
    }
}

/// Appends text to the field being collected.
fn push_text(site: &mut SiteInfo, page: Option<&mut Page>, field: Field, s: &str, max: usize) {
    {
        match (page, field) {
            (Some(p), Field::Title) => p.title.push_str(s),
            (Some(p), Field::Ns) => p.ns.push_str(s),
            (Some(p), Field::PageId) => p.id.push_str(s),
            (Some(p), Field::Timestamp) => p.timestamp.push_str(s),
            (Some(p), Field::Text) => {
                if p.text.len() + s.len() > max {
                    p.too_large = true;
                    p.text = String::new();
                } else if !p.too_large {
                    p.text.push_str(s);
                }
            }
            (None, Field::DbName) => site.dbname.push_str(s),
            (None, Field::Base) => site.base.push_str(s),
            (None, Field::Namespace(k)) => site.namespaces.push((k, s.to_string())),
            _ => {}
        }
    }
}

impl DumpPages {
    fn finish_page(&self, p: Page) -> RecordResult {
        if p.too_large {
            return Err(RecordError::record(
                p.start,
                "page_too_large",
                format!(
                    "{}: page `{}` is larger than {} MB",
                    self.file, p.title, self.options.max_page_mb
                ),
            ));
        }
        let language = self
            .forced_language
            .clone()
            .unwrap_or_else(|| self.site.language());
        let url_title = p.title.replace(' ', "_");
        let url = match (&self.forced_language, self.site.article_prefix()) {
            (None, Some(prefix)) => format!("{prefix}{url_title}"),
            _ => format!("https://{language}.wikipedia.org/wiki/{url_title}"),
        };
        let ns: i64 = p.ns.trim().parse().unwrap_or(0);
        let skip = if p.redirect.is_some() {
            Some("redirect")
        } else if ns != 0 {
            Some("namespace")
        } else {
            None
        };
        let text = match skip {
            Some(_) => String::new(),
            None if self.options.lead_only && self.options.keep_wikitext => {
                lead_section(&p.text).to_string()
            }
            None if self.options.lead_only => {
                wikitext_to_text(lead_section(&p.text), &self.prefixes)
            }
            None if self.options.keep_wikitext => p.text,
            None => wikitext_to_text(&p.text, &self.prefixes),
        };
        let id = if p.id.is_empty() {
            format!("{}:{}", self.file, p.start)
        } else {
            format!("{language}wiki:{}", p.id.trim())
        };
        let mut doc = Document::new(id, text, self.source.as_str())
            .with("title", p.title)
            .with("url", url)
            .with("language", language)
            .with("namespace", ns)
            .with("timestamp", p.timestamp);
        if let Some(s) = skip {
            doc.set("wiki_skip", s);
        }
        if let Some(r) = p.redirect {
            doc.set("redirect_to", r);
        }
        Ok(doc)
    }
}

impl Iterator for DumpPages {
    type Item = RecordResult;

    fn next(&mut self) -> Option<RecordResult> {
        if self.done {
            return None;
        }
        let r = self.next_page();
        if r.is_none() {
            self.done = true;
        }
        r
    }
}
