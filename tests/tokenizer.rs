//! Tokenizer: datamill's encoder must give exactly sentencepiece's ids, on models trained by
//! datamill and by Python's sentencepiece 0.2.3, over 100,000+ mixed lines from samples/
//! (books, Wikipedia XML, web JSONL, code, Stack Exchange, 188 languages of LID sentences,
//! emoji, numbers, whitespace runs, tabs, CRLF, invalid UTF-8). The reference is both the Rust
//! `sentencepiece` crate (Google's C++ library) and Python's `sentencepiece` in `.venv`.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use datamill::doc::open_decompressed;
use datamill::tokenizer::corpus::SourceConfig;
use datamill::tokenizer::train::write_model;
use datamill::tokenizer::{spm_lossy_utf8, train_tokenizer, Tokenizer, TrainConfig};

const MIN_LINES: usize = 100_000;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The venv Python with sentencepiece 0.2.3; a missing venv is a failure, never a skip.
fn python() -> PathBuf {
    let py = root().join(".venv/bin/python");
    assert!(
        py.exists(),
        "{} is missing: run `make setup-python` (creates .venv with sentencepiece==0.2.3 and transformers==4.46.3)",
        py.display()
    );
    py
}

fn run_python(args: &[&str]) {
    let out = Command::new(python())
        .arg(root().join("scripts/spm_reference.py"))
        .args(args)
        .output()
        .expect("run python");
    assert!(
        out.status.success(),
        "spm_reference.py {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn read_all(path: &Path) -> Vec<u8> {
    let mut buf = Vec::new();
    open_decompressed(path)
        .unwrap()
        .read_to_end(&mut buf)
        .unwrap();
    buf
}

fn lines_of(bytes: &[u8]) -> Vec<Vec<u8>> {
    bytes.split(|&b| b == b'\n').map(|l| l.to_vec()).collect()
}

fn files_under(dir: &str) -> Vec<PathBuf> {
    let mut files =
        datamill::run::runner::expand_inputs(&[root().join(dir).display().to_string()]).unwrap();
    files.retain(|p| !p.to_string_lossy().ends_with("LICENSE"));
    files
}

/// Hand-made edge cases: whitespace runs, tabs, digits, emoji, rare scripts, markers.
fn edge_lines() -> Vec<Vec<u8>> {
    let mut v: Vec<Vec<u8>> = [
        "",
        " ",
        "   ",
        "\t",
        "a",
        " leading",
        "trailing ",
        "two  spaces   three    four",
        "\tx\t\ty",
        "    def f(x):\r",
        "        return x  # comment",
        "2023-11-27 10:05:00 UTC, 3.14159, 1,000,000 and ５６７",
        "emoji 🦀🦀 👩‍👩‍👧 ✨ done",
        "日本語のテキストです。東京タワー",
        "中文文本，没有空格的长句子用来测试字节回退和合并。",
        "한국어 문장입니다",
        "ελληνικά κείμενα και Кириллица",
        "▁literal ▁▁ markers ▁",
        "<s> </s> <unk> <0x41> literal specials",
        "\u{FFFD} replacement and \u{2047} and ༃ rare",
        "combining e\u{301} a\u{308}\u{323} marks",
        "zero\u{200B}width\u{FEFF}bom",
        "x",
    ]
    .iter()
    .map(|s| s.as_bytes().to_vec())
    .collect();
    v.push(b"invalid \xff\xfe bytes".to_vec());
    v.push(b"truncated \xe2\x82 euro and \xf0\x9f crab".to_vec());
    v.push(b"\xc3\x28 overlong \xc0\xaf and surrogate \xed\xa0\x80".to_vec());
    v.push(vec![b'9'; 300]);
    v.push("ab".repeat(700).into_bytes());
    v.push(" ".repeat(70).into_bytes());
    v
}

/// At least 100,000 lines, interleaved from every kind of sample.
fn mixed_lines() -> Vec<Vec<u8>> {
    let mut groups: Vec<Vec<Vec<u8>>> = Vec::new();
    for dir in [
        "samples/books",
        "samples/wikipedia",
        "samples/github",
        "samples/stackexchange",
        "samples/arxiv",
        "samples/c4",
        "tests/fixtures/langid",
        "samples/commoncrawl/cc_net",
    ] {
        let mut g = Vec::new();
        for f in files_under(dir) {
            let bytes = read_all(&f);
            for line in lines_of(&bytes) {
                // Web JSONL: the documents' text lines as well as the raw JSON.
                if dir == "samples/c4" {
                    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(&line) {
                        if let Some(t) = v.get("text").and_then(|t| t.as_str()) {
                            g.extend(lines_of(t.as_bytes()));
                        }
                    }
                }
                g.push(line);
            }
        }
        groups.push(g);
    }
    groups.push(edge_lines());
    let mut out = Vec::new();
    let mut i = 0;
    while groups.iter().any(|g| i < g.len()) {
        for g in &groups {
            if let Some(l) = g.get(i) {
                out.push(l.clone());
            }
        }
        i += 1;
    }
    assert!(out.len() >= MIN_LINES, "only {} lines", out.len());
    out.truncate(130_000);
    out
}

fn write_lines(path: &Path, lines: &[Vec<u8>]) {
    let mut buf = Vec::new();
    for l in lines {
        buf.extend_from_slice(l);
        buf.push(b'\n');
    }
    std::fs::write(path, buf).unwrap();
}

/// Training text: the valid UTF-8 lines among the first ones.
fn training_text(lines: &[Vec<u8>], bytes: usize) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut n = 0;
    for l in lines {
        if std::str::from_utf8(l).is_ok() && !l.is_empty() {
            n += l.len();
            out.push(l.clone());
            if n > bytes {
                break;
            }
        }
    }
    out
}

