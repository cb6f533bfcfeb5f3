//! The report objects returned to Python.

use cow_copy::CopyReport;
use cow_copy::tree::{Progress, TreeFailure, TreeReport};
use pyo3::prelude::*;

/// What `copy_file` did to one file.
#[pyclass(frozen, get_all, module = "cow_copy", name = "CopyReport")]
pub(crate) struct PyCopyReport {
    /// How the bytes got there: "cloned", "kernel-copy", "user-copy",
    /// "mixed", "copyfile", "system-copy", "skipped", "deduped",
    /// "kept-newer".
    strategy: String,
    /// Bytes whose storage is shared with the source.
    bytes_cloned: u64,
    /// Bytes written (by the kernel or by cow).
    bytes_copied: u64,
    /// Bytes left as holes.
    hole_bytes: u64,
    /// The destination's final length.
    len: u64,
    /// "created", "replaced" or "kept".
    destination: String,
    /// The source changed length while it was read.
    size_changed: bool,
    /// Strategies tried first that declined, and why.
    fallbacks: Vec<String>,
    /// Metadata asked for that could not be applied.
    warnings: Vec<String>,
    /// Fraction of the data bytes shared with the source.
    shared_ratio: f64,
}

impl From<&CopyReport> for PyCopyReport {
    fn from(r: &CopyReport) -> Self {
        PyCopyReport {
            strategy: r.strategy.name().to_owned(),
            bytes_cloned: r.bytes_cloned,
            bytes_copied: r.bytes_copied,
            hole_bytes: r.hole_bytes,
            len: r.len,
            destination: format!("{:?}", r.destination).to_ascii_lowercase(),
            size_changed: r.size_changed,
            fallbacks: r.fallbacks.iter().map(ToString::to_string).collect(),
            warnings: r.metadata_skipped.clone(),
            shared_ratio: r.shared_ratio(),
        }
    }
}

#[pymethods]
impl PyCopyReport {
    /// Whether every data byte is shared with the source.
    #[getter]
    fn cloned(&self) -> bool {
        self.strategy == "cloned"
    }

    fn __repr__(&self) -> String {
        format!(
            "CopyReport(strategy={:?}, len={}, bytes_cloned={}, bytes_copied={}, hole_bytes={}, destination={:?})",
            self.strategy,
            self.len,
            self.bytes_cloned,
            self.bytes_copied,
            self.hole_bytes,
            self.destination
        )
    }
}

/// One entry of a tree that could not be copied.
#[pyclass(frozen, get_all, module = "cow_copy", name = "TreeFailure")]
pub(crate) struct PyTreeFailure {
    /// The source path.
    path: String,
    /// Where it was being copied to.
    destination: String,
    /// The operation that failed.
    op: String,
    /// The error message.
    error: String,
    /// The OS error number, if there was one.
    errno: Option<i32>,
}

#[pymethods]
impl PyTreeFailure {
    fn __repr__(&self) -> String {
        format!(
            "TreeFailure(path={:?}, destination={:?}, op={:?}, error={:?})",
            self.path, self.destination, self.op, self.error
        )
    }
}

impl From<&TreeFailure> for PyTreeFailure {
    fn from(f: &TreeFailure) -> Self {
        PyTreeFailure {
            path: f.path.to_string_lossy().into_owned(),
            destination: f.destination.to_string_lossy().into_owned(),
            op: f.op.to_owned(),
            error: f.error.clone(),
            errno: f.errno,
        }
    }
}

/// What `copy_tree` did.
#[pyclass(frozen, get_all, module = "cow_copy", name = "TreeReport")]
pub(crate) struct PyTreeReport {
    /// "walk" (entry by entry) or "clone-tree" (one macOS clonefile).
    method: String,
    /// Regular files copied.
    files: u64,
    /// Directories created or merged into.
    dirs: u64,
    /// Symlinks created.
    symlinks: u64,
    /// FIFOs created.
    fifos: u64,
    /// Devices and sockets created.
    specials: u64,
    /// Hard links made to earlier copies.
    hard_links: u64,
    /// Entries left alone.
    skipped: u64,
    /// Files left alone because their content was already there.
    identical: u64,
    /// Entries that failed.
    failed: u64,
    /// Bytes shared with the source.
    bytes_cloned: u64,
    /// Bytes written.
    bytes_copied: u64,
    /// Bytes left as holes.
    hole_bytes: u64,
    /// Bytes of files not written (skipped, hard-linked).
    bytes_skipped: u64,
    /// The entries that failed.
    failures: Vec<Py<PyTreeFailure>>,
    /// Entries skipped on purpose and metadata not applied.
    warnings: Vec<String>,
    /// The copy stopped before the end (fail_fast, or Ctrl-C).
    stopped_early: bool,
}

impl PyTreeReport {
    pub(crate) fn new(py: Python<'_>, r: &TreeReport) -> PyResult<Self> {
        let t = &r.totals;
        Ok(PyTreeReport {
            method: match r.method {
                cow_copy::tree::TreeMethod::CloneTree => "clone-tree",
                _ => "walk",
            }
            .to_owned(),
            files: t.files,
            dirs: t.dirs,
            symlinks: t.symlinks,
            fifos: t.fifos,
            specials: t.specials,
            hard_links: t.hard_links,
            skipped: t.skipped,
            identical: t.identical,
            failed: t.failed,
            bytes_cloned: t.bytes_cloned,
            bytes_copied: t.bytes_copied,
            hole_bytes: t.hole_bytes,
            bytes_skipped: t.bytes_skipped,
            failures: r
                .failures
                .iter()
                .map(|f| Py::new(py, PyTreeFailure::from(f)))
                .collect::<PyResult<_>>()?,
            warnings: r.warnings.iter().map(ToString::to_string).collect(),
            stopped_early: r.stopped_early,
        })
    }
}

