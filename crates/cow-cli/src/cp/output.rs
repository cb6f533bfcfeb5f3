//! What `cow cp` prints: errors and warnings (stderr), `-v` lines, `--stats`
//! and `--json` (stdout).

use std::path::{Path, PathBuf};
use std::time::Duration;

use cow_copy::tree::{EntryAction, EntryKind, TreeMethod, TreeOptions, TreeReport, TreeTotals};
use cow_copy::{CopyOptions, CopyReport, Strategy};
use serde::Serialize;

/// What happened to one SOURCE operand.
pub(crate) enum Outcome {
    /// A regular file copied by the engine.
    File(Box<CopyReport>),
    /// A tree (or a symlink or special file) copied by the walker; may list
    /// failures.
    Tree(Box<TreeReport>),
    /// Bytes written into a FIFO destination.
    Fifo(u64),
    /// Not copied: the destination exists and was kept (-n, --update=none,
    /// a "no" to -i).
    Skipped,
    /// A link made instead of a copy (-l, -s).
    Linked(LinkKind),
    /// Not copied.
    Error(String),
}

/// One SOURCE operand and its result.
pub(crate) struct SourceResult {
    pub(crate) source: PathBuf,
    pub(crate) destination: PathBuf,
    pub(crate) outcome: Outcome,
}

impl SourceResult {
    pub(crate) fn new(source: &Path, destination: &Path) -> Self {
        SourceResult {
            source: source.to_path_buf(),
            destination: destination.to_path_buf(),
            outcome: Outcome::Error("not copied".into()),
        }
    }

    /// Whether nothing failed.
    pub(crate) fn ok(&self) -> bool {
        match &self.outcome {
            Outcome::Tree(r) => r.failures.is_empty(),
            Outcome::Error(_) => false,
            Outcome::File(_) | Outcome::Fifo(_) | Outcome::Skipped | Outcome::Linked(_) => true,
        }
    }
}

use super::existing::LinkKind;
use crate::msg::{self, q};

/// The `-v` line of a regular file the engine handled: `'a' -> 'b'
/// (cloned)`, or `skipped 'b' (REASON)` when the destination was left alone.
fn file_line(src: &Path, dst: &Path, strategy: Strategy) -> String {
    match strategy {
        Strategy::Skipped => format!("skipped {} (same content)", q(dst)),
        Strategy::Deduped => format!("skipped {} (same content; blocks now shared)", q(dst)),
        Strategy::KeptNewer => format!("skipped {} (not older than the source)", q(dst)),
        s => format!("{} -> {} ({s})", q(src), q(dst)),
    }
}

fn under(root: &Path, rel: &Path) -> PathBuf {
    if rel.as_os_str().is_empty() {
        root.to_path_buf()
    } else {
        root.join(rel)
    }
}

fn link_name(kind: LinkKind) -> &'static str {
    match kind {
        LinkKind::Hard => "hard link",
        LinkKind::Symbolic => "symbolic link",
    }
}

/// Prints errors and warnings, and with `verbose` one line per entry.
pub(crate) fn print_result(r: &SourceResult, verbose: bool) {
    let (src, dst) = (&r.source, &r.destination);
    match &r.outcome {
        Outcome::Error(msg) => eprintln!("cow cp: {msg}"),
        Outcome::Skipped => {
            if verbose {
                println!("skipped {}", q(dst));
            }
        }
        Outcome::Linked(kind) => {
            if verbose {
                println!("{} -> {} ({})", q(src), q(dst), link_name(*kind));
            }
        }
        Outcome::Fifo(n) => {
            if verbose {
                println!(
                    "{} -> {} ({} written into the FIFO)",
                    q(src),
                    q(dst),
                    human(*n)
                );
            }
        }
        Outcome::File(rep) => {
            if rep.source_changed {
                eprintln!("cow cp: warning: {}: {}", q(src), cow_copy::SOURCE_CHANGED);
            }
            for m in &rep.metadata_skipped {
                eprintln!("cow cp: warning: {}: {}", q(dst), msg::escape_controls(m));
            }
            if verbose {
                println!("{}", file_line(src, dst, rep.strategy));
            }
        }
        Outcome::Tree(rep) => {
            if verbose {
                if rep.method == TreeMethod::CloneTree {
                    println!("{} -> {} (whole tree cloned)", q(src), q(dst));
                }
                for e in rep.entries.iter().flatten() {
                    let (s, d) = (under(src, &e.path), under(dst, &e.path));
                    match e.action {
                        EntryAction::Failed => {}
                        EntryAction::Skipped => match &e.report {
                            Some(fr) => println!("{}", file_line(&s, &d, fr.strategy)),
                            None => println!("skipped {}", q(&d)),
                        },
                        EntryAction::Linked => println!("{} -> {} (hard link)", q(&s), q(&d)),
                        EntryAction::Created | EntryAction::Replaced | EntryAction::Merged => {
                            match (&e.report, e.kind) {
                                (Some(fr), _) => println!("{}", file_line(&s, &d, fr.strategy)),
                                (None, EntryKind::File) => println!("{} -> {}", q(&s), q(&d)),
                                (None, k) => println!("{} -> {} ({k})", q(&s), q(&d)),
                            }
                        }
                    }
                }
            }
            for w in &rep.warnings {
                eprintln!("cow cp: warning: {}", msg::warning(w));
            }
            for f in &rep.failures {
                eprintln!("cow cp: {}", msg::failure(f));
            }
            if rep.stopped_early {
                eprintln!("cow cp: stopped at the first failure (--fail-fast)");
            }
        }
    }
}

