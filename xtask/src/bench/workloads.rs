//! The workloads: what is copied, how big, how often, and the source data
//! each one writes before its cells run.

use std::fs::{self, File};
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::Command;

const KIB: u64 = 1 << 10;
const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;

/// The shape of a workload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Shape {
    /// One file of `size` bytes, all data.
    Dense { size: u64 },
    /// One file of `size` bytes with 1 % data in `extents` extents.
    Sparse { size: u64, extents: u64 },
    /// A tree of `files` small files (1-64 KiB) in directories of 100.
    Tree { files: usize },
    /// The tree again, copied over an older copy of it in which every
    /// tenth file differs (90 % unchanged). The older copy shares its
    /// blocks with a snapshot-like twin; with `unshared` it shares none (as
    /// an installer writes it) and the copy is in archive mode.
    Update { files: usize, unshared: bool },
    /// A real `site-packages` ([`super::pkg`]): copied whole, or (`update`)
    /// the newer one over the installed one, which shares its blocks with a
    /// snapshot-like twin unless `unshared`. Archive mode (`-a`).
    Pkg { update: bool, unshared: bool },
    /// A real `node_modules` ([`super::pkg::npm_tree`]), archive mode.
    Npm,
}

/// One workload of the matrix.
#[derive(Debug, Clone)]
pub(crate) struct Workload {
    /// Short name (the table's first column, matched by `--filter`).
    pub(crate) name: String,
    /// What it copies.
    pub(crate) shape: Shape,
    /// Timed runs per cell.
    pub(crate) runs: usize,
}

/// The workloads of a full or `--quick` run; `runs` overrides each one's
/// default run count.
pub(crate) fn matrix(quick: bool, runs: Option<usize>) -> Vec<Workload> {
    let list: Vec<(&str, Shape, usize)> = if quick {
        vec![
            ("dense-8M", Shape::Dense { size: 8 * MIB }, 3),
            (
                "sparse-128M",
                Shape::Sparse {
                    size: 128 * MIB,
                    extents: 64,
                },
                3,
            ),
            ("tree-500", Shape::Tree { files: 500 }, 3),
            (
                "update-500",
                Shape::Update {
                    files: 500,
                    unshared: false,
                },
                3,
            ),
        ]
    } else {
        vec![
            ("dense-64M", Shape::Dense { size: 64 * MIB }, 5),
            ("dense-1G", Shape::Dense { size: GIB }, 5),
            (
                "sparse-1G",
                Shape::Sparse {
                    size: GIB,
                    extents: 64,
                },
                5,
            ),
            ("tree-10k", Shape::Tree { files: 10_000 }, 5),
            (
                "update-10k",
                Shape::Update {
                    files: 10_000,
                    unshared: false,
                },
                5,
            ),
            (
                "update-10k-unshared",
                Shape::Update {
                    files: 10_000,
                    unshared: true,
                },
                5,
            ),
            (
                "pkg-tree",
                Shape::Pkg {
                    update: false,
                    unshared: false,
                },
                5,
            ),
            (
                "pkg-update",
                Shape::Pkg {
                    update: true,
                    unshared: false,
                },
                5,
            ),
            ("npm-tree", Shape::Npm, 5),
            (
                "pkg-update-unshared",
                Shape::Pkg {
                    update: true,
                    unshared: true,
                },
                5,
            ),
        ]
    };
    list.into_iter()
        .map(|(name, shape, n)| Workload {
            name: name.to_owned(),
            shape,
            runs: runs.unwrap_or(n),
        })
        .collect()
}

impl Workload {
    /// Whether the workload copies a directory tree.
    pub(crate) fn is_tree(&self) -> bool {
        matches!(
            self.shape,
            Shape::Tree { .. } | Shape::Update { .. } | Shape::Pkg { .. } | Shape::Npm
        )
    }

    /// Whether the copy goes over an older copy.
    pub(crate) fn is_update(&self) -> bool {
        matches!(
            self.shape,
            Shape::Update { .. } | Shape::Pkg { update: true, .. }
        )
    }

    /// Whether an update's older copy shares no block with anything (it is
    /// reset with `cp --reflink=never` instead of `--reflink=auto`).
    pub(crate) fn old_unshared(&self) -> bool {
        matches!(
            self.shape,
            Shape::Update { unshared: true, .. } | Shape::Pkg { unshared: true, .. }
        )
    }

    /// Whether the tree is copied in archive mode (`cp -a`, `rsync -a`,
    /// cow with every attribute preserved).
    pub(crate) fn is_archive(&self) -> bool {
        matches!(
            self.shape,
            Shape::Pkg { .. } | Shape::Npm | Shape::Update { unshared: true, .. }
        )
    }

