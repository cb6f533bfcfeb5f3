//! The macOS engine against what the kernel does to a clone (docs/macos.md):
//! read-only and flagged sources, symlink and hard-linked destinations,
//! quarantine, the fcopyfile fallback's counts and the whole-tree clone.
//! Plain `cargo test` cases on the APFS temp directory of the GitHub macOS
//! runner (a non-root user; as root the cases that need a non-root user
//! assert what root gets instead).

#![cfg(target_os = "macos")]

use std::fs;
use std::os::macos::fs::MetadataExt as _;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::Command;

use cow_copy::tree::{TreeMethod, TreeOptions};
use cow_copy::{CopyError, CopyOptions, Preserve, Reflink, Sparse, Strategy};
use cow_test_support::{pattern, write_pattern, write_sparse};

const UF_IMMUTABLE: u32 = 0x2;
const UF_APPEND: u32 = 0x4;
const QUARANTINE: &str = "com.apple.quarantine";

fn run(cmd: &str, args: &[&str], path: &Path) {
    let status = Command::new(cmd).args(args).arg(path).status().unwrap();
    assert!(
        status.success(),
        "{cmd} {args:?} {}: {status}",
        path.display()
    );
}

fn chmod(path: &Path, mode: u32) {
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

fn flags(path: &Path) -> u32 {
    fs::symlink_metadata(path).unwrap().st_flags()
}

fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

fn xattr(path: &Path, name: &str) -> Option<Vec<u8>> {
    let out = Command::new("xattr")
        .args(["-p", name])
        .arg(path)
        .output()
        .unwrap();
    out.status.success().then_some(out.stdout)
}

fn assert_symlink(path: &Path) {
    let t = fs::symlink_metadata(path).unwrap().file_type();
    assert!(
        t.is_symlink(),
        "{} is no longer a symlink: {t:?}",
        path.display()
    );
}

fn assert_clone(src: &Path, dst: &Path, r: &cow_copy::CopyReport) {
    assert_eq!(r.strategy, Strategy::Cloned, "{r:?}");
    assert!(cow_verify::is_clone(src, dst).unwrap(), "{r:?}");
    assert_eq!(fs::read(dst).unwrap(), fs::read(src).unwrap());
}

/// pnpm stores, git objects and the Nix store are read-only: the clone
/// gets the source's mode and must still be made and finished.
#[test]
fn read_only_sources_clone() {
    let dir = tempfile::tempdir().unwrap();
    for (i, mode) in [0o444, 0o555, 0o400].into_iter().enumerate() {
        let src = dir.path().join(format!("src{i}"));
        let dst = dir.path().join(format!("dst{i}"));
        write_pattern(&src, 300_001, i as u64);
        chmod(&src, mode);
        let r = CopyOptions::new().copy(&src, &dst).unwrap();
        assert_clone(&src, &dst, &r);
        assert_eq!(fs::metadata(&dst).unwrap().mode() & 0o7777, mode);
        // An existing destination of ours is replaced by a clone too (made
        // writable first: a read-only one cannot be opened in place), and
        // reflink=always clones it.
        chmod(&dst, 0o644);
        let r = CopyOptions::new()
            .reflink(Reflink::Always)
            .copy(&src, &dst)
            .unwrap_or_else(|e| panic!("mode {mode:o}: {e}"));
        assert_clone(&src, &dst, &r);
        assert_eq!(fs::metadata(&dst).unwrap().mode() & 0o7777, mode);
        // Atomic as well.
        let r = CopyOptions::new().atomic(true).copy(&src, &dst).unwrap();
        assert_clone(&src, &dst, &r);
        // Only the two files: no temporary left.
        assert!(cow_test_support::names_in(dir.path()).len() == 2 * (i + 1));
    }
}

/// `uchg`/`uappnd` on the source travel with a clone (xnu copies
/// va_flags): the copy must not have them and stays removable.
#[test]
fn source_bsd_flags_do_not_travel() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    write_pattern(&src, 200_000, 3);
    run("chflags", &["uchg,uappnd,hidden"], &src);
    assert_eq!(
        flags(&src) & (UF_IMMUTABLE | UF_APPEND),
        UF_IMMUTABLE | UF_APPEND
    );
    for atomic in [false, true] {
        let dst = dir.path().join(format!("dst-{atomic}"));
        let r = CopyOptions::new().atomic(atomic).copy(&src, &dst).unwrap();
        assert_clone(&src, &dst, &r);
        assert_eq!(flags(&dst), 0, "atomic={atomic}");
        fs::remove_file(&dst).unwrap();
    }
    run("chflags", &["0"], &src);
    assert_eq!(cow_test_support::names_in(dir.path()), ["src"]);
}

