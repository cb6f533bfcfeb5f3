//! `cow cp`: copy files and trees like GNU `cp`, cloning where the
//! filesystem can, and say what happened.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::Instant;

use clap::{Args, ValueEnum};
use cow_copy::tree::{Dereference, TreeError, TreeOptions, copy_tree};
use cow_copy::{CopyError, CopyOptions, Overwrite, Preserve, Reflink, Sparse, Update};

use crate::exit;
use crate::msg::{self, q};

mod fdlimit;
mod interrupt;
mod output;
mod progress;
mod target;

use output::{Outcome, SourceResult};
use target::{Plan, SourceKind};

const AFTER_HELP: &str = "\
Differences from GNU cp:
  * Directories are copied by parallel workers (-j); with -v the entries of a
    directory tree are listed after that tree is done, sorted by path, and each
    file shows how its bytes moved (cloned, kernel-copy, user-copy, mixed).
  * --reflink defaults to auto (GNU cp 9.x does too); --reflink=always never
    falls back to copying: the file fails instead and nothing is left behind.
  * Inside a tree, a destination symlink is replaced, never written through.
    On the command line a valid destination symlink is followed (like GNU) and
    a dangling one is refused.
  * Devices and sockets are skipped with a warning unless -a or --copy-special.
  * A FIFO source is recreated only with -r/-a; without it, it is an error
    (GNU cp would read from it).
  * --update also takes identical: it leaves a destination with the same
    content untouched (no write: its blocks stay shared with snapshots);
    --dedupe also shares the blocks. -u and --update=older compare
    modification times to the nanosecond.
  * -n skips existing files silently (exit 0).
  * --preserve=context is not supported; SELinux labels travel as xattrs with
    --preserve=xattr.
  * --stats, --json, --progress, --atomic, --fail-fast and -j are cow additions.

Exit status: 0 everything was copied, 1 some file failed (each failure is printed
with its path and the failing call; the others were copied), 2 usage error.";

/// When to share blocks (`--reflink`).
#[derive(Clone, Copy, Debug, ValueEnum)]
pub(crate) enum ReflinkArg {
    /// Clone when possible, copy otherwise.
    Auto,
    /// Clone or fail.
    Always,
    /// Never share blocks.
    Never,
}

/// How to treat holes (`--sparse`).
#[derive(Clone, Copy, Debug, ValueEnum)]
pub(crate) enum SparseArg {
    /// Keep the source's holes.
    Auto,
    /// Also punch holes for blocks of zeros.
    Always,
    /// Write every byte.
    Never,
}

/// What to do with existing destination files (`--update`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum UpdateArg {
    /// Replace them (the default).
    All,
    /// Keep them (like -n).
    None,
    /// Replace only files older than their source (-u).
    Older,
    /// Replace only files whose content differs.
    Identical,
}

/// Arguments of `cow cp`.
#[derive(Args, Debug)]
#[command(after_help = AFTER_HELP)]
pub(crate) struct CpArgs {
    /// SOURCE... DEST, or SOURCE... with -t DIRECTORY.
    #[arg(value_name = "PATH", required = true)]
    paths: Vec<PathBuf>,

    /// Copy directories recursively.
    #[arg(short = 'r', short_alias = 'R', long = "recursive")]
    recursive: bool,

    /// Same as -dR --preserve=all --copy-special.
    #[arg(short = 'a', long = "archive")]
    archive: bool,

    /// Same as --no-dereference --preserve=links.
    #[arg(short = 'd')]
    no_deref_preserve_links: bool,

    /// Clone blocks: auto (default), always (bare --reflink), never.
    #[arg(long, value_enum, value_name = "WHEN", num_args = 0..=1, require_equals = true, default_missing_value = "always")]
    reflink: Option<ReflinkArg>,

    /// Holes: auto (default: keep the source's), always (also zero blocks), never.
    #[arg(long, value_enum, value_name = "WHEN", require_equals = true)]
    sparse: Option<SparseArg>,

    /// Do not overwrite an existing file (skip it silently).
    #[arg(short = 'n', long = "no-clobber")]
    no_clobber: bool,

    /// Same as --preserve=mode,ownership,timestamps.
    #[arg(short = 'p')]
    preserve_default: bool,

