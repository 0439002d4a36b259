//! The Wikipedia-reference classifier as LLaMA built it, on the in-repo samples: the URLs the
//! sample dumps cite (`wiki-refs`), a classifier trained on pages of cited hosts against random
//! Common Crawl pages after the CommonCrawl pipeline's first stages (`train-classifier`), the
//! training commands reading a run's kept shards only, and bad inputs failing clearly.

mod common;

use std::collections::BTreeSet;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{repo, BIN, C4_SAMPLE};
use datamill::quality::wikirefs::{url::host_key, wiki_refs, WikiRefsOptions};
use datamill::sources::url_list::UrlListReader;

const GENSIM: &str =
    "samples/wikipedia/gensim/enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2";
const SMALLWIKI: &str = "samples/wikipedia/dumpster-dive/smallwiki-latest-pages-articles.xml";
const CITED_WARC: &str = "samples/commoncrawl-cited/cited-pages.warc.gz";
const CITED_URLS: &str = "samples/commoncrawl-cited/urls.txt";

fn dumps() -> Vec<PathBuf> {
    let mut v = vec![repo(GENSIM), repo(SMALLWIKI)];
    for lang in ["de", "fr", "ja", "ru", "zh"] {
        v.push(repo(&format!(
            "samples/wikipedia/extraction-framework/{lang}/wiki.xml.bz2"
        )));
    }
    v
}

fn lines(path: &Path) -> Vec<(String, u64)> {
    UrlListReader::open(path)
        .unwrap()
        .map(|l| {
            let l = l.unwrap().expect("wiki-refs writes only good lines");
            (l.text, l.count.expect("wiki-refs writes a count"))
        })
        .collect()
}

fn raw_text(path: &Path) -> String {
    let mut s = String::new();
    zstd::Decoder::new(std::fs::File::open(path).unwrap())
        .unwrap()
        .read_to_string(&mut s)
        .unwrap();
    s
}

#[test]
fn wiki_refs_lists_every_cited_url_once_with_its_articles() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("refs.tsv.zst");
    let s = wiki_refs(&dumps(), &out, &WikiRefsOptions::default()).unwrap();
    println!("{s:?}");
    let refs = lines(&out);
    assert_eq!(refs.len() as u64, s.written);
    assert_eq!(s.written, s.distinct);
    assert!(s.distinct > 3000, "{} distinct URLs", s.distinct);
    // Sorted by URL, unique, counted once per article.
    assert!(refs.windows(2).all(|w| w[0].0 < w[1].0));
    assert!(refs.iter().all(|(_, n)| *n >= 1 && *n <= s.citing_articles));
    let total: u64 = refs.iter().map(|(_, n)| n).sum();
    assert_eq!(total, s.citations);
    // A bracketed link inside a <ref> of the English dump's first article (Anarchism), and a
    // `{{cite journal |url=...}}`; its `archiveurl` is not taken.
    let has = |u: &str| refs.iter().any(|(r, _)| r == u);
    assert!(has(
        "http://www.theanarchistlibrary.org/HTML/Petr_Kropotkin___Anarchism__from_the_Encyclopaedia_Britannica.html"
    ));
    assert!(has(
        "http://www.marxists.org/archive/malatesta/1930s/xx/toanarchy.htm"
    ));
    assert!(!refs
        .iter()
        .any(|(r, _)| r.starts_with("https://web.archive.org/web/20121107221404/")));
    // Normalised: no fragment, lower-case host.
    assert!(refs.iter().all(|(r, _)| !r.contains('#')));
    assert!(refs.iter().all(|(r, _)| {
        let host = r.split('/').nth(2).unwrap();
        host == host.to_lowercase()
    }));
    // The cited-pages sample: no exact URL is cited, but many of its hosts are.
    let hosts: BTreeSet<String> = refs.iter().filter_map(|(r, _)| host_key(r)).collect();
    let pages = std::fs::read_to_string(repo(CITED_URLS)).unwrap();
    let on_cited_host = pages
        .lines()
        .filter(|u| hosts.contains(&host_key(u).unwrap()))
        .count();
    let exact = pages.lines().filter(|u| has(u)).count();
    println!("cited-pages records on a cited host: {on_cited_host}, at a cited URL: {exact}");
    assert_eq!(exact, 0);
    assert!(on_cited_host >= 40, "{on_cited_host}");
}

