//! Test support: a fresh directory on a real, named filesystem, or a loud skip.
//!
//! ```no_run
//! use cow_test_support::{Fs, fs_test};
//!
//! fs_test!(writes_a_file, [btrfs, xfs, ext4, tmpfs], |dir| {
//!     std::fs::write(dir.join("a"), b"hello").unwrap();
//!     assert_eq!(std::fs::read(dir.join("a")).unwrap(), b"hello");
//! });
//!
//! // Or by hand:
//! if let Some(dir) = cow_test_support::dir_on(Fs::Btrfs, "by_hand") {
//!     assert!(dir.path().exists());
//! }
//! ```
//!
//! `cargo xtask test` mounts real btrfs, XFS (reflink=1), ext4 and tmpfs
//! filesystems and exports their mount points as `COW_TEST_BTRFS`,
//! `COW_TEST_XFS`, `COW_TEST_EXT4` and `COW_TEST_TMPFS`. A test asks for a
//! directory on one of them; when the variable is missing the test prints a
//! `SKIP` line naming the filesystem and returns, unless `COW_TEST_REQUIRE`
//! names that filesystem, in which case the skip is a failure. Every test that
//! really ran on a filesystem appends a line to the file named by
//! `COW_TEST_LEDGER`, which `cargo xtask test` counts per filesystem. A test
//! never runs on a stand-in: no variable, no test.

#![forbid(unsafe_code)]

use std::io::Write;
use std::path::{Path, PathBuf};

/// One of the real filesystems that `cargo xtask test` provides.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Fs {
    /// btrfs on a loop device: reflink, dedupe, FIEMAP `SHARED`, snapshots.
    Btrfs,
    /// XFS with `-m reflink=1` on a loop device: reflink, dedupe, FIEMAP.
    Xfs,
    /// ext4 on a loop device: FIEMAP and holes, no reflink.
    Ext4,
    /// tmpfs: holes, no reflink, no FIEMAP.
    Tmpfs,
    /// The platform's own volume where `cargo xtask test` mounts nothing:
    /// on Windows the temp directory (NTFS; under Wine, the Unix directory
    /// Wine presents as NTFS), or `COW_TEST_NATIVE` when set. Tests list it
    /// as `native`; they run only on Windows (see [`fs_test!`]).
    Native,
}

impl Fs {
    /// Every filesystem, in a fixed order.
    pub const ALL: [Fs; 4] = [Fs::Btrfs, Fs::Xfs, Fs::Ext4, Fs::Tmpfs];

    /// The lower-case name (`btrfs`, `xfs`, `ext4`, `tmpfs`).
    pub fn name(self) -> &'static str {
        match self {
            Fs::Btrfs => "btrfs",
            Fs::Xfs => "xfs",
            Fs::Ext4 => "ext4",
            Fs::Tmpfs => "tmpfs",
            Fs::Native => "native",
        }
    }

    /// Parses a lower-case name as produced by [`Fs::name`].
    pub fn parse(name: &str) -> Option<Fs> {
        Fs::ALL
            .into_iter()
            .chain([Fs::Native])
            .find(|fs| fs.name() == name)
    }

    /// The environment variable holding this filesystem's mount point.
    pub fn env_var(self) -> &'static str {
        match self {
            Fs::Btrfs => "COW_TEST_BTRFS",
            Fs::Xfs => "COW_TEST_XFS",
            Fs::Ext4 => "COW_TEST_EXT4",
            Fs::Tmpfs => "COW_TEST_TMPFS",
            Fs::Native => "COW_TEST_NATIVE",
        }
    }

    /// Whether the filesystem supports reflinks (FICLONE) and dedupe.
    /// `native` is taken to be NTFS (or Wine), which has neither.
    pub fn reflinks(self) -> bool {
        matches!(self, Fs::Btrfs | Fs::Xfs)
    }

    /// Whether cow-verify can read extents there (FIEMAP on Linux; on
    /// Windows `FSCTL_GET_RETRIEVAL_POINTERS`, which Wine only stubs).
    pub fn has_fiemap(self) -> bool {
        match self {
            Fs::Tmpfs => false,
            Fs::Native => cfg!(windows) && !under_wine(),
            _ => true,
        }
    }

    /// The mount point exported for this filesystem, if any (for `native`
    /// on Windows, the temp directory when the variable is not set).
    pub fn mount_point(self) -> Option<PathBuf> {
        std::env::var_os(self.env_var())
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .or_else(|| (self == Fs::Native && cfg!(windows)).then(std::env::temp_dir))
    }

    /// Whether `COW_TEST_REQUIRE` makes a skip of this filesystem a failure.
    pub fn required(self) -> bool {
        std::env::var("COW_TEST_REQUIRE")
            .map(|v| v.split(',').any(|n| n.trim() == self.name()))
            .unwrap_or(false)
    }
}

