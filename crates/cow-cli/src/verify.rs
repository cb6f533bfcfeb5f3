//! `cow verify`: how many bytes files share physically with a reference.

use std::path::{Path, PathBuf};

use clap::Args;
use cow_verify::{Extent, Location, Sharing};
use serde::Serialize;

use crate::exit;

/// Arguments of `cow verify`.
#[derive(Args, Debug)]
#[command(
    after_help = "Exit status: 0 every file was measured (and, with --expect-clone, is a clone); \
        1 a file could not be measured (the error names the path and the failing call) or \
        --expect-clone found a file that is not a clone; 2 usage error.",
    after_long_help = concat!(
        "Show how many bytes each FILE shares physically with REFERENCE.\n\n\
        For each FILE prints `REFERENCE ⤳ FILE: RATIO (SHARED of TOTAL shared)`, where TOTAL is \
        the reference's data bytes (holes excluded) and SHARED the bytes of the reference whose \
        device bytes also hold data of FILE (exact byte ranges from FIEMAP / F_LOG2PHYS_EXT). \
        Bytes whose location is unknown (delayed allocation) or inline in metadata are never \
        counted as shared. `clone` is added when every data byte of both files is the same \
        device byte at the same offset and the lengths are equal.",
        "\n\n",
        "Exit status: 0 every file was measured (and, with --expect-clone, is a clone); \
        1 a file could not be measured (the error names the path and the failing call) or \
        --expect-clone found a file that is not a clone; 2 usage error."
    )
)]
pub(crate) struct VerifyArgs {
    /// The reference file (with -r: a directory).
    reference: PathBuf,
    /// Files to compare with the reference (with -r: more directories).
    #[arg(required_unless_present = "recursive", value_name = "FILE")]
    files: Vec<PathBuf>,
    /// Show how much the files of each directory tree share: data bytes,
    /// bytes in shared extents, and the device bytes they occupy with
    /// shared blocks counted once.
    #[arg(short = 'r', long, conflicts_with_all = ["extents", "expect_clone"])]
    recursive: bool,
    /// Also print the extent table of every file, with flag names.
    #[arg(long)]
    extents: bool,
    /// Print one JSON document instead of text.
    #[arg(long)]
    json: bool,
    /// Exit with status 1 unless every FILE is a clone of the reference.
    #[arg(long)]
    expect_clone: bool,
}

/// One compared file in `--json` output.
#[derive(Serialize)]
struct FileReport {
    path: PathBuf,
    #[serde(skip_serializing_if = "Option::is_none")]
    sharing: Option<Sharing>,
    #[serde(skip_serializing_if = "Option::is_none")]
    is_clone: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    extents: Option<Vec<Extent>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

/// The whole `--json` document.
#[derive(Serialize)]
struct Report {
    reference: PathBuf,
    #[serde(skip_serializing_if = "Option::is_none")]
    reference_extents: Option<Vec<Extent>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    files: Vec<FileReport>,
}

/// Runs `cow verify`.
pub(crate) fn run(args: VerifyArgs) -> u8 {
    if args.recursive {
        #[cfg(unix)]
        {
            let mut dirs = vec![args.reference.clone()];
            dirs.extend(args.files.iter().cloned());
            return crate::verify_tree::run(&dirs, args.json);
        }
        #[cfg(not(unix))]
        {
            eprintln!("cow verify: -r is not supported on this platform yet");
            return exit::FAILED;
        }
    }
    let mut code = exit::OK;
    // The reference's extents: read once up front, so a reference that
    // cannot be measured is reported once, not once per file.
    let reference = cow_verify::extents(&args.reference);
    let mut report = Report {
        reference: args.reference.clone(),
        reference_extents: None,
        error: None,
        files: Vec::new(),
    };
    let ref_extents = match reference {
        Ok(r) => r,
        Err(e) => {
            eprintln!("cow verify: {e}");
            if args.json {
                report.error = Some(e.to_string());
                print_json(&report);
            }
            return exit::FAILED;
        }
    };
    if args.extents && !args.json {
        print_extents(&args.reference, &ref_extents);
    }
    if args.extents {
        report.reference_extents = Some(ref_extents);
    }
    for file in &args.files {
        let mut entry = FileReport {
            path: file.clone(),
            sharing: None,
            is_clone: None,
            extents: None,
            error: None,
        };
        let measured = cow_verify::sharing(&args.reference, file).and_then(|s| {
            let extents = if args.extents {
                Some(cow_verify::extents(file)?)
            } else {
                None
            };
            Ok((s, extents))
        });
        match measured {
            Ok((s, extents)) => {
                if args.expect_clone && !s.is_clone() {
                    code = exit::FAILED;
                }
                if !args.json {
                    println!("{}", line(&args.reference, file, &s));
                    if let Some(extents) = &extents {
                        print_extents(file, extents);
                    }
                }
                entry.is_clone = Some(s.is_clone());
                entry.sharing = Some(s);
                entry.extents = extents;
            }
            Err(e) => {
                eprintln!("cow verify: {e}");
                entry.error = Some(e.to_string());
                code = exit::FAILED;
            }
        }
        report.files.push(entry);
    }
    if args.json {
        print_json(&report);
    }
    code
}

fn print_json(report: &Report) {
    crate::print_json("verify", report);
}

/// `A ⤳ B: 1.000 (64.0 MiB of 64.0 MiB shared)`, plus notes.
fn line(a: &Path, b: &Path, s: &Sharing) -> String {
    let mut out = format!(
        "{} ⤳ {}: {:.3} ({} of {} shared)",
        a.display(),
        b.display(),
        s.ratio,
        human(s.shared_bytes),
        human(s.a_data_bytes())
    );
    if s.is_clone() {
        out.push_str(", clone");
    }
    if s.unknown_bytes > 0 {
        out.push_str(&format!(
            ", {} without a device location (never counted as shared)",
            human(s.unknown_bytes)
        ));
    }
    if !s.same_filesystem {
        out.push_str(", different filesystems");
    }
    if s.a_len != s.b_len {
        out.push_str(&format!(
            ", lengths differ ({} vs {} bytes)",
            s.a_len, s.b_len
        ));
    }
    out
}

fn print_extents(path: &Path, extents: &[Extent]) {
    let n = extents.len();
    let noun = if n == 1 { "extent" } else { "extents" };
    println!("{} ({n} {noun}):", path.display());
    println!(
        "  {:>16} {:>14} {:>18}  flags",
        "logical", "length", "physical"
    );
    for e in extents {
        let physical = match e.location {
            Location::Physical(p) => p.to_string(),
            Location::Encoded(p) => format!("{p} (encoded)"),
            Location::Unknown => "unknown".to_owned(),
            Location::Inline => "inline".to_owned(),
        };
        println!(
            "  {:>16} {:>14} {:>18}  {}",
            e.logical,
            e.length,
            physical,
            e.flags.join(",")
        );
    }
}

/// Bytes in binary units with one decimal: `0 B`, `512 B`, `4.0 KiB`,
/// `64.0 MiB`.
pub(crate) fn human(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut v = bytes as f64 / 1024.0;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    format!("{v:.1} {}", UNITS[unit])
}

#[cfg(test)]
mod tests {
    use super::human;

    #[test]
    fn human_sizes() {
        assert_eq!(human(0), "0 B");
        assert_eq!(human(1023), "1023 B");
        assert_eq!(human(4096), "4.0 KiB");
        assert_eq!(human(64 << 20), "64.0 MiB");
        assert_eq!(human(3 << 30), "3.0 GiB");
    }
}
