//! Stack Exchange data dump (`reader = "stackexchange"`): one site's `Posts.xml` per input
//! file (the runner gives one file per shard; other files of a site folder yield nothing).
//!
//! One document per question (`PostTypeId="1"`), text laid out as
//!
//! ```text
//! Q: <title>
//!
//! <question body>
//!
//! A: <answer body, highest score first>
//!
//! A: <next answer>
//! ```
//!
//! Answers (`PostTypeId="2"`) are sorted by score descending, compared as integers (not as
//! strings: "10" before "9"), ties broken by creation date, then by id. Bodies are HTML turned
//! into text: paragraphs, headings and block quotes as paragraphs, `<pre>` code blocks kept
//! line by line, list items as lines (`- item`, `1. item`), `<br>` as a line break, links and
//! inline code as their text.
//!
//! Bounded memory with two streaming passes over the file: pass 1 reads every row and keeps,
//! per answer, 32 bytes (parent id, score, creation date, byte offset and length of the row)
//! and, per question, 4 bytes (its id); pass 2 streams the questions and reads each answer
//! row back from its offset. An answer whose parent question is not in the file is counted as
//! `missing_parent` with its byte offset. Other post types (tag wikis, ...) are skipped.
//! Posts.xml must be a plain file (the dump's `.7z` archives are extracted first).
//!
//! Site selection: with `largest_sites = N` (LLaMA: 28), only the N sites with the most posts
//! among the site folders next to this one are read; the others yield one
//! `site_not_selected` record.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::{BufReader, Read};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use anyhow::{Context, Result};
use quick_xml::events::{BytesStart, Event};
use serde::Deserialize;

use super::{Reader, Records};
use crate::doc::{Document, RecordError, RecordResult};
use crate::run::config::parse_params;

/// Options of the `stackexchange` reader.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StackExchangeOptions {
    /// Read only the N sites with the most posts among the sibling site folders (0 = all).
    #[serde(default)]
    pub largest_sites: usize,
}

/// Reads Stack Exchange `Posts.xml` files.
pub struct StackExchangeSource {
    options: StackExchangeOptions,
    /// Dump folder → the site folders selected in it.
    selected: Mutex<HashMap<PathBuf, HashSet<PathBuf>>>,
}

impl StackExchangeSource {
    /// Builds the reader from `[input.options]`.
    pub fn from_options(options: &toml::Table) -> Result<Self> {
        Ok(StackExchangeSource {
            options: parse_params("reader stackexchange", options)?,
            selected: Mutex::new(HashMap::new()),
        })
    }

    /// True when the site folder `site` is among the largest sites of its dump folder.
    fn is_selected(&self, site: &Path) -> Result<bool> {
        if self.options.largest_sites == 0 {
            return Ok(true);
        }
        let root = site.parent().unwrap_or(Path::new(".")).to_path_buf();
        let mut cache = self
            .selected
            .lock()
            .map_err(|_| anyhow::anyhow!("site selection lock poisoned"))?;
        if !cache.contains_key(&root) {
            let chosen = largest_sites(&root, self.options.largest_sites)?;
            cache.insert(root.clone(), chosen);
        }
        Ok(cache.get(&root).is_some_and(|s| s.contains(site)))
    }
}

/// Counts `<row` elements of a Posts.xml with a byte scan.
pub fn count_posts(path: &Path) -> Result<u64> {
    let mut f = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let finder = memchr::memmem::Finder::new(b"<row ");
    let mut buf = vec![0u8; 1 << 20];
    let mut carry = 0usize;
    let mut count = 0u64;
    loop {
        let n = f
            .read(&mut buf[carry..])
            .with_context(|| format!("cannot read {}", path.display()))?;
        if n == 0 {
            break;
        }
        let end = carry + n;
        count += finder.find_iter(&buf[..end]).count() as u64;
        // Keep the last 4 bytes so a match across the boundary is found once.
        let keep = end.min(4);
        buf.copy_within(end - keep..end, 0);
        carry = keep;
    }
    Ok(count)
}

/// The `n` site folders of `root` with the most posts (ties by name).
pub fn largest_sites(root: &Path, n: usize) -> Result<HashSet<PathBuf>> {
    let mut sites = Vec::new();
    for entry in
        std::fs::read_dir(root).with_context(|| format!("cannot list {}", root.display()))?
    {
        let dir = entry?.path();
        let posts = dir.join("Posts.xml");
        if posts.is_file() {
            sites.push((count_posts(&posts)?, dir));
        }
    }
    sites.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    Ok(sites.into_iter().take(n).map(|(_, d)| d).collect())
}

