//! The runner end to end through the `datamill` binary: resume after `kill -9`, rank sharding,
//! bad input, config errors, stats.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod common;
use common::*;

fn count_manifests(dir: &Path) -> usize {
    let mut n = 0;
    for sub in [
        dir.to_path_buf(),
        dir.join(".work/s0"),
        dir.join(".work/s1"),
    ] {
        if let Ok(rd) = std::fs::read_dir(sub) {
            n += rd
                .filter_map(Result::ok)
                .filter(|e| e.file_name().to_string_lossy().ends_with(".manifest.json"))
                .count();
        }
    }
    n
}

#[test]
fn kill_9_then_rerun_gives_byte_identical_output() {
    let tmp = tempfile::tempdir().unwrap();
    let input = make_inputs(tmp.path(), 12);
    let clean_out = tmp.path().join("clean");
    let pipe = write_pipeline(tmp.path(), &input, &clean_out, DEDUP_STAGES);
    let ok = run(&["run", pipe.to_str().unwrap(), "--threads", "2"]);
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let expected = snapshot(&clean_out);
    assert!(expected.contains_key("00011.jsonl.zst"));

    let out = tmp.path().join("killed");
    let pipe = write_pipeline(tmp.path(), &input, &out, DEDUP_STAGES);
    // Kill as soon as the first shard of the run is complete, while others are in flight.
    let mut child = Command::new(BIN)
        .args(["run", pipe.to_str().unwrap(), "--threads", "2"])
        .env("RUST_LOG", "error")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    while count_manifests(&out) == 0 && Instant::now() < deadline {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let partial = snapshot(&out);
    assert!(
        partial.len() < expected.len(),
        "the run finished before it could be killed; nothing was tested"
    );
    // Nothing visible under a final name is half-written: every shard present has its manifest.
    for name in partial.keys().filter(|k| k.ends_with(".manifest.json")) {
        let shard = name.replace(".manifest.json", ".jsonl.zst");
        assert_eq!(partial.get(&shard), expected.get(&shard), "{shard}");
    }

    let rerun = run(&["run", pipe.to_str().unwrap(), "--threads", "2"]);
    assert!(
        rerun.status.success(),
        "{}",
        String::from_utf8_lossy(&rerun.stderr)
    );
    let got = snapshot(&out);
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        expected.keys().collect::<Vec<_>>()
    );
    for (k, v) in &expected {
        assert!(got[k] == *v, "{k} differs after kill -9 and rerun");
    }
    assert!(!got.keys().any(|k| k.ends_with(".tmp")));

    // A third run finds everything complete and does nothing.
    let again = run(&["run", pipe.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&again.stdout);
    assert!(
        text.contains("0 shards processed, 12 already complete"),
        "{text}"
    );
}

#[test]
fn output_does_not_depend_on_thread_count() {
    let tmp = tempfile::tempdir().unwrap();
    let input = make_inputs(tmp.path(), 6);
    let mut snaps = Vec::new();
    for threads in ["1", "2"] {
        let out = tmp.path().join(format!("out{threads}"));
        let pipe = write_pipeline(tmp.path(), &input, &out, DEDUP_STAGES);
        let r = run(&["run", pipe.to_str().unwrap(), "--threads", threads]);
        assert!(r.status.success());
        snaps.push(snapshot(&out));
    }
    assert_eq!(snaps[0], snaps[1]);
}

#[test]
fn dedup_crosses_files_and_counts_drops_by_reason() {
    let tmp = tempfile::tempdir().unwrap();
    let input = make_inputs(tmp.path(), 2);
    let out = tmp.path().join("out");
    let pipe = write_pipeline(tmp.path(), &input, &out, DEDUP_STAGES);
    assert!(run(&["run", pipe.to_str().unwrap()]).status.success());
    let stats = run(&["stats", out.to_str().unwrap(), "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&stats.stdout).unwrap();
    let stages = v["stages"].as_array().unwrap();
    let names: Vec<_> = stages.iter().map(|s| s["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["read", "exact_dedup", "line_dedup"]);
    // 697 documents per file; 27 are empty, and texts occurring 7, 3 and 2 times leave 9
    // duplicates; the second copy is all duplicates.
    assert_eq!(stages[0]["docs_out"], 1394);
    assert_eq!(stages[1]["drops"]["duplicate_document"], 26 + 9 + 697);
    assert_eq!(stages[2]["drops"]["no_text"], 1);
    // The second copy repeats every line of the first: all its documents lose all lines.
    let second: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("00001.stats.json")).unwrap()).unwrap();
    assert_eq!(second["stages"][1]["drops"]["duplicate_document"], 697);
    assert_eq!(second["stages"][1]["docs_out"], 0);
    // Pages made only of lines seen on earlier pages lose every line.
    let first: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("00000.stats.json")).unwrap()).unwrap();
    assert!(
        first["stages"][2]["drops"]["all_lines_duplicate"]
            .as_u64()
            .unwrap()
            > 0
    );
    let second = datamill::doc::read_shard(&out.join("00001.jsonl.zst")).unwrap();
    assert!(second.is_empty());
    let rejected = datamill::doc::read_shard(&out.join("rejected/00001.s1.jsonl.zst")).unwrap();
    assert_eq!(rejected.len(), 697);
    assert_eq!(rejected[0].meta_str("rejected_by"), Some("exact_dedup"));
    assert_eq!(
        rejected[0].meta_str("reject_reason"),
        Some("duplicate_document")
    );
}

#[test]
fn ranks_split_the_inputs_and_together_equal_one_run() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("in");
    std::fs::create_dir_all(&input).unwrap();
    // Distinct files: each its own slice of the sample.
    let docs = datamill::doc::read_shard(&repo(C4_SAMPLE)).unwrap();
    for (i, chunk) in docs.chunks(100).enumerate() {
        let body: String = chunk
            .iter()
            .map(|d| serde_json::to_string(d).unwrap() + "\n")
            .collect();
        std::fs::write(input.join(format!("f{i}.jsonl")), body).unwrap();
    }
    // Dedup across ranks is a separate map/reduce step (see the Slurm section); this checks
    // that the ranks' file sets are disjoint and together make the whole run.
    let whole = tmp.path().join("whole");
    let stages = "";
    let pipe = write_pipeline(tmp.path(), &input, &whole, stages);
    assert!(run(&["run", pipe.to_str().unwrap()]).status.success());
    let split = tmp.path().join("split");
    let pipe = write_pipeline(tmp.path(), &input, &split, stages);
    for rank in ["0", "1", "2"] {
        let r = run(&[
            "run",
            pipe.to_str().unwrap(),
            "--rank",
            rank,
            "--world-size",
            "3",
        ]);
        assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
        let rank_files = std::fs::read_dir(&split)
            .unwrap()
            .filter(|e| {
                let e = e.as_ref().unwrap();
                e.file_name().to_string_lossy().ends_with(".manifest.json")
            })
            .count();
        assert!(rank_files > 0);
    }
    let a = snapshot(&whole);
    let b = snapshot(&split);
    let shards = |s: &BTreeMap<String, Vec<u8>>| -> Vec<String> {
        s.keys()
            .filter(|k| k.ends_with(".jsonl.zst"))
            .cloned()
            .collect()
    };
    assert_eq!(shards(&a), shards(&b));
    for k in shards(&a) {
        assert!(a[&k] == b[&k], "{k}");
    }
}

