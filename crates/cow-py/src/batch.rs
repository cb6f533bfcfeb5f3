//! `Batch`: the regular files of a `copytree`, copied on the worker pool
//! while the Python walk goes on listing directories.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use cow_copy::{CopyError, CopyOptions};
use pyo3::prelude::*;
use rayon::prelude::*;

use crate::compat::{Kind, Outcome, copy_one, outcome_value};
use crate::errors::Names;
use crate::paths::path_of;
use crate::run;

type Slot = Option<(PathBuf, PathBuf, Outcome)>;

#[derive(Default)]
struct State {
    /// Set by `cancel` or Ctrl-C: stops the files not started and, inside
    /// its current chunk, each file being copied.
    cancel: Arc<AtomicBool>,
    /// One slot per file added, filled when it is done.
    slots: Mutex<Vec<Slot>>,
    /// Chunks added and not finished.
    pending: Mutex<usize>,
    idle: Condvar,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Files copied in the background as `copy_compat` with `kind` would copy
/// them: `add` starts a chunk and returns at once, `wait` returns one value
/// per file (`None`, `False` for "hand it to shutil", or the exception), in
/// the order they were added. `fresh=True` says no destination exists yet
/// (the walk created every destination directory itself). A Ctrl-C in
/// `wait` (or `cancel`) stops the files not yet started and the ones in
/// flight at their next chunk: a file the batch created is removed, an
/// existing destination rewritten in place is left cut short (as shutil
/// leaves it when interrupted).
#[pyclass(module = "cow_copy._native")]
pub(crate) struct Batch {
    kind: Kind,
    fresh: bool,
    opts: Arc<CopyOptions>,
    state: Arc<State>,
}

#[pymethods]
impl Batch {
    #[new]
    #[pyo3(signature = (kind, fresh=false))]
    fn new(kind: u8, fresh: bool) -> PyResult<Self> {
        let kind = Kind::parse(kind)?;
        let state = Arc::new(State::default());
        Ok(Batch {
            kind,
            // Only copy and copy2 may skip the look: copyfile creates the
            // file itself.
            fresh: fresh && kind != Kind::CopyFile,
            opts: Arc::new(kind.options().cancel(state.cancel.clone())),
            state,
        })
    }

    /// Starts copying `srcs[i]` to `dsts[i]` on the worker pool.
    fn add(&self, srcs: Vec<Bound<'_, PyAny>>, dsts: Vec<Bound<'_, PyAny>>) -> PyResult<()> {
        if srcs.len() != dsts.len() {
            return Err(pyo3::exceptions::PyValueError::new_err(
                "Batch.add: srcs and dsts differ in length",
            ));
        }
        let pairs: Vec<(PathBuf, PathBuf)> = srcs
            .iter()
            .zip(&dsts)
            .map(|(s, d)| Ok((path_of(s)?, path_of(d)?)))
            .collect::<PyResult<_>>()?;
        let base = {
            let mut slots = lock(&self.state.slots);
            let base = slots.len();
            slots.resize_with(base + pairs.len(), || None);
            base
        };
        *lock(&self.state.pending) += 1;
        let (state, opts, kind, fresh) =
            (self.state.clone(), self.opts.clone(), self.kind, self.fresh);
        run::pool().spawn(move || {
            let done: Vec<Slot> = groups(pairs)
                .into_par_iter()
                .flat_map_iter(|group| copy_group(&state, &opts, kind, fresh, group))
                .collect();
            {
                let mut slots = lock(&state.slots);
                for (i, slot) in done.into_iter().enumerate() {
                    slots[base + i] = slot;
                }
            }
            let mut pending = lock(&state.pending);
            *pending -= 1;
            if *pending == 0 {
                state.idle.notify_all();
            }
        });
        Ok(())
    }

    /// Stops the files not started yet and those being copied.
    fn cancel(&self) {
        self.state.cancel.store(true, Ordering::Relaxed);
    }