/// The host of a site folder: `math.stackexchange.com` and `stackoverflow.com` stay as they
/// are; a short name (`matheducators`, `french.meta`) gets `.stackexchange.com`.
pub fn site_host(site: &str) -> String {
    if site.ends_with(".com") || site.ends_with(".net") {
        site.to_string()
    } else {
        format!("{site}.stackexchange.com")
    }
}

impl Reader for StackExchangeSource {
    fn read(&self, path: &Path, source: &str) -> Result<Records> {
        if crate::doc::file_name(path) != "Posts.xml" {
            return Ok(Box::new(std::iter::empty()));
        }
        let site_dir = path.parent().unwrap_or(Path::new(".")).to_path_buf();
        let site = crate::doc::file_name(&site_dir);
        if !self.is_selected(&site_dir)? {
            let e = RecordError::record(
                0,
                "site_not_selected",
                format!(
                    "{site} is not among the {} largest sites",
                    self.options.largest_sites
                ),
            );
            return Ok(Box::new(std::iter::once(Err(e))));
        }
        let index = AnswerIndex::build(path)?;
        let file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
        let mut xml = quick_xml::Reader::from_reader(BufReader::with_capacity(
            1 << 16,
            Box::new(file.try_clone()?) as Box<dyn Read + Send>,
        ));
        xml.config_mut().trim_text(false);
        let orphans = index.orphans();
        Ok(Box::new(Questions {
            xml,
            buf: Vec::new(),
            file,
            index,
            orphans: orphans.into_iter(),
            host: site_host(&site),
            site,
            source: source.to_string(),
            done: false,
        }))
    }
}

/// One answer as pass 1 saw it: 32 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct AnswerRef {
    parent: u32,
    /// Score negated, so ascending order puts the highest score first.
    neg_score: i32,
    /// Creation date as `YYYYMMDDhhmmssfff`.
    created: u64,
    id: u32,
    offset: u64,
    len: u32,
}

/// Pass 1: answers sorted by (question, score desc, date, id) and the question ids.
struct AnswerIndex {
    /// Length of the UTF-8 byte-order mark at the start of the file (quick-xml positions
    /// start after it).
    bom: u64,
    answers: Vec<AnswerRef>,
    questions: Vec<u32>,
    /// Rows that could not be used (bad attributes), as errors to report.
    bad_rows: Vec<RecordError>,
    /// Where pass 1 met malformed XML; pass 2 reports it when it gets there.
    xml_error: Option<RecordError>,
}

/// 3 when the file starts with a UTF-8 byte-order mark, else 0.
fn bom_len(file: &File) -> u64 {
    let mut head = [0u8; 3];
    match file.read_exact_at(&mut head, 0) {
        Ok(()) if head == [0xEF, 0xBB, 0xBF] => 3,
        _ => 0,
    }
}

fn attr(e: &BytesStart, name: &str) -> Option<String> {
    e.attributes()
        .flatten()
        .find(|a| a.key.as_ref() == name)
        .map(|a| {
            a.normalized_value(quick_xml::XmlVersion::Implicit1_0)
                .map(|v| v.into_owned())
                .unwrap_or_else(|_| a.value.to_string())
        })
}

/// `2014-03-13T20:43:18.423` → `20140313204318423` (sorts like the date).
fn date_key(s: &str) -> u64 {
    let mut v = 0u64;
    let mut digits = 0;
    for b in s.bytes().filter(u8::is_ascii_digit).take(17) {
        v = v * 10 + (b - b'0') as u64;
        digits += 1;
    }
    for _ in digits..17 {
        v *= 10;
    }
    v
}

