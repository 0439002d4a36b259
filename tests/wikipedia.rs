//! Wikipedia reader and wikitext cleaner on every sample dump: page, redirect and namespace
//! counts, no markup left, language and URL metadata, and broken dumps.

use std::path::{Path, PathBuf};

use datamill::doc::{read_shard, RecordResult};
use datamill::run::{run_config, PipelineConfig, RunOptions};
use datamill::sources::build_reader;
use datamill::stats::StageStats;
use datamill::Document;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Runs pipelines/wikipedia.toml over one input with every language kept.
fn run(input: &Path, out: &Path) -> (Vec<StageStats>, Vec<Document>) {
    let text = std::fs::read_to_string(root().join("pipelines/wikipedia.toml")).unwrap();
    let mut config = PipelineConfig::parse(&text).unwrap();
    config.input.paths = vec![input.to_string_lossy().into_owned()];
    config.output.dir = out.to_path_buf();
    config.stages[0].insert("languages".into(), toml::Value::Array(vec![]));
    let opts = RunOptions {
        world_size: 1,
        threads: 2,
        ..Default::default()
    };
    let summary = run_config(&config, &opts).unwrap();
    assert!(summary.failures.is_empty(), "{:?}", summary.failures);
    let mut docs = Vec::new();
    let mut files: Vec<_> = std::fs::read_dir(out)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(".jsonl.zst"))
        .collect();
    files.sort();
    for f in files {
        docs.extend(read_shard(&f).unwrap());
    }
    (summary.stats.stages, docs)
}

fn assert_clean(docs: &[Document]) {
    for d in docs {
        for bad in [
            "{{", "}}", "[[", "]]", "<ref", "{|", "|}", "|-", "<!--", "'''",
        ] {
            assert!(!d.text.contains(bad), "{} contains {bad:?}", d.id);
        }
        assert!(!d.text.trim().is_empty(), "{}", d.id);
    }
}

#[test]
fn english_dump_counts_and_clean_text() {
    let out = tempfile::tempdir().unwrap();
    let input = root().join(
        "samples/wikipedia/gensim/enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2",
    );
    let (stages, docs) = run(&input, out.path());
    assert_eq!(stages[0].docs_out, 206, "pages read");
    let filter = &stages[1];
    assert_eq!(filter.drops.get("redirect"), Some(&100));
    assert_eq!(filter.drops.get("namespace"), None);
    assert_eq!(docs.len(), 106);
    assert_clean(&docs);
    let anarchism = docs
        .iter()
        .find(|d| d.meta_str("title") == Some("Anarchism"))
        .unwrap();
    assert_eq!(
        anarchism.meta_str("url"),
        Some("https://en.wikipedia.org/wiki/Anarchism")
    );
    assert_eq!(anarchism.meta_str("language"), Some("en"));
    assert_eq!(anarchism.id, "enwiki:12");
    assert!(anarchism
        .text
        .starts_with("Anarchism is a political philosophy that advocates self-governed societies"));
    // Link text kept, categories and trailing reference sections gone.
    assert!(anarchism.text.contains("Pierre-Joseph Proudhon"));
    assert!(!anarchism.text.contains("Category:"));
    assert!(!anarchism.text.contains("\nReferences\n"));
}

#[test]
fn latgalian_dump_localised_namespaces() {
    let out = tempfile::tempdir().unwrap();
    let input = root().join("samples/wikipedia/dumpster-dive/smallwiki-latest-pages-articles.xml");
    let (stages, docs) = run(&input, out.path());
    assert_eq!(stages[0].docs_out, 2004, "pages read");
    let filter = &stages[1];
    assert_eq!(filter.drops.get("redirect"), Some(&195));
    assert_eq!(filter.drops.get("namespace"), Some(&906));
    let empty = filter.drops.get("empty_article").copied().unwrap_or(0);
    assert_eq!(docs.len() as u64 + empty, 903);
    assert!(docs.len() > 850);
    assert_clean(&docs);
    assert!(docs.iter().all(|d| d.meta_str("language") == Some("ltg")));
    assert!(docs.iter().all(|d| d
        .meta_str("url")
        .unwrap()
        .starts_with("https://ltg.wikipedia.org/wiki/")));
    // Localised file and category links (Fails:, Kategoreja:) are removed.
    assert!(!docs
        .iter()
        .any(|d| d.text.contains("Kategoreja:") || d.text.contains("Fails:")));
}

#[test]
fn minidumps_take_their_language_from_the_folder() {
    let out = tempfile::tempdir().unwrap();
    let input = root().join("samples/wikipedia/extraction-framework");
    let (stages, docs) = run(&input, out.path());
    assert_eq!(stages[0].docs_out, 8);
    assert_eq!(docs.len(), 8);
    assert_clean(&docs);
    let mut langs: Vec<_> = docs
        .iter()
        .map(|d| d.meta_str("language").unwrap())
        .collect();
    langs.sort();
    assert_eq!(langs, ["de", "de", "fr", "fr", "fr", "ja", "ru", "zh"]);
    let berlin = docs
        .iter()
        .find(|d| d.meta_str("language") == Some("de") && d.meta_str("title") == Some("Berlin"))
        .unwrap();
    assert_eq!(
        berlin.meta_str("url"),
        Some("https://de.wikipedia.org/wiki/Berlin")
    );
    assert!(berlin.text.contains("Hauptstadt"));
}

fn read(path: &Path) -> Vec<RecordResult> {
    build_reader("wikipedia", &toml::Table::new())
        .unwrap()
        .read(path, "wikipedia")
        .unwrap()
        .collect()
}

