//! std::fs::copy's own expectations, the same-file guard, bad inputs,
//! reflink=always and atomic replacement, on real filesystems (metadata:
//! `behaviour_meta.rs`).

#![cfg(any(target_os = "linux", windows))]

use crate::common;

use std::fs;
#[cfg(unix)]
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
#[cfg(unix)]
use std::path::PathBuf;
#[cfg(unix)]
use std::process::Command;

use common::*;
#[cfg(unix)]
use cow_copy::Preserve;
use cow_copy::{CopyError, CopyOptions, Destination, Overwrite, Reflink, Strategy};
#[cfg(unix)]
use cow_test_support::{Fs, mkfifo};
use cow_test_support::{fs_test, names_in, write_pattern};

pub(crate) fn no_temporaries(dir: &Path) {
    for n in names_in(dir) {
        assert!(!n.contains(cow_copy::TEMP_MARKER), "leftover temporary {n}");
    }
}

/// `a/b` with the platform's separator, as error messages show paths.
fn native_path(p: &str) -> String {
    p.replace('/', std::path::MAIN_SEPARATOR_STR)
}

// ---- std::fs::copy's expectations, rewritten for cow_copy::copy ----

fs_test!(
    std_missing_source_creates_nothing,
    [btrfs, xfs, ext4, tmpfs, native],
    |dir| {
        let e = cow_copy::copy(dir.join("foo"), dir.join("bar")).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::NotFound);
        assert!(e.to_string().contains("foo"), "{e}");
        assert!(!dir.join("bar").exists());
    }
);

fs_test!(
    std_missing_source_keeps_destination,
    [btrfs, xfs, ext4, tmpfs, native],
    |dir| {
        fs::write(dir.join("bar"), b"keep me").unwrap();
        assert!(cow_copy::copy(dir.join("foo"), dir.join("bar")).is_err());
        assert_eq!(fs::read(dir.join("bar")).unwrap(), b"keep me");
    }
);

#[cfg(unix)]
fs_test!(
    std_contents_and_permissions,
    [btrfs, xfs, ext4, tmpfs],
    |dir| {
        let (src, dst) = (dir.join("in.txt"), dir.join("out.txt"));
        fs::write(&src, b"hello").unwrap();
        fs::set_permissions(&src, fs::Permissions::from_mode(0o640)).unwrap();
        cow_copy::copy(&src, &dst).unwrap();
        assert_eq!(fs::read(&dst).unwrap(), b"hello");
        assert_eq!(
            fs::metadata(&src).unwrap().permissions(),
            fs::metadata(&dst).unwrap().permissions()
        );
    }
);

fs_test!(
    std_destination_is_directory,
    [btrfs, xfs, ext4, tmpfs, native],
    |dir| {
        let src = dir.join("in");
        fs::write(&src, b"x").unwrap();
        let e = CopyOptions::new().copy(&src, dir).unwrap_err();
        assert!(matches!(e, CopyError::DestinationIsDirectory { .. }), "{e}");
        fs::create_dir(dir.join("sub")).unwrap();
        let e = cow_copy::copy(&src, dir.join("sub")).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::IsADirectory);
        for atomic in [false, true] {
            let e = CopyOptions::new()
                .atomic(atomic)
                .copy(&src, dir.join("sub"))
                .unwrap_err();
            assert!(matches!(e, CopyError::DestinationIsDirectory { .. }), "{e}");
        }
        assert!(dir.join("sub").is_dir());
        no_temporaries(dir);
    }
);

fs_test!(
    std_existing_destination_overwritten,
    [btrfs, xfs, ext4, tmpfs, native],
    |dir| {
        fs::write(dir.join("foo"), b"foo").unwrap();
        fs::write(dir.join("bar"), b"bar, a longer old content").unwrap();
        cow_copy::copy(dir.join("foo"), dir.join("bar")).unwrap();
        assert_eq!(fs::read(dir.join("bar")).unwrap(), b"foo");
    }
);

fs_test!(
    std_source_is_directory,
    [btrfs, xfs, ext4, tmpfs, native],
    |dir| {
        let e = cow_copy::copy(dir, dir.join("out")).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput);
        assert!(!dir.join("out").exists());
    }
);

