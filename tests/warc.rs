//! The `warc` and `wet` readers on the real Common Crawl, warcio, dolma and cc_net samples and
//! on broken inputs made from them in a temp dir.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use datamill::doc::{RecordError, RecordResult};
use datamill::sources::build_reader;
use datamill::sources::warc::record::{StreamKind, WarcRecordReader};
use datamill::Document;

fn sample(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("samples/commoncrawl")
        .join(rel)
}

fn read_with(reader: &str, path: &Path, options: &str) -> Vec<RecordResult> {
    let options: toml::Table = toml::from_str(options).unwrap();
    build_reader(reader, &options)
        .unwrap()
        .read(path, "commoncrawl")
        .unwrap()
        .collect()
}

fn split(items: Vec<RecordResult>) -> (Vec<Document>, Vec<RecordError>) {
    let mut docs = Vec::new();
    let mut errors = Vec::new();
    for item in items {
        match item {
            Ok(d) => docs.push(d),
            Err(e) => errors.push(e),
        }
    }
    (docs, errors)
}

fn read(path: &Path) -> (Vec<Document>, Vec<RecordError>) {
    split(read_with("warc", path, ""))
}

fn gunzip(path: &Path) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::MultiGzDecoder::new(std::fs::File::open(path).unwrap())
        .read_to_end(&mut out)
        .unwrap();
    out
}

/// `(url, charset-detected)` from the metadata records Common Crawl wrote next to each capture.
fn crawler_charsets(path: &Path) -> HashMap<String, String> {
    let wanted = vec!["metadata".to_string()];
    let bytes = gunzip(path);
    WarcRecordReader::new(bytes.as_slice(), StreamKind::Plain, 1 << 20, &wanted)
        .map(|r| r.unwrap())
        .filter_map(|r| {
            let url = r.headers.get("WARC-Target-URI")?.to_string();
            let block = String::from_utf8_lossy(&r.block).into_owned();
            let line = block.lines().find(|l| l.starts_with("charset-detected:"))?;
            Some((url, line["charset-detected:".len()..].trim().to_string()))
        })
        .collect()
}

#[test]
fn chatnoir_warc_gives_one_document_per_html_response_with_crawler_charsets() {
    let path = sample("chatnoir-resiliparse/warcfile.warc.gz");
    let (docs, errors) = read(&path);
    assert!(errors.is_empty(), "{errors:?}");
    // 50 records: warcinfo + 16 request/response/metadata triples + 1 extra request.
    assert_eq!(docs.len(), 16);
    let charsets = crawler_charsets(&path);
    assert_eq!(charsets.len(), 16);
    for d in &docs {
        assert!(!d.text.trim().is_empty(), "{}", d.id);
        assert_eq!(d.source, "commoncrawl");
        assert_eq!(d.meta_str("warc_type"), Some("response"));
        assert_eq!(d.meta_str("content_type"), Some("text/html"));
        assert!(d.meta_str("date").unwrap().starts_with("2020-08-08T"));
        assert!(d
            .meta_str("warc_record_id")
            .unwrap()
            .starts_with("<urn:uuid:"));
        assert!(!d.text.contains('\u{fffd}'), "{}: replacement chars", d.id);
        // Our charset choice agrees with the crawler's own detection on every page
        // (labels compared as the WHATWG encoding they name: GB2312 = GBK, ISO-8859-1 = windows-1252).
        let url = d.meta_str("url").unwrap();
        let theirs = encoding_rs::Encoding::for_label(charsets[url].as_bytes()).unwrap();
        let ours = encoding_rs::Encoding::for_label(d.meta_str("charset").unwrap().as_bytes());
        assert_eq!(Some(theirs), ours, "{url}");
    }
    let by_url = |u: &str| docs.iter().find(|d| d.meta_str("url") == Some(u)).unwrap();
    // A GB2312-declared Chinese page (charset from the HTTP header).
    let gbk = by_url("http://0760.jxtdw.com/area/sanxiang/");
    assert_eq!(gbk.meta_str("charset"), Some("GBK"));
    assert!(gbk.text.contains("中山英才网"), "{}", gbk.text);
    // A GBK page that declares its charset only in a <meta> tag.
    let meta = by_url("http://0755krk.com/76104/list_4_1.html");
    assert_eq!(meta.meta_str("charset_source"), Some("meta"));
    assert!(meta.text.contains("不锈钢精密铸造件"));
    // windows-1251 Russian.
    let ru = by_url("http://01spb.ru/company/");
    assert!(ru.text.contains("О компании"));
    // Ids come from the file name and the record's offset in the decompressed stream.
    let plain = gunzip(&path);
    for d in &docs {
        let (file, offset) = d.id.rsplit_once(':').unwrap();
        assert_eq!(file, "warcfile.warc.gz");
        let offset: usize = offset.parse().unwrap();
        assert!(plain[offset..].starts_with(b"WARC/1.0\r\nWARC-Type: response"));
    }
    let again: Vec<String> = read(&path).0.into_iter().map(|d| d.id).collect();
    assert_eq!(again, docs.iter().map(|d| d.id.clone()).collect::<Vec<_>>());
}

