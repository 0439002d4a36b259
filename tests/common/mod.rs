//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;

pub const BIN: &str = env!("CARGO_BIN_EXE_datamill");
pub const C4_SAMPLE: &str = "samples/c4/dolma/CC-MAIN-20190717121559-20190717143559-00140.jsonl.gz";

pub fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// Two group stages (so three segments: read, exact dedup, line dedup).
pub const DEDUP_STAGES: &str =
    "[[stages]]\ntype = \"exact_dedup\"\n[[stages]]\ntype = \"line_dedup\"\n";

/// A pipeline over `input` with `stages`, writing to `output`.
pub fn write_pipeline(dir: &Path, input: &Path, output: &Path, stages: &str) -> PathBuf {
    let path = dir.join("pipe.toml");
    std::fs::write(
        &path,
        format!(
            r#"name = "test"
source = "web"
[input]
paths = ["{}"]
reader = "jsonl"
[output]
dir = "{}"
keep_rejected = true
{stages}"#,
            input.display(),
            output.display()
        ),
    )
    .unwrap();
    path
}

/// `n` input files: copies of the real C4-style sample under different names, plus a variant
/// so that dedup decisions cross files.
pub fn make_inputs(dir: &Path, n: usize) -> PathBuf {
    let input = dir.join("in");
    std::fs::create_dir_all(&input).unwrap();
    for i in 0..n {
        std::fs::copy(repo(C4_SAMPLE), input.join(format!("part-{i:03}.jsonl.gz"))).unwrap();
    }
    input
}

pub fn run(args: &[&str]) -> std::process::Output {
    Command::new(BIN)
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .expect("run datamill")
}

/// Every regular file under `dir` (relative path -> bytes), ignoring the `.work` and `.slurm`
/// folders and
/// the timings in stats files.
pub fn snapshot(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    fn walk(base: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            let rel = p.strip_prefix(base).unwrap().to_string_lossy().into_owned();
            if rel.starts_with(".work") || rel.starts_with(".slurm") {
                continue;
            }
            if p.is_dir() {
                walk(base, &p, out);
            } else if rel.ends_with(".stats.json") {
                // Stats carry wall-clock seconds per stage; everything else must be identical.
                let mut v: serde_json::Value =
                    serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
                for st in v["stages"].as_array_mut().unwrap() {
                    st["seconds"] = serde_json::Value::Null;
                }
                out.insert(rel, serde_json::to_vec(&v).unwrap());
            } else {
                out.insert(rel, std::fs::read(&p).unwrap());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

/// Every file under `dir` (any depth) whose name ends with `suffix`, sorted.
pub fn files_ending(dir: &Path, suffix: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.to_string_lossy().ends_with(suffix) {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// Fails with the command's stderr unless it succeeded.
pub fn assert_ok(out: &std::process::Output) {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs `step` as each of `tasks` ranks in turn (world size `tasks`), asserting each succeeds.
pub fn run_step_on_all(pipe: &Path, step: &str, tasks: usize, partitions: usize) {
    for rank in 0..tasks {
        assert_ok(&run_step(pipe, step, rank, tasks, partitions));
    }
}

/// `datamill run PIPE --step STEP --rank R --world-size W --dedup-partitions P`.
pub fn run_step(
    pipe: &Path,
    step: &str,
    rank: usize,
    world: usize,
    partitions: usize,
) -> std::process::Output {
    let (r, w, p) = (rank.to_string(), world.to_string(), partitions.to_string());
    run(&[
        "run",
        pipe.to_str().unwrap(),
        "--step",
        step,
        "--rank",
        &r,
        "--world-size",
        &w,
        "--dedup-partitions",
        &p,
    ])
}

/// The same files with the same bytes as `expected`, naming the first file that differs.
pub fn assert_same_files(
    expected: &BTreeMap<String, Vec<u8>>,
    got: &BTreeMap<String, Vec<u8>>,
    what: &str,
) {
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        expected.keys().collect::<Vec<_>>()
    );
    for (k, v) in expected {
        assert!(got[k] == *v, "{k} differs with {what}");
    }
}

/// Fails unless a Slurm controller answers: `make test` starts one (scripts/slurm-local.sh);
/// a plain `cargo nextest run` needs `bash scripts/slurm-local.sh start` first.
pub fn require_slurm() {
    let up = Command::new("sinfo")
        .args(["-h", "-o", "%a"])
        .output()
        .map(|o| o.status.success() && String::from_utf8_lossy(&o.stdout).contains("up"))
        .unwrap_or(false);
    assert!(
        up,
        "no Slurm answers: run `make test`, or `bash scripts/slurm-local.sh start` first"
    );
}

/// Waits until none of `ids` is in the Slurm queue.
pub fn wait_until_gone(ids: &[String]) {
    loop {
        let out = Command::new("squeue")
            .args(["-h", "-j", &ids.join(",")])
            .output()
            .expect("run squeue");
        if String::from_utf8_lossy(&out.stdout).trim().is_empty() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}

/// Fails unless the fastText, n-gram and classifier models the CommonCrawl pipeline reads
/// exist (`make setup quality-models` makes them; `make test` does).
pub fn require_quality_models() {
    for model in [
        "models/lid.176.ftz",
        "models/cc_lm.bin",
        "models/wikiref.bin",
    ] {
        assert!(
            repo(model).exists(),
            "{model} is missing: run `make setup quality-models` (make test does)"
        );
    }
}

/// Reads the head of one HTTP request on a test server's connection (5 s read timeout): the
/// request target and the header fields. `None` when the client sent no request line.
pub fn read_request_head(stream: &TcpStream) -> Option<(String, Vec<(String, String)>)> {
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .ok()?;
    let mut reader = BufReader::new(stream.try_clone().ok()?);
    let mut request_line = String::new();
    reader.read_line(&mut request_line).ok()?;
    let target = request_line.split_whitespace().nth(1)?.to_string();
    let mut fields = Vec::new();
    for _ in 0..100 {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 || line.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':') {
            fields.push((k.trim().to_string(), v.trim().to_string()));
        }
    }
    Some((target, fields))
}

/// The venv Python (`make setup-python`); a missing venv is a failure, never a skip.
pub fn venv_python(needs: &str) -> PathBuf {
    let py = repo(".venv/bin/python");
    assert!(
        py.exists(),
        "{} is missing: run `make setup-python` (installs {needs})",
        py.display()
    );
    py
}
