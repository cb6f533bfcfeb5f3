//! macOS: the kind from `f_fstypename`; clones (`fclonefileat`), holes
//! (`SEEK_DATA`) and extents (`F_LOG2PHYS_EXT`) tested live; no dedupe or
//! `copy_file_range` calls exist here.

use std::fs::File;
use std::os::fd::AsFd;
use std::path::Path;

use cow_sys::macos::{CloneFlags, fclonefileat, log2phys_ext};

use crate::unix::{FsInfo, Scratch, sparse_answer};
use crate::{Answer, Evidence, ProbeError, Support, from_errno};

pub(crate) use crate::unix::Target;

pub(crate) fn fs_info(dir: &File, dir_path: &Path) -> Result<FsInfo, ProbeError> {
    crate::unix::bsd_fs_info(dir, dir_path)
}

fn errno_of(e: &std::io::Error) -> i32 {
    e.raw_os_error().unwrap_or(0)
}

pub(crate) fn live(s: &mut Scratch<'_>, _info: &FsInfo) -> Result<Option<[Answer; 5]>, ProbeError> {
    let Some(a) = s.hole_then_data("a")? else {
        return Ok(None);
    };
    let sparse = sparse_answer(&a, s.block);
    let fiemap = match log2phys_ext(a.as_fd(), s.block, s.block) {
        Ok(_) => Answer::live(Support::Yes),
        Err(e) => from_errno("fcntl(F_LOG2PHYS_EXT)", errno_of(&e)),
    };
    let name = s.reserve("b");
    let reflink = match fclonefileat(
        a.as_fd(),
        s.dir().as_fd(),
        Path::new(&name),
        CloneFlags::empty(),
    ) {
        Ok(()) => Answer::live(Support::Yes),
        Err(e) => from_errno("fclonefileat", errno_of(&e)),
    };
    let none = Answer {
        support: Support::No,
        evidence: Evidence::Platform,
    };
    Ok(Some([reflink, none, sparse, fiemap, none]))
}
