//! The GitHub pipeline on the real sample repositories: licence filter, file filters,
//! header removal, and the reader's other inputs (zip, checkout list, JSONL of files).

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use datamill::doc::read_shard;
use datamill::run::config::PipelineConfig;
use datamill::run::{run_config, RunOptions};
use datamill::sources::build_reader;
use datamill::Document;

fn samples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("samples/github")
}

/// Copies a `.tar.gz` repository archive without its root `LICENSE`, under a new prefix.
fn copy_without_license(src: &Path, dst: &Path, old_prefix: &str, new_prefix: &str) {
    let mut raw = Vec::new();
    flate2::read::GzDecoder::new(std::fs::File::open(src).unwrap())
        .read_to_end(&mut raw)
        .unwrap();
    let mut archive = tar::Archive::new(&raw[..]);
    let out = flate2::write::GzEncoder::new(
        std::fs::File::create(dst).unwrap(),
        flate2::Compression::fast(),
    );
    let mut builder = tar::Builder::new(out);
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let path = entry.path().unwrap().to_string_lossy().into_owned();
        if path == format!("{old_prefix}/LICENSE") || !entry.header().entry_type().is_file() {
            continue;
        }
        let new_path = path.replacen(old_prefix, new_prefix, 1);
        let mut header = entry.header().clone();
        let mut data = Vec::new();
        entry.read_to_end(&mut data).unwrap();
        builder
            .append_data(&mut header, new_path, &data[..])
            .unwrap();
    }
    builder.into_inner().unwrap().finish().unwrap();
}

fn pipeline(inputs: &[PathBuf], out: &Path) -> PipelineConfig {
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("pipelines/github.toml"),
    )
    .unwrap();
    let mut config = PipelineConfig::parse(&text).unwrap();
    config.input.paths = inputs.iter().map(|p| p.display().to_string()).collect();
    config.output.dir = out.to_path_buf();
    config
}

fn all_docs(dir: &Path, sub: &str) -> Vec<Document> {
    let dir = dir.join(sub);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .map(|rd| rd.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    files.sort();
    files
        .into_iter()
        .filter(|p| p.to_string_lossy().ends_with(".jsonl.zst"))
        .flat_map(|p| read_shard(&p).unwrap())
        .collect()
}

fn meta<'a>(d: &'a Document, k: &str) -> &'a str {
    d.meta_str(k).unwrap_or("")
}

#[test]
fn permissive_repositories_kept_gpl_and_unlicensed_dropped_with_reasons() {
    let tmp = tempfile::tempdir().unwrap();
    // googler without its LICENSE has no licence signal left (no manifest either).
    let nolicense = tmp.path().join("googler-nolicense.tar.gz");
    copy_without_license(
        &samples().join("googler.tar.gz"),
        &nolicense,
        "googler",
        "googler-nolicense",
    );
    let mut inputs: Vec<PathBuf> = ["clipboard.js", "googler", "itsdangerous", "python-fire"]
        .iter()
        .map(|n| samples().join(format!("{n}.tar.gz")))
        .collect();
    inputs.push(nolicense);
    let out = tmp.path().join("out");
    let summary = run_config(
        &pipeline(&inputs, &out),
        &RunOptions {
            world_size: 1,
            threads: 2,
            ..Default::default()
        },
    )
    .unwrap();
    assert!(summary.failures.is_empty(), "{:?}", summary.failures);

    let kept = all_docs(&out, "");
    let licences: BTreeMap<&str, BTreeSet<&str>> = kept.iter().fold(BTreeMap::new(), |mut m, d| {
        m.entry(meta(d, "repo"))
            .or_default()
            .insert(meta(d, "license"));
        m
    });
    assert_eq!(
        licences,
        BTreeMap::from([
            ("clipboard.js", BTreeSet::from(["MIT"])),
            ("itsdangerous", BTreeSet::from(["BSD-3-Clause"])),
            ("python-fire", BTreeSet::from(["Apache-2.0"])),
        ])
    );

    let rejected = all_docs(&out, "rejected");
    let reason = |repo: &str, path: &str| -> String {
        rejected
            .iter()
            .find(|d| meta(d, "repo") == repo && meta(d, "path") == path)
            .map(|d| meta(d, "reject_reason").to_string())
            .unwrap_or_else(|| panic!("{repo}/{path} not rejected"))
    };
    assert_eq!(
        reason("clipboard.js", "dist/clipboard.min.js"),
        "minified_file"
    );
    assert_eq!(reason("clipboard.js", "package-lock.json"), "lock_file");
    assert_eq!(reason("clipboard.js", "LICENSE"), "license_file");
    assert_eq!(reason("itsdangerous", "LICENSE.txt"), "license_file");
    assert_eq!(reason("itsdangerous", "uv.lock"), "lock_file");
    assert_eq!(reason("googler", "googler"), "license_not_allowed");

    for d in rejected.iter().filter(|d| meta(d, "repo") == "googler") {
        assert_eq!(meta(d, "reject_reason"), "license_not_allowed");
        assert!(
            meta(d, "license").starts_with("GPL-3.0"),
            "{:?}",
            d.metadata
        );
    }
    let unlicensed: Vec<_> = rejected
        .iter()
        .filter(|d| meta(d, "repo") == "googler-nolicense")
        .collect();
    assert!(unlicensed.len() > 10);
    assert!(unlicensed
        .iter()
        .all(|d| meta(d, "reject_reason") == "license_missing"));

    // Apache headers are gone from the Python sources, the code stays.
    let core = kept
        .iter()
        .find(|d| meta(d, "path") == "fire/core.py")
        .unwrap();
    assert!(core.text.starts_with("\"\"\"Python Fire is a library"));
    assert!(!core.text.contains("Licensed under the Apache License"));
    assert_eq!(meta(core, "language"), "Python");
    // A shebang stays on top of a script whose licence-free comments follow.
    let build = kept
        .iter()
        .find(|d| meta(d, "path") == ".github/scripts/build.sh")
        .unwrap();
    assert!(build.text.starts_with("#!/usr/bin/env bash\n"));
}

