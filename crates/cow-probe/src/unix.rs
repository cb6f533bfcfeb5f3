//! What every Unix shares: the target directory, scratch files with a
//! cleanup guard, the `SEEK_DATA` hole test, errno names.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use rustix::fs::{Access, AtFlags, Mode, OFlags, SeekFrom};
use rustix::io::Errno;

use crate::kind::FsKind;
use crate::{Answer, Capabilities, ProbeError, Support, count_scratch, from_errno, io_err};

/// What `statfs` says about the directory's filesystem.
pub(crate) struct FsInfo {
    pub(crate) kind: FsKind,
    pub(crate) name: String,
    pub(crate) block_size: u64,
    pub(crate) read_only: bool,
}

/// The directory a probe works in.
pub(crate) struct Target {
    dir: File,
    dir_path: PathBuf,
    dev: u64,
}

impl Target {
    /// `path` itself when it is a directory, else its parent.
    pub(crate) fn open(path: &Path) -> Result<Target, ProbeError> {
        let dir_path = crate::dir_of(path)?;
        let fd = rustix::fs::open(
            &dir_path,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| io_err("open", &dir_path, e))?;
        let st = rustix::fs::fstat(&fd).map_err(|e| io_err("fstat", &dir_path, e))?;
        #[allow(clippy::unnecessary_cast)]
        let dev = st.st_dev as u64;
        Ok(Target {
            dir: File::from(fd),
            dir_path,
            dev,
        })
    }

    /// The directory's device id.
    pub(crate) fn dev(&self) -> u64 {
        self.dev
    }

    /// Whether answers may be cached per device.
    pub(crate) fn cacheable(&self) -> bool {
        true
    }

    /// Whether we may create files in the directory, as far as permissions
    /// and mount flags tell without trying.
    pub(crate) fn may_be_writable(&self) -> bool {
        rustix::fs::accessat(
            &self.dir,
            ".",
            Access::WRITE_OK | Access::EXEC_OK,
            AtFlags::EACCESS,
        )
        .is_ok()
    }

    /// Probes live when the directory takes scratch files, else answers
    /// from the table.
    pub(crate) fn probe(&self, path: &Path) -> Result<Capabilities, ProbeError> {
        let info = crate::sys::fs_info(&self.dir, &self.dir_path)?;
        let hint = info.kind.table_hint();
        let answers = if info.read_only {
            None
        } else {
            let mut scratch = Scratch {
                dir: &self.dir,
                dir_path: &self.dir_path,
                dev: self.dev,
                names: Vec::new(),
                block: probe_block(info.block_size),
            };
            crate::sys::live(&mut scratch, &info)?
        };
        let [reflink, dedupe, sparse, fiemap, copy_file_range] =
            answers.unwrap_or_else(|| crate::not_writable(hint));
        Ok(Capabilities {
            path: path.to_path_buf(),
            fs: info.kind,
            fs_name: info.name,
            block_size: info.block_size,
            dev: self.dev,
            read_only: info.read_only,
            reflink,
            dedupe,
            sparse,
            fiemap,
            copy_file_range,
        })
    }
}

/// The unit of the scratch files: the filesystem block when it is a sane
/// power of two, else 64 KiB (a multiple of every common block size).
fn probe_block(block_size: u64) -> u64 {
    if block_size.is_power_of_two() && (512..=65536).contains(&block_size) {
        block_size
    } else {
        65536
    }
}

/// Scratch files in the target directory, removed when this is dropped
/// (every return path, panics included).
pub(crate) struct Scratch<'a> {
    dir: &'a File,
    dir_path: &'a Path,
    dev: u64,
    names: Vec<String>,
    /// Size of one block of scratch data.
    pub(crate) block: u64,
}

static SEQ: AtomicU64 = AtomicU64::new(0);

/// Errnos that mean "this directory does not take (more) data": the probe
/// falls back to the table instead of failing.
fn refuses_writes(e: Errno) -> bool {
    [
        Errno::ACCESS,
        Errno::PERM,
        Errno::ROFS,
        Errno::NOSPC,
        Errno::DQUOT,
    ]
    .contains(&e)
}

