//! The fault matrix: every system-call site of the engine x its first calls
//! x a set of errnos, on each real filesystem, for a few source shapes and
//! option sets. Each case must end in either a byte-exact copy whose report
//! tells what happened, or a clean error naming the path and the operation,
//! with an existing destination intact (`atomic`, or not yet truncated) and
//! no temporary left. Short reads, writes and `copy_file_range` returns must
//! still give byte-exact copies.
//!
//! Needs the `fault-injection` feature, which the crate's dev-dependency on
//! itself turns on for every test build.

#![cfg(target_os = "linux")]

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::path::Path;
use std::time::Instant;

use cow_copy::fault::{self, Action, Fault, Site};
use cow_copy::{CopyError, CopyOptions, CopyReport, Overwrite, Preserve, Reflink, Strategy};
use cow_test_support::{Fs, fs_test, names_in, write_pattern, write_sparse};
use rustix::io::Errno;

/// The errnos every site is failed with.
fn errnos() -> [(Errno, &'static str); 8] {
    [
        (Errno::INTR, "EINTR"),
        (Errno::AGAIN, "EAGAIN"),
        (Errno::XDEV, "EXDEV"),
        (Errno::OPNOTSUPP, "EOPNOTSUPP"),
        (Errno::INVAL, "EINVAL"),
        (Errno::PERM, "EPERM"),
        (Errno::IO, "EIO"),
        (Errno::NOSPC, "ENOSPC"),
    ]
}

/// Errnos after which the chain may move on to the next strategy
/// (docs/architecture.md), among those injected.
fn is_fallback(e: Errno) -> bool {
    matches!(
        e,
        Errno::XDEV | Errno::OPNOTSUPP | Errno::INVAL | Errno::PERM
    )
}

/// Source shapes: (name, length, content writer).
type Shape = (&'static str, fn(&Path) -> Vec<u8>);

fn shapes() -> [Shape; 3] {
    [
        ("dense-small", |p| write_pattern(p, 5000, 1)),
        ("dense-2mib", |p| write_pattern(p, (2 << 20) + 4097, 2)),
        ("sparse", |p| {
            write_sparse(p, 3 << 20, &[(0, 65536), (1 << 20, 70_000)], 3)
        }),
    ]
}

/// What is at the destination before the copy.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Before {
    Nothing,
    /// A longer file with other content.
    Different,
    /// A separate file with the source's content (the update policy finds
    /// it identical).
    Identical,
}

/// Option sets: (name, options, the destination before the copy).
type Variant = (&'static str, fn() -> CopyOptions, Before);

fn variants() -> [Variant; 5] {
    [
        ("default-new", CopyOptions::new, Before::Nothing),
        ("default-existing", CopyOptions::new, Before::Different),
        (
            "atomic-fsync-preserve-all",
            || {
                CopyOptions::new()
                    .atomic(true)
                    .fsync(true)
                    .preserve(Preserve::all())
            },
            Before::Different,
        ),
        (
            "reflink-never",
            || CopyOptions::new().reflink(Reflink::Never),
            Before::Different,
        ),
        (
            "update-identical-dedupe",
            || CopyOptions::new().overwrite(Overwrite::IfDifferentDedupe),
            Before::Identical,
        ),
    ]
}

/// Call indices to fail at a site that made `n` calls: the first three
/// and the last.
fn indices(n: u64) -> Vec<u64> {
    let mut v: Vec<u64> = (1..=n.min(3)).collect();
    if n > 3 {
        v.push(n);
    }
    v
}

/// The tally of one filesystem's run.
#[derive(Default)]
struct Tally {
    cases: u64,
    passed: u64,
    /// Faults that fired, per site.
    fired: BTreeMap<Site, u64>,
    /// Cases that ended in success / in a clean error.
    succeeded: u64,
    failed_cleanly: u64,
    violations: Vec<String>,
}

struct Case<'a> {
    fs: Fs,
    dir: &'a Path,
    shape: &'a str,
    content: &'a [u8],
    variant: &'a str,
    opts: CopyOptions,
    existing: Option<&'a [u8]>,
}

impl Case<'_> {
    fn label(&self, what: &str) -> String {
        format!("{} {} {} {what}", self.fs, self.shape, self.variant)
    }

    /// Puts the destination in its starting state.
    fn reset(&self) {
        let dst = self.dir.join("dst");
        match self.existing {
            Some(old) => fs::write(&dst, old).unwrap(),
            None => {
                let _ = fs::remove_file(&dst);
            }
        }
    }

    fn run(&self, plan: Vec<Fault>) -> (Result<CopyReport, CopyError>, Vec<(Site, u64)>) {
        self.reset();
        fault::arm(plan);
        let r = self.opts.copy(self.dir.join("src"), self.dir.join("dst"));
        let fired = fault::fired();
        fault::disarm();
        (r, fired)
    }

    /// Checks what every case must satisfy; returns the problems.
    fn check_common(&self, r: &Result<CopyReport, CopyError>) -> Vec<String> {
        let mut bad = Vec::new();
        let dst = self.dir.join("dst");
        let names = names_in(self.dir);
        for n in &names {
            if n != "src" && n != "dst" {
                bad.push(format!("left behind {n:?}"));
            }
        }
        match r {
            Ok(rep) => {
                match fs::read(&dst) {
                    Ok(b) if b == self.content => {}
                    Ok(b) => bad.push(format!(
                        "copy succeeded but the bytes differ ({} vs {} bytes)",
                        b.len(),
                        self.content.len()
                    )),
                    Err(e) => bad.push(format!("copy succeeded but dst unreadable: {e}")),
                }
                if rep.len != self.content.len() as u64 {
                    bad.push(format!("report len {} != {}", rep.len, self.content.len()));
                }
                if rep.strategy != Strategy::Skipped
                    && rep.bytes_cloned + rep.bytes_copied + rep.hole_bytes != rep.len
                {
                    bad.push(format!("report counts do not add up: {rep:?}"));
                }
                if rep.size_changed {
                    bad.push("report says the size changed".into());
                }
            }
            Err(e) => {
                let msg = e.to_string();
                if !msg.contains("dst") && !msg.contains("src") {
                    bad.push(format!("error names no path: {msg}"));
                }
                let now = fs::read(&dst).ok();
                match (self.existing, self.opts.is_atomic()) {
                    (None, _) => {
                        if now.is_some() {
                            bad.push(format!("failed copy left a new destination: {msg}"));
                        }
                    }
                    (Some(old), true) => {
                        // Old or new, never a mix; new only when the failure
                        // came after the rename (the directory fsync), which
                        // cannot be undone and which the error names.
                        let after_rename = matches!(
                            e,
                            CopyError::Io { op, .. } if op.contains("fsync the directory")
                        );
                        let ok = now.as_deref() == Some(old)
                            || (after_rename && now.as_deref() == Some(self.content));
                        if !ok {
                            bad.push(format!("atomic failure changed the destination: {msg}"));
                        }
                    }
                    (Some(old), false) => {
                        let incomplete = matches!(e, CopyError::Incomplete { .. });
                        if !incomplete && now.as_deref() != Some(old) {
                            bad.push(format!(
                                "destination changed but the error does not say it is incomplete: {msg}"
                            ));
                        }
                        if incomplete && !msg.contains("incomplete") {
                            bad.push(format!("incomplete error does not say so: {msg}"));
                        }
                        // An incomplete destination is a true prefix of the
                        // source, exactly as long as the error says.
                        if let (CopyError::Incomplete { written, .. }, Some(now)) = (e, &now) {
                            if *written != now.len() as u64
                                || now.len() > self.content.len()
                                || now[..] != self.content[..now.len()]
                            {
                                bad.push(format!(
                                    "incomplete destination ({} bytes) is not the source's first {written} bytes: {msg}",
                                    now.len()
                                ));
                            }
                        }
                    }
                }
            }
        }
        bad
    }
}

