//! The cases of the power-cut harness: what each one writes before a cut,
//! the command it cuts, and which files must be wholly old or wholly new.

use std::path::{Path, PathBuf};

use super::image::Fs;

/// The files a case starts from.
#[derive(Clone, Copy, Debug)]
pub(super) enum Layout {
    /// `src` (new content) and `dst` (old content).
    File { size: usize },
    /// `src/fNNN` (new) and `dst/fNNN` (old).
    Tree { files: usize, size: usize },
    /// Like `Tree`, but every even `dst/fNNN` already holds the new content.
    Identical { files: usize, size: usize },
    /// `a` and `b`: the same content, written separately (not shared).
    Pair { size: usize },
}

/// Who wrote the command: cow (counted in the verdict) or a tool it is
/// compared with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Who {
    Cow,
    Other,
}

/// One case.
#[derive(Clone, Debug)]
pub(super) struct Case {
    pub(super) name: &'static str,
    pub(super) layout: Layout,
    /// The command, run in the case's directory; `cow` means the binary
    /// under test.
    pub(super) argv: Vec<&'static str>,
    /// The copy promises that what it reported is on disk when it returns.
    pub(super) durable: bool,
    pub(super) who: Who,
    /// Needs FICLONE / FIDEDUPERANGE (skipped on ext4).
    pub(super) needs_clone: bool,
}

/// A file to check after the cut: it must be `old` or `new` (or, with
/// `source`, exactly `new`: a source the copy must not damage).
pub(super) struct Target {
    pub(super) path: PathBuf,
    pub(super) old: Vec<u8>,
    pub(super) new: Vec<u8>,
}

