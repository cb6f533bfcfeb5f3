//! `cow dedupe` (being built: see the issue tracker).

use clap::Args;

/// Arguments of `cow dedupe`.
#[derive(Args, Debug)]
pub(crate) struct DedupeArgs {
    /// Paths.
    paths: Vec<std::path::PathBuf>,
}

/// Runs `cow dedupe`.
pub(crate) fn run(args: DedupeArgs) -> u8 {
    eprintln!("cow dedupe: not implemented yet ({} paths given)", args.paths.len());
    crate::exit::FAILED
}
