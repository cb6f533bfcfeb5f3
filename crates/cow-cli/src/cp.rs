//! `cow cp`: copy files and trees like GNU `cp`, cloning where the
//! filesystem can, and say what happened.

use std::collections::HashSet;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Instant;

use clap::{Args, ValueEnum};
use cow_copy::tree::{Dereference, TreeError, TreeOptions};
use cow_copy::{CopyError, CopyOptions, Overwrite, Preserve, Reflink, RemoveDestination, Sparse};

use crate::exit;
use crate::msg::{self, q};

mod existing;
mod failfast;
mod interrupt;
mod output;
mod overwrite;
mod progress;
mod target;

use existing::{BackupArg, Go, LinkKind};
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
    --dedupe also shares the blocks, --trust-mtime skips files whose size
    and modification time match without reading them. -u and --update=older compare
    modification times to the nanosecond.
  * -n skips existing files silently (exit 0).
  * A repeated option counts once, the last one wins (-L/-P/-H, -n/-i too).
  * Not supported, and why:
    - -l and -s with -r, and -i and --backup with -r onto an existing
      destination: the tree walker decides per file in parallel workers and
      has no hook to ask, link or rename there yet; cow refuses instead of
      silently copying. (-i/--backup into a new tree have nothing to do.)
    - -Z/--context and --preserve=context: cow does not set SELinux contexts.
      Without SELinux (this kernel has none enabled) -Z is ignored, as GNU cp
      does; with SELinux enabled it is refused. Labels travel as xattrs with
      --preserve=xattr.
    - --strip-trailing-slashes, --attributes-only, --keep-directory-symlink,
      --debug: not implemented (cow's -v already says how each file's bytes
      moved).
  * --stats, --json, --progress, --atomic, --retry-changed, --fail-fast and -j
    are cow additions.

Power cuts: without --atomic a file is rewritten in place (like GNU cp), and a
power cut or crash during the copy can leave it torn: neither old nor new.
With --atomic it is wholly old or wholly new after any crash; add --fsync to
also know it is new once cow returns.

