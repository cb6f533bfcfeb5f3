//! What GNU cp does to an existing destination before (or instead of)
//! copying a command-line file onto it: `-i` asks, `--backup` renames it
//! aside, `--remove-destination` removes it, `-f` removes it when it cannot
//! be opened; `-l`/`-s` make a link instead of a copy.

use std::ffi::{OsStr, OsString};
use std::fs;
use std::io::{self, BufRead, Write};
use std::path::{Path, PathBuf};

use clap::ValueEnum;
use cow_copy::tree::{EntryAction, TreeReport};
use cow_copy::{CopyOptions, CopyReport};

use crate::msg::{os, q};

/// `--backup=CONTROL` (GNU's names and aliases).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum BackupArg {
    /// Never make backups (even with --backup).
    #[value(alias = "off")]
    None,
    /// Numbered backups: NAME.~1~, NAME.~2~, ...
    #[value(alias = "t")]
    Numbered,
    /// Numbered if numbered backups exist, simple otherwise.
    #[value(alias = "nil")]
    Existing,
    /// Always simple backups: NAME + SUFFIX.
    #[value(alias = "never")]
    Simple,
}

/// How backups are named.
#[derive(Clone, Debug)]
pub(crate) struct Backup {
    pub(crate) control: BackupArg,
    pub(crate) suffix: OsString,
}

impl Backup {
    /// The control from `--backup[=CONTROL]`/`-b`, else `VERSION_CONTROL`,
    /// else `existing`; the suffix from `-S`, else `SIMPLE_BACKUP_SUFFIX`,
    /// else `~`. `None` when no backup was asked for.
    pub(crate) fn from_args(
        control: Option<BackupArg>,
        asked: bool,
        suffix: Option<&OsStr>,
    ) -> Result<Option<Backup>, String> {
        if !asked && control.is_none() {
            return Ok(None);
        }
        let control = match control {
            Some(c) => c,
            None => match std::env::var("VERSION_CONTROL") {
                Ok(v) if !v.is_empty() => BackupArg::from_str(&v, false).map_err(|_| {
                    format!(
                        "invalid VERSION_CONTROL {}: valid are none, off, numbered, t, \
                         existing, nil, simple, never",
                        q(&v)
                    )
                })?,
                _ => BackupArg::Existing,
            },
        };
        if control == BackupArg::None {
            return Ok(None);
        }
        let suffix = suffix
            .map(OsStr::to_owned)
            .or_else(|| std::env::var_os("SIMPLE_BACKUP_SUFFIX").filter(|s| !s.is_empty()))
            .unwrap_or_else(|| "~".into());
        if suffix.as_encoded_bytes().contains(&b'/') {
            return Err(format!(
                "invalid suffix {}, contains directory separator",
                q(&suffix)
            ));
        }
        Ok(Some(Backup { control, suffix }))
    }

    /// The backup name for `dst`.
    fn name_for(&self, dst: &Path) -> PathBuf {
        let base = dst.file_name().unwrap_or(dst.as_os_str()).to_owned();
        let dir = match dst.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        let highest = || highest_numbered(dir, &base);
        let numbered = match self.control {
            BackupArg::Numbered => Some(highest()),
            BackupArg::Existing => Some(highest()).filter(|n| *n > 0),
            BackupArg::Simple | BackupArg::None => None,
        };
        let mut name = dst.as_os_str().to_owned();
        match numbered {
            Some(n) => name.push(format!(".~{}~", n + 1)),
            None => name.push(&self.suffix),
        }
        PathBuf::from(name)
    }
}

/// The highest N of `BASE.~N~` in `dir` (0 when there is none).
fn highest_numbered(dir: &Path, base: &OsStr) -> u64 {
    let prefix = [base.as_encoded_bytes(), b".~"].concat();
    let Ok(entries) = fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .filter_map(|e| {
            let name = e.file_name();
            let rest = name.as_encoded_bytes().strip_prefix(prefix.as_slice())?;
            let digits = rest.strip_suffix(b"~")?;
            std::str::from_utf8(digits).ok()?.parse::<u64>().ok()
        })
        .max()
        .unwrap_or(0)
}

/// What to do to an existing destination.
#[derive(Clone, Debug, Default)]
pub(crate) struct Policy {
    /// `-i`: ask first.
    pub(crate) interactive: bool,
    /// `--backup`/`-b`.
    pub(crate) backup: Option<Backup>,
    /// `--remove-destination`, for `-l`/`-s` (a copy leaves it to the
    /// engine).
    pub(crate) remove: bool,
}

/// Whether to go on with the copy.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Go {
    /// Copy (the destination may have been moved aside or removed).
    Copy,
    /// The user said no to `-i`: leave the destination alone.
    Declined,
}

/// Whether `src` and `dst` are the same file, by the (device, inode) of
/// open descriptors. A destination that cannot be opened is not the
/// (readable) source; a source that cannot be opened gives `true`, so
/// nothing is removed before the engine reports the real error.
fn maybe_same_file(src: &Path, dst: &Path) -> bool {
    let Ok(s) = fs::File::open(src).and_then(|f| f.metadata()) else {
        return true;
    };
    let Ok(d) = fs::File::open(dst).and_then(|f| f.metadata()) else {
        return false;
    };
    same_id(&s, &d)
}

#[cfg(unix)]
fn same_id(a: &fs::Metadata, b: &fs::Metadata) -> bool {
    use std::os::unix::fs::MetadataExt;
    (a.dev(), a.ino()) == (b.dev(), b.ino())
}

#[cfg(not(unix))]
fn same_id(_: &fs::Metadata, _: &fs::Metadata) -> bool {
    // Without inode numbers here, never remove or move a destination that
    // might be the source: the engine's own check decides.
    true
}

