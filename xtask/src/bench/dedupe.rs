//! The `dedupe-tree` workload: a tree of real packages (two versions of
//! five big Python wheels, unpacked, plus an npm `node_modules`) written as
//! independent byte copies, then deduplicated by `cow` (the library's
//! `dedupe::DedupeOptions`), `fclones group | fclones dedupe` and
//! `duperemove -r -d`. Measured: the run's time, the space the tree uses
//! afterwards (statvfs after syncfs, as `df` sees it) and the time of a
//! second run over the deduplicated tree. Tools missing are installed:
//! fclones with `cargo install` under `target/cow-bench-tools`, duperemove
//! with apt-get.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use serde::Serialize;

use super::Args;
use super::measure::{self, Stats};
use super::report::{bytes_text, time_text};
use super::run::FsInfo;

/// The workload's name in tables and filters.
pub(crate) const NAME: &str = "dedupe-tree";

/// Wheels of two versions each (old, new).
const WHEELS: [(&str, &str, &str); 5] = [
    ("numpy", "2.1.2", "2.1.3"),
    ("pandas", "2.2.2", "2.2.3"),
    ("scipy", "1.14.0", "1.14.1"),
    ("matplotlib", "3.9.1", "3.9.2"),
    ("sympy", "1.13.2", "1.13.3"),
];

/// npm packages for the `node_modules` part.
const NPM: [&str; 2] = ["webpack@5.95.0", "eslint@8.57.1"];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
enum Tool {
    Cow,
    Fclones,
    Duperemove,
}

impl Tool {
    const ALL: [Tool; 3] = [Tool::Cow, Tool::Fclones, Tool::Duperemove];

    fn name(self) -> &'static str {
        match self {
            Tool::Cow => "cow",
            Tool::Fclones => "fclones",
            Tool::Duperemove => "duperemove",
        }
    }
}

/// One tool on one filesystem.
#[derive(Debug, Clone, Serialize)]
struct Cell {
    fs: String,
    tool: &'static str,
    first_s: Vec<f64>,
    /// The first run and the `syncfs` after it: until the space is freed
    /// on disk (btrfs frees shared-away extents when the transaction
    /// commits; cow flushes before it reports the space freed, the other
    /// tools leave it to the next sync).
    synced_s: Vec<f64>,
    rerun_s: Vec<f64>,
    /// cow only: the space freed its report gives, and the one measured
    /// here (used before the run minus used after it, both settled).
    freed_reported: Vec<i64>,
    freed_measured: Vec<i64>,
    /// Used space of the tree after the first run (median), bytes.
    space_after: Vec<u64>,
    first: Option<Stats>,
    rerun: Option<Stats>,
    error: Option<String>,
}

/// What was measured, for the JSON file.
#[derive(Debug, Serialize)]
struct Output {
    tree: String,
    files: u64,
    bytes: u64,
    real_packages: bool,
    notes: Vec<String>,
    cells: Vec<Cell>,
}

/// Whether `--filter` selects this workload.
pub(crate) fn wanted(args: &Args) -> bool {
    args.filter
        .as_deref()
        .is_none_or(|f| f.starts_with(NAME) || NAME.contains(f))
}

fn cache_dir() -> PathBuf {
    super::run::out_dir()
        .parent()
        .map_or_else(|| PathBuf::from("target"), Path::to_path_buf)
        .join("cow-bench-cache")
}

fn ok(cmd: &mut Command) -> io::Result<()> {
    let out = cmd.output()?;
    if out.status.success() {
        Ok(())
    } else {
        Err(io::Error::other(format!(
            "{}: {}",
            crate::util::show(cmd),
            String::from_utf8_lossy(&out.stderr).trim()
        )))
    }
}

