//! `cow` run as an unprivileged user (nobody, through `setpriv`, when the
//! tests run as root): a source it may not read, a directory it may not
//! write, another user's file in a sticky directory, `cow dedupe` against
//! a file owned by someone else. Each fails with a clear error naming the
//! path, and nothing is damaged or left behind.
#![cfg(target_os = "linux")]

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::{Command, Output};

use cow_test_support::{Fs, fs_test, names_in, write_pattern};

const NOBODY: u32 = 65534;

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// `cp`, the `atomic` flags (none or `--atomic`), `src`, `dst`.
fn cp_args<'a>(atomic: &[&'a str], src: &'a str, dst: &'a str) -> Vec<&'a str> {
    let mut args = vec!["cp"];
    args.extend_from_slice(atomic);
    args.extend([src, dst]);
    args
}

/// Runs `cow ARGS` as nobody in `dir`.
fn as_nobody(dir: &Path, args: &[&str]) -> Output {
    Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--",
            env!("CARGO_BIN_EXE_cow"),
        ])
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run setpriv")
}

/// Whether the test can run: root, setpriv present, and nobody can run the
/// binary and enter `dir`.
fn usable(dir: &Path, test: &str) -> bool {
    if !is_root() {
        eprintln!("SKIP {test}: needs root to switch to an unprivileged user");
        return false;
    }
    fs::set_permissions(dir, fs::Permissions::from_mode(0o755)).unwrap();
    match Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .arg(env!("CARGO_BIN_EXE_cow"))
        .arg("--help")
        .current_dir(dir)
        .output()
    {
        Ok(o) if o.status.success() => true,
        Ok(o) => {
            eprintln!(
                "SKIP {test}: nobody cannot run {}: {}",
                env!("CARGO_BIN_EXE_cow"),
                String::from_utf8_lossy(&o.stderr)
            );
            false
        }
        Err(e) => {
            eprintln!("SKIP {test}: cannot run setpriv: {e}");
            false
        }
    }
}

#[track_caller]
fn refused(o: &Output, path: &str, what: &str) {
    let err = String::from_utf8_lossy(&o.stderr);
    assert_ne!(o.status.code(), Some(0), "{what}: succeeded; stderr {err}");
    assert!(
        err.contains(path),
        "{what}: the error does not name {path}: {err}"
    );
    assert!(
        err.contains("Permission denied") || err.contains("Operation not permitted"),
        "{what}: the error does not say why: {err}"
    );
}

fn mkdir(dir: &Path, name: &str, mode: u32, owner: u32) -> std::path::PathBuf {
    let d = dir.join(name);
    fs::create_dir(&d).unwrap();
    std::os::unix::fs::chown(&d, Some(owner), Some(owner)).unwrap();
    fs::set_permissions(&d, fs::Permissions::from_mode(mode)).unwrap();
    d
}

fs_test!(
    reliability_unprivileged_cp,
    [btrfs, xfs, ext4, tmpfs],
    |dir| {
        if !usable(dir, "reliability_unprivileged_cp") {
            return;
        }
        let public = mkdir(dir, "public", 0o755, NOBODY);
        let rootdir = mkdir(dir, "rootdir", 0o755, 0);
        let sticky = mkdir(dir, "sticky", 0o1777, 0);

        // A source nobody may not read.
        let secret = dir.join("secret");
        let secret_data = write_pattern(&secret, 100_000, 1);
        fs::set_permissions(&secret, fs::Permissions::from_mode(0o600)).unwrap();
        for atomic in [&[][..], &["--atomic"][..]] {
            let o = as_nobody(dir, &cp_args(atomic, "secret", "public/out"));
            refused(&o, "secret", &format!("unreadable source {atomic:?}"));
            assert!(names_in(&public).is_empty(), "{:?}", names_in(&public));
        }
        assert_eq!(fs::read(&secret).unwrap(), secret_data);

        // A directory nobody may not write.
        let readable = dir.join("readable");
        let data = write_pattern(&readable, 100_000, 2);
        fs::set_permissions(&readable, fs::Permissions::from_mode(0o644)).unwrap();
        let theirs = rootdir.join("theirs");
        let theirs_data = write_pattern(&theirs, 5000, 3);
        for atomic in [&[][..], &["--atomic"][..]] {
            for target in ["rootdir/out", "rootdir/theirs"] {
                let o = as_nobody(dir, &cp_args(atomic, "readable", target));
                refused(&o, target, &format!("unwritable directory {atomic:?}"));
            }
            assert_eq!(names_in(&rootdir), ["theirs"]);
            assert_eq!(fs::read(&theirs).unwrap(), theirs_data);
        }

        // Another user's file in a sticky, world-writable directory (/tmp):
        // neither written in place nor replaced by a rename.
        let victim = sticky.join("victim");
        let victim_data = write_pattern(&victim, 5000, 4);
        fs::set_permissions(&victim, fs::Permissions::from_mode(0o644)).unwrap();
        for atomic in [&[][..], &["--atomic"][..]] {
            let o = as_nobody(dir, &cp_args(atomic, "readable", "sticky/victim"));
            refused(&o, "sticky/victim", &format!("sticky directory {atomic:?}"));
            assert_eq!(fs::read(&victim).unwrap(), victim_data);
            assert_eq!(fs::metadata(&victim).unwrap().uid(), 0);
            assert_eq!(names_in(&sticky), ["victim"], "a temporary was left");
        }

        // Where nobody may write: works, and the copy is nobody's.
        let o = as_nobody(dir, &["cp", "--atomic", "readable", "public/mine"]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        assert_eq!(fs::read(public.join("mine")).unwrap(), data);
        assert_eq!(fs::metadata(public.join("mine")).unwrap().uid(), NOBODY);
    }
);

fs_test!(
    reliability_unprivileged_dedupe,
    [btrfs, xfs, ext4, tmpfs],
    |dir, fs_kind| {
        if !usable(dir, "reliability_unprivileged_dedupe") {
            return;
        }
        // nobody's reference and root's identical file, readable by all.
        let mine = dir.join("mine");
        let data = write_pattern(&mine, 256 << 10, 5);
        std::os::unix::fs::chown(&mine, Some(NOBODY), Some(NOBODY)).unwrap();
        let theirs = dir.join("theirs");
        fs::write(&theirs, &data).unwrap();
        fs::set_permissions(&theirs, fs::Permissions::from_mode(0o644)).unwrap();
        let before = fs::metadata(&theirs).unwrap();

        let o = as_nobody(dir, &["dedupe", "mine", "theirs"]);
        let err = String::from_utf8_lossy(&o.stderr).into_owned();
        let out = String::from_utf8_lossy(&o.stdout).into_owned();
        assert_ne!(o.status.code(), Some(0), "stdout {out} stderr {err}");
        assert!(
            err.contains("theirs") || out.contains("theirs"),
            "the failure does not name the file: {out} {err}"
        );
        assert_eq!(fs::read(&theirs).unwrap(), data);
        let after = fs::metadata(&theirs).unwrap();
        assert_eq!(
            (after.ino(), after.uid(), after.mode()),
            (before.ino(), 0, before.mode())
        );
        if fs_kind.has_fiemap() && fs_kind != Fs::Ext4 {
            let s = cow_verify::sharing(&mine, &theirs).unwrap();
            assert_eq!(
                s.shared_bytes, 0,
                "another user's file was made to share: {s:?}"
            );
        }
    }
);
