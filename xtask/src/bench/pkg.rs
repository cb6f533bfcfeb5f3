//! The real-package workloads: `pkg-tree` copies an installed
//! `site-packages`, `pkg-update` copies a newer one over it.
//!
//! The trees are unpacked from real wheels fetched with `pip download` into
//! `target/cow-bench/pkg-cache/` (once; later runs reuse the cache), keeping
//! each archive member's modification time as an installer does. When the
//! registry (or pip) is unavailable, a synthetic pair of trees with the
//! measured file count, size quantiles, depth histogram and changes of the
//! real pair is generated instead, and the table says which one ran.

use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, SystemTime};

use super::workloads::{Prepared, Rng, run_cp};

/// The installed set: `(package, version)`.
const OLD: &[(&str, &str)] = &[
    ("numpy", "2.1.3"),
    ("pandas", "2.2.2"),
    ("scipy", "1.14.1"),
    ("matplotlib", "3.9.2"),
    ("sympy", "1.13.2"),
];

/// The update: numpy and scipy stay, the others move on a patch release.
const NEW: &[(&str, &str)] = &[
    ("numpy", "2.1.3"),
    ("pandas", "2.2.3"),
    ("scipy", "1.14.1"),
    ("matplotlib", "3.9.3"),
    ("sympy", "1.13.3"),
];

/// Unpacks wheels (`argv[2..]`) into `argv[1]`, giving every file its
/// archive member's time, as pip does.
const UNPACK: &str = "import sys, zipfile, os, time
for whl in sys.argv[2:]:
    with zipfile.ZipFile(whl) as z:
        for zi in z.infolist():
            p = z.extract(zi, sys.argv[1])
            if not zi.is_dir():
                t = time.mktime(zi.date_time + (0, 0, -1))
                os.utime(p, (t, t))
";

/// The cached pair of trees.
#[derive(Debug)]
pub(crate) struct Trees {
    /// The installed tree.
    pub(crate) old: PathBuf,
    /// The newer tree.
    pub(crate) new: PathBuf,
    /// What they are made of, for the table.
    pub(crate) origin: String,
}

/// The trees, fetched or generated on first use.
pub(crate) fn trees() -> Result<&'static Trees, String> {
    static TREES: OnceLock<Result<Trees, String>> = OnceLock::new();
    TREES
        .get_or_init(|| {
            let cache = super::run::out_dir().join("pkg-cache");
            fs::create_dir_all(&cache)
                .map_err(|e| format!("cannot create {}: {e}", cache.display()))?;
            // COW_BENCH_PKG_SYNTHETIC=1 exercises the fallback on purpose.
            let fetched = if std::env::var_os("COW_BENCH_PKG_SYNTHETIC").is_some() {
                Err("COW_BENCH_PKG_SYNTHETIC is set".to_owned())
            } else {
                real(&cache)
            };
            match fetched {
                Ok(t) => Ok(t),
                Err(why) => {
                    eprintln!("xtask bench: pkg: no real packages ({why}); using synthetic trees");
                    synthetic(&cache, &why).map_err(|e| format!("synthetic pkg trees: {e}"))
                }
            }
        })
        .as_ref()
        .map_err(Clone::clone)
}

