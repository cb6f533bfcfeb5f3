//! The progress display: an indicatif bar on a terminal once the copy is big
//! enough (or with `--progress`), a line per second with `--progress` when
//! stderr is not a terminal, and nothing otherwise.
//!
//! The copy's workers only store numbers into atomics; a separate thread
//! draws, so a slow terminal never slows the copy.

use std::io::IsTerminal;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use cow_copy::tree::ProgressFn;
use indicatif::{ProgressBar, ProgressStyle};

/// Show the bar on a terminal once this many files were found...
const FILES_THRESHOLD: u64 = 1000;
/// ...or this many bytes.
const BYTES_THRESHOLD: u64 = 64 << 20;

#[derive(Default)]
struct Counts {
    files_done: AtomicU64,
    files_total: AtomicU64,
    bytes_done: AtomicU64,
    bytes_total: AtomicU64,
}

impl Counts {
    fn load(&self) -> [u64; 4] {
        [
            self.files_done.load(Ordering::Relaxed),
            self.files_total.load(Ordering::Relaxed),
            self.bytes_done.load(Ordering::Relaxed),
            self.bytes_total.load(Ordering::Relaxed),
        ]
    }

    fn take(&self) -> [u64; 4] {
        [
            self.files_done.swap(0, Ordering::Relaxed),
            self.files_total.swap(0, Ordering::Relaxed),
            self.bytes_done.swap(0, Ordering::Relaxed),
            self.bytes_total.swap(0, Ordering::Relaxed),
        ]
    }

    fn add(&self, v: [u64; 4]) {
        self.files_done.fetch_add(v[0], Ordering::Relaxed);
        self.files_total.fetch_add(v[1], Ordering::Relaxed);
        self.bytes_done.fetch_add(v[2], Ordering::Relaxed);
        self.bytes_total.fetch_add(v[3], Ordering::Relaxed);
    }
}

struct Shared {
    /// The tree being copied now.
    current: Counts,
    /// Trees already finished.
    finished: Counts,
    stop: AtomicBool,
}

/// The progress display of one `cow cp` run.
pub(crate) struct Progress {
    shared: Option<Arc<Shared>>,
    drawer: Option<JoinHandle<()>>,
}

impl Progress {
    /// Starts the drawing thread when progress may be shown.
    pub(crate) fn start(forced: bool, json: bool) -> Progress {
        let terminal = std::io::stderr().is_terminal();
        if !forced && (json || !terminal) {
            return Progress {
                shared: None,
                drawer: None,
            };
        }
        let shared = Arc::new(Shared {
            current: Counts::default(),
            finished: Counts::default(),
            stop: AtomicBool::new(false),
        });
        let s = shared.clone();
        let drawer = std::thread::Builder::new()
            .name("cow-progress".into())
            .spawn(move || draw(&s, forced, terminal))
            .ok();
        Progress {
            shared: Some(shared),
            drawer,
        }
    }

    /// The observer to hand to the tree copy (`None` when nothing is shown:
    /// the walk then skips work it only does for progress).
    pub(crate) fn observer(&self) -> Option<ProgressFn> {
        let s = self.shared.clone()?;
        Some(Arc::new(move |p| {
            // Snapshots from different workers may arrive out of order:
            // keep the largest.
            let c = &s.current;
            c.files_done.fetch_max(p.files_done, Ordering::Relaxed);
            c.files_total.fetch_max(p.files_total, Ordering::Relaxed);
            c.bytes_done.fetch_max(p.bytes_done, Ordering::Relaxed);
            c.bytes_total.fetch_max(p.bytes_total, Ordering::Relaxed);
        }))
    }

    /// One SOURCE is finished.
    pub(crate) fn source_done(&self) {
        if let Some(s) = &self.shared {
            let v = s.current.take();
            s.finished.add(v);
        }
    }

    /// Stops and removes the display.
    pub(crate) fn finish(self) {
        if let Some(s) = &self.shared {
            s.stop.store(true, Ordering::Relaxed);
        }
        if let Some(h) = self.drawer {
            let _ = h.join();
        }
    }
}

fn totals(s: &Shared) -> [u64; 4] {
    let a = s.current.load();
    let b = s.finished.load();
    [a[0] + b[0], a[1] + b[1], a[2] + b[2], a[3] + b[3]]
}

fn draw(s: &Shared, forced: bool, terminal: bool) {
    let tick = Duration::from_millis(100);
    let mut bar: Option<ProgressBar> = None;
    let mut last_line = Instant::now();
    while !s.stop.load(Ordering::Relaxed) {
        std::thread::sleep(tick);
        let [files_done, files_total, bytes_done, bytes_total] = totals(s);
        if terminal {
            if bar.is_none()
                && (forced || files_total >= FILES_THRESHOLD || bytes_total >= BYTES_THRESHOLD)
            {
                let b = ProgressBar::new(bytes_total);
                if let Ok(style) = ProgressStyle::with_template(
                    "{wide_bar} {bytes}/{total_bytes} {msg} {binary_bytes_per_sec} eta {eta}",
                ) {
                    b.set_style(style);
                }
                bar = Some(b);
            }
            if let Some(b) = &bar {
                b.set_length(bytes_total.max(bytes_done));
                b.set_position(bytes_done);
                b.set_message(format!("{files_done}/{files_total} files"));
            }
        } else if forced && last_line.elapsed() >= Duration::from_secs(1) {
            last_line = Instant::now();
            eprintln!("cow cp: {files_done}/{files_total} files, {bytes_done}/{bytes_total} bytes");
        }
    }
    if let Some(b) = bar {
        b.finish_and_clear();
    } else if forced && !terminal {
        let [files_done, files_total, bytes_done, bytes_total] = totals(s);
        eprintln!("cow cp: {files_done}/{files_total} files, {bytes_done}/{bytes_total} bytes");
    }
}