#[test]
fn slurm_array_variables_pick_the_rank() {
    let tmp = tempfile::tempdir().unwrap();
    let input = make_inputs(tmp.path(), 4);
    let out = tmp.path().join("out");
    let pipe = write_pipeline(tmp.path(), &input, &out, "");
    let r = Command::new(BIN)
        .args(["run", pipe.to_str().unwrap()])
        .env("SLURM_ARRAY_TASK_ID", "1")
        .env("SLURM_ARRAY_TASK_COUNT", "2")
        .output()
        .unwrap();
    assert!(r.status.success());
    let mut made: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".jsonl.zst"))
        .collect();
    made.sort();
    assert_eq!(made, ["00001.jsonl.zst", "00003.jsonl.zst"]);
}

#[test]
fn bad_inputs_are_quarantined_and_the_run_goes_on() {
    let tmp = tempfile::tempdir().unwrap();
    let input = make_inputs(tmp.path(), 1);
    // A truncated gzip, an empty file, invalid UTF-8 and bad JSON lines, and one 20 MB line.
    let gz = std::fs::read(repo(C4_SAMPLE)).unwrap();
    std::fs::write(input.join("trunc.jsonl.gz"), &gz[..gz.len() / 3]).unwrap();
    std::fs::write(input.join("empty.jsonl"), b"").unwrap();
    let mut mixed = b"{\"text\":\"good line one\"}\n{\"text\":\"bad \xff\xfe utf8\"}\n".to_vec();
    mixed.extend_from_slice(b"{not json}\n{\"text\":\"");
    mixed.extend(std::iter::repeat_n(b'a', 20 << 20));
    mixed.extend_from_slice(b"\"}\n{\"text\":\"good line two\"}\n");
    std::fs::write(input.join("mixed.jsonl"), &mixed).unwrap();
    let out = tmp.path().join("out");
    let missing = tmp.path().join("nothing-here-*.jsonl");
    let pipe = tmp.path().join("p.toml");
    std::fs::write(
        &pipe,
        format!(
            "name='t'\nsource='web'\n[input]\npaths=['{}', '{}']\nreader='jsonl'\n[output]\ndir='{}'\n",
            input.display(),
            missing.display(),
            out.display()
        ),
    )
    .unwrap();
    let r = run(&["run", pipe.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&r.stderr);
    assert!(r.status.success(), "{stderr}");
    assert!(stderr.contains("matches no file"), "{stderr}");
    assert!(stderr.contains("trunc.jsonl.gz"), "{stderr}");
    // Sorted inputs: empty, mixed, part-000, trunc.
    let mixed_docs = datamill::doc::read_shard(&out.join("00001.jsonl.zst")).unwrap();
    let texts: Vec<_> = mixed_docs.iter().map(|d| d.text.len()).collect();
    assert_eq!(texts, [13, 20 << 20, 13]);
    let q = std::fs::read_to_string(out.join("quarantine/00001.jsonl")).unwrap();
    let reasons: Vec<serde_json::Value> = q
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(reasons.len(), 2);
    assert_eq!(reasons[0]["reason"], "bad_json");
    assert_eq!(reasons[0]["offset"], 25);
    assert!(reasons[0]["file"]
        .as_str()
        .unwrap()
        .ends_with("mixed.jsonl"));
    let trunc_q = std::fs::read_to_string(out.join("quarantine/00003.jsonl")).unwrap();
    assert!(trunc_q.contains("read_error"), "{trunc_q}");
    let trunc_docs = datamill::doc::read_shard(&out.join("00003.jsonl.zst")).unwrap();
    assert!(trunc_docs.len() > 100 && trunc_docs.len() < 697);
    assert!(datamill::doc::read_shard(&out.join("00000.jsonl.zst"))
        .unwrap()
        .is_empty());
    // The empty file gave no document and no record: the run says so, in the log, the summary
    // and the shard's stats; the files that gave documents are not named.
    assert!(stderr.contains("empty.jsonl: no document read"), "{stderr}");
    let stdout = String::from_utf8_lossy(&r.stdout);
    assert!(stdout.contains("1 input(s) gave no document: "), "{stdout}");
    assert!(
        stdout.contains("empty.jsonl") && !stdout.contains("mixed.jsonl"),
        "{stdout}"
    );
    let stats: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("00000.stats.json")).unwrap()).unwrap();
    assert_eq!(stats["no_documents"], true);
    let stats: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("00001.stats.json")).unwrap()).unwrap();
    assert!(stats.get("no_documents").is_none());
}

