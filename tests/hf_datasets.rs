//! Every source's output of the samples run loads into Hugging Face `datasets` (4.x) with the
//! `features.json` the run writes, in one pass and streaming: one type per metadata key, so a
//! key that is missing or null in one shard does not break the next.

mod common;

use std::process::Command;

use common::*;

const SOURCES: &[&str] = &[
    "commoncrawl",
    "c4",
    "github",
    "wikipedia",
    "books",
    "arxiv",
    "stackexchange",
];

#[test]
fn every_source_of_the_samples_run_loads_with_its_features() {
    let dir = tempfile::tempdir().unwrap();
    let mut runs = Vec::new();
    for source in SOURCES {
        let out = dir.path().join(source);
        let pipeline = repo(&format!("pipelines/{source}.toml"));
        let o = Command::new(BIN)
            .current_dir(repo("."))
            .args(["run", "--threads", "2", "--output"])
            .arg(&out)
            .arg(&pipeline)
            .env("RUST_LOG", "warn")
            .output()
            .unwrap();
        assert_ok(&o);
        let features: serde_json::Value =
            serde_json::from_slice(&std::fs::read(out.join("features.json")).unwrap()).unwrap();
        assert_eq!(features["text"]["dtype"], "string", "{source}");
        runs.push(out);
    }
    let o = Command::new(repo(".venv/bin/python"))
        .arg(repo("tests/load_hf.py"))
        .args(&runs)
        .env("HF_DATASETS_OFFLINE", "1")
        .env("HF_HOME", dir.path().join("hf"))
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "datasets failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), SOURCES.len());
    for (line, out) in lines.iter().zip(&runs) {
        let stats = datamill::stats::MergedStats::from_dir(out).unwrap();
        let kept = stats.stages.last().unwrap().docs_out;
        assert!(kept > 0, "{}: the samples run kept nothing", out.display());
        assert_eq!(line["rows"].as_u64(), Some(kept), "{line}");
        assert_eq!(line["streamed"].as_u64(), Some(kept), "{line}");
        // Every metadata key the shards carry is a declared feature.
        let declared: Vec<String> = serde_json::from_value(line["metadata_keys"].clone()).unwrap();
        for shard in std::fs::read_dir(out).unwrap() {
            let p = shard.unwrap().path();
            if !p.to_string_lossy().ends_with(".jsonl.zst") {
                continue;
            }
            for (_, doc) in datamill::doc::JsonlReader::open(&p).unwrap() {
                for k in doc.unwrap().metadata.keys() {
                    assert!(declared.contains(k), "{}: {k} not in features", p.display());
                }
            }
        }
    }
}
