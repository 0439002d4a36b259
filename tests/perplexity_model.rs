//! CCNet's perplexity model (`train-lm`) on the in-repo samples: KenLM (the `kenlm` Python
//! package 0.3.0 in `.venv`) gives the same sentence log10 probabilities as datamill for a
//! datamill-written ARPA file and for a hand-written one with back-offs; a tiny memory budget
//! writes byte-identical files; the `perplexity` stage scores normalised pieces, bit for bit as
//! the plain path (Unicode normalisation, uncached encoding, token-by-token lookups) does on
//! real pages; `--lead-only`, `--max-docs` and bad ARPA files behave.

use std::path::{Path, PathBuf};
use std::process::Command;

use datamill::lm::model::{token_hash, NgramModel};
use datamill::lm::normalize::normalize_line_unicode;
use datamill::lm::scorer::PieceScorer;
use datamill::lm::{train_lm, LmSidecar, TrainLmOptions};
use datamill::quality::perplexity::PerplexityScorer;
use datamill::sources::training::for_each_training_text;
use datamill::tokenizer::Tokenizer;
use datamill::{DocPos, Document, Stage, Verdict};

const BOOKS: [&str; 2] = [
    "samples/books/Pride-and-Prejudice_1342/1342.txt",
    "samples/books/The-Wonderful-Wizard-of-Oz_55/55.txt",
];
const CC: &str = "samples/c4/dolma/CC-MAIN-20190717121559-20190717143559-00140.jsonl.gz";
const WIKI_DUMP: &str = "samples/wikipedia/dumpster-dive/smallwiki-latest-pages-articles.xml";
const ENWIKI: &str =
    "samples/wikipedia/gensim/enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2";

mod common;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn python() -> PathBuf {
    common::venv_python("kenlm==0.3.0")
}

