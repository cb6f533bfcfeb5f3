//! `cow cp` (being built: see the issue tracker).

use clap::Args;

/// Arguments of `cow cp`.
#[derive(Args, Debug)]
pub(crate) struct CpArgs {
    /// Paths.
    paths: Vec<std::path::PathBuf>,
}

/// Runs `cow cp`.
pub(crate) fn run(args: CpArgs) -> u8 {
    eprintln!("cow cp: not implemented yet ({} paths given)", args.paths.len());
    crate::exit::FAILED
}
