//! Physical truth about files: where their bytes live on the device, where
//! their holes are, and how many bytes two files share.
//!
//! ```no_run
//! # fn main() -> Result<(), cow_verify::VerifyError> {
//! use std::path::Path;
//!
//! let s = cow_verify::sharing(Path::new("original"), Path::new("copy"))?;
//! println!(
//!     "{:.3} ({} of {} bytes shared)",
//!     s.ratio, s.shared_bytes, s.a_bytes + s.unknown_bytes
//! );
//! if cow_verify::is_clone(Path::new("original"), Path::new("copy"))? {
//!     println!("a true clone: every data byte of both files is the same physical byte");
//! }
//! for e in cow_verify::extents(Path::new("copy"))? {
//!     println!("{:>12} {:>10} {:?} {}", e.logical, e.length, e.location, e.flags.join(","));
//! }
//! # Ok(())
//! # }
//! ```
//!
//! Sources of truth, one per platform (selected in this file only):
//!
//! | platform | extents | data/hole map |
//! |---|---|---|
//! | Linux | `FS_IOC_FIEMAP` with `FIEMAP_FLAG_SYNC`, every extent | `SEEK_DATA`/`SEEK_HOLE` |
//! | macOS | `F_LOG2PHYS_EXT` over each data segment (no `shared` flag) | `SEEK_DATA`/`SEEK_HOLE` |
//! | FreeBSD | [`VerifyError::Unsupported`] (no FIEMAP) | `SEEK_DATA`/`SEEK_HOLE` |
//! | Windows | `FSCTL_GET_RETRIEVAL_POINTERS` (ReFS: `..._AND_REFCOUNT`, `shared` when referenced twice) | `FSCTL_QUERY_ALLOCATED_RANGES` |
//! | Wine | [`VerifyError::Unsupported`] (a stub answer) | [`VerifyError::Unsupported`] |
//!
//! # How sharing is counted
//!
//! Extents are first clipped to the file's length (a filesystem reports whole
//! blocks past EOF). Then every byte of a file's data falls in one class:
//!
//! * **known location** ([`Location::Physical`], [`Location::Encoded`]): counted
//!   in [`Sharing::a_bytes`] / [`Sharing::b_bytes`] (preallocated, unwritten
//!   extents too: they occupy device space and reflinks share them);
//! * **no comparable location** ([`Location::Unknown`]: delayed allocation or a
//!   filesystem that will not say; [`Location::Inline`]: stored inside
//!   metadata): counted in [`Sharing::unknown_bytes`] /
//!   [`Sharing::b_unknown_bytes`] and **never** counted as shared.
//!
//! A plain byte of `a` is shared when the same device byte also holds data of
//! `b`: an exact intersection of byte intervals, not a comparison of block
//! numbers. An encoded (compressed or encrypted) extent has no byte-exact
//! device address for each logical byte, so it is counted as shared only when
//! `b` has an encoded extent with the same device address and the same
//! length. When a clone rewrites part of a compressed extent, the rest of
//! that extent is therefore not counted: the answer can err low by at most
//! the encoded extents involved, and never errs high.
//!
//! The ratio's denominator is all of `a`'s data, so [`Sharing::ratio`] is
//! 1.0 only when every data byte of `a` is shared; an `a` without any data
//! (empty, or only holes) has nothing unshared and a ratio of 1.0.

#![forbid(unsafe_code)]

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

use serde::Serialize;

#[cfg(any(target_os = "linux", target_os = "android"))]
#[path = "linux.rs"]
mod sys;
#[cfg(target_os = "macos")]
#[path = "macos.rs"]
mod sys;
#[cfg(windows)]
#[path = "windows.rs"]
mod sys;
#[cfg(not(any(
    target_os = "linux",
    target_os = "android",
    target_os = "macos",
    windows
)))]
#[path = "other.rs"]
mod sys;

#[cfg(unix)]
mod unix;

/// Where the bytes of one extent live.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Location {
    /// At this byte offset on the device; byte `logical + i` of the file is
    /// device byte `offset + i`.
    Physical(u64),
    /// Not known: delayed allocation still pending, or the filesystem does
    /// not say (`FIEMAP_EXTENT_UNKNOWN`). Never counted as shared.
    Unknown,
    /// Stored inside filesystem metadata (`FIEMAP_EXTENT_DATA_INLINE`, e.g.
    /// small btrfs files): no device address of its own. Never counted as
    /// shared.
    Inline,
    /// Compressed or encrypted (`FIEMAP_EXTENT_ENCODED`): the offset is where
    /// the encoded data starts on the device, which does not map byte for
    /// byte to the file's logical bytes.
    Encoded(u64),
}

