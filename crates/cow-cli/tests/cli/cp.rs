//! End-to-end tests of `cow cp`: the built binary on real filesystems.
#![cfg(target_os = "linux")]

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
use std::path::Path;
use std::process::{Command, Output};

use cow_test_support::{Fs, fs_test, mkfifo, pattern, set_mtime, umask, write_pattern};

/// Runs `cow cp ARGS` in `dir`.
fn cp(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cow"))
        .arg("cp")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run cow")
}

fn code(o: &Output) -> i32 {
    o.status.code().expect("exit code")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[track_caller]
fn ok(o: &Output) {
    assert_eq!(code(o), 0, "stderr: {}", stderr(o));
}

fn json(o: &Output) -> serde_json::Value {
    serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("--json output does not parse: {e}\n{}", stdout(o)))
}

fn mode(p: &Path) -> u32 {
    fs::symlink_metadata(p).unwrap().mode() & 0o7777
}

/// A small tree: a/f, a/sub/g, a/link -> f.
fn small_tree(dir: &Path) {
    fs::create_dir_all(dir.join("a/sub")).unwrap();
    write_pattern(&dir.join("a/f"), 5000, 1);
    write_pattern(&dir.join("a/sub/g"), 70_000, 2);
    symlink("f", dir.join("a/link")).unwrap();
}

fs_test!(
    recursive_destination_rules,
    [btrfs, xfs, ext4, tmpfs],
    |dir| {
        small_tree(dir);
        // b does not exist: b becomes the copy.
        ok(&cp(dir, &["-r", "a", "b"]));
        assert_eq!(fs::read(dir.join("b/sub/g")).unwrap(), pattern(70_000, 2));
        assert_eq!(fs::read_link(dir.join("b/link")).unwrap(), Path::new("f"));
        // b exists: the copy goes to b/a.
        ok(&cp(dir, &["-r", "a", "b"]));
        assert_eq!(fs::read(dir.join("b/a/f")).unwrap(), pattern(5000, 1));
        // -T: b is the copy itself (merged).
        ok(&cp(dir, &["-rT", "a", "b"]));
        assert!(!dir.join("b/a/a").exists());
        // a/. copies the contents into an existing directory.
        fs::create_dir(dir.join("c")).unwrap();
        ok(&cp(dir, &["-r", "a/.", "c"]));
        assert_eq!(fs::read(dir.join("c/f")).unwrap(), pattern(5000, 1));
        assert!(!dir.join("c/a").exists());
        // SRC... DIR, and -t DIR.
        fs::create_dir(dir.join("d")).unwrap();
        ok(&cp(dir, &["-r", "a/f", "a/sub", "d"]));
        assert!(dir.join("d/f").is_file() && dir.join("d/sub/g").is_file());
        fs::create_dir(dir.join("e")).unwrap();
        ok(&cp(dir, &["-r", "-t", "e", "a/f", "a/sub"]));
        assert!(dir.join("e/f").is_file() && dir.join("e/sub/g").is_file());
        // A directory without -r is omitted (failure), the other source copied.
        fs::create_dir(dir.join("g")).unwrap();
        let o = cp(dir, &["a", "a/f", "g"]);
        assert_eq!(code(&o), 1);
        assert!(stderr(&o).contains("-r not specified"), "{}", stderr(&o));
        assert!(dir.join("g/f").is_file());
        // Same base name twice into one directory.
        fs::create_dir(dir.join("h")).unwrap();
        let o = cp(dir, &["a/f", "b/f", "h"]);
        assert_eq!(code(&o), 1);
        assert!(stderr(&o).contains("just-created"), "{}", stderr(&o));
    }
);

fs_test!(command_line_symlinks, [btrfs, ext4], |dir| {
    small_tree(dir);
    symlink("a", dir.join("la")).unwrap();
    symlink("a/f", dir.join("lf")).unwrap();
    // With -r a command-line symlink is copied as a symlink...
    ok(&cp(dir, &["-r", "la", "x1"]));
    assert_eq!(fs::read_link(dir.join("x1")).unwrap(), Path::new("a"));
    // ...a trailing slash dereferences it...
    ok(&cp(dir, &["-r", "la/", "x2"]));
    assert!(fs::symlink_metadata(dir.join("x2")).unwrap().is_dir());
    assert_eq!(fs::read_link(dir.join("x2/link")).unwrap(), Path::new("f"));
    // ...and so does -H (inner symlinks stay) and -L (inner followed too).
    ok(&cp(dir, &["-rH", "la", "x3"]));
    assert!(fs::symlink_metadata(dir.join("x3")).unwrap().is_dir());
    assert!(dir.join("x3/link").is_symlink());
    ok(&cp(dir, &["-rL", "la", "x4"]));
    assert!(fs::symlink_metadata(dir.join("x4/link")).unwrap().is_file());
    // Without -r a symlink to a file is followed.
    ok(&cp(dir, &["lf", "x5"]));
    assert!(fs::symlink_metadata(dir.join("x5")).unwrap().is_file());
    // -P without -r copies the symlink.
    ok(&cp(dir, &["-P", "lf", "x6"]));
    assert!(dir.join("x6").is_symlink());
});

