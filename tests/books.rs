//! Books pipeline on the real Gutenberg samples: encodings, header/footer removal and
//! book-level MinHash near-duplicate clusters; the same books from a Books3-style tar (made here
//! with GNU tar) and broken tars.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use datamill::doc::read_shard;
use datamill::run::{run_config, PipelineConfig, RunOptions};
use datamill::Document;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn run_books(
    inputs: Vec<String>,
    out: &Path,
    edit: impl FnOnce(&mut PipelineConfig),
) -> datamill::run::RunSummary {
    let text = std::fs::read_to_string(root().join("pipelines/books.toml")).unwrap();
    let mut config = PipelineConfig::parse(&text).unwrap();
    edit(&mut config);
    config.input.paths = inputs;
    config.output.dir = out.to_path_buf();
    let opts = RunOptions {
        world_size: 1,
        threads: 2,
        ..Default::default()
    };
    let summary = run_config(&config, &opts).unwrap();
    assert!(summary.failures.is_empty(), "{:?}", summary.failures);
    summary
}

fn all_docs(dir: &Path) -> (Vec<Document>, Vec<Document>) {
    let mut kept = Vec::new();
    let mut rejected = Vec::new();
    for (sub, into) in [
        (dir.to_path_buf(), &mut kept),
        (dir.join("rejected"), &mut rejected),
    ] {
        let Ok(entries) = std::fs::read_dir(&sub) else {
            continue;
        };
        let mut files: Vec<_> = entries
            .map(|e| e.unwrap().path())
            .filter(|p| p.to_string_lossy().ends_with(".jsonl.zst"))
            .collect();
        files.sort();
        for f in files {
            into.extend(read_shard(&f).unwrap());
        }
    }
    (kept, rejected)
}

#[test]
fn gutenberg_editions_form_clusters_and_different_books_never_merge() {
    let out = tempfile::tempdir().unwrap();
    let input = root().join("samples/books").to_string_lossy().into_owned();
    let summary = run_books(vec![input], out.path(), |_| {});
    let (kept, rejected) = all_docs(out.path());
    assert_eq!(kept.len() + rejected.len(), 5);

    // Cluster id (the kept book's id) of every book.
    let mut cluster: BTreeMap<String, Option<String>> = BTreeMap::new();
    for d in kept.iter().chain(&rejected) {
        cluster.insert(
            d.id.clone(),
            d.meta_str("minhash_cluster").map(str::to_string),
        );
    }
    let pp = Some("Pride-and-Prejudice_1342/1342.txt".to_string());
    let oz = Some("The-Wonderful-Wizard-of-Oz_55/55.txt".to_string());
    assert_eq!(cluster["Pride-and-Prejudice_1342/1342.txt"], pp);
    assert_eq!(cluster["Pride-and-Prejudice_1342/pandp12.txt"], pp);
    assert_eq!(cluster["The-Wonderful-Wizard-of-Oz_55/55.txt"], oz);
    assert_eq!(cluster["The-Wonderful-Wizard-of-Oz_55/wizoz10.txt"], oz);
    assert_eq!(cluster["Italienische-Reise-Band-1_2404/2404-8.txt"], None);

    let mut rejected_ids: Vec<&str> = rejected.iter().map(|d| d.id.as_str()).collect();
    rejected_ids.sort();
    assert_eq!(
        rejected_ids,
        [
            "Pride-and-Prejudice_1342/pandp12.txt",
            "The-Wonderful-Wizard-of-Oz_55/wizoz10.txt"
        ]
    );
    for d in &rejected {
        assert_eq!(d.meta_str("reject_reason"), Some("near_duplicate"));
    }
    let dedup = summary
        .stats
        .stages
        .iter()
        .find(|s| s.name == "minhash_dedup")
        .unwrap();
    assert_eq!(dedup.drops.get("near_duplicate"), Some(&2));

    // Headers and licences are gone; metadata came from the headers.
    for d in &kept {
        assert!(!d.text.contains("Project Gutenberg"), "{}", d.id);
        assert!(!d.text.contains("*** START OF"), "{}", d.id);
        assert!(!d.text.contains("SMALL PRINT"), "{}", d.id);
        assert!(!d.text.contains('\r'), "{}", d.id);
    }
    let goethe = kept.iter().find(|d| d.id.contains("2404")).unwrap();
    assert_eq!(goethe.meta_str("encoding"), Some("windows-1252"));
    assert_eq!(goethe.meta_str("language"), Some("de"));
    assert_eq!(goethe.meta_str("author"), Some("Johann Wolfgang Goethe"));
    assert!(goethe.text.contains("Überhaupt, wenn jeder Mensch"));
    assert!(goethe.text.ends_with("gleichfalls freundlich begegnen."));
    let pride = kept.iter().find(|d| d.id.contains("1342.txt")).unwrap();
    assert_eq!(pride.meta_str("title"), Some("Pride and Prejudice"));
    assert_eq!(pride.meta_str("author"), Some("Jane Austen"));
    assert!(pride.text.starts_with("PRIDE AND PREJUDICE"));
    assert!(pride.text.ends_with("had been the means of uniting them."));
}

