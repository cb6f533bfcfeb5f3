//! The tools compared: cow (the library, in process), `std::fs::copy`, the
//! `reflink-copy` crate, GNU `cp --reflink=auto` (a process) and a plain
//! 64 KiB read/write loop. Trees: cow uses `TreeOptions::copy`, cp uses `cp -rT`,
//! the others one recursive walk (below) around their single-file copy.
//! The update workloads add cow with `--trust-mtime`, `rsync -a` and
//! `rsync -a --checksum`.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use cow_copy::tree::TreeOptions;
use cow_copy::{CopyOptions, Overwrite, Preserve};

use super::workloads::Workload;

/// A tool of the matrix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tool {
    /// `cow_copy::copy` / `cow_copy::tree::TreeOptions::copy`.
    Cow,
    /// The same with `CopyOptions::atomic(true)`: the cost of crash
    /// atomicity (dense and tree workloads only).
    CowAtomic,
    /// `std::fs::copy`.
    Std,
    /// `reflink_copy::reflink_or_copy`.
    ReflinkCopy,
    /// GNU `cp --reflink=auto` (`cp -rT --reflink=auto` for trees).
    Cp,
    /// `read`/`write` with a 64 KiB buffer.
    RwLoop,
    /// cow with `Overwrite::IfDifferentTrustMtime` (`--trust-mtime`), update
    /// workloads only.
    CowTrust,
    /// `rsync -a` (update workloads only).
    Rsync,
    /// `rsync -a --checksum` (update workloads only).
    RsyncChecksum,
}

impl Tool {
    /// Every tool, cow first.
    pub(crate) const ALL: [Tool; 9] = [
        Tool::Cow,
        Tool::CowAtomic,
        Tool::Std,
        Tool::ReflinkCopy,
        Tool::Cp,
        Tool::RwLoop,
        Tool::CowTrust,
        Tool::Rsync,
        Tool::RsyncChecksum,
    ];

    /// The tools that run on `w`, cow first: updates add cow
    /// `--trust-mtime` and rsync; the package update runs only the tools
    /// that keep metadata (`-a`).
    pub(crate) fn for_workload(w: &Workload) -> Vec<Tool> {
        let updaters = [Tool::CowTrust, Tool::Rsync, Tool::RsyncChecksum];
        match (w.is_update(), w.is_archive()) {
            (false, _) => Tool::ALL[..5].to_vec(),
            (true, false) => Tool::ALL.to_vec(),
            (true, true) => [Tool::Cow, Tool::Cp].into_iter().chain(updaters).collect(),
        }
    }