fs_test!(
    std_readonly_bit_preserved,
    [btrfs, xfs, ext4, tmpfs, native],
    |dir| {
        let (src, dst) = (dir.join("in"), dir.join("out"));
        fs::write(&src, b"ro").unwrap();
        let mut p = fs::metadata(&src).unwrap().permissions();
        p.set_readonly(true);
        fs::set_permissions(&src, p).unwrap();
        cow_copy::copy(&src, &dst).unwrap();
        assert!(fs::metadata(&dst).unwrap().permissions().readonly());
    }
);

fs_test!(
    std_return_value_is_length,
    [btrfs, xfs, ext4, tmpfs, native],
    |dir| {
        let (src, dst) = (dir.join("in"), dir.join("out"));
        write_pattern(&src, 12345, 1);
        let n = cow_copy::copy(&src, &dst).unwrap();
        assert_eq!(n, fs::metadata(&dst).unwrap().len());
        assert_eq!(n, 12345);
    }
);

#[cfg(unix)]
fs_test!(
    std_destination_symlink_followed,
    [btrfs, xfs, ext4, tmpfs],
    |dir| {
        let (src, link, target) = (dir.join("in"), dir.join("out"), dir.join("out_target"));
        fs::write(&src, b"new").unwrap();
        fs::write(&target, b"old target").unwrap();
        std::os::unix::fs::symlink(&target, &link).unwrap();
        cow_copy::copy(&src, &link).unwrap();
        assert!(link.is_symlink());
        assert_eq!(fs::read(&target).unwrap(), b"new");
        // Atomic too: the link stays, its target is replaced.
        fs::write(&src, b"newer").unwrap();
        CopyOptions::new().atomic(true).copy(&src, &link).unwrap();
        assert!(link.is_symlink());
        assert_eq!(fs::read(&target).unwrap(), b"newer");
        no_temporaries(dir);
        // A dangling symlink is followed and its target created, like std.
        let dangling = dir.join("dangling");
        std::os::unix::fs::symlink(dir.join("created_target"), &dangling).unwrap();
        cow_copy::copy(&src, &dangling).unwrap();
        assert_eq!(fs::read(dir.join("created_target")).unwrap(), b"newer");
    }
);

// ---- same file ----

fn assert_same_file_refused(src: &Path, dst: &Path, content: &[u8]) {
    for atomic in [false, true] {
        for reflink in [Reflink::Auto, Reflink::Always, Reflink::Never] {
            let e = CopyOptions::new()
                .atomic(atomic)
                .reflink(reflink)
                .copy(src, dst)
                .unwrap_err();
            assert!(matches!(e, CopyError::SameFile { .. }), "{e}");
            assert_eq!(
                std::io::Error::from(e).kind(),
                std::io::ErrorKind::InvalidInput
            );
            assert_eq!(fs::read(src).unwrap(), content, "the file was damaged");
        }
    }
}

fs_test!(
    same_file_is_refused,
    [btrfs, xfs, ext4, tmpfs, native],
    |dir| {
        let f = dir.join("f");
        let content = write_pattern(&f, 100_000, 2);
        assert_same_file_refused(&f, &f, &content);
        fs::hard_link(&f, dir.join("hard")).unwrap();
        assert_same_file_refused(&f, &dir.join("hard"), &content);
        #[cfg(unix)]
        {
            std::os::unix::fs::symlink(&f, dir.join("sym")).unwrap();
            assert_same_file_refused(&f, &dir.join("sym"), &content);
            assert_same_file_refused(&dir.join("sym"), &f, &content);
        }
        assert_same_file_refused(&f, &dir.join(".").join("f"), &content);
        no_temporaries(dir);
    }
);

/// Runs `mount` with the arguments; false (and a loud SKIP) if it fails.
#[cfg(unix)]
fn mount(args: &[&str], test: &str) -> bool {
    let out = Command::new("mount").args(args).output();
    match out {
        Ok(o) if o.status.success() => true,
        Ok(o) => {
            eprintln!(
                "SKIP {test}: mount {args:?} failed: {}",
                String::from_utf8_lossy(&o.stderr)
            );
            false
        }
        Err(e) => {
            eprintln!("SKIP {test}: cannot run mount: {e}");
            false
        }
    }
}

#[cfg(unix)]
struct Unmount(PathBuf);
#[cfg(unix)]
impl Drop for Unmount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

#[cfg(unix)]
fs_test!(
    same_file_through_bind_mount,
    [btrfs, xfs, ext4, tmpfs],
    |dir| {
        let a = dir.join("a");
        let b = dir.join("b");
        fs::create_dir(&a).unwrap();
        fs::create_dir(&b).unwrap();
        let f = a.join("f");
        let content = write_pattern(&f, 70_000, 3);
        if !mount(
            &["--bind", a.to_str().unwrap(), b.to_str().unwrap()],
            "same_file_through_bind_mount",
        ) {
            return;
        }
        let _guard = Unmount(b.clone());
        assert_same_file_refused(&f, &b.join("f"), &content);
    }
);