impl AnswerIndex {
    fn build(path: &Path) -> Result<Self> {
        let file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
        let bom = bom_len(&file);
        let mut xml = quick_xml::Reader::from_reader(BufReader::with_capacity(1 << 16, file));
        xml.config_mut().trim_text(false);
        let mut buf = Vec::new();
        let mut index = AnswerIndex {
            bom,
            answers: Vec::new(),
            questions: Vec::new(),
            bad_rows: Vec::new(),
            xml_error: None,
        };
        loop {
            buf.clear();
            let start = xml.buffer_position() + bom;
            match xml.read_event_into(&mut buf) {
                Ok(Event::Empty(e)) | Ok(Event::Start(e)) if e.local_name().as_ref() == "row" => {
                    let end = xml.buffer_position() + bom;
                    let kind = attr(&e, "PostTypeId");
                    let id = attr(&e, "Id").and_then(|s| s.parse::<u32>().ok());
                    match (kind.as_deref(), id) {
                        (Some("1"), Some(id)) => index.questions.push(id),
                        (Some("2"), Some(id)) => {
                            let parent = attr(&e, "ParentId").and_then(|s| s.parse::<u32>().ok());
                            let score =
                                attr(&e, "Score").and_then(|s| s.trim().parse::<i32>().ok());
                            match (parent, score) {
                                (Some(parent), Some(score)) => index.answers.push(AnswerRef {
                                    parent,
                                    neg_score: score.saturating_neg(),
                                    created: date_key(
                                        &attr(&e, "CreationDate").unwrap_or_default(),
                                    ),
                                    id,
                                    offset: start,
                                    len: (end - start) as u32,
                                }),
                                _ => index.bad_rows.push(RecordError::record(
                                    start,
                                    "bad_row",
                                    format!("answer {id} has no numeric ParentId or Score"),
                                )),
                            }
                        }
                        (Some("1" | "2"), None) => index.bad_rows.push(RecordError::record(
                            start,
                            "bad_row",
                            "post without a numeric Id",
                        )),
                        _ => {}
                    }
                }
                Ok(Event::Eof) => break,
                Ok(_) => {}
                Err(e) => {
                    index.xml_error = Some(RecordError::fatal(
                        xml.error_position() + bom,
                        "bad_xml",
                        format!("{}: {e}", path.display()),
                    ));
                    break;
                }
            }
        }
        index.answers.sort_unstable();
        index.questions.sort_unstable();
        Ok(index)
    }

    fn answers_of(&self, question: u32) -> &[AnswerRef] {
        let lo = self.answers.partition_point(|a| a.parent < question);
        let hi = self.answers.partition_point(|a| a.parent <= question);
        &self.answers[lo..hi]
    }

    /// Answers whose question is not in the file, as `missing_parent` records.
    fn orphans(&self) -> Vec<RecordError> {
        let mut out: Vec<RecordError> = self
            .answers
            .iter()
            .filter(|a| self.questions.binary_search(&a.parent).is_err())
            .map(|a| {
                RecordError::record(
                    a.offset,
                    "missing_parent",
                    format!(
                        "answer {} refers to question {}, which is not in the file",
                        a.id, a.parent
                    ),
                )
            })
            .collect();
        out.extend(self.bad_rows.iter().cloned());
        out
    }
}

/// Pass 2: the questions with their answers, as documents.
struct Questions {
    xml: quick_xml::Reader<BufReader<Box<dyn Read + Send>>>,
    buf: Vec<u8>,
    file: File,
    index: AnswerIndex,
    orphans: std::vec::IntoIter<RecordError>,
    host: String,
    site: String,
    source: String,
    done: bool,
}

impl Questions {
    fn read_answer_body(&self, a: &AnswerRef) -> std::result::Result<String, RecordError> {
        let mut row = vec![0u8; a.len as usize];
        self.file.read_exact_at(&mut row, a.offset).map_err(|e| {
            RecordError::record(
                a.offset,
                "read_error",
                format!("cannot read answer {}: {e}", a.id),
            )
        })?;
        let mut xml = quick_xml::Reader::from_reader(&row[..]);
        let mut buf = Vec::new();
        loop {
            match xml.read_event_into(&mut buf) {
                Ok(Event::Empty(e)) | Ok(Event::Start(e)) => {
                    return Ok(attr(&e, "Body").unwrap_or_default());
                }
                Ok(Event::Eof) | Err(_) => {
                    return Err(RecordError::record(
                        a.offset,
                        "bad_row",
                        format!("answer {} cannot be read back at its offset", a.id),
                    ))
                }
                Ok(_) => buf.clear(),
            }
        }
    }

