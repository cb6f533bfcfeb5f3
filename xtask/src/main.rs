//! Project automation for cow, run as `cargo xtask <command>`.
//!
//! ```text
//! cargo xtask test [--require btrfs,xfs,ext4,tmpfs] [-- RUNNER ARGS...]
//! cargo xtask with-mounts [--require LIST] -- COMMAND [ARGS...]
//! cargo xtask test-cleanup
//! cargo xtask check-targets [--target TRIPLE]...
//! cargo xtask test-windows [-- TEST ARGS...]
//! cargo xtask bench [--quick] [--filter SUBSTR] [--dir PATH] [--runs N]
//! cargo xtask crash [--quick | --cuts N] [--fs xfs,ext4] [--compare]
//! cargo xtask test-python [--require LIST] [-- PYTEST ARGS...]
//! cargo xtask bench-python [--require LIST] [-- SCRIPT ARGS...]
//! ```
//!
//! `test` mounts real filesystems (Linux, as root: loop images of btrfs, XFS
//! with reflink, ext4, a 64 MiB ext4 for out-of-space tests, and a tmpfs),
//! exports them as `COW_TEST_BTRFS`, `COW_TEST_XFS`, `COW_TEST_EXT4`,
//! `COW_TEST_TMPFS` and `COW_TEST_SMALL`, runs the workspace tests, prints how
//! many tests really ran on each filesystem, and always unmounts and detaches
//! what it created.
#![forbid(unsafe_code)]

mod bench;
#[cfg(target_os = "linux")]
mod cleanup_check;
#[cfg(target_os = "linux")]
mod crash;
mod mounts;
mod python;
mod signals;
mod targets;
mod test;
mod util;
mod wine;

use std::ffi::OsString;
use std::path::PathBuf;

const USAGE: &str = "\
usage: cargo xtask <command>

commands:
  test [--require LIST] [-- ARGS...]
        Mount real test filesystems (Linux, as root), run the workspace tests
        (cargo nextest if installed, plus doctests; else cargo test), print how
        many tests ran on each filesystem, unmount and detach everything.
        --require btrfs,xfs,ext4,tmpfs  fail if one of these cannot be mounted,
        or if no test ran on it. ARGS go to the test runner.
  with-mounts [--require LIST] -- COMMAND [ARGS...]
        Run any command with the test filesystems mounted and exported.
  test-cleanup
        Self-test (root): mount/unmount cycles around a failing command, a busy
        mount, SIGINT, SIGTERM and a panic leave no loop device or mount.
  check-targets [--target TRIPLE]...
        cargo check + clippy -D warnings of the whole workspace for
        aarch64-apple-darwin, x86_64-apple-darwin, x86_64-pc-windows-msvc,
        x86_64-unknown-freebsd (adding them with rustup when missing).
  test-windows [-- ARGS...]
        Build the workspace tests for x86_64-pc-windows-gnu (mingw linker),
        build the ProcessPrng shim (xtask/shim), run every test executable
        under Wine (private prefix in target/wine), print a line per
        executable and the total \"N passed, N failed\". Fails, never skips,
        when Wine, mingw or the target is missing. ARGS go to each executable.
  bench [--quick] [--filter SUBSTR] [--dir PATH] [--runs N] [--drop-caches]
        The benchmark matrix (Linux; loop filesystems need root): workloads x
        filesystems x tools (cow, std::fs::copy, reflink-copy, GNU cp, a
        read/write loop), A/B interleaved. Prints a markdown table; writes
        results.json and chart.svg to $CARGO_TARGET_DIR/cow-bench (default
        target/cow-bench). Runs from the release profile. --quick: small
        sizes (CI); --filter: only cells whose workload/fs/tool contains
        SUBSTR; --dir: bench in PATH instead of loop mounts; --runs: runs per
        cell; --drop-caches: drop the page cache before each run.
  crash [--quick | --cuts N] [--fs xfs,ext4] [--filter SUBSTR] [--compare]
        Power cuts (Linux, root): copies on loop XFS and ext4 are cut by
        FS_IOC_SHUTDOWN (no log flush) at random moments, the filesystem is
        mounted again and every destination must be wholly old or wholly new.
        Prints old/new/torn/missing per case. --quick: 20 cuts per case (CI);
        default 500 (the long form); --compare: also GNU cp, cp + mv, rsync.
  test-python [--require LIST] [-- PYTEST ARGS...]
        Build the cow_copy wheel (crates/cow-py, maturin) for $COW_PYTHON or
        python3 into target/py-venv (created with maturin and pytest), mount
        the test filesystems as `test` does and run pytest on them. Fails when
        pytest fails, collects nothing, or runs nothing on a required one.
  bench-python [--require LIST] [-- SCRIPT ARGS...]
        The release wheel, then cow_copy vs shutil (copytree of real package
        trees, copyfile) on the mounted filesystems, interleaved, medians.

environment passed to tests:
  COW_TEST_BTRFS, COW_TEST_XFS, COW_TEST_EXT4, COW_TEST_TMPFS  mount points
  COW_TEST_SMALL    mount point of a 64 MiB ext4 for out-of-space tests
  COW_TEST_REQUIRE  the --require list (a skip on these is a test failure)
  COW_TEST_LEDGER   file where each test that ran appends \"fs test\"
