//! What a tree dedupe found and did: the report, its groups, the skipped
//! files with their reasons, and the fatal error.

use std::fmt;
use std::io;
use std::path::PathBuf;

use serde::Serialize;
use serde::ser::SerializeStruct;

use crate::identical::NotPossible;

/// Why a file was left alone. Nothing about a skipped file was changed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SkipReason {
    /// Another name of a file already seen (same device and inode): it
    /// already is the same file, nothing to share and nothing read.
    HardLink,
    /// The file has no write permission bit: its owner marked it read-only.
    ReadOnly,
    /// The file is immutable (`chattr +i`).
    Immutable,
    /// The file is append-only (`chattr +a`).
    AppendOnly,
    /// Some process has the file open for writing.
    OpenForWriting,
    /// A mount point of another filesystem (or btrfs subvolume) inside a
    /// tree: not descended into.
    OtherFilesystem,
    /// The file changed (size, mtime, or a different inode at the path)
    /// between the scan and its turn.
    Changed,
    /// The kernel's byte compare found a difference from the reference
    /// (the file changed after it was hashed): nothing was shared.
    Differs,
    /// The kernel refused to share the blocks.
    NotPossible(NotPossible),
    /// An operation on the file failed (the text names it).
    Error(String),
}

impl SkipReason {
    /// A short stable name, for JSON and tallies.
    pub fn code(&self) -> &'static str {
        match self {
            SkipReason::HardLink => "hard-link",
            SkipReason::ReadOnly => "read-only",
            SkipReason::Immutable => "immutable",
            SkipReason::AppendOnly => "append-only",
            SkipReason::OpenForWriting => "open-for-writing",
            SkipReason::OtherFilesystem => "other-filesystem",
            SkipReason::Changed => "changed",
            SkipReason::Differs => "differs",
            SkipReason::NotPossible(_) => "not-possible",
            SkipReason::Error(_) => "error",
        }
    }
}

impl fmt::Display for SkipReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SkipReason::HardLink => f.write_str("a hard link of a file already seen"),
            SkipReason::ReadOnly => f.write_str("read-only (no write permission)"),
            SkipReason::Immutable => f.write_str("immutable"),
            SkipReason::AppendOnly => f.write_str("append-only"),
            SkipReason::OpenForWriting => f.write_str("open for writing by a process"),
            SkipReason::OtherFilesystem => {
                f.write_str("on another filesystem or subvolume (not descended)")
            }
            SkipReason::Changed => f.write_str("changed during the run"),
            SkipReason::Differs => {
                f.write_str("the kernel found its bytes differ from the reference's")
            }
            SkipReason::NotPossible(r) => write!(f, "{r}"),
            SkipReason::Error(e) => f.write_str(e),
        }
    }
}

impl Serialize for SkipReason {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut st = s.serialize_struct("SkipReason", 2)?;
        st.serialize_field("code", self.code())?;
        st.serialize_field("message", &self.to_string())?;
        st.end()
    }
}

/// A file left alone, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Skipped {
    /// The file (or the directory not descended into).
    pub path: PathBuf,
    /// Why.
    pub reason: SkipReason,
}

/// What happened to one member of a duplicate group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "status")]
pub enum Outcome {
    /// The group's reference: its blocks are the ones kept.
    Reference,
    /// Every byte now shares the reference's blocks.
    Shared {
        /// Bytes newly shared.
        bytes: u64,
    },
    /// Dry run: every byte would have been shared.
    WouldShare {
        /// Bytes that would be shared.
        bytes: u64,
    },
    /// It already shared every block with the reference (seen in the
    /// extent map, nothing read).
    AlreadyShared,
    /// Left alone.
    Skipped {
        /// Why.
        reason: SkipReason,
    },
}

/// One member of a duplicate group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Member {
    /// The file.
    pub path: PathBuf,
    /// What happened to it.
    #[serde(flatten)]
    pub outcome: Outcome,
}

/// Files with identical content on one filesystem.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DuplicateGroup {
    /// Size of each file.
    pub size: u64,
    /// Every member, the reference first.
    pub members: Vec<Member>,
}

impl DuplicateGroup {
    /// The reference's path (the first member).
    pub fn reference(&self) -> &std::path::Path {
        &self.members[0].path
    }
}

/// A filesystem where nothing can be deduplicated: reported once, not once
/// per file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CannotDedupe {
    /// The first file or tree seen on it.
    pub path: PathBuf,
    /// What the kernel said.
    #[serde(serialize_with = "display")]
    pub reason: NotPossible,
    /// Candidate files on it that were therefore neither read nor changed.
    pub files: u64,
}

fn display<S: serde::Serializer>(v: &NotPossible, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(v)
}

