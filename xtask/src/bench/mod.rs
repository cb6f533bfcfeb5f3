//! `cargo xtask bench`: the benchmark matrix (workloads x filesystems x
//! tools), measured A/B interleaved in one process run.
//!
//! The matrix runs on Linux only (it needs the loop-mounted filesystems of
//! `cargo xtask test`, or `--dir PATH`). Elsewhere the command says so.

#[cfg(target_os = "linux")]
mod dedupe;
#[cfg(target_os = "linux")]
mod measure;
#[cfg(target_os = "linux")]
mod pkg;
#[cfg(target_os = "linux")]
mod report;
#[cfg(target_os = "linux")]
mod run;
#[cfg(target_os = "linux")]
mod svg;
#[cfg(target_os = "linux")]
mod tools;
#[cfg(target_os = "linux")]
mod workloads;

use std::ffi::OsString;
use std::path::PathBuf;

/// `cargo xtask bench` options.
#[derive(Debug, Default, Clone)]
pub(crate) struct Args {
    /// Small sizes and few runs (CI).
    pub(crate) quick: bool,
    /// Only cells whose `workload/fs/tool` contains this.
    pub(crate) filter: Option<String>,
    /// Bench in this directory instead of the loop-mounted filesystems.
    pub(crate) dir: Option<PathBuf>,
    /// Runs per cell (overrides the per-workload defaults).
    pub(crate) runs: Option<usize>,
    /// Drop the page cache before each timed run (root).
    pub(crate) drop_caches: bool,
}

/// Parses the `bench` arguments.
pub(crate) fn parse(args: Vec<OsString>) -> Result<Args, String> {
    let mut out = Args::default();
    let mut it = args.into_iter();
    while let Some(a) = it.next() {
        let text = a.to_string_lossy().into_owned();
        let (name, inline) = match text.split_once('=') {
            Some((n, v)) if n.starts_with("--") => (n.to_owned(), Some(v.to_owned())),
            _ => (text.clone(), None),
        };
        let mut value = |opt: &str| -> Result<String, String> {
            match &inline {
                Some(v) => Ok(v.clone()),
                None => it
                    .next()
                    .and_then(|v| v.into_string().ok())
                    .ok_or_else(|| format!("{opt} needs a value")),
            }
        };
        match name.as_str() {
            "--quick" => out.quick = true,
            "--drop-caches" => out.drop_caches = true,
            "--filter" => out.filter = Some(value("--filter")?),
            "--dir" => out.dir = Some(PathBuf::from(value("--dir")?)),
            "--runs" => {
                let v = value("--runs")?;
                let n: usize = v
                    .parse()
                    .map_err(|_| format!("--runs: not a number: {v:?}"))?;
                if n == 0 {
                    return Err("--runs must be at least 1".into());
                }
                out.runs = Some(n);
            }
            _ => return Err(format!("bench: unexpected argument {text:?}")),
        }
    }
    Ok(out)
}

/// Runs the benchmark matrix; returns the exit code.
pub(crate) fn bench(raw: Vec<OsString>) -> Result<i32, String> {
    let args = parse(raw.clone())?;
    // Timings of a debug build say little about the library: rebuild and
    // run this command from the release profile.
    if cfg!(debug_assertions) && std::env::var_os("COW_BENCH_ALLOW_DEBUG").is_none() {
        let mut cmd = crate::util::cargo();
        cmd.args([
            "run",
            "--quiet",
            "--release",
            "--package",
            "xtask",
            "--",
            "bench",
        ])
        .args(&raw);
        eprintln!(
            "xtask bench: re-running from the release profile: {}",
            crate::util::show(&cmd)
        );
        return match crate::signals::run_interruptible(&mut cmd) {
            Ok(s) => Ok(s.code().unwrap_or(1)),
            Err(e) => Err(format!("cannot run cargo: {e}")),
        };
    }
    platform_bench(&args)
}

#[cfg(target_os = "linux")]
fn platform_bench(args: &Args) -> Result<i32, String> {
    run::run(args)
}

#[cfg(not(target_os = "linux"))]
fn platform_bench(_args: &Args) -> Result<i32, String> {
    eprintln!(
        "xtask bench: the benchmark matrix runs on Linux only for now (loop-mounted \
         filesystems, FIEMAP sharing); nothing was measured"
    );
    Ok(2)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(v: &[&str]) -> Vec<OsString> {
        v.iter().map(OsString::from).collect()
    }

    #[test]
    fn parses_options() {
        let a = parse(os(&[
            "--quick", "--filter", "tree", "--runs=4", "--dir", "/x",
        ]))
        .unwrap();
        assert!(a.quick);
        assert_eq!(a.filter.as_deref(), Some("tree"));
        assert_eq!(a.runs, Some(4));
        assert_eq!(a.dir, Some(PathBuf::from("/x")));
        assert!(parse(os(&["--runs", "0"])).is_err());
        assert!(parse(os(&["--bogus"])).is_err());
        assert!(parse(os(&["--filter"])).is_err());
    }
}
