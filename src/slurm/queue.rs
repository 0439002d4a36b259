//! The state of each array task of a step: done (its files say so), running or waiting (the
//! queue says so), failed (submitted, gone from the queue, not done: its log names the cause)
//! or not submitted.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use super::record::{latest_job, JobRecord};

/// The array tasks in the queue: (job id, task) to (state, reason).
#[derive(Debug, Clone, Default)]
pub struct Queue {
    tasks: HashMap<(String, usize), (String, String)>,
}

impl Queue {
    /// Reads the queue with `squeue` (empty when Slurm does not answer).
    pub fn read() -> Queue {
        let out = Command::new("squeue")
            .args(["-h", "-r", "-o", "%F|%K|%T|%r"])
            .output();
        match out {
            Ok(o) if o.status.success() => Queue::parse(&String::from_utf8_lossy(&o.stdout)),
            _ => Queue::default(),
        }
    }

    /// Parses `squeue -h -r -o "%F|%K|%T|%r"` lines.
    pub fn parse(text: &str) -> Queue {
        let mut tasks = HashMap::new();
        for line in text.lines() {
            let f: Vec<&str> = line.trim().split('|').collect();
            if f.len() < 4 {
                continue;
            }
            for task in task_indices(f[1]) {
                tasks.insert(
                    (f[0].to_string(), task),
                    (f[2].to_string(), f[3].to_string()),
                );
            }
        }
        Queue { tasks }
    }

    /// True when any task of job `id` is in the queue.
    pub fn has_job(&self, id: &str) -> bool {
        self.tasks.keys().any(|(job, _)| job == id)
    }

    /// True when job `id` is queued and every one of its tasks waits for other jobs
    /// (`reason` `Dependency`, or `DependencyNeverSatisfied` with `never` set).
    fn waits_on_jobs(&self, id: &str, never: bool) -> bool {
        let wanted = if never {
            "DependencyNeverSatisfied"
        } else {
            "Dependency"
        };
        let mut tasks = self
            .tasks
            .iter()
            .filter(|((job, _), _)| job == id)
            .peekable();
        tasks.peek().is_some()
            && tasks.all(|(_, (state, reason))| state == "PENDING" && reason.contains(wanted))
    }

    fn get(&self, job: &str, task: usize) -> Option<&(String, String)> {
        self.tasks.get(&(job.to_string(), task))
    }
}