#[test]
fn config_errors_name_the_key_and_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    let pipe = tmp.path().join("bad.toml");
    let body = "name='t'\nsource='web'\n[input]\npaths=['x']\nreader='jsonl'\n[output]\ndir='o'\n";
    std::fs::write(
        &pipe,
        format!("{body}[[stages]]\ntype='line_dedup'\ngroup_sise=3\n"),
    )
    .unwrap();
    let r = run(&["run", pipe.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&r.stderr);
    assert!(!r.status.success());
    assert!(
        err.contains("group_sise") && err.contains("bad.toml"),
        "{err}"
    );
    std::fs::write(&pipe, format!("{body}[[stages]]\ntype='no_such_stage'\n")).unwrap();
    let err = String::from_utf8_lossy(&run(&["run", pipe.to_str().unwrap()]).stderr).into_owned();
    assert!(
        err.contains("no_such_stage") && err.contains("bad.toml"),
        "{err}"
    );
    std::fs::write(&pipe, body.replace("dir='o'", "dir='o'\ncolour='red'")).unwrap();
    let err = String::from_utf8_lossy(&run(&["run", pipe.to_str().unwrap()]).stderr).into_owned();
    assert!(err.contains("colour") && err.contains("bad.toml"), "{err}");
}

/// Runs the dedup pipeline as a distributed run would: every segment step on each of `world`
/// ranks, then the reduce of the next dedup stage as `partitions` tasks.
fn run_distributed(pipe: &Path, world: usize, partitions: usize) {
    for k in 0..3 {
        run_step_on_all(pipe, &format!("segment-{k}"), world, partitions);
        if k < 2 {
            run_step_on_all(pipe, &format!("reduce-{}", k + 1), partitions, partitions);
        }
    }
}

