//! A full disk fails the shard being written with a clear message naming the file, leaves no
//! half-written shard (every shard left has its stats and manifest, no temporary file stays),
//! and a rerun after freeing space finishes the run with the shards already done kept.
//!
//! Needs root to mount a small tmpfs (CI runs as root); fails, never skips, otherwise.

use std::path::{Path, PathBuf};
use std::process::Command;

mod common;
use common::*;

/// A tmpfs mounted for the test; unmounted when dropped, also when the test fails.
struct Tmpfs {
    dir: PathBuf,
}

impl Tmpfs {
    fn mount(dir: &Path, kib: u64) -> Tmpfs {
        std::fs::create_dir_all(dir).unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={kib}k"), "tmpfs"])
            .arg(dir)
            .output()
            .expect("cannot run mount");
        assert!(
            out.status.success(),
            "this test mounts a small tmpfs and needs root (CI runs as root): mount failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
        Tmpfs {
            dir: dir.to_path_buf(),
        }
    }

    fn resize(&self, kib: u64) {
        let out = Command::new("mount")
            .args(["-o", &format!("remount,size={kib}k")])
            .arg(&self.dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let done = Command::new("umount").arg(&self.dir).status();
        if !done.map(|s| s.success()).unwrap_or(false) {
            let _ = Command::new("umount").arg("-l").arg(&self.dir).status();
        }
    }
}

fn folder_kib(dir: &Path) -> u64 {
    let mut bytes = 0;
    for (_, v) in snapshot(dir) {
        // tmpfs gives every file whole 4 KiB pages.
        bytes += (v.len() as u64).div_ceil(4096) * 4096;
    }
    bytes / 1024
}

#[test]
fn full_disk_fails_the_shard_clearly_and_leaves_no_half_written_shard() {
    let tmp = tempfile::tempdir().unwrap();
    let input = make_inputs(tmp.path(), 6);
    let stages = "[[stages]]\ntype = \"gopher_quality\"\n";
    // The reference run on the ordinary disk: its size says how small the tmpfs must be.
    let reference = tmp.path().join("reference");
    let pipe = write_pipeline(tmp.path(), &input, &reference, stages);
    let r = run(&["run", pipe.to_str().unwrap(), "--threads", "1"]);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let expected = snapshot(&reference);
    let total = folder_kib(&reference);

    // Room for about half of the output.
    let disk = Tmpfs::mount(&tmp.path().join("disk"), total / 2);
    let out = disk.dir.join("out");
    let pipe = write_pipeline(tmp.path(), &input, &out, stages);
    let r = run(&["run", pipe.to_str().unwrap(), "--threads", "1"]);
    let stderr = String::from_utf8_lossy(&r.stderr);
    assert!(
        !r.status.success(),
        "the run fit on the small disk: {stderr}"
    );
    assert!(
        stderr.contains("disk full (No space left on device)")
            && stderr.contains(&disk.dir.display().to_string())
            && (stderr.contains(".jsonl.zst") || stderr.contains(".stats.json")),
        "no clear disk-full message naming the file: {stderr}"
    );
    assert!(stderr.contains("free space and rerun"), "{stderr}");

    // What is left: no temporary file anywhere, and every shard complete with its manifest
    // and stats, byte-identical to the reference.
    let left = snapshot(&out);
    assert!(
        left.keys().all(|k| !k.ends_with(".tmp")),
        "temporary files left: {:?}",
        left.keys().collect::<Vec<_>>()
    );
    let shards: Vec<&String> = left
        .keys()
        .filter(|k| k.ends_with(".jsonl.zst") && !k.contains('/'))
        .collect();
    assert!(
        !shards.is_empty() && shards.len() < 6,
        "{} complete shards: {stderr}",
        shards.len()
    );
    for shard in &shards {
        let stem = shard.trim_end_matches(".jsonl.zst");
        for part in [".manifest.json", ".stats.json"] {
            assert!(
                left.contains_key(&format!("{stem}{part}")),
                "{shard} without {part}"
            );
        }
        assert_eq!(left[*shard], expected[*shard], "{shard} differs");
    }

    // Free space and rerun: the run completes, identical to the reference.
    disk.resize(total * 3 + 1024);
    let r = run(&["run", pipe.to_str().unwrap(), "--threads", "1"]);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    assert_eq!(snapshot(&out), expected);
}
