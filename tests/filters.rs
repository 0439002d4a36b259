//! Golden tests of the heuristic filters on real documents: for every rule a document from
//! `samples/` (or a real excerpt in `tests/fixtures/filters/`, origins in tests/fixtures/README.md)
//! that it must drop, with the reason, and documents that must be kept. Plus a check of the fast
//! Gopher repetition n-gram code against a plain string implementation on every sample document.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use datamill::doc::{read_shard, JsonlReader};
use datamill::filter::gopher_repetition::{GopherRepetition, GopherRepetitionConfig};
use datamill::filter::words::{split_words, Word};
use datamill::run::registry::build_stage;
use datamill::{DocPos, Document, Stage, Verdict};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

const DOLMA_CC: &str = "samples/c4/dolma/CC-MAIN-20190717121559-20190717143559-00140.jsonl.gz";

/// The 697 Common Crawl documents of the dolma sample, by id.
fn dolma() -> &'static HashMap<String, Document> {
    static DOCS: OnceLock<HashMap<String, Document>> = OnceLock::new();
    DOCS.get_or_init(|| {
        let docs = read_shard(&root().join(DOLMA_CC)).unwrap();
        assert_eq!(docs.len(), 697);
        docs.into_iter().map(|d| (d.id.clone(), d)).collect()
    })
}

fn doc(id: &str) -> Document {
    dolma()
        .get(id)
        .cloned()
        .unwrap_or_else(|| panic!("document {id} not in {DOLMA_CC}"))
}

fn fixture(name: &str) -> Document {
    let path = root().join("tests/fixtures/filters").join(name);
    let mut docs = read_shard(&path).unwrap();
    assert_eq!(docs.len(), 1, "{}", path.display());
    docs.remove(0)
}

fn book(path: &str) -> Document {
    let text = std::fs::read_to_string(root().join(path)).unwrap();
    Document::new(path, text, "books")
}

/// Builds a stage through the registry from TOML parameters.
fn stage(kind: &str, params: &str) -> Box<dyn Stage> {
    let mut table: toml::Table = toml::from_str(params).unwrap();
    table.insert("type".into(), kind.into());
    build_stage(&table).unwrap()
}

fn verdict(stage: &dyn Stage, doc: &mut Document) -> Verdict {
    stage.process(doc, DocPos { shard: 0, index: 0 })
}

fn assert_drops(stage: &dyn Stage, mut d: Document, reason: &str) {
    let v = verdict(stage, &mut d);
    assert_eq!(
        v,
        Verdict::Drop(reason.to_string().into()),
        "document {}",
        d.id
    );
}

fn assert_keeps(stage: &dyn Stage, mut d: Document) -> Document {
    let v = verdict(stage, &mut d);
    assert_eq!(v, Verdict::Keep, "document {}", d.id);
    d
}

/// CCNet "head" documents (the best perplexity bucket): good English prose.
fn ccnet_head() -> Vec<Document> {
    read_shard(&root().join("samples/c4/dolma/cc_en_head-0091.jsonl")).unwrap()
}

#[test]
fn gopher_repetition_drops_each_kind_of_repetition() {
    let st = stage("gopher_repetition", "");
    for (id, reason) in [
        // a listing whose paragraphs repeat ("Add to cart", prices)
        ("2zmlwccmm6jzgimkugqlv2hv2zv3cyaz", "gopher_dup_para_frac"),
        (
            "jkcmwkg63e7suh6gq4ihxcx55xinqbay",
            "gopher_dup_para_char_frac",
        ),
        ("7wtdu2miswmqy3plaknuoyuopo3wvkix", "gopher_dup_line_frac"),
        (
            "gj5z4ba7f2np3gs6uuhqsysjgmxf2ipk",
            "gopher_dup_line_char_frac",
        ),
        ("t4m2xksf5l7u2g2jy35bwuqdjsqzs3ro", "gopher_top_2gram"),
        ("sdwzewwoepnhni6tohl3fm3wrkkycifq", "gopher_top_3gram"),
        ("bgqf4bbpshsvzbzomvy32arg3ysananc", "gopher_top_4gram"),
        ("46imiptmsojfn4geqbrzqhpl6kgid2u2", "gopher_dup_5gram"),
        ("ylq4jxjzwdhabntc7d43php5jjcuyslb", "gopher_dup_6gram"),
        ("jyynanikyquabf6mbcslhxu3q7qsps2w", "gopher_dup_8gram"),
        ("i7p3e5p32paptxbzbj2qq5dmd52tgqar", "gopher_dup_10gram"),
    ] {
        assert_drops(&*st, doc(id), reason);
    }
    for d in ccnet_head() {
        assert_keeps(&*st, d);
    }
    assert_keeps(
        &*st,
        book("samples/books/Pride-and-Prejudice_1342/1342.txt"),
    );
}