/// KenLM's `Model(arpa).score(line, bos=True, eos=True)` for every line of `lines`.
fn kenlm_scores(arpa: &Path, lines: &[String], dir: &Path) -> Vec<f64> {
    let input = dir.join("sentences.txt");
    std::fs::write(&input, lines.join("\n") + "\n").unwrap();
    let script = "import sys, kenlm\n\
        m = kenlm.Model(sys.argv[1])\n\
        for line in open(sys.argv[2], encoding='utf-8').read().split('\\n')[:-1]:\n\
        \x20   print(repr(m.score(line, bos=True, eos=True)))\n";
    let out = Command::new(python())
        .args(["-c", script])
        .arg(arpa)
        .arg(&input)
        .output()
        .expect("run python");
    assert!(
        out.status.success(),
        "kenlm failed (run `make setup-python`): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let scores: Vec<f64> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| l.parse().unwrap())
        .collect();
    assert_eq!(scores.len(), lines.len());
    scores
}

fn datamill_score(model: &NgramModel, line: &str) -> f64 {
    let words: Vec<u64> = line.split_whitespace().map(token_hash).collect();
    model.score_tokens(&words, &mut Vec::new()).log10_prob
}

fn options(output: &Path) -> TrainLmOptions {
    TrainLmOptions {
        inputs: BOOKS.iter().map(PathBuf::from).collect(),
        reader: None,
        language: "en".into(),
        order: 5,
        memory: 64 << 20,
        lead_only: false,
        max_docs: None,
        prune: vec![],
        vocab_size: 2000,
        sp_docs: 400_000,
        sp_max_bytes: None,
        arpa: None,
        output: output.to_path_buf(),
    }
}

/// Lines of CommonCrawl pages (not in the training text).
fn sample_lines(n: usize) -> Vec<String> {
    let mut lines = Vec::new();
    for_each_training_text(&[PathBuf::from(CC)], None, None, &mut |t| {
        lines.extend(
            t.lines()
                .filter(|l| !l.trim().is_empty())
                .map(str::to_string),
        );
    })
    .unwrap();
    lines.truncate(n);
    assert_eq!(lines.len(), n);
    lines
}

#[test]
fn kenlm_scores_a_handwritten_arpa_with_backoffs_as_datamill_does() {
    let dir = tempfile::tempdir().unwrap();
    let arpa = root().join("tests/fixtures/lm/handmade.arpa");
    let model = NgramModel::load(&arpa).unwrap();
    assert_eq!(model.counts(), [6, 6, 3]);
    let lines: Vec<String> = [
        "a b c",
        "a a",
        "b a b c",
        "c c c",
        "a x b",
        "",
        "b c a b c",
        "x",
        "c b a",
        "a b a b",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let kenlm = kenlm_scores(&arpa, &lines, dir.path());
    for (line, k) in lines.iter().zip(&kenlm) {
        let d = datamill_score(&model, line);
        assert!((d - k).abs() < 1e-4, "`{line}`: datamill {d}, kenlm {k}");
    }
    // The back-offs matter: "a a" backs off from the context `a` (-0.3) and from `<s> a`.
    assert!((kenlm[1] - -2.35).abs() < 1e-4);
}

#[test]
fn kenlm_scores_a_datamill_arpa_as_datamill_does_and_the_binary_agrees() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("en.bin");
    let arpa = dir.path().join("en.arpa");
    let report = train_lm(&TrainLmOptions {
        arpa: Some(arpa.clone()),
        ..options(&out)
    })
    .unwrap();
    assert_eq!(report.summary.order, 5);
    assert!(
        report.summary.ngrams[4] > 10_000,
        "{:?}",
        report.summary.ngrams
    );
    // The sidecars name the SentencePiece model beside them.
    let side = LmSidecar::load(&out).unwrap();
    assert_eq!(side.sentencepiece.as_deref(), Some("en.sp.model"));
    assert!(dir.path().join("en.sp.model").exists());
    assert_eq!(LmSidecar::load(&arpa).unwrap().format, "arpa");

    let scorer = PieceScorer::load(&out).unwrap();
    let lines: Vec<String> = sample_lines(300)
        .iter()
        .map(|l| scorer.pieces_of_line(l))
        .filter(|p| !p.is_empty())
        .collect();
    let kenlm = kenlm_scores(&arpa, &lines, dir.path());
    let from_arpa = NgramModel::load(&arpa).unwrap();
    assert_eq!(from_arpa.counts(), report.summary.ngrams);
    for (line, k) in lines.iter().zip(&kenlm) {
        let bin = datamill_score(scorer.model(), line);
        let txt = datamill_score(&from_arpa, line);
        assert!(
            (bin - k).abs() < 1e-4,
            "`{line}`: datamill {bin}, kenlm {k}"
        );
        assert!(
            (txt - k).abs() < 1e-4,
            "`{line}`: datamill (ARPA) {txt}, kenlm {k}"
        );
    }
}

#[test]
fn a_tiny_memory_budget_writes_the_same_model_files() {
    let dir = tempfile::tempdir().unwrap();
    let build = |name: &str, memory: u64| {
        let d = dir.path().join(name);
        std::fs::create_dir_all(&d).unwrap();
        let r = train_lm(&TrainLmOptions {
            memory,
            // A SentencePiece sample smaller than the text, so the sampled path is compared too.
            sp_max_bytes: Some(256 << 10),
            prune: vec![0, 0, 1],
            arpa: Some(d.join("en.arpa")),
            ..options(&d.join("en.bin"))
        })
        .unwrap();
        (d, r)
    };
    let (small, rs) = build("small", 64 << 10);
    let (large, rl) = build("large", 1 << 30);
    assert!(
        rs.summary.spilled_runs > 20,
        "{} runs",
        rs.summary.spilled_runs
    );
    assert_eq!(rl.summary.spilled_runs, 0);
    for f in ["en.bin", "en.arpa", "en.sp.model"] {
        let a = std::fs::read(small.join(f)).unwrap();
        let b = std::fs::read(large.join(f)).unwrap();
        assert!(a == b, "{f} differs between 64 KB and 1 GB of sort memory");
    }
    // No work files are left behind.
    let left: Vec<_> = std::fs::read_dir(&small)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left.len(), 5, "{left:?}");
}

