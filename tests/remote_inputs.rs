//! Inputs over HTTP: a pipeline reading `samples/commoncrawl` through a path list and a base
//! URL from a real HTTP server on 127.0.0.1 (tests/http_support) writes the same shards, byte
//! for byte, as the run over the local files, also when the server cuts a connection in the
//! middle of a gzip member, answers 503 with Retry-After, or ignores Range. A missing entry or
//! a URL that never answers fails alone and is named; a changed remote file is made again.

mod common;
mod http_support;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use datamill::run::{run_config, PipelineConfig, RunOptions, RunSummary};
use http_support::{Fault, Server};

const SAMPLES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/samples");

/// Two group stages, so the URL inputs feed a run of three segments.
const STAGES: &str = "[[stages]]\ntype = \"exact_dedup\"\n[[stages]]\ntype = \"line_dedup\"\n";

/// Copies `samples/<from>` to `www/<to>` and writes a gzipped path list of its files at
/// `www/<to>.paths.gz`; returns the list's entries.
fn publish(www: &Path, from: &str, to: &str) -> Vec<String> {
    let dest = www.join(to);
    let src = Path::new(SAMPLES).join(from);
    let files = datamill::inputs::expand_inputs(&[src.to_string_lossy().into_owned()]).unwrap();
    let mut entries = Vec::new();
    for f in files {
        let rel = f.strip_prefix(&src).unwrap().to_string_lossy().into_owned();
        std::fs::create_dir_all(dest.join(&rel).parent().unwrap()).unwrap();
        std::fs::copy(&f, dest.join(&rel)).unwrap();
        entries.push(rel);
    }
    write_list(&www.join(format!("{to}.paths.gz")), &entries);
    entries
}

fn write_list(path: &Path, entries: &[String]) {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(entries.join("\n").as_bytes()).unwrap();
    std::fs::write(path, gz.finish().unwrap()).unwrap();
}

/// A pipeline reading with `reader` from `input` (the `[input]` lines) into `out`.
fn pipeline(reader: &str, input: &str, out: &Path, stages: &str) -> PipelineConfig {
    PipelineConfig::parse(&format!(
        "name = \"remote\"\nsource = \"web\"\n[input]\nreader = \"{reader}\"\n{input}\n\
         [input.remote]\ntimeout_secs = 2\nmax_attempts = 3\nretry_base_secs = 0.05\n\
         retry_max_secs = 2\n[output]\ndir = \"{}\"\nkeep_rejected = true\n{stages}",
        out.display()
    ))
    .unwrap()
}

fn run(config: &PipelineConfig) -> RunSummary {
    let opts = RunOptions {
        threads: 2,
        world_size: 1,
        ..Default::default()
    };
    run_config(config, &opts).unwrap()
}

/// Every document shard under `dir` (output and rejected), by relative path, with its bytes.
fn shards(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    common::files_ending(dir, ".jsonl.zst")
        .into_iter()
        .map(|p| {
            let bytes = std::fs::read(&p).unwrap();
            (p.strip_prefix(dir).unwrap().to_path_buf(), bytes)
        })
        .collect()
}

fn assert_same_shards(local: &Path, remote: &Path) {
    let (a, b) = (shards(local), shards(remote));
    assert!(a.len() >= 10, "too few shards: {:?}", a.keys());
    assert_eq!(a.keys().collect::<Vec<_>>(), b.keys().collect::<Vec<_>>());
    for (k, v) in &a {
        assert!(v == &b[k], "{} differs", k.display());
    }
}

/// The local baseline and a server publishing the same files.
fn setup(dir: &Path) -> (Server, Vec<String>, PathBuf) {
    let www = dir.join("www");
    let entries = publish(&www, "commoncrawl", "cc");
    let local = dir.join("local");
    let input = format!("paths = [\"{}\"]", www.join("cc").display());
    let summary = run(&pipeline("warc", &input, &local, STAGES));
    assert!(summary.failures.is_empty(), "{:?}", summary.failures);
    (Server::start(&www), entries, local)
}

