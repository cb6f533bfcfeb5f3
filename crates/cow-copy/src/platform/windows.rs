//! Windows: ReFS / Dev Drive block cloning with
//! `FSCTL_DUPLICATE_EXTENTS_TO_FILE` (cluster-aligned ranges, under 4 GiB
//! per call, destination extended first, sparse and integrity settings
//! matched), else `CopyFileExW` (through `std::fs::copy`), reported as
//! [`Strategy::SystemCopy`].
//!
//! Path based: the Unix descriptor API (`copy_at`) does not exist here.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::windows::fs::OpenOptionsExt;
use std::os::windows::io::AsHandle;
use std::path::{Path, PathBuf};

use cow_sys::windows::{
    FILE_SUPPORTS_BLOCK_REFCOUNTING, cluster_size, duplicate_extents, file_id,
    get_integrity_information, set_integrity_information, set_sparse, volume_flags,
};

use crate::report::{CopyReport, Destination, Fallback, Strategy};
use crate::{CopyError, CopyOptions, Overwrite, Reflink, Update, errno};

/// One duplicate-extents call stays below 4 GiB.
const MAX_CHUNK: u64 = (4 << 30) - (1 << 20);

/// `FILE_ATTRIBUTE_SPARSE_FILE`.
const SPARSE_ATTRIBUTE: u32 = 0x200;

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
            if opts.update == Update::IfOlder
                && let (Ok(d), Ok(s)) = (dst_meta.modified(), src_meta.modified())
                && d >= s
            {
                // Not older than the source: left alone, like GNU `cp -u`.
                return Ok(CopyReport {
                    strategy: Strategy::KeptNewer,
                    bytes_cloned: 0,
                    bytes_copied: 0,
                    hole_bytes: 0,
                    len: src_meta.len(),
                    destination: Destination::Kept,
                    size_changed: false,
                    fallbacks: Vec::new(),
                    metadata_skipped: Vec::new(),
                });
            }
            true
        }
        Err(_) => false,
    };
    let target = if opts.atomic {
        temp_path(dst)
    } else {
        dst.to_path_buf()
    };
    let result = copy_data(opts, src, &src_file, &src_meta, &target, dst, existed);
    let mut report = match result {
        Ok(r) => r,
        Err(e) => {
            if opts.atomic || !existed {
                let _ = fs::remove_file(&target);
            }
            return Err(e);
        }
    };
    let finish = (|| {
        let f = OpenOptions::new()
            .write(true)
            .open(&target)
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
        drop(f);
        if opts.preserve.mode {
            fs::set_permissions(&target, src_meta.permissions())
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
        if opts.atomic {
            fs::rename(&target, dst)
                .map_err(|e| CopyError::io("rename a temporary over", dst, e))?;
        }
        Ok(())
    })();
    if let Err(e) = finish {
        if opts.atomic {
            let _ = fs::remove_file(&target);
        }
        return Err(e);
    }
    Ok(report)
}

fn temp_path(dst: &Path) -> PathBuf {
    let name = dst
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    let mut t = std::ffi::OsString::from(".");
    t.push(name);
    t.push(crate::TEMP_MARKER);
    t.push(format!("{:06x}", std::process::id() & 0xff_ffff));
    dst.with_file_name(t)
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
            Ok(len) => {
                return Ok(CopyReport {
                    strategy: Strategy::Cloned,
                    bytes_cloned: len,
                    bytes_copied: 0,
                    hole_bytes: 0,
                    len,
                    destination,
                    size_changed: false,
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
    let len = fs::copy(src, target).map_err(|e| CopyError::io("copy to", dst, e))?;
    Ok(CopyReport {
        strategy: Strategy::SystemCopy,
        bytes_cloned: 0,
        bytes_copied: len,
        hole_bytes: 0,
        len,
        destination,
        size_changed: len != src_meta.len(),
        fallbacks,
        metadata_skipped: Vec::new(),
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
