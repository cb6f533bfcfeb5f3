//! Shared checks for the engine tests: bytes, holes, allocation, and the
//! report's truth measured with cow-verify.
#![allow(dead_code, unreachable_pub)]

#[cfg(unix)]
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use cow_copy::{CopyReport, Strategy};
use cow_test_support::Fs;
use cow_verify::SegmentKind;

/// Destination bytes and length equal the source's.
pub fn assert_same_bytes(src: &Path, dst: &Path) {
    let a = std::fs::read(src).unwrap();
    let b = std::fs::read(dst).unwrap();
    assert_eq!(
        a.len(),
        b.len(),
        "lengths differ: {} vs {}",
        src.display(),
        dst.display()
    );
    assert!(
        a == b,
        "content differs: {} vs {}",
        src.display(),
        dst.display()
    );
}

/// Data segments of a file (offset, len).
pub fn data_segments(p: &Path) -> Vec<(u64, u64)> {
    cow_verify::data_map(p)
        .unwrap()
        .into_iter()
        .filter(|s| s.kind == SegmentKind::Data)
        .map(|s| (s.offset, s.len))
        .collect()
}

/// Holes survive: equal data maps and allocation no larger than the
/// source's plus one block per extent.
#[cfg(unix)]
pub fn assert_holes_kept(src: &Path, dst: &Path) {
    let a = data_segments(src);
    let b = data_segments(dst);
    assert_eq!(a, b, "data maps differ");
    let ma = std::fs::metadata(src).unwrap();
    let mb = std::fs::metadata(dst).unwrap();
    let slack = ma.blksize() * (a.len() as u64 + 1);
    assert!(
        mb.blocks() * 512 <= ma.blocks() * 512 + slack,
        "destination allocates {} bytes, source {} (+{} slack)",
        mb.blocks() * 512,
        ma.blocks() * 512,
        slack
    );
}

/// The report's invariants, and its truth against the disk.
pub fn assert_truthful(fs: Fs, src: &Path, dst: &Path, r: &CopyReport) {
    let len = std::fs::metadata(dst).unwrap().len();
    assert_eq!(r.len, len, "report len");
    assert_eq!(
        r.bytes_cloned + r.bytes_copied + r.hole_bytes,
        r.len,
        "byte counts do not add up: {r:?}"
    );
    if !fs.has_fiemap() {
        assert_ne!(r.strategy, Strategy::Cloned, "{fs} cannot clone: {r:?}");
        assert_eq!(r.bytes_cloned, 0);
        return;
    }
    let s = cow_verify::sharing(src, dst).unwrap();
    if r.strategy == Strategy::Cloned {
        assert_eq!(
            s.ratio, 1.0,
            "report says cloned but sharing is {s:?}; {r:?}"
        );
    }
    if r.bytes_cloned > 0 {
        assert!(
            s.shared_bytes >= r.bytes_cloned,
            "claims {} cloned, {s:?}",
            r.bytes_cloned
        );
    }
    if !fs.reflinks() {
        assert_eq!(r.bytes_cloned, 0);
        assert_eq!(s.shared_bytes, 0);
    }
}

/// (dev, ino) of a path; on Windows (volume serial, file index).
pub fn inode(p: &Path) -> (u64, u64) {
    #[cfg(unix)]
    {
        let m = std::fs::metadata(p).unwrap();
        (m.dev(), m.ino())
    }
    #[cfg(windows)]
    {
        use std::os::windows::io::AsHandle;
        let f = std::fs::File::open(p).unwrap();
        let id = cow_sys::windows::file_id(f.as_handle()).unwrap();
        (u64::from(id.volume_serial), id.index)
    }
}

/// Overwrites `data.len()` bytes of the file at `path` at `offset`.
pub fn write_at(path: &Path, data: &[u8], offset: u64) {
    use std::io::{Seek, SeekFrom, Write};
    let mut f = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    f.seek(SeekFrom::Start(offset)).unwrap();
    f.write_all(data).unwrap();
}

/// The strategy of a plain copy with `reflink = never`: read/write on
/// Unix, `CopyFileExW` on Windows.
pub const PLAIN_COPY: cow_copy::Strategy = if cfg!(windows) {
    cow_copy::Strategy::SystemCopy
} else {
    cow_copy::Strategy::UserCopy
};

/// A dedupe observer that ignores every event.
#[cfg(target_os = "linux")]
pub fn quiet(_: &cow_copy::dedupe::Event<'_>) {}
