//! Books pipeline on the real Gutenberg samples: encodings, header/footer removal and
//! book-level MinHash near-duplicate clusters.

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
