//! Long copies with the GIL released, stoppable by Ctrl-C.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use cow_copy::CopyOptions;
use pyo3::prelude::*;

/// How often a waiting caller looks for signals and reports progress.
const TICK: Duration = Duration::from_millis(50);

/// Files at least this long are copied on another thread, with a cancel
/// flag, so that Ctrl-C stops them half-way; shorter ones are copied on the
/// calling thread (a thread costs more than copying them, and they are done
/// long before a person notices).
const INTERRUPTIBLE_LEN: u64 = 8 << 20;

/// The worker pool of batch copies: one thread per available CPU.
pub(crate) fn pool() -> &'static rayon::ThreadPool {
    static POOL: OnceLock<rayon::ThreadPool> = OnceLock::new();
    POOL.get_or_init(|| {
        rayon::ThreadPoolBuilder::new()
            .thread_name(|i| format!("cow-py-{i}"))
            .build()
            .unwrap_or_else(|_| {
                rayon::ThreadPoolBuilder::new()
                    .num_threads(1)
                    .build()
                    .expect("a one-thread pool")
            })
    })
}

/// Runs `work` on another thread while this one waits with the GIL
/// released. Every [`TICK`] it takes the GIL to run pending signal handlers
/// (Ctrl-C raises `KeyboardInterrupt` there) and `tick` (progress
/// callbacks). When either raises, `cancel` is set, the work is waited for
/// (it stops at its next file or chunk; temporaries are removed by then)
/// and the exception is returned. Work whose options carry `cancel`
/// ([`CopyOptions::cancel`]) stops inside the file it is copying too.
pub(crate) fn interruptible<T: Send>(
    py: Python<'_>,
    cancel: &AtomicBool,
    work: impl FnOnce() -> T + Send,
    mut tick: impl FnMut(Python<'_>) -> PyResult<()> + Send,
) -> PyResult<T> {
    let main = std::thread::current();
    let done = AtomicBool::new(false);
    let (out, err) = py.detach(|| {
        std::thread::scope(|s| {
            let handle = s.spawn(|| {
                let _done = Done(&done, &main);
                work()
            });
            let mut err: Option<PyErr> = None;
            // Not `handle.is_finished()`: the thread is woken before it has
            // ended, and would then sleep a whole tick more.
            while !done.load(Ordering::Acquire) {
                std::thread::park_timeout(TICK);
                if err.is_none() && !done.load(Ordering::Acquire) {
                    if let Err(e) = Python::attach(|py| {
                        py.check_signals()?;
                        tick(py)
                    }) {
                        cancel.store(true, Ordering::Relaxed);
                        err = Some(e);
                    }
                }
            }
            match handle.join() {
                Ok(out) => (out, err),
                Err(panic) => std::panic::resume_unwind(panic),
            }
        })
    });
    match err {
        Some(e) => Err(e),
        None => Ok(out),
    }
}

/// Says, when the work ends (returns or panics), that it has ended, and
/// wakes the waiting thread.
struct Done<'a>(&'a AtomicBool, &'a std::thread::Thread);

impl Drop for Done<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Release);
        self.1.unpark();
    }
}

/// Runs one file copy `work` with the GIL released. When `src` is large,
/// `opts` gets a cancel flag and the copy runs through [`interruptible`]:
/// Ctrl-C then stops it at its next chunk (the engine removes a temporary
/// or a destination it created) and raises `KeyboardInterrupt`.
pub(crate) fn copy_file<T: Send>(
    py: Python<'_>,
    src: &Path,
    opts: CopyOptions,
    work: impl FnOnce(&CopyOptions) -> T + Send,
) -> PyResult<T> {
    // One release of the GIL for a small file: the look at its length and
    // the copy. A large one comes back as `Err(work)`, to run below.
    let first = py.detach(|| {
        if std::fs::metadata(src).map_or(true, |m| m.len() < INTERRUPTIBLE_LEN) {
            Ok(work(&opts))
        } else {
            Err(work)
        }
    });
    let work = match first {
        Ok(out) => return Ok(out),
        Err(work) => work,
    };
    let cancel = Arc::new(AtomicBool::new(false));
    let opts = opts.cancel(cancel.clone());
    interruptible(py, &cancel, || work(&opts), |_| Ok(()))
}
