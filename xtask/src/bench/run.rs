//! The matrix run: filesystems, then workloads, then rounds of every tool in
//! a rotating order.

use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use serde::Serialize;

use super::Args;
use super::measure::{self, Stats};
use super::tools::Tool;
use super::workloads::{self, Prepared, Workload};
use crate::mounts::TestFs;
use crate::{signals, test};

/// A filesystem under test.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct FsInfo {
    /// Short name (`btrfs`, `xfs`, `ext4`, `tmpfs`, or the type of `--dir`).
    pub(crate) name: String,
    /// Where the cells ran.
    pub(crate) path: PathBuf,
    /// Loop device and image size, or `--dir`.
    pub(crate) detail: String,
    /// The block device's stat file, for the bytes written (none on tmpfs).
    #[serde(skip)]
    pub(crate) stat_file: Option<PathBuf>,
}

/// The run's circumstances, printed above the table.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Header {
    /// UTC date and time of the start.
    pub(crate) date: String,
    /// `uname -r`.
    pub(crate) kernel: String,
    /// Available CPUs.
    pub(crate) cpus: usize,
    /// `quick` or `full`.
    pub(crate) mode: &'static str,
    /// The `--filter`, if any.
    pub(crate) filter: Option<String>,
    /// Page-cache policy.
    pub(crate) page_cache: String,
    /// Sync policy.
    pub(crate) sync: String,
    /// Run order.
    pub(crate) order: String,
    /// Filesystems measured.
    pub(crate) filesystems: Vec<FsInfo>,
    /// Filesystems not measured, with the reason.
    pub(crate) skipped: Vec<(String, String)>,
    /// Workloads: name, description, what it models, runs per cell.
    pub(crate) workloads: Vec<(String, String, String, usize)>,
    /// Tools: name, single-file method, tree method.
    pub(crate) tools: Vec<(String, String, String)>,
    /// Caveats of this run.
    pub(crate) notes: Vec<String>,
    /// Wall time of the whole run, seconds.
    pub(crate) total_seconds: f64,
}

/// One workload x filesystem x tool.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Cell {
    /// Workload name.
    pub(crate) workload: String,
    /// Filesystem name.
    pub(crate) fs: String,
    /// Tool name.
    pub(crate) tool: &'static str,
    /// Wall time of each run (seconds), in run order.
    pub(crate) samples_s: Vec<f64>,
    /// Wall time of the `syncfs` after each run (seconds).
    pub(crate) sync_s: Vec<f64>,
    /// Statistics of `samples_s`.
    pub(crate) time: Option<Stats>,
    /// Statistics of run + sync.
    pub(crate) with_sync: Option<Stats>,
    /// `st_blocks * 512` of the copy (last run).
    pub(crate) allocated_bytes: Option<u64>,
    /// Median growth of the filesystem's used space across a run (after
    /// sync): the new space the copy really took.
    pub(crate) fs_used_delta_bytes: Option<i64>,
    /// Median bytes written to the filesystem's block device during a run
    /// and its sync (data, metadata, journal); `None` without a block
    /// device (tmpfs).
    pub(crate) device_written_bytes: Option<u64>,
    /// Sharing ratio of the sample file with its source (last run).
    pub(crate) sharing: Option<f64>,
    /// Why the sharing ratio is missing.
    pub(crate) sharing_error: Option<String>,
    /// This tool's median time over cow's.
    pub(crate) vs_cow: Option<f64>,
    /// The first error, if a run failed (the cell's later runs are skipped).
    pub(crate) error: Option<String>,
}

/// Everything a run produced.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Results {
    /// Circumstances.
    pub(crate) header: Header,
    /// The cells, in table order.
    pub(crate) cells: Vec<Cell>,
}

const EXIT_INTERRUPTED: i32 = 130;