/// Writes `dir/train.txt`: the training text of about `bytes` from `lines`.
fn training_file(dir: &Path, lines: &[Vec<u8>], bytes: usize) -> PathBuf {
    let train = dir.join("train.txt");
    write_lines(&train, &training_text(lines, bytes));
    train
}

fn parse_id_lines(path: &Path) -> Vec<Vec<u32>> {
    let text = std::fs::read_to_string(path).unwrap();
    text.lines()
        .map(|l| {
            l.split_ascii_whitespace()
                .map(|t| t.parse().unwrap())
                .collect()
        })
        .collect()
}

/// Compares datamill against the C++ library (Rust crate) and Python on every line.
fn assert_parity(model: &Path, lines: &[Vec<u8>], dir: &Path) {
    let tok = Tokenizer::load(model).unwrap();
    let spp = sentencepiece::SentencePieceProcessor::open(model).unwrap();
    assert_eq!(tok.vocab_size(), spp.len());
    assert_eq!(tok.bos_id(), spp.bos_id());
    assert_eq!(tok.eos_id(), spp.eos_id());
    assert_eq!(tok.unk_id(), spp.unk_id());

    let lines_path = dir.join("lines.txt");
    write_lines(&lines_path, lines);
    let py_ids = dir.join("py_ids.txt");
    run_python(&[
        "encode",
        model.to_str().unwrap(),
        lines_path.to_str().unwrap(),
        py_ids.to_str().unwrap(),
    ]);
    let py = parse_id_lines(&py_ids);
    assert_eq!(py.len(), lines.len());

    // Every line against Python; every 4th line and every invalid one also against the C++
    // library through the Rust crate (its per-piece allocations make it the slow part).
    let mut enc = tok.encoder();
    let (mut tokens, mut invalid, mut bytes_fallback, mut cpp_checked) = (0, 0, 0, 0);
    let mut ours_all = Vec::with_capacity(lines.len());
    for (i, line) in lines.iter().enumerate() {
        let text = spm_lossy_utf8(line);
        let is_invalid = std::str::from_utf8(line).is_err();
        invalid += usize::from(is_invalid);
        let mut ours = Vec::new();
        enc.encode_into(&text, &mut ours);
        let ctx = || format!("line {i}: {text:?}");
        assert_eq!(ours, py[i], "Python sentencepiece differs on {}", ctx());
        let decoded = tok.decode(&ours).unwrap();
        // A literal `▁` in the input decodes as a space: the only lossy case besides
        // invalid UTF-8.
        if !text.contains('\u{2581}') {
            assert_eq!(decoded, text, "round trip of {}", ctx());
        }
        if i % 4 == 0 || is_invalid {
            cpp_checked += 1;
            assert_eq!(ours, tok.encode(&text), "cached vs uncached on {}", ctx());
            assert_eq!(
                ours,
                tok.encode_bytes(line),
                "bytes entry point on {}",
                ctx()
            );
            let cpp: Vec<u32> = spp.encode(&text).unwrap().iter().map(|p| p.id).collect();
            assert_eq!(ours, cpp, "C++ sentencepiece differs on {}", ctx());
            let cpp_text = spp.decode_piece_ids(&ours).unwrap();
            assert_eq!(decoded, cpp_text, "C++ decode differs on {}", ctx());
        }
        tokens += ours.len();
        bytes_fallback += ours.iter().filter(|&&id| (3..259).contains(&id)).count();
        ours_all.push(ours);
    }
    assert!(cpp_checked >= MIN_LINES / 4, "{cpp_checked}");
    assert!(lines.len() >= MIN_LINES);
    assert!(
        invalid >= 100,
        "the sample must hold invalid UTF-8 lines, has {invalid}"
    );
    assert!(
        bytes_fallback > 0 && tokens > 1_000_000,
        "{bytes_fallback} {tokens}"
    );

    // Python decodes datamill's ids to the same text.
    let ids_path = dir.join("ours.txt");
    let mut buf = String::new();
    for ids in &ours_all {
        let strs: Vec<String> = ids.iter().map(|i| i.to_string()).collect();
        buf.push_str(&strs.join(" "));
        buf.push('\n');
    }
    std::fs::write(&ids_path, buf).unwrap();
    let py_text = dir.join("py_text.txt");
    run_python(&[
        "decode",
        model.to_str().unwrap(),
        ids_path.to_str().unwrap(),
        py_text.to_str().unwrap(),
    ]);
    let decoded = std::fs::read(&py_text).unwrap();
    let decoded = lines_of(&decoded);
    for (i, line) in lines.iter().enumerate() {
        // Lines holding `\r` are compared as bytes too: Python writes them unchanged.
        let expected = spm_lossy_utf8(line).replace('\u{2581}', " ");
        assert_eq!(decoded[i], expected.as_bytes(), "python decode line {i}");
    }
}

