//! The name of each input file in document ids: its path relative to the run's input root,
//! the deepest folder holding the roots of every input pattern that matched a file (a folder
//! pattern is its own root, a file's root is its folder, a glob's root is the folder before its
//! first wildcard). Same-named files in different folders get distinct names, and the same tree
//! read from another absolute location gets the same names.

use std::path::{Component, Path, PathBuf};

/// Characters that make a path component a glob pattern.
const GLOB_CHARS: &[char] = &['*', '?', '[', '{'];

/// The folder a pattern's files are named from.
fn pattern_root(pattern: &str) -> PathBuf {
    let p = Path::new(pattern);
    if p.is_dir() {
        return p.to_path_buf();
    }
    if p.is_file() {
        return p.parent().map(Path::to_path_buf).unwrap_or_default();
    }
    p.components()
        .take_while(|c| !c.as_os_str().to_string_lossy().contains(GLOB_CHARS))
        .collect()
}

/// Whether `pattern` (as `expand_inputs` reads it) lists `file`.
fn pattern_lists(pattern: &str, file: &Path) -> bool {
    let p = Path::new(pattern);
    if p.is_dir() {
        return file.starts_with(p);
    }
    if p.is_file() {
        return file == p;
    }
    glob::Pattern::new(pattern)
        .map(|g| file.ancestors().any(|a| g.matches_path(a)))
        .unwrap_or(false)
}

/// `path` made absolute against the working folder, without `.` components or symlink lookups.
fn absolute(path: &Path) -> PathBuf {
    let base = if path.as_os_str().is_empty() {
        Path::new(".")
    } else {
        path
    };
    std::path::absolute(base)
        .unwrap_or_else(|_| base.to_path_buf())
        .components()
        .filter(|c| !matches!(c, Component::CurDir))
        .collect()
}

/// The deepest folder that holds both `a` and `b`.
fn common_ancestor(a: &Path, b: &Path) -> PathBuf {
    a.components()
        .zip(b.components())
        .take_while(|(x, y)| x == y)
        .map(|(x, _)| x)
        .collect()
}

/// The name in ids of each of `files` (as listed by `expand_inputs(patterns)`), in order:
/// its `/`-separated path relative to the input root.
pub fn input_names(patterns: &[String], files: &[PathBuf]) -> Vec<String> {
    let root = patterns
        .iter()
        .filter(|p| files.iter().any(|f| pattern_lists(p, f)))
        .map(|p| absolute(&pattern_root(p)))
        .reduce(|a, b| common_ancestor(&a, &b));
    files
        .iter()
        .map(|f| absolute(f))
        .collect::<Vec<_>>()
        .iter()
        .map(|f| {
            let rel = root
                .as_deref()
                .and_then(|r| f.strip_prefix(r).ok())
                .filter(|rel| !rel.as_os_str().is_empty())
                .unwrap_or_else(|| Path::new(f.file_name().unwrap_or_default()));
            rel.components()
                .map(|c| c.as_os_str().to_string_lossy())
                .collect::<Vec<_>>()
                .join("/")
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn touch(path: &Path) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, b"").unwrap();
    }

    fn names_of(patterns: &[String]) -> Vec<String> {
        let files = crate::run::runner::expand_inputs(patterns).unwrap();
        input_names(patterns, &files)
    }

    #[test]
    fn same_named_files_in_different_folders_get_distinct_names() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("in");
        touch(&root.join("a/x.warc.gz"));
        touch(&root.join("b/x.warc.gz"));
        let folder = vec![root.to_string_lossy().into_owned()];
        assert_eq!(names_of(&folder), ["a/x.warc.gz", "b/x.warc.gz"]);
        let glob = vec![format!("{}/*/x.warc.gz", root.display())];
        assert_eq!(names_of(&glob), ["a/x.warc.gz", "b/x.warc.gz"]);
        let two_folders = vec![
            root.join("a").to_string_lossy().into_owned(),
            root.join("b").to_string_lossy().into_owned(),
        ];
        assert_eq!(names_of(&two_folders), ["a/x.warc.gz", "b/x.warc.gz"]);
        let two_files = vec![
            root.join("a/x.warc.gz").to_string_lossy().into_owned(),
            root.join("b/x.warc.gz").to_string_lossy().into_owned(),
        ];
        assert_eq!(names_of(&two_files), ["a/x.warc.gz", "b/x.warc.gz"]);
    }

    #[test]
    fn a_single_file_is_named_by_its_file_name_and_unmatched_patterns_do_not_count() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("deep/folder/x.jsonl");
        touch(&file);
        let patterns = vec![
            file.to_string_lossy().into_owned(),
            format!("{}/nothing-*.jsonl", dir.path().display()),
        ];
        assert_eq!(names_of(&patterns), ["x.jsonl"]);
    }
}