    /// Preserve the listed attributes: mode, ownership, timestamps, links,
    /// xattr, all (default: mode,ownership,timestamps).
    #[arg(long, value_name = "ATTR_LIST", num_args = 0..=1, require_equals = true, default_missing_value = "mode,ownership,timestamps")]
    preserve: Option<String>,

    /// Do not preserve the listed attributes.
    #[arg(long, value_name = "ATTR_LIST")]
    no_preserve: Option<String>,

    /// Always follow symlinks in SOURCE.
    #[arg(short = 'L', long = "dereference")]
    dereference: bool,

    /// Never follow symlinks in SOURCE (the default with -r).
    #[arg(short = 'P', long = "no-dereference")]
    no_dereference: bool,

    /// Follow symlinks given on the command line only.
    #[arg(short = 'H')]
    dereference_command_line: bool,

    /// Which existing destination files to replace: all, none, older
    /// (the default of a bare --update), or identical (leave files whose
    /// content is already the same untouched: no write, so their blocks stay
    /// shared with snapshots).
    #[arg(long, value_enum, value_name = "WHICH", num_args = 0..=1, require_equals = true, default_missing_value = "older")]
    update: Option<UpdateArg>,

    /// Same as --update=older: replace only destination files older than
    /// their source (missing ones are copied).
    #[arg(short = 'u')]
    update_older: bool,

    /// With --update=identical: also make the source share the identical
    /// destination's blocks (FIDEDUPERANGE).
    #[arg(long)]
    dedupe: bool,

    /// Write each file to a temporary sibling and rename it over the
    /// destination: an existing file stays whole until the copy is complete.
    #[arg(long)]
    atomic: bool,

    /// fsync every copied file (and, with --atomic, its directory).
    #[arg(long)]
    fsync: bool,

    /// Worker threads for directory trees (default: number of CPUs).
    #[arg(short = 'j', long = "jobs", value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1024))]
    jobs: Option<u32>,

    /// Stop at the first failure instead of copying what can be copied.
    #[arg(long)]
    fail_fast: bool,

    /// Recreate devices and sockets found in trees (usually needs root).
    #[arg(long)]
    copy_special: bool,

    /// Copy all SOURCE arguments into DIRECTORY.
    #[arg(short = 't', long = "target-directory", value_name = "DIRECTORY")]
    target_directory: Option<PathBuf>,

    /// Treat DEST as a normal file, never as a directory to copy into.
    #[arg(short = 'T', long = "no-target-directory")]
    no_target_directory: bool,

    /// Print each copied entry (with how its bytes moved).
    #[arg(short = 'v', long)]
    verbose: bool,

    /// Show a progress bar even for small copies (also when not a terminal:
    /// then a line per second).
    #[arg(long)]
    progress: bool,

    /// Print a summary: files, bytes cloned/copied/holes/skipped, time,
    /// throughput.
    #[arg(long)]
    stats: bool,

    /// Print the full report as one JSON document on stdout (with every
    /// entry and each file's engine report).
    #[arg(long)]
    json: bool,
}

/// Attributes selected by -p/--preserve/--no-preserve/-a.
#[derive(Clone, Copy, Default, Debug, PartialEq, Eq)]
struct Attrs {
    mode: bool,
    ownership: bool,
    timestamps: bool,
    links: bool,
    xattr: bool,
}

fn parse_attrs(list: &str, what: &str) -> Result<Attrs, String> {
    let mut a = Attrs::default();
    for item in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        match item {
            "mode" => a.mode = true,
            "ownership" => a.ownership = true,
            "timestamps" => a.timestamps = true,
            "links" => a.links = true,
            "xattr" => a.xattr = true,
            "all" => {
                a = Attrs {
                    mode: true,
                    ownership: true,
                    timestamps: true,
                    links: true,
                    xattr: true,
                }
            }
            "context" => return Err(format!("{what}: 'context' is not supported")),
            other => {
                return Err(format!(
                    "{what}: invalid attribute '{other}' (valid: mode, ownership, timestamps, links, xattr, all)"
                ));
            }
        }
    }
    Ok(a)
}

/// Everything the command line decided, checked.
struct Settings {
    recursive: bool,
    deref: Option<Dereference>,
    copy: CopyOptions,
    tree: TreeOptions,
}