/// `cargo xtask bench`.
pub(crate) fn run(args: &Args) -> Result<i32, String> {
    let started = Instant::now();
    let workloads = workloads::matrix(args.quick, args.runs);
    let mut notes = Vec::new();
    notes.push(
        "update-*: cow uses its update policy (Overwrite::IfDifferent: an identical destination \
         file is left alone after a size check, a FIEMAP comparison and a content \
         comparison); std::fs::copy, reflink-copy, rw-loop and cp have no such notion \
         and overwrite every file. The older copy is reset before each run with \
         cp -a --reflink=auto from an independent copy: its files share every block with \
         that twin (as with a snapshot) and none with the source, so cow must compare \
         contents to keep that sharing. In the *-unshared workloads it is reset with \
         cp -a --reflink=never: it shares no block, and cow (archive mode) clones over \
         it without comparing"
            .to_owned(),
    );
    notes.push(format!(
        "cow TreeOptions::copy uses {} worker threads (its default); the walk of std::fs::copy, \
         reflink-copy and rw-loop and GNU cp are sequential",
        cow_copy::tree::TreeOptions::new().worker_count()
    ));
    if args.drop_caches && !is_root() {
        return Err("--drop-caches needs root".into());
    }

    // The filesystems.
    let mut session: Option<TestFs> = None;
    let mut own_dir: Option<PathBuf> = None;
    let mut skipped = Vec::new();
    let filesystems: Vec<FsInfo> = if let Some(dir) = &args.dir {
        signals::install();
        let d = dir.join(format!("cow-bench-{}", std::process::id()));
        std::fs::create_dir(&d).map_err(|e| format!("cannot create {}: {e}", d.display()))?;
        own_dir = Some(d.clone());
        vec![FsInfo {
            name: fs_type(&d),
            stat_file: measure::block_stat_file(&d, ""),
            path: d,
            detail: "--dir".into(),
        }]
    } else {
        let tfs = match test::start(&test::Session::default()) {
            Ok(t) => t,
            Err(code) => return Ok(code),
        };
        for s in tfs.skipped() {
            if s.spec.name != "small" {
                skipped.push((s.spec.name.to_owned(), s.reason.clone()));
            }
        }
        let list = tfs
            .provided()
            .iter()
            .filter(|p| p.spec.name != "small")
            .map(|p| FsInfo {
                name: p.spec.name.to_owned(),
                stat_file: measure::block_stat_file(&p.path, &p.detail),
                path: p.path.clone(),
                detail: p.detail.clone(),
            })
            .collect();
        session = Some(tfs);
        list
    };
    for (name, why) in &skipped {
        eprintln!("xtask bench: SKIPPED {name}: {why}");
    }
    if filesystems.is_empty() {
        if let Some(mut tfs) = session {
            test::finish_cleanup(&mut tfs);
        }
        eprintln!(
            "xtask bench: nothing to measure: no filesystem could be mounted (run as root, \
             or bench a directory with --dir PATH)"
        );
        return Ok(2);
    }

    let header = Header {
        date: utc_now(),
        kernel: rustix::system::uname()
            .release()
            .to_string_lossy()
            .into_owned(),
        cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
        mode: if args.quick { "quick" } else { "full" },
        filter: args.filter.clone(),
        page_cache: if args.drop_caches {
            "dropped before each run (sync; echo 3 > /proc/sys/vm/drop_caches): cold reads \
             (tmpfs keeps its pages)"
                .into()
        } else {
            "not dropped: the source is warm in the page cache (it was just written), as \
             right after a build or a download"
                .into()
        },
        sync: "syncfs on the filesystem before each run (repeated until its used space \
               stops moving) and after it; the copy's time excludes the sync, \"with sync\" adds the sync after it (writeback of \
               what the copy dirtied)"
            .into(),
        order: "A/B interleaved: each round runs every tool once, the order rotating by \
                one tool per round; the destination is removed (an update's reset to the \
                older copy) between runs, untimed"
            .into(),
        filesystems: filesystems.clone(),
        skipped,
        workloads: workloads
            .iter()
            .map(|w| (w.name.clone(), w.describe(), w.models().to_owned(), w.runs))
            .collect(),
        tools: Tool::ALL
            .iter()
            .map(|t| {
                (
                    t.name().to_owned(),
                    t.how(false).to_owned(),
                    t.how(true).to_owned(),
                )
            })
            .collect(),
        notes,
        total_seconds: 0.0,
    };

    let mut cells = Vec::new();
    let mut interrupted = false;
    let mut setup_error = None;
    'outer: for w in &workloads {
        for fs in &filesystems {
            let tools: Vec<Tool> = Tool::for_workload(w)
                .into_iter()
                .filter(|t| t.runs_on(&w.name) && selected(args, w, fs, *t))
                .collect();
            if tools.is_empty() {
                continue;
            }
            match run_workload(args, w, fs, &tools) {
                Ok(mut c) => cells.append(&mut c),
                Err(Stop::Interrupted(mut c)) => {
                    cells.append(&mut c);
                    interrupted = true;
                    break 'outer;
                }
                Err(Stop::Setup(e)) => {
                    eprintln!("xtask bench: {}/{}: setup failed: {e}", w.name, fs.name);
                    setup_error = Some(e);
                }
            }
        }
    }

    let dedupe_md = (!interrupted && super::dedupe::wanted(args))
        .then(|| super::dedupe::run(args, &filesystems));

    // Cleanup before reporting, so a report problem cannot leave mounts.
    let mut clean = true;
    if let Some(mut tfs) = session {
        clean = test::finish_cleanup(&mut tfs);
    }
    if let Some(d) = own_dir {
        if let Err(e) = std::fs::remove_dir_all(&d) {
            eprintln!("xtask bench: cannot remove {}: {e}", d.display());
        }
    }

    fill_vs_cow(&mut cells);
    let mut header = header;
    header.total_seconds = started.elapsed().as_secs_f64();
    let results = Results { header, cells };
    print!("{}", super::report::markdown(&results));
    print!("{}", dedupe_md.unwrap_or_default());
    let out = out_dir();
    match super::report::write_files(&results, &out) {
        Ok(()) => eprintln!(
            "xtask bench: wrote {} and {}",
            out.join("results.json").display(),
            out.join("chart.svg").display()
        ),
        Err(e) => {
            eprintln!(
                "xtask bench: cannot write results to {}: {e}",
                out.display()
            );
            return Ok(1);
        }
    }
    eprintln!("xtask bench: total {:.0} s", results.header.total_seconds);
    if interrupted {
        return Ok(EXIT_INTERRUPTED);
    }
    let failed = results.cells.iter().any(|c| c.error.is_some());
    Ok(if failed || setup_error.is_some() || !clean {
        1
    } else {
        0
    })
}

