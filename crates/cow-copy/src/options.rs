//! Copy options: a small builder passed by value.

use std::path::Path;

use crate::{CopyError, CopyReport};

/// Whether to share blocks with the source instead of copying them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Reflink {
    /// Clone when the filesystem can, otherwise copy (the default).
    #[default]
    Auto,
    /// Clone or fail with [`CopyError::ReflinkUnsupported`]; never copies
    /// bytes, and a failed attempt leaves nothing behind: a destination the
    /// copy created is removed, an existing one is left untouched.
    ///
    /// One exception is reported, not hidden: btrfs keeps files smaller than
    /// a block inline in its metadata, where the clone ioctl succeeds by
    /// copying them; the report then counts those bytes as copied.
    Always,
    /// Never share blocks: not even implicitly, so the kernel copy
    /// (`copy_file_range`, which reflinks on btrfs and XFS) is skipped too.
    Never,
}

/// How holes (unallocated ranges) are treated.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Sparse {
    /// Keep the holes the source has (the default).
    #[default]
    Auto,
    /// Keep the source's holes and also leave a hole for every whole block of
    /// zeros inside its data. Zero detection needs the bytes, so the kernel
    /// copy is skipped; a clone still runs (shared zero blocks cost nothing).
    Always,
    /// Allocate every byte of the destination: holes become written zeros.
    /// Not with [`Reflink::Always`], which never writes data: a clone keeps
    /// the source's holes.
    Never,
}

/// The fate of a destination that exists: replaced, refused, or kept when
/// a check finds it needs no copy. A missing destination is copied under
/// every variant.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Overwrite {
    /// Replace its content (the default, like `std::fs::copy`).
    #[default]
    Replace,
    /// Fail with [`CopyError::DestinationExists`] and leave it alone.
    NoClobber,
    /// Keep a destination whose *content* is identical to the source's
    /// (see [`crate::identical`]; times are not looked at) and replace any
    /// other: it is left alone ([`Strategy::Skipped`](crate::Strategy::Skipped)),
    /// no data written, its inode, times and extents untouched, so blocks it
    /// shares with snapshots stay shared. The check costs nothing more when
    /// the sizes differ and one block read per file when the content
    /// differs early.
    IfDifferent,
    /// Like [`Overwrite::IfDifferent`], and also make the *source* share the
    /// identical destination's blocks (`FIDEDUPERANGE`, compared by the
    /// kernel), so the new copy's blocks are freed
    /// ([`Strategy::Deduped`](crate::Strategy::Deduped)). Where dedupe is
    /// impossible (other filesystem, no permission, no support) the
    /// destination is still skipped.
    IfDifferentDedupe,
    /// Like [`Overwrite::IfDifferent`], with rsync's quick check first: a
    /// destination whose size and modification time (to the nanosecond)
    /// equal the source's counts as identical *without being read*
    /// ([`Strategy::Skipped`](crate::Strategy::Skipped)). Every other
    /// destination goes through the content comparison, so a file rewritten
    /// with the same bytes but a new time still keeps its blocks.
    ///
    /// This trusts the times: a destination changed in place with its time
    /// set back (or written within the filesystem's time granularity with
    /// the same size) is kept even though its bytes differ. Use
    /// [`Overwrite::IfDifferent`] when that must not happen.
    IfDifferentTrustMtime,
    /// Replace the destination only when it is older than the source (its
    /// modification time is earlier), like GNU `cp -u` (`--update=older`).
    /// Only the times are compared, to the nanosecond; the content is never
    /// read. A destination that is as new or newer is left completely
    /// alone, content and metadata
    /// ([`Strategy::KeptNewer`](crate::Strategy::KeptNewer)).
    IfOlder,
}

impl Overwrite {
    /// Whether an existing destination may be kept after a check (the
    /// `IfDifferent*` and `IfOlder` variants).
    pub(crate) fn checks_destination(self) -> bool {
        !matches!(self, Overwrite::Replace | Overwrite::NoClobber)
    }

    /// The two keys the JSON of [`CopyOptions`] has always had: `overwrite`
    /// (`replace` or `no-clobber`) and `update` (`all`, `if-different`,
    /// `if-different-dedupe`, `if-different-trust-mtime`, `if-older`).
    fn json_keys(self) -> (&'static str, &'static str) {
        match self {
            Overwrite::Replace => ("replace", "all"),
            Overwrite::NoClobber => ("no-clobber", "all"),
            Overwrite::IfDifferent => ("replace", "if-different"),
            Overwrite::IfDifferentDedupe => ("replace", "if-different-dedupe"),
            Overwrite::IfDifferentTrustMtime => ("replace", "if-different-trust-mtime"),
            Overwrite::IfOlder => ("replace", "if-older"),
        }
    }
}

