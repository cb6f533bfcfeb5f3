//! GNU cp's options as `cow cp` takes them, end to end: each command runs
//! with the built binary in one directory and, when GNU cp is on this
//! machine, with GNU cp in a twin directory set up the same way; the two
//! results (names, kinds, contents, link targets, hard-link sharing, exit
//! status) must match, and cow's result is also checked on its own.
#![cfg(target_os = "linux")]

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
use std::path::Path;
use std::process::{Command, Output, Stdio};

use cow_test_support::fs_test;

/// What a directory holds, entry by entry (relative path -> kind, content
/// or link target, and link count for files).
fn snapshot(dir: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            let rel = p.strip_prefix(dir).unwrap().to_string_lossy().into_owned();
            let m = fs::symlink_metadata(&p).unwrap();
            let what = if m.file_type().is_symlink() {
                format!("symlink -> {}", fs::read_link(&p).unwrap().display())
            } else if m.is_dir() {
                stack.push(p.clone());
                "dir".to_owned()
            } else {
                format!(
                    "file {:?} links {}",
                    String::from_utf8_lossy(&fs::read(&p).unwrap()),
                    m.nlink()
                )
            };
            out.insert(rel, what);
        }
    }
    out
}

/// Runs `PROGRAM ARGS` in `dir`, with `input` on stdin.
fn run(program: &str, sub: &[&str], dir: &Path, args: &[&str], input: &str) -> Output {
    let mut child = Command::new(program)
        .args(sub)
        .args(args)
        .current_dir(dir)
        .env("LC_ALL", "C")
        .env_remove("VERSION_CONTROL")
        .env_remove("SIMPLE_BACKUP_SUFFIX")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut stdin = child.stdin.take().unwrap();
    let _ = stdin.write_all(input.as_bytes());
    drop(stdin);
    child.wait_with_output().unwrap()
}

fn gnu_cp_present() -> bool {
    Command::new("cp")
        .arg("--version")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("GNU coreutils"))
}

/// Sets up `dir/cow` (and `dir/gnu`) with `setup`, runs `cow cp ARGS`
/// (and GNU `cp ARGS`) there, and checks that both did the same. Returns
/// cow's output and its directory.
#[track_caller]
fn both(
    dir: &Path,
    setup: impl Fn(&Path),
    args: &[&str],
    input: &str,
) -> (Output, std::path::PathBuf) {
    let mine = dir.join("cow");
    fs::create_dir(&mine).unwrap();
    setup(&mine);
    let o = run(env!("CARGO_BIN_EXE_cow"), &["cp"], &mine, args, input);
    if gnu_cp_present() {
        let theirs = dir.join("gnu");
        fs::create_dir(&theirs).unwrap();
        setup(&theirs);
        let g = run("cp", &[], &theirs, args, input);
        // cow's usage errors exit 2 (its documented status), GNU's 1.
        let cow_code = o.status.code().map(|c| if c == 2 { 1 } else { c });
        assert_eq!(
            cow_code,
            g.status.code(),
            "exit status of {args:?}: cow stderr {:?}, GNU stderr {:?}",
            String::from_utf8_lossy(&o.stderr),
            String::from_utf8_lossy(&g.stderr)
        );
        assert_eq!(snapshot(&mine), snapshot(&theirs), "result of {args:?}");
        fs::remove_dir_all(&theirs).unwrap();
    } else {
        eprintln!("NOTE: GNU cp not found; {args:?} checked against cow's expectations only");
    }
    (o, mine)
}

fn files(dir: &Path) {
    fs::write(dir.join("a"), b"new").unwrap();
    fs::write(dir.join("b"), b"old").unwrap();
}

fn read(p: impl AsRef<Path>) -> String {
    String::from_utf8(fs::read(p).unwrap()).unwrap()
}

fn code(o: &Output) -> Option<i32> {
    o.status.code()
}

