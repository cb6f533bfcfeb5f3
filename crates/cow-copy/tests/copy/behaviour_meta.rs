//! Metadata, destinations whose size lies, `copy_at` and the sparse
//! policies, on real filesystems (split from `behaviour.rs`).

#![cfg(target_os = "linux")]

use crate::common;

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::Command;

use crate::behaviour::no_temporaries;
use common::*;
use cow_copy::Preserve;
use cow_copy::{CopyError, CopyOptions, Destination, Reflink, Strategy};
use cow_test_support::mkfifo;
use cow_test_support::{fs_test, names_in, write_pattern};

// ---- metadata ----

#[cfg(unix)]
fs_test!(preserve_metadata, [btrfs, xfs, ext4, tmpfs], |dir, fs| {
    let src = dir.join("src");
    write_pattern(&src, 70_000, 12);
    fs::set_permissions(&src, fs::Permissions::from_mode(0o751)).unwrap();
    std::os::unix::fs::chown(&src, Some(1234), Some(5678)).unwrap();
    let t = std::time::UNIX_EPOCH + std::time::Duration::new(1_000_000_000, 123_456_789);
    let f = fs::File::options().write(true).open(&src).unwrap();
    f.set_times(fs::FileTimes::new().set_modified(t).set_accessed(t))
        .unwrap();
    drop(f);
    let has_xattr = Command::new("setfattr").arg("--version").output().is_ok();
    let _ = has_xattr;
    for atomic in [false, true] {
        let dst = dir.join(format!("all-{atomic}"));
        let r = CopyOptions::new()
            .atomic(atomic)
            .preserve(Preserve::all())
            .copy(&src, &dst)
            .unwrap();
        assert_truthful(fs, &src, &dst, &r);
        let (a, b) = (fs::metadata(&src).unwrap(), fs::metadata(&dst).unwrap());
        assert_eq!(b.mode() & 0o7777, 0o751);
        assert_eq!((b.uid(), b.gid()), (1234, 5678));
        assert_eq!((b.mtime(), b.mtime_nsec()), (a.mtime(), a.mtime_nsec()));
        // Defaults: mode only (std), owner is us, fresh times.
        let dst = dir.join(format!("default-{atomic}"));
        CopyOptions::new().atomic(atomic).copy(&src, &dst).unwrap();
        let b = fs::metadata(&dst).unwrap();
        assert_eq!(b.mode() & 0o7777, 0o751);
        assert_eq!(b.uid(), rustix::process::getuid().as_raw());
        assert_ne!(b.mtime(), a.mtime());
        // GNU semantics: an existing destination keeps its mode (a clone
        // copies no mode, and nothing else may either).
        let dst = dir.join(format!("keep-{atomic}"));
        fs::write(&dst, b"old").unwrap();
        fs::set_permissions(&dst, fs::Permissions::from_mode(0o604)).unwrap();
        CopyOptions::new()
            .atomic(atomic)
            .preserve(Preserve::none())
            .copy(&src, &dst)
            .unwrap();
        assert_eq!(fs::metadata(&dst).unwrap().mode() & 0o7777, 0o604);
        assert_same_bytes(&src, &dst);
    }
});