/// Asks `question` on stderr and reads the answer from stdin (GNU: yes
/// when it starts with `y` or `Y`).
pub(crate) fn ask(question: &str) -> bool {
    let mut err = io::stderr().lock();
    let _ = write!(err, "cow cp: {question}? ");
    let _ = err.flush();
    let mut line = String::new();
    match io::stdin().lock().read_line(&mut line) {
        Ok(_) => line.trim_start().starts_with(['y', 'Y']),
        Err(_) => false,
    }
}

/// Applies `policy` to `dst` before `src` is copied or linked there.
pub(crate) fn before(src: &Path, dst: &Path, policy: &Policy) -> Result<Go, String> {
    let Ok(meta) = fs::symlink_metadata(dst) else {
        return Ok(Go::Copy);
    };
    if meta.is_dir() || maybe_same_file(src, dst) {
        // The copy itself refuses both, with its own message.
        return Ok(Go::Copy);
    }
    if policy.interactive && !ask(&format!("overwrite {}", q(dst))) {
        return Ok(Go::Declined);
    }
    if let Some(b) = &policy.backup {
        let to = b.name_for(dst);
        fs::rename(dst, &to)
            .map_err(|e| format!("cannot back up {} to {}: {}", q(dst), q(&to), os(&e)))?;
    }
    // `--remove-destination` itself is the engine's
    // (`RemoveDestination::Always`): it checks the entry is not the source
    // and removes it through the directory descriptor.
    Ok(Go::Copy)
}

/// Removes the non-directory `dst` (`-f`, `--remove-destination`).
pub(crate) fn remove(dst: &Path) -> Result<(), String> {
    fs::remove_file(dst).map_err(|e| format!("cannot remove {}: {}", q(dst), os(&e)))
}

/// Whether `-f` should remove `dst` and try again after the copy failed
/// with `kind`: the destination exists, is no directory, and could not be
/// opened for writing.
pub(crate) fn force_retry(dst: &Path, kind: io::ErrorKind) -> bool {
    kind == io::ErrorKind::PermissionDenied && fs::symlink_metadata(dst).is_ok_and(|m| !m.is_dir())
}

/// Which link `-l`/`-s` makes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum LinkKind {
    /// `-l`: a hard link to the source.
    Hard,
    /// `-s`: a symlink holding the source path as given.
    Symbolic,
}

/// Makes `dst` a link to `src`; with `replace` (`-f`,
/// `--remove-destination`) an existing non-directory `dst` is removed
/// first.
pub(crate) fn link(src: &Path, dst: &Path, kind: LinkKind, replace: bool) -> Result<(), String> {
    if replace && fs::symlink_metadata(dst).is_ok_and(|m| !m.is_dir()) && !maybe_same_file(src, dst)
    {
        remove(dst)?;
    }
    match kind {
        LinkKind::Hard => fs::hard_link(src, dst).map_err(|e| {
            format!(
                "cannot create hard link {} to {}: {}",
                q(dst),
                q(src),
                os(&e)
            )
        }),
        LinkKind::Symbolic => {
            // GNU: a relative target is only right from the current directory.
            let in_cwd = dst.parent().is_none_or(|p| p.as_os_str().is_empty());
            if src.is_relative() && !in_cwd {
                return Err(format!(
                    "{}: can make relative symbolic links only in current directory",
                    q(dst)
                ));
            }
            symlink(src, dst).map_err(|e| {
                format!(
                    "cannot create symbolic link {} to {}: {}",
                    q(dst),
                    q(src),
                    os(&e)
                )
            })
        }
    }
}

#[cfg(unix)]
fn symlink(src: &Path, dst: &Path) -> io::Result<()> {
    std::os::unix::fs::symlink(src, dst)
}

#[cfg(windows)]
fn symlink(src: &Path, dst: &Path) -> io::Result<()> {
    std::os::windows::fs::symlink_file(src, dst)
}

#[cfg(not(any(unix, windows)))]
fn symlink(_: &Path, _: &Path) -> io::Result<()> {
    Err(io::Error::from(io::ErrorKind::Unsupported))
}

/// `-f` inside a tree: every file whose existing destination could not be
/// opened (permission denied) is removed and copied again by the engine;
/// those that now succeed leave the report's failures and count as copied.
pub(crate) fn retry_tree(report: &mut TreeReport, copy: &CopyOptions) {
    let failures = std::mem::take(&mut report.failures);
    for f in failures {
        let denied = f.op == "copy" && force_retry(&f.destination, f.kind);
        let retried = denied
            && fs::remove_file(&f.destination).is_ok()
            && match copy.copy(&f.path, &f.destination) {
                Ok(r) => {
                    let t = &mut report.totals;
                    t.failed = t.failed.saturating_sub(1);
                    t.files += 1;
                    t.bytes_cloned += r.bytes_cloned;
                    t.bytes_copied += r.bytes_copied;
                    t.hole_bytes += r.hole_bytes;
                    mark_replaced(report, &f.path, r);
                    true
                }
                Err(_) => false,
            };
        if !retried {
            report.failures.push(f);
        }
    }
}

/// Turns the recorded entry of `src` (if entries are recorded) from failed
/// into replaced.
fn mark_replaced(report: &mut TreeReport, src: &Path, r: CopyReport) {
    let Some(entries) = report.entries.as_mut() else {
        return;
    };
    if let Some(e) = entries
        .iter_mut()
        .find(|e| e.action == EntryAction::Failed && src.ends_with(&e.path))
    {
        e.action = EntryAction::Replaced;
        e.report = Some(r);
    }
}
