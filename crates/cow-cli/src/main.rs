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

use clap::{CommandFactory, Parser, Subcommand, ValueEnum};

/// `println!` for every module of the binary: like std's, but a closed pipe
/// or a full disk on stdout never panics (see [`out`]). Defined before the
/// modules, so it shadows the prelude's macro in all of them.
macro_rules! println {
    () => {
        $crate::out::stdout(format_args!(""))
    };
    ($($arg:tt)*) => {
        $crate::out::stdout(format_args!($($arg)*))
    };
}

/// `eprintln!` for every module of the binary: never panics (see [`out`]).
macro_rules! eprintln {
    () => {
        $crate::out::stderr(format_args!(""))
    };
    ($($arg:tt)*) => {
        $crate::out::stderr(format_args!($($arg)*))
    };
}

mod clean;
mod cp;
mod dedupe;
mod dedupe_tree;
mod fdlimit;
mod msg;
mod out;
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
    /// Print a shell completion script or the man page on stdout and exit.
    #[arg(long, value_enum, value_name = "KIND", exclusive = true)]
    generate: Option<Generate>,

    #[command(subcommand)]
    command: Option<Command>,
}

/// What `--generate` prints.
#[derive(Clone, Copy, Debug, ValueEnum)]
enum Generate {
    /// bash completions (source it, or put it in bash-completion's directory).
    CompleteBash,
    /// zsh completions (save as `_cow` in a directory on `$fpath`).
    CompleteZsh,
    /// fish completions (save as `cow.fish` in fish's completions directory).
    CompleteFish,
    /// The man page, roff (`cow --generate man > cow.1`).
    Man,
}

/// Prints what `--generate` asked for.
fn generate(kind: Generate) -> u8 {
    use clap_complete::Shell;
    let mut cmd = Cli::command();
    let mut buf = Vec::new();
    let shell = match kind {
        Generate::CompleteBash => Shell::Bash,
        Generate::CompleteZsh => Shell::Zsh,
        Generate::CompleteFish => Shell::Fish,
        Generate::Man => {
            if let Err(e) = clap_mangen::Man::new(cmd).render(&mut buf) {
                eprintln!("cow: cannot render the man page: {e}");
                return exit::FAILED;
            }
            return out::bytes(&buf);
        }
    };
    clap_complete::generate(shell, &mut cmd, "cow", &mut buf);
    out::bytes(&buf)
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
    let code = match (cli.generate, cli.command) {
        (Some(kind), _) => generate(kind),
        (None, Some(Command::Cp(a))) => cp::run(a),
        (None, Some(Command::Verify(a))) => verify::run(a),
        (None, Some(Command::Probe(a))) => probe::run(a),
        (None, Some(Command::Dedupe(a))) => dedupe::run(a),
        (None, Some(Command::Clean(a))) => clean::run(a),
        (None, None) => {
            eprintln!("{}", Cli::command().render_help());
            exit::USAGE
        }
    };
    ExitCode::from(code)
}