";

fn main() {
    let mut args: Vec<OsString> = std::env::args_os().skip(1).collect();
    if args.is_empty() {
        eprint!("{USAGE}");
        std::process::exit(1);
    }
    let command = args.remove(0);
    let code = match command.to_str() {
        Some("test") => parse_session(args, false).map(|(s, rest)| test::test(&s, &rest)),
        Some("with-mounts") => {
            parse_session(args, true).map(|(s, rest)| test::with_mounts(&s, &rest))
        }
        Some("test-python") => {
            parse_session(args, false).map(|(s, rest)| python::test_python(&s, &rest))
        }
        Some("bench-python") => {
            parse_session(args, false).map(|(s, rest)| python::bench_python(&s, &rest))
        }
        Some("test-cleanup") => no_args(&args).map(|()| test_cleanup()),
        Some("check-targets") => parse_targets(args).map(|t| targets::run(&t)),
        Some("test-windows") => parse_passthrough(args).map(|rest| wine::run(&rest)),
        Some("bench") => bench::bench(args),
        #[cfg(target_os = "linux")]
        Some("crash") => crash::crash(args),
        #[cfg(not(target_os = "linux"))]
        Some("crash") => Err("crash runs on Linux only (FS_IOC_SHUTDOWN)".into()),
        Some("help" | "-h" | "--help") => {
            print!("{USAGE}");
            Ok(0)
        }
        _ => Err(format!("unknown command {command:?}")),
    };
    match code {
        Ok(code) => std::process::exit(code),
        Err(msg) => {
            eprintln!("xtask: {msg}\n\n{USAGE}");
            std::process::exit(1);
        }
    }
}

fn no_args(args: &[OsString]) -> Result<(), String> {
    match args.first() {
        None => Ok(()),
        Some(a) => Err(format!("unexpected argument {a:?}")),
    }
}

fn take_value(
    it: &mut std::vec::IntoIter<OsString>,
    opt: &str,
    inline: Option<&str>,
) -> Result<String, String> {
    if let Some(v) = inline {
        return Ok(v.to_owned());
    }
    it.next()
        .and_then(|v| v.into_string().ok())
        .ok_or_else(|| format!("{opt} needs a value"))
}

/// Parses `test` / `with-mounts` options; returns them and the arguments
/// after `--`.
fn parse_session(
    args: Vec<OsString>,
    hidden: bool,
) -> Result<(test::Session, Vec<OsString>), String> {
    let mut s = test::Session::default();
    let mut it = args.into_iter();
    let mut rest = Vec::new();
    while let Some(a) = it.next() {
        let text = a.to_string_lossy().into_owned();
        let (name, inline) = match text.split_once('=') {
            Some((n, v)) if n.starts_with("--") => (n.to_owned(), Some(v.to_owned())),
            _ => (text.clone(), None),
        };
        match name.as_str() {
            "--" => {
                rest.extend(it.by_ref());
                break;
            }
            "--require" => {
                s.require =
                    test::parse_require(&take_value(&mut it, "--require", inline.as_deref())?)?;
            }
            "--workdir" if hidden => {
                s.workdir = Some(PathBuf::from(take_value(
                    &mut it,
                    "--workdir",
                    inline.as_deref(),
                )?));
            }
            "--ready-file" if hidden => {
                s.ready_file = Some(PathBuf::from(take_value(
                    &mut it,
                    "--ready-file",
                    inline.as_deref(),
                )?));
            }
            "--panic-after-setup" if hidden => s.panic_after_setup = true,
            _ => {
                return Err(format!(
                    "unexpected argument {text:?} (runner arguments go after `--`)"
                ));
            }
        }
    }
    Ok((s, rest))
}

/// Parses `[-- ARGS...]`: nothing before the `--`.
fn parse_passthrough(args: Vec<OsString>) -> Result<Vec<String>, String> {
    let mut it = args.into_iter();
    match it.next() {
        None => Ok(Vec::new()),
        Some(a) if a == "--" => it
            .map(|a| {
                a.into_string()
                    .map_err(|a| format!("argument {a:?} is not UTF-8"))
            })
            .collect(),
        Some(a) => Err(format!(
            "unexpected argument {a:?} (test arguments go after `--`)"
        )),
    }
}

fn parse_targets(args: Vec<OsString>) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut it = args.into_iter();
    while let Some(a) = it.next() {
        let text = a.to_string_lossy().into_owned();
        match text.split_once('=') {
            Some(("--target", v)) => out.push(v.to_owned()),
            _ if text == "--target" => out.push(take_value(&mut it, "--target", None)?),
            _ => return Err(format!("unexpected argument {text:?}")),
        }
    }
    Ok(out)
}

#[cfg(target_os = "linux")]
fn test_cleanup() -> i32 {
    cleanup_check::run()
}

#[cfg(not(target_os = "linux"))]
fn test_cleanup() -> i32 {
    eprintln!("xtask test-cleanup: loop mounts exist on Linux only; nothing to check here");
    0
}