/// Whether success is acceptable after `errno` was injected at call `nth`
/// of `site` (the fault was absorbed), and the report says so.
fn absorbed_ok(
    site: Site,
    errno: Errno,
    nth: u64,
    update: bool,
    rep: &CopyReport,
) -> Result<(), String> {
    if errno == Errno::INTR {
        return Ok(());
    }
    let said = |s: Strategy| rep.fallbacks.iter().any(|f| f.strategy == s);
    let fallback_named = |s: Strategy| {
        rep.fallbacks
            .iter()
            .any(|f| f.strategy == s && f.errno == Some(errno.raw_os_error()))
    };
    match site {
        // Best effort: reading back what a clone shared, removing a
        // temporary on a failure path.
        Site::Fiemap | Site::Unlink => Ok(()),
        // No xattr support where the source lives: it has none to copy.
        Site::Xattr if nth == 1 && errno == Errno::OPNOTSUPP => Ok(()),
        // Metadata that may be skipped, and must then be reported.
        Site::Xattr | Site::Fchown => {
            if rep.metadata_skipped.is_empty() {
                Err(format!(
                    "{site:?} failed but metadata_skipped is empty: {rep:?}"
                ))
            } else {
                Ok(())
            }
        }
        Site::IoctlClone if is_fallback(errno) => {
            if fallback_named(Strategy::Cloned) {
                Ok(())
            } else {
                Err(format!(
                    "clone fell back but the report does not say so: {rep:?}"
                ))
            }
        }
        Site::CopyFileRange if is_fallback(errno) && nth == 1 => {
            if fallback_named(Strategy::KernelCopy) {
                Ok(())
            } else {
                Err(format!(
                    "copy_file_range fell back but the report does not say so: {rep:?}"
                ))
            }
        }
        // The update policy could not compare (a read of either file was
        // refused): the copy ran instead, and the report says why.
        Site::Read if update && is_fallback(errno) => {
            if said(Strategy::Skipped) {
                Ok(())
            } else {
                Err(format!("the comparison failed silently: {rep:?}"))
            }
        }
        // The kernel refused to dedupe (for any reason: dedupe writes no
        // data, the file is identical either way): it is only skipped, and
        // the report says dedupe was not possible.
        Site::IoctlDedupe => {
            if said(Strategy::Deduped) && rep.strategy == Strategy::Skipped {
                Ok(())
            } else {
                Err(format!("a refused dedupe is not reported: {rep:?}"))
            }
        }
        // No SEEK_HOLE / SEEK_DATA support at the first look (a single
        // SEEK_HOLE from 0, then SEEK_DATA when the file has holes): the
        // whole file is data.
        Site::SeekData | Site::SeekHole
            if nth == 1 && matches!(errno, Errno::INVAL | Errno::OPNOTSUPP) =>
        {
            Ok(())
        }
        _ => Err(format!(
            "{site:?} call {nth} failed with {errno:?} but the copy succeeded \
             (fatal, or after data was written): {rep:?}"
        )),
    }
}

