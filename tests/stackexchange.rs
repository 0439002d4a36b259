//! Stack Exchange reader on the real sample sites: one document per question, answers by
//! numeric score, missing parents and broken files counted, largest-site selection; the same
//! sites as the dump publishes them (one `.7z` per site, made here with Debian's 7-Zip, `7zz`),
//! broken archives, and a UTF-16 copy of a site.

use std::path::{Path, PathBuf};

use datamill::doc::{read_shard, RecordResult};
use datamill::run::{run_config, PipelineConfig, RunOptions};
use datamill::sources::build_reader;
use datamill::Document;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(path: &Path, options: &str) -> Vec<RecordResult> {
    build_reader("stackexchange", &toml::from_str(options).unwrap())
        .unwrap()
        .read(path, "stackexchange")
        .unwrap()
        .collect()
}

fn docs(items: &[RecordResult]) -> Vec<&Document> {
    items.iter().filter_map(|r| r.as_ref().ok()).collect()
}

#[test]
fn one_document_per_question_on_every_site() {
    let out = tempfile::tempdir().unwrap();
    let sites = root().join("samples/stackexchange/*/Posts.xml");
    let summary = run_dump(&sites, out.path(), "largest_sites = 28");
    let read_stats = &summary.stats.stages[0];
    assert!(read_stats.drops.is_empty(), "{:?}", read_stats.drops);
    // Questions per site (PostTypeId="1" rows): conlang.meta 54, datascience.meta 257,
    // french.meta 274, matheducators 397.
    for (shard, site, questions) in [
        (0, "conlang.meta", 54),
        (1, "datascience.meta", 257),
        (2, "french.meta", 274),
        (3, "matheducators", 397),
    ] {
        let docs = read_shard(&out.path().join(format!("{shard:05}.jsonl.zst"))).unwrap();
        assert_eq!(docs.len(), questions, "{site}");
        assert!(docs.iter().all(|d| d.meta_str("site") == Some(site)));
        assert!(docs.iter().all(|d| d.text.starts_with("Q: ")));
    }
}

#[test]
fn answers_sorted_by_numeric_score_then_date_on_real_posts() {
    let items = read(
        &root().join("samples/stackexchange/matheducators/Posts.xml"),
        "",
    );
    let all = docs(&items);
    assert_eq!(all.len(), 397);
    let q1 = all.iter().find(|d| d.metadata["question_id"] == 1).unwrap();
    assert_eq!(
        q1.meta_str("url"),
        Some("https://matheducators.stackexchange.com/questions/1")
    );
    assert_eq!(
        q1.meta_str("title"),
        Some("Encouraging class participation")
    );
    // Scores 26 25 21 19 10 9 9 4 4: "10" comes before "9" (numbers, not strings), and the
    // two 9s and the two 4s are in creation order (answer 30 before 161, 110 before 137).
    assert_eq!(
        q1.metadata["answer_ids"],
        serde_json::json!([3, 5, 84, 38, 81, 30, 161, 110, 137])
    );
    assert_eq!(
        q1.metadata["answer_scores"],
        serde_json::json!([26, 25, 21, 19, 10, 9, 9, 4, 4])
    );
    assert_eq!(q1.text.matches("\n\nA: ").count(), 9);
    assert!(q1
        .text
        .starts_with("Q: Encouraging class participation\n\nI teach calculus"));
    // Answer 3 (score 26) opens with the think-pair-share list, kept as numbered lines.
    let first = q1.text.find("A: The think-pair-share technique").unwrap();
    let second = q1.text.find("A: This is a small tip").unwrap();
    assert!(first < second);
    assert!(q1
        .text
        .contains("\n1. Pose a question\n2. Give students 1 minute"));
    for d in &all {
        let scores: Vec<i64> = d.metadata["answer_scores"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_i64().unwrap())
            .collect();
        assert!(scores.windows(2).all(|w| w[0] >= w[1]), "{}", d.id);
        assert!(
            !d.text.contains("<p>") && !d.text.contains("&lt;"),
            "{}",
            d.id
        );
    }
    // The 2024 pipe tag format and the ContentLicense attribute.
    let items = read(
        &root().join("samples/stackexchange/datascience.meta/Posts.xml"),
        "",
    );
    let d = docs(&items)[0].clone();
    assert!(!d.metadata["tags"].as_array().unwrap().is_empty());
    assert!(d.meta_str("license").is_some());
}