fn settings(args: &CpArgs) -> Result<Settings, String> {
    let mut attrs = Attrs::default();
    let mut deref = None;
    let mut copy_special = args.copy_special;
    if args.archive {
        attrs = parse_attrs("all", "-a")?;
        deref = Some(Dereference::Never);
        copy_special = true;
    }
    if args.no_deref_preserve_links {
        attrs.links = true;
        deref = Some(Dereference::Never);
    }
    if args.preserve_default {
        let p = parse_attrs("mode,ownership,timestamps", "-p")?;
        attrs.mode |= p.mode;
        attrs.ownership |= p.ownership;
        attrs.timestamps |= p.timestamps;
    }
    if let Some(list) = &args.preserve {
        let p = parse_attrs(list, "--preserve")?;
        attrs.mode |= p.mode;
        attrs.ownership |= p.ownership;
        attrs.timestamps |= p.timestamps;
        attrs.links |= p.links;
        attrs.xattr |= p.xattr;
    }
    if let Some(list) = &args.no_preserve {
        let p = parse_attrs(list, "--no-preserve")?;
        attrs.mode &= !p.mode;
        attrs.ownership &= !p.ownership;
        attrs.timestamps &= !p.timestamps;
        attrs.links &= !p.links;
        attrs.xattr &= !p.xattr;
    }
    let deref_flags = [
        args.dereference,
        args.no_dereference,
        args.dereference_command_line,
    ];
    if deref_flags.iter().filter(|f| **f).count() > 1 {
        return Err("-L, -P and -H are mutually exclusive".into());
    }
    if args.dereference {
        deref = Some(Dereference::Always);
    } else if args.no_dereference {
        deref = Some(Dereference::Never);
    } else if args.dereference_command_line {
        deref = Some(Dereference::CommandLine);
    }
    let mut overwrite = Overwrite::Replace;
    let mut update = Update::All;
    if args.dedupe && args.update != Some(UpdateArg::Identical) {
        return Err("--dedupe needs --update=identical".into());
    }
    if args.no_clobber {
        overwrite = Overwrite::NoClobber;
    }
    if args.update_older {
        match args.update {
            None | Some(UpdateArg::Older) => {}
            Some(_) => return Err("-u means --update=older; give one of them".into()),
        }
    }
    match args.update {
        Some(UpdateArg::Older) => update = Update::IfOlder,
        None if args.update_older => update = Update::IfOlder,
        Some(UpdateArg::None) => overwrite = Overwrite::NoClobber,
        Some(UpdateArg::Identical) => {
            update = if args.dedupe {
                Update::IfDifferentDedupe
            } else {
                Update::IfDifferent
            };
        }
        Some(UpdateArg::All) | None => {}
    }
    if args.no_clobber && args.update == Some(UpdateArg::All) {
        return Err("--no-clobber and --update=all contradict each other".into());
    }
    if args.target_directory.is_some() && args.no_target_directory {
        return Err("cannot combine --target-directory (-t) and --no-target-directory (-T)".into());
    }
    let reflink = match args.reflink {
        None | Some(ReflinkArg::Auto) => Reflink::Auto,
        Some(ReflinkArg::Always) => Reflink::Always,
        Some(ReflinkArg::Never) => Reflink::Never,
    };
    let sparse = match args.sparse {
        None | Some(SparseArg::Auto) => Sparse::Auto,
        Some(SparseArg::Always) => Sparse::Always,
        Some(SparseArg::Never) => Sparse::Never,
    };
    let preserve = Preserve {
        mode: attrs.mode,
        timestamps: attrs.timestamps,
        ownership: attrs.ownership,
        xattrs: attrs.xattr,
    };
    let copy = CopyOptions::new()
        .reflink(reflink)
        .sparse(sparse)
        .overwrite(overwrite)
        .update(update)
        .atomic(args.atomic)
        .fsync(args.fsync)
        .preserve(preserve);
    let mut tree = TreeOptions::new()
        .copy_options(copy.clone())
        .fail_fast(args.fail_fast)
        .preserve_hard_links(attrs.links)
        .copy_special(copy_special)
        .record_entries(args.verbose || args.json);
    if let Some(j) = args.jobs {
        tree = tree.jobs(j as usize);
    }
    Ok(Settings {
        recursive: args.recursive || args.archive,
        deref,
        copy,
        tree,
    })
}

