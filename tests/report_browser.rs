//! The HTML report as a reader sees it: headless Chromium (Debian's `chromium`, installed by
//! `make setup`) loads the page of a real run without a console message, and its screenshot
//! is not blank. The JSON report carries the same histograms and sampled drops.

mod common;

use std::path::Path;
use std::process::Command;

use common::*;

/// Loads `page` in headless Chromium; returns the console lines it logged and the screenshot.
fn load_in_chromium(page: &Path, shot: &Path, profile: &Path) -> Vec<String> {
    let o = Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--enable-logging=stderr",
            "--v=0",
            "--window-size=1200,2400",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(format!("--screenshot={}", shot.display()))
        .arg(format!("file://{}", page.display()))
        .output()
        .expect("chromium not found: `make setup` installs Debian's chromium");
    assert!(
        shot.exists(),
        "no screenshot: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stderr)
        .lines()
        .filter(|l| l.contains(":CONSOLE"))
        .map(str::to_string)
        .collect()
}

/// Share of the screenshot's pixels that are not white.
fn inked_share(shot: &Path) -> f64 {
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(shot).unwrap()));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    let channels = info.color_type.samples();
    let px = &buf[..info.buffer_size()];
    let inked = px
        .chunks(channels)
        .filter(|p| p[..3.min(channels)].iter().any(|&c| c < 240))
        .count();
    inked as f64 / (px.len() / channels) as f64
}

#[test]
fn report_page_loads_in_a_real_browser_with_histograms_and_sampled_drops() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("runs/c4");
    let o = Command::new(BIN)
        .current_dir(repo("."))
        .args(["run", "--threads", "2", "--output"])
        .arg(&out)
        .arg(repo("pipelines/c4.toml"))
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    assert_ok(&o);
    let o = Command::new(BIN)
        .arg("report")
        .arg(dir.path())
        .output()
        .unwrap();
    assert_ok(&o);
    let page = dir.path().join("report/report.html");
    let html = std::fs::read_to_string(&page).unwrap();
    // Histograms with the langid threshold drawn, the language mix, fold-outs of drops.
    assert!(
        html.contains("aria-label=\"language_score\""),
        "no language-score histogram"
    );
    assert!(html.contains("langid threshold 0.5000"));
    assert!(html.contains("<details><summary>langid/lang_not_kept (3 shown)</summary>"));
    assert!(html.contains("<h4>Languages</h4>"));
    assert!(!html.contains("<script") && !html.contains("src=") && !html.contains("href="));

    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("report/report.json")).unwrap())
            .unwrap();
    let profile = &json["sources"][0]["profile"];
    let langid = &json["sources"][0]["funnel"][1];
    assert_eq!(langid["name"], "langid");
    let hist = profile["histograms"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["metric"] == "language_score")
        .unwrap();
    let counted: u64 = ["kept", "dropped"]
        .iter()
        .flat_map(|k| hist[k].as_array().unwrap())
        .map(|v| v.as_u64().unwrap())
        .sum();
    // Every document langid scored is in the histogram (those with no word have no score).
    let unscored = langid["drops"]["lang_unknown"].as_u64().unwrap_or(0);
    assert_eq!(counted, langid["docs_in"].as_u64().unwrap() - unscored);
    assert_eq!(
        profile["samples"]["langid/lang_not_kept"]
            .as_array()
            .unwrap()
            .len(),
        3
    );

    let shot = dir.path().join("report.png");
    let console = load_in_chromium(&page, &shot, &dir.path().join("chromium"));
    assert!(console.is_empty(), "console messages: {console:#?}");
    let inked = inked_share(&shot);
    assert!(
        inked > 0.02,
        "screenshot is blank ({inked:.4} of pixels inked)"
    );

    // The checks above can fail: a page with a script error logs to the console, and a blank
    // page has no ink.
    let bad = dir.path().join("bad.html");
    std::fs::write(
        &bad,
        "<!DOCTYPE html><html><body><script>noSuchFunction();</script></body></html>",
    )
    .unwrap();
    let bad_shot = dir.path().join("bad.png");
    let console = load_in_chromium(&bad, &bad_shot, &dir.path().join("chromium-bad"));
    assert!(
        console.iter().any(|l| l.contains("noSuchFunction")),
        "{console:#?}"
    );
    assert!(inked_share(&bad_shot) < 0.001);
}