/// `std::fs::copy` writes through a destination symlink; so must the clone.
#[test]
fn a_destination_symlink_is_written_through() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let src = d.join("src");
    let data = write_pattern(&src, 123_457, 4);
    fs::create_dir(d.join("sub")).unwrap();
    fs::write(d.join("sub/target"), b"old").unwrap();
    std::os::unix::fs::symlink("sub/target", d.join("link")).unwrap();
    let r = CopyOptions::new().copy(&src, d.join("link")).unwrap();
    assert_symlink(&d.join("link"));
    assert_clone(&src, &d.join("sub/target"), &r);
    assert_eq!(fs::read(d.join("link")).unwrap(), data);
    // A dangling link: its target is created, the link stays.
    std::os::unix::fs::symlink("sub/new", d.join("dangling")).unwrap();
    let r = CopyOptions::new().copy(&src, d.join("dangling")).unwrap();
    assert_symlink(&d.join("dangling"));
    assert_clone(&src, &d.join("sub/new"), &r);
    assert_eq!(
        cow_test_support::names_in(&d.join("sub")),
        ["new", "target"]
    );
}

/// An in-place overwrite keeps the destination's inode when a swap could be
/// seen: hard links still see the new bytes, an ACL stays.
#[test]
fn in_place_overwrite_keeps_a_destination_that_a_swap_would_change() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let src = d.join("src");
    let data = write_pattern(&src, 500_000, 5);
    let dst = d.join("dst");
    fs::write(&dst, b"old content").unwrap();
    fs::hard_link(&dst, d.join("other-name")).unwrap();
    let ino = fs::metadata(&dst).unwrap().ino();
    let r = CopyOptions::new().copy(&src, &dst).unwrap();
    assert_ne!(r.strategy, Strategy::Cloned, "{r:?}");
    assert_eq!(fs::metadata(&dst).unwrap().ino(), ino);
    assert_eq!(fs::read(d.join("other-name")).unwrap(), data);
    let f = &r.fallbacks[0];
    assert_eq!(f.strategy, Strategy::Cloned, "{r:?}");
    assert!(f.reason.contains("hard links"), "{r:?}");
    // The dense source went through one fcopyfile: every byte counted once.
    assert_eq!(r.strategy, Strategy::KernelCopy, "{r:?}");
    assert_eq!(
        (r.bytes_copied, r.hole_bytes),
        (data.len() as u64, 0),
        "{r:?}"
    );
    // reflink=always cannot clone in place: it fails and leaves it alone.
    fs::write(&dst, b"kept").unwrap();
    let err = CopyOptions::new()
        .reflink(Reflink::Always)
        .copy(&src, &dst)
        .unwrap_err();
    assert!(
        matches!(err, CopyError::ReflinkUnsupported { .. }),
        "{err:?}"
    );
    assert_eq!(fs::read(&dst).unwrap(), b"kept");
    // Atomic replaces the entry by a clone, by definition a new inode.
    let r = CopyOptions::new().atomic(true).copy(&src, &dst).unwrap();
    assert_clone(&src, &dst, &r);
    assert_eq!(fs::read(d.join("other-name")).unwrap(), b"kept");

    // An ACL on the destination.
    let acl = d.join("acl");
    fs::write(&acl, b"old").unwrap();
    run("chmod", &["+a", "everyone deny delete"], &acl);
    let ino = fs::metadata(&acl).unwrap().ino();
    let r = CopyOptions::new().copy(&src, &acl).unwrap();
    assert_ne!(r.strategy, Strategy::Cloned, "{r:?}");
    assert_eq!(fs::metadata(&acl).unwrap().ino(), ino);
    assert_eq!(fs::read(&acl).unwrap(), data);
    let ls = Command::new("ls").arg("-le").arg(&acl).output().unwrap();
    assert!(
        String::from_utf8_lossy(&ls.stdout).contains("deny delete"),
        "{ls:?}"
    );

    // A plain destination of ours is cloned over, keeping its xattrs.
    let plain = d.join("plain");
    fs::write(&plain, b"old").unwrap();
    run("xattr", &["-w", "org.cow.note", "kept"], &plain);
    let r = CopyOptions::new().copy(&src, &plain).unwrap();
    assert_clone(&src, &plain, &r);
    assert_eq!(
        xattr(&plain, "org.cow.note").as_deref(),
        Some(&b"kept\n"[..])
    );
}

