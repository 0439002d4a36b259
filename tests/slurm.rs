//! `datamill slurm submit` against a real one-node Slurm (started by `make test` through
//! scripts/slurm-local.sh): the cluster run must give byte-identical output to a local run,
//! also after `scancel` and a resubmission.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

mod common;
use common::*;

fn inputs(dir: &Path) -> std::path::PathBuf {
    let input = dir.join("in");
    std::fs::create_dir_all(&input).unwrap();
    let docs = datamill::doc::read_shard(&repo(C4_SAMPLE)).unwrap();
    for i in 0..6 {
        let body: String = docs[i * 90..i * 90 + 200]
            .iter()
            .map(|d| serde_json::to_string(d).unwrap() + "\n")
            .collect();
        std::fs::write(input.join(format!("f{i}.jsonl")), body).unwrap();
    }
    input
}

fn submit(pipe: &Path, wait: bool) -> std::process::Output {
    submit_from(pipe, wait, Path::new("."))
}

/// `slurm submit` of `pipe` (4 tasks, 3 partitions) run from the working folder `cwd`.
fn submit_from(pipe: &Path, wait: bool, cwd: &Path) -> std::process::Output {
    let mut args = vec![
        "slurm",
        "submit",
        pipe.to_str().unwrap(),
        "--tasks",
        "4",
        "--dedup-partitions",
        "3",
        "--cpus-per-task",
        "1",
    ];
    if wait {
        args.extend(["--wait", "300"]);
    }
    let out = Command::new(BIN)
        .args(&args)
        .current_dir(cwd)
        .env("RUST_LOG", "warn")
        .output()
        .expect("run datamill");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

#[test]
fn commoncrawl_pipeline_on_slurm_equals_local_run() {
    require_slurm();
    require_quality_models();
    let tmp = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let pipe = repo("pipelines/commoncrawl.toml");
    let local = tmp.path().join("local");
    let r = run(&[
        "run",
        pipe.to_str().unwrap(),
        "--output",
        local.to_str().unwrap(),
    ]);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    // Packing is chained after the last step: a small tokenizer trained by datamill.
    let tok = tmp.path().join("tok.model");
    let r = run(&[
        "train-tokenizer",
        "--input",
        repo("samples/books/Pride-and-Prejudice_1342")
            .to_str()
            .unwrap(),
        "--vocab-size",
        "2000",
        "--output",
        tok.to_str().unwrap(),
    ]);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let local_tokens = tmp.path().join("local-tokens");
    let r = run(&[
        "pack",
        "--tokenizer",
        tok.to_str().unwrap(),
        "--input",
        local.to_str().unwrap(),
        "--output",
        local_tokens.to_str().unwrap(),
    ]);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let cluster = tmp.path().join("cluster");
    let cluster_tokens = tmp.path().join("cluster-tokens");
    let args = [
        "slurm",
        "submit",
        pipe.to_str().unwrap(),
        "--tasks",
        "4",
        "--dedup-partitions",
        "3",
        "--cpus-per-task",
        "1",
        "--output",
        cluster.to_str().unwrap(),
        "--pack-tokenizer",
        tok.to_str().unwrap(),
        "--pack-output",
        cluster_tokens.to_str().unwrap(),
        "--wait",
        "300",
    ];
    let out = run(&args);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Line dedup and exact dedup each add a map/reduce round.
    for step in [
        "segment-0",
        "reduce-1",
        "segment-1",
        "reduce-2",
        "segment-2",
    ] {
        assert!(text.contains(step), "{text}");
    }
    assert!(text.contains("segment-2: shards 10/10 (done)"), "{text}");
    assert!(text.contains("pack "), "{text}");
    // The status printed after waiting includes the packing job's sources.
    assert!(
        text.lines()
            .any(|l| l.starts_with("pack: sources packed ") && l.ends_with(" (done)")),
        "{text}"
    );
    let expected = snapshot(&local);
    assert!(expected.keys().any(|k| k.starts_with("rejected/")));
    assert_eq!(expected, snapshot(&cluster));
    // The chained packing job wrote the same token shards as packing the local run.
    let shards = |dir: &Path| -> std::collections::BTreeMap<String, Vec<u8>> {
        snapshot(dir)
            .into_iter()
            .filter(|(k, _)| k.ends_with(".bin") || k.ends_with(".idx"))
            .collect()
    };
    let tokens = shards(&local_tokens);
    assert!(!tokens.is_empty());
    assert_eq!(tokens, shards(&cluster_tokens));
    // Everything is complete: a second submission sends nothing.
    let again = run(&args);
    assert!(String::from_utf8_lossy(&again.stdout).contains("nothing to submit"));
}

#[test]
fn scancel_then_resubmit_gives_the_same_output() {
    require_slurm();
    let tmp = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let input = inputs(tmp.path());
    let local = tmp.path().join("local");
    let pipe = write_pipeline(tmp.path(), &input, &local, DEDUP_STAGES);
    assert!(run(&["run", pipe.to_str().unwrap()]).status.success());
    let cluster = tmp.path().join("cluster");
    let pipe = write_pipeline(tmp.path(), &input, &cluster, DEDUP_STAGES);
    let out = submit(&pipe, false);
    let ids: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().nth(2).map(str::to_string))
        .collect();
    assert!(ids.len() >= 3, "{ids:?}");
    // Cancel the chain once the first step has written something.
    let deadline = Instant::now() + Duration::from_secs(120);
    while Instant::now() < deadline
        && !cluster.join(".work/s0").exists()
        && !cluster.join(".work/s1/map").exists()
    {
        std::thread::sleep(Duration::from_millis(20));
    }
    let cancel = Command::new("scancel").args(&ids).output().unwrap();
    assert!(cancel.status.success());
    wait_until_gone(&ids);
    assert!(
        !cluster.join("00005.manifest.json").exists(),
        "the chain finished before scancel"
    );
    let out = submit(&pipe, true);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("segment-2: shards 6/6 (done)"), "{text}");
    assert_eq!(snapshot(&local), snapshot(&cluster));
    // The last step removed the intermediate folders, as a one-process run does.
    assert!(text.contains("finish: done"), "{text}");
    assert!(!cluster.join(".work").exists());
    assert!(!local.join(".work").exists());
}

