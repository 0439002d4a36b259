//! The arXiv reader and `latex_clean` on the real sample papers.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use datamill::clean::arxiv::LatexClean;
use datamill::sources::build_reader;
use datamill::{DocPos, Document, Stage, Verdict};

fn sample(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("samples/arxiv")
        .join(name)
}

fn read(path: &Path) -> Vec<Result<Document, String>> {
    let reader = build_reader("arxiv", &toml::Table::new()).unwrap();
    reader
        .read(path, "arxiv")
        .unwrap()
        .map(|r| r.map_err(|e| e.reason))
        .collect()
}

fn cleaned(path: &Path) -> Document {
    let mut docs = read(path);
    assert_eq!(docs.len(), 1);
    let mut doc = docs.remove(0).unwrap();
    let stage = LatexClean::from_params(&toml::Table::new()).unwrap();
    assert_eq!(
        stage.process(&mut doc, DocPos { shard: 0, index: 0 }),
        Verdict::Keep
    );
    doc
}

/// Shared fraction of words (multiset overlap over the larger count).
fn word_overlap(a: &str, b: &str) -> f64 {
    fn count(t: &str) -> HashMap<&str, i64> {
        let mut m: HashMap<&str, i64> = HashMap::new();
        for w in t.split_whitespace() {
            *m.entry(w).or_default() += 1;
        }
        m
    }
    let (ca, cb) = (count(a), count(b));
    let common: i64 = ca
        .iter()
        .map(|(w, n)| (*n).min(*cb.get(w).unwrap_or(&0)))
        .sum();
    let total = ca.values().sum::<i64>().max(cb.values().sum::<i64>());
    common as f64 / total as f64
}

fn assert_clean(doc: &Document) {
    let t = &doc.text;
    assert!(
        t.starts_with("\\section") || t.starts_with("\\chapter"),
        "{}",
        &t[..80]
    );
    for line in t.lines() {
        assert!(!line.trim_start().starts_with('%'), "comment line: {line}");
    }
    for banned in [
        "\\newcommand",
        "\\renewcommand",
        "\\DeclareMathOperator",
        "\\documentclass",
        "\\bibitem",
        "\\bibliography{",
        "\\printbibliography",
        "\\begin{document}",
        "\\end{document}",
    ] {
        assert!(!t.contains(banned), "{banned} left in {}", doc.id);
    }
}

#[test]
fn multi_file_and_flattened_edo_paper_give_near_identical_text() {
    let tar = cleaned(&sample("edo-paper.tar.gz"));
    let flat = cleaned(&sample("edo-paper-arxiv-main.tex.gz"));
    assert_clean(&tar);
    assert_clean(&flat);
    assert_eq!(tar.meta_str("main_file"), Some("edo-paper/main.tex"));
    let files = tar.metadata["files"].as_array().unwrap();
    assert!(files.len() > 10, "{files:?}");
    assert!(files.iter().any(|f| f == "edo-paper/sections/intro.tex"));
    assert_eq!(tar.meta_str("arxiv_id"), Some("edo-paper"));
    assert_eq!(flat.meta_str("arxiv_id"), Some("edo-paper-arxiv-main"));
    // The two are different revisions of one paper: most words agree; another paper does not.
    let same = word_overlap(&tar.text, &flat.text);
    assert!(same > 0.8, "overlap {same}");
    let scipy = cleaned(&sample("scipy-1.0-paper.tar.gz"));
    let other = word_overlap(&tar.text, &scipy.text);
    assert!(other < 0.5, "overlap with another paper {other}");
    // Both start at the introduction; the appendix (after the bibliography) is kept.
    assert!(tar.text.starts_with("\\section{Introduction}"));
    assert!(flat.text.contains("\\subsection{Lloyd's algorithm}"));
    assert!(tar.text.contains("\\subsection{Lloyd's algorithm}") || tar.text.contains("Lloyd"));
}

#[test]
fn scipy_paper_macros_with_arguments_are_expanded() {
    let doc = cleaned(&sample("scipy-1.0-paper.tar.gz"));
    assert_clean(&doc);
    let t = &doc.text;
    assert!(t.starts_with("\\section*{Introduction}"));
    // \newcommand{\code}[1]{\texttt{#1}} and friends are gone, their bodies in place.
    for m in ["\\code{", "\\fixme{", "\\inlinecite{", "\\cmark", "\\xmark"] {
        assert!(!t.contains(m), "{m} not expanded");
    }
    assert!(t.contains("\\texttt{"));
    assert!(doc.metadata["macro_expansions"].as_u64().unwrap() > 10);
    // Inputs are inlined and the sections after \bibliography stay.
    assert!(t.contains("\\section*{Acknowledgements}"));
    let files = doc.metadata["files"].as_array().unwrap();
    assert!(files
        .iter()
        .any(|f| f == "scipy-1.0-paper/scipy-1.0/scipy-optimize.tex"));
}