    fn question_document(&self, e: &BytesStart, start: u64) -> RecordResult {
        let id: u32 = attr(e, "Id").and_then(|s| s.parse().ok()).ok_or_else(|| {
            RecordError::record(start, "bad_row", "question without a numeric Id")
        })?;
        let title = attr(e, "Title").unwrap_or_default();
        let body = html_to_text(&attr(e, "Body").unwrap_or_default());
        let mut text = format!("Q: {}\n\n{}", title.trim(), body);
        let answers = self.index.answers_of(id);
        let mut answer_ids = Vec::with_capacity(answers.len());
        let mut answer_scores = Vec::with_capacity(answers.len());
        for a in answers {
            let body = html_to_text(&self.read_answer_body(a)?);
            text.push_str("\n\nA: ");
            text.push_str(&body);
            answer_ids.push(a.id);
            answer_scores.push(-(a.neg_score as i64));
        }
        let score: i64 = attr(e, "Score")
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0);
        let mut doc = Document::new(format!("{}:{id}", self.host), text, self.source.as_str())
            .with("url", format!("https://{}/questions/{id}", self.host))
            .with("site", self.site.as_str())
            .with("question_id", id)
            .with("title", title)
            .with("score", score)
            .with("answer_ids", answer_ids)
            .with("answer_scores", answer_scores)
            .with("tags", parse_tags(&attr(e, "Tags").unwrap_or_default()));
        if let Some(d) = attr(e, "CreationDate") {
            doc.set("timestamp", d);
        }
        if let Some(l) = attr(e, "ContentLicense") {
            doc.set("license", l);
        }
        Ok(doc)
    }
}

/// Tags in either dump format: `<a><b>` (before 2024) or `|a|b|` (2024).
pub fn parse_tags(s: &str) -> Vec<String> {
    s.split(['<', '>', '|'])
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_string)
        .collect()
}

impl Iterator for Questions {
    type Item = RecordResult;

    fn next(&mut self) -> Option<RecordResult> {
        if self.done {
            return self.orphans.next().map(Err);
        }
        loop {
            self.buf.clear();
            let start = self.xml.buffer_position() + self.index.bom;
            if let Some(err) = &self.index.xml_error {
                if start >= err.offset {
                    self.done = true;
                    // Report the set-aside answers first, the fatal error last.
                    let mut rest: Vec<RecordError> = self.orphans.by_ref().collect();
                    rest.push(err.clone());
                    self.orphans = rest.into_iter();
                    return self.orphans.next().map(Err);
                }
            }
            let event = match self.xml.read_event_into(&mut self.buf) {
                Ok(e) => e.into_owned(),
                Err(e) => {
                    self.done = true;
                    let err = RecordError::fatal(
                        self.xml.error_position() + self.index.bom,
                        "bad_xml",
                        e.to_string(),
                    );
                    let mut rest: Vec<RecordError> = self.orphans.by_ref().collect();
                    rest.push(err);
                    self.orphans = rest.into_iter();
                    return self.orphans.next().map(Err);
                }
            };
            match event {
                Event::Empty(e) | Event::Start(e)
                    if e.local_name().as_ref() == "row"
                        && attr(&e, "PostTypeId").as_deref() == Some("1") =>
                {
                    return Some(self.question_document(&e, start));
                }
                Event::Eof => {
                    self.done = true;
                    return self.orphans.next().map(Err);
                }
                _ => {}
            }
        }
    }
}

/// Stack Exchange post HTML to text: block elements as paragraphs, `<pre>` kept verbatim,
/// list items as `- ` / `N. ` lines, `<br>` as a line break.
pub fn html_to_text(html: &str) -> String {
    let html = html.replace("\r\n", "\n");
    let fragment = scraper::Html::parse_fragment(&html);
    let mut out = TextOut::default();
    walk(fragment.tree.root(), &mut out, &mut Vec::new(), false);
    out.finish()
}

#[derive(Default)]
struct TextOut {
    text: String,
    /// Newlines wanted before the next text (1 = line break, 2 = paragraph).
    pending: usize,
}

impl TextOut {
    fn block(&mut self, n: usize) {
        if !self.text.is_empty() {
            self.pending = self.pending.max(n);
        }
    }

    fn push(&mut self, s: &str, verbatim: bool) {
        if s.is_empty() {
            return;
        }
        if !verbatim && s.trim().is_empty() {
            if !self.text.is_empty() && self.pending == 0 && !self.text.ends_with(' ') {
                self.text.push(' ');
            }
            return;
        }
        if self.pending > 0 {
            while self.text.ends_with(' ') {
                self.text.pop();
            }
            for _ in 0..self.pending {
                self.text.push('\n');
            }
            self.pending = 0;
        }
        if verbatim {
            self.text.push_str(s);
        } else {
            let mut first = true;
            let start_space = s.starts_with(char::is_whitespace);
            if start_space && !self.text.is_empty() && !self.text.ends_with([' ', '\n']) {
                self.text.push(' ');
            }
            for w in s.split_whitespace() {
                if !first {
                    self.text.push(' ');
                }
                self.text.push_str(w);
                first = false;
            }
            if s.ends_with(char::is_whitespace) {
                self.text.push(' ');
            }
        }
    }

