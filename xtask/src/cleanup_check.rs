//! `cargo xtask test-cleanup`: proves that the mount/unmount cycle leaves no
//! loop device and no mount behind, whatever way the run ends.
//!
//! Each scenario runs `xtask with-mounts` (this binary) as a child with a work
//! directory chosen here, ends it in its own way (failing command, busy mount,
//! SIGINT, SIGTERM, panic), and then checks that no loop device is backed by a
//! file in that directory, nothing is mounted in it, and it is gone. Around
//! all scenarios `losetup -a` and the mount table are compared: devices and
//! mounts that existed before must still exist, and nothing new may remain.

use crate::mounts::{loops_under, mounted_under};
use crate::test::EXIT_INTERRUPTED;
use crate::util::{find_tool, run_capture};
use rustix::process::{Pid, Signal, kill_process};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

#[derive(Clone, Copy)]
enum End {
    /// The child ends by itself; expect this exit code (`None`: any failure).
    Exit(Option<i32>),
    /// Send this signal once the filesystems are mounted; expect 130.
    Signal(Signal, &'static str),
}

struct Scenario {
    name: &'static str,
    command: &'static [&'static str],
    end: End,
    panic: bool,
}

const SCENARIOS: &[Scenario] = &[
    Scenario {
        name: "failing command (`false`)",
        command: &["false"],
        end: End::Exit(Some(1)),
        panic: false,
    },
    Scenario {
        name: "command writes a file on every filesystem",
        command: &[
            "sh",
            "-c",
            "for d in \"$COW_TEST_BTRFS\" \"$COW_TEST_XFS\" \"$COW_TEST_EXT4\" \"$COW_TEST_TMPFS\" \"$COW_TEST_SMALL\"; do \
             test -d \"$d\" || exit 3; head -c 1048576 /dev/urandom > \"$d/f\" || exit 4; done",
        ],
        end: End::Exit(Some(0)),
        panic: false,
    },
    Scenario {
        name: "busy mount (a process keeps its cwd in btrfs after the command ends)",
        command: &[
            "sh",
            "-c",
            "cd \"$COW_TEST_BTRFS\" && (sleep 6 </dev/null >/dev/null 2>&1 &) ; exit 0",
        ],
        end: End::Exit(Some(0)),
        panic: false,
    },
    Scenario {
        name: "SIGINT to xtask while the command runs",
        command: &["sleep", "600"],
        end: End::Signal(Signal::INT, "SIGINT"),
        panic: false,
    },
    Scenario {
        name: "SIGTERM to xtask while the command runs",
        command: &["sleep", "600"],
        end: End::Signal(Signal::TERM, "SIGTERM"),
        panic: false,
    },
    Scenario {
        name: "panic after mounting (Drop guard)",
        command: &["true"],
        end: End::Exit(Some(101)),
        panic: true,
    },
];

/// The loop devices (`losetup -a` lines, keyed by device) and mount points.
#[derive(Debug, PartialEq, Eq)]
struct Snapshot {
    loops: BTreeSet<String>,
    mounts: BTreeSet<PathBuf>,
}

fn snapshot(losetup: &Path) -> Result<Snapshot, String> {
    let out = run_capture(Command::new(losetup).arg("-a"))?;
    Ok(Snapshot {
        loops: out
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_owned)
            .collect(),
        mounts: mounted_under(Path::new("/")).into_iter().collect(),
    })
}

