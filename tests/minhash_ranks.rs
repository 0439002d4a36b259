//! MinHash near-duplicate dedup across ranks (map, reduce, cluster, apply through the
//! `datamill` binary) gives byte-identical output to one process, whatever the rank and
//! partition counts; phases run out of order or with a changed partition count are errors.

use std::path::{Path, PathBuf};

mod common;
use common::*;

/// Exact dedup, then MinHash: three segments, the second dedup a near-duplicate one.
const STAGES: &str = "[[stages]]\ntype = \"exact_dedup\"\n[[stages]]\ntype = \"minhash_dedup\"\n";

/// Six files of distinct C4 sample documents plus edited copies (three or six words changed)
/// of the long ones in other files, so near-duplicate clusters cross files and ranks.
fn inputs(dir: &Path) -> PathBuf {
    let input = dir.join("in");
    std::fs::create_dir_all(&input).unwrap();
    let docs = datamill::doc::read_shard(&repo(C4_SAMPLE)).unwrap();
    let mut files: Vec<String> = vec![String::new(); 6];
    for (j, doc) in docs.iter().take(600).enumerate() {
        let file = j / 100;
        files[file] += &(serde_json::to_string(doc).unwrap() + "\n");
        let words: Vec<&str> = doc.text.split(' ').collect();
        if words.len() < 400 || j % 5 != 0 {
            continue;
        }
        // One or two edited copies: each a near-duplicate of the original.
        for (copy, edits) in [(1usize, 3usize), (2, 6)].into_iter().take(1 + j % 2) {
            let mut w: Vec<String> = words.iter().map(|s| s.to_string()).collect();
            for e in 0..edits {
                w[20 + e * 60] = format!("edited{copy}x{e}");
            }
            let mut near = doc.clone();
            near.id = format!("{}-near{copy}", doc.id);
            near.text = w.join(" ");
            files[(file + 2 * copy + 1) % 6] += &(serde_json::to_string(&near).unwrap() + "\n");
        }
    }
    for (i, body) in files.iter().enumerate() {
        std::fs::write(input.join(format!("f{i}.jsonl")), body).unwrap();
    }
    input
}

/// Every step of a distributed run, in order: segments on `world` ranks, each dedup's reduce
/// on `partitions` tasks, MinHash's cluster step on one task.
fn run_distributed(pipe: &Path, world: usize, partitions: usize) {
    for k in 0..3 {
        if k > 0 {
            run_step_on_all(pipe, &format!("reduce-{k}"), partitions, partitions);
        }
        if k == 2 {
            run_step_on_all(pipe, "cluster-2", 1, partitions);
        }
        run_step_on_all(pipe, &format!("segment-{k}"), world, partitions);
    }
}

fn near_duplicates(out: &Path) -> u64 {
    let mut n = 0;
    for e in std::fs::read_dir(out).unwrap() {
        let p = e.unwrap().path();
        if p.to_string_lossy().ends_with(".stats.json") {
            let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
            for st in v["stages"].as_array().unwrap() {
                n += st["drops"]["near_duplicate"].as_u64().unwrap_or(0);
            }
        }
    }
    n
}

#[test]
fn minhash_across_ranks_equals_one_process_whatever_ranks_and_partitions() {
    let tmp = tempfile::tempdir().unwrap();
    let input = inputs(tmp.path());
    let single = tmp.path().join("single");
    let pipe = write_pipeline(tmp.path(), &input, &single, STAGES);
    assert_ok(&run(&["run", pipe.to_str().unwrap()]));
    let expected = snapshot(&single);
    let dropped = near_duplicates(&single);
    assert!(dropped >= 40, "only {dropped} near-duplicates found");
    for (world, partitions) in [(3, 2), (2, 5), (6, 1)] {
        let out = tmp.path().join(format!("d{world}-{partitions}"));
        let pipe = write_pipeline(tmp.path(), &input, &out, STAGES);
        run_distributed(&pipe, world, partitions);
        let what = format!("{world} ranks, {partitions} partitions");
        assert_same_files(&expected, &snapshot(&out), &what);
        // The phases' files are where the README says.
        for f in [
            "map/00000.map",
            "sig/00005.sig",
            "edges/p00000.edges",
            "cluster/00003.json",
        ] {
            assert!(out.join(".work/s2").join(f).exists(), "{f}");
        }
    }
}

#[test]
fn minhash_phases_refuse_a_changed_partition_count_and_missing_phases() {
    let tmp = tempfile::tempdir().unwrap();
    let input = inputs(tmp.path());
    let out = tmp.path().join("out");
    let stages = "[[stages]]\ntype = \"minhash_dedup\"\n";
    let pipe = write_pipeline(tmp.path(), &input, &out, stages);
    run_step_on_all(&pipe, "segment-0", 2, 4);
    let expect_err = |o: std::process::Output, needle: &str| {
        let err = String::from_utf8_lossy(&o.stderr).into_owned();
        assert!(!o.status.success() && err.contains(needle), "{err}");
    };
    // The cluster step before the reduce has finished.
    expect_err(
        run_step(&pipe, "cluster-1", 0, 1, 4),
        "reduce step has not finished",
    );
    // A reduce with another partition count.
    expect_err(
        run_step(&pipe, "reduce-1", 0, 3, 3),
        "partition count changed",
    );
    run_step_on_all(&pipe, "reduce-1", 4, 4);
    // The apply before the cluster step.
    expect_err(
        run_step(&pipe, "segment-1", 0, 2, 4),
        "cluster step has not finished",
    );
    // The cluster step with another partition count.
    expect_err(
        run_step(&pipe, "cluster-1", 0, 1, 2),
        "partition count changed",
    );
    run_step_on_all(&pipe, "cluster-1", 1, 4);
    // The apply with another partition count.
    expect_err(
        run_step(&pipe, "segment-1", 0, 2, 5),
        "partition count changed",
    );
    run_step_on_all(&pipe, "segment-1", 2, 4);
    assert!(near_duplicates(&out) > 0);
}