#[test]
fn gopher_quality_drops_each_rule() {
    let st = stage("gopher_quality", "");
    for (id, reason) in [
        ("fbyyccw3hvhn6g4zuk3kgbe5vji4yjdt", "gopher_short_doc"),
        // Chinese has no spaces: whole clauses become "words"
        ("uinryczz2c5vfomfvcs5yakhhgmq7kp6", "gopher_word_len_high"),
        // a Stack Overflow profile: reputation numbers, counts, dates
        (
            "6mnklsm3lshd6az5estcbkq2timow2yt",
            "gopher_below_alpha_threshold",
        ),
        ("g2k4e2kjbcffjybxmnutsyfhvzpugl5b", "gopher_few_stop_words"),
    ] {
        assert_drops(&*st, doc(id), reason);
    }
    // A whole novel is far above 100,000 words.
    assert_drops(
        &*st,
        book("samples/books/Pride-and-Prejudice_1342/1342.txt"),
        "gopher_long_doc",
    );
    // Raw Marathi wikitext of "Maharashtra Day": a numbered list (`# name`) of 106 names.
    assert_drops(
        &*st,
        fixture("mrwiki-maharashtra-day.jsonl"),
        "gopher_too_many_hashes",
    );
    for d in ccnet_head() {
        assert_keeps(&*st, d);
    }
}

/// Rules that an earlier rule would mask with the defaults are checked alone (the others off).
#[test]
fn gopher_quality_rules_alone() {
    let off = "min_doc_words = 0\nmax_doc_words = 0\nmin_avg_word_length = 0.0\n\
               max_avg_word_length = 0.0\nmax_symbol_word_ratio = 0.0\n\
               max_bullet_lines_ratio = 0.0\nmax_ellipsis_lines_ratio = 0.0\n\
               max_non_alpha_words_ratio = 0.0\nmin_stop_words = 0\n";
    let only = |key: &str, value: &str| {
        let params: String = off
            .lines()
            .filter(|l| !l.starts_with(&format!("{key} ")))
            .map(|l| format!("{l}\n"))
            .collect();
        stage("gopher_quality", &format!("{params}{key} = {value}\n"))
    };
    // "Health Effects / 1. 1 / 2. ... / 3. 1587": page numbers only.
    let st = only("min_avg_word_length", "3.0");
    assert_drops(
        &*st,
        doc("wivlhhh4fibnzpamkltu3hwzuarq4eus"),
        "gopher_word_len_low",
    );
    let st = only("max_bullet_lines_ratio", "0.9");
    assert_drops(
        &*st,
        doc("qh7rmjpo7uov535t6u36aippr4plhs2l"),
        "gopher_too_many_bullets",
    );
    // A Burmese travel blog (Zawgyi text) whose lines trail off in "..."
    let blog = "ledijphvhcpgthvlvf6kayipyyknq2rv";
    let st = only("max_ellipsis_lines_ratio", "0.3");
    assert_drops(&*st, doc(blog), "gopher_too_many_end_ellipsis");
    let st = only("max_symbol_word_ratio", "0.1");
    assert_drops(&*st, doc(blog), "gopher_too_many_ellipsis");
    for (key, value) in [
        ("min_avg_word_length", "3.0"),
        ("max_bullet_lines_ratio", "0.9"),
        ("max_ellipsis_lines_ratio", "0.3"),
        ("max_symbol_word_ratio", "0.1"),
    ] {
        let st = only(key, value);
        for d in ccnet_head() {
            assert_keeps(&*st, d);
        }
    }
}

#[test]
fn c4_rules_drop_documents_and_remove_lines() {
    let st = stage("c4_quality", "");
    // A web-design template page: its first kept line with `{` comes before "Lorem ipsum".
    assert_drops(
        &*st,
        doc("ihozv7qx56plvzlp4s3l6jisj3htgjpi"),
        "c4_curly_bracket",
    );
    let no_brackets = stage("c4_quality", "filter_curly_bracket = false");
    assert_drops(
        &*no_brackets,
        doc("ihozv7qx56plvzlp4s3l6jisj3htgjpi"),
        "c4_lorem_ipsum",
    );
    assert_drops(
        &*st,
        doc("xxhi5tgaf3kefeecjiy5ez6xu67cuare"),
        "c4_curly_bracket",
    );
    assert_drops(
        &*st,
        doc("nyrtksiru6fgvzvebtqmnjoi4dprd2nk"),
        "c4_too_few_sentences",
    );

    let original = doc("ukgrbpnzamn6i3gejv7vt2evkftczus2");
    let kept = assert_keeps(&*st, original.clone());
    assert_eq!(kept.metadata["c4_lines_removed"], 7);
    assert!(kept.text.len() < original.text.len());
    for line in kept.text.lines() {
        assert!(line.ends_with(['.', '?', '!', '"', '\'']), "{line:?}");
        assert!(line.split_whitespace().count() >= 3, "{line:?}");
        assert!(
            original.text.contains(line),
            "kept lines are original lines: {line:?}"
        );
    }
    // Every JavaScript notice line goes, whatever happens to the document.
    let mut js = doc("kfgd7qih7aeekf7zjwx4fqto54nnlkkm");
    if verdict(&*st, &mut js) == Verdict::Keep {
        assert!(!js.text.to_lowercase().contains("javascript"));
    }
    let mut kept_any = 0;
    for d in ccnet_head() {
        let mut d2 = d.clone();
        if verdict(&*st, &mut d2) == Verdict::Keep {
            kept_any += 1;
        }
    }
    assert!(
        kept_any >= 8,
        "C4 rules keep the CCNet head documents ({kept_any}/10)"
    );
}

