//! The reference in docs/ must match the code: the generated tables of docs/stages.md,
//! docs/readers.md and docs/recipe.md equal `datamill stages --markdown`, `datamill readers
//! --markdown` and `datamill pipeline-keys --markdown`, and every
//! command of `datamill --help` (subcommands too) has a section in docs/ naming each of its flags.

use std::path::Path;
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_datamill");

fn datamill(args: &[&str]) -> String {
    let out = Command::new(BIN).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "datamill {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn docs_page(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("docs")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The text between `<!-- BEGIN generated: CMD -->` and `<!-- END generated -->`.
fn generated_part(page: &str, command: &str) -> String {
    let begin = format!("<!-- BEGIN generated: {command} -->\n");
    let text = docs_page(page);
    let start = text
        .find(&begin)
        .unwrap_or_else(|| panic!("docs/{page} has no `{}` marker", begin.trim()))
        + begin.len();
    let end = text[start..]
        .find("<!-- END generated -->")
        .unwrap_or_else(|| panic!("docs/{page} has no END marker"));
    text[start..start + end].to_string()
}

fn assert_generated(page: &str, args: &[&str]) {
    let command = format!("datamill {}", args.join(" "));
    let expected = datamill(args);
    let found = generated_part(page, &command);
    assert!(
        found == expected,
        "docs/{page} differs from `{command}`; regenerate it with\n  \
         {command} > part and paste it between the markers"
    );
}

#[test]
fn stages_page_is_the_catalogue() {
    assert_generated("stages.md", &["stages", "--markdown"]);
}

#[test]
fn readers_page_is_the_catalogue() {
    assert_generated("readers.md", &["readers", "--markdown"]);
}

#[test]
fn pipeline_keys_in_the_recipe_page_are_the_catalogue() {
    assert_generated("recipe.md", &["pipeline-keys", "--markdown"]);
}

/// Subcommand names listed under `Commands:` in a help text.
fn subcommands(help: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut in_commands = false;
    for line in help.lines() {
        if line.ends_with(':') && !line.starts_with(' ') {
            in_commands = line.contains("ommands");
            continue;
        }
        if in_commands {
            if let Some(name) = line.split_whitespace().next() {
                if line.starts_with("  ") && name != "help" {
                    names.push(name.to_string());
                }
            }
        }
    }
    names
}

/// Long flags (`--name`) of the options listed in a help text, without help and version.
fn flags(help: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in help.lines() {
        let line = line.trim_start();
        let line = line
            .strip_prefix('-')
            .filter(|l| !l.starts_with('-'))
            .map(|l| l.split_once(", ").map_or(l, |(_, rest)| rest))
            .unwrap_or(line);
        if let Some(rest) = line.strip_prefix("--") {
            let name: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
                .collect();
            if name != "help" && name != "version" {
                out.push(format!("--{name}"));
            }
        }
    }
    out
}

/// Every command path of the binary: `["run"]`, `["slurm", "submit"]`, ...
fn command_paths() -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let mut todo: Vec<Vec<String>> = vec![Vec::new()];
    while let Some(path) = todo.pop() {
        let mut args: Vec<&str> = path.iter().map(String::as_str).collect();
        args.push("--help");
        let help = datamill(&args);
        let subs = subcommands(&help);
        if subs.is_empty() {
            out.push(path);
        } else {
            for s in subs {
                let mut p = path.clone();
                p.push(s);
                todo.push(p);
            }
        }
    }
    out.sort();
    out
}

/// The section of the docs whose heading names `` `datamill CMD` ``, up to the next heading of
/// the same or a higher level.
fn command_section(all_pages: &[(String, String)], command: &str) -> Option<String> {
    let needle = format!("`{command}`");
    for (_, text) in all_pages {
        let lines: Vec<&str> = text.lines().collect();
        for (i, line) in lines.iter().enumerate() {
            if line.starts_with('#') && line.contains(&needle) {
                let level = line.chars().take_while(|c| *c == '#').count();
                let end = lines[i + 1..]
                    .iter()
                    .position(|l| {
                        l.starts_with('#') && l.chars().take_while(|c| *c == '#').count() <= level
                    })
                    .map_or(lines.len(), |p| i + 1 + p);
                return Some(lines[i..end].join("\n"));
            }
        }
    }
    None
}