impl std::fmt::Display for Fs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A fresh, empty directory on `fs` for the test named `test`, or `None`
/// (after printing why) when that filesystem is not available.
///
/// # Panics
///
/// When the filesystem is required (`COW_TEST_REQUIRE`) but missing, or when
/// the directory cannot be created.
pub fn dir_on(fs: Fs, test: &str) -> Option<tempfile::TempDir> {
    let Some(root) = fs.mount_point() else {
        let msg = format!(
            "SKIP {test} on {fs}: {} is not set (run `cargo xtask test` as root to mount a real {fs})",
            fs.env_var()
        );
        if fs.required() {
            panic!("{msg}, but COW_TEST_REQUIRE lists {fs}");
        }
        eprintln!("{msg}");
        return None;
    };
    let dir = tempfile::Builder::new()
        .prefix("cowtest-")
        .tempdir_in(&root)
        .unwrap_or_else(|e| panic!("cannot create a test directory in {}: {e}", root.display()));
    record(fs, test);
    Some(dir)
}

/// A fresh, empty directory on the deliberately tiny (64 MiB ext4)
/// filesystem that `cargo xtask test` exports as `COW_TEST_SMALL`, for
/// out-of-space tests; `None` (after a `SKIP` line) when it is not there.
/// Runs are counted in the ledger under the name `small`.
///
/// # Panics
///
/// When `COW_TEST_REQUIRE` lists `small` but it is missing, or when the
/// directory cannot be created.
pub fn small_dir(test: &str) -> Option<tempfile::TempDir> {
    let Some(root) = std::env::var_os("COW_TEST_SMALL").filter(|v| !v.is_empty()) else {
        let msg = format!(
            "SKIP {test} on small: COW_TEST_SMALL is not set (run `cargo xtask test` as root to mount a 64 MiB ext4)"
        );
        let required = std::env::var("COW_TEST_REQUIRE")
            .map(|v| v.split(',').any(|n| n.trim() == "small"))
            .unwrap_or(false);
        if required {
            panic!("{msg}, but COW_TEST_REQUIRE lists small");
        }
        eprintln!("{msg}");
        return None;
    };
    let dir = tempfile::Builder::new()
        .prefix("cowtest-")
        .tempdir_in(&root)
        .unwrap_or_else(|e| panic!("cannot create a test directory in {root:?}: {e}"));
    record_name("small", test);
    Some(dir)
}

/// Runs `body` with a fresh directory on `fs`; skips loudly when unavailable.
///
/// Returns whether the body ran.
pub fn run_on(fs: Fs, test: &str, body: impl FnOnce(&Path)) -> bool {
    match dir_on(fs, test) {
        Some(dir) => {
            body(dir.path());
            true
        }
        None => false,
    }
}

/// Whether the tests run under Wine (ntdll's `wine_get_version`), where
/// Windows' answers differ: no sparse files, no extent map, no clones.
pub fn under_wine() -> bool {
    #[cfg(windows)]
    {
        cow_sys::windows::is_wine()
    }
    #[cfg(not(windows))]
    {
        false
    }
}

/// Appends `fs test` to the ledger file named by `COW_TEST_LEDGER`, if set.
fn record(fs: Fs, test: &str) {
    record_name(fs.name(), test);
}

/// Appends `name test` to the ledger, if there is one.
fn record_name(fs: &str, test: &str) {
    let Some(ledger) = std::env::var_os("COW_TEST_LEDGER") else {
        return;
    };
    let line = format!("{fs} {test}\n");
    // One write of a short line to an O_APPEND file is atomic enough for
    // concurrent test threads and processes.
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(ledger)
    {
        let _ = f.write_all(line.as_bytes());
    }
}