/// Sums every source's counts.
pub(crate) fn totals(results: &[SourceResult]) -> TreeTotals {
    let mut t = TreeTotals::default();
    for r in results {
        match &r.outcome {
            Outcome::Tree(rep) => t.add(&rep.totals),
            Outcome::File(rep) => t.add(&TreeTotals::from(&**rep)),
            Outcome::Fifo(n) => {
                t.files += 1;
                t.bytes_copied += n;
            }
            Outcome::Skipped => t.skipped += 1,
            Outcome::Linked(LinkKind::Hard) => t.hard_links += 1,
            Outcome::Linked(LinkKind::Symbolic) => t.symlinks += 1,
            Outcome::Error(_) => t.failed += 1,
        }
    }
    t
}

/// Bytes in binary units.
pub(crate) fn human(n: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// Prints the `--stats` summary. Throughput is the copied bytes over the
/// time: cloned bytes move no data, so they are listed apart and never
/// divided by time.
pub(crate) fn print_stats(results: &[SourceResult], elapsed: Duration) {
    let t = totals(results);
    let secs = elapsed.as_secs_f64();
    let per_sec = |n: u64| if secs > 0.0 { n as f64 / secs } else { 0.0 };
    println!(
        "files: {} copied, {} hard links, {} skipped ({} identical), {} failed, {} changed during the copy; {} directories, {} symlinks, {} fifos, {} special",
        t.files,
        t.hard_links,
        t.skipped,
        t.identical,
        t.failed,
        t.source_changed,
        t.dirs,
        t.symlinks,
        t.fifos,
        t.specials
    );
    println!(
        "bytes: {} cloned, {} copied, {} holes, {} skipped",
        human(t.bytes_cloned),
        human(t.bytes_copied),
        human(t.hole_bytes),
        human(t.bytes_skipped)
    );
    let copied = if t.bytes_copied > 0 {
        format!("copied at {}/s", human(per_sec(t.bytes_copied) as u64))
    } else {
        "nothing copied".to_owned()
    };
    let cloned = if t.bytes_cloned > 0 {
        format!("; {} cloned (shared, no data moved)", human(t.bytes_cloned))
    } else {
        String::new()
    };
    println!(
        "time: {secs:.3} s, {} files/s; {copied}{cloned}",
        per_sec(t.files).round() as u64
    );
}

#[derive(Serialize)]
struct JsonSource<'a> {
    source: String,
    destination: String,
    status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    file: Option<&'a CopyReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tree: Option<&'a TreeReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    fifo_bytes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    link: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'a str>,
}

#[derive(Serialize)]
struct JsonOptions<'a> {
    file: &'a CopyOptions,
    jobs: usize,
}

#[derive(Serialize)]
struct JsonOut<'a> {
    ok: bool,
    elapsed_seconds: f64,
    totals: TreeTotals,
    options: JsonOptions<'a>,
    sources: Vec<JsonSource<'a>>,
}

/// Prints the whole run as one JSON document.
pub(crate) fn print_json(
    results: &[SourceResult],
    elapsed: Duration,
    copy: &CopyOptions,
    tree: &TreeOptions,
) {
    let sources = results
        .iter()
        .map(|r| {
            let mut s = JsonSource {
                source: r.source.to_string_lossy().into_owned(),
                destination: r.destination.to_string_lossy().into_owned(),
                status: if r.ok() { "ok" } else { "failed" },
                file: None,
                tree: None,
                fifo_bytes: None,
                link: None,
                error: None,
            };
            match &r.outcome {
                Outcome::File(f) => s.file = Some(f),
                Outcome::Tree(t) => s.tree = Some(t),
                Outcome::Fifo(n) => s.fifo_bytes = Some(*n),
                Outcome::Skipped => s.status = "skipped",
                Outcome::Linked(k) => s.link = Some(link_name(*k)),
                Outcome::Error(e) => s.error = Some(e),
            }
            s
        })
        .collect();
    let out = JsonOut {
        ok: results.iter().all(SourceResult::ok),
        elapsed_seconds: elapsed.as_secs_f64(),
        totals: totals(results),
        options: JsonOptions {
            file: copy,
            jobs: tree.worker_count(),
        },
        sources,
    };
    crate::print_json("cp", &out);
}