impl Location {
    /// The device offset, if the location has one.
    pub fn device_offset(self) -> Option<u64> {
        match self {
            Location::Physical(p) | Location::Encoded(p) => Some(p),
            Location::Unknown | Location::Inline => None,
        }
    }
}

/// One extent: a run of a file's bytes stored contiguously.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Extent {
    /// Byte offset in the file.
    pub logical: u64,
    /// Length in bytes (may run past EOF to the end of the last block).
    pub length: u64,
    /// Where the bytes are.
    pub location: Location,
    /// The filesystem says these bytes are also referenced elsewhere (another
    /// file, a snapshot, or another offset of this file):
    /// `FIEMAP_EXTENT_SHARED`. Always `false` where the platform cannot tell
    /// (macOS).
    pub shared: bool,
    /// Names of the flags the filesystem reported, lower case
    /// (`last`, `unknown`, `delalloc`, `encoded`, `encrypted`, `not_aligned`,
    /// `inline`, `tail`, `unwritten`, `merged`, `shared`, and `other` for bits
    /// this crate does not know).
    pub flags: Vec<&'static str>,
    /// The raw flag bits (`fe_flags` on Linux; 0 elsewhere).
    pub raw_flags: u32,
}

impl Extent {
    /// The first byte past the extent in the file.
    pub fn logical_end(&self) -> u64 {
        self.logical.saturating_add(self.length)
    }
}

/// Whether a segment of a file holds data or is a hole.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SegmentKind {
    /// Data (as `SEEK_DATA` reports it: may include allocated zeros).
    Data,
    /// A hole: reads as zeros and uses no storage.
    Hole,
}

/// A run of data or hole in a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct Segment {
    /// Byte offset in the file.
    pub offset: u64,
    /// Length in bytes (never 0).
    pub len: u64,
    /// Data or hole.
    pub kind: SegmentKind,
}

impl Segment {
    /// The first byte past the segment.
    pub fn end(&self) -> u64 {
        self.offset + self.len
    }
}

/// How much of file `a`'s data is physically shared with file `b`.
///
/// All byte counts cover only bytes below each file's length. See the crate
/// documentation for how bytes are classified.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Sharing {
    /// Length of `a` in bytes.
    pub a_len: u64,
    /// Length of `b` in bytes.
    pub b_len: u64,
    /// Data bytes of `a` with a known device location (plain or encoded).
    pub a_bytes: u64,
    /// Data bytes of `b` with a known device location (plain or encoded).
    pub b_bytes: u64,
    /// Bytes of `a` whose device bytes also hold data of `b` (plain extents:
    /// exact interval intersection; encoded extents: same device address
    /// and length).
    pub shared_bytes: u64,
    /// The same, seen from `b`: bytes of `b` whose device bytes also hold
    /// data of `a`. Differs from `shared_bytes` only when a file maps one
    /// device range at several offsets.
    pub b_shared_bytes: u64,
    /// Bytes of `a` stored at the very device byte that stores the same
    /// offset of `b` (what a clone of the whole file gives: 100 %).
    pub same_offset_bytes: u64,
    /// Data bytes of `a` without a comparable device location (delayed
    /// allocation, unknown, inline): never shared.
    pub unknown_bytes: u64,
    /// Data bytes of `b` without a comparable device location.
    pub b_unknown_bytes: u64,
    /// `shared_bytes / (a_bytes + unknown_bytes)`: the fraction of `a`'s data
    /// that is shared with `b`, between 0.0 and 1.0. When `a` has no data at
    /// all (empty or only holes) there is nothing unshared and the ratio is
    /// 1.0.
    pub ratio: f64,
    /// Whether the two files' device offsets are in one address space (the
    /// same filesystem; btrfs subvolumes of one filesystem count as one).
    /// When `false` nothing is counted as shared: equal offsets on two
    /// different devices (say, two copies of one disk image) are not shared
    /// bytes.
    pub same_filesystem: bool,
}