#[test]
fn the_sentencepiece_sample_is_bounded_deterministic_and_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let build = |name: &str, sp_max_bytes: u64| {
        let d = dir.path().join(name);
        std::fs::create_dir_all(&d).unwrap();
        let r = train_lm(&TrainLmOptions {
            order: 3,
            vocab_size: 1000,
            sp_max_bytes: Some(sp_max_bytes),
            ..options(&d.join("en.bin"))
        })
        .unwrap();
        (d, r)
    };
    let (a, ra) = build("a", 100_000);
    let (b, rb) = build("b", 100_000);
    let (whole, rw) = build("whole", 1 << 30);
    // The bound holds, to within one of the 65,536 hash buckets.
    let s = &ra.sp_sample;
    assert!(s.bytes <= 100_000, "{} bytes", s.bytes);
    assert!(
        s.bytes + s.bytes_offered / 1000 > 100_000,
        "{} bytes",
        s.bytes
    );
    assert!(
        s.lines < s.lines_offered / 5,
        "{} of {} lines",
        s.lines,
        s.lines_offered
    );
    // Without a binding budget every line is in it.
    assert_eq!(rw.sp_sample.bytes, rw.sp_sample.bytes_offered);
    assert_eq!(rw.sp_sample.bytes_offered, s.bytes_offered);
    // The same settings give the same files; the sample changes the pieces.
    for f in ["en.bin", "en.sp.model"] {
        let x = std::fs::read(a.join(f)).unwrap();
        assert!(x == std::fs::read(b.join(f)).unwrap(), "{f} differs");
    }
    assert!(
        std::fs::read(a.join("en.sp.model")).unwrap()
            != std::fs::read(whole.join("en.sp.model")).unwrap()
    );
    // The n-grams are counted on every line whatever the sample.
    assert_eq!(ra.summary.sentences, rw.summary.sentences);
    assert_eq!(rb.summary.tokens, ra.summary.tokens);
    // The sidecar records the rule and the sizes.
    let sidecar = LmSidecar::load(&a.join("en.bin")).unwrap();
    assert_eq!(sidecar.sentencepiece_sample.as_ref(), Some(s));
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(a.join("en.bin.json")).unwrap()).unwrap();
    let recorded = &json["sentencepiece_sample"];
    assert_eq!(recorded["max_bytes"], 100_000);
    assert_eq!(recorded["max_docs"], 400_000);
    assert!(recorded["rule"]
        .as_str()
        .unwrap()
        .contains("xxh3(line number, seed)"));
    // No work files are left behind.
    let mut left: Vec<_> = std::fs::read_dir(&a)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    left.sort();
    assert_eq!(left, ["en.bin", "en.bin.json", "en.sp.model"]);
}

/// Trains `dir/en.bin` on the books; the `perplexity` stage and the scorer of that model.
fn trained_stage(dir: &Path) -> (PerplexityScorer, PieceScorer) {
    let out = dir.join("en.bin");
    train_lm(&options(&out)).unwrap();
    let params: toml::Table = toml::from_str(&format!(
        "models = {{ en = {:?} }}",
        out.display().to_string()
    ))
    .unwrap();
    let stage = PerplexityScorer::from_params(&params).unwrap();
    (stage, PieceScorer::load(&out).unwrap())
}