/// Defines one `#[test]` per listed filesystem inside a module named `$name`.
///
/// The tests are named `$name::btrfs`, `$name::xfs`, ... so a runner's output
/// shows which filesystem each result belongs to. The body gets `$dir: &Path`,
/// a fresh empty directory on that filesystem, and `$fs: Fs` when the
/// three-argument form `|dir, fs|` is used.
///
/// The Linux filesystems (`btrfs`, `xfs`, `ext4`, `tmpfs`) make tests
/// everywhere but Windows, which cannot have them; `native` makes a test
/// on Windows only (the temp directory's volume).
#[macro_export]
macro_rules! fs_test {
    ($name:ident, [$($fs:ident),+ $(,)?], |$dir:ident| $body:block) => {
        $crate::fs_test!($name, [$($fs),+], |$dir, _fs| $body);
    };
    ($name:ident, [$($fs:ident),+ $(,)?], |$dir:ident, $fsv:ident| $body:block) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            $(
                $crate::fs_test!(@one $fs, |$dir, $fsv| $body);
            )+
        }
    };
    (@one native, |$dir:ident, $fsv:ident| $body:block) => {
        #[cfg(windows)]
        $crate::fs_test!(@test native, |$dir, $fsv| $body);
    };
    (@one $fs:ident, |$dir:ident, $fsv:ident| $body:block) => {
        #[cfg(not(windows))]
        $crate::fs_test!(@test $fs, |$dir, $fsv| $body);
    };
    (@test $fs:ident, |$dir:ident, $fsv:ident| $body:block) => {
        #[test]
        fn $fs() {
            let fs = $crate::Fs::parse(stringify!($fs)).expect("unknown filesystem name");
            let test = concat!(module_path!(), "::", stringify!($fs));
            $crate::run_on(fs, test, |$dir: &::std::path::Path| {
                #[allow(unused_variables)]
                let $fsv: $crate::Fs = fs;
                $body
            });
        }
    };
}

/// Writes `len` bytes of a deterministic, non-repeating pattern seeded by
/// `seed` (so distinct seeds give distinct content and no block dedupes).
pub fn pattern(len: usize, seed: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(len);
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    while out.len() < len {
        // xorshift64*
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        let v = x.wrapping_mul(0x2545_F491_4F6C_DD1D);
        let bytes = v.to_le_bytes();
        let take = (len - out.len()).min(8);
        out.extend_from_slice(&bytes[..take]);
    }
    out
}

/// Creates `path` with `len` bytes of [`pattern`] content.
pub fn write_pattern(path: &Path, len: usize, seed: u64) -> Vec<u8> {
    let data = pattern(len, seed);
    std::fs::write(path, &data).unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
    data
}

#[cfg(unix)]
/// Creates a sparse file at `path`: `len` bytes long, with pattern data at
/// each `(offset, length)` of `data` and holes elsewhere. Returns the content.
pub fn write_sparse(path: &Path, len: u64, data: &[(u64, u64)], seed: u64) -> Vec<u8> {
    use std::os::unix::fs::FileExt;
    let f = std::fs::File::create(path)
        .unwrap_or_else(|e| panic!("cannot create {}: {e}", path.display()));
    f.set_len(len)
        .unwrap_or_else(|e| panic!("cannot size {}: {e}", path.display()));
    let mut content = vec![0u8; len as usize];
    for (i, &(off, n)) in data.iter().enumerate() {
        let chunk = pattern(n as usize, seed.wrapping_add(i as u64));
        f.write_all_at(&chunk, off)
            .unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
        content[off as usize..(off + n) as usize].copy_from_slice(&chunk);
    }
    f.sync_all()
        .unwrap_or_else(|e| panic!("cannot sync {}: {e}", path.display()));
    content
}

/// The names in `dir`, sorted.
pub fn names_in(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// Writes `data` to `path` and syncs it, so its extents are on disk.
pub fn write_synced(path: &Path, data: &[u8]) {
    std::fs::write(path, data).unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
    // Windows flushes only handles open for writing.
    std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .and_then(|f| f.sync_all())
        .unwrap_or_else(|e| panic!("cannot sync {}: {e}", path.display()));
}

/// Sets the modification time of `path` to `t`, asserting it worked.
pub fn set_mtime(path: &Path, t: std::time::SystemTime) {
    std::fs::File::options()
        .write(true)
        .open(path)
        .and_then(|f| f.set_modified(t))
        .unwrap_or_else(|e| panic!("cannot set the mtime of {}: {e}", path.display()));
}

/// This process's umask, read from `/proc/self/status` (which does not
/// change it, unlike `umask(2)`).
#[cfg(target_os = "linux")]
pub fn umask() -> u32 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = s.lines().find(|l| l.starts_with("Umask:")).unwrap();
    u32::from_str_radix(line.split_whitespace().nth(1).unwrap(), 8).unwrap()
}