#[test]
fn a_tiny_memory_budget_spills_and_merges_to_the_same_list() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a.tsv.zst"), dir.path().join("b.tsv.zst"));
    wiki_refs(&dumps(), &a, &WikiRefsOptions::default()).unwrap();
    let tiny = WikiRefsOptions {
        memory: 0,
        threads: 2,
        ..Default::default()
    };
    wiki_refs(&dumps(), &b, &tiny).unwrap();
    assert_eq!(raw_text(&a), raw_text(&b));
    // No scratch folder or temporary file is left behind.
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(left.len(), 2, "{left:?}");
}

#[test]
fn max_urls_keeps_a_seeded_sample() {
    let dir = tempfile::tempdir().unwrap();
    let all = dir.path().join("all.tsv");
    wiki_refs(&dumps(), &all, &WikiRefsOptions::default()).unwrap();
    let all = lines(&all);
    let sample = |seed: u64, name: &str| {
        let p = dir.path().join(name);
        let o = Command::new(BIN)
            .args([
                "wiki-refs",
                GENSIM,
                SMALLWIKI,
                "--max-urls",
                "300",
                "--seed",
            ])
            .arg(seed.to_string())
            .arg("--output")
            .arg(&p)
            .current_dir(repo(""))
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        lines(&p)
    };
    let a = sample(1, "a.tsv.zst");
    assert_eq!(a.len(), 300);
    assert!(a.windows(2).all(|w| w[0].0 < w[1].0));
    assert!(a.iter().all(|x| all.contains(x)), "a subset, counts kept");
    assert_eq!(a, sample(1, "a2.tsv.zst"));
    assert_ne!(a, sample(2, "b.tsv.zst"));
}

#[test]
fn a_file_that_is_not_a_dump_is_refused_and_nothing_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("refs.tsv.zst");
    let book = repo("samples/books/The-Wonderful-Wizard-of-Oz_55/55.txt");
    let e = wiki_refs(
        &[repo(GENSIM), book.clone()],
        &out,
        &WikiRefsOptions::default(),
    )
    .unwrap_err();
    let msg = format!("{e:#}");
    assert!(
        msg.contains("55.txt") && msg.contains("not a MediaWiki XML dump"),
        "{msg}"
    );
    // A dump cut in the middle of its bzip2 stream: the error names the file.
    let cut = dir.path().join("cut.xml.bz2");
    let bytes = std::fs::read(repo(GENSIM)).unwrap();
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    let e = wiki_refs(&[cut], &out, &WikiRefsOptions::default()).unwrap_err();
    assert!(format!("{e:#}").contains("cut.xml.bz2"), "{e:#}");
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(left, ["cut.xml.bz2"], "no output, no temporary file");
}

fn datamill(args: &[&str]) -> std::process::Output {
    Command::new(BIN)
        .args(args)
        .current_dir(repo(""))
        .output()
        .unwrap()
}

#[test]
fn train_classifier_bad_inputs_fail_clearly_and_write_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let d = |p: &str| dir.path().join(p).display().to_string();
    let model = d("m.bin");
    let fails = |args: &[&str]| {
        let mut all = vec!["train-classifier"];
        all.extend_from_slice(args);
        all.extend_from_slice(&["--negative", C4_SAMPLE, "--no-stages", "--output", &model]);
        let o = datamill(&all);
        assert!(!o.status.success(), "{args:?} succeeded");
        String::from_utf8_lossy(&o.stderr).into_owned()
    };
    // A WARC folder whose file holds no record.
    std::fs::create_dir(dir.path().join("warcs")).unwrap();
    std::fs::write(dir.path().join("warcs/empty.warc"), b"").unwrap();
    let err = fails(&["--positive", &d("warcs")]);
    assert!(err.contains("empty.warc") || err.contains("warcs"), "{err}");
    // A refs list with a garbage line names the line.
    std::fs::write(
        d("bad.tsv"),
        "https://a.example/x\t3\nthis is not a url line\n",
    )
    .unwrap();
    let err = fails(&["--positive-urls", &d("bad.tsv")]);
    assert!(err.contains("bad.tsv: line 2 set aside"), "{err}");
    assert!(err.contains("1 bad line(s) set aside"), "{err}");
    // No cited URL in the CC input.
    std::fs::write(d("refs.tsv"), "https://nowhere.example/page\t1\n").unwrap();
    let err = fails(&["--positive-urls", &d("refs.tsv")]);
    assert!(
        err.contains("cited in") && err.contains("refs.tsv"),
        "{err}"
    );
    let left: BTreeSet<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        left,
        ["bad.tsv", "refs.tsv", "warcs"].map(String::from).into(),
        "no model, sidecar or scratch folder"
    );
}

