//! `cargo xtask crash`: power cuts on real filesystems (docs/architecture.md
//! invariant 9).
//!
//! For each filesystem (XFS with reflink and ext4 loop images; btrfs is
//! probed and refuses FS_IOC_SHUTDOWN) and each case, a copy is started and
//! the filesystem is shut down without a log flush (`xfs_io -x -c
//! shutdown`, FS_IOC_SHUTDOWN: what reached the device stays, the rest is
//! lost) at a random moment during the copy or right after it returned,
//! half the time just after another file's `fsync` forced a log commit.
//! Then it is mounted again (the journal replays) and every destination is
//! classified: wholly old, wholly new, torn, or missing. Temporaries that
//! `cow clean` would not find, files reported by an `--fsync` copy that are
//! not new, and errors that do not name the failing call and path are
//! failures too.

mod cases;
mod image;

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use cases::{Case, Who};
use image::{Fs, Image};

const USAGE: &str = "\
usage: cargo xtask crash [--quick | --cuts N] [--fs xfs,ext4] [--filter SUBSTR]
                         [--compare] [--seed N] [--release]
  --quick     20 cuts per case per filesystem, small files (CI)
  --cuts N    cuts per case (default 500: the long form)
  --compare   also cut GNU cp, cp + mv and rsync (for docs/reliability.md)
  --filter    only cases whose name contains SUBSTR (A|B: either)";

struct Args {
    cuts: usize,
    long: bool,
    fs: Vec<Fs>,
    filter: Option<String>,
    compare: bool,
    seed: u64,
    release: bool,
}