/// Runs the self-test; returns the exit code.
pub(crate) fn run() -> i32 {
    if !rustix::process::geteuid().is_root() {
        eprintln!("xtask test-cleanup: FAILED: needs root (it mounts loop devices)");
        return 1;
    }
    for t in [
        "losetup",
        "mount",
        "umount",
        "mkfs.btrfs",
        "mkfs.xfs",
        "mkfs.ext4",
    ] {
        if find_tool(t).is_none() {
            eprintln!("xtask test-cleanup: FAILED: {t} not found");
            return 1;
        }
    }
    let losetup = find_tool("losetup").expect("checked above");
    let exe = match std::env::current_exe() {
        Ok(e) => e,
        Err(e) => {
            eprintln!("xtask test-cleanup: cannot find my own executable: {e}");
            return 1;
        }
    };
    let before = match snapshot(&losetup) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("xtask test-cleanup: {e}");
            return 1;
        }
    };
    eprintln!(
        "xtask test-cleanup: before: {} loop device(s), {} mount(s)",
        before.loops.len(),
        before.mounts.len()
    );
    let base = std::env::temp_dir();
    let base = base.canonicalize().unwrap_or(base);
    let mut failures = Vec::new();
    let mut dirs = Vec::new();
    for (i, sc) in SCENARIOS.iter().enumerate() {
        let dir = base.join(format!("cow-xtask-{}-selftest{i}", std::process::id()));
        dirs.push(dir.clone());
        eprintln!("xtask test-cleanup: [{}] {}", i + 1, sc.name);
        match scenario(&exe, sc, &dir) {
            Ok(()) => eprintln!("xtask test-cleanup: [{}] ok", i + 1),
            Err(e) => {
                eprintln!("xtask test-cleanup: [{}] FAILED: {e}", i + 1);
                failures.push(format!("{}: {e}", sc.name));
            }
        }
    }
    let after = match snapshot(&losetup) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("xtask test-cleanup: {e}");
            return 1;
        }
    };
    // Entries of another concurrent `cargo xtask` run come and go on their
    // own; everything else that existed before must still be there.
    for gone in before.loops.difference(&after.loops) {
        if gone.contains("/cow-xtask-") {
            eprintln!(
                "xtask test-cleanup: note: another xtask run's loop device went away: {gone}"
            );
        } else {
            failures.push(format!("a loop device that existed before is gone: {gone}"));
        }
    }
    for gone in before.mounts.difference(&after.mounts) {
        if gone.to_string_lossy().contains("/cow-xtask-") {
            eprintln!(
                "xtask test-cleanup: note: another xtask run's mount went away: {}",
                gone.display()
            );
        } else {
            failures.push(format!(
                "a mount that existed before is gone: {}",
                gone.display()
            ));
        }
    }
    for new in after.loops.difference(&before.loops) {
        if dirs.iter().any(|d| new.contains(&*d.to_string_lossy())) {
            failures.push(format!("loop device left behind: {new}"));
        } else {
            eprintln!(
                "xtask test-cleanup: note: new loop device not made by this test (another process?): {new}"
            );
        }
    }
    for new in after.mounts.difference(&before.mounts) {
        if dirs.iter().any(|d| new.starts_with(d)) {
            failures.push(format!("mount left behind: {}", new.display()));
        } else {
            eprintln!(
                "xtask test-cleanup: note: new mount not made by this test (another process?): {}",
                new.display()
            );
        }
    }
    eprintln!(
        "xtask test-cleanup: after: {} loop device(s), {} mount(s)",
        after.loops.len(),
        after.mounts.len()
    );
    if failures.is_empty() {
        eprintln!(
            "xtask test-cleanup: ok: {} scenarios, no loop device or mount left behind, pre-existing ones untouched",
            SCENARIOS.len()
        );
        0
    } else {
        for f in &failures {
            eprintln!("xtask test-cleanup: FAILED: {f}");
        }
        1
    }
}

fn scenario(exe: &Path, sc: &Scenario, dir: &Path) -> Result<(), String> {
    let ready = dir.with_extension("ready");
    let _ = std::fs::remove_file(&ready);
    let mut cmd = Command::new(exe);
    cmd.arg("with-mounts")
        .arg("--workdir")
        .arg(dir)
        .arg("--ready-file")
        .arg(&ready);
    if sc.panic {
        cmd.arg("--panic-after-setup").env("RUST_BACKTRACE", "0");
    }
    cmd.arg("--").args(sc.command);
    // Its own process group: a Ctrl-C on our terminal must not reach it
    // behind the test's back.
    {
        use std::os::unix::process::CommandExt;
        cmd.process_group(0);
    }
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("cannot start xtask: {e}"))?;
    let result = drive(&mut child, sc, &ready);
    let _ = std::fs::remove_file(&ready);
    let code = result?;
    match sc.end {
        End::Exit(Some(want)) if code != Some(want) => {
            return Err(format!("exit code {code:?}, expected {want}"));
        }
        End::Exit(None) if code == Some(0) => {
            return Err("succeeded, expected a failure".into());
        }
        End::Signal(..) if code != Some(EXIT_INTERRUPTED) => {
            return Err(format!("exit code {code:?}, expected {EXIT_INTERRUPTED}"));
        }
        _ => {}
    }
    // A lazily unmounted, busy filesystem releases its loop device only when
    // its last user exits: give that a few seconds.
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let loops = loops_under(dir);
        let mounts = mounted_under(dir);
        let exists = dir.exists();
        if loops.is_empty() && mounts.is_empty() && !exists {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "left behind: loop devices {loops:?}, mounts {mounts:?}, work dir exists: {exists}"
            ));
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// Waits for the child (signalling it first if the scenario says so);
/// returns its exit code.
fn drive(child: &mut Child, sc: &Scenario, ready: &Path) -> Result<Option<i32>, String> {
    let start = Instant::now();
    let limit = Duration::from_secs(90);
    if let End::Signal(sig, name) = sc.end {
        while !ready.exists() {
            if let Some(st) = child.try_wait().map_err(|e| e.to_string())? {
                return Err(format!("exited ({st}) before mounting"));
            }
            if start.elapsed() > limit {
                let _ = child.kill();
                let _ = child.wait();
                return Err("never became ready".into());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        // Let it get into the wait for its command.
        std::thread::sleep(Duration::from_millis(500));
        eprintln!(
            "xtask test-cleanup: sending {name} to xtask (pid {})",
            child.id()
        );
        kill_process(Pid::from_child(child), sig).map_err(|e| format!("kill: {e}"))?;
    }
    loop {
        if let Some(st) = child.try_wait().map_err(|e| e.to_string())? {
            return Ok(st.code());
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            return Err("did not finish within 90 s (killed)".into());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}
