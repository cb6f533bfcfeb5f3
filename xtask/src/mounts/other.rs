//! Platforms without loop mounts here: nothing is mounted, every filesystem
//! is reported as skipped, and tests run on what the platform has (APFS
//! tests on macOS use a temporary directory on the system volume).

use super::Spec;
use std::path::{Path, PathBuf};

/// Nothing is ever created.
#[derive(Debug, Default)]
pub(super) struct State {
    _nothing: (),
}

pub(super) fn mount(
    _root: &Path,
    spec: Spec,
    _state: &mut State,
) -> Result<(PathBuf, String), String> {
    Err(format!(
        "{} test images are mounted on Linux only (this is {})",
        spec.name,
        std::env::consts::OS
    ))
}

pub(super) fn cleanup(_root: &Path, _state: &mut State) -> Vec<String> {
    Vec::new()
}

pub(super) fn mounted_under(_dir: &Path) -> Vec<PathBuf> {
    Vec::new()
}

pub(super) fn process_alive(_pid: u32) -> bool {
    true
}
