//! `cow verify` (being built: see the issue tracker).

use clap::Args;

/// Arguments of `cow verify`.
#[derive(Args, Debug)]
pub(crate) struct VerifyArgs {
    /// Paths.
    paths: Vec<std::path::PathBuf>,
}

/// Runs `cow verify`.
pub(crate) fn run(args: VerifyArgs) -> u8 {
    eprintln!("cow verify: not implemented yet ({} paths given)", args.paths.len());
    crate::exit::FAILED
}
