//! One message style for the whole binary: every path quoted the GNU way
//! ([`quote`]), OS errors without Rust's `(os error N)` suffix, and library
//! error texts re-rendered so the paths in them are quoted and no control
//! character from a file name reaches the terminal raw.

use std::io;
use std::path::Path;

use cow_copy::CopyError;
use cow_copy::tree::{TreeError, TreeFailure, TreeWarning};

use crate::quote::quote;

/// A path for a message: `'a b'`, `'it'\''s'`, `'a'$'\033''b'`.
pub(crate) fn q(p: impl AsRef<Path>) -> String {
    quote(p.as_ref())
}

/// An OS error as GNU tools print it: `No such file or directory`.
pub(crate) fn os(e: &io::Error) -> String {
    let s = e.to_string();
    let text = match s.rfind(" (os error ") {
        Some(i) if s.ends_with(')') => &s[..i],
        _ => &s,
    };
    escape_controls(text)
}

/// `text` with every control character written as a `$'...'`-style escape
/// (a message never moves the cursor or forges a line).
pub(crate) fn escape_controls(text: &str) -> String {
    if !text.chars().any(char::is_control) {
        return text.to_owned();
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if c.is_control() {
            // `quote` of a lone control character is `$'\NNN'`.
            out.push_str(&quote(c.to_string()));
        } else {
            out.push(c);
        }
    }
    out
}

/// A library message that names `paths` with `Path::display`: each such
/// path is written quoted, the text between them escaped.
fn requote(text: &str, paths: &[&Path]) -> String {
    let shown: Vec<(String, &Path)> = paths
        .iter()
        .map(|p| (p.display().to_string(), *p))
        .filter(|(s, _)| !s.is_empty())
        .collect();
    let mut out = String::with_capacity(text.len() + 8);
    let mut rest = text;
    loop {
        // The earliest path in the rest; the longest one where two start
        // at the same place (a path and its parent).
        let next = shown
            .iter()
            .filter_map(|(s, p)| rest.find(s.as_str()).map(|at| (at, s.len(), *p)))
            .min_by_key(|&(at, len, _)| (at, std::cmp::Reverse(len)));
        let Some((at, len, path)) = next else {
            out.push_str(&escape_controls(rest));
            return out;
        };
        out.push_str(&escape_controls(&rest[..at]));
        out.push_str(&q(path));
        rest = &rest[at + len..];
    }
}

/// A copy error, GNU-worded, paths quoted.
pub(crate) fn copy_error(e: &CopyError) -> String {
    match e {
        CopyError::SameFile { src, dst } => format!("{} and {} are the same file", q(src), q(dst)),
        CopyError::ReflinkUnsupported { path, source } => {
            format!("cannot clone to {}: {}", q(path), os(source))
        }
        CopyError::NotARegularFile { path, kind } => {
            format!(
                "{} is not a regular file (it is {})",
                q(path),
                kind.described()
            )
        }
        CopyError::DestinationIsDirectory { path } => {
            format!("cannot overwrite directory {} with non-directory", q(path))
        }
        CopyError::DestinationExists { path } => format!("{} already exists", q(path)),
        CopyError::Incomplete {
            op,
            path,
            written,
            source,
        } => format!(
            "copy to {} failed after {written} bytes ({op}): {}; the destination is incomplete",
            q(path),
            os(source)
        ),
        CopyError::Io { op, path, source } => format!("cannot {op} {}: {}", q(path), os(source)),
        other => escape_controls(&other.to_string()),
    }
}

/// A tree error, GNU-worded, paths quoted (an incomplete tree is reported
/// failure by failure, not here).
pub(crate) fn tree_error(e: &TreeError) -> String {
    match e {
        TreeError::IntoItself { src, dst } => format!(
            "cannot copy a directory, {}, into itself, {}",
            q(src),
            q(dst)
        ),
        TreeError::SameFile { src, dst } => format!("{} and {} are the same file", q(src), q(dst)),
        TreeError::NotADirectory { src, dst } => format!(
            "cannot overwrite non-directory {} with directory {}",
            q(dst),
            q(src)
        ),
        TreeError::Io { op, path, source } => format!("cannot {op} {}: {}", q(path), os(source)),
        other => escape_controls(&other.to_string()),
    }
}

/// One entry of a tree that failed: the operation, both paths, the cause:
/// `cannot copy 'a/f' to 'b/f': ...`, `cannot set mode 'b/d' (the copy of
/// 'a/d'): ...`.
pub(crate) fn failure(f: &TreeFailure) -> String {
    let cause = requote(
        f.error.trim_end_matches(&errno_suffix(f.errno)),
        &[&f.path, &f.destination],
    );
    let (src, dst) = (q(&f.path), q(&f.destination));
    if f.op == "copy" {
        format!("cannot copy {src} to {dst}: {cause}")
    } else {
        // "create directory", "set mode", ...: done to the destination.
        format!("cannot {} {dst} (the copy of {src}): {cause}", f.op)
    }
}

/// A tree warning: its path quoted, the message escaped.
pub(crate) fn warning(w: &TreeWarning) -> String {
    format!("{}: {}", q(&w.path), requote(&w.message, &[&w.path]))
}

fn errno_suffix(errno: Option<i32>) -> String {
    errno
        .map(|n| format!(" (os error {n})"))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    #[test]
    fn os_errors_lose_the_rust_suffix() {
        let e = io::Error::from_raw_os_error(2);
        let (full, shown) = (e.to_string(), os(&e));
        assert!(!shown.contains("os error"), "{shown}");
        assert!(
            full.starts_with(&shown) && full.len() > shown.len(),
            "{full} / {shown}"
        );
        // The text itself is the platform's (Windows: "File not found.").
        #[cfg(unix)]
        assert_eq!(shown, "No such file or directory");
    }

    #[test]
    fn library_paths_are_requoted_and_controls_escaped() {
        let src = PathBuf::from("a/x\u{1b}[2Jy");
        let dst = PathBuf::from("b/x\u{1b}[2Jy");
        let text = format!("cannot open source {}: Permission denied", src.display());
        let f = TreeFailure {
            path: src.clone(),
            destination: dst,
            op: "copy",
            error: format!("{text} (os error 13)"),
            kind: io::ErrorKind::PermissionDenied,
            errno: Some(13),
        };
        let m = failure(&f);
        assert_eq!(
            m,
            r"cannot copy 'a/x'$'\033''[2Jy' to 'b/x'$'\033''[2Jy': cannot open source 'a/x'$'\033''[2Jy': Permission denied"
        );
        assert!(!m.chars().any(char::is_control));
    }

    #[test]
    fn stray_controls_in_messages_are_escaped() {
        assert_eq!(escape_controls("a\nb"), r"a$'\n'b");
        assert_eq!(escape_controls("plain"), "plain");
    }
}
