//! datamill's own fastText inference against the C++ library (the `fasttext` crate, the
//! reference): the same top label and a probability within 1e-5 for lid.176.ftz, for classifiers
//! made by `train-classifier` (dense and quantized) and for small models trained here (softmax
//! with word n-grams; hierarchical softmax with character n-grams, dense and quantized with a
//! quantized output), on every line of the language-ID fixtures, every document of samples/
//! (read through the pipelines' readers) and hand-made edge lines. Where the C++ library's two
//! best probabilities are within 1e-6 either label counts, and the test reports how many.

use std::io::Write;
use std::path::{Path, PathBuf};

use datamill::filter::fasttext_model::FastTextModel;
use datamill::filter::fasttext_tokens::Input;
use datamill::quality::classifier::{ReferenceClassifier, TrainSettings, MAX_CLASSIFIED_BYTES};
use datamill::quality::wikiref_training::{train_classifier, ClassifierInputs, PositiveMatch};
use fasttext::{Args, FastText, LossName, ModelName};

const PROB_TOLERANCE: f32 = 1e-5;
const TIE: f32 = 1e-6;

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

fn lid_path() -> PathBuf {
    let p = repo("models/lid.176.ftz");
    assert!(p.exists(), "{} is missing: run `make setup`", p.display());
    p
}

fn load_cpp(path: &Path) -> FastText {
    let mut ft = FastText::new();
    ft.load_model(path.to_str().unwrap()).unwrap();
    ft
}

/// Label and text of every line of both language-ID fixtures.
fn fixture_lines() -> Vec<(String, String)> {
    let mut out = Vec::new();
    for name in ["tatoeba-laser.tsv", "lingua-leipzig.tsv"] {
        let text = std::fs::read_to_string(repo("tests/fixtures/langid").join(name)).unwrap();
        for line in text.lines() {
            if let Some((label, t)) = line.split_once('\t') {
                out.push((label.to_string(), t.to_string()));
            }
        }
    }
    assert!(out.len() >= 59_949, "{} fixture lines", out.len());
    out
}

/// Every document of samples/, read with the reader of each source pipeline.
fn sample_documents() -> Vec<String> {
    let mut docs = Vec::new();
    for pipeline in [
        "arxiv",
        "books",
        "c4",
        "commoncrawl",
        "github",
        "stackexchange",
        "wikipedia",
    ] {
        let conf: toml::Table = toml::from_str(
            &std::fs::read_to_string(repo(&format!("pipelines/{pipeline}.toml"))).unwrap(),
        )
        .unwrap();
        let input = conf["input"].as_table().unwrap();
        let reader_name = input["reader"].as_str().unwrap();
        let reader = datamill::sources::build_reader(reader_name, &toml::Table::new()).unwrap();
        let paths: Vec<PathBuf> = input["paths"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| repo(p.as_str().unwrap()))
            .collect();
        let names: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
        let files = datamill::inputs::expand_inputs(&names).unwrap();
        let before = docs.len();
        for file in files {
            for doc in reader.read(&file, pipeline).unwrap().flatten() {
                docs.push(doc.text);
            }
        }
        assert!(
            docs.len() > before,
            "no documents from samples of {pipeline}"
        );
    }
    docs
}