#[test]
fn bad_books_are_counted_and_the_rest_processed() {
    let dir = tempfile::tempdir().unwrap();
    let books = dir.path().join("in");
    std::fs::create_dir_all(&books).unwrap();
    let oz =
        std::fs::read(root().join("samples/books/The-Wonderful-Wizard-of-Oz_55/55.txt")).unwrap();
    std::fs::write(books.join("a.txt"), &oz).unwrap();
    std::fs::write(
        books.join("b-binary.txt"),
        b"PK\x03\x04\x00\x14\x00binary zip",
    )
    .unwrap();
    // Same book again, re-encoded as UTF-16 with a byte-order mark and gzipped.
    let text = String::from_utf8(oz).unwrap();
    let mut utf16 = vec![0xFF, 0xFE];
    for u in text.encode_utf16() {
        utf16.extend_from_slice(&u.to_le_bytes());
    }
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gz, &utf16).unwrap();
    std::fs::write(books.join("c-utf16.txt.gz"), gz.finish().unwrap()).unwrap();
    // A Books3-style JSONL with 90% of the book (contained in the full one).
    let part = &text[..text.floor_char_boundary(text.len() * 9 / 10)];
    let line = serde_json::json!({"text": part, "meta": {"short_book_title": "Oz, most of it"}});
    std::fs::write(books.join("d-books3.jsonl"), format!("{line}\nnot json\n")).unwrap();

    let out = dir.path().join("out");
    let spill = dir.path().join("spill");
    std::fs::create_dir_all(&spill).unwrap();
    let summary = run_books(vec![books.to_string_lossy().into_owned()], &out, |c| {
        // 1 MB of band records per thread: many sorted runs to merge.
        let minhash = &mut c.stages[1];
        minhash.insert("memory_mb".into(), toml::Value::Integer(1));
        minhash.insert(
            "spill_dir".into(),
            toml::Value::String(spill.to_string_lossy().into_owned()),
        );
    });
    let read = &summary.stats.stages[0];
    assert_eq!(read.drops.get("unknown_encoding"), Some(&1));
    assert_eq!(read.drops.get("bad_json"), Some(&1));
    let (kept, rejected) = all_docs(&out);
    assert_eq!(
        kept.len(),
        1,
        "{:?}",
        kept.iter().map(|d| &d.id).collect::<Vec<_>>()
    );
    // Ids are paths relative to the input root (the `in` folder).
    assert_eq!(kept[0].id, "a.txt");
    assert_eq!(rejected.len(), 2);
    assert!(rejected
        .iter()
        .all(|d| d.meta_str("near_duplicate_of") == Some("a.txt")));
    let q = std::fs::read_to_string(out.join("quarantine/00001.jsonl")).unwrap();
    assert!(
        q.contains("\"offset\":4") && q.contains("unknown_encoding"),
        "{q}"
    );
    assert_eq!(
        std::fs::read_dir(&spill).unwrap().count(),
        0,
        "spill folder removed"
    );
}

/// `(id, text, encoding)` of every book read from `path` by the `books` reader.
fn books_of(path: &Path) -> Vec<(String, String, String)> {
    datamill::sources::build_reader("books", &toml::Table::new())
        .unwrap()
        .read(path, "books")
        .unwrap()
        .map(|r| {
            let d = r.unwrap();
            let enc = d.meta_str("encoding").unwrap().to_string();
            (d.id, d.text, enc)
        })
        .collect()
}

