//! `datamill download` against a real HTTP server on 127.0.0.1 (tests/http_support) that
//! serves `samples/` with Range support and misbehaves on purpose per path: closes the
//! connection halfway, answers 503 twice, ignores Range, stalls halfway with the connection
//! open, or sends at most 40,000 bytes per request. Every request is recorded.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

mod common;
mod http_support;

use datamill::download::manifest::Manifest;
use datamill::download::{download, DownloadOptions, RetryPolicy};
use http_support::{Fault, Server};
use sha2::{Digest, Sha256};

const SAMPLES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/samples");

/// A server of `samples/`.
fn start() -> Server {
    Server::start(Path::new(SAMPLES))
}

/// Makes the server cut `path` at half its size on the first request.
fn cut_halfway(server: &Server, path: &str) {
    let half = std::fs::metadata(original(path)).unwrap().len() as usize / 2;
    server.set_fault(
        path,
        Fault {
            cut_at: Some(half),
            ..Fault::default()
        },
    );
}

fn quick_retry() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 5,
        base_delay: Duration::from_millis(10),
        max_delay: Duration::from_millis(100),
    }
}

fn options(list: &Path, server: &Server, dest: &Path) -> DownloadOptions {
    DownloadOptions {
        retry: quick_retry(),
        timeout: Duration::from_secs(10),
        ..DownloadOptions::new(list, &server.base_url(), dest)
    }
}

/// The sample a list path serves.
fn original(list_path: &str) -> PathBuf {
    Path::new(SAMPLES).join(list_path)
}

fn write_gz_list(path: &Path, lines: &[&str]) {
    let f = std::fs::File::create(path).unwrap();
    let mut gz = flate2::write::GzEncoder::new(f, flate2::Compression::default());
    for l in lines {
        writeln!(gz, "{l}").unwrap();
    }
    gz.finish().unwrap();
}

fn sha256_hex(path: &Path) -> String {
    hex::encode(Sha256::digest(std::fs::read(path).unwrap()))
}

fn part_files(dir: &Path) -> Vec<PathBuf> {
    common::files_ending(dir, ".part")
}

#[test]
fn gzipped_list_resume_retry_and_rerun_fetches_nothing() {
    let server = start();
    let tmp = tempfile::tempdir().unwrap();
    let dest = tmp.path().join("dest");
    let list = tmp.path().join("wet.paths.gz");
    let paths = [
        "commoncrawl/whirlwind-python/whirlwind.warc.wet.gz",
        "commoncrawl/whirlwind-python/whirlwind.warc.gz",
        "commoncrawl/dolma/sample-0000.warc.gz",
        "commoncrawl/chatnoir-resiliparse/warcfile.warc.gz",
        "commoncrawl/chatnoir-resiliparse/clipped.warc.gz",
    ];
    write_gz_list(&list, &paths);
    cut_halfway(&server, paths[2]);
    server.set_fault(
        paths[3],
        Fault {
            unavailable: 2,
            ..Fault::default()
        },
    );
    server.set_fault(
        paths[4],
        Fault {
            ignore_range: true,
            ..Fault::default()
        },
    );
    // A stale partial file whose server ignores Range: it must be restarted, not appended to.
    let stale = dest.join("commoncrawl/chatnoir-resiliparse/clipped.warc.gz.part");
    std::fs::create_dir_all(stale.parent().unwrap()).unwrap();
    let garbage = b"garbage that is not the start of the file";
    std::fs::write(&stale, garbage).unwrap();

    let opts = DownloadOptions {
        concurrency: 3,
        ..options(&list, &server, &dest)
    };
    let summary = download(&opts).unwrap();
    assert_eq!(summary.failed, []);
    assert_eq!((summary.ok, summary.skipped), (5, 0));
    for p in paths {
        assert_eq!(
            std::fs::read(dest.join(p)).unwrap(),
            std::fs::read(original(p)).unwrap(),
            "{p}"
        );
    }
    assert_eq!(part_files(&dest), Vec::<PathBuf>::new());

    // The cut file: a full request that broke off, then one Range request from where it stopped.
    let cut = server.requests_for(paths[2]);
    assert_eq!(cut.len(), 2, "{cut:?}");
    assert_eq!((cut[0].status, cut[0].range.as_deref()), (200, None));
    let size = std::fs::metadata(original(paths[2])).unwrap().len();
    assert_eq!(cut[1].status, 206);
    assert_eq!(cut[1].range, Some(format!("bytes={}-", size / 2)));
    // The flaky file: 503, 503, then served.
    let flaky: Vec<u16> = server
        .requests_for(paths[3])
        .iter()
        .map(|r| r.status)
        .collect();
    assert_eq!(flaky, [503, 503, 200]);
    // The stale part file was offered as a resume, ignored by the server and replaced.
    let norange = server.requests_for(paths[4]);
    assert_eq!(norange.len(), 1);
    assert_eq!(norange[0].range, Some(format!("bytes={}-", garbage.len())));
    assert_eq!(norange[0].status, 200);
    assert_eq!(summary.retries, 3);
    assert_eq!(summary.resumed, 1);
    let total: u64 = paths
        .iter()
        .map(|p| std::fs::metadata(original(p)).unwrap().len())
        .sum();
    assert!(summary.bytes >= total, "{} < {total}", summary.bytes);

    // The manifest lists every file with its size and digest.
    let manifest = Manifest::load(&dest).unwrap();
    assert_eq!(manifest.files.len(), 5);
    for p in paths {
        let e = &manifest.files[p];
        assert_eq!(e.sha256, sha256_hex(&original(p)));
        assert_eq!(e.size, std::fs::metadata(original(p)).unwrap().len());
        assert_eq!(e.url, format!("{}{p}", server.base_url()));
    }

    // A rerun requests nothing.
    let before = server.requests().len();
    let again = download(&opts).unwrap();
    assert_eq!((again.ok, again.skipped, again.failed.len()), (0, 5, 0));
    assert_eq!(again.bytes, 0);
    assert_eq!(server.requests().len(), before);

    // A deleted file is fetched again, and only that one.
    std::fs::remove_file(dest.join(paths[0])).unwrap();
    let third = download(&opts).unwrap();
    assert_eq!((third.ok, third.skipped), (1, 4));
    assert_eq!(server.requests().len(), before + 1);
}