/// As root, a destination owned by another user is written in place: a
/// clone would belong to root (CLONE_NOOWNERCOPY) with the directory's
/// group and carry the old mode (setuid included) onto a root-owned file.
#[test]
fn as_root_another_users_destination_keeps_its_owner() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    let data = write_pattern(&src, 100_000, 6);
    let dst = dir.path().join("dst");
    fs::write(&dst, b"old").unwrap();
    if !is_root() {
        // A non-root user cannot own another user's file: the own-file
        // case is the one to check.
        let r = CopyOptions::new().copy(&src, &dst).unwrap();
        assert_clone(&src, &dst, &r);
        eprintln!("not root: only the own-destination case ran");
        return;
    }
    std::os::unix::fs::chown(&dst, Some(1), Some(1)).unwrap();
    chmod(&dst, 0o4755);
    let r = CopyOptions::new()
        .preserve(Preserve::none())
        .copy(&src, &dst)
        .unwrap();
    assert_ne!(r.strategy, Strategy::Cloned, "{r:?}");
    let m = fs::metadata(&dst).unwrap();
    assert_eq!((m.uid(), m.gid()), (1, 1));
    assert_eq!(fs::read(&dst).unwrap(), data);
}

/// Gatekeeper's attribute is kept like Finder keeps it, on every path;
/// other xattrs only when asked for.
#[test]
fn quarantine_is_kept_other_xattrs_follow_the_options() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let src = d.join("src");
    write_pattern(&src, 100_000, 7);
    run(
        "xattr",
        &["-w", QUARANTINE, "0081;65a1b2c3;cow-test;"],
        &src,
    );
    run("xattr", &["-w", "org.cow.other", "x"], &src);
    let q = xattr(&src, QUARANTINE).expect("quarantine set on the source");
    for reflink in [Reflink::Auto, Reflink::Never] {
        for atomic in [false, true] {
            let dst = d.join(format!("dst-{reflink:?}-{atomic}"));
            let r = CopyOptions::new()
                .reflink(reflink)
                .atomic(atomic)
                .copy(&src, &dst)
                .unwrap();
            let what = format!("{reflink:?} atomic={atomic}: {r:?}");
            assert_eq!(xattr(&dst, QUARANTINE).as_ref(), Some(&q), "{what}");
            assert_eq!(xattr(&dst, "org.cow.other"), None, "{what}");
        }
    }
    let all = d.join("all");
    CopyOptions::new()
        .preserve(Preserve::all())
        .copy(&src, &all)
        .unwrap();
    assert_eq!(xattr(&all, "org.cow.other").as_deref(), Some(&b"x\n"[..]));
    // A read-only copy still gets them: writing an xattr needs the write
    // bit, which the copy has only for that moment.
    chmod(&src, 0o444);
    for (name, preserve) in [("ro", Preserve::default()), ("ro-all", Preserve::all())] {
        for reflink in [Reflink::Auto, Reflink::Never] {
            let dst = d.join(format!("{name}-{reflink:?}"));
            let r = CopyOptions::new()
                .reflink(reflink)
                .preserve(preserve)
                .copy(&src, &dst)
                .unwrap();
            assert_eq!(xattr(&dst, QUARANTINE).as_ref(), Some(&q), "{name}: {r:?}");
            assert!(r.metadata_skipped.is_empty(), "{name}: {r:?}");
            assert_eq!(fs::metadata(&dst).unwrap().mode() & 0o7777, 0o444);
        }
    }
}