/// Downloads the wheels (once) and unpacks them into `dst/sp-old` and
/// `dst/sp-new`.
fn wheels(cache: &Path, dst: &Path) -> io::Result<()> {
    for (side, pick) in [("old", 1), ("new", 2)] {
        let dir = cache.join("wheels").join(side);
        fs::create_dir_all(&dir)?;
        let have = fs::read_dir(&dir)?.flatten().count();
        if have < WHEELS.len() {
            let mut cmd = Command::new("python3");
            cmd.args(["-m", "pip", "download", "--no-deps", "--only-binary=:all:"])
                .args(["--python-version", "3.11"])
                .args(["--platform", "manylinux2014_x86_64"])
                .args(["--platform", "manylinux_2_17_x86_64"])
                .arg("-d")
                .arg(&dir);
            for w in WHEELS {
                cmd.arg(format!("{}=={}", w.0, if pick == 1 { w.1 } else { w.2 }));
            }
            ok(&mut cmd)?;
        }
        let out = dst.join(format!("sp-{side}"));
        fs::create_dir_all(&out)?;
        for whl in fs::read_dir(&dir)?.flatten() {
            ok(Command::new("python3")
                .args(["-m", "zipfile", "-e"])
                .arg(whl.path())
                .arg(&out))?;
        }
    }
    Ok(())
}

/// Installs the npm packages (once) and copies `node_modules` into `dst`.
fn node_modules(cache: &Path, dst: &Path) -> io::Result<()> {
    let dir = cache.join("npm");
    if !dir.join("node_modules").is_dir() {
        fs::create_dir_all(&dir)?;
        ok(Command::new("npm")
            .args([
                "install",
                "--no-audit",
                "--no-fund",
                "--ignore-scripts",
                "--prefix",
            ])
            .arg(&dir)
            .args(NPM))?;
    }
    ok(Command::new("cp")
        .arg("-a")
        .arg(dir.join("node_modules"))
        .arg(dst))
}

/// A synthetic stand-in: two copies of 3,000 files of 1-64 KiB, nine in ten
/// identical between the copies.
fn synthetic(dst: &Path) -> io::Result<()> {
    for side in ["one", "two"] {
        for i in 0..3000u64 {
            let d = dst.join(side).join(format!("d{:02}", i / 100));
            fs::create_dir_all(&d)?;
            let seed = if side == "two" && i % 10 == 0 {
                i + 1_000_000
            } else {
                i
            };
            let len = 1024 + (seed * 7919) % (63 * 1024);
            let data: Vec<u8> = (0..len)
                .map(|k| (k.wrapping_mul(31).wrapping_add(seed * 131) % 251) as u8)
                .collect();
            fs::write(d.join(format!("f{i}")), data)?;
        }
    }
    Ok(())
}

/// The source tree (built once in the cache), whether it is the real one,
/// and notes on what it holds.
fn source(quick: bool) -> (PathBuf, bool, Vec<String>) {
    let cache = cache_dir();
    let mut notes = Vec::new();
    let real = cache.join("dedupe-tree");
    let done = cache.join("dedupe-tree.done");
    if !quick {
        if done.exists() {
            return (
                real,
                true,
                vec![fs::read_to_string(&done).unwrap_or_default()],
            );
        }
        let _ = measure::remove(&real);
        let built = fs::create_dir_all(&real).and_then(|()| wheels(&cache, &real));
        match built {
            Ok(()) => {
                let mut what = String::from(
                    "two versions each of numpy, pandas, scipy, matplotlib, sympy wheels (pip download, unpacked)",
                );
                match node_modules(&cache, &real) {
                    Ok(()) => {
                        what.push_str(&format!(" + node_modules of npm install {}", NPM.join(" ")))
                    }
                    Err(e) => what.push_str(&format!(" (no node_modules: {e})")),
                }
                let _ = fs::write(&done, &what);
                return (real, true, vec![what]);
            }
            Err(e) => notes.push(format!(
                "real packages unavailable ({e}): SYNTHETIC fallback tree"
            )),
        }
    }
    let syn = cache.join("dedupe-synthetic");
    if !syn.is_dir() && synthetic(&syn).is_err() {
        notes.push("cannot write the synthetic tree".into());
    }
    notes.push("synthetic tree: 2 x 3,000 files of 1-64 KiB, 90 % identical".into());
    (syn, false, notes)
}

fn tools_dir() -> PathBuf {
    cache_dir().with_file_name("cow-bench-tools")
}

/// The fclones binary, installed when missing (not in --quick).
fn fclones(quick: bool) -> Result<PathBuf, String> {
    if let Some(p) = crate::util::find_tool("fclones") {
        return Ok(p);
    }
    let local = tools_dir().join("bin/fclones");
    if local.exists() {
        return Ok(local);
    }
    if quick {
        return Err("fclones not installed (--quick does not build it)".into());
    }
    eprintln!(
        "xtask bench: {NAME}: cargo install fclones into {}",
        tools_dir().display()
    );
    ok(crate::util::cargo()
        .args(["install", "--locked", "fclones", "--root"])
        .arg(tools_dir()))
    .map_err(|e| e.to_string())?;
    Ok(local)
}

