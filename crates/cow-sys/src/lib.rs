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
//! | module | calls |
//! |---|---|
//! | [`linux`] | `FICLONE`, `FICLONERANGE`, `FIDEDUPERANGE`, `FS_IOC_FIEMAP` |
//! | `macos` | `clonefile`, `clonefileat`, `fclonefileat`, `copyfile`, `fcopyfile`, `copyfile_state_*`, `F_LOG2PHYS_EXT` |
//! | `windows` | `FSCTL_DUPLICATE_EXTENTS_TO_FILE`, `FSCTL_GET/SET_INTEGRITY_INFORMATION`, volume flags |
//!
//! Every `unsafe` block of the project lives in this crate and carries a
//! `// SAFETY:` comment. Struct layouts are checked by tests against the C
//! headers (compiled on Linux; documented values elsewhere).

#![deny(unsafe_op_in_unsafe_fn)]

#[cfg(any(target_os = "linux", target_os = "android"))]
pub mod linux;
