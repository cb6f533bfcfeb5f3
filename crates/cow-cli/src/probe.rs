//! `cow probe` (being built: see the issue tracker).

use clap::Args;

/// Arguments of `cow probe`.
#[derive(Args, Debug)]
pub(crate) struct ProbeArgs {
    /// Paths.
    paths: Vec<std::path::PathBuf>,
}

/// Runs `cow probe`.
pub(crate) fn run(args: ProbeArgs) -> u8 {
    eprintln!("cow probe: not implemented yet ({} paths given)", args.paths.len());
    crate::exit::FAILED
}
