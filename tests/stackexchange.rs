//! Stack Exchange reader on the real sample sites: one document per question, answers by
//! numeric score, missing parents and broken files counted, largest-site selection.

use std::path::{Path, PathBuf};

use datamill::doc::{read_shard, RecordResult};
use datamill::run::{run_config, PipelineConfig, RunOptions};
use datamill::sources::build_reader;
use datamill::Document;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(path: &Path, options: &str) -> Vec<RecordResult> {
    build_reader("stackexchange", &toml::from_str(options).unwrap())
        .unwrap()
        .read(path, "stackexchange")
        .unwrap()
        .collect()
}

fn docs(items: &[RecordResult]) -> Vec<&Document> {
    items.iter().filter_map(|r| r.as_ref().ok()).collect()
}

#[test]
fn one_document_per_question_on_every_site() {
    let out = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(root().join("pipelines/stackexchange.toml")).unwrap();
    let mut config = PipelineConfig::parse(&text).unwrap();
    config.input.paths = vec![root()
        .join("samples/stackexchange/*/Posts.xml")
        .to_string_lossy()
        .into_owned()];
    config.output.dir = out.path().to_path_buf();
    let summary = run_config(
        &config,
        &RunOptions {
            world_size: 1,
            threads: 2,
            ..Default::default()
        },
    )
    .unwrap();
    assert!(summary.failures.is_empty());
    let read_stats = &summary.stats.stages[0];
    assert!(read_stats.drops.is_empty(), "{:?}", read_stats.drops);
    // Questions per site (PostTypeId="1" rows): conlang.meta 54, datascience.meta 257,
    // french.meta 274, matheducators 397.
    for (shard, site, questions) in [
        (0, "conlang.meta", 54),
        (1, "datascience.meta", 257),
        (2, "french.meta", 274),
        (3, "matheducators", 397),
    ] {
        let docs = read_shard(&out.path().join(format!("{shard:05}.jsonl.zst"))).unwrap();
        assert_eq!(docs.len(), questions, "{site}");
        assert!(docs.iter().all(|d| d.meta_str("site") == Some(site)));
        assert!(docs.iter().all(|d| d.text.starts_with("Q: ")));
    }
}

#[test]
fn answers_sorted_by_numeric_score_then_date_on_real_posts() {
    let items = read(
        &root().join("samples/stackexchange/matheducators/Posts.xml"),
        "",
    );
    let all = docs(&items);
    assert_eq!(all.len(), 397);
    let q1 = all.iter().find(|d| d.metadata["question_id"] == 1).unwrap();
    assert_eq!(
        q1.meta_str("url"),
        Some("https://matheducators.stackexchange.com/questions/1")
    );
    assert_eq!(
        q1.meta_str("title"),
        Some("Encouraging class participation")
    );
    // Scores 26 25 21 19 10 9 9 4 4: "10" comes before "9" (numbers, not strings), and the
    // two 9s and the two 4s are in creation order (answer 30 before 161, 110 before 137).
    assert_eq!(
        q1.metadata["answer_ids"],
        serde_json::json!([3, 5, 84, 38, 81, 30, 161, 110, 137])
    );
    assert_eq!(
        q1.metadata["answer_scores"],
        serde_json::json!([26, 25, 21, 19, 10, 9, 9, 4, 4])
    );
    assert_eq!(q1.text.matches("\n\nA: ").count(), 9);
    assert!(q1
        .text
        .starts_with("Q: Encouraging class participation\n\nI teach calculus"));
    // Answer 3 (score 26) opens with the think-pair-share list, kept as numbered lines.
    let first = q1.text.find("A: The think-pair-share technique").unwrap();
    let second = q1.text.find("A: This is a small tip").unwrap();
    assert!(first < second);
    assert!(q1
        .text
        .contains("\n1. Pose a question\n2. Give students 1 minute"));
    for d in &all {
        let scores: Vec<i64> = d.metadata["answer_scores"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_i64().unwrap())
            .collect();
        assert!(scores.windows(2).all(|w| w[0] >= w[1]), "{}", d.id);
        assert!(
            !d.text.contains("<p>") && !d.text.contains("&lt;"),
            "{}",
            d.id
        );
    }
    // The 2024 pipe tag format and the ContentLicense attribute.
    let items = read(
        &root().join("samples/stackexchange/datascience.meta/Posts.xml"),
        "",
    );
    let d = docs(&items)[0].clone();
    assert!(!d.metadata["tags"].as_array().unwrap().is_empty());
    assert!(d.meta_str("license").is_some());
}

#[test]
fn missing_parents_and_a_cut_file_are_counted_and_the_rest_read() {
    let dir = tempfile::tempdir().unwrap();
    let site = dir.path().join("conlang.meta");
    std::fs::create_dir_all(&site).unwrap();
    let xml = std::fs::read_to_string(root().join("samples/stackexchange/conlang.meta/Posts.xml"))
        .unwrap();
    // Remove question 1: its 3 answers now refer to a missing parent.
    let start = xml.find("<row Id=\"1\" ").unwrap();
    let end = start + xml[start..].find("/>").unwrap() + 2;
    let orphaned = xml.matches("ParentId=\"1\" ").count();
    assert_eq!(orphaned, 3);
    let path = site.join("Posts.xml");
    std::fs::write(&path, format!("{}{}", &xml[..start], &xml[end..])).unwrap();
    let items = read(&path, "");
    assert_eq!(docs(&items).len(), 53);
    let missing: Vec<_> = items
        .iter()
        .filter_map(|r| r.as_ref().err())
        .filter(|e| e.reason == "missing_parent")
        .collect();
    assert_eq!(missing.len(), orphaned);
    let bytes = std::fs::read(&path).unwrap();
    for e in &missing {
        assert!(
            bytes[e.offset as usize..].starts_with(b"<row Id="),
            "offset {}",
            e.offset
        );
    }

    // Cut in the middle of a row: the questions before the cut, then a fatal bad_xml.
    let cut_at = xml.len() / 2;
    std::fs::write(&path, &xml.as_bytes()[..cut_at]).unwrap();
    let items = read(&path, "");
    let last = items.last().unwrap().as_ref().unwrap_err();
    assert!(last.fatal && last.reason == "bad_xml", "{last:?}");
    let before = xml[..cut_at].matches("PostTypeId=\"1\"").count();
    assert!(docs(&items).len() >= before - 1 && docs(&items).len() <= before);
}

#[test]
fn only_the_largest_sites_are_read() {
    // Posts: matheducators 2061, french.meta 781, datascience.meta 624, conlang.meta 177.
    let base = root().join("samples/stackexchange");
    let items = read(&base.join("french.meta/Posts.xml"), "largest_sites = 2");
    assert_eq!(docs(&items).len(), 274);
    let items = read(
        &base.join("datascience.meta/Posts.xml"),
        "largest_sites = 2",
    );
    assert_eq!(items.len(), 1);
    assert_eq!(items[0].as_ref().unwrap_err().reason, "site_not_selected");
    // Other files of a site folder yield nothing.
    assert!(read(&base.join("conlang.meta/LICENSE"), "").is_empty());
}
