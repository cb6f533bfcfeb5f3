//! GNU `cp` destination rules: which path each SOURCE is copied to.

use std::ffi::OsString;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::msg::{os, q};

/// The (source, target) pairs of one command line.
pub(crate) struct Plan {
    /// Whether the sources are copied into a directory (`SRC... DIR`, `-t`).
    pub(crate) into_directory: bool,
    pairs: Vec<(PathBuf, PathBuf)>,
}

impl Plan {
    /// The pairs, in command-line order.
    pub(crate) fn pairs(&self) -> Vec<(PathBuf, PathBuf)> {
        self.pairs.clone()
    }
}

fn is_dir(p: &Path) -> bool {
    fs::metadata(p).is_ok_and(|m| m.is_dir())
}

/// The last component of `src` as GNU cp names the copy: trailing slashes
/// are ignored and `a/.` gives `.` (so `cp -r a/. b` copies a's contents).
pub(crate) fn base_name(src: &Path) -> OsString {
    let bytes = src.as_os_str().as_encoded_bytes();
    let mut end = bytes.len();
    while end > 1 && bytes[end - 1] == b'/' {
        end -= 1;
    }
    let trimmed = &bytes[..end];
    // `Path::file_name` skips a trailing `.`; GNU keeps it.
    if trimmed == b"." || trimmed.ends_with(b"/.") {
        return OsString::from(".");
    }
    match src.file_name() {
        Some(n) => n.to_owned(),
        None if trimmed.ends_with(b"..") => OsString::from(".."),
        None => OsString::from("."),
    }
}

/// `dir` joined with `name` without normalising anything.
pub(crate) fn join(dir: &Path, name: &OsString) -> PathBuf {
    let mut s = dir.as_os_str().to_owned();
    if !s.as_encoded_bytes().ends_with(b"/") {
        s.push("/");
    }
    s.push(name);
    PathBuf::from(s)
}

/// Applies the GNU rules to the operands.
pub(crate) fn plan(
    paths: &[PathBuf],
    target_dir: Option<&Path>,
    no_target_dir: bool,
    parents: bool,
) -> Result<Plan, String> {
    let plan = plan_names(paths, target_dir, no_target_dir)?;
    if !parents {
        return Ok(plan);
    }
    if !plan.into_directory {
        return Err("with --parents, the destination must be a directory".into());
    }
    let dir = match target_dir {
        Some(d) => d.to_path_buf(),
        None => paths[paths.len() - 1].clone(),
    };
    let pairs = plan
        .pairs
        .iter()
        .map(|(src, _)| (src.clone(), under_parents(&dir, src)))
        .collect();
    Ok(Plan {
        into_directory: true,
        pairs,
    })
}

/// `--parents`: `dir` joined with the whole of `src` (leading slashes
/// dropped: `/a/b` goes to `dir/a/b`).
fn under_parents(dir: &Path, src: &Path) -> PathBuf {
    let rel = src.strip_prefix("/").unwrap_or(src);
    join(dir, &rel.as_os_str().to_owned())
}

/// `--parents`: creates the directories above `dst`.
pub(crate) fn make_parents(dst: &Path) -> Result<(), String> {
    match dst.parent() {
        Some(p) if !p.as_os_str().is_empty() => {
            fs::create_dir_all(p).map_err(|e| format!("cannot make directory {}: {}", q(p), os(&e)))
        }
        _ => Ok(()),
    }
}

