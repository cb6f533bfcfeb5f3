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
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(
        o.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    same_tree(dir, "c");
});
