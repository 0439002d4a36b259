//! One big file as many shards (`split_bytes`): a plain JSONL file cut at line ends and a
//! multistream MediaWiki dump cut at bz2 streams (by its index, and by scanning without one)
//! give exactly the documents of the unsplit run, whatever the range size or thread count.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use datamill::run::{run_config, PipelineConfig, RunOptions};

const SAMPLES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/samples");

/// Runs `reader` over `input` into `out` with `threads`, optionally split, and returns every
/// kept document (id → the whole JSON line) and the number of shards.
fn documents(
    reader: &str,
    input: &Path,
    out: &Path,
    split: Option<&str>,
    threads: usize,
    extra: &str,
) -> (BTreeMap<String, String>, usize) {
    let split = split
        .map(|s| format!("split_bytes = \"{s}\"\n"))
        .unwrap_or_default();
    let config = PipelineConfig::parse(&format!(
        "name = \"ranges\"\nsource = \"test\"\n[input]\npaths = [\"{}\"]\nreader = \"{reader}\"\n\
         {split}{extra}\n[output]\ndir = \"{}\"\n",
        input.display(),
        out.display()
    ))
    .unwrap();
    let opts = RunOptions {
        threads,
        world_size: 1,
        ..Default::default()
    };
    let summary = run_config(&config, &opts).unwrap();
    assert!(summary.failures.is_empty(), "{:?}", summary.failures);
    let mut docs = BTreeMap::new();
    let mut shards = 0;
    for e in std::fs::read_dir(out).unwrap() {
        let p = e.unwrap().path();
        if !p.to_string_lossy().ends_with(".jsonl.zst") {
            continue;
        }
        shards += 1;
        for doc in datamill::doc::read_shard(&p).unwrap() {
            let line = serde_json::to_string(&doc).unwrap();
            assert!(
                docs.insert(doc.id.clone(), line).is_none(),
                "id {} twice",
                doc.id
            );
        }
    }
    (docs, shards)
}

/// Every manifest of `out` names its range.
fn assert_manifests_name_ranges(out: &Path) {
    for e in std::fs::read_dir(out).unwrap() {
        let p = e.unwrap().path();
        if p.to_string_lossy().ends_with(".manifest.json") {
            let m = std::fs::read_to_string(&p).unwrap();
            assert!(m.contains("\"range\""), "{}: {m}", p.display());
        }
    }
}

#[test]
fn a_jsonl_file_split_at_line_ends_gives_the_documents_of_the_unsplit_run() {
    let dir = tempfile::tempdir().unwrap();
    // Both real C4 samples, one after the other, then the first again: ids are `file:line`,
    // and exact dedup drops the repeats whichever range they fall in.
    let gz =
        Path::new(SAMPLES).join("c4/dolma/CC-MAIN-20190717121559-20190717143559-00140.jsonl.gz");
    let mut first = Vec::new();
    flate2::read::MultiGzDecoder::new(std::fs::File::open(gz).unwrap())
        .read_to_end(&mut first)
        .unwrap();
    let second = std::fs::read(Path::new(SAMPLES).join("c4/dolma/cc_en_head-0091.jsonl")).unwrap();
    let input = dir.path().join("in/big.jsonl");
    std::fs::create_dir_all(input.parent().unwrap()).unwrap();
    let mut f = std::fs::File::create(&input).unwrap();
    for part in [&first, &second, &first] {
        f.write_all(part).unwrap();
    }
    drop(f);
    let extra = "[input.options]\nkeep_id = false\n[[stages]]\ntype = \"exact_dedup\"";
    let run = |name: &str, split: Option<&str>, threads| {
        documents(
            "jsonl",
            &input,
            &dir.path().join(name),
            split,
            threads,
            extra,
        )
    };
    let (whole, shards) = run("whole", None, 1);
    assert_eq!(shards, 1);
    assert!(whole.len() > 100, "{} documents", whole.len());
    for (name, split, threads) in [("a", "300KB", 1), ("b", "300KB", 2), ("c", "77kB", 2)] {
        let (docs, shards) = run(name, Some(split), threads);
        assert!(shards > 3, "{name}: {shards} shards");
        assert_manifests_name_ranges(&dir.path().join(name));
        assert_eq!(docs.len(), whole.len(), "{name}");
        assert!(
            docs == whole,
            "{name}: other documents than the unsplit run"
        );
    }
}