#[test]
fn parity_with_sentencepiece_on_a_python_trained_model() {
    let dir = tempfile::tempdir().unwrap();
    let lines = mixed_lines();
    let train = training_file(dir.path(), &lines, 4 << 20);
    let prefix = dir.path().join("py");
    run_python(&[
        "train",
        train.to_str().unwrap(),
        prefix.to_str().unwrap(),
        "8000",
    ]);
    assert_parity(&dir.path().join("py.model"), &lines, dir.path());
}

#[test]
fn parity_with_sentencepiece_on_a_datamill_trained_model() {
    let dir = tempfile::tempdir().unwrap();
    let lines = mixed_lines();
    let train = training_file(dir.path(), &lines, 4 << 20);
    let config = TrainConfig {
        vocab_size: 8000,
        threads: 2,
        sources: vec![SourceConfig {
            name: "mixed".into(),
            paths: vec![train.display().to_string()],
            weight: 1,
            max_bytes: 0,
        }],
        ..TrainConfig::default()
    };
    let (proto, report) = train_tokenizer(&config).unwrap();
    assert_eq!(proto.pieces.len(), 8000);
    assert!(report.merges > 3000, "{report:?}");
    let model = dir.path().join("dm.model");
    write_model(&proto, &model).unwrap();
    assert_parity(&model, &lines, dir.path());
}

