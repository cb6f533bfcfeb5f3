//! Step 1: open the source (regular files only) and the destination without
//! truncating it, then compare (device, inode) of the open descriptors.

use std::ffi::{OsStr, OsString};
use std::fs::{File, Metadata};
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStringExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use rustix::fs::{Mode, OFlags};
use rustix::io::Errno;

use crate::CopyError;
use crate::fault::{Site, fault};
use crate::tree::EntryKind;

/// The open source.
pub(crate) struct Source {
    pub(crate) file: File,
    pub(crate) meta: Metadata,
}

/// What a file type is, for [`CopyError::NotARegularFile`].
fn kind_of(ft: std::fs::FileType) -> EntryKind {
    if ft.is_dir() {
        EntryKind::Dir
    } else if ft.is_symlink() {
        EntryKind::Symlink
    } else if ft.is_fifo() {
        EntryKind::Fifo
    } else if ft.is_socket() {
        EntryKind::Socket
    } else if ft.is_file() {
        EntryKind::File
    } else {
        // Block and character devices, and any type the OS adds.
        EntryKind::Device
    }
}

/// Opens the source read-only; anything but a regular file is refused
/// before it is opened (a FIFO would block, a device could react), and
/// checked again on the open descriptor.
pub(crate) fn open_source(
    dir: BorrowedFd<'_>,
    name: &Path,
    display: &Path,
    follow: bool,
    known_regular: bool,
) -> Result<Source, CopyError> {
    // The look before the open is skipped only when the caller has just
    // seen the entry as a regular file (a tree walk's listing): the window
    // between that look and the open is the same one this stat would have.
    if !known_regular {
        let at = if follow {
            rustix::fs::AtFlags::empty()
        } else {
            rustix::fs::AtFlags::SYMLINK_NOFOLLOW
        };
        let st = fault!(Site::Stat, rustix::fs::statat(dir, name, at))
            .map_err(|e| CopyError::io("open source", display, e.into()))?;
        let ft = rustix::fs::FileType::from_raw_mode(st.st_mode as _);
        if ft != rustix::fs::FileType::RegularFile {
            return Err(CopyError::NotARegularFile {
                path: display.to_path_buf(),
                kind: raw_kind(ft),
            });
        }
    }
    let mut flags = OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOCTTY | OFlags::NONBLOCK;
    if !follow {
        flags |= OFlags::NOFOLLOW;
    }
    let fd = fault!(
        Site::Open,
        rustix::fs::openat(dir, name, flags, Mode::empty())
    )
    .map_err(|e| CopyError::io("open source", display, e.into()))?;
    let file = File::from(fd);
    let meta = fault!(Site::Stat, file.metadata())
        .map_err(|e| CopyError::io("stat source", display, e))?;
    if !meta.file_type().is_file() {
        return Err(CopyError::NotARegularFile {
            path: display.to_path_buf(),
            kind: kind_of(meta.file_type()),
        });
    }
    Ok(Source { file, meta })
}

fn raw_kind(ft: rustix::fs::FileType) -> EntryKind {
    use rustix::fs::FileType as T;
    match ft {
        T::Directory => EntryKind::Dir,
        T::Symlink => EntryKind::Symlink,
        T::Fifo => EntryKind::Fifo,
        T::Socket => EntryKind::Socket,
        T::RegularFile => EntryKind::File,
        _ => EntryKind::Device,
    }
}

/// Fails with `SameFile` when both are the same inode.
pub(crate) fn check_same(
    src: &Metadata,
    dst: &Metadata,
    src_path: &Path,
    dst_path: &Path,
) -> Result<(), CopyError> {
    if src.dev() == dst.dev() && src.ino() == dst.ino() {
        return Err(CopyError::SameFile {
            src: src_path.to_path_buf(),
            dst: dst_path.to_path_buf(),
        });
    }
    Ok(())
}

/// What is at the destination name.
pub(crate) enum Existing {
    /// Nothing (or, when following, a dangling symlink).
    Missing,
    /// A file (regular or not) with its metadata.
    File(Box<Metadata>),
    /// A symlink that is not followed (`copy_at`).
    Symlink,
}

