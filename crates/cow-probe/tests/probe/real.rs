//! cow-probe on real filesystems (btrfs, XFS, ext4, tmpfs from
//! `cargo xtask test`; skipped loudly when one is missing).
#![cfg(target_os = "linux")]

use std::path::Path;

use cow_probe::{Evidence, FsKind, ProbeError, Support, probe_uncached};
use cow_test_support::{Fs, fs_test};

fn kind_of(fs: Fs) -> FsKind {
    match fs {
        Fs::Btrfs => FsKind::Btrfs,
        Fs::Xfs => FsKind::Xfs,
        Fs::Ext4 => FsKind::Ext4,
        Fs::Tmpfs => FsKind::Tmpfs,
        Fs::Native => unreachable!("these tests list Linux filesystems only"),
    }
}

fn entries(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}

fs_test!(live_answers, [btrfs, xfs, ext4, tmpfs], |dir, fs| {
    let c = probe_uncached(dir).unwrap();
    assert_eq!(c.fs, kind_of(fs), "{c:?}");
    assert_eq!(c.path, dir);
    assert!(!c.read_only);
    assert!(c.is_live());
    assert!(c.block_size >= 512, "{c:?}");
    assert_eq!(
        c.dev,
        std::os::unix::fs::MetadataExt::dev(&std::fs::metadata(dir).unwrap())
    );
    let want = |s: bool| if s { Support::Yes } else { Support::No };
    assert_eq!(c.reflink.support, want(fs.reflinks()), "{c:?}");
    assert_eq!(c.dedupe.support, want(fs.reflinks()), "{c:?}");
    assert_eq!(c.copy_file_range.support, want(fs.reflinks()), "{c:?}");
    assert_eq!(c.fiemap.support, want(fs.has_fiemap()), "{c:?}");
    assert_eq!(c.sparse, cow_probe::Answer::live(Support::Yes), "{c:?}");
    if fs.reflinks() {
        assert_eq!(c.reflink.evidence, Evidence::Live);
        assert_eq!(c.dedupe.evidence, Evidence::Live);
        assert_eq!(c.copy_file_range.evidence, Evidence::Live);
    } else {
        // The kernel said no, and the answer says which call said it.
        assert!(
            matches!(c.reflink.evidence, Evidence::Errno { op: "FICLONE", .. }),
            "{c:?}"
        );
        assert!(
            matches!(
                c.dedupe.evidence,
                Evidence::Errno {
                    op: "FIDEDUPERANGE",
                    ..
                }
            ),
            "{c:?}"
        );
    }
    if !fs.has_fiemap() {
        assert!(
            matches!(
                c.fiemap.evidence,
                Evidence::Errno {
                    op: "FS_IOC_FIEMAP",
                    ..
                }
            ),
            "{c:?}"
        );
    }
    // No scratch file is left behind.
    assert_eq!(entries(dir), Vec::<String>::new());
    // JSON for machines.
    let json = serde_json::to_value(&c).unwrap();
    assert_eq!(
        json["reflink"]["support"],
        if fs.reflinks() { "yes" } else { "no" }
    );
});

fs_test!(a_file_probes_its_directory, [btrfs, ext4], |dir, fs| {
    let f = dir.join("file");
    std::fs::write(&f, b"x").unwrap();
    let c = probe_uncached(&f).unwrap();
    assert_eq!(c.path, f);
    assert_eq!(c.fs, kind_of(fs));
    assert_eq!(
        c.reflink.support,
        if fs.reflinks() {
            Support::Yes
        } else {
            Support::No
        }
    );
    assert_eq!(entries(dir), vec!["file".to_owned()]);
});

/// Makes a directory refuse new files for the lifetime of the guard: the
/// immutable attribute as root (root ignores permission bits), mode 0555
/// otherwise.
struct Unwritable<'a>(&'a Path, bool);

impl<'a> Unwritable<'a> {
    fn new(dir: &'a Path) -> Unwritable<'a> {
        use std::os::unix::fs::PermissionsExt;
        if rustix::process::geteuid().is_root() {
            let f = std::fs::File::open(dir).unwrap();
            let flags = rustix::fs::ioctl_getflags(&f).unwrap();
            rustix::fs::ioctl_setflags(&f, flags | rustix::fs::IFlags::IMMUTABLE).unwrap();
            Unwritable(dir, true)
        } else {
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o555)).unwrap();
            Unwritable(dir, false)
        }
    }
}

impl Drop for Unwritable<'_> {
    fn drop(&mut self) {
        use std::os::unix::fs::PermissionsExt;
        if self.1 {
            let f = std::fs::File::open(self.0).unwrap();
            let flags = rustix::fs::ioctl_getflags(&f).unwrap();
            rustix::fs::ioctl_setflags(&f, flags - rustix::fs::IFlags::IMMUTABLE).unwrap();
        } else {
            std::fs::set_permissions(self.0, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
    }
}

fs_test!(
    unwritable_dir_gives_marked_table_answers,
    [btrfs, xfs, ext4],
    |dir, fs| {
        let sub = dir.join("locked");
        std::fs::create_dir(&sub).unwrap();
        let guard = Unwritable::new(&sub);
        assert!(
            std::fs::write(sub.join("try"), b"x").is_err(),
            "the directory still takes files"
        );
        let c = probe_uncached(&sub).unwrap();
        drop(guard);
        assert!(!c.is_live());
        let hint = kind_of(fs).table_hint();
        for (name, a) in c.answers() {
            assert_eq!(a.evidence, Evidence::NotWritable, "{name}: {c:?}");
        }
        assert_eq!(c.reflink.support, hint.reflink);
        assert_eq!(c.sparse.support, Support::Yes);
        assert_eq!(entries(&sub), Vec::<String>::new());
    }
);

#[test]
fn errors_name_the_path_and_call() {
    let p = Path::new("/nonexistent/cow-probe");
    let e = probe_uncached(p).unwrap_err();
    assert!(matches!(&e, ProbeError::Io { op: "stat", .. }), "{e:?}");
    assert_eq!(e.path(), p);
    assert!(e.to_string().contains("/nonexistent/cow-probe"));
    assert_eq!(std::io::Error::from(e).kind(), std::io::ErrorKind::NotFound);
}

#[test]
fn procfs_is_answered_from_the_table() {
    // /proc refuses new files (ENOENT): table answers, not an error.
    let c = probe_uncached(Path::new("/proc")).unwrap();
    assert_eq!(c.fs, FsKind::Procfs, "{c:?}");
    assert!(!c.is_live());
    for (name, a) in c.answers() {
        assert_eq!(a.evidence, Evidence::NotWritable, "{name}: {c:?}");
        assert_eq!(a.support, Support::No, "{name}: {c:?}");
    }
}