#[test]
fn partial_file_is_resumed_with_a_range_request() {
    let server = start();
    let tmp = tempfile::tempdir().unwrap();
    let dest = tmp.path().join("dest");
    let list = tmp.path().join("paths.txt");
    let p = "commoncrawl/dolma/sample-0000.warc.gz";
    let done = "commoncrawl/warcio/example.warc.gz";
    std::fs::write(&list, format!("{p}\n{done}\n")).unwrap();
    let data = std::fs::read(original(p)).unwrap();
    std::fs::create_dir_all(dest.join("commoncrawl/dolma")).unwrap();
    std::fs::write(dest.join(format!("{p}.part")), &data[..100_000]).unwrap();
    // A part file that is already complete: the server answers 416 and it is kept as is.
    let done_data = std::fs::read(original(done)).unwrap();
    std::fs::create_dir_all(dest.join("commoncrawl/warcio")).unwrap();
    std::fs::write(dest.join(format!("{done}.part")), &done_data).unwrap();

    let summary = download(&options(&list, &server, &dest)).unwrap();
    assert_eq!((summary.ok, summary.failed.len()), (2, 0));
    assert_eq!(std::fs::read(dest.join(p)).unwrap(), data);
    assert_eq!(std::fs::read(dest.join(done)).unwrap(), done_data);
    assert_eq!(summary.bytes, data.len() as u64 - 100_000);
    let seen = server.requests_for(p);
    assert_eq!(seen.len(), 1);
    assert_eq!(
        (seen[0].range.as_deref(), seen[0].status),
        (Some("bytes=100000-"), 206)
    );
    assert_eq!(server.requests_for(done)[0].status, 416);
}

