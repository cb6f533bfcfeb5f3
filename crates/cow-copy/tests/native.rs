//! The engine on the platform's own filesystem, where `cargo xtask test`
//! cannot mount test filesystems: APFS on macOS (clones for real), NTFS or
//! ReFS on Windows. These run in the GitHub macOS and Windows jobs.

#![cfg(any(target_os = "macos", windows))]

use std::fs;
use std::path::Path;

use cow_copy::{CopyError, CopyOptions, Reflink, Strategy};
use cow_test_support::pattern;

fn write(path: &Path, len: usize, seed: u64) -> Vec<u8> {
    let data = pattern(len, seed);
    fs::write(path, &data).unwrap();
    data
}

#[test]
fn copy_is_a_drop_in_for_std() {
    let dir = tempfile::tempdir().unwrap();
    let (src, dst) = (dir.path().join("src"), dir.path().join("dst"));
    let data = write(&src, 300_001, 1);
    let n = cow_copy::copy(&src, &dst).unwrap();
    assert_eq!(n, data.len() as u64);
    assert_eq!(fs::read(&dst).unwrap(), data);
    // An existing, longer destination is replaced whole.
    write(&dst, 900_000, 2);
    assert_eq!(cow_copy::copy(&src, &dst).unwrap(), data.len() as u64);
    assert_eq!(fs::read(&dst).unwrap(), data);
}

#[test]
fn copying_a_file_onto_itself_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    let link = dir.path().join("hard-link");
    let data = write(&src, 70_000, 3);
    fs::hard_link(&src, &link).unwrap();
    for dst in [&src, &link] {
        let err = CopyOptions::new().copy(&src, dst).unwrap_err();
        assert!(matches!(err, CopyError::SameFile { .. }), "{err:?}");
        assert_eq!(fs::read(&src).unwrap(), data);
    }
}

#[test]
fn report_says_cloned_only_when_blocks_are_shared() {
    let dir = tempfile::tempdir().unwrap();
    let (src, dst) = (dir.path().join("src"), dir.path().join("dst"));
    write(&src, 4 << 20, 4);
    let r = CopyOptions::new().copy(&src, &dst).unwrap();
    assert_eq!(fs::read(&dst).unwrap(), fs::read(&src).unwrap());
    match cow_verify::sharing(&src, &dst) {
        Ok(s) => {
            if r.strategy == Strategy::Cloned {
                assert_eq!(s.ratio, 1.0, "reported a clone: {r:?}, {s:?}");
            } else {
                assert!(r.bytes_cloned == 0, "{r:?}");
            }
        }
        // Windows has no extent reader yet: the report must not claim
        // a clone on a volume without block cloning.
        Err(e) => assert_ne!(r.strategy, Strategy::Cloned, "{e}: {r:?}"),
    }
}

#[cfg(target_os = "macos")]
#[test]
fn apfs_clones_new_and_existing_destinations() {
    let dir = tempfile::tempdir().unwrap();
    let (src, dst) = (dir.path().join("src"), dir.path().join("dst"));
    write(&src, 8 << 20, 5);
    let r = CopyOptions::new().copy(&src, &dst).unwrap();
    assert_eq!(r.strategy, Strategy::Cloned, "{r:?}");
    assert!(cow_verify::is_clone(&src, &dst).unwrap());
    // The seed finding: an overwrite must clone too (clone to a temporary
    // sibling, then rename), which fcopyfile never does.
    write(&dst, 1 << 20, 6);
    let r = CopyOptions::new()
        .reflink(Reflink::Always)
        .copy(&src, &dst)
        .unwrap();
    assert_eq!(r.strategy, Strategy::Cloned, "{r:?}");
    assert!(cow_verify::is_clone(&src, &dst).unwrap());
    // Writing to the clone leaves the source alone.
    let before = fs::read(&src).unwrap();
    fs::write(&dst, b"changed").unwrap();
    assert_eq!(fs::read(&src).unwrap(), before);
}

#[cfg(windows)]
#[test]
fn reflink_always_without_block_cloning_creates_nothing() {
    use std::os::windows::io::AsHandle;
    let dir = tempfile::tempdir().unwrap();
    let (src, dst) = (dir.path().join("src"), dir.path().join("dst"));
    write(&src, 1 << 20, 7);
    let flags = cow_sys::windows::volume_flags(fs::File::open(&src).unwrap().as_handle()).unwrap();
    if flags & cow_sys::windows::FILE_SUPPORTS_BLOCK_REFCOUNTING != 0 {
        eprintln!("SKIP: this volume supports block cloning (ReFS); the refusal case needs NTFS");
        let r = CopyOptions::new()
            .reflink(Reflink::Always)
            .copy(&src, &dst)
            .unwrap();
        assert_eq!(r.strategy, Strategy::Cloned);
        return;
    }
    let err = CopyOptions::new()
        .reflink(Reflink::Always)
        .copy(&src, &dst)
        .unwrap_err();
    assert!(
        matches!(err, CopyError::ReflinkUnsupported { .. }),
        "{err:?}"
    );
    assert!(!dst.exists(), "reflink=always created {}", dst.display());
}
