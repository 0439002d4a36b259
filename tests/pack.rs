//! `datamill pack` and `datamill verify-shards` on real run outputs, checked by an independent
//! Python reader (numpy, from the published layout) and the reference SentencePiece encoder.

mod pack_support;

use std::path::{Path, PathBuf};
use std::process::Command;

use datamill::shards::pack::{pack_parts, pack_pending, pack_shards};
use datamill::shards::verify::verify_dir;
use datamill::shards::{load_encoder, pack, PackOptions, PackSettings, PackSummary};
use pack_support::*;

fn pack_into(
    runs: &Path,
    out: &Path,
    model: &Path,
    max_shard_bytes: u64,
    threads: usize,
) -> PackSummary {
    let encoder = load_encoder(model).unwrap();
    let opts = PackOptions {
        tokenizer: model.to_path_buf(),
        inputs: vec![runs.to_path_buf()],
        output: out.to_path_buf(),
        settings: PackSettings {
            max_shard_bytes,
            ..PackSettings::default()
        },
        threads,
        force: false,
    };
    pack(&opts, encoder.as_ref()).unwrap()
}

/// The non-empty texts of a run output, in the order the packer reads them.
fn texts_in_order(run_dir: &Path, dest: &Path) {
    let mut shards: Vec<PathBuf> = std::fs::read_dir(run_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(".jsonl.zst"))
        .collect();
    shards.sort();
    let mut texts = Vec::new();
    for s in shards {
        for d in datamill::doc::read_shard(&s).unwrap() {
            if !d.text.is_empty() {
                texts.push(d.text);
            }
        }
    }
    write_jsonl(dest, &texts.iter().map(String::as_str).collect::<Vec<_>>());
}

#[test]
fn packed_shards_match_an_independent_reader_and_the_reference_encoder() {
    let dir = tempfile::tempdir().unwrap();
    let model = test_model(2000);
    let runs = make_runs(dir.path());
    let out = dir.path().join("tokens");
    // Small shards so that each source is cut into several, across input boundaries.
    let summary = pack_into(&runs, &out, &model, 300_000, 2);
    assert_eq!(summary.sources.len(), 2);
    for fam in &summary.sources {
        let texts = dir.path().join(format!("{}.texts.jsonl", fam.source));
        texts_in_order(&runs.join(&fam.source), &texts);
        let prefixes: Vec<String> = fam
            .shards
            .iter()
            .map(|s| out.join(&fam.source).join(&s.prefix).display().to_string())
            .collect();
        let res = Command::new(venv_python())
            .arg(root().join("tests/read_megatron.py"))
            .arg(&model)
            .arg(&texts)
            .args(["1", "1"])
            .args(&prefixes)
            .output()
            .unwrap();
        assert!(
            res.status.success(),
            "python reader: {}",
            String::from_utf8_lossy(&res.stderr)
        );
        let got: serde_json::Value = serde_json::from_slice(&res.stdout).unwrap();
        assert_eq!(got["dtype_code"], 8, "vocab 2000 is stored as uint16");
        assert_eq!(got["documents"].as_u64().unwrap(), fam.docs);
        assert_eq!(got["sequences"].as_u64().unwrap(), fam.docs);
        assert_eq!(got["tokens"].as_u64().unwrap(), fam.tokens);
        assert_eq!(got["first_tokens"][0], 1, "every document starts with <s>");
        assert!(
            fam.shards.len() >= 2,
            "{}: {} shards",
            fam.source,
            fam.shards.len()
        );
        for s in &fam.shards[..fam.shards.len() - 1] {
            assert!(s.bin_bytes <= 300_000 || s.docs == 1, "{s:?}");
        }
    }
    let c4 = summary.sources.iter().find(|s| s.source == "c4").unwrap();
    assert_eq!(c4.inputs.iter().map(|i| i.empty_docs).sum::<u64>(), 1);
    let books = summary
        .sources
        .iter()
        .find(|s| s.source == "books")
        .unwrap();
    assert_eq!(books.docs, 3);

    let encoder = load_encoder(&model).unwrap();
    let report = verify_dir(&out, Some(encoder.as_ref()), 2).unwrap();
    assert!(report.ok(), "{}", report.render());
    let first_book = &report
        .datasets
        .iter()
        .find(|d| d.prefix.ends_with("books_00000"))
        .unwrap()
        .samples[0]
        .1;
    assert!(first_book.contains("Pride and Prejudice"), "{first_book}");
}

#[test]
fn output_does_not_depend_on_threads_and_reruns_redo_only_what_is_missing() {
    let dir = tempfile::tempdir().unwrap();
    let model = test_model(2000);
    let runs = make_runs(dir.path());
    let one = dir.path().join("t1");
    let two = dir.path().join("t2");
    pack_into(&runs, &one, &model, 400_000, 1);
    let first = pack_into(&runs, &two, &model, 400_000, 2);
    assert_eq!(dataset_bytes(&one), dataset_bytes(&two));
    assert!(first.parts_done > 0 && first.shards_written > 2);

    let again = pack_into(&runs, &two, &model, 400_000, 2);
    assert_eq!(
        (
            again.parts_done,
            again.shards_written,
            again.sources_skipped
        ),
        (0, 0, 2)
    );

    // Lose one shard: only that shard is written again, byte-identical.
    std::fs::remove_file(two.join("c4/c4_00001.bin")).unwrap();
    let repair = pack_into(&runs, &two, &model, 400_000, 2);
    assert_eq!((repair.shards_written, repair.sources_skipped), (1, 1));
    assert_eq!(dataset_bytes(&one), dataset_bytes(&two));

    // A larger shard size re-cuts the families and removes the shards left over.
    let big = pack_into(&runs, &two, &model, 4_000_000_000, 2);
    assert!(big.sources.iter().all(|s| s.shards.len() == 1));
    assert!(!two.join("c4/c4_00001.bin").exists());
    assert!(!two.join("c4/c4_00001.manifest.json").exists());
    assert!(!two.join("c4/.work").exists());
    let encoder = load_encoder(&model).unwrap();
    assert!(verify_dir(&two, Some(encoder.as_ref()), 1).unwrap().ok());
}