fn url_input(server: &Server, list: &str) -> String {
    format!(
        "path_list = \"{}{list}\"\nbase_url = \"{}cc/\"",
        server.base_url(),
        server.base_url()
    )
}

#[test]
fn url_inputs_give_the_local_output_and_a_rerun_only_asks_whether_they_changed() {
    let dir = tempfile::tempdir().unwrap();
    let (server, entries, local) = setup(dir.path());
    let out = dir.path().join("remote");
    let config = pipeline("warc", &url_input(&server, "cc.paths.gz"), &out, STAGES);
    let first = run(&config);
    assert!(first.failures.is_empty(), "{:?}", first.failures);
    assert_eq!(first.shards_done, entries.len());
    assert_same_shards(&local, &out);
    let served: u64 = entries
        .iter()
        .map(|e| {
            std::fs::metadata(dir.path().join("www/cc").join(e))
                .unwrap()
                .len()
        })
        .sum();
    assert_eq!(first.input_bytes, served, "bytes read from the URLs");
    let manifest = std::fs::read_to_string(out.join("00000.manifest.json")).unwrap();
    assert!(manifest.contains("\"etag\"") && manifest.contains("\"last_modified\""));

    server.clear_log();
    let again = run(&config);
    assert_eq!(
        (again.shards_done, again.shards_skipped),
        (0, entries.len())
    );
    let bodies = server
        .requests()
        .iter()
        .filter(|r| r.status == 200 || r.status == 206)
        .count();
    assert_eq!(bodies, 1, "only the path list is fetched again");

    // A remote file that changed is read again; the others are not.
    let changed = dir.path().join("www/cc").join(&entries[0]);
    let mut bytes = std::fs::read(&changed).unwrap();
    bytes.extend_from_slice(&std::fs::read(dir.path().join("www/cc").join(&entries[1])).unwrap());
    std::fs::write(&changed, bytes).unwrap();
    let third = run(&config);
    assert_eq!(
        (third.shards_done, third.shards_skipped),
        (1, entries.len() - 1)
    );
}

#[test]
fn cut_connections_503s_and_ignored_ranges_give_the_same_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let (server, _, local) = setup(dir.path());
    let cut = "cc/dolma/sample-0000.warc.gz";
    let busy = "cc/whirlwind-python/whirlwind.warc.gz";
    let norange = "cc/chatnoir-resiliparse/warcfile.warc.gz";
    server.set_fault(
        cut,
        Fault {
            cut_at: Some(100_000),
            ..Fault::default()
        },
    );
    server.set_fault(
        busy,
        Fault {
            unavailable: 2,
            ..Fault::default()
        },
    );
    server.set_fault(
        norange,
        Fault {
            cut_at: Some(60_000),
            ignore_range: true,
            ..Fault::default()
        },
    );
    let out = dir.path().join("remote");
    let summary = run(&pipeline(
        "warc",
        &url_input(&server, "cc.paths.gz"),
        &out,
        STAGES,
    ));
    assert!(summary.failures.is_empty(), "{:?}", summary.failures);
    assert_same_shards(&local, &out);

    // The cut transfer went on with a Range request at the byte it had reached.
    let ranges: Vec<Option<String>> = server
        .requests_for(cut)
        .into_iter()
        .map(|r| r.range)
        .collect();
    assert_eq!(ranges, [None, Some("bytes=100000-".to_string())]);
    let statuses: Vec<u16> = server.requests_for(busy).iter().map(|r| r.status).collect();
    assert_eq!(statuses, [503, 503, 200]);
    let seen = server.requests_for(norange);
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[1].range.as_deref(), Some("bytes=60000-"));
    assert_eq!(seen[1].status, 200, "the server answered the whole file");
}

