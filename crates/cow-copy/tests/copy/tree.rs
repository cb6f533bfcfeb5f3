//! Tree copies on real filesystems: a fixture with every kind of entry is
//! copied and compared entry by entry.
#![cfg(target_os = "linux")]

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use cow_copy::tree::{Dereference, EntryAction, TreeError, TreeOptions};
use cow_copy::{CopyOptions, Overwrite, Preserve, Reflink};
use cow_test_support::{Fs, fs_test, umask, write_pattern, write_sparse};

const MIB: u64 = 1 << 20;

fn mkfifo(p: &Path, mode: u32) {
    rustix::fs::mknodat(
        rustix::fs::CWD,
        p,
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(mode),
        0,
    )
    .unwrap_or_else(|e| panic!("mkfifo {}: {e}", p.display()));
}

fn set_xattr(p: &Path, name: &str, value: &[u8]) {
    rustix::fs::lsetxattr(p, name, value, rustix::fs::XattrFlags::empty())
        .unwrap_or_else(|e| panic!("setxattr {}: {e}", p.display()));
}

fn chmod(p: &Path, mode: u32) {
    fs::set_permissions(p, fs::Permissions::from_mode(mode)).unwrap();
}

/// Builds the fixture under `root` (which must not exist).
fn fixture(root: &Path) {
    fs::create_dir(root).unwrap();
    fs::create_dir_all(root.join("a/b/c/d")).unwrap();
    fs::create_dir(root.join("empty")).unwrap();
    for (i, len) in [0usize, 1, 4095, 4096, 4097, MIB as usize + 1]
        .iter()
        .enumerate()
    {
        write_pattern(&root.join(format!("size-{len}")), *len, i as u64 + 1);
        write_pattern(
            &root.join(format!("a/b/c/d/deep-{len}")),
            *len,
            i as u64 + 100,
        );
    }
    write_pattern(&root.join("a/file"), 10_000, 7);
    write_sparse(
        &root.join("sparse"),
        16 * MIB,
        &[(MIB, 64 * 1024), (8 * MIB, 128 * 1024)],
        9,
    );
    write_sparse(&root.join("all-hole"), 4 * MIB, &[], 0);

    write_pattern(&root.join("read-only"), 5000, 11);
    chmod(&root.join("read-only"), 0o444);
    write_pattern(&root.join("exec"), 100, 12);
    chmod(&root.join("exec"), 0o755);
    write_pattern(&root.join("private"), 100, 13);
    chmod(&root.join("private"), 0o600);
    fs::create_dir(root.join("ro-dir")).unwrap();
    write_pattern(&root.join("ro-dir/inside"), 300, 14);
    chmod(&root.join("ro-dir"), 0o555);
    fs::create_dir(root.join("private-dir")).unwrap();
    chmod(&root.join("private-dir"), 0o700);

    symlink("a/file", root.join("link-rel")).unwrap();
    symlink("/etc/hostname", root.join("link-abs")).unwrap();
    symlink("does/not/exist", root.join("link-dangling")).unwrap();
    symlink("a", root.join("link-dir")).unwrap();
    symlink("../../file", root.join("a/b/link-up")).unwrap();

    mkfifo(&root.join("fifo"), 0o640);

    write_pattern(&root.join("hard-1"), 20_000, 15);
    fs::hard_link(root.join("hard-1"), root.join("a/b/hard-2")).unwrap();
    fs::hard_link(root.join("hard-1"), root.join("a/hard-3")).unwrap();

    for name in [
        "unicode-é-中文-🐄",
        "new\nline",
        "-leading-dash",
        " spaces in name ",
        "tab\tname",
        "*?[glob]",
        "back\\slash",
    ] {
        write_pattern(&root.join(name), 123, 16);
    }
    // A name that is not UTF-8.
    let raw = OsString::from(std::ffi::OsStr::from_bytes(b"latin1-\xe9"));
    write_pattern(&root.join(raw), 77, 17);

    set_xattr(&root.join("a/file"), "user.cow.test", b"file value");
    set_xattr(&root.join("a"), "user.cow.dir", b"dir value");
}

