//! Other Unix systems: no clone call (FreeBSD's block cloning goes through
//! `copy_file_range`, the kernel step).

use std::io;

use super::CloneError;
use crate::chain::{Job, Outcome};

fn unsupported() -> io::Error {
    io::Error::from(rustix::io::Errno::OPNOTSUPP)
}

/// No clone call on this platform.
pub(super) fn clone(_job: &mut Job<'_>) -> Result<Outcome, CloneError> {
    Err(CloneError::Refused(unsupported()))
}

/// No clone call on this platform.
pub(super) fn clone_probe(_job: &Job<'_>) -> io::Result<()> {
    Err(unsupported())
}
