//! The Windows engine: ReFS / Dev Drive block cloning
//! ([`sys::clone_file`]), else `CopyFileExW` (through `std::fs::copy`), reported as
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

use crate::changed;
use crate::fault::{Site, fault};
use crate::report::{CopyReport, Destination, Fallback, Strategy};
use crate::update::{self, Check, Opened};
use crate::{CopyError, CopyOptions, Overwrite, Reflink, errno, sys};

mod temps;

pub(crate) use temps::remove_all;

/// `FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE`: comparing the
/// destination never locks others out of it.
const SHARE_ALL: u32 = 0x7;

/// `FILE_WRITE_ATTRIBUTES`: enough to set the times, even of a read-only
/// file.
const WRITE_ATTRIBUTES: u32 = 0x100;

/// `GENERIC_WRITE`: needed to flush a file (`FlushFileBuffers`).
const GENERIC_WRITE: u32 = 0x4000_0000;

/// Copies `src` to `dst` on Windows, and copies again (up to
/// `opts.retry_changed` times) while the source changes as it is read.
pub(crate) fn copy_paths(
    opts: &CopyOptions,
    src: &Path,
    dst: &Path,
) -> Result<CopyReport, CopyError> {
    let mut retries = 0;
    let mut created = false;
    loop {
        let mut report = copy_once(opts, src, dst)?;
        created |= report.destination == Destination::Created;
        if !report.source_changed || retries >= opts.retry_changed {
            if created {
                report.destination = Destination::Created;
            }
            report.retries = retries;
            return Ok(report);
        }
        retries += 1;
    }
}

/// One attempt of [`copy_paths`].
fn copy_once(opts: &CopyOptions, src: &Path, dst: &Path) -> Result<CopyReport, CopyError> {
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
                crate::tree::EntryKind::Dir
            } else if src_meta.is_symlink() {
                crate::tree::EntryKind::Symlink
            } else {
                crate::tree::EntryKind::Device
            },
        });
    }
    let src_file = File::open(src).map_err(|e| CopyError::io("open source", src, e))?;
    // What the source was when opened: compared after its bytes were read.
    let opened = src_file
        .metadata()
        .map_err(|e| CopyError::io("stat source", src, e))?;
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
            let a = sys::file_id(src_file.as_handle())
                .map_err(|e| CopyError::io("identify source", src, e))?;
            let b = sys::file_id(dst_file.as_handle())
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
            // The content check reads the destination through a handle
            // that never locks others out of it.
            let open = || {
                let reader = match OpenOptions::new()
                    .read(true)
                    .share_mode(SHARE_ALL)
                    .open(dst)
                {
                    Ok(f) => f,
                    Err(e) => return Ok(Opened::Refused(e)),
                };
                let meta = reader
                    .metadata()
                    .map_err(|e| CopyError::io("stat destination", dst, e))?;
                Ok(Opened::File(reader, meta))
            };
            match update::check(opts, &src_file, &src_meta, &dst_meta, dst, open)? {
                Check::Copy(why) => update_fallback = why,
                Check::Keep(kept) => {
                    let newer = kept.strategy == Strategy::KeptNewer;
                    let mut report = kept.report(src_meta.len(), Vec::new());
                    // As on Unix: an identical destination still gets the
                    // metadata the options ask for; one kept because it
                    // is newer is not touched at all.
                    if !newer {
                        apply_metadata(opts, &src_meta, dst, dst, opts.fsync, &mut report)?;
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
            r.source_changed = changed::source_changed(&src_file, &opened, r.strategy);
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
        // A temporary is always flushed before it is renamed over the
        // destination (as the Unix engine syncs its data), so a power cut
        // leaves the old file or the whole new one.
        let flush = opts.fsync || temp.is_some();
        apply_metadata(opts, &src_meta, target, dst, flush, &mut report)?;
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

/// Gives `target` (the destination or its temporary; `dst` names it in
/// errors) the metadata the options ask for, with `flush` flushes it to
/// disk (`FlushFileBuffers`), and notes in `report` what Windows cannot
/// preserve.
fn apply_metadata(
    opts: &CopyOptions,
    src_meta: &fs::Metadata,
    target: &Path,
    dst: &Path,
    flush: bool,
    report: &mut CopyReport,
) -> Result<(), CopyError> {
    if opts.preserve.timestamps || flush {
        let access = WRITE_ATTRIBUTES | if flush { GENERIC_WRITE } else { 0 };
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
        if flush {
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
        match sys::clone_file(src_file, src_meta, target) {
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
        let n = match fault!(Site::Read, src.seek_read(&mut buf, off)) {
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
