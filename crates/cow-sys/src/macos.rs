//! macOS: `clonefile`, `clonefileat`, `fclonefileat` (`<sys/clonefile.h>`),
//! `copyfile`/`fcopyfile` with their state (`<copyfile.h>`) and
//! `fcntl(F_LOG2PHYS_EXT)` (`<sys/fcntl.h>`).
//!
//! What clones on APFS: `clonefile`, `clonefileat`, `fclonefileat`, and
//! `copyfile` with [`CopyFileFlags::CLONE`] or [`CopyFileFlags::CLONE_FORCE`].
//! `fcopyfile` copies bytes even when asked to clone (the descriptors carry
//! no directory to create a clone in). The clone calls create the
//! destination and refuse an existing one with `EEXIST`; overwriting by clone
//! means cloning to a temporary sibling and renaming it over the target.
//!
//! [`log2phys_ext`] tells where a file's bytes live on the device: two files
//! whose offsets map to the same device offsets share storage.
//!
//! [`chflagsat`] sets BSD file flags through a directory descriptor
//! (`setattrlistat`); [`has_extended_acl`] tells whether a file has an ACL.
//!
//! [`mkfifoat`] and [`mknodat`] create FIFOs and device nodes relative to a
//! directory descriptor. The C library has them only from macOS 13 on, so
//! they are looked up at run time and answer `ENOSYS` on older systems.

use std::ffi::{CStr, CString, c_void};
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::ptr::NonNull;
use std::sync::OnceLock;

use bitflags::bitflags;

bitflags! {
    /// Options of the clone calls (`CLONE_*` from `<sys/clonefile.h>`).
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    pub struct CloneFlags: u32 {
        /// Follow no symbolic link as the last component: for `clonefile`
        /// and `clonefileat` the source link is cloned itself; for every
        /// call a symbolic link at the destination name is not followed
        /// (the call fails with `EEXIST`, the kernel looks the destination
        /// up with the same follow rule).
        const NOFOLLOW = 0x0001;
        /// Do not copy the source's owner even as the super-user; the clone
        /// belongs to the caller (group as for a new file in the
        /// destination directory).
        const NOOWNERCOPY = 0x0002;
        /// Copy the source's access control list to the clone (without it
        /// the clone only inherits the destination directory's ACL).
        const ACL = 0x0004;
        /// Follow no symbolic link anywhere in the paths. First accepted
        /// by macOS 15: earlier kernels refuse any flag beyond the three
        /// above with `EINVAL`.
        const NOFOLLOW_ANY = 0x0008;
    }
}

bitflags! {
    /// `COPYFILE_*` flags of `copyfile`/`fcopyfile` (`<copyfile.h>`).
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    pub struct CopyFileFlags: u32 {
        /// Copy the access control list.
        const ACL = 1 << 0;
        /// Copy POSIX information: mode, owner, times, flags.
        const STAT = 1 << 1;
        /// Copy extended attributes.
        const XATTR = 1 << 2;
        /// Copy the data.
        const DATA = 1 << 3;
        /// `STAT | ACL`.
        const SECURITY = Self::STAT.bits() | Self::ACL.bits();
        /// `SECURITY | XATTR`.
        const METADATA = Self::SECURITY.bits() | Self::XATTR.bits();
        /// `METADATA | DATA`.
        const ALL = Self::METADATA.bits() | Self::DATA.bits();
        /// Copy a directory hierarchy (`copyfile` only).
        const RECURSIVE = 1 << 15;
        /// Return what would be copied instead of copying.
        const CHECK = 1 << 16;
        /// Fail if the destination exists.
        const EXCL = 1 << 17;
        /// Do not follow a symbolic link at the source.
        const NOFOLLOW_SRC = 1 << 18;
        /// Do not follow a symbolic link at the destination.
        const NOFOLLOW_DST = 1 << 19;
        /// Unlink the source after copying.
        const MOVE = 1 << 20;
        /// Unlink the destination before copying.
        const UNLINK = 1 << 21;
        /// `NOFOLLOW_SRC | NOFOLLOW_DST`.
        const NOFOLLOW = Self::NOFOLLOW_SRC.bits() | Self::NOFOLLOW_DST.bits();
        /// Pack metadata into an AppleDouble file.
        const PACK = 1 << 22;
        /// Unpack an AppleDouble file.
        const UNPACK = 1 << 23;
        /// Try to clone, falling back to a copy (`copyfile` only). The
        /// header calls it `EXCL | ACL | STAT | XATTR | DATA |
        /// NOFOLLOW_SRC`: an existing destination fails and a symlink
        /// source is cloned as a link. The clone itself is
        /// `clonefileat(CLONE_NOFOLLOW)` without `CLONE_ACL`, so the
        /// source's ACL is not copied when the clone succeeds (only the
        /// fallback copy applies `ACL`).
        const CLONE = 1 << 24;
        /// Clone or fail, never copy (`copyfile` only); same implied flags
        /// as [`CopyFileFlags::CLONE`].
        const CLONE_FORCE = 1 << 25;
        /// A quarantine flag, not a copy mode: when the source carries
        /// quarantine information, add `QTN_FLAG_DO_NOT_TRANSLOCATE` to the
        /// destination's, so a copied app bundle runs in place instead of
        /// being translocated by Gatekeeper.
        const RUN_IN_PLACE = 1 << 26;
        /// Keep holes: copy only the data segments of a sparse source.
        const DATA_SPARSE = 1 << 27;
        /// Keep the destination's "tracked" status (document identity).
        const PRESERVE_DST_TRACKED = 1 << 28;
        /// Log progress to stderr.
        const VERBOSE = 1 << 30;
    }
}