#[test]
fn hugging_face_llama_tokenizer_loads_a_datamill_model_and_gives_its_ids() {
    // transformers' LlamaTokenizer (the slow one, on Python's sentencepiece), as a user
    // loading the `.model` of a LLaMA checkpoint would; lines with the texts of special
    // tokens are left out (LlamaTokenizer cuts them out before sentencepiece sees them).
    let dir = tempfile::tempdir().unwrap();
    let lines = mixed_lines();
    let train = training_file(dir.path(), &lines, 2 << 20);
    let (proto, _) = train_tokenizer(&config_for(&[&train], 4000)).unwrap();
    let model = dir.path().join("dm.model");
    write_model(&proto, &model).unwrap();
    let plain: Vec<Vec<u8>> = lines
        .iter()
        .step_by(5)
        .filter(|l| {
            std::str::from_utf8(l)
                .is_ok_and(|t| !["<s>", "</s>", "<unk>"].iter().any(|s| t.contains(s)))
        })
        .take(20_000)
        .cloned()
        .collect();
    assert!(plain.len() > 10_000, "{} lines", plain.len());
    let lines_path = dir.path().join("hf_lines.txt");
    write_lines(&lines_path, &plain);
    let out = dir.path().join("hf_ids.txt");
    run_python(&[
        "hf",
        &model.display().to_string(),
        &lines_path.display().to_string(),
        &out.display().to_string(),
    ]);
    let mut hf = parse_id_lines(&out);
    let specials = hf.pop().unwrap();
    let tok = Tokenizer::load(&model).unwrap();
    let ids = |id: Option<u32>| id.expect("the model has <s> and </s>");
    assert_eq!(
        specials,
        [
            tok.vocab_size() as u32,
            ids(tok.bos_id()),
            ids(tok.eos_id()),
            tok.unk_id()
        ]
    );
    assert_eq!(hf.len(), plain.len());
    let differ: Vec<String> = plain
        .iter()
        .zip(&hf)
        .filter_map(|(line, hf_ids)| {
            let text = std::str::from_utf8(line).unwrap();
            let ours = tok.encode(text);
            (ours != *hf_ids)
                .then(|| format!("{text:?}: datamill {ours:?}, LlamaTokenizer {hf_ids:?}"))
        })
        .collect();
    assert!(
        differ.is_empty(),
        "{} lines differ, first: {:?}",
        differ.len(),
        differ.first()
    );
}

#[test]
fn the_model_does_not_depend_on_the_number_of_threads() {
    // Shards and text files, several batches per file: the counting and run-building threads
    // split the work differently for each thread count; the model must not change.
    let dir = tempfile::tempdir().unwrap();
    let train = training_file(dir.path(), &mixed_lines(), 3 << 20);
    let c4 = root().join("samples/c4");
    let models: Vec<_> = [1, 2, 3]
        .iter()
        .map(|&threads| {
            let mut config = config_for(&[&train, &c4], 8000);
            config.threads = threads;
            // The pieces and scores; the trainer spec records the thread count itself.
            train_tokenizer(&config).unwrap().0.pieces
        })
        .collect();
    assert_eq!(models[0].len(), 8000);
    assert!(models[0] == models[1] && models[1] == models[2]);
}

#[test]
fn bad_jsonl_records_are_skipped_counted_and_named_and_the_model_is_the_clean_ones() {
    // The sample shard with a record without `text`, a line that is not JSON and a `text`
    // that is not a string put in: training goes on, as if those lines were not there.
    let dir = tempfile::tempdir().unwrap();
    let clean = root().join("samples/c4/dolma/cc_en_head-0091.jsonl");
    let good = read_all(&clean);
    let mut lines: Vec<&[u8]> = good.split_inclusive(|&b| b == b'\n').collect();
    let at = |lines: &[&[u8]], n: usize| -> usize { lines[..n].iter().map(|l| l.len()).sum() };
    lines.insert(
        2,
        b"{\"id\": \"no-text\", \"url\": \"http://example.com/\"}\n",
    );
    lines.insert(6, b"{\"text\": \"cut short\n");
    lines.insert(10, b"{\"text\": [\"not\", \"a string\"]}\n");
    let bytes = [at(&lines, 2), at(&lines, 6), at(&lines, 10)];
    let bad = dir.path().join("with-bad.jsonl");
    std::fs::write(&bad, lines.concat()).unwrap();
    // The fast path (whole files) and the path with a byte budget larger than the file.
    for max_bytes in [0, 1 << 30] {
        let train = |path: &Path| {
            let mut config = config_for(&[path], 1000);
            config.sources[0].max_bytes = max_bytes;
            train_tokenizer(&config).unwrap()
        };
        let (want, clean_report) = train(&clean);
        let (got, report) = train(&bad);
        assert_eq!(clean_report.bad_records, 0);
        assert_eq!(report.bad_records, 3, "max_bytes {max_bytes}");
        assert_eq!(report.lines, clean_report.lines);
        assert!(got.pieces == want.pieces, "max_bytes {max_bytes}");
    }
    // The command trains, its summary counts them, its log names file, line and byte.
    let model = dir.path().join("tok.model");
    let out = datamill()
        .args(["train-tokenizer", "--vocab-size", "1000", "--input"])
        .arg(&bad)
        .arg("--output")
        .arg(&model)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(model.exists());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("3 bad records skipped"), "{stdout}");
    for (line, byte, reason) in [
        (3, bytes[0], "missing_text"),
        (7, bytes[1], "bad_json"),
        (11, bytes[2], "bad_json"),
    ] {
        let said = format!("with-bad.jsonl: record at byte {byte} skipped: {reason}: line {line}:");
        assert!(stderr.contains(&said), "{said} not in {stderr}");
    }
}