/// Whether an existing destination file is removed before the copy, so a
/// new file is created in its place instead of writing into it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RemoveDestination {
    /// Write into the existing file (the default, like `std::fs::copy`).
    #[default]
    Never,
    /// Remove it first when it has more than one hard link, so the other
    /// names keep their content and owner (GNU `cp --preserve=links`, so
    /// `cp -a`): a hard link to some other file planted in the destination
    /// is never written through. The tree copy sets this with
    /// [`TreeOptions::preserve_hard_links`](crate::tree::TreeOptions::preserve_hard_links).
    IfLinked,
    /// Always remove it first (GNU `cp --remove-destination`); a symlink is
    /// removed, not followed.
    Always,
}

/// Which metadata of the source the destination receives.
///
/// The data-copy syscall never decides this: `FICLONE` copies no mode,
/// `clonefile` copies xattrs and ACLs, and the engine corrects both to what
/// these fields ask for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
pub struct Preserve {
    /// Copy the permission bits (default `true`, like `std::fs::copy`).
    ///
    /// `false` gives GNU `cp` behaviour: a new file gets the source's mode
    /// minus the umask, an existing destination keeps its own mode.
    pub mode: bool,
    /// Copy access and modification times (default `false`).
    pub timestamps: bool,
    /// Copy owner and group (default `false`). When that is not permitted the
    /// copy goes on and setuid/setgid bits are dropped, like `cp -p`.
    pub ownership: bool,
    /// Copy extended attributes (default `false`); on Linux this includes
    /// POSIX ACLs (`system.posix_acl_*`). Attributes the destination
    /// filesystem refuses are listed in [`CopyReport::metadata_skipped`].
    pub xattrs: bool,
}

impl Default for Preserve {
    fn default() -> Self {
        Preserve {
            mode: true,
            timestamps: false,
            ownership: false,
            xattrs: false,
        }
    }
}

impl Preserve {
    /// Everything: mode, timestamps, ownership and xattrs (`cp -a`).
    pub fn all() -> Self {
        Preserve {
            mode: true,
            timestamps: true,
            ownership: true,
            xattrs: true,
        }
    }

    /// Nothing: GNU `cp` defaults (mode from the source minus the umask for a
    /// new file, an existing destination keeps its mode).
    pub fn none() -> Self {
        Preserve {
            mode: false,
            timestamps: false,
            ownership: false,
            xattrs: false,
        }
    }
}

/// How to copy one file. Build with the methods below, then call
/// [`CopyOptions::copy`].
///
/// ```no_run
/// use cow_copy::{CopyOptions, Reflink};
/// let report = CopyOptions::new()
///     .reflink(Reflink::Always)
///     .atomic(true)
///     .copy("disk.img", "disk.snapshot")?;
/// println!("{}: {} bytes shared", report.strategy, report.bytes_cloned);
/// # Ok::<(), cow_copy::CopyError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct CopyOptions {
    pub(crate) reflink: Reflink,
    pub(crate) sparse: Sparse,
    pub(crate) overwrite: Overwrite,
    pub(crate) atomic: bool,
    pub(crate) fsync: bool,
    pub(crate) preserve: Preserve,
    pub(crate) follow_symlinks: bool,
    pub(crate) write_through_dangling: bool,
    pub(crate) remove_destination: RemoveDestination,
    pub(crate) retry_changed: u32,
    pub(crate) observer: crate::observe::Observer,
    pub(crate) cancel: crate::cancel::Cancel,
}

impl Default for CopyOptions {
    fn default() -> Self {
        CopyOptions::new()
    }
}

impl CopyOptions {
    /// The defaults: `reflink = auto`, `sparse = auto`, `overwrite =
    /// replace`, not atomic, no fsync, mode preserved, the source followed if
    /// it is a symlink (like `std::fs::copy`).
    pub fn new() -> Self {
        CopyOptions {
            reflink: Reflink::Auto,
            sparse: Sparse::Auto,
            overwrite: Overwrite::Replace,
            atomic: false,
            fsync: false,
            preserve: Preserve::default(),
            follow_symlinks: true,
            write_through_dangling: true,
            remove_destination: RemoveDestination::Never,
            retry_changed: 0,
            observer: crate::observe::Observer::default(),
            cancel: crate::cancel::Cancel::default(),
        }
    }

