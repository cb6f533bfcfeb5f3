//! Raw copy-on-write bindings with thin `io::Result` wrappers. No policy.
//!
//! ```no_run
//! # #[cfg(target_os = "linux")]
//! # fn main() -> std::io::Result<()> {
//! use std::os::fd::AsFd;
//! let src = std::fs::File::open("big.img")?;
//! let dst = std::fs::File::create("big.clone")?;
//! // Share every block of `src` with `dst` (btrfs, XFS, bcachefs...).
//! cow_sys::linux::ficlone(dst.as_fd(), src.as_fd())?;
//! // Which extents are shared now?
//! for e in cow_sys::linux::fiemap_all(dst.as_fd(), cow_sys::linux::FiemapFlags::SYNC)? {
//!     println!("{:?} shared={}", e, e.flags().contains(cow_sys::linux::FiemapExtentFlags::SHARED));
//! }
//! # Ok(())
//! # }
//! # #[cfg(not(target_os = "linux"))]
//! # fn main() {}
//! ```
//!
//! One module per platform, selected here and nowhere else:
//!
//! | module | target | calls |
//! |---|---|---|
//! | `linux` | Linux, Android | `FICLONE`, `FICLONERANGE`, `FIDEDUPERANGE` (per-destination status), `FS_IOC_FIEMAP`, btrfs `BTRFS_IOC_TREE_SEARCH_V2` (`linux::btrfs`) |
//! | `macos` | macOS | `clonefile`, `clonefileat`, `fclonefileat`, `copyfile`, `fcopyfile`, `copyfile_state_*` (`WAS_CLONED`), `F_LOG2PHYS_EXT`, BSD file flags and `chflagsat` (`setattrlistat`), `has_extended_acl` (`acl_get_fd_np`), `mkfifoat`/`mknodat` (looked up at run time: macOS 13+) |
//! | `windows` | Windows | `FSCTL_DUPLICATE_EXTENTS_TO_FILE`, `FSCTL_GET/SET_INTEGRITY_INFORMATION`, `FSCTL_SET_SPARSE`, volume flags, file system name, cluster size |
//! | `freebsd` | FreeBSD | `copy_file_range` (clones on ZFS with block cloning) |
//!
//! Other targets get no module: there is nothing copy-on-write to bind.
//! Every `unsafe` block of the project lives in this crate and carries a
//! `// SAFETY:` comment. Struct layouts are checked by tests: on Linux
//! against the installed kernel headers (a C probe compiled at test time) and
//! the documented numbers, elsewhere against the documented numbers and the
//! `windows-sys` definitions.

#![deny(unsafe_op_in_unsafe_fn)]

#[cfg(target_os = "freebsd")]
pub mod freebsd;
#[cfg(any(target_os = "linux", target_os = "android"))]
pub mod linux;
#[cfg(target_os = "macos")]
pub mod macos;
#[cfg(windows)]
pub mod windows;