fn config_for(paths: &[&Path], vocab: usize) -> TrainConfig {
    TrainConfig {
        vocab_size: vocab,
        threads: 2,
        sources: vec![SourceConfig {
            name: "t".into(),
            paths: paths.iter().map(|p| p.display().to_string()).collect(),
            weight: 1,
            max_bytes: 0,
        }],
        ..TrainConfig::default()
    }
}

fn datamill() -> Command {
    Command::new(env!("CARGO_BIN_EXE_datamill"))
}

#[test]
fn bad_training_input_is_a_clear_error_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("tok.model");

    // Empty corpus: only empty lines, or no file at all.
    let blank = dir.path().join("blank.txt");
    std::fs::write(&blank, "\n\r\n\n").unwrap();
    let err = train_tokenizer(&config_for(&[&blank], 1000)).unwrap_err();
    assert!(format!("{err:#}").contains("empty"), "{err:#}");
    let err = train_tokenizer(&config_for(&[&dir.path().join("none*.txt")], 1000)).unwrap_err();
    assert!(format!("{err:#}").contains("no input file"), "{err:#}");

    // Not UTF-8: the ISO-8859-1 Goethe text; the error names the file and the line.
    let latin1 = root().join("samples/books/Italienische-Reise-Band-1_2404/2404-8.txt");
    let err = train_tokenizer(&config_for(&[&latin1], 1000)).unwrap_err();
    let msg = format!("{err:#}");
    assert!(
        msg.contains("2404-8.txt") && msg.contains("not valid UTF-8"),
        "{msg}"
    );

    // A JSONL file of bad records only: skipped, so the corpus is empty, and the count said.
    let shard = dir.path().join("docs.jsonl");
    std::fs::write(&shard, "{\"id\": 1}\n{\"text\": 3}\n").unwrap();
    let err = train_tokenizer(&config_for(&[&shard], 1000)).unwrap_err();
    let msg = format!("{err:#}");
    assert!(
        msg.contains("empty") && msg.contains("2 bad records skipped"),
        "{msg}"
    );

    // Vocabulary too small for the meta pieces and the alphabet.
    let book = root().join("samples/books/The-Wonderful-Wizard-of-Oz_55/55.txt");
    let err = train_tokenizer(&config_for(&[&book], 300)).unwrap_err();
    let msg = format!("{err:#}");
    assert!(msg.contains("too small") && msg.contains("259"), "{msg}");

    // Vocabulary larger than the corpus can give.
    let tiny = dir.path().join("tiny.txt");
    std::fs::write(&tiny, "abc abd abe\n").unwrap();
    let err = train_tokenizer(&config_for(&[&tiny], 400)).unwrap_err();
    assert!(
        format!("{err:#}").contains("too small for vocab_size"),
        "{err:#}"
    );

    // The command fails the same way and leaves no model (and no temporary file) behind.
    let status = datamill()
        .args(["train-tokenizer", "--vocab-size", "1000", "--input"])
        .arg(&latin1)
        .arg("--output")
        .arg(&out)
        .output()
        .unwrap();
    assert!(!status.status.success());
    assert!(String::from_utf8_lossy(&status.stderr).contains("not valid UTF-8"));
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("tok"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn corrupt_or_unsupported_model_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.model");
    std::fs::write(&bad, b"\xff\xff\xff not a protobuf").unwrap();
    let err = Tokenizer::load(&bad).err().expect("must fail");
    let msg = format!("{err:#}");
    assert!(
        msg.contains("bad.model") && msg.contains("protobuf"),
        "{msg}"
    );
    assert!(Tokenizer::load(&dir.path().join("missing.model")).is_err());

    // Truncated real model.
    let book = root().join("samples/books/The-Wonderful-Wizard-of-Oz_55/55.txt");
    let (proto, _) = train_tokenizer(&config_for(&[&book], 600)).unwrap();
    let good = dir.path().join("good.model");
    write_model(&proto, &good).unwrap();
    let bytes = std::fs::read(&good).unwrap();
    std::fs::write(&bad, &bytes[..bytes.len() / 2]).unwrap();
    assert!(Tokenizer::load(&bad).is_err());

    // A model without byte pieces although byte_fallback is set.
    let mut broken = proto.clone();
    broken.pieces.retain(|p| !p.piece().starts_with("<0x"));
    let err = Tokenizer::from_proto(broken).err().expect("must fail");
    assert!(format!("{err:#}").contains("256 byte pieces"), "{err:#}");

    // The command names the file.
    let out = datamill()
        .args(["encode", "--model"])
        .arg(&bad)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("bad.model"));
}