#[test]
fn whirlwind_warc_and_wet_give_the_same_page() {
    let (warc, errors) = read(&sample("whirlwind-python/whirlwind.warc.gz"));
    assert!(errors.is_empty(), "{errors:?}");
    let (wet, errors) = read(&sample("whirlwind-python/whirlwind.warc.wet.gz"));
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!((warc.len(), wet.len()), (1, 1));
    let (html, text) = (&warc[0], &wet[0]);
    let url = "https://an.wikipedia.org/wiki/Escopete";
    assert_eq!(html.meta_str("url"), Some(url));
    assert_eq!(text.meta_str("url"), Some(url));
    assert_eq!(text.meta_str("warc_language"), Some("spa"));
    assert_eq!(text.meta_str("warc_type"), Some("conversion"));
    assert_eq!(text.meta_str("content_type"), Some("text/plain"));
    assert_eq!(html.meta_str("warc_language"), None);
    assert_eq!(
        html.meta_str("title"),
        Some("Escopete - Biquipedia, a enciclopedia libre")
    );
    let sentence = "Escopete ye un municipio d'a provincia de Guadalachara";
    assert!(html.text.contains(sentence));
    assert!(text.text.contains(sentence));
    // The HTML reader keeps the article and drops the navigation Common Crawl's WET keeps.
    assert!(text.text.contains("Ir al contenido"));
    assert!(!html.text.contains("Ir al contenido"));
    assert!(!html.text.contains("mw.config"), "script text leaked");
    // Table rows become lines with cells joined.
    assert!(html.text.contains("Codigo postal | 19119"));
    // The WAT file has no text records.
    let (wat, errors) = read(&sample("whirlwind-python/whirlwind.warc.wat.gz"));
    assert!(wat.is_empty() && errors.is_empty());
}