    /// Sets an observer told of the bytes as they are moved: a clone's
    /// whole length at once ([`Moved::Cloned`](crate::Moved::Cloned)), the
    /// kernel and read/write copies chunk by chunk
    /// ([`Moved::Copied`](crate::Moved::Copied)). For progress displays;
    /// it does not change what is copied. A tree copy passes it to every
    /// file.
    #[must_use]
    pub fn observer(mut self, observer: crate::MovedFn) -> Self {
        self.observer = crate::observe::Observer(Some(observer));
        self
    }

    /// Sets the clone policy.
    #[must_use]
    pub fn reflink(mut self, reflink: Reflink) -> Self {
        self.reflink = reflink;
        self
    }

    /// Sets the hole policy.
    #[must_use]
    pub fn sparse(mut self, sparse: Sparse) -> Self {
        self.sparse = sparse;
        self
    }

    /// Sets the fate of an existing destination (default
    /// [`Overwrite::Replace`]): replaced, refused ([`Overwrite::NoClobber`]),
    /// or kept when its content is already identical
    /// ([`Overwrite::IfDifferent`] and its variants, which compare content)
    /// or when it is not older than the source ([`Overwrite::IfOlder`],
    /// which compares modification times only).
    #[must_use]
    pub fn overwrite(mut self, overwrite: Overwrite) -> Self {
        self.overwrite = overwrite;
        self
    }

    /// Writes a temporary sibling (`.NAME.cow-tmp-XXXXXX`, mode 0600 while
    /// written) and renames it over the destination, so the old destination
    /// stays whole until the rename and a failure leaves it untouched.
    /// This replaces the destination's inode: hard links to the old file
    /// keep the old content.
    #[must_use]
    pub fn atomic(mut self, atomic: bool) -> Self {
        self.atomic = atomic;
        self
    }

    /// `fsync` the data (and, with `atomic`, the directory after the rename)
    /// before returning: the copy is on disk once it returns.
    ///
    /// Without it an atomic copy is still crash-atomic (after a power cut
    /// the destination is wholly old or wholly new: a temporary whose bytes
    /// were copied is `fdatasync`ed before the rename; a clone needs no
    /// sync), but the rename itself may be lost. A copy in place (not
    /// atomic) can be torn by a power cut with or without this option
    /// until it returns, like GNU `cp`.
    #[must_use]
    pub fn fsync(mut self, fsync: bool) -> Self {
        self.fsync = fsync;
        self
    }

    /// Copies a file up to `retries` more times when its source changed
    /// while its bytes were read (size, modification or change time
    /// differ, to the nanosecond; see [`CopyReport::source_changed`]).
    /// Default 0: the change is only reported.
    #[must_use]
    pub fn retry_changed(mut self, retries: u32) -> Self {
        self.retry_changed = retries;
        self
    }

    /// How many times a changing source is copied again.
    pub fn retry_changed_limit(&self) -> u32 {
        self.retry_changed
    }

    /// Sets which metadata is copied.
    #[must_use]
    pub fn preserve(mut self, preserve: Preserve) -> Self {
        self.preserve = preserve;
        self
    }

    /// Whether a symlink given as the source is followed (default `true`).
    /// With `false` a source symlink is an error
    /// ([`CopyError::NotARegularFile`]).
    #[must_use]
    pub fn follow_symlinks(mut self, follow: bool) -> Self {
        self.follow_symlinks = follow;
        self
    }

    /// Whether [`CopyOptions::copy`] creates the target of a destination
    /// that is a dangling symlink (default `true`, like `std::fs::copy`).
    ///
    /// With `false` (GNU `cp`) such a destination is
    /// [`CopyError::DanglingDestination`] and nothing is created. This is
    /// decided by construction, not by a look beforehand: once the
    /// destination was seen missing it is created with `O_EXCL` only, and an
    /// entry found there then (a symlink planted by another user, to a file
    /// they want created) is refused
    /// ([`CopyError::DestinationChanged`] if it is not a symlink).
    #[must_use]
    pub fn write_through_dangling(mut self, allow: bool) -> Self {
        self.write_through_dangling = allow;
        self
    }

    /// Whether a dangling destination symlink is written through.
    pub fn writes_through_dangling(&self) -> bool {
        self.write_through_dangling
    }