bitflags! {
    /// BSD file flags (`st_flags`, `chflags(2)`, `<sys/stat.h>`). `UF_*`
    /// flags may be changed by the owner, `SF_*` flags only by the
    /// super-user.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    pub struct FileFlags: u32 {
        /// Do not dump (`nodump`).
        const UF_NODUMP = 0x0000_0001;
        /// The file may not be changed (`uchg`).
        const UF_IMMUTABLE = 0x0000_0002;
        /// Writes may only append (`uappnd`).
        const UF_APPEND = 0x0000_0004;
        /// The directory is opaque in a union mount.
        const UF_OPAQUE = 0x0000_0008;
        /// The data is stored compressed (decmpfs): part of how the bytes
        /// are kept, not a property to copy or clear.
        const UF_COMPRESSED = 0x0000_0020;
        /// Renames and deletes are tracked (document identity).
        const UF_TRACKED = 0x0000_0040;
        /// Hidden from the Finder (`hidden`).
        const UF_HIDDEN = 0x0000_8000;
        /// Archived (`arch`).
        const SF_ARCHIVED = 0x0001_0000;
        /// The file may not be changed, even by its owner (`schg`).
        const SF_IMMUTABLE = 0x0002_0000;
        /// Writes may only append, even for its owner (`sappnd`).
        const SF_APPEND = 0x0004_0000;
        /// The file may not be removed or renamed (`sunlnk`).
        const SF_NOUNLINK = 0x0010_0000;
    }
}

/// `ACL_TYPE_EXTENDED` from `<sys/acl.h>`: the NFSv4-style ACLs of macOS.
pub const ACL_TYPE_EXTENDED: i32 = 0x0000_0100;

/// `COPYFILE_STATE_COPIED`: bytes copied so far (`off_t`).
pub const COPYFILE_STATE_COPIED: u32 = 8;
/// `COPYFILE_STATE_WAS_CLONED`: whether the data was cloned (`bool`).
pub const COPYFILE_STATE_WAS_CLONED: u32 = 10;

/// `F_LOG2PHYS_EXT` from `<sys/fcntl.h>`.
pub const F_LOG2PHYS_EXT: i32 = 65;

/// `struct log2phys` from `<sys/fcntl.h>`, declared under `#pragma pack(4)`:
/// 20 bytes, no padding after the first field.
#[repr(C, packed(4))]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Log2Phys {
    /// Unused flags (0).
    pub l2p_flags: u32,
    /// In: bytes to look at; out: contiguous bytes at `l2p_devoffset`.
    pub l2p_contigbytes: i64,
    /// In: file offset; out: device offset in bytes, or -1 when the offset
    /// is not backed by blocks (a hole or unflushed data).
    pub l2p_devoffset: i64,
}

