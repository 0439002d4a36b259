//! Repository licences: detection from licence files and package manifests, and the
//! `license_filter` stage that keeps only permissively licensed repositories (LLaMA kept MIT,
//! BSD and Apache).
//!
//! Licence files (`LICENSE`, `LICENSE.txt`, `COPYING`, `LICENSE-MIT`, ...) at the repository
//! root are matched against the SPDX licence texts and standard headers with the `spdx`
//! crate's detector (askalono's n-gram matcher, inlined and maintained there). Manifest fields
//! (`package.json` `license`, `Cargo.toml` `package.license`, `pyproject.toml`
//! `project.license`, `setup.cfg` `[metadata] license`) are the second signal.

use std::sync::OnceLock;

use anyhow::Result;
use serde::Deserialize;
use spdx::detection::scan::Scanner;
use spdx::detection::{Store, TextData};

use crate::doc::Document;
use crate::run::config::parse_params;
use crate::stage::{DocPos, Stage, Verdict};

/// Lowest detector score for a licence file to count as a match.
pub const MATCH_THRESHOLD: f32 = 0.8;

fn store() -> Option<&'static Store> {
    static STORE: OnceLock<Option<Store>> = OnceLock::new();
    STORE.get_or_init(|| Store::load_inline().ok()).as_ref()
}

/// True for the names of licence files: `LICENSE`, `LICENCE`, `COPYING`, `UNLICENSE`, with any
/// suffix (`LICENSE.txt`, `LICENSE-MIT`, `COPYING.LESSER`), in any case.
pub fn is_license_file(file_name: &str) -> bool {
    let lower = file_name.to_ascii_lowercase();
    ["license", "licence", "copying", "unlicense"]
        .iter()
        .any(|p| lower.starts_with(p))
}

/// True for the manifests whose licence field is read.
pub fn is_manifest_file(file_name: &str) -> bool {
    matches!(
        file_name,
        "package.json" | "Cargo.toml" | "pyproject.toml" | "setup.cfg"
    )
}

/// The SPDX licence a licence file holds, if the match is good enough. When the whole text
/// matches nothing well (a licence followed by notes, or several licences in one file), the
/// detector narrows down to the best-matching line ranges; several licences found that way
/// are joined with `AND`.
pub fn detect_license_text(text: &str) -> Option<String> {
    let store = store()?;
    if text.trim().is_empty() {
        return None;
    }
    let data = TextData::new(text);
    let m = store.analyze(&data);
    if m.score >= MATCH_THRESHOLD {
        return Some(m.name.to_string());
    }
    let scanner = Scanner::new(store)
        .confidence_threshold(MATCH_THRESHOLD)
        .optimize(true);
    let found = scanner.scan(&data);
    let mut ids: Vec<&str> = found.containing.iter().map(|c| c.license.name).collect();
    ids.sort_unstable();
    ids.dedup();
    (!ids.is_empty()).then(|| ids.join(" AND "))
}

/// Normalises a licence as written in a manifest or an export (`MIT`, `mit`, `Apache 2.0`,
/// `MIT OR Apache-2.0`, `BSD License`) into an SPDX expression string.
pub fn normalize_license_expression(raw: &str) -> Option<String> {
    let raw = raw.trim();
    if raw.is_empty() {
        return None;
    }
    if let Ok(e) = spdx::Expression::parse_mode(raw, spdx::ParseMode::LAX) {
        return Some(e.to_string());
    }
    if let Some(id) = spdx::license_id(raw) {
        return Some(id.name.to_string());
    }
    // Case-insensitive exact id (BigQuery exports lower-case keys like `bsd-3-clause`).
    let lower = raw.to_ascii_lowercase();
    if let Some(id) = spdx::identifiers::LICENSES
        .iter()
        .find(|l| l.name.to_ascii_lowercase() == lower)
    {
        return Some(id.name.to_string());
    }
    spdx::imprecise_license_id(raw).map(|(id, _)| id.name.to_string())
}

