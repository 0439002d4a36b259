//! The CommonCrawl n-gram model on the in-repo samples: it ranks Wikipedia prose below
//! boilerplate web pages, and bad model files fail at start-up. (The reference classifier's
//! tests are in `wikiref.rs`.)

use std::path::{Path, PathBuf};

use datamill::lm::scorer::PieceScorer;
use datamill::lm::{train_lm, LanguageGate, TrainLmOptions};
use datamill::quality::perplexity::{PerplexityBucketer, PerplexityScorer};
use datamill::sources::training::for_each_training_text;
use datamill::{DocPos, Document, Stage, Verdict};

const WIKI: &str = "samples/wikipedia/gensim";
const BOOKS: [&str; 2] = [
    "samples/books/Pride-and-Prejudice_1342/1342.txt",
    "samples/books/The-Wonderful-Wizard-of-Oz_55/55.txt",
];
const CC: &str = "samples/c4/dolma/CC-MAIN-20190717121559-20190717143559-00140.jsonl.gz";
const CC_HEAD: &str = "samples/c4/dolma/cc_en_head-0091.jsonl";

fn docs(paths: &[&str]) -> Vec<String> {
    let paths: Vec<PathBuf> = paths.iter().map(PathBuf::from).collect();
    let mut out = Vec::new();
    for_each_training_text(&paths, None, None, &mut |t| out.push(t.to_string())).unwrap();
    out
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Boilerplate-heavy page: at least 10 lines, most of them under 6 words (menus, link lists).
fn is_boilerplate(text: &str) -> bool {
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let short = lines
        .iter()
        .filter(|l| l.split_whitespace().count() < 6)
        .count();
    lines.len() >= 10 && short * 10 >= lines.len() * 7
}

/// train-lm settings for the samples: a small SentencePiece vocabulary, plenty of memory.
fn lm_options(inputs: Vec<PathBuf>, order: usize, output: &Path) -> TrainLmOptions {
    TrainLmOptions {
        inputs,
        reader: None,
        language: "en".into(),
        order,
        memory: 64 << 20,
        lead_only: false,
        max_docs: None,
        prune: vec![],
        vocab_size: 4000,
        sp_docs: 400_000,
        sp_max_bytes: None,
        arpa: None,
        output: output.to_path_buf(),
    }
}

/// Trains an order-3 model on the books and every other Wikipedia page; returns the model's
/// path and the held-out pages.
fn train_model(dir: &Path) -> (PathBuf, Vec<String>) {
    let wiki = docs(&[WIKI]);
    assert!(wiki.len() > 90, "{} Wikipedia pages with prose", wiki.len());
    let mut held = Vec::new();
    let mut train = String::new();
    for (i, page) in wiki.into_iter().enumerate() {
        if i % 2 == 0 {
            train.push_str(&serde_json::json!({ "text": page }).to_string());
            train.push('\n');
        } else {
            held.push(page);
        }
    }
    let pages = dir.join("train-pages.jsonl");
    std::fs::write(&pages, train).unwrap();
    let mut inputs: Vec<PathBuf> = BOOKS.iter().map(PathBuf::from).collect();
    inputs.push(pages);
    let path = dir.join("lm.bin");
    let r = train_lm(&lm_options(inputs, 3, &path)).unwrap();
    assert_eq!(r.summary.ngrams.len(), 3);
    (path, held)
}

#[test]
fn wikipedia_scores_lower_perplexity_than_boilerplate_pages() {
    let dir = tempfile::tempdir().unwrap();
    let (path, held) = train_model(dir.path());
    let model = PieceScorer::load(&path).unwrap();
    let pp = |texts: &[String]| -> Vec<f64> {
        texts
            .iter()
            .filter_map(|t| model.score_text(t).perplexity())
            .collect()
    };
    let wiki = pp(&held);
    let boiler: Vec<String> = docs(&[CC])
        .into_iter()
        .filter(|t| is_boilerplate(t))
        .collect();
    assert!(boiler.len() >= 50, "{} boilerplate pages", boiler.len());
    let boiler = pp(&boiler);
    let head = pp(&docs(&[CC_HEAD]));
    let all_cc = pp(&docs(&[CC]));
    let (mw, mb, mh, mc) = (
        median(wiki.clone()),
        median(boiler.clone()),
        median(head),
        median(all_cc),
    );
    println!(
        "median perplexity: held-out Wikipedia {mw:.0} ({} pages), CCNet head docs {mh:.0}, \
         all CC docs {mc:.0}, boilerplate CC docs {mb:.0} ({} docs)",
        wiki.len(),
        boiler.len()
    );
    assert!(mw * 3.0 < mb, "Wikipedia {mw} vs boilerplate {mb}");
    // CCNet's own head bucket (perplexity < 340 under its Wikipedia model) ranks below the
    // unfiltered crawl under ours too.
    assert!(mh < mc, "CCNet head {mh} vs all CC {mc}");
    // Most held-out Wikipedia pages score below most boilerplate pages.
    let below = wiki.iter().filter(|&&w| w < mb).count();
    assert!(
        below * 10 >= wiki.len() * 9,
        "{below} of {} below the boilerplate median",
        wiki.len()
    );
}

#[test]
fn perplexity_stage_writes_metadata_and_bucket_stage_splits() {
    let dir = tempfile::tempdir().unwrap();
    let (model_path, held) = train_model(dir.path());
    let t: toml::Table = toml::from_str(&format!(
        "models = {{ en = {:?} }}",
        model_path.to_str().unwrap()
    ))
    .unwrap();
    let stage = PerplexityScorer::from_params(&t).unwrap();
    let pos = DocPos { shard: 0, index: 0 };
    let mut wiki = Document::new("w", held[0].clone(), "wiki");
    assert_eq!(stage.process(&mut wiki, pos), Verdict::Keep);
    let pp = wiki.metadata["perplexity"].as_f64().unwrap();
    assert!(pp > 1.0);
    let mut empty = Document::new("e", " \n ", "cc");
    assert_eq!(stage.process(&mut empty, pos), Verdict::drop("no_tokens"));
    let mut de = Document::new("d", "Guten Tag", "cc").with("language", "de");
    assert_eq!(stage.process(&mut de, pos), Verdict::Keep);
    assert!(!de.metadata.contains_key("perplexity"));

    let b: toml::Table = toml::from_str(&format!(
        "cutoffs = {{ en = [{}, {}] }}",
        pp + 1.0,
        pp + 2.0
    ))
    .unwrap();
    let bucket = PerplexityBucketer::from_params(&b).unwrap();
    assert_eq!(bucket.process(&mut wiki, pos), Verdict::Keep);
    assert_eq!(wiki.metadata["bucket"], "head");
}

#[test]
fn lm_cutoffs_go_into_the_sidecar_and_feed_the_bucket_stage() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("lm.bin");
    train_lm(&lm_options(vec![PathBuf::from(BOOKS[1])], 3, &model)).unwrap();
    let bucket_toml: toml::Table = toml::from_str(&format!(
        "models = {{ en = {:?} }}",
        model.to_str().unwrap()
    ))
    .unwrap();
    let err = PerplexityBucketer::from_params(&bucket_toml).err().unwrap();
    assert!(format!("{err:#}").contains("lm-cutoffs"), "{err:#}");
    let cut = datamill::lm::compute_cutoffs(
        &model,
        "en",
        &[PathBuf::from(CC)],
        None,
        None,
        None,
        [30.0, 60.0],
    )
    .unwrap();
    assert!(cut.head < cut.middle && cut.docs > 600, "{cut:?}");
    let side = datamill::lm::LmSidecar::load(&model).unwrap();
    assert_eq!(side.cutoffs["en"], cut);
    let stage = PerplexityBucketer::from_params(&bucket_toml).unwrap();
    let mut d = Document::new("a", "x", "").with("perplexity", cut.middle + 1.0);
    let v = stage.process(&mut d, DocPos { shard: 0, index: 0 });
    assert_eq!(v, Verdict::drop("bucket_tail"));
    // The CCNet head sample carries `metadata.language`: filtering on another language skips all.
    let head = [PathBuf::from(CC_HEAD)];
    let fr = datamill::lm::compute_cutoffs(
        &model,
        "fr",
        &head,
        None,
        Some("language"),
        None,
        [30.0, 60.0],
    );
    assert!(fr.is_err());
    let en = datamill::lm::compute_cutoffs(
        &model,
        "en",
        &head,
        None,
        Some("language"),
        None,
        [30.0, 60.0],
    )
    .unwrap();
    assert_eq!(en.docs, 10);
    // After language ID (as the CommonCrawl pipeline runs it), only English pages count.
    let lid = Path::new(env!("CARGO_MANIFEST_DIR")).join("models/lid.176.ftz");
    let gate = LanguageGate {
        model: datamill::filter::langid::LidModel::load(&lid).unwrap(),
        threshold: 0.5,
    };
    let english = datamill::lm::compute_cutoffs(
        &model,
        "en",
        &[PathBuf::from(CC)],
        None,
        None,
        Some(&gate),
        [30.0, 60.0],
    )
    .unwrap();
    assert!(
        english.docs > 100 && english.docs < cut.docs,
        "{english:?} of {cut:?}"
    );
}

