//! `cow`: copy files with copy-on-write, keep holes, never eat a file, tell
//! the truth.
//!
//! ```text
//! cow cp -r --reflink=auto src/ dst/     # clone where the filesystem can
//! cow verify original copy               # how many bytes do they share?
//! cow probe .                            # what can this filesystem do?
//! cow dedupe a b                         # share the blocks of two equal files
//! cow dedupe -r venvs/ cache/            # find identical files, share their blocks
//! cow clean -r dst/                      # remove temporaries of killed copies
//! ```

#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod clean;
mod cp;
mod dedupe;
mod dedupe_tree;
mod probe;
mod quote;
mod verify;
#[cfg(unix)]
mod verify_tree;

/// Prints `value` as pretty JSON on stdout; on failure says so on stderr
/// as `cow COMMAND: cannot write JSON: ...` and returns `false`.
pub(crate) fn print_json(command: &str, value: &impl serde::Serialize) -> bool {
    match serde_json::to_string_pretty(value) {
        Ok(s) => {
            println!("{s}");
            true
        }
        Err(e) => {
            eprintln!("cow {command}: cannot write JSON: {e}");
            false
        }
    }
}

/// Exit codes shared by every subcommand.
pub(crate) mod exit {
    /// Everything asked for was done.
    pub(crate) const OK: u8 = 0;
    /// Some work failed (the rest was done); details were printed.
    pub(crate) const FAILED: u8 = 1;
    /// The command line was wrong.
    pub(crate) const USAGE: u8 = 2;
}

#[derive(Parser)]
#[command(
    name = "cow",
    version,
    about = "Copy files with copy-on-write: clone when possible, keep holes, never lose data, report the truth",
    after_help = "Exit status: 0 success, 1 some operation failed (each failure is printed with its path and call), 2 usage error."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Copy files and directories, cloning where the filesystem can.
    Cp(cp::CpArgs),
    /// Show how many bytes files share physically with a reference file.
    Verify(verify::VerifyArgs),
    /// Show what a path's filesystem can do (reflink, dedupe, holes, FIEMAP).
    Probe(probe::ProbeArgs),
    /// Make identical files share their blocks (kernel-compared, never clobbers).
    Dedupe(dedupe::DedupeArgs),
    /// Remove temporaries left by killed atomic copies (never one in use).
    Clean(clean::CleanArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let code = match cli.command {
        Command::Cp(a) => cp::run(a),
        Command::Verify(a) => verify::run(a),
        Command::Probe(a) => probe::run(a),
        Command::Dedupe(a) => dedupe::run(a),
        Command::Clean(a) => clean::run(a),
    };
    ExitCode::from(code)
}