/// A WARC/0.18 file laid out as ClueWeb09's are: LF line ends in the WARC headers, a
/// warcinfo record with the crawl's `software`/`isPartOf`/`conformsTo` fields, response records
/// with `WARC-TREC-ID`, a bare `WARC-Warcinfo-ID`, an empty `WARC-Identified-Payload-Type`
/// and the out-of-range dates ClueWeb09 wrote (`2009-03-65`); the whole file is one gzip stream.
fn clueweb09_style(response_block: &[u8], url: &str) -> Vec<u8> {
    let info = "software: Nutch 1.0-dev (modified for clueweb09)\nisPartOf: clueweb09-en\n\
                description: clueweb09 crawl with WARC output\nformat: WARC file version 0.18\n\
                conformsTo: http://www.archive.org/documents/WarcFileFormat-0.18.html\n";
    let mut out = format!(
        "WARC/0.18\nWARC-Type: warcinfo\nWARC-Date: 2009-03-65T08:43:19-0800\n\
         WARC-Record-ID: <urn:uuid:993d3969-9643-4934-b1c6-68d4dbe55b83>\n\
         Content-Type: application/warc-fields\nContent-Length: {}\n\n{info}\n\n",
        info.len()
    )
    .into_bytes();
    out.extend_from_slice(
        format!(
            "WARC/0.18\nWARC-Type: response\nWARC-Target-URI: {url}\n\
             WARC-Warcinfo-ID: 993d3969-9643-4934-b1c6-68d4dbe55b83\n\
             WARC-Date: 2009-03-65T08:43:19-0800\n\
             WARC-Record-ID: <urn:uuid:67f7cabd-146c-41cf-bd01-04f5fa7d5229>\n\
             WARC-TREC-ID: clueweb09-en0000-00-00000\n\
             Content-Type: application/http;msgtype=response\n\
             WARC-Identified-Payload-Type: \nContent-Length: {}\n\n",
            response_block.len()
        )
        .as_bytes(),
    );
    out.extend_from_slice(response_block);
    out.extend_from_slice(b"\n\n");
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&out).unwrap();
    gz.finish().unwrap()
}

#[test]
fn warc_0_18_records_written_as_clueweb09_does_are_read() {
    let original = sample("whirlwind-python/whirlwind.warc.gz");
    let (expected, errors) = read(&original);
    assert!(errors.is_empty() && expected.len() == 1, "{errors:?}");
    let plain = gunzip(&original);
    let wanted = vec!["response".to_string()];
    let response = WarcRecordReader::new(plain.as_slice(), StreamKind::Plain, 1 << 20, &wanted)
        .next()
        .unwrap()
        .unwrap();
    let url = response.headers.get("WARC-Target-URI").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("00.warc.gz");
    std::fs::write(&path, clueweb09_style(&response.block, url)).unwrap();
    let (docs, errors) = read(&path);
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(docs.len(), 1);
    let (doc, want) = (&docs[0], &expected[0]);
    assert_eq!(doc.text, want.text);
    assert_eq!(doc.meta_str("warc_version"), Some("0.18"));
    assert_eq!(want.meta_str("warc_version"), Some("1.0"));
    assert_eq!(doc.meta_str("url"), want.meta_str("url"));
    assert_eq!(doc.meta_str("title"), want.meta_str("title"));
    assert_eq!(doc.meta_str("date"), Some("2009-03-65T08:43:19-0800"));
    assert_eq!(
        doc.meta_str("warc_record_id"),
        Some("<urn:uuid:67f7cabd-146c-41cf-bd01-04f5fa7d5229>")
    );
    // The record's offset in the decompressed stream is its id, as for any WARC.
    let info_len = gunzip(&path)
        .windows(10)
        .skip(1)
        .position(|w| w == b"WARC/0.18\n")
        .unwrap()
        + 1;
    assert_eq!(doc.id, format!("00.warc.gz:{info_len}"));
}

#[test]
fn wet_reader_reads_only_conversion_records() {
    let (docs, errors) = split(read_with(
        "wet",
        &sample("whirlwind-python/whirlwind.warc.gz"),
        "",
    ));
    assert!(docs.is_empty() && errors.is_empty());
    let (docs, _) = split(read_with(
        "wet",
        &sample("whirlwind-python/whirlwind.warc.wet.gz"),
        "",
    ));
    assert_eq!(docs.len(), 1);
}

#[test]
fn chunked_payload_is_dechunked() {
    let (docs, errors) = read(&sample("warcio/example-iana.org-chunked.warc"));
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(docs.len(), 1);
    let d = &docs[0];
    assert_eq!(d.meta_str("url"), Some("http://www.iana.org/"));
    assert_eq!(
        d.meta_str("title"),
        Some("Internet Assigned Numbers Authority")
    );
    // The chunk-size line (`001c37`) and the final `0` chunk are not text.
    assert!(!d.text.contains("1c37"), "{}", d.text);
    assert!(!d.text.ends_with('0'));
    assert!(d.text.contains("Management of the DNS Root Zone"));
}

