//! `datamill slurm submit RECIPE.toml` against the real one-node Slurm (started by `make test`
//! through scripts/slurm-local.sh): the LLaMA recipe on samples/ as chained jobs gives the same
//! tokenizer model and token shards, byte for byte, as `datamill recipe`, and the same plan and
//! report once wall-clock seconds and output paths are set aside; also when the packing array
//! is cancelled midway and the recipe submitted again.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

mod common;
use common::*;

/// pipelines/llama.toml writing to `output` (pipelines and samples stay relative to the
/// repository root, where the tests run).
fn recipe_copy(dir: &Path, name: &str, output: &Path) -> PathBuf {
    let text = std::fs::read_to_string(repo("pipelines/llama.toml")).unwrap();
    let text = text.replace(
        "output = \"out/llama\"",
        &format!("output = {:?}", output.display().to_string()),
    );
    assert!(text.contains(&output.display().to_string()), "{text}");
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// The `.bin` and `.idx` files under `dir`.
fn token_shards(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    snapshot(dir)
        .into_iter()
        .filter(|(k, _)| k.ends_with(".bin") || k.ends_with(".idx"))
        .collect()
}

/// A JSON file with the output root replaced by `OUT` and every `seconds` set aside.
fn normalized_json(path: &Path, root: &Path) -> serde_json::Value {
    fn walk(v: &mut serde_json::Value, root: &str) {
        match v {
            serde_json::Value::String(s) => *s = s.replace(root, "OUT"),
            serde_json::Value::Array(a) => a.iter_mut().for_each(|x| walk(x, root)),
            serde_json::Value::Object(m) => {
                for (k, x) in m.iter_mut() {
                    if k == "seconds" {
                        *x = serde_json::Value::Null;
                    } else {
                        walk(x, root);
                    }
                }
            }
            _ => {}
        }
    }
    let mut v: serde_json::Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    walk(&mut v, &root.display().to_string());
    v
}

/// `datamill slurm submit RECIPE --tasks 2 [--wait 900]`, from the repository root.
fn submit_recipe(recipe: &Path, wait: bool) -> String {
    let mut args = vec!["slurm", "submit", recipe.to_str().unwrap(), "--tasks", "2"];
    if wait {
        args.extend(["--wait", "900"]);
    }
    let out = run(&args);
    assert_ok(&out);
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The job id of each submitted step (`SOURCE-OR-PHASE STEP job ID ...` lines).
fn job_ids(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            (w.len() > 4 && w[2] == "job").then(|| (format!("{} {}", w[0], w[1]), w[3].into()))
        })
        .collect()
}