impl Sharing {
    /// All data bytes of `a` (known location or not): the ratio's
    /// denominator.
    pub fn a_data_bytes(&self) -> u64 {
        self.a_bytes + self.unknown_bytes
    }

    /// Whether `b` is a clone of `a`: equal lengths, every data byte of both
    /// at a known location, and each byte of `a` stored at the same device
    /// byte as the same offset of `b` (so the data maps are identical).
    pub fn is_clone(&self) -> bool {
        self.same_filesystem
            && self.a_len == self.b_len
            && self.unknown_bytes == 0
            && self.b_unknown_bytes == 0
            && self.a_bytes == self.b_bytes
            && self.same_offset_bytes == self.a_bytes
            && self.shared_bytes == self.a_bytes
            && self.b_shared_bytes == self.b_bytes
    }
}

/// An error of this crate, naming the path and the failing call.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// A system call failed.
    #[error("{path}: {op} failed: {source}", path = .path.display())]
    Io {
        /// The call, e.g. `FS_IOC_FIEMAP` or `lseek(SEEK_DATA)`.
        op: &'static str,
        /// The file it was called on.
        path: PathBuf,
        /// The error the system returned.
        #[source]
        source: io::Error,
    },
    /// This platform or filesystem cannot answer the question.
    #[error("{path}: {what} is not supported here", path = .path.display())]
    Unsupported {
        /// The file asked about.
        path: PathBuf,
        /// What is missing, e.g. `FS_IOC_FIEMAP`.
        what: &'static str,
    },
    /// The path is not a regular file (a directory, FIFO, device...).
    #[error("{path}: not a regular file", path = .path.display())]
    NotAFile {
        /// The path asked about.
        path: PathBuf,
    },
}

impl VerifyError {
    /// The path the error is about.
    pub fn path(&self) -> &Path {
        match self {
            VerifyError::Io { path, .. }
            | VerifyError::Unsupported { path, .. }
            | VerifyError::NotAFile { path } => path,
        }
    }
}

impl From<VerifyError> for io::Error {
    fn from(e: VerifyError) -> io::Error {
        let kind = match &e {
            VerifyError::Io { source, .. } => source.kind(),
            VerifyError::Unsupported { .. } => io::ErrorKind::Unsupported,
            VerifyError::NotAFile { .. } => io::ErrorKind::InvalidInput,
        };
        io::Error::new(kind, e)
    }
}

pub(crate) fn io_err(op: &'static str, path: &Path, source: impl Into<io::Error>) -> VerifyError {
    VerifyError::Io {
        op,
        path: path.to_path_buf(),
        source: source.into(),
    }
}

/// A name for an open file in error messages when no path is known.
fn fd_label(file: &File) -> PathBuf {
    #[cfg(unix)]
    {
        use std::os::fd::AsRawFd;
        PathBuf::from(format!("<fd {}>", file.as_raw_fd()))
    }
    #[cfg(not(unix))]
    {
        let _ = file;
        PathBuf::from("<open file>")
    }
}

/// Opens a regular file for reading; anything else is refused after the
/// open, which cannot block (`O_NONBLOCK`, so a FIFO does not wait for a
/// writer).
fn open(path: &Path) -> Result<File, VerifyError> {
    let mut opts = std::fs::OpenOptions::new();
    opts.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.custom_flags(rustix::fs::OFlags::NONBLOCK.bits() as i32);
    }
    let f = opts.open(path).map_err(|e| io_err("open", path, e))?;
    let meta = f.metadata().map_err(|e| io_err("fstat", path, e))?;
    if !meta.is_file() {
        return Err(VerifyError::NotAFile {
            path: path.to_path_buf(),
        });
    }
    Ok(f)
}

/// Every extent of the file at `path`, in logical order, after flushing its
/// dirty data (Linux: `FS_IOC_FIEMAP` with `FIEMAP_FLAG_SYNC`, repeated until
/// the last extent, however many there are). Holes have no extent.
///
/// # Errors
///
/// [`VerifyError::Io`] naming the failing call; [`VerifyError::Unsupported`]
/// where the filesystem or platform has no extent map (tmpfs, FreeBSD,
/// Wine).
pub fn extents(path: &Path) -> Result<Vec<Extent>, VerifyError> {
    let f = open(path)?;
    sys::extents(&f, path)
}

