//! The inputs of the training commands (`train-lm`, `lm-cutoffs`, `train-classifier`,
//! `train-tokenizer`): files, folders and globs, each file read by a pipeline reader.
//!
//! Folders are walked recursively in name order. Inside a folder, what a run writes beside its
//! kept shards is skipped: `rejected/` and `quarantine/` folders, hidden names (`.work`),
//! `*.stats.json`, `*.manifest.json`, `features.json`, `*.md` and `*.tmp` files. A folder or file named directly
//! (`OUT/rejected`) is read whatever its name.
//!
//! The reader of a file is the one named with `--reader`, else the one its name calls for
//! ([`reader_for`]): `.warc` → `warc`, `.wet` → `wet`, `.jsonl`/`.json` → `jsonl`, a name with
//! `.xml` → `wikipedia`, anything else → `books` (plain text in any encoding, one document per
//! file); `.gz`, `.zst` and `.bz2` are looked through.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use crate::doc::{file_name, Document};

/// Keeps only documents of one language: `(metadata field, language)`. Documents without the
/// field are kept.
pub type LanguageFilter<'a> = Option<(&'a str, &'a str)>;

/// Folder names a run writes beside its kept shards.
const RUN_FOLDERS: &[&str] = &["rejected", "quarantine"];
/// File name endings of a run's bookkeeping (and of docs next to samples).
const SKIPPED_FILES: &[&str] = &[".stats.json", ".manifest.json", ".md", ".tmp"];

fn skipped_file(name: &str) -> bool {
    name.starts_with('.')
        || name == crate::stats::FEATURES_FILE
        || SKIPPED_FILES.iter().any(|s| name.ends_with(s))
}

/// Expands files, folders and globs into the sorted list of files to train on (see the
/// module docs for what a folder walk skips). A plain path that does not exist, or inputs
/// that give no file at all, are errors.
pub fn training_files<S: AsRef<str>>(inputs: &[S]) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for input in inputs {
        let pat = input.as_ref();
        let p = Path::new(pat);
        if p.is_dir() {
            walk(p, &mut files)?;
        } else if p.is_file() {
            files.push(p.to_path_buf());
        } else if pat.contains(['*', '?', '[']) {
            let before = files.len();
            for entry in glob::glob(pat).with_context(|| format!("bad glob pattern `{pat}`"))? {
                let path = entry.with_context(|| format!("cannot read a match of `{pat}`"))?;
                if path.is_dir() {
                    walk(&path, &mut files)?;
                } else if path.is_file() && !skipped_file(&file_name(&path)) {
                    files.push(path);
                }
            }
            if files.len() == before {
                tracing::warn!("input `{pat}` matches no file");
            }
        } else {
            bail!("input {pat} does not exist");
        }
    }
    files.sort();
    files.dedup();
    if files.is_empty() {
        let shown: Vec<&str> = inputs.iter().map(AsRef::as_ref).collect();
        bail!("no input file in {shown:?}");
    }
    Ok(files)
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    for p in crate::doc::sorted_entries(dir)? {
        let name = file_name(&p);
        if p.is_dir() {
            if !RUN_FOLDERS.contains(&name.as_str()) {
                walk(&p, out)?;
            }
        } else if p.is_file() && !skipped_file(&name) {
            out.push(p);
        }
    }
    Ok(())
}

/// The name of `path` without its compression suffixes.
fn stem(path: &Path) -> String {
    let mut name = file_name(path);
    while let Some(s) = [".gz", ".zst", ".bz2"]
        .iter()
        .find_map(|ext| name.strip_suffix(ext))
    {
        name = s.to_string();
    }
    name
}

/// The pipeline reader a training file is read with when none is named (see the module docs).
pub fn reader_for(path: &Path) -> &'static str {
    let s = stem(path);
    if s.ends_with(".wet") {
        "wet"
    } else if s.ends_with(".warc") {
        "warc"
    } else if s.ends_with(".jsonl") || s.ends_with(".json") {
        "jsonl"
    } else if s.contains(".xml") {
        "wikipedia"
    } else {
        "books"
    }
}

/// What reading the training inputs gave.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrainingRead {
    /// Files read.
    pub files: usize,
    /// Documents handed on.
    pub docs: u64,
    /// Records the readers set aside (bad records), skipped.
    pub bad_records: u64,
}

/// Bad records logged per file; the rest are only counted.
const LOGGED_BAD_RECORDS: u64 = 5;