#[test]
fn a_tar_of_the_books_gives_the_books_of_their_files() {
    let samples = root().join("samples/books");
    let mut expected = Vec::new();
    for folder in std::fs::read_dir(&samples).unwrap() {
        for file in std::fs::read_dir(folder.unwrap().path()).unwrap() {
            expected.extend(books_of(&file.unwrap().path()));
        }
    }
    expected.sort();
    assert_eq!(expected.len(), 5);
    let dir = tempfile::tempdir().unwrap();
    for (name, flags) in [("books.tar.gz", "-czf"), ("books.tar", "-cf")] {
        let archive = dir.path().join(name);
        let status = std::process::Command::new("tar")
            .arg("-C")
            .arg(&samples)
            .arg(flags)
            .arg(&archive)
            .arg(".")
            .status()
            .unwrap();
        assert!(status.success());
        let mut got = books_of(&archive);
        got.sort();
        assert!(
            got == expected,
            "{name}: {:?}",
            got.iter().map(|b| &b.0).collect::<Vec<_>>()
        );
    }
}

#[test]
fn a_tar_with_a_huge_declared_member_or_an_escaping_path_loses_nothing_else() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    std::fs::create_dir_all(&input).unwrap();
    let oz =
        std::fs::read(root().join("samples/books/The-Wonderful-Wizard-of-Oz_55/55.txt")).unwrap();
    let pride =
        std::fs::read(root().join("samples/books/Pride-and-Prejudice_1342/1342.txt")).unwrap();
    let mut tar = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    header.set_size(oz.len() as u64);
    header.set_mode(0o644);
    tar.append_data(&mut header, "books3/oz.txt", &oz[..])
        .unwrap();
    // A member named to climb out of any extraction folder.
    let mut escape = tar::Header::new_gnu();
    escape.as_old_mut().name[..13].copy_from_slice(b"../escape.txt");
    escape.set_size(5);
    escape.set_mode(0o644);
    escape.set_cksum();
    tar.append(&escape, &b"hello"[..]).unwrap();
    // The members so far, without the end-of-archive blocks `into_inner` would add.
    let mut bytes = tar.get_ref().clone();
    // A header declaring a 3 GB member, followed by only part of a book.
    let mut huge = tar::Header::new_gnu();
    huge.set_path("books3/huge.txt").unwrap();
    huge.set_size(3 << 30);
    huge.set_mode(0o644);
    huge.set_cksum();
    bytes.extend_from_slice(huge.as_bytes());
    bytes.extend_from_slice(&pride[..64 << 10]);
    std::fs::write(input.join("books3.tar"), &bytes).unwrap();
    std::fs::write(input.join("pride.txt"), &pride).unwrap();

    let out = dir.path().join("out");
    let summary = run_books(vec![input.to_string_lossy().into_owned()], &out, |c| {
        c.stages.truncate(1);
    });
    let read = &summary.stats.stages[0];
    assert_eq!(read.docs_out, 2);
    assert_eq!(read.drops.get("unsafe_path"), Some(&1), "{:?}", read.drops);
    assert_eq!(
        read.drops.get("book_too_large"),
        Some(&1),
        "{:?}",
        read.drops
    );
    assert_eq!(read.drops.get("bad_archive"), Some(&1), "{:?}", read.drops);
    let (kept, _) = all_docs(&out);
    let ids: Vec<&str> = kept.iter().map(|d| d.id.as_str()).collect();
    assert_eq!(ids, ["books3/oz.txt", "pride.txt"]);
    let q = std::fs::read_to_string(out.join("quarantine/00000.jsonl")).unwrap();
    let lines: Vec<serde_json::Value> = q
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3, "{q}");
    assert!(lines
        .iter()
        .all(|l| l["file"].as_str().unwrap().ends_with("books3.tar")));
    assert!(lines[0]["message"]
        .as_str()
        .unwrap()
        .contains("../escape.txt"));
    assert_eq!(lines[1]["reason"], "book_too_large");
    assert!(lines[1]["message"]
        .as_str()
        .unwrap()
        .contains("books3/huge.txt"));
    assert_eq!(lines[2]["reason"], "bad_archive");
    assert!(lines[2]["message"].as_str().unwrap().contains("books3.tar"));
}