/// Pseudo-random content, different per (file, version).
fn content(file: usize, version: u64, len: usize) -> Vec<u8> {
    let mut x = 0x9E37_79B9_7F4A_7C15u64
        ^ ((file as u64) << 20)
        ^ version.wrapping_mul(0xA24B_AED4_963E_E407);
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

fn write(path: &Path, data: &[u8]) -> Result<(), String> {
    std::fs::write(path, data).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

fn mkdir(path: &Path) -> Result<(), String> {
    std::fs::create_dir_all(path).map_err(|e| format!("cannot create {}: {e}", path.display()))
}

/// What a prepared case checks: destinations (old or new) and sources
/// (must stay new).
pub(super) struct Prepared {
    pub(super) targets: Vec<Target>,
    pub(super) sources: Vec<Target>,
    /// Every name the case itself made (anything else found is a leftover).
    pub(super) names: Vec<PathBuf>,
}

impl Layout {
    /// Writes the starting files into the empty directory `dir`.
    pub(super) fn prepare(self, dir: &Path) -> Result<Prepared, String> {
        let mut p = Prepared {
            targets: Vec::new(),
            sources: Vec::new(),
            names: Vec::new(),
        };
        match self {
            Layout::File { size } => {
                let (old, new) = (content(0, 1, size), content(0, 2, size));
                write(&dir.join("src"), &new)?;
                write(&dir.join("dst"), &old)?;
                p.sources.push(Target {
                    path: dir.join("src"),
                    old: new.clone(),
                    new: new.clone(),
                });
                p.targets.push(Target {
                    path: dir.join("dst"),
                    old,
                    new,
                });
            }
            Layout::Tree { files, size } | Layout::Identical { files, size } => {
                let identical = matches!(self, Layout::Identical { .. });
                mkdir(&dir.join("src"))?;
                mkdir(&dir.join("dst"))?;
                p.names.push(dir.join("src"));
                p.names.push(dir.join("dst"));
                for i in 0..files {
                    // Sizes vary a little so that no two files look alike.
                    let len = size + i * 512;
                    let new = content(i, 2, len);
                    let old = if identical && i % 2 == 0 {
                        new.clone()
                    } else {
                        content(i, 1, len / 2 + 1)
                    };
                    let name = format!("f{i:04}");
                    write(&dir.join("src").join(&name), &new)?;
                    write(&dir.join("dst").join(&name), &old)?;
                    p.sources.push(Target {
                        path: dir.join("src").join(&name),
                        old: new.clone(),
                        new: new.clone(),
                    });
                    p.targets.push(Target {
                        path: dir.join("dst").join(&name),
                        old,
                        new,
                    });
                }
            }
            Layout::Pair { size } => {
                let data = content(7, 3, size);
                for name in ["a", "b"] {
                    write(&dir.join(name), &data)?;
                    p.targets.push(Target {
                        path: dir.join(name),
                        old: data.clone(),
                        new: data.clone(),
                    });
                }
            }
        }
        p.names
            .extend(p.targets.iter().chain(&p.sources).map(|t| t.path.clone()));
        Ok(p)
    }
}

/// Every case, for `fs`, sized for `long` or the quick form.
pub(super) fn all(fs: Fs, long: bool, compare: bool) -> Vec<Case> {
    // The long form cuts the same files more often (and a larger single
    // file): each cut costs a remount, so the trees stay small.
    let mib = 1 << 20;
    let file = Layout::File {
        size: if long { 16 * mib } else { 4 * mib },
    };
    let tree = Layout::Tree {
        files: if long { 64 } else { 32 },
        size: 48 << 10,
    };
    let identical = Layout::Identical {
        files: if long { 32 } else { 16 },
        size: 64 << 10,
    };
    let pair = Layout::Pair {
        size: if long { 16 * mib } else { 4 * mib },
    };
    let cow = |name, layout, argv: Vec<&'static str>, needs_clone| Case {
        name,
        layout,
        durable: argv.contains(&"--fsync"),
        argv,
        who: Who::Cow,
        needs_clone,
    };
    let other = |name, layout, argv: Vec<&'static str>, needs_clone| Case {
        name,
        layout,
        durable: false,
        argv,
        who: Who::Other,
        needs_clone,
    };
    let mut cases = vec![
        cow(
            "atomic clone",
            file,
            vec!["cow", "cp", "--atomic", "--reflink=always", "src", "dst"],
            true,
        ),
        cow(
            "atomic kernel copy",
            file,
            vec!["cow", "cp", "--atomic", "--reflink=auto", "src", "dst"],
            false,
        ),
        cow(
            "atomic user copy",
            file,
            vec!["cow", "cp", "--atomic", "--reflink=never", "src", "dst"],
            false,
        ),
        cow(
            "atomic --fsync user copy",
            file,
            vec![
                "cow",
                "cp",
                "--atomic",
                "--fsync",
                "--reflink=never",
                "src",
                "dst",
            ],
            false,
        ),
        cow(
            "tree -r --atomic",
            tree,
            vec![
                "cow",
                "cp",
                "-r",
                "--atomic",
                "--reflink=never",
                "src/.",
                "dst",
            ],
            false,
        ),
        cow(
            "tree -r --atomic --fsync",
            tree,
            vec![
                "cow",
                "cp",
                "-r",
                "--atomic",
                "--fsync",
                "--reflink=never",
                "src/.",
                "dst",
            ],
            false,
        ),
        cow(
            "update=identical",
            identical,
            vec![
                "cow",
                "cp",
                "-r",
                "--atomic",
                "--update=identical",
                "src/.",
                "dst",
            ],
            false,
        ),
        cow(
            "update=identical --dedupe",
            identical,
            vec![
                "cow",
                "cp",
                "-r",
                "--atomic",
                "--update=identical",
                "--dedupe",
                "src/.",
                "dst",
            ],
            false,
        ),
        // ext4 cannot dedupe: `cow dedupe` refuses there.
        cow("cow dedupe", pair, vec!["cow", "dedupe", "a", "b"], true),
    ];
    if compare {
        cases.extend([
            other(
                "cow cp (in place, default)",
                file,
                vec!["cow", "cp", "--reflink=never", "src", "dst"],
                false,
            ),
            other(
                "GNU cp (in place)",
                file,
                vec!["cp", "--reflink=never", "src", "dst"],
                false,
            ),
            other(
                "cp + mv (no sync)",
                file,
                vec!["sh", "-c", "cp --reflink=never src .t && mv .t dst"],
                false,
            ),
            other(
                "cp --reflink + mv (no sync)",
                file,
                vec!["sh", "-c", "cp --reflink=always src .t && mv .t dst"],
                true,
            ),
            // -I: old and new have the same size and nearly the same mtime,
            // which the quick check of rsync would take for "unchanged".
            other("rsync", file, vec!["rsync", "-I", "src", "dst"], false),
            other(
                "rsync --inplace",
                file,
                vec!["rsync", "-I", "--inplace", "src", "dst"],
                false,
            ),
            other(
                "GNU cp -r tree",
                tree,
                vec!["cp", "-r", "--reflink=never", "src/.", "dst"],
                false,
            ),
            other(
                "rsync -r tree",
                tree,
                vec!["rsync", "-r", "-I", "src/", "dst/"],
                false,
            ),
        ]);
    }
    cases.retain(|c| fs.clones() || !c.needs_clone);
    cases
}