/// The licence field of a manifest file, as an SPDX expression.
pub fn manifest_license(file_name: &str, text: &str) -> Option<String> {
    let raw: Option<String> = match file_name {
        "package.json" => {
            let v: serde_json::Value = serde_json::from_str(text).ok()?;
            match v.get("license") {
                Some(serde_json::Value::String(s)) => Some(s.clone()),
                Some(serde_json::Value::Object(o)) => {
                    o.get("type").and_then(|t| t.as_str()).map(str::to_string)
                }
                _ => v
                    .get("licenses")
                    .and_then(|l| l.as_array())
                    .map(|arr| {
                        arr.iter()
                            .filter_map(|x| x.get("type").and_then(|t| t.as_str()))
                            .collect::<Vec<_>>()
                            .join(" OR ")
                    })
                    .filter(|s| !s.is_empty()),
            }
        }
        "Cargo.toml" => {
            let v: toml::Table = toml::from_str(text).ok()?;
            v.get("package")?
                .get("license")?
                .as_str()
                .map(str::to_string)
        }
        "pyproject.toml" => {
            let v: toml::Table = toml::from_str(text).ok()?;
            let project = v.get("project").and_then(|p| p.get("license"));
            let poetry = v
                .get("tool")
                .and_then(|t| t.get("poetry"))
                .and_then(|p| p.get("license"));
            match project.or(poetry)? {
                toml::Value::String(s) => Some(s.clone()),
                toml::Value::Table(t) => match t.get("text").and_then(|x| x.as_str()) {
                    Some(s) if s.len() > 100 => detect_license_text(s),
                    Some(s) => Some(s.to_string()),
                    None => None,
                },
                _ => None,
            }
        }
        "setup.cfg" => setup_cfg_license(text),
        _ => None,
    };
    raw.as_deref().and_then(normalize_license_expression)
}

fn setup_cfg_license(text: &str) -> Option<String> {
    let mut in_metadata = false;
    for line in text.lines() {
        let t = line.trim();
        if t.starts_with('[') {
            in_metadata = t == "[metadata]";
            continue;
        }
        if !in_metadata {
            continue;
        }
        if let Some((k, v)) = t.split_once(['=', ':']) {
            if k.trim() == "license" && !v.trim().is_empty() {
                return Some(v.trim().to_string());
            }
        }
    }
    None
}

/// What is known about a repository's licence.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RepoLicense {
    /// SPDX expression, `None` when nothing was recognised.
    pub spdx: Option<String>,
    /// Where it came from: the licence file or manifest name, `export`, or `none`.
    pub source: String,
    /// True when a licence file exists but matched no known licence.
    pub unrecognized_file: bool,
}

/// Collects the licence signals of one repository, then decides.
#[derive(Debug, Default)]
pub struct LicenseEvidence {
    files: Vec<(String, Option<String>)>,
    manifests: Vec<(String, String)>,
}

impl LicenseEvidence {
    /// Adds a root-level licence file (its name and text).
    pub fn add_license_file(&mut self, name: &str, text: &str) {
        self.files
            .push((name.to_string(), detect_license_text(text)));
    }

    /// Adds a root-level manifest (its name and text).
    pub fn add_manifest(&mut self, name: &str, text: &str) {
        if let Some(e) = manifest_license(name, text) {
            self.manifests.push((name.to_string(), e));
        }
    }

    /// True when no licence file and no manifest licence was seen.
    pub fn is_empty(&self) -> bool {
        self.files.is_empty() && self.manifests.is_empty()
    }