/// Runs `cow cp`.
pub(crate) fn run(args: CpArgs) -> u8 {
    let settings = match settings(&args) {
        Ok(s) => s,
        Err(msg) => return usage(&msg),
    };
    let plan = match target::plan(
        &args.paths,
        args.target_directory.as_deref(),
        args.no_target_directory,
    ) {
        Ok(p) => p,
        Err(msg) => return usage(&msg),
    };
    fdlimit::raise();
    interrupt::install();
    let started = Instant::now();
    let progress = progress::Progress::start(args.progress, args.json);
    let mut results = Vec::new();
    let mut created: HashSet<PathBuf> = HashSet::new();
    for (src, dst) in plan.pairs() {
        let result = copy_one(&src, &dst, &settings, &plan, &progress, &mut created);
        progress.source_done();
        if !args.json {
            output::print_result(&result, args.verbose);
        }
        let stop = args.fail_fast && !result.ok();
        results.push(result);
        if stop {
            break;
        }
    }
    progress.finish();
    let elapsed = started.elapsed();
    let ok = results.iter().all(SourceResult::ok);
    if args.json {
        output::print_json(&results, elapsed, &settings.copy, &settings.tree);
    } else if args.stats {
        output::print_stats(&results, elapsed);
    }
    if ok { exit::OK } else { exit::FAILED }
}

fn usage(msg: &str) -> u8 {
    eprintln!("cow cp: {msg}");
    eprintln!("Try 'cow cp --help' for more information.");
    exit::USAGE
}

/// Copies one SOURCE to its target path.
fn copy_one(
    src: &Path,
    dst: &Path,
    s: &Settings,
    plan: &Plan,
    progress: &progress::Progress,
    created: &mut HashSet<PathBuf>,
) -> SourceResult {
    let mut result = SourceResult::new(src, dst);
    // Default dereference: -r copies command-line symlinks as symlinks;
    // without -r the source is followed (GNU).
    let deref = s.deref.unwrap_or(if s.recursive {
        Dereference::Never
    } else {
        Dereference::CommandLine
    });
    let kind = match target::source_kind(src, deref != Dereference::Never) {
        Ok(k) => k,
        Err(e) => {
            result.outcome = Outcome::Error(format!("cannot stat {}: {}", q(src), msg::os(&e)));
            return result;
        }
    };
    if plan.into_directory && !created.insert(dst.to_path_buf()) {
        result.outcome = Outcome::Error(format!(
            "will not overwrite just-created {} with {}",
            q(dst),
            q(src)
        ));
        return result;
    }
    match kind {
        SourceKind::Dir if !s.recursive => {
            result.outcome =
                Outcome::Error(format!("-r not specified; omitting directory {}", q(src)));
        }
        SourceKind::File => {
            if let Err(msg) = target::check_file_destination(dst) {
                result.outcome = Outcome::Error(msg);
                return result;
            }
            if target::is_fifo(dst) {
                result.outcome = match target::write_into_fifo(src, dst) {
                    Ok(n) => Outcome::Fifo(n),
                    Err(e) => Outcome::Error(e),
                };
                return result;
            }
            let copy = s.copy.clone().follow_symlinks(true);
            result.outcome = match copy.copy(src, dst) {
                Ok(r) => Outcome::File(Box::new(r)),
                Err(CopyError::DestinationExists { .. })
                    if copy.overwrite_policy() == Overwrite::NoClobber =>
                {
                    Outcome::Skipped
                }
                Err(e) => Outcome::Error(msg::copy_error(&e)),
            };
        }
        SourceKind::Other if !s.recursive => {
            result.outcome = Outcome::Error(format!(
                "{} is not a regular file or directory (use -r to recreate FIFOs and special files)",
                q(src)
            ));
        }
        SourceKind::Dir | SourceKind::Symlink | SourceKind::Other => {
            let mut opts = s.tree.clone().dereference(deref);
            if let Some(observer) = progress.observer() {
                opts = opts.progress(observer);
            }
            result.outcome = match copy_tree(src, dst, &opts) {
                Ok(r) => Outcome::Tree(Box::new(r)),
                Err(TreeError::Incomplete { report }) => Outcome::Tree(report),
                Err(e) => Outcome::Error(msg::tree_error(&e)),
            };
        }
    }
    result
}