/// Looks at the destination entry without opening it for I/O.
pub(crate) fn probe(
    dir: BorrowedFd<'_>,
    name: &OsStr,
    follow: bool,
    display: &Path,
) -> Result<Existing, CopyError> {
    let mut flags = crate::sys::PROBE_FLAGS;
    if !follow {
        flags |= OFlags::NOFOLLOW;
    }
    match fault!(
        Site::Open,
        rustix::fs::openat(dir, name, flags, Mode::empty())
    ) {
        Ok(fd) => {
            let f = File::from(fd);
            let meta = fault!(Site::Stat, f.metadata())
                .map_err(|e| CopyError::io("stat destination", display, e))?;
            if meta.is_dir() {
                return Err(CopyError::DestinationIsDirectory {
                    path: display.to_path_buf(),
                });
            }
            Ok(Existing::File(Box::new(meta)))
        }
        Err(Errno::NOENT) => Ok(Existing::Missing),
        Err(Errno::LOOP) if !follow => Ok(Existing::Symlink),
        Err(Errno::ISDIR) => Err(CopyError::DestinationIsDirectory {
            path: display.to_path_buf(),
        }),
        // O_NOFOLLOW without O_PATH on a symlink (BSDs give EMLINK/EFTYPE).
        Err(e) if !follow && is_symlink(dir, name) => {
            let _ = e;
            Ok(Existing::Symlink)
        }
        Err(e) => Err(CopyError::io("open destination", display, e.into())),
    }
}

fn is_symlink(dir: BorrowedFd<'_>, name: &OsStr) -> bool {
    rustix::fs::statat(dir, name, rustix::fs::AtFlags::SYMLINK_NOFOLLOW)
        .map(|st| {
            rustix::fs::FileType::from_raw_mode(st.st_mode as _) == rustix::fs::FileType::Symlink
        })
        .unwrap_or(false)
}

/// The destination opened for writing in place.
pub(crate) struct InPlace {
    pub(crate) file: File,
    /// The destination's status; `None` for a file this call created
    /// (an empty regular file, a new inode).
    pub(crate) meta: Option<Metadata>,
    pub(crate) created: bool,
}

/// How [`open_in_place`] may open or create the destination.
#[derive(Clone, Copy, Debug)]
pub(crate) struct OpenRules {
    /// Follow a destination symlink.
    pub(crate) follow: bool,
    /// Create only (`O_EXCL`): an existing entry is
    /// [`CopyError::DestinationExists`].
    pub(crate) exclusive: bool,
    /// Once the destination was seen missing, or dangling when followed,
    /// create it with `O_EXCL` only and refuse an entry found there then
    /// (never create a dangling symlink's target).
    pub(crate) refuse_dangling: bool,
    /// Permission bits of a new file (before the umask).
    pub(crate) create_mode: u32,
    /// The entry most likely does not exist (try to create it first).
    pub(crate) likely_new: bool,
}

