//! Per-host scheduling with bounded memory for `download --urls`.
//!
//! Jobs wait in one queue per host (scheme, host and port); a worker takes the next job of a
//! host nobody is working on, so each host sees at most one connection at a time and hosts
//! take turns. At most `window` jobs are held (queued or in flight): the list reader waits
//! for room. A host already holding `per_host` queued jobs takes no more: [`HostQueue::admit`]
//! hands the job back, and the caller sets it aside on disk for a later pass, so one host
//! with millions of URLs neither fills the window nor stalls the other hosts.
//!
//! A host can be given a pause after each request ([`HostQueue::release`] with a delay: the
//! run's `--host-delay-ms` or the host's robots.txt `Crawl-delay`): until it has passed, the
//! host's jobs are not handed out, while the other hosts' are.
//!
//! The queue also caches each host's robots.txt verdict (a bounded number of hosts, oldest
//! dropped first).

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::robots::Robots;

/// One list line on its way: the URL being fetched now (after redirects so far).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    /// Line number in the list.
    pub line: u64,
    /// The URL as the list gave it.
    pub requested: String,
    /// The URL to fetch next.
    pub url: url::Url,
    /// Redirects followed so far.
    pub hops: u32,
    /// Failed requests so far (over all hops).
    pub failed_requests: u32,
}

/// The robots.txt of a host as fetched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostRobots {
    /// The rules.
    pub robots: Robots,
    /// Set when robots.txt could not be fetched (then everything is refused, for this run).
    pub unreachable: Option<String>,
}

/// The key jobs are queued under: scheme, host and port (`https://example.org:443`).
pub fn host_key(url: &url::Url) -> String {
    format!(
        "{}://{}:{}",
        url.scheme(),
        url.host_str().unwrap_or_default(),
        url.port_or_known_default().unwrap_or(0)
    )
}

/// What [`HostQueue::admit`] did with a job.
#[derive(Debug)]
pub enum Admitted {
    /// Queued under its host.
    Queued,
    /// Its host holds `per_host` queued jobs already: the job is handed back.
    HostFull(Job),
}

#[derive(Default)]
struct Slot {
    queue: VecDeque<Job>,
    busy: bool,
    /// Pausing after its last request: not handed out before this time.
    resting: bool,
}

struct State {
    hosts: HashMap<String, Slot>,
    /// Hosts not busy whose queue is not empty, in turn order.
    ready: VecDeque<String>,
    /// Hosts pausing after a request, by the time they may be asked again.
    resting: BinaryHeap<Reverse<(Instant, String)>>,
    /// Jobs admitted and not finished (queued or in flight).
    held: usize,
    closed: bool,
    robots: HashMap<String, Arc<HostRobots>>,
    robots_order: VecDeque<String>,
}

/// The scheduler; see the module documentation.
pub struct HostQueue {
    state: Mutex<State>,
    changed: Condvar,
    window: usize,
    per_host: usize,
    robots_hosts: usize,
}

impl HostQueue {
    /// A queue holding at most `window` jobs, `per_host` queued per host, and the robots.txt
    /// of `robots_hosts` hosts.
    pub fn new(window: usize, per_host: usize, robots_hosts: usize) -> Self {
        HostQueue {
            state: Mutex::new(State {
                hosts: HashMap::new(),
                ready: VecDeque::new(),
                resting: BinaryHeap::new(),
                held: 0,
                closed: false,
                robots: HashMap::new(),
                robots_order: VecDeque::new(),
            }),
            changed: Condvar::new(),
            window: window.max(1),
            per_host: per_host.max(1),
            robots_hosts: robots_hosts.max(1),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn wait<'a>(&self, g: MutexGuard<'a, State>) -> MutexGuard<'a, State> {
        self.changed.wait(g).unwrap_or_else(|e| e.into_inner())
    }