/// What one entry looks like, for comparison.
#[derive(Debug, PartialEq, Eq)]
enum Node {
    Dir { mode: u32 },
    File { mode: u32, data: Vec<u8> },
    Symlink { target: PathBuf },
    Fifo { mode: u32 },
}

fn snapshot(root: &Path) -> BTreeMap<PathBuf, Node> {
    let mut out = BTreeMap::new();
    walk(root, Path::new(""), &mut out);
    out
}

fn walk(root: &Path, rel: &Path, out: &mut BTreeMap<PathBuf, Node>) {
    let path = root.join(rel);
    let m = fs::symlink_metadata(&path).unwrap();
    let ft = m.file_type();
    let mode = m.mode() & 0o7777;
    use std::os::unix::fs::FileTypeExt;
    let node = if ft.is_dir() {
        let mut names: Vec<_> = fs::read_dir(&path)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        names.sort();
        for n in names {
            walk(root, &rel.join(n), out);
        }
        Node::Dir { mode }
    } else if ft.is_symlink() {
        Node::Symlink {
            target: fs::read_link(&path).unwrap(),
        }
    } else if ft.is_fifo() {
        Node::Fifo { mode }
    } else {
        Node::File {
            mode,
            data: fs::read(&path).unwrap(),
        }
    };
    out.insert(rel.to_path_buf(), node);
}

fn ino(p: &Path) -> u64 {
    fs::symlink_metadata(p).unwrap().ino()
}

fn mtime_ns(p: &Path) -> (i64, i64) {
    let m = fs::symlink_metadata(p).unwrap();
    (m.mtime(), m.mtime_nsec())
}

pub(crate) fn xattr(p: &Path, name: &str) -> Option<Vec<u8>> {
    let mut buf = vec![0u8; 256];
    match rustix::fs::lgetxattr(p, name, &mut buf[..]) {
        Ok(n) => {
            buf.truncate(n);
            Some(buf)
        }
        Err(_) => None,
    }
}

/// Makes the fixture's read-only directory writable again so the test
/// directory can be removed.
fn cleanup(root: &Path) {
    let p = root.join("ro-dir");
    if p.exists() {
        chmod(&p, 0o755);
    }
}

pub(crate) fn opts_p() -> TreeOptions {
    TreeOptions::new()
        .copy_options(CopyOptions::new().preserve(Preserve::all()))
        .preserve_hard_links(true)
}

fs_test!(
    full_fixture_preserving,
    [btrfs, xfs, ext4, tmpfs],
    |dir, fs| {
        let src = dir.join("src");
        let dst = dir.join("dst");
        fixture(&src);
        let report = opts_p().copy(&src, &dst).unwrap_or_else(|e| panic!("{e}"));
        assert!(report.is_complete());
        assert_eq!(snapshot(&src), snapshot(&dst));

        let t = report.totals;
        // 6 sizes x 2, a/file, sparse, all-hole, read-only, exec, private,
        // ro-dir/inside, 7 odd names, latin1, hard-1 (the other two are links).
        assert_eq!(t.files, 12 + 1 + 2 + 3 + 1 + 7 + 1 + 1, "{t:?}");
        assert_eq!(t.hard_links, 2);
        assert_eq!(t.symlinks, 5);
        assert_eq!(t.fifos, 1);
        // root, a, a/b, a/b/c, a/b/c/d, empty, ro-dir, private-dir
        assert_eq!(t.dirs, 8);
        assert_eq!(t.failed, 0);

        // Hard links stay hard links, inside the copy only.
        assert_eq!(ino(&dst.join("hard-1")), ino(&dst.join("a/b/hard-2")));
        assert_eq!(ino(&dst.join("hard-1")), ino(&dst.join("a/hard-3")));
        assert_ne!(ino(&dst.join("hard-1")), ino(&src.join("hard-1")));

        // Times, with nanoseconds, for files, dirs and symlinks.
        for rel in [
            "a/file", "a", "a/b/c/d", "", "link-rel", "sparse", "ro-dir", "fifo",
        ] {
            assert_eq!(
                mtime_ns(&src.join(rel)),
                mtime_ns(&dst.join(rel)),
                "mtime of {rel:?}"
            );
        }
        // xattrs of files and directories.
        assert_eq!(
            xattr(&dst.join("a/file"), "user.cow.test").as_deref(),
            Some(&b"file value"[..])
        );
        assert_eq!(
            xattr(&dst.join("a"), "user.cow.dir").as_deref(),
            Some(&b"dir value"[..])
        );

        // Holes survive.
        let (s, d) = (
            fs::metadata(src.join("sparse")).unwrap(),
            fs::metadata(dst.join("sparse")).unwrap(),
        );
        assert!(
            d.blocks() <= s.blocks() + 16,
            "sparse: {} vs {} blocks",
            d.blocks(),
            s.blocks()
        );
        assert!(fs::metadata(dst.join("all-hole")).unwrap().blocks() <= 8);

        // On reflink filesystems the data is shared.
        if fs.reflinks() {
            assert!(t.bytes_cloned >= MIB, "{t:?}");
        }
        cleanup(&src);
        cleanup(&dst);
    }
);