/// Opens (or creates) the destination for writing without truncating it.
/// Returns `Ok(None)` when the entry is a symlink that must not be followed:
/// the caller then replaces the entry instead.
pub(crate) fn open_in_place(
    dir: BorrowedFd<'_>,
    name: &OsStr,
    rules: OpenRules,
    display: &Path,
) -> Result<Option<InPlace>, CopyError> {
    let OpenRules {
        follow,
        exclusive: no_clobber,
        refuse_dangling,
        create_mode,
        likely_new,
    } = rules;
    // What is refused once the destination was seen missing: a dangling
    // symlink, or an entry that appeared meanwhile.
    let refused = || -> CopyError {
        if is_symlink(dir, name) {
            CopyError::DanglingDestination {
                path: display.to_path_buf(),
            }
        } else {
            CopyError::DestinationChanged {
                path: display.to_path_buf(),
            }
        }
    };
    let base = OFlags::CLOEXEC | OFlags::NOCTTY;
    let nofollow = if follow {
        OFlags::empty()
    } else {
        OFlags::NOFOLLOW
    };
    let mode = Mode::from_raw_mode((create_mode & 0o777) as _);
    let create = |extra: OFlags| -> Result<Option<OwnedFd>, Errno> {
        match fault!(
            Site::Open,
            rustix::fs::openat(
                dir,
                name,
                base | OFlags::RDWR | OFlags::CREATE | extra,
                mode
            )
        ) {
            Ok(fd) => Ok(Some(fd)),
            Err(Errno::EXIST) => Ok(None),
            Err(e) => Err(e),
        }
    };
    let map_err = |e: Errno, op: &'static str| -> CopyError {
        if e == Errno::ISDIR {
            CopyError::DestinationIsDirectory {
                path: display.to_path_buf(),
            }
        } else {
            CopyError::io(op, display, e.into())
        }
    };
    if no_clobber {
        return match create(OFlags::EXCL) {
            Ok(Some(fd)) => Ok(Some(created_new(fd))),
            Ok(None) => Err(CopyError::DestinationExists {
                path: display.to_path_buf(),
            }),
            Err(e) => Err(map_err(e, "create destination")),
        };
    }
    if likely_new {
        // Most likely nothing is there (a tree copy into a directory it
        // made): try to create it first. Anything else falls through to the
        // careful path below, which decides as if this try had not happened.
        if let Ok(Some(fd)) = create(OFlags::EXCL) {
            return Ok(Some(created_new(fd)));
        }
    }
    // A FIFO or device is opened write-only and blocking, like any writer:
    // opening it read-write first would count as a writer and wake a
    // waiting reader with an early end of file.
    let open_writer = || -> Result<InPlace, CopyError> {
        let fd = rustix::fs::openat(dir, name, base | OFlags::WRONLY | nofollow, Mode::empty())
            .map_err(|e| map_err(e, "open destination"))?;
        finish(fd, false, display)
    };
    let at = if follow {
        rustix::fs::AtFlags::empty()
    } else {
        rustix::fs::AtFlags::SYMLINK_NOFOLLOW
    };
    match rustix::fs::statat(dir, name, at) {
        Ok(st) => {
            use rustix::fs::FileType as T;
            if matches!(
                T::from_raw_mode(st.st_mode as _),
                T::Fifo | T::CharacterDevice | T::BlockDevice
            ) {
                return open_writer().map(Some);
            }
        }
        // Nothing there a moment ago: create it without first trying to
        // open it. If something is there now (it appeared, or a dangling
        // symlink), the careful path below decides.
        Err(Errno::NOENT) => match create(OFlags::EXCL) {
            Ok(Some(fd)) => return Ok(Some(created_new(fd))),
            Ok(None) if refuse_dangling => return Err(refused()),
            Ok(None) => {}
            Err(e) => return Err(map_err(e, "create destination")),
        },
        Err(_) => {}
    }
    for _ in 0..8 {
        // Existing file: read-write so the update policy can compare and
        // dedupe; write-only if reading is not allowed.
        let open = |acc: OFlags| {
            fault!(
                Site::Open,
                rustix::fs::openat(
                    dir,
                    name,
                    base | acc | OFlags::NONBLOCK | nofollow,
                    Mode::empty(),
                )
            )
        };
        let r = match open(OFlags::RDWR) {
            Err(Errno::ACCESS) => open(OFlags::WRONLY),
            r => r,
        };
        match r {
            Ok(fd) => {
                let f = File::from(fd);
                let meta = fault!(Site::Stat, f.metadata())
                    .map_err(|e| CopyError::io("stat destination", display, e))?;
                if meta.is_file() {
                    return Ok(Some(InPlace {
                        file: f,
                        meta: Some(meta),
                        created: false,
                    }));
                }
                // A FIFO or device: reopen write-only and blocking, like
                // any writer would.
                drop(f);
                return open_writer().map(Some);
            }
            Err(Errno::NOENT) => match create(OFlags::EXCL) {
                Ok(Some(fd)) => return Ok(Some(created_new(fd))),
                Ok(None) if refuse_dangling => return Err(refused()),
                Ok(None) => {
                    // Appeared meanwhile, or a dangling symlink.
                    if is_symlink(dir, name) {
                        if !follow {
                            return Ok(None);
                        }
                        // Follow it and create its target, like std.
                        match create(OFlags::empty()) {
                            Ok(Some(fd)) => {
                                // Without O_EXCL: look at what was opened.
                                return Ok(Some(finish_created_checked(dir, name, fd, display)?));
                            }
                            Ok(None) => continue,
                            Err(e) => return Err(map_err(e, "create destination")),
                        }
                    }
                    continue;
                }
                Err(e) => return Err(map_err(e, "create destination")),
            },
            Err(Errno::LOOP) if !follow => return Ok(None),
            Err(e) if !follow && is_symlink(dir, name) => {
                let _ = e;
                return Ok(None);
            }
            Err(e) => return Err(map_err(e, "open destination")),
        }
    }
    Err(CopyError::io(
        "open destination",
        display,
        io::Error::other("the destination kept changing while it was opened"),
    ))
}