#[test]
fn a_missing_entry_and_a_silent_server_fail_alone_and_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let (server, mut entries, _) = setup(dir.path());
    entries.push("missing/gone.warc.gz".to_string());
    write_list(&dir.path().join("www/broken.paths.gz"), &entries);
    server.set_fault(
        "cc/hang.warc.gz",
        Fault {
            hang: true,
            ..Fault::default()
        },
    );
    let hang = format!("{}cc/hang.warc.gz", server.base_url());
    let input = format!(
        "{}\npaths = [\"{hang}\"]",
        url_input(&server, "broken.paths.gz")
    );
    let out = dir.path().join("remote");
    let summary = run(&pipeline("warc", &input, &out, ""));
    assert_eq!(summary.failures.len(), 2, "{:?}", summary.failures);
    let gone = summary
        .failures
        .iter()
        .find(|f| f.contains("missing/gone.warc.gz"))
        .expect("the 404 entry is named");
    assert!(gone.contains("404"), "{gone}");
    let silent = summary
        .failures
        .iter()
        .find(|f| f.contains(&hang))
        .expect("the silent URL is named");
    assert!(silent.to_lowercase().contains("timed out"), "{silent}");
    assert_eq!(summary.shards_done, entries.len() - 1);
    assert!(
        summary.report().contains("FAILED shard"),
        "{}",
        summary.report()
    );
    let manifests = std::fs::read_dir(&out)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .ends_with(".manifest.json")
        })
        .count();
    assert_eq!(
        manifests,
        entries.len() - 1,
        "no manifest for a failed input"
    );
}

#[test]
fn a_reader_that_needs_a_file_reads_a_temporary_copy_removed_after() {
    let dir = tempfile::tempdir().unwrap();
    let www = dir.path().join("www");
    let entries: Vec<String> = publish(&www, "stackexchange", "se")
        .into_iter()
        .filter(|e| e.ends_with("Posts.xml"))
        .collect();
    write_list(&www.join("posts.paths.gz"), &entries);
    let server = Server::start(&www);
    let local = dir.path().join("local");
    let files: Vec<String> = entries
        .iter()
        .map(|e| format!("\"{}\"", www.join("se").join(e).display()))
        .collect();
    let input = format!("paths = [{}]", files.join(", "));
    assert!(run(&pipeline("stackexchange", &input, &local, ""))
        .failures
        .is_empty());
    let out = dir.path().join("remote");
    let input = format!(
        "path_list = \"{}posts.paths.gz\"\nbase_url = \"{}se\"",
        server.base_url(),
        server.base_url()
    );
    let summary = run(&pipeline("stackexchange", &input, &out, ""));
    assert!(summary.failures.is_empty(), "{:?}", summary.failures);
    assert!(summary.stats.stages[0].docs_out > 0);
    let (a, b) = (shards(&local), shards(&out));
    assert_eq!(a, b);
    let left: Vec<_> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".input-"))
        .collect();
    assert!(left.is_empty(), "temporary copies left: {left:?}");
}

#[test]
fn ranks_split_a_path_list_as_they_split_files() {
    let dir = tempfile::tempdir().unwrap();
    let www = dir.path().join("www");
    let entries = publish(&www, "commoncrawl", "cc");
    let server = Server::start(&www);
    let local = dir.path().join("local");
    let input = format!("paths = [\"{}\"]", www.join("cc").display());
    assert!(run(&pipeline("warc", &input, &local, ""))
        .failures
        .is_empty());
    let out = dir.path().join("ranks");
    let config = pipeline("warc", &url_input(&server, "cc.paths.gz"), &out, "");
    let mut done = 0;
    for rank in 0..3 {
        let opts = RunOptions {
            threads: 1,
            rank,
            world_size: 3,
            ..Default::default()
        };
        let summary = run_config(&config, &opts).unwrap();
        assert!(summary.failures.is_empty(), "{:?}", summary.failures);
        assert_eq!(
            summary.shards_done,
            (entries.len() + 2 - rank) / 3,
            "rank {rank}"
        );
        done += summary.shards_done;
    }
    assert_eq!(done, entries.len());
    assert_same_shards(&local, &out);
}