fs_test!(gnu_default_modes, [btrfs, xfs, ext4, tmpfs], |dir| {
    // preserve nothing: new entries get the source mode minus the umask.
    let src = dir.join("src");
    let dst = dir.join("dst");
    fixture(&src);
    let opts = TreeOptions::new().copy_options(CopyOptions::new().preserve(Preserve::none()));
    let report = opts.copy(&src, &dst).unwrap_or_else(|e| panic!("{e}"));
    let mask = umask();
    let s = snapshot(&src);
    let d = snapshot(&dst);
    assert_eq!(s.len(), d.len());
    for (rel, sn) in &s {
        let dn = &d[rel];
        match (sn, dn) {
            (Node::File { mode: sm, data: sd }, Node::File { mode: dm, data: dd }) => {
                assert_eq!(sd, dd, "{rel:?}");
                assert_eq!(*dm, sm & 0o777 & !mask, "mode of {rel:?}");
            }
            (Node::Dir { mode: sm }, Node::Dir { mode: dm }) => {
                assert_eq!(*dm, sm & 0o777 & !mask, "mode of {rel:?}");
            }
            (Node::Fifo { mode: sm }, Node::Fifo { mode: dm }) => {
                assert_eq!(*dm, sm & 0o777 & !mask, "mode of {rel:?}");
            }
            (a, b) => assert_eq!(a, b, "{rel:?}"),
        }
    }
    // Without hard-link preservation, links become separate files.
    assert_ne!(ino(&dst.join("hard-1")), ino(&dst.join("a/b/hard-2")));
    assert_eq!(report.totals.hard_links, 0);
    // Without xattr preservation none is copied.
    assert_eq!(xattr(&dst.join("a/file"), "user.cow.test"), None);
    cleanup(&src);
    cleanup(&dst);
});

