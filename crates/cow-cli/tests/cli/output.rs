//! What `cow cp` prints, end to end: a closed pipe or a full disk on
//! stdout/stderr never panics and never changes the exit status; names with
//! control characters are escaped in every message.
#![cfg(target_os = "linux")]

use std::fs;
use std::os::fd::OwnedFd;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use cow_test_support::{fs_test, pattern, write_pattern};

/// A pipe whose reading end is already closed: every write to it fails
/// with EPIPE.
fn closed_pipe() -> OwnedFd {
    let (reader, writer) = rustix::pipe::pipe().expect("pipe");
    drop(reader);
    writer
}

/// Runs `cow cp ARGS` in `dir` with stdout and stderr as given.
fn cow_cp(dir: &Path, args: &[&str], stdout: Stdio, stderr: Stdio) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cow"))
        .arg("cp")
        .args(args)
        .current_dir(dir)
        .stdout(stdout)
        .stderr(stderr)
        .output()
        .expect("run cow")
}

/// `cow cp ARGS` with stdout and stderr captured.
fn piped(dir: &Path, args: &[&str]) -> Output {
    cow_cp(dir, args, Stdio::piped(), Stdio::piped())
}

/// Asserts exit status 0, showing stderr otherwise.
#[track_caller]
fn ok(o: &Output) {
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

fn tree(dir: &Path) {
    fs::create_dir_all(dir.join("t/sub")).unwrap();
    for i in 0..50 {
        write_pattern(&dir.join(format!("t/sub/f{i}")), 3000 + i, i as u64);
    }
}

fn same_tree(dir: &Path, copy: &str) {
    for i in 0..50 {
        let got = fs::read(dir.join(copy).join(format!("sub/f{i}"))).unwrap();
        assert_eq!(got, pattern(3000 + i, i as u64), "{copy}/sub/f{i}");
    }
}

fs_test!(
    closed_stdout_pipe_is_quiet_and_keeps_the_status,
    [tmpfs, ext4],
    |dir| {
        tree(dir);
        for (n, flag) in ["-v", "--json", "--stats"].into_iter().enumerate() {
            let copy = format!("c{n}");
            let o = cow_cp(
                dir,
                &["-r", flag, "t", &copy],
                closed_pipe().into(),
                Stdio::piped(),
            );
            let err = String::from_utf8_lossy(&o.stderr);
            assert_eq!(o.status.code(), Some(0), "{flag}: stderr: {err}");
            assert!(
                err.is_empty(),
                "{flag}: nothing said about the lost output: {err}"
            );
            same_tree(dir, &copy);
        }
    }
);

fs_test!(
    closed_stderr_pipe_keeps_the_failure_status,
    [tmpfs, ext4],
    |dir| {
        tree(dir);
        // One operand fails (missing), the other is copied: exit 1, no panic.
        fs::create_dir(dir.join("into")).unwrap();
        let o = cow_cp(
            dir,
            &["-r", "-v", "missing", "t", "into"],
            closed_pipe().into(),
            closed_pipe().into(),
        );
        assert_eq!(o.status.code(), Some(1), "{:?}", o.status);
        same_tree(dir, "into/t");
    }
);

fs_test!(full_disk_on_stdout_is_quiet, [tmpfs], |dir| {
    tree(dir);
    let full = fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .unwrap();
    let o = cow_cp(
        dir,
        &["-r", "-v", "--stats", "t", "c"],
        full.into(),
        Stdio::piped(),
    );
    ok(&o);
    assert!(
        o.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    same_tree(dir, "c");
});

/// GNU cp's output for the same command, when GNU cp is on this machine.
fn gnu_cp(dir: &Path, args: &[&str]) -> Option<Output> {
    Command::new("cp")
        .args(args)
        .current_dir(dir)
        .env("LC_ALL", "C")
        .output()
        .ok()
}

fn no_controls(text: &[u8]) -> String {
    let s = String::from_utf8_lossy(text).into_owned();
    assert!(
        !s.chars().any(|c| c.is_control() && c != '\n'),
        "a control character reached the output: {s:?}"
    );
    s
}

fs_test!(
    control_characters_in_names_are_escaped,
    [tmpfs, btrfs],
    |dir| {
        let esc = "e\u{1b}[2Jx";
        fs::write(dir.join(esc), b"data").unwrap();
        // -v: quoted and escaped like GNU cp -v.
        let o = piped(dir, &["-v", esc, "c\u{1b}z"]);
        assert_eq!(o.status.code(), Some(0));
        let out = no_controls(&o.stdout);
        let line = out.lines().next().unwrap();
        assert!(
            line.starts_with(r"'e'$'\033''[2Jx' -> 'c'$'\033''z' ("),
            "{line}"
        );
        if let Some(g) = gnu_cp(dir, &["-v", esc, "g\u{1b}z"]) {
            let gnu = String::from_utf8_lossy(&g.stdout).into_owned();
            assert_eq!(gnu.trim_end(), r"'e'$'\033''[2Jx' -> 'g'$'\033''z'");
        }
        // An error naming a missing source.
        let o = piped(dir, &["m\u{1b}", "x"]);
        assert_eq!(o.status.code(), Some(1));
        let err = no_controls(&o.stderr);
        assert_eq!(
            err.trim_end(),
            r"cow cp: cannot stat 'm'$'\033': No such file or directory"
        );
        if let Some(g) = gnu_cp(dir, &["m\u{1b}", "x"]) {
            let gnu = String::from_utf8_lossy(&g.stderr).into_owned();
            assert_eq!(err.trim_end().strip_prefix("cow "), gnu.trim_end().into());
        }
        // A failure inside a tree: a directory over an existing file.
        fs::create_dir_all(dir.join("t/s\u{1b}d")).unwrap();
        fs::write(dir.join("t/s\u{1b}d/f"), b"x").unwrap();
        fs::create_dir(dir.join("out")).unwrap();
        fs::write(dir.join("out/s\u{1b}d"), b"a file").unwrap();
        let o = piped(dir, &["-rT", "-v", "t", "out"]);
        assert_eq!(o.status.code(), Some(1));
        no_controls(&o.stdout);
        let err = no_controls(&o.stderr);
        assert!(err.contains(r"'out/s'$'\033''d'"), "{err}");
    }
);

fs_test!(
    progress_without_a_terminal_is_human_and_sparse,
    [ext4, tmpfs],
    |dir| {
        write_pattern(&dir.join("big"), 48 << 20, 3);
        let started = std::time::Instant::now();
        let o = piped(dir, &["--progress", "big", "c"]);
        let secs = started.elapsed().as_secs();
        assert_eq!(o.status.code(), Some(0));
        let err = String::from_utf8_lossy(&o.stderr).into_owned();
        let lines: Vec<&str> = err.lines().collect();
        assert!(!lines.is_empty(), "--progress printed nothing");
        for l in &lines {
            assert!(
                l.starts_with("cow cp: ") && l.contains(" of ") && l.contains("files"),
                "{l}"
            );
            assert!(!l.contains("0/0 files"), "a single file is one file: {l}");
        }
        // At most one line a second, plus the final one.
        assert!(
            lines.len() as u64 <= secs + 2,
            "{} lines in {secs} s",
            lines.len()
        );
        let last = lines[lines.len() - 1];
        assert!(
            last.contains("48.0 MiB of 48.0 MiB (100%), 1/1 files"),
            "{last}"
        );
    }
);

fs_test!(stats_never_rate_cloned_bytes, [btrfs, ext4], |dir, fs| {
    write_pattern(&dir.join("big"), 8 << 20, 4);
    let o = piped(dir, &["--stats", "big", "c"]);
    assert_eq!(o.status.code(), Some(0));
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    let time = out
        .lines()
        .find(|l| l.starts_with("time:"))
        .expect("a time line");
    if fs.reflinks() {
        assert!(
            time.contains("nothing copied; 8.0 MiB cloned (shared, no data moved)"),
            "{time}"
        );
        assert!(!time.contains("MiB/s") && !time.contains("GiB/s"), "{time}");
    } else {
        assert!(
            time.contains("copied at ") && !time.contains("cloned"),
            "{time}"
        );
    }
});

fs_test!(
    reflink_always_tree_fails_fast_without_clones,
    [ext4, tmpfs],
    |dir| {
        fs::create_dir_all(dir.join("t/a/b")).unwrap();
        for i in 0..40 {
            write_pattern(&dir.join(format!("t/a/b/f{i}")), 5000, i);
        }
        let o = piped(dir, &["-r", "--reflink=always", "t", "u"]);
        assert_eq!(o.status.code(), Some(1));
        let err = String::from_utf8_lossy(&o.stderr).into_owned();
        // One error, naming the operation, both paths and both filesystems.
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.contains("cannot clone 't' to 'u'"), "{err}");
        assert_eq!(
            err.matches(" on ").count(),
            2,
            "both filesystems named: {err}"
        );
        // Nothing was created: no skeleton, no trial file.
        let left: Vec<_> = fs::read_dir(dir)
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert_eq!(left, vec![std::ffi::OsString::from("t")]);
    }
);

fs_test!(
    reflink_always_tree_clones_where_it_can,
    [btrfs, xfs],
    |dir| {
        fs::create_dir_all(dir.join("t/a")).unwrap();
        write_pattern(&dir.join("t/a/f"), 70_000, 1);
        let o = piped(dir, &["-r", "--reflink=always", "t", "u"]);
        ok(&o);
        assert_eq!(fs::read(dir.join("u/a/f")).unwrap(), pattern(70_000, 1));
        let left: Vec<_> = fs::read_dir(dir)
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert_eq!(left.len(), 2, "no trial file left: {left:?}");
    }
);