#[test]
fn stalled_transfer_times_out_and_resumes() {
    let server = start();
    let tmp = tempfile::tempdir().unwrap();
    let dest = tmp.path().join("dest");
    let list = tmp.path().join("paths.txt");
    let p = "commoncrawl/whirlwind-python/whirlwind.warc.gz";
    std::fs::write(&list, format!("{p}\n")).unwrap();
    let half = std::fs::metadata(original(p)).unwrap().len() / 2;
    server.set_fault(
        p,
        Fault {
            stall_at: Some(half as usize),
            ..Fault::default()
        },
    );
    let opts = DownloadOptions {
        timeout: Duration::from_millis(800),
        ..options(&list, &server, &dest)
    };
    let summary = download(&opts).unwrap();
    assert_eq!(summary.ok, 1);
    assert!(summary.retries >= 1);
    assert_eq!(
        std::fs::read(dest.join(p)).unwrap(),
        std::fs::read(original(p)).unwrap()
    );
    // The stalled first request sent half the file; the next one resumed from there.
    let seen = server.requests_for(p);
    assert_eq!((seen[0].status, seen[0].range.as_deref()), (200, None));
    assert_eq!(seen[1].status, 206);
    assert_eq!(seen[1].range, Some(format!("bytes={half}-")));
}