fs_test!(
    merge_into_existing_and_no_clobber,
    [btrfs, xfs, ext4, tmpfs],
    |dir| {
        let src = dir.join("src");
        let dst = dir.join("dst");
        fs::create_dir_all(src.join("sub")).unwrap();
        write_pattern(&src.join("sub/new"), 100, 1);
        write_pattern(&src.join("sub/both"), 100, 2);
        symlink("x", src.join("sub/link")).unwrap();
        fs::create_dir_all(dst.join("sub")).unwrap();
        write_pattern(&dst.join("sub/both"), 50, 3);
        write_pattern(&dst.join("sub/only-dst"), 10, 4);
        symlink("y", dst.join("sub/link")).unwrap();

        let no_clobber = TreeOptions::new()
            .copy_options(CopyOptions::new().overwrite(Overwrite::NoClobber))
            .record_entries(true);
        let r = no_clobber
            .copy(&src, &dst)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            fs::read(dst.join("sub/both")).unwrap(),
            cow_test_support::pattern(50, 3)
        );
        assert_eq!(
            fs::read(dst.join("sub/new")).unwrap(),
            cow_test_support::pattern(100, 1)
        );
        assert_eq!(fs::read_link(dst.join("sub/link")).unwrap(), Path::new("y"));
        assert_eq!(r.totals.skipped, 2, "{:?}", r.totals);
        let entries = r.entries.unwrap();
        let root = entries
            .iter()
            .find(|e| e.path.as_os_str().is_empty())
            .unwrap();
        assert_eq!(root.action, EntryAction::Merged);

        // Replace (the default): existing entries replaced, extra ones kept.
        let r = TreeOptions::new()
            .copy(&src, &dst)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            fs::read(dst.join("sub/both")).unwrap(),
            cow_test_support::pattern(100, 2)
        );
        assert_eq!(fs::read_link(dst.join("sub/link")).unwrap(), Path::new("x"));
        assert!(dst.join("sub/only-dst").exists());
        assert_eq!(r.totals.skipped, 0);
        // The symlink was replaced through a temporary sibling: none is left.
        let names: Vec<_> = fs::read_dir(dst.join("sub"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert!(
            names.iter().all(|n| !n.contains(cow_copy::TEMP_MARKER)),
            "{names:?}"
        );
        assert_eq!(names.len(), 4, "{names:?}");
    }
);

fs_test!(into_itself_refused, [btrfs, tmpfs], |dir| {
    let src = dir.join("a");
    fs::create_dir_all(src.join("b/c")).unwrap();
    write_pattern(&src.join("f"), 10, 1);
    let before = snapshot(&src);
    for dst in [src.join("b/copy"), src.join("copy"), src.join("b/c/d")] {
        match TreeOptions::new().copy(&src, &dst) {
            Err(TreeError::IntoItself { .. }) => {}
            other => panic!("copy into {} not refused: {other:?}", dst.display()),
        }
    }
    // Through a symlink to inside the source, and through `..` games.
    symlink(src.join("b"), dir.join("sneaky")).unwrap();
    assert!(matches!(
        TreeOptions::new().copy(&src, dir.join("sneaky/x")),
        Err(TreeError::IntoItself { .. })
    ));
    // Onto itself.
    assert!(matches!(
        TreeOptions::new().copy(&src, &src),
        Err(TreeError::SameFile { .. })
    ));
    assert!(matches!(
        TreeOptions::new().copy(&src, dir.join("a/b/..")),
        Err(TreeError::SameFile { .. })
    ));
    assert_eq!(snapshot(&src), before, "nothing written");
    // A sibling with a common name prefix is fine.
    TreeOptions::new().copy(&src, dir.join("ab")).unwrap();
});

fs_test!(root_kinds, [btrfs, ext4], |dir| {
    // A symlink root is recreated as a symlink unless dereferenced.
    fs::create_dir(dir.join("real")).unwrap();
    write_pattern(&dir.join("real/f"), 10, 1);
    symlink("real", dir.join("link")).unwrap();
    TreeOptions::new()
        .copy(dir.join("link"), dir.join("copy1"))
        .unwrap();
    assert_eq!(fs::read_link(dir.join("copy1")).unwrap(), Path::new("real"));
    let o = TreeOptions::new().dereference(Dereference::CommandLine);
    o.copy(dir.join("link"), dir.join("copy2")).unwrap();
    assert!(fs::symlink_metadata(dir.join("copy2")).unwrap().is_dir());
    // A trailing slash dereferences, like GNU cp.
    TreeOptions::new()
        .copy(
            Path::new(&format!("{}/", dir.join("link").display())),
            dir.join("copy3"),
        )
        .unwrap();
    assert!(fs::symlink_metadata(dir.join("copy3")).unwrap().is_dir());
    // A regular file root.
    let r = TreeOptions::new()
        .copy(dir.join("real/f"), dir.join("f2"))
        .unwrap();
    assert_eq!(r.totals.files, 1);
    assert_eq!(
        fs::read(dir.join("f2")).unwrap(),
        cow_test_support::pattern(10, 1)
    );
    // A directory onto an existing file: refused, file intact.
    assert!(matches!(
        TreeOptions::new().copy(dir.join("real"), dir.join("f2")),
        Err(TreeError::NotADirectory { .. })
    ));
    // A directory onto a symlink to a directory: the symlink is not followed.
    fs::create_dir(dir.join("elsewhere")).unwrap();
    symlink("elsewhere", dir.join("dlink")).unwrap();
    assert!(matches!(
        TreeOptions::new().copy(dir.join("real"), dir.join("dlink")),
        Err(TreeError::NotADirectory { .. })
    ));
    assert_eq!(fs::read_dir(dir.join("elsewhere")).unwrap().count(), 0);
    // `dst/` names an existing directory to merge into, following it.
    TreeOptions::new()
        .copy(
            dir.join("real"),
            Path::new(&format!("{}/", dir.join("dlink").display())),
        )
        .unwrap();
    assert!(dir.join("elsewhere/f").exists());
    // A missing source.
    assert!(matches!(
        TreeOptions::new().copy(dir.join("missing"), dir.join("x")),
        Err(TreeError::Io { .. })
    ));
    assert!(!dir.join("x").exists());
});