#[test]
fn missing_parents_and_a_cut_file_are_counted_and_the_rest_read() {
    let dir = tempfile::tempdir().unwrap();
    let site = dir.path().join("conlang.meta");
    std::fs::create_dir_all(&site).unwrap();
    let xml = std::fs::read_to_string(root().join("samples/stackexchange/conlang.meta/Posts.xml"))
        .unwrap();
    // Remove question 1: its 3 answers now refer to a missing parent.
    let start = xml.find("<row Id=\"1\" ").unwrap();
    let end = start + xml[start..].find("/>").unwrap() + 2;
    let orphaned = xml.matches("ParentId=\"1\" ").count();
    assert_eq!(orphaned, 3);
    let path = site.join("Posts.xml");
    std::fs::write(&path, format!("{}{}", &xml[..start], &xml[end..])).unwrap();
    let items = read(&path, "");
    assert_eq!(docs(&items).len(), 53);
    let missing: Vec<_> = items
        .iter()
        .filter_map(|r| r.as_ref().err())
        .filter(|e| e.reason == "missing_parent")
        .collect();
    assert_eq!(missing.len(), orphaned);
    let bytes = std::fs::read(&path).unwrap();
    for e in &missing {
        assert!(
            bytes[e.offset as usize..].starts_with(b"<row Id="),
            "offset {}",
            e.offset
        );
    }

    // Cut in the middle of a row: the questions before the cut, then a fatal bad_xml.
    let cut_at = xml.len() / 2;
    std::fs::write(&path, &xml.as_bytes()[..cut_at]).unwrap();
    let items = read(&path, "");
    let last = items.last().unwrap().as_ref().unwrap_err();
    assert!(last.fatal && last.reason == "bad_xml", "{last:?}");
    let before = xml[..cut_at].matches("PostTypeId=\"1\"").count();
    assert!(docs(&items).len() >= before - 1 && docs(&items).len() <= before);
}

#[test]
fn only_the_largest_sites_are_read() {
    // Posts.xml sizes: matheducators 3.5 MB, french.meta 1.5 MB, datascience.meta 1.0 MB,
    // conlang.meta 0.3 MB.
    let base = root().join("samples/stackexchange");
    let items = read(&base.join("french.meta/Posts.xml"), "largest_sites = 2");
    assert_eq!(docs(&items).len(), 274);
    let items = read(
        &base.join("datascience.meta/Posts.xml"),
        "largest_sites = 2",
    );
    assert_eq!(items.len(), 1);
    assert_eq!(items[0].as_ref().unwrap_err().reason, "site_not_selected");
    // Other files of a site folder yield nothing.
    assert!(read(&base.join("conlang.meta/LICENSE"), "").is_empty());
}

/// The site `site` of the samples packed as the dump publishes it, in `dir/archive_name`, by
/// 7-Zip with the compression `method` (`LZMA`, `LZMA2`, `BZip2`, `PPMd`). The dump's archives
/// hold the site's tables at their root.
fn pack_site(site: &str, dir: &Path, archive_name: &str, method: &str) -> PathBuf {
    let staging = tempfile::tempdir().unwrap();
    std::fs::copy(
        root().join(format!("samples/stackexchange/{site}/Posts.xml")),
        staging.path().join("Posts.xml"),
    )
    .unwrap();
    std::fs::create_dir_all(dir).unwrap();
    let archive = dir.join(archive_name);
    let method = format!("-m0={method}");
    let archive_arg = archive.to_string_lossy().into_owned();
    sevenzip(
        &["a", "-t7z", &method, &archive_arg, "Posts.xml"],
        staging.path(),
    );
    archive
}

/// Runs Debian's 7-Zip (`7zz`) quietly in `cwd`.
fn sevenzip(args: &[&str], cwd: &Path) {
    let status = std::process::Command::new("7zz")
        .args(args)
        .args(["-bso0", "-bsp0"])
        .current_dir(cwd)
        .status()
        .expect("7zz (Debian package 7zip, installed by `make setup`) must be on PATH");
    assert!(status.success(), "7zz {args:?}");
}

