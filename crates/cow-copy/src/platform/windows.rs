//! Windows: ReFS / Dev Drive block cloning with
//! `FSCTL_DUPLICATE_EXTENTS_TO_FILE` (cluster-aligned ranges, under 4 GiB
//! per call, destination extended first, sparse and integrity settings
//! matched), else `CopyFileExW` (through `std::fs::copy`), reported as
//! [`Strategy::SystemCopy`]; an atomic copy's temporary is written with
//! read/write instead ([`Strategy::UserCopy`]), so that an interrupt can
//! delete it while it is written.
//!
//! Path based: the Unix descriptor API (`copy_at`) does not exist here.
//! Atomic copies write a listed temporary ([`temps`]).

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::windows::fs::OpenOptionsExt;
use std::os::windows::io::AsHandle;
use std::path::Path;

use cow_sys::windows::{
    FILE_SUPPORTS_BLOCK_REFCOUNTING, cluster_size, duplicate_extents, file_id,
    get_integrity_information, set_integrity_information, set_sparse, volume_flags,
};

use crate::identical::{self, Decision};
use crate::report::{CopyReport, Destination, Fallback, Strategy};
use crate::{CopyError, CopyOptions, Overwrite, Reflink, Update, errno};

mod temps;

pub(crate) use temps::remove_all;

/// One duplicate-extents call stays below 4 GiB.
const MAX_CHUNK: u64 = (4 << 30) - (1 << 20);

/// `FILE_ATTRIBUTE_SPARSE_FILE`.
const SPARSE_ATTRIBUTE: u32 = 0x200;

/// `FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE`: comparing the
/// destination never locks others out of it.
const SHARE_ALL: u32 = 0x7;

/// `FILE_WRITE_ATTRIBUTES`: enough to set the times, even of a read-only
/// file.
const WRITE_ATTRIBUTES: u32 = 0x100;

/// `GENERIC_WRITE`: needed to flush a file (`FlushFileBuffers`).
const GENERIC_WRITE: u32 = 0x4000_0000;

/// Copies `src` to `dst` on Windows.
pub(crate) fn copy_paths(
    opts: &CopyOptions,
    src: &Path,
    dst: &Path,
) -> Result<CopyReport, CopyError> {
    let src_meta = if opts.follow_symlinks {
        fs::metadata(src)
    } else {
        fs::symlink_metadata(src)
    }
    .map_err(|e| CopyError::io("open source", src, e))?;
    if !src_meta.is_file() {
        return Err(CopyError::NotARegularFile {
            path: src.to_path_buf(),
            kind: if src_meta.is_dir() {
                "a directory"
            } else if src_meta.is_symlink() {
                "a symbolic link"
            } else {
                "not a regular file"
            },
        });
    }
    let src_file = File::open(src).map_err(|e| CopyError::io("open source", src, e))?;
    let mut update_fallback = None;
    let existed = match fs::metadata(dst) {
        Ok(m) if m.is_dir() => {
            return Err(CopyError::DestinationIsDirectory {
                path: dst.to_path_buf(),
            });
        }
        Ok(dst_meta) => {
            // Compare (volume serial, file index) of the open source and
            // of the destination opened without data access: never paths.
            let dst_file = OpenOptions::new()
                .access_mode(0)
                .open(dst)
                .map_err(|e| CopyError::io("open destination", dst, e))?;
            let a = file_id(src_file.as_handle())
                .map_err(|e| CopyError::io("identify source", src, e))?;
            let b = file_id(dst_file.as_handle())
                .map_err(|e| CopyError::io("identify destination", dst, e))?;
            if a == b {
                return Err(CopyError::SameFile {
                    src: src.to_path_buf(),
                    dst: dst.to_path_buf(),
                });
            }
            if opts.overwrite == Overwrite::NoClobber {
                return Err(CopyError::DestinationExists {
                    path: dst.to_path_buf(),
                });
            }
            match update_check(opts, &src_file, &src_meta, dst, &dst_meta)? {
                UpdateCheck::Proceed(why) => update_fallback = why,
                UpdateCheck::Keep(strategy, fallbacks) => {
                    let mut report = CopyReport {
                        strategy,
                        bytes_cloned: 0,
                        bytes_copied: 0,
                        hole_bytes: 0,
                        len: src_meta.len(),
                        destination: Destination::Kept,
                        size_changed: false,
                        source_changed: false,
                        retries: 0,
                        fallbacks,
                        metadata_skipped: Vec::new(),
                    };
                    // As on Unix: an identical destination still gets the
                    // metadata the options ask for; one kept because it
                    // is newer is not touched at all.
                    if strategy != Strategy::KeptNewer {
                        apply_metadata(opts, &src_meta, dst, dst, &mut report)?;
                    }
                    return Ok(report);
                }
            }
            true
        }
        Err(_) => false,
    };
    // Listed while it is written, so an interrupt can remove it.
    let temp = if opts.atomic {
        Some(temps::create(dst).map_err(|e| CopyError::io("create a temporary beside", dst, e))?)
    } else {
        None
    };
    let target = temp.as_ref().map_or(dst, |t| t.path.as_path());
    let result = copy_data(opts, src, &src_file, &src_meta, target, dst, existed);
    let mut report = match result {
        Ok(mut r) => {
            // The update check came first, as in the Unix chain.
            r.fallbacks.splice(0..0, update_fallback);
            r
        }
        Err(e) => {
            if opts.atomic || !existed {
                let _ = fs::remove_file(target);
            }
            return Err(e);
        }
    };
    let finish = (|| {
        apply_metadata(opts, &src_meta, target, dst, &mut report)?;
        if let Some(t) = &temp {
            t.rename_over(dst)
                .map_err(|e| CopyError::io("rename a temporary over", dst, e))?;
        }
        Ok(())
    })();
    if let Err(e) = finish {
        if opts.atomic {
            let _ = fs::remove_file(target);
        }
        return Err(e);
    }
    Ok(report)
}