fn selected(args: &Args, w: &Workload, fs: &FsInfo, t: Tool) -> bool {
    match &args.filter {
        None => true,
        Some(f) => format!("{}/{}/{}", w.name, fs.name, t.name()).contains(f.as_str()),
    }
}

enum Stop {
    Interrupted(Vec<Cell>),
    Setup(String),
}

fn run_workload(args: &Args, w: &Workload, fs: &FsInfo, tools: &[Tool]) -> Result<Vec<Cell>, Stop> {
    let base = fs.path.join(format!("bench-{}", w.name));
    let setup = |e: io::Error| Stop::Setup(e.to_string());
    let _ = measure::remove(&base);
    std::fs::create_dir(&base).map_err(setup)?;
    eprintln!("xtask bench: {} on {}: writing the source", w.name, fs.name);
    let prepared = workloads::prepare(w, &base).map_err(setup);
    let result = match prepared {
        Ok(p) => {
            measure::syncfs(&fs.path).map_err(setup)?;
            Ok(rounds(args, w, fs, tools, &p))
        }
        Err(e) => Err(e),
    };
    if let Err(e) = measure::remove(&base) {
        eprintln!("xtask bench: cannot remove {}: {e}", base.display());
    }
    let _ = measure::syncfs(&fs.path);
    match result? {
        (cells, false) => Ok(cells),
        (cells, true) => Err(Stop::Interrupted(cells)),
    }
}

struct Acc {
    cell: Cell,
    deltas: Vec<i64>,
    written: Vec<i64>,
}

/// Runs every round; returns the cells and whether a signal stopped it.
fn rounds(
    args: &Args,
    w: &Workload,
    fs: &FsInfo,
    tools: &[Tool],
    p: &Prepared,
) -> (Vec<Cell>, bool) {
    let mut acc: Vec<Acc> = tools
        .iter()
        .map(|t| Acc {
            cell: Cell {
                workload: w.name.clone(),
                fs: fs.name.clone(),
                tool: t.name(),
                samples_s: Vec::new(),
                sync_s: Vec::new(),
                time: None,
                with_sync: None,
                allocated_bytes: None,
                fs_used_delta_bytes: None,
                device_written_bytes: None,
                sharing: None,
                sharing_error: None,
                vs_cow: None,
                error: None,
            },
            deltas: Vec::new(),
            written: Vec::new(),
        })
        .collect();
    let mut stopped = false;
    'rounds: for round in 0..w.runs {
        eprintln!(
            "xtask bench: {} on {}: round {}/{}",
            w.name,
            fs.name,
            round + 1,
            w.runs
        );
        for k in 0..tools.len() {
            if signals::interrupted() {
                stopped = true;
                break 'rounds;
            }
            let i = (k + round) % tools.len();
            let a = &mut acc[i];
            if a.cell.error.is_some() {
                continue;
            }
            if let Err(e) = one_run(args, w, fs, tools[i], p, a) {
                eprintln!(
                    "xtask bench: {}/{}/{}: {e}",
                    w.name,
                    fs.name,
                    tools[i].name()
                );
                a.cell.error = Some(e);
            }
        }
    }
    if let Err(e) = measure::remove(&p.dst) {
        eprintln!("xtask bench: cannot remove {}: {e}", p.dst.display());
    }
    let cells = acc
        .into_iter()
        .map(|mut a| {
            let c = &mut a.cell;
            c.time = Stats::of(&c.samples_s);
            let both: Vec<f64> = c
                .samples_s
                .iter()
                .zip(&c.sync_s)
                .map(|(a, b)| a + b)
                .collect();
            c.with_sync = Stats::of(&both);
            c.fs_used_delta_bytes = measure::median_i64(&a.deltas);
            c.device_written_bytes = measure::median_i64(&a.written).map(|w| w.max(0) as u64);
            a.cell
        })
        .collect();
    (cells, stopped)
}

