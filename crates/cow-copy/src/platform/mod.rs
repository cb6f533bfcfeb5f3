//! The one place where the platform is chosen.
//!
//! Every platform module offers the same interface to the engine:
//! `copy_paths` (the entry point of [`crate::CopyOptions::copy`]) and, on
//! Unix, the pieces the shared chain calls: `clone`, `clone_probe`,
//! `copy_range` + `HAS_COPY_RANGE`, `rename_noreplace`, `DIR_FLAGS`,
//! `PROBE_FLAGS`.

#[cfg(any(target_os = "linux", target_os = "android"))]
mod linux;
#[cfg(any(target_os = "linux", target_os = "android"))]
pub(crate) use linux::*;

#[cfg(target_os = "macos")]
mod macos;
#[cfg(target_os = "macos")]
pub(crate) use macos::*;

#[cfg(windows)]
mod windows;
#[cfg(windows)]
pub(crate) use windows::*;

#[cfg(all(
    unix,
    not(any(target_os = "linux", target_os = "android", target_os = "macos"))
))]
mod other;
#[cfg(all(
    unix,
    not(any(target_os = "linux", target_os = "android", target_os = "macos"))
))]
pub(crate) use other::*;

/// Unix platforms copy through the shared engine.
#[cfg(unix)]
pub(crate) fn copy_paths(
    opts: &crate::CopyOptions,
    src: &std::path::Path,
    dst: &std::path::Path,
) -> Result<crate::CopyReport, crate::CopyError> {
    crate::engine::copy_paths(opts, src, dst)
}