/// Builds a bulk `.tar` holding two gzipped papers (one tar, one single `.tex`) and a PDF.
#[test]
fn bulk_tar_yields_one_document_per_paper() {
    let tmp = tempfile::tempdir().unwrap();
    let single = "\\documentclass{article}\n\\newcommand{\\x}[1]{<#1>}\n\\begin{document}\n\\section{A}\nText \\x{y}.\n\\end{document}\n";
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(single.as_bytes()).unwrap();
    let single_gz = gz.finish().unwrap();
    let edo = std::fs::read(sample("edo-paper.tar.gz")).unwrap();
    let bulk = tmp.path().join("arXiv_src_2101_001.tar");
    let mut b = tar::Builder::new(std::fs::File::create(&bulk).unwrap());
    for (name, data) in [
        ("2101/2101.00001.gz", &single_gz[..]),
        ("2101/2101.00002.gz", &edo[..]),
        ("2101/2101.00003.pdf", b"%PDF-1.4"),
    ] {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        b.append_data(&mut h, name, data).unwrap();
    }
    b.into_inner().unwrap().flush().unwrap();
    let docs: Vec<Document> = read(&bulk).into_iter().map(Result::unwrap).collect();
    let ids: Vec<&str> = docs
        .iter()
        .map(|d| d.meta_str("arxiv_id").unwrap())
        .collect();
    assert_eq!(ids, vec!["2101.00001", "2101.00002"]);
    assert_eq!(
        docs[0].meta_str("url"),
        Some("https://arxiv.org/abs/2101.00001")
    );
    let mut first = docs[0].clone();
    LatexClean::from_params(&toml::Table::new())
        .unwrap()
        .process(&mut first, DocPos { shard: 0, index: 0 });
    assert_eq!(first.text, "\\section{A}\nText <y>.");
}

#[test]
fn paper_without_main_file_or_over_the_size_cap_is_set_aside() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("x.tar.gz");
    let mut b = tar::Builder::new(flate2::write::GzEncoder::new(
        std::fs::File::create(&path).unwrap(),
        flate2::Compression::fast(),
    ));
    for (name, data) in [("a.tex", "no document here"), ("b.tex", "nor here")] {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        b.append_data(&mut h, name, data.as_bytes()).unwrap();
    }
    b.into_inner().unwrap().finish().unwrap();
    assert_eq!(read(&path), vec![Err("no_main_file".to_string())]);

    // A highly compressible bomb stops at the per-paper cap.
    let bomb = tmp.path().join("bomb.tar.gz");
    let mut b = tar::Builder::new(flate2::write::GzEncoder::new(
        std::fs::File::create(&bomb).unwrap(),
        flate2::Compression::best(),
    ));
    let zeros = vec![b' '; 4 << 20];
    for i in 0..4 {
        let mut h = tar::Header::new_gnu();
        h.set_size(zeros.len() as u64);
        h.set_mode(0o644);
        b.append_data(&mut h, format!("f{i}.tex"), &zeros[..])
            .unwrap();
    }
    b.into_inner().unwrap().finish().unwrap();
    let mut opts = toml::Table::new();
    opts.insert("max_paper_bytes".into(), toml::Value::Integer(8 << 20));
    let reader = build_reader("arxiv", &opts).unwrap();
    let got: Vec<_> = reader
        .read(&bomb, "arxiv")
        .unwrap()
        .map(|r| r.map(|_| ()).map_err(|e| e.reason))
        .collect();
    assert_eq!(got, vec![Err("archive_too_large".to_string())]);
}

#[test]
fn truncated_paper_is_a_record_error_not_a_panic() {
    let tmp = tempfile::tempdir().unwrap();
    let bytes = std::fs::read(sample("scipy-1.0-paper.tar.gz")).unwrap();
    let cut = tmp.path().join("2101.00009.tar.gz");
    std::fs::write(&cut, &bytes[..bytes.len() / 3]).unwrap();
    let got = read(&cut);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].as_ref().unwrap_err(), "bad_archive");
}

#[test]
fn arxiv_pipeline_tags_language_and_keeps_every_sample_paper() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(root.join("pipelines/arxiv.toml")).unwrap();
    let mut config = datamill::run::config::PipelineConfig::parse(&text).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    config.input.paths = vec![root.join("samples/arxiv").display().to_string()];
    config.output.dir = tmp.path().join("out");
    // The pipeline names the model relative to the repository root.
    for stage in &mut config.stages {
        if stage.get("type").and_then(|t| t.as_str()) == Some("langid") {
            let model = root.join("models/lid.176.ftz").display().to_string();
            stage.insert("model".into(), toml::Value::String(model));
        }
    }
    let summary = datamill::run::run_config(
        &config,
        &datamill::run::RunOptions {
            world_size: 1,
            threads: 2,
            ..Default::default()
        },
    )
    .unwrap();
    assert!(summary.failures.is_empty(), "{:?}", summary.failures);
    let mut ids = Vec::new();
    for i in 0..3 {
        let shard = tmp.path().join(format!("out/{i:05}.jsonl.zst"));
        for d in datamill::doc::read_shard(&shard).unwrap() {
            assert_eq!(d.meta_str("language"), Some("en"), "{}", d.id);
            ids.push(d.id);
        }
    }
    ids.sort();
    assert_eq!(
        ids,
        ["edo-paper", "edo-paper-arxiv-main", "scipy-1.0-paper"]
    );
}