fn cstr(path: &Path) -> io::Result<CString> {
    CString::new(path.as_os_str().as_bytes()).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("path contains a NUL byte: {}", path.display()),
        )
    })
}

fn check(ret: i32) -> io::Result<()> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// Clones the file (or, with care, directory tree) `src` to the new path
/// `dst` (`clonefile(2)`): same data blocks, metadata copied, `EEXIST` when
/// `dst` exists, `ENOTSUP` on filesystems without clones, `EXDEV` across
/// volumes.
pub fn clonefile(src: &Path, dst: &Path, flags: CloneFlags) -> io::Result<()> {
    let (src, dst) = (cstr(src)?, cstr(dst)?);
    // SAFETY: both pointers are NUL-terminated strings owned by this frame
    // and alive for the whole call; clonefile does not keep them.
    check(unsafe { libc::clonefile(src.as_ptr(), dst.as_ptr(), flags.bits()) })
}

/// [`clonefile`] with each path relative to a directory descriptor
/// (`clonefileat(2)`); pass `rustix::fs::CWD` for the current directory.
pub fn clonefileat(
    src_dirfd: BorrowedFd<'_>,
    src: &Path,
    dst_dirfd: BorrowedFd<'_>,
    dst: &Path,
    flags: CloneFlags,
) -> io::Result<()> {
    let (src, dst) = (cstr(src)?, cstr(dst)?);
    // SAFETY: the descriptors are borrowed and open for the call; the paths
    // are NUL-terminated strings alive for the whole call.
    check(unsafe {
        libc::clonefileat(
            src_dirfd.as_raw_fd(),
            src.as_ptr(),
            dst_dirfd.as_raw_fd(),
            dst.as_ptr(),
            flags.bits(),
        )
    })
}

/// Clones the open file `src` to the new name `dst` relative to `dst_dirfd`
/// (`fclonefileat(2)`): the descriptor form that still clones. `EEXIST` when
/// `dst` exists.
pub fn fclonefileat(
    src: BorrowedFd<'_>,
    dst_dirfd: BorrowedFd<'_>,
    dst: &Path,
    flags: CloneFlags,
) -> io::Result<()> {
    let flags = rustix::fs::CloneFlags::from_bits_retain(flags.bits());
    Ok(rustix::fs::fclonefileat(src, dst_dirfd, dst, flags)?)
}

/// An owned `copyfile_state_t` (`copyfile_state_alloc`, freed on drop):
/// pass it to [`copyfile`]/[`fcopyfile`] to learn what the copy did.
///
/// One state reports on one copy: a second [`copyfile`]/[`fcopyfile`] with
/// the same state is refused (`InvalidInput`). libcopyfile keeps the first
/// call's descriptors in the state and would reuse them, possibly after they
/// were closed and their numbers given to other files, and it never resets
/// `WAS_CLONED`. Descriptors that `copyfile` opened itself are closed on
/// drop; borrowed ones given to `fcopyfile` are not.
#[derive(Debug)]
pub struct CopyfileState {
    raw: NonNull<c_void>,
    used: bool,
}

impl CopyfileState {
    /// Allocates an empty state.
    pub fn new() -> io::Result<Self> {
        // SAFETY: copyfile_state_alloc takes no arguments and returns a new
        // heap object or NULL.
        let raw = unsafe { libc::copyfile_state_alloc() };
        NonNull::new(raw)
            .map(|raw| CopyfileState { raw, used: false })
            .ok_or_else(io::Error::last_os_error)
    }

    /// The raw `copyfile_state_t`, still owned by `self`.
    pub fn as_raw(&self) -> libc::copyfile_state_t {
        self.raw.as_ptr()
    }

    /// Whether the last copy made with this state cloned the data
    /// (`COPYFILE_STATE_WAS_CLONED`).
    pub fn was_cloned(&self) -> io::Result<bool> {
        let mut cloned = false;
        // SAFETY: the state is live (owned by self); for WAS_CLONED
        // copyfile_state_get writes exactly one C `bool` through the pointer,
        // which points at a Rust `bool` (same size and representation).
        check(unsafe {
            libc::copyfile_state_get(
                self.as_raw(),
                COPYFILE_STATE_WAS_CLONED,
                (&raw mut cloned).cast(),
            )
        })?;
        Ok(cloned)
    }