/// The data fallback when no clone is made: a dense source in one
/// fcopyfile, a sparse one by the user-space copy segment by segment; each
/// byte counted once, holes kept.
#[test]
fn fallback_counts_each_byte_once_and_keeps_holes() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let len = 8 << 20;
    let src = d.join("sparse");
    let data = write_sparse(&src, len, &[(0, 1 << 20), (4 << 20, 1 << 20)], 8);
    let map = cow_verify::data_map(&src).unwrap();
    let data_bytes: u64 = map
        .iter()
        .filter(|s| s.kind == cow_verify::SegmentKind::Data)
        .map(|s| s.len)
        .sum();
    // A hard-linked destination refuses the clone, so the data is copied.
    let dst = d.join("dst");
    fs::write(&dst, b"old").unwrap();
    fs::hard_link(&dst, d.join("dst-link")).unwrap();
    let r = CopyOptions::new().copy(&src, &dst).unwrap();
    assert_eq!(fs::read(&dst).unwrap(), data);
    assert_eq!(r.len, len);
    assert_eq!(r.bytes_copied, data_bytes, "{r:?} {map:?}");
    assert_eq!(r.bytes_copied + r.hole_bytes, len, "{r:?}");
    if data_bytes < len {
        // Holes on APFS: the kernel slot (fcopyfile) declined, the
        // user-space copy kept them.
        assert_eq!(r.strategy, Strategy::UserCopy, "{r:?}");
        assert_eq!(cow_verify::data_map(&dst).unwrap(), map);
    } else {
        eprintln!("the volume reported no holes: the dense path ran");
        assert_eq!(r.strategy, Strategy::KernelCopy, "{r:?}");
    }
    // Sparse::Never fills the holes in.
    let r = CopyOptions::new()
        .sparse(Sparse::Never)
        .copy(&src, &dst)
        .unwrap();
    assert_eq!(fs::read(&dst).unwrap(), data);
    assert_eq!(r.hole_bytes, 0, "{r:?}");
}

fn tree_opts() -> TreeOptions {
    TreeOptions::new().copy_options(CopyOptions::new().preserve(Preserve::all()))
}

/// The whole-tree clone: an unreadable entry falls back to the walk, which
/// reports that entry alone; flags do not travel; setuid is kept on own
/// files; sparse=never and fsync take the walk.
#[test]
fn tree_fast_path_falls_back_and_keeps_the_walks_rules() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let src = d.join("src");
    fs::create_dir_all(src.join("sub")).unwrap();
    write_pattern(&src.join("a"), 50_000, 9);
    write_pattern(&src.join("sub/b"), 70_000, 10);
    write_pattern(&src.join("setuid"), 1000, 11);
    chmod(&src.join("setuid"), 0o4755);
    write_pattern(&src.join("locked"), 1000, 12);
    run("chflags", &["uchg"], &src.join("locked"));

    let r = tree_opts().copy(&src, d.join("clone")).unwrap();
    assert_eq!(r.method, TreeMethod::CloneTree, "{r:?}");
    assert_eq!((r.totals.files, r.totals.dirs), (4, 2), "{r:?}");
    assert_eq!(flags(&d.join("clone/locked")), 0);
    assert_eq!(
        fs::metadata(d.join("clone/setuid")).unwrap().mode() & 0o7777,
        0o4755
    );
    assert!(r.warnings.is_empty(), "{r:?}");
    assert!(cow_verify::is_clone(&src.join("sub/b"), &d.join("clone/sub/b")).unwrap());

    for (name, opts) in [
        (
            "never",
            TreeOptions::new().copy_options(
                CopyOptions::new()
                    .preserve(Preserve::all())
                    .sparse(Sparse::Never),
            ),
        ),
        (
            "fsync",
            TreeOptions::new()
                .copy_options(CopyOptions::new().preserve(Preserve::all()).fsync(true)),
        ),
    ] {
        let r = opts.copy(&src, d.join(name)).unwrap();
        assert_eq!(r.method, TreeMethod::Walk, "{name}: {r:?}");
        assert_eq!(
            fs::read(d.join(name).join("a")).unwrap(),
            pattern(50_000, 9)
        );
    }

    write_pattern(&src.join("secret"), 1000, 13);
    chmod(&src.join("secret"), 0o000);
    let result = tree_opts().copy(&src, d.join("walked"));
    if is_root() {
        let r = result.unwrap();
        assert_eq!(
            r.method,
            TreeMethod::CloneTree,
            "root reads everything: {r:?}"
        );
    } else {
        let err = result.expect_err("the unreadable entry is reported");
        let cow_copy::tree::TreeError::Incomplete { report } = err else {
            panic!("not an entry failure: {err:?}");
        };
        assert_eq!(report.method, TreeMethod::Walk, "{report:?}");
        assert_eq!(report.failures.len(), 1, "{report:?}");
        assert!(report.failures[0].path.ends_with("secret"), "{report:?}");
        assert_eq!(
            fs::read(d.join("walked/sub/b")).unwrap(),
            pattern(70_000, 10)
        );
    }
    chmod(&src.join("secret"), 0o600);
    for p in [src.join("locked"), d.join("walked/locked")] {
        if p.exists() {
            run("chflags", &["0"], &p);
        }
    }
}