/// Runs the Stack Exchange pipeline over `dump` (a dump folder, a file or a glob) with reader
/// `options`.
fn run_dump(dump: &Path, out: &Path, options: &str) -> datamill::run::RunSummary {
    let text = std::fs::read_to_string(root().join("pipelines/stackexchange.toml")).unwrap();
    let mut config = PipelineConfig::parse(&text).unwrap();
    config.input.paths = vec![dump.to_string_lossy().into_owned()];
    config.input.options = toml::from_str(options).unwrap();
    config.output.dir = out.to_path_buf();
    let summary = run_config(
        &config,
        &RunOptions {
            world_size: 1,
            threads: 2,
            ..Default::default()
        },
    )
    .unwrap();
    assert!(summary.failures.is_empty(), "{:?}", summary.failures);
    summary
}

/// Every document as its JSON line, to compare byte for byte.
fn json_lines(items: &[RecordResult]) -> Vec<String> {
    docs(items)
        .iter()
        .map(|d| serde_json::to_string(d).unwrap())
        .collect()
}

#[test]
fn a_site_archive_gives_the_documents_of_its_folder_byte_for_byte() {
    let folder = read(
        &root().join("samples/stackexchange/french.meta/Posts.xml"),
        "",
    );
    let expected = json_lines(&folder);
    assert_eq!(expected.len(), 274);
    let dir = tempfile::tempdir().unwrap();
    for method in ["LZMA", "LZMA2", "BZip2", "PPMd"] {
        let archive = pack_site(
            "french.meta",
            &dir.path().join(method),
            "french.meta.stackexchange.com.7z",
            method,
        );
        let items = read(&archive, "");
        assert!(
            items.iter().all(|r| r.is_ok()),
            "{method}: {:?}",
            items.iter().find(|r| r.is_err())
        );
        assert!(json_lines(&items) == expected, "{method}");
    }
}

#[test]
fn a_dump_folder_of_archives_is_one_site_per_archive() {
    let dir = tempfile::tempdir().unwrap();
    let dump = dir.path().join("dump");
    pack_site(
        "conlang.meta",
        &dump,
        "conlang.meta.stackexchange.com.7z",
        "LZMA",
    );
    pack_site(
        "matheducators",
        &dump,
        "stackoverflow.com-Posts.7z",
        "BZip2",
    );
    pack_site(
        "datascience.meta",
        &dump,
        "datascience.meta.stackexchange.com.7z",
        "LZMA",
    );
    // Stack Overflow's other tables come as archives of their own: nothing to read in them.
    let staging = tempfile::tempdir().unwrap();
    std::fs::write(
        staging.path().join("Comments.xml"),
        "<comments>\n</comments>\n",
    )
    .unwrap();
    let comments = dump.join("stackoverflow.com-Comments.7z");
    sevenzip(
        &["a", "-t7z", &comments.to_string_lossy(), "Comments.xml"],
        staging.path(),
    );

    let out = dir.path().join("out");
    let summary = run_dump(&dump, &out, "largest_sites = 2");
    // Sorted inputs: conlang.meta, datascience.meta, stackoverflow.com-Comments,
    // stackoverflow.com-Posts. The two largest Posts.xml the archives list are matheducators'
    // (as stackoverflow.com) and datascience.meta's.
    let shard = |i: usize| read_shard(&out.join(format!("{i:05}.jsonl.zst"))).unwrap();
    assert!(shard(0).is_empty());
    let datascience = shard(1);
    assert_eq!(datascience.len(), 257);
    assert!(datascience
        .iter()
        .all(|d| d.meta_str("site") == Some("datascience.meta")
            && d.id.starts_with("datascience.meta.stackexchange.com:")));
    assert!(shard(2).is_empty());
    let so = shard(3);
    assert_eq!(so.len(), 397);
    assert!(so
        .iter()
        .all(|d| d.meta_str("site") == Some("stackoverflow.com")
            && d.meta_str("url")
                .unwrap()
                .starts_with("https://stackoverflow.com/questions/")));
    assert_eq!(summary.stats.stages[0].drops["site_not_selected"], 1);
    // The archive of comments gave no document and no record: the run says so.
    let empty = &summary.stats.empty_inputs;
    assert_eq!(empty.len(), 2, "{empty:?}");
    assert!(
        empty[1].ends_with("stackoverflow.com-Comments.7z"),
        "{empty:?}"
    );
    assert!(summary.report().contains("2 input(s) gave no document"));
    // The extracted copies live in the scratch folder only while read.
    let scratch = out.join(".work/scratch");
    assert!(!scratch.exists() || std::fs::read_dir(&scratch).unwrap().next().is_none());
}

