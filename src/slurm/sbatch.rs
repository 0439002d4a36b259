//! Writes one sbatch script and submits it: job name, array, working folder, log file
//! pattern, resources and the command, chained after other jobs with `afterok`.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

use super::record::JobRecord;
use super::settings::Resources;
use crate::doc::write_atomic;

/// One job to submit.
#[derive(Debug, Clone)]
pub struct JobSpec<'a> {
    /// Step name (`segment-0`, `tokenizer`, `pack-parts`), also the script's file name.
    pub step: String,
    /// Slurm job name (`datamill-llama-tokenizer`); names the log files.
    pub name: String,
    /// Array indices to run.
    pub array: Vec<usize>,
    /// World size of the array (indices are ranks below it).
    pub world: usize,
    /// Working folder of the job.
    pub cwd: &'a Path,
    /// Folder of the scripts.
    pub script_dir: &'a Path,
    /// Folder of the logs (`NAME-JOB_TASK.out`).
    pub log_dir: &'a Path,
    /// Partition, CPUs, memory, time limit.
    pub resources: &'a Resources,
    /// The shell command the job `exec`s (its words already quoted).
    pub command: String,
    /// Jobs that must end successfully first.
    pub after: Vec<String>,
}

/// Writes the script of `spec` and, unless `dry_run`, submits it with sbatch.
pub fn submit_job(spec: &JobSpec, dry_run: bool) -> Result<JobRecord> {
    let list = spec
        .array
        .iter()
        .map(usize::to_string)
        .collect::<Vec<_>>()
        .join(",");
    let mut script = String::from("#!/usr/bin/env bash\n");
    script.push_str(&format!(
        "#SBATCH --job-name={}\n#SBATCH --array={list}\n",
        spec.name
    ));
    script.push_str(&format!(
        "#SBATCH --chdir=\"{}\"\n",
        directive_path(spec.cwd, false)?
    ));
    // The log folder's own `%` are doubled; the file name is sbatch's pattern.
    script.push_str(&format!(
        "#SBATCH --output=\"{}/%x-%A_%a.out\"\n",
        directive_path(spec.log_dir, true)?
    ));
    let r = spec.resources;
    if let Some(p) = &r.partition {
        script.push_str(&format!("#SBATCH --partition={p}\n"));
    }
    if let Some(c) = r.cpus_per_task {
        script.push_str(&format!("#SBATCH --cpus-per-task={c}\n"));
    }
    if let Some(m) = &r.mem {
        script.push_str(&format!("#SBATCH --mem={m}\n"));
    }
    if let Some(t) = &r.time {
        script.push_str(&format!("#SBATCH --time={t}\n"));
    }
    script.push_str(&format!("set -euo pipefail\nexec {}\n", spec.command));
    std::fs::create_dir_all(spec.script_dir)
        .with_context(|| format!("cannot create {}", spec.script_dir.display()))?;
    std::fs::create_dir_all(spec.log_dir)
        .with_context(|| format!("cannot create {}", spec.log_dir.display()))?;
    let path = spec.script_dir.join(format!("{}.sbatch", spec.step));
    write_atomic(&path, script.as_bytes())?;
    let mut job_id = String::new();
    if !dry_run {
        let mut cmd = Command::new("sbatch");
        cmd.arg("--parsable");
        let after: Vec<&str> = spec
            .after
            .iter()
            .map(String::as_str)
            .filter(|a| !a.is_empty())
            .collect();
        if !after.is_empty() {
            cmd.arg(format!("--dependency=afterok:{}", after.join(":")));
        }
        let out = cmd
            .arg(&path)
            .output()
            .context("cannot run sbatch: is Slurm installed and running?")?;
        if !out.status.success() {
            bail!(
                "sbatch {} failed: {}",
                path.display(),
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        job_id = String::from_utf8_lossy(&out.stdout)
            .trim()
            .split(';')
            .next()
            .unwrap_or_default()
            .to_string();
    }
    Ok(JobRecord {
        step: spec.step.clone(),
        name: spec.name.clone(),
        job_id,
        array: spec.array.clone(),
        world: spec.world,
        script: path,
        log_dir: spec.log_dir.to_path_buf(),
    })
}

/// `path` made absolute against `cwd` (the jobs run in `cwd`, but a path stays unambiguous in
/// the script).
pub fn absolute(cwd: &Path, path: &Path) -> PathBuf {
    if path.is_absolute() {
        path.to_path_buf()
    } else {
        cwd.join(path)
    }
}

/// A path for an `#SBATCH` line, to be put in double quotes (sbatch reads a quoted value
/// whole, spaces included). A path that is not UTF-8 or holds a double quote, a backslash (sbatch reads it
/// as an escape) or a line break cannot be written there. With `pattern`, a `%` is doubled
/// so sbatch does not read it as a file-name pattern.
pub fn directive_path(path: &Path, pattern: bool) -> Result<String> {
    let Some(text) = path.to_str() else {
        bail!(
            "{}: an #SBATCH line cannot hold a path that is not UTF-8; use another folder",
            path.display()
        );
    };
    if text.contains(['"', '\\', '\n', '\r']) {
        bail!(
            "{}: an #SBATCH line cannot hold a path with a double quote, a backslash or a \
             line break; use another folder",
            path.display()
        );
    }
    Ok(if pattern {
        text.replace('%', "%%")
    } else {
        text.to_string()
    })
}

/// `path` as one shell word: single-quoted, so spaces, `$` or quotes in it stay literal.
pub fn shell_quote(path: &Path) -> String {
    shell_word(&path.to_string_lossy())
}

/// `text` as one shell word (single-quoted).
pub fn shell_word(text: &str) -> String {
    format!("'{}'", text.replace('\'', "'\\''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_in_the_sbatch_script_are_single_shell_words() {
        let path = Path::new("/data/my run/it's $HOME/a b.toml");
        let out = Command::new("bash")
            .arg("-c")
            .arg(format!("printf '%s|' {}", shell_quote(path)))
            .output()
            .unwrap();
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "/data/my run/it's $HOME/a b.toml|"
        );
    }

    #[test]
    fn sbatch_directive_paths_are_quoted_and_quotes_refused() {
        assert_eq!(
            directive_path(Path::new("/data/my run"), false).expect("path"),
            "/data/my run"
        );
        assert_eq!(
            directive_path(Path::new("/data/100% run"), true).expect("path"),
            "/data/100%% run"
        );
        for bad in ["/data/a\"b", "/data/a\\b", "/data/a\nb"] {
            let err = directive_path(Path::new(bad), false).unwrap_err();
            assert!(err.to_string().contains("cannot hold"), "{err}");
        }
    }
}