    /// Waits for every file added; `srcs` and `dsts` are the objects given
    /// to `add` (all of them, in order), used as the errors' filenames.
    fn wait<'py>(
        &self,
        py: Python<'py>,
        srcs: Vec<Bound<'py, PyAny>>,
        dsts: Vec<Bound<'py, PyAny>>,
    ) -> PyResult<Vec<Option<Bound<'py, PyAny>>>> {
        let state = &self.state;
        run::interruptible(
            py,
            &state.cancel,
            || {
                let mut pending = lock(&state.pending);
                while *pending > 0 {
                    pending = state.idle.wait(pending).unwrap_or_else(|e| e.into_inner());
                }
            },
            |_| Ok(()),
        )?;
        let slots = std::mem::take(&mut *lock(&state.slots));
        slots
            .into_iter()
            .zip(srcs.iter().zip(&dsts))
            .map(|(slot, (s, d))| match slot {
                Some((sp, dp, o)) => {
                    let names = Names {
                        src: s,
                        dst: d,
                        src_path: &sp,
                        dst_path: &dp,
                    };
                    outcome_value(py, o, &names)
                }
                None => outcome_value(
                    py,
                    Outcome::NotRun,
                    &Names {
                        src: s,
                        dst: d,
                        src_path: &PathBuf::new(),
                        dst_path: &PathBuf::new(),
                    },
                ),
            })
            .collect()
    }
}

/// Consecutive pairs whose sources share a directory and whose
/// destinations share one (the walk adds a directory's files together).
fn groups(pairs: Vec<(PathBuf, PathBuf)>) -> Vec<Vec<(PathBuf, PathBuf)>> {
    let mut out: Vec<Vec<(PathBuf, PathBuf)>> = Vec::new();
    for pair in pairs {
        let same = out
            .last()
            .and_then(|g| g.last())
            .is_some_and(|(s, d)| s.parent() == pair.0.parent() && d.parent() == pair.1.parent());
        match out.last_mut() {
            Some(g) if same => g.push(pair),
            _ => out.push(vec![pair]),
        }
    }
    out
}

/// Copies one group of files. Into fresh destinations (Unix) each file is
/// first copied relative to its two directories, opened once for the group
/// (no opening of the destination's parent and no path lookups per file);
/// a file that fails that way is copied again by paths, so that its error
/// names the full paths as shutil's would.
fn copy_group(
    state: &State,
    opts: &CopyOptions,
    kind: Kind,
    fresh: bool,
    group: Vec<(PathBuf, PathBuf)>,
) -> Vec<Slot> {
    #[cfg(unix)]
    let dirs = if fresh { open_dirs(&group[0]) } else { None };
    group
        .into_iter()
        .map(|(s, d)| {
            if state.cancel.load(Ordering::Relaxed) {
                return Some((s, d, Outcome::NotRun));
            }
            #[cfg(unix)]
            if let Some((sd, dd)) = &dirs {
                use std::os::fd::AsFd;
                let at =
                    guarded(
                        || {
                            let (sn, dn) = (s.file_name(), d.file_name());
                            match (sn, dn) {
                                (Some(sn), Some(dn)) => crate::compat::engine_outcome(
                                    opts.copy_at(sd.as_fd(), sn.as_ref(), dd.as_fd(), dn.as_ref()),
                                ),
                                _ => Outcome::NotRun,
                            }
                        },
                        &d,
                    );
                if matches!(at, Outcome::Done) {
                    return Some((s, d, at));
                }
            }
            let o = guarded(|| copy_one(kind, opts, &s, &d, fresh), &d);
            Some((s, d, o))
        })
        .collect()
}

/// The directories of a pair, or `None` to copy by paths.
#[cfg(unix)]
fn open_dirs((s, d): &(PathBuf, PathBuf)) -> Option<(std::os::fd::OwnedFd, std::os::fd::OwnedFd)> {
    use rustix::fs::{Mode, OFlags};
    let open = |p: &std::path::Path| {
        let dir = p.parent().filter(|d| !d.as_os_str().is_empty())?;
        rustix::fs::open(
            dir,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .ok()
    };
    Some((open(s)?, open(d)?))
}

/// Runs one copy; a panic becomes that file's error instead of ending the
/// process (a panic in a pool task would abort it).
fn guarded(copy: impl FnOnce() -> Outcome, dst: &std::path::Path) -> Outcome {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(copy)).unwrap_or_else(|_| {
        Outcome::Failed(CopyError::Io {
            op: "copy (internal error: the copy panicked)",
            path: dst.to_path_buf(),
            source: std::io::Error::other("panic"),
        })
    })
}
