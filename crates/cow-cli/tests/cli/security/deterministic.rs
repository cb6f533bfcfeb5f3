//! Items 3, 6, 8, 9 and 11 of the security issue: no race needed.

use std::ffi::OsStr;
use std::fs;
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::{Command, Output};

use cow_test_support::Fs;
use rustix::fs::{self as rfs, Mode, OFlags};

use super::harness::{
    ATTACKER, OTHER, arena, as_user, cow, file_owned, gnu_cp, mkdir_owned, record_gnu,
};

fn ok(o: &Output, what: &str) {
    assert!(
        o.status.success(),
        "{what}: {:?}\nstdout: {}\nstderr: {}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
}

fn status(o: &Output) -> String {
    let err = String::from_utf8_lossy(&o.stderr);
    let first = err.lines().next().unwrap_or("");
    // A path longer than a line is cut to its end (the error is there).
    let cut = first.char_indices().rev().nth(120).map_or(0, |(i, _)| i);
    let ell = if cut > 0 { "..." } else { "" };
    format!("{}: {ell}{}", o.status, &first[cut..])
}

/// Item 3: `cow cp --atomic` over another user's setuid file in a shared
/// directory never makes the new content setuid.
#[test]
fn atomic_replace_drops_setuid() {
    let Some(t) = arena("atomic_replace_drops_setuid") else {
        return;
    };
    let t = t.path();
    mkdir_owned(&t.join("shared"), 0, 0o777);
    let tool = t.join("shared/tool");
    mkdir_owned(&t.join("a"), OTHER, 0o755);
    file_owned(&t.join("a/mytool"), b"A's code", OTHER, 0o755);
    for (who, label) in [(Some(OTHER), "another user"), (None, "root")] {
        file_owned(&tool, b"B's tool", ATTACKER, 0o4755);
        let mut c = match who {
            Some(uid) => {
                let mut c = as_user(uid);
                c.arg(env!("CARGO_BIN_EXE_cow"));
                c
            }
            None => cow(),
        };
        let o = c
            .args(["cp", "--atomic", "a/mytool", "shared/tool"])
            .current_dir(t)
            .output()
            .unwrap();
        ok(&o, label);
        let m = fs::metadata(&tool).unwrap();
        assert_eq!(fs::read(&tool).unwrap(), b"A's code");
        assert_eq!(
            m.mode() & 0o6000,
            0,
            "{label}: the replaced file's setuid bit was kept: {:o}",
            m.mode()
        );
    }
    if gnu_cp().is_some() {
        file_owned(&tool, b"B's tool", ATTACKER, 0o4755);
        let o = as_user(OTHER)
            .args(["cp", "a/mytool", "shared/tool"])
            .current_dir(t)
            .output()
            .unwrap();
        let m = fs::metadata(&tool).unwrap();
        record_gnu(
            "atomic_replace_drops_setuid",
            &format!(
                "{}; the file is now mode {:o}",
                status(&o),
                m.mode() & 0o7777
            ),
        );
    }
}

/// Creates `depth` nested directories named `name` under `root` (through
/// descriptors: the path soon exceeds PATH_MAX) with a file at the bottom.
fn deep_tree(root: &Path, depth: usize, name: &str) {
    let dir_flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
    let mut cur: OwnedFd = rfs::open(root, dir_flags, Mode::empty()).unwrap();
    for _ in 0..depth {
        rfs::mkdirat(&cur, name, Mode::from_raw_mode(0o755)).unwrap();
        cur = rfs::openat(&cur, name, dir_flags, Mode::empty()).unwrap();
    }
    let fd = rfs::openat(
        &cur,
        "bottom",
        OFlags::WRONLY | OFlags::CREATE | OFlags::CLOEXEC,
        Mode::from_raw_mode(0o644),
    )
    .unwrap();
    fs::File::from(fd).write_all(b"the bottom").unwrap();
}

/// How deep the chain of `name` directories under `root` goes, and the
/// bottom file's content.
fn depth_of(root: &Path, name: &str) -> (usize, Vec<u8>) {
    let dir_flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
    let mut cur: OwnedFd = rfs::open(root, dir_flags, Mode::empty()).unwrap();
    let mut depth = 0;
    while let Ok(next) = rfs::openat(&cur, name, dir_flags, Mode::empty()) {
        cur = next;
        depth += 1;
    }
    let mut data = Vec::new();
    if let Ok(fd) = rfs::openat(&cur, "bottom", OFlags::RDONLY, Mode::empty()) {
        fs::File::from(fd).read_to_end(&mut data).unwrap();
    }
    (depth, data)
}

/// Item 6: a tree 3,000 directories deep (33,000 bytes of path, far over
/// PATH_MAX) is copied whole, with and without parallel workers.
#[test]
fn deep_tree_copies() {
    let Some(t) = cow_test_support::dir_on(Fs::Tmpfs, "deep_tree_copies") else {
        return;
    };
    let t = t.path();
    let (depth, name) = (3000, "dddddddddd");
    fs::create_dir(t.join("src")).unwrap();
    deep_tree(&t.join("src"), depth, name);
    for jobs in ["-j1", "-j4"] {
        let dst = t.join(format!("dst{jobs}"));
        let o = cow()
            .args(["cp", "-r", jobs])
            .arg(t.join("src"))
            .arg(&dst)
            .output()
            .unwrap();
        ok(&o, jobs);
        assert_eq!(
            depth_of(&dst, name),
            (depth, b"the bottom".to_vec()),
            "{jobs}"
        );
    }
    if let Some(cp) = gnu_cp() {
        let o = Command::new(cp)
            .arg("-r")
            .arg(t.join("src"))
            .arg(t.join("gnu"))
            .output()
            .unwrap();
        let (d, data) = depth_of(&t.join("gnu"), name);
        record_gnu(
            "deep_tree_copies",
            &format!(
                "{}; copied {d} of {depth} levels, bottom file {}",
                status(&o),
                if data.is_empty() { "missing" } else { "copied" }
            ),
        );
    }
}

/// Item 8: `--atomic` onto a 210-byte name of which 30 bytes are not UTF-8.
#[test]
fn atomic_long_non_utf8_name() {
    let Some(t) = cow_test_support::dir_on(Fs::Tmpfs, "atomic_long_non_utf8_name") else {
        return;
    };
    let t = t.path();
    let mut name = vec![b'a'; 180];
    name.extend([0xff; 30]);
    let dst = t.join(OsStr::from_bytes(&name));
    fs::write(t.join("src"), b"new content").unwrap();
    // Replacing a file, then beside a missing one.
    for existing in [true, false] {
        if existing {
            fs::write(&dst, b"old").unwrap();
        }
        let o = cow()
            .args(["cp", "--atomic"])
            .arg(t.join("src"))
            .arg(&dst)
            .output()
            .unwrap();
        ok(&o, &format!("cow cp --atomic (existing: {existing})"));
        assert_eq!(fs::read(&dst).unwrap(), b"new content");
        let left = cow_test_support::names_in(t);
        assert_eq!(left.len(), 2, "only src and the destination: {left:?}");
        fs::remove_file(&dst).unwrap();
    }
}

/// Item 9: data in the last MiB of a sparse file of 2^63-1 bytes.
#[test]
fn data_near_the_largest_offset() {
    let Some(t) = cow_test_support::dir_on(Fs::Tmpfs, "data_near_the_largest_offset") else {
        return;
    };
    let t = t.path();
    let len = i64::MAX as u64;
    let at = len - (1 << 20);
    let src = t.join("src");
    let data = cow_test_support::pattern(1 << 20, 9);
    let mut f = fs::File::create(&src).unwrap();
    f.seek(SeekFrom::Start(at)).unwrap();
    f.write_all(&data).unwrap();
    drop(f);
    assert_eq!(fs::metadata(&src).unwrap().len(), len);
    for extra in [&[][..], &["--reflink=never"], &["--sparse=always"]] {
        let dst = t.join("dst");
        let _ = fs::remove_file(&dst);
        let o = cow()
            .arg("cp")
            .args(extra)
            .arg(&src)
            .arg(&dst)
            .output()
            .unwrap();
        ok(&o, &format!("cow cp {extra:?}"));
        let m = fs::metadata(&dst).unwrap();
        assert_eq!(m.len(), len, "{extra:?}");
        assert!(
            m.blocks() * 512 < 4 << 20,
            "{extra:?}: the holes were filled"
        );
        let mut got = vec![0; 1 << 20];
        let mut f = fs::File::open(&dst).unwrap();
        f.seek(SeekFrom::Start(at)).unwrap();
        f.read_exact(&mut got).unwrap();
        assert!(got == data, "{extra:?}: the last MiB differs");
    }
    if let Some(cp) = gnu_cp() {
        let o = Command::new(cp)
            .arg(&src)
            .arg(t.join("gnu"))
            .output()
            .unwrap();
        record_gnu("data_near_the_largest_offset", &status(&o));
    }
}

/// Item 11: with 16 descriptors (`ulimit -n 16`) a 1,000-file tree is still
/// copied whole, and so is a chain of 300 directories beside it (the walk
/// keeps only a few levels open and reopens the others).
#[test]
fn few_descriptors() {
    let Some(t) = cow_test_support::dir_on(Fs::Tmpfs, "few_descriptors") else {
        return;
    };
    let t = t.path();
    let src = t.join("src");
    for d in 0..10 {
        let dir = src.join(format!("d{d}/sub"));
        fs::create_dir_all(&dir).unwrap();
        for f in 0..100 {
            fs::write(dir.join(format!("f{f}")), format!("{d}/{f}")).unwrap();
        }
    }
    deep_tree(&src, 300, "deep");
    let run = |prog: &str, dst: &str| {
        Command::new("sh")
            .args(["-c", "ulimit -n 16 && exec \"$@\"", "sh", prog, "cp", "-r"])
            .arg(&src)
            .arg(t.join(dst))
            .output()
            .unwrap()
    };
    let o = run(env!("CARGO_BIN_EXE_cow"), "dst");
    ok(&o, "cow cp -r at ulimit -n 16");
    for d in 0..10 {
        for f in 0..100 {
            let p = t.join(format!("dst/d{d}/sub/f{f}"));
            assert_eq!(fs::read_to_string(&p).unwrap(), format!("{d}/{f}"));
        }
    }
    assert_eq!(
        depth_of(&t.join("dst"), "deep"),
        (300, b"the bottom".to_vec())
    );
    if gnu_cp().is_some() {
        let o = Command::new("sh")
            .args(["-c", "ulimit -n 16 && exec cp -r \"$0\" \"$1\""])
            .arg(&src)
            .arg(t.join("gnu"))
            .output()
            .unwrap();
        let copied = (0..10)
            .flat_map(|d| (0..100).map(move |f| (d, f)))
            .filter(|(d, f)| t.join(format!("gnu/d{d}/sub/f{f}")).exists())
            .count();
        record_gnu(
            "few_descriptors",
            &format!("{}; {copied} of 1000 files", status(&o)),
        );
    }
}

/// Item 1, the way it is built: in a directory others can change, symlinks,
/// FIFOs and sockets are made in a private directory, given their metadata
/// there and renamed into place. The result is the same as anywhere else,
/// new or replacing, and no private directory is left behind.
#[test]
fn nodes_in_a_shared_directory() {
    use std::os::unix::fs::FileTypeExt;
    let Some(t) = arena("nodes_in_a_shared_directory") else {
        return;
    };
    let t = t.path();
    let src = t.join("src");
    mkdir_owned(&src, ATTACKER, 0o755);
    std::os::unix::fs::symlink("target", src.join("l")).unwrap();
    std::os::unix::fs::lchown(src.join("l"), Some(ATTACKER), Some(OTHER)).unwrap();
    cow_test_support::mkfifo(&src.join("p"));
    drop(std::os::unix::net::UnixListener::bind(src.join("s")).unwrap());
    for n in ["p", "s"] {
        std::os::unix::fs::chown(src.join(n), Some(ATTACKER), Some(OTHER)).unwrap();
        fs::set_permissions(src.join(n), fs::Permissions::from_mode(0o640)).unwrap();
    }
    mkdir_owned(&t.join("pub"), 0, 0o1777);
    let opts = cow_copy::tree::TreeOptions::new()
        .copy_options(cow_copy::CopyOptions::new().preserve(cow_copy::Preserve::all()))
        .copy_special(true)
        .dereference(cow_copy::tree::Dereference::Never);
    let dst = t.join("pub/copy");
    // Twice: created, then replacing what the first run made (the copy's
    // directory is the attacker's after the first run, as the source's).
    for round in ["new", "replacing"] {
        let r = opts.copy(&src, &dst).unwrap();
        assert!(r.is_complete(), "{round}: {r:?}");
        for n in ["l", "p", "s"] {
            let m = fs::symlink_metadata(dst.join(n)).unwrap();
            assert_eq!((m.uid(), m.gid()), (ATTACKER, OTHER), "{round} {n}");
            if n != "l" {
                assert_eq!(m.mode() & 0o7777, 0o640, "{round} {n}");
            }
        }
        assert_eq!(fs::read_link(dst.join("l")).unwrap(), Path::new("target"));
        assert!(
            fs::symlink_metadata(dst.join("p"))
                .unwrap()
                .file_type()
                .is_fifo()
        );
        let mut names = cow_test_support::names_in(&dst);
        names.sort();
        assert_eq!(names, ["l", "p", "s"], "{round}: nothing else is left");
    }
}

/// The library options behind items 2 and 4: a dangling destination is
/// refused and nothing is created; `RemoveDestination` replaces a
/// multiply-linked file (`IfLinked`) or any entry, a symlink too
/// (`Always`), and the other names keep their content.
#[test]
fn destination_options() {
    use cow_copy::{CopyError, CopyOptions, RemoveDestination};
    let Some(t) = cow_test_support::dir_on(Fs::Tmpfs, "destination_options") else {
        return;
    };
    let t = t.path();
    let src = t.join("src");
    fs::write(&src, b"new").unwrap();
    let dangling = t.join("dangling");
    std::os::unix::fs::symlink(t.join("nowhere"), &dangling).unwrap();
    for atomic in [false, true] {
        let e = CopyOptions::new()
            .atomic(atomic)
            .write_through_dangling(false)
            .copy(&src, &dangling)
            .unwrap_err();
        assert!(matches!(e, CopyError::DanglingDestination { .. }), "{e}");
        assert!(!t.join("nowhere").exists(), "atomic: {atomic}");
    }
    for (policy, atomic) in [
        (RemoveDestination::IfLinked, false),
        (RemoveDestination::Always, false),
        (RemoveDestination::Always, true),
    ] {
        let (dst, other) = (t.join("dst"), t.join("other"));
        let _ = fs::remove_file(&dst);
        let _ = fs::remove_file(&other);
        fs::write(&other, b"other name").unwrap();
        fs::hard_link(&other, &dst).unwrap();
        let opts = CopyOptions::new().atomic(atomic).remove_destination(policy);
        opts.copy(&src, &dst).unwrap();
        assert_eq!(fs::read(&dst).unwrap(), b"new", "{policy:?}");
        assert_eq!(fs::read(&other).unwrap(), b"other name", "{policy:?}");
        assert_eq!(fs::metadata(&dst).unwrap().nlink(), 1, "{policy:?}");
        // A symlink destination is replaced, its target left alone.
        if policy == RemoveDestination::Always {
            fs::remove_file(&dst).unwrap();
            std::os::unix::fs::symlink(&other, &dst).unwrap();
            opts.copy(&src, &dst).unwrap();
            assert!(!fs::symlink_metadata(&dst).unwrap().is_symlink());
            assert_eq!(fs::read(&other).unwrap(), b"other name");
        }
    }
    // The same file through a hard link is still refused, not replaced.
    let (a, b) = (t.join("a"), t.join("b"));
    fs::write(&a, b"same").unwrap();
    fs::hard_link(&a, &b).unwrap();
    for policy in [RemoveDestination::IfLinked, RemoveDestination::Always] {
        for dst in [&a, &b] {
            let e = CopyOptions::new()
                .remove_destination(policy)
                .copy(&a, dst)
                .unwrap_err();
            assert!(matches!(e, CopyError::SameFile { .. }), "{policy:?}: {e}");
            assert_eq!(fs::metadata(&a).unwrap().nlink(), 2, "{policy:?}");
        }
    }
    assert_eq!(fs::read(&a).unwrap(), b"same");
}