    /// Bytes of data the last copy with this state wrote
    /// (`COPYFILE_STATE_COPIED`).
    pub fn copied(&self) -> io::Result<u64> {
        let mut copied: libc::off_t = 0;
        // SAFETY: the state is live; for COPIED copyfile_state_get writes
        // one `off_t` through the pointer, which points at an `off_t`.
        check(unsafe {
            libc::copyfile_state_get(
                self.as_raw(),
                COPYFILE_STATE_COPIED,
                (&raw mut copied).cast(),
            )
        })?;
        u64::try_from(copied).map_err(|_| io::Error::other("negative COPYFILE_STATE_COPIED"))
    }
}

impl Drop for CopyfileState {
    fn drop(&mut self) {
        // SAFETY: `raw` came from copyfile_state_alloc and is freed exactly
        // once, here; nothing can use it afterwards.
        unsafe {
            libc::copyfile_state_free(self.raw.as_ptr());
        }
    }
}

/// The raw state for one copy (NULL for none), marking it used.
fn state_ptr(state: Option<&mut CopyfileState>) -> io::Result<libc::copyfile_state_t> {
    let Some(state) = state else {
        return Ok(std::ptr::null_mut());
    };
    if state.used {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "a CopyfileState reports on one copy; allocate a new one",
        ));
    }
    state.used = true;
    Ok(state.as_raw())
}

/// Copies `src` to `dst` by path (`copyfile(3)`), cloning when `flags` has
/// [`CopyFileFlags::CLONE`] and the volume allows it (then
/// [`CopyfileState::was_cloned`] says true).
pub fn copyfile(
    src: &Path,
    dst: &Path,
    state: Option<&mut CopyfileState>,
    flags: CopyFileFlags,
) -> io::Result<()> {
    let (src, dst) = (cstr(src)?, cstr(dst)?);
    let state = state_ptr(state)?;
    // SAFETY: the paths are NUL-terminated strings alive for the call; the
    // state is NULL (allowed) or a live, never used state exclusively
    // borrowed for the call (so it holds no stale descriptors).
    check(unsafe { libc::copyfile(src.as_ptr(), dst.as_ptr(), state, flags.bits()) })
}

/// Copies between open descriptors (`fcopyfile(3)`). It never clones, even
/// with [`CopyFileFlags::CLONE`]: use [`fclonefileat`] or [`copyfile`] for
/// that.
pub fn fcopyfile(
    src: BorrowedFd<'_>,
    dst: BorrowedFd<'_>,
    state: Option<&mut CopyfileState>,
    flags: CopyFileFlags,
) -> io::Result<()> {
    let state = state_ptr(state)?;
    // SAFETY: both descriptors are borrowed and open for the call; the state
    // is NULL (allowed) or a live, never used state exclusively borrowed for
    // the call, so libcopyfile takes these descriptors (a used state would
    // make it reuse old, possibly closed ones) and, having no paths, never
    // closes them.
    check(unsafe { libc::fcopyfile(src.as_raw_fd(), dst.as_raw_fd(), state, flags.bits()) })
}

/// `setattrlistat(2)`'s C prototype (`<sys/attr.h>`).
type SetattrlistatFn = unsafe extern "C" fn(
    libc::c_int,
    *const libc::c_char,
    *mut c_void,
    *mut c_void,
    libc::size_t,
    u32,
) -> libc::c_int;

/// `setattrlistat`, looked up once (macOS 10.13+; Rust still supports 10.12).
fn setattrlistat_fn() -> Option<SetattrlistatFn> {
    static FUNC: OnceLock<Option<SetattrlistatFn>> = OnceLock::new();
    *FUNC.get_or_init(|| {
        let addr = runtime_symbol(c"setattrlistat")?;
        // SAFETY: the symbol named setattrlistat is libc's function, whose C
        // prototype is exactly `SetattrlistatFn`; a non-null function
        // address is a valid function pointer.
        Some(unsafe { std::mem::transmute::<*mut c_void, SetattrlistatFn>(addr.as_ptr()) })
    })
}