#[test]
fn warcio_example_skips_request_and_revisit() {
    let (docs, errors) = read(&sample("warcio/example.warc.gz"));
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(docs.len(), 1);
    assert_eq!(docs[0].meta_str("url"), Some("http://example.com/"));
    assert!(docs[0].text.starts_with("Example Domain\n"));
    // The same page with a payload two bytes longer than its Content-Length says.
    let (docs, errors) = read(&sample("warcio/example-trunc.warc"));
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(docs.len(), 1);
    assert_eq!(
        docs[0].metadata.get("warc_length_repaired"),
        Some(&true.into())
    );
    assert!(docs[0].text.starts_with("Example Domain\n"));
}

#[test]
fn wget_warc_urls_lose_their_angle_brackets() {
    let path = sample("dolma/sample-0000.warc.gz");
    let (docs, errors) = read(&path);
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(docs.len(), 22);
    for d in &docs {
        let url = d.meta_str("url").unwrap();
        assert!(url.starts_with("https://"), "{url}");
        assert!(!url.contains('<') && !url.contains('>'), "{url}");
    }
    assert!(docs
        .iter()
        .any(|d| d.meta_str("url") == Some("https://soldaini.net/")));
    // With `resource` records: wget's argument list and log (plain text) come too.
    let (docs, _) = split(read_with(
        "warc",
        &path,
        "record_types = [\"response\", \"resource\"]",
    ));
    assert_eq!(docs.len(), 24);
    let log = docs
        .iter()
        .find(|d| d.meta_str("url") == Some("metadata://gnu.org/software/wget/warc/wget.log"))
        .unwrap();
    assert!(log.text.contains("URL:https://soldaini.net/"));
}

#[test]
fn cc_net_wet_fixture_with_wrong_lengths_gives_its_three_pages() {
    let path = sample("cc_net/sample.warc.txt");
    for reader in ["warc", "wet"] {
        let (docs, errors) = split(read_with(reader, &path, ""));
        assert!(errors.is_empty(), "{errors:?}");
        let urls: Vec<&str> = docs.iter().map(|d| d.meta_str("url").unwrap()).collect();
        assert_eq!(
            urls,
            [
                "http://sample_english.com",
                "http://sample_chinese.zh",
                "http://sample_russian.ru"
            ]
        );
        assert!(docs[0].text.starts_with("Famous Mark Twain Quotes\n"));
        assert!(docs[0].text.ends_with("Truth isn't."));
        assert!(docs[1].text.starts_with("馬克·吐溫名言\n"));
        assert!(docs[2].text.ends_with("Правда нет."));
        assert!(!docs[2].text.contains("WARC/1.0"));
    }
}

#[test]
fn clipped_gzip_is_a_clean_fatal_error() {
    let (docs, errors) = read(&sample("chatnoir-resiliparse/clipped.warc.gz"));
    assert!(docs.is_empty());
    assert_eq!(errors.len(), 1);
    let e = &errors[0];
    assert!(e.fatal);
    assert_eq!((e.offset, e.reason.as_str()), (0, "gzip_truncated"));
    assert!(e.message.contains("75657"), "{}", e.message);
}

#[test]
fn records_before_a_clipped_member_are_kept() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("joined.warc.gz");
    let mut bytes = std::fs::read(sample("chatnoir-resiliparse/warcfile.warc.gz")).unwrap();
    bytes.extend(std::fs::read(sample("chatnoir-resiliparse/clipped.warc.gz")).unwrap());
    std::fs::write(&path, bytes).unwrap();
    let items = read_with("warc", &path, "");
    let (docs, errors) = split(items.clone());
    assert_eq!(docs.len(), 16);
    assert_eq!(errors.len(), 1);
    let last = items.last().unwrap().as_ref().unwrap_err();
    assert!(last.fatal);
    assert_eq!(last.reason, "gzip_truncated");
    assert_eq!(
        last.offset,
        gunzip(&sample("chatnoir-resiliparse/warcfile.warc.gz")).len() as u64
    );
}

