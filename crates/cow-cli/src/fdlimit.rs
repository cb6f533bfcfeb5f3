//! The tree commands hold many descriptors: `cp -r` two directories per
//! level being copied for every worker, `dedupe -r` one per directory of
//! the trees and the files of a size group. Raise the soft limit on open
//! files to the hard limit so they do not run out (`EMFILE`) or fall back
//! to slower paths.

/// Raises the soft `RLIMIT_NOFILE` to the hard limit; errors are ignored
/// (the copy then runs with the limit it has).
#[cfg(unix)]
pub(crate) fn raise() {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let lim = getrlimit(Resource::Nofile);
    if lim.current.is_some() && lim.current != lim.maximum {
        let mut want = lim;
        want.current = lim.maximum;
        if setrlimit(Resource::Nofile, want).is_err() {
            // macOS refuses more than OPEN_MAX for the soft limit.
            let mut capped = lim;
            capped.current = capped.maximum.map(|m| m.min(10240));
            let _ = setrlimit(Resource::Nofile, capped);
        }
    }
}

/// Nothing to raise on this platform.
#[cfg(not(unix))]
pub(crate) fn raise() {}