/// Whether [`chflagsat`] works on this system (macOS 10.13+).
pub fn has_chflagsat() -> bool {
    setattrlistat_fn().is_some()
}

/// Sets the BSD flags of the entry `name` in the directory `dir` to `flags`
/// without opening it and without following a symbolic link there:
/// `setattrlistat(2)` with `ATTR_CMN_FLAGS` and `FSOPT_NOFOLLOW`, the
/// `chflagsat` macOS does not have. `setattrlistat` exists from macOS 10.13
/// on and is looked up at run time: older systems answer `ENOSYS`.
///
/// Changing flags needs ownership (or the super-user for `SF_*` flags),
/// not access: it works on a file whose mode denies reading and writing.
pub fn chflagsat(dir: BorrowedFd<'_>, name: &Path, flags: FileFlags) -> io::Result<()> {
    let func = setattrlistat_fn().ok_or_else(not_on_this_macos)?;
    let name = cstr(name)?;
    let mut list = libc::attrlist {
        bitmapcount: libc::ATTR_BIT_MAP_COUNT,
        reserved: 0,
        commonattr: libc::ATTR_CMN_FLAGS,
        volattr: 0,
        dirattr: 0,
        fileattr: 0,
        forkattr: 0,
    };
    // setattrlist's buffer holds the values only (no leading length, unlike
    // getattrlist's): one u_int32_t for ATTR_CMN_FLAGS.
    let mut value: u32 = flags.bits();
    // SAFETY: the descriptor is borrowed and open; `name` is a
    // NUL-terminated string alive for the call; `list` is a valid attrlist
    // asking for one attribute, and `value` is the 4-byte buffer holding
    // it, whose size is passed; the kernel only reads both during the call.
    check(unsafe {
        func(
            dir.as_raw_fd(),
            name.as_ptr(),
            (&raw mut list).cast(),
            (&raw mut value).cast(),
            std::mem::size_of::<u32>(),
            libc::FSOPT_NOFOLLOW,
        )
    })
}

unsafe extern "C" {
    fn acl_get_fd_np(fd: libc::c_int, ty: libc::c_int) -> *mut c_void;
    fn acl_free(obj: *mut c_void) -> libc::c_int;
}

/// Whether the open file has an extended access control list
/// (`acl_get_fd_np(fd, ACL_TYPE_EXTENDED)`: `NULL` with `ENOENT` means none;
/// any ACL object, even one without entries, counts as one).
pub fn has_extended_acl(fd: BorrowedFd<'_>) -> io::Result<bool> {
    // SAFETY: the descriptor is borrowed and open for the call;
    // acl_get_fd_np returns a new ACL object (freed below) or NULL.
    let acl = unsafe { acl_get_fd_np(fd.as_raw_fd(), ACL_TYPE_EXTENDED) };
    if acl.is_null() {
        let e = io::Error::last_os_error();
        return match e.raw_os_error() {
            Some(libc::ENOENT) => Ok(false),
            _ => Err(e),
        };
    }
    // SAFETY: `acl` came from acl_get_fd_np and is freed exactly once.
    unsafe {
        acl_free(acl);
    }
    Ok(true)
}

/// Where `len` bytes of the file at `offset` live on the device
/// (`fcntl(F_LOG2PHYS_EXT)`).
///
/// The answer's `l2p_devoffset` is the device byte offset of `offset` (or -1
/// when it is not backed by blocks) and `l2p_contigbytes` how many bytes from
/// there are contiguous on the device (at most `len`). Sync the file first:
/// dirty data has no location yet. At or after EOF APFS answers `ERANGE`.
pub fn log2phys_ext(fd: BorrowedFd<'_>, offset: u64, len: u64) -> io::Result<Log2Phys> {
    let too_big = |_| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            "offset or length over i64::MAX",
        )
    };
    let mut l2p = Log2Phys {
        l2p_flags: 0,
        l2p_contigbytes: i64::try_from(len).map_err(too_big)?,
        l2p_devoffset: i64::try_from(offset).map_err(too_big)?,
    };
    // SAFETY: F_LOG2PHYS_EXT reads and writes one `struct log2phys` through
    // the pointer; `l2p` is that struct (packed(4), 20 bytes, layout tested)
    // and lives across the call. The descriptor is borrowed and open.
    check(unsafe { libc::fcntl(fd.as_raw_fd(), F_LOG2PHYS_EXT, &raw mut l2p) })?;
    Ok(l2p)
}