#[test]
fn bad_headers_in_the_middle_are_reported_and_reading_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let mut plain = gunzip(&sample("chatnoir-resiliparse/warcfile.warc.gz"));
    let starts: Vec<usize> =
        memchr::memmem::find_iter(&plain, b"WARC/1.0\r\nWARC-Type: response").collect();
    assert_eq!(starts.len(), 16);
    // Break the version line of the 5th response and the Content-Length of the 9th.
    plain[starts[4]..starts[4] + 4].copy_from_slice(b"WARX");
    let cl = starts[8] + memchr::memmem::find(&plain[starts[8]..], b"Content-Length: ").unwrap();
    plain[cl + 16..cl + 18].copy_from_slice(b"x?");
    let path = dir.path().join("broken.warc");
    std::fs::write(&path, &plain).unwrap();
    let (docs, errors) = read(&path);
    let reasons: Vec<(u64, &str)> = errors
        .iter()
        .map(|e| (e.offset, e.reason.as_str()))
        .collect();
    assert_eq!(
        reasons,
        [
            (starts[4] as u64, "warc_bad_header"),
            (starts[8] as u64, "warc_bad_header")
        ]
    );
    assert!(errors.iter().all(|e| !e.fatal));
    assert_eq!(docs.len(), 14);
    let ids: Vec<String> = docs.iter().map(|d| d.id.clone()).collect();
    assert!(ids.contains(&format!("broken.warc:{}", starts[15])));
}

#[test]
fn truncated_plain_warc_keeps_earlier_records() {
    let dir = tempfile::tempdir().unwrap();
    let plain = gunzip(&sample("chatnoir-resiliparse/warcfile.warc.gz"));
    let starts: Vec<usize> =
        memchr::memmem::find_iter(&plain, b"WARC/1.0\r\nWARC-Type: response").collect();
    let cut = starts[10] + 2000;
    let path = dir.path().join("cut.warc");
    std::fs::write(&path, &plain[..cut]).unwrap();
    let items = read_with("warc", &path, "");
    let (docs, errors) = split(items);
    assert_eq!(docs.len(), 10);
    assert_eq!(errors.len(), 1);
    assert_eq!(
        (errors[0].offset, errors[0].reason.as_str(), errors[0].fatal),
        (starts[10] as u64, "warc_truncated", false)
    );
    // Cut inside a header too.
    std::fs::write(&path, &plain[..starts[10] + 40]).unwrap();
    let (docs, errors) = read(&path);
    assert_eq!(
        (docs.len(), errors[0].reason.as_str()),
        (10, "warc_truncated")
    );
}

#[test]
fn empty_files_give_no_documents() {
    let dir = tempfile::tempdir().unwrap();
    for name in ["empty.warc", "empty.warc.gz", "blank.warc"] {
        let path = dir.path().join(name);
        let body: &[u8] = if name == "blank.warc" {
            b"\r\n\r\n\n"
        } else {
            b""
        };
        std::fs::write(&path, body).unwrap();
        let items = read_with("warc", &path, "");
        assert!(items.is_empty(), "{name}: {items:?}");
    }
    // An empty gzip member is empty input too.
    let path = dir.path().join("member.warc.gz");
    let enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::fs::write(&path, enc.finish().unwrap()).unwrap();
    assert!(read_with("warc", &path, "").is_empty());
}

fn warc_record(kind: &str, extra_headers: &[u8], block: &[u8]) -> Vec<u8> {
    let mut out =
        format!("WARC/1.1\r\nWARC-Type: {kind}\r\nWARC-Target-URI: http://bad.example/\r\n")
            .into_bytes();
    out.extend_from_slice(extra_headers);
    out.extend_from_slice(format!("Content-Length: {}\r\n\r\n", block.len()).as_bytes());
    out.extend_from_slice(block);
    out.extend_from_slice(b"\r\n\r\n");
    out
}