fn parse(args: Vec<OsString>) -> Result<Args, String> {
    let mut a = Args {
        cuts: 500,
        long: true,
        fs: vec![Fs::Xfs, Fs::Ext4],
        filter: None,
        compare: false,
        seed: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64 | 1),
        release: false,
    };
    let mut it = args.into_iter();
    while let Some(arg) = it.next() {
        let arg = arg
            .into_string()
            .map_err(|a| format!("bad argument {a:?}"))?;
        let mut value = || {
            it.next()
                .and_then(|v| v.into_string().ok())
                .ok_or(format!("{arg} needs a value"))
        };
        match arg.as_str() {
            "--quick" => {
                a.cuts = 20;
                a.long = false;
            }
            "--cuts" => a.cuts = value()?.parse().map_err(|e| format!("--cuts: {e}"))?,
            "--fs" => {
                a.fs = value()?
                    .split(',')
                    .map(|s| Fs::parse(s).ok_or(format!("unknown filesystem {s:?}")))
                    .collect::<Result<_, _>>()?
            }
            "--filter" => a.filter = Some(value()?),
            "--compare" => a.compare = true,
            "--seed" => a.seed = value()?.parse().map_err(|e| format!("--seed: {e}"))?,
            "--release" => a.release = true,
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(a)
}

/// What the cuts of one case found.
#[derive(Default, Clone, Debug)]
struct Counts {
    cuts: usize,
    old: usize,
    new: usize,
    torn: usize,
    missing: usize,
    /// Temporaries `cow clean` finds (`.NAME.cow-tmp-XXXXXX`).
    temps: usize,
    /// Other files nobody asked for.
    strays: usize,
    /// With a durable copy that returned: files not new.
    lost: usize,
    /// A source the copy changed.
    damaged_sources: usize,
    /// Failed copies whose message names the call and the path (EIO).
    clean_errors: usize,
    /// Failed copies with any other message (or a crash).
    bad_errors: Vec<String>,
    /// How long one copy takes (calibration).
    copy_ms: f64,
}

impl Counts {
    fn ok(&self) -> bool {
        self.torn == 0
            && self.missing == 0
            && self.strays == 0
            && self.lost == 0
            && self.damaged_sources == 0
            && self.bad_errors.is_empty()
    }
}

/// The rows of one filesystem, or why it could not run.
type FsResult = Result<Vec<(Case, Counts)>, String>;

/// Runs the harness.
pub(crate) fn crash(args: Vec<OsString>) -> Result<i32, String> {
    let args = match parse(args) {
        Ok(a) => a,
        Err(e) if e.is_empty() => {
            println!("{USAGE}");
            return Ok(0);
        }
        Err(e) => return Err(format!("{e}\n{USAGE}")),
    };
    if !rustix::process::geteuid().is_root() {
        return Err("crash needs root (loop devices and mounts)".into());
    }
    for t in ["xfs_io", "losetup", "mount", "umount"] {
        if crate::util::find_tool(t).is_none() {
            return Err(format!("{t} not found (install xfsprogs / util-linux)"));
        }
    }
    crate::signals::install();
    let built = build_cow(args.release)?;
    let work = std::env::temp_dir().join(format!("cow-crash.{}", std::process::id()));
    std::fs::create_dir_all(&work).map_err(|e| format!("cannot create {}: {e}", work.display()))?;
    // A copy of the binary: a rebuild during a long run does not change it.
    let cow = work.join("cow");
    std::fs::copy(&built, &cow).map_err(|e| format!("cannot copy {}: {e}", built.display()))?;
    let started = Instant::now();
    println!(
        "xtask crash: {} cuts per case, seed {}, {}",
        args.cuts,
        args.seed,
        if args.long { "long form" } else { "quick form" }
    );
    btrfs_probe(&work);
    let results: Vec<(Fs, FsResult)> = std::thread::scope(|s| {
        let handles: Vec<_> = args
            .fs
            .iter()
            .enumerate()
            .map(|(i, &fs)| {
                let (work, cow, args) = (&work, &cow, &args);
                s.spawn(move || {
                    (
                        fs,
                        run_fs(fs, work, cow, args, args.seed.wrapping_add(i as u64 * 7919)),
                    )
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| (Fs::Xfs, Err("a worker panicked".into())))
            })
            .collect()
    });
    let _ = std::fs::remove_file(&cow);
    let _ = std::fs::remove_dir(&work);
    let mut ok = true;
    println!();
    println!(
        "| fs | case | cuts | old | new | torn | missing | temps (cow clean) | other leftovers | lost after --fsync | clean EIO errors | copy ms |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|");
    for (fs, r) in &results {
        match r {
            Err(e) => {
                ok = false;
                println!("| {} | (setup failed: {e}) |||||||||||", fs.name());
            }
            Ok(rows) => {
                for (case, c) in rows {
                    let mark = if case.who == Who::Cow {
                        ""
                    } else {
                        " (comparison)"
                    };
                    println!(
                        "| {} | {}{mark} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {:.0} |",
                        fs.name(),
                        case.name,
                        c.cuts,
                        c.old,
                        c.new,
                        c.torn + c.damaged_sources,
                        c.missing,
                        c.temps,
                        c.strays,
                        c.lost,
                        c.clean_errors,
                        c.copy_ms
                    );
                    if case.who == Who::Cow && !c.ok() {
                        ok = false;
                    }
                    for e in c.bad_errors.iter().take(3) {
                        println!("|   | unexpected error: {e} |||||||||||");
                    }
                }
            }
        }
    }
    if crate::signals::interrupted() {
        println!("xtask crash: interrupted: the counts above are partial");
        ok = false;
    }
    println!();
    println!(
        "xtask crash: {} in {:.0} s",
        if ok {
            "every cow case was old-or-new after every cut"
        } else {
            "FAILED"
        },
        started.elapsed().as_secs_f64()
    );
    Ok(if ok { 0 } else { 1 })
}

/// Builds `cow` and returns its path.
fn build_cow(release: bool) -> Result<PathBuf, String> {
    let mut cmd = crate::util::cargo();
    cmd.args(["build", "-q", "-p", "cow-cp", "--bin", "cow"]);
    if release {
        cmd.arg("--release");
    }
    let st = cmd.status().map_err(|e| format!("cannot run cargo: {e}"))?;
    if !st.success() {
        return Err("cargo build -p cow-cp failed".into());
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"));
    let bin = target
        .join(if release { "release" } else { "debug" })
        .join("cow");
    if bin.is_file() {
        Ok(bin)
    } else {
        Err(format!("{} was not built", bin.display()))
    }
}

/// Says whether btrfs accepts FS_IOC_SHUTDOWN here.
fn btrfs_probe(work: &Path) {
    match Image::create(work, Fs::Btrfs) {
        Ok(img) => match img.shutdown() {
            Ok(()) => println!(
                "xtask crash: btrfs accepted FS_IOC_SHUTDOWN (not cut yet: add it with --fs)"
            ),
            Err(e) => println!("xtask crash: btrfs refuses FS_IOC_SHUTDOWN, so it is not cut: {e}"),
        },
        Err(e) => println!("xtask crash: btrfs not probed: {e}"),
    }
}

/// A small xorshift generator (the seed is printed, so runs repeat).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next() % n }
    }
}

fn run_fs(fs: Fs, work: &Path, cow: &Path, args: &Args, seed: u64) -> FsResult {
    let mut img = Image::create(work, fs)?;
    let mut rng = Rng(seed | 1);
    let mut rows = Vec::new();
    for case in cases::all(fs, args.long, args.compare) {
        if args
            .filter
            .as_ref()
            .is_some_and(|f| !f.split('|').any(|alt| case.name.contains(alt)))
        {
            continue;
        }
        if crate::signals::interrupted() {
            break;
        }
        // A case that cannot run is a failed row; the others still run.
        let counts =
            run_case(&mut img, &case, cow, args.cuts, &mut rng).unwrap_or_else(|e| Counts {
                bad_errors: vec![e],
                ..Counts::default()
            });
        eprintln!(
            "xtask crash: {} {}: {} cuts, {} torn, {} missing",
            fs.name(),
            case.name,
            counts.cuts,
            counts.torn,
            counts.missing
        );
        rows.push((case, counts));
    }
    Ok(rows)
}

fn command(case: &Case, cow: &Path, dir: &Path) -> Command {
    let mut cmd = if case.argv[0] == "cow" {
        Command::new(cow)
    } else {
        Command::new(case.argv[0])
    };
    cmd.args(&case.argv[1..])
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    cmd
}

/// Empties `dir`, writes the case's files and makes them durable.
fn prepare(case: &Case, dir: &Path) -> Result<cases::Prepared, String> {
    if dir.exists() {
        std::fs::remove_dir_all(dir).map_err(|e| format!("cannot empty {}: {e}", dir.display()))?;
    }
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let p = case.layout.prepare(dir)?;
    let d = std::fs::File::open(dir).map_err(|e| format!("cannot open {}: {e}", dir.display()))?;
    rustix::fs::syncfs(&d).map_err(|e| format!("syncfs {}: {e}", dir.display()))?;
    Ok(p)
}

fn run_case(
    img: &mut Image,
    case: &Case,
    cow: &Path,
    cuts: usize,
    rng: &mut Rng,
) -> Result<Counts, String> {
    let dir = img.mnt().join("case");
    let mut counts = Counts::default();
    // Calibration: one uncut run, which must produce the new files.
    let p = prepare(case, &dir)?;
    let t = Instant::now();
    let out = command(case, cow, &dir)
        .output()
        .map_err(|e| format!("cannot run {:?}: {e}", case.argv))?;
    counts.copy_ms = t.elapsed().as_secs_f64() * 1e3;
    if !out.status.success() {
        return Err(format!(
            "{}: the uncut run failed: {}",
            case.name,
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    for tg in &p.targets {
        if std::fs::read(&tg.path).ok().as_ref() != Some(&tg.new) {
            return Err(format!(
                "{}: the uncut run did not copy {}",
                case.name,
                tg.path.display()
            ));
        }
    }
    let window_us = (counts.copy_ms * 1000.0 * 1.2) as u64 + 1;
    for n in 0..cuts {
        // Interrupted: report the cuts made so far.
        if crate::signals::interrupted() {
            break;
        }
        if n > 0 && n % 100 == 0 {
            eprintln!("xtask crash: {}: {n} cuts", case.name);
        }
        let p = prepare(case, &dir)?;
        let after = rng.below(4) == 0;
        let force_log = rng.below(2) == 0;
        let mut child = command(case, cow, &dir)
            .spawn()
            .map_err(|e| format!("cannot run {:?}: {e}", case.argv))?;
        if after {
            let _ = child.wait();
        } else {
            std::thread::sleep(Duration::from_micros(rng.below(window_us)));
        }
        if force_log {
            force_log_commit(img.mnt());
        }
        // Whether the copy had returned successfully before the cut.
        let returned_ok = matches!(child.try_wait(), Ok(Some(st)) if st.success());
        img.shutdown()?;
        let (status, stderr) = finish(&mut child);
        img.remount()?;
        counts.cuts += 1;
        check(&p, &dir, case, returned_ok, &mut counts);
        if !returned_ok && !status_ok(&status) {
            classify_error(&stderr, &status, &mut counts);
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(counts)
}

fn status_ok(st: &Option<std::process::ExitStatus>) -> bool {
    st.is_some_and(|s| s.success())
}

/// Waits for the cut copy (it fails with EIO soon); kills it after 20 s.
fn finish(child: &mut Child) -> (Option<std::process::ExitStatus>, String) {
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        match child.try_wait() {
            Ok(Some(st)) => break Some(st),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(2)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
        }
    };
    let mut err = String::new();
    if let Some(mut e) = child.stderr.take() {
        use std::io::Read;
        let _ = e.read_to_string(&mut err);
    }
    (status, err)
}

/// Another file's fsync: commits the journal with whatever the copy has
/// logged so far (a rename, say) while its data may still be in memory.
fn force_log_commit(mnt: &Path) {
    use std::io::Write;
    if let Ok(mut f) = std::fs::File::create(mnt.join("force-log")) {
        let _ = f.write_all(&[1; 4096]);
        let _ = f.sync_all();
    }
}

/// A copy that failed because of the cut must say which call failed on
/// which path, with the errno a shut-down filesystem gives (EIO; ext4
/// answers some calls, `fsync` among them, with EROFS once its journal is
/// aborted).
fn classify_error(stderr: &str, status: &Option<std::process::ExitStatus>, counts: &mut Counts) {
    let first = stderr.lines().next().unwrap_or("").to_string();
    let names_path = ["src", "dst", "a", "b"].iter().any(|n| stderr.contains(n));
    match status {
        Some(st)
            if st.code() == Some(1)
                && (stderr.contains("Input/output error")
                    || stderr.contains("Read-only file system"))
                && names_path =>
        {
            counts.clean_errors += 1
        }
        // Killed by the cut before it could write anything: no message.
        Some(st) if st.code() == Some(1) && stderr.is_empty() => counts.clean_errors += 1,
        _ => counts.bad_errors.push(format!("{status:?}: {first}")),
    }
}

fn check(p: &cases::Prepared, dir: &Path, case: &Case, returned_ok: bool, counts: &mut Counts) {
    for t in &p.targets {
        match std::fs::read(&t.path) {
            Ok(data) if data == t.new => counts.new += 1,
            Ok(data) if data == t.old => {
                counts.old += 1;
                if case.durable && returned_ok {
                    counts.lost += 1;
                }
            }
            Ok(_) => counts.torn += 1,
            Err(_) => counts.missing += 1,
        }
    }
    for s in &p.sources {
        if std::fs::read(&s.path).ok().as_ref() != Some(&s.new) {
            counts.damaged_sources += 1;
        }
    }
    leftovers(dir, &p.names, counts);
}

/// Counts (and removes) files the case did not make.
fn leftovers(dir: &Path, names: &[PathBuf], counts: &mut Counts) {
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let path = e.path();
            if names.contains(&path) {
                if path.is_dir() {
                    stack.push(path);
                }
                continue;
            }
            if cow_copy::leftovers::is_temporary_name(&e.file_name()) {
                counts.temps += 1;
            } else {
                counts.strays += 1;
            }
        }
    }
}