/// `mkfifoat(2)`'s C prototype (`<sys/stat.h>`).
type MkfifoatFn =
    unsafe extern "C" fn(libc::c_int, *const libc::c_char, libc::mode_t) -> libc::c_int;

/// `mknodat(2)`'s C prototype (`<sys/stat.h>`).
type MknodatFn = unsafe extern "C" fn(
    libc::c_int,
    *const libc::c_char,
    libc::mode_t,
    libc::dev_t,
) -> libc::c_int;

/// The address of the C function `name` in the loaded images, or `None`
/// when this system's libraries do not export it.
fn runtime_symbol(name: &CStr) -> Option<NonNull<c_void>> {
    // SAFETY: RTLD_DEFAULT is the documented pseudo-handle that searches
    // every loaded image; `name` is a NUL-terminated string alive for the
    // call and dlsym keeps no pointer to it.
    NonNull::new(unsafe { libc::dlsym(libc::RTLD_DEFAULT, name.as_ptr()) })
}

/// `ENOSYS`: the running macOS has no such call.
fn not_on_this_macos() -> io::Error {
    io::Error::from_raw_os_error(libc::ENOSYS)
}

/// Creates the FIFO `name` relative to the directory `dir` with permission
/// bits `mode` (less the umask), like `mkfifoat(2)`.
///
/// `mkfifoat` exists from macOS 13 on; it is looked up at run time (once),
/// so the same binary runs on older systems, where this returns `ENOSYS`.
pub fn mkfifoat(dir: BorrowedFd<'_>, name: &CStr, mode: u16) -> io::Result<()> {
    static FUNC: OnceLock<Option<MkfifoatFn>> = OnceLock::new();
    let func = FUNC.get_or_init(|| {
        let addr = runtime_symbol(c"mkfifoat")?;
        // SAFETY: the symbol named mkfifoat is libc's function, whose C
        // prototype is exactly `MkfifoatFn`; a non-null function address
        // is a valid function pointer.
        Some(unsafe { std::mem::transmute::<*mut c_void, MkfifoatFn>(addr.as_ptr()) })
    });
    let func = func.ok_or_else(not_on_this_macos)?;
    // SAFETY: the descriptor is borrowed and open for the call; `name` is a
    // NUL-terminated string alive for the whole call and not kept.
    check(unsafe { func(dir.as_raw_fd(), name.as_ptr(), mode) })
}

/// Creates the node `name` relative to the directory `dir`: `mode` holds the
/// file type (`S_IFCHR`, `S_IFBLK`, `S_IFIFO`, ...) and the permission bits,
/// `dev` the device number of a device node (`mknodat(2)`). Device nodes
/// need super-user privileges (`EPERM` otherwise).
///
/// `mknodat` exists from macOS 13 on; it is looked up at run time (once),
/// so the same binary runs on older systems, where this returns `ENOSYS`.
pub fn mknodat(dir: BorrowedFd<'_>, name: &CStr, mode: u16, dev: i32) -> io::Result<()> {
    static FUNC: OnceLock<Option<MknodatFn>> = OnceLock::new();
    let func = FUNC.get_or_init(|| {
        let addr = runtime_symbol(c"mknodat")?;
        // SAFETY: the symbol named mknodat is libc's function, whose C
        // prototype is exactly `MknodatFn`; a non-null function address is
        // a valid function pointer.
        Some(unsafe { std::mem::transmute::<*mut c_void, MknodatFn>(addr.as_ptr()) })
    });
    let func = func.ok_or_else(not_on_this_macos)?;
    // SAFETY: the descriptor is borrowed and open for the call; `name` is a
    // NUL-terminated string alive for the whole call and not kept.
    check(unsafe { func(dir.as_raw_fd(), name.as_ptr(), mode, dev) })
}