    /// Licence files first: every recognised file's licence must hold (joined with `AND`),
    /// unless the manifest states an expression naming all of them (dual licences such as
    /// `MIT OR Apache-2.0`). Without a recognised file, the manifest decides.
    pub fn decide(mut self) -> RepoLicense {
        self.files.sort();
        self.manifests.sort();
        let recognized: Vec<&(String, Option<String>)> =
            self.files.iter().filter(|(_, id)| id.is_some()).collect();
        let manifest = self.manifests.first();
        if !recognized.is_empty() {
            let mut ids: Vec<&str> = recognized
                .iter()
                .filter_map(|(_, id)| id.as_deref())
                .collect();
            ids.sort();
            ids.dedup();
            if let Some((mname, expr)) = manifest {
                if ids.len() > 1 && ids.iter().all(|id| expr.contains(id)) {
                    return RepoLicense {
                        spdx: Some(expr.clone()),
                        source: mname.clone(),
                        unrecognized_file: false,
                    };
                }
            }
            let names: Vec<&str> = recognized.iter().map(|(n, _)| n.as_str()).collect();
            return RepoLicense {
                spdx: Some(ids.join(" AND ")),
                source: names.join(","),
                unrecognized_file: false,
            };
        }
        if let Some((mname, expr)) = manifest {
            return RepoLicense {
                spdx: Some(expr.clone()),
                source: mname.clone(),
                unrecognized_file: false,
            };
        }
        RepoLicense {
            spdx: None,
            source: if self.files.is_empty() {
                "none".into()
            } else {
                self.files[0].0.clone()
            },
            unrecognized_file: !self.files.is_empty(),
        }
    }
}

impl RepoLicense {
    /// Writes `license`, `license_source` (and `license_file_unrecognized`) into metadata.
    pub fn annotate(&self, doc: &mut Document) {
        doc.set(
            "license",
            match &self.spdx {
                Some(s) => serde_json::Value::String(s.clone()),
                None => serde_json::Value::Null,
            },
        );
        doc.set("license_source", self.source.clone());
        if self.unrecognized_file {
            doc.set("license_file_unrecognized", true);
        }
    }
}

/// Parameters of `type = "license_filter"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LicenseFilterConfig {
    /// Allowed SPDX ids; a trailing `*` matches a prefix (`BSD-*`). Default: LLaMA's
    /// `["MIT", "Apache-2.0", "BSD-*"]`.
    #[serde(default = "default_allow")]
    pub allow: Vec<String>,
}

fn default_allow() -> Vec<String> {
    vec!["MIT".into(), "Apache-2.0".into(), "BSD-*".into()]
}

/// Keeps documents whose `metadata.license` SPDX expression is satisfiable with allowed
/// licences only. Drops `license_missing` (none found), `license_unrecognized` (a licence
/// file that matches no known text, and no manifest), `license_not_allowed`.
pub struct LicenseFilter {
    allow: Vec<String>,
}

impl LicenseFilter {
    /// Builds the stage from its TOML parameters.
    pub fn from_params(params: &toml::Table) -> Result<Self> {
        let c: LicenseFilterConfig = parse_params("license_filter", params)?;
        Ok(LicenseFilter { allow: c.allow })
    }

    /// True when the SPDX id is on the allow list.
    pub fn allows_id(&self, id: &str) -> bool {
        self.allow.iter().any(|a| match a.strip_suffix('*') {
            Some(prefix) => id.starts_with(prefix),
            None => a == id,
        })
    }

    /// True when the expression can be satisfied with allowed licences only.
    pub fn allows_expression(&self, expr: &str) -> bool {
        match spdx::Expression::parse_mode(expr, spdx::ParseMode::LAX) {
            Ok(e) => e.evaluate(|req| match req.license.id() {
                Some(id) => self.allows_id(id.name),
                None => false,
            }),
            Err(_) => normalize_license_expression(expr)
                .is_some_and(|n| n != expr && self.allows_expression(&n)),
        }
    }
}

impl Stage for LicenseFilter {
    fn name(&self) -> &str {
        "license_filter"
    }

