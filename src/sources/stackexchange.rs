//! Stack Exchange data dump (`reader = "stackexchange"`): one site per input file, either its
//! `Posts.xml` in a site folder or the site's `.7z` archive as the dump publishes it
//! (`math.stackexchange.com.7z`, `stackoverflow.com-Posts.7z`); other files (the other tables
//! of a site) yield nothing. The site name is the folder's or archive's name without
//! `.stackexchange.com` (`math`, `french.meta`, `stackoverflow.com`).
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
//!
//! Pass 2 needs random access, so `Posts.xml` is read from a file: the site folder's own when it
//! is UTF-8, otherwise a temporary UTF-8 copy in the run's scratch folder next to the output
//! (from a `.7z`, or from a file in another encoding: UTF-16 with or without a byte-order
//! mark, or the XML declaration's encoding). The copy is unlinked as soon as it is created, so
//! it disappears when the reader is done, even if the run stops. LZMA, LZMA2, BZip2 and PPMd
//! archives are read (pure Rust); a member with an unsafe path (absolute, `..`) is
//! never used and is reported as `unsafe_path`; a truncated or corrupt archive is one
//! `bad_archive` record naming the file. Byte offsets count in the UTF-8 text.
//!
//! Site selection: with `largest_sites = N` (LLaMA: 28), only the N sites with the largest
//! `Posts.xml` (its size on disk, or the uncompressed size an archive lists) among the sites
//! next to this one (folders and archives) are read; the others yield one `site_not_selected`
//! record.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use anyhow::{Context, Result};
use quick_xml::events::{BytesStart, Event};
use serde::Deserialize;

use super::archive::safe_member_path;
use super::xml_encoding::{sniff, utf8_xml};
use super::{Reader, Records};
use crate::doc::{Document, RecordError, RecordResult};
use crate::run::config::parse_params;

/// Options of the `stackexchange` reader.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StackExchangeOptions {
    /// Read only the N sites with the largest `Posts.xml` among the sites next to the input
    /// (folders and `.7z` archives; 0 = all).
    #[serde(default)]
    pub largest_sites: usize,
}

/// Reads Stack Exchange `Posts.xml` files and site archives.
pub struct StackExchangeSource {
    options: StackExchangeOptions,
    /// Dump folder → the sites (folders or archives) selected in it.
    selected: Mutex<HashMap<PathBuf, HashSet<PathBuf>>>,
    /// Folder for temporary UTF-8 copies of `Posts.xml` (default: the system's).
    scratch: Option<PathBuf>,
}

impl StackExchangeSource {
    /// Builds the reader from `[input.options]`.
    pub fn from_options(options: &toml::Table) -> Result<Self> {
        Ok(StackExchangeSource {
            options: parse_params("reader stackexchange", options)?,
            selected: Mutex::new(HashMap::new()),
            scratch: None,
        })
    }