#[test]
fn distributed_dedup_equals_one_process_whatever_ranks_and_partitions() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("in");
    std::fs::create_dir_all(&input).unwrap();
    // Overlapping slices of the real sample, so duplicates cross files and ranks.
    let docs = datamill::doc::read_shard(&repo(C4_SAMPLE)).unwrap();
    for i in 0..7 {
        let body: String = docs[i * 80..i * 80 + 160]
            .iter()
            .map(|d| serde_json::to_string(d).unwrap() + "\n")
            .collect();
        std::fs::write(input.join(format!("f{i}.jsonl")), body).unwrap();
    }
    let single = tmp.path().join("single");
    let pipe = write_pipeline(tmp.path(), &input, &single, DEDUP_STAGES);
    assert!(run(&["run", pipe.to_str().unwrap()]).status.success());
    let expected = snapshot(&single);
    for (world, partitions) in [(3, 2), (2, 5), (7, 1)] {
        let out = tmp.path().join(format!("d{world}-{partitions}"));
        let pipe = write_pipeline(tmp.path(), &input, &out, DEDUP_STAGES);
        run_distributed(&pipe, world, partitions);
        let what = format!("{world} ranks, {partitions} partitions");
        assert_same_files(&expected, &snapshot(&out), &what);
    }
}

#[test]
fn distributed_steps_refuse_missing_phases_and_changed_partitions() {
    let tmp = tempfile::tempdir().unwrap();
    let input = make_inputs(tmp.path(), 2);
    let out = tmp.path().join("out");
    let pipe = write_pipeline(tmp.path(), &input, &out, DEDUP_STAGES);
    let p = pipe.to_str().unwrap();
    let base = ["--world-size", "2", "--dedup-partitions", "4"];
    let r = run(&[&["run", p, "--step", "segment-1", "--rank", "0"][..], &base].concat());
    assert!(!r.status.success());
    assert!(String::from_utf8_lossy(&r.stderr).contains("previous step"));
    for rank in ["0", "1"] {
        let r = run(&[
            &["run", p, "--step", "segment-0", "--rank", rank][..],
            &base,
        ]
        .concat());
        assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    }
    let changed = ["--world-size", "3", "--dedup-partitions", "3"];
    let r = run(&[
        &["run", p, "--step", "reduce-1", "--rank", "0"][..],
        &changed,
    ]
    .concat());
    let err = String::from_utf8_lossy(&r.stderr);
    assert!(
        !r.status.success() && err.contains("partition count changed"),
        "{err}"
    );
    let r = run(&["run", p, "--rank", "0", "--world-size", "2"]);
    let err = String::from_utf8_lossy(&r.stderr);
    assert!(!r.status.success() && err.contains("slurm submit"), "{err}");
}

