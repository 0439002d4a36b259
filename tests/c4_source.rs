//! The C4 source: C4-shaped JSON(.gz) records, the bad-words filter and the three-sentence-span
//! dedup, on the in-repo samples and through the real runner.

mod common;

use std::io::Write;
use std::path::Path;

use datamill::dedup::span::SpanDeduper;
use datamill::filter::badwords::BadWordsFilter;
use datamill::run::{run_config, PipelineConfig, RunOptions};
use datamill::sources::build_reader;
use datamill::{DocPos, Document, Stage, Verdict};

const BADWORDS: &str = "models/badwords/en.txt";

fn opts(threads: usize) -> RunOptions {
    RunOptions {
        inputs: vec![],
        output: None,
        rank: 0,
        world_size: 1,
        threads,
        force: false,
        progress: false,
        step: Default::default(),
        partitions: 8,
    }
}

fn run_c4(out: &Path, threads: usize) -> datamill::run::RunSummary {
    assert!(
        Path::new(BADWORDS).exists(),
        "{BADWORDS} is missing: `make setup` fetches it"
    );
    let mut config = PipelineConfig::load(Path::new("pipelines/c4.toml")).unwrap();
    config.output.dir = out.to_path_buf();
    // The bad-words and span-dedup stages on their own (LID and c4_quality have their own
    // tests), so that the counts below can be checked against C4's own regex.
    config.stages.retain(|t| {
        let kind = t.get("type").and_then(|v| v.as_str());
        matches!(kind, Some("c4_badwords" | "c4_span_dedup"))
    });
    assert_eq!(config.stages.len(), 2);
    run_config(&config, &opts(threads)).unwrap()
}

fn drops(summary: &datamill::run::RunSummary, stage: &str, reason: &str) -> u64 {
    summary
        .stats
        .stages
        .iter()
        .find(|s| s.name == stage)
        .and_then(|s| s.drops.get(reason).copied())
        .unwrap_or(0)
}

fn read_docs(path: &Path) -> Vec<Document> {
    datamill::doc::JsonlReader::open(path)
        .unwrap()
        .map(|(_, r)| r.unwrap())
        .collect()
}

#[test]
fn c4_pipeline_on_samples_is_deterministic_and_drops_for_real() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    let one = run_c4(a.path(), 1);
    let two = run_c4(b.path(), 2);
    // 42 pages of the CC file and 1 of the CCNet head file hold an entry of the list, counted
    // independently with C4's own pattern `(?:\W|^)(w1|w2|...)(?:\W|$)` over the lowercased text.
    assert_eq!(drops(&one, "c4_badwords", "c4_badwords"), 43);
    // Two pages repeat an earlier page's sentences entirely.
    assert_eq!(drops(&one, "c4_span_dedup", "c4_duplicate_spans"), 2);
    for shard in ["00000.jsonl.zst", "00001.jsonl.zst"] {
        let x = std::fs::read(a.path().join(shard)).unwrap();
        let y = std::fs::read(b.path().join(shard)).unwrap();
        assert_eq!(x, y, "{shard} differs between 1 and 2 threads");
    }
    assert_eq!(drops(&two, "c4_badwords", "c4_badwords"), 43);
    // Kept pages that lost repeated spans (site boilerplate shared across pages).
    let kept = read_docs(&a.path().join("00000.jsonl.zst"));
    let trimmed: Vec<&Document> = kept
        .iter()
        .filter(|d| d.metadata.contains_key("c4_sentences_removed"))
        .collect();
    assert!(trimmed.len() > 50, "{} pages trimmed", trimmed.len());
    // The first page of a repeated text is kept whole.
    let first = kept
        .iter()
        .find(|d| d.text.starts_with("On this page you will find all of ACB"))
        .expect("first occurrence kept");
    assert!(!first.metadata.contains_key("c4_sentences_removed"));
}

fn scan(stage: &mut SpanDeduper, shards: &[&[&str]]) {
    let mut scans = Vec::new();
    for (s, docs) in shards.iter().enumerate() {
        let mut sc = stage.scanner().unwrap();
        for (i, t) in docs.iter().enumerate() {
            let pos = DocPos {
                shard: s as u32,
                index: i as u64,
            };
            sc.observe(&Document::new("", *t, ""), pos);
        }
        scans.push((s as u32, sc.finish()));
    }
    stage.absorb(scans).unwrap();
}

#[test]
fn span_dedup_removes_only_repeated_three_sentence_spans() {
    let first = "The council met on Monday. It approved the budget. Roads will be repaired. \
                 Parks get new benches.";
    let later =
        "Unrelated opening line here. The council met on Monday.  It approved the BUDGET.\n\
                 Roads will be repaired. A closing remark follows.";
    let two_shared = "The council met on Monday. It approved the budget. Something else happened.";
    let mut st = SpanDeduper::from_params(&toml::Table::new()).unwrap();
    scan(&mut st, &[&[first], &[later, two_shared, first]]);
    let p = |shard, index| DocPos { shard, index };
    let mut d0 = Document::new("0", first, "");
    assert_eq!(st.process(&mut d0, p(0, 0)), Verdict::Keep);
    assert_eq!(d0.text, first);
    let mut d1 = Document::new("1", later, "");
    assert_eq!(st.process(&mut d1, p(1, 0)), Verdict::Keep);
    assert_eq!(
        d1.text,
        "Unrelated opening line here.\nA closing remark follows."
    );
    assert_eq!(d1.metadata["c4_sentences_removed"], 3);
    // Only two sentences in common: no three-sentence span repeats.
    let mut d2 = Document::new("2", two_shared, "");
    assert_eq!(st.process(&mut d2, p(1, 1)), Verdict::Keep);
    assert_eq!(d2.text, two_shared);
    let mut d3 = Document::new("3", first, "");
    assert_eq!(
        st.process(&mut d3, p(1, 2)),
        Verdict::drop("c4_duplicate_spans")
    );
}

