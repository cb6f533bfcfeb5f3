//! `cargo xtask test` and `cargo xtask with-mounts`.

use crate::mounts::{self, REQUIRABLE, TestFs};
use crate::signals;
use crate::util::{cargo, show};
use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsString;
use std::path::PathBuf;
use std::process::{Command, ExitStatus, Stdio};

/// Exit code for "a required filesystem is missing / saw no test".
pub(crate) const EXIT_REQUIRE: i32 = 2;
/// Exit code after SIGINT/SIGTERM (128 + SIGINT, like a shell).
pub(crate) const EXIT_INTERRUPTED: i32 = 130;

/// Options shared by `test` and `with-mounts`.
#[derive(Debug, Default)]
pub(crate) struct Session {
    /// `--require btrfs,xfs,...`.
    pub(crate) require: Vec<String>,
    /// Hidden: use this work directory (must not exist).
    pub(crate) workdir: Option<PathBuf>,
    /// Hidden: write this file once the filesystems are mounted.
    pub(crate) ready_file: Option<PathBuf>,
    /// Hidden: panic right after mounting (cleanup self-test).
    pub(crate) panic_after_setup: bool,
}

/// Parses and checks a `--require` list.
pub(crate) fn parse_require(list: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    for name in list.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        if !REQUIRABLE.contains(&name) {
            return Err(format!(
                "--require: unknown filesystem {name:?} (known: {})",
                REQUIRABLE.join(",")
            ));
        }
        if !out.iter().any(|n| n == name) {
            out.push(name.to_owned());
        }
    }
    Ok(out)
}

/// Mounts the filesystems and checks `--require`. `Err` holds the exit code
/// (the filesystems are already cleaned up by then).
pub(crate) fn start(session: &Session) -> Result<TestFs, i32> {
    signals::install();
    mounts::warn_stale();
    let mut tfs = match TestFs::create(session.workdir.clone()) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("xtask: cannot create the work directory: {e}");
            return Err(1);
        }
    };
    eprintln!("xtask: work directory {}", tfs.root().display());
    tfs.mount_all();
    for p in tfs.provided() {
        eprintln!(
            "xtask: mounted {:<5} at {} ({}) -> {}",
            p.spec.name,
            p.path.display(),
            p.detail,
            p.spec.env
        );
    }
    for s in tfs.skipped() {
        eprintln!("xtask: SKIPPED {:<5}: {}", s.spec.name, s.reason);
    }
    if tfs.skipped().iter().any(|s| s.reason == mounts::NOT_ROOT) {
        eprintln!(
            "xtask: (loop devices and mounts need root: `sudo -E env PATH=\"$PATH\" cargo xtask test`)"
        );
    }
    if signals::interrupted() {
        eprintln!("xtask: interrupted during setup");
        finish_cleanup(&mut tfs);
        return Err(EXIT_INTERRUPTED);
    }
    let missing: Vec<String> = session
        .require
        .iter()
        .filter(|n| !tfs.provided().iter().any(|p| p.spec.name == n.as_str()))
        .map(|n| {
            let why = tfs
                .skipped()
                .iter()
                .find(|s| s.spec.name == n.as_str())
                .map(|s| s.reason.as_str())
                .unwrap_or("unknown");
            format!("{n} ({why})")
        })
        .collect();
    if !missing.is_empty() {
        eprintln!(
            "xtask: FAILED: required filesystem(s) not available: {}",
            missing.join(", ")
        );
        finish_cleanup(&mut tfs);
        return Err(EXIT_REQUIRE);
    }
    if let Some(f) = &session.ready_file {
        if let Err(e) = std::fs::write(f, tfs.root().as_os_str().as_encoded_bytes()) {
            eprintln!("xtask: cannot write {}: {e}", f.display());
        }
    }
    if session.panic_after_setup {
        panic!("deliberate panic after mounting (cleanup self-test)");
    }
    Ok(tfs)
}