/// Before a resubmission: when the jobs of `ids` still queued only wait for one another and
/// one of them waits on a step that failed (so none can ever run), cancels them all and waits
/// until they have left the queue; fails while any of `ids` is running or queued otherwise,
/// since resubmitting would run its tasks twice.
pub fn refuse_while_queued(ids: &[String]) -> Result<()> {
    let queue = Queue::read();
    let queued: Vec<&str> = ids
        .iter()
        .map(String::as_str)
        .filter(|id| queue.has_job(id))
        .collect();
    if queued.is_empty() {
        return Ok(());
    }
    let dead = queued.iter().all(|id| queue.waits_on_jobs(id, false))
        && queued.iter().any(|id| queue.waits_on_jobs(id, true));
    if !dead {
        bail!(
            "jobs {} of the earlier submission are still queued or running: wait for them \
             (`datamill slurm status`) or scancel them, then submit again",
            queued.join(",")
        );
    }
    tracing::info!(
        "cancelling jobs {} of the earlier submission: they wait on a step that failed",
        queued.join(",")
    );
    let out = Command::new("scancel")
        .args(&queued)
        .output()
        .context("cannot run scancel")?;
    if !out.status.success() {
        bail!(
            "scancel {} failed: {}",
            queued.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let start = Instant::now();
    while queued.iter().any(|id| Queue::read().has_job(id)) {
        if start.elapsed() > Duration::from_secs(60) {
            bail!(
                "jobs {} are still queued a minute after scancel",
                queued.join(",")
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    Ok(())
}

/// Indices of an squeue task field: `4`, `[0-3]`, `0-3,7`, `[0-5%2]`.
fn task_indices(field: &str) -> Vec<usize> {
    let inner = field.trim_matches(|c| c == '[' || c == ']');
    let inner = inner.split('%').next().unwrap_or_default();
    let mut out = Vec::new();
    for part in inner.split(',') {
        match part.split_once('-') {
            Some((a, b)) => {
                if let (Ok(a), Ok(b)) = (a.parse::<usize>(), b.parse::<usize>()) {
                    out.extend(a..=b);
                }
            }
            None => out.extend(part.parse::<usize>().ok()),
        }
    }
    out
}

/// Where one array task stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TaskState {
    /// Its outputs are complete.
    Done,
    /// Running now.
    Running,
    /// Queued (for resources, or for the steps before it).
    Waiting,
    /// Queued behind a step that failed: it will never run.
    Blocked,
    /// Submitted, gone from the queue, outputs not complete; the log file if there is one.
    Failed(Option<PathBuf>),
    /// Never submitted.
    NotSubmitted,
}

/// The state of task `task` of `step`, from its outputs (`done`) and the queue.
pub fn task_state(
    done: bool,
    jobs: &[JobRecord],
    step: &str,
    task: usize,
    queue: &Queue,
) -> TaskState {
    if done {
        return TaskState::Done;
    }
    let Some(job) = latest_job(jobs, step, task).filter(|j| !j.job_id.is_empty()) else {
        return TaskState::NotSubmitted;
    };
    match queue.get(&job.job_id, task) {
        Some((_, reason)) if reason.contains("DependencyNeverSatisfied") => TaskState::Blocked,
        Some((state, _)) if state == "PENDING" => TaskState::Waiting,
        Some(_) => TaskState::Running,
        None => {
            let log = job.log_file(task);
            TaskState::Failed(log.exists().then_some(log))
        }
    }
}

/// One status line of a step: `done 3/5, running 1, failed 1 (task 4: LOG)`.
pub fn summary(states: &[TaskState]) -> String {
    let count = |f: &dyn Fn(&TaskState) -> bool| states.iter().filter(|s| f(s)).count();
    let done = count(&|s| *s == TaskState::Done);
    let mut parts = vec![format!("done {done}/{}", states.len())];
    for (label, n) in [
        ("running", count(&|s| *s == TaskState::Running)),
        ("waiting", count(&|s| *s == TaskState::Waiting)),
        (
            "waiting on a failed step (will not run)",
            count(&|s| *s == TaskState::Blocked),
        ),
        ("not submitted", count(&|s| *s == TaskState::NotSubmitted)),
    ] {
        if n > 0 {
            parts.push(format!("{label} {n}"));
        }
    }
    let failed: Vec<String> = states
        .iter()
        .enumerate()
        .filter_map(|(task, s)| match s {
            TaskState::Failed(Some(log)) => Some(format!("task {task}: {}", log.display())),
            TaskState::Failed(None) => Some(format!("task {task}: cancelled before it started")),
            _ => None,
        })
        .collect();
    if !failed.is_empty() {
        parts.push(format!("failed {} ({})", failed.len(), failed.join("; ")));
    }
    parts.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(step: &str, id: &str, array: &[usize]) -> JobRecord {
        JobRecord {
            step: step.into(),
            name: format!("datamill-x-{step}"),
            job_id: id.into(),
            array: array.to_vec(),
            world: 4,
            script: PathBuf::from("s.sbatch"),
            log_dir: PathBuf::from("/nonexistent/logs"),
        }
    }

    #[test]
    fn squeue_lines_give_each_task_its_state() {
        let q = Queue::parse(
            "12|0|RUNNING|None\n12|[1-2]|PENDING|Resources\n13|0|PENDING|DependencyNeverSatisfied\n",
        );
        let jobs = [job("a", "12", &[0, 1, 2, 3]), job("b", "13", &[0])];
        let states: Vec<TaskState> = (0..4)
            .map(|t| task_state(t == 3, &jobs, "a", t, &q))
            .collect();
        assert_eq!(
            states,
            [
                TaskState::Running,
                TaskState::Waiting,
                TaskState::Waiting,
                TaskState::Done
            ]
        );
        assert_eq!(task_state(false, &jobs, "b", 0, &q), TaskState::Blocked);
        assert_eq!(
            task_state(false, &jobs, "c", 0, &q),
            TaskState::NotSubmitted
        );
        // Gone from the queue without its outputs: failed (no log: cancelled while queued).
        let gone = Queue::parse("");
        assert_eq!(
            task_state(false, &jobs, "a", 1, &gone),
            TaskState::Failed(None)
        );
        assert_eq!(summary(&states), "done 1/4, running 1, waiting 2");
        assert_eq!(
            summary(&[
                TaskState::Done,
                TaskState::Failed(Some(PathBuf::from("l.out")))
            ]),
            "done 1/2, failed 1 (task 1: l.out)"
        );
    }

    #[test]
    fn the_latest_job_of_a_task_decides() {
        let jobs = [job("a", "12", &[0, 1]), job("a", "15", &[1])];
        let q = Queue::parse("15|1|RUNNING|None\n");
        assert_eq!(task_state(false, &jobs, "a", 1, &q), TaskState::Running);
        assert_eq!(
            task_state(false, &jobs, "a", 0, &q),
            TaskState::Failed(None)
        );
        assert_eq!(task_indices("[0-2,5%2]"), [0, 1, 2, 5]);
    }

    #[test]
    fn a_chain_behind_a_failed_step_is_told_from_a_live_one() {
        let q = Queue::parse(
            "20|[0-1]|PENDING|DependencyNeverSatisfied\n21|0|PENDING|Dependency\n\
             22|0|RUNNING|None\n23|0|PENDING|Resources\n",
        );
        assert!(q.waits_on_jobs("20", true) && q.waits_on_jobs("20", false));
        assert!(q.waits_on_jobs("21", false) && !q.waits_on_jobs("21", true));
        assert!(!q.waits_on_jobs("22", false) && !q.waits_on_jobs("23", false));
        assert!(!q.waits_on_jobs("24", false), "not queued");
    }
}