/// The GNU rules without `--parents`.
fn plan_names(
    paths: &[PathBuf],
    target_dir: Option<&Path>,
    no_target_dir: bool,
) -> Result<Plan, String> {
    if let Some(dir) = target_dir {
        if !is_dir(dir) {
            return Err(format!("target directory {} is not a directory", q(dir)));
        }
        return Ok(Plan {
            into_directory: true,
            pairs: paths
                .iter()
                .map(|s| (s.clone(), join(dir, &base_name(s))))
                .collect(),
        });
    }
    let Some((dst, sources)) = paths.split_last() else {
        return Err("missing file operand".into());
    };
    if sources.is_empty() {
        return Err(format!("missing destination file operand after {}", q(dst)));
    }
    if no_target_dir {
        if sources.len() > 1 {
            return Err(format!("extra operand {}", q(&paths[2])));
        }
        return Ok(Plan {
            into_directory: false,
            pairs: vec![(sources[0].clone(), dst.clone())],
        });
    }
    if is_dir(dst) {
        return Ok(Plan {
            into_directory: true,
            pairs: sources
                .iter()
                .map(|s| (s.clone(), join(dst, &base_name(s))))
                .collect(),
        });
    }
    if sources.len() > 1 {
        return Err(format!("target {} is not a directory", q(dst)));
    }
    Ok(Plan {
        into_directory: false,
        pairs: vec![(sources[0].clone(), dst.clone())],
    })
}

/// What a SOURCE operand is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SourceKind {
    /// A directory.
    Dir,
    /// A regular file.
    File,
    /// A symlink that is not followed.
    Symlink,
    /// A FIFO, device or socket.
    Other,
}

/// Stats a SOURCE (following it when `follow`; a trailing slash always
/// follows, as the kernel resolves it).
pub(crate) fn source_kind(src: &Path, follow: bool) -> io::Result<SourceKind> {
    let m = if follow {
        fs::metadata(src)
    } else {
        fs::symlink_metadata(src)
    }?;
    let ft = m.file_type();
    Ok(if ft.is_dir() {
        SourceKind::Dir
    } else if ft.is_symlink() {
        SourceKind::Symlink
    } else if ft.is_file() {
        SourceKind::File
    } else {
        SourceKind::Other
    })
}

/// Refuses destinations GNU cp refuses for a regular file: a dangling
/// symlink (never written through) and a directory.
pub(crate) fn check_file_destination(dst: &Path) -> Result<(), String> {
    let Ok(lm) = fs::symlink_metadata(dst) else {
        return Ok(());
    };
    if lm.file_type().is_symlink() {
        match fs::metadata(dst) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(format!("not writing through dangling symlink {}", q(dst)));
            }
            _ => {}
        }
    }
    if is_dir(dst) {
        return Err(format!(
            "cannot overwrite directory {} with non-directory",
            q(dst)
        ));
    }
    Ok(())
}

/// Whether `dst` exists and is (or leads to) a FIFO.
pub(crate) fn is_fifo(dst: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        fs::metadata(dst).is_ok_and(|m| m.file_type().is_fifo())
    }
    #[cfg(not(unix))]
    {
        let _ = dst;
        false
    }
}

/// Writes the bytes of `src` into the FIFO `dst` (GNU cp opens a FIFO
/// destination and writes into it; this waits for a reader).
pub(crate) fn write_into_fifo(src: &Path, dst: &Path) -> Result<u64, String> {
    let mut from = fs::File::open(src)
        .map_err(|e| format!("cannot open {} for reading: {}", q(src), os(&e)))?;
    let mut to = fs::OpenOptions::new()
        .write(true)
        .open(dst)
        .map_err(|e| format!("cannot open FIFO {} for writing: {}", q(dst), os(&e)))?;
    io::copy(&mut from, &mut to)
        .map_err(|e| format!("error writing to FIFO {}: {}", q(dst), os(&e)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_names_follow_gnu() {
        for (src, want) in [
            ("a", "a"),
            ("a/", "a"),
            ("a//", "a"),
            ("x/a", "a"),
            ("x/a/", "a"),
            ("a/.", "."),
            ("x/a/./", "."),
            ("/", "."),
            ("/etc", "etc"),
            ("..", ".."),
            ("x/..", ".."),
        ] {
            let got = base_name(Path::new(src));
            assert_eq!(got, OsString::from(want), "base name of {src:?}");
        }
    }

    #[test]
    fn join_keeps_dots() {
        assert_eq!(
            join(Path::new("b"), &OsString::from(".")),
            PathBuf::from("b/.")
        );
        assert_eq!(
            join(Path::new("b/"), &OsString::from("a")),
            PathBuf::from("b/a")
        );
    }
}
