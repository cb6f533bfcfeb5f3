//! `cargo xtask check-targets`: the whole workspace must compile and be
//! clippy-clean for the non-Linux targets too.

use crate::signals;
use crate::util::{cargo, find_tool, run_capture, show};
use std::path::PathBuf;
use std::process::Command;

/// The targets checked by default.
pub(crate) const TARGETS: [&str; 4] = [
    "aarch64-apple-darwin",
    "x86_64-apple-darwin",
    "x86_64-pc-windows-msvc",
    "x86_64-unknown-freebsd",
];

enum Outcome {
    Ok,
    NotInstallable(String),
    Failed(&'static str),
}

fn rustup() -> Option<PathBuf> {
    find_tool("rustup").or_else(|| {
        let home = std::env::var_os("CARGO_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))?;
        let p = home.join("bin").join("rustup");
        p.exists().then_some(p)
    })
}

fn installed_targets() -> Option<Vec<String>> {
    run_capture(Command::new(rustup()?).args(["target", "list", "--installed"]))
        .ok()
        .map(|s| s.lines().map(|l| l.trim().to_owned()).collect())
}

fn rustup_add(target: &str) -> Result<(), String> {
    let rustup = rustup().ok_or("rustup not found")?;
    run_capture(Command::new(rustup).args(["target", "add", target])).map(|_| ())
}

fn step(cmd: &mut Command) -> bool {
    eprintln!("xtask: running: {}", show(cmd));
    matches!(signals::run_interruptible(cmd), Ok(s) if s.success())
}

/// Checks each target (all of [`TARGETS`] when `targets` is empty).
pub(crate) fn run(targets: &[String]) -> i32 {
    signals::install();
    let targets: Vec<String> = if targets.is_empty() {
        TARGETS.iter().map(|s| (*s).to_owned()).collect()
    } else {
        targets.to_vec()
    };
    let mut installed = installed_targets();
    let mut results = Vec::new();
    for t in &targets {
        if signals::interrupted() {
            break;
        }
        let present = installed.as_ref().map(|v| v.iter().any(|i| i == t));
        if present == Some(false) {
            eprintln!("xtask: target {t} is not installed; running `rustup target add {t}`");
            if let Err(e) = rustup_add(t) {
                eprintln!("xtask: !!!!! TARGET NOT INSTALLABLE, SKIPPED: {t}: {e}");
                results.push((t.clone(), Outcome::NotInstallable(e)));
                continue;
            }
            installed = installed_targets();
        }
        let mut check = cargo();
        check.args(["check", "--workspace", "--all-targets", "--target", t]);
        if !step(&mut check) {
            results.push((t.clone(), Outcome::Failed("cargo check")));
            continue;
        }
        let mut clippy = cargo();
        clippy.args([
            "clippy",
            "--workspace",
            "--all-targets",
            "--target",
            t,
            "--",
            "-D",
            "warnings",
        ]);
        if !step(&mut clippy) {
            results.push((t.clone(), Outcome::Failed("cargo clippy -D warnings")));
            continue;
        }
        results.push((t.clone(), Outcome::Ok));
    }
    eprintln!("xtask: ---- check-targets summary ----");
    let mut failed = false;
    for (t, o) in &results {
        match o {
            Outcome::Ok => eprintln!(
                "xtask: {t:<24} ok (check + clippy -D warnings, whole workspace incl. xtask)"
            ),
            Outcome::NotInstallable(e) => {
                eprintln!("xtask: {t:<24} NOT INSTALLABLE, SKIPPED ({e})")
            }
            Outcome::Failed(what) => {
                failed = true;
                eprintln!("xtask: {t:<24} FAILED: {what}");
            }
        }
    }
    if signals::interrupted() {
        eprintln!("xtask: interrupted");
        return crate::test::EXIT_INTERRUPTED;
    }
    if failed { 1 } else { 0 }
}