#[test]
fn badwords_filter_uses_the_ldnoobw_list() {
    let t: toml::Table = toml::from_str(&format!("words_file = {BADWORDS:?}")).unwrap();
    let f = BadWordsFilter::from_params(&t).unwrap();
    let first_entry = std::fs::read_to_string(BADWORDS)
        .unwrap()
        .lines()
        .next()
        .unwrap()
        .to_string();
    let pos = DocPos { shard: 0, index: 0 };
    let mut bad = Document::new("b", format!("Some text. Then {first_entry}, again."), "");
    assert_eq!(f.process(&mut bad, pos), Verdict::drop("c4_badwords"));
    let mut inside = Document::new("i", format!("Some x{first_entry}x text."), "");
    assert_eq!(f.process(&mut inside, pos), Verdict::Keep);
    let missing: toml::Table = toml::from_str("words_file = \"models/none.txt\"").unwrap();
    let e = format!("{:#}", BadWordsFilter::from_params(&missing).err().unwrap());
    assert!(e.contains("models/none.txt"), "{e}");
}

#[test]
fn c4_json_gz_records_are_read_with_url_and_timestamp() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c4-train.00000-of-01024.json.gz");
    let mut gz = flate2::write::GzEncoder::new(
        std::fs::File::create(&path).unwrap(),
        flate2::Compression::default(),
    );
    writeln!(
        gz,
        r#"{{"text":"Beginners BBQ Class Taking Place in Missoula!\nDo you want to get better at making delicious BBQ?","timestamp":"2019-04-25T12:57:54Z","url":"https://klyq.com/beginners-bbq-class-taking-place-in-missoula/"}}"#
    )
    .unwrap();
    writeln!(gz, "{{not json").unwrap();
    writeln!(
        gz,
        r#"{{"text":"Second.","timestamp":"2019-04-21T10:07:13Z","url":"https://example.org/"}}"#
    )
    .unwrap();
    gz.finish().unwrap();
    let reader = build_reader("jsonl", &toml::Table::new()).unwrap();
    let recs: Vec<_> = reader.read(&path, "c4").unwrap().collect();
    assert_eq!(recs.len(), 3);
    let d = recs[0].as_ref().unwrap();
    assert_eq!(d.source, "c4");
    assert!(d.text.starts_with("Beginners BBQ"));
    assert_eq!(d.meta_str("timestamp"), Some("2019-04-25T12:57:54Z"));
    assert_eq!(
        d.meta_str("url"),
        Some("https://klyq.com/beginners-bbq-class-taking-place-in-missoula/")
    );
    assert_eq!(recs[1].as_ref().unwrap_err().reason, "bad_json");
    assert_eq!(
        recs[2].as_ref().unwrap().meta_str("url"),
        Some("https://example.org/")
    );
}

#[test]
fn span_dedup_distributed_equals_one_process() {
    use common::{repo, run, snapshot, write_pipeline, C4_SAMPLE};
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("in");
    std::fs::create_dir_all(&input).unwrap();
    // Overlapping slices of the real sample, so repeated spans cross files and ranks.
    let docs = datamill::doc::read_shard(&repo(C4_SAMPLE)).unwrap();
    for i in 0..4 {
        let body: String = docs[i * 120..i * 120 + 240]
            .iter()
            .map(|d| serde_json::to_string(d).unwrap() + "\n")
            .collect();
        std::fs::write(input.join(format!("f{i}.jsonl")), body).unwrap();
    }
    let stages = "[[stages]]\ntype = \"c4_span_dedup\"\n";
    let single = tmp.path().join("single");
    let pipe = write_pipeline(tmp.path(), &input, &single, stages);
    assert!(run(&["run", pipe.to_str().unwrap()]).status.success());
    let expected = snapshot(&single);
    let dist = tmp.path().join("dist");
    let pipe = write_pipeline(tmp.path(), &input, &dist, stages);
    let p = pipe.to_str().unwrap();
    let ok = |args: &[&str]| {
        let o = run(args);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    };
    for rank in ["0", "1"] {
        ok(&[
            "run",
            p,
            "--step",
            "segment-0",
            "--rank",
            rank,
            "--world-size",
            "2",
            "--dedup-partitions",
            "2",
        ]);
    }
    for part in ["0", "1"] {
        ok(&[
            "run",
            p,
            "--step",
            "reduce-1",
            "--rank",
            part,
            "--world-size",
            "2",
            "--dedup-partitions",
            "2",
        ]);
    }
    for rank in ["0", "1"] {
        ok(&[
            "run",
            p,
            "--step",
            "segment-1",
            "--rank",
            rank,
            "--world-size",
            "2",
            "--dedup-partitions",
            "2",
        ]);
    }
    let got = snapshot(&dist);
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        expected.keys().collect::<Vec<_>>()
    );
    for (k, v) in &expected {
        assert!(got[k] == *v, "{k} differs");
    }
    // The overlaps really were deduplicated: later files lose whole repeated pages.
    let stats: serde_json::Value =
        serde_json::from_slice(&std::fs::read(single.join("00001.stats.json")).unwrap()).unwrap();
    let drops = &stats["stages"][1]["drops"]["c4_duplicate_spans"];
    assert!(drops.as_u64().unwrap_or(0) > 50, "{stats}");
}
