//! cow-verify on the temp directory's volume: NTFS (or ReFS) on Windows,
//! where cluster runs and allocated ranges are real, and Wine, whose
//! answers are stubs and must come out as `Unsupported`, never as a map.
#![cfg(windows)]

use std::fs::{self, OpenOptions};
use std::io::{Seek, SeekFrom, Write};
use std::os::windows::io::AsHandle;
use std::path::Path;

use cow_sys::windows::{is_wine, set_sparse};
use cow_test_support::pattern;
use cow_verify::{Location, SegmentKind, VerifyError};

fn sparse_file(path: &Path, len: u64, at: u64, data: usize) {
    let mut f = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)
        .unwrap();
    set_sparse(f.as_handle(), true).unwrap();
    f.set_len(len).unwrap();
    f.seek(SeekFrom::Start(at)).unwrap();
    f.write_all(&pattern(data, 1)).unwrap();
    f.sync_all().unwrap();
}

fn assert_unsupported<T: std::fmt::Debug>(r: Result<T, VerifyError>, what: &str) {
    match r {
        Err(VerifyError::Unsupported { what: w, .. }) => assert!(w.starts_with(what), "{w}"),
        other => panic!("under Wine, expected Unsupported({what}), got {other:?}"),
    }
}

#[test]
fn data_map_shows_the_hole_of_a_sparse_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sparse");
    sparse_file(&path, 8 << 20, 4 << 20, 65_536);
    let map = cow_verify::data_map(&path);
    if is_wine() {
        return assert_unsupported(map, "FSCTL_QUERY_ALLOCATED_RANGES");
    }
    let map = map.unwrap();
    assert_eq!(map.first().unwrap().kind, SegmentKind::Hole, "{map:?}");
    assert_eq!(map.last().unwrap().kind, SegmentKind::Hole, "{map:?}");
    assert_eq!(map.last().unwrap().end(), 8 << 20);
    let data: Vec<_> = map.iter().filter(|s| s.kind == SegmentKind::Data).collect();
    assert_eq!(data.len(), 1, "{map:?}");
    assert!(data[0].offset <= 4 << 20 && data[0].end() >= (4 << 20) + 65_536);
    // A plain file is data from end to end.
    let plain = dir.path().join("plain");
    fs::write(&plain, pattern(10_000, 2)).unwrap();
    let m = cow_verify::data_map(&plain).unwrap();
    assert_eq!(m.len(), 1, "{m:?}");
    assert_eq!(
        (m[0].offset, m[0].len, m[0].kind),
        (0, 10_000, SegmentKind::Data)
    );
}

#[test]
fn extents_cover_the_data_and_copies_share_nothing_on_ntfs() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    let data = pattern(3 << 20, 3);
    fs::write(&a, &data).unwrap();
    fs::write(&b, &data).unwrap();
    let e = cow_verify::extents(&a);
    if is_wine() {
        assert_unsupported(e, "FSCTL_GET_RETRIEVAL_POINTERS");
        return assert_unsupported(cow_verify::sharing(&a, &b), "FSCTL_GET_RETRIEVAL_POINTERS");
    }
    let e = e.unwrap();
    let covered: u64 = e.iter().map(|x| x.length).sum();
    assert!(covered >= 3 << 20, "{e:?}");
    assert!(
        e.iter()
            .all(|x| matches!(x.location, Location::Physical(_))),
        "{e:?}"
    );
    // Two files written separately share no cluster.
    let s = cow_verify::sharing(&a, &b).unwrap();
    assert!(s.same_filesystem, "{s:?}");
    assert_eq!(s.shared_bytes, 0, "{s:?}");
    assert!(!s.is_clone());
    // A file compared with itself is all shared.
    let s = cow_verify::sharing(&a, &a).unwrap();
    assert!(s.is_clone(), "{s:?}");
}