#[test]
fn minhash_dedup_on_slurm_chains_map_reduce_cluster_apply_and_equals_local_run() {
    require_slurm();
    // Every path has a space, the working folder (`#SBATCH --chdir`) and the log folder
    // (`#SBATCH --output`) included.
    let tmp = tempfile::Builder::new()
        .prefix("slurm run ")
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .unwrap();
    let input = inputs(tmp.path());
    let stages = "[[stages]]\ntype = \"minhash_dedup\"\n";
    let local = tmp.path().join("local");
    let pipe = write_pipeline(tmp.path(), &input, &local, stages);
    assert!(run(&["run", pipe.to_str().unwrap()]).status.success());
    let cluster = tmp.path().join("cluster");
    let pipe = write_pipeline(tmp.path(), &input, &cluster, stages);
    let out = submit_from(&pipe, true, tmp.path());
    let script = std::fs::read_to_string(cluster.join(".slurm").join("segment-0.sbatch")).unwrap();
    assert!(
        script.contains(&format!(
            "#SBATCH --chdir=\"{}\"",
            tmp.path().canonicalize().unwrap().display()
        )),
        "{script}"
    );
    let logs = std::fs::read_dir(cluster.join(".slurm").join("logs"))
        .unwrap()
        .count();
    assert!(
        logs >= 4,
        "the tasks' logs are written under the spaced folder"
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let steps: Vec<&str> = text
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|s| s.contains('-') && !s.ends_with(':'))
        .collect();
    assert_eq!(
        steps,
        ["segment-0", "reduce-1", "cluster-1", "segment-1"],
        "{text}"
    );
    assert!(text.contains("cluster-1: done"), "{text}");
    assert!(text.contains("segment-1: shards 6/6 (done)"), "{text}");
    let expected = snapshot(&local);
    assert!(expected.keys().any(|k| k.starts_with("rejected/")));
    assert_eq!(expected, snapshot(&cluster));
}

#[test]
fn submit_takes_input_and_status_reads_the_record() {
    require_slurm();
    let tmp = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let input = inputs(tmp.path());
    let stages = "[[stages]]\ntype = \"exact_dedup\"\n";
    let local = tmp.path().join("local");
    let pipe = write_pipeline(tmp.path(), &input, &local, stages);
    assert_ok(&run(&["run", pipe.to_str().unwrap()]));
    // The pipeline names a folder that does not exist: `--input` replaces it, in every job.
    let cluster = tmp.path().join("cluster");
    let pipe = write_pipeline(tmp.path(), &tmp.path().join("nowhere"), &cluster, stages);
    let args = [
        "slurm",
        "submit",
        pipe.to_str().unwrap(),
        "--input",
        input.to_str().unwrap(),
        "--tasks",
        "3",
        "--dedup-partitions",
        "2",
    ];
    let out = run(&[&args[..], &["--wait", "300"]].concat());
    assert_ok(&out);
    assert_eq!(snapshot(&local), snapshot(&cluster));
    assert!(!cluster.join(".work").exists(), "finish removes .work/");
    // No --tasks and no --input: both come from the record of what was submitted.
    let status = run(&["slurm", "status", pipe.to_str().unwrap()]);
    assert_ok(&status);
    let text = String::from_utf8_lossy(&status.stdout);
    assert!(text.contains("test: 6 input files"), "{text}");
    assert!(text.contains("segment-1: shards 6/6 (done)"), "{text}");
    assert!(
        text.contains("reduce-1: map files 6/6, partitions reduced 2/2"),
        "{text}"
    );
    assert!(text.contains("finish: done"), "{text}");
    assert_eq!(text.matches("tasks: done 3/3").count(), 2, "{text}");
    // Nothing is left to do.
    let again = run(&args);
    assert_ok(&again);
    assert!(String::from_utf8_lossy(&again.stdout).contains("nothing to submit"));
}