#[test]
fn invalid_utf8_never_panics() {
    let dir = tempfile::tempdir().unwrap();
    let mut bytes = warc_record(
        "conversion",
        b"X-Bad: \xff\xfe\r\n",
        b"caf\xe9 \xff\x80 ok\n",
    );
    let html: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<p>bad \xc3\x28 byte</p>";
    bytes.extend(warc_record("response", b"", html));
    let russian = "Привет всем, кто читает эту страницу: здесь нет объявления кодировки.";
    let mut undeclared = b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n\r\n<p>".to_vec();
    undeclared.extend_from_slice(&encoding_rs::WINDOWS_1251.encode(russian).0);
    bytes.extend(warc_record("response", b"", &undeclared));
    bytes.extend(warc_record(
        "response",
        b"",
        b"HTTP/1.1 2\xff0 OK\r\n\r\n<p>x</p>",
    ));
    bytes.extend(warc_record("response", b"", b"\xff\xfe garbage"));
    bytes.extend(b"\xff\xfe\xfd\r\n");
    bytes.extend(warc_record("conversion", b"", b"last"));
    let path = dir.path().join("bad-utf8.warc");
    std::fs::write(&path, &bytes).unwrap();
    let (docs, errors) = read(&path);
    let texts: Vec<&str> = docs.iter().map(|d| d.text.as_str()).collect();
    assert_eq!(texts[0], "caf\u{fffd} \u{fffd}\u{fffd} ok");
    assert_eq!(texts[1], "bad \u{fffd}( byte");
    // No charset anywhere and not UTF-8: detected (windows-1251 Russian).
    assert_eq!(texts[2], russian);
    assert_eq!(docs[2].meta_str("charset"), Some("windows-1251"));
    assert_eq!(docs[2].meta_str("charset_source"), Some("detected"));
    assert_eq!(texts[3], "last");
    let reasons: Vec<&str> = errors.iter().map(|e| e.reason.as_str()).collect();
    // The unparseable status line is a bad HTTP header; the `garbage` block is not HTTP
    // (no `application/http`), so it is skipped; the stray bytes are a bad WARC header.
    assert_eq!(reasons, ["http_bad_header", "warc_bad_header"]);
}

#[test]
fn oversized_records_are_skipped_and_counted() {
    let (docs, errors) = split(read_with(
        "warc",
        &sample("chatnoir-resiliparse/warcfile.warc.gz"),
        "max_record_bytes = 20000",
    ));
    assert!(!errors.is_empty());
    assert!(errors
        .iter()
        .all(|e| e.reason == "warc_record_too_large" && !e.fatal));
    assert_eq!(docs.len() + errors.len(), 16);
}

#[test]
fn unknown_options_and_types_are_errors() {
    let bad = |opts: &str| {
        let t: toml::Table = toml::from_str(opts).unwrap();
        build_reader("warc", &t).err().unwrap().to_string()
    };
    assert!(bad("min_text = 3").contains("min_text"));
    assert!(bad("record_types = [\"metadata\"]").contains("metadata"));
}

#[test]
fn pipeline_runs_end_to_end_over_the_samples() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let status = std::process::Command::new(env!("CARGO_BIN_EXE_datamill"))
        .current_dir(root)
        .args([
            "run",
            "tests/pipelines/warc-read.toml",
            "--threads",
            "1",
            "--output",
        ])
        .arg(&out)
        .stderr(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    let mut docs = 0;
    for entry in std::fs::read_dir(&out).unwrap() {
        let p = entry.unwrap().path();
        if p.to_string_lossy().ends_with(".jsonl.zst") {
            docs += datamill::doc::read_shard(&p).unwrap().len();
        }
    }
    // cc_net 3 + chatnoir 16 + dolma 22 + warcio 1 + 1 + 1 + whirlwind WARC 1 + WET 1.
    assert_eq!(docs, 46);
    let mut quarantined = String::new();
    for entry in std::fs::read_dir(out.join("quarantine")).unwrap() {
        let mut f = std::fs::File::open(entry.unwrap().path()).unwrap();
        f.read_to_string(&mut quarantined).unwrap();
    }
    assert_eq!(quarantined.lines().count(), 1);
    assert!(quarantined.contains("clipped.warc.gz") && quarantined.contains("gzip_truncated"));
    let _ = std::io::stdout().flush();
}

