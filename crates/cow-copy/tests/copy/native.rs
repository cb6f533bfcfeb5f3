//! The engine on the platform's own filesystem, where `cargo xtask test`
//! cannot mount test filesystems: APFS on macOS (clones for real), NTFS or
//! ReFS on Windows. These run in the GitHub macOS and Windows jobs.

#![cfg(any(target_os = "macos", windows))]

use std::fs;
use std::path::Path;

use cow_copy::{CopyError, CopyOptions, Reflink, Strategy};
use cow_test_support::pattern;
#[cfg(windows)]
use cow_test_support::set_mtime;

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
                assert_eq!(s.shared_bytes, 0, "{r:?}, {s:?}");
            }
        }
        // Wine has no extent map (cow-verify says so) and no block
        // cloning: the report must not claim a clone.
        #[cfg(windows)]
        Err(e @ cow_verify::VerifyError::Unsupported { .. }) if cow_sys::windows::is_wine() => {
            assert_ne!(r.strategy, Strategy::Cloned, "{e}: {r:?}");
        }
        Err(e) => panic!("cow-verify: {e}"),
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

#[cfg(windows)]
fn mtime(path: &Path) -> std::time::SystemTime {
    fs::metadata(path).unwrap().modified().unwrap()
}

#[cfg(windows)]
#[test]
fn update_if_different_leaves_an_identical_destination_alone() {
    use cow_copy::{Destination, Overwrite, Preserve};
    use std::time::{Duration, SystemTime};
    let dir = tempfile::tempdir().unwrap();
    let (src, dst) = (dir.path().join("src"), dir.path().join("dst"));
    let data = write(&src, 300_001, 8);
    fs::write(&dst, &data).unwrap();
    let old = SystemTime::now() - Duration::from_secs(3600);
    set_mtime(&dst, old);
    for atomic in [false, true] {
        let r = CopyOptions::new()
            .overwrite(Overwrite::IfDifferent)
            .atomic(atomic)
            .copy(&src, &dst)
            .unwrap();
        assert_eq!(r.strategy, Strategy::Skipped, "{r:?}");
        assert_eq!(r.destination, Destination::Kept, "{r:?}");
        assert_eq!((r.bytes_cloned, r.bytes_copied, r.hole_bytes), (0, 0, 0));
        assert_eq!(r.len, data.len() as u64);
        assert!(r.fallbacks.is_empty(), "{r:?}");
        // Not rewritten: same content, same modification time, and no
        // temporary left behind by the atomic copy.
        assert_eq!(fs::read(&dst).unwrap(), data);
        assert_eq!(mtime(&dst), old, "atomic={atomic}");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 2);
    }
    // No dedupe on Windows: the destination is still skipped, saying why.
    let r = CopyOptions::new()
        .overwrite(Overwrite::IfDifferentDedupe)
        .copy(&src, &dst)
        .unwrap();
    assert_eq!(r.strategy, Strategy::Skipped, "{r:?}");
    assert_eq!(r.fallbacks.len(), 1, "{r:?}");
    assert_eq!(r.fallbacks[0].strategy, Strategy::Deduped);
    assert!(
        r.fallbacks[0]
            .reason
            .starts_with("identical, but not deduplicated"),
        "{r:?}"
    );
    assert_eq!(mtime(&dst), old);
    // A skipped destination still gets the metadata asked for (as on
    // Unix), even when it is read-only.
    let mut perms = fs::metadata(&dst).unwrap().permissions();
    perms.set_readonly(true);
    fs::set_permissions(&dst, perms).unwrap();
    let preserve = Preserve {
        timestamps: true,
        ..Preserve::default()
    };
    let r = CopyOptions::new()
        .overwrite(Overwrite::IfDifferent)
        .preserve(preserve)
        .copy(&src, &dst)
        .unwrap();
    assert_eq!(r.strategy, Strategy::Skipped, "{r:?}");
    assert_eq!(mtime(&dst), mtime(&src));
    assert!(!fs::metadata(&dst).unwrap().permissions().readonly());
    assert_eq!(fs::read(&dst).unwrap(), data);
}