    fn process(&self, doc: &mut Document, _pos: DocPos) -> Verdict {
        match doc.meta_str("license") {
            Some(expr) if self.allows_expression(expr) => Verdict::Keep,
            Some(_) => Verdict::drop("license_not_allowed"),
            None if doc
                .metadata
                .get("license_file_unrecognized")
                .and_then(|v| v.as_bool())
                == Some(true) =>
            {
                Verdict::drop("license_unrecognized")
            }
            None => Verdict::drop("license_missing"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIT: &str = "MIT License\n\nCopyright (c) 2020 Someone\n\nPermission is hereby granted, free of charge, to any person obtaining a copy\nof this software and associated documentation files (the \"Software\"), to deal\nin the Software without restriction, including without limitation the rights\nto use, copy, modify, merge, publish, distribute, sublicense, and/or sell\ncopies of the Software, and to permit persons to whom the Software is\nfurnished to do so, subject to the following conditions:\n\nThe above copyright notice and this permission notice shall be included in all\ncopies or substantial portions of the Software.\n\nTHE SOFTWARE IS PROVIDED \"AS IS\", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR\nIMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY,\nFITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE\nAUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER\nLIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,\nOUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE\nSOFTWARE.\n";

    #[test]
    fn mit_text_is_detected_and_garbage_is_not() {
        assert_eq!(detect_license_text(MIT).as_deref(), Some("MIT"));
        assert_eq!(
            detect_license_text("This is my code, do not use it without asking me."),
            None
        );
    }

    #[test]
    fn licence_followed_by_notes_is_still_found() {
        let notes = "\n\nThird-party notices\n\nThis product bundles the icon font Foo, whose \
                     authors ask to be credited in the about box of any application. The \
                     build scripts under tools/ were contributed by several people over the \
                     years and are kept here for convenience; see the changelog for names.\n"
            .repeat(3);
        let text = format!("{MIT}{notes}");
        // The whole file is no good match, so this goes through the narrowing scan.
        assert!(store().unwrap().analyze(&TextData::new(&text)).score < MATCH_THRESHOLD);
        assert_eq!(detect_license_text(&text).as_deref(), Some("MIT"));
    }

    #[test]
    fn manifests_and_export_keys_normalise_to_spdx() {
        assert_eq!(
            manifest_license("package.json", r#"{"name":"x","license":"MIT"}"#).as_deref(),
            Some("MIT")
        );
        assert_eq!(
            manifest_license(
                "Cargo.toml",
                "[package]\nname='x'\nlicense = \"MIT OR Apache-2.0\"\n"
            )
            .as_deref(),
            Some("MIT OR Apache-2.0")
        );
        assert_eq!(
            manifest_license(
                "setup.cfg",
                "[metadata]\nname = x\nlicense = BSD-3-Clause\n"
            )
            .as_deref(),
            Some("BSD-3-Clause")
        );
        assert_eq!(
            normalize_license_expression("bsd-3-clause").as_deref(),
            Some("BSD-3-Clause")
        );
        assert_eq!(
            normalize_license_expression("apache-2.0").as_deref(),
            Some("Apache-2.0")
        );
    }

    #[test]
    fn filter_keeps_permissive_expressions_only() {
        let f = LicenseFilter::from_params(&toml::Table::new()).unwrap();
        assert!(f.allows_expression("MIT"));
        assert!(f.allows_expression("BSD-2-Clause"));
        assert!(f.allows_expression("GPL-3.0-only OR MIT"));
        assert!(!f.allows_expression("GPL-3.0-only"));
        assert!(!f.allows_expression("MIT AND GPL-2.0-only"));
        let mut d = Document::new("a", "x", "github");
        assert_eq!(
            f.process(&mut d, DocPos { shard: 0, index: 0 }),
            Verdict::drop("license_missing")
        );
        d.set("license", "GPL-3.0-only");
        assert_eq!(
            f.process(&mut d, DocPos { shard: 0, index: 0 }),
            Verdict::drop("license_not_allowed")
        );
    }

    #[test]
    fn dual_licence_files_take_the_manifest_expression() {
        let mut ev = LicenseEvidence::default();
        ev.add_license_file("LICENSE-MIT", MIT);
        ev.files
            .push(("LICENSE-APACHE".into(), Some("Apache-2.0".into())));
        ev.add_manifest("Cargo.toml", "[package]\nlicense = \"MIT OR Apache-2.0\"\n");
        let d = ev.decide();
        assert_eq!(d.spdx.as_deref(), Some("MIT OR Apache-2.0"));
        assert_eq!(d.source, "Cargo.toml");
    }
}