/// A small deterministic xorshift generator for the mutation test.
struct XorShift(u64);

impl XorShift {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}

#[test]
fn mutated_inputs_never_panic_and_offsets_stay_exact() {
    let plain = gunzip(&sample("chatnoir-resiliparse/warcfile.warc.gz"));
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    let wanted = vec!["response".to_string(), "request".to_string()];
    for round in 0..150 {
        let mut bytes = plain.clone();
        match round % 3 {
            // Overwrite a few bytes anywhere (headers, lengths, separators, payloads).
            0 => {
                for _ in 0..8 {
                    let at = rng.below(bytes.len());
                    bytes[at] = b"\r\n:0 WARC/1.9\xff"[rng.below(14)];
                }
            }
            // Cut a span out.
            1 => {
                let at = rng.below(bytes.len());
                let len = rng.below(4000).min(bytes.len() - at);
                bytes.drain(at..at + len);
            }
            // Truncate.
            _ => bytes.truncate(rng.below(bytes.len())),
        }
        let items: Vec<_> =
            WarcRecordReader::new(bytes.as_slice(), StreamKind::Plain, 1 << 20, &wanted).collect();
        assert!(items.len() < 200, "round {round}: {} items", items.len());
        for item in &items {
            let offset = match item {
                Ok(r) => r.offset,
                Err(e) => e.offset,
            } as usize;
            assert!(offset <= bytes.len(), "round {round}");
            if item.is_ok() {
                assert!(bytes[offset..].starts_with(b"WARC/1."), "round {round}");
            }
        }
    }
    // The full reader (HTTP, charset, HTML) on mutated copies of a small real WARC.
    let small = gunzip(&sample("whirlwind-python/whirlwind.warc.gz"));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mutated.warc");
    for _ in 0..40 {
        let mut bytes = small.clone();
        for _ in 0..16 {
            let at = rng.below(bytes.len());
            bytes[at] = rng.below(256) as u8;
        }
        std::fs::write(&path, &bytes).unwrap();
        let items = read_with("warc", &path, "");
        assert!(items.len() <= 4);
    }
}

#[test]
fn gzip_content_encoding_under_chunking_is_undone() {
    let html = "<html><head><meta charset=\"windows-1252\"></head><body><p>Caf\u{e9} cr\u{e8}me</p></body></html>";
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(&encoding_rs::WINDOWS_1252.encode(html).0)
        .unwrap();
    let gz = enc.finish().unwrap();
    // Send the gzip stream in two chunks, as a server would.
    let (a, b) = gz.split_at(gz.len() / 2);
    let mut http = b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    for chunk in [a, b] {
        http.extend(format!("{:x}\r\n", chunk.len()).as_bytes());
        http.extend(chunk);
        http.extend(b"\r\n");
    }
    http.extend(b"0\r\n\r\n");
    let mut bytes = warc_record(
        "response",
        b"Content-Type: application/http; msgtype=response\r\n",
        &http,
    );
    // The same page with a Content-Encoding it does not have, and one in Brotli.
    let lying = b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Encoding: gzip\r\n\r\n<html><p>plain after all</p>";
    bytes.extend(warc_record("response", b"", lying));
    let brotli =
        b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Encoding: br\r\n\r\n\x1b\x03\x00";
    bytes.extend(warc_record("response", b"", brotli));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("encoded.warc");
    std::fs::write(&path, &bytes).unwrap();
    let (docs, errors) = read(&path);
    assert_eq!(docs.len(), 2);
    assert_eq!(docs[0].text, "Café crème");
    assert_eq!(docs[0].meta_str("charset"), Some("windows-1252"));
    assert_eq!(docs[0].meta_str("charset_source"), Some("meta"));
    assert_eq!(docs[1].text, "plain after all");
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].reason, "http_bad_content_encoding");
}