/// clipboard.js's MIT `LICENSE` text.
fn clipboard_license() -> String {
    let mut raw = Vec::new();
    flate2::read::GzDecoder::new(
        std::fs::File::open(samples().join("clipboard.js.tar.gz")).unwrap(),
    )
    .read_to_end(&mut raw)
    .unwrap();
    let mut license = String::new();
    for e in tar::Archive::new(&raw[..]).entries().unwrap() {
        let mut e = e.unwrap();
        if e.path().unwrap().to_string_lossy() == "clipboard.js/LICENSE" {
            e.read_to_string(&mut license).unwrap();
        }
    }
    license
}

/// A small MIT repository written as a zip with hostile members.
fn write_zip(path: &Path) {
    use zip::write::SimpleFileOptions;
    let license = clipboard_license();
    let opts = SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    let mut z = zip::ZipWriter::new(std::fs::File::create(path).unwrap());
    z.start_file("tool-main/LICENSE", opts).unwrap();
    z.write_all(license.as_bytes()).unwrap();
    z.start_file("tool-main/src/lib.rs", opts).unwrap();
    z.write_all(b"pub fn add(a: u32, b: u32) -> u32 {\n    a + b\n}\n")
        .unwrap();
    z.start_file("tool-main/../../escape.rs", opts).unwrap();
    z.write_all(b"fn evil() {}\n").unwrap();
    z.start_file("/etc/cron.d/x.sh", opts).unwrap();
    z.write_all(b"echo evil\n").unwrap();
    z.add_symlink("tool-main/link.rs", "/etc/passwd", opts)
        .unwrap();
    z.finish().unwrap();
}

fn read_all(reader: &str, path: &Path) -> (Vec<Document>, Vec<String>) {
    let r = build_reader(reader, &toml::Table::new()).unwrap();
    let mut docs = Vec::new();
    let mut errors = Vec::new();
    for rec in r.read(path, "github").unwrap() {
        match rec {
            Ok(d) => docs.push(d),
            Err(e) => errors.push(e.reason),
        }
    }
    (docs, errors)
}

#[test]
fn manifest_is_the_second_licence_signal() {
    // python-fire without its LICENSE still states `license = {text = "Apache-2.0"}` in
    // pyproject.toml; clipboard.js without it still has `"license": "MIT"` in package.json.
    let tmp = tempfile::tempdir().unwrap();
    for (repo, spdx, manifest) in [
        ("python-fire", "Apache-2.0", "pyproject.toml"),
        ("clipboard.js", "MIT", "package.json"),
    ] {
        let copy = tmp.path().join(format!("{repo}.tar.gz"));
        copy_without_license(&samples().join(format!("{repo}.tar.gz")), &copy, repo, repo);
        let (docs, _) = read_all("github", &copy);
        assert!(docs.len() > 10);
        assert!(docs.iter().all(|d| meta(d, "path") != "LICENSE"));
        for d in &docs {
            assert_eq!(
                (meta(d, "license"), meta(d, "license_source")),
                (spdx, manifest)
            );
        }
    }
}

