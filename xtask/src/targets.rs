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

/// The workspace member whose dev-dependencies compile C.
const BENCHES: &str = "cow-benches";

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

/// Whether the host's `cc` can compile C for `target`, which build scripts
/// of C-using dependencies need even for `cargo check`. It can for other
/// x86-64 ELF systems; not for Apple (`-arch` flags) or MSVC targets, unless
/// a compiler is configured through `CC_<target>`.
fn host_cc_builds_for(target: &str) -> bool {
    let configured = std::env::var_os(format!("CC_{target}")).is_some()
        || std::env::var_os(format!("CC_{}", target.replace('-', "_"))).is_some();
    configured || !(target.contains("-apple-") || target.ends_with("-msvc"))
}

fn lint_args(cmd: &mut Command, tool: &str) {
    if tool == "clippy" {
        cmd.args(["--", "-D", "warnings"]);
    }
}

/// The commands that check `target` with `tool` (`check` or `clippy`).
fn commands(tool: &str, target: &str, limited: bool) -> Vec<Command> {
    let mut all = cargo();
    all.args([tool, "--workspace", "--all-targets", "--target", target]);
    if limited {
        all.args(["--exclude", BENCHES]);
    }
    lint_args(&mut all, tool);
    let mut out = vec![all];
    if limited {
        let mut lib = cargo();
        lib.args([tool, "-p", BENCHES, "--lib", "--target", target]);
        lint_args(&mut lib, tool);
        out.push(lib);
    }
    out
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
    let installed = installed_targets();
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
        }
        let limited = !host_cc_builds_for(t);
        if limited {
            eprintln!(
                "xtask: note: {t}: the host C compiler cannot build for this target, so \
                 {BENCHES} is checked as --lib only (its dev-dependency criterion compiles C \
                 through the `alloca` crate); its benchmarks are compiled natively by CI"
            );
        }
        let mut outcome = Outcome::Ok;
        for (what, tool) in [
            ("cargo check", "check"),
            ("cargo clippy -D warnings", "clippy"),
        ] {
            if !commands(tool, t, limited).iter_mut().all(step) {
                outcome = Outcome::Failed(what);
                break;
            }
        }
        results.push((t.clone(), outcome));
    }
    eprintln!("xtask: ---- check-targets summary ----");
    let mut failed = false;
    for (t, o) in &results {
        match o {
            Outcome::Ok if host_cc_builds_for(t) => eprintln!(
                "xtask: {t:<24} ok (check + clippy -D warnings, whole workspace incl. xtask)"
            ),
            Outcome::Ok => eprintln!(
                "xtask: {t:<24} ok (check + clippy -D warnings, whole workspace incl. xtask; \
                 {BENCHES} as --lib only)"
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