/// What the update policy ([`Update`]) says about an existing destination.
enum UpdateCheck {
    /// Copy; `Some` says why the policy did not keep the destination.
    Proceed(Option<Fallback>),
    /// Keep the destination: report it with this strategy
    /// ([`Strategy::Skipped`] or [`Strategy::KeptNewer`]) and these
    /// fallbacks.
    Keep(Strategy, Vec<Fallback>),
}

/// Applies the update policy to the existing destination `dst` (a file or
/// a link to one, not the source), before anything is written. The content
/// check is [`identical::decide_update`], as in the Unix engine; there is no dedupe
/// here, so an identical destination is skipped, naming why it was not
/// deduplicated when that was asked.
fn update_check(
    opts: &CopyOptions,
    src_file: &File,
    src_meta: &fs::Metadata,
    dst: &Path,
    dst_meta: &fs::Metadata,
) -> Result<UpdateCheck, CopyError> {
    match opts.update {
        Update::All => return Ok(UpdateCheck::Proceed(None)),
        Update::IfDifferent | Update::IfDifferentDedupe | Update::IfDifferentTrustMtime => {}
        Update::IfOlder => {
            let (Ok(d), Ok(s)) = (dst_meta.modified(), src_meta.modified()) else {
                return Ok(UpdateCheck::Proceed(None));
            };
            return Ok(if d >= s {
                // Not older than the source: left alone, like GNU `cp -u`.
                UpdateCheck::Keep(Strategy::KeptNewer, Vec::new())
            } else {
                UpdateCheck::Proceed(Some(Fallback::destination_older()))
            });
        }
    }
    if !dst_meta.is_file() {
        return Ok(UpdateCheck::Proceed(None));
    }
    let not_compared =
        |e: io::Error, what: &str| UpdateCheck::Proceed(Some(Fallback::not_compared(what, &e)));
    let reader = match OpenOptions::new()
        .read(true)
        .share_mode(SHARE_ALL)
        .open(dst)
    {
        Ok(f) => f,
        Err(e) => return Ok(not_compared(e, "open the destination to compare")),
    };
    let dst_meta = reader
        .metadata()
        .map_err(|e| CopyError::io("stat destination", dst, e))?;
    let decision =
        match identical::decide_update(opts.update, src_file, src_meta, &reader, &dst_meta) {
            Ok(d) => d,
            // Nothing was written: a failed check is a check not made.
            Err(e) if errno::is_fallback(&e) => {
                return Ok(not_compared(e, "compare with the destination"));
            }
            Err(e) => return Err(CopyError::io("compare with", dst, e)),
        };
    Ok(match decision {
        Decision::Skip {
            dedupe_not_possible,
            ..
        } => UpdateCheck::Keep(
            Strategy::Skipped,
            dedupe_not_possible
                .map(Fallback::not_deduplicated)
                .into_iter()
                .collect(),
        ),
        // `identical::decide` never dedupes off Linux; should it ever, the
        // source now shares the destination's blocks and the copy is moot.
        Decision::Deduped { .. } => UpdateCheck::Keep(Strategy::Skipped, Vec::new()),
        Decision::Proceed { reason, .. } => UpdateCheck::Proceed(Some(Fallback::differs(reason))),
    })
}

