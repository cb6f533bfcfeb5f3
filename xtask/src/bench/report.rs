//! The markdown table, `results.json` and `chart.svg`.

use std::fmt::Write as _;
use std::io;
use std::path::Path;

use super::run::{Cell, Results};

/// A duration in seconds as a short text (`0.42 ms`, `123 ms`, `1.23 s`).
pub(crate) fn time_text(s: f64) -> String {
    let ms = s * 1000.0;
    if ms < 10.0 {
        format!("{ms:.2} ms")
    } else if ms < 1000.0 {
        format!("{ms:.0} ms")
    } else {
        format!("{s:.2} s")
    }
}

/// Bytes as a short binary-unit text.
pub(crate) fn bytes_text(b: i64) -> String {
    let sign = if b < 0 { "-" } else { "" };
    let v = b.unsigned_abs() as f64;
    const K: f64 = 1024.0;
    if v >= K * K * K {
        format!("{sign}{:.2} GiB", v / (K * K * K))
    } else if v >= K * K {
        format!("{sign}{:.1} MiB", v / (K * K))
    } else if v >= K {
        format!("{sign}{:.0} KiB", v / K)
    } else {
        format!("{sign}{v:.0} B")
    }
}

fn cell_row(c: &Cell) -> String {
    let (median, spread) = match c.time {
        Some(t) => (
            time_text(t.median),
            format!("{}–{}", time_text(t.min), time_text(t.max)),
        ),
        None => ("–".into(), "–".into()),
    };
    let with_sync = c.with_sync.map_or("–".into(), |t| time_text(t.median));
    let alloc = c
        .allocated_bytes
        .map_or("–".into(), |b| bytes_text(b as i64));
    let used = c.fs_used_delta_bytes.map_or("–".into(), bytes_text);
    let written = c
        .device_written_bytes
        .map_or("n/a".into(), |b| bytes_text(b as i64));
    let sharing = match (c.sharing, &c.sharing_error) {
        (Some(r), _) => format!("{r:.2}"),
        (None, Some(_)) => "n/a".into(),
        (None, None) => "–".into(),
    };
    let vs = match c.vs_cow {
        Some(_) if c.tool == "cow" => "1.00".into(),
        // A peer faster than cow stands out in bold.
        Some(r) if r < 1.0 => format!("**{r:.2}**"),
        Some(r) => format!("{r:.2}"),
        None => "–".into(),
    };
    let tool = match &c.error {
        Some(_) => format!("{} (FAILED)", c.tool),
        None => c.tool.to_owned(),
    };
    format!(
        "| {} | {} | {tool} | {median} | {spread} | {with_sync} | {alloc} | {used} | {written} | {sharing} | {vs} |",
        c.workload, c.fs
    )
}

/// The whole report as markdown: header, table, notes.
pub(crate) fn markdown(r: &Results) -> String {
    let h = &r.header;
    let mut s = String::new();
    let _ = writeln!(s, "## cow benchmark matrix ({} run)\n", h.mode);
    let _ = writeln!(s, "- date: {}", h.date);
    let _ = writeln!(s, "- kernel: {}", h.kernel);
    let _ = writeln!(s, "- CPUs: {}", h.cpus);
    let fss: Vec<String> = h
        .filesystems
        .iter()
        .map(|f| format!("{} ({})", f.name, f.detail))
        .collect();
    let _ = writeln!(s, "- filesystems: {}", fss.join(", "));
    for (name, why) in &h.skipped {
        let _ = writeln!(s, "- SKIPPED {name}: {why}");
    }
    let _ = writeln!(s, "- page cache: {}", h.page_cache);
    let _ = writeln!(s, "- sync: {}", h.sync);
    let _ = writeln!(s, "- order: {}", h.order);
    let runs: Vec<String> = h
        .workloads
        .iter()
        .map(|(n, _, _, runs)| format!("{n} {runs}"))
        .collect();
    let _ = writeln!(s, "- runs per cell: {}", runs.join(", "));
    if let Some(f) = &h.filter {
        let _ = writeln!(s, "- filter: {f}");
    }
    let _ = writeln!(s, "- total wall time: {:.0} s", h.total_seconds);
    let _ = writeln!(s);
    let _ = writeln!(
        s,
        "| workload | fs | tool | median | spread (min–max) | with sync | alloc | fs used Δ | written | sharing | vs cow |"
    );
    let _ = writeln!(s, "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    for c in &r.cells {
        let _ = writeln!(s, "{}", cell_row(c));
    }
    let _ = writeln!(s);
    let _ = writeln!(
        s,
        "median/spread: wall time of the copy alone; with sync: median of copy + syncfs; \
         alloc: st_blocks×512 of the copy (shared extents count in full, like du); \
         fs used Δ: growth of the filesystem's used space across a run, after sync (new space); \
         written: bytes written to the block device during the copy and its sync \
         (data, metadata, journal; n/a on tmpfs); \
         sharing: cow-verify ratio of the source's data bytes shared with the copy \
         (a sample file for trees; n/a where FIEMAP is missing); \
         vs cow: the tool's median over cow's (above 1: cow is faster; bold: the peer is faster)."
    );
    let _ = writeln!(s);
    let _ = writeln!(s, "Workloads:");
    for (n, d, m, _) in &h.workloads {
        let _ = writeln!(s, "- {n}: {d} ({m})");
    }
    let _ = writeln!(s, "\nNotes:");
    for n in &h.notes {
        let _ = writeln!(s, "- {n}");
    }
    for c in r.cells.iter().filter(|c| c.error.is_some()) {
        let _ = writeln!(
            s,
            "- FAILED {}/{}/{}: {}",
            c.workload,
            c.fs,
            c.tool,
            c.error.as_deref().unwrap_or("")
        );
    }
    s
}

/// Writes `results.json` and `chart.svg` into `dir` (created if missing).
pub(crate) fn write_files(r: &Results, dir: &Path) -> io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let json = serde_json::to_string_pretty(r).map_err(io::Error::other)?;
    std::fs::write(dir.join("results.json"), json + "\n")?;
    std::fs::write(dir.join("chart.svg"), super::svg::chart(r))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn texts() {
        assert_eq!(time_text(0.000_42), "0.42 ms");
        assert_eq!(time_text(0.123), "123 ms");
        assert_eq!(time_text(1.234), "1.23 s");
        assert_eq!(bytes_text(0), "0 B");
        assert_eq!(bytes_text(64 << 20), "64.0 MiB");
        assert_eq!(bytes_text(-(8 << 10)), "-8 KiB");
        assert_eq!(bytes_text(1 << 30), "1.00 GiB");
    }
}