/// Hand-made lines that exercise the tokeniser's edges.
fn edge_lines() -> Vec<String> {
    let mut v: Vec<String> = [
        "",
        " ",
        "   \t \r\n  \u{b}\u{c} ",
        "\n",
        "\n\n\nword",
        "hello\0world\0",
        "\0\0\0",
        "control \u{1}\u{2}\u{7f} chars \u{1b}[0m here",
        "mixed Русский English 中文 العربية हिन्दी 日本語 한국어 text",
        "emoji 😀🎉👍🏽 family 👨‍👩‍👧 flags 🇫🇷🇩🇪",
        "replacement \u{FFFD}\u{FFFD} chars \u{FFFD}",
        "no trailing newline at the end",
        "trailing newline\n",
        "__label__en is a label-looking token __label__",
        "</s> </s> the end-of-sentence token </s>",
        "a",
        "é",
        "\u{a0}non-breaking\u{a0}space\u{2003}em space",
        "Ünïcödé wörds with àccents and ß",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    v.push("x".repeat(2 << 20));
    v.push("é".repeat(1 << 20));
    v.push("The quick brown fox jumps over the lazy dog. ".repeat(2000));
    v
}

#[derive(Default, Debug)]
struct Parity {
    compared: usize,
    ties: usize,
    no_prediction: usize,
    max_diff: f32,
}

/// The C++ library's input for `text` read as `input`: a document has its newlines and NULs
/// as spaces and one final newline; a line goes as it is (NUL would end the C string).
fn cpp_text(text: &str, input: Input) -> Option<String> {
    match input {
        Input::Document => {
            let mut s: String = text
                .chars()
                .map(|c| if c == '\n' || c == '\0' { ' ' } else { c })
                .collect();
            s.push('\n');
            Some(s)
        }
        Input::Line => (!text.contains('\0')).then(|| text.to_string()),
    }
}

fn compare(cpp: &FastText, own: &FastTextModel, text: &str, input: Input, p: &mut Parity) {
    let Some(line) = cpp_text(text, input) else {
        return;
    };
    let want = cpp.predict(&line, 2, 0.0).unwrap();
    let got = own.predict(text, input, 2, |preds| preds.to_vec());
    let short: String = text.chars().take(80).collect();
    assert_eq!(
        want.is_empty(),
        got.is_empty(),
        "{}: prediction or none differ on {short:?}: C++ {want:?}, own {got:?}",
        own.path().display()
    );
    p.compared += 1;
    if want.is_empty() {
        p.no_prediction += 1;
        return;
    }
    let label = |i: usize| format!("__label__{}", own.labels()[i]);
    let top = label(got[0].label);
    let matched = if top == want[0].label {
        &want[0]
    } else if want.len() > 1 && want[0].prob - want[1].prob <= TIE && top == want[1].label {
        p.ties += 1;
        &want[1]
    } else {
        panic!(
            "{}: top label differs on {short:?} ({input:?}): C++ {want:?}, own {top} {}",
            own.path().display(),
            got[0].prob
        );
    };
    let diff = (matched.prob - got[0].prob).abs();
    p.max_diff = p.max_diff.max(diff);
    assert!(
        diff <= PROB_TOLERANCE,
        "{}: probability of {top} on {short:?}: C++ {}, own {}",
        own.path().display(),
        matched.prob,
        got[0].prob
    );
    // The single-best path (k = 1) agrees with the top of k = 2.
    let best = own.predict_best(text, input).unwrap();
    assert_eq!(best.label, got[0].label);
    assert!((best.prob - got[0].prob).abs() <= PROB_TOLERANCE);
}

fn check_all(model: &Path, inputs: &[Input], texts: &[&str]) -> Parity {
    let cpp = load_cpp(model);
    let own = FastTextModel::load(model).unwrap();
    let mut p = Parity::default();
    for &input in inputs {
        for t in texts {
            compare(&cpp, &own, t, input, &mut p);
        }
        for t in edge_lines() {
            compare(&cpp, &own, &t, input, &mut p);
        }
    }
    eprintln!(
        "{}: {} texts compared, {} ties within {TIE}, {} without prediction, largest probability difference {:e}",
        model.display(),
        p.compared,
        p.ties,
        p.no_prediction,
        p.max_diff
    );
    p
}

#[test]
fn lid176_matches_the_cpp_library_on_fixtures_samples_and_edge_lines() {
    let lines = fixture_lines();
    let docs = sample_documents();
    let mut texts: Vec<&str> = lines.iter().map(|(_, t)| t.as_str()).collect();
    texts.extend(docs.iter().map(String::as_str));
    let p = check_all(&lid_path(), &[Input::Document], &texts);
    assert!(p.compared >= texts.len());
    // `langid --eval` counts the same correct lines as the C++ library did.
    let cpp = load_cpp(&lid_path());
    let own = datamill::filter::langid::LidModel::load(&lid_path()).unwrap();
    let (mut cpp_hits, mut own_hits) = (0usize, 0usize);
    for (label, text) in &lines {
        let line = cpp_text(text, Input::Document).unwrap();
        let want = cpp.predict(&line, 1, 0.0).unwrap();
        cpp_hits += usize::from(
            want.first()
                .is_some_and(|p| p.label == format!("__label__{label}")),
        );
        own_hits += usize::from(own.predict(text).is_some_and(|p| &p.language == label));
    }
    assert_eq!(own_hits, cpp_hits, "correct fixture lines");
    // The fixtures as lines too (no end-of-sentence token, a newline cuts the line).
    let lines_only: Vec<&str> = lines.iter().take(5000).map(|(_, t)| t.as_str()).collect();
    check_all(&lid_path(), &[Input::Line], &lines_only);
}

/// Writes `__label__L text` lines from about `n` lines spread over the language-ID fixtures; with
/// `split`, each label is split three ways by line number (over 256 labels, which fastText
/// needs to quantize the output matrix).
fn write_training_file(dir: &Path, n: usize, split: bool) -> PathBuf {
    let path = dir.join(if split {
        "train-split.txt"
    } else {
        "train.txt"
    });
    let mut w = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
    let lines = fixture_lines();
    let step = (lines.len() / n).max(1);
    for (i, (label, text)) in lines.iter().step_by(step).enumerate() {
        let part = if split {
            (i % 3).to_string()
        } else {
            String::new()
        };
        writeln!(w, "__label__{label}{part} {text}").unwrap();
    }
    w.flush().unwrap();
    path
}

fn train_small(train: &Path, loss: LossName, ngrams: i32, minn: i32, maxn: i32) -> FastText {
    let mut args = Args::new();
    args.set_input(train.to_str().unwrap()).unwrap();
    args.set_model(ModelName::SUP);
    args.set_loss(loss);
    args.set_word_ngrams(ngrams);
    args.set_minn(minn);
    args.set_maxn(maxn);
    args.set_bucket(50_000);
    args.set_dim(12);
    args.set_epoch(3);
    args.set_lr(0.5);
    args.set_thread(1);
    args.set_verbose(0);
    let mut ft = FastText::new();
    ft.train(&args).unwrap();
    ft
}

#[test]
fn small_models_match_the_cpp_library() {
    let dir = tempfile::tempdir().unwrap();
    let train = write_training_file(dir.path(), 20_000, false);
    let lines = fixture_lines();
    let docs = sample_documents();
    let mut texts: Vec<&str> = lines.iter().step_by(3).map(|(_, t)| t.as_str()).collect();
    texts.extend(docs.iter().map(String::as_str));

    // Softmax with word bigrams, no character n-grams.
    let softmax = dir.path().join("softmax.bin");
    train_small(&train, LossName::SOFTMAX, 2, 0, 0)
        .save_model(softmax.to_str().unwrap())
        .unwrap();
    check_all(&softmax, &[Input::Document, Input::Line], &texts);

    // Hierarchical softmax with word bigrams and character n-grams, dense then quantized
    // (norms and output quantized too, rows pruned).
    let split = write_training_file(dir.path(), 20_000, true);
    let hs = dir.path().join("hs.bin");
    let mut ft = train_small(&split, LossName::HS, 2, 2, 4);
    assert!(ft.get_labels().unwrap().0.len() >= 256);
    ft.save_model(hs.to_str().unwrap()).unwrap();
    check_all(&hs, &[Input::Document, Input::Line], &texts);
    let mut q = Args::new();
    q.set_input(split.to_str().unwrap()).unwrap();
    q.set_qnorm(true);
    q.set_qout(true);
    q.set_cutoff(5_000);
    q.set_retrain(false);
    ft.quantize(&q).unwrap();
    let hsq = dir.path().join("hs.ftz");
    ft.save_model(hsq.to_str().unwrap()).unwrap();
    let bytes = std::fs::read(&hsq).unwrap();
    // The pruning index is present (its size is the last dictionary-header field).
    let pruned = i64::from_le_bytes(bytes[84..92].try_into().unwrap());
    assert!(pruned > 0, "quantized model not pruned ({pruned})");
    check_all(&hsq, &[Input::Document, Input::Line], &texts);
}

fn train_reference_classifier(dir: &Path, quantize: bool) -> PathBuf {
    let out = dir.join(if quantize {
        "wikiref.ftz"
    } else {
        "wikiref.bin"
    });
    let settings = TrainSettings {
        epoch: 5,
        max_per_class: 2_000,
        quantize,
        ..Default::default()
    };
    let inputs = ClassifierInputs {
        positive: vec![repo("samples/commoncrawl-cited/cited-pages.warc.gz")],
        negative: vec![repo("samples/c4/dolma")],
        refs: None,
        matching: PositiveMatch::All,
        pipeline: None,
        reader: None,
        work_dir: None,
        threads: 1,
    };
    train_classifier(&inputs, &out, &settings).unwrap();
    out
}

#[test]
fn train_classifier_models_match_the_cpp_library() {
    let dir = tempfile::tempdir().unwrap();
    let docs = sample_documents();
    let lines = fixture_lines();
    let mut tok = datamill::lm::tokenize::WordTokenizer::new();
    // What the classifier stage predicts on: the normalised document, as one line.
    let mut normalised = Vec::new();
    for d in docs
        .iter()
        .map(String::as_str)
        .chain(lines.iter().take(3000).map(|(_, t)| t.as_str()))
    {
        // The stage classifies the first MAX_CLASSIFIED_BYTES of a document.
        let mut cut = d.len().min(MAX_CLASSIFIED_BYTES);
        while !d.is_char_boundary(cut) {
            cut -= 1;
        }
        let mut s = String::new();
        tok.normalized(&d[..cut], &mut s);
        normalised.push(s);
    }
    let mut texts: Vec<&str> = normalised.iter().map(String::as_str).collect();
    texts.extend(docs.iter().map(String::as_str));
    for quantize in [false, true] {
        let model = train_reference_classifier(dir.path(), quantize);
        check_all(&model, &[Input::Line, Input::Document], &texts);
        // The stage's score is the C++ library's p(ref) of the normalised text.
        let cpp = load_cpp(&model);
        let own = ReferenceClassifier::load(&model).unwrap();
        let (mut t2, mut buf) = (datamill::lm::tokenize::WordTokenizer::new(), String::new());
        for (d, norm) in docs.iter().zip(&normalised) {
            let got = own.score(d, &mut t2, &mut buf);
            let cut: String = norm.clone();
            let want = if cut.is_empty() {
                0.0
            } else {
                let preds = cpp.predict(&cut, 2, 0.0).unwrap();
                preds
                    .iter()
                    .find(|p| p.label == "__label__ref")
                    .map(|p| p.prob)
                    // No prediction at all (no word of the line is in the model): 0.
                    .unwrap_or_else(|| preds.first().map_or(0.0, |p| 1.0 - p.prob))
            };
            assert!(
                (got - want).abs() <= PROB_TOLERANCE,
                "{}: p(ref) {got} vs C++ {want}",
                model.display()
            );
        }
    }
}

#[test]
fn bad_model_files_are_clear_errors_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let good = std::fs::read(lid_path()).unwrap();
    let mut cases: Vec<(String, Vec<u8>, &str)> = vec![
        (
            "text.ftz".into(),
            b"this is not a model at all".to_vec(),
            "not a fastText model",
        ),
        ("empty.ftz".into(), Vec::new(), "file ends"),
    ];
    let mut v13 = good.clone();
    v13[4..8].copy_from_slice(&13i32.to_le_bytes());
    cases.push(("v13.ftz".into(), v13, "version 13"));
    let mut v10 = good.clone();
    v10[4..8].copy_from_slice(&10i32.to_le_bytes());
    cases.push(("v10.ftz".into(), v10, "version 10"));
    let mut ns = good.clone();
    ns[8 + 6 * 4..8 + 7 * 4].copy_from_slice(&2i32.to_le_bytes());
    cases.push(("ns.ftz".into(), ns, "negative-sampling"));
    let mut ova = good.clone();
    ova[8 + 6 * 4..8 + 7 * 4].copy_from_slice(&4i32.to_le_bytes());
    cases.push(("ova.ftz".into(), ova, "one-vs-all"));
    let mut cbow = good.clone();
    cbow[8 + 7 * 4..8 + 8 * 4].copy_from_slice(&1i32.to_le_bytes());
    cases.push(("cbow.ftz".into(), cbow, "not a supervised model"));
    let mut trailing = good.clone();
    trailing.extend_from_slice(b"junk");
    cases.push(("trailing.ftz".into(), trailing, "unexpected bytes"));
    for cut in [
        8,
        40,
        64,
        92,
        1000,
        good.len() / 3,
        good.len() / 2,
        good.len() - 1,
    ] {
        cases.push((
            format!("cut{cut}.ftz"),
            good[..cut].to_vec(),
            "file ends|truncated",
        ));
    }
    for (name, bytes, want) in cases {
        let p = dir.path().join(&name);
        std::fs::write(&p, &bytes).unwrap();
        let msg = format!("{:#}", FastTextModel::load(&p).err().unwrap());
        assert!(
            msg.contains(&name) && want.split('|').any(|w| msg.contains(w)),
            "{name}: {msg}"
        );
    }
    let msg = format!(
        "{:#}",
        FastTextModel::load(&dir.path().join("missing.ftz"))
            .err()
            .unwrap()
    );
    assert!(msg.contains("missing.ftz"), "{msg}");
}

#[test]
fn the_model_is_shared_by_threads_and_gives_the_same_answers() {
    fn shared<T: Send + Sync>(_: &T) {}
    let own = std::sync::Arc::new(FastTextModel::load(&lid_path()).unwrap());
    shared(&*own);
    let lines = fixture_lines();
    let texts: Vec<&str> = lines.iter().take(4000).map(|(_, t)| t.as_str()).collect();
    let alone: Vec<_> = texts
        .iter()
        .map(|t| own.predict_best(t, Input::Document))
        .collect();
    let halves: Vec<Vec<_>> = std::thread::scope(|s| {
        let handles: Vec<_> = texts
            .chunks(texts.len() / 2)
            .map(|chunk| {
                let own = own.clone();
                s.spawn(move || {
                    chunk
                        .iter()
                        .map(|t| own.predict_best(t, Input::Document))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(alone, halves.concat());
}
