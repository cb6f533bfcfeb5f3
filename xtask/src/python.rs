//! `cargo xtask test-python` and `cargo xtask bench-python`: the `cow_copy`
//! wheel (crates/cow-py) built by maturin for one Python into a venv under
//! the target directory, then pytest (or the shutil benchmark) run with the
//! real test filesystems mounted and exported, as `cargo xtask test` does.
//!
//! The interpreter is `$COW_PYTHON`, else `python3`. The venv
//! (`target/py-venv`) gets maturin and pytest from the package index with
//! pip the first time.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::mounts::REQUIRABLE;
use crate::signals;
use crate::test::{self, EXIT_INTERRUPTED, EXIT_REQUIRE, Session};
use crate::util::show;

/// pytest's exit code when it collected no test: a failure here.
const PYTEST_NO_TESTS: i32 = 5;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join("target"))
}

fn venv_bin(venv: &Path, tool: &str) -> PathBuf {
    if cfg!(windows) {
        venv.join("Scripts").join(format!("{tool}.exe"))
    } else {
        venv.join("bin").join(tool)
    }
}

fn run(cmd: &mut Command) -> Result<(), String> {
    eprintln!("xtask: running: {}", show(cmd));
    match signals::run_interruptible(cmd) {
        Ok(s) if s.success() => Ok(()),
        Ok(s) => Err(format!("`{}` failed ({s})", show(cmd))),
        Err(e) => Err(format!("cannot run `{}`: {e}", show(cmd))),
    }
}

/// Creates the venv (once) with maturin and pytest; returns its python.
fn venv() -> Result<PathBuf, String> {
    let venv = target_dir().join("py-venv");
    let python = venv_bin(&venv, "python");
    if !python.exists() {
        let base = std::env::var_os("COW_PYTHON").unwrap_or_else(|| "python3".into());
        run(Command::new(base).arg("-m").arg("venv").arg(&venv))?;
    }
    let have = Command::new(&python)
        .args(["-c", "import maturin, pytest"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !have {
        run(Command::new(&python).args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "maturin>=1.9,<2",
            "pytest>=7",
        ]))?;
    }
    Ok(python)
}

/// Builds the one wheel for the venv's Python and installs it there.
fn build_wheel(python: &Path, release: bool) -> Result<(), String> {
    let out = target_dir().join("py-wheels");
    let _ = std::fs::remove_dir_all(&out);
    let manifest = workspace().join("crates/cow-py/Cargo.toml");
    let mut build = Command::new(python);
    build
        .args(["-m", "maturin", "build", "--interpreter"])
        .arg(python)
        .arg("--manifest-path")
        .arg(&manifest)
        .arg("--out")
        .arg(&out);
    if release {
        build.arg("--release");
    }
    run(&mut build)?;
    let wheels: Vec<PathBuf> = std::fs::read_dir(&out)
        .map_err(|e| format!("cannot list {}: {e}", out.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "whl"))
        .collect();
    let [wheel] = wheels.as_slice() else {
        return Err(format!(
            "expected one wheel in {}, found {}",
            out.display(),
            wheels.len()
        ));
    };
    run(Command::new(python)
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--force-reinstall",
            "--no-deps",
        ])
        .arg(wheel))
}

/// The venv with a fresh wheel installed; `Err` is the exit code.
fn prepare(release: bool) -> Result<PathBuf, i32> {
    signals::install();
    venv()
        .and_then(|p| build_wheel(&p, release).map(|()| p))
        .map_err(|e| {
            eprintln!("xtask: FAILED: {e}");
            1
        })
}

/// Mounts, runs `cmd` with the filesystems exported, cleans up. Returns the
/// command's exit code (or ours) and the ledger of tests per filesystem.
fn with_filesystems(
    session: &Session,
    mut cmd: Command,
) -> Result<(i32, test::Ledger, Vec<&'static str>), i32> {
    let mut tfs = test::start(session)?;
    tfs.apply_env(&mut cmd, &session.require);
    eprintln!("xtask: running: {}", show(&cmd));
    let code = match signals::run_interruptible(&mut cmd) {
        Ok(s) => s.code().unwrap_or(1),
        Err(e) => {
            eprintln!("xtask: cannot run `{}`: {e}", show(&cmd));
            127
        }
    };
    let ledger = test::read_ledger(&tfs);
    let provided = tfs.provided().iter().map(|p| p.spec.name).collect();
    if !test::finish_cleanup(&mut tfs) {
        return Err(1);
    }
    Ok((code, ledger, provided))
}

/// `cargo xtask test-python`: build, install, pytest on the filesystems.
pub(crate) fn test_python(session: &Session, pytest_args: &[OsString]) -> i32 {
    let python = match prepare(false) {
        Ok(p) => p,
        Err(code) => return code,
    };
    let mut cmd = Command::new(&python);
    cmd.args(["-m", "pytest", "-p", "no:cacheprovider", "-rs"])
        .arg(workspace().join("crates/cow-py/tests"))
        .args(pytest_args);
    let (code, ledger, provided) = match with_filesystems(session, cmd) {
        Ok(r) => r,
        Err(code) => return code,
    };
    eprintln!("xtask: ---- python summary ----");
    let counts: Vec<String> = REQUIRABLE
        .iter()
        .filter(|n| provided.contains(n) || ledger.contains_key(**n))
        .map(|n| format!("{n} {}", ledger.get(*n).map_or(0, |t| t.len())))
        .collect();
    eprintln!(
        "xtask: pytest ran on real filesystems: {}",
        counts.join(", ")
    );
    if signals::interrupted() {
        eprintln!("xtask: interrupted");
        return EXIT_INTERRUPTED;
    }
    if code == PYTEST_NO_TESTS {
        eprintln!("xtask: FAILED: pytest collected no tests");
        return 1;
    }
    if code != 0 {
        eprintln!("xtask: FAILED: pytest exited with {code}");
        return 1;
    }
    let idle: Vec<&String> = session
        .require
        .iter()
        .filter(|n| !ledger.contains_key(n.as_str()))
        .collect();
    if !idle.is_empty() {
        eprintln!("xtask: FAILED: required filesystem(s) on which no Python test ran: {idle:?}");
        return EXIT_REQUIRE;
    }
    eprintln!("xtask: ok");
    0
}

/// `cargo xtask bench-python [-- SCRIPT ARGS]`: the release wheel, then
/// crates/cow-py/bench/bench_shutil.py (cow_copy vs shutil, interleaved,
/// medians) on the mounted filesystems.
pub(crate) fn bench_python(session: &Session, args: &[OsString]) -> i32 {
    let python = match prepare(true) {
        Ok(p) => p,
        Err(code) => return code,
    };
    let mut cmd = Command::new(&python);
    cmd.arg(workspace().join("crates/cow-py/bench/bench_shutil.py"))
        .arg("--cache")
        .arg(target_dir().join("py-bench-cache"))
        .args(args);
    match with_filesystems(session, cmd) {
        Ok((code, _, _)) => code,
        Err(code) => code,
    }
}