    fn finish(self) -> String {
        let lines: Vec<&str> = self.text.split('\n').map(str::trim_end).collect();
        lines.join("\n").trim().to_string()
    }
}

fn walk(
    node: ego_tree::NodeRef<scraper::Node>,
    out: &mut TextOut,
    lists: &mut Vec<Option<u64>>,
    pre: bool,
) {
    match node.value() {
        scraper::Node::Text(t) => out.push(t, pre),
        scraper::Node::Element(e) => {
            let name = e.name();
            match name {
                "br" => {
                    out.pending = out.pending.max(1);
                    if out.text.is_empty() {
                        out.pending = 0;
                    }
                    return;
                }
                "hr" | "img" | "script" | "style" => {
                    out.block(2);
                    return;
                }
                _ => {}
            }
            let is_block = matches!(
                name,
                "p" | "div"
                    | "pre"
                    | "blockquote"
                    | "h1"
                    | "h2"
                    | "h3"
                    | "h4"
                    | "h5"
                    | "h6"
                    | "ul"
                    | "ol"
                    | "table"
                    | "tr"
                    | "dl"
                    | "dt"
                    | "dd"
            );
            if is_block {
                out.block(if lists.is_empty() { 2 } else { 1 });
            }
            match name {
                "ul" => lists.push(None),
                "ol" => {
                    let start = e.attr("start").and_then(|s| s.parse().ok()).unwrap_or(1);
                    lists.push(Some(start));
                }
                "li" => {
                    out.block(1);
                    let depth = lists.len().saturating_sub(1);
                    let marker = match lists.last_mut() {
                        Some(Some(n)) => {
                            let m = format!("{n}. ");
                            *n += 1;
                            m
                        }
                        _ => "- ".to_string(),
                    };
                    let indent = "  ".repeat(depth);
                    out.push(&format!("{indent}{marker}"), true);
                }
                _ => {}
            }
            let in_pre = pre || name == "pre";
            for child in node.children() {
                walk(child, out, lists, in_pre);
            }
            if matches!(name, "ul" | "ol") {
                lists.pop();
            }
            if name == "pre" {
                while out.text.ends_with('\n') {
                    out.text.pop();
                }
            }
            if is_block || name == "li" {
                out.block(if lists.is_empty() && name != "li" {
                    2
                } else {
                    1
                });
            }
        }
        _ => {
            for child in node.children() {
                walk(child, out, lists, pre);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_blocks_code_and_lists_become_lines() {
        let html = "<p>Intro with <code>x = 1</code> and <a href=\"u\">a link</a>.</p>\n\n<pre><code>fn main() {\n    println!(\"hi\");\n}\n</code></pre>\n\n<ul>\n<li>first</li>\n<li>second <strong>bold</strong></li>\n</ul>\n<ol start=\"3\"><li>three</li><li>four</li></ol><p>line<br>break &amp; entity</p>";
        assert_eq!(
            html_to_text(html),
            "Intro with x = 1 and a link.\n\nfn main() {\n    println!(\"hi\");\n}\n\n- first\n- second bold\n\n3. three\n4. four\n\nline\nbreak & entity"
        );
    }

    #[test]
    fn dates_sort_and_tags_parse() {
        assert!(date_key("2014-03-13T20:43:18.423") < date_key("2014-03-13T20:49:29.8"));
        assert_eq!(date_key("2014-03-13T20:43:18"), 20140313204318000);
        assert_eq!(parse_tags("<a><b-c>"), ["a", "b-c"]);
        assert_eq!(
            parse_tags("|feature-request|status-completed|"),
            ["feature-request", "status-completed"]
        );
        assert_eq!(site_host("french.meta"), "french.meta.stackexchange.com");
        assert_eq!(site_host("stackoverflow.com"), "stackoverflow.com");
    }

    #[test]
    fn scores_compare_as_numbers_then_dates() {
        let mut v = [
            AnswerRef {
                parent: 1,
                neg_score: -9,
                created: 1,
                id: 5,
                offset: 0,
                len: 0,
            },
            AnswerRef {
                parent: 1,
                neg_score: -10,
                created: 2,
                id: 6,
                offset: 0,
                len: 0,
            },
            AnswerRef {
                parent: 1,
                neg_score: -9,
                created: 0,
                id: 7,
                offset: 0,
                len: 0,
            },
        ];
        v.sort();
        assert_eq!(v.map(|a| a.id), [6, 7, 5]);
    }
}