Changing sources: a file whose size, mtime or ctime changes while its bytes
are read is reported (\"source changed during the copy\") and makes the exit
status 1, like GNU tar. A clone (--reflink on btrfs/XFS) is a point-in-time
snapshot and is never mixed.

Exit status: 0 everything was copied, 1 some file failed (each failure is printed
with its path and the failing call; the others were copied) or a source changed
during the copy, 2 usage error.";

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
#[command(after_help = AFTER_HELP, args_override_self = true)]
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

    /// Do not overwrite an existing file (skip it silently; overrides an
    /// earlier -i).
    #[arg(short = 'n', long = "no-clobber", overrides_with = "interactive")]
    no_clobber: bool,

    /// Ask before overwriting an existing file (the question goes to
    /// stderr, the answer is read from stdin; overrides an earlier -n).
    #[arg(short = 'i', long = "interactive", overrides_with = "no_clobber")]
    interactive: bool,

    /// If an existing destination file cannot be opened, remove it and try
    /// again.
    #[arg(short = 'f', long = "force")]
    force: bool,

    /// Remove each existing destination file before copying (in trees the
    /// copy replaces it by a rename, which leaves the same result: a new
    /// file, other hard links to the old one untouched).
    #[arg(long)]
    remove_destination: bool,

    /// Make a backup of each existing destination file: none (off),
    /// numbered (t), existing (nil, the default), simple (never).
    #[arg(long, value_enum, value_name = "CONTROL", num_args = 0..=1, require_equals = true, default_missing_value = "existing")]
    backup: Option<BackupArg>,

    /// Like --backup, but takes no argument (VERSION_CONTROL decides).
    #[arg(short = 'b')]
    backup_default: bool,

    /// Backup suffix (default: SIMPLE_BACKUP_SUFFIX, else ~).
    #[arg(short = 'S', long = "suffix", value_name = "SUFFIX")]
    suffix: Option<OsString>,

    /// Hard link files instead of copying.
    #[arg(short = 'l', long = "link", overrides_with = "symbolic_link")]
    link: bool,

    /// Make symbolic links instead of copying.
    #[arg(short = 's', long = "symbolic-link", overrides_with = "link")]
    symbolic_link: bool,

    /// Stay on this filesystem: directories on other filesystems (mount
    /// points) are created, their contents are not copied.
    #[arg(short = 'x', long = "one-file-system")]
    one_file_system: bool,

    /// Use the full source path under DIRECTORY (`--parents a/b/c d` makes
    /// d/a/b/c, creating d/a/b).
    #[arg(long)]
    parents: bool,

    /// SELinux: set the default context (see "Not supported" below).
    #[arg(short = 'Z')]
    selinux_default: bool,

    /// SELinux: set the context to CTX, or the default (see "Not supported"
    /// below).
    #[arg(long, value_name = "CTX", num_args = 0..=1, require_equals = true, default_missing_value = "")]
    context: Option<String>,

    /// Same as --preserve=mode,ownership,timestamps.
    #[arg(short = 'p')]
    preserve_default: bool,

    /// Preserve the listed attributes: mode, ownership, timestamps, links,
    /// xattr, all (default: mode,ownership,timestamps).
    #[arg(long, value_name = "ATTR_LIST", num_args = 0..=1, require_equals = true, default_missing_value = "mode,ownership,timestamps", action = clap::ArgAction::Append)]
    preserve: Vec<String>,

    /// Do not preserve the listed attributes.
    #[arg(long, value_name = "ATTR_LIST", action = clap::ArgAction::Append)]
    no_preserve: Vec<String>,

    /// Always follow symlinks in SOURCE.
    #[arg(short = 'L', long = "dereference", overrides_with_all = ["no_dereference", "dereference_command_line"])]
    dereference: bool,

    /// Never follow symlinks in SOURCE (the default with -r).
    #[arg(short = 'P', long = "no-dereference", overrides_with_all = ["dereference", "dereference_command_line"])]
    no_dereference: bool,

    /// Follow symlinks given on the command line only.
    #[arg(short = 'H', overrides_with_all = ["dereference", "no_dereference"])]
    dereference_command_line: bool,

    /// Which existing destination files to replace: all, none, older
    /// (the default of a bare --update), or identical (leave files whose
    /// content is already the same untouched: no write, so their blocks stay
    /// shared with snapshots).
    #[arg(long, value_enum, value_name = "WHICH", num_args = 0..=1, require_equals = true, default_missing_value = "older", overrides_with = "update_older")]
    update: Option<UpdateArg>,

    /// Same as --update=older: replace only destination files older than
    /// their source (missing ones are copied).
    #[arg(short = 'u', overrides_with = "update")]
    update_older: bool,

    /// With --update=identical: also make the source share the identical
    /// destination's blocks (FIDEDUPERANGE).
    #[arg(long)]
    dedupe: bool,

    /// With --update=identical: a destination whose size and modification
    /// time (to the nanosecond) equal the source's is taken as identical
    /// without being read (rsync's quick check); others are still compared.
    #[arg(long, conflicts_with = "dedupe")]
    trust_mtime: bool,

    /// Write each file to a temporary sibling and rename it over the
    /// destination: an existing file stays whole until the copy is complete,
    /// and after a power cut it is wholly old or wholly new (copied bytes are
    /// synced before the rename). Without it a crash can tear a file.
    #[arg(long)]
    atomic: bool,

    /// fsync every copied file (and, with --atomic, its directory): each
    /// file is on disk when cow returns.
    #[arg(long)]
    fsync: bool,

    /// Copy a file up to N more times when its source changes while it is
    /// read, before warning "source changed during the copy".
    #[arg(long, value_name = "N", default_value_t = 0)]
    retry_changed: u32,

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
    /// The options of each file inside a tree (`copy`, atomic with
    /// --remove-destination).
    tree_copy: CopyOptions,
    tree: TreeOptions,
    /// -i, --backup, --remove-destination.
    existing: existing::Policy,
    /// -f.
    force: bool,
    /// -l, -s.
    link: Option<LinkKind>,
    /// --parents.
    parents: bool,
}

impl Settings {
    /// Lets `observer` follow the bytes of every copy.
    fn observed(mut self, observer: cow_copy::MovedFn) -> Settings {
        self.copy = self.copy.observer(observer.clone());
        self.tree_copy = self.tree_copy.observer(observer);
        self.tree = self.tree.copy_options(self.tree_copy.clone());
        self
    }
}