#[test]
fn the_perplexity_stage_scores_normalised_pieces_per_line() {
    let dir = tempfile::tempdir().unwrap();
    let (stage, scorer) = trained_stage(dir.path());
    let text = "It was a truth universally acknowledged.\n\n  ÉLIZABETH  said “No” in 1813…\n";
    let mut doc = Document::new("d", text, "x");
    assert_eq!(
        stage.process(&mut doc, DocPos { shard: 0, index: 0 }),
        Verdict::Keep
    );
    // By hand: both non-empty lines, normalised and cut, each `<s> .. </s>`.
    let (mut lp, mut n) = (0f64, 0u64);
    for line in [
        "it was a truth universally acknowledged.",
        "elizabeth  said \"no\" in 0000...",
    ] {
        let pieces = scorer.pieces_of_line(line);
        assert_eq!(pieces, scorer.pieces_of_line(&line.to_uppercase()));
        let words: Vec<u64> = pieces.split(' ').map(token_hash).collect();
        let s = scorer.model().score_tokens(&words, &mut Vec::new());
        lp += s.log10_prob;
        n += s.tokens;
    }
    let want = (10f64.powf(-lp / n as f64) * 10.0).round() / 10.0;
    assert_eq!(doc.metadata["perplexity"].as_f64().unwrap(), want);
    // An ARPA file with a sidecar works in the stage too.
    let arpa = root().join("tests/fixtures/lm/handmade.arpa");
    let copy = dir.path().join("hand.arpa");
    std::fs::copy(&arpa, &copy).unwrap();
    LmSidecar {
        format: "arpa".into(),
        sentencepiece: Some("en.sp.model".into()),
        ..Default::default()
    }
    .save(&copy)
    .unwrap();
    let params: toml::Table = toml::from_str(&format!(
        "models = {{ en = {:?} }}",
        copy.display().to_string()
    ))
    .unwrap();
    let stage = PerplexityScorer::from_params(&params).unwrap();
    let mut doc = Document::new("d", "a b c", "x");
    assert_eq!(
        stage.process(&mut doc, DocPos { shard: 0, index: 0 }),
        Verdict::Keep
    );
    assert!(doc.metadata["perplexity"].as_f64().unwrap() > 1.0);
}

/// The stage's score of `text` by the plain path: each line normalised through the Unicode
/// tables, encoded without the word cache, every token looked up on its own
/// ([`NgramModel::token_log10`]), summed in f32 per line as the stage does.
fn reference_score(model: &NgramModel, tok: &Tokenizer, text: &str) -> (f64, u64) {
    let (mut log10, mut tokens) = (0f64, 0u64);
    let mut norm = String::new();
    for raw in text.split('\n') {
        normalize_line_unicode(raw, &mut norm);
        let ids = tok.encode(&norm);
        if ids.is_empty() {
            continue;
        }
        let mut hashes = vec![token_hash("<s>")];
        hashes.extend(
            ids.iter()
                .map(|&id| token_hash(tok.piece(id).unwrap_or("<unk>"))),
        );
        hashes.push(token_hash("</s>"));
        let mut line = 0f32;
        for i in 1..hashes.len() {
            line += model.token_log10(&hashes, i);
        }
        log10 += line as f64;
        tokens += hashes.len() as u64 - 1;
    }
    (log10, tokens)
}