fs_test!(
    never_writes_through_dangling_symlink,
    [btrfs, xfs, ext4, tmpfs],
    |dir| {
        write_pattern(&dir.join("src"), 100, 1);
        symlink("target-missing", dir.join("dang")).unwrap();
        let o = cp(dir, &["src", "dang"]);
        assert_eq!(code(&o), 1);
        assert!(stderr(&o).contains("dangling"), "{}", stderr(&o));
        assert!(!dir.join("target-missing").exists());
        assert!(dir.join("dang").is_symlink());
        // A valid destination symlink is followed, like GNU cp.
        write_pattern(&dir.join("real"), 10, 2);
        symlink("real", dir.join("good")).unwrap();
        ok(&cp(dir, &["src", "good"]));
        assert_eq!(fs::read(dir.join("real")).unwrap(), pattern(100, 1));
        assert!(dir.join("good").is_symlink());
    }
);

fs_test!(fifo_destination_gets_the_bytes, [btrfs, tmpfs], |dir| {
    write_pattern(&dir.join("src"), 200_000, 3);
    let fifo = dir.join("fifo");
    mkfifo(&fifo);
    let reader = {
        let fifo = fifo.clone();
        std::thread::spawn(move || fs::read(fifo).unwrap())
    };
    ok(&cp(dir, &["src", "fifo"]));
    assert_eq!(reader.join().unwrap(), pattern(200_000, 3));
    use std::os::unix::fs::FileTypeExt;
    assert!(fs::symlink_metadata(&fifo).unwrap().file_type().is_fifo());
});

fs_test!(modes_like_gnu, [btrfs, xfs, ext4, tmpfs], |dir| {
    write_pattern(&dir.join("src"), 100, 1);
    fs::set_permissions(dir.join("src"), fs::Permissions::from_mode(0o777)).unwrap();
    // New file: source mode minus umask.
    ok(&cp(dir, &["src", "new"]));
    assert_eq!(mode(&dir.join("new")), 0o777 & !umask());
    // Existing file keeps its mode.
    write_pattern(&dir.join("old"), 10, 2);
    fs::set_permissions(dir.join("old"), fs::Permissions::from_mode(0o600)).unwrap();
    ok(&cp(dir, &["src", "old"]));
    assert_eq!(mode(&dir.join("old")), 0o600);
    assert_eq!(fs::read(dir.join("old")).unwrap(), pattern(100, 1));
    // -p keeps mode and times.
    let t =
        std::time::SystemTime::UNIX_EPOCH + std::time::Duration::new(1_000_000_000, 123_456_789);
    set_mtime(&dir.join("src"), t);
    ok(&cp(dir, &["-p", "src", "kept"]));
    assert_eq!(mode(&dir.join("kept")), 0o777);
    assert_eq!(
        fs::metadata(dir.join("kept")).unwrap().modified().unwrap(),
        t
    );
    // Trees too: directory modes minus umask, or kept with -p.
    fs::create_dir(dir.join("tree")).unwrap();
    fs::set_permissions(dir.join("tree"), fs::Permissions::from_mode(0o775)).unwrap();
    ok(&cp(dir, &["-r", "tree", "tree2"]));
    assert_eq!(mode(&dir.join("tree2")), 0o775 & !umask());
    ok(&cp(dir, &["-a", "tree", "tree3"]));
    assert_eq!(mode(&dir.join("tree3")), 0o775);
});

/// `name` of `p` itself (symlinks not followed), or `None`.
fn lxattr(p: &Path, name: &str) -> Option<Vec<u8>> {
    let mut buf = vec![0u8; 256];
    let n = rustix::fs::lgetxattr(p, name, &mut buf[..]).ok()?;
    buf.truncate(n);
    Some(buf)
}