/// `-Z`/`--context`: cow sets no SELinux context. Without SELinux that is
/// what GNU cp does too (it ignores the option); with SELinux it is refused.
fn check_context(args: &CpArgs) -> Result<(), String> {
    if !args.selinux_default && args.context.is_none() {
        return Ok(());
    }
    if Path::new("/sys/fs/selinux/enforce").exists() {
        return Err(
            "-Z/--context: setting SELinux security contexts is not supported \
             (labels can travel as xattrs with --preserve=xattr)"
                .into(),
        );
    }
    Ok(())
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
    for list in &args.preserve {
        let p = parse_attrs(list, "--preserve")?;
        attrs.mode |= p.mode;
        attrs.ownership |= p.ownership;
        attrs.timestamps |= p.timestamps;
        attrs.links |= p.links;
        attrs.xattr |= p.xattr;
    }
    for list in &args.no_preserve {
        let p = parse_attrs(list, "--no-preserve")?;
        attrs.mode &= !p.mode;
        attrs.ownership &= !p.ownership;
        attrs.timestamps &= !p.timestamps;
        attrs.links &= !p.links;
        attrs.xattr &= !p.xattr;
    }
    if args.dereference {
        deref = Some(Dereference::Always);
    } else if args.no_dereference {
        deref = Some(Dereference::Never);
    } else if args.dereference_command_line {
        deref = Some(Dereference::CommandLine);
    }
    let overwrite = overwrite::policy(overwrite::Flags {
        no_clobber: args.no_clobber,
        update: args.update,
        update_older: args.update_older,
        dedupe: args.dedupe,
        trust_mtime: args.trust_mtime,
    })?;
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
        .atomic(args.atomic)
        .fsync(args.fsync)
        .retry_changed(args.retry_changed)
        .preserve(preserve)
        .remove_destination(if args.remove_destination {
            // The engine checks the entry is not the source, removes it
            // through the directory descriptor and creates the new file
            // with O_EXCL.
            RemoveDestination::Always
        } else if attrs.links {
            // Like `cp -a`: a destination with other hard links is
            // replaced, never written through.
            RemoveDestination::IfLinked
        } else {
            RemoveDestination::Never
        });
    let mut tree = TreeOptions::new()
        .copy_options(copy.clone())
        .fail_fast(args.fail_fast)
        .preserve_hard_links(attrs.links)
        .copy_special(copy_special)
        .record_entries(args.verbose || args.json)
        .one_file_system(args.one_file_system);
    // With --remove-destination a tree's files are replaced by a rename:
    // the same end state as removing each first (a new file; other hard
    // links keep the old content), and never a moment without the file.
    let tree_copy = copy.clone().atomic(args.atomic || args.remove_destination);
    tree = tree.copy_options(tree_copy.clone());
    if let Some(j) = args.jobs {
        tree = tree.jobs(j as usize);
    }
    check_context(args)?;
    let existing = existing::Policy {
        interactive: args.interactive,
        backup: existing::Backup::from_args(
            args.backup,
            args.backup_default,
            args.suffix.as_deref(),
        )?,
        remove: args.remove_destination,
    };
    let link = if args.link {
        Some(LinkKind::Hard)
    } else if args.symbolic_link {
        Some(LinkKind::Symbolic)
    } else {
        None
    };
    Ok(Settings {
        recursive: args.recursive || args.archive,
        deref,
        copy,
        tree_copy,
        tree,
        existing,
        force: args.force,
        link,
        parents: args.parents,
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
        settings.parents,
    ) {
        Ok(p) => p,
        Err(msg) => return usage(&msg),
    };
    crate::fdlimit::raise();
    interrupt::install();
    let started = Instant::now();
    let progress = progress::Progress::start(args.progress, args.json);
    let settings = match progress.byte_observer() {
        Some(o) => settings.observed(o),
        None => settings,
    };
    let mut results = Vec::new();
    let mut created: HashSet<PathBuf> = HashSet::new();
    for (src, dst) in plan.pairs() {
        if settings.parents {
            if let Err(e) = target::make_parents(&dst) {
                let mut result = SourceResult::new(&src, &dst);
                result.outcome = Outcome::Error(e);
                if !args.json {
                    output::print_result(&result, args.verbose);
                }
                results.push(result);
                continue;
            }
        }
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
    // A source that changed while it was read fails the run, like tar.
    let ok = results.iter().all(SourceResult::ok) && output::totals(&results).source_changed == 0;
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
        _ if s.link.is_some() && !(s.recursive && kind == SourceKind::Dir) => {
            result.outcome = link_one(src, dst, s);
        }
        SourceKind::File => {
            progress.file_started(src);
            result.outcome = copy_file(src, dst, s);
        }
        SourceKind::Other if !s.recursive => {
            result.outcome = Outcome::Error(format!(
                "{} is not a regular file or directory (use -r to recreate FIFOs and special files)",
                q(src)
            ));
        }
        SourceKind::Dir | SourceKind::Symlink | SourceKind::Other => {
            // Nothing to ask about, back up or link over in a new tree.
            let fresh = std::fs::symlink_metadata(dst).is_err() && s.link.is_none();
            if let Some(msg) = tree_unsupported(s).filter(|_| !fresh) {
                result.outcome = Outcome::Error(format!(
                    "{msg} with -r is not supported ({} is a tree)",
                    q(src)
                ));
                return result;
            }
            if kind == SourceKind::Dir {
                if let Err(msg) = failfast::check_tree_clones(src, dst, &s.tree_copy) {
                    result.outcome = Outcome::Error(msg);
                    return result;
                }
            }
            let mut opts = s.tree.clone().dereference(deref);
            if let Some(observer) = progress.observer() {
                opts = opts.progress(observer);
            }
            result.outcome = match opts.copy(src, dst) {
                Ok(r) => Outcome::Tree(Box::new(r)),
                Err(TreeError::Incomplete { mut report }) => {
                    if s.force {
                        existing::retry_tree(&mut report, &s.copy);
                    }
                    Outcome::Tree(report)
                }
                Err(e) => Outcome::Error(msg::tree_error(&e)),
            };
        }
    }
    result
}

/// The option that the tree walker cannot honour, if one was given.
fn tree_unsupported(s: &Settings) -> Option<&'static str> {
    if s.link == Some(LinkKind::Hard) {
        Some("-l (--link)")
    } else if s.link == Some(LinkKind::Symbolic) {
        Some("-s (--symbolic-link)")
    } else if s.existing.interactive {
        Some("-i (--interactive)")
    } else if s.existing.backup.is_some() {
        Some("--backup")
    } else {
        None
    }
}