fs_test!(dereference_always_and_cycles, [btrfs, tmpfs], |dir| {
    let src = dir.join("src");
    fs::create_dir_all(src.join("d")).unwrap();
    write_pattern(&src.join("d/f"), 100, 1);
    symlink("d/f", src.join("lf")).unwrap();
    symlink("d", src.join("ld")).unwrap();
    symlink("..", src.join("d/loop")).unwrap();
    let o = TreeOptions::new().dereference(Dereference::Always);
    let err = o.copy(&src, dir.join("dst")).unwrap_err();
    let report = err.report().expect("partial report");
    // The loop is reported (twice: via d/loop and via ld/loop), the rest copied.
    assert!(
        report.failures.iter().all(|f| f.path.ends_with("loop")),
        "{:?}",
        report.failures
    );
    assert!(!report.failures.is_empty());
    let dst = dir.join("dst");
    assert!(fs::symlink_metadata(dst.join("lf")).unwrap().is_file());
    assert!(fs::symlink_metadata(dst.join("ld")).unwrap().is_dir());
    assert_eq!(
        fs::read(dst.join("ld/f")).unwrap(),
        cow_test_support::pattern(100, 1)
    );
});

fs_test!(
    failures_listed_and_fail_fast,
    [btrfs, xfs, ext4, tmpfs],
    |dir| {
        let src = dir.join("src");
        fs::create_dir_all(src.join("x")).unwrap();
        for i in 0..20 {
            write_pattern(&src.join(format!("x/f{i}")), 100, i);
        }
        let dst = dir.join("dst");
        fs::create_dir_all(dst.join("x")).unwrap();
        // Directories where files are expected: each of these fails.
        for i in 0..3 {
            fs::create_dir(dst.join(format!("x/f{i}"))).unwrap();
        }
        let err = TreeOptions::new().copy(&src, &dst).unwrap_err();
        let report = err.report().unwrap();
        assert_eq!(report.failures.len(), 3, "{:?}", report.failures);
        assert_eq!(report.totals.files, 17);
        assert!(report.failures[0].path.starts_with(&src));
        assert_eq!(
            std::io::Error::from(err).kind(),
            std::io::ErrorKind::IsADirectory
        );

        let dst2 = dir.join("dst2");
        fs::create_dir_all(dst2.join("x/f0")).unwrap();
        let err = TreeOptions::new()
            .fail_fast(true)
            .jobs(1)
            .copy(&src, &dst2)
            .unwrap_err();
        let report = err.report().unwrap();
        assert!(report.stopped_early);
        assert_eq!(report.failures.len(), 1);
    }
);