    /// The name in the table.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Tool::Cow => "cow",
            Tool::CowAtomic => "cow --atomic",
            Tool::Std => "std::fs::copy",
            Tool::ReflinkCopy => "reflink-copy",
            Tool::Cp => "cp",
            Tool::RwLoop => "rw-loop",
            Tool::CowTrust => "cow --trust-mtime",
            Tool::Rsync => "rsync -a",
            Tool::RsyncChecksum => "rsync -a --checksum",
        }
    }

    /// What exactly runs, for the docs and the JSON.
    pub(crate) fn how(self, tree: bool) -> &'static str {
        match (self, tree) {
            (Tool::Cow, false) => "cow_copy::copy(src, dst), in process",
            (Tool::Cow, true) => {
                "TreeOptions::new().copy(src, dst), in process; for update-* with CopyOptions::overwrite(Overwrite::IfDifferent); pkg-* with Preserve::all() (cp -a)"
            }
            (Tool::CowAtomic, false) => {
                "CopyOptions::new().atomic(true).copy(src, dst): temporary, fdatasync unless cloned, rename"
            }
            (Tool::CowAtomic, true) => {
                "TreeOptions::copy with CopyOptions::atomic(true): temporaries, one syncfs per batch of up to 512, renames"
            }
            (Tool::Std, false) => "std::fs::copy(src, dst)",
            (Tool::Std, true) => "a recursive walk calling std::fs::copy per file",
            (Tool::ReflinkCopy, false) => "reflink_copy::reflink_or_copy(src, dst)",
            (Tool::ReflinkCopy, true) => {
                "a recursive walk calling reflink_copy::reflink_or_copy per file (an existing destination file is removed first: reflink_or_copy refuses to overwrite)"
            }
            (Tool::Cp, false) => "GNU cp --reflink=auto src dst (a process)",
            (Tool::Cp, true) => "GNU cp -rT --reflink=auto src dst (a process)",
            (Tool::RwLoop, false) => "read/write with a 64 KiB buffer, holes not kept",
            (Tool::RwLoop, true) => {
                "a recursive walk doing read/write with a 64 KiB buffer per file"
            }
            (Tool::CowTrust, _) => {
                "as cow, with CopyOptions::overwrite(Overwrite::IfDifferentTrustMtime) (cow cp --update=identical --trust-mtime)"
            }
            (Tool::Rsync, _) => "rsync -a src/ dst/ (a process)",
            (Tool::RsyncChecksum, _) => "rsync -a --checksum src/ dst/ (a process)",
        }
    }

    /// Whether the tool runs on `workload` (`cow --atomic` only where its
    /// cost is recorded: the dense and plain tree workloads).
    pub(crate) fn runs_on(self, workload: &str) -> bool {
        self != Tool::CowAtomic
            || ["dense-64M", "dense-8M", "tree-10k", "tree-500"].contains(&workload)
    }

    /// Copies one file.
    pub(crate) fn copy_file(self, src: &Path, dst: &Path) -> io::Result<()> {
        match self {
            Tool::Cow => cow_copy::copy(src, dst).map(drop),
            Tool::CowAtomic => CopyOptions::new()
                .atomic(true)
                .copy(src, dst)
                .map(drop)
                .map_err(io::Error::from),
            Tool::Std => fs::copy(src, dst).map(drop),
            Tool::ReflinkCopy => reflink_file(src, dst),
            Tool::Cp => cp(&["--reflink=auto"], src, dst),
            Tool::RwLoop => rw_loop(src, dst),
            Tool::CowTrust | Tool::Rsync | Tool::RsyncChecksum => Err(io::Error::other(format!(
                "{} copies trees only",
                self.name()
            ))),
        }
    }

    /// Copies a tree (merging into an existing destination, overwriting
    /// files). With `update`, cow leaves identical files alone
    /// (`Overwrite::IfDifferent`, or `IfDifferentTrustMtime` for
    /// [`Tool::CowTrust`]); std, reflink-copy, rw-loop and cp have no such
    /// notion and overwrite every file. With `archive` cow and cp keep every
    /// attribute (`cp -a`); rsync always runs with `-a`.
    pub(crate) fn copy_tree(
        self,
        src: &Path,
        dst: &Path,
        update: bool,
        archive: bool,
    ) -> io::Result<()> {
        match self {
            Tool::Cow | Tool::CowAtomic | Tool::CowTrust => {
                let mut copy = CopyOptions::new().atomic(self == Tool::CowAtomic);
                if update {
                    copy = copy.overwrite(if self == Tool::CowTrust {
                        Overwrite::IfDifferentTrustMtime
                    } else {
                        Overwrite::IfDifferent
                    });
                }
                if archive {
                    copy = copy.preserve(Preserve::all());
                }
                let mut opts = TreeOptions::new().copy_options(copy);
                if let Some(j) = std::env::var("COW_BENCH_TREE_JOBS")
                    .ok()
                    .and_then(|v| v.parse().ok())
                {
                    opts = opts.jobs(j);
                }
                let report = opts
                    .copy(src, dst)
                    .map_err(|e| io::Error::new(e.kind(), e.to_string()))?;
                if report.is_complete() {
                    Ok(())
                } else {
                    Err(io::Error::other(format!(
                        "copy_tree incomplete: {} failure(s)",
                        report.failures.len()
                    )))
                }
            }
            Tool::Std => walk(src, dst, &|s, d| fs::copy(s, d).map(drop)),
            Tool::ReflinkCopy => walk(src, dst, &reflink_file),
            Tool::Cp if archive => cp(&["-aT", "--reflink=auto"], src, dst),
            Tool::Cp => cp(&["-rT", "--reflink=auto"], src, dst),
            Tool::RwLoop => walk(src, dst, &rw_loop),
            Tool::Rsync => rsync(&[], src, dst),
            Tool::RsyncChecksum => rsync(&["--checksum"], src, dst),
        }
    }
}