#[test]
fn positive_urls_take_the_cited_records_of_the_crawl_input() {
    // Cite the URLs of a few dolma CC documents: they become the positives, the rest negatives.
    let dir = tempfile::tempdir().unwrap();
    let mut urls = Vec::new();
    for (_, rec) in datamill::doc::JsonlReader::open(&repo(C4_SAMPLE)).unwrap() {
        let doc = rec.unwrap();
        if doc.text.len() > 2000 {
            urls.push(doc.meta_str("url").unwrap().to_string());
        }
    }
    let cited: Vec<&String> = urls.iter().step_by(4).collect();
    let refs = dir.path().join("refs.tsv");
    std::fs::write(
        &refs,
        // dolma stores URLs without a scheme; a cited URL has one.
        cited
            .iter()
            .map(|u| format!("https://{u}\t1\n"))
            .collect::<String>(),
    )
    .unwrap();
    let model = dir.path().join("m.bin");
    let o = datamill(&[
        "train-classifier",
        "--positive-urls",
        refs.to_str().unwrap(),
        "--negative",
        C4_SAMPLE,
        "--no-stages",
        "--epoch",
        "2",
        "--output",
        model.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let side: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("m.bin.json")).unwrap()).unwrap();
    let rule = &side["rule"];
    assert_eq!(rule["positive_match"], "url");
    assert_eq!(rule["matched_by_url"], cited.len() as u64);
    assert_eq!(side["report"]["positives"], cited.len() as u64);
    assert_eq!(
        side["report"]["negatives"],
        cited.len() as u64,
        "as many negatives"
    );
}

/// The sample models as `make quality-models` builds them: positives are the cited-pages WARC's
/// pages on hosts the sample dumps cite, negatives random CC-MAIN pages, both through the
/// CommonCrawl pipeline's stages before the classifier (needs models/lid.176.ftz and the LM
/// with its cutoffs, models/cc_lm.bin, from `make quality-models`).
#[test]
fn cited_pages_outrank_random_crawl_on_held_out_hosts() {
    let dir = tempfile::tempdir().unwrap();
    let refs = dir.path().join("refs.tsv.zst");
    wiki_refs(&dumps(), &refs, &WikiRefsOptions::default()).unwrap();
    let model = dir.path().join("wikiref.bin");
    let o = datamill(&[
        "train-classifier",
        "--positive",
        CITED_WARC,
        "--positive-hosts",
        refs.to_str().unwrap(),
        "--negative",
        C4_SAMPLE,
        "samples/commoncrawl/chatnoir-resiliparse/warcfile.warc.gz",
        "samples/commoncrawl/whirlwind-python/whirlwind.warc.gz",
        "--pipeline",
        "pipelines/commoncrawl.toml",
        "--holdout",
        "0.25",
        "--epoch",
        "100",
        "--output",
        model.to_str().unwrap(),
    ]);
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    println!("{stdout}");
    let side: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("wikiref.bin.json")).unwrap())
            .unwrap();
    let rule = &side["rule"];
    assert_eq!(rule["positive_match"], "url_or_host");
    assert_eq!(rule["matched_by_url"], 0);
    assert_eq!(
        rule["stages"],
        serde_json::json!(["line_dedup", "langid", "perplexity", "perplexity_bucket"])
    );
    let r = &side["report"];
    let f = |k: &str| r[k].as_f64().unwrap();
    assert!(f("positives") >= 20.0, "{r}");
    assert_eq!(r["positives"], r["negatives"]);
    assert!(
        f("held_out_positives") >= 3.0 && f("held_out_negatives") >= 3.0,
        "{r}"
    );
    assert!(
        f("held_out_positive_median") > f("held_out_negative_median"),
        "median p(ref): held-out cited {} vs random {}",
        f("held_out_positive_median"),
        f("held_out_negative_median")
    );
    assert!(
        f("held_out_positive_kept") > f("held_out_negative_kept"),
        "kept at 0.25: cited {} vs random {}",
        f("held_out_positive_kept"),
        f("held_out_negative_kept")
    );
}