fn model() -> PathBuf {
    let p = root().join("models/lid.176.ftz");
    assert!(
        p.exists(),
        "{} is missing: run `make setup` to fetch the language-ID model",
        p.display()
    );
    p
}

#[test]
fn langid_keeps_english_and_drops_others_with_reasons() {
    let params = format!(
        "model = {:?}\nlanguages = [\"en\"]",
        model().display().to_string()
    );
    let st = stage("langid", &params);
    // A Spanish musician's biography.
    let mut es = doc("oekn6zzky53fzs7szdftcvuoyejve4ig");
    assert_eq!(verdict(&*st, &mut es), Verdict::drop("lang_not_kept"));
    assert_eq!(es.meta_str("language"), Some("es"));
    // An Aragonese Wikipedia page: closest label is Spanish, at a low score.
    let st_all = stage(
        "langid",
        &format!("model = {:?}", model().display().to_string()),
    );
    assert_drops(
        &*st_all,
        doc("mzfs5fqglwewgqy547wvvmpvhbrmypir"),
        "lang_low_score",
    );
    for d in ccnet_head() {
        let kept = assert_keeps(&*st, d);
        assert_eq!(kept.meta_str("language"), Some("en"));
        assert!(kept.metadata["language_score"].as_f64().unwrap() >= 0.5);
    }
}

/// Gopher's n-gram rules written the plain way (every n-gram a string, as datatrove does):
/// the reason of the first failing n-gram rule, if any.
fn plain_ngram_verdict(text: &str, c: &GopherRepetitionConfig) -> Option<String> {
    let mut spans: Vec<Word> = Vec::new();
    split_words(text, &mut spans);
    let words: Vec<&str> = spans.iter().map(|w| w.text(text)).collect();
    let len = text.chars().count() as f64;
    for &(n, frac) in &c.top_n_grams {
        if words.len() < n {
            continue;
        }
        let mut counts: HashMap<&[&str], (usize, usize)> = HashMap::new();
        for (i, g) in words.windows(n).enumerate() {
            counts.entry(g).or_insert((0, i)).0 += 1;
        }
        let (gram, (count, _)) = counts
            .iter()
            .max_by(|a, b| a.1 .0.cmp(&b.1 .0).then(b.1 .1.cmp(&a.1 .1)))
            .unwrap();
        let chars = gram.join(" ").chars().count();
        if (chars * count) as f64 / len > frac {
            return Some(format!("gopher_top_{n}gram"));
        }
    }
    for &(n, frac) in &c.dup_n_grams {
        if words.len() < n {
            continue;
        }
        let mut seen: HashSet<&[&str]> = HashSet::new();
        let mut repeated = 0;
        let mut i = 0;
        while i + n <= words.len() {
            let g = &words[i..i + n];
            if seen.contains(g) {
                repeated += g.iter().map(|w| w.chars().count()).sum::<usize>();
                i += n;
            } else {
                seen.insert(g);
                i += 1;
            }
        }
        if repeated as f64 / len > frac {
            return Some(format!("gopher_dup_{n}gram"));
        }
    }
    None
}

#[test]
fn fast_ngram_rules_agree_with_plain_strings_on_every_sample_document() {
    // Only the n-gram rules, at the published thresholds and at tighter ones (more borderline
    // decisions).
    for scale in [1.0, 0.5] {
        let config = GopherRepetitionConfig {
            dup_line_frac: 0.0,
            dup_para_frac: 0.0,
            dup_line_char_frac: 0.0,
            dup_para_char_frac: 0.0,
            top_n_grams: GopherRepetitionConfig::default()
                .top_n_grams
                .iter()
                .map(|&(n, f)| (n, f * scale))
                .collect(),
            dup_n_grams: GopherRepetitionConfig::default()
                .dup_n_grams
                .iter()
                .map(|&(n, f)| (n, f * scale))
                .collect(),
        };
        let fast = GopherRepetition::new(config.clone()).unwrap();
        let mut dropped = 0;
        let mut seen = 0;
        for path in [DOLMA_CC, "samples/c4/dolma/cc_en_head-0091.jsonl"] {
            for (_, rec) in JsonlReader::open(&root().join(path)).unwrap() {
                let d = rec.unwrap();
                let want = plain_ngram_verdict(&d.text, &config);
                let got = fast.check(&d.text).err().map(|f| f.reason().into_owned());
                assert_eq!(got, want, "document {} at scale {scale}", d.id);
                dropped += got.is_some() as usize;
                seen += 1;
            }
        }
        assert_eq!(seen, 707);
        assert!(dropped > 50, "the check must see drops ({dropped})");
    }
}