// ---- bad inputs ----

fn assert_nothing_created(dir: &Path, before: &[String]) {
    assert_eq!(names_in(dir), before, "the copy left something behind");
}

#[cfg(unix)]
fs_test!(bad_sources, [btrfs, xfs, ext4, tmpfs], |dir| {
    let fifo = dir.join("fifo");
    mkfifo(&fifo);
    let sock = dir.join("sock");
    let _listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    fs::create_dir(dir.join("d")).unwrap();
    let before = names_in(dir);
    for (src, kind) in [
        (fifo.clone(), "FIFO"),
        (sock.clone(), "socket"),
        (PathBuf::from("/dev/null"), "a device"),
        (dir.join("d"), "directory"),
    ] {
        for atomic in [false, true] {
            let e = CopyOptions::new()
                .atomic(atomic)
                .copy(&src, dir.join("out"))
                .unwrap_err();
            assert!(matches!(e, CopyError::NotARegularFile { .. }), "{e}");
            let msg = e.to_string();
            assert!(
                msg.contains(src.to_str().unwrap()) && msg.contains(kind),
                "{msg}"
            );
        }
    }
    let e = cow_copy::copy(dir.join("missing"), dir.join("out")).unwrap_err();
    assert!(e.to_string().contains("missing"));
    // A symlink source with follow_symlinks(false) is refused too.
    fs::write(dir.join("real"), b"x").unwrap();
    std::os::unix::fs::symlink(dir.join("real"), dir.join("link")).unwrap();
    let e = CopyOptions::new()
        .follow_symlinks(false)
        .copy(dir.join("link"), dir.join("out"))
        .unwrap_err();
    assert!(matches!(e, CopyError::NotARegularFile { .. }), "{e}");
    fs::remove_file(dir.join("real")).unwrap();
    fs::remove_file(dir.join("link")).unwrap();
    assert_nothing_created(dir, &before);
});

fs_test!(bad_destinations, [btrfs, xfs, ext4, tmpfs, native], |dir| {
    let src = dir.join("src");
    write_pattern(&src, 5000, 4);
    let before = names_in(dir);
    for atomic in [false, true] {
        let opts = CopyOptions::new().atomic(atomic);
        let e = opts.copy(&src, dir.join("nodir").join("out")).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::NotFound, "{e}");
        assert!(e.to_string().contains(&native_path("nodir/out")), "{e}");
        let e = opts.copy(&src, dir).unwrap_err();
        assert!(matches!(e, CopyError::DestinationIsDirectory { .. }), "{e}");
        let e = opts.copy(&src, src.join("sub")).unwrap_err();
        assert!(e.to_string().contains(&native_path("src/sub")), "{e}");
    }
    assert_nothing_created(dir, &before);
});

#[cfg(unix)]
fs_test!(
    read_only_mount_destination,
    [btrfs, xfs, ext4, tmpfs],
    |dir| {
        let src = dir.join("src");
        write_pattern(&src, 5000, 4);
        let rw = dir.join("rw");
        let ro = dir.join("ro");
        fs::create_dir(&rw).unwrap();
        fs::create_dir(&ro).unwrap();
        fs::write(rw.join("existing"), b"old").unwrap();
        let test = "read_only_mount_destination";
        if !mount(
            &["--bind", rw.to_str().unwrap(), ro.to_str().unwrap()],
            test,
        ) {
            return;
        }
        let _guard = Unmount(ro.clone());
        if !mount(&["-o", "remount,bind,ro", ro.to_str().unwrap()], test) {
            return;
        }
        for atomic in [false, true] {
            let e = CopyOptions::new()
                .atomic(atomic)
                .copy(&src, ro.join("new"))
                .unwrap_err();
            assert_eq!(e.kind(), std::io::ErrorKind::ReadOnlyFilesystem, "{e}");
            assert!(e.to_string().contains("ro/new"), "{e}");
            let e = CopyOptions::new()
                .atomic(atomic)
                .copy(&src, ro.join("existing"))
                .unwrap_err();
            assert_eq!(e.kind(), std::io::ErrorKind::ReadOnlyFilesystem, "{e}");
        }
        assert_eq!(names_in(&rw), vec!["existing".to_string()]);
        assert_eq!(fs::read(rw.join("existing")).unwrap(), b"old");
    }
);