/// Counters of a run (`cow dedupe --stats`).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Stats {
    /// Regular files seen.
    pub files_scanned: u64,
    /// Their bytes.
    pub bytes_scanned: u64,
    /// Files sharing their size with another file (the ones looked at).
    pub candidates: u64,
    /// Bytes read to hash them.
    pub bytes_read: u64,
    /// Files read at all.
    pub files_read: u64,
    /// Files read past their first block.
    pub files_read_whole: u64,
    /// Candidates whose data is stored inline in filesystem metadata
    /// (small btrfs files): there are no blocks to share. Counted here, not
    /// listed in [`DedupeReport::skipped`], so memory does not grow with
    /// them.
    pub files_inline: u64,
    /// Files opened while comparing and sharing (a candidate is opened
    /// once to compare, unless its size group has more than 64 members,
    /// or not at all when the btrfs tree showed it sharing its blocks with
    /// another member or stored inline; and again only when it is shared
    /// or is a reference).
    pub files_opened: u64,
    /// btrfs candidates whose extent map was read from the filesystem's
    /// tree (as root, see
    /// [`DedupeOptions::btrfs_tree_search`](super::DedupeOptions::btrfs_tree_search)):
    /// none of them was opened to map it.
    pub files_tree_mapped: u64,
    /// Pairs (two files of one size, first blocks equal) that were not
    /// hashed whole: the kernel's compare in `FIDEDUPERANGE` decided
    /// alone, or [`pairs_read_first`](Self::pairs_read_first). Not in a
    /// dry run.
    pub pairs_kernel_compared: u64,
    /// Of those, the pairs whose first MiB was read and compared here
    /// before the kernel was asked: only while no group had yet needed
    /// the list of files open for writing (it reads every process's
    /// descriptors), as on a rerun whose only work is pairs found
    /// different before. A pair that differs there never reaches the
    /// kernel, which would have shared none of its blocks.
    pub pairs_read_first: u64,
    /// Of those, the pairs found different (by the kernel, or by the read
    /// of [`pairs_read_first`](Self::pairs_read_first)): no duplicates, so
    /// not listed as groups or skips. Any blocks the kernel shared before
    /// their first difference are counted in
    /// [`DedupeReport::bytes_newly_shared`].
    pub pairs_differing: u64,
    /// A first-block read found its data out of the page cache: from then
    /// on each chunk of the compare asked read-ahead for the files it was
    /// about to read before reading the first (a cold cache waits for the
    /// disk for many files at once instead of one after the other).
    pub cold_cache: bool,
    /// Seconds spent scanning, comparing and sharing.
    pub seconds: [f64; 3],
}

/// The result of [`DedupeOptions::run`](super::DedupeOptions::run).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct DedupeReport {
    /// Whether nothing was changed on purpose (`--dry-run`).
    pub dry_run: bool,
    /// The duplicate groups found, sorted by reference path.
    pub groups: Vec<DuplicateGroup>,
    /// Bytes that now share a reference's blocks and did not before (with
    /// `dry_run`: that would).
    pub bytes_newly_shared: u64,
    /// Bytes of duplicates that already shared the reference's blocks.
    pub bytes_already_shared: u64,
    /// Files left alone, sorted by path.
    pub skipped: Vec<Skipped>,
    /// Filesystems that cannot dedupe, once each.
    pub cannot_dedupe: Vec<CannotDedupe>,
    /// Used space before minus used space after, summed over the
    /// filesystems where something was shared, as `df` shows it
    /// (`statvfs` after `syncfs`, before and after; on XFS, whose count is
    /// current without a flush, not flushed after). Other writers on the
    /// same filesystems move it too. `None` in a dry run.
    pub space_freed: Option<i64>,
    /// Counters.
    pub stats: Stats,
}

/// A tree dedupe that could not run at all.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DedupeError {
    /// A path given to the run could not be read.
    #[error("{op} {}: {source}", path.display())]
    Io {
        /// The failing call.
        op: &'static str,
        /// The path.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
    /// More than the supported number of files, names or filesystems.
    #[error("too many {0} for one run")]
    TooMany(&'static str),
}

impl From<DedupeError> for io::Error {
    fn from(e: DedupeError) -> io::Error {
        match e {
            DedupeError::Io { ref source, .. } => io::Error::new(source.kind(), e),
            e @ DedupeError::TooMany(_) => io::Error::new(io::ErrorKind::OutOfMemory, e),
        }
    }
}

/// A key whose byte order is the order of `Path`'s `Ord` (component by
/// component), for sorting many paths: comparing keys is a `memcmp`, where
/// comparing paths parses both into components every time (sorting the
/// 3,939 groups of a rerun by their paths took 15-20 ms of its 230).
///
/// Each component is a tag in `Path`'s component order (root, `.`, `..`,
/// a name) followed, for a name, by its bytes and a 0 (which no name
/// holds): a name that is a prefix of another sorts first, as in `Path`.
pub(super) fn path_key(p: &std::path::Path) -> Vec<u8> {
    use std::os::unix::ffi::OsStrExt;
    use std::path::Component;
    let mut key = Vec::with_capacity(p.as_os_str().len() + 8);
    for c in p.components() {
        match c {
            Component::Prefix(_) => key.push(0),
            Component::RootDir => key.push(1),
            Component::CurDir => key.push(2),
            Component::ParentDir => key.push(3),
            Component::Normal(n) => push_normal(&mut key, n.as_bytes()),
        }
    }
    key
}

/// Appends a normal component `name` to a [`path_key`].
pub(super) fn push_normal(key: &mut Vec<u8>, name: &[u8]) {
    key.push(4);
    key.extend_from_slice(name);
    key.push(0);
}

#[cfg(test)]
mod tests {
    use super::path_key;
    use std::path::Path;

    #[test]
    fn path_keys_sort_as_paths_do() {
        let paths = [
            "/", "/a", "/a/b", "/a-b", "/a/b/c", "/a.b", "/ab", "/a/", "a", "a/b", "a-b", "./a",
            "../a", "./-x", "-x", "..", ".", "a//b", "/a/./b", "/a/../b", "a/b/", "b", "",
            "/\u{e9}", "/z",
        ];
        for x in paths {
            for y in paths {
                let (px, py) = (Path::new(x), Path::new(y));
                assert_eq!(
                    path_key(px).cmp(&path_key(py)),
                    px.cmp(py),
                    "{x:?} against {y:?}"
                );
            }
        }
    }
}