#[test]
fn training_commands_read_a_run_folder_s_kept_shards_only() {
    // A run that keeps English pages and writes the others under rejected/<language>/.
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    // (Still inside `[output]` when the stages text starts.)
    let stages = format!(
        "split_rejected_by = \"language\"\n[[stages]]\ntype = \"langid\"\nmodel = {:?}\n\
         languages = [\"en\"]\n",
        repo("models/lid.176.ftz")
    );
    let pipe = common::write_pipeline(dir.path(), &repo(C4_SAMPLE), &out, &stages);
    let o = Command::new(BIN).arg("run").arg(&pipe).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(out.join("rejected").is_dir());
    // A quarantine file without `text`, as a run writes it.
    std::fs::create_dir_all(out.join("quarantine")).unwrap();
    std::fs::write(
        out.join("quarantine/x.jsonl"),
        "{\"offset\":0,\"reason\":\"bad_json\"}\n",
    )
    .unwrap();
    let count = |p: &Path| {
        let mut n = 0u64;
        let mut cjk = 0u64;
        datamill::sources::training::for_each_training_text(
            &[p.to_path_buf()],
            None,
            None,
            &mut |t| {
                n += 1;
                cjk += t
                    .chars()
                    .filter(|c| ('\u{4e00}'..='\u{9fff}').contains(c))
                    .count() as u64;
            },
        )
        .unwrap();
        (n, cjk)
    };
    let (kept, kept_cjk) = count(&out);
    let (rejected, rejected_cjk) = count(&out.join("rejected"));
    let stats = datamill::stats::MergedStats::from_dir(&out).unwrap();
    let langid = stats.stages.iter().find(|s| s.name == "langid").unwrap();
    assert_eq!(kept, langid.docs_out, "the kept shards, nothing else");
    assert!(rejected > 50, "{rejected} rejected pages, read when named");
    assert!(
        rejected_cjk > 1000 && kept_cjk < rejected_cjk / 20,
        "{kept_cjk} vs {rejected_cjk}"
    );
    // train-tokenizer on the folder trains (the quarantine file is not read) on the kept
    // English pages: a small alphabet, where the rejected folder named directly gives thousands
    // of characters.
    let alphabet = |input: &Path, name: &str| -> u64 {
        let o = Command::new(BIN)
            .args(["train-tokenizer", "--vocab-size", "5000", "--input"])
            .arg(input)
            .arg("--output")
            .arg(dir.path().join(name))
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&o.stdout);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let at = stdout.find("alphabet ").expect("summary line") + 9;
        stdout[at..].split(',').next().unwrap().parse().unwrap()
    };
    let kept_alphabet = alphabet(&out, "kept.model");
    let rejected_alphabet = alphabet(&out.join("rejected"), "rejected.model");
    println!("alphabet: {kept_alphabet} from the run folder, {rejected_alphabet} from rejected/");
    assert!(kept_alphabet < 400, "{kept_alphabet}");
    assert!(rejected_alphabet > 2000, "{rejected_alphabet}");
}