/// The duperemove binary, installed with apt-get when missing.
fn duperemove() -> Result<PathBuf, String> {
    if let Some(p) = crate::util::find_tool("duperemove") {
        return Ok(p);
    }
    eprintln!("xtask bench: {NAME}: apt-get install duperemove");
    ok(Command::new("apt-get").args(["install", "-y", "duperemove"])).map_err(|e| e.to_string())?;
    crate::util::find_tool("duperemove").ok_or_else(|| "duperemove not found after apt-get".into())
}

/// Runs `tool` over `tree`; cow returns the space its report says it freed.
fn run_tool(tool: Tool, bin: &Path, tree: &Path) -> Result<Option<i64>, String> {
    match tool {
        Tool::Cow => cow_copy::dedupe::DedupeOptions::new()
            .run(&[tree], &|_: &cow_copy::dedupe::Event<'_>| {})
            .map(|r| r.space_freed)
            .map_err(|e| e.to_string()),
        Tool::Fclones => ok(Command::new("sh")
            .arg("-c")
            .arg("\"$0\" group --hidden --no-ignore \"$1\" | \"$0\" dedupe")
            .arg(bin)
            .arg(tree))
        .map(|()| None)
        .map_err(|e| e.to_string()),
        Tool::Duperemove => ok(Command::new(bin).args(["-r", "-d", "-q"]).arg(tree))
            .map(|()| None)
            .map_err(|e| e.to_string()),
    }
}

fn used(p: &Path) -> Result<u64, String> {
    measure::settle(p).map_err(|e| e.to_string())?;
    measure::used_bytes(p).map_err(|e| e.to_string())
}

/// One round of one tool: reset the tree to independent copies, run,
/// measure the space, run again.
fn once(tool: Tool, bin: &Path, src: &Path, fs: &FsInfo, cell: &mut Cell) -> Result<(), String> {
    let tree = fs.path.join("bench-dedupe-tree");
    let _ = measure::remove(&tree);
    let empty = used(&fs.path)?;
    ok(Command::new("cp")
        .args(["-a", "--reflink=never"])
        .arg(src)
        .arg(&tree))
    .map_err(|e| e.to_string())?;
    let before = used(&fs.path)?;
    let t = Instant::now();
    let reported = run_tool(tool, bin, &tree)?;
    cell.first_s.push(t.elapsed().as_secs_f64());
    measure::syncfs(&fs.path).map_err(|e| e.to_string())?;
    cell.synced_s.push(t.elapsed().as_secs_f64());
    let after = used(&fs.path)?;
    cell.space_after.push(after.saturating_sub(empty));
    if let Some(r) = reported {
        cell.freed_reported.push(r);
        cell.freed_measured.push(before as i64 - after as i64);
    }
    let t = Instant::now();
    run_tool(tool, bin, &tree)?;
    cell.rerun_s.push(t.elapsed().as_secs_f64());
    measure::remove(&tree).map_err(|e| e.to_string())
}

fn median(v: &[u64]) -> Option<u64> {
    let mut v = v.to_vec();
    v.sort_unstable();
    v.get(v.len() / 2).copied()
}

/// Runs the workload on the filesystems that can dedupe; returns the
/// markdown section.
pub(crate) fn run(args: &Args, filesystems: &[FsInfo]) -> String {
    let runs = args.runs.unwrap_or(if args.quick { 1 } else { 3 });
    let (src, real, mut notes) = source(args.quick);
    let (files, bytes) = count(&src);
    notes.push(format!(
        "{runs} rounds interleave the tools in a rotating order, so other load on the \
             machine hits all of them alike; medians shown"
    ));
    let bins: Vec<(Tool, Result<PathBuf, String>)> = Tool::ALL
        .iter()
        .map(|&t| {
            (
                t,
                match t {
                    Tool::Cow => Ok(PathBuf::new()),
                    Tool::Fclones => fclones(args.quick),
                    Tool::Duperemove => duperemove(),
                },
            )
        })
        .collect();
    let mut cells = Vec::new();
    for fs in filesystems
        .iter()
        .filter(|f| f.name == "btrfs" || f.name == "xfs")
    {
        let mut row: Vec<Cell> = bins
            .iter()
            .map(|(t, b)| Cell {
                fs: fs.name.clone(),
                tool: t.name(),
                first_s: Vec::new(),
                synced_s: Vec::new(),
                rerun_s: Vec::new(),
                freed_reported: Vec::new(),
                freed_measured: Vec::new(),
                space_after: Vec::new(),
                first: None,
                rerun: None,
                error: b.as_ref().err().cloned(),
            })
            .collect();
        for round in 0..runs {
            // Ctrl-C stops the rounds; the cells keep what was measured.
            if crate::signals::interrupted() {
                break;
            }
            for k in 0..bins.len() {
                let i = (k + round) % bins.len();
                let (tool, Ok(bin)) = (&bins[i].0, &bins[i].1) else {
                    continue;
                };
                if row[i].error.is_some() {
                    continue;
                }
                eprintln!(
                    "xtask bench: {NAME}/{}/{} round {}",
                    fs.name,
                    tool.name(),
                    round + 1
                );
                if let Err(e) = once(*tool, bin, &src, fs, &mut row[i]) {
                    row[i].error = Some(e);
                }
            }
        }
        for c in &mut row {
            c.first = Stats::of(&c.first_s);
            c.rerun = Stats::of(&c.rerun_s);
        }
        cells.extend(row);
    }
    let out = Output {
        tree: src.display().to_string(),
        files,
        bytes,
        real_packages: real,
        notes,
        cells,
    };
    let dir = super::run::out_dir();
    if fs::create_dir_all(&dir).is_ok()
        && let Ok(j) = serde_json::to_string_pretty(&out)
    {
        let _ = fs::write(dir.join("dedupe-tree.json"), j);
    }
    markdown(&out)
}

fn count(p: &Path) -> (u64, u64) {
    let mut files = 0;
    let mut bytes = 0;
    let mut stack = vec![p.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).into_iter().flatten().flatten() {
            match e.metadata() {
                Ok(m) if m.is_dir() => stack.push(e.path()),
                Ok(m) if m.is_file() => {
                    files += 1;
                    bytes += m.len();
                }
                _ => {}
            }
        }
    }
    (files, bytes)
}

