//! The progress display: an indicatif bar on a terminal once the copy is big
//! enough (or with `--progress`), a human-readable line at most once a
//! second with `--progress` when stderr is not a terminal, and nothing
//! otherwise.
//!
//! Two sources feed it. The engine's byte observer ([`cow_copy::Moved`])
//! counts bytes as they are moved, inside a file too: kernel-copy and
//! read/write chunks as copied, a clone's whole length at once as cloned.
//! The tree walk's observer counts files and the bytes of the tree found so
//! far. The copy's workers only add to atomics; a separate thread draws
//! (at most 10 times a second), so a slow terminal never slows the copy.

use std::io::IsTerminal;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use cow_copy::tree::ProgressFn;
use cow_copy::{Moved, MovedFn};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::output::human;

/// Show the bar on a terminal once this many files were found...
const FILES_THRESHOLD: u64 = 1000;
/// ...or this many bytes.
const BYTES_THRESHOLD: u64 = 64 << 20;
/// How often the drawing thread looks (the bar is redrawn at most this
/// often: 10 times a second).
const TICK: Duration = Duration::from_millis(100);
/// How often a line is printed when stderr is not a terminal.
const LINE_EVERY: Duration = Duration::from_secs(1);

/// Files and bytes of one tree walk (its snapshots only grow).
#[derive(Default)]
struct Walk {
    files_done: AtomicU64,
    files_total: AtomicU64,
    bytes_done: AtomicU64,
    bytes_total: AtomicU64,
}

impl Walk {
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
    current: Walk,
    /// Trees and single files already finished.
    finished: Walk,
    /// Bytes the engine reported as cloned / copied so far.
    cloned: AtomicU64,
    copied: AtomicU64,
    stop: AtomicBool,
}

/// What the display shows at one moment.
#[derive(Clone, Copy, Debug, Default)]
struct Snapshot {
    files_done: u64,
    files_total: u64,
    /// Bytes handled: moved by the engine, or (for files left alone or
    /// hard-linked) counted by the walk when the file was done.
    bytes_done: u64,
    bytes_total: u64,
    cloned: u64,
    copied: u64,
}

impl Shared {
    fn snapshot(&self) -> Snapshot {
        let a = self.current.load();
        let b = self.finished.load();
        let cloned = self.cloned.load(Ordering::Relaxed);
        let copied = self.copied.load(Ordering::Relaxed);
        let walked = a[2] + b[2];
        let bytes_total = a[3] + b[3];
        Snapshot {
            files_done: a[0] + b[0],
            files_total: a[1] + b[1],
            bytes_done: walked.max(cloned + copied).min(bytes_total.max(walked)),
            bytes_total,
            cloned,
            copied,
        }
    }
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
            current: Walk::default(),
            finished: Walk::default(),
            cloned: AtomicU64::new(0),
            copied: AtomicU64::new(0),
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

    /// The tree walk's observer (`None` when nothing is shown: the walk
    /// then skips work it only does for progress).
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

    /// The engine's byte observer (`None` when nothing is shown).
    pub(crate) fn byte_observer(&self) -> Option<MovedFn> {
        let s = self.shared.clone()?;
        Some(Arc::new(move |m| match m {
            Moved::Cloned(n) => {
                s.cloned.fetch_add(n, Ordering::Relaxed);
            }
            Moved::Copied(n) => {
                s.copied.fetch_add(n, Ordering::Relaxed);
            }
            _ => {}
        }))
    }

    /// The single command-line file `src` is about to be copied.
    pub(crate) fn file_started(&self, src: &std::path::Path) {
        if let Some(s) = &self.shared {
            let len = std::fs::metadata(src).map_or(0, |m| m.len());
            s.current.files_total.fetch_add(1, Ordering::Relaxed);
            s.current.bytes_total.fetch_add(len, Ordering::Relaxed);
        }
    }

    /// One SOURCE is finished (a single file counts as done with all its
    /// bytes, even when it was left alone).
    pub(crate) fn source_done(&self) {
        if let Some(s) = &self.shared {
            let mut v = s.current.take();
            if v[0] < v[1] {
                // A single file (the walk reports its own files as done).
                v[0] = v[1];
                v[2] = v[3];
            }
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

/// `n` files / bytes as a short human phrase.
fn line(s: &Snapshot, elapsed: Duration) -> String {
    let pct = s
        .bytes_done
        .saturating_mul(100)
        .checked_div(s.bytes_total)
        .map(|p| format!(" ({p}%)"))
        .unwrap_or_default();
    let secs = elapsed.as_secs_f64();
    let rate = if secs > 0.0 {
        format!(", {}/s copied", human((s.copied as f64 / secs) as u64))
    } else {
        String::new()
    };
    let cloned = if s.cloned > 0 {
        format!(", {} cloned", human(s.cloned))
    } else {
        String::new()
    };
    format!(
        "cow cp: {} of {}{pct}, {}/{} files{rate}{cloned}",
        human(s.bytes_done),
        human(s.bytes_total),
        s.files_done,
        s.files_total
    )
}

fn draw(s: &Shared, forced: bool, terminal: bool) {
    let started = Instant::now();
    let mut bar: Option<ProgressBar> = None;
    let mut last_line = Instant::now();
    while !s.stop.load(Ordering::Relaxed) {
        std::thread::sleep(TICK);
        let now = s.snapshot();
        if terminal {
            if bar.is_none()
                && (forced
                    || now.files_total >= FILES_THRESHOLD
                    || now.bytes_total >= BYTES_THRESHOLD)
            {
                let b = ProgressBar::with_draw_target(
                    Some(now.bytes_total),
                    ProgressDrawTarget::stderr_with_hz(10),
                );
                if let Ok(style) = ProgressStyle::with_template(
                    "{wide_bar} {bytes}/{total_bytes} {msg} {binary_bytes_per_sec} eta {eta}",
                ) {
                    b.set_style(style);
                }
                bar = Some(b);
            }
            if let Some(b) = &bar {
                b.set_length(now.bytes_total.max(now.bytes_done));
                b.set_position(now.bytes_done);
                b.set_message(format!("{}/{} files", now.files_done, now.files_total));
            }
        } else if forced && last_line.elapsed() >= LINE_EVERY {
            last_line = Instant::now();
            eprintln!("{}", line(&now, started.elapsed()));
        }
    }
    if let Some(b) = bar {
        b.finish_and_clear();
    } else if forced && !terminal {
        eprintln!("{}", line(&s.snapshot(), started.elapsed()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_human_readable() {
        let s = Snapshot {
            files_done: 1,
            files_total: 4,
            bytes_done: 512 << 20,
            bytes_total: 1 << 30,
            cloned: 0,
            copied: 512 << 20,
        };
        assert_eq!(
            line(&s, Duration::from_secs(2)),
            "cow cp: 512.0 MiB of 1.0 GiB (50%), 1/4 files, 256.0 MiB/s copied"
        );
    }
}