// Permission checks only bind without root: re-run this test binary as
// `nobody` (setpriv) for the child part.
#[cfg(unix)]
fs_test!(
    no_permission_destination,
    [btrfs, xfs, ext4, tmpfs],
    |dir| {
        if let Ok(d) = std::env::var("COW_ENGINE_CHILD_DIR") {
            let d = PathBuf::from(d);
            let e = cow_copy::copy(d.join("src"), d.join("locked").join("new")).unwrap_err();
            assert_eq!(e.kind(), std::io::ErrorKind::PermissionDenied, "{e}");
            assert!(e.to_string().contains("locked/new"), "{e}");
            let e = CopyOptions::new()
                .atomic(true)
                .copy(d.join("src"), d.join("locked").join("new"))
                .unwrap_err();
            assert_eq!(e.kind(), std::io::ErrorKind::PermissionDenied, "{e}");
            let e = cow_copy::copy(d.join("src"), d.join("readonly")).unwrap_err();
            assert_eq!(e.kind(), std::io::ErrorKind::PermissionDenied, "{e}");
            assert!(e.to_string().contains("readonly"), "{e}");
            return;
        }
        fs::set_permissions(dir, fs::Permissions::from_mode(0o755)).unwrap();
        write_pattern(&dir.join("src"), 3000, 5);
        fs::set_permissions(dir.join("src"), fs::Permissions::from_mode(0o644)).unwrap();
        fs::create_dir(dir.join("locked")).unwrap();
        fs::set_permissions(dir.join("locked"), fs::Permissions::from_mode(0o555)).unwrap();
        fs::write(dir.join("readonly"), b"old").unwrap();
        fs::set_permissions(dir.join("readonly"), fs::Permissions::from_mode(0o444)).unwrap();
        let test = std::thread::current().name().unwrap_or("").to_string();
        let exe = std::env::current_exe().unwrap();
        let out = Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
            .arg(exe)
            .args(["--exact", &test, "--nocapture", "--test-threads=1"])
            .env("COW_ENGINE_CHILD_DIR", dir)
            .env_remove("COW_TEST_LEDGER")
            .output();
        let out = match out {
            Ok(o) => o,
            Err(e) => {
                eprintln!("SKIP {test}: cannot run setpriv: {e}");
                return;
            }
        };
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && text.contains("1 passed"),
            "child failed: {text}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(!dir.join("locked").join("new").exists());
        assert_eq!(fs::read(dir.join("readonly")).unwrap(), b"old");
    }
);

// ---- reflink = always ----

fs_test!(
    reflink_always,
    [btrfs, xfs, ext4, tmpfs, native],
    |dir, fs| {
        let src = dir.join("src");
        write_pattern(&src, 300_000, 6);
        let existing = dir.join("existing");
        let old = write_pattern(&existing, 50_000, 7);
        let ino = inode(&existing);
        for atomic in [false, true] {
            let opts = CopyOptions::new().reflink(Reflink::Always).atomic(atomic);
            let new = dir.join(format!("new-{atomic}"));
            if fs.reflinks() {
                let r = opts.copy(&src, &new).unwrap();
                assert_eq!(r.strategy, Strategy::Cloned);
                assert!(cow_verify::sharing(&src, &new).unwrap().is_clone());
                let r = opts.copy(&src, &existing).unwrap();
                assert_eq!(r.strategy, Strategy::Cloned);
                assert_eq!(r.destination, Destination::Replaced);
                assert!(cow_verify::sharing(&src, &existing).unwrap().is_clone());
                write_pattern(&existing, 50_000, 7);
            } else {
                let before = names_in(dir);
                let e = opts.copy(&src, &new).unwrap_err();
                assert!(matches!(e, CopyError::ReflinkUnsupported { .. }), "{e}");
                assert_eq!(
                    std::io::Error::from(e).kind(),
                    std::io::ErrorKind::Unsupported
                );
                assert_eq!(names_in(dir), before, "reflink=always created something");
                let e = opts.copy(&src, &existing).unwrap_err();
                assert!(matches!(e, CopyError::ReflinkUnsupported { .. }), "{e}");
                assert_eq!(fs::read(&existing).unwrap(), old);
                assert_eq!(
                    inode(&existing),
                    ino,
                    "the existing destination was replaced"
                );
                assert_eq!(names_in(dir), before);
            }
        }
    }
);