fs_test!(
    symlink_xattrs_with_a,
    [btrfs, xfs, ext4, tmpfs],
    |dir, fs| {
        // trusted.* is allowed on symlinks (user.* is not) and root may set it.
        small_tree(dir);
        let name = "trusted.cow_test";
        let link = dir.join("a/link");
        if let Err(e) = rustix::fs::lsetxattr(&link, name, b"moo", rustix::fs::XattrFlags::empty())
        {
            // The four test filesystems all let root do it: only an
            // unprivileged run may take this path.
            assert!(
                !rustix::process::geteuid().is_root(),
                "{}: root cannot set {name} on a symlink: {e}",
                fs.name()
            );
            eprintln!(
                "NOTE {}: the filesystem refuses {name} on a symlink ({e}); checking that -a copies the tree without it",
                fs.name()
            );
            let o = cp(dir, &["-a", "a", "b"]);
            ok(&o);
            assert_eq!(fs::read_link(dir.join("b/link")).unwrap(), Path::new("f"));
            assert_eq!(lxattr(&dir.join("b/link"), name), None);
            return;
        }
        let o = cp(dir, &["-a", "a", "b"]);
        ok(&o);
        assert!(!stderr(&o).contains("warning"), "{}", stderr(&o));
        assert_eq!(fs::read_link(dir.join("b/link")).unwrap(), Path::new("f"));
        assert_eq!(
            lxattr(&dir.join("b/link"), name).as_deref(),
            Some(&b"moo"[..])
        );
        // The link was not followed: its target did not get the attribute.
        assert_eq!(lxattr(&dir.join("b/f"), name), None);
        // --preserve=xattr alone, and a symlink given on the command line.
        ok(&cp(dir, &["-r", "--preserve=xattr", "a", "c"]));
        assert_eq!(
            lxattr(&dir.join("c/link"), name).as_deref(),
            Some(&b"moo"[..])
        );
        ok(&cp(dir, &["-a", "a/link", "d"]));
        assert_eq!(fs::read_link(dir.join("d")).unwrap(), Path::new("f"));
        assert_eq!(lxattr(&dir.join("d"), name).as_deref(), Some(&b"moo"[..]));
        // Without xattr preservation it is not copied.
        ok(&cp(dir, &["-r", "a", "e"]));
        assert_eq!(lxattr(&dir.join("e/link"), name), None);
    }
);

fs_test!(no_clobber_and_update_none, [btrfs, ext4], |dir| {
    write_pattern(&dir.join("src"), 100, 1);
    write_pattern(&dir.join("dst"), 10, 2);
    for flags in [&["-n"][..], &["--update=none"][..]] {
        let mut args = flags.to_vec();
        args.extend(["src", "dst"]);
        ok(&cp(dir, &args));
        assert_eq!(fs::read(dir.join("dst")).unwrap(), pattern(10, 2));
    }
    ok(&cp(dir, &["--update=all", "src", "dst"]));
    assert_eq!(fs::read(dir.join("dst")).unwrap(), pattern(100, 1));
});

