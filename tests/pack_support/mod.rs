//! Helpers shared by the packing, planning and report tests: the venv's Python, a small
//! SentencePiece model trained by the reference library, and real `datamill run` outputs.
#![allow(dead_code)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use datamill::run::{run_config, PipelineConfig, RunOptions};

/// The crate root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `.venv/bin/python` (made by `make setup`), or a panic saying how to make it.
pub fn venv_python() -> PathBuf {
    let py = root().join(".venv/bin/python");
    assert!(
        py.exists(),
        "{} is missing: run `make setup` (creates the venv with sentencepiece==0.2.3 and numpy)",
        py.display()
    );
    py
}

/// A SentencePiece BPE model (LLaMA settings, vocabulary `vocab`) trained by the reference
/// library on two public-domain books from samples/; cached in target/test-models/.
pub fn test_model(vocab: u32) -> PathBuf {
    let cache = root().join("target/test-models");
    let model = cache.join(format!("books-bpe-{vocab}.model"));
    if model.exists() {
        return model;
    }
    std::fs::create_dir_all(&cache).unwrap();
    let work = tempfile::tempdir_in(&cache).unwrap();
    let text = work.path().join("train.txt");
    let mut f = std::fs::File::create(&text).unwrap();
    for book in [
        "samples/books/Pride-and-Prejudice_1342/1342.txt",
        "samples/books/The-Wonderful-Wizard-of-Oz_55/55.txt",
    ] {
        f.write_all(&std::fs::read(root().join(book)).unwrap())
            .unwrap();
    }
    drop(f);
    let prefix = work.path().join("m");
    let status = Command::new(venv_python())
        .arg(root().join("scripts/train_tokenizer.py"))
        .arg(&text)
        .arg(&prefix)
        .arg(vocab.to_string())
        .arg("1.0")
        .status()
        .unwrap();
    assert!(status.success(), "training the test tokenizer failed");
    // Rename is atomic: concurrent tests either see no model or a whole one.
    std::fs::rename(prefix.with_extension("model"), &model).unwrap();
    model
}

/// Runs a jsonl pipeline (with exact dedup) of `source` over `inputs` into `out`.
pub fn run_source(source: &str, inputs: &[PathBuf], out: &Path) {
    let paths: Vec<String> = inputs.iter().map(|p| p.display().to_string()).collect();
    let toml = format!(
        "name = \"{source}\"\nsource = \"{source}\"\n[input]\npaths = {paths:?}\nreader = \"jsonl\"\n\
         [output]\ndir = {:?}\n[[stages]]\ntype = \"exact_dedup\"\n",
        out.display().to_string()
    );
    let config = PipelineConfig::parse(&toml).unwrap();
    let opts = RunOptions {
        world_size: 1,
        threads: 2,
        ..Default::default()
    };
    let s = run_config(&config, &opts).unwrap();
    assert!(s.failures.is_empty(), "{:?}", s.failures);
}

/// A JSONL input file with one document per text.
pub fn write_jsonl(path: &Path, texts: &[&str]) {
    let mut body = String::new();
    for t in texts {
        body.push_str(&serde_json::json!({ "text": t }).to_string());
        body.push('\n');
    }
    std::fs::write(path, body).unwrap();
}

/// Two sources of real text run through `datamill run` under `runs/`: `c4` (the two C4
/// sample files plus a file with a duplicated document) and `books` (three Gutenberg books,
/// one document each). Returns the `runs` folder.
pub fn make_runs(dir: &Path) -> PathBuf {
    let runs = dir.join("runs");
    let extra = dir.join("inputs");
    std::fs::create_dir_all(&extra).unwrap();
    let dup = extra.join("dup.jsonl");
    write_jsonl(
        &dup,
        &[
            "A repeated page about 2023 prices.",
            "A repeated page about 2023 prices.",
            "",
            "Tabs\tand new\nlines, unicode: héllo, 東京, emoji 🙂.",
        ],
    );
    run_source(
        "c4",
        &[
            root().join("samples/c4/dolma/CC-MAIN-20190717121559-20190717143559-00140.jsonl.gz"),
            root().join("samples/c4/dolma/cc_en_head-0091.jsonl"),
            dup,
        ],
        &runs.join("c4"),
    );
    let books_in = extra.join("books.jsonl");
    let texts: Vec<String> = [
        "samples/books/Pride-and-Prejudice_1342/1342.txt",
        "samples/books/The-Wonderful-Wizard-of-Oz_55/55.txt",
        "samples/books/Italienische-Reise-Band-1_2404/2404-8.txt",
    ]
    .iter()
    .map(|p| {
        let bytes = std::fs::read(root().join(p)).unwrap();
        String::from_utf8_lossy(&bytes).into_owned()
    })
    .collect();
    write_jsonl(
        &books_in,
        &texts.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    run_source("books", &[books_in], &runs.join("books"));
    runs
}

/// Every `.bin`/`.idx` byte under `dir`, by relative path (for identity checks).
pub fn dataset_bytes(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for prefix in datamill::shards::verify::find_datasets(dir).unwrap() {
        for ext in ["bin", "idx"] {
            let p = prefix.with_extension(ext);
            let rel = p.strip_prefix(dir).unwrap().display().to_string();
            out.push((rel, std::fs::read(&p).unwrap()));
        }
    }
    out
}
