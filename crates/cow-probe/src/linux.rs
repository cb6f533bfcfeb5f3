//! Linux: the kind from `statfs.f_type`; every answer tested live.

use std::fs::File;
use std::os::fd::AsFd;
use std::path::Path;

use cow_sys::linux::{DedupeStatus, FiemapExtentFlags, FiemapFlags, dedupe_one, ficlone, fiemap};

use crate::kind::FsKind;
use crate::unix::{FsInfo, Scratch, sparse_answer};
use crate::{Answer, ProbeError, Support, from_errno, io_err};

pub(crate) use crate::unix::Target;

pub(crate) fn fs_info(dir: &File, dir_path: &Path) -> Result<FsInfo, ProbeError> {
    let st = rustix::fs::fstatfs(dir).map_err(|e| io_err("fstatfs", dir_path, e))?;
    // `f_type` is a signed word: keep its 32 bits, as <linux/magic.h> does.
    let magic = u64::from(st.f_type as u32);
    let kind = FsKind::from_magic(magic);
    let name = match kind {
        FsKind::Other => format!("unknown (magic {magic:#x})"),
        k => k.name().to_owned(),
    };
    let vfs = rustix::fs::fstatvfs(dir).map_err(|e| io_err("fstatvfs", dir_path, e))?;
    Ok(FsInfo {
        kind,
        name,
        block_size: st.f_bsize as u64,
        read_only: vfs.f_flag.contains(rustix::fs::StatVfsMountFlags::RDONLY),
    })
}

fn errno_of(e: &std::io::Error) -> i32 {
    e.raw_os_error().unwrap_or(0)
}

/// The five live answers, or `None` when the directory refuses scratch
/// files.
pub(crate) fn live(s: &mut Scratch<'_>, _info: &FsInfo) -> Result<Option<[Answer; 5]>, ProbeError> {
    let bs = s.block;
    // a: [hole][data]
    let Some(a) = s.hole_then_data("a")? else {
        return Ok(None);
    };
    let sparse = sparse_answer(&a, bs);

    let fiemap_ans = match fiemap(a.as_fd(), 0, u64::MAX, FiemapFlags::SYNC, 4) {
        Ok(_) => Answer::live(Support::Yes),
        Err(e) => from_errno("FS_IOC_FIEMAP", errno_of(&e)),
    };

    // b: a clone of a.
    let Some(b) = s.create("b") else {
        return Ok(None);
    };
    let reflink = match ficlone(b.as_fd(), a.as_fd()) {
        Ok(()) => Answer::live(Support::Yes),
        Err(e) => from_errno("FICLONE", errno_of(&e)),
    };
    drop(b);

    // c: the same block as a's second one, written separately, then deduped.
    let Some(c) = s.create("c") else {
        return Ok(None);
    };
    if s.write(&c, &s.data(), 0)?.is_none() {
        return Ok(None);
    }
    let dedupe = match dedupe_one(a.as_fd(), bs, bs, c.as_fd(), 0) {
        Ok(DedupeStatus::Same { bytes_deduped }) if bytes_deduped > 0 => Answer::live(Support::Yes),
        Ok(_) => Answer::live(Support::Unknown),
        Err(e) => from_errno("FIDEDUPERANGE", errno_of(&e)),
    };
    drop(c);

    // d: copy_file_range of a's data block; shared afterwards?
    let Some(d) = s.create("d") else {
        return Ok(None);
    };
    let mut off_in = bs;
    let mut off_out = 0u64;
    let len = usize::try_from(bs).unwrap_or(usize::MAX);
    let copy_file_range =
        match rustix::fs::copy_file_range(&a, Some(&mut off_in), &d, Some(&mut off_out), len) {
            Ok(n) if n == len => match fiemap(d.as_fd(), 0, u64::MAX, FiemapFlags::SYNC, 8) {
                Ok((_, ext)) if ext.is_empty() => Answer::live(Support::Unknown),
                Ok((_, ext)) => {
                    let shared = ext
                        .iter()
                        .all(|e| e.flags().contains(FiemapExtentFlags::SHARED));
                    Answer::live(if shared { Support::Yes } else { Support::No })
                }
                Err(e) => from_errno("FS_IOC_FIEMAP", errno_of(&e)),
            },
            Ok(_) => Answer::live(Support::Unknown),
            Err(e) => from_errno("copy_file_range", e.raw_os_error()),
        };
    // For FIEMAP failures (tmpfs) the copy itself worked: say "unknown" only
    // when sharing could matter, i.e. the filesystem clones at all.
    let copy_file_range = match (copy_file_range.evidence, reflink.support) {
        (
            crate::Evidence::Errno {
                op: "FS_IOC_FIEMAP",
                ..
            },
            Support::No,
        ) => Answer {
            support: Support::No,
            evidence: reflink.evidence,
        },
        _ => copy_file_range,
    };
    Ok(Some([reflink, dedupe, sparse, fiemap_ans, copy_file_range]))
}
