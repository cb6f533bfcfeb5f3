//! The one entry of a file copy: [`CopyOptions::copy`](crate::CopyOptions::copy)
//! calls [`copy_paths`] here. Unix runs the descriptor engine
//! (`engine/unix.rs`: guard, chain, metadata, atomic rename), Windows the
//! path engine (`engine/windows.rs`).

#[cfg(unix)]
mod unix;
#[cfg(windows)]
mod windows;

#[cfg(unix)]
pub(crate) use unix::{Copied, Hints, copy_at, copy_at_hinted, copy_paths};
#[cfg(windows)]
pub(crate) use windows::{copy_paths, remove_all};