#[test]
fn missing_file_is_reported_counted_and_the_rest_completes() {
    let server = start();
    let tmp = tempfile::tempdir().unwrap();
    let dest = tmp.path().join("dest");
    let list = tmp.path().join("wet.paths");
    let good = [
        "commoncrawl/warcio/example.warc.gz",
        "commoncrawl/cc_net/sample.warc.txt",
    ];
    let missing = "commoncrawl/does-not-exist.warc.wet.gz";
    std::fs::write(&list, format!("{}\n{missing}\n{}\n", good[0], good[1])).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_datamill"))
        .args(["download", "--list"])
        .arg(&list)
        .args(["--base-url", &server.base_url(), "--dest"])
        .arg(&dest)
        .args(["--concurrency", "2", "--retry-delay-ms", "10"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("2 ok, 0 skipped, 1 failed"), "{stdout}");
    let url = format!("{}{missing}", server.base_url());
    assert!(
        stdout.contains(&format!("failed: {missing} ({url}): HTTP 404")),
        "{stdout}"
    );
    assert!(stderr.contains(&url) && stderr.contains("404"), "{stderr}");
    for p in good {
        assert_eq!(
            std::fs::read(dest.join(p)).unwrap(),
            std::fs::read(original(p)).unwrap()
        );
    }
    assert!(!dest.join(missing).exists());
    // 404 is not retried.
    assert_eq!(server.requests_for(missing).len(), 1);
    let manifest = Manifest::load(&dest).unwrap();
    assert_eq!(
        manifest.files.keys().collect::<Vec<_>>(),
        [good[1], good[0]]
    );
}

#[test]
fn checksum_mismatch_is_an_error_and_leaves_no_file() {
    let server = start();
    let tmp = tempfile::tempdir().unwrap();
    let dest = tmp.path().join("dest");
    let list = tmp.path().join("paths.txt");
    let right = "commoncrawl/whirlwind-python/whirlwind.warc.wat.gz";
    let wrong = "commoncrawl/warcio/example-iana.org-chunked.warc";
    std::fs::write(&list, format!("{right}\n{wrong}\n")).unwrap();
    cut_halfway(&server, wrong);
    let sums = tmp.path().join("sha256sums.txt");
    std::fs::write(
        &sums,
        format!(
            "{}  {right}\n{}  {wrong}\n",
            sha256_hex(&original(right)),
            "0".repeat(64)
        ),
    )
    .unwrap();
    let opts = DownloadOptions {
        checksums: Some(sums),
        ..options(&list, &server, &dest)
    };
    let summary = download(&opts).unwrap();
    assert_eq!(summary.ok, 1);
    assert_eq!(summary.failed.len(), 1);
    let f = &summary.failed[0];
    assert_eq!(f.path, wrong);
    assert!(f.reason.contains("sha256 mismatch"), "{}", f.reason);
    assert!(!dest.join(wrong).exists());
    assert_eq!(part_files(&dest), Vec::<PathBuf>::new());
    assert_eq!(
        std::fs::read(dest.join(right)).unwrap(),
        std::fs::read(original(right)).unwrap()
    );
    assert!(!Manifest::load(&dest).unwrap().files.contains_key(wrong));
}

#[test]
fn rate_limit_is_shared_by_all_workers() {
    let server = start();
    let tmp = tempfile::tempdir().unwrap();
    let dest = tmp.path().join("dest");
    let list = tmp.path().join("paths.txt");
    let paths = [
        "books/Pride-and-Prejudice_1342/1342.txt",
        "books/Italienische-Reise-Band-1_2404/2404-8.txt",
    ];
    std::fs::write(&list, paths.join("\n")).unwrap();
    let total: u64 = paths
        .iter()
        .map(|p| std::fs::metadata(original(p)).unwrap().len())
        .sum();
    assert!(total > 1_400_000);
    let opts = DownloadOptions {
        concurrency: 2,
        rate_limit_mb_per_sec: Some(1.0),
        ..options(&list, &server, &dest)
    };
    let start = Instant::now();
    let summary = download(&opts).unwrap();
    let elapsed = start.elapsed();
    assert_eq!(summary.ok, 2);
    // 1.44 MB at 1 MB/s over both workers together, minus a 64 KiB burst: at least 1.37 s.
    // (Each worker limited on its own would need only ~0.73 s.)
    assert!(elapsed >= Duration::from_millis(1300), "{elapsed:?}");
    for p in paths {
        assert_eq!(
            std::fs::read(dest.join(p)).unwrap(),
            std::fs::read(original(p)).unwrap()
        );
    }
}

#[test]
fn bad_list_lines_are_refused_and_counted() {
    let server = start();
    let tmp = tempfile::tempdir().unwrap();
    let dest = tmp.path().join("dest");
    let list = tmp.path().join("paths.txt");
    let good = "commoncrawl/warcio/example-trunc.warc";
    std::fs::write(&list, format!("../escape\n{good}\n/etc/passwd\n")).unwrap();
    let summary = download(&options(&list, &server, &dest)).unwrap();
    assert_eq!(summary.ok, 1);
    assert_eq!(summary.failed.len(), 2);
    assert!(summary.failed.iter().all(|f| f.url.is_none()));
    assert_eq!(server.requests().len(), 1);
    assert!(!tmp.path().join("escape").exists());
}

#[test]
fn requests_that_bring_new_bytes_do_not_use_up_attempts() {
    let server = start();
    let tmp = tempfile::tempdir().unwrap();
    let dest = tmp.path().join("dest");
    let list = tmp.path().join("paths.txt");
    // 135,896 bytes, served 40,000 at a time: four requests, each cut off but each progressing.
    let p = "commoncrawl/chatnoir-resiliparse/warcfile.warc.gz";
    std::fs::write(&list, format!("{p}\n")).unwrap();
    server.set_fault(
        p,
        Fault {
            body_per_request: Some(40_000),
            ..Fault::default()
        },
    );
    let opts = DownloadOptions {
        retry: RetryPolicy {
            max_attempts: 2,
            ..quick_retry()
        },
        ..options(&list, &server, &dest)
    };
    let summary = download(&opts).unwrap();
    assert_eq!(summary.failed, []);
    assert_eq!(
        std::fs::read(dest.join(p)).unwrap(),
        std::fs::read(original(p)).unwrap()
    );
    let ranges: Vec<Option<String>> = server
        .requests_for(p)
        .into_iter()
        .map(|r| r.range)
        .collect();
    assert_eq!(
        ranges,
        [
            None,
            Some("bytes=40000-".to_string()),
            Some("bytes=80000-".to_string()),
            Some("bytes=120000-".to_string())
        ]
    );
}

#[test]
fn a_file_that_never_progresses_fails_after_max_attempts() {
    let server = start();
    let tmp = tempfile::tempdir().unwrap();
    let dest = tmp.path().join("dest");
    let list = tmp.path().join("paths.txt");
    // 503 twice; with 2 attempts the file fails with the status.
    let p = "commoncrawl/warcio/example.warc.gz";
    std::fs::write(&list, format!("{p}\n")).unwrap();
    server.set_fault(
        p,
        Fault {
            unavailable: 2,
            ..Fault::default()
        },
    );
    let opts = DownloadOptions {
        retry: RetryPolicy {
            max_attempts: 2,
            ..quick_retry()
        },
        ..options(&list, &server, &dest)
    };
    let summary = download(&opts).unwrap();
    assert_eq!(summary.ok, 0);
    assert_eq!(summary.failed.len(), 1);
    assert_eq!(summary.failed[0].status, Some(503));
    assert_eq!(summary.retries, 1);
    assert_eq!(server.requests_for(p).len(), 2);
    assert!(!dest.join(p).exists());
}
