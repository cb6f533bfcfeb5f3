//! `cow dedupe REFERENCE FILE...`: make files whose content equals the
//! reference share the reference's blocks.
//!
//! Only `FIDEDUPERANGE` is used, never a clone: the kernel compares the bytes
//! under its locks and shares only what is equal, so a file that changed
//! since anyone looked at it is never overwritten. The reference keeps its
//! blocks; each other file's own blocks are released.

use std::fs::File;
use std::path::{Path, PathBuf};

use clap::Args;
use cow_copy::identical::{self, DedupeResult};

use crate::quote::quote;

/// Arguments of `cow dedupe`.
#[derive(Args, Debug)]
#[command(
    after_long_help = "Without -r: the first PATH is the reference, whose blocks are kept, \
    and every other PATH is made to share them where the kernel finds the bytes equal.\n\n\
    With -r: every PATH is a directory (or file) to search; files with identical content on \
    one filesystem are found (size, then the extent map, then a hash of the first block and of \
    the whole file, each file read at most once) and shared with FIDEDUPERANGE against a \
    deterministic reference. Hard links, read-only, immutable and append-only files, files open \
    for writing and other filesystems are skipped with a reason. Exit status: 0 done, 1 some \
    file failed or a filesystem cannot dedupe, 2 usage error."
)]
pub(crate) struct DedupeArgs {
    /// REFERENCE FILE... (or, with -r, DIR...).
    #[arg(required = true, value_name = "PATH")]
    paths: Vec<PathBuf>,
    /// Search the directories for duplicates instead of naming them.
    #[arg(short = 'r', long)]
    pub(crate) recursive: bool,
    /// With -r: find and check, but share nothing.
    #[arg(long, requires = "recursive")]
    pub(crate) dry_run: bool,
    /// With -r: leave files smaller than this alone (bytes; K, M, G suffixes).
    #[arg(long, requires = "recursive", value_parser = crate::dedupe_tree::parse_size, default_value = "1")]
    pub(crate) min_size: u64,
    /// With -r: worker threads (default: two per CPU, 4 to 32).
    #[arg(long, requires = "recursive", value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub(crate) threads: Option<u16>,
    /// With -r: also print counters and phase times.
    #[arg(long, requires = "recursive")]
    pub(crate) stats: bool,
    /// With -r: show progress on stderr even when it is not a terminal.
    #[arg(long, requires = "recursive")]
    pub(crate) progress: bool,
    /// Print the result as JSON.
    #[arg(long)]
    pub(crate) json: bool,
}

/// What happened to one file.
#[derive(Debug, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
enum Status {
    /// Every byte now shares the reference's blocks.
    Shared,
    /// It already shared every block with the reference; nothing to do.
    AlreadyShared,
    /// Its content differs from the reference; it was not deduplicated.
    Differs,
    /// It could not be deduplicated (see the error).
    Failed,
}

#[derive(Debug, serde::Serialize)]
struct FileResult {
    path: PathBuf,
    status: Status,
    /// Bytes that this run made share the reference's blocks.
    bytes_shared: u64,
    /// For `differs`: the first difference is at or after this offset.
    #[serde(skip_serializing_if = "Option::is_none")]
    differs_from: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

#[derive(Debug, serde::Serialize)]
struct Summary<'a> {
    reference: &'a Path,
    files: Vec<FileResult>,
    bytes_shared: u64,
}

fn open_regular(path: &Path) -> Result<(File, u64), String> {
    let f = File::open(path).map_err(|e| format!("cannot open {}: {e}", quote(path)))?;
    let meta = f
        .metadata()
        .map_err(|e| format!("cannot stat {}: {e}", quote(path)))?;
    if !meta.is_file() {
        return Err(format!("{} is not a regular file", quote(path)));
    }
    Ok((f, meta.len()))
}

fn failed(path: &Path, error: String) -> FileResult {
    FileResult {
        path: path.to_path_buf(),
        status: Status::Failed,
        bytes_shared: 0,
        differs_from: None,
        error: Some(error),
    }
}