fs_test!(
    reflink_always_reports_per_file,
    [btrfs, xfs, ext4, tmpfs],
    |dir, fs| {
        let src = dir.join("src");
        fs::create_dir_all(src.join("d")).unwrap();
        for i in 0..10 {
            write_pattern(&src.join(format!("d/f{i}")), 64 * 1024, i);
        }
        let o = TreeOptions::new().copy_options(CopyOptions::new().reflink(Reflink::Always));
        let r = o.copy(&src, dir.join("dst"));
        if fs.reflinks() {
            let r = r.unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(r.totals.bytes_cloned, 10 * 64 * 1024);
            assert_eq!(r.totals.bytes_copied, 0);
        } else {
            let e = r.unwrap_err();
            let rep = e.report().unwrap();
            assert_eq!(rep.failures.len(), 10);
            assert_eq!(rep.failures[0].kind, std::io::ErrorKind::Unsupported);
            // Nothing left behind for the files that could not clone.
            assert_eq!(fs::read_dir(dir.join("dst/d")).unwrap().count(), 0);
        }
    }
);

fs_test!(progress_observer_sees_everything, [btrfs, tmpfs], |dir| {
    let src = dir.join("src");
    for d in 0..5 {
        fs::create_dir_all(src.join(format!("d{d}"))).unwrap();
        for i in 0..40 {
            write_pattern(&src.join(format!("d{d}/f{i}")), 1000 + i, i as u64);
        }
    }
    let expected_bytes: u64 = 5 * (0..40u64).map(|i| 1000 + i).sum::<u64>();
    let calls = Arc::new(AtomicU64::new(0));
    let max_done = Arc::new(AtomicU64::new(0));
    let last_total = Arc::new(AtomicU64::new(0));
    let (c, m, t) = (calls.clone(), max_done.clone(), last_total.clone());
    let o = TreeOptions::new().jobs(4).progress(Arc::new(move |p| {
        c.fetch_add(1, Ordering::Relaxed);
        assert!(p.files_done <= p.files_total);
        m.fetch_max(p.bytes_done, Ordering::Relaxed);
        t.fetch_max(p.bytes_total, Ordering::Relaxed);
    }));
    let r = o.copy(&src, dir.join("dst")).unwrap();
    assert_eq!(r.totals.files, 200);
    assert!(calls.load(Ordering::Relaxed) >= 200);
    assert_eq!(max_done.load(Ordering::Relaxed), expected_bytes);
    assert_eq!(last_total.load(Ordering::Relaxed), expected_bytes);
    // The report serializes.
    let _ = format!("{r:?}");
});

fs_test!(
    devices_and_sockets_skipped_with_warning,
    [tmpfs, ext4],
    |dir| {
        let src = dir.join("src");
        fs::create_dir(&src).unwrap();
        let sock = std::os::unix::net::UnixListener::bind(src.join("sock")).unwrap();
        write_pattern(&src.join("f"), 10, 1);
        let r = TreeOptions::new().copy(&src, dir.join("dst")).unwrap();
        assert_eq!(r.totals.skipped, 1);
        assert_eq!(r.warnings.len(), 1);
        assert!(r.warnings[0].message.contains("socket"), "{:?}", r.warnings);
        assert!(!dir.join("dst/sock").exists());
        // Asked for: recreated.
        let r = TreeOptions::new()
            .copy_special(true)
            .copy(&src, dir.join("dst2"))
            .unwrap();
        assert_eq!(r.totals.specials, 1);
        use std::os::unix::fs::FileTypeExt;
        assert!(
            fs::symlink_metadata(dir.join("dst2/sock"))
                .unwrap()
                .file_type()
                .is_socket()
        );
        drop(sock);
    }
);

#[test]
fn report_serializes_and_error_converts() {
    let Some(dir) = cow_test_support::dir_on(Fs::Tmpfs, "report_serializes_and_error_converts")
    else {
        return;
    };
    let dir = dir.path();
    let e = TreeOptions::new()
        .copy(dir.join("nope"), dir.join("dst"))
        .unwrap_err();
    let io: std::io::Error = e.into();
    assert_eq!(io.kind(), std::io::ErrorKind::NotFound);
    assert!(io.to_string().contains("nope"), "{io}");
}