    /// Waits for room in the window, then queues `job`. A host that is full hands the job
    /// back, unless `wait_for_host`, when the call waits for room in that host's queue.
    pub fn admit(&self, job: Job, wait_for_host: bool) -> Admitted {
        let key = host_key(&job.url);
        let mut g = self.lock();
        loop {
            let host_len = g.hosts.get(&key).map_or(0, |s| s.queue.len());
            if host_len >= self.per_host && !wait_for_host {
                return Admitted::HostFull(job);
            }
            if g.held < self.window && host_len < self.per_host {
                break;
            }
            g = self.wait(g);
        }
        g.held += 1;
        push(&mut g, key, job, false);
        self.changed.notify_all();
        Admitted::Queued
    }

    /// Queues a job that is already held (a redirect to another host), first in its host's turn.
    pub fn requeue(&self, job: Job) {
        let key = host_key(&job.url);
        let mut g = self.lock();
        push(&mut g, key, job, true);
        self.changed.notify_all();
    }

    /// The next job of a host nobody works on (the host is then busy until
    /// [`HostQueue::release`]); `None` once closed and every job is finished.
    pub fn next(&self) -> Option<(String, Job)> {
        let mut g = self.lock();
        loop {
            let now = Instant::now();
            while g.resting.peek().is_some_and(|Reverse((t, _))| *t <= now) {
                let Some(Reverse((_, key))) = g.resting.pop() else {
                    break;
                };
                let (idle, has_jobs) = match g.hosts.get_mut(&key) {
                    Some(slot) => {
                        slot.resting = false;
                        (!slot.busy, !slot.queue.is_empty())
                    }
                    None => continue,
                };
                if idle && has_jobs {
                    g.ready.push_back(key);
                } else if idle {
                    g.hosts.remove(&key);
                }
            }
            if let Some(key) = g.ready.pop_front() {
                if let Some(slot) = g.hosts.get_mut(&key) {
                    if let Some(job) = slot.queue.pop_front() {
                        slot.busy = true;
                        self.changed.notify_all();
                        return Some((key, job));
                    }
                }
                continue;
            }
            if g.closed && g.held == 0 {
                return None;
            }
            g = match g.resting.peek() {
                Some(Reverse((t, _))) => {
                    let wait = t.saturating_duration_since(now);
                    self.changed
                        .wait_timeout(g, wait)
                        .map(|(g, _)| g)
                        .unwrap_or_else(|e| e.into_inner().0)
                }
                None => self.wait(g),
            };
        }
    }

    /// Ends the work on `host`; `finished` when the job reached its outcome (not when it was
    /// requeued under another host). The host's next job is handed out no sooner than `pause`
    /// from now.
    pub fn release(&self, host: &str, finished: bool, pause: Duration) {
        let mut g = self.lock();
        if finished {
            g.held = g.held.saturating_sub(1);
        }
        let (known, empty) = match g.hosts.get_mut(host) {
            Some(slot) => {
                slot.busy = false;
                slot.resting = !pause.is_zero();
                (true, slot.queue.is_empty())
            }
            None => (false, true),
        };
        if known && !pause.is_zero() {
            // Kept while it rests, so a job admitted meanwhile waits too.
            g.resting
                .push(Reverse((Instant::now() + pause, host.to_string())));
        } else if known && empty {
            g.hosts.remove(host);
        } else if known {
            g.ready.push_back(host.to_string());
        }
        self.changed.notify_all();
    }

    /// No more jobs will be admitted: workers stop once the held ones are finished.
    pub fn close(&self) {
        self.lock().closed = true;
        self.changed.notify_all();
    }

    /// The cached robots.txt verdict of `host`.
    pub fn robots(&self, host: &str) -> Option<Arc<HostRobots>> {
        self.lock().robots.get(host).cloned()
    }

    /// Caches the robots.txt verdict of `host`, dropping the oldest host when full.
    pub fn set_robots(&self, host: &str, robots: Arc<HostRobots>) {
        let mut g = self.lock();
        if g.robots.insert(host.to_string(), robots).is_none() {
            g.robots_order.push_back(host.to_string());
        }
        while g.robots_order.len() > self.robots_hosts {
            if let Some(old) = g.robots_order.pop_front() {
                g.robots.remove(&old);
            }
        }
    }