    /// Sets whether an existing destination is removed before the copy
    /// (default [`RemoveDestination::Never`]). A removed destination is
    /// replaced by a file created with `O_EXCL`; an entry that appears
    /// under the name meanwhile is [`CopyError::DestinationChanged`].
    #[must_use]
    pub fn remove_destination(mut self, policy: RemoveDestination) -> Self {
        self.remove_destination = policy;
        self
    }

    /// The remove-destination policy.
    pub fn remove_destination_policy(&self) -> RemoveDestination {
        self.remove_destination
    }

    /// The clone policy.
    pub fn reflink_policy(&self) -> Reflink {
        self.reflink
    }

    /// The hole policy.
    pub fn sparse_policy(&self) -> Sparse {
        self.sparse
    }

    /// The fate of an existing destination.
    pub fn overwrite_policy(&self) -> Overwrite {
        self.overwrite
    }

    /// Whether the copy is atomic.
    pub fn is_atomic(&self) -> bool {
        self.atomic
    }

    /// Whether the copy is fsynced.
    pub fn is_fsync(&self) -> bool {
        self.fsync
    }

    /// The metadata policy.
    pub fn preserve_policy(&self) -> Preserve {
        self.preserve
    }

    /// Whether a source symlink is followed.
    pub fn follows_symlinks(&self) -> bool {
        self.follow_symlinks
    }

    /// Copies `src` to `dst`, following a destination symlink like
    /// `std::fs::copy` does.
    ///
    /// The destination is opened without truncation and compared with the
    /// source by (device, inode) first: copying a file onto itself (through
    /// the same path, a hard link, a symlink or a bind mount) is
    /// [`CopyError::SameFile`] and changes nothing.
    ///
    /// Both paths take anything that is a path, like `std::fs::copy`:
    ///
    /// ```no_run
    /// use cow_copy::CopyOptions;
    /// let backup = String::from("disk.img.bak");
    /// CopyOptions::new().copy("disk.img", &backup)?;
    /// # Ok::<(), cow_copy::CopyError>(())
    /// ```
    pub fn copy(
        &self,
        src: impl AsRef<Path>,
        dst: impl AsRef<Path>,
    ) -> Result<CopyReport, CopyError> {
        crate::engine::copy_paths(self, src.as_ref(), dst.as_ref())
    }

    /// Copies `src_name` (relative to `src_dir`) to `dst_name` (relative to
    /// `dst_dir`), as `openat` would resolve them.
    ///
    /// Unlike [`CopyOptions::copy`] this never writes through a destination
    /// symlink: if `dst_name` is a symlink, the entry itself is replaced by
    /// the copy (written to a temporary sibling and renamed over it). The
    /// source is opened with `O_NOFOLLOW` unless
    /// [`follow_symlinks`](CopyOptions::follow_symlinks) is set. Used by the
    /// tree copy, which holds directory descriptors rather than paths.
    #[cfg(unix)]
    pub fn copy_at(
        &self,
        src_dir: std::os::fd::BorrowedFd<'_>,
        src_name: &Path,
        dst_dir: std::os::fd::BorrowedFd<'_>,
        dst_name: &Path,
    ) -> Result<CopyReport, CopyError> {
        crate::engine::copy_at(self, src_dir, src_name, dst_dir, dst_name)
    }
}

/// The JSON shape `cow cp --json` has always printed: the fate of an
/// existing destination as the two keys `overwrite` (`replace` or
/// `no-clobber`) and `update` (`all` or the checking variant); the observer
/// and the cancel flag are left out.
impl serde::Serialize for CopyOptions {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let (overwrite, update) = self.overwrite.json_keys();
        let mut st = s.serialize_struct("CopyOptions", 11)?;
        st.serialize_field("reflink", &self.reflink)?;
        st.serialize_field("sparse", &self.sparse)?;
        st.serialize_field("overwrite", overwrite)?;
        st.serialize_field("atomic", &self.atomic)?;
        st.serialize_field("fsync", &self.fsync)?;
        st.serialize_field("preserve", &self.preserve)?;
        st.serialize_field("follow_symlinks", &self.follow_symlinks)?;
        st.serialize_field("update", update)?;
        st.serialize_field("write_through_dangling", &self.write_through_dangling)?;
        st.serialize_field("remove_destination", &self.remove_destination)?;
        st.serialize_field("retry_changed", &self.retry_changed)?;
        st.end()
    }
}
