//! `cow clean DIR...`: remove the temporaries that killed atomic copies left
//! behind (`.NAME.cow-tmp-XXXXXX`), never one that is still being written.
//!
//! A temporary is removed only when no process has it open (Linux: every
//! `/proc/PID/fd` is looked at; an atomic copy keeps its temporary open from
//! creation to rename) and it was last written at least `--min-age` seconds
//! ago. Where the open files cannot all be looked at (not Linux, or other
//! users' processes without root), the age alone decides and must be at
//! least an hour.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use cow_copy::leftovers::{self, Temporary};

use crate::exit;

/// The age below which a temporary is never removed when open files could
/// not all be checked.
const UNCHECKED_MIN_AGE: Duration = Duration::from_secs(3600);

/// Arguments of `cow clean`.
#[derive(Args, Debug)]
pub(crate) struct CleanArgs {
    /// Directories to look in.
    #[arg(required = true, value_name = "DIR")]
    dirs: Vec<PathBuf>,
    /// Also look in subdirectories (symlinks are not followed).
    #[arg(short = 'r', long)]
    recursive: bool,
    /// Only list what would be removed.
    #[arg(short = 'n', long)]
    dry_run: bool,
    /// Keep temporaries written less than this many seconds ago.
    #[arg(long, value_name = "SECONDS", default_value_t = 60)]
    min_age: u64,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

/// What was decided for one temporary.
#[derive(Debug, serde::Serialize)]
struct Decision {
    path: PathBuf,
    len: u64,
    age_seconds: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    open_by_pid: Option<u32>,
    action: Action,
    /// Why it was kept, or why removing it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
}

#[derive(Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
enum Action {
    Removed,
    WouldRemove,
    Kept,
    Failed,
}

/// Runs `cow clean`.
pub(crate) fn run(args: CleanArgs) -> u8 {
    let mut code = exit::OK;
    let mut decisions = Vec::new();
    for dir in &args.dirs {
        let found = match leftovers::find(dir, args.recursive) {
            Ok(f) => f,
            Err(e) => {
                eprintln!("cow clean: cannot read directory {}: {e}", dir.display());
                code = exit::FAILED;
                continue;
            }
        };
        for (d, e) in &found.unreadable {
            eprintln!("cow clean: cannot read directory {}: {e}", d.display());
            code = exit::FAILED;
        }
        let min_age = if found.open_files_checked {
            Duration::from_secs(args.min_age)
        } else {
            Duration::from_secs(args.min_age).max(UNCHECKED_MIN_AGE)
        };
        for t in found.temporaries {
            let d = decide(t, min_age, found.open_files_checked, args.dry_run);
            if d.action == Action::Failed {
                code = exit::FAILED;
            }
            if !args.json {
                print(&d);
            }
            decisions.push(d);
        }
    }
    if args.json && !crate::print_json("clean", &decisions) {
        code = exit::FAILED;
    }
    code
}

fn decide(t: Temporary, min_age: Duration, checked: bool, dry_run: bool) -> Decision {
    let mut d = Decision {
        age_seconds: t.age.as_secs(),
        len: t.len,
        open_by_pid: t.open_by,
        path: t.path.clone(),
        action: Action::Kept,
        reason: None,
    };
    if let Some(pid) = t.open_by {
        d.reason = Some(format!("open in process {pid}: a copy in progress"));
    } else if t.age < min_age {
        d.reason = Some(if checked {
            format!("written {} s ago (--min-age)", t.age.as_secs())
        } else {
            format!(
                "written {} s ago; open files could not be checked here, so only \
                 temporaries older than {} s are removed",
                t.age.as_secs(),
                min_age.as_secs()
            )
        });
    } else if dry_run {
        d.action = Action::WouldRemove;
    } else {
        match t.remove() {
            Ok(()) => d.action = Action::Removed,
            // Renamed or removed meanwhile: nothing left to clean.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                d.reason = Some("gone meanwhile".into());
            }
            Err(e) => {
                d.action = Action::Failed;
                d.reason = Some(format!("cannot remove: {e}"));
            }
        }
    }
    d
}

fn print(d: &Decision) {
    let p = d.path.display();
    match d.action {
        Action::Removed => println!("removed {p} ({} bytes)", d.len),
        Action::WouldRemove => println!("would remove {p} ({} bytes)", d.len),
        Action::Kept => println!("kept {p}: {}", d.reason.as_deref().unwrap_or("")),
        Action::Failed => eprintln!("cow clean: {p}: {}", d.reason.as_deref().unwrap_or("")),
    }
}
