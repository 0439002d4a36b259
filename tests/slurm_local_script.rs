//! `scripts/slurm-local.sh` on temporary folders (no daemon is started): `configure` backs up a
//! config it did not write and `stop` restores it; `stop` stops only daemons the script recorded
//! as started by itself, and only while their PID still runs that daemon.

use std::path::{Path, PathBuf};
use std::process::{Child, Command};

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/slurm-local.sh")
}

/// Runs the script with its config and state in `dir`.
fn run_script(dir: &Path, command: &str) -> std::process::Output {
    Command::new("bash")
        .arg(script())
        .arg(command)
        .env("SLURM_CONF", dir.join("etc/slurm.conf"))
        .env("SLURM_LOCAL_DIR", dir.join("state"))
        .output()
        .unwrap()
}

fn ok(out: std::process::Output) -> String {
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{err}");
    err
}

#[test]
fn a_foreign_config_is_backed_up_once_and_restored_by_stop() {
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("etc/slurm.conf");
    let backup = dir.path().join("etc/slurm.conf.datamill-backup");
    std::fs::create_dir_all(conf.parent().unwrap()).unwrap();
    std::fs::write(&conf, "ClusterName=theirs\n").unwrap();

    let err = ok(run_script(dir.path(), "configure"));
    assert!(err.contains("backed up"), "{err}");
    let ours = std::fs::read_to_string(&conf).unwrap();
    assert!(ours.starts_with("# Written by datamill") && ours.contains("ClusterName=datamill"));
    assert_eq!(
        std::fs::read_to_string(&backup).unwrap(),
        "ClusterName=theirs\n"
    );
    // A second start sees its own file: the backup keeps the original.
    ok(run_script(dir.path(), "configure"));
    assert_eq!(
        std::fs::read_to_string(&backup).unwrap(),
        "ClusterName=theirs\n"
    );

    ok(run_script(dir.path(), "stop"));
    assert_eq!(
        std::fs::read_to_string(&conf).unwrap(),
        "ClusterName=theirs\n"
    );
    assert!(!backup.exists());

    // With no earlier file there is nothing to restore; ours stays for the next start.
    std::fs::remove_file(&conf).unwrap();
    ok(run_script(dir.path(), "configure"));
    ok(run_script(dir.path(), "stop"));
    assert!(std::fs::read_to_string(&conf)
        .unwrap()
        .contains("ClusterName=datamill"));
}

/// A process whose program name is `name` (a copy of `sleep`), so `/proc/PID/comm` shows it.
fn fake_daemon(dir: &Path, name: &str) -> Child {
    let bin = dir.join("bin").join(name);
    std::fs::create_dir_all(bin.parent().unwrap()).unwrap();
    let sleep = ["/bin/sleep", "/usr/bin/sleep"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .unwrap();
    std::fs::copy(sleep, &bin).unwrap();
    Command::new(&bin).arg("60").spawn().unwrap()
}

fn running(child: &mut Child) -> bool {
    child.try_wait().unwrap().is_none()
}

#[test]
fn stop_stops_only_the_daemons_the_script_started() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    std::fs::create_dir_all(state.join("started")).unwrap();
    // Recorded as started by the script: stopped.
    let mut ours = fake_daemon(dir.path(), "slurmd");
    std::fs::write(state.join("started/slurmd"), ours.id().to_string()).unwrap();
    // A daemon's PID file without a record (someone else started it): left alone.
    let mut theirs = fake_daemon(dir.path(), "slurmctld");
    std::fs::write(state.join("slurmctld.pid"), theirs.id().to_string()).unwrap();
    // A record whose PID now runs another program (PID reuse): left alone.
    let mut reused = fake_daemon(dir.path(), "other");
    std::fs::write(state.join("started/munged"), reused.id().to_string()).unwrap();

    ok(run_script(dir.path(), "stop"));
    let status = ours.wait().unwrap();
    assert!(!status.success(), "the recorded slurmd was killed");
    assert!(
        running(&mut theirs),
        "a daemon the script did not start keeps running"
    );
    assert!(running(&mut reused), "a reused PID is not killed");
    assert!(!state.join("started/slurmd").exists() && !state.join("started/munged").exists());
    for child in [&mut theirs, &mut reused] {
        child.kill().unwrap();
        child.wait().unwrap();
    }
}
