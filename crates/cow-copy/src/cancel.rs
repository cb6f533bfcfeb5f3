//! Stopping a copy half-way through one file: a flag the caller sets from
//! another thread (a Ctrl-C handler, say), read by the copy loops between
//! chunks (kernel copy, read/write, the Windows temporary's writer). A clone
//! is one call and is not interrupted.
//!
//! A cancelled copy fails like any other failed copy, with an error of kind
//! [`io::ErrorKind::Interrupted`] naming the destination, and is cleaned up
//! the same way: an atomic copy removes its temporary (the destination is
//! untouched), a destination the copy created is removed, and an existing
//! destination written in place is left cut to the bytes copied so far
//! (docs/reliability.md).

use std::fmt;
use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::CopyOptions;
use crate::tree::TreeOptions;

/// The optional cancel flag inside [`CopyOptions`]. Like the observer it
/// does not change what is copied: two options that differ only in it
/// compare equal and hash alike.
#[derive(Clone, Default)]
pub(crate) struct Cancel(pub(crate) Option<Arc<AtomicBool>>);

// Only the Unix strategies and the Windows temporary's writer read it.
#[cfg_attr(not(any(unix, windows)), allow(dead_code))]
impl Cancel {
    /// Whether a flag was given (the kernel copy then uses calls short
    /// enough to notice it promptly).
    #[cfg_attr(not(unix), allow(dead_code))]
    pub(crate) fn is_set(&self) -> bool {
        self.0.is_some()
    }

    /// Fails with [`cancelled`] once the flag is set.
    pub(crate) fn check(&self) -> io::Result<()> {
        match &self.0 {
            Some(flag) if flag.load(Ordering::Relaxed) => Err(cancelled()),
            _ => Ok(()),
        }
    }
}

/// The error of a cancelled copy (wrapped by the caller with the path).
pub(crate) fn cancelled() -> io::Error {
    io::Error::new(io::ErrorKind::Interrupted, "the copy was cancelled")
}

impl CopyOptions {
    /// Sets a flag that stops the copy when set (from another thread, say a
    /// Ctrl-C handler), checked between chunks of the kernel and read/write
    /// copies: a large file stops within one chunk (16 MiB of kernel copy,
    /// 1 MiB of read/write). A clone is a single call and runs to its end.
    ///
    /// The copy then fails with an error of kind
    /// [`io::ErrorKind::Interrupted`] naming the destination. An atomic copy
    /// leaves no temporary and the destination untouched; a destination the
    /// copy created is removed; an existing destination written in place
    /// holds the first bytes only ([`CopyError::Incomplete`](crate::CopyError::Incomplete)),
    /// as after any failure. On Windows only atomic copies (written by this
    /// process) see the flag: `CopyFileExW` runs to its end.
    #[must_use]
    pub fn cancel(mut self, flag: Arc<AtomicBool>) -> Self {
        self.cancel = Cancel(Some(flag));
        self
    }
}

/// The options a tree copies each file with: its file options, with the
/// tree's cancel flag (when it has one) so that a cancelled tree also stops
/// the large file it is in the middle of.
pub(crate) fn file_options(opts: &TreeOptions) -> CopyOptions {
    match &opts.cancel {
        Some(flag) => opts.copy.clone().cancel(flag.clone()),
        None => opts.copy.clone(),
    }
}

impl fmt::Debug for Cancel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Some(flag) => write!(f, "Some(cancelled: {})", flag.load(Ordering::Relaxed)),
            None => f.write_str("None"),
        }
    }
}

impl PartialEq for Cancel {
    fn eq(&self, _: &Cancel) -> bool {
        true
    }
}

impl Eq for Cancel {}

impl std::hash::Hash for Cancel {
    fn hash<H: std::hash::Hasher>(&self, _: &mut H) {}
}