    /// What it stands for, for the docs and the JSON.
    pub(crate) fn models(&self) -> &'static str {
        match self.shape {
            Shape::Dense { size } if size < GIB => {
                "a mid-size file: an archive, a database file, a media file"
            }
            Shape::Dense { .. } => "a big file: a VM or container image, a backup",
            Shape::Sparse { .. } => "a thin-provisioned VM disk image: mostly holes",
            Shape::Tree { .. } => {
                "many small files: a package install (node_modules, site-packages), a source or build tree"
            }
            Shape::Update {
                unshared: false, ..
            } => {
                "re-syncing a tree where most files did not change: a deploy, a backup refresh, a rebuilt target dir"
            }
            Shape::Update { unshared: true, .. } => {
                "re-syncing, in archive mode, a tree that no snapshot or clone shares: a deploy over plain files"
            }
            Shape::Pkg { update: false, .. } => "installing or snapshotting a Python environment",
            Shape::Npm => "copying a JavaScript project's dependencies (pnpm/npm store to project)",
            Shape::Pkg {
                update: true,
                unshared: false,
            } => "upgrading packages in place (pip install -U onto a snapshotted environment)",
            Shape::Pkg {
                update: true,
                unshared: true,
            } => "upgrading packages in place in an environment no snapshot shares",
        }
    }

    /// A one-line size description.
    pub(crate) fn describe(&self) -> String {
        match self.shape {
            Shape::Dense { size } => format!("{} dense file", size_text(size)),
            Shape::Sparse { size, extents } => format!(
                "{} sparse file, {} of data in {extents} extents",
                size_text(size),
                size_text(sparse_extent_len(size, extents) * extents)
            ),
            Shape::Tree { files } => format!("{files} files of 1-64 KiB in directories of 100"),
            Shape::Update { files, unshared } => format!(
                "{files} files of 1-64 KiB over an older copy, {} changed{}",
                changed_count(files),
                if unshared {
                    "; the older copy shares no block (reset with cp --reflink=never); archive mode"
                } else {
                    ""
                }
            ),
            Shape::Pkg { update, unshared } => super::pkg::describe(update, unshared),
            Shape::Npm => super::pkg::describe_npm(),
        }
    }
}

/// Bytes as a short text (`64 MiB`, `1 GiB`).
pub(crate) fn size_text(bytes: u64) -> String {
    if bytes >= GIB && bytes % GIB == 0 {
        format!("{} GiB", bytes / GIB)
    } else if bytes >= MIB && bytes % MIB == 0 {
        format!("{} MiB", bytes / MIB)
    } else if bytes >= 10 * MIB {
        format!("{:.1} MiB", bytes as f64 / MIB as f64)
    } else {
        format!("{} KiB", bytes.div_ceil(KIB))
    }
}

/// Each data extent of a sparse workload: 1 % of the size split in
/// `extents`, rounded down to 4 KiB.
fn sparse_extent_len(size: u64, extents: u64) -> u64 {
    (size / 100 / extents) & !4095
}

fn changed_count(files: usize) -> usize {
    files.div_ceil(10)
}

/// The source data of a workload, written under `base`, and where its
/// copies go.
#[derive(Debug)]
pub(crate) struct Prepared {
    /// The file or directory that is copied.
    pub(crate) src: PathBuf,
    /// Where the copy goes (removed between runs).
    pub(crate) dst: PathBuf,
    /// For an update: the older copy that `dst` is reset to before each run.
    pub(crate) old: Option<PathBuf>,
    /// The file whose sharing with its copy is measured, relative to `src`
    /// and `dst` (empty for a single file).
    pub(crate) sample: PathBuf,
}

impl Prepared {
    /// The sample file of the source.
    pub(crate) fn sample_src(&self) -> PathBuf {
        join(&self.src, &self.sample)
    }

    /// The sample file of the copy.
    pub(crate) fn sample_dst(&self) -> PathBuf {
        join(&self.dst, &self.sample)
    }
}

fn join(base: &Path, rel: &Path) -> PathBuf {
    if rel.as_os_str().is_empty() {
        base.to_owned()
    } else {
        base.join(rel)
    }
}

/// A small, fast pseudo-random generator (xorshift64*), so the data is
/// neither compressible nor deduplicable.
pub(crate) struct Rng(pub(crate) u64);

impl Rng {
    pub(crate) fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    pub(crate) fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            let v = self.next().to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
    }
}