/// The text of `<tag>` inside `page`.
fn tag<'a>(page: &'a str, tag: &str) -> &'a str {
    let open = format!("<{tag}>");
    let start = page.find(&open).unwrap() + open.len();
    let end = start + page[start..].find(&format!("</{tag}>")).unwrap();
    &page[start..end]
}

fn bz2(text: &str) -> Vec<u8> {
    let mut enc = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::best());
    enc.write_all(text.as_bytes()).unwrap();
    enc.finish().unwrap()
}

/// A multistream dump made from the first `pages` pages of the real gensim sample: the
/// header (through `</siteinfo>`) as the first stream, `per_stream` pages per stream, then
/// `</mediawiki>`; and its index (`offset:page_id:title`).
fn make_multistream(dir: &Path, pages: usize, per_stream: usize) -> (PathBuf, PathBuf) {
    let sample = Path::new(SAMPLES).join(
        "wikipedia/gensim/enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2",
    );
    let mut xml = String::new();
    bzip2::read::MultiBzDecoder::new(std::fs::File::open(sample).unwrap())
        .read_to_string(&mut xml)
        .unwrap();
    let header_end = xml.find("</siteinfo>").unwrap() + "</siteinfo>\n".len();
    let header = &xml[..header_end];
    let body: Vec<&str> = xml[header_end..]
        .split_inclusive("</page>\n")
        .filter(|p| p.contains("<page>"))
        .take(pages)
        .collect();
    assert_eq!(body.len(), pages);
    let dump = dir.join("enwiki-test-pages-articles-multistream.xml.bz2");
    let mut out = bz2(header);
    let mut index = String::new();
    for group in body.chunks(per_stream) {
        let offset = out.len();
        for p in group {
            index.push_str(&format!("{offset}:{}:{}\n", tag(p, "id"), tag(p, "title")));
        }
        out.extend(bz2(&group.concat()));
    }
    out.extend(bz2("</mediawiki>\n"));
    std::fs::write(&dump, out).unwrap();
    let index_path = dir.join("enwiki-test-pages-articles-multistream-index.txt.bz2");
    std::fs::write(&index_path, bz2(&index)).unwrap();
    (dump, index_path)
}

#[test]
fn a_multistream_dump_split_by_streams_gives_the_documents_of_the_unsplit_run() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("dump");
    std::fs::create_dir_all(&data).unwrap();
    let (dump, index) = make_multistream(&data, 48, 4);
    let run = |name: &str, split: Option<&str>, threads| {
        documents(
            "wikipedia",
            &dump,
            &dir.path().join(name),
            split,
            threads,
            "",
        )
    };
    let (whole, shards) = run("whole", None, 1);
    assert_eq!(shards, 1);
    assert_eq!(whole.len(), 48);
    // Every page knows the dump's language and site from the first stream.
    assert!(
        whole
            .values()
            .all(|d| d.contains("\"language\":\"en\"")
                && d.contains("https://en.wikipedia.org/wiki/"))
    );
    for (name, split, threads) in [("by-index", "20KB", 2), ("by-index-1", "45KB", 1)] {
        let (docs, shards) = run(name, Some(split), threads);
        assert!(shards > 2, "{name}: {shards} shards");
        assert_manifests_name_ranges(&dir.path().join(name));
        assert!(
            docs == whole,
            "{name}: other documents than the unsplit run"
        );
    }
    // Without its index the dump is cut where a scan finds stream headers.
    std::fs::remove_file(index).unwrap();
    let (docs, shards) = run("by-scan", Some("20KB"), 2);
    assert!(shards > 2, "by-scan: {shards} shards");
    assert!(
        docs == whole,
        "by-scan: other documents than the unsplit run"
    );

    // A single-stream file is read whole whatever split_bytes says.
    let single = Path::new(SAMPLES).join("wikipedia/extraction-framework/de/wiki.xml.bz2");
    let (_, shards) = documents(
        "wikipedia",
        &single,
        &dir.path().join("single"),
        Some("1KB"),
        2,
        "",
    );
    assert_eq!(shards, 1);
}