/// [`extents`] of an open file (errors name it `<fd N>`).
///
/// # Errors
///
/// As [`extents`].
pub fn extents_of(file: &File) -> Result<Vec<Extent>, VerifyError> {
    sys::extents(file, &fd_label(file))
}

/// The data and hole segments of the file at `path`, covering `0..len`
/// exactly, in order, adjacent segments of different kinds
/// (`SEEK_DATA`/`SEEK_HOLE`). A filesystem that does not track holes reports
/// one data segment.
///
/// # Errors
///
/// [`VerifyError::Io`] naming the failing call; [`VerifyError::Unsupported`]
/// where the platform cannot tell (Wine).
pub fn data_map(path: &Path) -> Result<Vec<Segment>, VerifyError> {
    let f = open(path)?;
    sys::data_map(&f, path)
}

/// [`data_map`] of an open file. The file's offset is restored afterwards.
///
/// # Errors
///
/// As [`data_map`].
pub fn data_map_of(file: &File) -> Result<Vec<Segment>, VerifyError> {
    sys::data_map(file, &fd_label(file))
}

/// How much of `a`'s data is physically shared with `b` (see [`Sharing`]).
///
/// # Errors
///
/// As [`extents`], for either file.
pub fn sharing(a: &Path, b: &Path) -> Result<Sharing, VerifyError> {
    let fa = open(a)?;
    let fb = open(b)?;
    sharing_impl(&fa, a, &fb, b)
}

/// [`sharing`] of two open files.
///
/// # Errors
///
/// As [`extents`], for either file.
pub fn sharing_of(a: &File, b: &File) -> Result<Sharing, VerifyError> {
    sharing_impl(a, &fd_label(a), b, &fd_label(b))
}

/// Whether `b` is a clone of `a` ([`Sharing::is_clone`]): equal lengths and
/// every data byte of both stored at the same device byte for the same
/// offset.
///
/// # Errors
///
/// As [`extents`], for either file.
pub fn is_clone(a: &Path, b: &Path) -> Result<bool, VerifyError> {
    Ok(sharing(a, b)?.is_clone())
}

fn file_len(f: &File, path: &Path) -> Result<u64, VerifyError> {
    Ok(f.metadata().map_err(|e| io_err("fstat", path, e))?.len())
}

fn sharing_impl(fa: &File, a: &Path, fb: &File, b: &Path) -> Result<Sharing, VerifyError> {
    let ea = sys::extents(fa, a)?;
    let eb = sys::extents(fb, b)?;
    // Lengths after the extent calls: FIEMAP_FLAG_SYNC flushed any writer.
    let la = file_len(fa, a)?;
    let lb = file_len(fb, b)?;
    if sys::same_filesystem(fa, a, fb, b)? {
        Ok(compute_sharing(&ea, la, &eb, lb))
    } else {
        Ok(unrelated(&ea, la, &eb, lb))
    }
}

/// [`Sharing`] of two files on different filesystems: nothing shared.
fn unrelated(a: &[Extent], a_len: u64, b: &[Extent], b_len: u64) -> Sharing {
    let mut s = compute_sharing(a, a_len, &[], 0);
    let (b_bytes, b_unknown_bytes) = classify(&clip(b, b_len));
    s.b_len = b_len;
    s.b_bytes = b_bytes;
    s.b_unknown_bytes = b_unknown_bytes;
    s.same_filesystem = false;
    s
}

/// Computes [`Sharing`] from two extent lists and file lengths, taking both
/// files to be on one filesystem (pure; the building block of [`sharing`],
/// which checks that first).
pub fn compute_sharing(a: &[Extent], a_len: u64, b: &[Extent], b_len: u64) -> Sharing {
    let pa = clip(a, a_len);
    let pb = clip(b, b_len);
    let (a_bytes, unknown_bytes) = classify(&pa);
    let (b_bytes, b_unknown_bytes) = classify(&pb);
    let shared_bytes = shared_with(&pa, &pb);
    let b_shared_bytes = shared_with(&pb, &pa);
    let same_offset_bytes = same_offset(&pa, &pb);
    let denom = a_bytes + unknown_bytes;
    let ratio = if denom == 0 {
        1.0
    } else {
        shared_bytes as f64 / denom as f64
    };
    Sharing {
        a_len,
        b_len,
        a_bytes,
        b_bytes,
        shared_bytes,
        b_shared_bytes,
        same_offset_bytes,
        unknown_bytes,
        b_unknown_bytes,
        ratio,
        same_filesystem: true,
    }
}