#[test]
fn bad_model_files_fail_at_start_up() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("lm.bin");
    train_lm(&lm_options(vec![PathBuf::from(BOOKS[1])], 2, &model)).unwrap();
    let stage_for = |p: &Path| {
        let t: toml::Table =
            toml::from_str(&format!("models = {{ en = {:?} }}", p.to_str().unwrap())).unwrap();
        PerplexityScorer::from_params(&t)
            .err()
            .map(|e| format!("{e:#}"))
    };
    assert_eq!(stage_for(&model), None);
    let missing = stage_for(&dir.path().join("nope.bin")).unwrap();
    assert!(missing.contains("cannot open n-gram model"), "{missing}");
    let bytes = std::fs::read(&model).unwrap();
    let truncated = dir.path().join("truncated.bin");
    std::fs::write(&truncated, &bytes[..bytes.len() - 100]).unwrap();
    let e = stage_for(&truncated).unwrap();
    assert!(e.contains("truncated"), "{e}");
    let mut flipped = bytes.clone();
    let n = flipped.len();
    flipped[n - 5] ^= 0xff;
    let damaged = dir.path().join("damaged.bin");
    std::fs::write(&damaged, flipped).unwrap();
    assert!(stage_for(&damaged).unwrap().contains("checksum"));
    let e = stage_for(Path::new(BOOKS[1])).unwrap();
    assert!(e.contains("wrong magic"), "{e}");
}