/// Gives `target` (the destination or its temporary; `dst` names it in
/// errors) the metadata the options ask for, flushes it when asked, and
/// notes in `report` what Windows cannot preserve.
fn apply_metadata(
    opts: &CopyOptions,
    src_meta: &fs::Metadata,
    target: &Path,
    dst: &Path,
    report: &mut CopyReport,
) -> Result<(), CopyError> {
    if opts.preserve.timestamps || opts.fsync {
        let access = WRITE_ATTRIBUTES | if opts.fsync { GENERIC_WRITE } else { 0 };
        let f = OpenOptions::new()
            .access_mode(access)
            .share_mode(SHARE_ALL)
            .open(target)
            .map_err(|e| CopyError::io("open", dst, e))?;
        if opts.preserve.timestamps {
            let mut t = fs::FileTimes::new();
            if let Ok(a) = src_meta.accessed() {
                t = t.set_accessed(a);
            }
            if let Ok(m) = src_meta.modified() {
                t = t.set_modified(m);
            }
            f.set_times(t)
                .map_err(|e| CopyError::io("set times of", dst, e))?;
        }
        if opts.fsync {
            f.sync_all().map_err(|e| CopyError::io("fsync", dst, e))?;
        }
    }
    if opts.preserve.mode {
        fs::set_permissions(target, src_meta.permissions())
            .map_err(|e| CopyError::io("set permissions of", dst, e))?;
    }
    if opts.preserve.ownership {
        report
            .metadata_skipped
            .push("ownership: not supported on Windows".into());
    }
    if opts.preserve.xattrs {
        report
            .metadata_skipped
            .push("xattrs: not supported on Windows".into());
    }
    Ok(())
}

fn copy_data(
    opts: &CopyOptions,
    src: &Path,
    src_file: &File,
    src_meta: &fs::Metadata,
    target: &Path,
    dst: &Path,
    existed: bool,
) -> Result<CopyReport, CopyError> {
    let mut fallbacks = Vec::new();
    let destination = if existed {
        Destination::Replaced
    } else {
        Destination::Created
    };
    if opts.reflink != Reflink::Never {
        match clone(src_file, src_meta, target) {
            Ok(_) => {
                // A clone that came out empty or short must not pass.
                let (len, _) = checked_len(src_file, src_meta, target, dst, existed)?;
                return Ok(CopyReport {
                    strategy: Strategy::Cloned,
                    bytes_cloned: len,
                    bytes_copied: 0,
                    hole_bytes: 0,
                    len,
                    destination,
                    size_changed: false,
                    source_changed: false,
                    retries: 0,
                    fallbacks,
                    metadata_skipped: Vec::new(),
                });
            }
            Err(e) if opts.reflink == Reflink::Always => {
                return Err(CopyError::ReflinkUnsupported {
                    path: dst.to_path_buf(),
                    source: e,
                });
            }
            Err(e) if errno::is_fallback(&e) => fallbacks.push(Fallback {
                strategy: Strategy::Cloned,
                errno: e.raw_os_error(),
                reason: format!("duplicate extents refused: {e}"),
            }),
            Err(e) => return Err(CopyError::io("clone into", dst, e)),
        }
    }
    let strategy = if target == dst {
        // `std::fs::copy` returns the byte count that `CopyFileExW` passed
        // to its progress routine; Wine never calls the routine, so the
        // count is 0 there whatever was copied. The length comes from the
        // file instead (`checked_len`).
        fs::copy(src, target).map_err(|e| CopyError::io("copy to", dst, e))?;
        Strategy::SystemCopy
    } else {
        write_temporary(src_file, target, &opts.cancel)
            .map_err(|e| CopyError::io("copy to a temporary beside", dst, e))?;
        Strategy::UserCopy
    };
    let (len, size_changed) = checked_len(src_file, src_meta, target, dst, existed)?;
    Ok(CopyReport {
        strategy,
        bytes_cloned: 0,
        bytes_copied: len,
        hole_bytes: 0,
        len,
        destination,
        size_changed,
        source_changed: false,
        retries: 0,
        fallbacks,
        metadata_skipped: Vec::new(),
    })
}

