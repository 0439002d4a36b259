//! Progress: an indicatif bar when stderr is a terminal, periodic log lines otherwise.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Shared counters of a run, updated by the workers and shown by a ticker thread.
pub struct Progress {
    counters: Arc<Counters>,
    ticker: Mutex<Option<JoinHandle<()>>>,
}

#[derive(Default)]
struct Counters {
    files_done: AtomicU64,
    docs: AtomicU64,
    bytes: AtomicU64,
    stop: AtomicBool,
}

/// How often plain log lines are printed when stderr is not a terminal.
const LOG_EVERY: Duration = Duration::from_secs(10);

impl Progress {
    /// Starts showing progress over `total` file steps, `already` of them done (if `enabled`).
    pub fn start(enabled: bool, total: usize, already: usize) -> Progress {
        let counters = Arc::new(Counters::default());
        counters.files_done.store(already as u64, Ordering::Relaxed);
        let ticker = enabled.then(|| {
            let c = counters.clone();
            std::thread::spawn(move || tick(&c, total as u64))
        });
        Progress {
            counters,
            ticker: Mutex::new(ticker),
        }
    }

    /// One file finished a segment.
    pub fn file_done(&self) {
        self.counters.files_done.fetch_add(1, Ordering::Relaxed);
    }

    /// One document of `bytes` text bytes was read.
    pub fn add_doc(&self, bytes: u64) {
        self.counters.docs.fetch_add(1, Ordering::Relaxed);
        self.counters.bytes.fetch_add(bytes, Ordering::Relaxed);
    }

    /// Stops the ticker.
    pub fn finish(&self) {
        self.counters.stop.store(true, Ordering::Relaxed);
        if let Ok(mut t) = self.ticker.lock() {
            if let Some(h) = t.take() {
                let _ = h.join();
            }
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.finish();
    }
}

fn tick(c: &Counters, total: u64) {
    let start = Instant::now();
    let bar = std::io::stderr().is_terminal().then(|| {
        let bar = indicatif::ProgressBar::new(total);
        if let Ok(style) = indicatif::ProgressStyle::with_template(
            "{elapsed_precise} [{bar:30}] {pos}/{len} files {msg}",
        ) {
            bar.set_style(style.progress_chars("=> "));
        }
        bar
    });
    let mut last_log = Instant::now();
    while !c.stop.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(200));
        let secs = start.elapsed().as_secs_f64().max(1e-9);
        let files = c.files_done.load(Ordering::Relaxed);
        let docs = c.docs.load(Ordering::Relaxed);
        let mb = c.bytes.load(Ordering::Relaxed) as f64 / 1e6;
        let msg = format!("{:.0} docs/s {:.2} MB/s", docs as f64 / secs, mb / secs);
        match &bar {
            Some(b) => {
                b.set_position(files);
                b.set_message(msg);
            }
            None if last_log.elapsed() >= LOG_EVERY => {
                tracing::info!("{files}/{total} files, {docs} docs, {msg}");
                last_log = Instant::now();
            }
            None => {}
        }
    }
    if let Some(b) = bar {
        b.finish_and_clear();
    }
}