    /// Jobs held now (queued or in flight).
    pub fn held(&self) -> usize {
        self.lock().held
    }
}

/// Queues `job` under `key` (in front when `first`), marking the host ready if idle.
fn push(g: &mut State, key: String, job: Job, first: bool) {
    let slot = g.hosts.entry(key.clone()).or_default();
    let was_empty = slot.queue.is_empty();
    if first {
        slot.queue.push_front(job);
    } else {
        slot.queue.push_back(job);
    }
    if was_empty && !slot.busy && !slot.resting {
        g.ready.push_back(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(line: u64, url: &str) -> Job {
        Job {
            line,
            requested: url.into(),
            url: url::Url::parse(url).unwrap(),
            hops: 0,
            failed_requests: 0,
        }
    }

    #[test]
    fn hosts_take_turns_and_a_busy_host_gives_no_second_job() {
        let q = HostQueue::new(10, 2, 10);
        assert!(matches!(
            q.admit(job(1, "http://a.test/1"), false),
            Admitted::Queued
        ));
        assert!(matches!(
            q.admit(job(2, "http://a.test/2"), false),
            Admitted::Queued
        ));
        assert!(matches!(
            q.admit(job(3, "http://a.test/3"), false),
            Admitted::HostFull(_)
        ));
        assert!(matches!(
            q.admit(job(4, "http://b.test/4"), false),
            Admitted::Queued
        ));
        let (ha, ja) = q.next().unwrap();
        assert_eq!(ja.line, 1);
        let (hb, jb) = q.next().unwrap();
        assert_eq!(jb.line, 4);
        // a.test is busy: its second job waits until release.
        q.release(&hb, true, Duration::ZERO);
        q.release(&ha, true, Duration::ZERO);
        let (ha2, ja2) = q.next().unwrap();
        assert_eq!((ha2.as_str(), ja2.line), ("http://a.test:80", 2));
        q.release(&ha2, true, Duration::ZERO);
        q.close();
        assert!(q.next().is_none());
        assert_eq!(q.held(), 0);
    }

    #[test]
    fn robots_cache_is_bounded() {
        let q = HostQueue::new(1, 1, 2);
        for h in ["a", "b", "c"] {
            q.set_robots(
                h,
                Arc::new(HostRobots {
                    robots: Robots::allow_all(),
                    unreachable: None,
                }),
            );
        }
        assert!(q.robots("a").is_none());
        assert!(q.robots("b").is_some() && q.robots("c").is_some());
    }

    #[test]
    fn a_resting_host_waits_while_the_others_go_on() {
        let q = HostQueue::new(10, 4, 10);
        for (line, url) in [
            (1, "http://a.test/1"),
            (2, "http://a.test/2"),
            (3, "http://b.test/3"),
        ] {
            assert!(matches!(q.admit(job(line, url), false), Admitted::Queued));
        }
        let (ha, ja) = q.next().unwrap();
        assert_eq!(ja.line, 1);
        let released = Instant::now();
        q.release(&ha, true, Duration::from_millis(300));
        // b.test is handed out at once; a.test's second job only after its pause.
        let (hb, jb) = q.next().unwrap();
        assert_eq!(jb.line, 3);
        assert!(released.elapsed() < Duration::from_millis(300));
        q.release(&hb, true, Duration::ZERO);
        let (ha2, ja2) = q.next().unwrap();
        assert_eq!(ja2.line, 2);
        assert!(released.elapsed() >= Duration::from_millis(300));
        // A job admitted while its host rests waits for the pause too.
        q.release(&ha2, true, Duration::from_millis(200));
        let again = Instant::now();
        assert!(matches!(
            q.admit(job(4, "http://a.test/4"), false),
            Admitted::Queued
        ));
        let (ha3, ja3) = q.next().unwrap();
        assert_eq!(ja3.line, 4);
        assert!(again.elapsed() >= Duration::from_millis(150));
        q.release(&ha3, true, Duration::from_millis(50));
        q.close();
        assert!(q.next().is_none());
        assert_eq!(q.held(), 0);
    }
}