#[pymethods]
impl PyTreeReport {
    fn __repr__(&self) -> String {
        format!(
            "TreeReport(files={}, dirs={}, symlinks={}, failed={}, bytes_cloned={}, bytes_copied={}, hole_bytes={})",
            self.files,
            self.dirs,
            self.symlinks,
            self.failed,
            self.bytes_cloned,
            self.bytes_copied,
            self.hole_bytes
        )
    }
}

/// Progress of a copy, given to the `progress=` callable.
#[pyclass(frozen, get_all, module = "cow_copy", name = "Progress")]
pub(crate) struct PyProgress {
    /// Regular files finished.
    files_done: u64,
    /// Regular files found so far (grows while the tree is walked).
    files_total: u64,
    /// Bytes of the finished files.
    bytes_done: u64,
    /// Bytes of the files found so far.
    bytes_total: u64,
}

impl From<&Progress> for PyProgress {
    fn from(p: &Progress) -> Self {
        PyProgress {
            files_done: p.files_done,
            files_total: p.files_total,
            bytes_done: p.bytes_done,
            bytes_total: p.bytes_total,
        }
    }
}

#[pymethods]
impl PyProgress {
    fn __repr__(&self) -> String {
        format!(
            "Progress(files_done={}, files_total={}, bytes_done={}, bytes_total={})",
            self.files_done, self.files_total, self.bytes_done, self.bytes_total
        )
    }
}

/// What the filesystem holding a path can do (`probe`).
#[pyclass(frozen, get_all, module = "cow_copy", name = "Probe")]
pub(crate) struct PyProbe {
    /// The path asked about.
    path: String,
    /// The filesystem's name ("btrfs", "xfs", "ext4", "tmpfs", "apfs", ...).
    fs: String,
    /// Block size in bytes.
    block_size: u64,
    /// Device id.
    dev: u64,
    /// Mounted read-only.
    read_only: bool,
    /// Files can share blocks: "yes", "no" or "unknown".
    reflink: String,
    /// Equal ranges can be deduplicated: "yes", "no" or "unknown".
    dedupe: String,
    /// Holes are reported: "yes", "no" or "unknown".
    sparse: String,
    /// Extents can be read: "yes", "no" or "unknown".
    fiemap: String,
    /// copy_file_range shares blocks: "yes", "no" or "unknown".
    copy_file_range: String,
    /// How each answer was found, by name.
    evidence: std::collections::BTreeMap<String, String>,
}

impl From<&cow_probe::Capabilities> for PyProbe {
    fn from(c: &cow_probe::Capabilities) -> Self {
        PyProbe {
            path: c.path.to_string_lossy().into_owned(),
            fs: c.fs_name.clone(),
            block_size: c.block_size,
            dev: c.dev,
            read_only: c.read_only,
            reflink: c.reflink.support.to_string(),
            dedupe: c.dedupe.support.to_string(),
            sparse: c.sparse.support.to_string(),
            fiemap: c.fiemap.support.to_string(),
            copy_file_range: c.copy_file_range.support.to_string(),
            evidence: c
                .answers()
                .iter()
                .map(|(n, a)| ((*n).to_owned(), a.evidence.to_string()))
                .collect(),
        }
    }
}

#[pymethods]
impl PyProbe {
    fn __repr__(&self) -> String {
        format!(
            "Probe(path={:?}, fs={:?}, reflink={:?}, dedupe={:?}, sparse={:?}, fiemap={:?})",
            self.path, self.fs, self.reflink, self.dedupe, self.sparse, self.fiemap
        )
    }
}

/// How much of file a's data is physically shared with file b (`verify`).
#[pyclass(frozen, get_all, module = "cow_copy", name = "Sharing")]
pub(crate) struct PySharing {
    /// Length of a.
    a_len: u64,
    /// Length of b.
    b_len: u64,
    /// Data bytes of a with a known device location.
    a_bytes: u64,
    /// Data bytes of b with a known device location.
    b_bytes: u64,
    /// Bytes of a whose storage also holds data of b.
    shared_bytes: u64,
    /// Bytes of a stored at the same device byte as the same offset of b.
    same_offset_bytes: u64,
    /// Data bytes of a without a comparable location (never shared).
    unknown_bytes: u64,
    /// shared_bytes over a's data bytes, 0.0 to 1.0 (1.0 without data).
    ratio: f64,
    /// Both files are on one filesystem.
    same_filesystem: bool,
    /// b is a whole-file clone of a.
    is_clone: bool,
}

impl From<&cow_verify::Sharing> for PySharing {
    fn from(s: &cow_verify::Sharing) -> Self {
        PySharing {
            a_len: s.a_len,
            b_len: s.b_len,
            a_bytes: s.a_bytes,
            b_bytes: s.b_bytes,
            shared_bytes: s.shared_bytes,
            same_offset_bytes: s.same_offset_bytes,
            unknown_bytes: s.unknown_bytes,
            ratio: s.ratio,
            same_filesystem: s.same_filesystem,
            is_clone: s.is_clone(),
        }
    }
}

#[pymethods]
impl PySharing {
    fn __repr__(&self) -> String {
        format!(
            "Sharing(ratio={}, shared_bytes={}, a_len={}, b_len={}, is_clone={})",
            self.ratio,
            self.shared_bytes,
            self.a_len,
            self.b_len,
            if self.is_clone { "True" } else { "False" }
        )
    }
}