/// Copies the source's bytes into the listed temporary `target` with
/// read/write through a handle that shares deletion: an interrupt can then
/// delete the temporary at any moment ([`temps::remove_all`]), which
/// `CopyFileExW`'s own handle to it would prevent. Stops between chunks
/// when the caller's cancel flag is set.
fn write_temporary(src: &File, target: &Path, cancel: &crate::cancel::Cancel) -> io::Result<()> {
    use std::io::Write;
    use std::os::windows::fs::FileExt;
    let mut out = OpenOptions::new()
        .write(true)
        .truncate(true)
        .share_mode(SHARE_ALL)
        .open(target)?;
    let mut buf = vec![0u8; 1 << 20];
    let mut off = 0u64;
    loop {
        cancel.check()?;
        let n = match src.seek_read(&mut buf, off) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            // Reading at or past the end of file.
            Err(e) if e.raw_os_error() == Some(ERROR_HANDLE_EOF) => return Ok(()),
            Err(e) => return Err(e),
        };
        out.write_all(&buf[..n])?;
        off += n as u64;
    }
}

/// `ERROR_HANDLE_EOF`: a positioned read at the end of the file.
const ERROR_HANDLE_EOF: i32 = 38;

/// The length of the finished copy `target`, read back from the file
/// system, and whether the source's size changed meanwhile. A copy shorter
/// (or longer) than the source, when the source still has its length, is
/// an error: success is never reported for fewer bytes than the source
/// holds. With `existed` and no temporary, the error says the destination
/// is incomplete.
fn checked_len(
    src_file: &File,
    src_meta: &fs::Metadata,
    target: &Path,
    dst: &Path,
    existed: bool,
) -> Result<(u64, bool), CopyError> {
    let got = fs::metadata(target)
        .map_err(|e| CopyError::io("stat the copy", dst, e))?
        .len();
    let want = src_meta.len();
    if got == want {
        return Ok((got, false));
    }
    let now = src_file
        .metadata()
        .map_err(|e| CopyError::io("stat source", dst, e))?
        .len();
    if got == now {
        // The source changed size while it was copied: the copy has what
        // it held at the end, and the report says so.
        return Ok((got, true));
    }
    let source = io::Error::new(
        io::ErrorKind::UnexpectedEof,
        format!("the copy has {got} bytes, the source {want}"),
    );
    Err(if existed && target == dst {
        CopyError::Incomplete {
            op: "check the length of the copy",
            path: dst.to_path_buf(),
            written: got,
            source,
        }
    } else {
        CopyError::io("check the length of the copy", dst, source)
    })
}

/// Block-clones `src` into `target` (created or truncated). Refuses with
/// `ERROR_NOT_SUPPORTED` when the volume has no block refcounting.
fn clone(src: &File, src_meta: &fs::Metadata, target: &Path) -> io::Result<u64> {
    let flags = volume_flags(src.as_handle())?;
    if flags & FILE_SUPPORTS_BLOCK_REFCOUNTING == 0 {
        return Err(io::Error::from_raw_os_error(50));
    }
    let dst = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(target)?;
    let len = src_meta.len();
    use std::os::windows::fs::MetadataExt;
    if src_meta.file_attributes() & SPARSE_ATTRIBUTE != 0 {
        set_sparse(dst.as_handle(), true)?;
    }
    let integrity = get_integrity_information(src.as_handle())?;
    set_integrity_information(
        dst.as_handle(),
        integrity.checksum_algorithm,
        integrity.flags,
    )?;
    if len == 0 {
        return Ok(0);
    }
    let cluster = u64::from(cluster_size(src.as_handle())?.max(1));
    let rounded = len.div_ceil(cluster) * cluster;
    // The destination must already span every cloned cluster.
    dst.set_len(rounded)?;
    let chunk = MAX_CHUNK / cluster * cluster;
    let mut off = 0u64;
    while off < rounded {
        let n = (rounded - off).min(chunk);
        duplicate_extents(dst.as_handle(), src.as_handle(), off, off, n)?;
        off += n;
    }
    dst.set_len(len)?;
    Ok(len)
}