fs_test!(json_report, [btrfs, xfs, ext4, tmpfs], |dir, fs| {
    small_tree(dir);
    let o = cp(dir, &["-r", "--json", "a", "b"]);
    ok(&o);
    let v = json(&o);
    assert_eq!(v["ok"], true);
    assert_eq!(v["totals"]["files"], 2);
    assert_eq!(v["totals"]["dirs"], 2);
    assert_eq!(v["totals"]["symlinks"], 1);
    let tree = &v["sources"][0]["tree"];
    assert_eq!(tree["method"], "walk");
    // Every entry, with each file's engine report.
    let entries = tree["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 5, "{tree}");
    let g = entries.iter().find(|e| e["path"] == "sub/g").unwrap();
    assert_eq!(g["kind"], "file");
    assert_eq!(g["report"]["len"], 70_000);
    let data = v["totals"]["bytes_cloned"].as_u64().unwrap()
        + v["totals"]["bytes_copied"].as_u64().unwrap();
    assert_eq!(data, 75_000);
    if fs.reflinks() {
        // The 70,000-byte file is not inline: its blocks are shared.
        assert!(
            v["totals"]["bytes_cloned"].as_u64().unwrap() >= 65_536,
            "{v}"
        );
    } else {
        assert_eq!(v["totals"]["bytes_cloned"], 0);
    }
    // A single file: the engine's report.
    let o = cp(dir, &["--json", "a/sub/g", "g2"]);
    ok(&o);
    let v = json(&o);
    assert_eq!(v["sources"][0]["file"]["len"], 70_000);
    // Failures: exit 1 and listed.
    let o = cp(dir, &["--json", "missing", "x"]);
    assert_eq!(code(&o), 1);
    let v = json(&o);
    assert_eq!(v["ok"], false);
    assert_eq!(v["sources"][0]["status"], "failed");
    assert!(
        v["sources"][0]["error"]
            .as_str()
            .unwrap()
            .contains("missing")
    );
});

fs_test!(reflink_always, [btrfs, xfs, ext4, tmpfs], |dir, fs| {
    small_tree(dir);
    let o = cp(dir, &["-r", "--reflink", "--json", "a/sub", "s"]);
    if fs.reflinks() {
        ok(&o);
        assert_eq!(json(&o)["totals"]["bytes_cloned"], 70_000);
    } else {
        assert_eq!(code(&o), 1);
        // The tree cannot clone at all: one error before anything exists.
        let v = json(&o);
        let e = v["sources"][0]["error"].as_str().unwrap_or_default();
        assert!(
            e.contains("cannot clone") && e.contains("nothing was copied"),
            "{v}"
        );
        assert!(!dir.join("s").exists());
    }
    let o = cp(dir, &["--reflink=always", "a/sub/g", "g2"]);
    assert_eq!(
        code(&o),
        if fs.reflinks() { 0 } else { 1 },
        "{}",
        stderr(&o)
    );
    assert_eq!(dir.join("g2").exists(), fs.reflinks());
});

fs_test!(into_itself_refused, [btrfs, tmpfs], |dir| {
    small_tree(dir);
    let o = cp(dir, &["-r", "a", "a/sub/x"]);
    assert_eq!(code(&o), 1);
    assert!(stderr(&o).contains("into itself"), "{}", stderr(&o));
    assert!(!dir.join("a/sub/x").exists());
    let o = cp(dir, &["-r", "a", "a"]);
    assert_eq!(code(&o), 1);
    assert!(!dir.join("a/a").exists());
    // The same file.
    let o = cp(dir, &["a/f", "a/f"]);
    assert_eq!(code(&o), 1);
    assert!(stderr(&o).contains("same file"), "{}", stderr(&o));
    assert_eq!(fs::read(dir.join("a/f")).unwrap(), pattern(5000, 1));
});

fs_test!(verbose_and_stats, [btrfs, tmpfs], |dir| {
    small_tree(dir);
    let o = cp(dir, &["-rv", "a", "b"]);
    ok(&o);
    let out = stdout(&o);
    assert!(out.contains("'a/sub/g' -> 'b/sub/g'"), "{out}");
    assert!(out.contains("'a/link' -> 'b/link' (symlink)"), "{out}");
    let o = cp(dir, &["-r", "--stats", "a", "c"]);
    ok(&o);
    let out = stdout(&o);
    assert!(out.contains("files: 2 copied"), "{out}");
    assert!(out.contains("bytes:") && out.contains("time:"), "{out}");
    // --progress when stderr is not a terminal: a plain line.
    let o = cp(dir, &["-r", "--progress", "a", "d"]);
    ok(&o);
    assert!(stderr(&o).contains("2/2 files"), "{}", stderr(&o));
});

fs_test!(partial_failure_exit_1, [btrfs, xfs, ext4, tmpfs], |dir| {
    small_tree(dir);
    fs::create_dir_all(dir.join("b/sub/g")).unwrap();
    let o = cp(dir, &["-rT", "a", "b"]);
    assert_eq!(code(&o), 1);
    assert!(stderr(&o).contains("sub/g"), "{}", stderr(&o));
    // Everything else was copied.
    assert_eq!(fs::read(dir.join("b/f")).unwrap(), pattern(5000, 1));
});

#[test]
fn usage_errors_exit_2() {
    let dir = std::env::temp_dir();
    for args in [
        &[][..],
        &["only-one"][..],
        &["--preserve=bogus", "a", "b"][..],
        &["--reflink=sometimes", "a", "b"][..],
        &["-T", "a", "b", "c"][..],
        &["a", "b", "/nonexistent-target-dir"][..],
        &["-t", "/nonexistent-target-dir", "a"][..],
        &["--jobs=0", "a", "b"][..],
    ] {
        let o = cp(&dir, args);
        assert_eq!(code(&o), 2, "{args:?}: {}", stderr(&o));
    }
}

fs_test!(
    update_identical_leaves_equal_files_alone,
    [btrfs, xfs, ext4, tmpfs],
    |dir, fs| {
        fs::create_dir_all(dir.join("a/sub")).unwrap();
        for i in 0..10 {
            write_pattern(&dir.join(format!("a/sub/f{i}")), 20_000 + i, i as u64);
        }
        // First copy without sharing, so a dedupe has something to do.
        ok(&cp(dir, &["-r", "--reflink=never", "a", "b"]));
        let old = std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_000_000);
        for i in 0..10 {
            set_mtime(&dir.join(format!("b/sub/f{i}")), old);
        }
        let inodes: Vec<u64> = (0..10)
            .map(|i| fs::metadata(dir.join(format!("b/sub/f{i}"))).unwrap().ino())
            .collect();
        write_pattern(&dir.join("a/sub/f3"), 20_003, 77);
        let o = cp(dir, &["-rT", "--update=identical", "--json", "a", "b"]);
        ok(&o);
        let v = json(&o);
        assert_eq!(v["totals"]["identical"], 9, "{v}");
        assert_eq!(v["totals"]["files"], 1, "{v}");
        assert_eq!(fs::read(dir.join("b/sub/f3")).unwrap(), pattern(20_003, 77));
        for i in (0..10).filter(|i| *i != 3) {
            let p = dir.join(format!("b/sub/f{i}"));
            let m = fs::metadata(&p).unwrap();
            assert_eq!(m.modified().unwrap(), old, "{} was written", p.display());
            assert_eq!(m.ino(), inodes[i]);
        }
        // --dedupe: identical files now share blocks where the filesystem can.
        let o = cp(
            dir,
            &["-rT", "--update=identical", "--dedupe", "--json", "a", "b"],
        );
        ok(&o);
        let v = json(&o);
        assert_eq!(v["totals"]["identical"], 10, "{v}");
        if fs.reflinks() {
            assert!(v["totals"]["bytes_cloned"].as_u64().unwrap() > 0, "{v}");
        }
        // --dedupe alone is a usage error.
        assert_eq!(code(&cp(dir, &["--dedupe", "a/sub/f1", "x"])), 2);
    }
);