/// An extent cut to the file length: `logical..logical + len`.
#[derive(Debug, Clone, Copy)]
struct Piece {
    logical: u64,
    len: u64,
    location: Location,
}

/// The extents cut to the file length, in logical order, with any overlap
/// between them removed (a filesystem should never report one, but bytes
/// must not be counted twice if it does).
fn clip(extents: &[Extent], len: u64) -> Vec<Piece> {
    let mut sorted: Vec<Piece> = extents
        .iter()
        .filter(|e| e.logical < len && e.length > 0)
        .map(|e| Piece {
            logical: e.logical,
            len: e.logical_end().min(len) - e.logical,
            location: e.location,
        })
        .collect();
    sorted.sort_by_key(|p| p.logical);
    let mut out: Vec<Piece> = Vec::with_capacity(sorted.len());
    let mut end = 0u64;
    for mut p in sorted {
        if p.logical < end {
            let cut = end - p.logical;
            if cut >= p.len {
                continue;
            }
            p.logical = end;
            p.len -= cut;
            p.location = match p.location {
                Location::Physical(d) => Location::Physical(d + cut),
                // An encoded extent cannot be cut byte-exactly.
                Location::Encoded(_) => Location::Unknown,
                other => other,
            };
        }
        end = p.logical + p.len;
        out.push(p);
    }
    out
}

fn classify(pieces: &[Piece]) -> (u64, u64) {
    let mut known = 0;
    let mut unknown = 0;
    for p in pieces {
        match p.location {
            Location::Physical(_) | Location::Encoded(_) => known += p.len,
            Location::Unknown | Location::Inline => unknown += p.len,
        }
    }
    (known, unknown)
}

/// Merged, sorted device intervals `[start, end)` of the plain pieces.
fn device_union(pieces: &[Piece]) -> Vec<(u64, u64)> {
    let mut iv: Vec<(u64, u64)> = pieces
        .iter()
        .filter_map(|p| match p.location {
            Location::Physical(d) => Some((d, d.saturating_add(p.len))),
            _ => None,
        })
        .collect();
    iv.sort_unstable();
    let mut merged: Vec<(u64, u64)> = Vec::with_capacity(iv.len());
    for (s, e) in iv {
        match merged.last_mut() {
            Some(last) if s <= last.1 => last.1 = last.1.max(e),
            _ => merged.push((s, e)),
        }
    }
    merged
}

/// Bytes of `x` whose device bytes also hold data of `y`.
fn shared_with(x: &[Piece], y: &[Piece]) -> u64 {
    let union = device_union(y);
    let encoded: std::collections::HashSet<(u64, u64)> = y
        .iter()
        .filter_map(|p| match p.location {
            Location::Encoded(d) => Some((d, p.len)),
            _ => None,
        })
        .collect();
    let mut total = 0;
    for p in x {
        match p.location {
            Location::Physical(d) => {
                let (s, e) = (d, d.saturating_add(p.len));
                // First interval that ends after `s`.
                let mut i = union.partition_point(|iv| iv.1 <= s);
                while i < union.len() && union[i].0 < e {
                    total += union[i].1.min(e) - union[i].0.max(s);
                    i += 1;
                }
            }
            Location::Encoded(d) => {
                if encoded.contains(&(d, p.len)) {
                    total += p.len;
                }
            }
            Location::Unknown | Location::Inline => {}
        }
    }
    total
}

/// Bytes of `x` at the same device byte as the same offset of `y`.
fn same_offset(x: &[Piece], y: &[Piece]) -> u64 {
    let mut total = 0;
    for p in x {
        let (s, e) = (p.logical, p.logical + p.len);
        let mut i = y.partition_point(|q| q.logical + q.len <= s);
        while i < y.len() && y[i].logical < e {
            let q = &y[i];
            let (os, oe) = (s.max(q.logical), e.min(q.logical + q.len));
            match (p.location, q.location) {
                // Same device byte for offset `os` in both.
                (Location::Physical(dp), Location::Physical(dq))
                    if dp.wrapping_sub(p.logical) == dq.wrapping_sub(q.logical) =>
                {
                    total += oe - os;
                }
                (Location::Encoded(dp), Location::Encoded(dq))
                    if dp == dq && p.logical == q.logical && p.len == q.len =>
                {
                    total += p.len;
                }
                _ => {}
            }
            i += 1;
        }
    }
    total
}