#[cfg(unix)]
fs_test!(preserve_xattrs, [btrfs, xfs, ext4, tmpfs], |dir| {
    let src = dir.join("src");
    write_pattern(&src, 10_000, 13);
    let f = fs::File::open(&src).unwrap();
    if let Err(e) = rustix::fs::fsetxattr(&f, "user.cow", b"moo", rustix::fs::XattrFlags::empty()) {
        eprintln!("SKIP preserve_xattrs: this filesystem refuses user xattrs: {e}");
        return;
    }
    // A POSIX ACL where the filesystem has them: the xattr form
    // (version 2, then ACL_USER_OBJ rw-, ACL_GROUP_OBJ r--, ACL_OTHER ---).
    // An extended POSIX ACL (a named user entry and a mask, so it cannot
    // fold into the mode) in its xattr form: version 2, then (tag, perm, id).
    let mut acl = 2u32.to_le_bytes().to_vec();
    for (tag, perm, id) in [
        (0x01u16, 6u16, u32::MAX),
        (0x02, 4, 1234),
        (0x04, 4, u32::MAX),
        (0x10, 4, u32::MAX),
        (0x20, 0, u32::MAX),
    ] {
        acl.extend_from_slice(&tag.to_le_bytes());
        acl.extend_from_slice(&perm.to_le_bytes());
        acl.extend_from_slice(&id.to_le_bytes());
    }
    let set = rustix::fs::fsetxattr(
        &f,
        "system.posix_acl_access",
        &acl,
        rustix::fs::XattrFlags::empty(),
    );
    let mut probe = vec![0u8; 256];
    let has_acl =
        set.is_ok() && rustix::fs::fgetxattr(&f, "system.posix_acl_access", &mut probe[..]).is_ok();
    if !has_acl {
        eprintln!("NOTE preserve_xattrs: no POSIX ACL on this filesystem ({set:?})");
    }
    drop(f);
    for atomic in [false, true] {
        let dst = dir.join(format!("x-{atomic}"));
        let r = CopyOptions::new()
            .atomic(atomic)
            .preserve(Preserve {
                xattrs: true,
                ..Preserve::default()
            })
            .copy(&src, &dst)
            .unwrap();
        assert!(r.metadata_skipped.is_empty(), "{r:?}");
        let g = fs::File::open(&dst).unwrap();
        let mut buf = [0u8; 16];
        let n = rustix::fs::fgetxattr(&g, "user.cow", &mut buf[..]).unwrap();
        assert_eq!(&buf[..n], b"moo");
        if has_acl {
            let mut buf = vec![0u8; 256];
            let n = rustix::fs::fgetxattr(&g, "system.posix_acl_access", &mut buf[..]).unwrap();
            assert_eq!(&buf[..n], &acl[..]);
        }
        // Without the option nothing is copied (FICLONE copies no xattr).
        let dst = dir.join(format!("nox-{atomic}"));
        CopyOptions::new().atomic(atomic).copy(&src, &dst).unwrap();
        let g = fs::File::open(&dst).unwrap();
        assert!(rustix::fs::fgetxattr(&g, "user.cow", &mut buf[..]).is_err());
    }
});

// ---- files whose size lies ----

#[cfg(unix)]
fs_test!(
    procfs_source_read_to_end,
    [btrfs, xfs, ext4, tmpfs],
    |dir| {
        let dst = dir.join("status");
        let r = CopyOptions::new()
            .copy(Path::new("/proc/self/status"), &dst)
            .unwrap();
        let text = fs::read_to_string(&dst).unwrap();
        assert!(text.contains("Name:"), "{text}");
        assert_eq!(r.len, text.len() as u64);
        assert!(r.size_changed, "size reads 0 but data was copied: {r:?}");
        assert_eq!(r.bytes_copied, r.len);
    }
);

// ---- copy_at ----

#[cfg(unix)]
fs_test!(
    copy_at_replaces_symlink_entry,
    [btrfs, xfs, ext4, tmpfs],
    |dir| {
        use rustix::fs::{Mode, OFlags};
        let d = rustix::fs::open(dir, OFlags::RDONLY | OFlags::DIRECTORY, Mode::empty()).unwrap();
        use std::os::fd::AsFd;
        fs::write(dir.join("src"), b"data").unwrap();
        fs::write(dir.join("victim"), b"do not write through me").unwrap();
        std::os::unix::fs::symlink("victim", dir.join("link")).unwrap();
        let r = CopyOptions::new()
            .copy_at(d.as_fd(), Path::new("src"), d.as_fd(), Path::new("link"))
            .unwrap();
        assert_eq!(r.destination, Destination::Replaced);
        assert!(fs::symlink_metadata(dir.join("link")).unwrap().is_file());
        assert_eq!(fs::read(dir.join("link")).unwrap(), b"data");
        assert_eq!(
            fs::read(dir.join("victim")).unwrap(),
            b"do not write through me"
        );
        // A symlink source is refused without follow_symlinks.
        let e = CopyOptions::new()
            .follow_symlinks(false)
            .copy_at(d.as_fd(), Path::new("link2"), d.as_fd(), Path::new("x"))
            .unwrap_err();
        assert_eq!(std::io::Error::from(e).kind(), std::io::ErrorKind::NotFound);
        std::os::unix::fs::symlink("victim", dir.join("link2")).unwrap();
        let e = CopyOptions::new()
            .follow_symlinks(false)
            .copy_at(d.as_fd(), Path::new("link2"), d.as_fd(), Path::new("x"))
            .unwrap_err();
        assert!(matches!(e, CopyError::NotARegularFile { .. }), "{e}");
        // Plain copy_at into a new name.
        let r = CopyOptions::new()
            .copy_at(d.as_fd(), Path::new("src"), d.as_fd(), Path::new("plain"))
            .unwrap();
        assert_eq!(r.destination, Destination::Created);
        assert_eq!(fs::read(dir.join("plain")).unwrap(), b"data");
        no_temporaries(dir);
    }
);

// ---- sparse policies ----