/// Writes the source of `w` under `base` (which must exist and be empty).
pub(crate) fn prepare(w: &Workload, base: &Path) -> io::Result<Prepared> {
    let seed = 0x00C0_FFEE_u64 ^ (w.name.len() as u64) << 32;
    let mut rng = Rng(seed | 1);
    match w.shape {
        Shape::Dense { size } => {
            let src = base.join("src.bin");
            let mut f = File::create(&src)?;
            let mut buf = vec![0u8; MIB as usize];
            let mut left = size;
            while left > 0 {
                let n = left.min(MIB) as usize;
                rng.fill(&mut buf[..n]);
                f.write_all(&buf[..n])?;
                left -= n as u64;
            }
            f.sync_all()?;
            Ok(Prepared {
                src,
                dst: base.join("dst.bin"),
                old: None,
                sample: PathBuf::new(),
            })
        }
        Shape::Sparse { size, extents } => {
            let src = base.join("src.img");
            let f = File::create(&src)?;
            f.set_len(size)?;
            let len = sparse_extent_len(size, extents);
            let stride = size / extents;
            let mut buf = vec![0u8; len as usize];
            for k in 0..extents {
                rng.fill(&mut buf);
                f.write_all_at(&buf, k * stride)?;
            }
            f.sync_all()?;
            Ok(Prepared {
                src,
                dst: base.join("dst.img"),
                old: None,
                sample: PathBuf::new(),
            })
        }
        Shape::Tree { files } => {
            let src = base.join("src");
            write_tree(&src, files, &mut rng)?;
            Ok(Prepared {
                src,
                dst: base.join("dst"),
                old: None,
                sample: tree_file(0),
            })
        }
        Shape::Update { files, .. } => {
            let src = base.join("src");
            let old = base.join("old");
            write_tree(&src, files, &mut rng)?;
            // The older copy: an independent physical copy (no sharing with
            // the source) with the same contents and times.
            run_cp(&["-a", "--reflink=never"], &src, &old)?;
            // Then every tenth file of the source changes (same size, new
            // bytes, new mtime).
            let mut buf = Vec::new();
            for i in (0..files).step_by(10) {
                let p = src.join(tree_file(i));
                let len = fs::metadata(&p)?.len() as usize;
                buf.resize(len, 0);
                rng.fill(&mut buf);
                fs::write(&p, &buf)?;
            }
            Ok(Prepared {
                src,
                dst: base.join("dst"),
                old: Some(old),
                // A changed file: the one every tool must really copy.
                sample: tree_file(0),
            })
        }
        Shape::Pkg { update, .. } => super::pkg::prepare(update, base),
        Shape::Npm => super::pkg::prepare_npm(base),
    }
}

/// The relative path of file `i` in a tree workload.
fn tree_file(i: usize) -> PathBuf {
    PathBuf::from(format!("d{:03}/f{i:05}", i / 100))
}

fn write_tree(root: &Path, files: usize, rng: &mut Rng) -> io::Result<u64> {
    fs::create_dir(root)?;
    let mut total = 0;
    let mut buf = vec![0u8; 64 * KIB as usize];
    for i in 0..files {
        if i % 100 == 0 {
            fs::create_dir(root.join(format!("d{:03}", i / 100)))?;
        }
        let len = (KIB + rng.next() % (63 * KIB + 1)) as usize;
        rng.fill(&mut buf[..len]);
        fs::write(root.join(tree_file(i)), &buf[..len])?;
        total += len as u64;
    }
    Ok(total)
}

/// Runs GNU `cp ARGS src dst` (for setup; not timed).
pub(crate) fn run_cp(args: &[&str], src: &Path, dst: &Path) -> io::Result<()> {
    let status = Command::new("cp")
        .args(args)
        .arg("-T")
        .arg(src)
        .arg(dst)
        .status()?;
    if status.success() {
        Ok(())
    } else {
        Err(io::Error::other(format!(
            "cp {} -T {} {} failed: {status}",
            args.join(" "),
            src.display(),
            dst.display()
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sparse_is_one_percent() {
        let len = sparse_extent_len(GIB, 64);
        assert_eq!(len % 4096, 0);
        let pct = (len * 64) as f64 / GIB as f64 * 100.0;
        assert!((0.9..=1.0).contains(&pct), "{pct}");
    }

    #[test]
    fn quick_and_full_matrices() {
        assert_eq!(matrix(false, None).len(), 10);
        assert!(matrix(true, Some(2)).iter().all(|w| w.runs == 2));
        assert_eq!(changed_count(10_000), 1000);
    }
}