#[test]
fn rejected_documents_can_be_split_by_a_metadata_key() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("in.jsonl");
    let lines = [
        r#"{"text":"eins","metadata":{"language":"de"}}"#,
        r#"{"text":"eins","metadata":{"language":"de"}}"#,
        r#"{"text":"un","metadata":{"language":"fr"}}"#,
        r#"{"text":"un","metadata":{"language":"fr"}}"#,
        r#"{"text":"un","metadata":{"language":"fr"}}"#,
        r#"{"text":"x"}"#,
        r#"{"text":"x"}"#,
    ];
    std::fs::write(&input, lines.join("\n")).unwrap();
    let out = tmp.path().join("out");
    let stages = "[[stages]]\ntype = \"exact_dedup\"\n";
    let pipe = write_pipeline(tmp.path(), &input, &out, stages);
    let body = std::fs::read_to_string(&pipe).unwrap();
    let body = body.replace(
        "keep_rejected = true",
        "keep_rejected = true\nsplit_rejected_by = \"language\"",
    );
    std::fs::write(&pipe, body).unwrap();
    assert!(run(&["run", pipe.to_str().unwrap()]).status.success());
    let count = |lang: &str| {
        datamill::doc::read_shard(&out.join(format!("rejected/{lang}/00000.s1.jsonl.zst")))
            .unwrap()
            .len()
    };
    assert_eq!((count("de"), count("fr"), count("none")), (1, 2, 1));
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("00000.manifest.json")).unwrap()).unwrap();
    let files: Vec<_> = manifest["rejected"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["file"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        files,
        [
            "rejected/de/00000.s1.jsonl.zst",
            "rejected/fr/00000.s1.jsonl.zst",
            "rejected/none/00000.s1.jsonl.zst"
        ]
    );
}

#[test]
fn many_bad_records_stream_to_one_quarantine_file_identical_on_rerun() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("in");
    std::fs::create_dir_all(&input).unwrap();
    // 20 000 bad lines between good ones; remember each bad line's byte offset.
    let n = 20_000;
    let mut body = Vec::new();
    let mut bad_offsets = Vec::new();
    for i in 0..n {
        body.extend_from_slice(format!("{{\"text\":\"good document number {i}\"}}\n").as_bytes());
        bad_offsets.push(body.len() as u64);
        body.extend_from_slice(format!("{{broken {i}\n").as_bytes());
    }
    let file = input.join("many_bad.jsonl");
    std::fs::write(&file, &body).unwrap();
    let out = tmp.path().join("out");
    // Three segments: the quarantine is written by the first only.
    let pipe = write_pipeline(tmp.path(), &input, &out, DEDUP_STAGES);
    let r = run(&["run", pipe.to_str().unwrap()]);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let qpath = out.join("quarantine/00000.jsonl");
    let first = std::fs::read(&qpath).unwrap();
    let lines: Vec<serde_json::Value> = String::from_utf8(first.clone())
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), n);
    for (line, offset) in lines.iter().zip(&bad_offsets) {
        assert_eq!(line["offset"], *offset);
        assert_eq!(line["reason"], "bad_json");
        assert_eq!(line["file"], file.to_string_lossy().as_ref());
        assert!(!line["message"].as_str().unwrap().is_empty());
    }
    let names: Vec<String> = std::fs::read_dir(out.join("quarantine"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["00000.jsonl"], "no temporary file is left behind");
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("00000.manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["quarantined"], n as u64);
    let stats: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("00000.stats.json")).unwrap()).unwrap();
    assert_eq!(stats["stages"][0]["name"], "read");
    assert_eq!(stats["stages"][0]["drops"]["bad_json"], n as u64);
    assert_eq!(stats["stages"][0]["docs_in"], 2 * n as u64);
    assert_eq!(stats["stages"][0]["docs_out"], n as u64);

    let r = run(&["run", pipe.to_str().unwrap(), "--force"]);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    assert_eq!(
        std::fs::read(&qpath).unwrap(),
        first,
        "a rerun writes the same bytes"
    );
}

