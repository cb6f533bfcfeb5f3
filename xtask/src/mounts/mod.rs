//! The real test filesystems: a private work directory, loop-mounted images
//! and a tmpfs (Linux, as root), exported to tests through environment
//! variables, and a cleanup that always runs (explicitly, or from `Drop` on
//! an early return or a panic).

#[cfg(target_os = "linux")]
mod linux;
#[cfg(target_os = "linux")]
use linux as platform;
#[cfg(not(target_os = "linux"))]
mod other;
#[cfg(not(target_os = "linux"))]
use other as platform;

use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;

/// How a test filesystem is made.
#[derive(Debug, Clone, Copy)]
#[cfg_attr(not(target_os = "linux"), allow(dead_code))] // read by linux.rs only
pub(crate) enum Kind {
    /// A sparse image file, formatted by `mkfs` and attached to a loop device.
    Loop {
        /// The mkfs program.
        mkfs: &'static str,
        /// Its arguments before the image path.
        args: &'static [&'static str],
        /// The image size in bytes.
        size: u64,
    },
    /// A tmpfs of this size (mount option syntax).
    Tmpfs {
        /// The `size=` option.
        size: &'static str,
    },
}

/// One filesystem that `cargo xtask test` provides.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Spec {
    /// Short name, as in the ledger and `--require`.
    pub(crate) name: &'static str,
    /// The variable that tells tests its mount point.
    pub(crate) env: &'static str,
    /// How it is made.
    #[cfg_attr(not(target_os = "linux"), allow(dead_code))]
    pub(crate) kind: Kind,
}

const GIB: u64 = 1 << 30;
const MIB: u64 = 1 << 20;

/// Every filesystem, in the order they are set up and reported.
pub(crate) const SPECS: [Spec; 5] = [
    Spec {
        name: "btrfs",
        env: "COW_TEST_BTRFS",
        kind: Kind::Loop {
            mkfs: "mkfs.btrfs",
            args: &["-q", "-f"],
            size: 3 * GIB,
        },
    },
    Spec {
        name: "xfs",
        env: "COW_TEST_XFS",
        kind: Kind::Loop {
            mkfs: "mkfs.xfs",
            args: &["-q", "-f", "-m", "reflink=1"],
            size: 3 * GIB,
        },
    },
    Spec {
        name: "ext4",
        env: "COW_TEST_EXT4",
        kind: Kind::Loop {
            mkfs: "mkfs.ext4",
            args: &["-q", "-F", "-b", "4096"],
            size: 3 * GIB,
        },
    },
    Spec {
        name: "tmpfs",
        env: "COW_TEST_TMPFS",
        kind: Kind::Tmpfs { size: "3G" },
    },
    // A deliberately tiny filesystem for out-of-space tests.
    Spec {
        name: "small",
        env: "COW_TEST_SMALL",
        kind: Kind::Loop {
            mkfs: "mkfs.ext4",
            args: &["-q", "-F", "-b", "4096"],
            size: 64 * MIB,
        },
    },
];

/// The skip reason when we are not root.
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
pub(crate) const NOT_ROOT: &str = "not root";

/// The filesystems the test-support ledger knows and `--require` accepts.
pub(crate) const REQUIRABLE: [&str; 4] = ["btrfs", "xfs", "ext4", "tmpfs"];

/// A filesystem that is mounted and exported.
#[derive(Debug, Clone)]
pub(crate) struct Provided {
    /// Which one.
    pub(crate) spec: Spec,
    /// Its mount point.
    pub(crate) path: PathBuf,
    /// Where it came from (loop device and image size), for the log.
    pub(crate) detail: String,
}

/// A filesystem that could not be provided, and why.
#[derive(Debug, Clone)]
pub(crate) struct Skipped {
    /// Which one.
    pub(crate) spec: Spec,
    /// Why (not root, mkfs missing, mount failed: ...).
    pub(crate) reason: String,
}

/// The work directory and everything mounted under it.
pub(crate) struct TestFs {
    root: PathBuf,
    state: platform::State,
    provided: Vec<Provided>,
    skipped: Vec<Skipped>,
    cleaned: bool,
}

impl TestFs {
    /// Creates a fresh private work directory: `dir` if given (it must not
    /// exist), else `$TMPDIR/cow-xtask-<pid>` (with a suffix if taken).
    pub(crate) fn create(dir: Option<PathBuf>) -> io::Result<TestFs> {
        let root = match dir {
            Some(d) => {
                std::fs::create_dir(&d)?;
                d
            }
            None => {
                let base = std::env::temp_dir();
                let pid = std::process::id();
                let mut n = 0u32;
                loop {
                    let name = if n == 0 {
                        format!("cow-xtask-{pid}")
                    } else {
                        format!("cow-xtask-{pid}-{n}")
                    };
                    let d = base.join(name);
                    match std::fs::create_dir(&d) {
                        Ok(()) => break d,
                        Err(e) if e.kind() == io::ErrorKind::AlreadyExists && n < 100 => n += 1,
                        Err(e) => return Err(e),
                    }
                }
            }
        };
        // Work with the canonical path: it is what the kernel reports in
        // mountinfo and in a loop device's backing_file.
        let root = root.canonicalize()?;
        Ok(TestFs {
            root,
            state: platform::State::default(),
            provided: Vec::new(),
            skipped: Vec::new(),
            cleaned: false,
        })
    }