#[test]
fn train_encode_decode_commands_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("tok.model");
    let book = root().join("samples/books/The-Wonderful-Wizard-of-Oz_55/55.txt");
    let shard = root().join("samples/c4/dolma/cc_en_head-0091.jsonl");
    let out = datamill()
        .args(["train-tokenizer", "--vocab-size", "2000", "--input"])
        .arg(&book)
        .arg(&shard)
        .arg("--output")
        .arg(&model)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let tok = Tokenizer::load(&model).unwrap();
    assert_eq!(tok.vocab_size(), 2000);
    assert_eq!(
        (tok.bos_id(), tok.eos_id(), tok.unk_id()),
        (Some(1), Some(2), 0)
    );
    assert_eq!(tok.piece(3), Some("<0x00>"));
    assert_eq!(tok.piece(258), Some("<0xFF>"));
    // LLaMA's rules, visible in the encoding: digits alone, newline by byte fallback.
    let ids = tok.encode("In 2023 the Wizard\tsaid");
    let pieces: Vec<&str> = ids.iter().map(|&i| tok.piece(i).unwrap()).collect();
    for d in ["2", "0", "3"] {
        assert!(pieces.contains(&d), "{pieces:?}");
    }
    assert!(pieces.contains(&"<0x09>"), "{pieces:?}");

    let text = "The Wizard of Oz\n  two  spaces\tand tab\n\nemoji 🦀 and 123\n";
    let run = |args: &[&str], input: &[u8]| {
        use std::io::Write;
        let mut child = datamill()
            .args(args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(input).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success());
        out.stdout
    };
    let m = model.to_str().unwrap();
    let ids_out = run(&["encode", "--model", m], text.as_bytes());
    let id_lines = String::from_utf8(ids_out.clone()).unwrap();
    assert_eq!(id_lines.lines().count(), 4);
    assert_eq!(id_lines.lines().nth(2), Some(""));
    let first: Vec<u32> = id_lines
        .lines()
        .next()
        .unwrap()
        .split(' ')
        .map(|t| t.parse().unwrap())
        .collect();
    assert_eq!(first, tok.encode("The Wizard of Oz"));
    let back = run(&["encode", "--model", m, "--decode"], &ids_out);
    assert_eq!(String::from_utf8(back).unwrap(), text);
    let stats =
        String::from_utf8(run(&["encode", "--model", m, "--stats"], text.as_bytes())).unwrap();
    assert!(
        stats.contains("lines 4") && stats.contains("bytes/token"),
        "{stats}"
    );
}