#[test]
fn the_sample_is_deterministic_bounded_by_max_per_class_and_checked_at_load() {
    use datamill::quality::classifier::{ClassifierStage, TrainSettings};
    use datamill::quality::wikiref_training::{train_classifier, ClassifierInputs, PositiveMatch};
    use datamill::{DocPos, Document, Stage, Verdict};
    let dir = tempfile::tempdir().unwrap();
    // Cite every long dolma page of some hosts: positives and negatives come from one input.
    let refs = dir.path().join("refs.tsv");
    let mut lines = String::new();
    for (i, (_, rec)) in datamill::doc::JsonlReader::open(&repo(C4_SAMPLE))
        .unwrap()
        .enumerate()
    {
        let doc = rec.unwrap();
        if i % 3 == 0 && doc.text.len() > 1000 {
            lines.push_str(&format!("http://{}\t1\n", doc.meta_str("url").unwrap()));
        }
    }
    std::fs::write(&refs, lines).unwrap();
    let inputs = ClassifierInputs {
        positive: vec![],
        negative: vec![repo(C4_SAMPLE)],
        refs: Some(refs),
        matching: PositiveMatch::Url,
        pipeline: None,
        reader: None,
        work_dir: None,
        threads: 1,
    };
    let settings = TrainSettings {
        epoch: 2,
        dim: 8,
        max_per_class: 40,
        ..Default::default()
    };
    let train = |name: &str| {
        let model = dir.path().join(name);
        let report = train_classifier(&inputs, &model, &settings).unwrap();
        (report, std::fs::read(&model).unwrap())
    };
    let (report, model) = train("a.bin");
    assert_eq!((report.positives, report.negatives), (40, 40));
    assert!(report.positives_read > 40 && report.negatives_read > 40);
    assert_eq!(report.trained + report.held_out, 80);
    assert!(
        report.held_out > 0 && report.held_out < 30,
        "{}",
        report.held_out
    );
    let (again, model_again) = train("b.bin");
    assert_eq!(model, model_again, "same inputs, same sample, same model");
    assert_eq!(again.precision, report.precision);

    // The stage scores pages and refuses a truncated model or one without its sidecar.
    let path = dir.path().join("a.bin");
    let t: toml::Table = toml::from_str(&format!("model = {:?}", path.to_str().unwrap())).unwrap();
    let stage = ClassifierStage::from_params(&t).unwrap();
    let mut d = Document::new("d", "Some text of a page about a subject.", "cc");
    let v = stage.process(&mut d, DocPos { shard: 0, index: 0 });
    let p = d.metadata["wiki_ref_prob"].as_f64().unwrap();
    assert_eq!(v == Verdict::Keep, p >= 0.25);
    std::fs::write(&path, &model[..model.len() / 2]).unwrap();
    let e = format!("{:#}", ClassifierStage::from_params(&t).err().unwrap());
    assert!(e.contains("truncated"), "{e}");
    let t2: toml::Table = toml::from_str("model = \"models/does-not-exist.bin\"").unwrap();
    let e = format!("{:#}", ClassifierStage::from_params(&t2).err().unwrap());
    assert!(e.contains("train-classifier"), "{e}");
}

/// With the sample models of `make quality-models`, the CommonCrawl pipeline keeps English
/// head/middle pages, and keeps most pages of the cited kind that training never saw (the
/// cited-pages records on hosts the sample dumps do not cite).
#[test]
fn the_commoncrawl_pipeline_keeps_pages_of_the_cited_kind() {
    let dir = tempfile::tempdir().unwrap();
    let run = |input: &str, name: &str| {
        let out = dir.path().join(name);
        let o = datamill(&[
            "run",
            "pipelines/commoncrawl.toml",
            "--input",
            input,
            "--output",
            out.to_str().unwrap(),
        ]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        out
    };
    let cc = run("samples/commoncrawl", "cc");
    let stats = datamill::stats::MergedStats::from_dir(&cc).unwrap();
    let classifier = stats
        .stages
        .iter()
        .find(|s| s.name == "classifier")
        .unwrap();
    println!(
        "samples/commoncrawl: classifier keeps {} of {} English head/middle pages",
        classifier.docs_out, classifier.docs_in
    );
    // Random pages: some English head/middle pages reach the classifier and some are kept
    // (the first models kept almost none of them).
    assert!(classifier.docs_in >= 10, "{}", classifier.docs_in);
    assert!(classifier.docs_out >= 3, "{}", classifier.docs_out);

    let refs = dir.path().join("refs.tsv.zst");
    wiki_refs(&dumps(), &refs, &WikiRefsOptions::default()).unwrap();
    let hosts: BTreeSet<String> = lines(&refs)
        .iter()
        .filter_map(|(u, _)| host_key(u))
        .collect();
    let cited = run(CITED_WARC, "cited");
    let mut unseen = (0, 0);
    let names: Vec<String> = vec![cited.display().to_string()];
    let mut shards = datamill::sources::training::training_files(&names).unwrap();
    shards.extend(
        datamill::sources::training::training_files(&[cited
            .join("rejected")
            .display()
            .to_string()])
        .unwrap(),
    );
    for shard in shards {
        for doc in datamill::doc::read_shard(&shard).unwrap() {
            let Some(p) = doc.metadata.get("wiki_ref_prob").and_then(|v| v.as_f64()) else {
                continue;
            };
            if !hosts.contains(&host_key(doc.meta_str("url").unwrap()).unwrap()) {
                unseen.1 += 1;
                unseen.0 += usize::from(p >= 0.25);
            }
        }
    }
    println!(
        "cited-kind pages on hosts not cited (never trained on): {} of {} kept",
        unseen.0, unseen.1
    );
    assert!(unseen.1 >= 40, "{}", unseen.1);
    assert!(
        unseen.0 * 10 >= unseen.1 * 7,
        "{} of {}",
        unseen.0,
        unseen.1
    );
}