fn err(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fs_test!(repeated_options_last_one_wins, [tmpfs], |dir| {
    for args in [
        &["--reflink=auto", "--reflink=never", "a", "c"][..],
        &["--sparse=always", "--sparse=never", "a", "c"],
        &["-L", "-P", "-H", "a", "c"],
        &["-n", "-i", "a", "b"],
        &["-i", "-n", "a", "b"],
        &["--preserve=mode", "--preserve=timestamps", "a", "c"],
    ] {
        let sub = dir.join(args.join("_").replace('/', ""));
        fs::create_dir(&sub).unwrap();
        let (o, mine) = both(&sub, files, args, "n\n");
        assert_eq!(code(&o), Some(0), "{args:?}: {}", err(&o));
        assert_eq!(read(mine.join(args[args.len() - 1])).len(), 3, "{args:?}");
    }
});

fs_test!(
    interactive_asks_on_stderr_and_reads_stdin,
    [tmpfs, btrfs],
    |dir| {
        let (o, mine) = both(dir.join("no").tap_dir(), files, &["-i", "a", "b"], "n\n");
        assert_eq!(code(&o), Some(0));
        assert!(err(&o).contains("overwrite 'b'?"), "{}", err(&o));
        assert_eq!(read(mine.join("b")), "old");
        let (o, mine) = both(dir.join("yes").tap_dir(), files, &["-i", "a", "b"], "y\n");
        assert_eq!(code(&o), Some(0));
        assert_eq!(read(mine.join("b")), "new");
        // No destination: nothing to ask.
        let (o, mine) = both(dir.join("new").tap_dir(), files, &["-i", "a", "c"], "");
        assert!(err(&o).is_empty(), "{}", err(&o));
        assert_eq!(read(mine.join("c")), "new");
    }
);

fs_test!(
    backups_simple_numbered_existing_and_suffix,
    [tmpfs, xfs],
    |dir| {
        let (o, mine) = both(dir.join("b").tap_dir(), files, &["-b", "a", "b"], "");
        assert_eq!(code(&o), Some(0), "{}", err(&o));
        assert_eq!(
            (read(mine.join("b")), read(mine.join("b~"))),
            ("new".into(), "old".into())
        );
        let numbered = |d: &Path| {
            files(d);
            fs::write(d.join("b.~1~"), b"first").unwrap();
        };
        let (_, mine) = both(
            dir.join("n").tap_dir(),
            numbered,
            &["--backup=numbered", "a", "b"],
            "",
        );
        assert_eq!(read(mine.join("b.~2~")), "old");
        // existing: numbered because b.~1~ exists.
        let (_, mine) = both(
            dir.join("e").tap_dir(),
            numbered,
            &["--backup", "a", "b"],
            "",
        );
        assert_eq!(read(mine.join("b.~2~")), "old");
        let (_, mine) = both(
            dir.join("s").tap_dir(),
            files,
            &["--backup=simple", "-S", ".bak", "a", "b"],
            "",
        );
        assert_eq!(read(mine.join("b.bak")), "old");
        let (_, mine) = both(
            dir.join("off").tap_dir(),
            files,
            &["--backup=off", "a", "b"],
            "",
        );
        assert_eq!(fs::read_dir(&mine).unwrap().count(), 2);
        // The same file is never moved aside.
        let (o, mine) = both(dir.join("same").tap_dir(), files, &["-b", "a", "a"], "");
        assert_eq!(code(&o), Some(1));
        assert_eq!(read(mine.join("a")), "new");
    }
);

fs_test!(hard_and_symbolic_links, [tmpfs, ext4], |dir| {
    let (o, mine) = both(dir.join("l").tap_dir(), files, &["-l", "a", "c"], "");
    assert_eq!(code(&o), Some(0), "{}", err(&o));
    assert_eq!(
        fs::metadata(mine.join("c")).unwrap().ino(),
        fs::metadata(mine.join("a")).unwrap().ino()
    );
    // An existing destination: refused, -f replaces it.
    let (o, _) = both(dir.join("le").tap_dir(), files, &["-l", "a", "b"], "");
    assert_eq!(code(&o), Some(1));
    assert!(
        err(&o).contains("cannot create hard link 'b' to 'a'"),
        "{}",
        err(&o)
    );
    let (o, mine) = both(dir.join("lf").tap_dir(), files, &["-lf", "a", "b"], "");
    assert_eq!(code(&o), Some(0), "{}", err(&o));
    assert_eq!(fs::metadata(mine.join("b")).unwrap().nlink(), 2);
    let (o, mine) = both(dir.join("s").tap_dir(), files, &["-s", "a", "c"], "");
    assert_eq!(code(&o), Some(0), "{}", err(&o));
    assert_eq!(fs::read_link(mine.join("c")).unwrap(), Path::new("a"));
    // A relative symlink into another directory would dangle: refused.
    let sub = |d: &Path| {
        files(d);
        fs::create_dir(d.join("d")).unwrap();
    };
    let (o, _) = both(dir.join("sd").tap_dir(), sub, &["-s", "a", "d/c"], "");
    assert_eq!(code(&o), Some(1));
    assert!(err(&o).contains("only in current directory"), "{}", err(&o));
});

fs_test!(parents_keep_the_source_path, [tmpfs], |dir| {
    let tree = |d: &Path| {
        fs::create_dir_all(d.join("x/y")).unwrap();
        fs::write(d.join("x/y/f"), b"f").unwrap();
        fs::create_dir(d.join("out")).unwrap();
    };
    let (o, mine) = both(
        dir.join("p").tap_dir(),
        tree,
        &["--parents", "x/y/f", "out"],
        "",
    );
    assert_eq!(code(&o), Some(0), "{}", err(&o));
    assert_eq!(read(mine.join("out/x/y/f")), "f");
    let (o, _) = both(
        dir.join("nd").tap_dir(),
        tree,
        &["--parents", "x/y/f", "nodir"],
        "",
    );
    assert_eq!(code(&o), Some(2));
});

fs_test!(remove_destination_makes_a_new_file, [tmpfs, btrfs], |dir| {
    let linked = |d: &Path| {
        files(d);
        fs::hard_link(d.join("b"), d.join("b2")).unwrap();
    };
    let (o, mine) = both(
        dir.join("r").tap_dir(),
        linked,
        &["--remove-destination", "a", "b"],
        "",
    );
    assert_eq!(code(&o), Some(0), "{}", err(&o));
    // The other hard link keeps the old content.
    assert_eq!(
        (read(mine.join("b")), read(mine.join("b2"))),
        ("new".into(), "old".into())
    );
    // Without it the copy goes into the existing inode (both names change).
    let (_, mine) = both(dir.join("k").tap_dir(), linked, &["a", "b"], "");
    assert_eq!(read(mine.join("b2")), "new");
    // In a tree too.
    let tree = |d: &Path| {
        fs::create_dir_all(d.join("t")).unwrap();
        fs::write(d.join("t/f"), b"new").unwrap();
        fs::create_dir_all(d.join("o")).unwrap();
        fs::write(d.join("o/f"), b"old").unwrap();
        fs::hard_link(d.join("o/f"), d.join("keep")).unwrap();
    };
    let (o, mine) = both(
        dir.join("t").tap_dir(),
        tree,
        &["-rT", "--remove-destination", "t", "o"],
        "",
    );
    assert_eq!(code(&o), Some(0), "{}", err(&o));
    assert_eq!(
        (read(mine.join("o/f")), read(mine.join("keep"))),
        ("new".into(), "old".into())
    );
});

fs_test!(context_is_ignored_without_selinux, [tmpfs], |dir| {
    if Path::new("/sys/fs/selinux/enforce").exists() {
        // With SELinux cow refuses -Z (it sets no contexts).
        let (o, _) = both(dir, files, &["-Z", "a", "c"], "");
        assert_eq!(code(&o), Some(1));
        return;
    }
    for (n, flag) in ["-Z", "--context"].into_iter().enumerate() {
        let (o, mine) = both(
            dir.join(n.to_string()).tap_dir(),
            files,
            &[flag, "a", "c"],
            "",
        );
        assert_eq!(code(&o), Some(0), "{}", err(&o));
        assert_eq!(read(mine.join("c")), "new");
    }
});

fs_test!(
    one_file_system_does_not_enter_mount_points,
    [tmpfs],
    |dir| {
        // The test tmpfs holds a directory whose child is another filesystem
        // only if something is mounted there: mount a small tmpfs ourselves
        // when we may (root), and skip loudly otherwise.
        let tree = |d: &Path| {
            fs::create_dir_all(d.join("t/m")).unwrap();
            fs::write(d.join("t/f"), b"f").unwrap();
        };
        let (o, mine) = both(dir.join("plain").tap_dir(), tree, &["-rx", "t", "u"], "");
        assert_eq!(code(&o), Some(0), "{}", err(&o));
        assert_eq!(read(mine.join("u/f")), "f");
        let base = dir.join("mnt");
        base.tap_dir();
        tree(&base);
        let mnt = base.join("t/m");
        let mounted = Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=1m", "cowtest"])
            .arg(&mnt)
            .status()
            .is_ok_and(|s| s.success());
        if !mounted {
            eprintln!(
                "SKIP one_file_system mount point part: cannot mount a tmpfs here (needs root)"
            );
            return;
        }
        fs::write(mnt.join("inner"), b"other fs").unwrap();
        let o = run(
            env!("CARGO_BIN_EXE_cow"),
            &["cp"],
            &base,
            &["-rx", "t", "u"],
            "",
        );
        let g = gnu_cp_present().then(|| run("cp", &[], &base, &["-rx", "t", "g"], ""));
        let inner = Command::new("umount").arg(&mnt).status();
        assert!(inner.is_ok_and(|s| s.success()), "umount {}", mnt.display());
        assert_eq!(code(&o), Some(0), "{}", err(&o));
        assert!(base.join("u/m").is_dir(), "the mount point is created");
        assert!(
            !base.join("u/m/inner").exists(),
            "its contents are not copied"
        );
        if let Some(g) = g {
            assert_eq!(code(&g), Some(0));
            assert_eq!(snapshot(&base.join("u")), snapshot(&base.join("g")));
        }
        // Without -x the other filesystem is copied.
        assert_eq!(read(base.join("t/f")), "f");
    }
);

fs_test!(
    force_replaces_a_destination_it_cannot_open,
    [ext4, tmpfs],
    |dir| {
        // Root opens any file: run both as nobody.
        if !Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|o| o.stdout == b"0\n")
        {
            eprintln!("SKIP force test: needs root to switch to nobody");
            return;
        }
        for (n, prog) in [(0, env!("CARGO_BIN_EXE_cow")), (1, "cp")] {
            if n == 1 && !gnu_cp_present() {
                break;
            }
            let d = dir.join(n.to_string());
            d.tap_dir();
            files(&d);
            fs::set_permissions(d.join("b"), fs::Permissions::from_mode(0o444)).unwrap();
            for p in [d.clone(), d.join("a"), d.join("b")] {
                std::os::unix::fs::chown(&p, Some(65534), Some(65534)).unwrap();
            }
            fs::set_permissions(dir, fs::Permissions::from_mode(0o755)).unwrap();
            let sub: &[&str] = if n == 0 { &["cp"] } else { &[] };
            let as_nobody = |args: &[&str]| {
                Command::new("setpriv")
                    .args([
                        "--reuid=65534",
                        "--regid=65534",
                        "--clear-groups",
                        "--",
                        prog,
                    ])
                    .args(sub)
                    .args(args)
                    .current_dir(&d)
                    .output()
                    .unwrap()
            };
            let o = as_nobody(&["a", "b"]);
            assert_eq!(code(&o), Some(1), "{prog} without -f");
            assert_eq!(read(d.join("b")), "old");
            let o = as_nobody(&["-f", "a", "b"]);
            assert_eq!(code(&o), Some(0), "{prog} -f: {}", err(&o));
            assert_eq!(read(d.join("b")), "new");
        }
    }
);