    /// The private work directory.
    pub(crate) fn root(&self) -> &Path {
        &self.root
    }

    /// Mounts every filesystem it can; records the rest as skipped.
    /// Stops early (skipping the rest) when a termination signal arrives.
    pub(crate) fn mount_all(&mut self) {
        for spec in SPECS {
            if crate::signals::interrupted() {
                self.skipped.push(Skipped {
                    spec,
                    reason: "interrupted".into(),
                });
                continue;
            }
            match platform::mount(&self.root, spec, &mut self.state) {
                Ok((path, detail)) => self.provided.push(Provided { spec, path, detail }),
                Err(reason) => self.skipped.push(Skipped { spec, reason }),
            }
        }
    }

    /// Mounted filesystems.
    pub(crate) fn provided(&self) -> &[Provided] {
        &self.provided
    }

    /// Filesystems that could not be mounted.
    pub(crate) fn skipped(&self) -> &[Skipped] {
        &self.skipped
    }

    /// The ledger file tests append to (`COW_TEST_LEDGER`).
    pub(crate) fn ledger(&self) -> PathBuf {
        self.root.join("ledger")
    }

    /// Sets the test environment on `cmd`: mount points of provided
    /// filesystems, removal of inherited variables for the others (a test
    /// must not silently run on some other mount), the require list and the
    /// ledger.
    pub(crate) fn apply_env(&self, cmd: &mut Command, require: &[String]) {
        for spec in SPECS {
            match self.provided.iter().find(|p| p.spec.name == spec.name) {
                Some(p) => {
                    cmd.env(spec.env, &p.path);
                }
                None => {
                    if let Some(v) = std::env::var_os(spec.env) {
                        eprintln!(
                            "xtask: note: not passing the inherited {}={} to tests ({} was not mounted by xtask)",
                            spec.env,
                            Path::new(&v).display(),
                            spec.name
                        );
                    }
                    cmd.env_remove(spec.env);
                }
            }
        }
        if require.is_empty() {
            cmd.env_remove("COW_TEST_REQUIRE");
        } else {
            cmd.env("COW_TEST_REQUIRE", require.join(","));
        }
        cmd.env("COW_TEST_LEDGER", self.ledger());
    }

    /// Unmounts everything, detaches the loop devices and removes the work
    /// directory. Idempotent. Returns the problems it could not fix (empty
    /// when everything is gone).
    pub(crate) fn cleanup(&mut self) -> Vec<String> {
        if self.cleaned {
            return Vec::new();
        }
        self.cleaned = true;
        let mut problems = platform::cleanup(&self.root, &mut self.state);
        if platform::mounted_under(&self.root).is_empty() {
            if let Err(e) = std::fs::remove_dir_all(&self.root) {
                if e.kind() != io::ErrorKind::NotFound {
                    problems.push(format!("cannot remove {}: {e}", self.root.display()));
                }
            }
        } else {
            problems.push(format!(
                "not removing {}: something is still mounted under it",
                self.root.display()
            ));
        }
        problems
    }
}

impl Drop for TestFs {
    fn drop(&mut self) {
        if !self.cleaned {
            let problems = self.cleanup();
            if problems.is_empty() {
                eprintln!("xtask: cleanup after an early exit: done, nothing left behind");
            }
            for p in problems {
                eprintln!("xtask: CLEANUP PROBLEM: {p}");
            }
        }
    }
}

/// Mount points currently mounted under `dir` (from the mount table).
#[cfg(target_os = "linux")]
pub(crate) fn mounted_under(dir: &Path) -> Vec<PathBuf> {
    platform::mounted_under(dir)
}

/// Loop devices whose backing file is under `dir`, as `(device, file)`.
#[cfg(target_os = "linux")]
pub(crate) fn loops_under(dir: &Path) -> Vec<(String, String)> {
    platform::loops_under(dir)
}

/// Warns about mounts left under `$TMPDIR/cow-xtask-*` by runs that were
/// killed without a chance to clean up (SIGKILL, power loss).
pub(crate) fn warn_stale() {
    let base = std::env::temp_dir();
    let base = base.canonicalize().unwrap_or(base);
    let mine = std::process::id();
    let mut stale: Vec<PathBuf> = platform::mounted_under(&base)
        .into_iter()
        .filter(|m| {
            let Ok(rel) = m.strip_prefix(&base) else {
                return false;
            };
            let Some(first) = rel.components().next() else {
                return false;
            };
            let first = first.as_os_str().to_string_lossy();
            let Some(rest) = first.strip_prefix("cow-xtask-") else {
                return false;
            };
            let pid: u32 = rest
                .split('-')
                .next()
                .and_then(|p| p.parse().ok())
                .unwrap_or(0);
            pid != mine && !platform::process_alive(pid)
        })
        .collect();
    stale.sort();
    if !stale.is_empty() {
        eprintln!("xtask: warning: mounts left behind by an earlier run that was killed:");
        for m in &stale {
            eprintln!(
                "xtask:   {}  (remove: umount {0} && losetup -j <image>)",
                m.display()
            );
        }
    }
}