/// Cleans up and reports problems; returns whether everything is gone.
pub(crate) fn finish_cleanup(tfs: &mut TestFs) -> bool {
    let problems = tfs.cleanup();
    if problems.is_empty() {
        eprintln!(
            "xtask: cleanup done: nothing mounted or attached is left, work directory removed"
        );
        true
    } else {
        for p in &problems {
            eprintln!("xtask: CLEANUP PROBLEM: {p}");
        }
        false
    }
}

fn has_nextest() -> bool {
    cargo()
        .args(["nextest", "--version"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn run_step(cmd: &mut Command) -> Option<ExitStatus> {
    eprintln!("xtask: running: {}", show(cmd));
    match signals::run_interruptible(cmd) {
        Ok(s) => Some(s),
        Err(e) => {
            eprintln!("xtask: cannot run `{}`: {e}", show(cmd));
            None
        }
    }
}

/// `cargo xtask test`: mount, run the workspace tests, report, clean up.
pub(crate) fn test(session: &Session, runner_args: &[OsString]) -> i32 {
    let mut tfs = match start(session) {
        Ok(t) => t,
        Err(code) => return code,
    };
    let nextest = has_nextest();
    let mut ok = true;
    let mut cmd = cargo();
    if nextest {
        cmd.args(["nextest", "run", "--workspace", "--no-fail-fast"]);
    } else {
        eprintln!("xtask: cargo-nextest not found; using `cargo test`");
        cmd.args(["test", "--workspace", "--no-fail-fast"]);
    }
    cmd.args(runner_args);
    tfs.apply_env(&mut cmd, &session.require);
    match run_step(&mut cmd) {
        Some(s) if s.success() => {}
        _ => ok = false,
    }
    let mut doc_note = None;
    if nextest && !signals::interrupted() {
        if runner_args.is_empty() {
            let mut doc = cargo();
            doc.args(["test", "--workspace", "--doc", "--no-fail-fast"]);
            tfs.apply_env(&mut doc, &session.require);
            match run_step(&mut doc) {
                Some(s) if s.success() => {}
                _ => ok = false,
            }
        } else {
            doc_note = Some("doctests not run (extra runner arguments were given)");
        }
    }
    let ledger = read_ledger(&tfs);
    let provided: Vec<&'static str> = tfs.provided().iter().map(|p| p.spec.name).collect();
    let skipped: Vec<(String, String)> = tfs
        .skipped()
        .iter()
        .map(|s| (s.spec.name.to_owned(), s.reason.clone()))
        .collect();
    let clean = finish_cleanup(&mut tfs);

    // The summary comes last so a log's tail shows it.
    eprintln!("xtask: ---- summary ----");
    if let Some(n) = doc_note {
        eprintln!("xtask: {n}");
    }
    let counts: Vec<String> = ledger_names(&ledger, &provided)
        .into_iter()
        .map(|fs| format!("{fs} {}", ledger.get(&fs).map_or(0, BTreeSet::len)))
        .collect();
    if counts.is_empty() {
        eprintln!("xtask: ran on real filesystems: none");
    } else {
        eprintln!("xtask: ran on real filesystems: {}", counts.join(", "));
    }
    for (name, reason) in ignored_tests() {
        eprintln!(
            "xtask: skipped by design (#[ignore]; the runner counts it as skipped): {name}: {reason}"
        );
    }
    if skipped.is_empty() {
        eprintln!("xtask: skipped filesystems: none");
    } else {
        let s: Vec<String> = skipped.iter().map(|(n, r)| format!("{n} ({r})")).collect();
        eprintln!("xtask: skipped filesystems: {}", s.join("; "));
    }
    let idle: Vec<&str> = provided
        .iter()
        .copied()
        .filter(|n| REQUIRABLE.contains(n) && !ledger.contains_key(*n))
        .collect();
    if !idle.is_empty() {
        eprintln!(
            "xtask: mounted but no test ran on: {} (no test asks for it, or every test skipped it)",
            idle.join(", ")
        );
    }
    let mut code = 0;
    let unexercised: Vec<&String> = session
        .require
        .iter()
        .filter(|n| !ledger.contains_key(n.as_str()))
        .collect();
    if !unexercised.is_empty() && !signals::interrupted() {
        eprintln!(
            "xtask: FAILED: required filesystem(s) on which no test ran: {}",
            unexercised
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
        code = EXIT_REQUIRE;
    }
    if !clean {
        eprintln!("xtask: FAILED: cleanup left something behind (see above)");
        code = code.max(1);
    }
    if signals::interrupted() {
        eprintln!("xtask: interrupted");
        return EXIT_INTERRUPTED;
    }
    if !ok {
        eprintln!("xtask: FAILED: the test run failed (see the runner's output above)");
        return 1;
    }
    if code == 0 {
        eprintln!("xtask: ok");
    }
    code
}

/// `cargo xtask with-mounts -- CMD...`: run any command with the test
/// filesystems mounted and exported, then clean up. Returns its exit code.
pub(crate) fn with_mounts(session: &Session, command: &[OsString]) -> i32 {
    let Some((prog, args)) = command.split_first() else {
        eprintln!("xtask: with-mounts needs a command after `--`");
        return 1;
    };
    let mut tfs = match start(session) {
        Ok(t) => t,
        Err(code) => return code,
    };
    let mut cmd = Command::new(prog);
    cmd.args(args);
    tfs.apply_env(&mut cmd, &session.require);
    let status = run_step(&mut cmd);
    let clean = finish_cleanup(&mut tfs);
    if signals::interrupted() {
        eprintln!("xtask: interrupted");
        return EXIT_INTERRUPTED;
    }
    let code = match status {
        Some(s) => s.code().unwrap_or(1),
        None => 127,
    };
    if !clean {
        return code.max(1);
    }
    code
}

/// Distinct test names per filesystem, from the ledger.
pub(crate) type Ledger = BTreeMap<String, BTreeSet<String>>;

/// Ledger lines `fs test`, as distinct test names per filesystem.
pub(crate) fn read_ledger(tfs: &TestFs) -> Ledger {
    let mut map: Ledger = BTreeMap::new();
    let Ok(text) = std::fs::read_to_string(tfs.ledger()) else {
        return map;
    };
    for line in text.lines() {
        if let Some((fs, test)) = line.split_once(' ') {
            map.entry(fs.to_owned())
                .or_default()
                .insert(test.trim().to_owned());
        }
    }
    map
}

/// Filesystems to report: the known ones that were mounted or appear in the
/// ledger, in the fixed order, then any other name from the ledger.
fn ledger_names(
    ledger: &BTreeMap<String, BTreeSet<String>>,
    provided: &[&'static str],
) -> Vec<String> {
    let mut names: Vec<String> = mounts::SPECS
        .iter()
        .map(|s| s.name)
        .filter(|n| ledger.contains_key(*n) || (provided.contains(n) && REQUIRABLE.contains(n)))
        .map(str::to_owned)
        .collect();
    for k in ledger.keys() {
        if !names.contains(k) {
            names.push(k.clone());
        }
    }
    names
}

/// The workspace's `#[ignore = "REASON"]` tests, as (function name, reason),
/// read from the sources under `crates/`: the runner counts them as
/// skipped, and the summary says why.
fn ignored_tests() -> Vec<(String, String)> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../crates");
    let mut found = Vec::new();
    let mut dirs = vec![root];
    while let Some(dir) = dirs.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in entries.flatten() {
            let path = e.path();
            if path.is_dir() {
                if e.file_name() != "target" {
                    dirs.push(path);
                }
            } else if path.extension().is_some_and(|x| x == "rs") {
                let Ok(text) = std::fs::read_to_string(&path) else {
                    continue;
                };
                let mut reason: Option<String> = None;
                for line in text.lines().map(str::trim) {
                    if let Some(r) = line
                        .strip_prefix("#[ignore = \"")
                        .and_then(|r| r.strip_suffix("\"]"))
                    {
                        reason = Some(r.to_owned());
                    } else if let (Some(r), Some(rest)) = (&reason, line.strip_prefix("fn ")) {
                        let name = rest.split('(').next().unwrap_or(rest);
                        found.push((name.to_owned(), r.clone()));
                        reason = None;
                    }
                }
            }
        }
    }
    found.sort();
    found
}