#[test]
fn every_command_and_flag_is_documented() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs");
    let mut pages = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "md") {
            pages.push((
                path.display().to_string(),
                std::fs::read_to_string(&path).unwrap(),
            ));
        }
    }
    let paths = command_paths();
    assert!(paths.len() >= 15, "found only {paths:?}");
    assert!(paths.contains(&vec!["slurm".to_string(), "status".to_string()]));
    let mut missing = Vec::new();
    for path in &paths {
        let command = format!("datamill {}", path.join(" "));
        let Some(section) = command_section(&pages, &command) else {
            missing.push(format!("no heading naming `{command}` in docs/"));
            continue;
        };
        let mut args: Vec<&str> = path.iter().map(String::as_str).collect();
        args.push("--help");
        for flag in flags(&datamill(&args)) {
            if !section.contains(&format!("`{flag}")) {
                missing.push(format!(
                    "`{command}`: flag `{flag}` not in its docs section"
                ));
            }
        }
    }
    assert!(missing.is_empty(), "{}", missing.join("\n"));
}

#[test]
fn help_parsers_find_flags_and_subcommands() {
    let help = "Usage: x\n\nCommands:\n  run    Runs\n  help   Print\n\nOptions:\n  \
                -t, --threads <N>  Sets\n      --dry-run      Writes\n  -h, --help  Print\n";
    assert_eq!(subcommands(help), ["run"]);
    assert_eq!(flags(help), ["--threads", "--dry-run"]);
}

/// Every drop reason a stage's code names literally (`Verdict::drop("...")`) is declared in the
/// stage catalogue, so the reference lists every reason a run can report.
#[test]
fn every_literal_drop_reason_is_declared() {
    let declared = datamill(&["stages", "--markdown"]);
    let mut missing = Vec::new();
    let mut files = vec![Path::new(env!("CARGO_MANIFEST_DIR")).join("src")];
    let mut seen = 0;
    while let Some(path) = files.pop() {
        if path.is_dir() {
            for entry in std::fs::read_dir(&path).unwrap() {
                files.push(entry.unwrap().path());
            }
            continue;
        }
        if path.extension().is_none_or(|e| e != "rs") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        for part in text.split("Verdict::drop(\"").skip(1) {
            let reason = part.split('"').next().unwrap();
            seen += 1;
            if !declared.contains(&format!("`{reason}`")) {
                missing.push(format!("{}: `{reason}`", path.display()));
            }
        }
    }
    assert!(seen > 30, "found only {seen} drop reasons");
    assert!(
        missing.is_empty(),
        "not in the catalogue:\n{}",
        missing.join("\n")
    );
}

/// The catalogue check runs when a pipeline is built: a wrong type or an unknown option is an
/// error naming the stage or reader and the key, before anything is read.
#[test]
fn pipeline_parameters_are_checked_against_the_catalogue() {
    let tmp = tempfile::tempdir().unwrap();
    let pipe = tmp.path().join("p.toml");
    let head = "name='t'\nsource='web'\n[input]\npaths=['x']\nreader='jsonl'\n";
    let cases = [
        (
            format!("{head}[output]\ndir='o'\n[[stages]]\ntype='line_dedup'\ngroup_size='all'\n"),
            ["stage `line_dedup`", "`group_size` must be integer"],
        ),
        (
            format!("{head}[input.options]\nkeep_ids=true\n[output]\ndir='o'\n"),
            ["reader `jsonl`", "unknown parameter `keep_ids`"],
        ),
    ];
    for (text, expected) in cases {
        std::fs::write(&pipe, text).unwrap();
        let out = Command::new(BIN)
            .args(["run", pipe.to_str().unwrap()])
            .current_dir(tmp.path())
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success());
        for e in expected {
            assert!(err.contains(e), "`{e}` not in: {err}");
        }
    }
}