#[test]
fn broken_archives_are_named_and_the_other_sites_still_read() {
    let dir = tempfile::tempdir().unwrap();
    let dump = dir.path().join("dump");
    let good = pack_site(
        "conlang.meta",
        &dump,
        "conlang.meta.stackexchange.com.7z",
        "LZMA",
    );
    // Truncated: the second half of the archive (with its header at the end) is missing.
    let whole = pack_site(
        "french.meta",
        dir.path(),
        "french.meta.stackexchange.com.7z",
        "LZMA",
    );
    let bytes = std::fs::read(&whole).unwrap();
    let cut = dump.join("french.meta.stackexchange.com.7z");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    // A member that climbs out of the extraction folder.
    let escaping = pack_site(
        "matheducators",
        &dump,
        "matheducators.stackexchange.com.7z",
        "LZMA",
    );
    sevenzip(
        &[
            "rn",
            &escaping.to_string_lossy(),
            "Posts.xml",
            "../Posts.xml",
        ],
        dir.path(),
    );

    let items = read(&cut, "");
    assert_eq!(items.len(), 1);
    let e = items[0].as_ref().unwrap_err();
    assert_eq!((e.reason.as_str(), e.fatal), ("bad_archive", true));
    assert!(
        e.message.contains("french.meta.stackexchange.com.7z"),
        "{e:?}"
    );

    let items = read(&escaping, "");
    let reasons: Vec<&str> = items
        .iter()
        .map(|r| r.as_ref().unwrap_err().reason.as_str())
        .collect();
    assert_eq!(reasons, ["unsafe_path", "bad_archive"]);
    let e = items[0].as_ref().unwrap_err();
    assert!(
        e.message.contains("matheducators.stackexchange.com.7z")
            && e.message.contains("../Posts.xml"),
        "{e:?}"
    );

    // In a run, the good site is read whole and each broken one is one quarantined record.
    let out = dir.path().join("out");
    let summary = run_dump(&dump, &out, "largest_sites = 28");
    let conlang = read_shard(&out.join("00000.jsonl.zst")).unwrap();
    let expected = json_lines(&read(&good, ""));
    assert_eq!(expected.len(), 54);
    assert!(conlang
        .iter()
        .map(|d| serde_json::to_string(d).unwrap())
        .eq(expected));
    let drops = &summary.stats.stages[0].drops;
    assert_eq!(drops["bad_archive"], 2, "{drops:?}");
    assert_eq!(drops["unsafe_path"], 1, "{drops:?}");
    let quarantine = std::fs::read_to_string(out.join("quarantine/00001.jsonl")).unwrap();
    assert!(quarantine.contains("french.meta.stackexchange.com.7z"));
}

#[test]
fn a_utf16_copy_of_a_site_gives_the_same_documents() {
    let original = root().join("samples/stackexchange/french.meta/Posts.xml");
    let expected = json_lines(&read(&original, ""));
    let text = std::fs::read_to_string(&original).unwrap();
    let text = text.trim_start_matches('\u{feff}').replacen(
        "encoding=\"utf-8\"",
        "encoding=\"UTF-16\"",
        1,
    );
    let dir = tempfile::tempdir().unwrap();
    let site = dir.path().join("french.meta");
    std::fs::create_dir_all(&site).unwrap();
    let mut utf16 = vec![0xFF, 0xFE];
    utf16.extend(text.encode_utf16().flat_map(u16::to_le_bytes));
    let path = site.join("Posts.xml");
    std::fs::write(&path, &utf16).unwrap();
    let items = read(&path, "");
    assert!(items.iter().all(|r| r.is_ok()));
    assert!(json_lines(&items) == expected);
}