impl Scratch<'_> {
    /// A new empty scratch file (`O_CREAT | O_EXCL`, mode 0600), or `None`
    /// when the directory refuses it, whatever the reason (`EACCES`,
    /// `EROFS`, `ENOSPC`, `ENOENT` in `/proc`...): such a directory cannot
    /// be tested live.
    pub(crate) fn create(&mut self, tag: &str) -> Option<File> {
        let name = format!(
            ".cow-probe.{}.{}.{tag}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        );
        let fd = rustix::fs::openat(
            self.dir,
            name.as_str(),
            OFlags::CREATE | OFlags::EXCL | OFlags::RDWR | OFlags::CLOEXEC,
            Mode::RUSR | Mode::WUSR,
        )
        .ok()?;
        self.names.push(name);
        count_scratch(self.dev);
        Some(File::from(fd))
    }

    /// A fresh scratch name for a file some call will create (such as
    /// `fclonefileat`); removed with the others. Counted as created.
    #[cfg_attr(not(target_os = "macos"), allow(dead_code))]
    pub(crate) fn reserve(&mut self, tag: &str) -> String {
        let name = format!(
            ".cow-probe.{}.{}.{tag}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        );
        self.names.push(name.clone());
        count_scratch(self.dev);
        name
    }

    /// The directory the scratch files live in.
    #[cfg_attr(not(target_os = "macos"), allow(dead_code))]
    pub(crate) fn dir(&self) -> &File {
        self.dir
    }

    /// Writes `data` at `offset`; `None` when the filesystem refuses the
    /// data (full, quota).
    pub(crate) fn write(
        &self,
        f: &File,
        data: &[u8],
        offset: u64,
    ) -> Result<Option<()>, ProbeError> {
        match f.write_all_at(data, offset).and_then(|()| f.sync_all()) {
            Ok(()) => Ok(Some(())),
            Err(e) if Errno::from_io_error(&e).is_some_and(refuses_writes) => Ok(None),
            Err(e) => Err(io_err("pwrite", self.dir_path, e)),
        }
    }

    /// One block of recognisable, non-zero, incompressible-enough data.
    pub(crate) fn data(&self) -> Vec<u8> {
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        (0..self.block)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 24) as u8
            })
            .collect()
    }

    /// A scratch file two blocks long: a hole, then one block of
    /// [`Scratch::data`]. `None` when the directory refuses it.
    pub(crate) fn hole_then_data(&mut self, tag: &str) -> Result<Option<File>, ProbeError> {
        let Some(f) = self.create(tag) else {
            return Ok(None);
        };
        f.set_len(2 * self.block)
            .map_err(|e| io_err("ftruncate", self.dir_path, e))?;
        Ok(self.write(&f, &self.data(), self.block)?.map(|()| f))
    }
}

impl Drop for Scratch<'_> {
    fn drop(&mut self) {
        for name in self.names.drain(..) {
            let _ = rustix::fs::unlinkat(self.dir, name.as_str(), AtFlags::empty());
        }
    }
}

/// Does `SEEK_DATA` see the hole at the start of a [`Scratch::hole_then_data`]
/// file?
pub(crate) fn sparse_answer(f: &File, block: u64) -> Answer {
    match rustix::fs::seek(f, SeekFrom::Data(0)) {
        Ok(at) if at >= block => Answer::live(Support::Yes),
        Ok(_) => Answer::live(Support::No),
        Err(e) => from_errno("lseek(SEEK_DATA)", e.raw_os_error()),
    }
}

/// Errnos meaning "this call is not supported here".
pub(crate) fn means_unsupported(errno: i32) -> bool {
    let e = Errno::from_raw_os_error(errno);
    [
        Errno::OPNOTSUPP,
        Errno::NOTSUP,
        Errno::NOTTY,
        Errno::INVAL,
        Errno::NOSYS,
        Errno::XDEV,
    ]
    .contains(&e)
}

/// Names of the errnos a probe is likely to see.
pub(crate) fn errno_name(errno: i32) -> Option<&'static str> {
    let e = Errno::from_raw_os_error(errno);
    [
        (Errno::OPNOTSUPP, "EOPNOTSUPP"),
        (Errno::NOTSUP, "ENOTSUP"),
        (Errno::NOTTY, "ENOTTY"),
        (Errno::INVAL, "EINVAL"),
        (Errno::NOSYS, "ENOSYS"),
        (Errno::XDEV, "EXDEV"),
        (Errno::PERM, "EPERM"),
        (Errno::ACCESS, "EACCES"),
        (Errno::ROFS, "EROFS"),
        (Errno::NOSPC, "ENOSPC"),
        (Errno::DQUOT, "EDQUOT"),
        (Errno::IO, "EIO"),
        (Errno::BADF, "EBADF"),
        (Errno::TXTBSY, "ETXTBSY"),
        (Errno::NXIO, "ENXIO"),
        (Errno::RANGE, "ERANGE"),
        (Errno::NOMEM, "ENOMEM"),
    ]
    .iter()
    .find(|(x, _)| *x == e)
    .map(|&(_, n)| n)
}

/// `statfs` on macOS and FreeBSD: the kind from `f_fstypename`.
#[cfg(not(any(target_os = "linux", target_os = "android")))]
pub(crate) fn bsd_fs_info(dir: &File, dir_path: &Path) -> Result<FsInfo, ProbeError> {
    let st = rustix::fs::fstatfs(dir).map_err(|e| io_err("fstatfs", dir_path, e))?;
    let name: String = st
        .f_fstypename
        .iter()
        .take_while(|&&c| c != 0)
        .map(|&c| c as u8 as char)
        .collect();
    let vfs = rustix::fs::fstatvfs(dir).map_err(|e| io_err("fstatvfs", dir_path, e))?;
    Ok(FsInfo {
        kind: FsKind::from_type_name(&name),
        name,
        #[allow(clippy::unnecessary_cast)]
        block_size: st.f_bsize as u64,
        read_only: vfs.f_flag.contains(rustix::fs::StatVfsMountFlags::RDONLY),
    })
}