#[cfg(unix)]
fs_test!(sparse_policies, [btrfs, xfs, ext4, tmpfs], |dir, fs| {
    use cow_copy::Sparse;
    // Data with a whole block run of zeros inside, plus a real hole.
    let src = dir.join("src");
    let mut data = cow_test_support::pattern(64 * 1024, 14);
    data[16384..32768].fill(0);
    fs::write(&src, &data).unwrap();
    let f = fs::File::options().write(true).open(&src).unwrap();
    f.set_len(1 << 20).unwrap();
    f.sync_all().unwrap();
    drop(f);
    for reflink in [Reflink::Never, Reflink::Auto] {
        let always = dir.join(format!("always-{reflink:?}"));
        let r = CopyOptions::new()
            .reflink(reflink)
            .sparse(Sparse::Always)
            .copy(&src, &always)
            .unwrap();
        assert_same_bytes(&src, &always);
        assert_truthful(fs, &src, &always, &r);
        if reflink == Reflink::Never {
            assert_eq!(r.strategy, Strategy::UserCopy);
            // The zero block run became a hole too.
            let segs = data_segments(&always);
            assert!(segs.len() >= 2, "{segs:?}");
            assert_eq!(r.hole_bytes, (1 << 20) - 48 * 1024);
        }
        let never = dir.join(format!("never-{reflink:?}"));
        let r = CopyOptions::new()
            .reflink(reflink)
            .sparse(Sparse::Never)
            .copy(&src, &never)
            .unwrap();
        assert_same_bytes(&src, &never);
        assert_eq!(r.hole_bytes, 0, "{r:?}");
        let m = fs::metadata(&never).unwrap();
        assert!(
            m.blocks() * 512 >= 1 << 20,
            "sparse=never left holes: {} blocks",
            m.blocks()
        );
        assert_eq!(data_segments(&never), vec![(0, 1 << 20)]);
    }
});

#[cfg(unix)]
fs_test!(
    sysfs_source_shorter_than_its_size,
    [btrfs, xfs, ext4, tmpfs],
    |dir| {
        // sysfs reports 4096 bytes for attributes that hold a short line.
        let src = Path::new("/sys/kernel/mm/transparent_hugepage/enabled");
        let Ok(expected) = fs::read(src) else {
            eprintln!(
                "SKIP sysfs_source_shorter_than_its_size: no {}",
                src.display()
            );
            return;
        };
        let dst = dir.join("enabled");
        let r = CopyOptions::new().copy(src, &dst).unwrap();
        assert_eq!(fs::read(&dst).unwrap(), expected);
        assert_eq!(r.len, expected.len() as u64);
        assert_eq!(
            r.size_changed,
            fs::metadata(src).unwrap().len() != expected.len() as u64,
            "{r:?}"
        );
    }
);

#[cfg(unix)]
fs_test!(
    reflink_always_into_a_fifo_refuses,
    [btrfs, xfs, ext4, tmpfs],
    |dir| {
        let src = dir.join("src");
        write_pattern(&src, 10_000, 15);
        let fifo = dir.join("fifo");
        mkfifo(&fifo);
        // A reader, so opening the FIFO for writing does not wait forever.
        let reader = std::thread::spawn({
            let fifo = fifo.clone();
            move || fs::read(&fifo).unwrap()
        });
        let e = CopyOptions::new()
            .reflink(Reflink::Always)
            .copy(&src, &fifo)
            .unwrap_err();
        assert!(matches!(e, CopyError::ReflinkUnsupported { .. }), "{e}");
        // Close our end: the reader sees EOF and got nothing.
        assert!(reader.join().unwrap().is_empty());
        // Without `always` the FIFO gets the bytes.
        let reader = std::thread::spawn({
            let fifo = fifo.clone();
            move || fs::read(&fifo).unwrap()
        });
        let r = CopyOptions::new().copy(&src, &fifo).unwrap();
        assert_eq!(r.len, 10_000);
        assert_eq!(reader.join().unwrap(), fs::read(&src).unwrap());
    }
);

#[cfg(unix)]
fs_test!(
    trailing_slash_destination,
    [btrfs, xfs, ext4, tmpfs],
    |dir| {
        let src = dir.join("src");
        fs::write(&src, b"x").unwrap();
        fs::write(dir.join("file"), b"old").unwrap();
        let before = names_in(dir);
        let e = cow_copy::copy(&src, format!("{}/file/", dir.display())).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::NotADirectory, "{e}");
        let e = cow_copy::copy(&src, format!("{}/new/", dir.display())).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::NotADirectory, "{e}");
        let e = CopyOptions::new()
            .copy(&src, Path::new(&format!("{}/", dir.display())))
            .unwrap_err();
        assert!(matches!(e, CopyError::DestinationIsDirectory { .. }), "{e}");
        assert_eq!(names_in(dir), before);
        assert_eq!(fs::read(dir.join("file")).unwrap(), b"old");
    }
);