#[test]
fn proc_files_are_copied_to_eof() {
    let Some(dir) = cow_test_support::dir_on(Fs::Tmpfs, "proc_files_are_copied_to_eof") else {
        return;
    };
    let dir = dir.path();
    ok(&cp(dir, &["/proc/self/status", "status"]));
    let s = fs::read_to_string(dir.join("status")).unwrap();
    assert!(
        s.contains("Name:") && s.contains("VmRSS") || s.contains("Pid:"),
        "{s}"
    );
}

#[test]
fn help_documents_differences() {
    let o = cp(&std::env::temp_dir(), &["--help"]);
    ok(&o);
    let out = stdout(&o);
    assert!(out.contains("Differences from GNU cp"), "{out}");
    assert!(out.contains("--reflink"));
}

fs_test!(
    setuid_dropped_when_owner_cannot_be_kept,
    [btrfs, tmpfs],
    |dir| {
        // Needs root to set up a root-owned setuid source and a user to run as.
        if !rustix_is_root() || Command::new("setpriv").arg("--version").output().is_err() {
            eprintln!("SKIP setuid test: needs root and setpriv");
            return;
        }
        fs::set_permissions(dir, fs::Permissions::from_mode(0o777)).unwrap();
        fs::create_dir(dir.join("src")).unwrap();
        write_pattern(&dir.join("src/tool"), 100, 1);
        fs::set_permissions(dir.join("src/tool"), fs::Permissions::from_mode(0o4755)).unwrap();
        fs::set_permissions(dir.join("src"), fs::Permissions::from_mode(0o2775)).unwrap();
        let o = Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(env!("CARGO_BIN_EXE_cow"))
            .args(["cp", "-a", "src", "dst"])
            .current_dir(dir)
            .output()
            .unwrap();
        if String::from_utf8_lossy(&o.stderr).contains("Permission denied")
            && !dir.join("dst").exists()
        {
            eprintln!("SKIP setuid test: the cow binary is not reachable by uid 65534");
            return;
        }
        ok(&o);
        assert_eq!(fs::metadata(dir.join("dst/tool")).unwrap().uid(), 65534);
        assert_eq!(mode(&dir.join("dst/tool")), 0o755, "setuid dropped");
        assert_eq!(mode(&dir.join("dst")), 0o775, "setgid dropped");
        // As root the owner is kept and so are the bits.
        ok(&cp(dir, &["-a", "src", "dst-root"]));
        assert_eq!(mode(&dir.join("dst-root/tool")), 0o4755);
        assert_eq!(mode(&dir.join("dst-root")), 0o2775);
    }
);

