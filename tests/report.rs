//! `datamill report` and `datamill recipe`: the Table 1 view, the funnel, the offline HTML.

mod pack_support;

use std::process::Command;

use pack_support::*;

#[test]
fn report_gives_table1_rows_funnels_and_an_offline_html_page() {
    let dir = tempfile::tempdir().unwrap();
    let model = test_model(2000);
    let runs = make_runs(dir.path());
    let o = Command::new(env!("CARGO_BIN_EXE_datamill"))
        .arg("pack")
        .arg("--tokenizer")
        .arg(&model)
        .arg("--input")
        .arg(&runs)
        .arg("--output")
        .arg(dir.path().join("tokens"))
        .output()
        .unwrap();
    assert!(o.status.success());
    let o = Command::new(env!("CARGO_BIN_EXE_datamill"))
        .arg("report")
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let md = String::from_utf8_lossy(&o.stdout);
    // Default weights are Table 1's: c4 15, books 4.5 -> 76.9% / 23.1% of this mixture.
    assert!(md.contains("| c4 |") && md.contains("| 76.9% |"), "{md}");
    assert!(
        md.contains("| books | 3 |") && md.contains("| 23.1% |"),
        "{md}"
    );
    assert!(md.contains("| exact_dedup |"), "{md}");

    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("report/report.json")).unwrap())
            .unwrap();
    let packed: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("tokens/books/pack.json")).unwrap())
            .unwrap();
    let books = &json["sources"][1];
    assert_eq!(books["source"], "books");
    assert_eq!(books["tokens"], packed["tokens"]);
    assert_eq!(books["docs"], 3);
    let epochs = books["epochs"].as_f64().unwrap();
    let expect = 1.4e12 * 4.5 / 19.5 / packed["tokens"].as_f64().unwrap();
    assert!((epochs / expect - 1.0).abs() < 1e-9);
    let c4 = &json["sources"][0];
    assert_eq!(c4["funnel"][0]["name"], "read");
    // The C4 samples overlap, and dup.jsonl repeats one document: exact dedup drops them.
    let dups = c4["funnel"][1]["drops"]["duplicate_document"]
        .as_u64()
        .unwrap();
    assert!(dups >= 1);
    assert!(md.contains(&format!("duplicate_document: {dups}")), "{md}");
    // dup.jsonl: 4 documents, one exact duplicate dropped; the empty one is kept by the run
    // and left out by the packer.
    assert_eq!(
        c4["docs"].as_u64().unwrap(),
        packed_docs(&dir.path().join("tokens/c4/pack.json")) + 1
    );
    assert!(
        md.contains("c4: 1 kept documents have empty text and are not in the token shards"),
        "{md}"
    );

    let html = std::fs::read_to_string(dir.path().join("report/report.html")).unwrap();
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert!(
        html.matches("<svg").count() >= 3,
        "mixture chart and two funnels"
    );
    assert!(!html.contains("<script") && !html.contains("src=") && !html.contains("href="));
    assert!(html.contains(&format!("duplicate_document {dups}")));
}

fn packed_docs(path: &std::path::Path) -> u64 {
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    v["docs"].as_u64().unwrap()
}

#[test]
fn recipe_runs_what_is_built_trains_a_tokenizer_and_skips_the_rest_with_a_note() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let input = d.join("wiki.jsonl");
    let para = "The quick brown fox jumps over the lazy dog near the river bank in 1999.";
    let texts: Vec<String> = (0..300)
        .map(|i| format!("{para} Article {i} says {i} times."))
        .collect();
    write_jsonl(
        &input,
        &texts.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    std::fs::write(
        d.join("wikipedia.toml"),
        format!(
            "name = \"wikipedia\"\nsource = \"wikipedia\"\n[input]\npaths = [{:?}]\nreader = \"jsonl\"\n[output]\ndir = \"unused\"\n",
            input.display().to_string()
        ),
    )
    .unwrap();
    std::fs::write(
        d.join("commoncrawl.toml"),
        "name = \"cc\"\nsource = \"commoncrawl\"\n[input]\npaths = [\"x\"]\nreader = \"no_such_reader\"\n[output]\ndir = \"unused\"\n",
    )
    .unwrap();
    let recipe = d.join("recipe.toml");
    std::fs::write(
        &recipe,
        format!(
            "name = \"mini\"\noutput = {:?}\n[tokenizer]\nvocab_size = 300\nsample_bytes = 1000000\n\
             [[sources]]\nname = \"commoncrawl\"\npipeline = {:?}\nweight = 67\n\
             [[sources]]\nname = \"wikipedia\"\npipeline = {:?}\nweight = 4.5\n\
             [[sources]]\nname = \"books\"\npipeline = {:?}\nweight = 4.5\n",
            d.join("out").display().to_string(),
            d.join("commoncrawl.toml").display().to_string(),
            d.join("wikipedia.toml").display().to_string(),
            d.join("books.toml").display().to_string(),
        ),
    )
    .unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_datamill"))
        .arg("recipe")
        .arg(&recipe)
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{out}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(
        out.contains("skipped commoncrawl: reader not built"),
        "{out}"
    );
    assert!(out.contains("skipped books: pipeline file"), "{out}");
    assert!(out.contains("(trained now)"), "{out}");
    assert!(out.contains("| wikipedia | 300 |"), "{out}");
    assert!(
        out.contains("report: ") && out.contains("report.html"),
        "{out}"
    );
    assert!(d.join("out/tokens/wikipedia/wikipedia_00000.idx").exists());
    assert!(d.join("out/plan.json").exists());
    assert!(d.join("out/report/report.html").exists());
}