#[test]
fn broken_dumps_give_errors_with_positions_after_the_good_pages() {
    let dir = tempfile::tempdir().unwrap();
    let xml = std::fs::read(
        root().join("samples/wikipedia/dumpster-dive/smallwiki-latest-pages-articles.xml"),
    )
    .unwrap();

    // Cut in the middle of a page.
    let cut = dir.path().join("cut.xml");
    std::fs::write(&cut, &xml[..xml.len() / 2]).unwrap();
    let items = read(&cut);
    let last = items.last().unwrap().as_ref().unwrap_err();
    assert!(
        matches!(last.reason.as_str(), "truncated_page" | "bad_xml"),
        "{last:?}"
    );
    assert!(last.offset > 1_000_000 && last.offset < xml.len() as u64 / 2);
    let complete = String::from_utf8_lossy(&xml[..xml.len() / 2])
        .matches("</page>")
        .count();
    assert!(complete > 100);
    assert_eq!(items.iter().filter(|r| r.is_ok()).count(), complete);

    // Malformed XML: a mismatched closing tag inside the 3rd page.
    let text = String::from_utf8(xml.clone()).unwrap();
    let third = text.match_indices("<page>").nth(2).unwrap().0;
    let bad = format!(
        "{}<page><title>x</titel>{}",
        &text[..third],
        &text[third + 6..]
    );
    let bad_path = dir.path().join("bad.xml");
    std::fs::write(&bad_path, bad).unwrap();
    let items = read(&bad_path);
    assert_eq!(items.iter().filter(|r| r.is_ok()).count(), 2);
    let err = items.last().unwrap().as_ref().unwrap_err();
    assert_eq!(err.reason, "bad_xml");
    assert!(err.fatal && err.offset >= third as u64, "{err:?}");

    // A bzip2 dump cut short: the pages before the cut, then a read error.
    let bz = std::fs::read(root().join(
        "samples/wikipedia/gensim/enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2",
    ))
    .unwrap();
    let short = dir.path().join("short.xml.bz2");
    std::fs::write(&short, &bz[..bz.len() / 2]).unwrap();
    let items = read(&short);
    assert!(items.iter().filter(|r| r.is_ok()).count() > 50);
    let err = items.last().unwrap().as_ref().unwrap_err();
    assert!(err.fatal, "{err:?}");
}

#[test]
fn multistream_bz2_is_read_as_one_dump() {
    // A multistream dump is several bzip2 streams back to back (header, then pages in groups).
    let xml = std::fs::read_to_string(
        root().join("samples/wikipedia/dumpster-dive/smallwiki-latest-pages-articles.xml"),
    )
    .unwrap();
    let cuts: Vec<usize> = xml
        .match_indices("  <page>")
        .map(|(i, _)| i)
        .step_by(500)
        .collect();
    let mut bytes = Vec::new();
    let mut from = 0;
    for &cut in cuts.iter().chain(std::iter::once(&xml.len())) {
        let mut enc = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::fast());
        std::io::Write::write_all(&mut enc, &xml.as_bytes()[from..cut]).unwrap();
        bytes.extend(enc.finish().unwrap());
        from = cut;
    }
    assert!(cuts.len() >= 4);
    let dir = tempfile::tempdir().unwrap();
    let path = dir
        .path()
        .join("ltgwiki-pages-articles-multistream.xml.bz2");
    std::fs::write(&path, bytes).unwrap();
    let items = read(&path);
    assert_eq!(items.len(), 2004);
    assert!(items.iter().all(|r| r.is_ok()));
}

/// `text` as UTF-16 (little- or big-endian), with a byte-order mark or not.
fn utf16(text: &str, little_endian: bool, bom: bool) -> Vec<u8> {
    let mut out = Vec::new();
    if bom {
        out.extend_from_slice(if little_endian {
            &[0xFF, 0xFE]
        } else {
            &[0xFE, 0xFF]
        });
    }
    for unit in text.encode_utf16() {
        out.extend_from_slice(&if little_endian {
            unit.to_le_bytes()
        } else {
            unit.to_be_bytes()
        });
    }
    out
}

#[test]
fn utf16_exports_give_the_pages_of_the_utf8_dump() {
    use std::io::Read;
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        ("extraction-framework/ru/wiki.xml.bz2", true, true),
        (
            "dumpster-dive/smallwiki-latest-pages-articles.xml",
            true,
            true,
        ),
        (
            "dumpster-dive/smallwiki-latest-pages-articles.xml",
            false,
            false,
        ),
    ];
    for (rel, little_endian, bom) in cases {
        let original = root().join("samples/wikipedia").join(rel);
        let mut xml = String::new();
        datamill::doc::open_decompressed(&original)
            .unwrap()
            .read_to_string(&mut xml)
            .unwrap();
        // A re-exporting tool writes the declaration of the encoding it uses.
        let exported = format!("<?xml version=\"1.0\" encoding=\"UTF-16\"?>\n{xml}");
        let folder = dir
            .path()
            .join(format!("{little_endian}-{bom}"))
            .join(original.parent().unwrap().file_name().unwrap());
        std::fs::create_dir_all(&folder).unwrap();
        let copy = folder.join("wiki.xml");
        std::fs::write(&copy, utf16(&exported, little_endian, bom)).unwrap();
        let json = |items: Vec<RecordResult>| -> Vec<String> {
            items
                .into_iter()
                .map(|r| serde_json::to_string(&r.unwrap()).unwrap())
                .collect()
        };
        let expected = json(read(&original));
        assert!(!expected.is_empty());
        assert!(
            json(read(&copy)) == expected,
            "{rel} le {little_endian} bom {bom}"
        );
    }
}