/// Whether two open files are on one device (the fallback test of
/// same-filesystem-ness).
#[cfg(unix)]
pub(crate) fn same_dev(fa: &File, a: &Path, fb: &File, b: &Path) -> Result<bool, VerifyError> {
    use std::os::unix::fs::MetadataExt;
    let da = fa.metadata().map_err(|e| io_err("fstat", a, e))?.dev();
    let db = fb.metadata().map_err(|e| io_err("fstat", b, e))?.dev();
    Ok(da == db)
}

/// Merges adjacent segments of the same kind and drops empty ones.
pub(crate) fn push_segment(out: &mut Vec<Segment>, offset: u64, end: u64, kind: SegmentKind) {
    if end <= offset {
        return;
    }
    if let Some(last) = out.last_mut() {
        if last.kind == kind && last.end() == offset {
            last.len += end - offset;
            return;
        }
    }
    out.push(Segment {
        offset,
        len: end - offset,
        kind,
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ext(logical: u64, length: u64, location: Location) -> Extent {
        Extent {
            logical,
            length,
            location,
            shared: false,
            flags: Vec::new(),
            raw_flags: 0,
        }
    }

    #[test]
    fn exact_interval_intersection_not_block_sets() {
        let a = [ext(0, 10_000, Location::Physical(1_000_000))];
        // b covers device bytes 1_005_000..1_012_000 at another offset.
        let b = [ext(4096, 7000, Location::Physical(1_005_000))];
        let s = compute_sharing(&a, 10_000, &b, 11_096);
        assert_eq!(s.shared_bytes, 5000);
        assert_eq!(s.b_shared_bytes, 5000);
        assert_eq!(s.same_offset_bytes, 0);
        assert!(!s.is_clone());
        assert!((s.ratio - 0.5).abs() < 1e-12);
    }

    #[test]
    fn clipping_unknown_and_empty() {
        let a = [
            ext(0, 8192, Location::Physical(4096)),
            ext(8192, 4096, Location::Unknown),
        ];
        // The file is 10_000 bytes: 8192 known, 1808 unknown.
        let s = compute_sharing(&a, 10_000, &a, 10_000);
        assert_eq!(
            (s.a_bytes, s.unknown_bytes, s.shared_bytes),
            (8192, 1808, 8192)
        );
        assert!(!s.is_clone(), "unknown bytes are never shared");
        let e = compute_sharing(&[], 0, &[], 0);
        assert_eq!(e.ratio, 1.0);
        assert!(e.is_clone());
    }

    #[test]
    fn encoded_needs_same_address_and_length() {
        let a = [ext(0, 131_072, Location::Encoded(1 << 20))];
        let b = [ext(0, 65_536, Location::Encoded(1 << 20))];
        assert_eq!(
            compute_sharing(&a, 131_072, &a, 131_072).shared_bytes,
            131_072
        );
        assert_eq!(compute_sharing(&a, 131_072, &b, 65_536).shared_bytes, 0);
    }

    #[test]
    fn overlapping_extents_count_once() {
        let a = [
            ext(0, 8192, Location::Physical(100_000)),
            ext(4096, 8192, Location::Physical(104_096)),
        ];
        let s = compute_sharing(&a, 12_288, &a, 12_288);
        assert_eq!(
            (s.a_bytes, s.shared_bytes, s.same_offset_bytes),
            (12_288, 12_288, 12_288)
        );
    }

    #[test]
    fn segments_merge() {
        let mut v = Vec::new();
        push_segment(&mut v, 0, 10, SegmentKind::Data);
        push_segment(&mut v, 10, 20, SegmentKind::Data);
        push_segment(&mut v, 20, 20, SegmentKind::Hole);
        push_segment(&mut v, 20, 30, SegmentKind::Hole);
        assert_eq!(v.len(), 2);
        assert_eq!(v[0].len, 20);
        assert_eq!(v[1].end(), 30);
    }
}