/// One timed run of one tool, with its untimed reset before and its
/// measurements after.
fn one_run(
    args: &Args,
    w: &Workload,
    fs: &FsInfo,
    tool: Tool,
    p: &Prepared,
    a: &mut Acc,
) -> Result<(), String> {
    let ctx = |what: &str, e: io::Error| format!("{what}: {e}");
    measure::remove(&p.dst).map_err(|e| ctx("removing the last copy", e))?;
    if let Some(old) = &p.old {
        let reflink = if w.old_unshared() {
            "--reflink=never"
        } else {
            "--reflink=auto"
        };
        workloads::run_cp(&["-a", reflink], old, &p.dst)
            .map_err(|e| ctx("resetting the destination to the older copy", e))?;
    }
    measure::settle(&fs.path).map_err(|e| ctx("syncfs", e))?;
    if args.drop_caches {
        measure::drop_caches().map_err(|e| ctx("dropping caches", e))?;
    }
    let before = measure::used_bytes(&fs.path).map_err(|e| ctx("statvfs", e))?;
    let written_before = fs
        .stat_file
        .as_deref()
        .and_then(|f| measure::device_written(f).ok());

    let t0 = Instant::now();
    let r = if w.is_tree() {
        tool.copy_tree(&p.src, &p.dst, p.old.is_some(), w.is_archive())
    } else {
        tool.copy_file(&p.src, &p.dst)
    };
    let took = t0.elapsed().as_secs_f64();
    r.map_err(|e| ctx("copy", e))?;
    let t1 = Instant::now();
    measure::syncfs(&fs.path).map_err(|e| ctx("syncfs", e))?;
    let synced = t1.elapsed().as_secs_f64();

    let after = measure::used_bytes(&fs.path).map_err(|e| ctx("statvfs", e))?;
    let written_after = fs
        .stat_file
        .as_deref()
        .and_then(|f| measure::device_written(f).ok());
    if let (Some(b), Some(a2)) = (written_before, written_after) {
        a.written.push(a2 as i64 - b as i64);
    }
    a.cell.samples_s.push(took);
    a.cell.sync_s.push(synced);
    a.deltas.push(after as i64 - before as i64);
    a.cell.allocated_bytes = measure::allocated(&p.dst).ok();
    match measure::sharing(&p.sample_src(), &p.sample_dst()) {
        Ok(r) => {
            a.cell.sharing = Some(r);
            a.cell.sharing_error = None;
        }
        Err(e) => {
            a.cell.sharing = None;
            a.cell.sharing_error = Some(e);
        }
    }
    Ok(())
}

/// Each cell's median over the cow cell's median of the same workload and
/// filesystem.
fn fill_vs_cow(cells: &mut [Cell]) {
    let cow: Vec<(String, String, f64)> = cells
        .iter()
        .filter(|c| c.tool == Tool::Cow.name())
        .filter_map(|c| Some((c.workload.clone(), c.fs.clone(), c.time?.median)))
        .collect();
    for c in cells.iter_mut() {
        let base = cow
            .iter()
            .find(|(w, f, _)| *w == c.workload && *f == c.fs)
            .map(|x| x.2);
        c.vs_cow = match (base, c.time) {
            (Some(b), Some(t)) if b > 0.0 => Some(t.median / b),
            _ => None,
        };
    }
}

fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// The filesystem type of `dir` (`findmnt -T`, else `stat -f`), or `dir`.
fn fs_type(dir: &Path) -> String {
    let ask = |cmd: &mut Command| {
        cmd.arg(dir)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
            .filter(|s| !s.is_empty() && !s.contains('/'))
    };
    ask(Command::new("findmnt").args(["-n", "-o", "FSTYPE", "-T"]))
        .or_else(|| ask(Command::new("stat").args(["-f", "-c", "%T"])))
        .unwrap_or_else(|| "dir".into())
}

fn utc_now() -> String {
    Command::new("date")
        .args(["-u", "+%Y-%m-%d %H:%M UTC"])
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default()
}

/// `$CARGO_TARGET_DIR/cow-bench`, else `<workspace>/target/cow-bench`.
pub(crate) fn out_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .parent()
                .unwrap_or(Path::new("."))
                .join("target")
        });
    target.join("cow-bench")
}
