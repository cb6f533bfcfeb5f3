//! `cow dedupe -r DIR...`: find identical files under the directories and
//! share their blocks (cow-copy's `dedupe` module does the work; this
//! parses, shows progress and prints).

use std::path::PathBuf;

use crate::dedupe::DedupeArgs;
use crate::exit;

/// Parses a size: bytes, or with a K, M, G or T suffix (powers of 1024).
pub(crate) fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let (num, shift) = match t.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => {
            let shift = match c.to_ascii_uppercase() {
                'K' => 10,
                'M' => 20,
                'G' => 30,
                'T' => 40,
                _ => return Err(format!("unknown size suffix in {s:?} (use K, M, G or T)")),
            };
            (&t[..i], shift)
        }
        _ => (t, 0),
    };
    let n: u64 = num.parse().map_err(|_| format!("not a size: {s:?}"))?;
    n.checked_mul(1 << shift)
        .ok_or_else(|| format!("size too large: {s:?}"))
}

/// `bytes` with a binary unit, for people.
#[cfg(any(target_os = "linux", test))]
fn human(bytes: i64) -> String {
    let b = bytes.unsigned_abs() as f64;
    let sign = if bytes < 0 { "-" } else { "" };
    let units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = b;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < units.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{sign}{bytes_abs} B", bytes_abs = bytes.unsigned_abs())
    } else {
        format!("{sign}{v:.1} {}", units[u])
    }
}

#[cfg(target_os = "linux")]
mod imp {
    use std::collections::BTreeMap;
    use std::io::IsTerminal;
    use std::sync::atomic::{AtomicU64, Ordering};

    use cow_copy::dedupe::{DedupeOptions, DedupeReport, Event, Phase, SkipReason};
    use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

    use super::*;
    use crate::quote::quote;

    /// Skips that are expected in bulk: counted, not listed.
    fn quiet(r: &SkipReason) -> bool {
        matches!(r, SkipReason::HardLink)
    }

    fn bar(show: bool) -> ProgressBar {
        let target = if show {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        };
        ProgressBar::with_draw_target(None, target)
    }

    fn style(b: &ProgressBar, phase: Phase, total: u64) {
        let t = match phase {
            Phase::Scan => "{spinner} scanning: {pos} files",
            Phase::Compare => "{wide_bar} comparing {pos}/{len} files, {msg} read",
            Phase::Share => "{wide_bar} sharing {pos}/{len} files, {msg} shared",
        };
        if let Ok(s) = ProgressStyle::with_template(t) {
            b.set_style(s);
        }
        b.set_position(0);
        b.set_length(total);
        b.set_message("");
    }

    fn print_text(r: &DedupeReport, stats: bool) {
        let files: usize = r.groups.iter().map(|g| g.members.len()).sum();
        println!("{} duplicate groups ({files} files)", r.groups.len());
        let verb = if r.dry_run {
            "would be newly shared"
        } else {
            "newly shared"
        };
        println!(
            "{} bytes {verb} ({})",
            r.bytes_newly_shared,
            human(r.bytes_newly_shared as i64)
        );
        println!(
            "{} bytes already shared ({})",
            r.bytes_already_shared,
            human(r.bytes_already_shared as i64)
        );
        let mut tally: BTreeMap<&str, usize> = BTreeMap::new();
        for s in &r.skipped {
            *tally.entry(s.reason.code()).or_default() += 1;
        }
        if !tally.is_empty() {
            let parts: Vec<String> = tally.iter().map(|(k, n)| format!("{k}: {n}")).collect();
            println!("{} files skipped ({})", r.skipped.len(), parts.join(", "));
        }
        if r.stats.files_inline > 0 {
            println!(
                "{} files stored inline in metadata (no blocks to share)",
                r.stats.files_inline
            );
        }
        match r.space_freed {
            Some(b) => println!("{b} bytes freed on the filesystems (df) ({})", human(b)),
            None => println!("dry run: nothing changed"),
        }
        if stats {
            let s = &r.stats;
            println!(
                "stats: {} files ({} bytes) scanned, {} candidates, {} read ({} whole), {} bytes read, {} opens",
                s.files_scanned,
                s.bytes_scanned,
                s.candidates,
                s.files_read,
                s.files_read_whole,
                s.bytes_read,
                s.files_opened
            );
            println!(
                "stats: {} pairs left to the kernel ({} read here first), {} of them different",
                s.pairs_kernel_compared, s.pairs_read_first, s.pairs_differing
            );
            if s.cold_cache {
                println!("stats: cold cache: reads were read ahead by chunks");
            }
            println!(
                "stats: scan {:.3} s, compare {:.3} s, share {:.3} s",
                s.seconds[0], s.seconds[1], s.seconds[2]
            );
        }
    }