/// Runs a `warc` pipeline over the folders `inputs` into `out`; returns the kept documents' ids.
fn warc_ids(dir: &Path, inputs: &[&Path], out: &Path) -> Vec<String> {
    let pipe = dir.join("warc.toml");
    let paths: Vec<String> = inputs
        .iter()
        .map(|p| format!("'{}'", p.display()))
        .collect();
    std::fs::write(
        &pipe,
        format!(
            "name='t'\nsource='web'\n[input]\npaths=[{}]\nreader='warc'\n[output]\ndir='{}'\n",
            paths.join(", "),
            out.display()
        ),
    )
    .unwrap();
    let r = run(&["run", pipe.to_str().unwrap()]);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let mut ids = Vec::new();
    for shard in ["00000.jsonl.zst", "00001.jsonl.zst"] {
        let Ok(docs) = datamill::doc::read_shard(&out.join(shard)) else {
            continue;
        };
        ids.extend(docs.into_iter().map(|d| d.id));
    }
    ids
}

#[test]
fn same_named_inputs_in_different_folders_get_distinct_ids_stable_across_locations() {
    let tmp = tempfile::tempdir().unwrap();
    let sample = repo("samples/commoncrawl/warcio/example.warc.gz");
    let first = tmp.path().join("first/in");
    for sub in ["a", "b"] {
        std::fs::create_dir_all(first.join(sub)).unwrap();
        std::fs::copy(&sample, first.join(sub).join("x.warc.gz")).unwrap();
    }
    // Only folder `a` first: its file is named `x.warc.gz`, the input root being `a`.
    let out1 = tmp.path().join("out1");
    let alone = warc_ids(tmp.path(), &[&first.join("a")], &out1);
    assert!(
        alone.iter().all(|id| id.starts_with("x.warc.gz:")),
        "{alone:?}"
    );
    // Both folders into the same output: shard 0 (same input file) is redone under its new
    // name, not skipped as complete with stale ids.
    let ids = warc_ids(tmp.path(), &[&first.join("a"), &first.join("b")], &out1);
    assert!(ids.len() >= 2, "{ids:?}");
    let unique: std::collections::BTreeSet<&String> = ids.iter().collect();
    assert_eq!(unique.len(), ids.len(), "ids collide: {ids:?}");
    assert!(
        ids.iter().any(|id| id.starts_with("a/x.warc.gz:")),
        "{ids:?}"
    );
    assert!(
        ids.iter().any(|id| id.starts_with("b/x.warc.gz:")),
        "{ids:?}"
    );

    // The same tree at another absolute path gives the same ids and the same shard bytes.
    let moved = tmp.path().join("elsewhere/deeper/in");
    for sub in ["a", "b"] {
        std::fs::create_dir_all(moved.join(sub)).unwrap();
        std::fs::copy(&sample, moved.join(sub).join("x.warc.gz")).unwrap();
    }
    let out2 = tmp.path().join("out2");
    assert_eq!(warc_ids(tmp.path(), &[&moved], &out2), ids);
    assert_eq!(
        std::fs::read(tmp.path().join("out1/00001.jsonl.zst")).unwrap(),
        std::fs::read(out2.join("00001.jsonl.zst")).unwrap()
    );
}
