//! Byte progress inside a file: the strategies tell an observer how many
//! bytes they moved as they move them, so a progress display can follow a
//! single large file instead of waiting for it to finish.

use std::fmt;
use std::sync::Arc;

/// Bytes one step of a copy just moved.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Moved {
    /// Bytes now shared with the source (a clone counts its whole length at
    /// once).
    Cloned(u64),
    /// Bytes written (a kernel-copy or read/write chunk).
    Copied(u64),
}

/// The observer's signature: called from the copying thread (tree workers
/// call it concurrently), so it must be cheap.
pub type MovedFn = Arc<dyn Fn(Moved) + Send + Sync>;

/// The optional observer inside [`CopyOptions`](crate::CopyOptions). It
/// never changes what is copied, so two options that differ only in their
/// observer compare equal and hash alike.
#[derive(Clone, Default)]
pub(crate) struct Observer(pub(crate) Option<MovedFn>);

// Only the Unix strategies report bytes so far.
#[cfg_attr(not(unix), allow(dead_code))]
impl Observer {
    /// Tells the observer, if there is one.
    pub(crate) fn moved(&self, m: Moved) {
        if let Some(f) = &self.0 {
            f(m);
        }
    }

    /// Whether someone listens (the kernel copy then uses smaller calls).
    pub(crate) fn is_set(&self) -> bool {
        self.0.is_some()
    }
}

impl fmt::Debug for Observer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_some() {
            "Some(observer)"
        } else {
            "None"
        })
    }
}

impl PartialEq for Observer {
    fn eq(&self, _: &Observer) -> bool {
        true
    }
}

impl Eq for Observer {}

impl std::hash::Hash for Observer {
    fn hash<H: std::hash::Hasher>(&self, _: &mut H) {}
}