    pub(super) fn run(paths: &[PathBuf], args: &DedupeArgs) -> u8 {
        // One kept descriptor per directory opens candidates by name.
        crate::fdlimit::raise();
        let show = args.progress || (!args.json && std::io::stderr().is_terminal());
        let b = bar(show);
        style(&b, Phase::Scan, 0);
        // Bytes read (compare) or shared (share) so far in this phase.
        let done = AtomicU64::new(0);
        let observer = |e: &Event<'_>| match e {
            // Hidden: no bar to update (each update takes the bar's lock).
            _ if !show => {}
            Event::Started { phase, total } => {
                done.store(0, Ordering::Relaxed);
                style(&b, *phase, *total);
                b.set_message(human(0));
            }
            Event::Progress {
                phase: Phase::Scan,
                files,
                ..
            } => b.inc(*files),
            Event::Progress { files, bytes, .. } => {
                b.inc(*files);
                if *bytes > 0 {
                    let total = done.fetch_add(*bytes, Ordering::Relaxed) + *bytes;
                    b.set_message(human(total as i64));
                }
            }
            _ => {}
        };
        let mut options = DedupeOptions::new()
            .min_size(args.min_size)
            .dry_run(args.dry_run);
        if let Some(n) = args.threads {
            options = options.threads(n.into());
        }
        let report = options.run(paths, &observer);
        b.finish_and_clear();
        let report = match report {
            Ok(r) => r,
            Err(e) => {
                eprintln!("cow dedupe: {e}");
                return exit::FAILED;
            }
        };
        let mut code = exit::OK;
        for c in &report.cannot_dedupe {
            eprintln!(
                "cow dedupe: {}: {}; {} files left alone",
                quote(&c.path),
                c.reason,
                c.files
            );
            code = exit::FAILED;
        }
        for s in &report.skipped {
            if matches!(s.reason, SkipReason::Error(_)) {
                code = exit::FAILED;
            }
            if !quiet(&s.reason) && !args.json {
                eprintln!("cow dedupe: skipped {}: {}", quote(&s.path), s.reason);
            }
        }
        if args.json {
            if !crate::print_json("dedupe", &report) {
                return exit::FAILED;
            }
        } else {
            print_text(&report, args.stats);
        }
        // The process ends here: freeing the report's paths one by one
        // (12,000 on the bench tree, about 1 ms) would only delay the exit.
        std::mem::forget(report);
        code
    }
}

/// Runs `cow dedupe -r`.
#[cfg(target_os = "linux")]
pub(crate) fn run(paths: &[PathBuf], args: &DedupeArgs) -> u8 {
    imp::run(paths, args)
}

/// Runs `cow dedupe -r`: Linux only for now.
#[cfg(not(target_os = "linux"))]
pub(crate) fn run(_paths: &[PathBuf], _args: &DedupeArgs) -> u8 {
    eprintln!("cow dedupe: -r needs Linux (FIDEDUPERANGE); nothing was changed");
    exit::FAILED
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("0"), Ok(0));
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("4k"), Ok(4096));
        assert_eq!(parse_size("1M"), Ok(1 << 20));
        assert_eq!(parse_size("2G"), Ok(2 << 30));
        assert!(parse_size("1Q").is_err());
        assert!(parse_size("x").is_err());
        assert!(parse_size("99999999999T").is_err());
        assert_eq!(human(512), "512 B");
        assert_eq!(human(1536), "1.5 KiB");
        assert_eq!(human(-(3 << 20)), "-3.0 MiB");
    }
}