    /// True when the site `site` (folder or archive) is among the largest sites of its dump
    /// folder.
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

/// The `n` sites of `root` (folders with a `Posts.xml`, site archives) with the largest
/// `Posts.xml`, ties by name. An archive whose listing cannot be read counts as empty (reading
/// it reports why).
pub fn largest_sites(root: &Path, n: usize) -> Result<HashSet<PathBuf>> {
    let mut sites = Vec::new();
    for path in crate::doc::sorted_entries(root)? {
        let posts = path.join("Posts.xml");
        if posts.is_file() {
            let size = std::fs::metadata(&posts)
                .with_context(|| format!("cannot read {}", posts.display()))?
                .len();
            sites.push((size, path));
        } else if path.is_file() && archive_site(&crate::doc::file_name(&path)).is_some() {
            let size = posts_size_in_archive(&path).unwrap_or_else(|e| {
                tracing::warn!("{}: {e:#}", path.display());
                0
            });
            sites.push((size, path));
        }
    }
    sites.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    Ok(sites.into_iter().take(n).map(|(_, d)| d).collect())
}

/// The uncompressed size of the `Posts.xml` a site archive lists (0 if it lists none).
pub fn posts_size_in_archive(path: &Path) -> Result<u64> {
    let mut file = BufReader::new(
        File::open(path).with_context(|| format!("cannot open {}", path.display()))?,
    );
    let archive = sevenz_rust2::Archive::read(&mut file, &sevenz_rust2::Password::empty())
        .with_context(|| format!("{} is not a readable 7z archive", path.display()))?;
    Ok(archive
        .files
        .iter()
        .find(|e| is_posts_member(e.name()))
        .map_or(0, |e| e.size()))
}

/// Tables of a site in the dump; `stackoverflow.com` is published one archive per table.
const TABLES: &[&str] = &[
    "Badges",
    "Comments",
    "PostHistory",
    "PostLinks",
    "Posts",
    "Tags",
    "Users",
    "Votes",
];

/// The site of a dump archive's file name: `math.stackexchange.com.7z` → `math`,
/// `stackoverflow.com-Posts.7z` → `stackoverflow.com`; `None` for other files and for the
/// archives of other tables (`stackoverflow.com-Comments.7z`).
pub fn archive_site(file_name: &str) -> Option<String> {
    let stem = file_name.strip_suffix(".7z")?;
    let site = match stem.rsplit_once('-') {
        Some((site, "Posts")) => site,
        Some((_, table)) if TABLES.contains(&table) => return None,
        _ => stem,
    };
    (!site.is_empty()).then(|| site_name(site))
}

/// A site's name from its folder or archive name: without `.stackexchange.com`.
pub fn site_name(folder: &str) -> String {
    folder
        .strip_suffix(".stackexchange.com")
        .unwrap_or(folder)
        .to_string()
}

/// True for an archive member that is a site's `Posts.xml` (at any depth).
fn is_posts_member(name: &str) -> bool {
    name.rsplit(['/', '\\']).next() == Some("Posts.xml")
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
    fn use_scratch_dir(&mut self, dir: &Path) {
        self.scratch = Some(dir.to_path_buf());
    }

    fn read(&self, path: &Path, source: &str) -> Result<Records> {
        let name = crate::doc::file_name(path);
        let (site, key, archive) = if name == "Posts.xml" {
            let site_dir = path.parent().unwrap_or(Path::new(".")).to_path_buf();
            (
                site_name(&crate::doc::file_name(&site_dir)),
                site_dir,
                false,
            )
        } else if let Some(site) = archive_site(&name) {
            (site, path.to_path_buf(), true)
        } else {
            return Ok(Box::new(std::iter::empty()));
        };
        if !self.is_selected(&key)? {
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
        let scratch = self.scratch.clone().unwrap_or_else(std::env::temp_dir);
        let mut notes = Vec::new();
        let opened = if archive {
            extract_posts(path, &scratch, &mut notes)
        } else {
            open_posts(path, &scratch)
        };
        let posts = match opened {
            Ok(p) => p,
            Err(e) => {
                notes.push(e);
                return Ok(Box::new(notes.into_iter().map(Err)));
            }
        };
        let shown = if archive {
            format!("{}:Posts.xml", path.display())
        } else {
            path.display().to_string()
        };
        let index = AnswerIndex::build(&posts, &shown)?;
        let mut xml = quick_xml::Reader::from_reader(BufReader::with_capacity(
            1 << 16,
            Box::new(posts.stream()?) as Box<dyn Read + Send>,
        ));
        xml.config_mut().trim_text(false);
        let mut orphans = index.orphans();
        orphans.extend(notes);
        Ok(Box::new(Questions {
            xml,
            buf: Vec::new(),
            file: posts.file,
            index,
            orphans: orphans.into_iter(),
            host: site_host(&site),
            site,
            source: source.to_string(),
            done: false,
        }))
    }
}

/// A site's `Posts.xml` as a UTF-8 file open for random access.
struct PostsFile {
    file: File,
    /// Length of a UTF-8 byte-order mark at its start (quick-xml positions start after it).
    bom: u64,
}

impl PostsFile {
    /// A sequential reader over the whole file that leaves the shared file offset alone.
    fn stream(&self) -> Result<FileStream> {
        Ok(FileStream {
            file: self.file.try_clone().context("cannot reopen Posts.xml")?,
            pos: 0,
        })
    }
}

/// Reads a file from `pos` on with positioned reads.
struct FileStream {
    file: File,
    pos: u64,
}

impl Read for FileStream {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.file.read_at(buf, self.pos)?;
        self.pos += n as u64;
        Ok(n)
    }
}

/// A new unlinked temporary file in `dir` (created if missing).
fn scratch_file(dir: &Path) -> std::io::Result<File> {
    std::fs::create_dir_all(dir)?;
    tempfile::tempfile_in(dir)
}

/// Copies an XML stream as UTF-8 into a new scratch file.
fn utf8_copy(input: impl Read, scratch: &Path) -> std::io::Result<File> {
    let file = scratch_file(scratch)?;
    let mut out = BufWriter::with_capacity(1 << 16, file);
    std::io::copy(&mut utf8_xml(input)?.reader, &mut out)?;
    out.flush()?;
    out.into_inner().map_err(|e| e.into_error())
}

/// Opens a site folder's `Posts.xml`: the file itself when it is UTF-8, else a UTF-8 copy.
fn open_posts(path: &Path, scratch: &Path) -> Result<PostsFile, RecordError> {
    let file = File::open(path).map_err(|e| {
        RecordError::fatal(
            0,
            "read_error",
            format!("cannot open {}: {e}", path.display()),
        )
    })?;
    let mut head = vec![0u8; 1024];
    let n = file.read_at(&mut head, 0).unwrap_or(0);
    let (encoding, bom) = sniff(&head[..n]);
    if encoding == encoding_rs::UTF_8 {
        return Ok(PostsFile {
            file,
            bom: bom as u64,
        });
    }
    let copy = utf8_copy(BufReader::new(file), scratch).map_err(|e| {
        RecordError::fatal(
            0,
            "read_error",
            format!(
                "cannot write a UTF-8 copy of {} ({}) in {}: {e}",
                path.display(),
                encoding.name(),
                scratch.display()
            ),
        )
    })?;
    Ok(PostsFile { file: copy, bom: 0 })
}

/// Extracts the `Posts.xml` of a site archive into a UTF-8 scratch file, streaming; members
/// with unsafe paths are reported in `notes` and never used.
fn extract_posts(
    path: &Path,
    scratch: &Path,
    notes: &mut Vec<RecordError>,
) -> Result<PostsFile, RecordError> {
    let bad =
        |why: String| RecordError::fatal(0, "bad_archive", format!("{}: {why}", path.display()));
    let file = File::open(path).map_err(|e| bad(format!("cannot open: {e}")))?;
    let mut archive =
        sevenz_rust2::ArchiveReader::new(BufReader::new(file), sevenz_rust2::Password::empty())
            .map_err(|e| bad(format!("not a readable 7z archive (truncated?): {e}")))?;
    archive.set_thread_count(1);
    let mut copied: Option<std::io::Result<File>> = None;
    let walked = archive.for_each_entries_with_decision(|entry, data| {
        use sevenz_rust2::EntryDecision;
        if entry.is_directory() || !is_posts_member(entry.name()) {
            return Ok(EntryDecision::Continue);
        }
        if safe_member_path(entry.name().as_bytes()).is_none() {
            notes.push(RecordError::record(
                0,
                "unsafe_path",
                format!(
                    "{}: member {:?} has an unsafe path and is not read",
                    path.display(),
                    entry.name()
                ),
            ));
            return Ok(EntryDecision::Continue);
        }
        copied = Some(utf8_copy(data, scratch));
        Ok(EntryDecision::Stop)
    });
    match (walked, copied) {
        (Err(e), _) => Err(bad(format!("cannot decompress: {e}"))),
        (Ok(()), Some(Ok(file))) => Ok(PostsFile { file, bom: 0 }),
        (Ok(()), Some(Err(e))) => Err(bad(format!("cannot extract Posts.xml: {e}"))),
        (Ok(()), None) => Err(bad("no Posts.xml with a safe path in the archive".into())),
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
    fn build(posts: &PostsFile, shown: &str) -> Result<Self> {
        let bom = posts.bom;
        let mut xml =
            quick_xml::Reader::from_reader(BufReader::with_capacity(1 << 16, posts.stream()?));
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
                        format!("{shown}: {e}"),
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