fn markdown(o: &Output) -> String {
    let mut s = format!(
        "\n## {NAME}\n\n{} files, {} ({}), written as independent copies before each run.\n\n",
        o.files,
        bytes_text(o.bytes as i64),
        if o.real_packages {
            "real packages"
        } else {
            "SYNTHETIC"
        }
    );
    for n in &o.notes {
        s.push_str(&format!("- {n}\n"));
    }
    s.push_str(
        "- time + syncfs: the first run and a syncfs right after it, until the space is freed \
         on disk (cow flushes before it reports the space freed, except on XFS, whose count is \
         current without it; the other tools leave the flush to the next sync)\n",
    );
    s.push_str(
        "\n| fs | tool | time | time + syncfs | space after | rerun | rerun / first |\n\
         |---|---|---|---|---|---|---|\n",
    );
    for c in &o.cells {
        if let Some(e) = &c.error {
            s.push_str(&format!("| {} | {} | error: {e} | | | | |\n", c.fs, c.tool));
            continue;
        }
        let (Some(f), Some(r)) = (&c.first, &c.rerun) else {
            continue;
        };
        let synced = Stats::of(&c.synced_s).map_or("?".into(), |x| time_text(x.median));
        s.push_str(&format!(
            "| {} | {} | {} | {synced} | {} | {} | {:.2} |\n",
            c.fs,
            c.tool,
            time_text(f.median),
            median(&c.space_after).map_or("?".into(), |b| bytes_text(b as i64)),
            time_text(r.median),
            r.median / f.median
        ));
    }
    for c in o.cells.iter().filter(|c| !c.freed_reported.is_empty()) {
        let show = |v: &[i64]| {
            v.iter()
                .map(|&b| format!("{:.1}", b as f64 / (1 << 20) as f64))
                .collect::<Vec<_>>()
                .join(", ")
        };
        s.push_str(&format!(
            "\n{} on {}: space freed as its report says, MiB: {}; as measured here (settled, \
             before minus after): {}\n",
            c.tool,
            c.fs,
            show(&c.freed_reported),
            show(&c.freed_measured)
        ));
    }
    s
}