#[test]
fn recipe_on_slurm_equals_local_recipe_also_after_the_packing_array_is_cancelled() {
    require_slurm();
    require_quality_models();
    let tmp = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let local = tmp.path().join("local");
    let local_recipe = recipe_copy(tmp.path(), "local.toml", &local);
    let r = run(&["recipe", local_recipe.to_str().unwrap()]);
    assert_ok(&r);

    let cluster = tmp.path().join("cluster");
    let recipe = recipe_copy(tmp.path(), "cluster.toml", &cluster);
    let text = submit_recipe(&recipe, false);
    let ids = job_ids(&text);
    for step in [
        "commoncrawl segment-0",
        "commoncrawl finish",
        "recipe tokenizer",
        "recipe pack-parts",
        "recipe pack-shards",
        "recipe report",
    ] {
        assert!(ids.contains_key(step), "{step} not submitted:\n{text}");
    }
    // Cancel the packing chain as soon as the first part is tokenised.
    let tokens = cluster.join("tokens");
    let first_part = || {
        std::fs::read_dir(&tokens).ok().is_some_and(|families| {
            families.flatten().any(|f| {
                std::fs::read_dir(f.path().join(".work"))
                    .ok()
                    .is_some_and(|parts| {
                        parts
                            .flatten()
                            .any(|p| p.file_name().to_string_lossy().ends_with(".manifest.json"))
                    })
            })
        })
    };
    let deadline = Instant::now() + Duration::from_secs(900);
    while !first_part() {
        assert!(Instant::now() < deadline, "no part was tokenised in 15 min");
        std::thread::sleep(Duration::from_millis(20));
    }
    let parts = ids["recipe pack-parts"].clone();
    let cancel = Command::new("scancel").arg(&parts).output().unwrap();
    assert!(cancel.status.success());
    wait_until_gone(std::slice::from_ref(&parts));
    assert!(
        !cluster.join("plan.json").exists(),
        "the chain finished before scancel"
    );
    // The jobs after it stay queued, never to run, until the resubmission cancels them.
    let shards_job = ids["recipe pack-shards"].clone();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let q = Command::new("squeue")
            .args(["-h", "-o", "%r", "-j", &shards_job])
            .output()
            .unwrap();
        let reason = String::from_utf8_lossy(&q.stdout).into_owned();
        if reason.contains("DependencyNeverSatisfied") {
            break;
        }
        assert!(Instant::now() < deadline, "{reason}");
        std::thread::sleep(Duration::from_millis(200));
    }
    // Status reads the record: sources done, the packing array cut short.
    let status = run(&["slurm", "status", recipe.to_str().unwrap()]);
    assert_ok(&status);
    let st = String::from_utf8_lossy(&status.stdout);
    assert!(st.contains("source commoncrawl"), "{st}");
    assert!(st.contains("tokenizer: done 1/1"), "{st}");
    assert!(st.contains("report: done 0/1"), "{st}");
    let parts_line = st.lines().find(|l| l.starts_with("pack-parts: ")).unwrap();
    assert!(!parts_line.contains("done 2/2"), "{st}");
    assert!(parts_line.contains("failed"), "{st}");
    assert!(
        st.contains("pack-shards: done 0/2, waiting on a failed step (will not run) 2"),
        "{st}"
    );

    // Resubmission: cancels the blocked jobs, then sends only the packing and the report.
    let text = submit_recipe(&recipe, true);
    let again = job_ids(&text);
    assert!(
        again.keys().all(
            |k| ["recipe pack-parts", "recipe pack-shards", "recipe report"].contains(&k.as_str())
        ),
        "{text}"
    );
    assert!(again.contains_key("recipe pack-shards"), "{text}");
    assert!(text.contains("report: done 1/1"), "{text}");
    assert!(text.contains("pack-shards: done"), "{text}");

    assert_eq!(
        std::fs::read(local.join("tokenizer/tokenizer.model")).unwrap(),
        std::fs::read(cluster.join("tokenizer/tokenizer.model")).unwrap()
    );
    let expected = token_shards(&local.join("tokens"));
    assert!(
        expected.keys().any(|k| k.starts_with("commoncrawl/")),
        "{:?}",
        expected.keys()
    );
    assert!(expected.len() >= 10, "{:?}", expected.keys());
    assert_eq!(expected, token_shards(&tokens));
    assert_eq!(
        snapshot(&local.join("runs")),
        snapshot(&cluster.join("runs"))
    );
    for file in ["plan.json", "report/report.json"] {
        assert_eq!(
            normalized_json(&local.join(file), &local),
            normalized_json(&cluster.join(file), &cluster),
            "{file}"
        );
    }
    // Every intermediate folder is gone, as after `datamill recipe`.
    for dir in [&local, &cluster] {
        for sub in ["runs", "tokens"] {
            for family in std::fs::read_dir(dir.join(sub)).unwrap().flatten() {
                assert!(
                    !family.path().join(".work").exists(),
                    "{}",
                    family.path().display()
                );
            }
        }
    }
    // Everything is done: nothing more to submit.
    let text = submit_recipe(&recipe, false);
    assert!(text.contains("nothing to submit"), "{text}");
}

#[test]
fn recipe_whose_output_folder_cannot_be_written_is_refused_before_submitting() {
    // A regular file where the output folder's parent should be: no user, root included, can
    // create the folder.
    let tmp = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let blocker = tmp.path().join("not-a-folder");
    std::fs::write(&blocker, b"").unwrap();
    let output = blocker.join("out");
    let recipe = recipe_copy(tmp.path(), "recipe.toml", &output);
    let out = run(&["slurm", "submit", recipe.to_str().unwrap()]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&output.display().to_string()), "{err}");
    assert!(err.contains("nothing was submitted"), "{err}");
    assert!(String::from_utf8_lossy(&out.stdout).is_empty());
}