// ---- atomic ----

#[cfg(unix)]
fs_test!(atomic_replace, [btrfs, xfs, ext4, tmpfs], |dir, fs| {
    let src = dir.join("src");
    let dst = dir.join("dst");
    write_pattern(&src, 200_000, 8);
    write_pattern(&dst, 500_000, 9);
    fs::set_permissions(&dst, fs::Permissions::from_mode(0o600)).unwrap();
    let ino = inode(&dst);
    let r = CopyOptions::new()
        .atomic(true)
        .fsync(true)
        .preserve(Preserve::none())
        .copy(&src, &dst)
        .unwrap();
    assert_same_bytes(&src, &dst);
    assert_truthful(fs, &src, &dst, &r);
    assert_eq!(r.destination, Destination::Replaced);
    assert_ne!(inode(&dst), ino, "atomic replaces the inode");
    // GNU semantics: the replaced file keeps its mode.
    assert_eq!(fs::metadata(&dst).unwrap().mode() & 0o7777, 0o600);
    // A new file gets the source mode minus the umask (022 in tests).
    fs::set_permissions(&src, fs::Permissions::from_mode(0o666)).unwrap();
    let new = dir.join("new");
    CopyOptions::new()
        .atomic(true)
        .preserve(Preserve::none())
        .copy(&src, &new)
        .unwrap();
    let umask = 0o022;
    assert_eq!(fs::metadata(&new).unwrap().mode() & 0o777, 0o666 & !umask);
    // No clobber.
    let e = CopyOptions::new()
        .atomic(true)
        .overwrite(Overwrite::NoClobber)
        .copy(&src, &dst)
        .unwrap_err();
    assert!(matches!(e, CopyError::DestinationExists { .. }), "{e}");
    assert_eq!(
        std::io::Error::from(e).kind(),
        std::io::ErrorKind::AlreadyExists
    );
    no_temporaries(dir);
});

fs_test!(no_clobber, [btrfs, xfs, ext4, tmpfs, native], |dir| {
    let src = dir.join("src");
    write_pattern(&src, 1000, 1);
    fs::write(dir.join("dst"), b"mine").unwrap();
    let e = CopyOptions::new()
        .overwrite(Overwrite::NoClobber)
        .copy(&src, dir.join("dst"))
        .unwrap_err();
    assert!(matches!(e, CopyError::DestinationExists { .. }), "{e}");
    assert_eq!(fs::read(dir.join("dst")).unwrap(), b"mine");
    let r = CopyOptions::new()
        .overwrite(Overwrite::NoClobber)
        .copy(&src, dir.join("fresh"))
        .unwrap();
    assert_eq!(r.destination, Destination::Created);
});

/// A real ENOSPC in the middle of a copy: a 1 MiB tmpfs as destination.
#[cfg(unix)]
fn full_disk(fs: Fs, dir: &Path) {
    let src = dir.join("big");
    write_pattern(&src, 4 << 20, 10);
    let small = dir.join("small");
    fs::create_dir(&small).unwrap();
    if !mount(
        &[
            "-t",
            "tmpfs",
            "-o",
            "size=1m",
            "tmpfs",
            small.to_str().unwrap(),
        ],
        "atomic_failure_keeps_destination",
    ) {
        return;
    }
    let _guard = Unmount(small.clone());
    let dst = small.join("dst");
    let old = write_pattern(&dst, 100_000, 11);
    let e = CopyOptions::new()
        .atomic(true)
        .copy(&src, &dst)
        .unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::StorageFull, "{fs}: {e}");
    assert_eq!(
        fs::read(&dst).unwrap(),
        old,
        "atomic copy damaged the destination"
    );
    no_temporaries(&small);
    // Without atomic the error says the destination is incomplete.
    let e = CopyOptions::new().copy(&src, &dst).unwrap_err();
    assert!(matches!(e, CopyError::Incomplete { .. }), "{e}");
    assert!(
        e.to_string().contains("incomplete") && e.to_string().contains("small/dst"),
        "{e}"
    );
    // A new file that cannot be completed is removed.
    let e = CopyOptions::new()
        .copy(&src, small.join("new"))
        .unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::StorageFull);
    assert!(!small.join("new").exists());
}

#[cfg(unix)]
fs_test!(
    atomic_failure_keeps_destination,
    [btrfs, xfs, ext4, tmpfs],
    |dir, fs| {
        full_disk(fs, dir);
    }
);