/// Deduplicates one file against the open reference.
fn dedupe_file(reference: &Path, keep: &File, keep_len: u64, path: &Path) -> FileResult {
    // Read-only is enough: the kernel lets the owner (or anyone allowed to
    // write the file, or root) dedupe into it, and it does not touch mtime.
    let (other, len) = match open_regular(path) {
        Ok(x) => x,
        Err(e) => return failed(path, e),
    };
    match identical::same_file(keep, &other) {
        Ok(true) => {
            return failed(
                path,
                format!("{} and {} are the same file", quote(reference), quote(path)),
            );
        }
        Ok(false) => {}
        Err(e) => return failed(path, format!("cannot stat {}: {e}", quote(path))),
    }
    let mut result = FileResult {
        path: path.to_path_buf(),
        status: Status::Differs,
        bytes_shared: 0,
        differs_from: None,
        error: None,
    };
    if len != keep_len {
        result.differs_from = Some(len.min(keep_len));
        result.error = Some(format!(
            "{} ({len} bytes) and {} ({keep_len} bytes) differ in size; nothing shared",
            quote(path),
            quote(reference)
        ));
        return result;
    }
    if identical::same_extents(keep, &other, len).unwrap_or(false) {
        result.status = Status::AlreadyShared;
        return result;
    }
    match identical::dedupe_into(keep, &other, len) {
        Ok(DedupeResult::Shared { bytes }) => {
            result.status = Status::Shared;
            result.bytes_shared = bytes;
        }
        Ok(DedupeResult::Differs {
            range_start,
            shared,
        }) => {
            result.bytes_shared = shared;
            // The kernel only says which request differed; find the byte.
            let from = identical::compare_content(keep, &other, len)
                .ok()
                .and_then(|c| c.first_difference)
                .unwrap_or(range_start);
            result.differs_from = Some(from);
            let partial = if shared > 0 {
                format!(" (the first {shared} bytes are equal and now shared)")
            } else {
                String::new()
            };
            result.error = Some(format!(
                "{} and {} differ (first at byte {from}); not deduplicated{partial}; neither file's content was changed",
                quote(path),
                quote(reference)
            ));
        }
        Ok(DedupeResult::NotPossible { reason, shared }) => {
            result.status = Status::Failed;
            result.bytes_shared = shared;
            result.error = Some(format!(
                "cannot dedupe {} against {}: {reason}",
                quote(path),
                quote(reference)
            ));
        }
        Err(e) => {
            result.status = Status::Failed;
            result.error = Some(format!(
                "FIDEDUPERANGE {} -> {} failed: {e}",
                quote(reference),
                quote(path)
            ));
        }
    }
    result
}

/// Runs `cow dedupe`.
pub(crate) fn run(args: DedupeArgs) -> u8 {
    if args.recursive {
        return crate::dedupe_tree::run(&args.paths, &args);
    }
    let [reference, files @ ..] = args.paths.as_slice() else {
        return crate::exit::USAGE;
    };
    if files.is_empty() {
        eprintln!("cow dedupe: name a REFERENCE and at least one FILE (or use -r DIR...)");
        return crate::exit::USAGE;
    }
    let (keep, keep_len) = match open_regular(reference) {
        Ok(x) => x,
        Err(e) => {
            eprintln!("cow dedupe: {e}");
            return crate::exit::FAILED;
        }
    };
    let files: Vec<FileResult> = files
        .iter()
        .map(|p| dedupe_file(reference, &keep, keep_len, p))
        .collect();
    let ok = files
        .iter()
        .all(|r| matches!(r.status, Status::Shared | Status::AlreadyShared));
    let summary = Summary {
        reference,
        bytes_shared: files.iter().map(|r| r.bytes_shared).sum(),
        files,
    };
    if args.json {
        if !crate::print_json("dedupe", &summary) {
            return crate::exit::FAILED;
        }
    } else {
        for r in &summary.files {
            match r.status {
                Status::Shared => println!(
                    "{}: {} bytes now share the blocks of {}",
                    quote(&r.path),
                    r.bytes_shared,
                    quote(reference)
                ),
                Status::AlreadyShared => println!(
                    "{}: already shares every block with {}",
                    quote(&r.path),
                    quote(reference)
                ),
                Status::Differs | Status::Failed => {
                    eprintln!("cow dedupe: {}", r.error.as_deref().unwrap_or("failed"));
                }
            }
        }
        println!("{} bytes shared", summary.bytes_shared);
    }
    if ok {
        crate::exit::OK
    } else {
        crate::exit::FAILED
    }
}
