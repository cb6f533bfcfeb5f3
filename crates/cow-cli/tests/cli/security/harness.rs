//! The attack harness: root checks, the sysctl switches, the attacker
//! process (this test binary run again as an unprivileged user) and
//! snapshots of what must not change.

use std::ffi::OsString;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use cow_test_support::Fs;

/// The unprivileged attacker (`nobody`).
pub(crate) const ATTACKER: u32 = 65534;
/// A second unprivileged user that exists only as a number.
pub(crate) const OTHER: u32 = 61000;

/// How long each race runs.
pub(crate) const RACE: Duration = Duration::from_secs(3);
/// How long the same race runs against GNU cp (only recorded).
pub(crate) const GNU_RACE: Duration = Duration::from_secs(2);

/// A fresh directory on tmpfs that unprivileged users may enter (`0755`),
/// or `None` (after saying why) when not root or no tmpfs.
pub(crate) fn arena(test: &str) -> Option<tempfile::TempDir> {
    if !rustix::process::geteuid().is_root() {
        // The attacks need two users; a plain user cannot set one up.
        let msg = format!("SKIP {test}: the security races run as root (they set up an attacker)");
        if Fs::Tmpfs.required() {
            panic!("{msg}, but COW_TEST_REQUIRE lists tmpfs");
        }
        eprintln!("{msg}");
        return None;
    }
    let dir = cow_test_support::dir_on(Fs::Tmpfs, test)?;
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
    Some(dir)
}

/// Creates `path` as a directory owned by `uid` with `mode`.
pub(crate) fn mkdir_owned(path: &Path, uid: u32, mode: u32) {
    fs::create_dir_all(path).unwrap();
    std::os::unix::fs::chown(path, Some(uid), Some(uid)).unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

/// Writes `path` owned by `uid` with `mode`.
pub(crate) fn file_owned(path: &Path, data: &[u8], uid: u32, mode: u32) {
    fs::write(path, data).unwrap();
    std::os::unix::fs::chown(path, Some(uid), Some(uid)).unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

/// What must not change about a file outside the destination.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Snapshot {
    exists: bool,
    mode: u32,
    uid: u32,
    gid: u32,
    data: Vec<u8>,
}

impl Snapshot {
    /// Takes it (a missing file is a snapshot too).
    pub(crate) fn of(path: &Path) -> Snapshot {
        match fs::symlink_metadata(path) {
            Ok(m) => Snapshot {
                exists: true,
                mode: m.mode(),
                uid: m.uid(),
                gid: m.gid(),
                data: fs::read(path).unwrap_or_default(),
            },
            Err(_) => Snapshot {
                exists: false,
                mode: 0,
                uid: 0,
                gid: 0,
                data: Vec::new(),
            },
        }
    }
}

/// `fs.protected_symlinks` and `fs.protected_hardlinks` set for one test
/// and restored after it.
///
/// The switches are machine-wide, so every test that sets them holds an
/// exclusive lock on a shared file while it runs (nextest runs tests in
/// separate processes).
pub(crate) struct Sysctl {
    old: Vec<(String, String)>,
    _lock: fs::File,
}

impl Sysctl {
    /// Sets `fs.protected_symlinks` to `symlinks` and
    /// `fs.protected_hardlinks` to `hardlinks`.
    ///
    /// # Panics
    ///
    /// When the kernel refuses the change (the races must cover both).
    pub(crate) fn set(symlinks: u8, hardlinks: u8) -> Sysctl {
        let lock = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open("/tmp/cow-security-sysctl.lock")
            .unwrap();
        rustix::fs::flock(&lock, rustix::fs::FlockOperation::LockExclusive).unwrap();
        let mut me = Sysctl {
            old: Vec::new(),
            _lock: lock,
        };
        for (name, value) in [
            ("protected_symlinks", symlinks),
            ("protected_hardlinks", hardlinks),
        ] {
            let path = format!("/proc/sys/fs/{name}");
            let old = fs::read_to_string(&path).unwrap().trim().to_owned();
            if let Err(e) = fs::write(&path, format!("{value}\n")) {
                panic!("cannot set fs.{name} = {value} ({e}): the security races need it");
            }
            me.old.push((path, old));
        }
        me
    }
}

impl Drop for Sysctl {
    fn drop(&mut self) {
        for (path, old) in &self.old {
            let _ = fs::write(path, format!("{old}\n"));
        }
    }
}

/// The attacker process: this test binary again, run by `uid` through
/// `setpriv`, in `cwd`, executing `attacker_loop` with `args`.
pub(crate) struct Attacker(Child);

impl Attacker {
    /// Starts it; it runs until dropped.
    pub(crate) fn start(cwd: &Path, uid: u32, args: &[&str]) -> Attacker {
        let exe = std::env::current_exe().unwrap();
        let child = as_user(uid)
            .arg(exe)
            .args([
                "--ignored",
                "--exact",
                "security::attacker_loop",
                "--nocapture",
            ])
            .env("COW_SECURITY_ATTACK", args.join("\u{1f}"))
            .current_dir(cwd)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the attacker with setpriv");
        // Give it a moment to start its loop.
        std::thread::sleep(Duration::from_millis(100));
        Attacker(child)
    }
}

impl Drop for Attacker {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A command that runs as `uid` (group `uid`, no supplementary groups).
pub(crate) fn as_user(uid: u32) -> Command {
    let mut c = Command::new("setpriv");
    c.args([
        &format!("--reuid={uid}"),
        &format!("--regid={uid}"),
        "--clear-groups",
        "--",
    ]);
    c
}

/// Runs `round` repeatedly for `time`; returns how many rounds ran. Stops
/// early when `round` returns `false`.
pub(crate) fn for_a_while(time: Duration, mut round: impl FnMut() -> bool) -> u64 {
    let start = Instant::now();
    let mut n = 0;
    while start.elapsed() < time {
        n += 1;
        if !round() {
            break;
        }
    }
    n
}

/// The `cow` binary.
pub(crate) fn cow() -> Command {
    Command::new(env!("CARGO_BIN_EXE_cow"))
}

/// GNU cp, when it is there.
pub(crate) fn gnu_cp() -> Option<PathBuf> {
    let ok = Command::new("cp")
        .arg("--version")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("GNU coreutils"));
    ok.then(|| PathBuf::from("cp"))
}

/// Prints how GNU cp fared (recorded, not asserted: the point of the
/// comparison is to document it).
pub(crate) fn record_gnu(test: &str, what: &str) {
    eprintln!("GNU cp, {test}: {what}");
}

/// Joins `args` for the attacker's environment.
pub(crate) fn attack_args(env: &str) -> Vec<OsString> {
    env.split('\u{1f}').map(OsString::from).collect()
}