#[test]
fn packing_in_two_phases_over_ranks_gives_the_files_of_one_pack() {
    let dir = tempfile::tempdir().unwrap();
    let model = test_model(2000);
    let runs = make_runs(dir.path());
    let whole = dir.path().join("whole");
    pack_into(&runs, &whole, &model, 400_000, 2);
    let split = dir.path().join("split");
    let encoder = load_encoder(&model).unwrap();
    let opts = PackOptions {
        tokenizer: model.clone(),
        inputs: vec![runs.clone()],
        output: split.clone(),
        settings: PackSettings {
            max_shard_bytes: 400_000,
            ..PackSettings::default()
        },
        threads: 1,
        force: false,
    };
    let enc = encoder.as_ref();
    // Three tokenising tasks and two shard-writing tasks; nothing is done yet.
    assert_eq!(
        pack_pending(&opts, enc, 3, 2).unwrap(),
        (vec![0, 1, 2], vec![0, 1])
    );
    let one = pack_parts(&opts, enc, 1, 3).unwrap();
    assert!(one.parts_done > 0 && one.shards_written == 0);
    assert_eq!(pack_pending(&opts, enc, 3, 2).unwrap().0, [0, 2]);
    for rank in [2, 0] {
        pack_parts(&opts, enc, rank, 3).unwrap();
    }
    assert_eq!(
        pack_pending(&opts, enc, 3, 2).unwrap(),
        (vec![], vec![0, 1])
    );
    // Family 1 (c4; books sorts first) by task 1, then family 0 by task 0.
    let written = pack_shards(&opts, enc, 1, 2).unwrap();
    assert_eq!(written.parts_done, 0, "phase 1 left nothing to tokenise");
    assert_eq!(pack_pending(&opts, enc, 3, 2).unwrap(), (vec![], vec![0]));
    pack_shards(&opts, enc, 0, 2).unwrap();
    assert_eq!(pack_pending(&opts, enc, 3, 2).unwrap(), (vec![], vec![]));
    assert_eq!(dataset_bytes(&whole), dataset_bytes(&split));
    for family in ["books", "c4"] {
        assert!(!split.join(family).join(".work").exists());
        let manifest = |d: &Path| {
            let mut v: serde_json::Value =
                serde_json::from_slice(&std::fs::read(d.join(family).join("pack.json")).unwrap())
                    .unwrap();
            v["tokenizer"] = serde_json::Value::Null;
            v
        };
        assert_eq!(manifest(&whole), manifest(&split));
    }
}

#[test]
fn verify_shards_finds_broken_pointers_and_truncated_bins() {
    let dir = tempfile::tempdir().unwrap();
    let model = test_model(2000);
    let runs = make_runs(dir.path());
    let out = dir.path().join("tokens");
    pack_into(&runs, &out, &model, 4_000_000_000, 2);
    let bin = datamill::shards::megatron::dataset_paths(&out.join("books/books_00000"));
    // Second pointer of books_00000 (3 sequences): header 34 + lengths 12 + first pointer 8.
    let mut idx = std::fs::read(&bin.1).unwrap();
    idx[34 + 12 + 8] ^= 0x40;
    std::fs::write(&bin.1, &idx).unwrap();
    let c4_bin = out.join("c4/c4_00000.bin");
    let bytes = std::fs::read(&c4_bin).unwrap();
    std::fs::write(&c4_bin, &bytes[..bytes.len() - 2]).unwrap();

    let cli = Command::new(env!("CARGO_BIN_EXE_datamill"))
        .arg("verify-shards")
        .arg(&out)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&cli.stdout);
    assert!(!cli.status.success(), "{text}");
    assert!(text.contains("sequence 1 points at byte"), "{text}");
    assert!(text.contains(".bin has"), "{text}");
    assert!(text.contains("2 with problems"), "{text}");
}

#[test]
fn pack_cli_without_bos_and_verify_cli_decode_a_sample() {
    let dir = tempfile::tempdir().unwrap();
    let model = test_model(2000);
    let runs = make_runs(dir.path());
    let out = dir.path().join("tokens");
    let run = |args: &[&str]| {
        let o = Command::new(env!("CARGO_BIN_EXE_datamill"))
            .args(args)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    let m = model.display().to_string();
    let r = runs.display().to_string();
    let o = out.display().to_string();
    let printed = run(&[
        "pack",
        "--tokenizer",
        &m,
        "--input",
        &r,
        "--output",
        &o,
        "--no-bos",
    ]);
    assert!(
        printed.contains("books") && printed.contains("tokens/s"),
        "{printed}"
    );
    let index = datamill::shards::megatron::read_index(&out.join("books/books_00000.idx")).unwrap();
    let mut f = std::fs::File::open(out.join("books/books_00000.bin")).unwrap();
    let first = datamill::shards::megatron::read_sequence(&mut f, &index, 0).unwrap();
    assert_ne!(first[0], 1, "no <s> with --no-bos");
    assert_eq!(*first.last().unwrap(), 2, "</s> ends every document");
    let verified = run(&["verify-shards", &o, "--samples", "3"]);
    assert!(verified.contains("0 with problems"), "{verified}");
    assert!(verified.contains("Wonderful Wizard"), "{verified}");
}