#[cfg(windows)]
#[test]
fn update_if_different_replaces_a_different_destination() {
    use cow_copy::{Destination, Overwrite};
    let dir = tempfile::tempdir().unwrap();
    let (src, dst) = (dir.path().join("src"), dir.path().join("dst"));
    let data = write(&src, 200_000, 9);
    for (len, seed, why) in [
        (200_000, 10, "contents differ"),
        (100_000, 11, "sizes differ"),
    ] {
        for policy in [Overwrite::IfDifferent, Overwrite::IfDifferentDedupe] {
            write(&dst, len, seed);
            let r = CopyOptions::new()
                .overwrite(policy)
                .copy(&src, &dst)
                .unwrap();
            assert!(!r.strategy.kept_destination(), "{r:?}");
            assert_eq!(r.destination, Destination::Replaced, "{r:?}");
            assert_eq!(r.len, data.len() as u64);
            assert_eq!(fs::read(&dst).unwrap(), data);
            // The update check declined first, naming why.
            let first = r.fallbacks.first().unwrap_or_else(|| panic!("{r:?}"));
            assert_eq!(first.strategy, Strategy::Skipped, "{r:?}");
            assert!(first.reason.starts_with(why), "{r:?}");
        }
    }
}

#[cfg(windows)]
#[test]
fn update_if_older_keeps_a_newer_destination_untouched() {
    use cow_copy::{Destination, Overwrite, Preserve};
    use std::time::Duration;
    let dir = tempfile::tempdir().unwrap();
    let (src, dst) = (dir.path().join("src"), dir.path().join("dst"));
    write(&src, 100_000, 12);
    let theirs = write(&dst, 50_000, 13);
    let newer = mtime(&src) + Duration::from_secs(3600);
    set_mtime(&dst, newer);
    // Not even the metadata asked for is applied.
    let r = CopyOptions::new()
        .overwrite(Overwrite::IfOlder)
        .preserve(Preserve {
            timestamps: true,
            ..Preserve::default()
        })
        .copy(&src, &dst)
        .unwrap();
    assert_eq!(r.strategy, Strategy::KeptNewer, "{r:?}");
    assert_eq!(r.destination, Destination::Kept, "{r:?}");
    assert_eq!((r.bytes_cloned, r.bytes_copied), (0, 0));
    assert_eq!(fs::read(&dst).unwrap(), theirs);
    assert_eq!(mtime(&dst), newer);
    // An older destination is replaced.
    set_mtime(&dst, mtime(&src) - Duration::from_secs(3600));
    let r = CopyOptions::new()
        .overwrite(Overwrite::IfOlder)
        .copy(&src, &dst)
        .unwrap();
    assert_eq!(r.destination, Destination::Replaced, "{r:?}");
    assert_eq!(r.fallbacks[0].strategy, Strategy::KeptNewer, "{r:?}");
    assert_eq!(fs::read(&dst).unwrap(), fs::read(&src).unwrap());
}

/// A FIFO in a tree is recreated by the walk with `mkfifoat`, looked up at
/// run time (macOS 13+; older systems report `ENOSYS` for the entry).
#[cfg(target_os = "macos")]
#[test]
fn tree_copy_recreates_a_fifo_with_its_mode() {
    use cow_copy::tree::TreeOptions;
    use std::os::unix::fs::{FileTypeExt, PermissionsExt};
    use std::process::Command;
    let dir = tempfile::tempdir().unwrap();
    let (src, dst) = (dir.path().join("src"), dir.path().join("dst"));
    fs::create_dir(&src).unwrap();
    write(&src.join("file"), 10_000, 14);
    let fifo = src.join("fifo");
    let status = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(status.success(), "mkfifo: {status}");
    // A mode the umask would not give, so the copy must set it.
    fs::set_permissions(&fifo, fs::Permissions::from_mode(0o662)).unwrap();
    // The walk, not the one-call clone of the whole tree.
    let opts = TreeOptions::new().whole_tree_clone(false);
    let report = opts
        .copy(&src, &dst)
        .unwrap_or_else(|e| panic!("{e}: {e:?}"));
    assert_eq!(report.totals.fifos, 1, "{report:?}");
    let copy = fs::symlink_metadata(dst.join("fifo")).unwrap();
    assert!(copy.file_type().is_fifo(), "{copy:?}");
    assert_eq!(copy.permissions().mode() & 0o7777, 0o662);
    assert_eq!(fs::read(dst.join("file")).unwrap(), pattern(10_000, 14));
}