/// The result for a file this call just created with `O_EXCL`: a new,
/// empty regular file that cannot be the source, so nothing to stat.
fn created_new(fd: OwnedFd) -> InPlace {
    InPlace {
        file: File::from(fd),
        meta: None,
        created: true,
    }
}

/// [`finish`] for a file created through a symlink (without `O_EXCL`):
/// stat it like an existing one; if that fails, remove the new entry.
fn finish_created_checked(
    dir: BorrowedFd<'_>,
    name: &OsStr,
    fd: OwnedFd,
    display: &Path,
) -> Result<InPlace, CopyError> {
    finish(fd, true, display).inspect_err(|_| {
        let _ = fault!(
            Site::Unlink,
            rustix::fs::unlinkat(dir, name, rustix::fs::AtFlags::empty())
        );
    })
}

fn finish(fd: OwnedFd, created: bool, display: &Path) -> Result<InPlace, CopyError> {
    let file = File::from(fd);
    let meta = fault!(Site::Stat, file.metadata())
        .map_err(|e| CopyError::io("stat destination", display, e))?;
    Ok(InPlace {
        file,
        meta: Some(meta),
        created,
    })
}

#[allow(clippy::unnecessary_cast)] // st_dev/st_ino types differ by platform
/// Removes `name` from `dir` only if it is still the file `file` (so a
/// concurrent replacement is never deleted). Returns `false` when our file
/// may still be there (it could not be checked or removed).
pub(crate) fn remove_if_same(dir: BorrowedFd<'_>, name: &OsStr, file: &File) -> bool {
    let Ok(ours) = file.metadata() else {
        return false;
    };
    if let Ok(st) = rustix::fs::statat(dir, name, rustix::fs::AtFlags::SYMLINK_NOFOLLOW) {
        if st.st_dev as u64 == ours.dev() && st.st_ino as u64 == ours.ino() {
            return fault!(
                Site::Unlink,
                rustix::fs::unlinkat(dir, name, rustix::fs::AtFlags::empty())
            )
            .is_ok();
        }
    }
    let _ = file.as_fd();
    true
}

/// Whether someone other than this process's user may change the entries
/// of the directory `dir` (it is theirs, or group or world writable; an
/// ACL granting write shows in the group bits). Then a name in it can be
/// pointed at another file at any moment, and what was seen under it
/// proves nothing a moment later. Unknown counts as yes.
#[allow(clippy::unnecessary_cast)]
pub(crate) fn others_can_change(dir: BorrowedFd<'_>) -> bool {
    match rustix::fs::fstat(dir) {
        Ok(st) => {
            st.st_uid != rustix::process::geteuid().as_raw() || (st.st_mode as u32) & 0o022 != 0
        }
        Err(_) => true,
    }
}

/// Opens the directory that will hold `path`'s last component.
pub(crate) fn open_parent(
    base: BorrowedFd<'_>,
    path: &Path,
    display: &Path,
) -> Result<(OwnedFd, OsString), CopyError> {
    let Some(name) = path.file_name() else {
        // "/", "..", "dir/..": a directory.
        return Err(CopyError::DestinationIsDirectory {
            path: display.to_path_buf(),
        });
    };
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let dir = fault!(
        Site::Open,
        rustix::fs::openat(base, parent, crate::sys::DIR_FLAGS, Mode::empty())
    )
    .map_err(|e| CopyError::io("open the directory of", display, e.into()))?;
    Ok((dir, name.to_os_string()))
}

/// Follows `name` in `dir` while it is a symlink (for an atomic replace that
/// must rename over the symlink's target, not the link). Returns the final
/// directory and name.
pub(crate) fn resolve_links(
    dir: BorrowedFd<'_>,
    name: &OsStr,
    display: &Path,
) -> Result<Option<(OwnedFd, OsString)>, CopyError> {
    let mut cur: Option<(OwnedFd, OsString)> = None;
    for _ in 0..40 {
        let (d, n) = match &cur {
            Some((d, n)) => (d.as_fd(), n.as_os_str()),
            None => (dir, name),
        };
        let target = match rustix::fs::readlinkat(d, n, Vec::new()) {
            Ok(t) => PathBuf::from(OsString::from_vec(t.into_bytes())),
            // Not a symlink (EINVAL) or missing: this is the final entry.
            Err(_) => return Ok(cur),
        };
        let next = open_parent(d, &target, display)?;
        cur = Some(next);
    }
    Err(CopyError::io(
        "resolve",
        display,
        std::io::Error::from(rustix::io::Errno::LOOP),
    ))
}