#[test]
fn zip_members_that_escape_or_link_are_never_read() {
    let tmp = tempfile::tempdir().unwrap();
    let zip = tmp.path().join("tool.zip");
    write_zip(&zip);
    let (docs, errors) = read_all("github", &zip);
    let paths: Vec<&str> = docs.iter().map(|d| meta(d, "path")).collect();
    assert_eq!(paths, vec!["LICENSE", "src/lib.rs"]);
    assert!(docs.iter().all(|d| meta(d, "license") == "MIT"));
    assert_eq!(meta(&docs[1], "repo"), "tool-main");
    assert_eq!(errors, vec!["unsafe_path", "unsafe_path", "link"]);
    assert!(!tmp.path().join("escape.rs").exists());
}

#[test]
fn checkout_list_and_jsonl_exports_get_licences() {
    let tmp = tempfile::tempdir().unwrap();
    // A checked-out repository whose only licence signal is its Cargo.toml.
    let repo = tmp.path().join("checkouts/adder");
    std::fs::create_dir_all(repo.join("src")).unwrap();
    std::fs::create_dir_all(repo.join(".git")).unwrap();
    std::fs::write(repo.join(".git/config"), "[core]\n").unwrap();
    std::fs::write(
        repo.join("Cargo.toml"),
        "[package]\nname = \"adder\"\nlicense = \"MIT OR Apache-2.0\"\n",
    )
    .unwrap();
    std::fs::write(repo.join("src/lib.rs"), "pub fn one() -> u8 {\n    1\n}\n").unwrap();
    let list = tmp.path().join("local.repos");
    std::fs::write(&list, "# checkouts\ncheckouts/adder\ncheckouts/missing\n").unwrap();
    let (docs, errors) = read_all("github", &list);
    let paths: Vec<&str> = docs.iter().map(|d| meta(d, "path")).collect();
    assert_eq!(paths, vec!["Cargo.toml", "src/lib.rs"]);
    assert_eq!(meta(&docs[1], "license"), "MIT OR Apache-2.0");
    assert_eq!(meta(&docs[1], "license_source"), "Cargo.toml");
    assert_eq!(errors, vec!["missing_repository"]);

    // BigQuery-style export: one repo states its licence, one has a LICENSE record, one none.
    let jsonl = tmp.path().join("files.jsonl");
    let mit = clipboard_license();
    let lines = [
        serde_json::json!({"repo_name": "a/x", "path": "main.go", "content": "package main\n", "license": "apache-2.0"}),
        serde_json::json!({"repo_name": "b/y", "path": "y.py", "content": "print(1)\n"}),
        serde_json::json!({"repo_name": "c/z", "path": "z.c", "content": "int z;\n"}),
        serde_json::json!({"repo_name": "b/y", "path": "LICENSE", "content": mit}),
    ];
    let body: String = lines.iter().map(|l| format!("{l}\nnot json\n")).collect();
    std::fs::write(&jsonl, body).unwrap();
    let (docs, errors) = read_all("github", &jsonl);
    let got: Vec<(&str, &str)> = docs
        .iter()
        .map(|d| (meta(d, "repo"), meta(d, "license")))
        .collect();
    assert_eq!(
        got,
        vec![
            ("a/x", "Apache-2.0"),
            ("b/y", "MIT"),
            ("c/z", ""),
            ("b/y", "MIT")
        ]
    );
    assert_eq!(errors.len(), 4);
    assert!(errors.iter().all(|e| e == "bad_json"));
}

#[test]
fn truncated_archive_is_a_record_error_not_a_panic() {
    let tmp = tempfile::tempdir().unwrap();
    let bytes = std::fs::read(samples().join("clipboard.js.tar.gz")).unwrap();
    let cut = tmp.path().join("clipboard.js.tar.gz");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    let (docs, errors) = read_all("github", &cut);
    // The licence pass cannot finish, so no file of the repository is emitted.
    assert!(docs.is_empty());
    assert_eq!(errors, vec!["bad_archive"]);
    let junk = tmp.path().join("junk.zip");
    std::fs::write(&junk, b"PK\x03\x04 not really a zip").unwrap();
    assert_eq!(read_all("github", &junk).1, vec!["bad_archive"]);
}