fn matrix(fs: Fs, dir: &Path) {
    let start = Instant::now();
    let mut tally = Tally::default();
    let mut counts_log = String::new();
    for (shape, make) in shapes() {
        let content = make(&dir.join("src"));
        for (variant, opts, existing) in variants() {
            let old = match existing {
                Before::Nothing => None,
                Before::Different => Some(cow_test_support::pattern(content.len() + 9000, 99)),
                Before::Identical => Some(content.clone()),
            };
            let case = Case {
                fs,
                dir,
                shape,
                content: &content,
                variant,
                opts: opts(),
                existing: old.as_deref(),
            };
            // The clean run: it must succeed, and tells how many calls
            // each site makes.
            case.reset();
            fault::arm(Vec::new());
            let r = case.opts.copy(dir.join("src"), dir.join("dst"));
            let calls = fault::calls();
            fault::disarm();
            let bad = case.check_common(&r);
            assert!(
                r.is_ok() && bad.is_empty(),
                "{}: {r:?} {bad:?}",
                case.label("clean run")
            );
            let _ = writeln!(
                counts_log,
                "{fs} {shape} {variant} ({}): {calls:?}",
                r.as_ref().map(|r| r.strategy.name()).unwrap_or("?")
            );

            for (&site, &n) in &calls {
                for nth in indices(n) {
                    for (errno, ename) in errnos() {
                        tally.cases += 1;
                        let (r, fired) =
                            case.run(vec![Fault::fail(site, nth, errno.raw_os_error())]);
                        let what = format!("{site:?}#{nth} {ename}");
                        let mut bad = case.check_common(&r);
                        let did_fire = !fired.is_empty();
                        if did_fire {
                            *tally.fired.entry(site).or_default() += 1;
                        }
                        match &r {
                            Ok(rep) => {
                                tally.succeeded += 1;
                                if did_fire {
                                    if let Err(why) = absorbed_ok(
                                        site,
                                        errno,
                                        nth,
                                        case.opts.overwrite_policy() != Overwrite::Replace,
                                        rep,
                                    ) {
                                        bad.push(why);
                                    }
                                }
                            }
                            Err(e) => {
                                tally.failed_cleanly += 1;
                                if !did_fire {
                                    bad.push(format!("failed without an injected fault: {e}"));
                                } else if errno == Errno::INTR {
                                    bad.push(format!(
                                        "an injected EINTR failed the copy instead of being restarted: {e}"
                                    ));
                                } else if e.raw_os_error() != Some(errno.raw_os_error()) {
                                    bad.push(format!(
                                        "error carries another errno than the injected {ename}: {e} ({e:?})"
                                    ));
                                }
                            }
                        }
                        if bad.is_empty() {
                            tally.passed += 1;
                        } else {
                            tally.violations.push(format!(
                                "{}: {}",
                                case.label(&what),
                                bad.join("; ")
                            ));
                        }
                    }
                }
            }

            // A failure whose cleanup fails too (the unlink of the new file
            // or of the temporary): whatever stays must be said or obvious.
            if case.existing.is_none() || case.opts.is_atomic() {
                let first_data = [Site::IoctlClone, Site::CopyFileRange, Site::Write]
                    .into_iter()
                    .find(|s| calls.contains_key(s));
                if let Some(site) = first_data {
                    tally.cases += 1;
                    let eio = Errno::IO.raw_os_error();
                    let (r, fired) = case.run(vec![
                        Fault::fail(site, 1, eio),
                        Fault::fail(Site::Unlink, 1, eio),
                    ]);
                    for (s, _) in &fired {
                        *tally.fired.entry(*s).or_default() += 1;
                    }
                    let mut bad = Vec::new();
                    let dst = dir.join("dst");
                    match &r {
                        Ok(rep) => bad.push(format!("succeeded after EIO: {rep:?}")),
                        Err(e) => {
                            let msg = e.to_string();
                            if e.raw_os_error() != Some(eio) {
                                bad.push(format!("not the first error: {msg}"));
                            }
                            if fired.len() != 2 {
                                bad.push(format!("the cleanup was not tried: {fired:?}"));
                            }
                            if let Some(old) = case.existing {
                                if fs::read(&dst).ok().as_deref() != Some(old) {
                                    bad.push("atomic failure changed the destination".into());
                                }
                            } else if dst.exists() && !matches!(e, CopyError::Incomplete { .. }) {
                                bad.push(format!(
                                    "a partial new destination stays and the error does not say so: {msg}"
                                ));
                            }
                        }
                    }
                    for n in names_in(dir) {
                        if n == "src" || n == "dst" {
                            continue;
                        }
                        if !(n.starts_with(".dst") && n.contains(cow_copy::TEMP_MARKER)) {
                            bad.push(format!("unrecognisable leftover {n:?}"));
                        }
                        let _ = fs::remove_file(dir.join(&n));
                    }
                    if bad.is_empty() {
                        tally.passed += 1;
                        tally.failed_cleanly += 1;
                    } else {
                        tally.violations.push(format!(
                            "{}: {}",
                            case.label(&format!("{site:?}#1 EIO + Unlink#1 EIO")),
                            bad.join("; ")
                        ));
                    }
                }
            }

            // Short I/O: every read, write and copy_file_range moves at most
            // K bytes; the copy must still be exact.
            if shape != "dense-small" {
                for site in [Site::Read, Site::Write, Site::CopyFileRange] {
                    if !calls.contains_key(&site) {
                        continue;
                    }
                    for k in [4095usize, 65_537] {
                        tally.cases += 1;
                        let (r, _) = case.run(vec![Fault {
                            site,
                            nth: 1,
                            action: Action::Short(k),
                        }]);
                        let mut bad = case.check_common(&r);
                        if let Err(e) = &r {
                            bad.push(format!("short I/O failed the copy: {e}"));
                        }
                        if bad.is_empty() {
                            tally.passed += 1;
                            tally.succeeded += 1;
                        } else {
                            tally.violations.push(format!(
                                "{}: {}",
                                case.label(&format!("{site:?} short {k}")),
                                bad.join("; ")
                            ));
                        }
                    }
                }
            }
        }
    }
    let _ = fs::remove_file(dir.join("dst"));
    let summary = format!(
        "fault matrix on {fs}: {} cases, {} passed, {} violations ({} copies succeeded, {} failed cleanly) in {:.1?}\n\
         faults fired per site: {:?}\n\
         calls per site in the clean runs:\n{counts_log}",
        tally.cases,
        tally.passed,
        tally.violations.len(),
        tally.succeeded,
        tally.failed_cleanly,
        start.elapsed(),
        tally.fired,
    );
    eprintln!("{summary}");
    let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("fault-matrix-{fs}.txt"));
    let _ = fs::write(
        &out,
        format!("{summary}\n{}\n", tally.violations.join("\n")),
    );
    assert!(
        tally.violations.is_empty(),
        "{} of {} fault cases on {fs} broke a guarantee (full list in {}):\n{}",
        tally.violations.len(),
        tally.cases,
        out.display(),
        tally
            .violations
            .iter()
            .take(40)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
}

fs_test!(fault_matrix, [btrfs, xfs, ext4, tmpfs], |dir, fs| {
    matrix(fs, dir);
});