/// `rsync -a ARGS src/ dst/`, installing rsync (apt-get) the first time it
/// is missing.
fn rsync(args: &[&str], src: &Path, dst: &Path) -> io::Result<()> {
    static READY: OnceLock<Result<(), String>> = OnceLock::new();
    READY
        .get_or_init(|| {
            if Command::new("rsync").arg("--version").output().is_ok() {
                return Ok(());
            }
            eprintln!("xtask bench: rsync missing; apt-get install -y rsync");
            let ok = Command::new("apt-get")
                .args(["install", "-y", "-q", "rsync"])
                .status()
                .is_ok_and(|s| s.success());
            if ok {
                Ok(())
            } else {
                Err("rsync is missing and apt-get install rsync failed".into())
            }
        })
        .clone()
        .map_err(io::Error::other)?;
    let dir = |p: &Path| {
        let mut s = p.as_os_str().to_owned();
        s.push("/");
        s
    };
    run_quiet(
        Command::new("rsync")
            .arg("-a")
            .args(args)
            .arg("--")
            .arg(dir(src))
            .arg(dir(dst)),
    )
}

fn reflink_file(src: &Path, dst: &Path) -> io::Result<()> {
    match fs::remove_file(dst) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    reflink_copy::reflink_or_copy(src, dst).map(drop)
}

fn cp(args: &[&str], src: &Path, dst: &Path) -> io::Result<()> {
    run_quiet(Command::new("cp").args(args).arg("--").arg(src).arg(dst))
}

/// Runs `cmd` with no input and no output; its stderr is the error.
fn run_quiet(cmd: &mut Command) -> io::Result<()> {
    let name = cmd.get_program().to_string_lossy().into_owned();
    let out = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()?;
    if out.status.success() {
        Ok(())
    } else {
        Err(io::Error::other(format!(
            "{name} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )))
    }
}

fn rw_loop(src: &Path, dst: &Path) -> io::Result<()> {
    let mut from = File::open(src)?;
    let mut to = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(dst)?;
    let mut buf = vec![0u8; 64 << 10];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        to.write_all(&buf[..n])?;
    }
}

/// The one recursive walk shared by the tools without a tree copy of
/// their own: directories are created (or reused), regular files copied by
/// `file`, symlinks recreated, sequentially.
fn walk(src: &Path, dst: &Path, file: &dyn Fn(&Path, &Path) -> io::Result<()>) -> io::Result<()> {
    match fs::create_dir(dst) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists && dst.is_dir() => {}
        Err(e) => return Err(e),
    }
    for entry in fs::read_dir(src)? {
        let entry = entry?;
        let ty = entry.file_type()?;
        let to = dst.join(entry.file_name());
        if ty.is_dir() {
            walk(&entry.path(), &to, file)?;
        } else if ty.is_file() {
            file(&entry.path(), &to)?;
        } else if ty.is_symlink() {
            // node_modules/.bin holds symlinks: recreated, as every tree
            // copy does.
            std::os::unix::fs::symlink(fs::read_link(entry.path())?, &to)?;
        } else {
            return Err(io::Error::other(format!(
                "bench walk: unexpected entry type at {}",
                entry.path().display()
            )));
        }
    }
    Ok(())
}