fn rustix_is_root() -> bool {
    fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find(|l| l.starts_with("Uid:"))
        .is_some_and(|l| l.split_whitespace().nth(2) == Some("0"))
}

fs_test!(low_open_file_limit, [tmpfs, btrfs], |dir| {
    // Many directories in flight on many workers must not run out of file
    // descriptors: the walk budgets them and caps the workers.
    if Command::new("prlimit").arg("--version").output().is_err() {
        eprintln!("SKIP low_open_file_limit: prlimit is not installed");
        return;
    }
    for a in 0..20 {
        for b in 0..20 {
            let d = dir.join(format!("src/{a}/{b}"));
            fs::create_dir_all(&d).unwrap();
            fs::write(d.join("f"), format!("{a}/{b}")).unwrap();
        }
    }
    for (limit, jobs) in [("20:20", "8"), ("40:40", "64")] {
        let dst = format!("dst-{jobs}");
        let o = Command::new("prlimit")
            .arg(format!("--nofile={limit}"))
            .arg(env!("CARGO_BIN_EXE_cow"))
            .args(["cp", "-r", "-j", jobs, "src", &dst])
            .current_dir(dir)
            .output()
            .unwrap();
        ok(&o);
        assert_eq!(
            fs::read_to_string(dir.join(format!("{dst}/19/19/f"))).unwrap(),
            "19/19"
        );
    }
});

fs_test!(
    update_older_replaces_only_older_files,
    [btrfs, xfs, ext4, tmpfs],
    |dir| {
        use std::time::{Duration, SystemTime};
        let now = SystemTime::now();
        fs::create_dir_all(dir.join("a")).unwrap();
        fs::create_dir_all(dir.join("b")).unwrap();
        // a/old is newer than b/old; a/new is older than b/new; a/missing
        // has no destination yet.
        write_pattern(&dir.join("a/old"), 3000, 1);
        write_pattern(&dir.join("b/old"), 10, 2);
        set_mtime(&dir.join("b/old"), now - Duration::from_secs(60));
        write_pattern(&dir.join("a/new"), 3000, 3);
        set_mtime(&dir.join("a/new"), now - Duration::from_secs(60));
        write_pattern(&dir.join("b/new"), 10, 4);
        write_pattern(&dir.join("a/missing"), 3000, 5);

        let o = cp(dir, &["-rTu", "--json", "a", "b"]);
        ok(&o);
        let v = json(&o);
        assert_eq!(v["totals"]["files"], 2, "{v}");
        assert_eq!(v["totals"]["skipped"], 1, "{v}");
        assert_eq!(fs::read(dir.join("b/old")).unwrap(), pattern(3000, 1));
        assert_eq!(
            fs::read(dir.join("b/new")).unwrap(),
            pattern(10, 4),
            "newer kept"
        );
        assert_eq!(fs::read(dir.join("b/missing")).unwrap(), pattern(3000, 5));

        // A single file, with a bare --update (= older) and -v.
        write_pattern(&dir.join("b/new"), 10, 6);
        let o = cp(dir, &["--update", "-v", "a/new", "b/new"]);
        ok(&o);
        assert!(stdout(&o).contains("skipped"), "{}", stdout(&o));
        assert_eq!(fs::read(dir.join("b/new")).unwrap(), pattern(10, 6));
        set_mtime(&dir.join("b/new"), now - Duration::from_secs(3600));
        ok(&cp(dir, &["--update=older", "a/new", "b/new"]));
        assert_eq!(fs::read(dir.join("b/new")).unwrap(), pattern(3000, 3));

        // -u and --update: the last one wins (b/new is newer than a/new).
        let o = cp(dir, &["--update=all", "-u", "-v", "a/new", "b/new"]);
        ok(&o);
        assert!(stdout(&o).contains("skipped"), "{}", stdout(&o));
        let o = cp(dir, &["-u", "--update=all", "-v", "a/new", "b/new"]);
        ok(&o);
        assert!(stdout(&o).contains("->"), "{}", stdout(&o));
    }
);
