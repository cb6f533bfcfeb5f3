//! Writing to stdout and stderr without ever panicking.
//!
//! std's `println!` panics when stdout is a closed pipe (`cow cp -v | head
//! -1`) or a full disk. Here a failed write is dropped instead, and once a
//! stream has failed nothing more is tried on it: the copy itself goes on to
//! its end (a reader going away is no reason to leave half a tree behind),
//! and its own outcome decides the exit status. Nothing is printed about
//! the lost output: the stream it would go to may be the broken one, and
//! GNU tools end quietly on a closed pipe too.
//!
//! The crate's `println!`/`eprintln!` macros (in `main.rs`) call these.

use std::fmt;
use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, Ordering};

static STDOUT_BROKEN: AtomicBool = AtomicBool::new(false);
static STDERR_BROKEN: AtomicBool = AtomicBool::new(false);

fn line(mut w: impl Write, broken: &AtomicBool, args: fmt::Arguments<'_>) {
    if broken.load(Ordering::Relaxed) {
        return;
    }
    if writeln!(w, "{args}").and_then(|()| w.flush()).is_err() {
        broken.store(true, Ordering::Relaxed);
    }
}

/// Writes one line to stdout; errors are dropped.
pub(crate) fn stdout(args: fmt::Arguments<'_>) {
    line(io::stdout().lock(), &STDOUT_BROKEN, args);
}

/// Writes one line to stderr; errors are dropped.
pub(crate) fn stderr(args: fmt::Arguments<'_>) {
    line(io::stderr().lock(), &STDERR_BROKEN, args);
}

/// Writes `bytes` to stdout as they are (`--generate`): OK, or FAILED when
/// stdout would not take them.
pub(crate) fn bytes(bytes: &[u8]) -> u8 {
    let mut w = io::stdout().lock();
    match w.write_all(bytes).and_then(|()| w.flush()) {
        Ok(()) => crate::exit::OK,
        Err(_) => crate::exit::FAILED,
    }
}
