//! Metadata: mode, times, owner, xattrs, applied by the options (never left
//! to whatever the data syscall happened to copy).

use std::fs::{File, FileTimes, Metadata, Permissions};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::fault::{Site, fault};
use crate::{CopyError, Preserve};

/// What the destination's mode should be when `preserve.mode` is off.
pub(crate) enum ModeRule {
    /// Copy the source's permission bits (`preserve.mode`, std behaviour).
    Source,
    /// Leave the mode as the file has it (created with source & !umask, or
    /// an existing destination written in place).
    Keep,
    /// Set exactly these bits (atomic temp replacing a file, or a new file).
    Set(u32),
}

/// The setuid and setgid bits.
pub(crate) const SET_IDS: u32 = 0o6000;

/// The one set-id rule: the `mode` bits a copy may carry. A copy keeps
/// setuid only if it has the source's owner and setgid only if it has the
/// source's group: anything else would hand the source's privileges to a
/// different account. `copy` is the copy's (uid, gid); `None` when the
/// ownership was not kept (a failed `chown`), or the bits are not the
/// source's to give: both are then dropped, like `cp -p`.
pub(crate) fn keep_set_ids(mode: u32, src: (u32, u32), copy: Option<(u32, u32)>) -> u32 {
    let Some((uid, gid)) = copy else {
        return mode & !SET_IDS;
    };
    let mut kept = mode;
    if uid != src.0 {
        kept &= !0o4000;
    }
    if gid != src.1 {
        kept &= !0o2000;
    }
    kept
}

/// Applies the requested metadata of `src` to `dst`. Failures to keep the
/// owner or an xattr are reported in `skipped`, other failures are errors.
pub(crate) fn apply(
    dst: &File,
    dst_path: &Path,
    src: &File,
    src_meta: &Metadata,
    preserve: Preserve,
    mode: ModeRule,
    skipped: &mut Vec<String>,
) -> Result<(), CopyError> {
    let mut mode_bits = match mode {
        ModeRule::Source => Some(src_meta.mode() & 0o7777),
        ModeRule::Keep => None,
        ModeRule::Set(m) => Some(m & 0o7777),
    };
    let src_owner = (src_meta.uid(), src_meta.gid());
    if preserve.ownership {
        let r = fault!(
            Site::Fchown,
            std::os::unix::fs::fchown(dst, Some(src_meta.uid()), Some(src_meta.gid()))
        );
        if let Err(e) = r {
            skipped.push(format!("ownership: {e}"));
            let cur = dst.metadata().map(|m| m.mode() & 0o7777).unwrap_or(0);
            mode_bits = Some(keep_set_ids(mode_bits.unwrap_or(cur), src_owner, None));
        }
    }
    if let Some(bits) = mode_bits.filter(|b| b & SET_IDS != 0) {
        let copy_owner = dst.metadata().ok().map(|m| (m.uid(), m.gid()));
        mode_bits = Some(keep_set_ids(bits, src_owner, copy_owner));
    }
    if let Some(bits) = mode_bits {
        fault!(
            Site::Fchmod,
            dst.set_permissions(Permissions::from_mode(bits))
        )
        .map_err(|e| CopyError::io("set permissions of", dst_path, e))?;
    }
    #[cfg(not(target_os = "macos"))]
    if preserve.xattrs {
        crate::xattr::copy_file(src, dst, skipped);
    }
    // Gatekeeper's attribute travels with every copy (docs/macos.md).
    #[cfg(target_os = "macos")]
    crate::xattr::apply(src, dst, preserve.xattrs, skipped);
    if preserve.timestamps {
        let times = FileTimes::new()
            .set_accessed(to_time(src_meta.atime(), src_meta.atime_nsec()))
            .set_modified(to_time(src_meta.mtime(), src_meta.mtime_nsec()));
        fault!(Site::Utimes, dst.set_times(times))
            .map_err(|e| CopyError::io("set times of", dst_path, e))?;
    }
    Ok(())
}

fn to_time(secs: i64, nsec: i64) -> SystemTime {
    let nsec = nsec.clamp(0, 999_999_999) as u32;
    if secs >= 0 {
        UNIX_EPOCH + Duration::new(secs as u64, nsec)
    } else {
        UNIX_EPOCH - Duration::from_secs(secs.unsigned_abs()) + Duration::new(0, nsec)
    }
}

/// The process umask, read without changing it where the OS allows.
pub(crate) fn umask() -> u32 {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    if let Ok(status) = std::fs::read_to_string("/proc/self/status") {
        if let Some(v) = status
            .lines()
            .find_map(|l| l.strip_prefix("Umask:"))
            .and_then(|v| u32::from_str_radix(v.trim(), 8).ok())
        {
            return v;
        }
    }
    // Elsewhere: set and restore (a short window where other threads would
    // see 022).
    let old = rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o022));
    rustix::process::umask(old);
    old.bits() as u32
}
