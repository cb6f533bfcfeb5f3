//! A hand-written SVG bar chart: median time per tool, grouped by workload
//! and filesystem, on a log scale.

use std::fmt::Write as _;

use super::report::time_text;
use super::run::Results;

const COLORS: [&str; 8] = [
    "#d62728", "#1f77b4", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
];

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The chart as an SVG document.
pub(crate) fn chart(r: &Results) -> String {
    let mut groups: Vec<(String, String)> = Vec::new();
    let mut tools: Vec<&str> = Vec::new();
    for c in &r.cells {
        let g = (c.workload.clone(), c.fs.clone());
        if !groups.contains(&g) {
            groups.push(g);
        }
        if !tools.contains(&c.tool) {
            tools.push(c.tool);
        }
    }
    let medians: Vec<f64> = r
        .cells
        .iter()
        .filter_map(|c| c.time.map(|t| t.median))
        .filter(|v| *v > 0.0)
        .collect();
    let (lo, hi) = if medians.is_empty() {
        (1e-4, 1.0)
    } else {
        let min = medians.iter().copied().fold(f64::INFINITY, f64::min);
        let max = medians.iter().copied().fold(0.0, f64::max);
        (
            10f64.powf(min.log10().floor()),
            10f64.powf(max.log10().ceil().max(min.log10().floor() + 1.0)),
        )
    };
    let (llo, lhi) = (lo.log10(), hi.log10());

    let bar = 11.0;
    let gap = 18.0;
    let group_w = tools.len().max(1) as f64 * bar + gap;
    let left = 70.0;
    let top = 60.0;
    let plot_h = 320.0;
    let bottom = 120.0;
    let width = left + groups.len().max(1) as f64 * group_w + 20.0;
    let height = top + plot_h + bottom;
    let y = |v: f64| top + plot_h - (v.log10() - llo) / (lhi - llo) * plot_h;

    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0}" height="{height:.0}" viewBox="0 0 {width:.0} {height:.0}" font-family="sans-serif" font-size="11">"#
    );
    let _ = writeln!(s, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let h = &r.header;
    let _ = writeln!(
        s,
        r#"<text x="{left}" y="20" font-size="14" font-weight="bold">cow benchmark ({} run): median wall time per copy, log scale</text>"#,
        h.mode
    );
    let _ = writeln!(
        s,
        r#"<text x="{left}" y="36">{} · kernel {} · {} CPUs · page cache {}</text>"#,
        esc(&h.date),
        esc(&h.kernel),
        h.cpus,
        if h.page_cache.starts_with("dropped") {
            "dropped"
        } else {
            "warm"
        }
    );
    // Legend.
    for (i, t) in tools.iter().enumerate() {
        let x = left + i as f64 * 120.0;
        let _ = writeln!(
            s,
            r#"<rect x="{x}" y="44" width="10" height="10" fill="{}"/><text x="{}" y="53">{}</text>"#,
            COLORS[i % COLORS.len()],
            x + 14.0,
            esc(t)
        );
    }
    // Decade grid lines.
    let mut d = llo.round() as i32;
    while f64::from(d) <= lhi + 1e-9 {
        let v = 10f64.powi(d);
        let yy = y(v);
        let _ = writeln!(
            s,
            r##"<line x1="{left}" x2="{:.1}" y1="{yy:.1}" y2="{yy:.1}" stroke="#ddd"/><text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"##,
            width - 20.0,
            left - 4.0,
            yy + 4.0,
            esc(&time_text(v))
        );
        d += 1;
    }
    // Bars.
    for (gi, (w, f)) in groups.iter().enumerate() {
        let gx = left + gi as f64 * group_w + gap / 2.0;
        for (ti, t) in tools.iter().enumerate() {
            let Some(c) = r
                .cells
                .iter()
                .find(|c| &c.workload == w && &c.fs == f && c.tool == *t)
            else {
                continue;
            };
            let Some(st) = c.time else { continue };
            let v = st.median.max(lo);
            let x = gx + ti as f64 * bar;
            let yy = y(v);
            let _ = writeln!(
                s,
                r#"<rect x="{x:.1}" y="{yy:.1}" width="{:.1}" height="{:.1}" fill="{}"><title>{} / {} / {}: {}</title></rect>"#,
                bar - 1.0,
                top + plot_h - yy,
                COLORS[ti % COLORS.len()],
                esc(w),
                esc(f),
                esc(t),
                esc(&time_text(st.median))
            );
        }
        let lx = gx + tools.len() as f64 * bar / 2.0;
        let ly = top + plot_h + 8.0;
        let _ = writeln!(
            s,
            r#"<text x="{lx:.1}" y="{ly:.1}" transform="rotate(60 {lx:.1} {ly:.1})">{} {}</text>"#,
            esc(w),
            esc(f)
        );
    }
    let _ = writeln!(
        s,
        r#"<line x1="{left}" x2="{left}" y1="{top}" y2="{:.1}" stroke="black"/>"#,
        top + plot_h
    );
    let _ = writeln!(s, "</svg>");
    s
}
