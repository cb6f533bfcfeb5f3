//! `cow probe`: what a path's filesystem can do.

use std::path::PathBuf;

use clap::Args;
use cow_probe::{Answer, Capabilities, Evidence};
use serde::Serialize;

use crate::exit;
use crate::msg::q;

/// Arguments of `cow probe`.
#[derive(Args, Debug)]
#[command(
    after_help = "Exit status: 0 every path was probed; 1 a path could not be probed (the error \
        names the path and the failing call); 2 usage error.",
    after_long_help = concat!(
        "Show what the filesystem holding each PATH can do: reflink (clone), dedupe, \
        sparse (SEEK_HOLE reports holes), fiemap (extents readable) and \
        copy_file_range (whether the call copies here, and whether its copy shares blocks).\n\n\
        Each answer is yes / no / unknown with its evidence: `live test` (scratch files were \
        created in the directory, or a file's parent, and removed), `table` (what this kind of \
        filesystem usually does), `table (directory not writable)`, or the call and errno that \
        answered. Results are cached per device within one run.",
        "\n\n",
        "Exit status: 0 every path was probed; 1 a path could not be probed (the error \
        names the path and the failing call); 2 usage error."
    )
)]
pub(crate) struct ProbeArgs {
    /// Paths to probe (directories, or files whose directory is probed).
    #[arg(default_value = ".", value_name = "PATH")]
    paths: Vec<PathBuf>,
    /// Print one JSON array instead of text.
    #[arg(long)]
    json: bool,
    /// Probe every path live, even one on a device already probed.
    #[arg(long)]
    fresh: bool,
}

/// A path that could not be probed, in `--json` output.
#[derive(Serialize)]
struct Failure {
    path: PathBuf,
    error: String,
}

/// One element of the `--json` array.
#[derive(Serialize)]
#[serde(untagged)]
enum Entry {
    Probed(Box<Capabilities>),
    Failed(Failure),
}

/// A probe error with its path quoted.
fn probe_error(e: &cow_probe::ProbeError) -> String {
    match e {
        cow_probe::ProbeError::Io { op, path, source } => {
            format!("{}: {op} failed: {}", q(path), crate::msg::os(source))
        }
        other => crate::msg::escape_controls(&other.to_string()),
    }
}

/// Runs `cow probe`.
pub(crate) fn run(args: ProbeArgs) -> u8 {
    let mut code = exit::OK;
    let mut entries = Vec::new();
    for (i, path) in args.paths.iter().enumerate() {
        let result = if args.fresh {
            cow_probe::probe_uncached(path)
        } else {
            cow_probe::probe(path)
        };
        match result {
            Ok(caps) => {
                if !args.json {
                    if i > 0 {
                        println!();
                    }
                    print_caps(&caps);
                }
                entries.push(Entry::Probed(Box::new(caps)));
            }
            Err(e) => {
                eprintln!("cow probe: {}", probe_error(&e));
                code = exit::FAILED;
                entries.push(Entry::Failed(Failure {
                    path: path.clone(),
                    error: e.to_string(),
                }));
            }
        }
    }
    if args.json && !crate::print_json("probe", &entries) {
        code = exit::FAILED;
    }
    code
}

fn print_caps(c: &Capabilities) {
    println!("{}", q(&c.path));
    println!(
        "  {:<16} {} (block size {}, device {:#x}{})",
        "filesystem:",
        c.fs_name,
        c.block_size,
        c.dev,
        if c.read_only { ", read-only" } else { "" }
    );
    for (name, answer) in c.answers() {
        let value = if name == "copy_file_range" {
            copy_file_range(answer)
        } else {
            answer.support.to_string()
        };
        println!("  {:<16} {value} ({})", format!("{name}:"), answer.evidence);
    }
}

/// The copy_file_range row says both things the live test measured: whether
/// the call copied at all, and whether the copy shares blocks.
fn copy_file_range(a: Answer) -> String {
    let works = match a.evidence {
        // The call itself failed.
        Evidence::Errno {
            op: "copy_file_range",
            ..
        } => "fails",
        // The call copied; a later step (FIEMAP, or the filesystem's lack of
        // clones) answered the sharing question.
        Evidence::Live | Evidence::Errno { .. } => "works",
        _ => "not tested",
    };
    format!("{works}; clones: {}", a.support)
}