#[test]
fn a_pipeline_with_a_missing_model_fails_before_reading_anything() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let pipe = dir.path().join("p.toml");
    std::fs::write(
        &pipe,
        format!(
            "name = \"cc\"\nsource = \"commoncrawl\"\n[input]\npaths = [{CC:?}]\nreader = \"jsonl\"\n\
             [output]\ndir = {:?}\n[[stages]]\ntype = \"perplexity\"\nmodels = {{ en = \"models/missing-lm.bin\" }}\n",
            out.to_str().unwrap()
        ),
    )
    .unwrap();
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_datamill"))
        .arg("run")
        .arg(&pipe)
        .output()
        .unwrap();
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("cannot open n-gram model models/missing-lm.bin"),
        "{err}"
    );
    assert!(!out.join("00000.jsonl.zst").exists());
}

#[test]
fn warc_and_wet_inputs_are_read_as_page_text() {
    let warc = docs(&["samples/commoncrawl/chatnoir-resiliparse/warcfile.warc.gz"]);
    assert!(warc.len() >= 10, "{} pages", warc.len());
    assert!(warc
        .iter()
        .all(|t| !t.contains("<html") && !t.contains("HTTP/1.1 200")));
    let wet = docs(&["samples/commoncrawl/whirlwind-python/whirlwind.warc.wet.gz"]);
    assert_eq!(wet.len(), 1);
}