/// Streams every document of `inputs` through the pipeline readers (`reader` for every file
/// when given), calling `f` with each document that has text until `f` returns false. Wikipedia pages the reader
/// marks as skipped (redirects, other namespaces) and documents of another language than
/// `language` asks for are left out. Bad records are logged, counted and skipped; an error
/// that ends a file (truncated compression, not XML) stops with the file and byte offset;
/// inputs that give no document at all are an error.
pub fn for_each_training_document(
    inputs: &[PathBuf],
    reader: Option<&str>,
    language: LanguageFilter,
    f: &mut dyn FnMut(Document) -> Result<bool>,
) -> Result<TrainingRead> {
    let names: Vec<String> = inputs.iter().map(|p| p.display().to_string()).collect();
    let files = training_files(&names)?;
    let mut read = TrainingRead {
        files: files.len(),
        ..Default::default()
    };
    let mut readers: Vec<(&str, Box<dyn super::Reader>)> = Vec::new();
    'files: for file in &files {
        let name = reader.unwrap_or_else(|| reader_for(file));
        if !readers.iter().any(|(n, _)| *n == name) {
            readers.push((name, super::build_reader(name, &toml::Table::new())?));
        }
        let r = &readers
            .iter()
            .find(|(n, _)| *n == name)
            .expect("built above")
            .1;
        let mut bad = 0u64;
        let mut docs = 0u64;
        for rec in r.read(file, "training")? {
            match rec {
                Ok(doc) => {
                    if doc.text.trim().is_empty() || doc.meta_str("wiki_skip").is_some() {
                        continue;
                    }
                    let wanted = language
                        .is_none_or(|(field, lang)| doc.meta_str(field).is_none_or(|l| l == lang));
                    if wanted {
                        docs += 1;
                        if !f(doc)? {
                            read.docs += docs;
                            read.bad_records += bad;
                            break 'files;
                        }
                    }
                }
                Err(e) if e.fatal => bail!(
                    "{} (read as `{name}`): byte {}: {}: {}",
                    file.display(),
                    e.offset,
                    e.reason,
                    e.message
                ),
                Err(e) => {
                    bad += 1;
                    if bad <= LOGGED_BAD_RECORDS {
                        tracing::warn!(
                            "{}: record at byte {} skipped: {}: {}",
                            file.display(),
                            e.offset,
                            e.reason,
                            e.message
                        );
                    }
                }
            }
        }
        if docs == 0 {
            tracing::warn!(
                "{}: no document with text (read as `{name}`)",
                file.display()
            );
        }
        read.docs += docs;
        read.bad_records += bad;
    }
    if read.docs == 0 {
        bail!(
            "no document with text in {} file(s) of {names:?}{}",
            files.len(),
            if read.bad_records > 0 {
                format!(" ({} bad records skipped)", read.bad_records)
            } else {
                String::new()
            }
        );
    }
    Ok(read)
}

/// [`for_each_training_document`] handing on only each document's text; returns the number
/// of files read.
pub fn for_each_training_text(
    inputs: &[PathBuf],
    reader: Option<&str>,
    language: LanguageFilter,
    f: &mut dyn FnMut(&str),
) -> Result<usize> {
    let read = for_each_training_document(inputs, reader, language, &mut |doc| {
        f(&doc.text);
        Ok(true)
    })?;
    Ok(read.files)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readers_follow_the_file_name() {
        for (name, reader) in [
            ("a/CC-MAIN-1.warc.gz", "warc"),
            ("x.warc.wet.gz", "wet"),
            ("00000.jsonl.zst", "jsonl"),
            ("c.json.gz", "jsonl"),
            ("enwiki-pages-articles1.xml-p10p30302.bz2", "wikipedia"),
            ("wiki.xml", "wikipedia"),
            ("1342.txt", "books"),
            ("notes", "books"),
        ] {
            assert_eq!(reader_for(Path::new(name)), reader, "{name}");
        }
    }

    #[test]
    fn a_run_folder_gives_its_kept_shards_and_a_named_subfolder_is_read() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        for f in [
            "00000.jsonl.zst",
            "00000.stats.json",
            "00000.manifest.json",
            "rejected/en/00000.s0.jsonl.zst",
            "quarantine/a.jsonl",
            ".work/s0/00000.jsonl.zst",
            "README.md",
            "sub/00001.jsonl.zst",
        ] {
            let p = d.join(f);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, b"").unwrap();
        }
        let got = training_files(&[d.display().to_string()]).unwrap();
        assert_eq!(
            got,
            [d.join("00000.jsonl.zst"), d.join("sub/00001.jsonl.zst")]
        );
        let rejected = training_files(&[d.join("rejected").display().to_string()]).unwrap();
        assert_eq!(rejected, [d.join("rejected/en/00000.s0.jsonl.zst")]);
        let stats = training_files(&[d.join("00000.stats.json").display().to_string()]).unwrap();
        assert_eq!(stats.len(), 1, "a file named directly is read");
        let e = training_files(&[d.join("missing").display().to_string()]).unwrap_err();
        assert!(e.to_string().contains("does not exist"), "{e}");
        let e = training_files(&[d.join("quarantine/*.zst").display().to_string()]).unwrap_err();
        assert!(e.to_string().contains("no input file"), "{e}");
    }
}