#[test]
fn the_stage_scores_real_pages_bit_for_bit_as_the_plain_path() {
    let dir = tempfile::tempdir().unwrap();
    let (stage, scorer) = trained_stage(dir.path());
    let tok = Tokenizer::load(&dir.path().join("en.sp.model")).unwrap();
    let mut texts = Vec::new();
    let inputs = [
        CC,
        "samples/commoncrawl/dolma/sample-0000.warc.gz",
        "samples/commoncrawl-cited/cited-pages.warc.gz",
        "samples/wikipedia/extraction-framework/fr/wiki.xml.bz2",
        "samples/wikipedia/extraction-framework/zh/wiki.xml.bz2",
    ];
    for input in inputs {
        let before = texts.len();
        for_each_training_text(&[root().join(input)], None, None, &mut |t| {
            texts.push(t.to_string())
        })
        .unwrap();
        assert!(texts.len() > before, "no documents from {input}");
    }
    // Hand-made lines the pages may lack: accented capitals, fullwidth digits, Unicode
    // punctuation, control characters, blank lines, a character outside the vocabulary.
    texts.push("ÉCOLE Über 1２3 «x» — y…\n\n\t\u{7}\n  ＡＢＣ？！ 🦀 end".into());
    let (mut scored, mut non_ascii) = (0, 0);
    for text in &texts {
        let (log10, tokens) = reference_score(scorer.model(), &tok, text);
        let got = scorer.score_text(text);
        assert_eq!(
            (got.log10_prob.to_bits(), got.tokens),
            (log10.to_bits(), tokens),
            "{:?}",
            &text[..text.len().min(200)]
        );
        let mut doc = Document::new("d", text, "x");
        stage.process(&mut doc, DocPos { shard: 0, index: 0 });
        if tokens > 0 {
            let pp = 10f64.powf(-log10 / tokens as f64);
            assert_eq!(
                doc.metadata["perplexity"].as_f64().unwrap(),
                (pp * 10.0).round() / 10.0
            );
            scored += 1;
            non_ascii += usize::from(!text.is_ascii());
        }
    }
    assert!(
        scored > 800 && non_ascii > 100,
        "{scored} scored, {non_ascii} non-ASCII"
    );
}

#[test]
fn bad_arpa_files_are_errors_naming_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let good = std::fs::read_to_string(root().join("tests/fixtures/lm/handmade.arpa")).unwrap();
    let cases = [
        (
            "wrong-count.arpa",
            good.replace("ngram 3=3", "ngram 3=4"),
            "line 27",
        ),
        (
            "truncated.arpa",
            good[..good.find("-0.25\ta b c").unwrap()].to_string(),
            "truncated",
        ),
    ];
    for (name, text, want) in cases {
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        let e = format!("{:#}", NgramModel::load(&p).err().unwrap());
        assert!(e.contains(name) && e.contains(want), "{name}: {e}");
    }
}

#[test]
fn max_docs_and_lead_only_limit_the_training_text() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("en.bin");
    let all = train_lm(&TrainLmOptions {
        inputs: vec![PathBuf::from(ENWIKI)],
        vocab_size: 500,
        order: 3,
        ..options(&out)
    })
    .unwrap();
    let few = train_lm(&TrainLmOptions {
        inputs: vec![PathBuf::from(ENWIKI)],
        vocab_size: 500,
        order: 3,
        max_docs: Some(20),
        ..options(&out)
    })
    .unwrap();
    assert_eq!(few.docs, 20);
    assert!(all.docs > 50, "{} documents", all.docs);
    let lead = train_lm(&TrainLmOptions {
        inputs: vec![PathBuf::from(ENWIKI)],
        vocab_size: 500,
        order: 3,
        lead_only: true,
        ..options(&out)
    })
    .unwrap();
    assert!(lead.docs > 10, "{} lead sections", lead.docs);
    assert!(
        lead.bytes * 2 < all.bytes,
        "lead sections {} bytes, whole articles {} bytes",
        lead.bytes,
        all.bytes
    );
}

#[test]
fn the_wikipedia_reader_keeps_lead_sections_only_when_asked() {
    let read = |lead: bool| -> Vec<String> {
        let mut o = toml::Table::new();
        o.insert("lead_only".into(), toml::Value::Boolean(lead));
        o.insert("keep_wikitext".into(), toml::Value::Boolean(true));
        let r = datamill::sources::build_reader("wikipedia", &o).unwrap();
        r.read(Path::new(WIKI_DUMP), "wikipedia")
            .unwrap()
            .map(|d| d.unwrap().text)
            .collect()
    };
    let (full, lead) = (read(false), read(true));
    assert_eq!(full.len(), lead.len());
    let mut cut = 0;
    for (f, l) in full.iter().zip(&lead) {
        assert!(f.starts_with(l.as_str()));
        assert!(!l.lines().any(|x| x.trim_start().starts_with("==")));
        cut += (f.len() > l.len()) as usize;
    }
    assert!(cut > 10, "{cut} articles had sections after their lead");
}