/// Makes a FIFO at `path` with the `mkfifo` command, asserting it worked.
#[cfg(unix)]
pub fn mkfifo(path: &Path) {
    let st = std::process::Command::new("mkfifo")
        .arg(path)
        .status()
        .expect("run mkfifo");
    assert!(st.success(), "mkfifo {}: {st}", path.display());
}

/// Runs `btrfs ARGS PATHS`, asserts it succeeded and returns its stdout.
pub fn btrfs(args: &[&str], paths: &[&Path]) -> String {
    let out = std::process::Command::new("btrfs")
        .args(args)
        .args(paths)
        .output()
        .expect("run btrfs");
    assert!(
        out.status.success(),
        "btrfs {args:?} {paths:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `btrfs filesystem du -s --raw DIR`: (total, exclusive, set shared) of
/// the files under `dir`. It does not sync first.
pub fn btrfs_du(dir: &Path) -> (u64, u64, u64) {
    let text = btrfs(&["filesystem", "du", "-s", "--raw"], &[dir]);
    let cols: Vec<u64> = text
        .lines()
        .last()
        .unwrap()
        .split_whitespace()
        .take(3)
        .map(|c| c.parse().unwrap())
        .collect();
    (cols[0], cols[1], cols[2])
}

/// Checks that every integration test of the crate at `manifest_dir` is
/// compiled: its Cargo.toml sets `autotests = false`, so a file is a test
/// only when a `[[test]]` names it (`path = "tests/..."`) or it is a module
/// that such a binary's `main.rs` declares (`mod NAME;`). A suite left
/// beside the binaries, or not declared, would compile into nothing and
/// pass unseen; this names it instead.
///
/// # Panics
///
/// When something in `tests/` belongs to no test binary.
pub fn assert_every_test_is_built(manifest_dir: &str) {
    let root = Path::new(manifest_dir);
    let manifest = std::fs::read_to_string(root.join("Cargo.toml"))
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", root.join("Cargo.toml").display()));
    let targets: Vec<&str> = manifest
        .lines()
        .filter_map(|l| l.trim().strip_prefix("path = \"tests/"))
        .filter_map(|l| l.strip_suffix('"'))
        .collect();
    let stray: Vec<String> = names_in(&root.join("tests"))
        .into_iter()
        .filter(|n| {
            !targets
                .iter()
                .any(|t| t == n || t.strip_suffix("/main.rs") == Some(n))
        })
        .collect();
    assert!(
        stray.is_empty(),
        "{}: {stray:?} in tests/ belongs to no [[test]] of Cargo.toml",
        root.display()
    );
    for folder in targets.iter().filter_map(|t| t.strip_suffix("/main.rs")) {
        let folder = root.join("tests").join(folder);
        let main = std::fs::read_to_string(folder.join("main.rs"))
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", folder.join("main.rs").display()));
        let undeclared: Vec<String> = names_in(&folder)
            .into_iter()
            .filter(|n| n != "main.rs")
            .filter(|n| {
                let module = n.strip_suffix(".rs").unwrap_or(n);
                !main.lines().any(|l| l.trim() == format!("mod {module};"))
            })
            .collect();
        assert!(
            undeclared.is_empty(),
            "{}: {undeclared:?} not declared in main.rs (`mod NAME;`), so never compiled",
            folder.display()
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for fs in Fs::ALL.into_iter().chain([Fs::Native]) {
            assert_eq!(Fs::parse(fs.name()), Some(fs));
        }
        assert_eq!(Fs::parse("zfs"), None);
    }

    #[test]
    fn pattern_is_deterministic_and_seeded() {
        assert_eq!(pattern(100, 1), pattern(100, 1));
        assert_ne!(pattern(100, 1), pattern(100, 2));
        assert_eq!(pattern(13, 7).len(), 13);
    }
}