fn list(set: &[(&str, &str)]) -> String {
    set.iter()
        .map(|(p, v)| format!("{p} {v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The real trees: wheels from PyPI, unpacked.
fn real(cache: &Path) -> Result<Trees, String> {
    let wheels = cache.join("wheels");
    let origin = format!(
        "real wheels (pip download, cp312 manylinux2014_x86_64): {} -> {}",
        list(OLD),
        list(NEW)
    );
    let (old, new) = (cache.join("real-old"), cache.join("real-new"));
    if old.join(".done").exists() && new.join(".done").exists() {
        return Ok(Trees { old, new, origin });
    }
    for set in [OLD, NEW] {
        let specs: Vec<String> = set.iter().map(|(p, v)| format!("{p}=={v}")).collect();
        let mut pip = Command::new("python3");
        pip.args(["-m", "pip", "download", "--quiet", "--no-deps"])
            .args(["--only-binary=:all:", "--python-version", "3.12"])
            .args(["--implementation", "cp", "--abi", "cp312"])
            .args(["--platform", "manylinux2014_x86_64"])
            .args(["--platform", "manylinux_2_17_x86_64", "-d"])
            .arg(&wheels)
            .args(&specs);
        fetch(&mut pip, "pip download")?;
    }
    for (dir, set) in [(&old, OLD), (&new, NEW)] {
        let _ = fs::remove_dir_all(dir);
        let mut cmd = Command::new("python3");
        cmd.args(["-c", UNPACK]).arg(dir);
        for (p, v) in set {
            let prefix = format!("{p}-{v}-");
            let whl = fs::read_dir(&wheels)
                .map_err(|e| format!("cannot list {}: {e}", wheels.display()))?
                .filter_map(Result::ok)
                .map(|e| e.path())
                .find(|w| {
                    w.file_name()
                        .is_some_and(|n| n.to_string_lossy().starts_with(&prefix))
                })
                .ok_or_else(|| format!("no wheel {prefix}* in {}", wheels.display()))?;
            cmd.arg(whl);
        }
        let status = cmd
            .status()
            .map_err(|e| format!("cannot run python3: {e}"))?;
        if !status.success() {
            return Err(format!("unpacking into {} failed: {status}", dir.display()));
        }
        File::create(dir.join(".done")).map_err(|e| e.to_string())?;
    }
    Ok(Trees { old, new, origin })
}

/// Runs a package manager's download (`what` names it in errors); its
/// error output becomes the error.
fn fetch(cmd: &mut Command, what: &str) -> Result<(), String> {
    let out = cmd
        .output()
        .map_err(|e| format!("cannot run {what}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{what} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// File sizes of the real new tree at quantiles from 0 to 100 %, finer in
/// the heavy tail (measured on the wheels above).
const SIZE_QUANTILES: [(f64, u64); 14] = [
    (0.0, 0),
    (0.1, 288),
    (0.25, 1_299),
    (0.5, 5_823),
    (0.75, 19_192),
    (0.9, 57_271),
    (0.95, 114_433),
    (0.98, 331_536),
    (0.99, 577_633),
    (0.995, 977_920),
    (0.998, 2_654_792),
    (0.999, 3_831_008),
    (0.9995, 10_490_129),
    (1.0, 36_060_905),
];

/// Files per directory depth below the root in the real tree.
const DEPTHS: [usize; 7] = [2, 215, 1550, 2114, 1447, 515, 8];

/// Directories holding files in the real tree.
const DIRS: usize = 550;

/// Of the 5,834 files the two real trees share, 2,207 have the same size
/// and time, 3,496 the same bytes under a new time (re-built packages), 131
/// other bytes.
const SAME_TIME_PER_MILLE: u64 = 378;
const CHANGED_PER_MILLE: u64 = 22;

/// The synthetic stand-in, generated once into the cache.
fn synthetic(cache: &Path, why: &str) -> io::Result<Trees> {
    let (old, new) = (cache.join("synthetic-old"), cache.join("synthetic-new"));
    let files: usize = DEPTHS.iter().sum();
    let origin = format!(
        "SYNTHETIC ({why}): {files} files with the size quantiles, depths and changes of the real trees"
    );
    if old.join(".done").exists() && new.join(".done").exists() {
        return Ok(Trees { old, new, origin });
    }
    let _ = fs::remove_dir_all(&old);
    let _ = fs::remove_dir_all(&new);
    let mut rng = Rng(0x05EE_D0FF_11E5 | 1);
    let t_old = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    let t_new = t_old + Duration::from_secs(86_400 * 30);
    let mut buf = Vec::new();
    let mut depth_of_file = DEPTHS
        .iter()
        .enumerate()
        .flat_map(|(d, n)| std::iter::repeat_n(d, *n));
    for i in 0..files {
        let depth = depth_of_file.next().unwrap_or(3);
        let dir = i * DIRS / files;
        let mut rel = PathBuf::new();
        for level in 0..depth {
            rel.push(format!("p{}", dir % 5));
            if level > 0 {
                rel.push(format!("d{dir}-{level}"));
            }
        }
        rel.push(format!("f{i}.py"));
        let len = quantile_size(rng.next());
        buf.resize(len as usize, 0);
        rng.fill(&mut buf);
        let roll = rng.next() % 1000;
        for (root, is_new) in [(&old, false), (&new, true)] {
            let p = root.join(&rel);
            fs::create_dir_all(p.parent().unwrap_or(root))?;
            if is_new && roll < CHANGED_PER_MILLE {
                rng.fill(&mut buf);
            }
            fs::write(&p, &buf)?;
            let same_time =
                (CHANGED_PER_MILLE..CHANGED_PER_MILLE + SAME_TIME_PER_MILLE).contains(&roll);
            let t = if is_new && !same_time { t_new } else { t_old };
            File::options().write(true).open(&p)?.set_modified(t)?;
        }
    }
    File::create(old.join(".done"))?;
    File::create(new.join(".done"))?;
    Ok(Trees { old, new, origin })
}

/// A file size drawn from [`SIZE_QUANTILES`], geometric between two
/// quantiles (sizes spread over decades; linear steps would inflate the
/// tail: 448 MiB instead of the real 264 MiB).
fn quantile_size(r: u64) -> u64 {
    let u = (r % 1_000_000) as f64 / 1_000_000.0;
    let w = SIZE_QUANTILES.windows(2).find(|w| u < w[1].0);
    match w {
        Some([(q0, s0), (q1, s1)]) => {
            let f = (u - q0) / (q1 - q0);
            let low = (*s0).max(1) as f64;
            (low * (*s1 as f64 / low).powf(f)) as u64
        }
        _ => SIZE_QUANTILES[SIZE_QUANTILES.len() - 1].1,
    }
}

/// Lays out `pkg-tree` (the installed tree) or `pkg-update` (the newer tree
/// as the source, the installed one as the older copy) under `base`.
pub(crate) fn prepare(update: bool, base: &Path) -> io::Result<Prepared> {
    let t = trees().map_err(io::Error::other)?;
    let src = base.join("src");
    let from = if update { &t.new } else { &t.old };
    run_cp(&["-a", "--reflink=never"], from, &src)?;
    let old = if update {
        let old = base.join("old");
        run_cp(&["-a", "--reflink=never"], &t.old, &old)?;
        Some(old)
    } else {
        None
    };
    let sample = largest(&src, old.as_deref())?;
    Ok(Prepared {
        src,
        dst: base.join("dst"),
        old,
        sample,
    })
}

/// The largest file of `src` (relative), or with `old` the largest whose
/// bytes differ from its counterpart there: the file every tool must copy.
fn largest(src: &Path, old: Option<&Path>) -> io::Result<PathBuf> {
    let mut best: Option<(u64, PathBuf)> = None;
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        for e in fs::read_dir(src.join(&rel))? {
            let e = e?;
            let r = rel.join(e.file_name());
            let ty = e.file_type()?;
            if ty.is_dir() {
                stack.push(r);
                continue;
            }
            let len = e.metadata()?.len();
            if !ty.is_file() || best.as_ref().is_some_and(|(b, _)| *b >= len) {
                continue;
            }
            if let Some(o) = old {
                if fs::read(o.join(&r)).ok() == Some(fs::read(src.join(&r))?) {
                    continue;
                }
            }
            best = Some((len, r));
        }
    }
    best.map(|(_, r)| r)
        .ok_or_else(|| io::Error::other(format!("no sample file in {}", src.display())))
}

/// The `npm-tree` packages: the node_modules (eslint 9, webpack 5,
/// typescript 5, jest 29), pinned.
const NPM: [&str; 4] = [
    "eslint@9.14.0",
    "webpack@5.96.1",
    "typescript@5.6.3",
    "jest@29.7.0",
];

/// The cached `node_modules`, installed with `npm install` on first use;
/// `Err` says why there is none (no npm, registry unreachable).
pub(crate) fn npm_tree() -> Result<&'static Path, String> {
    static TREE: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    TREE.get_or_init(|| {
        if std::env::var_os("COW_BENCH_PKG_SYNTHETIC").is_some() {
            return Err("COW_BENCH_PKG_SYNTHETIC is set".to_owned());
        }
        let dir = super::run::out_dir().join("pkg-cache").join("npm");
        let tree = dir.join("node_modules");
        if dir.join(".done").exists() {
            return Ok(tree);
        }
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        let mut npm = Command::new("npm");
        npm.args(["install", "--no-audit", "--no-fund", "--ignore-scripts"])
            .args(["--loglevel=error", "--prefix"])
            .arg(&dir)
            .args(NPM);
        fetch(&mut npm, "npm install")?;
        File::create(dir.join(".done")).map_err(|e| e.to_string())?;
        Ok(tree)
    })
    .as_ref()
    .map(PathBuf::as_path)
    .map_err(Clone::clone)
}

/// Lays out `npm-tree` under `base`: the real `node_modules`, or the
/// synthetic site-packages when npm could not install it.
pub(crate) fn prepare_npm(base: &Path) -> io::Result<Prepared> {
    let from = match npm_tree() {
        Ok(t) => t.to_path_buf(),
        Err(why) => {
            eprintln!("xtask bench: npm-tree: no node_modules ({why}); using synthetic trees");
            trees().map_err(io::Error::other)?.old.clone()
        }
    };
    let src = base.join("src");
    run_cp(&["-a", "--reflink=never"], &from, &src)?;
    let sample = largest(&src, None)?;
    Ok(Prepared {
        src,
        dst: base.join("dst"),
        old: None,
        sample,
    })
}

/// `npm-tree`'s description for the table.
pub(crate) fn describe_npm() -> String {
    match npm_tree() {
        Ok(_) => format!(
            "a node_modules, archive mode; real packages (npm install {})",
            NPM.join(" ")
        ),
        Err(why) => format!("SYNTHETIC site-packages in place of node_modules ({why})"),
    }
}

/// The workload's description for the table.
pub(crate) fn describe(update: bool, unshared: bool) -> String {
    let origin = match trees() {
        Ok(t) => t.origin.clone(),
        Err(e) => format!("unavailable: {e}"),
    };
    if update {
        let reset = if unshared {
            "cp -a --reflink=never copy: shares no block"
        } else {
            "cp -a --reflink=auto copy of an independent one: shares every block with it"
        };
        format!("the newer site-packages over the installed one ({reset}), archive mode; {origin}")
    } else {
        format!("an installed site-packages, archive mode; {origin}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_cover_the_range() {
        assert!(quantile_size(0) <= 1);
        assert_eq!(quantile_size(500_000), 5_823);
        assert!(quantile_size(999_999) <= 36_060_905);
        assert_eq!(DEPTHS.iter().sum::<usize>(), 5851);
    }
}