/// Opens `levels` nested directories named `name` below `root` through
/// descriptors (the full path is longer than PATH_MAX).
fn open_deep(root: &Path, name: &str, levels: usize, create: bool) -> std::os::fd::OwnedFd {
    use rustix::fs::{Mode, OFlags, mkdirat, openat};
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
    let mut fd = openat(rustix::fs::CWD, root, flags, Mode::empty()).unwrap();
    for i in 0..levels {
        if create {
            mkdirat(&fd, name, Mode::from_raw_mode(0o755))
                .unwrap_or_else(|e| panic!("mkdir {i}: {e}"));
        }
        fd = openat(&fd, name, flags, Mode::empty()).unwrap_or_else(|e| panic!("open {i}: {e}"));
    }
    fd
}

fs_test!(deep_and_wide, [btrfs, tmpfs], |dir| {
    // 300 levels of 30-byte names: the deepest path is ~9 KiB, more than
    // PATH_MAX, which a path-based copy could not reach. Plus one directory
    // with 3,000 entries.
    let src = dir.join("src");
    fs::create_dir(&src).unwrap();
    let name = "d".repeat(30);
    let bottom = open_deep(&src, &name, 300, true);
    let f = rustix::fs::openat(
        &bottom,
        "bottom",
        rustix::fs::OFlags::WRONLY | rustix::fs::OFlags::CREATE,
        rustix::fs::Mode::from_raw_mode(0o644),
    )
    .unwrap();
    rustix::io::write(&f, b"at the bottom").unwrap();
    drop((f, bottom));
    fs::create_dir(src.join("wide")).unwrap();
    for i in 0..3000 {
        fs::write(src.join(format!("wide/{i}")), i.to_string()).unwrap();
    }
    let r = TreeOptions::new()
        .copy(&src, dir.join("dst"))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(r.totals.files, 3001);
    assert_eq!(r.totals.dirs, 1 + 300 + 1);
    let copy = open_deep(&dir.join("dst"), &name, 300, false);
    let f = rustix::fs::openat(
        &copy,
        "bottom",
        rustix::fs::OFlags::RDONLY,
        rustix::fs::Mode::empty(),
    )
    .unwrap();
    let mut buf = [0u8; 64];
    let n = rustix::io::read(&f, &mut buf[..]).unwrap();
    assert_eq!(&buf[..n], b"at the bottom");
    assert_eq!(
        fs::read_to_string(dir.join("dst/wide/2999")).unwrap(),
        "2999"
    );
    // tempfile cannot remove paths longer than PATH_MAX: unwind by fds.
    for root in [src, dir.join("dst")] {
        remove_deep(&root, &name, 300);
    }
});

fn remove_deep(root: &Path, name: &str, levels: usize) {
    use rustix::fs::{AtFlags, unlinkat};
    let _ = unlinkat(
        open_deep(root, name, levels, false),
        "bottom",
        AtFlags::empty(),
    );
    for l in (0..levels).rev() {
        let parent = open_deep(root, name, l, false);
        unlinkat(&parent, name, AtFlags::REMOVEDIR).unwrap();
    }
}

#[test]
fn cross_filesystem_trees() {
    for (from, to) in [
        (Fs::Btrfs, Fs::Ext4),
        (Fs::Tmpfs, Fs::Xfs),
        (Fs::Ext4, Fs::Btrfs),
    ] {
        let name = format!("cross_filesystem_trees {from}->{to}");
        let (Some(a), Some(b)) = (
            cow_test_support::dir_on(from, &name),
            cow_test_support::dir_on(to, &name),
        ) else {
            continue;
        };
        let src = a.path().join("src");
        let dst = b.path().join("dst");
        fixture(&src);
        let r = opts_p()
            .copy(&src, &dst)
            .unwrap_or_else(|e| panic!("{from}->{to}: {e}"));
        assert_eq!(snapshot(&src), snapshot(&dst), "{from}->{to}");
        assert_eq!(
            r.totals.bytes_cloned, 0,
            "nothing can be shared across filesystems"
        );
        assert_eq!(ino(&dst.join("hard-1")), ino(&dst.join("a/b/hard-2")));
        cleanup(&src);
        cleanup(&dst);
    }
}
