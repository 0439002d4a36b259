//! The mixture planner: LLaMA's own numbers give Table 1 back; real shards give the
//! Megatron blend.

mod pack_support;

use std::process::Command;

use datamill::mixture::{plan, recipe_supplies, RecipeConfig};
use pack_support::*;

#[test]
fn llama_per_source_tokens_give_table1_epochs_steps_and_disk() {
    let recipe = RecipeConfig::load(&root().join("tests/fixtures/llama-paper.toml")).unwrap();
    let nowhere = tempfile::tempdir().unwrap();
    let supplies = recipe_supplies(&recipe, nowhere.path()).unwrap();
    let p = plan(&recipe.mixture, &supplies, recipe.pack.max_shard_bytes);

    let epochs: Vec<String> = p
        .sources
        .iter()
        .map(|s| format!("{:.2}", s.epochs))
        .collect();
    assert_eq!(
        epochs,
        ["1.10", "1.06", "0.64", "2.45", "2.23", "1.06", "1.03"],
        "LLaMA Table 1"
    );
    let props: Vec<String> = p
        .sources
        .iter()
        .map(|s| format!("{:.1}", s.proportion * 100.0))
        .collect();
    assert_eq!(props, ["67.0", "15.0", "4.5", "4.5", "4.5", "2.5", "2.0"]);
    // 1.4e12 / (2048 x 2048) = 333,786.3 steps; sequences: 1.4e12 / 2048.
    assert_eq!(p.steps, 333_787);
    assert_eq!(p.samples, 683_593_750);
    assert_eq!(p.sequences_per_step, 2048);
    assert_eq!(p.sequences_per_rank_per_step, 8.0);
    // uint16 unique tokens on disk (research notes: 1,705 GB for CommonCrawl, 2.53 TB in all).
    assert_eq!((p.sources[0].disk_bytes / 1e9).round(), 1705.0);
    let disk: f64 = p.sources.iter().map(|s| s.disk_bytes).sum();
    assert_eq!((disk / 1e10).round() / 100.0, 2.53);
    // Megatron's blend: 460.30M samples for CommonCrawl; document-index epochs per source.
    assert_eq!(
        (p.sources[0].megatron_samples as f64 / 1e4).round() / 100.0,
        460.30
    );
    let mg: Vec<u64> = p.sources.iter().map(|s| s.megatron_epochs).collect();
    assert_eq!(mg, [2, 2, 1, 3, 3, 2, 2]);
    // 380 tokens/s/GPU on 2048 GPUs: "approximately 21 days".
    assert_eq!(p.days.round(), 21.0);
    // max_epochs = 2 in the fixture: Wikipedia and Books warn, nothing else.
    assert_eq!(p.warnings.len(), 2, "{:?}", p.warnings);
    assert!(p.warnings[0].starts_with("wikipedia: 2.45 epochs"));
    assert!(p.warnings[1].starts_with("books: 2.23 epochs"));
    let w: f64 = p.data_path.iter().map(|(w, _)| w).sum();
    assert!((w - 1.0).abs() < 1e-9);
}

#[test]
fn plan_cli_reads_tokens_from_the_shards_indexes() {
    let dir = tempfile::tempdir().unwrap();
    let model = test_model(2000);
    let runs = make_runs(dir.path());
    let out = dir.path().join("llama");
    let status = Command::new(env!("CARGO_BIN_EXE_datamill"))
        .arg("pack")
        .arg("--tokenizer")
        .arg(&model)
        .arg("--input")
        .arg(&runs)
        .arg("--output")
        .arg(out.join("tokens"))
        .args(["--max-shard-bytes", "500000"])
        .output()
        .unwrap();
    assert!(status.status.success());
    let recipe = dir.path().join("mix.toml");
    std::fs::write(
        &recipe,
        format!(
            "name = \"mix\"\noutput = {:?}\n[mixture]\ntarget_tokens = 1e8\nmax_epochs = 3.0\n\
             [[sources]]\nname = \"c4\"\nweight = 3\n[[sources]]\nname = \"books\"\nweight = 1\n\
             [[sources]]\nname = \"github\"\nweight = 1\ntokens = 5e6\n",
            out.display().to_string()
        ),
    )
    .unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_datamill"))
        .args(["plan", "--json"])
        .arg(&recipe)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let p: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let c4 = &p["sources"][0];
    assert_eq!(c4["tokens_from"], "shards");
    assert_eq!(p["sources"][2]["tokens_from"], "given");
    // Tokens read back from the indexes equal what the packer recorded.
    let packed: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("tokens/c4/pack.json")).unwrap()).unwrap();
    assert_eq!(
        c4["tokens_available"].as_f64().unwrap(),
        packed["tokens"].as_f64().unwrap()
    );
    let seen = c4["tokens_seen"].as_f64().unwrap();
    assert_eq!(seen, 6e7);
    let epochs = c4["epochs"].as_f64().unwrap();
    assert!((epochs - 6e7 / packed["tokens"].as_f64().unwrap()).abs() < 1e-9);
    // The blend names every shard; c4's weights are 0.6 split by tokens.
    let c4_paths: Vec<&serde_json::Value> = p["data_path"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e[1].as_str().unwrap().contains("/c4/c4_"))
        .collect();
    assert_eq!(
        c4_paths.len() as u64,
        packed["shards"].as_array().unwrap().len() as u64
    );
    let c4_weight: f64 = c4_paths.iter().map(|e| e[0].as_f64().unwrap()).sum();
    assert!((c4_weight - 0.6).abs() < 1e-9);
    // Books (under 1M tokens at vocab 2000) gets 2e7 tokens drawn: far more than 3 epochs: a warning.
    let warnings = p["warnings"].as_array().unwrap();
    assert!(
        warnings
            .iter()
            .any(|w| w.as_str().unwrap().starts_with("books:")),
        "{warnings:?}"
    );

    let text = Command::new(env!("CARGO_BIN_EXE_datamill"))
        .arg("plan")
        .arg(&recipe)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(
        text.contains("--data-path") && text.contains("c4_00000"),
        "{text}"
    );
}