fs_test!(target_directory_options_keep_working, [tmpfs], |dir| {
    let setup = |d: &Path| {
        files(d);
        fs::create_dir(d.join("t")).unwrap();
    };
    let (o, mine) = both(dir.join("t").tap_dir(), setup, &["-t", "t", "a", "b"], "");
    assert_eq!(code(&o), Some(0), "{}", err(&o));
    assert_eq!(read(mine.join("t/b")), "old");
    let (o, _) = both(dir.join("T").tap_dir(), setup, &["-T", "a", "t"], "");
    assert_eq!(code(&o), Some(1));
});

fs_test!(unsupported_tree_combinations_are_refused, [tmpfs], |dir| {
    let tree = |d: &Path| {
        fs::create_dir_all(d.join("t")).unwrap();
        fs::write(d.join("t/f"), b"f").unwrap();
        fs::create_dir_all(d.join("o/t")).unwrap();
        symlink("x", d.join("o/t/f")).unwrap();
    };
    for flag in ["-l", "-s", "-b", "-i"] {
        let d = dir.join(flag.trim_start_matches('-'));
        d.tap_dir();
        tree(&d);
        let o = run(
            env!("CARGO_BIN_EXE_cow"),
            &["cp"],
            &d,
            &["-r", flag, "t", "o"],
            "y\n",
        );
        assert_eq!(code(&o), Some(1), "{flag}");
        assert!(
            err(&o).contains("with -r is not supported"),
            "{flag}: {}",
            err(&o)
        );
        assert!(
            !d.join("o/t/f").exists()
                || fs::symlink_metadata(d.join("o/t/f"))
                    .unwrap()
                    .file_type()
                    .is_symlink()
        );
    }
});

/// `path.tap_dir()` creates the directory and returns it.
trait TapDir {
    fn tap_dir(&self) -> &Path;
}

impl TapDir for std::path::PathBuf {
    fn tap_dir(&self) -> &Path {
        fs::create_dir_all(self).unwrap();
        self
    }
}