/// `-l`/`-s` for one command-line operand.
fn link_one(src: &Path, dst: &Path, s: &Settings) -> Outcome {
    let Some(kind) = s.link else {
        return Outcome::Error("no link asked for".into());
    };
    match existing::before(src, dst, &s.existing) {
        Ok(Go::Copy) => {}
        Ok(Go::Declined) => return Outcome::Skipped,
        Err(e) => return Outcome::Error(e),
    }
    let replace = s.force || s.existing.remove;
    match existing::link(src, dst, kind, replace) {
        Ok(()) => Outcome::Linked(kind),
        Err(e) => Outcome::Error(e),
    }
}

/// Copies the regular file `src` (a command-line operand) to `dst`.
fn copy_file(src: &Path, dst: &Path, s: &Settings) -> Outcome {
    if let Err(msg) = target::check_file_destination(dst) {
        return Outcome::Error(msg);
    }
    if target::is_fifo(dst) {
        return match target::write_into_fifo(src, dst) {
            Ok(n) => Outcome::Fifo(n),
            Err(e) => Outcome::Error(e),
        };
    }
    let copy = s
        .copy
        .clone()
        .follow_symlinks(true)
        .write_through_dangling(false);
    if copy.overwrite_policy() != Overwrite::NoClobber {
        match existing::before(src, dst, &s.existing) {
            Ok(Go::Copy) => {}
            Ok(Go::Declined) => return Outcome::Skipped,
            Err(e) => return Outcome::Error(e),
        }
    }
    let mut attempt = copy.copy(src, dst);
    if let Err(e) = &attempt {
        if s.force && existing::force_retry(dst, e.kind()) {
            if let Err(msg) = existing::remove(dst) {
                return Outcome::Error(msg);
            }
            attempt = copy.copy(src, dst);
        }
    }
    match attempt {
        Ok(r) => Outcome::File(Box::new(r)),
        Err(CopyError::DestinationExists { .. })
            if copy.overwrite_policy() == Overwrite::NoClobber =>
        {
            Outcome::Skipped
        }
        Err(e) => Outcome::Error(msg::copy_error(&e)),
    }
}
